//! Course section 1.2: a single neuron, `Dense(units=1, input_shape=[3])`, learning y = w·x + b.
//!
//! Keras: `keras.Sequential([layers.Dense(units=1, input_shape=[3])])`

use wgfit::{Dense, Device, Fit, Matrix, Sequential, Sgd};

fn main() -> wgfit::Result<()> {
    let (device, fallback) = Device::gpu_or_cpu();
    if let Some(why) = fallback {
        eprintln!("no GPU ({why}); using the CPU path");
    }
    // Data from a known linear function: y = 2 x0 - x1 + 0.5 x2 + 1.
    let rows: Vec<[f32; 3]> =
        (0..200).map(|i| [(i % 7) as f32 / 7.0, (i % 11) as f32 / 11.0, (i % 5) as f32 / 5.0]).collect();
    let x = Matrix::from_rows(&rows)?;
    let y = Matrix::column(rows.iter().map(|r| 2.0 * r[0] - r[1] + 0.5 * r[2] + 1.0).collect());

    let mut model = Sequential::new(&device, vec![Dense::new(1).input_shape(3)]);
    model.compile(Sgd { learning_rate: 0.1, momentum: 0.9, ..Sgd::default() }, "mse", &[])?;
    let history = model.fit(&x, &y, Fit::new().batch_size(32).epochs(100).verbose(0))?;
    let (weights, _) = model.get_weights()?;
    println!("device: {:?}", device.info());
    println!("final loss (mse): {:.6}", history["loss"].last().unwrap_or(&f32::NAN));
    println!("learned w = {:.3?}, b = {:.3} (true: [2, -1, 0.5], 1)", &weights[..3], weights[3]);
    Ok(())
}

//! Course section 2.2: stacking dense layers, 2 -> 4 relu -> 3 relu -> 1 (linear output).
//!
//! Keras:
//! ```python
//! model = keras.Sequential([
//!     layers.Dense(units=4, activation='relu', input_shape=[2]),
//!     layers.Dense(units=3, activation='relu'),
//!     layers.Dense(units=1),
//! ])
//! ```

use wgfit::{Dense, Device, Fit, Matrix, Sequential};

fn main() -> wgfit::Result<()> {
    let (device, fallback) = Device::gpu_or_cpu();
    if let Some(why) = fallback {
        eprintln!("no GPU ({why}); using the CPU path");
    }
    let mut model = Sequential::new(
        &device,
        vec![
            // the hidden ReLU layers
            Dense::new(4).activation("relu").input_shape(2),
            Dense::new(3).activation("relu"),
            // the linear output layer
            Dense::new(1),
        ],
    );
    // A non-linear target: y = |x0| + x1².
    let grid: Vec<[f32; 2]> = (0..400).map(|i| [(i % 20) as f32 / 10.0 - 1.0, (i / 20) as f32 / 10.0 - 1.0]).collect();
    let x = Matrix::from_rows(&grid)?;
    let y = Matrix::column(grid.iter().map(|p| p[0].abs() + p[1] * p[1]).collect());
    model.compile("adam", "mae", &[])?;
    let history = model.fit(&x, &y, Fit::new().batch_size(32).epochs(200).seed(1).verbose(0))?;
    println!("device: {:?}", device.info());
    println!("mae: epoch 1 {:.4} -> epoch 200 {:.4}", history["loss"][0], history["loss"][199]);
    let probe = Matrix::from_rows(&[[0.0f32, 0.0], [0.5, 0.5], [-1.0, 1.0]])?;
    println!("predictions for (0,0), (.5,.5), (-1,1): {:.3?} (true 0, 0.75, 2)", model.predict(&probe)?.data());
    Ok(())
}

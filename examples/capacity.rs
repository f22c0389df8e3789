//! Course section 4.2: capacity. The same data fitted by a model, a wider one and a deeper one;
//! prints each one's final training and validation loss (concrete data, MAE, Adam, 100 epochs).
//!
//! Keras:
//! ```python
//! model = keras.Sequential([layers.Dense(16, activation='relu'), layers.Dense(1)])
//! wider = keras.Sequential([layers.Dense(32, activation='relu'), layers.Dense(1)])
//! deeper = keras.Sequential([layers.Dense(16, activation='relu'), layers.Dense(16, activation='relu'), layers.Dense(1)])
//! ```

use wgfit::{data, Dense, Device, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    let (device, fallback) = Device::gpu_or_cpu();
    if let Some(why) = fallback {
        eprintln!("no GPU ({why}); using the CPU path");
    }
    let epochs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let (x_train, y_train, x_valid, y_valid) = data::shipped::concrete()?;
    // No input_shape: as in the course, the input width is taken from the data at fit.
    let candidates = [
        ("model", vec![Dense::new(16).activation("relu"), Dense::new(1)]),
        ("wider", vec![Dense::new(32).activation("relu"), Dense::new(1)]),
        ("deeper", vec![Dense::new(16).activation("relu"), Dense::new(16).activation("relu"), Dense::new(1)]),
    ];
    println!("device: {:?}", device.info());
    for (name, layers) in candidates {
        let mut model = Sequential::new(&device, layers);
        model.compile("adam", "mae", &[])?;
        let fit = Fit::new().validation_data(&x_valid, &y_valid).batch_size(256).epochs(epochs).verbose(0);
        let history = model.fit(&x_train, &y_train, fit)?;
        println!(
            "{name:>6}: final loss {:7.3}  val_loss {:7.3}",
            history["loss"].last().unwrap_or(&f32::NAN),
            history["val_loss"].last().unwrap_or(&f32::NAN)
        );
    }
    Ok(())
}

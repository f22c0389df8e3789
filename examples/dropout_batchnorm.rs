//! Course section 5: Dropout and Batch Normalization. The same network with and without the two
//! layers on the concrete data, printing both learning curves' final training and validation loss.
//!
//! Keras:
//! ```python
//! keras.Sequential([
//!     layers.Dense(1024, activation='relu', input_shape=[8]),
//!     layers.BatchNormalization(), layers.Dropout(0.3),
//!     layers.Dense(1024, activation='relu'),
//!     layers.BatchNormalization(), layers.Dropout(0.3),
//!     layers.Dense(1),
//! ])
//! ```

use wgfit::{data, BatchNormalization, Dense, Device, Dropout, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    // Usage: dropout_batchnorm [EPOCHS] [gpu|cpu]
    let epochs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let device = if std::env::args().nth(2).as_deref() == Some("cpu") {
        Device::cpu()
    } else {
        let (device, fallback) = Device::gpu_or_cpu();
        if let Some(why) = fallback {
            eprintln!("no GPU ({why}); using the CPU path");
        }
        device
    };
    let (x_train, y_train, x_valid, y_valid) = data::shipped::concrete()?;
    let plain =
        vec![Dense::new(1024).activation("relu").input_shape(8), Dense::new(1024).activation("relu"), Dense::new(1)];
    let regularized = vec![
        Dense::new(1024).activation("relu").input_shape(8),
        BatchNormalization::new(),
        Dropout::new(0.3),
        Dense::new(1024).activation("relu"),
        BatchNormalization::new(),
        Dropout::new(0.3),
        Dense::new(1),
    ];
    println!("device: {:?}, {epochs} epochs", device.info());
    for (name, layers) in [("without dropout/batchnorm", plain), ("with dropout + batchnorm", regularized)] {
        let mut model = Sequential::new(&device, layers);
        model.compile("adam", "mae", &[])?;
        let fit = Fit::new().validation_data(&x_valid, &y_valid).batch_size(256).epochs(epochs).seed(0).verbose(0);
        let h = model.fit(&x_train, &y_train, fit)?;
        let best = h["val_loss"].iter().cloned().fold(f32::INFINITY, f32::min);
        println!(
            "{name:>26}: final loss {:7.3}  final val_loss {:7.3}  best val_loss {best:7.3}",
            h["loss"].last().unwrap_or(&f32::NAN),
            h["val_loss"].last().unwrap_or(&f32::NAN),
        );
    }
    Ok(())
}

//! Course section 3.4: compile with Adam and MAE, fit with validation data, batch 256, 10 epochs,
//! on the concrete-strength data shipped in data/ (the course's 70/30 split, min-max scaled).
//!
//! Keras:
//! ```python
//! model.compile(optimizer="adam", loss="mae")
//! history = model.fit(X_train, y_train, validation_data=(X_valid, y_valid), batch_size=256, epochs=10)
//! ```

use wgfit::{data, Dense, Device, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    let (device, fallback) = Device::gpu_or_cpu();
    if let Some(why) = fallback {
        eprintln!("no GPU ({why}); using the CPU path");
    }
    let (x_train, y_train, x_valid, y_valid) = data::shipped::concrete()?;
    let mut model = Sequential::new(
        &device,
        vec![
            Dense::new(512).activation("relu").input_shape(8),
            Dense::new(512).activation("relu"),
            Dense::new(512).activation("relu"),
            Dense::new(1),
        ],
    );
    model.compile("adam", "mae", &[])?;
    let history = model.fit(
        &x_train,
        &y_train,
        Fit::new().validation_data(&x_valid, &y_valid).batch_size(256).epochs(10).verbose(2),
    )?;
    println!("device: {:?}", device.info());
    for (epoch, (loss, val)) in history["loss"].iter().zip(&history["val_loss"]).enumerate() {
        println!("epoch {:>2}: loss {loss:8.4}  val_loss {val:8.4}", epoch + 1);
    }
    Ok(())
}

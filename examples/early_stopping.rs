//! The course's complete early-stopping example (section 4.3) on the shipped concrete data.
//! The course trains on red-wine quality (11 inputs); wgfit ships the concrete-strength table
//! (8 inputs), so `input_shape` is 8 and everything else is the course's: three Dense(512, relu)
//! layers and Dense(1), adam, mae, batch 256, up to 500 epochs, EarlyStopping(min_delta 0.001,
//! patience 20, restore_best_weights). Writes the learning curves to `early_stopping.svg` in the
//! current directory, or to the path given as the first argument (.svg or .png).
//!
//! `cargo run --release --example early_stopping [-- curves.svg] [--cpu]`

use wgfit::{data, Dense, Device, EarlyStopping, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or("early_stopping.svg".into());
    let device = if args.iter().any(|a| a == "--cpu") { Device::cpu() } else { Device::gpu()? };
    println!("device: {:?}", device.info());

    let (x_train, y_train, x_valid, y_valid) = data::shipped::concrete()?;

    let early_stopping = EarlyStopping::new()
        .min_delta(0.001) // minimum amount of change to count as an improvement
        .patience(20) // how many epochs to wait before stopping
        .restore_best_weights(true);

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

    let started = std::time::Instant::now();
    let history = model.fit(
        &x_train,
        &y_train,
        Fit::new()
            .validation_data(&x_valid, &y_valid)
            .batch_size(256)
            .epochs(500)
            .callback(early_stopping) // put your callbacks in a list
            .verbose(0), // turn off training log
    )?;
    let ms = started.elapsed().as_secs_f64() * 1e3 / history.epochs() as f64;

    let best = history.best_epoch.unwrap_or(history.epochs() - 1);
    match history.stopped_epoch {
        Some(e) => println!("stopped at epoch {} of 500 (best epoch {})", e + 1, best + 1),
        None => println!("ran all {} epochs (best epoch {})", history.epochs(), best + 1),
    }
    println!("Minimum validation loss: {:.4}", history["val_loss"][best]);
    println!("{ms:.1} ms/epoch");
    history.plot(&out)?;
    println!("learning curves: {out}");
    Ok(())
}

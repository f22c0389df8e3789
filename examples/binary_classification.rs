//! The course's binary classification example (section 6.3) on the shipped ionosphere data:
//! 33 -> Dense(4, relu) -> Dense(4, relu) -> Dense(1, sigmoid), adam, binary_crossentropy,
//! batch 512, up to 1000 epochs with EarlyStopping(patience 10, min_delta 0.001,
//! restore_best_weights). Writes the learning curves to `binary_classification.svg` in the current
//! directory, or to the path given as the first argument (.svg or .png).
//!
//! `cargo run --release --example binary_classification [-- curves.svg] [--cpu]`

use wgfit::{data, Dense, Device, EarlyStopping, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or("binary_classification.svg".into());
    let device = if args.iter().any(|a| a == "--cpu") { Device::cpu() } else { Device::gpu()? };
    let seed: u64 = std::env::var("WGFIT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    println!("device: {:?}", device.info());

    let (x_train, y_train, x_valid, y_valid) = data::shipped::ionosphere()?;
    let mut model = Sequential::new(
        &device,
        vec![
            Dense::new(4).activation("relu").input_shape(33),
            Dense::new(4).activation("relu"),
            Dense::new(1).activation("sigmoid"),
        ],
    )
    .seed(seed);
    model.compile("adam", "binary_crossentropy", &["binary_accuracy"])?;
    let early_stopping = EarlyStopping::new().patience(10).min_delta(0.001).restore_best_weights(true);

    let started = std::time::Instant::now();
    let history = model.fit(
        &x_train,
        &y_train,
        Fit::new()
            .validation_data(&x_valid, &y_valid)
            .batch_size(512)
            .epochs(1000)
            .callback(early_stopping)
            .seed(seed)
            .verbose(0), // hide the output because we have so many epochs
    )?;
    let ms = started.elapsed().as_secs_f64() * 1e3 / history.epochs() as f64;

    let best = history.best_epoch.unwrap_or(history.epochs() - 1);
    match history.stopped_epoch {
        Some(e) => println!("stopped at epoch {} of 1000 (best epoch {})", e + 1, best + 1),
        None => println!("ran all {} epochs (best epoch {})", history.epochs(), best + 1),
    }
    println!(
        "Best Validation Loss: {:.4}, Best Validation Accuracy: {:.4}",
        history["val_loss"][best], history["val_binary_accuracy"][best]
    );
    println!("{ms:.2} ms/epoch");
    history.plot(&out)?;
    println!("learning curves: {out}");
    Ok(())
}

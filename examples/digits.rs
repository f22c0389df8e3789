//! The multi-class quality bar against Keras: digits (64 inputs, 10 classes) on the shipped split,
//! 64 relu -> 64 relu -> 10 softmax, Adam, sparse categorical cross-entropy, batch 32, 30 epochs
//! (tools/keras_digits.py runs the same in Keras 3). Prints the final validation accuracy per
//! seed and device, and writes the History of the first seed as JSON to `$DIGITS_HISTORY` if set.
//! Usage: `cargo run --release --example digits -- [gpu|cpu|both] [seeds]`

use wgfit::{data, Dense, Device, Fit, Sequential};

fn main() -> wgfit::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let devices = match args.get(1).map_or("both", String::as_str) {
        "gpu" => vec![Device::gpu()?],
        "cpu" => vec![Device::cpu()],
        _ => vec![Device::gpu()?, Device::cpu()],
    };
    let seeds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (xt, yt, xv, yv) = data::shipped::digits()?;
    for device in &devices {
        let name = if device.is_gpu() { "gpu" } else { "cpu" };
        let mut accs = Vec::new();
        let t = std::time::Instant::now();
        for seed in 0..seeds {
            let mut m = Sequential::new(
                device,
                vec![
                    Dense::new(64).activation("relu").input_shape(64),
                    Dense::new(64).activation("relu"),
                    Dense::new(10).activation("softmax"),
                ],
            )
            .seed(seed);
            m.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
            let fit = Fit::new().validation_data(&xv, &yv).batch_size(32).epochs(30).seed(seed).verbose(0);
            let h = m.fit(&xt, &yt, fit)?;
            let acc = *h["val_accuracy"].last().unwrap_or(&f32::NAN);
            println!(
                "digits {name} seed {seed}: val_accuracy {acc:.4}, val_loss {:.4}",
                h["val_loss"].last().unwrap_or(&f32::NAN)
            );
            accs.push(acc);
            if seed == 0 && !device.is_gpu() {
                if let Ok(path) = std::env::var("DIGITS_HISTORY") {
                    h.save_json(&path)?;
                }
            }
        }
        let mean = accs.iter().sum::<f32>() / accs.len() as f32;
        let sd = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (accs.len().max(2) - 1) as f32).sqrt();
        println!(
            "digits {name}: val accuracy {mean:.4} ± {sd:.4} over {seeds} seeds [{:.1}s]",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

//! The quality bar against Keras on the course's splits (issue figures: Keras reaches val MAE
//! 4.79 ± 0.11 on concrete after 100 epochs, val accuracy 0.798 ± 0.05 on ionosphere after 200).
//! Usage: `cargo run --release --example quality -- [concrete|ionosphere|both] [gpu|cpu|both] [seeds]`

use wgfit::{data, Dense, Device, Fit, Sequential};

fn stats(v: &[f32]) -> (f32, f32, f32) {
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / (v.len().max(2) - 1) as f32).sqrt();
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    (mean, sd, s[s.len() / 2])
}

fn main() -> wgfit::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("both", String::as_str);
    let devices = match args.get(2).map_or("both", String::as_str) {
        "gpu" => vec![Device::gpu()?],
        "cpu" => vec![Device::cpu()],
        _ => vec![Device::gpu()?, Device::cpu()],
    };
    let seeds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    for device in &devices {
        let name = if device.is_gpu() { "gpu" } else { "cpu" };
        if which != "ionosphere" {
            let (xt, yt, xv, yv) = data::shipped::concrete()?;
            let mut maes = Vec::new();
            let t = std::time::Instant::now();
            for seed in 0..seeds {
                let mut m = Sequential::new(
                    device,
                    vec![
                        Dense::new(512).activation("relu").input_shape(8),
                        Dense::new(512).activation("relu"),
                        Dense::new(512).activation("relu"),
                        Dense::new(1),
                    ],
                )
                .seed(seed);
                m.compile("adam", "mae", &[])?;
                let h = m.fit(
                    &xt,
                    &yt,
                    Fit::new().validation_data(&xv, &yv).batch_size(256).epochs(100).seed(seed).verbose(0),
                )?;
                maes.push(*h["val_loss"].last().unwrap_or(&f32::NAN));
            }
            let (mean, sd, median) = stats(&maes);
            println!(
                "concrete {name}: final val MAE {mean:.3} ± {sd:.3} (median {median:.3}) over {seeds} seeds {maes:.3?} [{:.1}s]; Keras 4.79 ± 0.11",
                t.elapsed().as_secs_f64()
            );
        }
        if which != "concrete" {
            let (xt, yt, xv, yv) = data::shipped::ionosphere()?;
            let mut accs = Vec::new();
            let t = std::time::Instant::now();
            for seed in 0..seeds {
                let mut m = Sequential::new(
                    device,
                    vec![
                        Dense::new(4).activation("relu").input_shape(33),
                        Dense::new(4).activation("relu"),
                        Dense::new(1).activation("sigmoid"),
                    ],
                )
                .seed(seed);
                m.compile("adam", "binary_crossentropy", &["binary_accuracy"])?;
                let h = m.fit(
                    &xt,
                    &yt,
                    Fit::new().validation_data(&xv, &yv).batch_size(512).epochs(200).seed(seed).verbose(0),
                )?;
                accs.push(*h["val_binary_accuracy"].last().unwrap_or(&f32::NAN));
            }
            let (mean, sd, median) = stats(&accs);
            println!(
                "ionosphere {name}: final val accuracy {mean:.3} ± {sd:.3} (median {median:.3}) over {seeds} seeds {accs:.3?} [{:.1}s]; Keras 0.798 ± 0.05",
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

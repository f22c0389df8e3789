//! `wgfit` with no command: the course's concrete-strength model with early stopping.

use std::path::Path;
use std::time::Instant;

use wgfit::{data, Dense, Device, EarlyStopping, Fit, Sequential};

use crate::CliResult;

/// The course's concrete model: 8 -> 512 relu x3 -> 1, adam, mae, batch 256, early stopping.
pub(crate) fn demo(started: Instant) -> CliResult<()> {
    eprintln!(
        "wgfit demo: the concrete-strength model (8 -> 512 relu x3 -> 1, adam, mae, batch 256) with early stopping"
    );
    eprintln!("(run `wgfit --help` for the command-line tool)");
    let (device, why) = Device::auto();
    eprintln!("device: {why}");
    if !device.is_gpu() {
        eprintln!("(the GPU path: `wgfit train --device gpu ...`, or Device::gpu() in Rust, runs on any adapter)");
    }
    let (xt, yt, xv, yv) = data::shipped::concrete()?;
    let mut model = Sequential::new(
        &device,
        vec![
            Dense::new(512).activation("relu").input_shape(8),
            Dense::new(512).activation("relu"),
            Dense::new(512).activation("relu"),
            Dense::new(1),
        ],
    );
    model.compile("adam", "mae", &["mae"])?;
    eprint!("{}", model.summary());
    let early =
        EarlyStopping::new().monitor("val_loss").min_delta(0.001).patience(20).restore_best_weights(true).verbose(true);
    let fit_started = Instant::now();
    let history = model.fit(
        &xt,
        &yt,
        Fit::new().validation_data(&xv, &yv).batch_size(256).epochs(500).verbose(2).callback(early),
    )?;
    let secs = fit_started.elapsed().as_secs_f64();
    let best = history.best_epoch;
    let vl = history.get("val_loss").unwrap_or(&[]);
    let min_vl = vl.iter().copied().fold(f32::INFINITY, f32::min);
    println!(
        "trained {} epochs in {secs:.1}s ({:.0} ms/epoch) on {}; best epoch {}; minimum validation loss (MAE, MPa): {min_vl:.4}",
        history.epochs(),
        secs * 1e3 / history.epochs().max(1) as f64,
        device.info().adapter,
        best.map_or("-".into(), |b| (b + 1).to_string()),
    );
    let plot = Path::new("concrete_learning_curves.svg");
    history.plot(plot)?;
    println!("learning curves written to {} (total {:.1}s)", plot.display(), started.elapsed().as_secs_f64());
    Ok(())
}

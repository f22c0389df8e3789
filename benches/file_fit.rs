//! The cost of training from a file (`DataFile`, `Sequential::fit_file`) against the same table
//! fit in memory, on data that fits: W1's data (concrete.csv, 1030 x 8) repeated to a few MB.
//!
//! `cargo bench --bench file_fit -- <cpu|gpu> [repeats] [w1|tiny] [epochs] [rounds]`
//! (defaults: cpu 100 w1 3 3). Each round times one in-memory fit and one file-backed fit of
//! fresh models with the same seed, alternating which goes first; the first epoch of each fit is
//! a warm-up and not counted. Prints each fit's ms per epoch (median of epochs 2..N) and the
//! file's overhead per round; also the time to read the table and to open the `DataFile`.
//! `w1`: W1's 8 -> 512 x 3 -> 1 model (compute-bound); `tiny`: 8 -> 16 -> 1 (data-bound);
//! `sweep`: 16 `tiny` models of 4 learning rates and 4 seeds, `Sweep::fit` against
//! `Sweep::fit_file` (every member reads its own rows; whole fits timed, the warm-up included).

use std::time::Instant;

use wgfit::data::{DataFile, Table};
use wgfit::testing::EpochTimes;
use wgfit::{Adam, Dense, Device, Fit, Member, Sequential, Sweep};

fn settings(times: &mut EpochTimes, epochs: usize) -> Fit<'_> {
    Fit::new().batch_size(256).epochs(epochs).seed(1).verbose(0).callback(times)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn model(device: &Device, kind: &str) -> Sequential {
    let layers = match kind {
        "tiny" => vec![Dense::new(16).activation("relu").input_shape(8), Dense::new(1)],
        _ => vec![
            Dense::new(512).activation("relu").input_shape(8),
            Dense::new(512).activation("relu"),
            Dense::new(512).activation("relu"),
            Dense::new(1),
        ],
    };
    let mut m = Sequential::new(device, layers);
    m.compile("adam", "mae", &[]).expect("compiles");
    m
}

fn main() -> wgfit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let device = match args.first().map(String::as_str) {
        Some("gpu") => {
            std::env::set_var("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
            Device::gpu()?
        }
        _ => Device::cpu(),
    };
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let kind = args.get(2).cloned().unwrap_or_else(|| "w1".into());
    let epochs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3).max(2);
    let rounds: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);

    let shipped = std::fs::read_to_string("data/concrete.csv")
        .map_err(|source| wgfit::Error::Io { path: "data/concrete.csv".into(), source })?;
    let mut lines = shipped.lines();
    let mut text = lines.next().unwrap_or_default().to_string() + "\n";
    let body: Vec<&str> = lines.collect();
    for _ in 0..repeats {
        for l in &body {
            text += l;
            text += "\n";
        }
    }
    let path = std::env::temp_dir().join(format!("wgfit-file-bench-{}.csv", std::process::id()));
    std::fs::write(&path, &text).map_err(|source| wgfit::Error::Io { path: path.clone(), source })?;

    let t = Instant::now();
    let (x, y) = Table::read_csv(&path)?.features_target(None)?;
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let file = DataFile::open(&path, None)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "{} rows ({:.1} MB of CSV, {:.1} MB of f32 features), {kind} model, {} on {}; Table::read_csv {read_ms:.0} ms, \
         DataFile::open {open_ms:.0} ms",
        x.rows(),
        text.len() as f64 / 1e6,
        (x.rows() * x.cols() * 4) as f64 / 1e6,
        epochs,
        device.info().adapter
    );
    if kind == "sweep" {
        sweep_rounds(&device, &x, &y, &file, epochs, rounds)?;
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let mut ratios = Vec::new();
    let (mut all_memory, mut all_file) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut memory = EpochTimes::default();
        let mut from_file = EpochTimes::default();
        for first in [round % 2 == 0, round % 2 == 1] {
            if first {
                model(&device, &kind).fit(&x, &y, settings(&mut memory, epochs))?;
            } else {
                model(&device, &kind).fit_file(&file, settings(&mut from_file, epochs))?;
            }
        }
        let (m, f) = (median(&memory.ms[1..]), median(&from_file.ms[1..]));
        ratios.push(f / m);
        all_memory.extend_from_slice(&memory.ms[1..]);
        all_file.extend_from_slice(&from_file.ms[1..]);
        println!(
            "round {round} ({} first): in memory {m:.1} ms/epoch, from the file {f:.1} ms/epoch: {:+.1}%",
            if round % 2 == 0 { "memory" } else { "file" },
            (f / m - 1.0) * 100.0
        );
    }
    println!(
        "median over {rounds} rounds: in memory {:.1} ms/epoch, from the file {:.1} ms/epoch; median of the \
         rounds' ratios {:+.1}%",
        median(&all_memory),
        median(&all_file),
        (median(&ratios) - 1.0) * 100.0
    );
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// 16 small models trained together, in memory and from the file, alternating which goes first;
/// prints each whole fit's seconds and the file's overhead per round.
fn sweep_rounds(
    device: &Device,
    x: &wgfit::Matrix,
    y: &wgfit::Matrix,
    file: &DataFile,
    epochs: usize,
    rounds: usize,
) -> wgfit::Result<()> {
    let sweep = || {
        Sweep::from_fn(16, |i| {
            let layers = vec![Dense::new(16).activation("relu").input_shape(8), Dense::new(1)];
            let mut m = Sequential::new(device, layers).seed((i / 4) as u64);
            m.compile(Adam::new([1e-3, 3e-3, 1e-2, 3e-2][i % 4]), "mae", &[])?;
            Ok(Member::new(m))
        })
    };
    let fit = || Fit::new().batch_size(256).epochs(epochs).verbose(0);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (mut memory, mut from_file) = (0.0, 0.0);
        for first in [round % 2 == 0, round % 2 == 1] {
            let t = Instant::now();
            if first {
                sweep()?.fit(x, y, fit())?;
                memory = t.elapsed().as_secs_f64();
            } else {
                sweep()?.fit_file(file, fit())?;
                from_file = t.elapsed().as_secs_f64();
            }
        }
        ratios.push(from_file / memory);
        println!(
            "round {round}: 16 models x {epochs} epochs in memory {memory:.2} s, from the file {from_file:.2} s: {:+.1}%",
            (from_file / memory - 1.0) * 100.0
        );
    }
    println!("median of the rounds' ratios {:+.1}%", (median(&ratios) - 1.0) * 100.0);
    Ok(())
}

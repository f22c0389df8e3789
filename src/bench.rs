//! The benchmark workloads W1..W4 of `benches/WORKLOADS.md` (a copy of shared/peers/WORKLOADS.md),
//! run on the GPU and CPU paths.
//! `cargo bench --bench train` prints their table; a `wgfit bench` command can call [`run`] and
//! print [`table`] or the records as JSON. Not a stable API.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::{BatchNormalization, Dense, Device, Dropout, Error, Fit, Layer, Matrix, Result, Sequential};

/// One workload on one device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Record {
    pub workload: String,
    /// "gpu" or "cpu".
    pub device: String,
    pub adapter: String,
    /// Device + pipeline creation + the first epoch, in seconds.
    pub startup_s: f64,
    /// Median of the timed epochs (epochs 2..N).
    pub ms_per_epoch: f64,
    pub samples_per_s: f64,
    /// 6 x params x training samples per epoch / time.
    pub gflops: f64,
    /// Timed epochs (after the first).
    pub epochs: usize,
    pub train_rows: usize,
    pub params: usize,
    /// The last epoch's validation value (W1: val_mae, W2/W4: val_accuracy / val_loss), when any.
    pub final_metric: Option<f32>,
    /// What differs from the workload's definition, if anything.
    pub note: String,
}

/// Knobs, from the environment by default: `WGFIT_BENCH_EPOCHS` (timed epochs, default per workload),
/// `WGFIT_BENCH_SECONDS` (stop timing a workload after this long, default 20),
/// `WGFIT_BENCH_W3_ROWS` (rows of W3's synthetic data, default 65536).
#[derive(Clone, Debug)]
pub struct Options {
    pub epochs: Option<usize>,
    pub seconds: f64,
    pub w3_rows: usize,
}

impl Options {
    pub fn from_env() -> Options {
        let get = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<f64>().ok());
        Options {
            epochs: get("WGFIT_BENCH_EPOCHS").map(|v| v.max(1.0) as usize),
            seconds: get("WGFIT_BENCH_SECONDS").unwrap_or(20.0),
            w3_rows: get("WGFIT_BENCH_W3_ROWS").map_or(65536, |v| v.max(1024.0) as usize),
        }
    }
}

/// The workload names, in order: the one list the `wgfit bench` command and its errors use.
pub const WORKLOADS: [&str; 4] = ["W1", "W2", "W3", "W4"];

struct Spec {
    layers: Vec<Layer>,
    loss: &'static str,
    metrics: Vec<&'static str>,
    watch: &'static str,
    batch: usize,
    epochs: usize,
    data: Data,
    note: String,
}

/// Trainable parameters of `layers` on `input` features.
fn params_of(layers: &[Layer], input: usize) -> usize {
    let mut width = input;
    let mut n = 0usize;
    for l in layers {
        n = n.saturating_add(crate::layers::count_weights(&l.spec().weights(width)).0);
        width = l.output_width(width);
    }
    n
}

/// Training x, y and the validation pair, if any.
type Data = (Matrix, Matrix, Option<(Matrix, Matrix)>);

fn spec(name: &str, opts: &Options) -> Result<Spec> {
    let ion = || -> Result<Data> {
        let (x, y, vx, vy) = crate::data::shipped::ionosphere()?;
        Ok((x, y, Some((vx, vy))))
    };
    let small = || {
        vec![
            Dense::new(4).activation("relu").input_shape(33),
            Dense::new(4).activation("relu"),
            Dense::new(1).activation("sigmoid"),
        ]
    };
    Ok(match name {
        "W1" => {
            let (x, y, vx, vy) = crate::data::shipped::concrete()?;
            Spec {
                layers: vec![
                    Dense::new(512).activation("relu").input_shape(8),
                    Dense::new(512).activation("relu"),
                    Dense::new(512).activation("relu"),
                    Dense::new(1),
                ],
                loss: "mae",
                metrics: vec!["mae"],
                watch: "val_mae",
                batch: 256,
                epochs: 100,
                data: (x, y, Some((vx, vy))),
                note: String::new(),
            }
        }
        "W2" => Spec {
            layers: small(),
            loss: "binary_crossentropy",
            metrics: vec!["binary_accuracy"],
            watch: "val_binary_accuracy",
            batch: 512,
            epochs: 200,
            data: ion()?,
            note: String::new(),
        },
        "W4" => Spec {
            layers: small(),
            loss: "binary_crossentropy",
            metrics: vec![],
            watch: "val_loss",
            batch: 512,
            epochs: 1000,
            data: ion()?,
            note: String::new(),
        },
        "W3" => {
            let rows = opts.w3_rows;
            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            let mut x = vec![0.0f32; rows * 256];
            let mut y = vec![0.0f32; rows];
            for r in 0..rows {
                let row = &mut x[r * 256..(r + 1) * 256];
                for v in row.iter_mut() {
                    *v = rng.random_range(-1.0..1.0);
                }
                y[r] = row[..8].iter().sum::<f32>().sin();
            }
            let note = if rows == 65536 {
                String::new()
            } else {
                format!("W3 on {rows} of 65536 rows (WGFIT_BENCH_W3_ROWS); samples/s and GFLOP/s are comparable")
            };
            Spec {
                layers: vec![
                    Dense::new(1024).activation("relu").input_shape(256),
                    BatchNormalization::new(),
                    Dropout::new(0.3),
                    Dense::new(1024).activation("relu"),
                    BatchNormalization::new(),
                    Dropout::new(0.3),
                    Dense::new(1024).activation("relu"),
                    Dense::new(1),
                ],
                loss: "mse",
                metrics: vec![],
                watch: "loss",
                batch: 1024,
                epochs: 3,
                data: (Matrix::new(rows, 256, x)?, Matrix::new(rows, 1, y)?, None),
                note,
            }
        }
        other => {
            return Err(Error::UnknownName { kind: "workload", name: other.to_string(), valid: WORKLOADS.join(", ") })
        }
    })
}

fn open(device: &str) -> Result<Device> {
    match device {
        "gpu" => Device::gpu(),
        "cpu" => Ok(Device::cpu()),
        other => Err(Error::UnknownName { kind: "device", name: other.to_string(), valid: "gpu, cpu".into() }),
    }
}

/// Records when each epoch ends (an epoch's time is the gap to the previous end).
struct EpochClock {
    ends: std::rc::Rc<std::cell::RefCell<Vec<Instant>>>,
    /// Stop once this long has passed since the first epoch's end (at least two epochs timed).
    budget: Option<Duration>,
}

impl crate::callbacks::Callback for EpochClock {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut crate::callbacks::Logs,
        ctx: &mut crate::callbacks::TrainContext,
    ) -> Result<()> {
        let mut ends = self.ends.borrow_mut();
        ends.push(Instant::now());
        if let (Some(budget), Some(first)) = (self.budget, ends.first()) {
            if ends.len() >= 3 && first.elapsed() >= budget {
                ctx.stop_training("bench time budget (WGFIT_BENCH_SECONDS)");
            }
        }
        Ok(())
    }
}

/// Runs one workload on one device ("gpu" or "cpu"): one fit of 1 + N epochs; the first epoch
/// (with device and pipeline creation) is the startup, the median of the others the steady time.
pub fn run_one(workload: &str, device: &str, opts: &Options) -> Result<Record> {
    let s = spec(workload, opts)?;
    let started = Instant::now();
    let dev = open(device)?;
    let info = dev.info();
    let (x, y, valid) = &s.data;
    let params = params_of(&s.layers, x.cols());
    let mut model = Sequential::new(&dev, s.layers.clone());
    model.compile("adam", s.loss, &s.metrics)?;
    let ends = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let want = opts.epochs.unwrap_or(s.epochs.saturating_sub(1)).max(1);
    let mut note = s.note.clone();
    if let Some(cap) = std::env::var("WGFIT_MAX_DATA_BYTES").ok().filter(|_| dev.is_gpu()) {
        // Comparisons of streamed data against a whole upload run the same workload both ways.
        note = join(&note, &format!("data streamed in chunks of at most {cap} bytes (WGFIT_MAX_DATA_BYTES)"));
    }
    // The timed fit ends itself when the time budget is spent (not W4, whose early stopping is
    // the workload): the first epoch's time, compile time included, says nothing about the rest.
    let budget = (workload != "W4").then(|| Duration::from_secs_f64(opts.seconds));
    let mut f = Fit::new().batch_size(s.batch).verbose(0).callback(EpochClock { ends: ends.clone(), budget });
    if let Some((vx, vy)) = valid {
        f = f.validation_data(vx, vy);
    }
    if workload == "W4" {
        f = f.callback(
            crate::callbacks::EarlyStopping::new()
                .monitor("val_loss")
                .patience(10)
                .min_delta(0.001)
                .restore_best_weights(true),
        );
    }
    // The first epoch (device and pipeline creation, uploads) is the startup.
    let mut probe = Fit::new().epochs(1).batch_size(s.batch).verbose(0);
    if let Some((vx, vy)) = valid {
        probe = probe.validation_data(vx, vy);
    }
    model.fit(x, y, probe)?;
    let startup_s = started.elapsed().as_secs_f64();
    // The timed fit: epoch i's time is the gap between the ends of epochs i-1 and i.
    f.epochs = Some(1 + want.max(2));
    let fit_start = Instant::now();
    let h = model.fit(x, y, f)?;
    if workload != "W4" && h.epochs() < 1 + want.max(2) {
        note = join(&note, &format!("{} of {want} epochs timed (WGFIT_BENCH_SECONDS)", h.epochs().saturating_sub(1)));
    }
    let ends = ends.borrow();
    let mut times: Vec<f64> = ends.windows(2).map(|w| w[1].duration_since(w[0]).as_secs_f64()).collect();
    if times.is_empty() {
        times.push(fit_start.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let rows = x.rows();
    if workload == "W4" {
        note = join(
            &note,
            &format!(
                "{} epochs run, best epoch {:?}, wall {:.3} s",
                h.epochs(),
                h.best_epoch.map(|e| e + 1),
                fit_start.elapsed().as_secs_f64()
            ),
        );
    }
    Ok(Record {
        workload: workload.to_string(),
        device: device.to_string(),
        adapter: info.adapter,
        startup_s,
        ms_per_epoch: median * 1e3,
        samples_per_s: rows as f64 / median,
        gflops: 6.0 * params as f64 * rows as f64 / median / 1e9,
        epochs: times.len(),
        train_rows: rows,
        params,
        final_metric: h.last(s.watch),
        note,
    })
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}; {b}")
    }
}

/// Runs every named workload on every named device, GPU/CPU pairs next to each other.
/// A device that cannot be opened gives no records (the error is printed to stderr).
pub fn run(workloads: &[&str], devices: &[&str]) -> Result<Vec<Record>> {
    let opts = Options::from_env();
    let mut out = Vec::new();
    for w in workloads {
        for d in devices {
            match run_one(w, d, &opts) {
                Ok(r) => out.push(r),
                Err(e @ Error::NoAdapter { .. }) => eprintln!("{w} on {d}: skipped: {e}"),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// The records as one table (markdown), with the GPU/CPU ratio of ms/epoch per workload.
pub fn table(records: &[Record]) -> String {
    let mut s = String::from(
        "| workload | device | startup s | ms/epoch | samples/s | GFLOP/s | GPU/CPU time | epochs timed | final |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in records {
        let ratio = match (r.device.as_str(), records.iter().find(|o| o.workload == r.workload && o.device == "cpu")) {
            ("gpu", Some(c)) => format!("{:.2}", r.ms_per_epoch / c.ms_per_epoch),
            _ => String::new(),
        };
        s += &format!(
            "| {} | {} | {:.2} | {:.3} | {:.0} | {:.2} | {} | {} | {} |\n",
            r.workload,
            r.device,
            r.startup_s,
            r.ms_per_epoch,
            r.samples_per_s,
            r.gflops,
            ratio,
            r.epochs,
            r.final_metric.map_or(String::new(), |v| format!("{v:.4}")),
        );
    }
    let adapters: Vec<String> = records.iter().filter(|r| r.device == "gpu").map(|r| r.adapter.clone()).collect();
    if let Some(a) = adapters.first() {
        s += &format!("\nGPU adapter: {a}\n");
    }
    for r in records.iter().filter(|r| !r.note.is_empty()) {
        s += &format!("note {} {}: {}\n", r.workload, r.device, r.note);
    }
    s
}

/// The sweeps of benches/WORKLOADS.md: K models of one shape, model i with learning rate
/// [3e-4, 1e-3, 3e-3, 1e-2][i mod 4] and seed i div 4, trained together as one [`crate::Sweep`].
pub const SWEEPS: [&str; 2] = ["S1", "S2"];

/// One sweep on one device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SweepRecord {
    pub sweep: String,
    pub device: String,
    pub adapter: String,
    pub models: usize,
    pub epochs: usize,
    /// The whole sweep, setup included (building the models, uploading, every epoch).
    pub wall_s: f64,
    pub model_epochs_per_s: f64,
    /// Device memory of the plan, in bytes.
    pub device_bytes: usize,
    pub plans: usize,
    /// Median and best over the models of their best validation value (accuracy for S1, MAE for S2).
    pub quality_median: f32,
    pub quality_best: f32,
    pub quality: String,
}

/// Runs sweep `name` with `models` models on `device` ("gpu" or "cpu"); `Options::epochs`
/// (WGFIT_BENCH_EPOCHS) replaces the sweep's epoch count when set.
pub fn run_sweep(name: &str, device: &str, models: usize, opts: &Options) -> Result<SweepRecord> {
    const LRS: [f32; 4] = [3e-4, 1e-3, 3e-3, 1e-2];
    let (data, hidden, binary, batch, epochs) = match name {
        "S1" => (crate::data::shipped::ionosphere()?, 16, true, 32, 100),
        "S2" => (crate::data::shipped::concrete()?, 128, false, 64, 50),
        other => return Err(Error::invalid("sweep", other, format!("one of {}", SWEEPS.join(", ")))),
    };
    let epochs = opts.epochs.unwrap_or(epochs);
    let (xt, yt, xv, yv) = data;
    let dev = open(device)?;
    let started = Instant::now();
    let mut sweep = crate::Sweep::from_fn(models, |i| {
        let out = if binary { "sigmoid" } else { "linear" };
        let layers = vec![
            Dense::new(hidden).activation("relu").input_shape(xt.cols()),
            Dense::new(hidden).activation("relu"),
            Dense::new(1).activation(out),
        ];
        let mut m = Sequential::new(&dev, layers).seed((i / 4) as u64);
        let (loss, metric) = if binary { ("binary_crossentropy", "accuracy") } else { ("mae", "mae") };
        m.compile(crate::Adam::new(LRS[i % 4]), loss, &[metric])?;
        Ok(crate::Member::new(m))
    })?;
    let built_s = started.elapsed().as_secs_f64();
    let report =
        sweep.fit(&xt, &yt, Fit::new().epochs(epochs).batch_size(batch).verbose(0).validation_data(&xv, &yv))?;
    let wall_s = started.elapsed().as_secs_f64();
    if std::env::var("WGFIT_BENCH_VERBOSE").is_ok() {
        eprintln!("{name} {device}: models built in {built_s:.3}s, fit {:.3}s", wall_s - built_s);
    }
    let key = if binary { "val_accuracy" } else { "val_mae" };
    let board = report.leaderboard(key)?;
    let mut best: Vec<f32> = board.iter().map(|r| r.best).collect();
    best.sort_by(f32::total_cmp);
    Ok(SweepRecord {
        sweep: name.into(),
        device: device.into(),
        adapter: dev.info().adapter,
        models,
        epochs,
        wall_s,
        model_epochs_per_s: (models * epochs) as f64 / wall_s,
        device_bytes: report.device_bytes,
        plans: report.plans,
        quality_median: best[best.len() / 2],
        quality_best: board.first().map_or(f32::NAN, |r| r.best),
        quality: if binary { "best val accuracy" } else { "best val MAE" }.into(),
    })
}

/// Sweep records as one table (markdown).
pub fn sweep_table(records: &[SweepRecord]) -> String {
    let mut s = String::from(
        "| sweep | device | models | epochs | wall s | model-epochs/s | device MiB | quality (median / best) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in records {
        s += &format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {} {:.4} / {:.4} |\n",
            r.sweep,
            r.device,
            r.models,
            r.epochs,
            r.wall_s,
            r.model_epochs_per_s,
            r.device_bytes as f64 / (1024.0 * 1024.0),
            r.quality,
            r.quality_median,
            r.quality_best
        );
    }
    s
}

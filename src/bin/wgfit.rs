//! `wgfit`: train, evaluate and use dense networks on CSV files from the shell.
//!
//! With no arguments it runs the demo: the course's concrete-strength model with early stopping.
//! Exit codes: 0 success, 2 usage error, 1 any other error (one line on stderr).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};
use wgfit::data::{CsvOptions, Preprocessor, RawTable, ScaleKind};
use wgfit::{
    data, io, Adam, BatchNormalization, Dense, Device, Dropout, EarlyStopping, Fit, History, Layer, Matrix, Optimizer,
    Sequential, Sgd,
};

#[derive(Parser)]
#[command(
    name = "wgfit",
    version,
    about = "Train Keras-style dense networks on CSV data, on any GPU (wgpu) or the CPU.",
    after_help = "With no command, runs the demo: the course's concrete model with early stopping on the shipped data."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// Train a model on a CSV file (header row; target = last column unless --target).
    Train(TrainArgs),
    /// Loss and metrics of a saved model on a CSV file with the target column.
    Evaluate {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = ["gpu", "cpu"])]
        device: Option<String>,
        /// Print one JSON object on stdout: {"loss": .., "<metric>": ..}.
        #[arg(long)]
        json: bool,
    },
    /// Predictions of a saved model for every row of a CSV file (the target column may be absent).
    Predict {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Write the predictions to this CSV file (default: stdout).
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long, value_parser = ["gpu", "cpu"])]
        device: Option<String>,
    },
    /// The benchmark workloads of BENCHMARKS.md (W1-W4) on the GPU and CPU paths, as one table.
    Bench {
        /// Comma-separated workloads.
        #[arg(long, default_value = "W1,W2,W3,W4", value_delimiter = ',')]
        workloads: Vec<String>,
        /// gpu, cpu or both.
        #[arg(long, default_value = "both", value_parser = ["gpu", "cpu", "both"])]
        device: String,
        /// Print one JSON array of records on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The layer table of a saved model, its compile settings and preprocessing.
    Summary {
        #[arg(long)]
        model: PathBuf,
    },
    /// List the GPU adapters wgpu sees; `*` marks the one that would be used.
    Devices {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Training CSV file.
    #[arg(long)]
    data: PathBuf,
    /// Target column (default: the last column).
    #[arg(long)]
    target: Option<String>,
    /// Columns to ignore, comma-separated.
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Text columns to one-hot encode (categories learned on the training rows), comma-separated.
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Hidden layer sizes, comma-separated ("none" for no hidden layer).
    #[arg(long, default_value = "512,512,512")]
    layers: String,
    /// Activation of the hidden layers.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Output activation (default: sigmoid for a 0/1 target, else linear).
    #[arg(long, value_parser = ["linear", "sigmoid"])]
    output: Option<String>,
    /// Dropout rate after every hidden layer.
    #[arg(long)]
    dropout: Option<f32>,
    /// BatchNormalization after every hidden layer (Dense -> BatchNorm -> Dropout).
    #[arg(long)]
    batchnorm: bool,
    /// Loss (default: binary_crossentropy for a 0/1 target, else mae).
    #[arg(long)]
    loss: Option<String>,
    /// Metrics, comma-separated (default: binary_accuracy for a 0/1 target, else mae).
    #[arg(long, value_delimiter = ',')]
    metrics: Option<Vec<String>>,
    #[arg(long, default_value = "adam", value_parser = ["adam", "sgd"])]
    optimizer: String,
    /// Learning rate (default: Keras's, 0.001 for adam, 0.01 for sgd).
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f32>,
    /// Early stopping: epochs without improvement of val_loss (loss without validation data).
    #[arg(long)]
    patience: Option<usize>,
    /// Early stopping: smallest change that counts as an improvement.
    #[arg(long, default_value_t = 0.0)]
    min_delta: f64,
    /// Early stopping: put back the best epoch's weights at the end.
    #[arg(long, default_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    restore_best: bool,
    /// Validation rows from a second CSV file with the same columns.
    #[arg(long, conflicts_with = "validation_split")]
    valid: Option<PathBuf>,
    /// Hold out the last fraction of the rows for validation (Keras's validation_split).
    #[arg(long)]
    validation_split: Option<f32>,
    /// Feature scaling fitted on the training rows.
    #[arg(long, default_value = "minmax", value_parser = ["minmax", "standard", "none"])]
    scale: String,
    /// gpu or cpu (default: the GPU, or the CPU with a notice when there is no adapter).
    #[arg(long, value_parser = ["gpu", "cpu"])]
    device: Option<String>,
    /// Seed of the initial weights, shuffles and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the learning curves (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Save the trained model (architecture, weights, preprocessing, compile settings) as JSON.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Print one JSON object with the results on stdout (everything else goes to stderr).
    #[arg(long)]
    json: bool,
    /// 0 silent, 1 progress, 2 one line per epoch.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    verbose: Option<u8>,
}

/// An error and its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<wgfit::Error> for Failure {
    fn from(e: wgfit::Error) -> Self {
        Failure { code: 1, message: e.to_string() }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

type CliResult<T> = std::result::Result<T, Failure>;

fn main() -> ExitCode {
    let started = Instant::now();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("wgfit: internal error (please report it): {}", msg.lines().next().unwrap_or(""));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or("usage error").trim_start_matches("error: ");
                    eprintln!("wgfit: {first} (see `wgfit --help`)");
                    ExitCode::from(2)
                }
            };
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, started)));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(f)) => {
            eprintln!("wgfit: error: {}", f.message.replace('\n', " "));
            ExitCode::from(f.code)
        }
        Err(_) => ExitCode::from(1),
    }
}

fn run(cli: Cli, started: Instant) -> CliResult<()> {
    match cli.command {
        None => demo(started),
        Some(Command::Train(args)) => train(args, started),
        Some(Command::Evaluate { model, data, device, json }) => evaluate(&model, &data, device.as_deref(), json),
        Some(Command::Predict { model, data, output, device }) => {
            predict(&model, &data, output.as_deref(), device.as_deref())
        }
        Some(Command::Summary { model }) => summary(&model),
        Some(Command::Devices { json }) => devices(json),
        Some(Command::Bench { workloads, device, json }) => bench(&workloads, &device, json),
    }
}

/// Runs the benchmark workloads (time budgets and W3's size: see BENCHMARKS.md's WGFIT_BENCH_* knobs).
fn bench(workloads: &[String], device: &str, json: bool) -> CliResult<()> {
    const KNOWN: [&str; 4] = ["W1", "W2", "W3", "W4"];
    let workloads: Vec<String> = workloads.iter().map(|w| w.trim().to_ascii_uppercase()).collect();
    if let Some(w) = workloads.iter().find(|w| !KNOWN.contains(&w.as_str())) {
        return Err(usage(format!("unknown workload {w:?}; valid: {}", KNOWN.join(", "))));
    }
    let names: Vec<&str> = workloads.iter().map(String::as_str).collect();
    let devices: &[&str] = match device {
        "gpu" => &["gpu"],
        "cpu" => &["cpu"],
        _ => &["gpu", "cpu"],
    };
    let records = wgfit::bench::run(&names, devices)?;
    if json {
        return print_json(&serde_json::to_value(&records).map_err(|e| usage(e.to_string()))?);
    }
    let _ = writeln!(std::io::stdout().lock(), "{}", wgfit::bench::table(&records));
    Ok(())
}

/// The device for `--device`: gpu (an error without an adapter), cpu, or by default the GPU with a
/// fallback to the CPU and a notice.
fn pick_device(choice: Option<&str>) -> CliResult<Device> {
    match choice {
        Some("cpu") => Ok(Device::cpu()),
        Some(_) => Ok(Device::gpu()?),
        None => {
            let (device, why) = Device::gpu_or_cpu();
            if let Some(e) = why {
                eprintln!("wgfit: notice: no GPU adapter ({e}); training on the CPU path instead");
            }
            Ok(device)
        }
    }
}

fn device_json(device: &Device) -> Value {
    let info = device.info();
    json!({"kind": info.kind, "adapter": info.adapter, "backend": info.backend})
}

fn is_binary(y: &Matrix) -> bool {
    y.data().iter().all(|v| *v == 0.0 || *v == 1.0)
}

fn train(a: TrainArgs, started: Instant) -> CliResult<()> {
    if let Some(f) = a.validation_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(usage(format!("--validation-split must be in (0, 1), got {f}")));
        }
    }
    if a.momentum.is_some() && a.optimizer != "sgd" {
        return Err(usage("--momentum applies to --optimizer sgd only"));
    }
    if a.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    let hidden: Vec<usize> = match a.layers.trim() {
        "" | "none" => Vec::new(),
        s => s
            .split(',')
            .map(|u| u.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| usage(format!("--layers must be positive integers separated by commas, got {s:?}")))?,
    };
    let scale = ScaleKind::parse(&a.scale)?;

    let table = RawTable::read_csv(&a.data)?;
    let (train_raw, valid_raw) = match (&a.valid, a.validation_split) {
        (Some(path), _) => (table, Some(RawTable::read_csv(path)?)),
        (None, Some(f)) => {
            let (t, v) = table.split_last(f)?;
            (t, Some(v))
        }
        (None, None) => (table, None),
    };
    let opts = CsvOptions { target: a.target.clone(), drop: a.drop.clone(), categorical: a.categorical.clone(), scale };
    let pre = Preprocessor::fit(&train_raw, &opts)?;
    let (x, y) = pre.transform_xy(&train_raw)?;
    let valid = match &valid_raw {
        Some(v) => Some(pre.transform_xy(v)?),
        None => None,
    };
    eprintln!(
        "wgfit: {} training rows{}, {} inputs, target {:?}",
        x.rows(),
        valid.as_ref().map_or(String::new(), |(vx, _)| format!(", {} validation rows", vx.rows())),
        x.cols(),
        pre.target
    );

    // Defaults from the target.
    let binary = is_binary(&y);
    let loss = a.loss.clone().unwrap_or_else(|| if binary { "binary_crossentropy" } else { "mae" }.into());
    let bce = matches!(loss.trim().to_ascii_lowercase().as_str(), "binary_crossentropy" | "bce");
    let output = a.output.clone().unwrap_or_else(|| if bce { "sigmoid" } else { "linear" }.into());
    let metrics: Vec<String> =
        a.metrics.clone().unwrap_or_else(|| vec![if bce { "binary_accuracy" } else { "mae" }.to_string()]);
    if a.loss.is_none() || a.output.is_none() || a.metrics.is_none() {
        eprintln!(
            "wgfit: {} target: using a {output} output, {loss} loss and {} metrics (override with --output, --loss, --metrics)",
            if binary { "binary 0/1" } else { "numeric" },
            metrics.join(", ")
        );
    }

    let device = pick_device(a.device.as_deref())?;
    let mut layers: Vec<Layer> = Vec::new();
    for (i, units) in hidden.iter().enumerate() {
        let mut l = Dense::new(*units).activation(&a.activation);
        if i == 0 {
            l = l.input_shape(x.cols());
        }
        layers.push(l);
        if a.batchnorm {
            layers.push(BatchNormalization::new());
        }
        if let Some(rate) = a.dropout {
            layers.push(Dropout::new(rate));
        }
    }
    let mut out = Dense::new(1).activation(&output);
    if hidden.is_empty() {
        out = out.input_shape(x.cols());
    }
    layers.push(out);
    let optimizer: Optimizer = match a.optimizer.as_str() {
        "sgd" => Sgd {
            learning_rate: a.lr.unwrap_or(Sgd::default().learning_rate),
            momentum: a.momentum.unwrap_or(0.0),
            nesterov: false,
        }
        .into(),
        _ => Adam::new(a.lr.unwrap_or(Adam::default().learning_rate)).into(),
    };
    let mut model = Sequential::new(&device, layers).seed(a.seed);
    let metric_refs: Vec<&str> = metrics.iter().map(String::as_str).collect();
    model.compile(optimizer, loss.as_str(), &metric_refs)?;

    let mut fit = Fit::new().epochs(a.epochs).batch_size(a.batch_size).seed(a.seed);
    if let Some(v) = a.verbose {
        fit = fit.verbose(v);
    }
    if let Some((vx, vy)) = &valid {
        fit = fit.validation_data(vx, vy);
    }
    if let Some(patience) = a.patience {
        let monitor = if valid.is_some() { "val_loss" } else { "loss" };
        fit = fit.callback(
            EarlyStopping::new()
                .monitor(monitor)
                .patience(patience)
                .min_delta(a.min_delta)
                .restore_best_weights(a.restore_best)
                .verbose(true),
        );
    }
    let startup_s = started.elapsed().as_secs_f64();
    let fit_started = Instant::now();
    let history = model.fit(&x, &y, fit)?;
    let fit_s = fit_started.elapsed().as_secs_f64();
    let epochs_run = history.epochs();

    // In History order: loss, metrics, then val_ keys.
    let mut scores: Vec<(String, f32)> = model.evaluate(&x, &y)?;
    if let Some((vx, vy)) = &valid {
        scores.extend(model.evaluate(vx, vy)?.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
    }
    let fin: Map<String, Value> = scores.iter().map(|(k, v)| (k.clone(), json_f32(*v))).collect();
    if let Some(path) = &a.plot {
        history.plot(path)?;
        eprintln!("wgfit: learning curves written to {}", path.display());
    }
    if let Some(path) = &a.save {
        io::save_model(path, &mut model, Some(&pre))?;
        eprintln!("wgfit: model saved to {}", path.display());
    }
    let total_s = started.elapsed().as_secs_f64();
    let result = json!({
        "device": device_json(&device),
        "history": history_json(&history),
        "epochs_run": epochs_run,
        "best_epoch": history.best_epoch,
        "final": Value::Object(fin.clone()),
        "timing": {
            "total_s": total_s,
            "startup_s": startup_s,
            "ms_per_epoch": if epochs_run > 0 { fit_s * 1e3 / epochs_run as f64 } else { 0.0 },
        },
        "inputs": pre.input_names(),
        "target": pre.target,
        "saved": a.save.as_ref().map(|p| p.display().to_string()),
    });
    if a.json {
        print_json(&result)?;
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "trained {epochs_run} epochs on {} ({}) in {total_s:.2}s",
            device.info().adapter,
            device.info().backend
        );
        if let Some(b) = history.best_epoch {
            let _ = writeln!(out, "best epoch: {} (1-based)", b + 1);
        }
        for (k, v) in &scores {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    Ok(())
}

fn json_f32(v: f32) -> Value {
    if v.is_finite() {
        json!(v as f64)
    } else {
        Value::Null
    }
}

fn history_json(h: &History) -> Value {
    let mut m = Map::new();
    for k in h.keys() {
        m.insert(k.to_string(), Value::Array(h.get(k).unwrap_or(&[]).iter().map(|v| json_f32(*v)).collect()));
    }
    Value::Object(m)
}

fn print_json(v: &Value) -> CliResult<()> {
    let text = serde_json::to_string(v).map_err(|e| Failure { code: 1, message: e.to_string() })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })
}

/// Loads a model and its preprocessing (a model saved without one reads every column as a
/// number, the last being the target, unscaled).
fn load(path: &Path, device: Option<&str>) -> CliResult<(Sequential, Preprocessor)> {
    let device = pick_device(device)?;
    let loaded = io::load_model(path, &device)?;
    let pre = match loaded.preprocessor {
        Some(p) => p,
        None => {
            eprintln!(
                "wgfit: notice: the model has no saved preprocessing: reading every column as a number, unscaled"
            );
            Preprocessor {
                target: String::new(),
                dropped: Vec::new(),
                features: Vec::new(),
                scaler: data::Scaler::None,
            }
        }
    };
    Ok((loaded.model, pre))
}

/// The preprocessing for a table when the model file carried none.
fn resolve_pre(pre: Preprocessor, table: &RawTable, with_target: bool) -> CliResult<Preprocessor> {
    if !pre.features.is_empty() {
        return Ok(pre);
    }
    let target = table.columns.last().cloned().unwrap_or_default();
    let opts = CsvOptions { target: Some(target), scale: ScaleKind::None, ..CsvOptions::new() };
    let mut p = Preprocessor::fit(table, &opts)?;
    if !with_target {
        // Without a target column, every column is an input.
        p.features.push(data::Feature::Numeric { column: p.target.clone() });
    }
    Ok(p)
}

fn evaluate(model_path: &Path, data_path: &Path, device: Option<&str>, json: bool) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let table = RawTable::read_csv(data_path)?;
    let pre = resolve_pre(pre, &table, true)?;
    let (x, y) = pre.transform_xy(&table)?;
    let scores = model.evaluate(&x, &y)?;
    if json {
        let mut m = Map::new();
        for (k, v) in scores {
            m.insert(k, json_f32(v));
        }
        print_json(&Value::Object(m))?;
    } else {
        let mut out = std::io::stdout().lock();
        for (k, v) in scores {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    Ok(())
}

fn predict(model_path: &Path, data_path: &Path, output: Option<&Path>, device: Option<&str>) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let table = RawTable::read_csv(data_path)?;
    // Without saved preprocessing: a table one column wider than the model's input has a target last.
    let has_target = model.input_shape().is_some_and(|w| table.columns.len() > w);
    let pre = resolve_pre(pre, &table, has_target)?;
    let x = pre.transform_x(&table)?;
    let preds = model.predict(&x)?;
    let mut text = String::new();
    let cols = preds.cols();
    let header: Vec<String> =
        (0..cols).map(|c| if cols > 1 { format!("prediction{c}") } else { "prediction".into() }).collect();
    text.push_str(&header.join(","));
    text.push('\n');
    for r in 0..preds.rows() {
        let row = preds.row(r).unwrap_or(&[]);
        text.push_str(&row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    match output {
        Some(path) => {
            io::write_atomic(path, text.as_bytes())?;
            eprintln!("wgfit: {} predictions written to {}", preds.rows(), path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })?;
        }
    }
    Ok(())
}

fn summary(model_path: &Path) -> CliResult<()> {
    let loaded = io::load_model(model_path, &Device::cpu())?;
    let model = loaded.model;
    let mut out = String::new();
    out.push_str(&model.summary());
    if let Some(p) = &loaded.preprocessor {
        out.push_str(&format!(" Target: {}\n", p.target));
        out.push_str(&format!(" Inputs ({}): {}\n", p.input_width(), p.input_names().join(", ")));
        if !p.dropped.is_empty() {
            out.push_str(&format!(" Dropped: {}\n", p.dropped.join(", ")));
        }
        let scaler = match &p.scaler {
            data::Scaler::None => "none",
            data::Scaler::MinMax(_) => "min-max (fitted on the training rows)",
            data::Scaler::Standard { .. } => "standardization (fitted on the training rows)",
        };
        out.push_str(&format!(" Scaling: {scaler}\n"));
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })
}

fn devices(json: bool) -> CliResult<()> {
    let list = Device::list_adapters();
    if json {
        let adapters: Vec<Value> = list
            .iter()
            .map(|(i, chosen)| {
                json!({"adapter": i.adapter, "backend": i.backend, "device_type": i.device_type, "selected": chosen})
            })
            .collect();
        return print_json(&json!({"adapters": adapters}));
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        let _ = writeln!(
            out,
            "no GPU adapter found: wgfit will use the CPU path (install mesa-vulkan-drivers for a software GPU)"
        );
    }
    for (info, chosen) in &list {
        let _ = writeln!(
            out,
            "{} {} ({}, {})",
            if *chosen { "*" } else { " " },
            info.adapter,
            info.backend,
            info.device_type
        );
    }
    let _ = writeln!(out, "  cpu reference (--device cpu)");
    Ok(())
}

/// The course's concrete model: 8 -> 512 relu x3 -> 1, adam, mae, batch 256, early stopping.
fn demo(started: Instant) -> CliResult<()> {
    eprintln!(
        "wgfit demo: the concrete-strength model (8 -> 512 relu x3 -> 1, adam, mae, batch 256) with early stopping"
    );
    eprintln!("(run `wgfit --help` for the command-line tool)");
    let (device, why) = Device::gpu_or_cpu();
    if let Some(e) = why {
        eprintln!("notice: no GPU adapter ({e}); running on the CPU path instead");
    }
    let info = device.info();
    eprintln!("device: {} ({}, {})", info.adapter, info.backend, info.kind);
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
        info.adapter,
        best.map_or("-".into(), |b| (b + 1).to_string()),
    );
    let plot = Path::new("concrete_learning_curves.svg");
    history.plot(plot)?;
    println!("learning curves written to {} (total {:.1}s)", plot.display(), started.elapsed().as_secs_f64());
    Ok(())
}

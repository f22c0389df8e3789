//! `wgfit`: train, evaluate and use dense networks on CSV files from the shell.
//!
//! With no arguments it runs the demo: the course's concrete-strength model with early stopping.
//! Exit codes: 0 success, 2 usage error, 1 any other error (one line on stderr).

//!
//! One module per command group: `train`, `tune` (hyperparameter search), `predict` (evaluate and
//! predict), `info` (summary and devices), `bench`, and `demo`, with `setup` holding what train
//! and tune share; this file holds the command line, dispatch and exit codes.

mod bench;
mod demo;
mod export;
mod info;
mod predict;
mod setup;
mod train;
mod tune;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use wgfit::Device;

/// `wgfit bench`'s default `--workloads`: every workload of [`wgfit::bench::WORKLOADS`].
static ALL_WORKLOADS: LazyLock<String> = LazyLock::new(|| wgfit::bench::WORKLOADS.join(","));

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
    /// Search hyperparameters: train every setting of a grid (or a random sample of it), with
    /// several seeds or k folds, all together; print a leaderboard.
    Tune(TuneArgs),
    /// Loss and metrics of a saved model on a CSV file with the target column.
    Evaluate {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = ["auto", "gpu", "cpu"])]
        device: Option<String>,
        /// Print one JSON object on stdout: {"loss": .., "<metric>": ..}.
        #[arg(long)]
        json: bool,
        /// Read the data file in pieces instead of into memory (the model's inputs are spilled
        /// to a temporary file). Needs a model saved with its preprocessing (as `wgfit train
        /// --save` saves it).
        #[arg(long)]
        stream: bool,
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
        /// A classifier of class labels: each class's probability too, after the label.
        #[arg(long)]
        proba: bool,
        #[arg(long, value_parser = ["auto", "gpu", "cpu"])]
        device: Option<String>,
        /// Read the data file in pieces instead of into memory (the model's inputs are spilled
        /// to a temporary file); the predictions are the same. Needs a model saved with its
        /// preprocessing (as `wgfit train --save` saves it).
        #[arg(long)]
        stream: bool,
    },
    /// Write a saved model as an ONNX file (opset 13) for inference in any ONNX runtime. With
    /// the model's saved preprocessing in the graph, the file takes one float column per CSV
    /// feature column: numeric columns raw, categorical ones as the index of the category in
    /// the file's `categories` metadata (sorted order, from 0).
    Export {
        #[arg(long)]
        model: PathBuf,
        /// The ONNX file to write.
        #[arg(long)]
        onnx: PathBuf,
        /// Leave the preprocessing out: the file takes the model's inputs, already scaled and one-hot encoded.
        #[arg(long)]
        raw_inputs: bool,
        /// A binary classifier's labels of targets 0 and 1, comma-separated (metadata; default 0,1).
        #[arg(long, value_delimiter = ',')]
        class_labels: Vec<String>,
    },
    /// The benchmark workloads of BENCHMARKS.md (W1-W4) on the GPU and CPU paths, as one table.
    Bench {
        /// Comma-separated workloads.
        #[arg(long, default_value = ALL_WORKLOADS.as_str(), value_delimiter = ',')]
        workloads: Vec<String>,
        /// gpu, cpu or both.
        #[arg(long, default_value = "both", value_parser = ["gpu", "cpu", "both"])]
        device: String,
        /// Print one JSON array of records on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Run the sweeps S1 and S2 (many models trained together) instead of the workloads.
        #[arg(long)]
        sweeps: bool,
        /// Models per sweep (with --sweeps).
        #[arg(long, default_value_t = 64, requires = "sweeps")]
        models: usize,
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
    /// Training data: a CSV file, or a Parquet file (built with the `parquet` feature).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    data_opts: DataArgs,
    /// Hidden layer sizes, comma-separated ("none" for no hidden layer).
    #[arg(long, default_value = "512,512,512")]
    layers: String,
    /// Keras's class_weight: "balanced" (n_rows / (n_classes * rows of the class), scikit-learn's)
    /// or LABEL:WEIGHT pairs, comma-separated, keyed by the target's class labels or 0/1 values;
    /// unlisted classes weigh 1. The loss is weighted, the metrics are not (Keras's `metrics`).
    #[arg(long, value_name = "SPEC", conflicts_with = "sample_weight")]
    class_weight: Option<String>,
    /// Keras's sample_weight: a numeric column of the data (and of --valid) holding each row's
    /// weight (at least 0); it is not a feature.
    #[arg(long, value_name = "COLUMN")]
    sample_weight: Option<String>,
    /// Dropout rate after every hidden layer.
    #[arg(long)]
    dropout: Option<f32>,
    /// BatchNormalization after every hidden layer (Dense -> BatchNorm -> Dropout).
    #[arg(long)]
    batchnorm: bool,
    /// L2 penalty factor on every hidden layer's kernel (Keras's kernel_regularizer=L2(F)).
    #[arg(long, value_name = "F")]
    l2: Option<f32>,
    #[arg(long, default_value = "adam", value_parser = ["adam", "adamw", "rmsprop", "sgd"])]
    optimizer: String,
    /// Learning rate (default: Keras's, 0.01 for sgd, 0.001 for the others).
    #[arg(long)]
    lr: Option<f32>,
    /// Momentum of sgd or rmsprop (default 0).
    #[arg(long)]
    momentum: Option<f32>,
    /// RMSprop's rho, in [0, 1) (default 0.9).
    #[arg(long)]
    rho: Option<f32>,
    /// Decoupled weight decay, w -= w * weight_decay * lr per update (adamw's default 0.004;
    /// none for the others unless given).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Clip each weight tensor's gradient to this L2 norm (Keras's clipnorm).
    #[arg(long)]
    clipnorm: Option<f32>,
    /// Seed of the initial weights, shuffles and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Save the trained model (architecture, weights, preprocessing, compile settings) as JSON.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Save a model file (with the preprocessing) after every epoch, as Keras's ModelCheckpoint: a
    /// template such as "ckpt-{epoch:02d}-{val_loss:.4f}.json" ({epoch} from 1, any History key,
    /// Python format specs); a plain name is overwritten each epoch.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<String>,
    /// With --checkpoint: save only epochs that improve val_loss (loss without validation data).
    #[arg(long, requires = "checkpoint")]
    checkpoint_best_only: bool,
    /// Read the data files in pieces instead of into memory, for files larger than memory: the
    /// preprocessing is fitted in a streaming pass, the preprocessed features are spilled to a
    /// temporary file (4 bytes per input per row) and every epoch reads its batches from there.
    /// Same History and saved model as without it, and the same error for a fault; the data is
    /// read a few times.
    #[arg(long)]
    stream: bool,
}

/// Which rows and columns to learn from, and how to scale them (`train` and `tune`).
#[derive(Args)]
struct DataArgs {
    /// Target column (default: the last column).
    #[arg(long)]
    target: Option<String>,
    /// Columns to ignore, comma-separated.
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Text columns to one-hot encode (categories learned on the training rows), comma-separated.
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// What the target is: auto (text: class labels; 0/1: binary; other numbers: regression) or
    /// multiclass (a numeric target's values are class labels: a softmax output, one unit each).
    #[arg(long, default_value = "auto", value_parser = ["auto", "multiclass"])]
    task: String,
    /// Validation rows from a second CSV file with the same columns.
    #[arg(long, conflicts_with = "validation_split")]
    valid: Option<PathBuf>,
    /// Hold out the last fraction of the rows for validation (Keras's validation_split).
    #[arg(long)]
    validation_split: Option<f32>,
    /// Feature scaling fitted on the training rows.
    #[arg(long, default_value = "minmax", value_parser = ["minmax", "standard", "none"])]
    scale: String,
}

/// The model settings `tune` does not search over (`train` and `tune`).
#[derive(Args)]
struct ModelArgs {
    /// Activation of the hidden layers.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Output activation (default: softmax for class labels, sigmoid for a 0/1 target, else linear).
    #[arg(long, value_parser = ["linear", "sigmoid", "softmax"])]
    output: Option<String>,
    /// Loss (default: sparse_categorical_crossentropy for class labels, binary_crossentropy for a
    /// 0/1 target, else mae).
    #[arg(long)]
    loss: Option<String>,
    /// Metrics, comma-separated (default: accuracy for class labels, binary_accuracy for a 0/1
    /// target, else mae). Also: mse, root_mean_squared_error, and for 0/1 targets auc, pr_auc,
    /// precision, recall, true_positives, false_positives, true_negatives, false_negatives.
    #[arg(long, value_delimiter = ',')]
    metrics: Option<Vec<String>>,
}

/// How to fit and what to report (`train` and `tune`).
#[derive(Args)]
struct RunArgs {
    /// auto (default: a hardware GPU, else the CPU path; said on stderr), gpu (any adapter, a
    /// software one too) or cpu.
    #[arg(long, value_parser = ["auto", "gpu", "cpu"])]
    device: Option<String>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Early stopping: epochs without improvement of val_loss (loss without validation data).
    #[arg(long)]
    patience: Option<usize>,
    /// Early stopping: smallest change that counts as an improvement.
    #[arg(long, default_value_t = 0.0)]
    min_delta: f64,
    /// Early stopping: put back the best epoch's weights at the end.
    #[arg(long, default_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    restore_best: bool,
    /// Write the learning curves (.svg or .png).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object with the results on stdout (everything else goes to stderr).
    #[arg(long)]
    json: bool,
    /// 0 silent, 1 progress, 2 one line per epoch.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    verbose: Option<u8>,
}

/// `wgfit tune`: the grid (lists of values, comma-separated), its trials and their sharding.
#[derive(Args)]
struct TuneArgs {
    /// Training data: a CSV file, or a Parquet file (built with the `parquet` feature).
    #[arg(long, required_unless_present = "collect")]
    data: Option<PathBuf>,
    #[command(flatten)]
    data_opts: DataArgs,
    /// Hidden layer sizes, comma-separated ("none" for no hidden layer); repeat the flag for each
    /// architecture to try (--layers 16,16 --layers 64).
    #[arg(long, default_value = "512,512,512", action = clap::ArgAction::Append)]
    layers: Vec<String>,
    /// Learning rates to try (default: Keras's for each optimizer).
    #[arg(long)]
    lr: Option<String>,
    /// Dropout rates to try after every hidden layer (default: no Dropout layers).
    #[arg(long)]
    dropout: Option<String>,
    /// BatchNormalization after every hidden layer: true, false or true,false.
    #[arg(long, default_value = "false")]
    batchnorm: String,
    /// L2 penalty factors to try on every hidden layer's kernel (default: none).
    #[arg(long)]
    l2: Option<String>,
    /// Optimizers to try, comma-separated: adam, adamw, rmsprop, sgd.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// SGD momenta to try (sgd trials only; default 0).
    #[arg(long)]
    momentum: Option<String>,
    /// Train every setting with seeds 0..N-1 (each as `train --seed`: weights, shuffles, dropout).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// k-fold cross-validation: every setting and seed trains K times, validating on the K
    /// contiguous slices of the training rows in turn.
    #[arg(long, conflicts_with_all = ["valid", "validation_split"])]
    folds: Option<usize>,
    /// Random search: N settings drawn from the grid (without repeats) instead of all of them.
    #[arg(long)]
    trials: Option<usize>,
    /// Seed of the random search's draw.
    #[arg(long, default_value_t = 0)]
    search_seed: u64,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Save the best trial's trained model (with the preprocessing), as `train --save` does.
    #[arg(long)]
    save_best: Option<PathBuf>,
    /// Run only the trials with index % N == I (default: from SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX and --shards / WGFIT_SHARDS).
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    shard: Option<String>,
    /// Number of shards of a Kubernetes Indexed Job (default: WGFIT_SHARDS); the index comes from
    /// JOB_COMPLETION_INDEX.
    #[arg(long)]
    shards: Option<usize>,
    /// Also write this shard's results to DIR/shard-I-of-N.json, for --collect.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Merge the shard files of DIR into the report of the whole search (no training; the search's
    /// options come from the files, only --json and --plot apply).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["shard", "shards", "out", "save_best"])]
    collect: Option<PathBuf>,
    /// Read the data files in pieces instead of into memory, for files larger than memory: the
    /// preprocessing is fitted in a streaming pass, the preprocessed features are spilled to a
    /// temporary file (4 bytes per input per row) and every trial reads its own batches (its
    /// rows, its order) from there. Same trials, leaderboard, saved best model and shard
    /// fingerprint as without it (shards run with and without it collect together), and the
    /// same error for a fault; the data is read a few times.
    #[arg(long)]
    stream: bool,
}

/// An error and its exit code.
#[derive(Debug)]
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
    quiet_display_probes();
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
                    let mut lines = text.lines();
                    let mut first = lines.next().unwrap_or("usage error").trim_start_matches("error: ").to_string();
                    // "the following required arguments were not provided:" lists them on the
                    // next lines: keep them on the one line.
                    if first.ends_with(':') {
                        let listed: Vec<&str> = lines.map(str::trim).take_while(|l| !l.is_empty()).collect();
                        first = format!("{first} {}", listed.join(", "));
                    }
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
        None => demo::demo(started),
        Some(Command::Train(args)) => train::train(args, started),
        Some(Command::Tune(args)) => tune::tune(args),
        Some(Command::Evaluate { model, data, device, json, stream }) => {
            predict::evaluate(&model, &data, device.as_deref(), json, stream)
        }
        Some(Command::Predict { model, data, output, proba, device, stream }) => {
            predict::predict(&model, &data, output.as_deref(), proba, device.as_deref(), stream)
        }
        Some(Command::Export { model, onnx, raw_inputs, class_labels }) => {
            export::export(&model, &onnx, raw_inputs, &class_labels)
        }
        Some(Command::Summary { model }) => info::summary(&model),
        Some(Command::Devices { json }) => info::devices(json),
        Some(Command::Bench { workloads, device, json, sweeps: false, .. }) => bench::bench(&workloads, &device, json),
        Some(Command::Bench { device, json, sweeps: true, models, .. }) => bench::sweeps(&device, models, json),
    }
}

/// On a machine without a desktop session, creating a Vulkan instance makes Mesa's Wayland
/// support print "XDG_RUNTIME_DIR is invalid or not set" for every probe. wgfit draws nothing on
/// screen: when the variable is unset, point it at the temporary directory (no Wayland socket
/// there, so the probe fails quietly). Done first thing in main, before any thread exists.
fn quiet_display_probes() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}

/// The device for `--device`: gpu (any adapter, software too; an error without one), cpu, or
/// by default (`auto`) `Device::auto`: a hardware GPU, else the CPU path, said on stderr.
fn pick_device(choice: Option<&str>) -> CliResult<Device> {
    match choice {
        Some("cpu") => Ok(Device::cpu()),
        Some("gpu") => Ok(Device::gpu()?),
        _ => {
            let (device, why) = Device::auto();
            eprintln!("wgfit: {why}");
            Ok(device)
        }
    }
}

fn json_f32(v: f32) -> Value {
    if v.is_finite() {
        json!(v as f64)
    } else {
        Value::Null
    }
}

fn print_json(v: &Value) -> CliResult<()> {
    let text = serde_json::to_string(v).map_err(|e| Failure { code: 1, message: e.to_string() })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })
}

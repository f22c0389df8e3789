//! What `train` and `tune` share, in one place so that a tune trial is exactly the `train` run
//! with its settings: reading and preprocessing the data, the defaults taken from the target, a
//! model's layers and optimizer, early stopping, and the JSON forms of a History and a device.

use std::path::Path;

use serde_json::{json, Map, Value};
use wgfit::data::{split_point, CsvOptions, DataFile, FileOptions, Preprocessor, RawTable, ScaleKind};
use wgfit::{
    Adam, AdamW, BatchNormalization, Clip, Dense, Device, Dropout, EarlyStopping, Fit, History, Layer, Matrix,
    Optimizer, Regularizer, Rmsprop, Sequential, Sgd,
};

use crate::{json_f32, usage, CliResult, DataArgs, ModelArgs, RunArgs};

/// The preprocessed data of a run: the preprocessing fitted on the training rows, the training
/// matrices, and the validation matrices when there are validation rows.
pub(crate) struct Prepared {
    pub pre: Preprocessor,
    pub x: Matrix,
    pub y: Matrix,
    pub valid: Option<(Matrix, Matrix)>,
    /// The training and validation rows' sample weights (`--sample-weight COLUMN`).
    pub weights: Option<Vec<f32>>,
    pub valid_weights: Option<Vec<f32>>,
}

/// The numbers of column `name` of `table`, one per row (a typed error naming the row for a
/// cell that is not a number).
fn column_values(table: &RawTable, name: &str) -> CliResult<Vec<f32>> {
    let c = table.column_index(name)?;
    Ok((0..table.len()).map(|r| table.number(r, c)).collect::<wgfit::Result<Vec<f32>>>()?)
}

/// The data arguments checked before any reading: `--validation-split` in (0, 1), and the
/// `--scale` kind.
fn checked_scale(d: &DataArgs) -> CliResult<ScaleKind> {
    if let Some(f) = d.validation_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(usage(format!("--validation-split must be in (0, 1), got {f}")));
        }
    }
    Ok(ScaleKind::parse(&d.scale)?)
}

/// The preprocessing options of the data arguments, with `drop` (the dropped columns, the weight
/// column among them) and the checked `scale`.
fn csv_options(d: &DataArgs, drop: Vec<String>, scale: ScaleKind) -> CsvOptions {
    CsvOptions {
        target: d.target.clone(),
        drop,
        categorical: d.categorical.clone(),
        scale,
        multiclass: d.task == "multiclass",
    }
}

/// A usage error when the `--sample-weight` column `col` is the target (by `--target`, else the
/// file's `last` column).
fn refuse_target_weight(d: &DataArgs, col: &str, last: Option<&String>) -> CliResult<()> {
    if d.target.as_deref() == Some(col) || (d.target.is_none() && last.is_some_and(|c| c == col)) {
        return Err(usage(format!("--sample-weight {col:?} is the target column")));
    }
    Ok(())
}

/// Reads `data` (and `--valid`), holds out `--validation-split`, fits the preprocessing on the
/// training rows and applies it to both; says on stderr what it got. `weight_column`: a column
/// of sample weights, read from both tables and dropped from the features.
pub(crate) fn prepare(data: &Path, d: &DataArgs, weight_column: Option<&str>) -> CliResult<Prepared> {
    let scale = checked_scale(d)?;
    let table = RawTable::read(data)?;
    let (train_raw, valid_raw) = match (&d.valid, d.validation_split) {
        (Some(path), _) => (table, Some(RawTable::read(path)?)),
        (None, Some(f)) => {
            let (t, v) = table.split_last(f)?;
            (t, Some(v))
        }
        (None, None) => (table, None),
    };
    let mut drop = d.drop.clone();
    let (mut weights, mut valid_weights) = (None, None);
    if let Some(col) = weight_column {
        refuse_target_weight(d, col, train_raw.columns().last())?;
        weights = Some(column_values(&train_raw, col)?);
        valid_weights = valid_raw.as_ref().map(|v| column_values(v, col)).transpose()?;
        drop.push(col.to_string());
    }
    let opts = csv_options(d, drop, scale);
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
        pre.target()
    );
    Ok(Prepared { pre, x, y, valid, weights, valid_weights })
}

/// The data of a `train --stream` run: the preprocessing fitted on the training rows of the
/// file read in pieces, and the training and validation rows as [`DataFile`]s of preprocessed
/// features (sample weights in them).
pub(crate) struct PreparedFiles {
    pub pre: Preprocessor,
    pub train: DataFile,
    pub valid: Option<DataFile>,
}

/// [`prepare`] without holding the data in memory: the same checks, preprocessing and rows
/// (`--validation-split` counts the rows first), the same errors where the streamed passes can
/// meet them in the same order.
pub(crate) fn prepare_stream(data: &Path, d: &DataArgs, weight_column: Option<&str>) -> CliResult<PreparedFiles> {
    let scale = checked_scale(d)?;
    // The header and row count, when the split or the weight column's check needs them.
    let split = d.validation_split.filter(|_| d.valid.is_none());
    let shape = match (split, weight_column) {
        (None, None) => None,
        _ => Some(DataFile::columns_and_rows(data)?),
    };
    let mut train_rows = FileOptions::new();
    let mut valid_rows = FileOptions::new();
    if let (Some(f), Some((_, n))) = (split, &shape) {
        let at = split_point(*n, f)?;
        train_rows = train_rows.rows(0..at);
        valid_rows = valid_rows.rows(at..*n);
    }
    let mut drop = d.drop.clone();
    if let Some(col) = weight_column {
        refuse_target_weight(d, col, shape.as_ref().and_then(|(columns, _)| columns.last()))?;
        train_rows = train_rows.sample_weight(col);
        valid_rows = valid_rows.sample_weight(col);
        drop.push(col.to_string());
    }
    let opts = csv_options(d, drop, scale);
    let pre = Preprocessor::fit_file(data, &opts, &train_rows)?;
    let train = DataFile::open_preprocessed(data, &pre, &train_rows)?;
    let valid = match (&d.valid, split) {
        (Some(path), _) => Some(DataFile::open_preprocessed(path, &pre, &valid_rows)?),
        (None, Some(_)) => Some(DataFile::open_preprocessed(data, &pre, &valid_rows)?),
        (None, None) => None,
    };
    eprintln!(
        "wgfit: {} training rows{}, {} inputs, target {:?} (streamed from disk)",
        train.rows(),
        valid.as_ref().map_or(String::new(), |v| format!(", {} validation rows", v.rows())),
        train.features().len(),
        pre.target()
    );
    Ok(PreparedFiles { pre, train, valid })
}

/// The training (and validation) data of a run: in memory, or files read in pieces (`--stream`).
/// One type for `train` and `tune`, so that what does not depend on where the rows live (the
/// preprocessing, the targets, the row count) is read the same way by both.
pub(crate) enum Data {
    Memory(Box<Prepared>),
    Files(Box<PreparedFiles>),
}

impl Data {
    /// [`prepare_stream`] when `stream`, else [`prepare`].
    pub(crate) fn prepare(stream: bool, data: &Path, d: &DataArgs, weight_column: Option<&str>) -> CliResult<Data> {
        Ok(if stream {
            Data::Files(Box::new(prepare_stream(data, d, weight_column)?))
        } else {
            Data::Memory(Box::new(prepare(data, d, weight_column)?))
        })
    }

    pub(crate) fn pre(&self) -> &Preprocessor {
        match self {
            Data::Memory(p) => &p.pre,
            Data::Files(p) => &p.pre,
        }
    }

    /// The training rows' targets (a file keeps them in memory too).
    pub(crate) fn targets(&self) -> &Matrix {
        match self {
            Data::Memory(p) => &p.y,
            Data::Files(p) => p.train.targets(),
        }
    }

    /// Number of training rows.
    pub(crate) fn rows(&self) -> usize {
        self.targets().rows()
    }

    /// The model's input width.
    pub(crate) fn inputs(&self) -> usize {
        match self {
            Data::Memory(p) => p.x.cols(),
            Data::Files(p) => p.train.features().len(),
        }
    }

    /// Whether there are validation rows (`--valid` or `--validation-split`).
    pub(crate) fn has_valid(&self) -> bool {
        match self {
            Data::Memory(p) => p.valid.is_some(),
            Data::Files(p) => p.valid.is_some(),
        }
    }
}

/// Loss, output activation and metrics: as given, else chosen from the target (class labels get
/// a softmax output of one unit per class, sparse categorical cross-entropy and accuracy; a 0/1
/// target a sigmoid output, binary cross-entropy and binary accuracy; any other mae and a linear
/// output).
pub(crate) struct Compile {
    pub loss: String,
    pub output: String,
    pub metrics: Vec<String>,
    /// Units of the output layer: one per class, else 1.
    pub units: usize,
}

impl Compile {
    /// The settings for target `y` (`classes`: the class labels' count, for a class target),
    /// with a notice on stderr naming the defaults taken.
    pub(crate) fn for_target(y: &Matrix, m: &ModelArgs, classes: Option<usize>) -> Compile {
        let binary = classes.is_none() && y.data().iter().all(|v| *v == 0.0 || *v == 1.0);
        let default_loss = match classes {
            Some(_) => "sparse_categorical_crossentropy",
            None if binary => "binary_crossentropy",
            None => "mae",
        };
        let loss = m.loss.clone().unwrap_or_else(|| default_loss.into());
        // An unknown name is reported by compile, with the valid ones.
        let parsed = loss.parse::<wgfit::Loss>().ok();
        let (bce, categorical) = (parsed.is_some_and(|l| l.is_binary()), parsed.is_some_and(|l| l.is_categorical()));
        let output = m.output.clone().unwrap_or_else(|| {
            if categorical {
                "softmax"
            } else if bce {
                "sigmoid"
            } else {
                "linear"
            }
            .into()
        });
        let metrics: Vec<String> = m.metrics.clone().unwrap_or_else(|| {
            vec![if categorical {
                "accuracy"
            } else if bce {
                "binary_accuracy"
            } else {
                "mae"
            }
            .to_string()]
        });
        let units = classes.unwrap_or(1);
        if m.loss.is_none() || m.output.is_none() || m.metrics.is_none() {
            let kind = match classes {
                Some(k) => format!("class target ({k} classes)"),
                None if binary => "binary 0/1 target".into(),
                None => "numeric target".into(),
            };
            let out = if units > 1 { format!("{output} output of {units} units") } else { format!("{output} output") };
            eprintln!(
                "wgfit: {kind}: using a {out}, {loss} loss and {} metrics (override with --output, --loss, --metrics)",
                metrics.join(", ")
            );
        }
        Compile { loss, output, metrics, units }
    }
}

/// An optimizer with its hyperparameters resolved (Keras's defaults where none was given).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum OptimizerSpec {
    Adam { lr: f32 },
    AdamW { lr: f32, weight_decay: f32 },
    Rmsprop { lr: f32, rho: f32, momentum: f32 },
    Sgd { lr: f32, momentum: f32 },
}

/// The optimizer names `train --optimizer` and `tune --optimizer` accept.
pub(crate) const OPTIMIZERS: [&str; 4] = ["adam", "adamw", "rmsprop", "sgd"];

/// What `train` may add to an optimizer (Keras's BaseOptimizer arguments).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct OptimizerExtras {
    pub rho: Option<f32>,
    pub weight_decay: Option<f32>,
    pub clipnorm: Option<f32>,
}

impl OptimizerSpec {
    /// `name` is one of [`OPTIMIZERS`] (checked by the caller); momentum is SGD's or RMSprop's.
    pub(crate) fn new(name: &str, lr: Option<f32>, momentum: Option<f32>) -> OptimizerSpec {
        match name {
            "sgd" => OptimizerSpec::Sgd {
                lr: lr.unwrap_or(Sgd::default().learning_rate),
                momentum: momentum.unwrap_or(Sgd::default().momentum),
            },
            "rmsprop" => {
                let d = Rmsprop::default();
                OptimizerSpec::Rmsprop {
                    lr: lr.unwrap_or(d.learning_rate),
                    rho: d.rho,
                    momentum: momentum.unwrap_or(d.momentum),
                }
            }
            "adamw" => {
                let d = AdamW::default();
                OptimizerSpec::AdamW { lr: lr.unwrap_or(d.learning_rate), weight_decay: d.weight_decay }
            }
            _ => OptimizerSpec::Adam { lr: lr.unwrap_or(Adam::default().learning_rate) },
        }
    }

    /// The optimizer with `train`'s extra settings (rho: RMSprop's; weight decay: AdamW's, or
    /// added to any other; clipnorm: any).
    pub(crate) fn optimizer_with(&self, extras: OptimizerExtras) -> Optimizer {
        let clip = extras.clipnorm.map_or(Clip::None, Clip::Norm);
        let wd = extras.weight_decay;
        match *self {
            OptimizerSpec::Sgd { lr, momentum } => {
                Sgd { learning_rate: lr, momentum, weight_decay: wd, clip, ..Sgd::default() }.into()
            }
            OptimizerSpec::Adam { lr } => Adam { learning_rate: lr, weight_decay: wd, clip, ..Adam::default() }.into(),
            OptimizerSpec::AdamW { lr, weight_decay } => {
                AdamW { learning_rate: lr, weight_decay: wd.unwrap_or(weight_decay), clip, ..AdamW::default() }.into()
            }
            OptimizerSpec::Rmsprop { lr, rho, momentum } => Rmsprop {
                learning_rate: lr,
                rho: extras.rho.unwrap_or(rho),
                momentum,
                weight_decay: wd,
                clip,
                ..Rmsprop::default()
            }
            .into(),
        }
    }

    /// The name, learning rate and momentum (SGD's, RMSprop's).
    fn parts(&self) -> (&'static str, f32, Option<f32>) {
        match *self {
            OptimizerSpec::Adam { lr } => ("adam", lr, None),
            OptimizerSpec::AdamW { lr, .. } => ("adamw", lr, None),
            OptimizerSpec::Rmsprop { lr, momentum, .. } => ("rmsprop", lr, Some(momentum)),
            OptimizerSpec::Sgd { lr, momentum } => ("sgd", lr, Some(momentum)),
        }
    }
}

/// What `train` takes one value of and `tune` searches over: the hidden layers, dropout, batch
/// normalization, the hidden layers' L2 penalty and the optimizer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelSpec {
    pub hidden: Vec<usize>,
    pub dropout: Option<f32>,
    pub batchnorm: bool,
    /// L2 factor of every hidden Dense kernel (Keras's overfitting tutorial leaves the output
    /// layer unpenalized).
    pub l2: Option<f32>,
    pub optimizer: OptimizerSpec,
    /// `train`'s optimizer options (--rho, --weight-decay, --clipnorm).
    pub extras: OptimizerExtras,
}

impl ModelSpec {
    /// The layers: Dense(units, activation) [-> BatchNormalization] [-> Dropout] per hidden size,
    /// then a Dense(units) output. `input_w` goes on the first layer when given (compile then builds
    /// the model on the device at once; a sweep member is left unbuilt, as the sweep trains it).
    pub(crate) fn layers(&self, activation: &str, output: &str, units: usize, input_w: Option<usize>) -> Vec<Layer> {
        let mut layers: Vec<Layer> = Vec::new();
        for &units in &self.hidden {
            let dense = Dense::new(units).activation(activation);
            layers.push(match self.l2 {
                Some(l2) => dense.kernel_regularizer(Regularizer::l2(l2)),
                None => dense,
            });
            if self.batchnorm {
                layers.push(BatchNormalization::new());
            }
            if let Some(rate) = self.dropout {
                layers.push(Dropout::new(rate));
            }
        }
        layers.push(Dense::new(units).activation(output));
        if let Some(w) = input_w {
            layers[0] = layers[0].clone().input_shape(w);
        }
        layers
    }

    /// The compiled model with weight seed `seed` (see [`ModelSpec::layers`] for `input_w`).
    pub(crate) fn build(
        &self,
        device: &Device,
        c: &Compile,
        activation: &str,
        seed: u64,
        input_w: Option<usize>,
    ) -> CliResult<Sequential> {
        let mut model = Sequential::new(device, self.layers(activation, &c.output, c.units, input_w)).seed(seed);
        let metric_refs: Vec<&str> = c.metrics.iter().map(String::as_str).collect();
        model.compile(self.optimizer.optimizer_with(self.extras), c.loss.as_str(), &metric_refs)?;
        Ok(model)
    }

    /// The `train` flags that select this model (the labels of tune's trials).
    pub(crate) fn train_args(&self) -> String {
        let layers = if self.hidden.is_empty() {
            "none".to_string()
        } else {
            self.hidden.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
        };
        let mut s = format!("--layers {layers}");
        let (name, lr, momentum) = self.optimizer.parts();
        s += &format!(" --optimizer {name} --lr {lr}");
        if let Some(momentum) = momentum {
            s += &format!(" --momentum {momentum}");
        }
        if let Some(rate) = self.dropout {
            s += &format!(" --dropout {rate}");
        }
        if self.batchnorm {
            s += " --batchnorm";
        }
        if let Some(l2) = self.l2 {
            s += &format!(" --l2 {l2}");
        }
        s
    }

    /// The settings as a JSON object (tune's output).
    pub(crate) fn to_json(&self) -> Value {
        let (name, lr, momentum) = self.optimizer.parts();
        json!({
            "layers": self.hidden,
            "optimizer": name,
            "lr": decimal(lr),
            "momentum": momentum.map(decimal),
            "dropout": self.dropout.map(decimal),
            "batchnorm": self.batchnorm,
            "l2": self.l2.map(decimal),
        })
    }
}

/// A setting as the user wrote it: the shortest decimal that reads back as `v` (0.01, not
/// 0.009999999776482582 as `json_f32` writes the f32 nearest 0.01).
fn decimal(v: f32) -> Value {
    match v.to_string().parse::<f64>() {
        Ok(d) if v.is_finite() => json!(d),
        _ => Value::Null,
    }
}

/// Hidden layer sizes from a `--layers` value: positive integers separated by commas, or "none"
/// (or nothing) for no hidden layer.
pub(crate) fn parse_hidden(s: &str) -> CliResult<Vec<usize>> {
    match s.trim() {
        "" | "none" => Ok(Vec::new()),
        s => s
            .split(',')
            .map(|u| u.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| usage(format!("--layers must be positive integers separated by commas, got {s:?}"))),
    }
}

/// The quantity early stopping watches and tune ranks by: val_loss with validation data, else loss.
pub(crate) fn monitor(has_validation: bool) -> &'static str {
    if has_validation {
        "val_loss"
    } else {
        "loss"
    }
}

/// The early stopping `--patience` asks for, if it does.
pub(crate) fn early_stopping(r: &RunArgs, has_validation: bool) -> Option<EarlyStopping> {
    r.patience.map(|patience| {
        EarlyStopping::new()
            .monitor(monitor(has_validation))
            .patience(patience)
            .min_delta(r.min_delta)
            .restore_best_weights(r.restore_best)
            .verbose(true)
    })
}

/// The fit settings every run shares: epochs, batch size and verbosity (checked).
pub(crate) fn fit_settings<'a>(r: &RunArgs) -> CliResult<Fit<'a>> {
    if r.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    let fit = Fit::new().epochs(r.epochs).batch_size(r.batch_size);
    Ok(match r.verbose {
        Some(v) => fit.verbose(v),
        None => fit,
    })
}

pub(crate) fn device_json(device: &Device) -> Value {
    let info = device.info();
    json!({"kind": info.kind, "adapter": info.adapter, "backend": info.backend})
}

/// A History as `{"loss": [..], "val_loss": [..], ..}` (non-finite values as null).
pub(crate) fn history_json(h: &History) -> Value {
    let mut m = Map::new();
    for k in h.keys() {
        m.insert(k.to_string(), Value::Array(h.get(k).unwrap_or(&[]).iter().map(|v| json_f32(*v)).collect()));
    }
    Value::Object(m)
}

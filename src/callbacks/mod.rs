//! Callbacks: code that runs at the start and end of training and of every epoch of
//! [`Sequential::fit`](crate::Sequential::fit), sees the epoch's logs (the History keys and values) and
//! can stop training, change the learning rate, or keep and restore a copy of the weights.
//!
//! Built-ins follow Keras 3: [`EarlyStopping`], [`TerminateOnNaN`], [`ReduceLROnPlateau`],
//! [`LearningRateScheduler`], [`ModelCheckpoint`] and [`CsvLogger`].
//!
//! Epochs are numbered from 0 in every hook and in [`History`](crate::History) fields, as Keras does;
//! messages printed for people number them from 1 ("Epoch 12: early stopping"), as Keras's do.
//!
//! Weight copies never leave the device: [`TrainContext::save_weights`] records a device-side buffer
//! copy of the parameters and BatchNormalization moving statistics, issued before the next epoch's
//! launches (or on its own at the end of training).

mod csv_logger;
mod early_stopping;
mod filepath_template;
mod learning_rate_scheduler;
mod model_checkpoint;
mod progress;
mod reduce_lr_on_plateau;
mod terminate_on_nan;

pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use learning_rate_scheduler::LearningRateScheduler;
pub use model_checkpoint::ModelCheckpoint;
pub(crate) use progress::ProgbarLogger;
pub use reduce_lr_on_plateau::ReduceLROnPlateau;
pub use terminate_on_nan::TerminateOnNaN;

use crate::error::{Error, Result};

/// One epoch's values, keyed like the History: `loss`, `<metric>`, `val_loss`, `val_<metric>`, plus
/// anything a callback added (ReduceLROnPlateau adds `learning_rate`, as in Keras 3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f32)>,
}

impl Logs {
    /// Empty logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if this epoch recorded it.
    pub fn get(&self, key: &str) -> Option<f32> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` (appended if new, replaced otherwise).
    pub fn insert(&mut self, key: &str, value: f32) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// The keys, in the History's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// `(key, value)` pairs, in the History's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A device-side copy of the model's weights (parameters and moving statistics) that lives for one
/// `fit` call. Made by [`TrainContext::new_snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot(pub(crate) usize);

/// A request to write the model's weights to a file (ModelCheckpoint's), carried out by the
/// trainer, which holds the weights.
#[derive(Clone, Debug)]
pub(crate) struct SaveRequest {
    pub path: std::path::PathBuf,
    pub weights_only: bool,
    /// CSV preprocessing to store in a model file, as `save_with_preprocessor` does.
    pub preprocessor: Option<crate::data::Preprocessor>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SnapshotOp {
    Save(usize),
    Restore(usize),
}

/// What a callback may see and change during `fit`. The requests take effect as follows:
/// a learning-rate change applies to every update recorded after it (from the next epoch when made
/// in `on_epoch_end`, from this epoch when made in `on_epoch_begin`); a stop request ends training
/// after the current epoch; weight saves and restores are device-side copies, in request order.
pub struct TrainContext {
    pub(crate) epochs: usize,
    pub(crate) log_keys: Vec<String>,
    pub(crate) learning_rate: f32,
    pub(crate) stop: Option<String>,
    pub(crate) snapshots: usize,
    pub(crate) ops: Vec<SnapshotOp>,
    pub(crate) best_epoch: Option<usize>,
    pub(crate) verbose: u8,
    pub(crate) messages: Vec<String>,
    pub(crate) saves: Vec<SaveRequest>,
}

impl TrainContext {
    pub(crate) fn new(epochs: usize, log_keys: Vec<String>, learning_rate: f32, verbose: u8) -> Self {
        TrainContext {
            epochs,
            log_keys,
            learning_rate,
            stop: None,
            snapshots: 0,
            ops: Vec::new(),
            best_epoch: None,
            verbose,
            messages: Vec::new(),
            saves: Vec::new(),
        }
    }

    /// A context attached to no fit, to drive callbacks by hand (unit tests of a callback):
    /// requests are recorded and readable through the getters, nothing runs.
    pub fn detached(epochs: usize, log_keys: &[&str], learning_rate: f32) -> Self {
        Self::new(epochs, log_keys.iter().map(|k| k.to_string()).collect(), learning_rate, 0)
    }

    /// The `epochs` this fit was asked for.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// The keys every epoch's logs will hold (before callbacks add their own).
    pub fn log_keys(&self) -> &[String] {
        &self.log_keys
    }

    /// The optimizer's current learning rate.
    pub fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    /// Changes the optimizer's learning rate for the updates recorded from now on; it stays changed
    /// after fit, as in Keras. 0 is allowed (Keras lets a schedule freeze an epoch); NaN, infinite
    /// or negative rates are an error.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::invalid("learning_rate", lr, "must be a finite number >= 0"));
        }
        self.learning_rate = lr;
        Ok(())
    }

    /// Ends training after the current epoch; `reason` is kept in [`History::stop_reason`](crate::History).
    pub fn stop_training(&mut self, reason: impl Into<String>) {
        if self.stop.is_none() {
            self.stop = Some(reason.into());
        }
    }

    /// Whether some callback asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.is_some()
    }

    /// A new device-side weight buffer for this fit (allocated once, before the next launches).
    pub fn new_snapshot(&mut self) -> Snapshot {
        self.snapshots += 1;
        Snapshot(self.snapshots - 1)
    }

    /// Copies the current weights (as of the end of the epoch just finished) into `s`, on the device.
    pub fn save_weights(&mut self, s: Snapshot) {
        self.ops.push(SnapshotOp::Save(s.0));
    }

    /// Copies `s` back into the model's weights, on the device.
    pub fn restore_weights(&mut self, s: Snapshot) {
        self.ops.push(SnapshotOp::Restore(s.0));
    }

    /// Writes the model to `path` as it is at the end of the epoch just finished (requested from
    /// `on_epoch_end`; from `on_train_end`, after the weight restores asked for there): a model
    /// file as [`Sequential::save`](crate::Sequential::save) writes, with the optimizer's state,
    /// or with `weights_only` a weights file as
    /// [`Sequential::save_weights`](crate::Sequential::save_weights) writes (safetensors for a
    /// `.safetensors` name). Writes are atomic; missing directories are made. An epoch whose loss
    /// is not finite writes nothing (its weights could not be loaded back).
    pub fn save_model(&mut self, path: impl Into<std::path::PathBuf>, weights_only: bool) {
        self.saves.push(SaveRequest { path: path.into(), weights_only, preprocessor: None });
    }

    /// The files requested by [`TrainContext::save_model`] and not yet written: on a
    /// [`TrainContext::detached`] context, all of them (tests of a callback read them here).
    pub fn requested_saves(&self) -> Vec<(std::path::PathBuf, bool)> {
        self.saves.iter().map(|s| (s.path.clone(), s.weights_only)).collect()
    }

    /// Marks the epoch judged best; fit stores it in [`History::best_epoch`](crate::History).
    pub fn set_best_epoch(&mut self, epoch: usize) {
        self.best_epoch = Some(epoch);
    }

    /// The fit's verbosity (0 silent).
    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// A message for the user, shown unless fit is silent (verbose 0).
    pub fn print(&mut self, msg: impl Into<String>) {
        self.messages.push(msg.into());
    }
}

/// Hooks into `fit`. Every method has an empty default; return an error to abort `fit` with it.
pub trait Callback {
    /// Called once before the first epoch: validate settings and reset per-fit state here.
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    /// Called before epoch `epoch` (from 0) trains.
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    /// Called after epoch `epoch` (from 0) with its logs, which can be extended (the History records
    /// what is there after every callback ran).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &mut Logs, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    /// Called once when training ends, also after an early stop or a diverged loss; `logs` are the
    /// last epoch's (empty when no epoch ran).
    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
}

impl<C: Callback + ?Sized> Callback for &mut C {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_train_begin(ctx)
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_epoch_begin(epoch, ctx)
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_epoch_end(epoch, logs, ctx)
    }
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_train_end(logs, ctx)
    }
}

impl<C: Callback + ?Sized> Callback for Box<C> {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_train_begin(ctx)
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_epoch_begin(epoch, ctx)
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_epoch_end(epoch, logs, ctx)
    }
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut TrainContext) -> Result<()> {
        (**self).on_train_end(logs, ctx)
    }
}

/// Which way a monitored value improves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `max` for accuracy-like keys (accuracy, binary_accuracy, acc, auc, precision, recall, f1, with
    /// or without `val_`), `min` for everything else (loss, mae, mse...).
    #[default]
    Auto,
    /// Lower is better (losses, errors).
    Min,
    /// Higher is better (accuracies).
    Max,
}

impl Mode {
    /// Whether `monitor` is maximized under this mode.
    pub fn maximizes(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let name = monitor.strip_prefix("val_").unwrap_or(monitor);
                name != "loss" && ["acc", "auc", "precision", "recall", "f1"].iter().any(|w| name.contains(w))
            }
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Mode::Auto),
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            _ => Err(Error::UnknownName { kind: "mode", name: s.to_string(), valid: "auto, min, max".into() }),
        }
    }
}

/// A `val_` key in a fit without validation data: known missing before any epoch runs. Other keys
/// not among fit's own may still be added by another callback, so they are checked per epoch.
pub(crate) fn cannot_appear(monitor: &str, keys: &[String]) -> bool {
    monitor.starts_with("val_") && !keys.iter().any(|k| k.starts_with("val_"))
}

/// The monitored value of an epoch: `Ok(None)` when the epoch has no validation pass (the fit
/// validates, but `validation_freq` skipped this epoch) and `monitor` is a `val_` key, which
/// Keras's callbacks skip too (Keras warns; skipping is expected here, so nothing is printed);
/// an error naming the keys there are for any other missing key.
pub(crate) fn monitored(who: &str, monitor: &str, logs: &Logs, ctx: &TrainContext) -> Result<Option<f32>> {
    if let Some(v) = logs.get(monitor) {
        return Ok(Some(v));
    }
    let validating_fit = ctx.log_keys().iter().any(|k| k.starts_with("val_"));
    let validated_epoch = logs.keys().any(|k| k.starts_with("val_"));
    if monitor.starts_with("val_") && validating_fit && !validated_epoch && ctx.log_keys().iter().any(|k| k == monitor)
    {
        return Ok(None);
    }
    let keys: Vec<String> = logs.keys().map(String::from).collect();
    Err(missing_key(who, monitor, &keys))
}

pub(crate) fn missing_key(who: &str, monitor: &str, keys: &[String]) -> Error {
    let hint = if monitor.starts_with("val_") && !keys.iter().any(|k| k.starts_with("val_")) {
        " (val_ keys need Fit::validation_data)"
    } else {
        ""
    };
    Error::State(format!(
        "{who} monitors {monitor:?}, which this fit does not record{hint}; the logs have: {}",
        keys.join(", ")
    ))
}

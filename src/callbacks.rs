//! Callbacks: code that runs at the start and end of training and of every epoch of
//! [`Sequential::fit`](crate::Sequential::fit), sees the epoch's logs (the History keys and values) and
//! can stop training, change the learning rate, or keep and restore a copy of the weights.
//!
//! Built-ins follow Keras 3: [`EarlyStopping`], [`TerminateOnNaN`], [`ReduceLROnPlateau`] and
//! [`CsvLogger`].
//!
//! Epochs are numbered from 0 in every hook and in [`History`](crate::History) fields, as Keras does;
//! messages printed for people number them from 1 ("Epoch 12: early stopping"), as Keras's do.
//!
//! Weight copies never leave the device: [`TrainContext::save_weights`] records a device-side buffer
//! copy of the parameters and BatchNormalization moving statistics, issued before the next epoch's
//! launches (or on its own at the end of training).

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One epoch's values, keyed like the History: `loss`, `<metric>`, `val_loss`, `val_<metric>`, plus
/// anything a callback added (ReduceLROnPlateau adds `learning_rate`, as in Keras 3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f32)>,
}

impl Logs {
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

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A device-side copy of the model's weights (parameters and moving statistics) that lives for one
/// `fit` call. Made by [`TrainContext::new_snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot(pub(crate) usize);

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
    /// after fit, as in Keras.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid("learning_rate", lr, "must be a positive finite number"));
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
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    /// `logs` can be extended (the History records what is there after every callback ran).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &mut Logs, _ctx: &mut TrainContext) -> Result<()> {
        Ok(())
    }
    /// `logs` are the last epoch's (empty when no epoch ran).
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
    /// `max` for accuracy-like keys (accuracy, binary_accuracy, acc, auc, precision, recall, with or
    /// without `val_`), `min` for everything else (loss, mae, mse...).
    #[default]
    Auto,
    Min,
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
fn cannot_appear(monitor: &str, keys: &[String]) -> bool {
    monitor.starts_with("val_") && !keys.iter().any(|k| k.starts_with("val_"))
}

fn missing_key(who: &str, monitor: &str, keys: &[String]) -> Error {
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

/// Stops training when a monitored value has stopped improving (Keras 3's `EarlyStopping`).
///
/// Each epoch from `start_from_epoch` on: the wait counter goes up by one; if the value beats the
/// best so far by more than `min_delta` in the monitored direction (the first value always does), it
/// becomes the best, and the counter goes back to 0 if the value also beats `baseline` (when one is
/// set, by more than `min_delta`). Training stops once the counter reaches `patience`, never at
/// epoch 0. With `restore_best_weights`, the weights of the best epoch (kept as a device-side copy,
/// moving statistics included) are put back at the end of training, whether it stopped early or ran
/// all its epochs.
///
/// A monitored key missing from the logs is an error, where Keras only warns and then never stops:
/// a typo or a missing `validation_data` should not silently train for 1000 epochs. A `val_` key
/// without validation data fails at train begin, before any epoch runs; any other missing key at
/// the end of the first watched epoch (keys added by callbacks earlier in the list count).
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: usize,
    mode: Mode,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    verbose: bool,
    // state of the current fit
    maximize: bool,
    wait: usize,
    best: Option<f64>,
    best_epoch: Option<usize>,
    stopped_epoch: Option<usize>,
    snapshot: Option<Snapshot>,
    saved: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            verbose: false,
            maximize: false,
            wait: 0,
            best: None,
            best_epoch: None,
            stopped_epoch: None,
            snapshot: None,
            saved: false,
        }
    }
}

impl EarlyStopping {
    /// Keras's defaults: monitor `val_loss`, min_delta 0, patience 0, mode auto, no baseline, no restore.
    pub fn new() -> Self {
        Self::default()
    }
    /// The History key to watch (default `val_loss`).
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.to_string();
        self
    }
    /// Smallest change that counts as an improvement (its absolute value is used).
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d.abs();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, n: usize) -> Self {
        self.patience = n;
        self
    }
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// A value the monitored quantity must beat for the patience counter to reset.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best_weights = on;
        self
    }
    /// Epochs to ignore before watching (warm-up).
    pub fn start_from_epoch(mut self, n: usize) -> Self {
        self.start_from_epoch = n;
        self
    }
    /// Print "Epoch N: early stopping" and the restore message (only when fit is not silent).
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// The epoch (0-based) at which the last fit stopped, if it stopped early.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
    /// The best epoch (0-based) of the last fit.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
    /// The best monitored value of the last fit.
    pub fn best(&self) -> Option<f64> {
        self.best
    }
    /// The current patience counter.
    pub fn wait(&self) -> usize {
        self.wait
    }

    fn beats(&self, value: f64, reference: Option<f64>) -> bool {
        match reference {
            None => true,
            Some(r) if self.maximize => value - self.min_delta > r,
            Some(r) => value + self.min_delta < r,
        }
    }

    /// Resets the state for a new run (called by `on_train_begin`).
    pub fn reset(&mut self) {
        self.maximize = self.mode.maximizes(&self.monitor);
        self.wait = 0;
        self.best = None;
        self.best_epoch = None;
        self.stopped_epoch = None;
        self.snapshot = None;
        self.saved = false;
    }

    /// The decision for one epoch's monitored value: returns true when training should stop. This
    /// is the whole of Keras's rule, usable without a model (tests feed it scripted sequences);
    /// `on_epoch_end` calls it and handles the weights.
    pub fn observe(&mut self, epoch: usize, value: f32) -> bool {
        if epoch < self.start_from_epoch {
            return false;
        }
        let current = value as f64;
        self.wait += 1;
        if self.beats(current, self.best) {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            if self.baseline.is_none() || self.beats(current, self.baseline) {
                self.wait = 0;
            }
            return false;
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return true;
        }
        false
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        self.reset();
        if cannot_appear(&self.monitor, ctx.log_keys()) {
            return Err(missing_key("EarlyStopping", &self.monitor, ctx.log_keys()));
        }
        if self.restore_best_weights {
            self.snapshot = Some(ctx.new_snapshot());
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        let Some(value) = logs.get(&self.monitor) else {
            let keys: Vec<String> = logs.keys().map(String::from).collect();
            return Err(missing_key("EarlyStopping", &self.monitor, &keys));
        };
        let before = self.best_epoch;
        let stop = self.observe(epoch, value);
        if let Some(s) = self.snapshot {
            // Keras keeps the weights of the first watched epoch even when it does not improve
            // (a NaN first value), then those of every improvement.
            if self.best_epoch != before || (epoch >= self.start_from_epoch && !self.saved) {
                ctx.save_weights(s);
                self.saved = true;
                if self.best_epoch.is_none() {
                    self.best_epoch = Some(epoch);
                }
            }
        }
        if let Some(b) = self.best_epoch {
            ctx.set_best_epoch(b);
        }
        if stop {
            ctx.stop_training(format!(
                "EarlyStopping: {} did not improve by more than {} for {} epochs (stopped at epoch {})",
                self.monitor,
                self.min_delta,
                self.wait,
                epoch + 1
            ));
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctx: &mut TrainContext) -> Result<()> {
        if let (Some(e), true) = (self.stopped_epoch, self.verbose) {
            ctx.print(format!("Epoch {}: early stopping", e + 1));
        }
        if let (Some(s), true) = (self.snapshot, self.saved) {
            if self.verbose {
                let b = self.best_epoch.map_or(0, |b| b + 1);
                ctx.print(format!("Restoring model weights from the end of the best epoch: {b}."));
            }
            ctx.restore_weights(s);
        }
        Ok(())
    }
}

/// Stops training at the first epoch whose loss is NaN or infinite (Keras's `TerminateOnNaN`,
/// checked per epoch: a non-finite batch loss makes the epoch's mean non-finite). fit then returns
/// the History so far, with [`History::stop_reason`](crate::History) naming the epoch, instead of
/// the [`Error::Diverged`] it returns without this callback.
#[derive(Clone, Debug, Default)]
pub struct TerminateOnNaN {
    stopped_epoch: Option<usize>,
}

impl TerminateOnNaN {
    pub fn new() -> Self {
        Self::default()
    }
    /// The epoch (0-based) whose loss was not finite, in the last fit.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> Result<()> {
        self.stopped_epoch = None;
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        if let Some(loss) = logs.get("loss") {
            if !loss.is_finite() {
                self.stopped_epoch = Some(epoch);
                let msg = format!("Epoch {}: invalid loss {loss}, terminating training", epoch + 1);
                ctx.print(msg.clone());
                ctx.stop_training(format!("TerminateOnNaN: {msg}"));
            }
        }
        Ok(())
    }
}

/// Lowers the learning rate when a monitored value has stopped improving (Keras 3's
/// `ReduceLROnPlateau`): after `patience` epochs without an improvement of more than `min_delta`,
/// lr becomes max(lr * factor, min_lr), then `cooldown` epochs pass before counting again. It adds
/// `learning_rate` to the logs (and so to the History), as Keras 3 does.
#[derive(Clone, Debug)]
pub struct ReduceLROnPlateau {
    monitor: String,
    factor: f64,
    patience: usize,
    mode: Mode,
    min_delta: f64,
    cooldown: usize,
    min_lr: f64,
    verbose: bool,
    maximize: bool,
    best: f64,
    wait: usize,
    cooldown_counter: usize,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            verbose: false,
            maximize: false,
            best: f64::INFINITY,
            wait: 0,
            cooldown_counter: 0,
        }
    }
}

impl ReduceLROnPlateau {
    /// Keras's defaults: monitor `val_loss`, factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0.
    pub fn new() -> Self {
        Self::default()
    }
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.to_string();
        self
    }
    /// Multiplier of the learning rate, in (0, 1) (checked when training begins).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    pub fn patience(mut self, n: usize) -> Self {
        self.patience = n;
        self
    }
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }
    pub fn cooldown(mut self, n: usize) -> Self {
        self.cooldown = n;
        self
    }
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }
    /// Print each reduction (only when fit is not silent).
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid("ReduceLROnPlateau factor", self.factor, "must be in (0, 1)"));
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::invalid("ReduceLROnPlateau min_lr", self.min_lr, "must be a finite number >= 0"));
        }
        if cannot_appear(&self.monitor, ctx.log_keys()) {
            return Err(missing_key("ReduceLROnPlateau", &self.monitor, ctx.log_keys()));
        }
        // Keras: auto mode maximizes when the key contains "acc".
        self.maximize = match self.mode {
            Mode::Auto => self.monitor.contains("acc"),
            m => m.maximizes(&self.monitor),
        };
        self.best = if self.maximize { f64::NEG_INFINITY } else { f64::INFINITY };
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        logs.insert("learning_rate", ctx.learning_rate());
        let Some(current) = logs.get(&self.monitor) else {
            let keys: Vec<String> = logs.keys().map(String::from).collect();
            return Err(missing_key("ReduceLROnPlateau", &self.monitor, &keys));
        };
        let current = current as f64;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        let improved =
            if self.maximize { current > self.best + self.min_delta } else { current < self.best - self.min_delta };
        if improved {
            self.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = ctx.learning_rate() as f64;
                if old > self.min_lr as f32 as f64 {
                    let new = (old * self.factor).max(self.min_lr);
                    if new > 0.0 {
                        ctx.set_learning_rate(new as f32)?;
                    }
                    if self.verbose {
                        ctx.print(format!("Epoch {}: ReduceLROnPlateau reducing learning rate to {new}.", epoch + 1));
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Appends every epoch to a CSV file (Keras's `CSVLogger`): a header `epoch,<keys sorted>` and one
/// row per epoch, epochs from 0, flushed each epoch. With `append`, an existing file gets no second
/// header.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    keys: Vec<String>,
}

impl CsvLogger {
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLogger { path: path.as_ref().to_path_buf(), separator: ',', append: false, file: None, keys: Vec::new() }
    }
    pub fn separator(mut self, c: char) -> Self {
        self.separator = c;
        self
    }
    pub fn append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }
    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.path.clone(), source }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> Result<()> {
        let had_rows = self.append && std::fs::metadata(&self.path).map(|m| m.len() > 0).unwrap_or(false);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.file = Some(file);
        self.keys.clear();
        if had_rows {
            // Keep the existing header's columns.
            let text = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
            if let Some(h) = text.lines().next() {
                self.keys = h.split(self.separator).skip(1).map(String::from).collect();
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut TrainContext) -> Result<()> {
        let sep = self.separator.to_string();
        let mut out = String::new();
        if self.keys.is_empty() {
            self.keys = logs.keys().map(String::from).collect();
            self.keys.sort();
            out.push_str("epoch");
            for k in &self.keys {
                out.push_str(&sep);
                out.push_str(k);
            }
            out.push('\n');
        }
        out.push_str(&epoch.to_string());
        for k in &self.keys {
            out.push_str(&sep);
            match logs.get(k) {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("NA"),
            }
        }
        out.push('\n');
        let result = match self.file.as_mut() {
            Some(f) => f.write_all(out.as_bytes()).and_then(|_| f.flush()),
            None => Ok(()),
        };
        result.map_err(|e| self.io(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut TrainContext) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

/// The fit's display: nothing (0), a progress bar over the epochs on a terminal (1), or one line per
/// epoch (2, and 1 when stderr is not a terminal).
pub(crate) struct Progress {
    level: u8,
    bar: Option<indicatif::ProgressBar>,
    epochs: usize,
}

impl Progress {
    pub fn new(verbose: Option<u8>, epochs: usize) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let level = match verbose {
            Some(0) => 0,
            Some(1) if terminal => 1,
            Some(_) => 2,
            None if terminal => 1,
            None => 2,
        };
        let bar = (level == 1).then(|| {
            let bar = indicatif::ProgressBar::new(epochs as u64);
            let style = indicatif::ProgressStyle::with_template("Epoch {pos}/{len} [{bar:20}] ETA {eta} - {wide_msg}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress { level, bar, epochs }
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    pub fn epoch_done(&mut self, epoch: usize, ms: f64, logs: &Logs) {
        if self.level == 0 {
            return;
        }
        let values: Vec<String> = logs.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{ms:.0}ms/epoch - {}", values.join(" - ")));
                bar.set_position(epoch as u64 + 1);
            }
            None => eprintln!("Epoch {}/{} - {ms:.0}ms - {}", epoch + 1, self.epochs, values.join(" - ")),
        }
    }

    pub fn message(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None if self.level > 0 => eprintln!("{msg}"),
            None => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
            if !bar.is_hidden() {
                // The bar's last line stays; what is printed next goes below it.
                eprintln!();
            }
        }
    }
}

impl Drop for Progress {
    /// A fit ended by an error leaves no half-drawn bar.
    fn drop(&mut self) {
        self.finish();
    }
}

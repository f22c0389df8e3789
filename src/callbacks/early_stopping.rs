//! Keras 3's EarlyStopping.

use super::{cannot_appear, missing_key, monitored, Callback, Logs, Mode, Snapshot, TrainContext};
use crate::error::Result;

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
/// the end of the first watched epoch (keys added by callbacks earlier in the list count). Epochs
/// without a validation pass (`Fit::validation_freq`) are skipped for a `val_` key, as in Keras:
/// they neither count toward patience nor save weights.
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
    /// Which way the monitored value improves (default [`Mode::Auto`], inferred from the key).
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// A value the monitored quantity must beat for the patience counter to reset.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }
    /// Puts back the weights of the best epoch at the end of training (default false, as in Keras).
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
        let Some(value) = monitored("EarlyStopping", &self.monitor, logs, ctx)? else {
            return Ok(());
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

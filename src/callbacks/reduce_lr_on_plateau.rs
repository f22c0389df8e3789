//! Keras 3's ReduceLROnPlateau.

use super::{cannot_appear, missing_key, monitored, Callback, Logs, Mode, TrainContext};
use crate::error::{Error, Result};

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
    /// The History key to watch (default `val_loss`).
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.to_string();
        self
    }
    /// Factor by which the learning rate is reduced, `new_lr = lr * factor` (default 0.1); must be
    /// in (0, 1), checked when training begins.
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    /// Epochs with no improvement after which the learning rate is reduced (default 10).
    pub fn patience(mut self, n: usize) -> Self {
        self.patience = n;
        self
    }
    /// Which way the monitored value improves (default auto, which, as in Keras, maximizes only keys
    /// containing `acc`).
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// Threshold for a new optimum: only changes larger than this count as improvements (default 1e-4).
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }
    /// Epochs to wait after a reduction before counting epochs without improvement again (default 0).
    pub fn cooldown(mut self, n: usize) -> Self {
        self.cooldown = n;
        self
    }
    /// Lower bound on the learning rate (default 0); must be finite and >= 0, checked when training
    /// begins.
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
        // Epochs without validation (validation_freq) are skipped for a val_ key, as in Keras.
        let Some(current) = monitored("ReduceLROnPlateau", &self.monitor, logs, ctx)? else {
            return Ok(());
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

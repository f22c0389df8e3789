//! Keras 3's ModelCheckpoint.

use std::path::PathBuf;

use super::filepath_template::fill;
use super::{cannot_appear, missing_key, monitored, Callback, Logs, Mode, SaveRequest, TrainContext};
use crate::data::Preprocessor;
use crate::error::Result;

/// Saves the model (or its weights) at the end of epochs (Keras 3's `ModelCheckpoint`, with
/// `save_freq="epoch"`: an epoch is one recording on the device, so there are no per-batch saves).
///
/// The file name is a template filled as Python's `filepath.format(epoch=epoch + 1, **logs)`:
/// `{epoch}` counts from 1 and takes format specs (`"ckpt-{epoch:02d}-{val_loss:.2f}.json"`), any
/// key of the epoch's logs may appear, `{{`/`}}` are literal braces; an unknown key or a bad spec is
/// an error naming the template. A name without fields is overwritten every time.
///
/// Without `save_best_only` every epoch is saved. With it, an epoch is saved only when `monitor`
/// (default `val_loss`) beats the best value so far strictly (Keras's `np.less` / `np.greater`),
/// starting from `initial_value_threshold` when given; NaN never does. `mode` chooses the direction
/// ([`Mode::Auto`]: max for accuracy-like keys, min otherwise). Epochs without a validation pass
/// (`Fit::validation_freq`) are skipped for a `val_` monitor, as Keras skips a missing monitor; a
/// `val_` monitor in a fit without validation data is an error at train begin.
///
/// Files are model files ([`Sequential::save`](crate::Sequential::save)'s JSON, with the optimizer
/// state, loadable by [`Sequential::load`](crate::Sequential::load)) or, with `save_weights_only`,
/// weights files ([`Sequential::save_weights`](crate::Sequential::save_weights): JSON, safetensors
/// for a `.safetensors` name). Writes are atomic; missing directories are made. In a
/// [`Sweep`](crate::Sweep) each member has its own callbacks: give each member its own template.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: String,
    mode: Mode,
    save_best_only: bool,
    save_weights_only: bool,
    initial_value_threshold: Option<f64>,
    verbose: bool,
    preprocessor: Option<Preprocessor>,
    // state of the current fit
    maximize: bool,
    best: Option<f64>,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// A checkpoint writing to `filepath` (a template) with Keras's defaults: monitor `val_loss`,
    /// mode auto, every epoch, whole model.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            mode: Mode::Auto,
            save_best_only: false,
            save_weights_only: false,
            initial_value_threshold: None,
            verbose: false,
            preprocessor: None,
            maximize: false,
            best: None,
            saved: Vec::new(),
        }
    }
    /// The History key `save_best_only` compares (default `val_loss`).
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = key.to_string();
        self
    }
    /// Which way the monitored value improves (default [`Mode::Auto`]).
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// Save only epochs that improve the monitored value (default false: every epoch).
    pub fn save_best_only(mut self, on: bool) -> Self {
        self.save_best_only = on;
        self
    }
    /// Write weights-only files instead of model files (default false).
    pub fn save_weights_only(mut self, on: bool) -> Self {
        self.save_weights_only = on;
        self
    }
    /// With `save_best_only`: the value the first saved epoch must beat (default none: the first
    /// epoch with a finite value is saved).
    pub fn initial_value_threshold(mut self, v: f64) -> Self {
        self.initial_value_threshold = Some(v);
        self
    }
    /// Print Keras's "Epoch N: saving model to ..." lines (unless fit is silent).
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// Stores the fitted CSV preprocessing in every model file (as
    /// [`Sequential::save_with_preprocessor`](crate::Sequential::save_with_preprocessor)), so
    /// `wgfit predict --model` can read raw CSV rows with a checkpoint. Ignored for weights files.
    pub fn preprocessor(mut self, pre: &Preprocessor) -> Self {
        self.preprocessor = Some(pre.clone());
        self
    }

    /// The best monitored value seen by the last fit (with `save_best_only`).
    pub fn best(&self) -> Option<f64> {
        self.best
    }
    /// The files the last fit wrote, in order (a name written twice is listed twice).
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, ctx: &mut TrainContext) -> Result<()> {
        self.maximize = self.mode.maximizes(&self.monitor);
        self.best = self.initial_value_threshold;
        self.saved.clear();
        if self.save_best_only && cannot_appear(&self.monitor, ctx.log_keys()) {
            return Err(missing_key("ModelCheckpoint", &self.monitor, ctx.log_keys()));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        let path = PathBuf::from(fill(&self.filepath, epoch, logs)?);
        let what = if self.save_weights_only { "weights" } else { "model" };
        if self.save_best_only {
            let Some(current) = monitored("ModelCheckpoint", &self.monitor, logs, ctx)? else {
                return Ok(());
            };
            let current = current as f64;
            let improved = match self.best {
                None => !current.is_nan(),
                Some(b) if self.maximize => current > b,
                Some(b) => current < b,
            };
            let shown = |v: Option<f64>| match v {
                Some(b) => format!("{b:.5}"),
                None => if self.maximize { "-inf" } else { "inf" }.to_string(),
            };
            if !improved {
                if self.verbose {
                    ctx.print(format!(
                        "Epoch {}: {} did not improve from {}",
                        epoch + 1,
                        self.monitor,
                        shown(self.best)
                    ));
                }
                return Ok(());
            }
            if self.verbose {
                ctx.print(format!(
                    "Epoch {}: {} improved from {} to {current:.5}, saving {what} to {}",
                    epoch + 1,
                    self.monitor,
                    shown(self.best),
                    path.display()
                ));
            }
            self.best = Some(current);
        } else if self.verbose {
            ctx.print(format!("Epoch {}: saving {what} to {}", epoch + 1, path.display()));
        }
        ctx.saves.push(SaveRequest {
            path: path.clone(),
            weights_only: self.save_weights_only,
            preprocessor: self.preprocessor.clone(),
        });
        self.saved.push(path);
        Ok(())
    }
}

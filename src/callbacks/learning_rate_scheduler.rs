//! Keras 3's LearningRateScheduler.

use super::{Callback, Logs, TrainContext};
use crate::error::{Error, Result};

/// Sets the learning rate at the start of every epoch to `schedule(epoch, lr)` (Keras 3's
/// `LearningRateScheduler`): `epoch` counts from 0 and `lr` is the optimizer's current learning
/// rate, so a schedule may work from the previous value (`lr * 0.9`) or from the epoch alone.
/// The rate chosen stays in effect after fit, as in Keras, and every epoch's logs (so the
/// History) get it as `learning_rate`.
///
/// A result that is NaN, infinite or negative ends fit with [`Error::InvalidValue`] naming the
/// epoch (Keras raises a ValueError for a non-float); 0 is allowed (a frozen epoch).
///
/// ```
/// use wgfit::LearningRateScheduler;
/// // Keras's documentation example: keep the rate for 10 epochs, then decay it by e^-0.1 per epoch.
/// let cb = LearningRateScheduler::new(|epoch, lr| if epoch < 10 { lr } else { lr * (-0.1f32).exp() });
/// ```
pub struct LearningRateScheduler<'a> {
    schedule: Box<dyn FnMut(usize, f32) -> f32 + 'a>,
    verbose: bool,
}

impl<'a> LearningRateScheduler<'a> {
    /// A scheduler calling `schedule(epoch, current_learning_rate)` before each epoch.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + 'a) -> Self {
        LearningRateScheduler { schedule: Box::new(schedule), verbose: false }
    }

    /// Prints "Epoch N: LearningRateScheduler setting learning rate to X." (unless fit is silent).
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }
}

impl std::fmt::Debug for LearningRateScheduler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearningRateScheduler").field("verbose", &self.verbose).finish_non_exhaustive()
    }
}

impl Callback for LearningRateScheduler<'_> {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut TrainContext) -> Result<()> {
        let lr = (self.schedule)(epoch, ctx.learning_rate());
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid(
                format!("LearningRateScheduler's learning rate for epoch {epoch} (0-based)"),
                lr,
                "a finite number >= 0",
            ));
        }
        ctx.set_learning_rate(lr)?;
        if self.verbose {
            ctx.print(format!("Epoch {}: LearningRateScheduler setting learning rate to {lr}.", epoch + 1));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut TrainContext) -> Result<()> {
        logs.insert("learning_rate", ctx.learning_rate());
        Ok(())
    }
}

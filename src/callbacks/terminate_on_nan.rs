//! Keras's TerminateOnNaN.

use super::{Callback, Logs, TrainContext};
use crate::error::Result;

/// Stops training at the first epoch whose loss is NaN or infinite (Keras's `TerminateOnNaN`,
/// checked per epoch: a non-finite batch loss makes the epoch's mean non-finite). fit then returns
/// the History so far, with [`History::stop_reason`](crate::History) naming the epoch, instead of
/// the [`Error::Diverged`](crate::Error::Diverged) it returns without this callback.
#[derive(Clone, Debug, Default)]
pub struct TerminateOnNaN {
    stopped_epoch: Option<usize>,
}

impl TerminateOnNaN {
    /// A new callback (it has no settings).
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

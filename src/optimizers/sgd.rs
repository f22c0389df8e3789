//! Stochastic gradient descent with optional (Nesterov) momentum, as in Keras (shaders/optim.wgsl `sgd`).

use crate::device::{member_table as mt, Args, UpdateArgs};
use crate::error::{Error, Result};

/// SGD's hyperparameters (Keras's defaults: 0.01, no momentum).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    /// Step size (Keras's default 0.01).
    pub learning_rate: f32,
    /// Momentum in [0, 1] (0: plain SGD).
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { learning_rate: 0.01, momentum: 0.0, nesterov: false }
    }
}

impl Sgd {
    /// SGD with this learning rate, no momentum.
    pub fn new(learning_rate: f32) -> Self {
        Sgd { learning_rate, ..Default::default() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", self.momentum, "must be in [0, 1]"));
        }
        Ok(())
    }

    pub(crate) fn launch(&self, len: usize, lr_at: usize) -> Args {
        Args::Sgd(UpdateArgs { len: len as u32, lr_at: lr_at as u32 })
    }

    /// Its settings in a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        row[mt::MOMENTUM] = self.momentum;
        row[mt::NESTEROV] = f32::from(u8::from(self.nesterov));
    }
}

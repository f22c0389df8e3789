//! Stochastic gradient descent with optional (Nesterov) momentum, as in Keras (shaders/optim.wgsl `sgd`).

use super::{Clip, LearningRateSchedule};
use crate::device::member_table as mt;
use crate::error::{Error, Result};

/// SGD's hyperparameters (Keras's defaults: 0.01, no momentum, no weight decay, no clipping).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    /// Step size (Keras's default 0.01); unused when `schedule` is set.
    pub learning_rate: f32,
    /// Momentum in [0, 1] (0: plain SGD).
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Decoupled weight decay `w -= w * weight_decay * lr` before each update (None: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f32>,
    /// Gradient clipping (none).
    #[serde(default, skip_serializing_if = "Clip::is_none")]
    pub clip: Clip,
    /// The learning rate as a schedule of the iterations (None: `learning_rate` throughout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<LearningRateSchedule>,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false,
            weight_decay: None,
            clip: Clip::None,
            schedule: None,
        }
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

    /// Its settings in a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        row[mt::MOMENTUM] = self.momentum;
        row[mt::NESTEROV] = f32::from(u8::from(self.nesterov));
    }
}

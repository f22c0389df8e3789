//! RMSprop as Keras 3 computes it (shaders/optim.wgsl `rmsprop`): epsilon *inside* the square
//! root, `w -= lr * g / sqrt(v + epsilon)` with `v = rho v + (1 - rho) g^2`; centered subtracts
//! the squared running mean gradient from v; momentum accumulates the increments.

use super::{Clip, LearningRateSchedule};
use crate::device::member_table as mt;
use crate::error::{Error, Result};

/// RMSprop's hyperparameters (Keras 3's defaults: 0.001, rho 0.9, momentum 0, epsilon 1e-7,
/// not centered). Keras's `compile` uses it when given no optimizer; ours needs it by name
/// (`"rmsprop"`) or value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rmsprop {
    /// Step size (0.001); unused when `schedule` is set.
    pub learning_rate: f32,
    /// Decay of the mean square (and of centered's mean gradient), in [0, 1) (0.9).
    pub rho: f32,
    /// Momentum of the increments, in [0, 1] (0: none).
    pub momentum: f32,
    /// Added to the mean square inside the square root (1e-7).
    pub epsilon: f32,
    /// Divide by an estimate of the gradient's variance instead of its mean square (false).
    pub centered: bool,
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

impl Default for Rmsprop {
    fn default() -> Self {
        Rmsprop {
            learning_rate: 0.001,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            weight_decay: None,
            clip: Clip::None,
            schedule: None,
        }
    }
}

impl Rmsprop {
    /// RMSprop with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: f32) -> Self {
        Rmsprop { learning_rate, ..Default::default() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.rho) {
            return Err(Error::invalid("rho", self.rho, "must be in [0, 1)"));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", self.momentum, "must be in [0, 1]"));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid("epsilon", self.epsilon, "must be a positive finite number"));
        }
        Ok(())
    }

    /// Its settings in a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        row[mt::RHO] = self.rho;
        row[mt::ONE_MINUS_RHO] = super::keras_one_minus(self.rho);
        row[mt::MOMENTUM] = self.momentum;
        row[mt::EPSILON] = self.epsilon;
        row[mt::CENTERED] = f32::from(u8::from(self.centered));
    }
}

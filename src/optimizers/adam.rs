//! Adam as Keras computes it: epsilon outside the bias correction, optional amsgrad
//! (shaders/optim.wgsl `adam`).

use super::{Clip, LearningRateSchedule};
use crate::device::member_table as mt;
use crate::error::{Error, Result};

/// Adam's hyperparameters (Keras's defaults: 0.001, 0.9, 0.999, 1e-7, no amsgrad, no weight
/// decay, no clipping).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Step size (Keras's default 0.001); unused when `schedule` is set.
    pub learning_rate: f32,
    /// Decay of the first moment (0.9).
    pub beta_1: f32,
    /// Decay of the second moment (0.999).
    pub beta_2: f32,
    /// Added to the root of the second moment, outside the bias correction as Keras does (1e-7).
    pub epsilon: f32,
    /// AMSGrad: divide by the running maximum of the second moment (Keras's `amsgrad`, false).
    #[serde(default)]
    pub amsgrad: bool,
    /// Decoupled weight decay `w -= w * weight_decay * lr` before each update (None: off, as
    /// Keras's default; [`AdamW`](super::AdamW) defaults it to 0.004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f32>,
    /// Gradient clipping (none).
    #[serde(default, skip_serializing_if = "Clip::is_none")]
    pub clip: Clip,
    /// The learning rate as a schedule of the iterations (None: `learning_rate` throughout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<LearningRateSchedule>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            weight_decay: None,
            clip: Clip::None,
            schedule: None,
        }
    }
}

impl Adam {
    /// Adam with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: f32) -> Self {
        Adam { learning_rate, ..Default::default() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, b) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(name, b, "must be in [0, 1)"));
            }
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid("epsilon", self.epsilon, "must be a positive finite number"));
        }
        Ok(())
    }

    /// The rate the kernel applies at update `t` (from 1) given the step's rate `lr`: with the
    /// bias correction folded in, in f64 (Keras folds it in f32: a few ulps apart).
    pub(crate) fn step_learning_rate(&self, lr: f32, t: u64) -> f32 {
        let (b1, b2, t) = (self.beta_1 as f64, self.beta_2 as f64, t as f64);
        (lr as f64 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))) as f32
    }

    /// Its settings in a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        row[mt::ONE_MINUS_BETA_1] = super::keras_one_minus(self.beta_1);
        row[mt::ONE_MINUS_BETA_2] = super::keras_one_minus(self.beta_2);
        row[mt::EPSILON] = self.epsilon;
        row[mt::AMSGRAD] = f32::from(u8::from(self.amsgrad));
    }
}

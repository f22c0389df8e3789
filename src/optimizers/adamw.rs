//! AdamW as Keras 3 defines it: Adam whose weight decay defaults to 0.004. Keras applies the
//! decay in `BaseOptimizer.apply`, after clipping and before Adam's step, as
//! `w -= w * weight_decay * lr` with the step's undecorated (schedule's) rate, not Adam's
//! bias-corrected one; the update kernel is Adam's (shaders/optim.wgsl `adam`).

use super::{Adam, Clip, LearningRateSchedule};

/// AdamW's hyperparameters (Keras's defaults: 0.001, weight decay 0.004, 0.9, 0.999, 1e-7).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamW {
    /// Step size (0.001); unused when `schedule` is set.
    pub learning_rate: f32,
    /// Decoupled weight decay (0.004): `w -= w * weight_decay * lr` before each update.
    pub weight_decay: f32,
    /// Decay of the first moment (0.9).
    pub beta_1: f32,
    /// Decay of the second moment (0.999).
    pub beta_2: f32,
    /// Added to the root of the second moment, outside the bias correction (1e-7).
    pub epsilon: f32,
    /// AMSGrad (false).
    #[serde(default)]
    pub amsgrad: bool,
    /// Gradient clipping (none).
    #[serde(default, skip_serializing_if = "Clip::is_none")]
    pub clip: Clip,
    /// The learning rate as a schedule of the iterations (None: `learning_rate` throughout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<LearningRateSchedule>,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW {
            learning_rate: 0.001,
            weight_decay: 0.004,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            clip: Clip::None,
            schedule: None,
        }
    }
}

impl AdamW {
    /// AdamW with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: f32) -> Self {
        AdamW { learning_rate, ..Default::default() }
    }

    /// The same update as Adam with this weight decay (what the kernel runs).
    pub(crate) fn as_adam(&self) -> Adam {
        Adam {
            learning_rate: self.learning_rate,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            amsgrad: self.amsgrad,
            weight_decay: Some(self.weight_decay),
            clip: self.clip,
            schedule: self.schedule.clone(),
        }
    }
}

//! Adam as Keras computes it: epsilon outside the bias correction (shaders/optim.wgsl `adam`).

use crate::device::{member_table as mt, Args, UpdateArgs};
use crate::error::{Error, Result};

/// Adam's hyperparameters (Keras's defaults: 0.001, 0.9, 0.999, 1e-7).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Step size (Keras's default 0.001).
    pub learning_rate: f32,
    /// Decay of the first moment (0.9).
    pub beta_1: f32,
    /// Decay of the second moment (0.999).
    pub beta_2: f32,
    /// Added to the root of the second moment, outside the bias correction as Keras does (1e-7).
    pub epsilon: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }
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

    /// An update of `len` parameters, its learning rate at `lr_at` of the member's rates.
    pub(crate) fn launch(&self, len: usize, lr_at: usize) -> Args {
        Args::Adam(UpdateArgs { len: len as u32, lr_at: lr_at as u32 })
    }

    /// The learning rate of update `t` (from 1) with the bias correction folded in, in f64
    /// (Keras folds it in f32: a few ulps apart).
    pub(crate) fn step_learning_rate(&self, t: u64) -> f32 {
        let (b1, b2, t) = (self.beta_1 as f64, self.beta_2 as f64, t as f64);
        (self.learning_rate as f64 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))) as f32
    }

    /// Its settings in a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        row[mt::BETA_1] = self.beta_1;
        row[mt::BETA_2] = self.beta_2;
        row[mt::EPSILON] = self.epsilon;
    }
}

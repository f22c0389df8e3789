//! Adam as Keras computes it: epsilon outside the bias correction (shaders/optim.wgsl `adam`).

use crate::device::{AdamArgs, Args};
use crate::error::{Error, Result};

/// Adam's hyperparameters (Keras's defaults: 0.001, 0.9, 0.999, 1e-7).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    pub learning_rate: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }
    }
}

impl Adam {
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

    /// Update `t` (from 1) of `len` parameters. The bias correction is folded into the learning
    /// rate in f64 (Keras folds it in f32: a few ulps apart).
    pub(crate) fn launch(&self, t: u64, len: usize) -> Args {
        let (b1, b2, t) = (self.beta_1 as f64, self.beta_2 as f64, t as f64);
        let lr = self.learning_rate as f64 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        Args::Adam(AdamArgs {
            len: len as u32,
            lr: lr as f32,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
        })
    }
}

//! Optimizers with Keras's defaults and exact update rules. Each is one module (its settings,
//! defaults, validation and launch); this file registers them.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::device::Args;
use crate::error::{Error, Result};

/// Any optimizer; `compile` also takes the names `"adam"` and `"sgd"` (Keras's defaults).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Optimizer {
    /// Adam.
    Adam(Adam),
    /// Stochastic gradient descent.
    Sgd(Sgd),
}

impl Optimizer {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "adam, sgd";

    /// Checks the hyperparameters.
    pub(crate) fn validate(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid("learning_rate", lr, "must be a positive finite number"));
        }
        match self {
            Optimizer::Adam(a) => a.validate(),
            Optimizer::Sgd(s) => s.validate(),
        }
    }

    /// The launch of an update over `len` parameters per member, its learning rate at `lr_at`
    /// of each member's rates for the epoch.
    pub(crate) fn launch(&self, len: usize, lr_at: usize) -> Args {
        match self {
            Optimizer::Adam(a) => a.launch(len, lr_at),
            Optimizer::Sgd(s) => s.launch(len, lr_at),
        }
    }

    /// The learning rate the kernel applies at update `t` (from 1): Adam's with its bias
    /// correction folded in (f64 on the host), SGD's as set.
    pub(crate) fn step_learning_rate(&self, t: u64) -> f32 {
        match self {
            Optimizer::Adam(a) => a.step_learning_rate(t),
            Optimizer::Sgd(s) => s.learning_rate,
        }
    }

    /// Writes its hyperparameters into a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        match self {
            Optimizer::Adam(a) => a.write_member_row(row),
            Optimizer::Sgd(s) => s.write_member_row(row),
        }
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::Adam(a) => a.learning_rate,
            Optimizer::Sgd(s) => s.learning_rate,
        }
    }

    /// Changes the learning rate (used by ReduceLROnPlateau).
    pub fn set_learning_rate(&mut self, lr: f32) {
        match self {
            Optimizer::Adam(a) => a.learning_rate = lr,
            Optimizer::Sgd(s) => s.learning_rate = lr,
        }
    }
}

impl std::str::FromStr for Optimizer {
    type Err = Error;

    /// Keras's names, with its default hyperparameters; an unknown name lists the valid ones.
    fn from_str(name: &str) -> Result<Optimizer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "adam" => Ok(Optimizer::Adam(Adam::default())),
            "sgd" => Ok(Optimizer::Sgd(Sgd::default())),
            _ => Err(Error::UnknownName { kind: "optimizer", name: name.to_string(), valid: Self::NAMES.into() }),
        }
    }
}

impl From<Adam> for Optimizer {
    fn from(a: Adam) -> Self {
        Optimizer::Adam(a)
    }
}

impl From<Sgd> for Optimizer {
    fn from(s: Sgd) -> Self {
        Optimizer::Sgd(s)
    }
}

/// What `compile` accepts as an optimizer: an [`Optimizer`] (or [`Adam`], [`Sgd`]), or its name.
pub trait IntoOptimizer {
    /// The optimizer, or an error naming the valid ones.
    fn into_optimizer(self) -> Result<Optimizer>;
}

impl<T: Into<Optimizer>> IntoOptimizer for T {
    fn into_optimizer(self) -> Result<Optimizer> {
        Ok(self.into())
    }
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

impl IntoOptimizer for String {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

impl IntoOptimizer for &String {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

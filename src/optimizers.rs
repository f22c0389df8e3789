//! Optimizers with Keras's defaults and exact update rules (see shaders/optim.wgsl).

use crate::error::{Error, Result};

/// Adam as Keras computes it: epsilon outside the bias correction.
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
}

/// Stochastic gradient descent with optional (Nesterov) momentum, as in Keras.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    pub learning_rate: f32,
    pub momentum: f32,
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { learning_rate: 0.01, momentum: 0.0, nesterov: false }
    }
}

impl Sgd {
    pub fn new(learning_rate: f32) -> Self {
        Sgd { learning_rate, ..Default::default() }
    }
}

/// Any optimizer; `"adam"` and `"sgd"` convert into the defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Optimizer {
    Adam(Adam),
    Sgd(Sgd),
    #[serde(skip)]
    Named(String),
}

impl Optimizer {
    pub const NAMES: &'static str = "adam, sgd";

    /// Resolves names and checks the hyperparameters.
    pub(crate) fn resolve(&self) -> Result<Optimizer> {
        let opt = match self {
            Optimizer::Named(name) => match name.trim().to_ascii_lowercase().as_str() {
                "adam" => Optimizer::Adam(Adam::default()),
                "sgd" => Optimizer::Sgd(Sgd::default()),
                _ => {
                    return Err(Error::UnknownName { kind: "optimizer", name: name.clone(), valid: Self::NAMES.into() })
                }
            },
            other => other.clone(),
        };
        let lr = opt.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::invalid("learning_rate", lr, "must be a positive finite number"));
        }
        match &opt {
            Optimizer::Adam(a) => {
                for (name, b) in [("beta_1", a.beta_1), ("beta_2", a.beta_2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::invalid(name, b, "must be in [0, 1)"));
                    }
                }
                if !(a.epsilon > 0.0 && a.epsilon.is_finite()) {
                    return Err(Error::invalid("epsilon", a.epsilon, "must be a positive finite number"));
                }
            }
            Optimizer::Sgd(s) => {
                if !(0.0..=1.0).contains(&s.momentum) {
                    return Err(Error::invalid("momentum", s.momentum, "must be in [0, 1]"));
                }
            }
            Optimizer::Named(_) => unreachable!("resolved above"),
        }
        Ok(opt)
    }

    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::Adam(a) => a.learning_rate,
            Optimizer::Sgd(s) => s.learning_rate,
            Optimizer::Named(_) => f32::NAN,
        }
    }

    /// Changes the learning rate (used by ReduceLROnPlateau).
    pub fn set_learning_rate(&mut self, lr: f32) {
        match self {
            Optimizer::Adam(a) => a.learning_rate = lr,
            Optimizer::Sgd(s) => s.learning_rate = lr,
            Optimizer::Named(_) => {}
        }
    }
}

impl From<&str> for Optimizer {
    fn from(name: &str) -> Self {
        Optimizer::Named(name.to_string())
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

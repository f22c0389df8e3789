//! Losses and metrics: names, Keras defaults and which combinations make sense.
//! The math is in `shaders/loss.wgsl` and its CPU twin `device::cpu::kernels::loss`.

use crate::error::{Error, Result};

/// A training loss, averaged over the batch (and over output columns per sample).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    MeanAbsoluteError,
    MeanSquaredError,
    /// Keras clips probabilities to [1e-7, 1 - 1e-7]; with `from_logits` the stable logit form is used.
    BinaryCrossentropy {
        from_logits: bool,
    },
    /// A name not yet resolved (resolved by `compile`, which reports unknown names).
    #[serde(skip)]
    Named(String),
}

impl Loss {
    pub const NAMES: &'static str = "mae (mean_absolute_error), mse (mean_squared_error), binary_crossentropy";

    pub(crate) fn resolve(&self) -> Result<Loss> {
        match self {
            Loss::Named(name) => match name.trim().to_ascii_lowercase().as_str() {
                "mae" | "mean_absolute_error" => Ok(Loss::MeanAbsoluteError),
                "mse" | "mean_squared_error" => Ok(Loss::MeanSquaredError),
                "binary_crossentropy" | "bce" => Ok(Loss::BinaryCrossentropy { from_logits: false }),
                _ => Err(Error::UnknownName { kind: "loss", name: name.clone(), valid: Self::NAMES.into() }),
            },
            other => Ok(other.clone()),
        }
    }

    /// The code the kernels use (shaders/loss.wgsl: LOSS_*).
    pub(crate) fn code(&self) -> u32 {
        match self {
            Loss::MeanAbsoluteError => 0,
            Loss::MeanSquaredError => 1,
            Loss::BinaryCrossentropy { from_logits: false } => 2,
            Loss::BinaryCrossentropy { from_logits: true } => 3,
            Loss::Named(_) => u32::MAX,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Loss::MeanAbsoluteError => "mae",
            Loss::MeanSquaredError => "mse",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::Named(n) => n,
        }
    }

    pub(crate) fn is_binary(&self) -> bool {
        matches!(self, Loss::BinaryCrossentropy { .. })
    }
}

impl From<&str> for Loss {
    fn from(name: &str) -> Self {
        Loss::Named(name.to_string())
    }
}

/// A metric reported per epoch in the History (training and `val_` forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Mae,
    Mse,
    /// Share of predictions with `(y_pred > 0.5) == y_true`.
    BinaryAccuracy,
}

impl Metric {
    pub const NAMES: &'static str = "mae, mse, binary_accuracy, accuracy";

    /// The metric and the key it is reported under ("accuracy" keeps its own name, as in Keras).
    pub(crate) fn parse(name: &str, loss: &Loss) -> Result<(Metric, String)> {
        let lower = name.trim().to_ascii_lowercase();
        let metric = match lower.as_str() {
            "mae" | "mean_absolute_error" => Metric::Mae,
            "mse" | "mean_squared_error" => Metric::Mse,
            "binary_accuracy" | "accuracy" | "acc" => {
                if !loss.is_binary() {
                    return Err(Error::Model(format!(
                        "metric {name:?} needs a binary classification loss (binary_crossentropy), \
                         but the loss is {}",
                        loss.name()
                    )));
                }
                Metric::BinaryAccuracy
            }
            _ => return Err(Error::UnknownName { kind: "metric", name: name.to_string(), valid: Self::NAMES.into() }),
        };
        let key = match lower.as_str() {
            "mean_absolute_error" => "mae".to_string(),
            "mean_squared_error" => "mse".to_string(),
            "acc" => "accuracy".to_string(),
            other => other.to_string(),
        };
        Ok((metric, key))
    }

    /// Bit in the loss kernel's metric mask (shaders/loss.wgsl: METRIC_*).
    pub(crate) fn code(self) -> u32 {
        match self {
            Metric::Mae => 0,
            Metric::Mse => 1,
            Metric::BinaryAccuracy => 2,
        }
    }
}

//! Losses: names, Keras defaults, which targets they accept, and the code the loss kernel
//! switches on (`shaders/loss.wgsl` and its twin `device::cpu::kernels::loss`). A new loss is a
//! variant here, its case in the kernel and in the twin.

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A training loss, averaged over the batch (and over output columns per sample).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Loss {
    /// Mean absolute error (`mae`).
    MeanAbsoluteError,
    /// Mean squared error (`mse`).
    MeanSquaredError,
    /// Keras clips probabilities to [1e-7, 1 - 1e-7]; with `from_logits` the stable logit form is used.
    BinaryCrossentropy {
        /// The model outputs logits (no sigmoid): the loss applies it, stably.
        from_logits: bool,
    },
}

impl Loss {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "mae (mean_absolute_error), mse (mean_squared_error), binary_crossentropy";

    /// The code the kernels use (shaders/loss.wgsl: LOSS_*).
    pub(crate) fn code(&self) -> u32 {
        match self {
            Loss::MeanAbsoluteError => 0,
            Loss::MeanSquaredError => 1,
            Loss::BinaryCrossentropy { from_logits: false } => 2,
            Loss::BinaryCrossentropy { from_logits: true } => 3,
        }
    }

    /// Keras's name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::MeanAbsoluteError => "mae",
            Loss::MeanSquaredError => "mse",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
        }
    }

    /// Whether the loss is a binary classification loss (targets 0/1, accuracy at 0.5).
    pub fn is_binary(&self) -> bool {
        matches!(self, Loss::BinaryCrossentropy { .. })
    }

    /// The targets are ones this loss can learn (`what`: where they came from, for the message).
    pub(crate) fn check_targets(&self, y: &Matrix, what: &str) -> Result<()> {
        if self.is_binary() {
            if let Some(i) = y.data().iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(Error::invalid(
                    format!("{what} y at row {}, column {}", i / y.cols(), i % y.cols()),
                    y.data()[i],
                    "binary_crossentropy targets must be in [0, 1]",
                ));
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// Keras's names and aliases; an unknown name lists the valid ones.
    fn from_str(name: &str) -> Result<Loss> {
        match name.trim().to_ascii_lowercase().as_str() {
            "mae" | "mean_absolute_error" => Ok(Loss::MeanAbsoluteError),
            "mse" | "mean_squared_error" => Ok(Loss::MeanSquaredError),
            "binary_crossentropy" | "bce" => Ok(Loss::BinaryCrossentropy { from_logits: false }),
            _ => Err(Error::UnknownName { kind: "loss", name: name.to_string(), valid: Self::NAMES.into() }),
        }
    }
}

/// What `compile` accepts as a loss: a [`Loss`], or its Keras name.
pub trait IntoLoss {
    /// The loss, or an error naming the valid ones.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

impl IntoLoss for String {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

impl IntoLoss for &String {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

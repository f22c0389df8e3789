//! Losses: names, Keras defaults, which targets they accept, and the code the loss kernel
//! switches on (`shaders/loss.wgsl` and its twin `device::cpu::kernels::loss`). A new loss is a
//! variant here, its case in the kernel and in the twin.
//!
//! Elementwise losses (mae, mse, binary cross-entropy) average over every output value; the
//! categorical ones are row losses, summed over a row's classes and averaged over rows
//! ([`Loss::is_row_loss`]): the kernel gives them one invocation per row.

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
    /// Cross-entropy against one-hot (or probability) rows of the output's width. Without
    /// `from_logits` Keras's form: each row normalized to sum 1, clipped to [1e-7, 1 - 1e-7],
    /// `-sum(y * log(p))`. On a softmax output the gradient is the fused `(p - y) / rows` of the
    /// logits (TensorFlow's, stable) rather than the chain through the clipped log.
    CategoricalCrossentropy {
        /// The model outputs logits: the loss applies softmax (log-sum-exp, stably).
        from_logits: bool,
        /// Targets become `y * (1 - s) + s / classes` (Keras's default 0).
        label_smoothing: f32,
    },
    /// Cross-entropy against integer class indices (one target column, 0..classes). Without
    /// `from_logits` Keras's form: `log(sum(clip(p))) - log(clip(p[label]))`; fused with a
    /// softmax output as the categorical one is.
    SparseCategoricalCrossentropy {
        /// The model outputs logits.
        from_logits: bool,
    },
}

impl Loss {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "mae (mean_absolute_error), mse (mean_squared_error), binary_crossentropy, \
                                     categorical_crossentropy, sparse_categorical_crossentropy";

    /// The code the kernels use (shaders/loss.wgsl: LOSS_*).
    pub(crate) fn code(&self) -> u32 {
        match self {
            Loss::MeanAbsoluteError => 0,
            Loss::MeanSquaredError => 1,
            Loss::BinaryCrossentropy { from_logits: false } => 2,
            Loss::BinaryCrossentropy { from_logits: true } => 3,
            Loss::CategoricalCrossentropy { from_logits: false, .. } => 4,
            Loss::CategoricalCrossentropy { from_logits: true, .. } => 5,
            Loss::SparseCategoricalCrossentropy { from_logits: false } => 6,
            Loss::SparseCategoricalCrossentropy { from_logits: true } => 7,
        }
    }

    /// A loss over whole rows (the categorical cross-entropies): summed over a row's classes,
    /// averaged over rows; computed one row per invocation.
    pub fn is_row_loss(&self) -> bool {
        matches!(self, Loss::CategoricalCrossentropy { .. } | Loss::SparseCategoricalCrossentropy { .. })
    }

    /// A multi-class loss (categorical or sparse categorical cross-entropy).
    pub fn is_categorical(&self) -> bool {
        self.is_row_loss()
    }

    /// Targets are class indices, one column (sparse categorical cross-entropy).
    pub fn is_sparse(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// The model's output is logits (no activation expected on it).
    pub fn from_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy { from_logits }
            | Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        }
    }

    /// Categorical cross-entropy's label smoothing (0 for every other loss).
    pub fn label_smoothing(&self) -> f32 {
        match *self {
            Loss::CategoricalCrossentropy { label_smoothing, .. } => label_smoothing,
            _ => 0.0,
        }
    }

    /// Columns of y for an output `output_w` wide: one class index per row for the sparse loss.
    pub fn target_width(&self, output_w: usize) -> usize {
        if self.is_sparse() {
            1
        } else {
            output_w
        }
    }

    /// Whether the gradient fuses a softmax output: a cross-entropy on probabilities that a
    /// softmax made writes `(p - y) / rows` for the logits, and the plan skips softmax_backward.
    pub(crate) fn fuses_softmax(&self, output_activation: crate::layers::Activation) -> bool {
        self.is_row_loss() && !self.from_logits() && output_activation == crate::layers::Activation::Softmax
    }

    /// The settings are in range (label smoothing in [0, 1]).
    pub(crate) fn validate(&self) -> Result<()> {
        let s = self.label_smoothing();
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::invalid("label_smoothing", s, "must be in [0, 1]"));
        }
        Ok(())
    }

    /// The loss fits a model of `output_w` outputs whose last activation is `activation`.
    pub(crate) fn check_output(&self, output_w: usize, activation: crate::layers::Activation) -> Result<()> {
        if self.is_categorical() && output_w < 2 {
            return Err(Error::Model(format!(
                "{} needs one output per class (at least 2), but the model has {output_w} output{}{}; \
                 for two classes use Dense(1) with sigmoid and binary_crossentropy, or Dense(2) with softmax",
                self.name(),
                if output_w == 1 { "" } else { "s" },
                if activation == crate::layers::Activation::Softmax {
                    " (a softmax over one unit is always 1)"
                } else {
                    ""
                },
            )));
        }
        Ok(())
    }

    /// Keras's name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::MeanAbsoluteError => "mae",
            Loss::MeanSquaredError => "mse",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// Whether the loss is a binary classification loss (targets 0/1, accuracy at 0.5).
    pub fn is_binary(&self) -> bool {
        matches!(self, Loss::BinaryCrossentropy { .. })
    }

    /// The targets are ones this loss can learn (`what`: where they came from, for the message).
    pub(crate) fn check_targets(&self, y: &Matrix, what: &str) -> Result<()> {
        let at = |i: usize| format!("{what} y at row {}, column {}", i / y.cols().max(1), i % y.cols().max(1));
        if self.is_sparse() {
            return Ok(());
        }
        if self.is_categorical() {
            if let Some(i) = y.data().iter().position(|v| *v < 0.0) {
                return Err(Error::invalid(
                    at(i),
                    y.data()[i],
                    "categorical_crossentropy targets must be non-negative",
                ));
            }
            // Keras computes any rows, but a row that is not a distribution is a mistake worth
            // naming (often integer labels given to the categorical loss instead of the sparse one).
            for (r, row) in y.data().chunks(y.cols().max(1)).enumerate() {
                let sum: f64 = row.iter().map(|&v| v as f64).sum();
                if (sum - 1.0).abs() > 1e-3 {
                    return Err(Error::invalid(
                        format!("{what} y row {r}"),
                        format!("a sum of {sum}"),
                        "categorical_crossentropy targets must be one-hot rows (or probabilities summing to 1); \
                         for integer class labels use sparse_categorical_crossentropy",
                    ));
                }
            }
            return Ok(());
        }
        if self.is_binary() {
            if let Some(i) = y.data().iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(Error::invalid(at(i), y.data()[i], "binary_crossentropy targets must be in [0, 1]"));
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
            "categorical_crossentropy" | "cce" => {
                Ok(Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 })
            }
            "sparse_categorical_crossentropy" | "scce" => {
                Ok(Loss::SparseCategoricalCrossentropy { from_logits: false })
            }
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

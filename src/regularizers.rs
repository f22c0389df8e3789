//! Weight regularizers (Keras's `kernel_regularizer` / `bias_regularizer`): a penalty on a
//! weight array added to the loss, and its gradient to the weights' gradients.
//!
//! Keras adds the penalty to every batch's loss (training and evaluation alike), so the reported
//! `loss` and `val_loss` include it. On the device one `penalty` launch per regularized array
//! (shaders/penalty.wgsl, twin `device::cpu::kernels::penalty`) adds `l1·sign(w) + 2·l2·w` to the
//! gradient and `rows · (l1·Σ|w| + l2·Σw²)` to the loss sum (the loss sum is per sample; the host
//! divides it by the rows once per epoch).

use crate::device::PenaltyArgs;
use crate::error::{Error, Result};

/// A penalty on a weight array: `l1 · Σ|w| + l2 · Σw²`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum Regularizer {
    /// `l1 · Σ|w|` (Keras's `L1`, default 0.01).
    L1 {
        /// The factor.
        l1: f32,
    },
    /// `l2 · Σw²` (Keras's `L2`, default 0.01).
    L2 {
        /// The factor.
        l2: f32,
    },
    /// Both (Keras's `L1L2`, defaults 0 and 0).
    L1L2 {
        /// The L1 factor.
        l1: f32,
        /// The L2 factor.
        l2: f32,
    },
}

impl Regularizer {
    /// The names `kernel_regularizer` accepts, for messages.
    pub const NAMES: &'static str = "l1, l2, l1l2, l1_l2";

    /// Keras's `L1(l1)`.
    pub fn l1(l1: f32) -> Self {
        Regularizer::L1 { l1 }
    }

    /// Keras's `L2(l2)`.
    pub fn l2(l2: f32) -> Self {
        Regularizer::L2 { l2 }
    }

    /// Keras's `L1L2(l1, l2)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Regularizer::L1L2 { l1, l2 }
    }

    /// The L1 and L2 factors.
    pub fn factors(&self) -> (f32, f32) {
        match *self {
            Regularizer::L1 { l1 } => (l1, 0.0),
            Regularizer::L2 { l2 } => (0.0, l2),
            Regularizer::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// The factors are finite and not negative (`what`: where it is set, for the message).
    pub(crate) fn validate(&self, what: &str) -> Result<()> {
        let (l1, l2) = self.factors();
        for (name, v) in [("l1", l1), ("l2", l2)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(format!("{what} {name}"), v, "must be a finite number >= 0"));
            }
        }
        Ok(())
    }

    /// The penalty of `w` computed on the host, in f64 (summaries and tests).
    pub fn penalty(&self, w: &[f32]) -> f64 {
        let (l1, l2) = self.factors();
        w.iter().map(|&v| l1 as f64 * (v as f64).abs() + l2 as f64 * (v as f64).powi(2)).sum()
    }

    /// Keras's form, for summaries: `L2(l2=0.01)`.
    pub fn describe(&self) -> String {
        match *self {
            Regularizer::L1 { l1 } => format!("L1(l1={l1})"),
            Regularizer::L2 { l2 } => format!("L2(l2={l2})"),
            Regularizer::L1L2 { l1, l2 } => format!("L1L2(l1={l1}, l2={l2})"),
        }
    }
}

impl std::str::FromStr for Regularizer {
    type Err = Error;

    /// Keras 3's names with their defaults: `l1` and `l2` (0.01), `l1l2` (0 and 0, as Keras 3's
    /// `L1L2()`); `l1_l2` is the 0.01 and 0.01 that Keras's documentation promises for that name.
    fn from_str(name: &str) -> Result<Regularizer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "l1" => Ok(Regularizer::l1(0.01)),
            "l2" => Ok(Regularizer::l2(0.01)),
            "l1l2" => Ok(Regularizer::l1_l2(0.0, 0.0)),
            "l1_l2" => Ok(Regularizer::l1_l2(0.01, 0.01)),
            _ => Err(Error::UnknownName { kind: "regularizer", name: name.to_string(), valid: Self::NAMES.into() }),
        }
    }
}

/// What `kernel_regularizer` accepts: a [`Regularizer`], or its Keras name.
pub trait IntoRegularizer {
    /// The regularizer, or an error naming the valid ones.
    fn into_regularizer(self) -> Result<Regularizer>;
}

impl IntoRegularizer for Regularizer {
    fn into_regularizer(self) -> Result<Regularizer> {
        Ok(self)
    }
}

impl IntoRegularizer for &str {
    fn into_regularizer(self) -> Result<Regularizer> {
        self.parse()
    }
}

/// One regularized weight array of a layer: where it sits in the parameter vector and its penalty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Penalty {
    pub offset: usize,
    pub len: usize,
    pub regularizer: Regularizer,
}

impl Penalty {
    /// The launch over a batch of `rows` rows; `write_gradient` when training; its sum added
    /// to the loss sum at `slot`.
    pub fn launch(&self, rows: usize, write_gradient: bool, slot: usize) -> PenaltyArgs {
        let (l1, l2) = self.regularizer.factors();
        PenaltyArgs {
            offset: self.offset as u32,
            len: self.len as u32,
            l1,
            l2,
            rows: rows as u32,
            write_gradient,
            slot: slot as u32,
        }
    }
}

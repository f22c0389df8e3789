//! Metrics reported per epoch: names, how they resolve against the loss (Keras's "accuracy"),
//! and where the loss kernel puts their sums.

use crate::device::LOSS_KERNEL_VALUES;
use crate::error::{Error, Result};
use crate::losses::Loss;

/// A metric reported per epoch in the History (training and `val_` forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    /// Mean absolute error.
    Mae,
    /// Mean squared error.
    Mse,
    /// Share of predictions with `(y_pred > 0.5) == y_true`.
    BinaryAccuracy,
}

impl Metric {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "mae, mse, binary_accuracy, accuracy";

    /// The metric and the key it is reported under ("accuracy" keeps its own name, as in Keras).
    pub(crate) fn resolve(name: &str, loss: &Loss) -> Result<(Metric, String)> {
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

impl std::str::FromStr for Metric {
    type Err = Error;

    /// The metric a name means on its own ("accuracy" is binary accuracy until `compile` sees the loss).
    fn from_str(name: &str) -> Result<Metric> {
        Metric::resolve(name, &Loss::BinaryCrossentropy { from_logits: false }).map(|(m, _)| m)
    }
}

/// The compiled metrics: keys in the user's order, and where their sums sit after the loss's.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MetricSet {
    list: Vec<(String, Metric)>,
    mask: u32,
}

impl MetricSet {
    /// Resolves names against the loss; repeated keys count once. More metrics than the loss
    /// kernel sums per pass is an error (not a silent overflow into the next slot).
    pub fn new(names: &[&str], loss: &Loss) -> Result<MetricSet> {
        let mut set = MetricSet::default();
        for name in names {
            let (metric, key) = Metric::resolve(name, loss)?;
            if !set.list.iter().any(|(k, _)| *k == key) {
                set.mask |= 1 << metric.code();
                set.list.push((key, metric));
            }
        }
        if set.values() > LOSS_KERNEL_VALUES {
            return Err(Error::invalid(
                "metrics",
                set.list.len(),
                format!("at most {} metrics per model", LOSS_KERNEL_VALUES - 1),
            ));
        }
        Ok(set)
    }

    /// Bit `Metric::code()` for each metric.
    pub fn mask(&self) -> u32 {
        self.mask
    }

    /// Sums per pass: the loss and one per distinct metric kind.
    pub fn values(&self) -> usize {
        1 + self.mask.count_ones() as usize
    }

    /// (key, offset after the loss's sum) in the user's order: the kernel writes metrics in
    /// `Metric::code()` order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, usize)> {
        self.list.iter().map(|(k, m)| (k.as_str(), 1 + (self.mask & ((1 << m.code()) - 1)).count_ones() as usize))
    }
}

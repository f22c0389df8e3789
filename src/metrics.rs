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
    /// Share of rows whose largest output is where y's largest value is (one-hot targets).
    CategoricalAccuracy,
    /// Share of rows whose largest output is at the class index y holds.
    SparseCategoricalAccuracy,
    /// Share of rows whose target class (y's largest value) is among the 5 largest outputs
    /// (TensorFlow's in_top_k: outputs tied with the target's count in its favour).
    TopKCategoricalAccuracy,
    /// The same with class-index targets.
    SparseTopKCategoricalAccuracy,
}

impl Metric {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "mae, mse, binary_accuracy, accuracy, categorical_accuracy, \
                                     sparse_categorical_accuracy, top_k_categorical_accuracy, \
                                     sparse_top_k_categorical_accuracy";

    /// The k of the top-k accuracies (Keras's default).
    pub const TOP_K: u32 = 5;

    /// The metric and the key it is reported under ("accuracy" keeps its own name, as in Keras).
    pub(crate) fn resolve(name: &str, loss: &Loss) -> Result<(Metric, String)> {
        let lower = name.trim().to_ascii_lowercase();
        let metric = match lower.as_str() {
            "mae" | "mean_absolute_error" => Metric::Mae,
            "mse" | "mean_squared_error" => Metric::Mse,
            // Keras resolves "accuracy" from the shapes of y and the output; here the loss fixes
            // them: a sparse loss has one column of class indices, a categorical one one-hot rows.
            "accuracy" | "acc" if loss.is_sparse() => Metric::SparseCategoricalAccuracy,
            "accuracy" | "acc" if loss.is_categorical() => Metric::CategoricalAccuracy,
            "binary_accuracy" | "accuracy" | "acc" => {
                if !loss.is_binary() && !loss.is_categorical() {
                    return Err(Error::Model(format!(
                        "metric {name:?} needs a classification loss (binary_crossentropy, \
                         categorical_crossentropy or sparse_categorical_crossentropy), but the loss is {}",
                        loss.name()
                    )));
                }
                Metric::BinaryAccuracy
            }
            "categorical_accuracy" => Metric::CategoricalAccuracy,
            "sparse_categorical_accuracy" => Metric::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" => Metric::TopKCategoricalAccuracy,
            "sparse_top_k_categorical_accuracy" => Metric::SparseTopKCategoricalAccuracy,
            _ => return Err(Error::UnknownName { kind: "metric", name: name.to_string(), valid: Self::NAMES.into() }),
        };
        // y is one column of class indices with a sparse loss, as wide as the output otherwise:
        // a metric that reads the other shape cannot be computed.
        if metric.sparse_targets() != loss.is_sparse() {
            let (needs, has) = if loss.is_sparse() {
                (
                    "targets as wide as the output",
                    "one column of class indices (sparse_categorical_crossentropy)".into(),
                )
            } else {
                ("one column of class indices", format!("targets as wide as the output ({})", loss.name()))
            };
            return Err(Error::Model(format!("metric {name:?} needs {needs}, but the loss takes {has}")));
        }
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
            Metric::CategoricalAccuracy => 3,
            Metric::SparseCategoricalAccuracy => 4,
            Metric::TopKCategoricalAccuracy => 5,
            Metric::SparseTopKCategoricalAccuracy => 6,
        }
    }

    /// Whether it reads class-index targets (one column) rather than rows as wide as the output.
    pub(crate) fn sparse_targets(self) -> bool {
        matches!(self, Metric::SparseCategoricalAccuracy | Metric::SparseTopKCategoricalAccuracy)
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;

    /// The metric a name means on its own ("accuracy" is binary accuracy until `compile` sees the
    /// loss; the sparse ones are read against class-index targets).
    fn from_str(name: &str) -> Result<Metric> {
        let loss = if name.trim().to_ascii_lowercase().starts_with("sparse_") {
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        } else {
            Loss::BinaryCrossentropy { from_logits: false }
        };
        Metric::resolve(name, &loss).map(|(m, _)| m)
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

/// Each row's class: the index of its largest value (the first of ties, as argmax; a NaN row is
/// class 0), or for a one-column matrix `value > 0.5` as 0/1.
pub(crate) fn classes_of(p: &crate::matrix::Matrix) -> Vec<f32> {
    let cols = p.cols().max(1);
    p.data()
        .chunks(cols)
        .map(|row| {
            if cols == 1 {
                return f32::from(u8::from(row[0] > 0.5));
            }
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = j;
                }
            }
            best as f32
        })
        .collect()
}

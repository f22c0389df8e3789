//! Metrics reported per epoch: names, how they resolve against the loss (Keras's "accuracy"),
//! where the loss kernel puts their sums, and the confusion-count metrics.
//!
//! Two kinds of metric, two buffers, both read back once per epoch with the loss:
//! - per-sample means (mae, mse, the accuracies; root_mean_squared_error is the square root of
//!   mse's mean): a sum each in the loss kernel's pass (at most 7 kinds, `LOSS_KERNEL_VALUES`);
//! - confusion metrics (auc, pr_auc, precision, recall, true_positives, false_positives,
//!   true_negatives, false_negatives): (TP, FP, TN, FN) counted at thresholds over the whole
//!   epoch by the confusion kernel (shaders/confusion.wgsl) into their own buffer; the value is
//!   computed here, on the host, from the epoch's counts (Keras's AUC of the epoch, not a mean of
//!   batch AUCs). Every AUC shares Keras's 200 thresholds and every other confusion metric the
//!   0.5 one, so any number of them costs at most 201 thresholds.

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
    /// Keras's RootMeanSquaredError: `sqrt(sum of squared errors / values)` over the epoch (the
    /// square root of mse's epoch mean, not a mean of batch roots).
    RootMeanSquaredError,
    /// Keras's AUC with its defaults: the ROC curve, 200 thresholds (`i / 199` for `i` in
    /// 1..198, with `-1e-7` and `1 + 1e-7` at the ends), interpolated (trapezoidal) summation,
    /// every output flattened (`multi_label=False`); a target is positive when not 0.
    Auc,
    /// Keras's `AUC(curve="PR")`: the precision-recall curve over the same 200 thresholds,
    /// summed by Keras's `interpolate_pr_auc` (Davis & Goadrich). Logged as "pr_auc" (Keras would
    /// call a second AUC "auc_1"; a name that says which curve is more useful in a History).
    PrAuc,
    /// `TP / (TP + FP)` at threshold 0.5 (a prediction is positive when `> 0.5`); 0 when
    /// nothing is predicted positive (Keras's divide_no_nan).
    Precision,
    /// `TP / (TP + FN)` at threshold 0.5; 0 when there is no positive target.
    Recall,
    /// Count of outputs `> 0.5` whose target is not 0, over the epoch.
    TruePositives,
    /// Count of outputs `> 0.5` whose target is 0.
    FalsePositives,
    /// Count of outputs `<= 0.5` whose target is 0.
    TrueNegatives,
    /// Count of outputs `<= 0.5` whose target is not 0.
    FalseNegatives,
}

impl Metric {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "mae, mse, root_mean_squared_error (rmse), binary_accuracy, accuracy, \
                                     categorical_accuracy, sparse_categorical_accuracy, \
                                     top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, auc, \
                                     pr_auc, precision, recall, true_positives, false_positives, \
                                     true_negatives, false_negatives";

    /// Thresholds of the AUCs (Keras's default `num_thresholds`).
    pub const AUC_THRESHOLDS: usize = 200;

    /// The threshold of precision, recall and the four counts (Keras's default).
    pub const THRESHOLD: f32 = 0.5;

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
            "root_mean_squared_error" | "rmse" => Metric::RootMeanSquaredError,
            "auc" => Metric::Auc,
            "pr_auc" => Metric::PrAuc,
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "true_positives" => Metric::TruePositives,
            "false_positives" => Metric::FalsePositives,
            "true_negatives" => Metric::TrueNegatives,
            "false_negatives" => Metric::FalseNegatives,
            _ => return Err(Error::UnknownName { kind: "metric", name: name.to_string(), valid: Self::NAMES.into() }),
        };
        // Confusion metrics threshold outputs against 0/1 targets: a regression loss's targets
        // are not labels (as binary_accuracy); a sparse loss's are class indices (below).
        if metric.is_confusion() && !loss.is_binary() && !loss.is_categorical() {
            return Err(Error::Model(format!(
                "metric {name:?} counts thresholded predictions against 0/1 targets and needs a classification \
                 loss (binary_crossentropy or categorical_crossentropy), but the loss is {}",
                loss.name()
            )));
        }
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
            "rmse" => "root_mean_squared_error".to_string(),
            other => other.to_string(),
        };
        Ok((metric, key))
    }

    /// Its bit in the loss kernel's metric mask (shaders/loss.wgsl: METRIC_*): the sum it is
    /// computed from (root_mean_squared_error: mse's); None for the confusion metrics.
    pub(crate) fn code(self) -> Option<u32> {
        Some(match self {
            Metric::Mae => 0,
            Metric::Mse | Metric::RootMeanSquaredError => 1,
            Metric::BinaryAccuracy => 2,
            Metric::CategoricalAccuracy => 3,
            Metric::SparseCategoricalAccuracy => 4,
            Metric::TopKCategoricalAccuracy => 5,
            Metric::SparseTopKCategoricalAccuracy => 6,
            _ => return None,
        })
    }

    /// Computed from confusion counts (the confusion kernel), not from a loss-kernel sum.
    pub fn is_confusion(self) -> bool {
        self.code().is_none()
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

/// The compiled metrics: keys in the user's order, where their sums sit after the loss's, and
/// the confusion kernel's thresholds.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MetricSet {
    list: Vec<(String, Metric)>,
    mask: u32,
    /// The confusion kernel's (t, s) pairs (shaders/confusion.wgsl): Keras's AUC thresholds
    /// when some AUC is asked for, then the 0.5 threshold when a thresholded metric is.
    thresholds: Vec<f32>,
    /// Index of the first AUC threshold, and of the 0.5 one.
    auc_at: Option<usize>,
    plain_at: Option<usize>,
}

/// Values of the confusion counts per threshold: TP, FP, TN, FN.
pub(crate) const COUNTS: usize = 4;

impl MetricSet {
    /// Resolves names against the loss; repeated keys count once. More kinds of per-sample
    /// metric than the loss kernel sums per pass is an error (not a silent overflow into the
    /// next slot); confusion metrics have no limit.
    pub fn new(names: &[&str], loss: &Loss) -> Result<MetricSet> {
        let mut set = MetricSet::default();
        let (mut auc, mut plain) = (false, false);
        for name in names {
            let (metric, key) = Metric::resolve(name, loss)?;
            if !set.list.iter().any(|(k, _)| *k == key) {
                match metric.code() {
                    Some(code) => set.mask |= 1 << code,
                    None if matches!(metric, Metric::Auc | Metric::PrAuc) => auc = true,
                    None => plain = true,
                }
                set.list.push((key, metric));
            }
        }
        if set.values() > LOSS_KERNEL_VALUES {
            return Err(Error::invalid(
                "metrics",
                set.list.iter().filter(|(_, m)| !m.is_confusion()).count(),
                format!("at most {} kinds of per-sample metric per model", LOSS_KERNEL_VALUES - 1),
            ));
        }
        if auc {
            // Keras's thresholds i / (n - 1), counted as its bucketed path counts them: pair
            // (i, n - 1), the first always (-1), the last never (n - 1).
            let n = Metric::AUC_THRESHOLDS;
            set.auc_at = Some(0);
            for i in 0..n {
                let t = if i == 0 { -1.0 } else { i as f32 };
                set.thresholds.extend([t, (n - 1) as f32]);
            }
        }
        if plain {
            set.plain_at = Some(set.thresholds.len() / 2);
            set.thresholds.extend([Metric::THRESHOLD, 0.0]);
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

    /// The confusion kernel's threshold pairs (empty: no confusion metric, no launch).
    pub fn threshold_pairs(&self) -> &[f32] {
        &self.thresholds
    }

    /// Thresholds the confusion kernel counts at.
    pub fn thresholds(&self) -> usize {
        self.thresholds.len() / 2
    }

    /// The keys in the user's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(k, _)| k.as_str())
    }

    /// Each metric's value for a pass: `sums` are the pass's loss-kernel sums (the loss's first),
    /// divided by `denominator` (the rows, or the weights' sum of weighted metrics: 0 gives 0, as
    /// Keras's divide_no_nan), `counts` its confusion counts (`COUNTS` per threshold).
    pub fn values_of<'s>(
        &'s self,
        sums: &'s [f32],
        counts: &'s [f32],
        denominator: f64,
    ) -> impl Iterator<Item = (&'s str, f32)> + 's {
        let mean = move |i: usize| divide_no_nan(sums.get(i).copied().unwrap_or(f32::NAN) as f64, denominator);
        self.list.iter().map(move |(k, m)| {
            let v = match m.code() {
                Some(code) => {
                    let mean = mean(1 + (self.mask & ((1 << code) - 1)).count_ones() as usize);
                    if *m == Metric::RootMeanSquaredError {
                        mean.sqrt()
                    } else {
                        mean
                    }
                }
                None => self.confusion_value(*m, counts),
            };
            (k.as_str(), v as f32)
        })
    }

    /// A confusion metric's value from a pass's counts.
    fn confusion_value(&self, m: Metric, counts: &[f32]) -> f64 {
        let at = |first: Option<usize>, n: usize| {
            first
                .and_then(|f| counts.get(COUNTS * f..COUNTS * (f + n)))
                .map(|c| c.chunks(COUNTS).map(|q| [q[0] as f64, q[1] as f64, q[2] as f64, q[3] as f64]).collect())
        };
        let curve: Option<Vec<[f64; 4]>> = at(self.auc_at, Metric::AUC_THRESHOLDS);
        let one: Option<Vec<[f64; 4]>> = at(self.plain_at, 1);
        let one = one.and_then(|v| v.first().copied());
        match (m, curve, one) {
            (Metric::Auc, Some(c), _) => roc_auc(&c),
            (Metric::PrAuc, Some(c), _) => pr_auc(&c),
            (Metric::Precision, _, Some([tp, fp, _, _])) => divide_no_nan(tp, tp + fp),
            (Metric::Recall, _, Some([tp, _, _, fn_])) => divide_no_nan(tp, tp + fn_),
            (Metric::TruePositives, _, Some(c)) => c[0],
            (Metric::FalsePositives, _, Some(c)) => c[1],
            (Metric::TrueNegatives, _, Some(c)) => c[2],
            (Metric::FalseNegatives, _, Some(c)) => c[3],
            _ => f64::NAN,
        }
    }
}

/// Keras's `ops.divide_no_nan`: 0 where the denominator is 0.
fn divide_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Keras's ROC AUC with interpolated summation from (TP, FP, TN, FN) per threshold, thresholds
/// ascending: the trapezoids between consecutive (false positive rate, recall) points.
pub(crate) fn roc_auc(c: &[[f64; 4]]) -> f64 {
    let point = |q: &[f64; 4]| (divide_no_nan(q[1], q[1] + q[2]), divide_no_nan(q[0], q[0] + q[3]));
    c.windows(2)
        .map(|w| {
            let ((x0, y0), (x1, y1)) = (point(&w[0]), point(&w[1]));
            (x0 - x1) * (y0 + y1) / 2.0
        })
        .sum()
}

/// Keras's `AUC.interpolate_pr_auc` (Davis & Goadrich 2006): precision interpolated linearly in
/// the count of predicted positives within each bucket and integrated exactly.
pub(crate) fn pr_auc(c: &[[f64; 4]]) -> f64 {
    c.windows(2)
        .map(|w| {
            let (tp0, tp1) = (w[0][0], w[1][0]);
            let (p0, p1) = (w[0][0] + w[0][1], w[1][0] + w[1][1]);
            let dtp = tp0 - tp1;
            let slope = divide_no_nan(dtp, (p0 - p1).max(0.0));
            let intercept = tp1 - slope * p1;
            let ratio = if p0 > 0.0 && p1 > 0.0 { divide_no_nan(p0, p1.max(0.0)) } else { 1.0 };
            divide_no_nan(slope * (dtp + intercept * ratio.ln()), (tp1 + w[1][3]).max(0.0))
        })
        .sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts at thresholds (-eps, 0.5, 1 + eps) of a perfect ranking, a reversed one and an
    /// empty epoch: the AUCs are 1, 0 and 0 (Keras's divide_no_nan, not NaN).
    #[test]
    fn auc_formulas_at_the_extremes() {
        // Two positives, two negatives; (TP, FP, TN, FN) per threshold.
        let perfect = [[2.0, 2.0, 0.0, 0.0], [2.0, 0.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0]];
        let reversed = [[2.0, 2.0, 0.0, 0.0], [0.0, 2.0, 0.0, 2.0], [0.0, 0.0, 2.0, 2.0]];
        assert_eq!(roc_auc(&perfect), 1.0);
        assert_eq!(roc_auc(&reversed), 0.0);
        assert!((pr_auc(&perfect) - 1.0).abs() < 1e-12, "{}", pr_auc(&perfect));
        let empty = [[0.0; 4]; 3];
        assert_eq!((roc_auc(&empty), pr_auc(&empty)), (0.0, 0.0));
    }

    /// Every AUC shares one list of 200 thresholds and every other confusion metric the 0.5
    /// one; rmse shares mse's sum; names resolve to Keras's keys.
    #[test]
    fn confusion_metrics_share_thresholds() {
        let bce = Loss::BinaryCrossentropy { from_logits: false };
        let set =
            MetricSet::new(&["auc", "pr_auc", "precision", "recall", "true_positives", "rmse", "mse"], &bce).unwrap();
        assert_eq!(set.thresholds(), Metric::AUC_THRESHOLDS + 1);
        assert_eq!(set.values(), 2, "the loss and mse's sum");
        assert_eq!(&set.threshold_pairs()[..4], &[-1.0, 199.0, 1.0, 199.0]);
        assert_eq!(&set.threshold_pairs()[2 * 199..], &[199.0, 199.0, 0.5, 0.0]);
        let keys: Vec<&str> = set.keys().collect();
        assert_eq!(keys[5], "root_mean_squared_error");
        assert_eq!(MetricSet::new(&["mae"], &bce).unwrap().thresholds(), 0);
    }
}

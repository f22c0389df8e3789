//! Sample and class weights (Keras's `sample_weight` and `class_weight`): their checks, and class
//! weights turned into one weight per row as Keras's `class_weight_to_sample_weights` does.
//!
//! Keras weighs the loss with them: a batch's loss is `sum(w_i * l_i) / batch_size` (not divided
//! by the sum of weights) and the epoch's loss is the batches' mean weighted by their sizes. The
//! compiled metrics stay unweighted means unless the model asks for Keras's `weighted_metrics`
//! ([`Sequential::weighted_metrics`](crate::Sequential::weighted_metrics)); those are
//! `sum(w_i * m_i) / sum(w_i)` (0 when every weight is 0, Keras's `divide_no_nan`).

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Checks one weight per row: as many as `rows`, each finite and at least 0.
pub(crate) fn check_sample_weights(what: &str, w: &[f32], rows: usize) -> Result<()> {
    if w.len() != rows {
        return Err(Error::shape(what, format!("{rows} weights (one per row)"), format!("{} weights", w.len())));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: what.to_string(), row: i, col: 0, value: w[i] });
    }
    if let Some(i) = w.iter().position(|&v| v < 0.0) {
        return Err(Error::invalid(format!("{what}[{i}]"), w[i], "a sample weight must be at least 0"));
    }
    Ok(())
}

/// Each row's class as Keras reads it for `class_weight`: the argmax of a row of several
/// columns (the first of ties, as numpy), else the value rounded half to even (numpy's round).
pub(crate) fn row_classes(y: &Matrix) -> Vec<i64> {
    let cols = y.cols().max(1);
    y.data()
        .chunks(cols)
        .map(|row| {
            if row.len() > 1 {
                let mut best = 0;
                for (j, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = j;
                    }
                }
                best as i64
            } else {
                row[0].round_ties_even() as i64
            }
        })
        .collect()
}

/// Checks `class_weight` against a model of `classes` classes (its outputs, 2 for one output):
/// every class known and listed once, every weight finite and at least 0.
pub(crate) fn check_class_weights(class_weight: &[(usize, f32)], classes: usize) -> Result<()> {
    for (i, &(class, w)) in class_weight.iter().enumerate() {
        if class >= classes {
            return Err(Error::invalid(
                "class_weight class",
                class,
                format!("a class of the model: 0 to {} (its {classes} classes)", classes - 1),
            ));
        }
        if class_weight[..i].iter().any(|&(c, _)| c == class) {
            return Err(Error::invalid("class_weight class", class, "each class listed once"));
        }
        if !w.is_finite() || w < 0.0 {
            return Err(Error::invalid(format!("class_weight[{class}]"), w, "a finite weight of at least 0"));
        }
    }
    Ok(())
}

/// One weight per row of `y`: its class's weight, 1 for a class `class_weight` does not list (as
/// Keras). Checked first against a model of `classes` classes.
pub(crate) fn class_weights_per_row(y: &Matrix, class_weight: &[(usize, f32)], classes: usize) -> Result<Vec<f32>> {
    check_class_weights(class_weight, classes)?;
    Ok(row_classes(y)
        .into_iter()
        .map(|c| class_weight.iter().find(|&&(k, _)| k as i64 == c).map_or(1.0, |&(_, w)| w))
        .collect())
}

/// scikit-learn's `class_weight="balanced"` for the targets `y` (class indices, 0/1 labels or
/// one-hot rows, read as [`class_weight`](crate::Fit::class_weight) reads them): each class present
/// weighs `rows / (classes present * its rows)`, so every class carries the same total weight.
/// An error for a row whose class is negative.
pub fn balanced_class_weights(y: &Matrix) -> Result<Vec<(usize, f32)>> {
    let classes = row_classes(y);
    let mut counts: Vec<usize> = Vec::new();
    for (row, &c) in classes.iter().enumerate() {
        let c = usize::try_from(c)
            .map_err(|_| Error::invalid(format!("class of target row {row}"), c, "a class index of at least 0"))?;
        if c >= counts.len() {
            counts.resize(c + 1, 0);
        }
        counts[c] += 1;
    }
    let present = counts.iter().filter(|&&n| n > 0).count();
    let rows = classes.len() as f64;
    Ok(counts
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(c, &n)| (c, (rows / (present as f64 * n as f64)) as f32))
        .collect())
}

/// The training rows' weights a fit asked for: `sample` checked, or `class` weights turned into
/// one per row for a model of `out_w` outputs (2 classes for one output), or none. Both at once
/// is Keras's ValueError.
pub(crate) fn training_weights(
    sample: Option<&[f32]>,
    class: Option<&[(usize, f32)]>,
    y: &Matrix,
    out_w: usize,
) -> Result<Option<Vec<f32>>> {
    match (sample, class) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "class_weight",
            "given with sample_weight",
            "one of them (Keras: you cannot `class_weight` and `sample_weight` at the same time; multiply the \
             class weights into the sample weights)",
        )),
        (Some(w), None) => {
            check_sample_weights("sample_weight", w, y.rows())?;
            Ok(Some(w.to_vec()))
        }
        (None, Some(c)) => class_weights_per_row(y, c, out_w.max(2)).map(Some),
        (None, None) => Ok(None),
    }
}

/// The training and the validation rows' weights.
pub(crate) type SplitWeights = (Option<Vec<f32>>, Option<Vec<f32>>);

/// Keras's validation_split of `sample_weight`: the first `at` of `rows` weights train, the rest
/// weigh the validation rows.
pub(crate) fn split_weights(w: Option<&[f32]>, at: usize, rows: usize) -> Result<SplitWeights> {
    match w {
        None => Ok((None, None)),
        Some(w) => {
            check_sample_weights("sample_weight", w, rows)?;
            Ok((Some(w[..at].to_vec()), Some(w[at..].to_vec())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_keras() {
        let y = Matrix::new(4, 1, vec![0.0, 1.0, 2.5, 3.5]).unwrap();
        assert_eq!(row_classes(&y), [0, 1, 2, 4]);
        let onehot = Matrix::new(2, 3, vec![0.0, 1.0, 1.0, 0.2, 0.1, 0.0]).unwrap();
        assert_eq!(row_classes(&onehot), [1, 0]);
    }

    #[test]
    fn balanced_is_scikit_learns() {
        let y = Matrix::new(6, 1, vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(balanced_class_weights(&y).unwrap(), [(0, 0.75), (1, 1.5)]);
        // An absent class gets no weight and does not count.
        let y = Matrix::new(3, 1, vec![0.0, 2.0, 2.0]).unwrap();
        assert_eq!(balanced_class_weights(&y).unwrap(), [(0, 1.5), (2, 0.75)]);
    }

    #[test]
    fn bad_weights_are_typed_errors() {
        assert!(matches!(check_sample_weights("w", &[1.0], 2), Err(Error::Shape { .. })));
        assert!(matches!(check_sample_weights("w", &[1.0, f32::NAN], 2), Err(Error::NonFinite { row: 1, .. })));
        assert!(matches!(check_sample_weights("w", &[-1.0, 1.0], 2), Err(Error::InvalidValue { .. })));
        assert!(matches!(check_class_weights(&[(2, 1.0)], 2), Err(Error::InvalidValue { .. })));
        assert!(matches!(check_class_weights(&[(0, 1.0), (0, 2.0)], 2), Err(Error::InvalidValue { .. })));
        assert!(matches!(check_class_weights(&[(0, -1.0)], 2), Err(Error::InvalidValue { .. })));
        let y = Matrix::new(3, 1, vec![0.0, 1.0, 1.0]).unwrap();
        assert_eq!(class_weights_per_row(&y, &[(1, 4.0)], 2).unwrap(), [1.0, 4.0, 4.0]);
    }
}

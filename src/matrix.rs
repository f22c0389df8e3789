//! A row-major f32 matrix: the one data type passed to fit, evaluate and predict.

use crate::error::{Error, Result};

/// A dense row-major `rows x cols` matrix of f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` as a `rows x cols` matrix; errors if the length does not match.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::shape(
                "Matrix::new",
                format!("{} values for {rows} x {cols}", rows.saturating_mul(cols)),
                format!("{} values", data.len()),
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// Copies a slice as a `rows x cols` matrix.
    pub fn from_slice(data: &[f32], rows: usize, cols: usize) -> Result<Self> {
        Self::new(rows, cols, data.to_vec())
    }

    /// Builds a matrix from rows of equal length.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != cols {
                return Err(Error::shape(
                    "Matrix::from_rows",
                    format!("{cols} values in row {i} (as in row 0)"),
                    format!("{} values", r.len()),
                ));
            }
            data.extend_from_slice(r);
        }
        Ok(Matrix { rows: rows.len(), cols, data })
    }

    /// A one-column matrix (a target vector).
    pub fn column(values: Vec<f32>) -> Self {
        Matrix { rows: values.len(), cols: 1, data: values }
    }

    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row after row.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Row `i` as a slice; `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.rows).then(|| &self.data[i * self.cols..(i + 1) * self.cols])
    }

    /// Element `(r, c)`; `None` out of range.
    pub fn get(&self, r: usize, c: usize) -> Option<f32> {
        (r < self.rows && c < self.cols).then(|| self.data[r * self.cols + c])
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Result<Matrix> {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            let row = self
                .row(i)
                .ok_or_else(|| Error::shape("select_rows", format!("a row below {}", self.rows), format!("row {i}")))?;
            data.extend_from_slice(row);
        }
        Ok(Matrix { rows: indices.len(), cols: self.cols, data })
    }

    /// Errors on the first NaN or infinity, naming `what`, the row and the column.
    pub(crate) fn check_finite(&self, what: &str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::NonFinite {
                what: what.to_string(),
                row: i / self.cols.max(1),
                col: i % self.cols.max(1),
                value: self.data[i],
            }),
        }
    }
}

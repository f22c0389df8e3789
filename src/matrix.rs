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

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row after row.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, without a copy.
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

/// What `fit`, `evaluate` and `predict` take as data: a [`Matrix`], or with the `ndarray` feature
/// an `ndarray::Array2<f32>` or `ArrayView2<f32>` (rows are samples).
pub trait AsMatrix {
    /// The data as a row-major matrix: borrowed where it already is one, copied otherwise.
    fn as_matrix(&self) -> Result<std::borrow::Cow<'_, Matrix>>;
}

impl AsMatrix for Matrix {
    fn as_matrix(&self) -> Result<std::borrow::Cow<'_, Matrix>> {
        Ok(std::borrow::Cow::Borrowed(self))
    }
}

#[cfg(feature = "ndarray")]
mod ndarray_interop {
    use std::borrow::Cow;

    use ndarray::{Array2, ArrayView2};

    use super::{AsMatrix, Matrix};
    use crate::error::Result;

    impl Matrix {
        /// The matrix as an ndarray view (no copy).
        pub fn view(&self) -> ArrayView2<'_, f32> {
            ArrayView2::from_shape((self.rows, self.cols), &self.data).expect("rows x cols values, row-major")
        }
    }

    /// A copy of the view's values in row-major order (any strides, transposed views too).
    impl From<ArrayView2<'_, f32>> for Matrix {
        fn from(a: ArrayView2<'_, f32>) -> Matrix {
            let (rows, cols) = a.dim();
            let data = match a.as_slice() {
                Some(s) => s.to_vec(),
                None => a.iter().copied().collect(),
            };
            Matrix { rows, cols, data }
        }
    }

    /// Takes the array's buffer when it is in standard (row-major, contiguous) layout, without
    /// copying; otherwise copies it into row-major order.
    impl From<Array2<f32>> for Matrix {
        fn from(a: Array2<f32>) -> Matrix {
            let (rows, cols) = a.dim();
            if a.is_standard_layout() {
                let (data, offset) = a.into_raw_vec_and_offset();
                if offset.unwrap_or(0) == 0 && data.len() == rows * cols {
                    return Matrix { rows, cols, data };
                }
                let data = data[offset.unwrap_or(0)..offset.unwrap_or(0) + rows * cols].to_vec();
                return Matrix { rows, cols, data };
            }
            Matrix::from(a.view())
        }
    }

    /// The matrix's buffer as an array (no copy).
    impl From<Matrix> for Array2<f32> {
        fn from(m: Matrix) -> Array2<f32> {
            Array2::from_shape_vec((m.rows, m.cols), m.data).expect("rows x cols values, row-major")
        }
    }

    impl AsMatrix for ArrayView2<'_, f32> {
        fn as_matrix(&self) -> Result<Cow<'_, Matrix>> {
            Ok(Cow::Owned(Matrix::from(self.view())))
        }
    }

    impl AsMatrix for Array2<f32> {
        fn as_matrix(&self) -> Result<Cow<'_, Matrix>> {
            Ok(Cow::Owned(Matrix::from(self.view())))
        }
    }
}

//! Tables from CSV files, train/validation splits and feature scaling fitted on the training rows.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A numeric table with named columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    /// Row-major values.
    pub values: Matrix,
}

impl Table {
    /// Reads a CSV file with a header row; every cell must be a number (the error names line,
    /// column and value). A UTF-8 byte-order mark and Windows line endings are accepted.
    pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse_csv(&bytes, path)
    }

    /// Parses CSV bytes; `path` only names the source in errors.
    pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Table> {
        let fmt = |detail: String| Error::Format { path: PathBuf::from(path), detail };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| fmt(format!("cannot read the header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(fmt("the file is empty: a header row is needed".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(fmt(format!("column name {c:?} appears twice in the header")));
            }
        }
        let mut data = Vec::new();
        let mut rows = 0;
        for record in reader.records() {
            let record = record.map_err(|e| match e.kind() {
                csv::ErrorKind::UnequalLengths { pos, expected_len, len } => fmt(format!(
                    "line {}: {len} fields, the header has {expected_len}",
                    pos.as_ref().map_or(0, |p| p.line())
                )),
                _ => fmt(e.to_string()),
            })?;
            let line = record.position().map_or(rows + 2, |p| p.line() as usize);
            for (c, cell) in record.iter().enumerate() {
                let v: f32 = cell
                    .trim()
                    .parse()
                    .map_err(|_| fmt(format!("line {line}, column {:?}: {cell:?} is not a number", columns[c])))?;
                data.push(v);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(fmt("the file has a header but no data rows".into()));
        }
        Ok(Table { values: Matrix::new(rows, columns.len(), data)?, columns })
    }

    /// Splits into features and a target column (by name; `None` = the last column).
    pub fn features_target(&self, target: Option<&str>) -> Result<(Matrix, Matrix)> {
        let t = match target {
            None => self.columns.len() - 1,
            Some(name) => self.columns.iter().position(|c| c == name).ok_or_else(|| {
                Error::Model(format!("target column {name:?} not found; columns: {}", self.columns.join(", ")))
            })?,
        };
        let (rows, cols) = (self.values.rows(), self.values.cols());
        let mut x = Vec::with_capacity(rows * (cols - 1));
        let mut y = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = self.values.row(r).expect("in range");
            for (c, v) in row.iter().enumerate() {
                if c == t {
                    y.push(*v);
                } else {
                    x.push(*v);
                }
            }
        }
        Ok((Matrix::new(rows, cols - 1, x)?, Matrix::column(y)))
    }
}

/// Min-max scaling fitted on training rows: (x - min) / (max - min), constant columns to 0.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MinMaxScaler {
    pub min: Vec<f32>,
    pub span: Vec<f32>,
}

impl MinMaxScaler {
    pub fn fit(x: &Matrix) -> MinMaxScaler {
        let cols = x.cols();
        let mut lo = vec![f32::INFINITY; cols];
        let mut hi = vec![f32::NEG_INFINITY; cols];
        for r in 0..x.rows() {
            for (c, v) in x.row(r).expect("in range").iter().enumerate() {
                lo[c] = lo[c].min(*v);
                hi[c] = hi[c].max(*v);
            }
        }
        let span = lo.iter().zip(&hi).map(|(l, h)| if h > l { h - l } else { 1.0 }).collect();
        MinMaxScaler { min: lo, span }
    }

    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        if x.cols() != self.min.len() {
            return Err(Error::shape("scaler", format!("fitted on {} columns, got {}", self.min.len(), x.cols())));
        }
        let cols = x.cols();
        let data = x.data().iter().enumerate().map(|(i, v)| (v - self.min[i % cols]) / self.span[i % cols]).collect();
        Matrix::new(x.rows(), cols, data)
    }
}

/// The course's split of a shipped dataset, min-max scaled with the training rows' statistics:
/// `(x_train, y_train, x_valid, y_valid)`. `split_json` holds `{"train": [..], "valid": [..]}`.
pub fn split_scaled(table: &Table, split_json: &str) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    #[derive(serde::Deserialize)]
    struct Split {
        train: Vec<usize>,
        valid: Vec<usize>,
    }
    let split: Split =
        serde_json::from_str(split_json).map_err(|e| Error::Format { path: "split".into(), detail: e.to_string() })?;
    let (x, y) = table.features_target(None)?;
    let (xt, yt) = (x.select_rows(&split.train)?, y.select_rows(&split.train)?);
    let (xv, yv) = (x.select_rows(&split.valid)?, y.select_rows(&split.valid)?);
    let scaler = MinMaxScaler::fit(&xt);
    Ok((scaler.transform(&xt)?, yt, scaler.transform(&xv)?, yv))
}

/// The shipped datasets of the course, with their fixed splits (compiled into the library).
pub mod shipped {
    use super::*;

    /// Concrete strength regression (1030 x 8), split 721 / 309.
    pub fn concrete() -> Result<(Matrix, Matrix, Matrix, Matrix)> {
        let t = Table::parse_csv(include_bytes!("../data/concrete.csv"), Path::new("data/concrete.csv"))?;
        split_scaled(&t, include_str!("../data/concrete.json"))
    }

    /// Ionosphere binary classification (351 x 33), split 246 / 105.
    pub fn ionosphere() -> Result<(Matrix, Matrix, Matrix, Matrix)> {
        let t = Table::parse_csv(include_bytes!("../data/ionosphere.csv"), Path::new("data/ionosphere.csv"))?;
        split_scaled(&t, include_str!("../data/ionosphere.json"))
    }
}

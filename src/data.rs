//! Tables from CSV files, train/validation splits, one-hot encoding and feature scaling fitted on
//! the training rows.
//!
//! The usual path from a user's CSV to matrices:
//!
//! ```no_run
//! use wgfit::data::{CsvOptions, Preprocessor, RawTable, ScaleKind};
//! # fn main() -> wgfit::Result<()> {
//! let table = RawTable::read_csv("houses.csv")?;
//! let (train, valid) = table.split_last(0.2)?; // Keras's validation_split: the last 20 %
//! let opts = CsvOptions::new().target("price").drop(&["id"]).categorical(&["city"]).scale(ScaleKind::Standard);
//! let pre = Preprocessor::fit(&train, &opts)?; // categories and scaling learned on `train` only
//! let (x_train, y_train) = pre.transform_xy(&train)?;
//! let (x_valid, y_valid) = pre.transform_xy(&valid)?;
//! # Ok(())
//! # }
//! ```
//!
//! Rules, stated once:
//! - The first row is the header; names are trimmed, must be unique and non-empty. A UTF-8
//!   byte-order mark and Windows (CRLF) line endings are accepted.
//! - Every row has as many fields as the header. Numeric cells must parse as finite numbers: an
//!   empty, non-numeric, NaN or infinite cell is an [`Error::Format`] naming the line (1-based, the
//!   header is line 1), the column and the value.
//! - Categorical columns are one-hot encoded, one output column per category, categories sorted
//!   (byte order) and learned on the rows given to [`Preprocessor::fit`]. A category that was not
//!   seen there is an **error** at transform/predict time (it names the line, column, value and the
//!   known categories), never a silent all-zero row.
//! - Scaling (min-max or standardization) is fitted on the training rows and applies to the numeric
//!   feature columns; one-hot columns are left as 0/1. Constant columns scale to 0.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A CSV file as text cells: the header, and every row with the line it started on.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTable {
    /// Where the table came from (named in errors).
    pub source: PathBuf,
    pub columns: Vec<String>,
    /// Cells, trimmed, row by row; every row has `columns.len()` cells.
    pub rows: Vec<Vec<String>>,
    /// The 1-based line of the file each row starts on (the header is line 1).
    pub lines: Vec<usize>,
}

impl RawTable {
    /// Reads a CSV file with a header row (see the module's rules).
    pub fn read_csv(path: impl AsRef<Path>) -> Result<RawTable> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse_csv(&bytes, path)
    }

    /// Parses CSV bytes; `path` only names the source in errors.
    pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<RawTable> {
        let fmt = |detail: String| Error::Format { path: PathBuf::from(path), detail };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        // Windows line endings: the csv crate reads them, but counts lines one short; normalize.
        let normalized: Vec<u8>;
        let bytes = if bytes.contains(&b'\r') {
            normalized = crlf_to_lf(bytes);
            &normalized[..]
        } else {
            bytes
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(fmt("the file is empty: a header row and data rows are needed".into()));
        }
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| fmt(format!("cannot read the header: {}", csv_error(&e))))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(fmt("the file is empty: a header row is needed".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() {
                return Err(fmt(format!("line 1: column {} has an empty name in the header", i + 1)));
            }
            if let Some(j) = columns[..i].iter().position(|p| p == c) {
                return Err(fmt(format!(
                    "line 1: duplicate column name {c:?} (columns {} and {}); column names must be unique",
                    j + 1,
                    i + 1
                )));
            }
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| fmt(csv_error(&e)))?;
            let line = record.position().map_or(rows.len() + 2, |p| p.line() as usize);
            rows.push(record.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>());
            lines.push(line);
        }
        if rows.is_empty() {
            return Err(fmt("the file has a header but no data rows".into()));
        }
        Ok(RawTable { source: path.to_path_buf(), columns, rows, lines })
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The index of column `name`, or an error listing the columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| self.err(format!("column {name:?} not found; the columns are: {}", self.columns.join(", "))))
    }

    fn err(&self, detail: String) -> Error {
        Error::Format { path: self.source.clone(), detail }
    }

    /// The number in row `r`, column `c`; an error naming line, column and value otherwise.
    pub fn number(&self, r: usize, c: usize) -> Result<f32> {
        let cell = &self.rows[r][c];
        match cell.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(self.err(format!(
                "line {}, column {} ({:?}): {cell:?} is not a finite number",
                self.lines[r],
                c + 1,
                self.columns[c]
            ))),
            Err(_) => Err(self.err(format!(
                "line {}, column {} ({:?}): {cell:?} is not a number{}",
                self.lines[r],
                c + 1,
                self.columns[c],
                if cell.is_empty() { " (empty cell)" } else { " (declare text columns as categorical)" }
            ))),
        }
    }

    /// Every row as numbers (all cells must be numeric).
    pub fn to_table(&self) -> Result<Table> {
        let mut data = Vec::with_capacity(self.rows.len() * self.columns.len());
        for r in 0..self.rows.len() {
            for c in 0..self.columns.len() {
                data.push(self.number(r, c)?);
            }
        }
        Ok(Table { columns: self.columns.clone(), values: Matrix::new(self.rows.len(), self.columns.len(), data)? })
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> RawTable {
        RawTable {
            source: self.source.clone(),
            columns: self.columns.clone(),
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
            lines: indices.iter().map(|&i| self.lines[i]).collect(),
        }
    }

    /// Keras's `validation_split`: the last `fraction` of the rows (in file order, before any
    /// shuffling) become the validation part. Both parts must be non-empty.
    pub fn split_last(&self, fraction: f32) -> Result<(RawTable, RawTable)> {
        let at = split_point(self.len(), fraction)?;
        let idx: Vec<usize> = (0..self.len()).collect();
        Ok((self.select(&idx[..at]), self.select(&idx[at..])))
    }

    /// A random split with `seed`: `fraction` of the rows (rounded up) go to validation.
    pub fn split_random(&self, fraction: f32, seed: u64) -> Result<(RawTable, RawTable)> {
        let at = split_point(self.len(), fraction)?;
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let (mut t, mut v) = (idx[..at].to_vec(), idx[at..].to_vec());
        t.sort_unstable();
        v.sort_unstable();
        Ok((self.select(&t), self.select(&v)))
    }
}

/// Replaces every CR LF with LF (and a lone CR, old Mac style, with LF).
fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            b'\r' => out.push(b'\n'),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Where Keras cuts for `validation_split`: `ceil(n * (1 - fraction))` training rows.
pub fn split_point(n: usize, fraction: f32) -> Result<usize> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::invalid("validation_split", fraction, "must be in (0, 1)"));
    }
    let at = ((n as f64) * (1.0 - fraction as f64)).ceil() as usize;
    if at == 0 || at >= n {
        return Err(Error::invalid(
            "validation_split",
            fraction,
            format!("leaves {at} training and {} validation rows out of {n}; both must be at least 1", n - at.min(n)),
        ));
    }
    Ok(at)
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
            "line {}: {len} fields, but the header has {expected_len} (ragged row)",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!("line {}: the text is not valid UTF-8", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => e.to_string(),
    }
}

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
        RawTable::read_csv(path)?.to_table()
    }

    /// Parses CSV bytes; `path` only names the source in errors.
    pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Table> {
        RawTable::parse_csv(bytes, path)?.to_table()
    }

    /// Splits into features and a target column (by name; `None` = the last column).
    pub fn features_target(&self, target: Option<&str>) -> Result<(Matrix, Matrix)> {
        let t = match target {
            None => self.columns.len().checked_sub(1).ok_or_else(|| Error::shape("table", "it has no columns"))?,
            Some(name) => self.columns.iter().position(|c| c == name).ok_or_else(|| {
                Error::Model(format!("target column {name:?} not found; columns: {}", self.columns.join(", ")))
            })?,
        };
        let (rows, cols) = (self.values.rows(), self.values.cols());
        if cols != self.columns.len() {
            return Err(Error::shape(
                "table",
                format!("{} column names for {} columns of values", self.columns.len(), cols),
            ));
        }
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
    #[serde(with = "exact_f32")]
    pub min: Vec<f32>,
    #[serde(with = "exact_f32")]
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
        if x.cols() != self.min.len() || self.span.len() != self.min.len() {
            return Err(Error::shape(
                "scaler",
                format!("fitted on {} columns ({} spans), got {}", self.min.len(), self.span.len(), x.cols()),
            ));
        }
        let cols = x.cols();
        let data = x.data().iter().enumerate().map(|(i, v)| (v - self.min[i % cols]) / self.span[i % cols]).collect();
        Matrix::new(x.rows(), cols, data)
    }
}

/// Which scaling to fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleKind {
    /// Leave the numbers as they are.
    None,
    /// (x - min) / (max - min), as the course does (the default).
    #[default]
    MinMax,
    /// (x - mean) / std (population std, as scikit-learn's StandardScaler).
    Standard,
}

impl ScaleKind {
    pub fn parse(name: &str) -> Result<ScaleKind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ScaleKind::None),
            "minmax" | "min_max" | "min-max" => Ok(ScaleKind::MinMax),
            "standard" | "standardize" | "zscore" => Ok(ScaleKind::Standard),
            _ => Err(Error::UnknownName { kind: "scaling", name: name.into(), valid: "minmax, standard, none".into() }),
        }
    }
}

/// A fitted scaling of feature columns, saved with the model: `x' = (x - offset) / divisor`
/// per column. Serialized externally tagged (`"none"`, `{"min_max": {..}}`, `{"standard": {..}}`)
/// so its numbers read back exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaler {
    None,
    MinMax(MinMaxScaler),
    Standard {
        #[serde(with = "exact_f32")]
        mean: Vec<f32>,
        #[serde(with = "exact_f32")]
        std: Vec<f32>,
    },
}

impl Scaler {
    /// Fits `kind` on the rows of `x`; columns where `skip[c]` is true are left unscaled.
    pub fn fit(kind: ScaleKind, x: &Matrix, skip: &[bool]) -> Scaler {
        let cols = x.cols();
        let skipped = |c: usize| skip.get(c).copied().unwrap_or(false);
        match kind {
            ScaleKind::None => Scaler::None,
            ScaleKind::MinMax => {
                let mut s = MinMaxScaler::fit(x);
                for c in (0..cols).filter(|&c| skipped(c)) {
                    s.min[c] = 0.0;
                    s.span[c] = 1.0;
                }
                Scaler::MinMax(s)
            }
            ScaleKind::Standard => {
                let n = x.rows().max(1) as f64;
                let mut mean = vec![0.0f64; cols];
                for r in 0..x.rows() {
                    for (c, v) in x.row(r).expect("in range").iter().enumerate() {
                        mean[c] += *v as f64;
                    }
                }
                mean.iter_mut().for_each(|m| *m /= n);
                let mut var = vec![0.0f64; cols];
                for r in 0..x.rows() {
                    for (c, v) in x.row(r).expect("in range").iter().enumerate() {
                        var[c] += (*v as f64 - mean[c]).powi(2);
                    }
                }
                let mut m32: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
                let mut s32: Vec<f32> = var
                    .iter()
                    .map(|v| {
                        let s = (v / n).sqrt() as f32;
                        if s > 0.0 && s.is_finite() {
                            s
                        } else {
                            1.0
                        }
                    })
                    .collect();
                for c in (0..cols).filter(|&c| skipped(c)) {
                    m32[c] = 0.0;
                    s32[c] = 1.0;
                }
                Scaler::Standard { mean: m32, std: s32 }
            }
        }
    }

    /// Applies the fitted scaling.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        let (off, div) = match self {
            Scaler::None => return Ok(x.clone()),
            Scaler::MinMax(s) => return s.transform(x),
            Scaler::Standard { mean, std } => (mean, std),
        };
        if x.cols() != off.len() || div.len() != off.len() {
            return Err(Error::shape(
                "scaler",
                format!("fitted on {} columns ({} standard deviations), got {}", off.len(), div.len(), x.cols()),
            ));
        }
        let cols = x.cols();
        let data = x.data().iter().enumerate().map(|(i, v)| (v - off[i % cols]) / div[i % cols]).collect();
        Matrix::new(x.rows(), cols, data)
    }

    /// Whether its per-column vectors have one length (a hand-edited model file may break that).
    pub fn is_consistent(&self) -> bool {
        match self {
            Scaler::None => true,
            Scaler::MinMax(s) => s.min.len() == s.span.len(),
            Scaler::Standard { mean, std } => mean.len() == std.len(),
        }
    }

    /// The number of columns it was fitted on (`None` for no scaling).
    pub fn width(&self) -> Option<usize> {
        match self {
            Scaler::None => None,
            Scaler::MinMax(s) => Some(s.min.len()),
            Scaler::Standard { mean, .. } => Some(mean.len()),
        }
    }
}

/// How to turn a CSV table into model inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvOptions {
    /// Target column name (default: the last column).
    pub target: Option<String>,
    /// Columns to ignore.
    pub drop: Vec<String>,
    /// Text columns to one-hot encode.
    pub categorical: Vec<String>,
    pub scale: ScaleKind,
}

impl CsvOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn target(mut self, name: &str) -> Self {
        self.target = Some(name.to_string());
        self
    }

    pub fn drop(mut self, names: &[&str]) -> Self {
        self.drop.extend(names.iter().map(|s| s.to_string()));
        self
    }

    pub fn categorical(mut self, names: &[&str]) -> Self {
        self.categorical.extend(names.iter().map(|s| s.to_string()));
        self
    }

    pub fn scale(mut self, kind: ScaleKind) -> Self {
        self.scale = kind;
        self
    }
}

/// One input feature column of the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// A numeric column, one model input.
    Numeric { column: String },
    /// A text column, one model input per category (in this order).
    OneHot { column: String, categories: Vec<String> },
}

impl Feature {
    pub fn column(&self) -> &str {
        match self {
            Feature::Numeric { column } | Feature::OneHot { column, .. } => column,
        }
    }

    /// Model inputs this column becomes.
    pub fn width(&self) -> usize {
        match self {
            Feature::Numeric { .. } => 1,
            Feature::OneHot { categories, .. } => categories.len(),
        }
    }
}

/// The fitted preprocessing of a CSV table (target, dropped columns, one-hot categories and
/// scaler), learned on the training rows and saved with the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preprocessor {
    pub target: String,
    pub dropped: Vec<String>,
    pub features: Vec<Feature>,
    pub scaler: Scaler,
}

impl Preprocessor {
    /// Learns the features, categories and scaling from `train` (the training rows only).
    pub fn fit(train: &RawTable, opts: &CsvOptions) -> Result<Preprocessor> {
        let target = match &opts.target {
            Some(t) => train.columns[train.column_index(t).map_err(|_| {
                train.err(format!("target column {t:?} not found; the columns are: {}", train.columns.join(", ")))
            })?]
            .clone(),
            None => train.columns.last().cloned().unwrap_or_default(),
        };
        for name in opts.drop.iter().chain(&opts.categorical) {
            train.column_index(name)?;
        }
        if opts.drop.contains(&target) {
            return Err(train.err(format!("the target column {target:?} cannot also be dropped")));
        }
        if opts.categorical.contains(&target) {
            return Err(
                train.err(format!("the target column {target:?} cannot be categorical (the target must be numeric)"))
            );
        }
        let mut features = Vec::new();
        for (c, name) in train.columns.iter().enumerate() {
            if *name == target || opts.drop.contains(name) {
                continue;
            }
            if opts.categorical.contains(name) {
                let mut categories: Vec<String> = train.rows.iter().map(|r| r[c].clone()).collect();
                categories.sort();
                categories.dedup();
                features.push(Feature::OneHot { column: name.clone(), categories });
            } else {
                features.push(Feature::Numeric { column: name.clone() });
            }
        }
        if features.is_empty() {
            return Err(train.err("no feature columns are left after removing the target and dropped columns".into()));
        }
        let mut pre = Preprocessor { target, dropped: opts.drop.clone(), features, scaler: Scaler::None };
        let x = pre.encode(train)?;
        let skip: Vec<bool> =
            pre.features.iter().flat_map(|f| vec![matches!(f, Feature::OneHot { .. }); f.width()]).collect();
        pre.scaler = Scaler::fit(opts.scale, &x, &skip);
        Ok(pre)
    }

    /// The number of model inputs.
    pub fn input_width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// Encoded but unscaled features.
    fn encode(&self, table: &RawTable) -> Result<Matrix> {
        let idx: Vec<usize> =
            self.features.iter().map(|f| table.column_index(f.column())).collect::<Result<Vec<_>>>()?;
        let width = self.input_width();
        let mut data = Vec::with_capacity(table.len() * width);
        for r in 0..table.len() {
            for (f, &c) in self.features.iter().zip(&idx) {
                match f {
                    Feature::Numeric { .. } => data.push(table.number(r, c)?),
                    Feature::OneHot { categories, column } => {
                        let cell = &table.rows[r][c];
                        let Ok(k) = categories.binary_search(cell) else {
                            return Err(table.err(format!(
                                "line {}, column {} ({column:?}): category {cell:?} was not seen in the training \
                                 data; known categories: {}",
                                table.lines[r],
                                c + 1,
                                categories.join(", ")
                            )));
                        };
                        data.extend((0..categories.len()).map(|i| if i == k { 1.0 } else { 0.0 }));
                    }
                }
            }
        }
        Matrix::new(table.len(), width, data)
    }

    /// The scaled model inputs of every row (the target column may be absent).
    pub fn transform_x(&self, table: &RawTable) -> Result<Matrix> {
        self.scaler.transform(&self.encode(table)?)
    }

    /// The target column (must be present and numeric).
    pub fn transform_y(&self, table: &RawTable) -> Result<Matrix> {
        let t = table.column_index(&self.target).map_err(|_| {
            table.err(format!(
                "target column {:?} not found; the columns are: {}",
                self.target,
                table.columns.join(", ")
            ))
        })?;
        Ok(Matrix::column((0..table.len()).map(|r| table.number(r, t)).collect::<Result<Vec<_>>>()?))
    }

    /// Inputs and target.
    pub fn transform_xy(&self, table: &RawTable) -> Result<(Matrix, Matrix)> {
        Ok((self.transform_x(table)?, self.transform_y(table)?))
    }

    /// The names of the model inputs (`col` or `col=category`).
    pub fn input_names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(|f| match f {
                Feature::Numeric { column } => vec![column.clone()],
                Feature::OneHot { column, categories } => categories.iter().map(|k| format!("{column}={k}")).collect(),
            })
            .collect()
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

/// Serde for `Vec<f32>` that round-trips bit for bit through JSON: written as serde_json writes
/// f32 (the shortest decimal that reads back to the same f32), read back with Rust's correctly
/// rounded `str::parse::<f32>` (serde_json itself reads through f64, which can round twice).
/// Reading needs serde_json's own deserializer (`from_str`/`from_slice`/`from_reader`).
pub(crate) mod exact_f32 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(serde::ser::Error::custom(format!("cannot save the non-finite value {x}")));
        }
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        parse(raw.get()).map_err(D::Error::custom)
    }

    /// Parses a JSON array of numbers to f32 exactly.
    pub fn parse(text: &str) -> Result<Vec<f32>, String> {
        let inner = text
            .trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| "expected an array of numbers".to_string())?;
        if inner.trim().is_empty() {
            return Ok(Vec::new());
        }
        inner
            .split(',')
            .enumerate()
            .map(|(i, s)| {
                let s = s.trim();
                match s.parse::<f32>() {
                    Ok(v) if v.is_finite() && !s.starts_with(['+', 'i', 'I', 'n', 'N']) => Ok(v),
                    _ => Err(format!("element {i} of a number array is {s:?}, not a finite number")),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_f32_round_trips_random_bits() {
        use rand::Rng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut v: Vec<f32> = (0..200_000).map(|_| f32::from_bits(rng.random())).filter(|x| x.is_finite()).collect();
        v.extend([0.0, -0.0, f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1e-45, 0.1, 1.0 / 3.0]);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct W(#[serde(with = "exact_f32")] Vec<f32>);
        let text = serde_json::to_string(&W(v.clone())).unwrap();
        let back: W = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), back.0.len());
        for (a, b) in v.iter().zip(&back.0) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
    }
}

//! Feature preprocessing fitted on the training rows: one-hot encoding of categorical columns and
//! scaling of numeric ones, saved with the model ([`Preprocessor`]).

use super::csv::{parse_number, Place};
use super::{cut, quoted, RawTable, Table};
use crate::error::{Error, Result};
use crate::io::exact_f32;
use crate::matrix::Matrix;

/// Min-max scaling fitted on training rows: (x - min) / (max - min), constant columns to 0.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MinMaxScaler {
    #[serde(with = "exact_f32")]
    pub(super) min: Vec<f32>,
    #[serde(with = "exact_f32")]
    pub(super) span: Vec<f32>,
}

impl MinMaxScaler {
    /// Learns every column's minimum and span from the rows of `x`.
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

    /// The fitted minimum of every column.
    pub fn min(&self) -> &[f32] {
        &self.min
    }

    /// The fitted `max - min` of every column (1 for a constant column).
    pub fn span(&self) -> &[f32] {
        &self.span
    }

    /// Scales `x` with the fitted statistics; it must have the columns the scaler was fitted on.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        if x.cols() != self.min.len() || self.span.len() != self.min.len() {
            return Err(Error::shape(
                "scaler",
                format!("{} columns (fitted on {}, with {} spans)", self.min.len(), self.min.len(), self.span.len()),
                format!("{} columns", x.cols()),
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
    /// Reads a name, case-insensitively: `none`, `minmax` (or `min_max`, `min-max`), `standard` (or
    /// `standardize`, `zscore`).
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
    /// No scaling: inputs pass through unchanged.
    None,
    /// Min-max scaling to [0, 1] over the training rows.
    MinMax(MinMaxScaler),
    /// Standardization: (x - mean) / std.
    Standard {
        /// Every column's mean over the training rows (0 for a skipped column, such as one-hot).
        #[serde(with = "exact_f32")]
        mean: Vec<f32>,
        /// Every column's population standard deviation (1 for a constant or skipped column).
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
                format!("{} columns (fitted on {}, with {} standard deviations)", off.len(), off.len(), div.len()),
                format!("{} columns", x.cols()),
            ));
        }
        let mut data = x.data().to_vec();
        for row in data.chunks_mut(x.cols().max(1)) {
            self.transform_row(row);
        }
        Matrix::new(x.rows(), x.cols(), data)
    }

    /// Applies the fitted scaling to one row of model inputs (the values of [`Scaler::transform`]).
    pub(super) fn transform_row(&self, row: &mut [f32]) {
        let (off, div) = match self {
            Scaler::None => return,
            Scaler::MinMax(s) => (&s.min, &s.span),
            Scaler::Standard { mean, std } => (mean, std),
        };
        for ((v, o), d) in row.iter_mut().zip(off).zip(div) {
            *v = (*v - o) / d;
        }
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
    /// Scaling of the numeric inputs (default min-max; one-hot columns are never scaled).
    pub scale: ScaleKind,
    /// Read a numeric target as class labels (`wgfit train --task multiclass`); a text target
    /// always is. The model then predicts a class index per row and the labels are saved.
    pub multiclass: bool,
}

impl CsvOptions {
    /// The defaults: the last column is the target, nothing dropped or categorical, min-max scaling.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the target column by name.
    pub fn target(mut self, name: &str) -> Self {
        self.target = Some(name.to_string());
        self
    }

    /// Adds columns to ignore.
    pub fn drop(mut self, names: &[&str]) -> Self {
        self.drop.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Adds text columns to one-hot encode (categories learned from the training rows).
    pub fn categorical(mut self, names: &[&str]) -> Self {
        self.categorical.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Sets the scaling of the numeric inputs.
    pub fn scale(mut self, kind: ScaleKind) -> Self {
        self.scale = kind;
        self
    }

    /// Reads a numeric target as class labels (a text target always is).
    pub fn multiclass(mut self, on: bool) -> Self {
        self.multiclass = on;
        self
    }
}

/// One input feature column of the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// A numeric column, one model input.
    Numeric {
        /// The CSV column's name.
        column: String,
    },
    /// A text column, one model input per category (in this order).
    OneHot {
        /// The CSV column's name.
        column: String,
        /// The distinct values seen in the training rows, sorted.
        categories: Vec<String>,
    },
}

impl Feature {
    /// The CSV column it reads.
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
///
/// Built by [`Preprocessor::fit`] or [`Preprocessor::unscaled_numeric`] (or read from a model
/// file), so its scaler is fitted on exactly its features' inputs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preprocessor {
    pub(super) target: String,
    pub(super) dropped: Vec<String>,
    pub(super) features: Vec<Feature>,
    pub(super) scaler: Scaler,
    /// A class target's labels in class-index order (text sorted, numbers in numeric order);
    /// `transform_y` gives each row's index. None: a numeric target, read as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) classes: Option<Vec<String>>,
}

impl Preprocessor {
    /// Learns the features, categories and scaling from `train` (the training rows only).
    pub fn fit(train: &RawTable, opts: &CsvOptions) -> Result<Preprocessor> {
        let (target, t) = resolve_columns(train, opts)?;
        let classes = class_labels(train, t, opts.multiclass)?;
        let features = feature_columns(train, &target, opts, |c| {
            let mut categories: Vec<String> = train.rows().iter().map(|r| r[c].clone()).collect();
            categories.sort();
            categories.dedup();
            categories
        })?;
        let mut pre = Preprocessor { target, dropped: opts.drop.clone(), features, scaler: Scaler::None, classes };
        let x = pre.encode(train)?;
        pre.scaler = Scaler::fit(opts.scale, &x, &pre.one_hot_inputs());
        Ok(pre)
    }

    /// Which model inputs are one-hot (left unscaled).
    pub(super) fn one_hot_inputs(&self) -> Vec<bool> {
        self.features.iter().flat_map(|f| vec![matches!(f, Feature::OneHot { .. }); f.width()]).collect()
    }

    /// The preprocessing of a model saved without one: every column of `table` is a number,
    /// unscaled. With `with_target` the last column is the target and the others are inputs;
    /// without, every column is an input (the last one still names the target).
    pub fn unscaled_numeric(table: &RawTable, with_target: bool) -> Result<Preprocessor> {
        let target = table.columns().last().cloned().unwrap_or_default();
        let opts = CsvOptions { target: Some(target), scale: ScaleKind::None, ..CsvOptions::new() };
        let mut p = Preprocessor::fit(table, &opts)?;
        if !with_target {
            // Without a target column, every column is an input (no scaling, so no scaler to widen).
            p.features.push(Feature::Numeric { column: p.target.clone() });
        }
        Ok(p)
    }

    /// The target column's name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The columns that were dropped.
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// The input feature columns, in model-input order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// A class target's labels, in class-index order (None for a numeric target).
    pub fn classes(&self) -> Option<&[String]> {
        self.classes.as_deref()
    }

    /// The fitted scaling of the model inputs.
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// The number of model inputs.
    pub fn input_width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// The column of each feature in `table` (an error naming the first one not found).
    pub(super) fn feature_indices(&self, table: &RawTable) -> Result<Vec<usize>> {
        self.features.iter().map(|f| table.column_index(f.column())).collect()
    }

    /// Encoded but unscaled features.
    fn encode(&self, table: &RawTable) -> Result<Matrix> {
        let idx = self.feature_indices(table)?;
        let width = self.input_width();
        let mut data = Vec::with_capacity(table.len() * width);
        for r in 0..table.len() {
            self.encode_row(&idx, |c| &table.rows()[r][c], table.at(r), table, &mut data)?;
        }
        Matrix::new(table.len(), width, data)
    }

    /// One row's encoded, unscaled features appended to `out` (`idx`: [`feature_indices`]; `cell`
    /// gives the row's cells, `header` names the columns and the source in errors): the one
    /// encoding of a row, of a table in memory or of a file read in pieces.
    ///
    /// [`feature_indices`]: Preprocessor::feature_indices
    pub(super) fn encode_row<'c>(
        &self,
        idx: &[usize],
        cell: impl Fn(usize) -> &'c str,
        at: Place,
        header: &RawTable,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        for (f, &c) in self.features.iter().zip(idx) {
            match f {
                Feature::Numeric { .. } => {
                    out.push(parse_number(cell(c), || at.to_string(), c, &header.columns()[c], header.source())?)
                }
                Feature::OneHot { categories, column } => {
                    let cell = cell(c);
                    let Ok(k) = categories.binary_search_by(|k| k.as_str().cmp(cell)) else {
                        return Err(header.err(format!(
                            "{at}, column {} ({}): category {} was not seen in the training \
                             data; known categories: {}",
                            c + 1,
                            quoted(column),
                            quoted(cell),
                            categories.iter().map(|k| cut(k)).collect::<Vec<_>>().join(", ")
                        )));
                    };
                    out.extend((0..categories.len()).map(|i| if i == k { 1.0 } else { 0.0 }));
                }
            }
        }
        Ok(())
    }

    /// The scaled model inputs of every row (the target column may be absent).
    pub fn transform_x(&self, table: &RawTable) -> Result<Matrix> {
        self.scaler.transform(&self.encode(table)?)
    }

    /// The target column's index in `table`, or the error of a target not found.
    pub(super) fn target_index(&self, table: &RawTable) -> Result<usize> {
        table.column_index(&self.target).map_err(|_| {
            table.err(format!(
                "target column {} not found; the columns are: {}",
                quoted(&self.target),
                table.column_list()
            ))
        })
    }

    /// The target column (must be present and numeric).
    pub fn transform_y(&self, table: &RawTable) -> Result<Matrix> {
        let t = self.target_index(table)?;
        let classes = self.class_index();
        let mut y = Vec::with_capacity(table.len());
        for r in 0..table.len() {
            y.push(self.target_value(classes.as_ref(), t, &table.rows()[r][t], table.at(r), table)?);
        }
        Ok(Matrix::column(y))
    }

    /// Each class label's index (None for a numeric target), for [`Preprocessor::target_value`].
    pub(super) fn class_index(&self) -> Option<ClassIndex> {
        self.classes.as_ref().map(|classes| {
            let mut index = std::collections::HashMap::with_capacity(classes.len());
            for (k, c) in classes.iter().enumerate() {
                index.entry(c.clone()).or_insert(k);
            }
            ClassIndex { index, numeric: classes_are_numeric(classes) }
        })
    }

    /// One row's target (`cell`, in column `t`): the number, or with class labels its class
    /// index; the one reading of a target, of a table in memory or of a file read in pieces.
    pub(super) fn target_value(
        &self,
        classes: Option<&ClassIndex>,
        t: usize,
        cell: &str,
        at: Place,
        header: &RawTable,
    ) -> Result<f32> {
        let number = || parse_number(cell, || at.to_string(), t, &header.columns()[t], header.source());
        let Some(ClassIndex { index, numeric }) = classes else {
            return number();
        };
        let cell = cell.trim();
        let key = if *numeric { number()?.to_string() } else { cell.to_string() };
        match index.get(&key) {
            Some(&k) => Ok(k as f32),
            None => {
                let classes = self.classes.as_deref().unwrap_or_default();
                Err(header.err(format!(
                    "line {}, column {} ({}): class {} was not in the training data; known classes: {}",
                    at.n,
                    t + 1,
                    quoted(&self.target),
                    quoted(cell),
                    classes.iter().map(|k| cut(k)).collect::<Vec<_>>().join(", ")
                )))
            }
        }
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

/// A class target's labels by name, and whether they are numbers (read as f32 and written back).
pub(super) struct ClassIndex {
    index: std::collections::HashMap<String, usize>,
    numeric: bool,
}

/// The target column's name and index for `opts`, after the checks of the options against the
/// columns (`table`'s header; its rows are not read): the first step of a fit, in memory or of a
/// file read in pieces.
pub(super) fn resolve_columns(table: &RawTable, opts: &CsvOptions) -> Result<(String, usize)> {
    let columns = table.columns();
    let target = match &opts.target {
        Some(t) => columns[table.column_index(t).map_err(|_| {
            table.err(format!("target column {} not found; the columns are: {}", quoted(t), table.column_list()))
        })?]
        .clone(),
        None => columns.last().cloned().unwrap_or_default(),
    };
    for name in opts.drop.iter().chain(&opts.categorical) {
        table.column_index(name)?;
    }
    if opts.drop.contains(&target) {
        return Err(table.err(format!("the target column {} cannot also be dropped", quoted(&target))));
    }
    if opts.categorical.contains(&target) {
        return Err(table.err(format!(
            "the target column {} cannot be categorical (a text target is read as class labels \
             by itself; a numeric one with --task multiclass)",
            quoted(&target)
        )));
    }
    let t = table.column_index(&target)?;
    Ok((target, t))
}

/// The feature columns for `opts`: every column but the target and the dropped ones, in file
/// order, a categorical one with the categories `categories(c)` gives for column `c` (sorted,
/// distinct). At least one is needed.
pub(super) fn feature_columns(
    table: &RawTable,
    target: &str,
    opts: &CsvOptions,
    mut categories: impl FnMut(usize) -> Vec<String>,
) -> Result<Vec<Feature>> {
    let mut features = Vec::new();
    for (c, name) in table.columns().iter().enumerate() {
        if name == target || opts.drop.contains(name) {
            continue;
        }
        if opts.categorical.contains(name) {
            features.push(Feature::OneHot { column: name.clone(), categories: categories(c) });
        } else {
            features.push(Feature::Numeric { column: name.clone() });
        }
    }
    if features.is_empty() {
        return Err(table.err("no feature columns are left after removing the target and dropped columns".into()));
    }
    Ok(features)
}

/// The class labels of target column `t` of the training rows: None for a numeric target unless
/// `multiclass`; else the distinct values (numbers in numeric order, written as f32 prints them,
/// so "1" and "1.0" are one class; text sorted). At least two are needed.
fn class_labels(train: &RawTable, t: usize, multiclass: bool) -> Result<Option<Vec<String>>> {
    let numbers: Option<Vec<f32>> = (0..train.len()).map(|r| train.number(r, t).ok()).collect();
    let classes = match numbers {
        Some(_) if !multiclass => return Ok(None),
        Some(v) => number_labels(v),
        None => {
            let mut v: Vec<String> = train.rows().iter().map(|r| r[t].trim().to_string()).collect();
            v.sort();
            v.dedup();
            if let Some(empty) = v.iter().position(String::is_empty) {
                let r = train.rows().iter().position(|row| row[t].trim().is_empty()).unwrap_or(empty);
                return Err(empty_target(train, train.lines()[r]));
            }
            v
        }
    };
    check_class_count(train, t, classes).map(Some)
}

/// A numeric class target's labels from its values (any order, repeats): sorted, distinct,
/// written as f32 prints them.
pub(super) fn number_labels(mut v: Vec<f32>) -> Vec<String> {
    v.sort_by(f32::total_cmp);
    v.dedup();
    v.iter().map(|x| x.to_string()).collect()
}

/// The error of an empty class label on `line`.
pub(super) fn empty_target(table: &RawTable, line: usize) -> Error {
    table.err(format!("line {line}: the target is empty"))
}

/// `classes`, if there are at least two (a classifier needs them).
pub(super) fn check_class_count(table: &RawTable, t: usize, classes: Vec<String>) -> Result<Vec<String>> {
    if classes.len() < 2 {
        return Err(table.err(format!(
            "the class target {} has {} value{} in the training rows; a classifier needs at least 2",
            quoted(&table.columns()[t]),
            classes.len(),
            if classes.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(classes)
}

/// Whether a label list came from a numeric target (every label reads as a number).
fn classes_are_numeric(classes: &[String]) -> bool {
    classes.iter().all(|c| c.parse::<f32>().is_ok_and(f32::is_finite))
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

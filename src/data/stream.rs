//! A CSV or Parquet file read in pieces through a [`Preprocessor`]: the preprocessing fitted on
//! the file's rows ([`Preprocessor::fit_file`]) and a [`DataFile`] of its preprocessed features
//! ([`DataFile::open_preprocessed`]), with the values and errors of the in-memory path
//! ([`RawTable::read`], [`Preprocessor::fit`], [`Preprocessor::transform_xy`]).

use std::collections::{BTreeSet, HashSet};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};

use super::csv::{parse_number, Place};
use super::file::{stream_rows, Cells, RowSink, SpillParts};
use super::preprocess::{check_class_count, empty_target, feature_columns, number_labels, resolve_columns, ClassIndex};
use super::{CsvOptions, DataFile, Feature, MinMaxScaler, Preprocessor, RawTable, ScaleKind, Scaler};
use crate::error::{Error, Result};

/// Which rows of a file [`Preprocessor::fit_file`] and [`DataFile::open_preprocessed`] read, and
/// what else they read from it.
///
/// The defaults: every row, no sample weights, the target column read, the spill file in
/// [`std::env::temp_dir`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileOptions {
    rows: Option<Range<usize>>,
    sample_weight: Option<String>,
    spill_dir: Option<PathBuf>,
    without_target: bool,
}

impl FileOptions {
    /// The defaults (see the type).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the data rows `rows` (0-based, in file order): e.g. Keras's `validation_split` of a
    /// file of `n` rows is `0..at` to train on and `at..n` to validate with, where
    /// `at = `[`split_point`](super::split_point)`(n, fraction)` (`n` from
    /// [`DataFile::columns_and_rows`]). The range must be non-empty and within the file.
    pub fn rows(mut self, rows: Range<usize>) -> Self {
        self.rows = Some(rows);
        self
    }

    /// A numeric column of per-row sample weights (`wgfit train --sample-weight`), read into
    /// [`DataFile::sample_weights`]; a cell that is not a number is an error naming it. It is
    /// read besides the features: name it in [`CsvOptions::drop`] too, unless it should also be
    /// a feature.
    pub fn sample_weight(mut self, column: &str) -> Self {
        self.sample_weight = Some(column.to_string());
        self
    }

    /// The directory of the spill file (see [`DataFile::open_in`]).
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Does not read the target column, which may be absent (a file to predict): the
    /// [`DataFile::targets`] are then 0, and fitting or evaluating on the file (or validating on
    /// it) is an error that says so.
    pub fn without_target(mut self) -> Self {
        self.without_target = true;
        self
    }

    fn wanted(&self, r: usize) -> bool {
        self.rows.as_ref().is_none_or(|rows| rows.contains(&r))
    }

    /// Whether row `r` is the last one wanted (no row after it need be read).
    fn last_wanted(&self, r: usize) -> bool {
        self.rows.as_ref().is_some_and(|rows| r + 1 >= rows.end)
    }

    /// The rows wanted of a file of `n` rows, or the error of a range not within it.
    fn range(&self, n: usize, source: &Path) -> Result<Range<usize>> {
        match &self.rows {
            None => Ok(0..n),
            Some(rows) if rows.start < rows.end && rows.end <= n => Ok(rows.clone()),
            Some(rows) => Err(Error::invalid(
                "FileOptions::rows",
                format!("{}..{}", rows.start, rows.end),
                format!("a non-empty range of rows within the {n} data rows of {}", source.display()),
            )),
        }
    }
}

/// A [`RowSink`] of a closure over rows (the header ignored).
struct Rows<F>(F);

impl<F: FnMut(usize, Place, Cells<'_>) -> Result<ControlFlow<()>>> RowSink for Rows<F> {
    fn columns(&mut self, _: &[String]) {}
    fn row(&mut self, r: usize, place: Place, cells: Cells<'_>) -> Result<ControlFlow<()>> {
        (self.0)(r, place, cells)
    }
}

/// The column named `name` of `header`, if a name is given (an error naming the columns if not found).
fn column(header: &RawTable, name: Option<&str>) -> Result<Option<usize>> {
    name.map(|n| header.column_index(n)).transpose()
}

/// The statistics of one numeric feature column over the rows read so far.
struct Stat {
    column: usize,
    lo: f32,
    hi: f32,
    sum: f64,
    var: f64,
}

/// What the fit's pass collects (every row of the file is read, so that a fault of the file is
/// reported wherever it is, as in memory; the statistics are of the wanted rows only).
struct FitPass<'o> {
    source: &'o Path,
    opts: &'o CsvOptions,
    file: &'o FileOptions,
    header: RawTable,
    /// The weight column, the target's name and column: the checks of the header, in the
    /// in-memory order (the weights are read before the fit).
    weight: Result<Option<usize>>,
    plan: Result<(String, usize)>,
    bad_weight: Option<Error>,
    /// Distinct numeric targets (by their bits), for a `multiclass` target.
    numbers: HashSet<u32>,
    /// The first wanted row whose target is not a number (a class label), from which on every
    /// target is kept in `texts`, and the line of the first empty one.
    first_text: Option<usize>,
    texts: BTreeSet<String>,
    first_empty: Option<usize>,
    categories: Vec<(usize, BTreeSet<String>)>,
    stats: Vec<Stat>,
    /// The first numeric feature cell that is not a number (rows in order, columns in order).
    bad_value: Option<Error>,
    rows: usize,
}

impl RowSink for FitPass<'_> {
    fn columns(&mut self, columns: &[String]) {
        self.header = RawTable::header_only(self.source, columns.to_vec(), "line");
        self.weight = column(&self.header, self.file.sample_weight.as_deref());
        self.plan = resolve_columns(&self.header, self.opts);
        if let Ok((target, _)) = &self.plan {
            for (c, name) in columns.iter().enumerate() {
                if name == target || self.opts.drop.contains(name) {
                    continue;
                }
                if self.opts.categorical.contains(name) {
                    self.categories.push((c, BTreeSet::new()));
                } else {
                    self.stats.push(Stat { column: c, lo: f32::INFINITY, hi: f32::NEG_INFINITY, sum: 0.0, var: 0.0 });
                }
            }
        }
    }

    fn row(&mut self, r: usize, place: Place, cells: Cells<'_>) -> Result<ControlFlow<()>> {
        self.rows = r + 1;
        let (Ok(weight), Ok((_, t))) = (&self.weight, &self.plan) else {
            return Ok(ControlFlow::Continue(()));
        };
        if !self.file.wanted(r) {
            return Ok(ControlFlow::Continue(()));
        }
        let (header, source) = (&self.header, self.source);
        let number = |c: usize| parse_number(cells.get(c), || place.to_string(), c, &header.columns()[c], source);
        if let (Some(w), None) = (weight, &self.bad_weight) {
            self.bad_weight = number(*w).err();
        }
        let cell = cells.get(*t);
        if self.first_text.is_none() {
            match number(*t) {
                Ok(v) if self.opts.multiclass => {
                    self.numbers.insert(v.to_bits());
                }
                Ok(_) => {}
                Err(_) => {
                    self.first_text = Some(r);
                    self.numbers.clear();
                }
            }
        }
        if self.first_text.is_some() {
            let label = cell.trim();
            if label.is_empty() && self.first_empty.is_none() {
                self.first_empty = Some(place.n);
            }
            if !self.texts.contains(label) {
                self.texts.insert(label.to_string());
            }
        }
        for (c, set) in &mut self.categories {
            let cell = cells.get(*c);
            if !set.contains(cell) {
                set.insert(cell.to_string());
            }
        }
        if self.bad_value.is_none() {
            for s in &mut self.stats {
                match number(s.column) {
                    Ok(v) => {
                        s.lo = s.lo.min(v);
                        s.hi = s.hi.max(v);
                        s.sum += v as f64;
                    }
                    Err(e) => {
                        self.bad_value = Some(e);
                        break;
                    }
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl Preprocessor {
    /// [`Preprocessor::fit`] of a CSV or Parquet file read in pieces: what
    /// `Preprocessor::fit(&RawTable::read(path)?, opts)` learns (of the rows of
    /// [`FileOptions::rows`], else every row), without holding the file's rows in memory: the same
    /// features, categories in the same order, class labels and scaler statistics, bit for bit,
    /// and the same error for the same fault (a fault of the file itself, such as a ragged row,
    /// anywhere in it; then one of the options, a class target's, a numeric cell's). With
    /// [`FileOptions::sample_weight`] the weight column is checked first, as `wgfit train` reads
    /// it before the fit.
    ///
    /// The file is read once (twice for [`ScaleKind::Standard`], whose standard deviations need
    /// the means first, as in memory; once more in the rare case of a class target whose first
    /// rows hold numbers and later ones text). Memory: the distinct values of categorical columns
    /// and of a class target, and a few numbers per column.
    ///
    /// ```
    /// use wgfit::data::{CsvOptions, DataFile, FileOptions, Preprocessor, RawTable, ScaleKind};
    /// # fn main() -> wgfit::Result<()> {
    /// let opts = CsvOptions::new().target("compressive_strength").scale(ScaleKind::Standard);
    /// let pre = Preprocessor::fit_file("data/concrete.csv", &opts, &FileOptions::new())?;
    /// assert_eq!(pre, Preprocessor::fit(&RawTable::read("data/concrete.csv")?, &opts)?);
    ///
    /// // Keras's validation_split = 0.2: the preprocessing learned on the first rows only.
    /// let (_, n) = DataFile::columns_and_rows("data/concrete.csv")?;
    /// let at = wgfit::data::split_point(n, 0.2)?;
    /// let pre = Preprocessor::fit_file("data/concrete.csv", &opts, &FileOptions::new().rows(0..at))?;
    /// let train = DataFile::open_preprocessed("data/concrete.csv", &pre, &FileOptions::new().rows(0..at))?;
    /// let valid = DataFile::open_preprocessed("data/concrete.csv", &pre, &FileOptions::new().rows(at..n))?;
    /// assert_eq!((train.rows(), valid.rows(), train.features().len()), (at, n - at, 8));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit_file(path: impl AsRef<Path>, opts: &CsvOptions, file: &FileOptions) -> Result<Preprocessor> {
        let source = path.as_ref();
        let mut pass = FitPass {
            source,
            opts,
            file,
            header: RawTable::header_only(source, Vec::new(), "line"),
            weight: Ok(None),
            plan: Err(Error::Internal("no header read".into())),
            bad_weight: None,
            numbers: HashSet::new(),
            first_text: None,
            texts: BTreeSet::new(),
            first_empty: None,
            categories: Vec::new(),
            stats: Vec::new(),
            bad_value: None,
            rows: 0,
        };
        stream_rows(source, &mut pass)?;
        let rows = file.range(pass.rows, source)?;
        pass.weight?;
        if let Some(e) = pass.bad_weight {
            return Err(e);
        }
        let (target, t) = pass.plan?;
        let header = pass.header;
        let classes = match pass.first_text {
            Some(first) => {
                if first > rows.start {
                    // The rows before the first label that is not a number: their labels too.
                    let texts = &mut pass.texts;
                    stream_rows(
                        source,
                        &mut Rows(|r: usize, _, cells: Cells<'_>| {
                            if (rows.start..first).contains(&r) {
                                texts.insert(cells.get(t).trim().to_string());
                            }
                            Ok(if r + 1 >= first { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
                        }),
                    )?;
                }
                if let Some(line) = pass.first_empty {
                    return Err(empty_target(&header, line));
                }
                Some(check_class_count(&header, t, pass.texts.into_iter().collect())?)
            }
            None if opts.multiclass => {
                let labels = number_labels(pass.numbers.into_iter().map(f32::from_bits).collect());
                Some(check_class_count(&header, t, labels)?)
            }
            None => None,
        };
        let mut categories = pass.categories;
        let features = feature_columns(&header, &target, opts, |c| {
            categories
                .iter_mut()
                .find(|(k, _)| *k == c)
                .map(|(_, set)| std::mem::take(set).into_iter().collect())
                .unwrap_or_default()
        })?;
        if let Some(e) = pass.bad_value {
            return Err(e);
        }
        let mut stats = pass.stats;
        let n = rows.len().max(1) as f64;
        if opts.scale == ScaleKind::Standard {
            // The means, then the sums of squared deviations from them, as Scaler::fit.
            let means: Vec<f64> = stats.iter().map(|s| s.sum / n).collect();
            stream_rows(
                source,
                &mut Rows(|r: usize, place: Place, cells: Cells<'_>| {
                    if rows.contains(&r) {
                        for (s, mean) in stats.iter_mut().zip(&means) {
                            let c = s.column;
                            let v = parse_number(cells.get(c), || place.to_string(), c, &header.columns()[c], source)?;
                            s.var += (v as f64 - mean).powi(2);
                        }
                    }
                    Ok(if r + 1 >= rows.end { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
                }),
            )?;
        }
        // Per model input: a numeric column's statistics, or none for a one-hot input.
        let mut inputs: Vec<Option<&Stat>> = Vec::new();
        let mut numeric = stats.iter();
        for f in &features {
            match f {
                Feature::Numeric { .. } => inputs.push(numeric.next()),
                Feature::OneHot { categories, .. } => inputs.extend(categories.iter().map(|_| None)),
            }
        }
        let scaler = match opts.scale {
            ScaleKind::None => Scaler::None,
            ScaleKind::MinMax => {
                let (min, span) = inputs
                    .iter()
                    .map(|s| match s {
                        Some(s) => (s.lo, if s.hi > s.lo { s.hi - s.lo } else { 1.0 }),
                        None => (0.0, 1.0),
                    })
                    .unzip();
                Scaler::MinMax(MinMaxScaler { min, span })
            }
            ScaleKind::Standard => {
                let (mean, std) = inputs
                    .iter()
                    .map(|s| match s {
                        Some(s) => {
                            let sd = (s.var / n).sqrt() as f32;
                            ((s.sum / n) as f32, if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
                        }
                        None => (0.0, 1.0),
                    })
                    .unzip();
                Scaler::Standard { mean, std }
            }
        };
        Ok(Preprocessor { target, dropped: opts.drop.clone(), features, scaler, classes })
    }
}

/// What the pass of [`DataFile::open_preprocessed`] collects: the spill file's writer, the
/// targets and weights, and the first fault of each kind, reported in the in-memory order.
struct TransformPass<'a> {
    pre: &'a Preprocessor,
    source: &'a Path,
    file: &'a FileOptions,
    writer: super::file::SpillWriter<'a>,
    header: RawTable,
    weight: Result<Option<usize>>,
    inputs: Result<Vec<usize>>,
    target: Result<Option<usize>>,
    classes: Option<ClassIndex>,
    row: Vec<f32>,
    targets: Vec<f32>,
    weights: Vec<f32>,
    bad_weight: Option<Error>,
    bad_x: Option<Error>,
    bad_y: Option<Error>,
    rows: usize,
}

impl RowSink for TransformPass<'_> {
    fn columns(&mut self, columns: &[String]) {
        self.header = RawTable::header_only(self.source, columns.to_vec(), "line");
        self.weight = column(&self.header, self.file.sample_weight.as_deref());
        self.inputs = self.pre.feature_indices(&self.header);
        self.target = match self.file.without_target {
            true => Ok(None),
            false => self.pre.target_index(&self.header).map(Some),
        };
    }

    fn row(&mut self, r: usize, place: Place, cells: Cells<'_>) -> Result<ControlFlow<()>> {
        self.rows = r + 1;
        if !self.file.wanted(r) {
            return Ok(ControlFlow::Continue(()));
        }
        let header = &self.header;
        if let (Ok(Some(w)), None) = (&self.weight, &self.bad_weight) {
            match parse_number(cells.get(*w), || place.to_string(), *w, &header.columns()[*w], self.source) {
                Ok(v) => self.weights.push(v),
                Err(e) => self.bad_weight = Some(e),
            }
        }
        if let (Ok(idx), None) = (&self.inputs, &self.bad_x) {
            self.row.clear();
            match self.pre.encode_row(idx, |c| cells.get(c), place, header, &mut self.row) {
                Ok(()) => {
                    self.pre.scaler.transform_row(&mut self.row);
                    self.writer.write(&self.row)?;
                }
                Err(e) => self.bad_x = Some(e),
            }
        }
        match (&self.target, &self.bad_y) {
            (Ok(Some(t)), None) => match self.pre.target_value(self.classes.as_ref(), *t, cells.get(*t), place, header)
            {
                Ok(v) => self.targets.push(v),
                Err(e) => self.bad_y = Some(e),
            },
            (Ok(None), _) => self.targets.push(0.0),
            _ => {}
        }
        Ok(if self.file.last_wanted(r) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    }
}

impl DataFile {
    /// A [`DataFile`] of a CSV or Parquet file's rows through a fitted [`Preprocessor`]: its
    /// spill file holds the model inputs `pre.transform_xy(&RawTable::read(path)?)` gives (one-hot
    /// columns, scaled values, bit for bit), its targets are the target column's (a class
    /// target's class indices), read in pieces as [`DataFile::open`] reads. The rows are those
    /// of [`FileOptions::rows`] (else every row; reading stops after the last one wanted), with
    /// the sample weights of [`FileOptions::sample_weight`] in [`DataFile::sample_weights`]. A
    /// fault is the error the in-memory path reports for it: of the file, then of a weight, then
    /// of a feature (a cell that is not a number, a category not seen in the fit), then of the
    /// target. [`DataFile::features`] are the model inputs' names ([`Preprocessor::input_names`]).
    /// See [`Preprocessor::fit_file`] for an example.
    pub fn open_preprocessed(path: impl AsRef<Path>, pre: &Preprocessor, file: &FileOptions) -> Result<DataFile> {
        let source = path.as_ref();
        let width = pre.input_width();
        if !pre.scaler.is_consistent() || pre.scaler.width().is_some_and(|w| w != width) {
            return Err(Error::shape(
                "scaler",
                format!("{width} columns (one per model input)"),
                format!("{:?} columns", pre.scaler.width()),
            ));
        }
        let spill_dir = file.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        DataFile::write_spill(source, &spill_dir, |spill| {
            let mut pass = TransformPass {
                pre,
                source,
                file,
                writer: spill.writer(),
                header: RawTable::header_only(source, Vec::new(), "line"),
                weight: Ok(None),
                inputs: Ok(Vec::new()),
                target: Ok(None),
                classes: pre.class_index(),
                row: Vec::with_capacity(width),
                targets: Vec::new(),
                weights: Vec::new(),
                bad_weight: None,
                bad_x: None,
                bad_y: None,
                rows: 0,
            };
            stream_rows(source, &mut pass)?;
            file.range(pass.rows, source)?;
            let weight = pass.weight?;
            if let Some(e) = pass.bad_weight {
                return Err(e);
            }
            pass.inputs?;
            if let Some(e) = pass.bad_x {
                return Err(e);
            }
            pass.target?;
            if let Some(e) = pass.bad_y {
                return Err(e);
            }
            pass.writer.flush()?;
            Ok(SpillParts {
                features: pre.input_names(),
                target: pre.target().to_string(),
                targets: pass.targets,
                weights: weight.map(|_| pass.weights),
                has_targets: !file.without_target,
            })
        })
    }

    /// A CSV or Parquet file's column names and number of data rows, in one pass that reads it in
    /// pieces (as [`DataFile::open`]; a fault of the file is its error, no value is parsed): the
    /// row count a [`FileOptions::rows`] split needs.
    pub fn columns_and_rows(path: impl AsRef<Path>) -> Result<(Vec<String>, usize)> {
        struct Count(Vec<String>);
        impl RowSink for Count {
            fn columns(&mut self, columns: &[String]) {
                self.0 = columns.to_vec();
            }
            fn row(&mut self, _: usize, _: Place, _: Cells<'_>) -> Result<ControlFlow<()>> {
                Ok(ControlFlow::Continue(()))
            }
        }
        let mut count = Count(Vec::new());
        let rows = stream_rows(path.as_ref(), &mut count)?;
        Ok((count.0, rows))
    }
}

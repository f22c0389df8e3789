//! [`DataFile`]: a CSV or Parquet file trained on without holding its features in memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::csv::{parse_number, target_index, CsvRecords, Place};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A numeric CSV or Parquet file read in pieces, for [`Sequential::fit_file`],
/// [`Sequential::evaluate_file`] and [`Sequential::predict_file`] (and
/// [`Fit::validation_file`]), and for many models at once [`Sweep::fit_file`] and
/// [`cross_validate_file`]: the analogue of fitting Keras on a `tf.data` pipeline read from
/// files, with a global shuffle by row index and bounded memory.
///
/// [`DataFile::open`] reads the file once, in pieces (a CSV file record by record through a
/// buffered reader, a Parquet file one record batch at a time), and checks every value with the
/// rules and errors of the in-memory loaders ([`Table::read_csv`](super::Table::read_csv),
/// [`RawTable::read`](super::RawTable::read) then [`Table`](super::Table)`::features_target`):
/// a cell that is not a finite number is an error naming its line (CSV) or row (Parquet), column
/// and value, at open, never in the middle of training; when a file has several faults, the one
/// reported is the one the in-memory loaders report. One column is the target (by name, or the
/// last); every other column is a feature.
///
/// **Design.** The global shuffle needs any row at any time, which neither format gives cheaply
/// (a CSV row's place depends on every row before it; Parquet decodes whole pages). So the pass at
/// open writes the features as f32, one fixed-width row after another, to a *spill file* (in
/// [`std::env::temp_dir`], or the directory given to [`DataFile::open_in`]); a fill of the
/// training's chunk buffer then reads its rows there by offset, in file order (the fill's rows
/// grouped by the 4 MiB span of the file they are in, a span read in one go where its rows are
/// dense, else in runs of nearby rows), and places them in the epoch's order. The
/// spill file is made with `create_new` under a fresh name, removed if open fails part way, and
/// removed when the `DataFile` is dropped; it is a snapshot, so the source file may change or go
/// away after open. The target column (4 bytes a row) stays in memory
/// ([`DataFile::targets`]): the loss's target checks, class weights and `validation_split` need
/// every target, and it is small beside the features. Host memory while training is then a few
/// values per row (the target, each epoch's row order) and one chunk of features, whatever the
/// file's width; device memory is the chunk buffer ([`GpuOptions::max_data_bytes`], else a
/// default within one binding).
///
/// ```no_run
/// use wgfit::data::DataFile;
/// use wgfit::{Dense, Device, Fit, Sequential};
/// # fn main() -> wgfit::Result<()> {
/// let train = DataFile::open("houses.csv", Some("price"))?; // or a .parquet file
/// let mut model = Sequential::new(&Device::cpu(), vec![
///     Dense::new(64).activation("relu").input_shape(train.features().len()),
///     Dense::new(1),
/// ]);
/// model.compile("adam", "mse", &["mae"])?;
/// let history = model.fit_file(&train, Fit::new().validation_split(0.2).batch_size(256).epochs(10))?;
/// let scores = model.evaluate_file(&DataFile::open("houses_test.csv", Some("price"))?)?;
/// # let _ = (history, scores);
/// # Ok(())
/// # }
/// ```
///
/// [`Sequential::fit_file`]: crate::Sequential::fit_file
/// [`Sequential::evaluate_file`]: crate::Sequential::evaluate_file
/// [`Sequential::predict_file`]: crate::Sequential::predict_file
/// [`Fit::validation_file`]: crate::Fit::validation_file
/// [`Sweep::fit_file`]: crate::Sweep::fit_file
/// [`cross_validate_file`]: crate::cross_validate_file
/// [`GpuOptions::max_data_bytes`]: crate::GpuOptions::max_data_bytes
pub struct DataFile {
    source: PathBuf,
    features: Vec<String>,
    target: String,
    targets: Matrix,
    /// The rows' sample weights, when a weight column was read.
    weights: Option<Vec<f32>>,
    /// Whether the target column was read ([`FileOptions::without_target`] not given).
    ///
    /// [`FileOptions::without_target`]: super::FileOptions::without_target
    has_targets: bool,
    spill: Mutex<Spill>,
    spill_path: PathBuf,
}

impl std::fmt::Debug for DataFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFile")
            .field("source", &self.source)
            .field("rows", &self.rows())
            .field("features", &self.features.len())
            .field("target", &self.target)
            .field("spill", &self.spill_path)
            .finish()
    }
}

/// The spill file, open for reading, and the scratch of reads from it.
struct Spill {
    file: SpillFile,
    /// One read's values (f32 read as their little-endian bytes).
    values: Vec<f32>,
    /// A read's rows grouped by the span of the file they are in: the row in the high 32 bits,
    /// its place in the read below.
    grouped: Vec<u64>,
    /// Where each group starts in `grouped`.
    starts: Vec<usize>,
}

/// The spill file on disk: removed when dropped (also when open fails part way).
struct SpillFile {
    path: PathBuf,
    file: File,
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static SPILL_COUNTER: AtomicU64 = AtomicU64::new(0);

impl SpillFile {
    /// A new, empty spill file in `dir` under a name no other file has (`create_new`).
    fn create(dir: &Path) -> Result<SpillFile> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        for _ in 0..16 {
            let n = SPILL_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".wgfit-spill-{}-{n}-{nanos:08x}.f32", std::process::id()));
            match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(file) => return Ok(SpillFile { path, file }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Err(Error::Io { path: dir.to_path_buf(), source: std::io::Error::other("no free name for a spill file") })
    }

    fn io(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        |source| Error::Io { path: self.path.clone(), source }
    }
}

/// Rows within this many bytes of each other are read in one go (the gap read and dropped).
const READ_GAP_BYTES: usize = 32 << 10;
/// The most bytes one read of the spill file takes.
const READ_SPAN_BYTES: usize = 4 << 20;

/// One data row's cells as the in-memory tables hold them: a CSV record's cells trimmed
/// ([`RawTable::read_csv`](super::RawTable::read_csv)), an Arrow or Parquet row's cells as
/// [`RawTable::from_record_batches`](super::RawTable::from_record_batches) writes them.
pub(crate) enum Cells<'a> {
    Csv(&'a csv::StringRecord),
    #[cfg(feature = "parquet")]
    Arrow(&'a [String]),
}

impl<'a> Cells<'a> {
    /// Cell `c` (every row has one per column: the readers check it).
    pub(crate) fn get(&self, c: usize) -> &'a str {
        match self {
            Cells::Csv(record) => record.get(c).unwrap_or_default().trim(),
            #[cfg(feature = "parquet")]
            Cells::Arrow(cells) => cells[c].as_str(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Cells::Csv(record) => record.len(),
            #[cfg(feature = "parquet")]
            Cells::Arrow(cells) => cells.len(),
        }
    }
}

/// What a pass over a file's rows ([`stream_rows`]) does with them.
pub(crate) trait RowSink {
    /// The column names, before any row.
    fn columns(&mut self, columns: &[String]);
    /// Data row `r` (0-based, file order) from `place`. `Break` ends the pass (no later row is read).
    fn row(&mut self, r: usize, place: Place, cells: Cells<'_>) -> Result<ControlFlow<()>>;
}

/// Reads a CSV or Parquet file (by its kind, as [`RawTable::read`](super::RawTable::read)) row
/// by row into `sink`, in pieces: the one streamed reading of a data file (a [`DataFile`] at
/// open, [`Preprocessor::fit_file`](super::Preprocessor::fit_file)). A fault of the file itself
/// (the header, a ragged row, text that is not UTF-8, a null or a column of an unsupported type,
/// no data rows) is the in-memory reader's error, returned as met, so before whatever the sink
/// found in the rows before it (a null or unsupported column after the last batch is read, as in
/// memory). Returns the rows read.
pub(crate) fn stream_rows(path: &Path, sink: &mut impl RowSink) -> Result<usize> {
    if super::is_parquet(path) {
        return stream_parquet(path, sink);
    }
    let file = File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let (mut records, columns) = CsvRecords::new(BufReader::with_capacity(1 << 20, file), path)?;
    sink.columns(&columns);
    let mut r = 0;
    while let Some((line, record)) = records.next_record()? {
        r += 1;
        if sink.row(r - 1, Place { unit: "line", n: line }, Cells::Csv(record))?.is_break() {
            break;
        }
    }
    Ok(r)
}

/// [`stream_rows`] of a Parquet file: one record batch at a time, each turned into cells as
/// [`RawTable::from_record_batches`](super::RawTable::from_record_batches) does.
#[cfg(feature = "parquet")]
fn stream_parquet(path: &Path, sink: &mut impl RowSink) -> Result<usize> {
    use super::arrow::{batch_cells, column_names, format_error};
    let mut columns: Option<Vec<String>> = None;
    // A null or unsupported column is met (in memory) before any value is parsed.
    let mut bad_column: Option<Error> = None;
    let mut rows = 0;
    for (b, batch) in super::arrow::parquet_batches(path)?.enumerate() {
        let batch = batch?;
        let columns = match &columns {
            Some(c) => c,
            None => {
                let c = columns.insert(column_names(std::slice::from_ref(&batch), path)?);
                sink.columns(c);
                c
            }
        };
        if bad_column.is_some() {
            continue;
        }
        let first_row = rows;
        rows += batch.num_rows();
        match batch_cells(&batch, b, columns, first_row, path) {
            Ok(cells) => {
                for (i, row) in cells.iter().enumerate() {
                    let place = Place { unit: "row", n: first_row + i + 1 };
                    if sink.row(first_row + i, place, Cells::Arrow(row))?.is_break() {
                        return Ok(first_row + i + 1);
                    }
                }
            }
            Err(e) => bad_column = Some(e),
        }
    }
    if columns.is_none() {
        return Err(column_names(&[], path).err().unwrap_or_else(|| format_error(path, "no rows".into())));
    }
    if let Some(e) = bad_column {
        return Err(e);
    }
    if rows == 0 {
        return Err(format_error(path, "the table has no data rows".into()));
    }
    Ok(rows)
}

#[cfg(not(feature = "parquet"))]
fn stream_parquet(path: &Path, _sink: &mut impl RowSink) -> Result<usize> {
    Err(super::without_parquet(path))
}

/// A new spill file's writer: features are written as f32 in little-endian order, row after row.
pub(crate) struct SpillWriter<'f> {
    writer: BufWriter<&'f File>,
    path: &'f Path,
}

impl<'f> SpillWriter<'f> {
    fn new(spill: &'f SpillFile) -> Self {
        SpillWriter { writer: BufWriter::with_capacity(1 << 20, &spill.file), path: &spill.path }
    }

    /// Appends one row's values.
    pub(crate) fn write(&mut self, values: &[f32]) -> Result<()> {
        let mut bytes = [0u8; 256];
        for chunk in values.chunks(64) {
            for (b, v) in bytes.chunks_exact_mut(4).zip(chunk) {
                b.copy_from_slice(&v.to_le_bytes());
            }
            self.writer
                .write_all(&bytes[..chunk.len() * 4])
                .map_err(|source| Error::Io { path: self.path.to_path_buf(), source })?;
        }
        Ok(())
    }

    /// Writes out what is buffered (at the end of a pass; a write error is an error here).
    pub(crate) fn flush(mut self) -> Result<()> {
        self.writer.flush().map_err(|source| Error::Io { path: self.path.to_path_buf(), source })
    }
}

/// A new spill file, to write through [`SpillTarget::writer`] (see [`DataFile::write_spill`]).
pub(crate) struct SpillTarget<'s>(&'s SpillFile);

impl<'s> SpillTarget<'s> {
    pub(crate) fn writer(&self) -> SpillWriter<'s> {
        SpillWriter::new(self.0)
    }
}

/// What a pass writing a spill file found: the feature names (one per f32 of a row), the target
/// column's name, one target per row, and the sample weights if any.
pub(crate) struct SpillParts {
    pub features: Vec<String>,
    pub target: String,
    pub targets: Vec<f32>,
    pub weights: Option<Vec<f32>>,
    /// Whether the target column was read (else `targets` are 0: a file to predict on).
    pub has_targets: bool,
}

/// What the pass at open collects: the spill file's writer, the targets, and the first fault of
/// each kind, reported in the order the in-memory loaders would meet them.
struct Pass<'f> {
    source: &'f Path,
    writer: SpillWriter<'f>,
    target_name: Option<&'f str>,
    columns: Vec<String>,
    /// The target column, or why there is none (reported after any bad value, as
    /// `Table::features_target` runs after the table is read).
    target: Result<usize>,
    targets: Vec<f32>,
    row: Vec<f32>,
    /// The first cell that is not a finite number (`RawTable::to_table` reads rows in order).
    bad_value: Option<Error>,
    rows: usize,
}

impl RowSink for Pass<'_> {
    fn columns(&mut self, columns: &[String]) {
        self.columns = columns.to_vec();
        self.target = target_index(columns, self.target_name);
    }

    /// One row of cells: parsed, its features written to the spill file and its target kept.
    /// After a bad value only the count goes on.
    fn row(&mut self, _r: usize, place: Place, cells: Cells<'_>) -> Result<ControlFlow<()>> {
        self.rows += 1;
        if self.bad_value.is_some() {
            return Ok(ControlFlow::Continue(()));
        }
        let target = *self.target.as_ref().unwrap_or(&usize::MAX);
        self.row.clear();
        for c in 0..cells.len() {
            let v = match parse_number(cells.get(c).trim(), || place.to_string(), c, &self.columns[c], self.source) {
                Ok(v) => v,
                Err(e) => {
                    self.bad_value = Some(e);
                    return Ok(ControlFlow::Continue(()));
                }
            };
            if c == target {
                self.targets.push(v);
            } else {
                self.row.push(v);
            }
        }
        if self.target.is_ok() {
            self.writer.write(&self.row)?;
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl<'f> Pass<'f> {
    fn new(source: &'f Path, spill: &'f SpillFile, target: Option<&'f str>) -> Self {
        Pass {
            source,
            writer: SpillWriter::new(spill),
            target_name: target,
            columns: Vec::new(),
            target: Err(Error::Internal("no header read".into())),
            targets: Vec::new(),
            row: Vec::new(),
            bad_value: None,
            rows: 0,
        }
    }

    /// The faults in the in-memory loaders' order, else the feature and target columns and the
    /// targets.
    fn finish(mut self) -> Result<(Vec<String>, String, Vec<f32>)> {
        if let Some(e) = self.bad_value.take() {
            return Err(e);
        }
        let target = self.target?;
        self.writer.flush()?;
        let features = self.columns.iter().enumerate().filter(|&(c, _)| c != target).map(|(_, n)| n.clone()).collect();
        Ok((features, self.columns[target].clone(), self.targets))
    }
}

impl DataFile {
    /// Opens a CSV or Parquet file (Parquet: a `.parquet` or `.pq` name, or Parquet's magic
    /// bytes, with the `parquet` feature; anything else is CSV) with `target` as the target
    /// column (None: the last column), reads and checks every value once and writes the
    /// features to a spill file in [`std::env::temp_dir`]. See the type's documentation.
    pub fn open(path: impl AsRef<Path>, target: Option<&str>) -> Result<DataFile> {
        DataFile::open_in(path, target, std::env::temp_dir())
    }

    /// [`DataFile::open`] with the spill file in `spill_dir` (a disk with room for the
    /// features as f32: 4 bytes per feature per row).
    pub fn open_in(path: impl AsRef<Path>, target: Option<&str>, spill_dir: impl AsRef<Path>) -> Result<DataFile> {
        let path = path.as_ref();
        DataFile::write_spill(path, spill_dir.as_ref(), |spill| {
            let mut pass = Pass::new(path, spill.0, target);
            stream_rows(path, &mut pass)?;
            let (features, target, targets) = pass.finish()?;
            Ok(SpillParts { features, target, targets, weights: None, has_targets: true })
        })
    }

    /// A `DataFile` of the spill file that `fill` writes (through [`SpillWriter`]s) in a new
    /// spill file in `spill_dir`, with what it returns: the spill file is removed if `fill` fails,
    /// and its size checked against the rows and features it reports.
    pub(crate) fn write_spill(
        source: &Path,
        spill_dir: &Path,
        fill: impl FnOnce(&mut SpillTarget<'_>) -> Result<SpillParts>,
    ) -> Result<DataFile> {
        let spill = SpillFile::create(spill_dir)?;
        let SpillParts { features, target, targets, weights, has_targets } = fill(&mut SpillTarget(&spill))?;
        if u32::try_from(targets.len()).is_err() {
            return Err(Error::Format {
                path: source.to_path_buf(),
                detail: format!(
                    "{} rows; a DataFile holds at most {} (row orders are 32-bit)",
                    targets.len(),
                    u32::MAX
                ),
            });
        }
        let expected = targets.len() as u64 * features.len() as u64 * 4;
        let written = spill.file.metadata().map_err(spill.io())?.len();
        if written != expected {
            return Err(Error::Internal(format!("the spill file holds {written} bytes, not {expected}")));
        }
        let spill_path = spill.path.clone();
        Ok(DataFile {
            source: source.to_path_buf(),
            target,
            features,
            targets: Matrix::column(targets),
            weights,
            has_targets,
            spill: Mutex::new(Spill { file: spill, values: Vec::new(), grouped: Vec::new(), starts: Vec::new() }),
            spill_path,
        })
    }

    /// The file it was opened from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.targets.rows()
    }

    /// The feature columns' names, in file order (the model's input width is their count).
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The target column's name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target column, one row per data row (kept in memory: see the type's documentation).
    pub fn targets(&self) -> &Matrix {
        &self.targets
    }

    /// [`DataFile::targets`] for a fit or an evaluation (`what`, for the message): an error for a
    /// file opened without its target column, whose targets are only placeholders.
    pub(crate) fn targets_for(&self, what: &str) -> Result<&Matrix> {
        if self.has_targets {
            return Ok(&self.targets);
        }
        Err(Error::invalid(
            what,
            self.source.display(),
            "the DataFile was opened without its target column (FileOptions::without_target): predict on it \
             (predict_file), but fit and evaluate need a file opened with its target",
        ))
    }

    /// The rows' sample weights, one per row, when the file was opened with a weight column
    /// ([`FileOptions::sample_weight`](super::FileOptions::sample_weight)); kept in memory as the
    /// targets are. They are used wherever the file is (training, validation, evaluation), as
    /// Keras uses a dataset's `(x, y, sample_weight)`.
    pub fn sample_weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// Where the features are spilled (removed when the `DataFile` is dropped).
    pub fn spill_path(&self) -> &Path {
        &self.spill_path
    }

    /// Rows `rows` as (features, target) matrices, read from the spill file.
    pub fn read_rows(&self, rows: Range<usize>) -> Result<(Matrix, Matrix)> {
        if rows.start > rows.end || rows.end > self.rows() {
            return Err(Error::shape(
                "DataFile::read_rows",
                format!("rows within 0..{}", self.rows()),
                format!("rows {}..{}", rows.start, rows.end),
            ));
        }
        let indices: Vec<u32> = (rows.start as u32..rows.end as u32).collect();
        let mut x = Vec::new();
        self.read_features(0, &indices, &mut x)?;
        let y = self.targets.data()[rows.clone()].to_vec();
        Ok((Matrix::new(rows.len(), self.features.len(), x)?, Matrix::column(y)))
    }

    /// Appends the features of rows `first + r` for each `r` of `rows`, in that order, to `out`:
    /// the rows read in file order, then placed.
    pub(crate) fn read_features(&self, first: usize, rows: &[u32], out: &mut Vec<f32>) -> Result<()> {
        self.read_features_in(first, rows, out, READ_GAP_BYTES, READ_SPAN_BYTES)
    }

    /// [`DataFile::read_features`] in reads of at most `span_bytes` (rounded to whole rows),
    /// reading the gaps between wanted rows where they average at most `gap_bytes`.
    ///
    /// The wanted rows are grouped by the span of the file they are in (a counting sort: one
    /// pass, as a fill of a whole epoch's rows would otherwise spend longer sorting than
    /// reading). A dense group is one read from its first row to its last; a sparse one is
    /// sorted and read in runs of nearby rows.
    fn read_features_in(
        &self,
        first: usize,
        rows: &[u32],
        out: &mut Vec<f32>,
        gap_bytes: usize,
        span_bytes: usize,
    ) -> Result<()> {
        let w = self.features.len();
        let row_bytes = w * 4;
        let base = out.len();
        out.resize(base + rows.len() * w, 0.0);
        if row_bytes == 0 || rows.is_empty() {
            return Ok(());
        }
        let mut guard =
            self.spill.lock().map_err(|_| Error::State("a DataFile's reader panicked in another thread".into()))?;
        let Spill { file, values, grouped, starts } = &mut *guard;
        let span_rows = (span_bytes / row_bytes).max(1);
        let groups = self.rows().div_ceil(span_rows);
        starts.clear();
        starts.resize(groups + 1, 0);
        for &r in rows {
            let r = first + r as usize;
            if r >= self.rows() {
                return Err(Error::Internal(format!("row {r} of a DataFile of {} rows", self.rows())));
            }
            starts[r / span_rows + 1] += 1;
        }
        for g in 0..groups {
            starts[g + 1] += starts[g];
        }
        grouped.resize(rows.len(), 0);
        for (i, &r) in rows.iter().enumerate() {
            let r = first + r as usize;
            let at = &mut starts[r / span_rows];
            grouped[*at] = (r as u64) << 32 | i as u64;
            *at += 1;
        }
        // `starts[g]` is now where group g ends (and g + 1 begins).
        let (row_of, place_of) = (|k: u64| (k >> 32) as usize, |k: u64| (k & 0xffff_ffff) as usize);
        let mut read = |lo: usize, hi: usize, keys: &[u64]| -> Result<()> {
            let io = |source| Error::Io { path: file.path.clone(), source };
            values.resize((hi - lo) * w, 0.0);
            (&file.file).seek(SeekFrom::Start((lo * row_bytes) as u64)).map_err(io)?;
            (&file.file).read_exact(bytemuck::cast_slice_mut(values.as_mut_slice())).map_err(io)?;
            if cfg!(target_endian = "big") {
                for v in values.iter_mut() {
                    *v = f32::from_bits(u32::from_le(v.to_bits()));
                }
            }
            for &k in keys {
                out[base + place_of(k) * w..][..w].copy_from_slice(&values[(row_of(k) - lo) * w..][..w]);
            }
            Ok(())
        };
        let gap_rows = (gap_bytes / row_bytes).max(1);
        let mut begin = 0;
        for g in 0..groups {
            let group = &mut grouped[begin..starts[g]];
            begin = starts[g];
            let Some((lo, hi)) = group.iter().fold(None, |b: Option<(usize, usize)>, &k| {
                let r = row_of(k);
                Some(b.map_or((r, r), |(lo, hi)| (lo.min(r), hi.max(r))))
            }) else {
                continue;
            };
            if (hi + 1 - lo).saturating_sub(group.len()) <= group.len() * gap_rows {
                read(lo, hi + 1, group)?;
                continue;
            }
            group.sort_unstable();
            let mut i = 0;
            while i < group.len() {
                let mut j = i + 1;
                while j < group.len() && row_of(group[j]) - row_of(group[j - 1]) <= gap_rows {
                    j += 1;
                }
                read(row_of(group[i]), row_of(group[j - 1]) + 1, &group[i..j])?;
                i = j;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    /// Every way a read goes (dense groups read whole, sparse ones in runs, rows in several
    /// spans, rows repeated, an offset) places each row's features where it was asked for.
    #[test]
    fn rows_read_in_any_order_land_in_place() {
        let dir = std::env::temp_dir().join(format!("wgfit-read-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.csv");
        let mut text = String::from("a,b,y\n");
        for i in 0..5000 {
            text += &format!("{i},{},{}\n", -(i as f32) / 8.0, i % 3);
        }
        std::fs::write(&path, text).unwrap();
        let file = super::DataFile::open_in(&path, None, &dir).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // (rows asked for, gap bytes, span bytes): 8-byte rows, so a span of 800 bytes is 100 rows.
        for (n, gap, span) in [(4000, 64, 800), (30, 64, 800), (30, 8, 1 << 20), (5000, 1 << 15, 1 << 22), (1, 8, 8)] {
            for first in [0, 17] {
                let rows: Vec<u32> = (0..n).map(|_| rng.random_range(0..5000 - first as u32)).collect();
                let mut out = vec![7.0];
                file.read_features_in(first, &rows, &mut out, gap, span).unwrap();
                let want: Vec<f32> = std::iter::once(7.0)
                    .chain(rows.iter().flat_map(|&r| {
                        let r = r as usize + first;
                        [r as f32, -(r as f32) / 8.0]
                    }))
                    .collect();
                assert_eq!(out, want, "{n} rows from {first}, gap {gap}, span {span}");
            }
        }
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! CSV files as tables of text cells ([`RawTable`]) or numbers ([`Table`]), and the
//! train/validation splits of their rows.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{cut, quoted};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A CSV file as text cells: the header, and every row with the line it started on.
///
/// Built by [`RawTable::read_csv`] / [`RawTable::parse_csv`] (and the splits); every row has one
/// cell per column and one line number.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTable {
    source: PathBuf,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    lines: Vec<usize>,
    /// What `lines` count: "line" of a CSV file, or "row" of an Arrow table (1-based).
    unit: &'static str,
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
        let (mut records, columns) = CsvRecords::new(bytes, path)?;
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        while let Some((line, record)) = records.next_record()? {
            rows.push(record.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>());
            lines.push(line);
        }
        Ok(RawTable { source: path.to_path_buf(), columns, rows, lines, unit: "line" })
    }

    /// Where the table came from (named in errors).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The column names of the header, trimmed.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Cells, trimmed, row by row; every row has `columns().len()` cells.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The 1-based line of the file each row starts on (the header is line 1); for a table
    /// from Arrow or Parquet, the 1-based row number.
    pub fn lines(&self) -> &[usize] {
        &self.lines
    }

    /// Where row `r` came from, for messages: "line 7" of a CSV file, "row 6" of a Parquet file.
    pub(crate) fn place(&self, r: usize) -> String {
        self.at(r).to_string()
    }

    /// Where row `r` came from (see [`Place`]).
    pub(crate) fn at(&self, r: usize) -> Place {
        Place { unit: self.unit, n: self.lines[r] }
    }

    /// A table of `columns` and no rows: the header of a file read in pieces, whose errors (a
    /// column not found...) are then the same as its table's in memory. `unit`: "line" or "row".
    pub(crate) fn header_only(source: &Path, columns: Vec<String>, unit: &'static str) -> RawTable {
        RawTable { source: source.to_path_buf(), columns, rows: Vec::new(), lines: Vec::new(), unit }
    }

    /// A table of string cells from another format (Arrow): `numbers` are the rows' 1-based
    /// row numbers, named "row" in messages.
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pub(crate) fn from_cells(source: PathBuf, columns: Vec<String>, rows: Vec<Vec<String>>) -> RawTable {
        let lines = (1..=rows.len()).collect();
        RawTable { source, columns, rows, lines, unit: "row" }
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no data rows (never true for a table read from a file).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The index of column `name`, or an error listing the columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            self.err(format!("column {} not found; the columns are: {}", quoted(name), self.column_list()))
        })
    }

    /// The column names, comma-separated, each cut to a readable length (for errors).
    pub(crate) fn column_list(&self) -> String {
        self.columns.iter().map(|c| cut(c)).collect::<Vec<_>>().join(", ")
    }

    pub(crate) fn err(&self, detail: String) -> Error {
        Error::Format { path: self.source.clone(), detail }
    }

    /// The number in row `r`, column `c`; an error naming line, column and value otherwise.
    pub fn number(&self, r: usize, c: usize) -> Result<f32> {
        parse_number(&self.rows[r][c], || self.place(r), c, &self.columns[c], &self.source)
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
            unit: self.unit,
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

/// Where a data row came from, for messages: its 1-based line of a CSV file (the header is line 1)
/// or row of an Arrow or Parquet table. Written "line 7", "row 6".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    /// "line" (CSV) or "row" (Arrow, Parquet).
    pub unit: &'static str,
    /// The 1-based line or row number.
    pub n: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.unit, self.n)
    }
}

/// A numeric cell (trimmed) as an f32: the one rule every loader applies (a CSV table, an Arrow
/// or Parquet table's cells, a [`DataFile`](super::DataFile) read in pieces). A cell that is not a
/// finite number is an [`Error::Format`] naming `place()` ("line 7", "row 6"; only called then),
/// the 1-based column, its name and the value.
pub(crate) fn parse_number(
    cell: &str,
    place: impl FnOnce() -> String,
    c: usize,
    column: &str,
    source: &Path,
) -> Result<f32> {
    let err = |detail: String| Error::Format { path: source.to_path_buf(), detail };
    match cell.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(err(format!(
            "{}, column {} ({}): {} is not a finite number",
            place(),
            c + 1,
            quoted(column),
            quoted(cell)
        ))),
        Err(_) => Err(err(format!(
            "{}, column {} ({}): {} is not a number{}",
            place(),
            c + 1,
            quoted(column),
            quoted(cell),
            if cell.is_empty() { " (empty cell)" } else { " (declare text columns as categorical)" }
        ))),
    }
}

/// CSV text read one record at a time, whatever its size: the header checked (see the module's
/// rules), then each data record with the line it starts on. The one CSV reader of the crate:
/// [`RawTable::parse_csv`] keeps the cells, a [`DataFile`](super::DataFile) parses them as it goes.
pub(crate) struct CsvRecords<R: BufRead> {
    reader: csv::Reader<Normalized<R>>,
    record: csv::StringRecord,
    path: PathBuf,
    rows: usize,
}

impl<R: BufRead> CsvRecords<R> {
    /// Reads and checks the header; returns the reader and the column names (trimmed).
    pub(crate) fn new(input: R, path: &Path) -> Result<(Self, Vec<String>)> {
        let fmt = |detail: String| Error::Format { path: PathBuf::from(path), detail };
        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(Normalized::new(input));
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| fmt(format!("cannot read the header: {}", csv_error(&e))))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            // Only white space so far: the whole file may be (read the rest to know).
            let rest = std::io::copy(reader.get_mut(), &mut std::io::sink());
            if rest.is_ok() && !reader.get_ref().text {
                return Err(fmt("the file is empty: a header row and data rows are needed".into()));
            }
            return Err(fmt("the file is empty: a header row is needed".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() {
                return Err(fmt(format!("line 1: column {} has an empty name in the header", i + 1)));
            }
            if let Some(j) = columns[..i].iter().position(|p| p == c) {
                return Err(fmt(format!(
                    "line 1: duplicate column name {} (columns {} and {}); column names must be unique",
                    quoted(c),
                    j + 1,
                    i + 1
                )));
            }
        }
        let records = CsvRecords { reader, record: csv::StringRecord::new(), path: path.to_path_buf(), rows: 0 };
        Ok((records, columns))
    }

    /// The next data record (cells untrimmed) and its 1-based line; None after the last. A file
    /// with a header but no data rows, a ragged row or text that is not UTF-8 is an error.
    pub(crate) fn next_record(&mut self) -> Result<Option<(usize, &csv::StringRecord)>> {
        let fmt = |detail: String| Error::Format { path: self.path.clone(), detail };
        if !self.reader.read_record(&mut self.record).map_err(|e| fmt(csv_error(&e)))? {
            if self.rows == 0 {
                return Err(fmt("the file has a header but no data rows".into()));
            }
            return Ok(None);
        }
        self.rows += 1;
        let line = self.record.position().map_or(self.rows + 1, |p| p.line() as usize);
        Ok(Some((line, &self.record)))
    }
}

/// CSV bytes as the csv crate should see them: a UTF-8 byte-order mark dropped, and every CR LF
/// (or lone CR, old Mac style) made one LF, since the csv crate reads CR LF but counts lines one
/// short. Notes whether any byte that is not white space went by (`text`: an empty file).
struct Normalized<R> {
    inner: R,
    started: bool,
    /// The last byte given out came from a CR: an LF right after it is dropped.
    after_cr: bool,
    text: bool,
    /// The first bytes, read to look for a byte-order mark, still to give out.
    head: Vec<u8>,
}

impl<R: BufRead> Normalized<R> {
    fn new(inner: R) -> Self {
        Normalized { inner, started: false, after_cr: false, text: false, head: Vec::new() }
    }
}

impl<R: BufRead> std::io::Read for Normalized<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if !self.started {
            // The first three bytes, however the input comes in pieces: a byte-order mark is
            // dropped, anything else given out first.
            self.started = true;
            let mut head = [0u8; 3];
            let mut got = 0;
            while got < 3 {
                match self.inner.read(&mut head[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            if head[..got] != *b"\xEF\xBB\xBF" {
                self.head = head[..got].to_vec();
            }
        }
        loop {
            let n = if self.head.is_empty() {
                self.inner.read(out)?
            } else {
                let n = self.head.len().min(out.len());
                out[..n].copy_from_slice(&self.head[..n]);
                self.head.drain(..n);
                n
            };
            if n == 0 {
                return Ok(0);
            }
            let mut w = 0;
            for i in 0..n {
                let b = out[i];
                let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
                if b == b'\n' && after_cr {
                    continue;
                }
                self.text |= !b.is_ascii_whitespace();
                out[w] = if b == b'\r' { b'\n' } else { b };
                w += 1;
            }
            if w > 0 {
                return Ok(w);
            }
        }
    }
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

/// A numeric table with named columns: one name per column of values.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    values: Matrix,
}

impl Table {
    /// A table of `values` (row-major) with one name per column.
    pub fn new(columns: Vec<String>, values: Matrix) -> Result<Table> {
        if values.cols() != columns.len() {
            return Err(Error::shape(
                "table",
                format!("{} column names (one per column of values)", values.cols()),
                format!("{} column names", columns.len()),
            ));
        }
        Ok(Table { columns, values })
    }

    /// Reads a CSV file with a header row; every cell must be a number (the error names line,
    /// column and value). A UTF-8 byte-order mark and Windows line endings are accepted.
    pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
        RawTable::read_csv(path)?.to_table()
    }

    /// Parses CSV bytes; `path` only names the source in errors.
    pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Table> {
        RawTable::parse_csv(bytes, path)?.to_table()
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, row-major, one column per name.
    pub fn values(&self) -> &Matrix {
        &self.values
    }

    /// Splits into features and a target column (by name; `None` = the last column).
    pub fn features_target(&self, target: Option<&str>) -> Result<(Matrix, Matrix)> {
        let t = target_index(&self.columns, target)?;
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

/// Which of `columns` is the target: the one named `target`, or the last (`None`); the one rule of
/// [`Table::features_target`] and [`DataFile`](super::DataFile).
pub(crate) fn target_index(columns: &[String], target: Option<&str>) -> Result<usize> {
    match target {
        None => columns.len().checked_sub(1).ok_or_else(|| Error::shape("table", "at least one column", "no columns")),
        Some(name) => columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::Model(format!(
                "target column {} not found; columns: {}",
                quoted(name),
                columns.iter().map(|c| cut(c)).collect::<Vec<_>>().join(", ")
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns, and each record's line and cells.
    type Records = (Vec<String>, Vec<(usize, Vec<String>)>);

    /// Every record and line of `bytes` as the reader gives them, read through a buffer of
    /// `capacity` bytes (1: a CR and its LF always arrive in separate reads).
    fn records(bytes: &[u8], capacity: usize) -> Result<Records> {
        let (mut reader, columns) =
            CsvRecords::new(std::io::BufReader::with_capacity(capacity, bytes), Path::new("t"))?;
        let mut out = Vec::new();
        while let Some((line, record)) = reader.next_record()? {
            out.push((line, record.iter().map(str::to_string).collect()));
        }
        Ok((columns, out))
    }

    #[test]
    fn line_endings_and_a_byte_order_mark_read_alike_in_any_piece_size() {
        let lf = records(b"a,b\n1,2\n3,4\n", 1 << 10).unwrap();
        assert_eq!(lf.1, [(2, vec!["1".to_string(), "2".into()]), (3, vec!["3".into(), "4".into()])]);
        for text in [&b"\xEF\xBB\xBFa,b\r\n1,2\r\n3,4\r\n"[..], b"a,b\r1,2\r3,4", b"a,b\n1,2\r\n3,4"] {
            for capacity in [1, 2, 3, 1 << 10] {
                assert_eq!(records(text, capacity).unwrap(), lf, "{text:?} read {capacity} bytes at a time");
            }
        }
        for (text, message) in [
            (&b" \r\n \n"[..], "a header row and data rows are needed"),
            (b"\xEF\xBB\xBF", "a header row and data rows are needed"),
            (b" \nx,y\n1,2\n", "the file is empty: a header row is needed"),
            (b"a,b\r\n", "a header but no data rows"),
            (b"a,b\r\n1,2\r\n3\r\n", "line 3: 1 fields, but the header has 2"),
        ] {
            for capacity in [1, 1 << 10] {
                let e = records(text, capacity).unwrap_err().to_string();
                assert!(e.contains(message), "{text:?}: {e}");
                assert_eq!(e, RawTable::parse_csv(text, Path::new("t")).unwrap_err().to_string());
            }
        }
    }
}

//! Arrow record batches as tables (feature `arrow`), and Parquet files through them (feature
//! `parquet`).
//!
//! Two ways in, as with CSV: [`RawTable::from_record_batches`] keeps every column (numbers,
//! strings, dictionaries, booleans) for [`Preprocessor`](super::Preprocessor) to one-hot encode,
//! scale and pick the target from; [`Matrix::from_record_batch`] takes an all-numeric batch
//! straight to a matrix (and a `RecordBatch` can be given to `fit`, `evaluate` and `predict`).
//! A null is an error naming the column and the row: fill or drop missing values first (polars:
//! `fill_null`/`drop_nulls`; pandas: `fillna`/`dropna`).
//!
//! Columns by Arrow type: integers, floats (16, 32, 64 bit) and booleans (1/0) are numbers;
//! `Utf8`, `LargeUtf8` and `Utf8View` are text (categorical features, class labels); a
//! dictionary column is read as its values. Any other type (dates, timestamps, decimals, lists,
//! structs, binary) is an error naming the column and the type.

use std::borrow::Cow;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::{quoted, RawTable};
use crate::error::{Error, Result};
use crate::matrix::{AsMatrix, Matrix};

/// The types a column may have, for messages.
const SUPPORTED: &str = "integers, floats, booleans, strings (Utf8, LargeUtf8, Utf8View) and dictionaries of them";

pub(crate) fn format_error(source: &Path, detail: String) -> Error {
    Error::Format { path: source.to_path_buf(), detail }
}

/// The first null of column `c` (named `name`), as an error naming its 1-based row (`first_row`
/// is the batch's first row in the table).
fn check_nulls(col: &dyn Array, c: usize, name: &str, first_row: usize, source: &Path) -> Result<()> {
    if let Some(nulls) = col.logical_nulls() {
        if let Some(i) = (0..col.len()).find(|&i| nulls.is_null(i)) {
            return Err(format_error(
                source,
                format!(
                    "row {}, column {} ({}): missing value (null); fill or drop missing values first",
                    first_row + i + 1,
                    c + 1,
                    quoted(name)
                ),
            ));
        }
    }
    Ok(())
}

fn unsupported(c: usize, name: &str, t: &DataType, source: &Path) -> Error {
    format_error(source, format!("column {} ({}) has Arrow type {t}; wgfit reads {SUPPORTED}", c + 1, quoted(name)))
}

/// Column `c`'s values as cells (numbers written so that parsing them back gives the same f32).
fn cells(col: &dyn Array, c: usize, name: &str, source: &Path) -> Result<Vec<String>> {
    fn text<T: ToString>(values: impl Iterator<Item = T>) -> Vec<String> {
        values.map(|v| v.to_string()).collect()
    }
    Ok(match col.data_type() {
        DataType::Int8 => text(col.as_primitive::<Int8Type>().values().iter()),
        DataType::Int16 => text(col.as_primitive::<Int16Type>().values().iter()),
        DataType::Int32 => text(col.as_primitive::<Int32Type>().values().iter()),
        DataType::Int64 => text(col.as_primitive::<Int64Type>().values().iter()),
        DataType::UInt8 => text(col.as_primitive::<UInt8Type>().values().iter()),
        DataType::UInt16 => text(col.as_primitive::<UInt16Type>().values().iter()),
        DataType::UInt32 => text(col.as_primitive::<UInt32Type>().values().iter()),
        DataType::UInt64 => text(col.as_primitive::<UInt64Type>().values().iter()),
        DataType::Float16 => text(col.as_primitive::<Float16Type>().values().iter().map(|v| v.to_f32())),
        DataType::Float32 => text(col.as_primitive::<Float32Type>().values().iter()),
        DataType::Float64 => text(col.as_primitive::<Float64Type>().values().iter()),
        DataType::Boolean => col.as_boolean().values().iter().map(|b| if b { "1" } else { "0" }.to_string()).collect(),
        DataType::Utf8 => col.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_string()).collect(),
        DataType::LargeUtf8 => col.as_string::<i64>().iter().map(|s| s.unwrap_or_default().to_string()).collect(),
        DataType::Utf8View => col.as_string_view().iter().map(|s| s.unwrap_or_default().to_string()).collect(),
        DataType::Dictionary(_, _) => {
            let dict = col.as_any_dictionary();
            let values = cells(dict.values().as_ref(), c, name, source)?;
            dict.normalized_keys().into_iter().map(|k| values.get(k).cloned().unwrap_or_default()).collect()
        }
        other => return Err(unsupported(c, name, other, source)),
    })
}

/// Column `c`'s values as f32 (numeric types only).
fn numbers(col: &dyn Array, c: usize, name: &str, source: &Path) -> Result<Vec<f32>> {
    fn cast<T: Copy>(values: &[T], f: impl Fn(T) -> f32) -> Vec<f32> {
        values.iter().map(|&v| f(v)).collect()
    }
    Ok(match col.data_type() {
        DataType::Int8 => cast(col.as_primitive::<Int8Type>().values(), f32::from),
        DataType::Int16 => cast(col.as_primitive::<Int16Type>().values(), f32::from),
        DataType::Int32 => cast(col.as_primitive::<Int32Type>().values(), |v| v as f32),
        DataType::Int64 => cast(col.as_primitive::<Int64Type>().values(), |v| v as f32),
        DataType::UInt8 => cast(col.as_primitive::<UInt8Type>().values(), f32::from),
        DataType::UInt16 => cast(col.as_primitive::<UInt16Type>().values(), f32::from),
        DataType::UInt32 => cast(col.as_primitive::<UInt32Type>().values(), |v| v as f32),
        DataType::UInt64 => cast(col.as_primitive::<UInt64Type>().values(), |v| v as f32),
        DataType::Float16 => cast(col.as_primitive::<Float16Type>().values(), |v| v.to_f32()),
        DataType::Float32 => col.as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float64 => cast(col.as_primitive::<Float64Type>().values(), |v| v as f32),
        DataType::Boolean => col.as_boolean().values().iter().map(f32::from).collect(),
        other => {
            return Err(format_error(
                source,
                format!(
                    "column {} ({}) has Arrow type {other}, not a number; a matrix takes integer, float and \
                     boolean columns (read text columns with RawTable::from_record_batches and a Preprocessor)",
                    c + 1,
                    quoted(name)
                ),
            ))
        }
    })
}

/// The batches' column names: the first batch's, which every other batch must share, unique and
/// non-empty as CSV headers must be.
pub(crate) fn column_names(batches: &[RecordBatch], source: &Path) -> Result<Vec<String>> {
    let first = batches.first().ok_or_else(|| format_error(source, "no record batches (no data rows)".into()))?;
    let names: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    if names.is_empty() {
        return Err(format_error(source, "the table has no columns".into()));
    }
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            return Err(format_error(source, format!("column {} has an empty name", i + 1)));
        }
        if names[..i].contains(n) {
            return Err(format_error(source, format!("column name {} appears twice", quoted(n))));
        }
    }
    for (b, batch) in batches.iter().enumerate() {
        if batch.schema().fields().iter().map(|f| f.name()).ne(names.iter()) {
            return Err(format_error(source, format!("record batch {b} has other columns than the first")));
        }
    }
    Ok(names)
}

/// One record batch's rows as cells: the one conversion of Arrow values that every loader shares
/// ([`RawTable::from_record_batches`], a [`DataFile`](super::DataFile) reading a Parquet file in
/// pieces). Its column names must be `columns` (the first batch's, see [`column_names`]); a null
/// or a column of an unsupported type is an error naming it (`b`: the batch's index, `first_row`:
/// its first row's index in the table, for messages).
pub(crate) fn batch_cells(
    batch: &RecordBatch,
    b: usize,
    columns: &[String],
    first_row: usize,
    source: &Path,
) -> Result<Vec<Vec<String>>> {
    if batch.schema().fields().iter().map(|f| f.name()).ne(columns.iter()) {
        return Err(format_error(source, format!("record batch {b} has other columns than the first")));
    }
    let mut cols = Vec::with_capacity(columns.len());
    for (c, name) in columns.iter().enumerate() {
        let col = batch.column(c).as_ref();
        check_nulls(col, c, name, first_row, source)?;
        cols.push(cells(col, c, name, source)?);
    }
    Ok((0..batch.num_rows()).map(|r| cols.iter_mut().map(|col| std::mem::take(&mut col[r])).collect()).collect())
}

impl RawTable {
    /// A table of the batches' rows, in order (their schemas must have the same column names);
    /// `source` names it in errors (a file name, or e.g. "record batch").
    pub fn from_record_batches(batches: &[RecordBatch], source: impl AsRef<Path>) -> Result<RawTable> {
        let source = source.as_ref();
        let columns = column_names(batches, source)?;
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if total == 0 {
            return Err(format_error(source, "the table has no data rows".into()));
        }
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(total);
        for (b, batch) in batches.iter().enumerate() {
            let first_row = rows.len();
            rows.extend(batch_cells(batch, b, &columns, first_row, source)?);
        }
        Ok(RawTable::from_cells(source.to_path_buf(), columns, rows))
    }

    /// A table of one record batch (see [`RawTable::from_record_batches`]).
    pub fn from_record_batch(batch: &RecordBatch) -> Result<RawTable> {
        RawTable::from_record_batches(std::slice::from_ref(batch), "record batch")
    }
}

impl Matrix {
    /// An all-numeric record batch as a matrix: one column per Arrow column, in order. Nulls,
    /// NaN and infinities are errors naming the row and column.
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Matrix> {
        let source = Path::new("record batch");
        let names = column_names(std::slice::from_ref(batch), source)?;
        let (rows, cols) = (batch.num_rows(), names.len());
        let mut data = vec![0.0f32; rows * cols];
        for (c, name) in names.iter().enumerate() {
            let col = batch.column(c).as_ref();
            check_nulls(col, c, name, 0, source)?;
            for (r, v) in numbers(col, c, name, source)?.into_iter().enumerate() {
                if !v.is_finite() {
                    return Err(format_error(
                        source,
                        format!("row {}, column {} ({}): {v} is not a finite number", r + 1, c + 1, quoted(name)),
                    ));
                }
                data[r * cols + c] = v;
            }
        }
        Matrix::new(rows, cols, data)
    }
}

/// A numeric record batch given to `fit`, `evaluate` or `predict` (converted once per call).
impl AsMatrix for RecordBatch {
    fn as_matrix(&self) -> Result<Cow<'_, Matrix>> {
        Matrix::from_record_batch(self).map(Cow::Owned)
    }
}

#[cfg(feature = "parquet")]
impl RawTable {
    /// Reads a Parquet file (every row group, every column; see the module's rules for types).
    /// Snappy, gzip, LZ4 and uncompressed files are read; a truncated file or one that is not
    /// Parquet is an error naming the file.
    pub fn read_parquet(path: impl AsRef<Path>) -> Result<RawTable> {
        let path = path.as_ref();
        let batches = parquet_batches(path)?.collect::<Result<Vec<RecordBatch>>>()?;
        RawTable::from_record_batches(&batches, path)
    }
}

/// A Parquet file's record batches, read one at a time (every row group, every column): the one
/// Parquet reader of the crate ([`RawTable::read_parquet`], a [`DataFile`](super::DataFile)). A
/// file that is truncated or not Parquet is an error naming it.
#[cfg(feature = "parquet")]
pub(crate) fn parquet_batches(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>> + '_> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let unreadable = move |e: &dyn std::fmt::Display| format_error(path, format!("not a readable Parquet file: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(|e| unreadable(&e))?;
    Ok(reader.map(move |batch| batch.map_err(|e| unreadable(&e))))
}

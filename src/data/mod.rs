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
//! - Errors quote at most the first 40 characters of a cell, column name or category, then `…`
//!   and the value's full length in bytes, so a huge bad field cannot flood a message.
//! - Categorical columns are one-hot encoded, one output column per category, categories sorted
//!   (byte order) and learned on the rows given to [`Preprocessor::fit`]. A category that was not
//!   seen there is an **error** at transform/predict time (it names the line, column, value and the
//!   known categories), never a silent all-zero row.
//! - Scaling (min-max or standardization) is fitted on the training rows and applies to the numeric
//!   feature columns; one-hot columns are left as 0/1. Constant columns scale to 0.
//!
//! Parts: `csv.rs` reads files into [`RawTable`] / [`Table`] and splits rows; `file.rs` opens a
//! file too large to hold as a [`DataFile`], read in pieces and trained on from disk; `preprocess.rs` fits
//! the one-hot encoding and scaling ([`Preprocessor`]); `stream.rs` fits it on a file read in
//! pieces and opens a `DataFile` through it ([`Preprocessor::fit_file`],
//! [`DataFile::open_preprocessed`]); [`shipped`] holds the course's datasets.
//!
//! [`Error::Format`]: crate::Error::Format

#[cfg(feature = "arrow")]
mod arrow;
mod csv;
mod file;
mod preprocess;
pub mod shipped;
mod stream;

pub use self::csv::{split_point, RawTable, Table};
pub use self::file::DataFile;
pub use self::preprocess::{split_scaled, CsvOptions, Feature, MinMaxScaler, Preprocessor, ScaleKind, Scaler};
pub use self::stream::FileOptions;

impl RawTable {
    /// Reads a data file by its kind: Parquet (a `.parquet` or `.pq` name, or Parquet's magic
    /// bytes; needs the `parquet` feature) or CSV (anything else).
    pub fn read(path: impl AsRef<std::path::Path>) -> crate::Result<RawTable> {
        let path = path.as_ref();
        if !is_parquet(path) {
            return RawTable::read_csv(path);
        }
        #[cfg(feature = "parquet")]
        return RawTable::read_parquet(path);
        #[cfg(not(feature = "parquet"))]
        Err(without_parquet(path))
    }
}

/// The error for a Parquet file read by a wgfit built without the `parquet` feature.
#[cfg(not(feature = "parquet"))]
fn without_parquet(path: &std::path::Path) -> crate::Error {
    crate::Error::Format {
        path: path.to_path_buf(),
        detail: "a Parquet file, and this wgfit was built without its `parquet` feature \
                 (cargo install wgfit --features parquet)"
            .into(),
    }
}

/// Whether `path` is a Parquet file: its name ends in `.parquet` or `.pq`, or its first bytes
/// are Parquet's magic `PAR1`.
fn is_parquet(path: &std::path::Path) -> bool {
    let by_name = path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "parquet" | "pq"));
    by_name || {
        use std::io::Read;
        let mut magic = [0u8; 4];
        std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"PAR1"
    }
}

/// How many characters of a user's value an error message quotes.
const SHOWN_CHARS: usize = 40;

/// `value` for an error message: whole when short, else its first [`SHOWN_CHARS`] characters, `…`
/// and its length in bytes.
pub(crate) fn cut(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => value.to_string(),
        Some((end, _)) => format!("{}… ({} bytes)", &value[..end], value.len()),
    }
}

/// `value` quoted (Rust string syntax) for an error message, cut like [`cut`]: `"abc"`, or
/// `"first 40 characters…" (5000000 bytes)`.
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?} ({} bytes)", format!("{}…", &value[..end]), value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::{cut, quoted};

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(cut("abc"), "abc");
        let exact = "é".repeat(40);
        assert_eq!(quoted(&exact), format!("{exact:?}"));
        let long = format!("{exact}x");
        assert_eq!(quoted(&long), format!("\"{exact}…\" (81 bytes)"));
        assert_eq!(cut(&long), format!("{exact}… (81 bytes)"));
    }
}

//! Keras's CSVLogger (a log appended per epoch, so not an atomic write).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Callback, Logs, TrainContext};
use crate::error::{Error, Result};

/// Appends every epoch to a CSV file (Keras's `CSVLogger`): a header `epoch,<keys sorted>` and one
/// row per epoch, epochs from 0, flushed each epoch. With `append`, an existing file gets no second
/// header.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    keys: Vec<String>,
}

impl CsvLogger {
    /// Logs to `path`, with Keras's defaults: separator `,`, no append (the file is overwritten when
    /// training begins).
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLogger { path: path.as_ref().to_path_buf(), separator: ',', append: false, file: None, keys: Vec::new() }
    }
    /// The character between fields (default `,`).
    pub fn separator(mut self, c: char) -> Self {
        self.separator = c;
        self
    }
    /// Appends to an existing file, keeping its header's columns, instead of overwriting it
    /// (default false).
    pub fn append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }
    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.path.clone(), source }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _ctx: &mut TrainContext) -> Result<()> {
        let had_rows = self.append && std::fs::metadata(&self.path).map(|m| m.len() > 0).unwrap_or(false);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.file = Some(file);
        self.keys.clear();
        if had_rows {
            // Keep the existing header's columns.
            let text = std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
            if let Some(h) = text.lines().next() {
                self.keys = h.split(self.separator).skip(1).map(String::from).collect();
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut TrainContext) -> Result<()> {
        let sep = self.separator.to_string();
        let mut out = String::new();
        if self.keys.is_empty() {
            self.keys = logs.keys().map(String::from).collect();
            self.keys.sort();
            out.push_str("epoch");
            for k in &self.keys {
                out.push_str(&sep);
                out.push_str(k);
            }
            out.push('\n');
        }
        out.push_str(&epoch.to_string());
        for k in &self.keys {
            out.push_str(&sep);
            match logs.get(k) {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("NA"),
            }
        }
        out.push('\n');
        let result = match self.file.as_mut() {
            Some(f) => f.write_all(out.as_bytes()).and_then(|_| f.flush()),
            None => Ok(()),
        };
        result.map_err(|e| self.io(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut TrainContext) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

//! The one error type of wgfit: every failure reachable from the public API is a value of [`Error`].

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with enough context (shape, row, column, file) to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter was found.
    #[error(
        "no GPU adapter found{detail}. On Debian/Ubuntu install Mesa's software Vulkan driver with \
         `sudo apt-get install -y mesa-vulkan-drivers`, or use Device::cpu()"
    )]
    NoAdapter {
        /// The adapter or backend asked for, with a leading space (` for WGFIT_BACKEND="gl"`);
        /// empty if none.
        detail: String,
    },

    /// The GPU refused or lost the device, ran out of memory or timed out.
    #[error("GPU error: {0}")]
    Gpu(String),

    /// Data whose shape does not fit what was asked of it: `expected` and `got` name the sizes.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// The data or operation concerned.
        what: String,
        /// The size that was needed.
        expected: String,
        /// The size that was given.
        got: String,
    },

    /// A NaN or infinity in user data.
    #[error("{what} has a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite {
        /// The data the value is in.
        what: String,
        /// Its row, from 0.
        row: usize,
        /// Its column, from 0.
        col: usize,
        /// The value itself (NaN or ±infinity).
        value: f32,
    },

    /// A value outside its allowed range (learning rate, dropout rate, batch size...).
    #[error("invalid {name} = {value}: {expected}")]
    InvalidValue {
        /// The setting, e.g. `learning_rate`.
        name: String,
        /// The value given, as text.
        value: String,
        /// What would have been accepted.
        expected: String,
    },

    /// An unknown name for an optimizer, loss, metric or activation.
    #[error("unknown {kind} {name:?}; valid names: {valid}")]
    UnknownName {
        /// What the name was for (`optimizer`, `loss`, `mode`...).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The accepted names, comma-separated.
        valid: String,
    },

    /// A model used in a way its state does not allow (fit before compile...).
    #[error("{0}")]
    State(String),

    /// Invalid model structure (layer order, missing input shape, misused builder option).
    #[error("invalid model: {0}")]
    Model(String),

    /// Training produced a non-finite loss.
    #[error("training diverged: {what} is {value} at epoch {epoch}")]
    Diverged {
        /// The quantity that went non-finite (`loss`).
        what: String,
        /// The epoch, from 0 as in the History.
        epoch: usize,
        /// The non-finite value.
        value: f32,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A bug in wgfit itself (a broken internal invariant), never the caller's input. Please report it.
    #[error("internal error in wgfit (a bug, please report it): {0}")]
    Internal(String),

    /// A file whose content is not what was expected (CSV, model file).
    #[error("{path}: {detail}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, with the line and column where known.
        detail: String,
    },
}

impl Error {
    pub(crate) fn shape(what: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Error::Shape { what: what.into(), expected: expected.into(), got: got.into() }
    }

    /// The same error, naming the sweep member it is about.
    pub(crate) fn in_member(self, member: usize) -> Self {
        match self {
            Error::Shape { what, expected, got } => {
                Error::Shape { what: format!("member {member} {what}"), expected, got }
            }
            Error::NonFinite { what, row, col, value } => {
                Error::NonFinite { what: format!("member {member} {what}"), row, col, value }
            }
            Error::InvalidValue { name, value, expected } => {
                Error::InvalidValue { name: format!("member {member} {name}"), value, expected }
            }
            Error::State(s) => Error::State(format!("member {member}: {s}")),
            Error::Model(s) => Error::Model(format!("member {member}: {s}")),
            other => other,
        }
    }

    pub(crate) fn invalid(name: impl Into<String>, value: impl std::fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidValue { name: name.into(), value: value.to_string(), expected: expected.into() }
    }
}

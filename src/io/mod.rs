//! Saving and loading models: one versioned JSON file with everything needed to predict or to
//! continue training, and weights-only files.
//!
//! # The model file (`"format": "wgfit-model"`, `"version": 1`)
//!
//! ```text
//! {
//!   "format": "wgfit-model",          // always this string: files of other programs are refused
//!   "version": 1,                     // bumped on any incompatible change; newer versions are refused
//!   "generator": "wgfit 0.1.0",       // informational
//!   "input_width": 8,                 // model inputs (after one-hot encoding)
//!   "seed": 0,                        // Sequential::seed (initial weights; informational after load)
//!   "layers": [                       // in order; config is the layer's LayerKind
//!     { "name": "dense",
//!       "config": {"type": "Dense", "units": 512, "activation": "relu", "use_bias": true},
//!       "weights": [ {"name": "kernel", "shape": [8, 512], "trainable": true, "values": [..row-major..]},
//!                    {"name": "bias", "shape": [512], "trainable": true, "values": [..]} ] },
//!     { "name": "batch_normalization", "config": {"type": "BatchNormalization", ..},
//!       "weights": [ gamma, beta (trainable), moving_mean, moving_variance (non-trainable) ] },
//!     ...
//!   ],
//!   "compile": { "optimizer": {"type": "adam", "learning_rate": 0.001, ..},
//!                "loss": "mean_absolute_error", "metrics": ["mae"] },
//!   "preprocessing": null | { "target": .., "dropped": [..], "features": [..], "scaler": .. }
//! }
//! ```
//!
//! Weight values are written as the shortest decimal that reads back to the same f32 and read
//! with a correctly rounded parser, so a loaded model predicts bit for bit what the saved one did.
//! Once the model has trained, `"optimizer_state": {"iterations": t, "m": [..], "v": [..]}` keeps
//! the optimizer where it was (Adam's moments and step count; SGD's momentum in `m`), flat in the
//! parameter order above, so fitting a loaded model continues exactly as the saved one would have.
//!
//! Weights-only files are JSON, or safetensors when the name ends in `.safetensors`.
//! A JSON weights-only file has `"format": "wgfit-weights"`, `"version": 1` and `"layers"` with
//! `name`, `type` and `weights` as above; loading it checks every shape against the model.
//!
//! Writes are atomic ([`write_atomic`]): the bytes go to a temporary file in the same directory,
//! which is flushed, synced and then renamed over the target (and the directory synced), so a
//! crash mid-save leaves the previous file intact.
//! Loading a truncated, corrupt, mismatching or foreign file is an [`Error::Format`] naming the file.
//!
//! Parts: `model_file.rs` (the model file), `weights.rs` (weight arrays and weights-only files),
//! `atomic.rs` (the crate's one atomic write), `exact_f32.rs` (bit-exact f32 arrays in JSON).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

mod atomic;
pub(crate) mod exact_f32;
mod model_file;
mod weights;

pub(crate) use self::atomic::temp_beside;
pub use self::atomic::{write_atomic, write_atomic_failing_after};
pub(crate) use self::model_file::ModelWriter;
pub use self::model_file::{load_model, save_model, LoadedModel};
pub use self::weights::{load_weights, save_weights};

/// The `format` field of a model file.
pub const MODEL_FORMAT: &str = "wgfit-model";
/// The `format` field of a weights-only file.
pub const WEIGHTS_FORMAT: &str = "wgfit-weights";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

fn format_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), detail: detail.into() }
}

fn not_built() -> Error {
    Error::State("the model is not built yet: compile it with an input_shape (or fit it) before saving".into())
}

/// Reads a file, then checks it is JSON of the expected `format` and version.
fn read_checked(path: &Path, want: &str) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format_err(path, format!("not a {want} file: it is not UTF-8 text (a binary file?)")))?;
    #[derive(Deserialize)]
    struct Probe {
        format: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    }
    if !text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
        return Err(format_err(path, format!("not a valid {want} file: the file is not a JSON object")));
    }
    let probe: Probe = serde_json::from_str(&text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the file is truncated",
            serde_json::error::Category::Syntax => "the file is corrupt or not JSON",
            _ => "the file is not a JSON object",
        };
        format_err(path, format!("not a valid {want} file: {what} ({e})"))
    })?;
    match probe.format.as_ref().and_then(|f| f.as_str()) {
        Some(f) if f == want => {}
        Some(f) if f == MODEL_FORMAT || f == WEIGHTS_FORMAT => {
            return Err(format_err(
                path,
                format!("this is a {f:?} file, not a {want:?} file (model files load with load_model / --model, weights files with load_weights)"),
            ))
        }
        Some(f) => return Err(format_err(path, format!("not a {want} file: its format is {f:?}"))),
        None => {
            return Err(format_err(path, format!("not a {want} file: it has no \"format\": \"{want}\" field")));
        }
    }
    match probe.version.as_ref().and_then(|v| v.as_u64()) {
        Some(FORMAT_VERSION) => Ok(text),
        Some(v) if v > FORMAT_VERSION => Err(format_err(
            path,
            format!(
                "format version {v} was written by a newer wgfit; this build reads version {FORMAT_VERSION} (upgrade wgfit)"
            ),
        )),
        Some(v) => Err(format_err(path, format!("unsupported format version {v}; this build reads version {FORMAT_VERSION}"))),
        None => Err(format_err(path, format!("the \"version\" field is missing or not a number ({:?})", probe.version))),
    }
}

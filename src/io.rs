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
//! Writes are atomic: the JSON goes to a temporary file in the same directory, which is flushed,
//! synced and then renamed over the target, so a crash mid-save leaves the previous file intact.
//! Loading a truncated, corrupt, mismatching or foreign file is an [`Error::Format`] naming the file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::data::{exact_f32, Preprocessor};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::layers::{Layer, LayerKind};
use crate::losses::Loss;
use crate::model::Sequential;
use crate::optimizers::Optimizer;
use crate::summary::{layer_infos, LayerInfo};

/// The `format` field of a model file.
pub const MODEL_FORMAT: &str = "wgfit-model";
/// The `format` field of a weights-only file.
pub const WEIGHTS_FORMAT: &str = "wgfit-weights";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
struct WeightEntry {
    name: String,
    shape: Vec<usize>,
    #[serde(default = "yes")]
    trainable: bool,
    #[serde(with = "exact_f32")]
    values: Vec<f32>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
struct LayerEntry {
    name: String,
    config: LayerKind,
    weights: Vec<WeightEntry>,
}

#[derive(Serialize, Deserialize)]
struct CompileEntry {
    optimizer: Optimizer,
    loss: Loss,
    metrics: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u64,
    #[serde(default)]
    generator: String,
    input_width: usize,
    #[serde(default)]
    seed: u64,
    layers: Vec<LayerEntry>,
    compile: CompileEntry,
    #[serde(default)]
    preprocessing: Option<Preprocessor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    optimizer_state: Option<OptimizerState>,
}

#[derive(Serialize, Deserialize)]
struct OptimizerState {
    iterations: u64,
    #[serde(with = "exact_f32")]
    m: Vec<f32>,
    #[serde(with = "exact_f32")]
    v: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct WeightsLayer {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    weights: Vec<WeightEntry>,
}

#[derive(Serialize, Deserialize)]
struct WeightsFile {
    format: String,
    version: u64,
    #[serde(default)]
    generator: String,
    layers: Vec<WeightsLayer>,
}

/// A loaded model with the preprocessing saved alongside it (if any).
pub struct LoadedModel {
    pub model: Sequential,
    pub preprocessor: Option<Preprocessor>,
}

fn format_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), detail: detail.into() }
}

fn not_built() -> Error {
    Error::State("the model is not built yet: compile it with an input_shape (or fit it) before saving".into())
}

/// The model's weights per layer, cut from the flat vectors.
fn weight_entries(model: &mut Sequential) -> Result<(usize, Vec<LayerInfo>, Vec<Vec<WeightEntry>>)> {
    let input_w = model.input_width().ok_or_else(not_built)?;
    let (params, state) = model.get_weights()?;
    let infos = layer_infos(model.layers(), input_w);
    let (mut p, mut s) = (0usize, 0usize);
    let mut out = Vec::with_capacity(infos.len());
    for info in &infos {
        let mut entries = Vec::new();
        for w in &info.weights {
            let (src, off) = if w.trainable { (&params, &mut p) } else { (&state, &mut s) };
            let values = src
                .get(*off..*off + w.len())
                .ok_or_else(|| Error::State("internal: weight layout does not match the model".into()))?
                .to_vec();
            *off += w.len();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("weight {:?} of layer {:?} (cannot be saved)", w.name, info.name),
                    row: i,
                    col: 0,
                    value: values[i],
                });
            }
            entries.push(WeightEntry {
                name: w.name.to_string(),
                shape: w.shape.clone(),
                trainable: w.trainable,
                values,
            });
        }
        out.push(entries);
    }
    Ok((input_w, infos, out))
}

/// Checks saved weights against the layout and flattens them into (params, state).
fn flatten(path: &Path, infos: &[LayerInfo], layers: &[(String, &[WeightEntry])]) -> Result<(Vec<f32>, Vec<f32>)> {
    if infos.len() != layers.len() {
        return Err(format_err(
            path,
            format!("the file has weights for {} layers, the model has {} layers", layers.len(), infos.len()),
        ));
    }
    let (mut params, mut state) = (Vec::new(), Vec::new());
    for (i, (info, (name, weights))) in infos.iter().zip(layers).enumerate() {
        if weights.len() != info.weights.len() {
            return Err(format_err(
                path,
                format!(
                    "layer {i} ({name}): the file has {} weight arrays, the model needs {} ({})",
                    weights.len(),
                    info.weights.len(),
                    info.weights.iter().map(|w| w.name).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        for (spec, w) in info.weights.iter().zip(weights.iter()) {
            if w.name != spec.name || w.shape != spec.shape {
                return Err(format_err(
                    path,
                    format!(
                        "layer {i} ({name}): the file has weight {:?} of shape {:?}, the model needs {:?} of shape {:?}",
                        w.name, w.shape, spec.name, spec.shape
                    ),
                ));
            }
            if w.values.len() != spec.len() {
                return Err(format_err(
                    path,
                    format!(
                        "layer {i} ({name}): weight {:?} of shape {:?} has {} values, expected {}",
                        w.name,
                        w.shape,
                        w.values.len(),
                        spec.len()
                    ),
                ));
            }
            if spec.trainable { &mut params } else { &mut state }.extend_from_slice(&w.values);
        }
    }
    Ok((params, state))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed, synced and renamed over `path`. On any error the temporary file is removed and
/// `path` is untouched.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_inner(path.as_ref(), bytes, None)
}

/// [`write_atomic`] that fails after writing `fail_after` bytes, as a crash mid-save would:
/// for tests of the atomicity.
#[doc(hidden)]
pub fn write_atomic_failing_after(path: impl AsRef<Path>, bytes: &[u8], fail_after: usize) -> Result<()> {
    write_atomic_inner(path.as_ref(), bytes, Some(fail_after))
}

fn write_atomic_inner(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("file name", path.display(), "must name a file, not a directory"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io(&tmp))?;
        match fail_after {
            Some(n) => {
                f.write_all(&bytes[..n.min(bytes.len())]).map_err(io(&tmp))?;
                return Err(Error::Io {
                    path: tmp.clone(),
                    source: std::io::Error::other("simulated failure in the middle of a save"),
                });
            }
            None => f.write_all(bytes).map_err(io(&tmp))?,
        }
        f.flush().map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
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

/// Saves the whole model (architecture, weights, moving statistics, compile settings) and the
/// fitted preprocessing, if given, to one JSON file, atomically. The model must be compiled and built.
pub fn save_model(path: impl AsRef<Path>, model: &mut Sequential, preprocessor: Option<&Preprocessor>) -> Result<()> {
    let path = path.as_ref();
    let (optimizer, loss, metrics) = {
        let (o, l, m) = model.compiled_settings().ok_or_else(not_built)?;
        (o.clone(), l.clone(), m)
    };
    if let Some(pre) = preprocessor {
        if Some(pre.input_width()) != model.input_width() {
            return Err(Error::shape(
                "save_model",
                format!(
                    "the preprocessing makes {} inputs, the model takes {:?}",
                    pre.input_width(),
                    model.input_width()
                ),
            ));
        }
    }
    let (input_width, infos, weights) = weight_entries(model)?;
    let optimizer_state = model.optimizer_state()?.map(|(iterations, m, v)| OptimizerState { iterations, m, v });
    let layers = model
        .layers()
        .iter()
        .zip(infos)
        .zip(weights)
        .map(|((l, info), weights)| LayerEntry { name: info.name, config: l.kind.clone(), weights })
        .collect();
    let file = ModelFile {
        format: MODEL_FORMAT.into(),
        version: FORMAT_VERSION,
        generator: format!("wgfit {}", env!("CARGO_PKG_VERSION")),
        input_width,
        seed: model.init_seed(),
        layers,
        compile: CompileEntry { optimizer, loss, metrics },
        preprocessing: preprocessor.cloned(),
        optimizer_state,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| format_err(path, format!("cannot encode the model: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads a model file onto `device`: compiled with the saved settings, weights and moving
/// statistics restored, ready to predict, evaluate or fit further.
pub fn load_model(path: impl AsRef<Path>, device: &Device) -> Result<LoadedModel> {
    let path = path.as_ref();
    let text = read_checked(path, MODEL_FORMAT)?;
    let file: ModelFile =
        serde_json::from_str(&text).map_err(|e| format_err(path, format!("invalid wgfit model file: {e}")))?;
    if file.input_width == 0 {
        return Err(format_err(path, "invalid wgfit model file: input_width is 0"));
    }
    if file.layers.is_empty() {
        return Err(format_err(path, "invalid wgfit model file: it has no layers"));
    }
    let layers: Vec<Layer> = file
        .layers
        .iter()
        .enumerate()
        .map(|(i, e)| Layer {
            kind: e.config.clone(),
            name: Some(e.name.clone()),
            input_shape: (i == 0).then_some(file.input_width),
            deferred_error: None,
        })
        .collect();
    let infos = layer_infos(&layers, file.input_width);
    let named: Vec<(String, &[WeightEntry])> =
        file.layers.iter().map(|e| (e.name.clone(), e.weights.as_slice())).collect();
    let (params, state) = flatten(path, &infos, &named)?;
    if let Some(pre) = &file.preprocessing {
        if !pre.scaler.is_consistent() {
            return Err(format_err(
                path,
                "invalid wgfit model file: the scaler's per-column arrays (min/span or mean/std) differ in length",
            ));
        }
        if pre.input_width() != file.input_width || pre.scaler.width().is_some_and(|w| w != file.input_width) {
            return Err(format_err(
                path,
                format!(
                    "the preprocessing makes {} inputs (scaler: {:?}), the model takes {}",
                    pre.input_width(),
                    pre.scaler.width(),
                    file.input_width
                ),
            ));
        }
    }
    let mut model = Sequential::new(device, layers).seed(file.seed);
    let metrics: Vec<&str> = file.compile.metrics.iter().map(String::as_str).collect();
    model.compile(file.compile.optimizer, file.compile.loss, &metrics).map_err(|e| match e {
        e @ (Error::Gpu(_) | Error::NoAdapter { .. }) => e,
        e => format_err(path, format!("the saved model is invalid: {e}")),
    })?;
    model.set_weights(&params, &state)?;
    if let Some(opt) = &file.optimizer_state {
        model
            .set_optimizer_state(opt.iterations, &opt.m, &opt.v)
            .map_err(|e| format_err(path, format!("invalid optimizer_state: {e}")))?;
    }
    Ok(LoadedModel { model, preprocessor: file.preprocessing })
}

fn is_safetensors(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Saves only the weights and moving statistics, per layer, atomically: JSON
/// (`"format": "wgfit-weights"`), or safetensors when the file name ends in `.safetensors`
/// (tensors `layers.<i>.<weight>`, f32 little-endian, Keras's shapes; metadata names the layers).
pub fn save_weights(path: impl AsRef<Path>, model: &mut Sequential) -> Result<()> {
    let path = path.as_ref();
    let (_, infos, weights) = weight_entries(model)?;
    if is_safetensors(path) {
        return save_safetensors(path, &infos, &weights);
    }
    let file = WeightsFile {
        format: WEIGHTS_FORMAT.into(),
        version: FORMAT_VERSION,
        generator: format!("wgfit {}", env!("CARGO_PKG_VERSION")),
        layers: infos
            .into_iter()
            .zip(weights)
            .map(|(i, weights)| WeightsLayer { name: i.name, type_name: i.type_name.into(), weights })
            .collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| format_err(path, format!("cannot encode the weights: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads weights saved by [`save_weights`] into a built model of the same architecture.
pub fn load_weights(path: impl AsRef<Path>, model: &mut Sequential) -> Result<()> {
    let path = path.as_ref();
    let input_w = model.input_width().ok_or_else(not_built)?;
    let infos = layer_infos(model.layers(), input_w);
    if is_safetensors(path) {
        let (params, state) = load_safetensors(path, &infos)?;
        return model.set_weights(&params, &state);
    }
    let text = read_checked(path, WEIGHTS_FORMAT)?;
    let file: WeightsFile =
        serde_json::from_str(&text).map_err(|e| format_err(path, format!("invalid wgfit weights file: {e}")))?;
    for (i, (info, l)) in infos.iter().zip(&file.layers).enumerate() {
        if info.type_name != l.type_name {
            return Err(format_err(
                path,
                format!("layer {i}: the file has a {} layer, the model a {} layer", l.type_name, info.type_name),
            ));
        }
    }
    let named: Vec<(String, &[WeightEntry])> =
        file.layers.iter().map(|l| (l.name.clone(), l.weights.as_slice())).collect();
    let (params, state) = flatten(path, &infos, &named)?;
    model.set_weights(&params, &state)
}

fn save_safetensors(path: &Path, infos: &[LayerInfo], weights: &[Vec<WeightEntry>]) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = infos
        .iter()
        .zip(weights)
        .enumerate()
        .flat_map(|(i, (_, ws))| {
            ws.iter().map(move |w| {
                (
                    format!("layers.{i}.{}", w.name),
                    w.shape.clone(),
                    w.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format_err(path, format!("cannot encode the weights: {e}")))?;
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    let meta = std::collections::HashMap::from([
        ("format".to_string(), WEIGHTS_FORMAT.to_string()),
        ("version".to_string(), FORMAT_VERSION.to_string()),
        ("layers".to_string(), serde_json::to_string(&names).unwrap_or_default()),
    ]);
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| format_err(path, format!("cannot encode the weights: {e}")))?;
    write_atomic(path, &out)
}

fn load_safetensors(path: &Path, infos: &[LayerInfo]) -> Result<(Vec<f32>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format_err(path, format!("not a valid safetensors file (truncated or corrupt?): {e}")))?;
    let expected: usize = infos.iter().map(|i| i.weights.len()).sum();
    if st.len() != expected {
        return Err(format_err(path, format!("the file has {} tensors, the model needs {expected}", st.len())));
    }
    let (mut params, mut state) = (Vec::new(), Vec::new());
    for (i, info) in infos.iter().enumerate() {
        for w in &info.weights {
            let name = format!("layers.{i}.{}", w.name);
            let t = st
                .tensor(&name)
                .map_err(|_| format_err(path, format!("tensor {name:?} (layer {i}, {}) is missing", info.name)))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != w.shape.as_slice() {
                return Err(format_err(
                    path,
                    format!(
                        "tensor {name:?} is {:?} of shape {:?}, the model needs F32 of shape {:?}",
                        t.dtype(),
                        t.shape(),
                        w.shape
                    ),
                ));
            }
            let values: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                return Err(format_err(path, format!("tensor {name:?} has a non-finite value at index {k}")));
            }
            if w.trainable { &mut params } else { &mut state }.extend_from_slice(&values);
        }
    }
    Ok((params, state))
}

impl Sequential {
    /// Saves the whole model to a JSON file (see [`crate::io`] for the format).
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<()> {
        save_model(path, self, None)
    }

    /// Saves the whole model with the fitted CSV preprocessing (target, one-hot categories, scaler).
    pub fn save_with_preprocessor(&mut self, path: impl AsRef<Path>, preprocessor: &Preprocessor) -> Result<()> {
        save_model(path, self, Some(preprocessor))
    }

    /// Loads a model saved by [`Sequential::save`] onto `device` (the preprocessing, if any, is
    /// dropped: use [`crate::io::load_model`] to get it).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Sequential> {
        Ok(load_model(path, device)?.model)
    }

    /// Saves only the weights and moving statistics (JSON, or safetensors for a `.safetensors` name).
    pub fn save_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        save_weights(path, self)
    }

    /// Loads weights saved by [`Sequential::save_weights`]; the architecture must match.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        load_weights(path, self)
    }
}

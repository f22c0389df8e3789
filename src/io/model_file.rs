//! The model file (`"format": "wgfit-model"`): architecture, weights, compile settings, optimizer
//! state and preprocessing in one versioned JSON document (see [`crate::io`] for its layout).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::weights::{entries, flatten, weight_entries, write_weights_file, WeightEntry};
use super::{exact_f32, format_err, not_built, read_checked, write_atomic, FORMAT_VERSION, MODEL_FORMAT};
use crate::data::Preprocessor;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::layers::{Layer, LayerKind};
use crate::losses::Loss;
use crate::model::{OptimizerMoments, Sequential};
use crate::optimizers::Optimizer;
use crate::summary::layer_infos;

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
    /// The third slot (amsgrad's maximum of v, centered RMSprop's mean gradient): saved only for
    /// an optimizer that keeps one; absent in older files (zeros).
    #[serde(default, with = "exact_f32", skip_serializing_if = "Vec::is_empty")]
    s: Vec<f32>,
}

/// A loaded model with the preprocessing saved alongside it (if any).
pub struct LoadedModel {
    /// The model, compiled and with its weights restored.
    pub model: Sequential,
    /// The preprocessing saved with it, to apply to new CSV rows before predicting.
    pub preprocessor: Option<Preprocessor>,
}

/// Saves the whole model (architecture, weights, moving statistics, compile settings) and the
/// fitted preprocessing, if given, to one JSON file, atomically. The model must be compiled and built.
pub fn save_model(path: impl AsRef<Path>, model: &mut Sequential, preprocessor: Option<&Preprocessor>) -> Result<()> {
    let path = path.as_ref();
    let (optimizer, loss, metrics) = {
        let (o, l, m) = model.compiled_settings().ok_or_else(not_built)?;
        (o.clone(), *l, m)
    };
    if let Some(pre) = preprocessor {
        if Some(pre.input_width()) != model.input_width() {
            return Err(Error::shape(
                "save_model",
                format!("preprocessing that makes the model's {:?} inputs", model.input_width()),
                format!("preprocessing that makes {} inputs", pre.input_width()),
            ));
        }
    }
    let (input_width, infos, weights) = weight_entries(model)?;
    let optimizer_state = model.optimizer_state()?;
    let compile = CompileEntry { optimizer, loss, metrics };
    write_model_file(
        path,
        model.layers(),
        input_width,
        model.init_seed(),
        compile,
        infos,
        weights,
        optimizer_state,
        preprocessor,
    )
}

/// Writes a model file from its parts, atomically.
#[allow(clippy::too_many_arguments)]
fn write_model_file(
    path: &Path,
    model_layers: &[Layer],
    input_width: usize,
    seed: u64,
    compile: CompileEntry,
    infos: Vec<crate::summary::LayerInfo>,
    weights: Vec<Vec<WeightEntry>>,
    optimizer_state: Option<OptimizerMoments>,
    preprocessor: Option<&Preprocessor>,
) -> Result<()> {
    let third_slot = compile.optimizer.uses_third_slot();
    let optimizer_state = optimizer_state.map(|(iterations, moments)| OptimizerState {
        iterations,
        m: moments.m,
        v: moments.v,
        s: if third_slot { moments.s } else { Vec::new() },
    });
    let layers = model_layers
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
        seed,
        layers,
        compile,
        preprocessing: preprocessor.cloned(),
        optimizer_state,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| format_err(path, format!("cannot encode the model: {e}")))?;
    write_atomic(path, &bytes)
}

/// What a checkpoint needs to write a model's files during fit, when the weights live in the
/// trainer's plan (the model itself is borrowed by the fit): its layers, input width, seed and
/// compile settings, taken when fit starts. [`ModelCheckpoint`](crate::ModelCheckpoint) writes
/// through it, per member in a sweep.
#[derive(Clone)]
pub(crate) struct ModelWriter {
    layers: Vec<Layer>,
    input_width: usize,
    seed: u64,
    loss: Loss,
    metrics: Vec<String>,
}

impl ModelWriter {
    /// The writer of `model` (compiled) taking `input_width` features, or None when not compiled.
    pub(crate) fn of(model: &Sequential, input_width: usize) -> Option<ModelWriter> {
        let (_, loss, metrics) = model.compiled_settings()?;
        Some(ModelWriter {
            layers: model.layers().to_vec(),
            input_width,
            seed: model.init_seed(),
            loss: *loss,
            metrics,
        })
    }

    /// Writes `req.path`: a model file (with `optimizer` as it is now, its state when given, and
    /// the request's preprocessing) or, with `weights_only`, a weights-only file. Missing parent directories are made, as Keras's
    /// ModelCheckpoint does.
    pub(crate) fn write(
        &self,
        req: &crate::callbacks::SaveRequest,
        optimizer: Optimizer,
        params: &[f32],
        state: &[f32],
        optimizer_state: Option<OptimizerMoments>,
    ) -> Result<()> {
        let path = req.path.as_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        }
        let (infos, weights) = entries(&self.layers, self.input_width, params, state)?;
        if req.weights_only {
            return write_weights_file(path, infos, weights);
        }
        let compile = CompileEntry { optimizer, loss: self.loss, metrics: self.metrics.clone() };
        write_model_file(
            path,
            &self.layers,
            self.input_width,
            self.seed,
            compile,
            infos,
            weights,
            optimizer_state,
            req.preprocessor.as_ref(),
        )
    }
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
            is_input: false,
        })
        .collect();
    let infos = layer_infos(&layers, file.input_width);
    let named: Vec<(String, &[WeightEntry])> =
        file.layers.iter().map(|e| (e.name.clone(), e.weights.as_slice())).collect();
    let (params, state) = flatten(path, &infos, &named)?;
    if let Some(pre) = &file.preprocessing {
        if !pre.scaler().is_consistent() {
            return Err(format_err(
                path,
                "invalid wgfit model file: the scaler's per-column arrays (min/span or mean/std) differ in length",
            ));
        }
        if pre.input_width() != file.input_width || pre.scaler().width().is_some_and(|w| w != file.input_width) {
            return Err(format_err(
                path,
                format!(
                    "the preprocessing makes {} inputs (scaler: {:?}), the model takes {}",
                    pre.input_width(),
                    pre.scaler().width(),
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
            .set_optimizer_state(
                opt.iterations,
                &crate::plan::Moments { m: opt.m.clone(), v: opt.v.clone(), s: opt.s.clone() },
            )
            .map_err(|e| format_err(path, format!("invalid optimizer_state: {e}")))?;
    }
    Ok(LoadedModel { model, preprocessor: file.preprocessing })
}

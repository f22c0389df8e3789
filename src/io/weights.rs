//! Weight arrays: cut from and checked against a model's layout, and the weights-only files
//! (JSON `"format": "wgfit-weights"`, or safetensors).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{exact_f32, format_err, not_built, read_checked, write_atomic, FORMAT_VERSION, WEIGHTS_FORMAT};
use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::model::Sequential;
use crate::summary::{layer_infos, LayerInfo};

/// One weight array of a layer, as model and weights files store it.
#[derive(Serialize, Deserialize)]
pub(super) struct WeightEntry {
    pub(super) name: String,
    pub(super) shape: Vec<usize>,
    #[serde(default = "yes")]
    trainable: bool,
    #[serde(with = "exact_f32")]
    pub(super) values: Vec<f32>,
}

fn yes() -> bool {
    true
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

/// The model's weights per layer, cut from the flat vectors.
pub(super) fn weight_entries(model: &mut Sequential) -> Result<(usize, Vec<LayerInfo>, Vec<Vec<WeightEntry>>)> {
    let input_w = model.input_width().ok_or_else(not_built)?;
    let (params, state) = model.get_weights()?;
    let (infos, out) = entries(model.layers(), input_w, &params, &state)?;
    Ok((input_w, infos, out))
}

/// The weights of `layers` (taking `input_w` features) per layer, cut from flat `params` and
/// `state`; a non-finite value is an error (a file must load back).
pub(super) fn entries(
    layers: &[Layer],
    input_w: usize,
    params: &[f32],
    state: &[f32],
) -> Result<(Vec<LayerInfo>, Vec<Vec<WeightEntry>>)> {
    let infos = layer_infos(layers, input_w);
    let (mut p, mut s) = (0usize, 0usize);
    let mut out = Vec::with_capacity(infos.len());
    for info in &infos {
        let mut entries = Vec::new();
        for w in &info.weights {
            let (src, off) = if w.trainable { (params, &mut p) } else { (state, &mut s) };
            let values = src
                .get(*off..*off + w.len())
                .ok_or_else(|| Error::Internal("weight layout does not match the model".into()))?
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
    Ok((infos, out))
}

/// Checks saved weights against the layout and flattens them into (params, state).
pub(super) fn flatten(
    path: &Path,
    infos: &[LayerInfo],
    layers: &[(String, &[WeightEntry])],
) -> Result<(Vec<f32>, Vec<f32>)> {
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

fn is_safetensors(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Saves only the weights and moving statistics, per layer, atomically: JSON
/// (`"format": "wgfit-weights"`), or safetensors when the file name ends in `.safetensors`
/// (tensors `layers.<i>.<weight>`, f32 little-endian, Keras's shapes; metadata names the layers).
pub fn save_weights(path: impl AsRef<Path>, model: &mut Sequential) -> Result<()> {
    let (_, infos, weights) = weight_entries(model)?;
    write_weights_file(path.as_ref(), infos, weights)
}

/// Writes a weights-only file (JSON, or safetensors by the name), atomically.
pub(super) fn write_weights_file(path: &Path, infos: Vec<LayerInfo>, weights: Vec<Vec<WeightEntry>>) -> Result<()> {
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

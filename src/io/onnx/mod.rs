//! ONNX export: a trained [`Sequential`] as an ONNX model (opset 13) that any ONNX runtime
//! (onnxruntime, tract, ...) runs for inference, with the CLI's fitted preprocessing in front.
//!
//! # What each layer becomes
//!
//! One exhaustive match (`layer()` below) over the layer kinds and one (`activation()`) over the
//! activations, so a new layer kind or activation does not compile until it says what it exports
//! as (one arm each):
//!
//! | wgfit                       | ONNX                                                              |
//! |-----------------------------|-------------------------------------------------------------------|
//! | Dense                       | `Gemm(x, kernel, bias)` (`MatMul` without a bias), then its activation |
//! | relu, sigmoid, tanh         | `Relu`, `Sigmoid`, `Tanh`                                          |
//! | elu / selu / leaky_relu     | `Elu` (alpha 1), `Selu` (Keras's alpha and scale), `LeakyRelu` (alpha 0.2) |
//! | linear                      | nothing                                                           |
//! | Activation                  | its activation                                                    |
//! | BatchNormalization          | `BatchNormalization` with the moving statistics (inference), gamma 1 / beta 0 when not learned |
//! | Dropout                     | nothing (identity at inference)                                   |
//!
//! # Inputs and outputs
//!
//! One float32 input `input` of shape `[batch, columns]` and one float32 output `output` of shape
//! `[batch, units of the last layer]`: exactly what [`Sequential::predict`] returns for the same
//! rows.
//!
//! Without preprocessing the input columns are the model's inputs as given to `predict`.
//! With the CLI's preprocessing ([`OnnxOptions::preprocessor`], `wgfit export`), the input takes
//! one column per feature column of the CSV file, in the order of
//! [`Preprocessor::features`] (the `input_columns` metadata entry), and the graph does the rest:
//!
//! - a numeric column is its raw value; the fitted scaling (`Sub`, `Div`) runs in the graph;
//! - a one-hot (categorical) column is the **index of its category** in that column's sorted
//!   category list (the `categories` metadata entry), as a float: 0.0 for the first category.
//!   The graph one-hot encodes it (`Gather`, `Equal`, `Cast`, `Where`). An index that is not one
//!   of the categories (an unseen category, -1, 2.5) encodes as all zeros, where `wgfit predict`
//!   refuses the row: map strings to indices, and reject unknown ones, before calling the model.
//!
//! Strings cannot go in: the ONNX operators that compare or map strings (`Equal` on strings,
//! `ai.onnx.ml.LabelEncoder`) are missing from lightweight runtimes such as tract, and a file
//! that only onnxruntime can run would defeat the point of exporting.
//!
//! # Metadata (`metadata_props`)
//!
//! `task` (`regression` or `binary_classification`), `loss`, `output` (what each output value
//! is), and for classifiers `class_labels` (a JSON array: the labels of targets 0 and 1, by
//! default `["0","1"]`; the output is the probability, or with `from_logits` the logit, of the
//! second). With preprocessing also `target` (the CSV target column), `input_columns` (JSON
//! array) and `categories` (JSON object: column → its categories, in index order); always
//! `input_contract`, the sentence above that applies.
//!
//! Weights are stored as float32 initializers; the file is written atomically
//! ([`super::write_atomic`]).

mod graph;
#[allow(missing_docs, dead_code, clippy::all, clippy::pedantic)]
mod proto;

use std::path::Path;

use prost::Message;

use self::graph::{matrix_value, Attr, Graph};
use self::proto::{tensor_proto::DataType, ModelProto, OperatorSetIdProto, StringStringEntryProto};
use super::weights::{weight_entries, WeightEntry};
use super::write_atomic;
use crate::data::{Feature, Preprocessor, Scaler};
use crate::error::{Error, Result};
use crate::layers::{Activation, LayerKind};
use crate::losses::Loss;
use crate::model::Sequential;

/// The ONNX operator set the files declare (default domain). 13 is the oldest with every
/// operator used here in its current form, so older runtimes read the files too.
pub const ONNX_OPSET: i64 = 13;
/// The ONNX IR version that goes with opset 13 (ONNX 1.8).
const IR_VERSION: i64 = 7;

// Keras's selu constants, the f32 values the kernels use (device::cpu::kernels, shaders/common.wgsl).
#[allow(clippy::excessive_precision)]
const SELU_SCALE: f32 = 1.0507009873554805;
#[allow(clippy::excessive_precision)]
const SELU_ALPHA: f32 = 1.6732632423543772;
/// leaky_relu's negative slope (Keras 3's default, as the kernels apply it).
const LEAKY_SLOPE: f32 = 0.2;

/// What to put in an ONNX file besides the model: the CLI's preprocessing and class labels.
#[derive(Clone, Debug, Default)]
pub struct OnnxOptions<'a> {
    preprocessor: Option<&'a Preprocessor>,
    class_labels: Option<Vec<String>>,
}

impl<'a> OnnxOptions<'a> {
    /// The defaults: no preprocessing, class labels `"0"` and `"1"` for a classifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts this fitted preprocessing (scaling, one-hot columns) in the graph, in front of the
    /// model, so the file takes raw feature values (see the module docs for the input contract).
    pub fn preprocessor(mut self, preprocessor: &'a Preprocessor) -> Self {
        self.preprocessor = Some(preprocessor);
        self
    }

    /// The class labels (the `class_labels` metadata entry): a binary classifier's targets 0 and
    /// 1 (exactly two), or a multi-class model's outputs in order (one per output; default the
    /// CLI's class labels, else the indices); distinct. Refused for a regression loss.
    pub fn class_labels(mut self, labels: &[&str]) -> Self {
        self.class_labels = Some(labels.iter().map(|s| s.to_string()).collect());
        self
    }
}

/// Writes `model` as an ONNX file at `path`, atomically (see the [module docs](self)).
///
/// Errors: [`Error::State`] for a model that was never compiled with an input shape nor fitted,
/// [`Error::Shape`] for preprocessing of another width, [`Error::InvalidValue`] for class labels
/// that do not fit the model, [`Error::NonFinite`] for a NaN or infinite weight, [`Error::Io`]
/// when the file cannot be written.
pub fn save_onnx(path: impl AsRef<Path>, model: &mut Sequential, options: &OnnxOptions<'_>) -> Result<()> {
    let bytes = onnx_bytes(model, options)?;
    write_atomic(path, &bytes)
}

/// The ONNX file [`save_onnx`] writes, as bytes (a serialized `onnx.ModelProto`).
pub fn onnx_bytes(model: &mut Sequential, options: &OnnxOptions<'_>) -> Result<Vec<u8>> {
    let (input_w, infos, weights) = weight_entries(model)?;
    let loss = *model.compiled_settings().ok_or_else(super::not_built)?.1;
    let mut g = Graph::default();
    let mut meta: Vec<(&str, String)> = Vec::new();

    let (input, mut x) = match options.preprocessor {
        Some(pre) => preprocessing(&mut g, pre, input_w, &mut meta)?,
        None => {
            let doc = format!("the model's {input_w} inputs, as given to Sequential::predict");
            meta.push(("input_contract", doc.clone()));
            (matrix_value("input", input_w, doc), "input".to_string())
        }
    };

    let prefixes = unique_prefixes(infos.iter().map(|i| i.name.as_str()));
    for ((l, weights), prefix) in model.layers().iter().zip(&weights).zip(&prefixes) {
        x = layer(&mut g, &l.kind, weights, &x, prefix)?;
    }
    let out_w = infos.last().map_or(input_w, |i| i.out_w);

    let output_doc = task_metadata(loss, out_w, options, &mut meta)?;
    g.rename_output(&x, "output");
    let graph = g.finish("wgfit", input, matrix_value("output", out_w, output_doc));

    let model_proto = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(ONNX_OPSET) }],
        producer_name: Some("wgfit".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("A Sequential model exported by wgfit.\n{}", model.summary())),
        graph: Some(graph),
        metadata_props: meta
            .into_iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.to_string()), value: Some(v) })
            .collect(),
        ..Default::default()
    };
    Ok(model_proto.encode_to_vec())
}

/// A tensor-name prefix per layer: its name, made unique (user-given names may repeat).
fn unique_prefixes<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .enumerate()
        .map(|(i, n)| {
            let mut p = n.to_string();
            if !seen.insert(p.clone()) {
                p = format!("{n}.{i}");
                seen.insert(p.clone());
            }
            p
        })
        .collect()
}

/// The nodes of one layer reading `x`; returns the name of its output. The one place that says
/// what each layer kind exports as.
fn layer(g: &mut Graph, kind: &LayerKind, weights: &[WeightEntry], x: &str, prefix: &str) -> Result<String> {
    let weight = |name: &str| {
        weights
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| Error::Internal(format!("layer {prefix:?} has no weight {name:?} to export")))
    };
    Ok(match kind {
        LayerKind::Dense(c) => {
            let kernel = weight("kernel")?;
            let k = g.floats(&format!("{prefix}/kernel"), &kernel.shape, &kernel.values);
            let z = if c.use_bias() {
                let bias = weight("bias")?;
                let b = g.floats(&format!("{prefix}/bias"), &bias.shape, &bias.values);
                g.node("Gemm", &[x, &k, &b], &format!("{prefix}/Gemm"), &[])
            } else {
                g.node("MatMul", &[x, &k], &format!("{prefix}/MatMul"), &[])
            };
            activation(g, c.activation(), &z, prefix)
        }
        LayerKind::Activation(c) => activation(g, c.activation(), x, prefix),
        LayerKind::Dropout(_) => x.to_string(),
        LayerKind::BatchNormalization(c) => {
            let mean = weight("moving_mean")?;
            let width = mean.values.len();
            let learned_or = |name: &str, on: bool, fill: f32| -> Result<Vec<f32>> {
                Ok(if on { weight(name)?.values.clone() } else { vec![fill; width] })
            };
            let gamma = learned_or("gamma", c.scale(), 1.0)?;
            let beta = learned_or("beta", c.center(), 0.0)?;
            let var = weight("moving_variance")?;
            let inputs = [
                x.to_string(),
                g.floats(&format!("{prefix}/gamma"), &[width], &gamma),
                g.floats(&format!("{prefix}/beta"), &[width], &beta),
                g.floats(&format!("{prefix}/moving_mean"), &[width], &mean.values),
                g.floats(&format!("{prefix}/moving_variance"), &[width], &var.values),
            ];
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let attrs = [("epsilon", Attr::Float(c.epsilon()))];
            g.node("BatchNormalization", &inputs, &format!("{prefix}/BatchNormalization"), &attrs)
        }
        // (x - mean) / std, or mean + x * std inverted, std = max(sqrt(variance), 1e-7) computed here.
        LayerKind::Normalization(c) => {
            let mean = weight("mean")?;
            let variance = weight("variance")?;
            let width = mean.values.len();
            let std: Vec<f32> = variance.values.iter().map(|v| v.sqrt().max(1e-7)).collect();
            let m = g.floats(&format!("{prefix}/mean"), &[width], &mean.values);
            let s = g.floats(&format!("{prefix}/std"), &[width], &std);
            if c.invert() {
                let scaled = g.node("Mul", &[x, &s], &format!("{prefix}/Mul"), &[]);
                g.node("Add", &[&scaled, &m], &format!("{prefix}/Add"), &[])
            } else {
                let centred = g.node("Sub", &[x, &m], &format!("{prefix}/Sub"), &[]);
                g.node("Div", &[&centred, &s], &format!("{prefix}/Div"), &[])
            }
        }
    })
}

/// The node of an activation reading `x` (none for linear); returns the name of its output.
fn activation(g: &mut Graph, act: Activation, x: &str, prefix: &str) -> String {
    let (op, attrs) = match act {
        Activation::Linear => return x.to_string(),
        Activation::Relu => ("Relu", vec![]),
        Activation::Sigmoid => ("Sigmoid", vec![]),
        Activation::Tanh => ("Tanh", vec![]),
        Activation::Elu => ("Elu", vec![("alpha", Attr::Float(1.0))]),
        Activation::Selu => ("Selu", vec![("alpha", Attr::Float(SELU_ALPHA)), ("gamma", Attr::Float(SELU_SCALE))]),
        Activation::LeakyRelu => ("LeakyRelu", vec![("alpha", Attr::Float(LEAKY_SLOPE))]),
        // Over each row's outputs, as Keras's softmax (opset 13's axis semantics).
        Activation::Softmax => ("Softmax", vec![("axis", Attr::Int(-1))]),
        Activation::Softplus => ("Softplus", vec![]),
        // x · sigmoid(x).
        Activation::Silu => {
            let s = g.node("Sigmoid", &[x], &format!("{prefix}/silu_sigmoid"), &[]);
            return g.node("Mul", &[x, &s], &format!("{prefix}/silu"), &[]);
        }
        // 0.5 x (1 + erf(x / √2)) (opset 20's Gelu is newer than the files' opset 13).
        Activation::Gelu => {
            let r = g.floats(&format!("{prefix}/gelu_inv_sqrt2"), &[], &[std::f32::consts::FRAC_1_SQRT_2]);
            let (one, half) = (
                g.floats(&format!("{prefix}/gelu_one"), &[], &[1.0]),
                g.floats(&format!("{prefix}/gelu_half"), &[], &[0.5]),
            );
            let scaled = g.node("Mul", &[x, &r], &format!("{prefix}/gelu_scaled"), &[]);
            let erf = g.node("Erf", &[&scaled], &format!("{prefix}/gelu_erf"), &[]);
            let plus = g.node("Add", &[&erf, &one], &format!("{prefix}/gelu_plus_one"), &[]);
            let hx = g.node("Mul", &[x, &half], &format!("{prefix}/gelu_half_x"), &[]);
            return g.node("Mul", &[&hx, &plus], &format!("{prefix}/gelu"), &[]);
        }
        // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), as x · sigmoid(2u) with u the tanh's argument.
        Activation::GeluApproximate => {
            let c = g.floats(&format!("{prefix}/gelu_c"), &[], &[0.044715]);
            let k = g.floats(&format!("{prefix}/gelu_k"), &[], &[2.0 * (2.0 / std::f32::consts::PI).sqrt()]);
            let x2 = g.node("Mul", &[x, x], &format!("{prefix}/gelu_x2"), &[]);
            let x3 = g.node("Mul", &[&x2, x], &format!("{prefix}/gelu_x3"), &[]);
            let cx3 = g.node("Mul", &[&x3, &c], &format!("{prefix}/gelu_cx3"), &[]);
            let inner = g.node("Add", &[x, &cx3], &format!("{prefix}/gelu_inner"), &[]);
            let u2 = g.node("Mul", &[&inner, &k], &format!("{prefix}/gelu_2u"), &[]);
            let s = g.node("Sigmoid", &[&u2], &format!("{prefix}/gelu_sigmoid"), &[]);
            return g.node("Mul", &[x, &s], &format!("{prefix}/gelu_approximate"), &[]);
        }
    };
    g.node(op, &[x], &format!("{prefix}/{op}"), &attrs)
}

/// The CLI's preprocessing as nodes in front of the model: the graph input (one column per CSV
/// feature column) and the name of the encoded, scaled tensor the first layer reads.
fn preprocessing(
    g: &mut Graph,
    pre: &Preprocessor,
    input_w: usize,
    meta: &mut Vec<(&str, String)>,
) -> Result<(proto::ValueInfoProto, String)> {
    if pre.input_width() != input_w {
        return Err(Error::shape(
            "ONNX export",
            format!("preprocessing that makes the model's {input_w} inputs"),
            format!("preprocessing that makes {} inputs", pre.input_width()),
        ));
    }
    if !pre.scaler().is_consistent() || pre.scaler().width().is_some_and(|w| w != input_w) {
        return Err(Error::shape(
            "ONNX export",
            format!("a scaler of {input_w} columns"),
            format!("a scaler of {:?} columns (or per-column arrays of different lengths)", pre.scaler().width()),
        ));
    }
    let features = pre.features();
    let columns: Vec<&str> = features.iter().map(Feature::column).collect();
    let has_categories = features.iter().any(|f| matches!(f, Feature::OneHot { .. }));
    let contract = if has_categories {
        "one float column per CSV feature column, in input_columns order: a numeric column's raw \
         value (scaled in the graph); a categorical column's index in its list in `categories` \
         (0 for the first; any other value one-hot encodes as all zeros)"
    } else {
        "one float column per CSV feature column, in input_columns order, as raw values (scaled in the graph)"
    };
    meta.push(("input_contract", contract.to_string()));
    meta.push(("target", pre.target().to_string()));
    meta.push(("input_columns", serde_json::to_string(&columns).unwrap_or_default()));
    if has_categories {
        let categories: serde_json::Map<String, serde_json::Value> = features
            .iter()
            .filter_map(|f| match f {
                Feature::OneHot { column, categories } => Some((column.clone(), serde_json::json!(categories))),
                Feature::Numeric { .. } => None,
            })
            .collect();
        meta.push(("categories", serde_json::Value::Object(categories).to_string()));
    }
    let input = matrix_value("input", features.len(), contract.to_string());

    let mut x = "input".to_string();
    if has_categories {
        // Every model input j reads CSV column source[j]; a one-hot input is 1 where that
        // column's index equals its category number k[j], a numeric input is the value itself.
        let (mut source, mut k, mut onehot) = (Vec::new(), Vec::new(), Vec::new());
        for (c, f) in features.iter().enumerate() {
            match f {
                Feature::Numeric { .. } => {
                    source.push(c as i64);
                    k.push(0.0);
                    onehot.push(false);
                }
                Feature::OneHot { categories, .. } => {
                    for i in 0..categories.len() {
                        source.push(c as i64);
                        k.push(i as f32);
                        onehot.push(true);
                    }
                }
            }
        }
        let source = g.ints("preprocessing/source_column", &[input_w], &source);
        let k = g.floats("preprocessing/category_index", &[input_w], &k);
        let onehot = g.bools("preprocessing/is_one_hot", &[input_w], &onehot);
        let spread = g.node("Gather", &[&x, &source], "preprocessing/spread", &[("axis", Attr::Int(1))]);
        let equal = g.node("Equal", &[&spread, &k], "preprocessing/equal", &[]);
        let to_float = [("to", Attr::Int(DataType::Float as i64))];
        let hot = g.node("Cast", &[&equal], "preprocessing/one_hot", &to_float);
        x = g.node("Where", &[&onehot, &hot, &spread], "preprocessing/encoded", &[]);
    }
    let (offset, divisor) = match pre.scaler() {
        Scaler::None => return Ok((input, x)),
        Scaler::MinMax(s) => (s.min(), s.span()),
        Scaler::Standard { mean, std } => (mean.as_slice(), std.as_slice()),
    };
    let offset = g.floats("preprocessing/offset", &[input_w], offset);
    let divisor = g.floats("preprocessing/divisor", &[input_w], divisor);
    let centered = g.node("Sub", &[&x, &offset], "preprocessing/centered", &[]);
    let scaled = g.node("Div", &[&centered, &divisor], "preprocessing/scaled", &[]);
    Ok((input, scaled))
}

/// The task, loss and class-label metadata; returns the description of the output.
fn task_metadata(
    loss: Loss,
    out_w: usize,
    options: &OnnxOptions<'_>,
    meta: &mut Vec<(&str, String)>,
) -> Result<String> {
    meta.push(("loss", loss.name().to_string()));
    let (task, output) = match loss {
        Loss::MeanAbsoluteError | Loss::MeanSquaredError => {
            if let Some(labels) = &options.class_labels {
                return Err(Error::invalid(
                    "class_labels",
                    labels.join(","),
                    format!("class labels apply to classifiers only; this model's loss is {}", loss.name()),
                ));
            }
            ("regression", format!("the predicted value of each of the {out_w} targets"))
        }
        Loss::BinaryCrossentropy { from_logits } => {
            let labels = options.class_labels.clone().unwrap_or_else(|| vec!["0".into(), "1".into()]);
            if labels.len() != 2 || labels[0] == labels[1] {
                return Err(Error::invalid(
                    "class_labels",
                    labels.join(","),
                    "a binary classifier takes two distinct labels: those of targets 0 and 1",
                ));
            }
            meta.push(("class_labels", serde_json::to_string(&labels).unwrap_or_default()));
            let what = if from_logits { "the logit of the probability" } else { "the probability" };
            ("binary_classification", format!("{what} that the class is {:?} (class_labels[1])", labels[1]))
        }
        Loss::CategoricalCrossentropy { from_logits, .. } | Loss::SparseCategoricalCrossentropy { from_logits } => {
            // The labels given, else the CLI's class labels, else the class indices.
            let labels = match (&options.class_labels, options.preprocessor.and_then(|p| p.classes())) {
                (Some(l), _) => l.clone(),
                (None, Some(classes)) => classes.to_vec(),
                (None, None) => (0..out_w).map(|i| i.to_string()).collect(),
            };
            let distinct: std::collections::HashSet<&String> = labels.iter().collect();
            if labels.len() != out_w || distinct.len() != out_w {
                return Err(Error::invalid(
                    "class_labels",
                    labels.join(","),
                    format!("a classifier of {out_w} outputs takes {out_w} distinct labels, one per output"),
                ));
            }
            meta.push(("class_labels", serde_json::to_string(&labels).unwrap_or_default()));
            let what = if from_logits { "the logit" } else { "the probability" };
            ("multiclass_classification", format!("{what} of each class, in class_labels order"))
        }
    };
    meta.push(("task", task.to_string()));
    meta.push(("output", output.clone()));
    Ok(output)
}

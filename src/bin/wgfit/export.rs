//! `wgfit export`: a saved model as an ONNX file, with its preprocessing in the graph.

use std::path::Path;

use wgfit::io::{self, OnnxOptions};
use wgfit::Device;

use crate::CliResult;

/// Loads `model_path` (on the CPU path: nothing runs) and writes it to `onnx_path`; with the
/// saved preprocessing in front unless `raw_inputs`. Says the input contract on stderr.
pub(crate) fn export(model_path: &Path, onnx_path: &Path, raw_inputs: bool, class_labels: &[String]) -> CliResult<()> {
    let loaded = io::load_model(model_path, &Device::cpu())?;
    let mut model = loaded.model;
    let pre = if raw_inputs { None } else { loaded.preprocessor.as_ref() };
    let mut options = OnnxOptions::new();
    if let Some(pre) = pre {
        options = options.preprocessor(pre);
    }
    if !class_labels.is_empty() {
        let labels: Vec<&str> = class_labels.iter().map(String::as_str).collect();
        options = options.class_labels(&labels);
    }
    model.save_onnx_with(onnx_path, &options)?;
    let width = model.input_shape().unwrap_or(0);
    let contract = match pre {
        Some(pre) => {
            let columns: Vec<String> = pre
                .features()
                .iter()
                .map(|f| match f {
                    wgfit::data::Feature::Numeric { column } => column.clone(),
                    wgfit::data::Feature::OneHot { column, .. } => format!("{column} (category index)"),
                })
                .collect();
            format!("input: {} raw columns ({})", columns.len(), columns.join(", "))
        }
        None => format!("input: the model's {width} inputs, already preprocessed"),
    };
    eprintln!("wgfit: wrote {} (ONNX opset {}); {contract}", onnx_path.display(), io::onnx::ONNX_OPSET);
    Ok(())
}

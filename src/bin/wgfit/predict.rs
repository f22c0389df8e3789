//! `wgfit evaluate` and `wgfit predict`: apply a saved model to a CSV file.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};
use wgfit::data::{Preprocessor, RawTable};
use wgfit::{io, Sequential};

use crate::{json_f32, pick_device, print_json, CliResult, Failure};

/// Loads a model and its preprocessing (`None` when it was saved without one: see [`resolve_pre`]).
fn load(path: &Path, device: Option<&str>) -> CliResult<(Sequential, Option<Preprocessor>)> {
    let device = pick_device(device)?;
    let loaded = io::load_model(path, &device)?;
    if loaded.preprocessor.is_none() {
        eprintln!("wgfit: notice: the model has no saved preprocessing: reading every column as a number, unscaled");
    }
    Ok((loaded.model, loaded.preprocessor))
}

/// The preprocessing for a table: the saved one, or when the model file carried none, every
/// column read as a number, unscaled (the last being the target when `with_target`).
fn resolve_pre(pre: Option<Preprocessor>, table: &RawTable, with_target: bool) -> CliResult<Preprocessor> {
    match pre {
        Some(pre) => Ok(pre),
        None => Ok(Preprocessor::unscaled_numeric(table, with_target)?),
    }
}

pub(crate) fn evaluate(model_path: &Path, data_path: &Path, device: Option<&str>, json: bool) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let table = RawTable::read(data_path)?;
    let pre = resolve_pre(pre, &table, true)?;
    let (x, y) = pre.transform_xy(&table)?;
    let scores = model.evaluate(&x, &y)?;
    if json {
        let mut m = Map::new();
        for (k, v) in scores {
            m.insert(k, json_f32(v));
        }
        print_json(&Value::Object(m))?;
    } else {
        let mut out = std::io::stdout().lock();
        for (k, v) in scores {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    Ok(())
}

pub(crate) fn predict(
    model_path: &Path,
    data_path: &Path,
    output: Option<&Path>,
    device: Option<&str>,
) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let table = RawTable::read(data_path)?;
    // Without saved preprocessing: a table one column wider than the model's input has a target last.
    let has_target = model.input_shape().is_some_and(|w| table.columns().len() > w);
    let pre = resolve_pre(pre, &table, has_target)?;
    let x = pre.transform_x(&table)?;
    let preds = model.predict(&x)?;
    let mut text = String::new();
    let cols = preds.cols();
    let header: Vec<String> =
        (0..cols).map(|c| if cols > 1 { format!("prediction{c}") } else { "prediction".into() }).collect();
    text.push_str(&header.join(","));
    text.push('\n');
    for r in 0..preds.rows() {
        let row = preds.row(r).unwrap_or(&[]);
        text.push_str(&row.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    match output {
        Some(path) => {
            io::write_atomic(path, text.as_bytes())?;
            eprintln!("wgfit: {} predictions written to {}", preds.rows(), path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })?;
        }
    }
    Ok(())
}

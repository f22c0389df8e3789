//! `wgfit evaluate` and `wgfit predict`: apply a saved model to a CSV file (`--stream`: read in
//! pieces from disk).

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};
use wgfit::data::{DataFile, FileOptions, Preprocessor, RawTable};
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

/// The saved preprocessing a `--stream` run reads its file through (`command`: for the message).
fn streaming_pre(pre: Option<Preprocessor>, command: &str) -> CliResult<Preprocessor> {
    pre.ok_or_else(|| {
        crate::usage(format!(
            "{command} --stream needs a model saved with its preprocessing (as `wgfit train --save` saves it)"
        ))
    })
}

pub(crate) fn evaluate(
    model_path: &Path,
    data_path: &Path,
    device: Option<&str>,
    json: bool,
    stream: bool,
) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let scores = if stream {
        let file = DataFile::open_preprocessed(data_path, &streaming_pre(pre, "evaluate")?, &FileOptions::new())?;
        model.evaluate_file(&file)?
    } else {
        let table = RawTable::read(data_path)?;
        let pre = resolve_pre(pre, &table, true)?;
        let (x, y) = pre.transform_xy(&table)?;
        model.evaluate(&x, &y)?
    };
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

/// Predictions as they are: `prediction` (or `prediction0`.. for several outputs) per row.
fn value_rows(preds: &wgfit::Matrix) -> String {
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
    text
}

/// A classifier's rows: the label of the most probable class (the first of ties, as argmax)
/// under the target's name, then with `proba` a `p_<label>` column per class.
fn class_rows(preds: &wgfit::Matrix, classes: &[String], target: &str, proba: bool) -> String {
    let field =
        |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    let mut header = vec![field(target)];
    if proba {
        header.extend(classes.iter().map(|c| field(&format!("p_{c}"))));
    }
    let mut text = header.join(",") + "\n";
    for r in 0..preds.rows() {
        let row = preds.row(r).unwrap_or(&[]);
        let best = (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        text.push_str(&field(&classes[best]));
        if proba {
            for v in row {
                text.push(',');
                text.push_str(&v.to_string());
            }
        }
        text.push('\n');
    }
    text
}

/// Writes one row per input row: the prediction, or for a classifier of class labels the label
/// (the most probable class) and with `proba` each class's probability after it.
pub(crate) fn predict(
    model_path: &Path,
    data_path: &Path,
    output: Option<&Path>,
    proba: bool,
    device: Option<&str>,
    stream: bool,
) -> CliResult<()> {
    let (mut model, pre) = load(model_path, device)?;
    let (pre, preds) = if stream {
        let pre = streaming_pre(pre, "predict")?;
        // The target column is not read (a file to predict may not have it).
        let file = DataFile::open_preprocessed(data_path, &pre, &FileOptions::new().without_target())?;
        let preds = model.predict_file(&file)?;
        (pre, preds)
    } else {
        let table = RawTable::read(data_path)?;
        // Without saved preprocessing: a table one column wider than the model's input has a target last.
        let has_target = model.input_shape().is_some_and(|w| table.columns().len() > w);
        let pre = resolve_pre(pre, &table, has_target)?;
        let x = pre.transform_x(&table)?;
        let preds = model.predict(&x)?;
        (pre, preds)
    };
    let classes = pre.classes().filter(|c| c.len() == preds.cols() && c.len() > 1);
    if proba && classes.is_none() {
        return Err(crate::usage(
            "--proba needs a classifier of class labels (a model trained on a text target or with --task multiclass)",
        ));
    }
    let text = match classes {
        Some(classes) => class_rows(&preds, classes, pre.target(), proba),
        None => value_rows(&preds),
    };
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

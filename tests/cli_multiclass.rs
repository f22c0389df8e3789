//! `wgfit` end to end on a multi-class target: a text-labelled CSV (tests/data/digits_words.csv:
//! 180 digits rows, classes "zero", "one", "two") and a numeric one with `--task multiclass`.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::cli::{run, s};

fn words() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits_words.csv")
}

fn run_ok(args: &[&str]) -> (String, String) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "wgfit {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// Runs, expects exit code `want` and one `wgfit: error:` line last, no panic.
fn run_fail(args: &[&str], want: i32) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, want, "wgfit {args:?}: stdout {stdout:?} stderr {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim().lines().last().unwrap_or("").to_string()
}

/// Train on text labels with the defaults (said on stderr), save, summarize, evaluate, predict
/// labels and probabilities; the labels survive the model file.
#[test]
fn text_labels_train_save_predict() {
    let dir = tempfile::tempdir().unwrap();
    let (model, plot) = (dir.path().join("m.json"), dir.path().join("curves.svg"));
    let data = words();
    let (stdout, stderr) = run_ok(&[
        "train",
        "--data",
        s(&data),
        "--layers",
        "32",
        "--epochs",
        "15",
        "--validation-split",
        "0.25",
        "--device",
        "cpu",
        "--json",
        "--save",
        s(&model),
        "--plot",
        s(&plot),
    ]);
    assert!(
        stderr.contains("class target (3 classes): using a softmax output of 3 units, sparse_categorical_crossentropy loss and accuracy metrics"),
        "{stderr}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let acc = v["final"]["val_accuracy"].as_f64().unwrap();
    assert!(acc > 0.9, "val accuracy {acc}: {v}");
    assert_eq!(v["history"]["accuracy"].as_array().unwrap().len(), 15);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("accuracy"), "the plot has an accuracy panel");

    let (summary, _) = run_ok(&["summary", "--model", s(&model)]);
    for want in ["Classes (3): one, two, zero", "Loss: sparse_categorical_crossentropy", "Output activation: softmax"] {
        assert!(summary.contains(want), "{want:?} not in {summary}");
    }
    let (eval, _) = run_ok(&["evaluate", "--model", s(&model), "--data", s(&data), "--device", "cpu", "--json"]);
    let eval: Value = serde_json::from_str(eval.trim()).unwrap();
    let eval_acc = eval["accuracy"].as_f64().unwrap();
    assert!(eval_acc > 0.9, "{eval}");

    let (labels, _) = run_ok(&["predict", "--model", s(&model), "--data", s(&data), "--device", "cpu"]);
    let truth: Vec<String> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    let lines: Vec<&str> = labels.lines().collect();
    assert_eq!(lines[0], "label");
    assert_eq!(lines.len(), truth.len() + 1);
    let hits = lines[1..].iter().zip(&truth).filter(|(p, t)| **p == t.as_str()).count();
    assert!(
        ((hits as f64 / truth.len() as f64) - eval_acc).abs() < 1e-6,
        "predicted labels agree with evaluate's accuracy"
    );

    let out = dir.path().join("p.csv");
    run_ok(&["predict", "--model", s(&model), "--data", s(&data), "--device", "cpu", "--proba", "--output", s(&out)]);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut rows = text.lines();
    assert_eq!(rows.next(), Some("label,p_one,p_two,p_zero"));
    for row in rows {
        let cells: Vec<&str> = row.split(',').collect();
        let p: Vec<f64> = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row}");
        let best = ["one", "two", "zero"][(0..3).fold(0, |b, j| if p[j] > p[b] { j } else { b })];
        assert_eq!(cells[0], best, "{row}");
    }
}

/// A numeric target is regression or binary unless `--task multiclass`; explicit settings work;
/// bad class input is a clear error.
#[test]
fn numeric_classes_explicit_settings_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(words())
        .unwrap()
        .replace(",zero\n", ",0\n")
        .replace(",one\n", ",1\n")
        .replace(",two\n", ",2\n");
    let data = dir.path().join("digits012.csv");
    std::fs::write(&data, &text).unwrap();
    let model = dir.path().join("m.json");
    let (_, stderr) = run_ok(&[
        "train",
        "--data",
        s(&data),
        "--layers",
        "16",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--task",
        "multiclass",
        "--save",
        s(&model),
    ]);
    assert!(stderr.contains("class target (3 classes)"), "{stderr}");
    let (summary, _) = run_ok(&["summary", "--model", s(&model)]);
    assert!(summary.contains("Classes (3): 0, 1, 2"), "{summary}");
    let (_, stderr) = run_ok(&["train", "--data", s(&data), "--layers", "16", "--epochs", "1", "--device", "cpu"]);
    assert!(stderr.contains("numeric target: using a linear output, mae loss"), "{stderr}");
    // Explicit settings, on the GPU too.
    for device in ["cpu", "gpu"] {
        let (stdout, stderr) = run_ok(&[
            "train",
            "--data",
            s(&words()),
            "--layers",
            "16",
            "--epochs",
            "2",
            "--device",
            device,
            "--output",
            "softmax",
            "--loss",
            "sparse_categorical_crossentropy",
            "--metrics",
            "accuracy,sparse_top_k_categorical_accuracy",
            "--json",
        ]);
        assert!(!stderr.contains("using a"), "no defaults taken: {stderr}");
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert!(
            v["final"]["sparse_top_k_categorical_accuracy"].as_f64().unwrap()
                >= v["final"]["accuracy"].as_f64().unwrap()
        );
    }
    // A class the training rows never had.
    let valid = dir.path().join("valid.csv");
    let mut vtext: Vec<String> = std::fs::read_to_string(words()).unwrap().lines().take(5).map(String::from).collect();
    vtext[3] = vtext[3].replace(",one", ",seven").replace(",zero", ",seven").replace(",two", ",seven");
    std::fs::write(&valid, vtext.join("\n") + "\n").unwrap();
    let err = run_fail(&["train", "--data", s(&words()), "--valid", s(&valid), "--epochs", "1", "--device", "cpu"], 1);
    assert!(err.contains("class \"seven\" was not in the training data") && err.contains("one, two, zero"), "{err}");
    // One class only; --proba on a regression model; categorical cross-entropy on class indices.
    let one = dir.path().join("one.csv");
    std::fs::write(&one, "a,b,label\n1,2,cat\n3,4,cat\n").unwrap();
    let err = run_fail(&["train", "--data", s(&one), "--epochs", "1", "--device", "cpu"], 1);
    assert!(err.contains("has 1 value") && err.contains("at least 2"), "{err}");
    let reg = dir.path().join("reg.json");
    run_ok(&["train", "--data", s(&data), "--layers", "4", "--epochs", "1", "--device", "cpu", "--save", s(&reg)]);
    let err = run_fail(&["predict", "--model", s(&reg), "--data", s(&data), "--proba", "--device", "cpu"], 2);
    assert!(err.contains("--proba needs a classifier"), "{err}");
    let err = run_fail(
        &["train", "--data", s(&words()), "--epochs", "1", "--device", "cpu", "--loss", "categorical_crossentropy"],
        1,
    );
    assert!(err.contains("y with 3 columns") && err.contains("1 columns"), "{err}");
}

//! `wgfit train --sample-weight COLUMN` and `--class-weight` end to end: the weight column is no
//! feature, weights of 1 train exactly as none, weights of 0 give a loss of 0, class weights by
//! label or "balanced", and usage errors for unknown classes and bad specs.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::cli::{run, s};

fn run_json(args: &[&str]) -> (Value, String) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "wgfit {args:?} failed: {stderr}");
    (serde_json::from_str(stdout.trim()).expect("JSON on stdout"), stderr)
}

fn run_fail(args: &[&str], want: i32) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, want, "wgfit {args:?}: stdout {stdout:?} stderr {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim().lines().last().unwrap_or("").to_string()
}

/// A binary CSV of 40 rows: features a, b, the weight column `w` (all `weight`), target y.
fn binary_csv(dir: &Path, name: &str, weight: &str) -> PathBuf {
    let mut text = String::from("a,w,b,y\n");
    for i in 0..40 {
        let (a, b) = ((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos());
        text.push_str(&format!("{a},{weight},{b},{}\n", u8::from(a + b > 0.5)));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn train_args<'a>(data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        data,
        "--layers",
        "4",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--json",
        "--validation-split",
        "0.25",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn sample_weight_column_trains_and_is_no_feature() {
    let dir = tempfile::tempdir().unwrap();
    let ones = binary_csv(dir.path(), "ones.csv", "1");
    let model = dir.path().join("m.json");
    let (weighted, _) = run_json(&train_args(s(&ones), &["--sample-weight", "w", "--save", s(&model)]));
    assert_eq!(weighted["inputs"], serde_json::json!(["a", "b"]), "{weighted}");
    // Weights of 1: the same numbers as the column dropped and no weights.
    let (plain, _) = run_json(&train_args(s(&ones), &["--drop", "w"]));
    assert_eq!(weighted["history"], plain["history"]);
    assert_eq!(weighted["final"], plain["final"]);
    // Weights of 0: nothing counts, the loss is 0 and nothing trains.
    let zeros = binary_csv(dir.path(), "zeros.csv", "0");
    let (zero, _) = run_json(&train_args(s(&zeros), &["--sample-weight", "w"]));
    for v in zero["history"]["loss"].as_array().unwrap().iter().chain(zero["history"]["val_loss"].as_array().unwrap()) {
        assert_eq!(v.as_f64(), Some(0.0), "{zero}");
    }
    assert_eq!(zero["final"]["loss"].as_f64(), Some(0.0), "{zero}");
    // The saved model predicts from a CSV without the weight column.
    let no_w = dir.path().join("no_w.csv");
    let text: String = std::fs::read_to_string(&ones)
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{}\n", c[0], c[2], c[3])
        })
        .collect();
    std::fs::write(&no_w, text).unwrap();
    let (code, stdout, stderr) = run(&["predict", "--model", s(&model), "--data", s(&no_w), "--device", "cpu"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 41, "{stdout}");
    // Bad weights: a negative one is the library's typed error (exit 1), a text cell too.
    let neg = binary_csv(dir.path(), "neg.csv", "-1");
    let err = run_fail(&train_args(s(&neg), &["--sample-weight", "w"]), 1);
    assert!(err.contains("sample_weight"), "{err}");
    let err = run_fail(&train_args(s(&ones), &["--sample-weight", "nope"]), 1);
    assert!(err.contains("nope"), "{err}");
    let err = run_fail(&train_args(s(&ones), &["--sample-weight", "y"]), 2);
    assert!(err.contains("target"), "{err}");
}

#[test]
fn class_weight_by_label_value_or_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let data = binary_csv(dir.path(), "d.csv", "1");
    let (plain, _) = run_json(&train_args(s(&data), &["--drop", "w"]));
    let (unit, _) = run_json(&train_args(s(&data), &["--drop", "w", "--class-weight", "0:1,1:1"]));
    assert_eq!(unit["history"], plain["history"], "class weights of 1 change nothing");
    let (heavy, stderr) = run_json(&train_args(s(&data), &["--drop", "w", "--class-weight", "1:5"]));
    assert!(stderr.contains("class weights [(1, 5.0)]"), "{stderr}");
    assert_ne!(heavy["history"]["loss"], plain["history"]["loss"]);
    let (_, stderr) = run_json(&train_args(s(&data), &["--drop", "w", "--class-weight", "balanced"]));
    assert!(stderr.contains("class weights [(0,"), "{stderr}");
    // Text labels: keys are the labels.
    let words = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits_words.csv");
    let (_, stderr) = run_json(&train_args(s(&words), &["--class-weight", "zero:2,two:0.5"]));
    assert!(stderr.contains("class weights"), "{stderr}");
    let err = run_fail(&train_args(s(&words), &["--class-weight", "seven:2"]), 2);
    assert!(err.contains("\"seven\" is not a class") && err.contains("zero"), "{err}");
    let err = run_fail(&train_args(s(&data), &["--drop", "w", "--class-weight", "2:1"]), 1);
    assert!(err.contains("class_weight"), "{err}");
    let err = run_fail(&train_args(s(&data), &["--drop", "w", "--class-weight", "1=2"]), 2);
    assert!(err.contains("LABEL:WEIGHT"), "{err}");
    let err = run_fail(&train_args(s(&data), &["--class-weight", "1:2", "--sample-weight", "w"]), 2);
    assert!(err.contains("cannot be used with") || err.contains("sample-weight"), "{err}");
}

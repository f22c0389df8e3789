//! `wgfit train --stream`: the file read in pieces gives what `wgfit train` gives with the table in
//! memory: the same History (bit for bit in the JSON), the same saved model file, the same errors.

use std::path::Path;

use serde_json::Value;

mod common;
use common::cli::{run, s, shipped};
use common::concrete_with_text;

/// `wgfit train ARGS --device cpu --json --save M` with and without `--stream`: both succeed with
/// the same JSON (but the timing and the saved path) and the same model file, byte for byte.
/// Returns the JSON.
fn same_with_and_without_stream(dir: &Path, args: &[&str]) -> Value {
    let mut outs = Vec::new();
    for stream in [false, true] {
        let model = dir.join(if stream { "streamed.json" } else { "memory.json" });
        let mut all: Vec<&str> = vec!["train"];
        all.extend(args);
        all.extend(["--device", "cpu", "--json", "--save", s(&model)]);
        if stream {
            all.push("--stream");
        }
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 0, "wgfit {all:?} failed: {stderr}");
        let mut v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        let o = v.as_object_mut().unwrap();
        o.remove("timing").expect("timing");
        o.remove("saved").expect("saved");
        outs.push((v, std::fs::read(&model).unwrap(), stderr));
    }
    let (streamed, memory) = (outs.pop().unwrap(), outs.pop().unwrap());
    assert_eq!(streamed.0, memory.0, "{args:?}: JSON output");
    assert!(memory.1 == streamed.1, "{args:?}: the saved model files differ");
    assert!(streamed.2.contains("(streamed from disk)"), "{}", streamed.2);
    memory.0
}

fn history_len(v: &Value, key: &str) -> usize {
    v["history"][key].as_array().unwrap_or_else(|| panic!("no {key} in {v}")).len()
}

#[test]
fn a_regression_with_a_validation_split_and_standard_scaling() {
    let dir = tempfile::tempdir().unwrap();
    let v = same_with_and_without_stream(
        dir.path(),
        &[
            "--data",
            s(&shipped("concrete.csv")),
            "--layers",
            "16,8",
            "--epochs",
            "4",
            "--batchnorm",
            "--dropout",
            "0.1",
            "--validation-split",
            "0.2",
            "--scale",
            "standard",
            "--patience",
            "2",
            "--restore-best",
            "true",
        ],
    );
    assert_eq!(history_len(&v, "val_loss"), 4);
}

#[test]
fn categorical_columns_a_text_target_a_validation_file_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = concrete_with_text(dir.path());
    let text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (train, valid) = (dir.path().join("train.csv"), dir.path().join("valid.csv"));
    std::fs::write(&train, lines[..800].join("\n") + "\n").unwrap();
    std::fs::write(&valid, [&lines[..1], &lines[800..]].concat().join("\n") + "\n").unwrap();
    let v = same_with_and_without_stream(
        dir.path(),
        &[
            "--data",
            s(&train),
            "--valid",
            s(&valid),
            "--target",
            "strength",
            "--categorical",
            "grade",
            "--drop",
            "compressive_strength,w",
            "--scale",
            "minmax",
            "--layers",
            "12",
            "--epochs",
            "3",
            "--class-weight",
            "balanced",
            "--checkpoint",
            s(&dir.path().join("ckpt.json")),
        ],
    );
    assert_eq!(v["inputs"].as_array().unwrap().len(), 8 + 3);
    assert_eq!(history_len(&v, "val_accuracy"), 3);
}

#[test]
fn a_multiclass_numeric_target_and_sample_weights() {
    let dir = tempfile::tempdir().unwrap();
    let v = same_with_and_without_stream(
        dir.path(),
        &[
            "--data",
            s(&shipped("digits.csv")),
            "--task",
            "multiclass",
            "--validation-split",
            "0.25",
            "--layers",
            "16",
            "--epochs",
            "2",
            "--batch-size",
            "64",
        ],
    );
    assert_eq!(history_len(&v, "val_accuracy"), 2);
    let data = concrete_with_text(dir.path());
    let v = same_with_and_without_stream(
        dir.path(),
        &[
            "--data",
            s(&data),
            "--target",
            "compressive_strength",
            "--categorical",
            "grade,strength",
            "--sample-weight",
            "w",
            "--validation-split",
            "0.3",
            "--layers",
            "8",
            "--epochs",
            "3",
        ],
    );
    assert!(!v["inputs"].as_array().unwrap().iter().any(|i| i == "w"), "{v}");
}

/// Bad data or options: the exit code and the error message of the run without `--stream`.
#[test]
fn faults_are_the_errors_of_the_in_memory_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = concrete_with_text(dir.path());
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[30].split(',').collect();
    cells[1] = "abc";
    lines[30] = cells.join(",");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, text.clone() + "1,2\n").unwrap();
    let missing = dir.path().join("missing.csv");
    let (d, b, r) = (s(&data), s(&bad), s(&ragged));
    let cases: Vec<Vec<&str>> = vec![
        vec!["--data", b, "--target", "compressive_strength", "--categorical", "grade,strength"],
        vec!["--data", b, "--categorical", "grade,strength", "--validation-split", "0.5"],
        vec!["--data", r, "--categorical", "grade"],
        vec!["--data", d, "--target", "price"],
        vec!["--data", d, "--categorical", "colour"],
        vec!["--data", d, "--drop", "id"],
        vec!["--data", d, "--categorical", "grade", "--sample-weight", "nope"],
        vec!["--data", d, "--categorical", "grade,strength", "--sample-weight", "w"],
        vec!["--data", d, "--target", "w", "--categorical", "grade,strength", "--sample-weight", "w"],
        vec!["--data", d, "--categorical", "grade,strength", "--validation-split", "0.00001"],
        vec!["--data", d, "--categorical", "grade,strength", "--validation-split", "1.5"],
        vec!["--data", d, "--categorical", "grade,strength", "--valid", s(&ragged)],
        vec!["--data", s(&missing)],
    ];
    for case in cases {
        let mut outs = Vec::new();
        for stream in [false, true] {
            let mut args = vec!["train", "--device", "cpu", "--epochs", "1", "--layers", "4"];
            args.extend(&case);
            if stream {
                args.push("--stream");
            }
            let (code, _, stderr) = run(&args);
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            let last = stderr.trim().lines().last().unwrap_or("").to_string();
            outs.push((code, last));
        }
        assert!(outs[0].0 == 1 || outs[0].0 == 2, "{case:?} should fail: {outs:?}");
        assert_eq!(outs[1], outs[0], "{case:?}");
    }
}

/// `predict --stream` and `evaluate --stream` print what `predict` and `evaluate` print, and fail
/// as they fail.
#[test]
fn predict_and_evaluate_stream_give_what_they_give_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = concrete_with_text(dir.path());
    let d = s(&data);
    let (classifier, regressor) = (dir.path().join("c.json"), dir.path().join("r.json"));
    for (model, extra) in [
        (&classifier, ["--target", "strength", "--drop", "compressive_strength,w"]),
        (&regressor, ["--target", "compressive_strength", "--drop", "strength,w"]),
    ] {
        let mut args = vec!["train", "--data", d, "--categorical", "grade", "--layers", "8", "--epochs", "2"];
        args.extend(extra);
        args.extend(["--device", "cpu", "--save", s(model)]);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
    }
    // A file with an unseen category further down: the same error.
    let text = std::fs::read_to_string(&data).unwrap();
    let unseen = dir.path().join("unseen.csv");
    std::fs::write(&unseen, text.replacen(",old,", ",ancient,", 3)).unwrap();
    for (model, proba, file) in [
        (&classifier, true, &data),
        (&classifier, false, &data),
        (&regressor, false, &data),
        (&regressor, false, &unseen),
        (&regressor, true, &data),
    ] {
        let mut outs = Vec::new();
        for stream in [false, true] {
            let mut args = vec!["predict", "--model", s(model), "--data", s(file), "--device", "cpu"];
            if proba {
                args.push("--proba");
            }
            if stream {
                args.push("--stream");
            }
            let (code, stdout, stderr) = run(&args);
            assert!(!stderr.contains("panicked"), "{stderr}");
            outs.push((code, stdout, stderr.trim().lines().last().unwrap_or("").to_string()));
        }
        assert_eq!(outs[1], outs[0], "{model:?} {proba} {file:?}");
        if file == &data && !(proba && model == &regressor) {
            assert_eq!(outs[0].0, 0, "{outs:?}");
            assert_eq!(outs[0].1.lines().count(), 1031);
        } else {
            assert_ne!(outs[0].0, 0, "{outs:?}");
        }
    }
    for (model, file, ok) in [(&classifier, &data, true), (&regressor, &data, true), (&regressor, &unseen, false)] {
        let mut outs = Vec::new();
        for stream in [false, true] {
            let mut args = vec!["evaluate", "--model", s(model), "--data", s(file), "--device", "cpu", "--json"];
            if stream {
                args.push("--stream");
            }
            let (code, stdout, stderr) = run(&args);
            assert!(!stderr.contains("panicked"), "{stderr}");
            outs.push((code, stdout, stderr.trim().lines().last().unwrap_or("").to_string()));
        }
        assert_eq!(outs[1], outs[0], "evaluate {model:?} {file:?}");
        assert_eq!(outs[0].0 == 0, ok, "{outs:?}");
        if ok {
            let v: Value = serde_json::from_str(outs[0].1.trim()).unwrap();
            assert!(v["loss"].as_f64().is_some_and(f64::is_finite), "{v}");
        }
    }
}

//! End-to-end tests of the `wgfit` binary on the shipped CSVs and on small hand-made files.
//! Most runs use `--device cpu` and few epochs to stay fast; a few use the GPU (lavapipe in CI).

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::Value;

mod common;
use common::cli::{run, s, shipped, wgfit};

/// Runs, expects success and exactly one JSON object on stdout.
fn run_json(args: &[&str]) -> (Value, String) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "wgfit {args:?} failed: {stderr}");
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout:?}; stderr: {stderr}"));
    assert!(v.is_object(), "{v}");
    assert_eq!(stdout.trim().lines().count(), 1, "one line of JSON on stdout: {stdout:?}");
    (v, stderr)
}

/// Runs, expects exit code 1 and returns stderr (one line, no panic).
fn run_fail(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 1, "wgfit {args:?} should fail with 1; stdout {stdout:?} stderr {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("wgfit: error: "), "{stderr}");
    last
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn list(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(f).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn train_concrete_json_fields_and_decreasing_loss() {
    let (v, stderr) = run_json(&[
        "train",
        "--data",
        s(&shipped("concrete.csv")),
        "--layers",
        "32,32",
        "--epochs",
        "8",
        "--lr",
        "0.01",
        "--validation-split",
        "0.3",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--json",
    ]);
    assert!(stderr.contains("721 training rows, 309 validation rows"), "Keras's last 30 %: {stderr}");
    assert!(stderr.contains("linear output, mae loss"), "defaults stated: {stderr}");
    assert_eq!(v["device"]["kind"], "cpu");
    assert!(v["device"]["adapter"].is_string() && v["device"]["backend"].is_string());
    assert_eq!(v["epochs_run"], 8);
    assert!(v["best_epoch"].is_null());
    let h = &v["history"];
    for key in ["loss", "mae", "val_loss", "val_mae"] {
        assert_eq!(list(&h[key]).len(), 8, "{key}: {h}");
    }
    let loss = list(&h["loss"]);
    assert!(loss[7] < loss[0] * 0.8, "loss decreases: {loss:?}");
    let fin = &v["final"];
    for key in ["loss", "mae", "val_loss", "val_mae"] {
        let x = f(&fin[key]);
        assert!(x.is_finite() && x > 0.0 && x < 100.0, "{key} = {x}");
    }
    assert_eq!(f(&fin["loss"]), f(&fin["mae"]), "mae loss and mae metric agree");
    for key in ["total_s", "startup_s", "ms_per_epoch"] {
        assert!(f(&v["timing"][key]) >= 0.0, "{key}");
    }
    assert_eq!(v["target"], "compressive_strength");
    assert_eq!(v["inputs"].as_array().unwrap().len(), 8);
}

#[test]
fn train_ionosphere_binary_defaults_and_early_stopping() {
    let (v, stderr) = run_json(&[
        "train",
        "--data",
        s(&shipped("ionosphere.csv")),
        "--layers",
        "16",
        "--epochs",
        "60",
        "--validation-split",
        "0.3",
        "--patience",
        "3",
        "--min-delta",
        "0.001",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--json",
    ]);
    assert!(stderr.contains("binary 0/1 target"), "{stderr}");
    assert!(stderr.contains("sigmoid output, binary_crossentropy loss and binary_accuracy"), "{stderr}");
    let runs = v["epochs_run"].as_u64().unwrap() as usize;
    assert!((1..=60).contains(&runs));
    let best = v["best_epoch"].as_u64().expect("early stopping reports best_epoch") as usize;
    assert!(best < runs);
    for key in ["binary_accuracy", "val_binary_accuracy"] {
        let acc = list(&v["history"][key]);
        assert_eq!(acc.len(), runs);
        assert!(acc.iter().all(|a| (0.0..=1.0).contains(a)), "{key}: {acc:?}");
    }
    let acc = f(&v["final"]["val_binary_accuracy"]);
    assert!((0.6..=1.0).contains(&acc), "validation accuracy {acc}");
    // restore_best (default true): the final validation loss is the best epoch's.
    let val_loss = list(&v["history"]["val_loss"]);
    assert!(
        (f(&v["final"]["val_loss"]) - val_loss[best]).abs() < 1e-5,
        "{} vs {}",
        v["final"]["val_loss"],
        val_loss[best]
    );
}

#[test]
fn save_load_evaluate_predict_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let data = shipped("concrete.csv");
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&data),
        "--layers",
        "16,16",
        "--batchnorm",
        "--dropout",
        "0.1",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    assert!(model.exists());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(saved["format"], "wgfit-model");
    assert_eq!(saved["version"], 1);
    // evaluate on the training file gives exactly the final training loss of `train`.
    let (e, _) = run_json(&["evaluate", "--model", s(&model), "--data", s(&data), "--device", "cpu", "--json"]);
    assert_eq!(f(&e["loss"]), f(&v["final"]["loss"]), "{e} vs {}", v["final"]);
    assert_eq!(f(&e["mae"]), f(&v["final"]["mae"]));
    // predict to a file, twice: same bits; stdout form equals the file.
    let p1 = dir.path().join("p1.csv");
    wgfit()
        .args(["predict", "--model", s(&model), "--data", s(&data), "--output", s(&p1), "--device", "cpu"])
        .assert()
        .success();
    let out = wgfit().args(["predict", "--model", s(&model), "--data", s(&data), "--device", "cpu"]).output().unwrap();
    let text = std::fs::read_to_string(&p1).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "prediction");
    assert_eq!(lines.len(), 1031);
    assert!(lines[1..].iter().all(|l| l.parse::<f32>().is_ok_and(f32::is_finite)));
    // predict on rows without the target column works too.
    let no_target: String = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let nt = write(dir.path(), "no_target.csv", &no_target);
    let out = wgfit().args(["predict", "--model", s(&model), "--data", s(&nt), "--device", "cpu"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn summary_shows_layers_and_non_trainable_batchnorm_stats() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    run_json(&[
        "train",
        "--data",
        s(&shipped("concrete.csv")),
        "--layers",
        "16",
        "--batchnorm",
        "--l2",
        "0.001",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    wgfit()
        .args(["summary", "--model", s(&model)])
        .assert()
        .success()
        .stdout(predicate::str::contains(" dense: kernel_regularizer=L2(l2=0.001)\n"))
        .stdout(predicate::str::contains("dense_1:").not());
    wgfit()
        .args(["summary", "--model", s(&model)])
        .assert()
        .success()
        .stdout(predicate::str::contains("dense (Dense)"))
        .stdout(predicate::str::contains("batch_normalization (BatchNormalization)"))
        .stdout(predicate::str::contains("(None, 16)"))
        .stdout(predicate::str::contains("144")) // 8 * 16 + 16
        .stdout(predicate::str::contains("Total params: 225"))
        .stdout(predicate::str::contains("Trainable params: 193"))
        .stdout(predicate::str::contains("Non-trainable params: 32"))
        .stdout(predicate::str::contains("Scaling: min-max"));
}

#[test]
fn train_with_rmsprop_and_adamw_flags_saves_and_summarizes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = shipped("concrete.csv");
    let base = ["train", "--data", s(&data), "--layers", "8", "--epochs", "2", "--device", "cpu", "--verbose", "0"];
    let model = dir.path().join("rms.json");
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--optimizer", "rmsprop", "--rho", "0.8", "--momentum", "0.5", "--clipnorm", "1.5"])
        .chain(["--weight-decay", "0.01", "--save", s(&model), "--json"])
        .collect();
    let (v, _) = run_json(&args);
    assert!(v["history"]["loss"].is_array(), "{v}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let o = &file["compile"]["optimizer"];
    assert_eq!(
        (o["type"].as_str(), o["rho"].as_f64(), o["momentum"].as_f64()),
        (Some("rmsprop"), Some(0.8), Some(0.5))
    );
    assert_eq!(o["clip"]["clipnorm"].as_f64(), Some(1.5));
    wgfit()
        .args(["summary", "--model", s(&model)])
        .assert()
        .success()
        .stdout(predicate::str::contains("Optimizer: RMSprop (learning_rate 0.001, rho 0.8, momentum 0.5"))
        .stdout(predicate::str::contains("weight_decay 0.01, clipnorm 1.5"));
    let model = dir.path().join("adamw.json");
    let args: Vec<&str> = base.iter().copied().chain(["--optimizer", "adamw", "--save", s(&model)]).collect();
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(file["compile"]["optimizer"]["weight_decay"].as_f64(), Some(0.004));
    // Flags that do not apply, and bad values, are clear errors.
    let bad: Vec<&str> = base.iter().copied().chain(["--optimizer", "adam", "--rho", "0.9"]).collect();
    let (code, _, err) = run(&bad);
    assert_eq!(code, 2, "a flag for another optimizer is a usage error: {err}");
    assert!(err.contains("--rho applies to --optimizer rmsprop only"), "{err}");
    let bad: Vec<&str> = base.iter().copied().chain(["--optimizer", "rmsprop", "--rho", "1.5"]).collect();
    assert!(run_fail(&bad).contains("rho"));
    let bad: Vec<&str> = base.iter().copied().chain(["--clipnorm", "0"]).collect();
    assert!(run_fail(&bad).contains("clipnorm"));
}

#[test]
fn devices_lists_adapters() {
    wgfit().arg("devices").assert().success().stdout(predicate::str::contains("cpu reference"));
    let (v, _) = run_json(&["devices", "--json"]);
    assert!(v["adapters"].is_array());
}

#[test]
fn gpu_train_save_load_predict_matches_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g.json");
    let data = shipped("ionosphere.csv");
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&data),
        "--layers",
        "32,32",
        "--epochs",
        "4",
        "--batch-size",
        "64",
        "--device",
        "gpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    assert_eq!(v["device"]["kind"], "gpu");
    let loss = list(&v["history"]["loss"]);
    assert!(loss[3] < loss[0], "{loss:?}");
    let (e, _) = run_json(&["evaluate", "--model", s(&model), "--data", s(&data), "--device", "gpu", "--json"]);
    assert_eq!(f(&e["loss"]), f(&v["final"]["loss"]), "GPU evaluate after load equals the trained model's loss");
    assert_eq!(f(&e["binary_accuracy"]), f(&v["final"]["binary_accuracy"]));
    let gpu = wgfit().args(["predict", "--model", s(&model), "--data", s(&data), "--device", "gpu"]).output().unwrap();
    let cpu = wgfit().args(["predict", "--model", s(&model), "--data", s(&data), "--device", "cpu"]).output().unwrap();
    let parse =
        |b: &[u8]| -> Vec<f32> { String::from_utf8_lossy(b).lines().skip(1).map(|l| l.parse().unwrap()).collect() };
    let (g, c) = (parse(&gpu.stdout), parse(&cpu.stdout));
    assert_eq!(g.len(), 351);
    for (a, b) in g.iter().zip(&c) {
        assert!((a - b).abs() < 1e-4, "GPU {a} vs CPU {b}");
    }
}

#[test]
fn one_hot_categories_learned_on_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,color,y\n");
    for i in 0..60 {
        let color = ["red", "green", "blue"][i % 3];
        let y = i as f32 * 0.1 + if color == "red" { 5.0 } else { 0.0 };
        text += &format!("{},{color},{y}\n", i as f32 * 0.1);
    }
    let train = write(dir.path(), "train.csv", &text);
    let model = dir.path().join("m.json");
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&train),
        "--categorical",
        "color",
        "--layers",
        "8",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    let inputs: Vec<&str> = v["inputs"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(inputs, ["x", "color=blue", "color=green", "color=red"]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(saved["input_width"], 4);
    // one-hot columns are not scaled; x is min-max scaled.
    let mm = &saved["preprocessing"]["scaler"]["min_max"];
    assert_eq!(list(&mm["min"]), [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(list(&mm["span"])[1..], [1.0, 1.0, 1.0]);
    assert!((list(&mm["span"])[0] - 5.9).abs() < 1e-5);
    // an unseen category at predict time is an error naming it, its line and the known ones.
    let unseen = write(dir.path(), "unseen.csv", "x,color,y\n0.5,red,1\n0.7,purple,2\n");
    let err = run_fail(&["predict", "--model", s(&model), "--data", s(&unseen), "--device", "cpu"]);
    assert!(err.contains("line 3") && err.contains("\"purple\"") && err.contains("blue, green, red"), "{err}");
    // without --categorical a text column is a non-numeric error with line and column.
    let err = run_fail(&["train", "--data", s(&train), "--epochs", "1", "--device", "cpu"]);
    assert!(err.contains("line 2, column 2 (\"color\")") && err.contains("\"red\" is not a number"), "{err}");
    // the category list comes from the training rows only: a category seen only in --valid is unseen.
    let valid = write(dir.path(), "valid.csv", "x,color,y\n0.1,red,5.1\n0.2,teal,0.2\n");
    let err = run_fail(&[
        "train",
        "--data",
        s(&train),
        "--valid",
        s(&valid),
        "--categorical",
        "color",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(err.contains("\"teal\" was not seen"), "{err}");
}

#[test]
fn scaling_is_fitted_on_training_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    // 10 rows: training rows (first 8 with --validation-split 0.2) have a in 0..=7, validation 100, 200.
    let mut text = String::from("a,y\n");
    for a in [0, 1, 2, 3, 4, 5, 6, 7, 100, 200] {
        text += &format!("{a},{}\n", a * 2);
    }
    let p = write(dir.path(), "t.csv", &text);
    for (scale, key, first, second) in [("minmax", "min_max", "min", "span"), ("standard", "standard", "mean", "std")] {
        let model = dir.path().join(format!("{scale}.json"));
        run_json(&[
            "train",
            "--data",
            s(&p),
            "--validation-split",
            "0.2",
            "--scale",
            scale,
            "--layers",
            "4",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--verbose",
            "0",
            "--save",
            s(&model),
            "--json",
        ]);
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
        let sc = &saved["preprocessing"]["scaler"][key];
        let (a, b) = (list(&sc[first])[0], list(&sc[second])[0]);
        if scale == "minmax" {
            assert_eq!((a, b), (0.0, 7.0));
        } else {
            assert_eq!(a, 3.5);
            assert!((b - 5.25f64.sqrt()).abs() < 1e-6, "population std of 0..=7: {b}");
        }
    }
    let model = dir.path().join("none.json");
    run_json(&[
        "train",
        "--data",
        s(&p),
        "--scale",
        "none",
        "--layers",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(saved["preprocessing"]["scaler"], "none");
}

#[test]
fn drop_and_target_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.csv", "id,target,a,b\n1,0.5,1,2\n2,0.7,2,3\n3,0.1,3,1\n4,0.9,4,0\n");
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&p),
        "--target",
        "target",
        "--drop",
        "id",
        "--layers",
        "4",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--json",
    ]);
    assert_eq!(v["target"], "target");
    assert_eq!(v["inputs"], serde_json::json!(["a", "b"]));
}

#[test]
fn bad_csv_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = |p: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--data", s(p), "--layers", "4", "--epochs", "1", "--device", "cpu"];
        args.extend_from_slice(extra);
        run_fail(&args)
    };
    let missing = d.join("nope.csv");
    let e = train(&missing, &[]);
    assert!(e.contains("nope.csv") && e.to_lowercase().contains("no such file"), "{e}");
    let e = train(&write(d, "empty.csv", ""), &[]);
    assert!(e.contains("empty"), "{e}");
    let e = train(&write(d, "header.csv", "a,b,y\n"), &[]);
    assert!(e.contains("no data rows"), "{e}");
    let e = train(&write(d, "ragged.csv", "a,b,y\n1,2,3\n4,5\n"), &[]);
    assert!(e.contains("line 3") && e.contains("2 fields") && e.contains("header has 3"), "{e}");
    let e = train(&write(d, "text.csv", "a,b,y\n1,2,3\n4,five,6\n"), &[]);
    assert!(e.contains("line 3, column 2 (\"b\")") && e.contains("\"five\""), "{e}");
    let e = train(&write(d, "nan.csv", "a,b,y\n1,2,3\n4,NaN,6\n"), &[]);
    assert!(e.contains("line 3, column 2") && e.contains("not a finite number"), "{e}");
    let e = train(&write(d, "blank.csv", "a,b,y\n1,,3\n"), &[]);
    assert!(e.contains("line 2, column 2") && e.contains("empty cell"), "{e}");
    let e = train(&write(d, "dup.csv", "a,a,y\n1,2,3\n"), &[]);
    assert!(e.contains("duplicate column name \"a\""), "{e}");
    let e = train(&write(d, "ok.csv", "a,b,y\n1,2,3\n2,3,4\n"), &["--target", "price"]);
    assert!(e.contains("target column \"price\" not found") && e.contains("a, b, y"), "{e}");
    let e = train(&write(d, "ok2.csv", "a,b,y\n1,2,3\n2,3,4\n"), &["--drop", "zzz"]);
    assert!(e.contains("\"zzz\" not found"), "{e}");
}

#[test]
fn bom_and_crlf_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("\u{feff}a,b,y\r\n");
    for i in 0..20 {
        text += &format!("{i},{},{}\r\n", i * 2, i % 2);
    }
    let p = write(dir.path(), "bom_crlf.csv", &text);
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&p),
        "--layers",
        "4",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--json",
    ]);
    assert_eq!(v["inputs"], serde_json::json!(["a", "b"]), "the BOM is not part of the first name");
    assert_eq!(v["target"], "y");
    assert!(v["history"]["binary_accuracy"].is_array(), "y is read as 0/1, not \"1\\r\"");
}

#[test]
fn bad_model_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("m.json");
    let data = shipped("concrete.csv");
    run_json(&[
        "train",
        "--data",
        s(&data),
        "--layers",
        "8",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
        "--json",
    ]);
    let good = std::fs::read_to_string(&model).unwrap();
    let predict = |p: &Path| run_fail(&["predict", "--model", s(p), "--data", s(&data), "--device", "cpu"]);
    let e = predict(&write(d, "trunc.json", &good[..good.len() / 2]));
    assert!(e.contains("trunc.json") && e.contains("truncated"), "{e}");
    let e = predict(&write(d, "corrupt.json", &good.replacen("[", "[}", 1)));
    assert!(e.contains("corrupt"), "{e}");
    let e = predict(&write(d, "v99.json", &good.replacen("\"version\":1", "\"version\":99", 1)));
    assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    let e = predict(&write(d, "foreign.json", "{\"name\": \"something else\", \"weights\": [1, 2]}"));
    assert!(e.contains("not a wgfit-model file"), "{e}");
    let e = predict(&write(d, "other.json", "{\"format\": \"keras\", \"version\": 1}"));
    assert!(e.contains("its format is \"keras\""), "{e}");
    let e = predict(&data); // a CSV is not a model
    assert!(e.contains("corrupt or not JSON"), "{e}");
    let e = predict(&write(d, "shape.json", &good.replacen("\"shape\":[8,8]", "\"shape\":[8,9]", 1)));
    assert!(e.contains("shape [8, 9]") && e.contains("needs \"kernel\" of shape [8, 8]"), "{e}");
    let e = predict(&write(d, "nan.json", &good.replacen("\"values\":[", "\"values\":[\"x\",", 1)));
    assert!(e.contains("not a finite number"), "{e}");
    let e = predict(&d.join("absent.json"));
    assert!(e.contains("absent.json"), "{e}");
    // the previous file is intact: it still loads.
    wgfit().args(["summary", "--model", s(&model)]).assert().success();
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        vec!["train"],
        vec!["train", "--data", "x.csv", "--bogus"],
        vec!["train", "--data", "x.csv", "--valid", "v.csv", "--validation-split", "0.2"],
        vec!["train", "--data", "x.csv", "--device", "tpu"],
        vec!["frobnicate"],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let (code, _, stderr) = run(&["train", "--data", "x.csv", "--validation-split", "1.5"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["train", "--data", "x.csv", "--momentum", "0.9"]);
    assert_eq!(code, 2, "{stderr}");
    wgfit().arg("--help").assert().success().stdout(predicate::str::contains("train"));
}

#[test]
fn falls_back_to_the_cpu_with_a_notice_when_no_adapter() {
    // No DX12 adapter exists on Linux: the default device falls back; an explicit --device gpu fails.
    if !cfg!(target_os = "linux") {
        return;
    }
    let data = shipped("ionosphere.csv");
    let args = ["train", "--data", s(&data), "--layers", "8", "--epochs", "1", "--verbose", "0"];
    let out = wgfit().env("WGFIT_BACKEND", "dx12").args(args).arg("--json").output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["device"]["kind"], "cpu");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the GPU asked for is not available"));
    let out = wgfit().env("WGFIT_BACKEND", "dx12").args(args).args(["--device", "gpu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no GPU adapter"));
}

#[test]
fn restore_best_takes_true_or_false_as_the_issue_writes_it() {
    let data = shipped("ionosphere.csv");
    for value in ["false", "true"] {
        let (v, _) = run_json(&[
            "train",
            "--data",
            s(&data),
            "--epochs",
            "3",
            "--patience",
            "1",
            "--restore-best",
            value,
            "--device",
            "cpu",
            "--validation-split",
            "0.3",
            "--verbose",
            "0",
            "--json",
        ]);
        assert!(v["epochs_run"].as_u64().unwrap() >= 1, "{value}: {v}");
    }
    let (code, _, err) = run(&["train", "--data", s(&data), "--restore-best", "maybe", "--device", "cpu"]);
    assert_eq!(code, 2, "a bad flag value is a usage error: {err}");
    assert!(err.contains("maybe"), "{err}");
}

#[test]
fn bench_prints_json_records_and_rejects_unknown_workloads() {
    let out = wgfit()
        .args(["bench", "--workloads", "W2", "--device", "cpu", "--json"])
        .env("WGFIT_BENCH_SECONDS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let records = v.as_array().expect("an array");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["workload"], "W2");
    assert_eq!(r["device"], "cpu");
    for key in ["startup_s", "ms_per_epoch", "samples_per_s", "gflops"] {
        assert!(r[key].as_f64().is_some_and(|x| x > 0.0 && x.is_finite()), "{key}: {r}");
    }
    let (code, _, err) = run(&["bench", "--workloads", "W9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("W9"));
}

#[test]
fn bench_sweeps_prints_one_record_per_sweep() {
    let out = wgfit()
        .args(["bench", "--sweeps", "--models", "3", "--device", "cpu", "--json"])
        .env("WGFIT_BENCH_EPOCHS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let records = v.as_array().expect("an array");
    assert_eq!(records.iter().map(|r| r["sweep"].as_str().unwrap()).collect::<Vec<_>>(), ["S1", "S2"]);
    for r in records {
        assert_eq!((r["models"].as_u64(), r["epochs"].as_u64(), r["plans"].as_u64()), (Some(3), Some(2), Some(1)));
        for key in ["wall_s", "model_epochs_per_s", "device_bytes", "quality_median"] {
            assert!(r[key].as_f64().is_some_and(|x| x > 0.0 && x.is_finite()), "{key}: {r}");
        }
    }
    let (code, _, err) = run(&["bench", "--models", "3"]);
    assert_eq!(code, 2, "--models without --sweeps: {err}");
}

/// The default device (`--device auto`) takes a hardware GPU only: here, with lavapipe (a software
/// adapter) as the only one, the CPU path, saying why on one line; `--device gpu` and
/// WGFIT_ADAPTER still run lavapipe. With no Vulkan driver at all (VK_ICD_FILENAMES pointing
/// nowhere, as on a fresh machine) the demo's path is the CPU too, and nothing else is printed
/// by drivers.
#[test]
fn the_default_device_is_a_hardware_gpu_or_the_cpu_path() {
    let data = shipped("ionosphere.csv");
    let args = ["train", "--data", s(&data), "--layers", "8", "--epochs", "1", "--verbose", "0", "--json"];
    let device_of = |out: &std::process::Output| -> String {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["device"]["kind"].as_str().unwrap().to_string()
    };
    let out = wgfit().env_remove("WGFIT_ADAPTER").env_remove("WGFIT_BACKEND").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("running on")).collect();
    assert_eq!(lines.len(), 1, "one line says which device runs: {err}");
    let hardware = wgfit::Device::list_adapters()
        .iter()
        .any(|(i, _)| i.device_type == "DiscreteGpu" || i.device_type == "IntegratedGpu");
    assert_eq!(device_of(&out), if hardware { "gpu" } else { "cpu" }, "{err}");
    if !hardware {
        assert!(lines[0].contains("software adapter") || lines[0].contains("no GPU adapter"), "{err}");
    }
    let out = wgfit().args(args).args(["--device", "gpu"]).output().unwrap();
    assert_eq!(device_of(&out), "gpu");
    let out = wgfit().env("WGFIT_ADAPTER", "llvmpipe").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(device_of(&out), "gpu", "{err}");
    assert!(err.contains("as WGFIT_ADAPTER/WGFIT_BACKEND ask"), "{err}");
    // A fresh machine: no Vulkan driver. The CPU path, and no driver noise on stderr.
    let out = wgfit()
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env_remove("XDG_RUNTIME_DIR")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(device_of(&out), "cpu", "{err}");
    assert!(err.contains("running on the CPU path: no GPU adapter"), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "driver noise: {err}");
}

/// `--metrics` takes the confusion metrics and RMSE: each is in the History with its `val_`
/// twin, AUCs in [0, 1] and better than chance on ionosphere; an unknown name lists them.
#[test]
fn train_with_auc_precision_recall_and_rmse_metrics() {
    let (v, _) = run_json(&[
        "train",
        "--data",
        s(&shipped("ionosphere.csv")),
        "--layers",
        "16",
        "--epochs",
        "8",
        "--validation-split",
        "0.3",
        "--metrics",
        "auc,pr_auc,precision,recall,true_positives,false_negatives,root_mean_squared_error",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--json",
    ]);
    for key in ["auc", "pr_auc", "precision", "recall", "root_mean_squared_error"] {
        for k in [key.to_string(), format!("val_{key}")] {
            let values = list(&v["history"][&k]);
            assert_eq!(values.len(), 8, "{k}");
            assert!(values.iter().all(|a| (0.0..=1.0).contains(a)), "{k}: {values:?}");
        }
    }
    assert!(f(&v["final"]["val_auc"]) > 0.6, "validation AUC {}", v["final"]["val_auc"]);
    let (tp, fneg) = (list(&v["history"]["true_positives"]), list(&v["history"]["false_negatives"]));
    assert!(tp.iter().zip(&fneg).all(|(a, b)| a + b == tp[0] + fneg[0]), "positives are the same every epoch");
    let err = run_fail(&["train", "--data", s(&shipped("ionosphere.csv")), "--metrics", "roc", "--device", "cpu"]);
    assert!(err.contains("pr_auc") && err.contains("true_negatives"), "{err}");
}

/// The CPU path splits a lone model's large launches (products, Adam, dropout,
/// BatchNormalization) over rayon's threads, outputs only, never a sum: one thread, two and
/// three (uneven parts) train the same History and save the same model file, byte for byte.
#[test]
fn the_cpu_path_gives_the_same_bits_on_one_thread_and_many() {
    let (dir, data) = (tempfile::tempdir().unwrap(), shipped("concrete.csv"));
    let mut outs = Vec::new();
    for threads in ["1", "2", "3"] {
        let model = dir.path().join(format!("model-{threads}.json"));
        let args = [
            "train",
            "--data",
            s(&data),
            "--layers",
            "512,512",
            "--batchnorm",
            "--dropout",
            "0.2",
            "--batch-size",
            "256",
            "--epochs",
            "2",
            "--validation-split",
            "0.2",
            "--device",
            "cpu",
            "--json",
            "--save",
            s(&model),
        ];
        let out = wgfit().env("RAYON_NUM_THREADS", threads).args(args).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{threads} threads: {}", String::from_utf8_lossy(&out.stderr));
        let mut v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        let o = v.as_object_mut().unwrap();
        o.remove("timing").expect("timing");
        o.remove("saved").expect("saved");
        outs.push((threads, v, std::fs::read(&model).unwrap()));
    }
    let (_, one, one_file) = &outs[0];
    assert!(list(&one["history"]["val_loss"]).iter().all(|x| x.is_finite()), "{one}");
    for (threads, v, file) in &outs[1..] {
        assert_eq!(v, one, "{threads} threads: the JSON differs from one thread's");
        assert!(file == one_file, "{threads} threads: the saved model differs from one thread's");
    }
}

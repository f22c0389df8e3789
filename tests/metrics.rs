//! The confusion metrics (auc, pr_auc, precision, recall, true/false positives/negatives) and
//! root_mean_squared_error against Keras 3 (tests/golden/keras_metrics.json, written by
//! tools/keras_golden_metrics.py): on fixed predictions through `evaluate`, and per epoch of a
//! small SGD fit with validation; a sweep's members against the same models fit alone; typed
//! errors. Every test runs on both devices.

mod common;

use common::{devices, Tol};
use serde_json::Value;
use wgfit::{Dense, Device, Error, Fit, Matrix, Member, Sequential, Sgd, Sweep};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_metrics.json")).expect("golden JSON parses")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

/// Every metric this file checks, in Keras's names.
const NAMES: [&str; 9] = [
    "auc",
    "pr_auc",
    "precision",
    "recall",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
    "root_mean_squared_error",
];

/// Counts are exact; the rest are float32 arithmetic in a different order than Keras's.
fn tol(key: &str) -> Tol {
    if key.contains("_positives") || key.contains("_negatives") {
        Tol { rel: 0.0, abs: 0.0 }
    } else {
        Tol { rel: 2e-5, abs: 1e-6 }
    }
}

/// Keras's metric objects updated with fixed predictions (values on thresholds, outside [0, 1]) equal `evaluate` of a model whose output is its input (identity Dense weights).
#[test]
fn fixed_predictions_match_keras() {
    let g = golden();
    for case in g["fixed"].as_array().unwrap() {
        let (rows, cols) = (case["rows"].as_u64().unwrap() as usize, case["cols"].as_u64().unwrap() as usize);
        let x = Matrix::new(rows, cols, floats(&case["pred"])).unwrap();
        let y = Matrix::new(rows, cols, floats(&case["y"])).unwrap();
        for device in devices() {
            let mut model = Sequential::new(&device, vec![Dense::new(cols).input_shape(cols)]);
            model.compile("sgd", "binary_crossentropy", &NAMES).unwrap();
            let mut identity = vec![0.0f32; cols * cols + cols];
            for i in 0..cols {
                identity[i * cols + i] = 1.0;
            }
            model.set_weights(&identity, &[]).unwrap();
            let logs = model.evaluate(&x, &y).unwrap();
            let keys: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys[1..], NAMES, "keys in the compiled order after the loss");
            for (key, got) in &logs[1..] {
                let want = case[key.as_str()].as_f64().unwrap() as f32;
                tol(key).check(&format!("{key} of {rows}x{cols} on {device:?}"), &[*got], &[want]);
            }
            // The model file keeps the metric names: a loaded model evaluates to the same values.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.json");
            model.save(&path).unwrap();
            let again = Sequential::load(&path, &device).unwrap().evaluate(&x, &y).unwrap();
            assert_eq!(again, logs, "after save and load on {device:?}");
        }
    }
}

/// A model with fixed weights trained by SGD without shuffling: every epoch's loss, metrics and
/// val_ metrics equal Keras's History (the counts accumulate over the epoch's batches: the AUC
/// of the epoch, not a mean of batch AUCs).
#[test]
fn fit_history_matches_keras() {
    let g = &golden()["fit"];
    let x = Matrix::new(40, 3, floats(&g["x"])).unwrap();
    let y = Matrix::new(40, 1, floats(&g["y"])).unwrap();
    let vx = Matrix::new(12, 3, floats(&g["vx"])).unwrap();
    let vy = Matrix::new(12, 1, floats(&g["vy"])).unwrap();
    let weights: Vec<f32> = g["weights"].as_array().unwrap().iter().flat_map(floats).collect();
    let want = g["history"].as_object().unwrap();
    for device in devices() {
        let layers = vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1).activation("sigmoid")];
        let mut model = Sequential::new(&device, layers);
        let mut names = NAMES.to_vec();
        names.push("binary_accuracy");
        model.compile(Sgd::new(0.1), "binary_crossentropy", &names).unwrap();
        model.set_weights(&weights, &[]).unwrap();
        let fit = Fit::new().batch_size(8).epochs(3).shuffle(false).verbose(0).validation_data(&vx, &vy);
        let history = model.fit(&x, &y, fit).unwrap();
        assert_eq!(history.keys().count(), want.len(), "History keys {:?}", history.keys().collect::<Vec<_>>());
        for (key, values) in want {
            let got = history.get(key).unwrap_or_else(|| panic!("History has no {key}"));
            let t = if key.ends_with("loss") { Tol { rel: 1e-5, abs: 1e-6 } } else { tol(key) };
            t.check(&format!("{key} per epoch on {device:?}"), got, &floats(values));
        }
    }
}

fn member_model(device: &Device, seed: u64) -> Sequential {
    let layers = vec![Dense::new(6).activation("tanh").input_shape(4), Dense::new(2).activation("sigmoid")];
    let mut model = Sequential::new(device, layers).seed(seed);
    model.compile(Sgd::new(0.2), "binary_crossentropy", &["auc", "pr_auc", "precision", "false_negatives"]).unwrap();
    model
}

/// Four members of a sweep (different initial weights) trained together report the AUCs and
/// counts each of them reports when fit alone: the counts are per member.
#[test]
fn sweep_members_count_their_own_confusion() {
    let mut r = common::rng(5);
    let x = Matrix::new(64, 4, common::random_vec(&mut r, 256, -1.0, 1.0)).unwrap();
    let yv: Vec<f32> = x.data().chunks(4).flat_map(|v| [f32::from(v[0] + v[1] > 0.0), f32::from(v[2] > 0.3)]).collect();
    let y = Matrix::new(64, 2, yv).unwrap();
    let (vx, vy) =
        (Matrix::new(16, 4, x.data()[..64].to_vec()).unwrap(), Matrix::new(16, 2, y.data()[..32].to_vec()).unwrap());
    let fit = || Fit::new().batch_size(16).epochs(3).verbose(0).shuffle(false).validation_data(&vx, &vy);
    for device in devices() {
        let mut sweep = Sweep::from_fn(4, |i| Ok(Member::new(member_model(&device, i as u64)))).unwrap();
        let report = sweep.fit(&x, &y, fit()).unwrap();
        let mut aucs = Vec::new();
        for (i, m) in report.members.iter().enumerate() {
            let alone = member_model(&device, i as u64).fit(&x, &y, fit()).unwrap();
            for key in ["auc", "pr_auc", "precision", "false_negatives", "val_auc", "val_false_negatives"] {
                let got = m.history.get(key).unwrap();
                Tol { rel: 1e-4, abs: 1e-6 }.check(
                    &format!("member {i} {key} on {device:?}"),
                    got,
                    alone.get(key).unwrap(),
                );
            }
            aucs.push(m.history.last("auc").unwrap());
        }
        assert!(aucs.iter().any(|&a| a != aucs[0]), "members differ: {aucs:?}");
        assert!(aucs.iter().all(|&a| (0.0..=1.0).contains(&a)), "{aucs:?}");
    }
}

/// Any number of metrics: every kind of per-sample metric (the loss kernel's 7 sums) and every
/// confusion metric at once, and root_mean_squared_error is the root of mse's value.
#[test]
fn every_metric_at_once() {
    let mut r = common::rng(9);
    let x = Matrix::new(50, 3, common::random_vec(&mut r, 150, -1.0, 1.0)).unwrap();
    let y = Matrix::new(50, 1, x.data().chunks(3).map(|v| f32::from(v[0] > 0.0)).collect()).unwrap();
    let mut names = vec!["mae", "mse", "binary_accuracy", "rmse"];
    names.extend(NAMES);
    for device in devices() {
        let layers = vec![Dense::new(5).activation("relu").input_shape(3), Dense::new(1).activation("sigmoid")];
        let mut model = Sequential::new(&device, layers);
        model.compile("adam", "binary_crossentropy", &names).unwrap();
        let h = model.fit(&x, &y, Fit::new().epochs(2).batch_size(16).verbose(0)).unwrap();
        // "rmse" and "root_mean_squared_error" are one key.
        assert_eq!(h.keys().count(), 1 + 3 + NAMES.len(), "{:?}", h.keys().collect::<Vec<_>>());
        let (mse, rmse) = (h.get("mse").unwrap(), h.get("root_mean_squared_error").unwrap());
        for (m, r) in mse.iter().zip(rmse) {
            Tol { rel: 1e-6, abs: 0.0 }.check("rmse = sqrt(mse)", &[*r], &[m.sqrt()]);
        }
        let (tp, fp) = (h.last("true_positives").unwrap(), h.last("false_positives").unwrap());
        let (tn, fneg) = (h.last("true_negatives").unwrap(), h.last("false_negatives").unwrap());
        assert_eq!(tp + fp + tn + fneg, 50.0, "every value counted once per epoch");
        Tol { rel: 1e-6, abs: 0.0 }.check("precision", &[h.last("precision").unwrap()], &[tp / (tp + fp)]);
    }
}

/// Unknown names list the valid ones; confusion metrics need 0/1 targets as wide as the output.
#[test]
fn bad_metric_names_and_losses_are_typed_errors() {
    let device = Device::cpu();
    let model = || Sequential::new(&device, vec![Dense::new(3).activation("softmax").input_shape(2)]);
    match model().compile("sgd", "binary_crossentropy", &["auc_roc"]) {
        Err(Error::UnknownName { kind: "metric", name, valid }) => {
            assert_eq!(name, "auc_roc");
            for n in NAMES {
                assert!(valid.contains(n), "{n} listed in {valid}");
            }
        }
        other => panic!("expected an unknown-name error, got {other:?}"),
    }
    for (loss, metric) in [("mse", "auc"), ("mae", "precision"), ("sparse_categorical_crossentropy", "recall")] {
        match model().compile("sgd", loss, &[metric]) {
            Err(Error::Model(msg)) => assert!(msg.contains(metric), "{msg}"),
            other => panic!("{metric} with {loss}: expected a model error, got {other:?}"),
        }
    }
    // A categorical loss flattens one-hot rows (Keras's multi_label=False): allowed.
    model().compile("sgd", "categorical_crossentropy", &["auc", "precision"]).unwrap();
    // root_mean_squared_error suits a regression loss.
    model().compile("sgd", "mse", &["root_mean_squared_error"]).unwrap();
}

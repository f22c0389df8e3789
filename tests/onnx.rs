//! ONNX export (issue 14 item 2): every exported layer and activation, run in tract (a pure-Rust
//! ONNX runtime), against `Sequential::predict`; the CLI's preprocessing in the graph against
//! `wgfit predict`; metadata; the typed errors.

use std::path::Path;

use assert_cmd::Command;
use rand::{Rng, SeedableRng};
use tract_onnx::prelude::*;
use wgfit::io::OnnxOptions;
use wgfit::{Activation, ActivationLayer, BatchNormalization, Dense, Device, Dropout, Error, Fit, Matrix, Sequential};

/// ONNX runtime output vs predict: relative 1e-5 (absolute 1e-6 near zero).
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * w.abs().max(g.abs()) + 1e-6;
        assert!((g - w).abs() <= tol, "{what}: value {i}: onnx {g} vs predict {w} (tolerance {tol})");
    }
}

/// Runs an ONNX file's bytes in tract on `rows` x `cols` inputs; returns the output, flat.
fn run_onnx(bytes: &[u8], rows: usize, cols: usize, data: Vec<f32>) -> (Vec<f32>, Vec<usize>) {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the file")
        .with_input_fact(0, f32::fact([rows, cols]).into())
        .expect("input fact")
        .into_optimized()
        .expect("tract optimizes the model")
        .into_runnable()
        .expect("runnable");
    let input: Tensor = tract_ndarray::Array2::from_shape_vec((rows, cols), data).expect("shape").into();
    let out = model.run(tvec!(input.into())).expect("tract runs the model");
    let view = out[0].to_plain_array_view::<f32>().expect("f32 output");
    (view.iter().copied().collect(), view.shape().to_vec())
}

/// The file's metadata_props, as read by tract's own protobuf types.
fn metadata(bytes: &[u8]) -> Vec<(String, String)> {
    let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).expect("proto");
    assert!(proto.opset_import.iter().any(|o| o.domain.is_empty() && o.version >= 13), "opset 13 or later");
    proto.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
}

fn meta<'a>(m: &'a [(String, String)], key: &str) -> Option<&'a str> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// With `WGFIT_ONNX_DUMP=DIR`, keeps the file and its rows and expected outputs as DIR/NAME.onnx
/// and DIR/NAME.json for tools/onnx_check.py (the onnx checker and onnxruntime).
fn dump(name: &str, bytes: &[u8], rows: usize, input: &[f32], expected: &[f32]) {
    let Some(dir) = std::env::var_os("WGFIT_ONNX_DUMP") else { return };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let matrix = |v: &[f32]| v.chunks(v.len() / rows).map(|r| r.to_vec()).collect::<Vec<_>>();
    let case = serde_json::json!({"input": matrix(input), "expected": matrix(expected)});
    std::fs::write(dir.join(format!("{name}.onnx")), bytes).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), case.to_string()).unwrap();
}

fn random_matrix(rng: &mut impl Rng, rows: usize, cols: usize, lo: f32, hi: f32) -> Matrix {
    Matrix::new(rows, cols, (0..rows * cols).map(|_| rng.random_range(lo..hi)).collect()).unwrap()
}

/// Trains briefly (so BatchNormalization's moving statistics and every weight move), exports,
/// runs in tract and compares with predict on fresh rows.
fn check_model(what: &str, mut model: Sequential, loss: &str, in_w: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x = random_matrix(&mut rng, 64, in_w, -2.0, 2.0);
    let out_w = model.layers().iter().fold(0, |w, l| match l.kind() {
        wgfit::LayerKind::Dense(c) => c.units(),
        _ => w,
    });
    let y = random_matrix(&mut rng, 64, out_w, 0.0, 1.0);
    model.compile("adam", loss, &[]).unwrap();
    model.fit(&x, &y, Fit::new().epochs(3).batch_size(16).verbose(0)).unwrap();
    let xt = random_matrix(&mut rng, 17, in_w, -3.0, 3.0);
    let want = model.predict(&xt).unwrap();
    let bytes = wgfit::io::onnx_bytes(&mut model, &OnnxOptions::new()).unwrap();
    let (got, shape) = run_onnx(&bytes, xt.rows(), in_w, xt.data().to_vec());
    assert_eq!(shape, [xt.rows(), want.cols()], "{what}: output shape");
    assert_close(what, &got, want.data());
    dump(what, &bytes, xt.rows(), xt.data(), want.data());
    bytes
}

#[test]
fn every_layer_and_activation_matches_predict() {
    let device = Device::cpu();
    for act in Activation::ALL {
        let name = act.name();
        // Dense with and without bias, BatchNormalization with and without gamma/beta, Dropout,
        // a standalone Activation: every layer kind with this activation wherever one goes.
        let model = Sequential::new(
            &device,
            vec![
                Dense::new(6).activation(name).input_shape(4),
                BatchNormalization::new(),
                Dropout::new(0.3),
                ActivationLayer::new(name),
                Dense::new(5).activation(name).use_bias(false),
                BatchNormalization::new().center_scale(false, false).epsilon(0.01),
                Dense::new(2).activation(name),
            ],
        );
        check_model(&format!("activation {name}"), model, "mse", 4);
    }
}

#[test]
fn edge_architectures_match_predict() {
    let device = Device::cpu();
    // One layer; an activation as the last layer; BatchNormalization first; named layers that repeat.
    let models = vec![
        ("single dense", Sequential::new(&device, vec![Dense::new(1).input_shape(3)])),
        (
            "batchnorm first",
            Sequential::new(
                &device,
                vec![
                    BatchNormalization::new().input_shape(3),
                    Dense::new(2).activation("tanh"),
                    ActivationLayer::new("sigmoid"),
                ],
            ),
        ),
        (
            "dropout last",
            Sequential::new(
                &device,
                vec![
                    Dense::new(3).activation("relu").input_shape(3).name("same"),
                    Dense::new(2).name("same"),
                    Dropout::new(0.5),
                ],
            ),
        ),
    ];
    for (what, model) in models {
        check_model(what, model, "mae", 3);
    }
}

#[test]
fn metadata_says_task_and_class_labels() {
    let device = Device::cpu();
    let model = Sequential::new(&device, vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1)]);
    let bytes = check_model("regression", model, "mse", 3);
    let m = metadata(&bytes);
    assert_eq!(meta(&m, "task"), Some("regression"));
    assert_eq!(meta(&m, "loss"), Some("mse"));
    assert_eq!(meta(&m, "class_labels"), None);

    let mut clf = Sequential::new(
        &device,
        vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1).activation("sigmoid")],
    );
    clf.compile("adam", "binary_crossentropy", &["binary_accuracy"]).unwrap();
    let bytes = wgfit::io::onnx_bytes(&mut clf, &OnnxOptions::new()).unwrap();
    let m = metadata(&bytes);
    assert_eq!(meta(&m, "task"), Some("binary_classification"));
    assert_eq!(meta(&m, "class_labels"), Some(r#"["0","1"]"#));
    let bytes = wgfit::io::onnx_bytes(&mut clf, &OnnxOptions::new().class_labels(&["bad", "good"])).unwrap();
    let m = metadata(&bytes);
    assert_eq!(meta(&m, "class_labels"), Some(r#"["bad","good"]"#));
    assert!(meta(&m, "output").unwrap().contains("\"good\""), "{m:?}");
}

#[test]
fn save_onnx_writes_the_file_atomically_and_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::cpu();
    let path = dir.path().join("m.onnx");

    // Never compiled nor fitted: no weights to export.
    let mut fresh = Sequential::new(&device, vec![Dense::new(1).input_shape(2)]);
    assert!(matches!(fresh.save_onnx(&path), Err(Error::State(_))), "uncompiled model");
    let mut no_width = Sequential::new(&device, vec![Dense::new(1)]);
    no_width.compile("adam", "mse", &[]).unwrap();
    let err = no_width.save_onnx(&path).unwrap_err();
    assert!(matches!(err, Error::State(_)), "no input width: {err}");
    assert!(!path.exists(), "nothing written on error");

    let mut model = Sequential::new(&device, vec![Dense::new(2).input_shape(2)]);
    model.compile("adam", "mse", &[]).unwrap();
    model.save_onnx(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, wgfit::io::onnx_bytes(&mut model, &OnnxOptions::new()).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");

    // Class labels on a regressor, or not two of them on a classifier.
    let err = model.save_onnx_with(&path, &OnnxOptions::new().class_labels(&["a", "b"])).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
    let mut clf = Sequential::new(&device, vec![Dense::new(1).activation("sigmoid").input_shape(2)]);
    clf.compile("adam", "binary_crossentropy", &[]).unwrap();
    for labels in [&["a"][..], &["a", "a"], &["a", "b", "c"]] {
        let err = clf.save_onnx_with(&path, &OnnxOptions::new().class_labels(labels)).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{labels:?}: {err}");
    }

    // A directory that does not exist: an I/O error naming the path.
    let missing = dir.path().join("no/such/dir/m.onnx");
    let err = model.save_onnx(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");

    // A non-finite weight cannot be exported.
    let (mut params, state) = model.get_weights().unwrap();
    params[0] = f32::NAN;
    model.set_weights(&params, &state).unwrap();
    let err = model.save_onnx(&path).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

// ---- the CLI: preprocessing in the graph, against `wgfit predict` ----

fn wgfit() -> Command {
    let mut c = Command::cargo_bin("wgfit").expect("the wgfit binary is built");
    c.env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    c
}

fn run_ok(args: &[&str]) -> (String, String) {
    let out = wgfit().args(args).output().expect("runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "wgfit {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A CSV with numeric columns, two categorical ones and a 0/1 or real target; returns its rows.
fn write_csv(path: &Path, rows: usize, seed: u64, binary: bool) -> Vec<Vec<String>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut text = String::from("size,color,weight,shape,target\n");
    for i in 0..rows {
        let size: f32 = rng.random_range(-50.0..150.0);
        let color = ["red", "green", "blue"][i % 3];
        let weight: f32 = rng.random_range(0.0..3.0);
        let shape = ["round", "square"][(i / 3) % 2];
        let t = size * 0.01 + weight + if color == "red" { 1.0 } else { 0.0 };
        let target = if binary {
            if t > 1.5 {
                "1".to_string()
            } else {
                "0".into()
            }
        } else {
            t.to_string()
        };
        let row = vec![size.to_string(), color.to_string(), weight.to_string(), shape.to_string(), target];
        text += &row.join(",");
        text.push('\n');
        out.push(row);
    }
    std::fs::write(path, text).unwrap();
    out
}

fn predictions(stdout: &str) -> Vec<f32> {
    stdout.lines().skip(1).flat_map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap())).collect()
}

/// Trains with the CLI (one-hot and `scale`), exports, and compares tract on raw values
/// (categories as their index) with `wgfit predict` on the same rows.
fn check_cli(scale: &str, binary: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    write_csv(&train, 90, 1, binary);
    let rows = write_csv(&test, 23, 2, binary);
    let (model, onnx) = (dir.path().join("m.json"), dir.path().join("m.onnx"));
    run_ok(&[
        "train",
        "--data",
        s(&train),
        "--categorical",
        "color,shape",
        "--scale",
        scale,
        "--layers",
        "8,4",
        "--batchnorm",
        "--dropout",
        "0.2",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--verbose",
        "0",
        "--save",
        s(&model),
    ]);
    let labels = if binary { vec!["--class-labels", "no,yes"] } else { vec![] };
    let mut args = vec!["export", "--model", s(&model), "--onnx", s(&onnx)];
    args.extend(&labels);
    let (_, stderr) = run_ok(&args);
    assert!(stderr.contains("color (category index)"), "{stderr}");
    let (stdout, _) = run_ok(&["predict", "--model", s(&model), "--data", s(&test), "--device", "cpu"]);
    let want = predictions(&stdout);

    let bytes = std::fs::read(&onnx).unwrap();
    let m = metadata(&bytes);
    assert_eq!(meta(&m, "input_columns"), Some(r#"["size","color","weight","shape"]"#));
    assert_eq!(meta(&m, "categories"), Some(r#"{"color":["blue","green","red"],"shape":["round","square"]}"#));
    assert_eq!(meta(&m, "target"), Some("target"));
    assert_eq!(meta(&m, "class_labels"), binary.then_some(r#"["no","yes"]"#));
    let index = |cats: &[&str], v: &str| cats.iter().position(|c| *c == v).unwrap() as f32;
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            [
                r[0].parse().unwrap(),
                index(&["blue", "green", "red"], &r[1]),
                r[2].parse().unwrap(),
                index(&["round", "square"], &r[3]),
            ]
        })
        .collect();
    let (got, shape) = run_onnx(&bytes, rows.len(), 4, data.clone());
    assert_eq!(shape, [rows.len(), 1]);
    assert_close(&format!("cli, scale {scale}"), &got, &want);
    dump(&format!("cli {scale}"), &bytes, rows.len(), &data, &want);

    // --raw-inputs: the model's own 1 + 3 + 1 + 2 inputs, no preprocessing nodes.
    run_ok(&["export", "--model", s(&model), "--onnx", s(&onnx), "--raw-inputs"]);
    let bytes = std::fs::read(&onnx).unwrap();
    assert_eq!(meta(&metadata(&bytes), "input_columns"), None);
    let (got, _) = run_onnx(&bytes, 1, 7, vec![0.5, 0.0, 1.0, 0.0, 0.25, 1.0, 0.0]);
    assert!(got[0].is_finite());
}

#[test]
fn cli_export_with_minmax_and_one_hot_matches_wgfit_predict() {
    check_cli("minmax", false);
}

#[test]
fn cli_export_with_standard_scaling_of_a_classifier_matches_wgfit_predict() {
    check_cli("standard", true);
}

#[test]
fn cli_export_without_scaling_matches_wgfit_predict() {
    check_cli("none", false);
}

#[test]
fn cli_export_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = wgfit()
        .args(["export", "--model", s(&dir.path().join("missing.json")), "--onnx", s(&dir.path().join("m.onnx"))])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().starts_with("wgfit: error: ") && stderr.contains("missing.json"), "{stderr}");
}

/// A multi-class model (softmax output, sparse categorical cross-entropy): the file's outputs are
/// the class probabilities predict gives, and its metadata the task and one label per output.
#[test]
fn multiclass_models_export_softmax_and_labels() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let x = random_matrix(&mut rng, 60, 4, -2.0, 2.0);
    let y = Matrix::column((0..60).map(|i| (i % 3) as f32).collect());
    let mut model = Sequential::new(
        &Device::cpu(),
        vec![Dense::new(8).activation("relu").input_shape(4), Dense::new(3).activation("softmax")],
    );
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    model.fit(&x, &y, Fit::new().epochs(3).batch_size(16).verbose(0)).unwrap();
    let xt = random_matrix(&mut rng, 11, 4, -3.0, 3.0);
    let want = model.predict(&xt).unwrap();
    let bytes = wgfit::io::onnx_bytes(&mut model, &OnnxOptions::new()).unwrap();
    let (got, shape) = run_onnx(&bytes, xt.rows(), 4, xt.data().to_vec());
    assert_eq!(shape, [11, 3]);
    assert_close("multiclass", &got, want.data());
    let m = metadata(&bytes);
    assert_eq!(meta(&m, "task"), Some("multiclass_classification"));
    assert_eq!(meta(&m, "class_labels"), Some(r#"["0","1","2"]"#));
    let bytes = wgfit::io::onnx_bytes(&mut model, &OnnxOptions::new().class_labels(&["a", "b", "c"])).unwrap();
    assert_eq!(meta(&metadata(&bytes), "class_labels"), Some(r#"["a","b","c"]"#));
    let err = wgfit::io::onnx_bytes(&mut model, &OnnxOptions::new().class_labels(&["a", "b"])).unwrap_err();
    assert!(err.to_string().contains("3 distinct labels"), "{err}");
}

/// Normalization (adapted, and inverted) exports as Sub/Div (Mul/Add) with its statistics.
#[test]
fn normalization_layers_match_predict() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let data = random_matrix(&mut rng, 30, 4, -50.0, 50.0);
    for invert in [false, true] {
        let model = Sequential::new(
            &Device::cpu(),
            vec![
                wgfit::Normalization::new().adapt(&data).invert(invert).input_shape(4),
                Dense::new(3).activation("relu"),
                Dense::new(1),
            ],
        );
        check_model(&format!("normalization invert {invert}"), model, "mse", 4);
    }
}

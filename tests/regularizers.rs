//! Weight regularizers: Keras 3's numbers (tools/keras_golden_regularizers.py ->
//! tests/golden/keras_regularizers.json), their gradients by finite differences, their names
//! and defaults, saving, and the errors for bad settings.

mod common;

use common::{devices, Tol};
use rand::Rng;
use serde_json::Value;
use wgfit::{Dense, Device, Dropout, Error, Fit, Matrix, Regularizer, Sequential, Sgd};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_regularizers.json")).expect("golden JSON parses")
}

fn floats(v: &Value) -> Vec<f32> {
    match v.as_array() {
        Some(a) => a.iter().flat_map(floats).collect(),
        None => vec![v.as_f64().expect("number") as f32],
    }
}

fn matrix(v: &Value) -> Matrix {
    let rows: Vec<Vec<f32>> = v.as_array().expect("rows").iter().map(floats).collect();
    Matrix::from_rows(&rows).unwrap()
}

fn regularizer(v: &Value) -> Option<Regularizer> {
    let spec = v.as_array()?;
    let (l1, l2) = (spec[1].as_f64().unwrap() as f32, spec[2].as_f64().unwrap() as f32);
    Some(match spec[0].as_str().unwrap() {
        "l1" => Regularizer::l1(l1),
        "l2" => Regularizer::l2(l2),
        _ => Regularizer::l1_l2(l1, l2),
    })
}

/// Dense(3, relu) -> Dense(1) with the golden file's weights and `kernel` on both kernels, `bias`
/// on the first bias, as the script builds it.
fn model(device: &Device, g: &Value, kernel: Option<Regularizer>, bias: Option<Regularizer>) -> Sequential {
    let mut first = Dense::new(3).activation("relu").input_shape(2);
    let mut second = Dense::new(1);
    if let Some(r) = kernel {
        first = first.kernel_regularizer(r);
        second = second.kernel_regularizer(r);
    }
    if let Some(r) = bias {
        first = first.bias_regularizer(r);
    }
    let mut m = Sequential::new(device, vec![first, second]);
    m.compile(Sgd::new(0.1), "mse", &[]).unwrap();
    let params: Vec<f32> = ["w1", "b1", "w2", "b2"].iter().flat_map(|k| floats(&g[k])).collect();
    m.set_weights(&params, &[]).unwrap();
    m
}

#[test]
fn fit_and_evaluate_match_keras() {
    let g = golden();
    let (x, y, xv, yv) = (matrix(&g["x"]), matrix(&g["y"]), matrix(&g["x_val"]), matrix(&g["y_val"]));
    let tol = Tol { rel: 2e-5, abs: 1e-7 };
    for device in devices() {
        for case in g["cases"].as_array().unwrap() {
            let (kernel, bias) = (regularizer(&case["kernel"]), regularizer(&case["bias"]));
            let what = format!("{kernel:?} / {bias:?} on {device:?}");
            let mut m = model(&device, &g, kernel, bias);
            let fit = Fit::new().batch_size(4).epochs(2).shuffle(false).validation_data(&xv, &yv).verbose(0);
            let h = m.fit(&x, &y, fit).unwrap();
            tol.check(&format!("{what}: loss"), h.get("loss").unwrap(), &floats(&case["loss"]));
            tol.check(&format!("{what}: val_loss"), h.get("val_loss").unwrap(), &floats(&case["val_loss"]));
            let (params, _) = m.get_weights().unwrap();
            tol.check(&format!("{what}: weights"), &params, &floats(&case["weights"]));
            let ev = m.evaluate(&xv, &yv).unwrap();
            tol.check(&format!("{what}: evaluate"), &[ev[0].1], &floats(&case["evaluate"]));
        }
    }
}

#[test]
fn names_and_defaults_match_keras() {
    let g = golden();
    let v = floats(&g["vector"]);
    for (name, want) in g["defaults"].as_object().unwrap() {
        let r: Regularizer = name.parse().unwrap();
        let cfg = &want["config"];
        let (l1, l2) = r.factors();
        assert_eq!(l1 as f64 as f32, cfg.get("l1").map_or(0.0, |v| v.as_f64().unwrap() as f32), "{name} l1");
        assert_eq!(l2, cfg.get("l2").map_or(0.0, |v| v.as_f64().unwrap() as f32), "{name} l2");
        Tol { rel: 1e-6, abs: 1e-9 }.check64(
            &format!("{name} penalty"),
            &[want["penalty"].as_f64().unwrap() as f32],
            &[r.penalty(&v)],
        );
    }
    // The name Keras's documentation gives for L1L2 at 0.01 each.
    assert_eq!("l1_l2".parse::<Regularizer>().unwrap().factors(), (0.01, 0.01));
}

/// loss_gradients (the regularizers' gradients included) against central differences of the
/// evaluated loss (their penalties included), on both devices.
#[test]
fn gradients_include_the_penalties() {
    let mut r = common::rng(7);
    let x = Matrix::new(6, 3, common::random_vec(&mut r, 18, -1.0, 1.0)).unwrap();
    let y = Matrix::new(6, 2, common::random_vec(&mut r, 12, -1.0, 1.0)).unwrap();
    for device in devices() {
        let layers = vec![
            Dense::new(4)
                .activation("tanh")
                .input_shape(3)
                .kernel_regularizer(Regularizer::l1_l2(0.05, 0.2))
                .bias_regularizer("l2"),
            Dense::new(2).kernel_regularizer(Regularizer::l1(0.1)).bias_regularizer(Regularizer::l1(0.3)),
        ];
        let mut m = Sequential::new(&device, layers).seed(3);
        m.compile("sgd", "mse", &[]).unwrap();
        let (mut p0, s0) = m.get_weights().unwrap();
        // Biases start at 0, where |w| has a kink (TensorFlow's sign(0) = 0, which a central
        // difference cannot see): move every weight well away from it.
        for w in p0.iter_mut().filter(|w| w.abs() < 0.05) {
            *w = r.random_range(0.05f32..0.5) * if r.random_bool(0.5) { 1.0 } else { -1.0 };
        }
        m.set_weights(&p0, &s0).unwrap();
        let grads = m.loss_gradients(&x, &y, 0).unwrap();
        let loss_at = |m: &mut Sequential, p: &[f32]| -> f64 {
            m.set_weights(p, &s0).unwrap();
            m.evaluate(&x, &y).unwrap()[0].1 as f64
        };
        let h = 1e-2f32;
        let mut numeric = Vec::new();
        for i in 0..p0.len() {
            let (mut up, mut down) = (p0.clone(), p0.clone());
            up[i] += h;
            down[i] -= h;
            numeric.push((loss_at(&mut m, &up) - loss_at(&mut m, &down)) / (2.0 * h as f64));
        }
        Tol { rel: 2e-2, abs: 2e-3 }.check64(&format!("gradients on {device:?}"), &grads, &numeric);
    }
}

#[test]
fn saved_models_keep_their_regularizers() {
    let dir = std::env::temp_dir().join(format!("wgfit-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    let device = Device::cpu();
    let layers = vec![
        Dense::new(3).input_shape(2).kernel_regularizer(Regularizer::l1_l2(0.01, 0.02)).bias_regularizer("l1"),
        Dense::new(1),
    ];
    let mut m = Sequential::new(&device, layers).seed(1);
    m.compile("sgd", "mse", &[]).unwrap();
    let x = Matrix::new(4, 2, vec![0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8]).unwrap();
    let y = Matrix::column(vec![0.5, -0.5, 1.0, 0.0]);
    let before = m.evaluate(&x, &y).unwrap();
    m.save(&path).unwrap();
    let mut back = Sequential::load(&path, &device).unwrap();
    let kinds = |m: &Sequential| m.layers().iter().map(|l| l.kind().clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&back), kinds(&m));
    assert_eq!(back.evaluate(&x, &y).unwrap(), before, "the penalty is part of the loaded model's loss");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_regularizers_are_typed_errors() {
    let device = Device::cpu();
    let compile = |layer: wgfit::Layer| {
        let mut m = Sequential::new(&device, vec![layer.input_shape(2), Dense::new(1)]);
        m.compile("sgd", "mse", &[])
    };
    let e = compile(Dense::new(2).kernel_regularizer(Regularizer::l2(-0.1))).unwrap_err();
    assert!(e.to_string().contains("kernel_regularizer l2"), "{e}");
    let e = compile(Dense::new(2).bias_regularizer(Regularizer::l1(f32::NAN))).unwrap_err();
    assert!(e.to_string().contains("bias_regularizer l1"), "{e}");
    let e = compile(Dense::new(2).kernel_regularizer("l3")).unwrap_err();
    assert!(e.to_string().contains("l1, l2"), "{e}");
    let e = compile(Dropout::new(0.1).kernel_regularizer("l2")).unwrap_err();
    assert!(e.to_string().contains("kernel_regularizer() does not apply to a Dropout layer"), "{e}");
    assert!(matches!("nope".parse::<Regularizer>(), Err(Error::UnknownName { .. })));
}

//! Keras's Normalization layer: adapt and the forward pass against Keras 3's numbers
//! (tools/keras_golden_normalization.py -> tests/golden/keras_normalization.json), the kernels
//! against their twins, gradients by finite differences, saving, and the errors.

mod common;

use common::{devices, gpu, random_vec, rng, Tol};
use serde_json::Value;
use wgfit::testing::{Args, KernelHarness, NormalizationArgs};
use wgfit::{Activation, Dense, Device, Fit, Matrix, Normalization, Sequential};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_normalization.json")).expect("golden JSON parses")
}

fn floats(v: &Value) -> Vec<f32> {
    match v.as_array() {
        Some(a) => a.iter().flat_map(floats).collect(),
        None => vec![v.as_f64().expect("number") as f32],
    }
}

fn matrix(v: &Value) -> Matrix {
    let rows: Vec<Vec<f32>> = v.as_array().unwrap().iter().map(floats).collect();
    Matrix::from_rows(&rows).unwrap()
}

#[test]
fn adapt_and_forward_match_keras() {
    let g = golden();
    let (x, t) = (matrix(&g["x"]), matrix(&g["t"]));
    let tol = Tol { rel: 1e-6, abs: 1e-6 };
    for device in devices() {
        for (layer, want) in [
            (Normalization::new().adapt(&x), "normalized"),
            (Normalization::new().adapt(&x).invert(true), "inverted"),
            (Normalization::with_stats(&[1.0, 2.0, 3.0], &[4.0, 0.0, 0.25]), "given"),
        ] {
            let mut m = Sequential::new(&device, vec![layer.input_shape(3), Dense::new(1)]);
            m.compile("sgd", "mse", &[]).unwrap();
            let (_, state) = m.get_weights().unwrap();
            if want != "given" {
                tol.check("adapted mean", &state[..3], &floats(&g["mean"]));
                tol.check("adapted variance", &state[3..6], &floats(&g["variance"]));
                assert_eq!(state[6], 5.0, "count: the rows adapted on");
            }
            // The layer's own output: a model of Normalization alone would need a trainable layer,
            // so read it through an identity Dense.
            let mut id = Sequential::new(
                &device,
                vec![m.layers()[0].clone(), Dense::new(3).kernel_initializer("zeros").use_bias(false)],
            );
            id.compile("sgd", "mse", &[]).unwrap();
            let (mut p, s) = id.get_weights().unwrap();
            for i in 0..3 {
                p[i * 3 + i] = 1.0;
            }
            id.set_weights(&p, &s).unwrap();
            let got = id.predict(&t).unwrap();
            tol.check(&format!("{want} on {device:?}"), got.data(), &floats(&g[want]));
        }
    }
}

#[test]
fn kernels_match_their_twins() {
    let mut r = rng(17);
    for &(rows, width, invert) in &[(1usize, 1usize, false), (7, 5, true), (300, 3, false), (33, 64, true)] {
        let len = rows * width;
        let x = random_vec(&mut r, len, -3.0, 3.0);
        let mut state = random_vec(&mut r, 3 + 2 * width + 1, -1.0, 1.0);
        for v in &mut state[3 + width..3 + 2 * width] {
            *v = v.abs() * 4.0;
        }
        state[3 + width] = 0.0; // a constant feature: std = 1e-7
        let aux = random_vec(&mut r, len, -0.5, 1.5);
        for derivative in [Activation::Linear, Activation::Tanh, Activation::Relu] {
            let p = NormalizationArgs { len: len as u32, width: width as u32, state_off: 3, invert, derivative };
            let run = |device: &Device, args: Args, inputs: &[&Vec<f32>]| {
                let mut h = KernelHarness::new(device);
                let ids: Vec<_> = inputs.iter().map(|d| h.buffer(d).unwrap()).collect();
                h.run(&ids, args).unwrap();
                h.read(ids[2]).unwrap()
            };
            let nan = vec![f32::NAN; len];
            let what = format!("{rows}x{width} invert {invert} {derivative:?}");
            let tol = Tol { rel: 2e-6, abs: 1e-6 };
            let fwd = Args::NormalizationForward(p);
            let (g, c) = (run(&gpu(), fwd, &[&x, &state, &nan]), run(&Device::cpu(), fwd, &[&x, &state, &nan]));
            tol.check(&format!("forward {what}"), &g, &c);
            let bwd = Args::NormalizationBackward(p);
            let (g, c) =
                (run(&gpu(), bwd, &[&x, &state, &nan, &aux]), run(&Device::cpu(), bwd, &[&x, &state, &nan, &aux]));
            tol.check(&format!("backward {what}"), &g, &c);
            // Against f64.
            let want: Vec<f64> = (0..len)
                .map(|i| {
                    let j = i % width;
                    let (mean, std) = (state[3 + j] as f64, (state[3 + width + j] as f64).sqrt().max(1e-7));
                    if invert {
                        mean + x[i] as f64 * std
                    } else {
                        (x[i] as f64 - mean) / std
                    }
                })
                .collect();
            let fwd_cpu = run(&Device::cpu(), fwd, &[&x, &state, &nan]);
            Tol { rel: 1e-5, abs: 1e-5 }.check64(&format!("forward vs f64 {what}"), &fwd_cpu, &want);
        }
    }
}

/// loss_gradients through a Normalization in the middle (its dX) and at the input, against
/// central differences of the evaluated loss, both devices, both directions.
#[test]
fn gradients_pass_through() {
    let mut r = rng(5);
    let x = Matrix::new(6, 3, random_vec(&mut r, 18, -1.0, 1.0)).unwrap();
    let y = Matrix::new(6, 1, random_vec(&mut r, 6, -1.0, 1.0)).unwrap();
    for device in devices() {
        for invert in [false, true] {
            let layers = vec![
                Normalization::new().adapt(&x).input_shape(3),
                Dense::new(4).activation("tanh"),
                Normalization::with_stats(&[0.1, -0.2, 0.3, 0.0], &[0.5, 2.0, 0.25, 1.5]).invert(invert),
                Dense::new(1),
            ];
            let mut m = Sequential::new(&device, layers).seed(2);
            m.compile("sgd", "mse", &[]).unwrap();
            let grads = m.loss_gradients(&x, &y, 0).unwrap();
            let (p0, s0) = m.get_weights().unwrap();
            let h = 1e-2f32;
            let mut numeric = Vec::new();
            for i in 0..p0.len() {
                let mut at = |d: f32| {
                    let mut p = p0.clone();
                    p[i] += d;
                    m.set_weights(&p, &s0).unwrap();
                    m.evaluate(&x, &y).unwrap()[0].1 as f64
                };
                numeric.push((at(h) - at(-h)) / (2.0 * h as f64));
            }
            Tol { rel: 2e-2, abs: 2e-3 }.check64(&format!("invert {invert} on {device:?}"), &grads, &numeric);
        }
    }
}

#[test]
fn trains_saves_and_loads() {
    let mut r = rng(8);
    let raw =
        Matrix::new(80, 2, (0..160).map(|i| if i % 2 == 0 { 1000.0 } else { 0.01 } * r.random::<f32>()).collect())
            .unwrap();
    let y = Matrix::column(raw.data().chunks(2).map(|p| p[0] / 1000.0 - p[1] * 50.0).collect());
    let dir = tempfile::tempdir().unwrap();
    let mut finals = Vec::new();
    for device in devices() {
        let layers = vec![Normalization::new().adapt(&raw), Dense::new(8).activation("relu"), Dense::new(1)];
        let mut m = Sequential::new(&device, layers).seed(1);
        m.compile("adam", "mse", &[]).unwrap();
        let h = m.fit(&raw, &y, Fit::new().epochs(20).batch_size(16).verbose(0)).unwrap();
        let loss = h.get("loss").unwrap();
        assert!(loss[19] < loss[0] * 0.5, "learns on raw scales: {loss:?}");
        finals.push(loss[19]);
        let path = dir.path().join("norm.json");
        m.save(&path).unwrap();
        let mut back = Sequential::load(&path, &device).unwrap();
        assert_eq!(back.predict(&raw).unwrap(), m.predict(&raw).unwrap(), "a loaded model predicts the same");
        assert!(back.summary().contains("normalization (Normalization)"), "{}", back.summary());
        assert_eq!(back.count_params().map(|c| c.2), Some(5), "mean, variance (2 each) and count are non-trainable");
    }
    Tol { rel: 1e-3, abs: 1e-5 }.check("GPU vs CPU final loss", &finals[..1], &finals[1..]);
}

use rand::Rng;

#[test]
fn bad_normalization_is_a_typed_error() {
    let device = Device::cpu();
    let compile = |layers: Vec<wgfit::Layer>| {
        let mut m = Sequential::new(&device, layers);
        m.compile("sgd", "mse", &[])
    };
    let e = compile(vec![Normalization::new().input_shape(2), Dense::new(1)]).unwrap_err();
    assert!(e.to_string().contains("call .adapt(data)"), "{e}");
    let x3 = Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let e = compile(vec![Normalization::new().adapt(&x3).input_shape(2), Dense::new(1)]).unwrap_err();
    assert!(e.to_string().contains("statistics of 3 features"), "{e}");
    let bad = Matrix::new(2, 1, vec![1.0, f32::NAN]);
    assert!(
        bad.is_err() || compile(vec![Normalization::new().adapt(&bad.unwrap()).input_shape(1), Dense::new(1)]).is_err()
    );
    let e = compile(vec![Dense::new(2).adapt(&x3).input_shape(3), Dense::new(1)]).unwrap_err();
    assert!(e.to_string().contains("adapt() does not apply to a Dense layer"), "{e}");
    let e = compile(vec![Normalization::with_stats(&[0.0], &[-1.0]).input_shape(1), Dense::new(1)]).unwrap_err();
    assert!(e.to_string().contains("variance"), "{e}");
}

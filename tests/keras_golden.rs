//! Golden numbers from Keras 3.15 itself (jax backend), produced once by `tools/keras_golden.py`
//! into tests/golden/keras_golden.json (the script's docstring has the exact command).
//! Keras puts Adam's epsilon outside the bias correction and clips probabilities in f32.

mod common;

use common::{devices, Tol};
use serde_json::Value;
use wgfit::testing::{optimizer_launch, Args, KernelHarness, LossArgs};
use wgfit::Loss;
use wgfit::{Adam, Optimizer, Sgd};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_golden.json")).expect("golden JSON parses")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn rows(v: &Value) -> Vec<f32> {
    v.as_array().expect("rows").iter().flat_map(floats).collect()
}

// Keras folds the bias correction in f32, we in f64: a few ulps apart, far below what a misplaced
// epsilon or a missing correction would change (1e-2 and more on these inputs).
const TOL: Tol = Tol { rel: 5e-6, abs: 1e-7 };

fn check_optimizer(case: &str, optimizer: Optimizer) {
    let g = &golden()[case];
    let w0 = floats(&g["w0"]);
    let n = w0.len();
    for device in devices() {
        let mut h = KernelHarness::new(&device);
        let (w, m, v) = (h.buffer(&w0).unwrap(), h.buffer(&vec![0.0; n]).unwrap(), h.buffer(&vec![0.0; n]).unwrap());
        let (s, norms) = (h.buffer(&vec![0.0; n]).unwrap(), h.buffer(&[0.0]).unwrap());
        for (t, (grads, want)) in
            g["grads"].as_array().unwrap().iter().zip(g["w_after"].as_array().unwrap()).enumerate()
        {
            let grad = h.buffer(&floats(grads)).unwrap();
            let (args, row, lr) = optimizer_launch(&optimizer, t as u64 + 1, n, 1, 1).unwrap();
            let (table, lrs) = (h.buffer(&row).unwrap(), h.buffer(&lr).unwrap());
            h.run(&[w, grad, m, v, table, lrs, s, norms], args).unwrap();
            TOL.check(&format!("{case} step {} on {device:?}", t + 1), &h.read(w).unwrap(), &floats(want));
        }
    }
}

#[test]
fn adam_steps_match_keras() {
    let g = &golden()["adam"];
    assert_eq!(g["epsilon"].as_f64(), Some(1e-7));
    check_optimizer("adam", Optimizer::Adam(Adam::default()));
}

#[test]
fn adam_with_large_learning_rate_matches_keras_epsilon_placement() {
    check_optimizer("adam_lr01", Optimizer::Adam(Adam::new(0.1)));
}

#[test]
fn sgd_steps_match_keras() {
    check_optimizer("sgd_plain", Optimizer::Sgd(Sgd::new(0.1)));
    check_optimizer("sgd_momentum", Optimizer::Sgd(Sgd { learning_rate: 0.1, momentum: 0.9, ..Sgd::default() }));
    check_optimizer(
        "sgd_nesterov",
        Optimizer::Sgd(Sgd { learning_rate: 0.1, momentum: 0.9, nesterov: true, ..Sgd::default() }),
    );
}

/// Loss sum and metrics of one batch through the loss kernel: (loss, mae, mse, accuracy) means.
fn loss_kernel(device: &wgfit::Device, loss: u32, metrics: u32, pred: &[f32], y: &[f32], n: usize) -> Vec<f32> {
    let rows = pred.len() / n;
    let mut h = KernelHarness::new(device);
    let ids = [
        h.buffer(pred).unwrap(),
        h.buffer(y).unwrap(),
        h.buffer(&vec![0.0; pred.len()]).unwrap(),
        h.buffer(&[f32::NAN; 4]).unwrap(),
    ];
    let loss = [
        Loss::MeanAbsoluteError,
        Loss::MeanSquaredError,
        Loss::BinaryCrossentropy { from_logits: false },
        Loss::BinaryCrossentropy { from_logits: true },
    ][loss as usize];
    let p = LossArgs {
        rows: rows as u32,
        cols: n as u32,
        loss,
        output_activation: wgfit::Activation::Linear,
        metrics,
        write_gradient: true,
        accumulate: false,
        slot: 0,
        weighted: false,
        weighted_metrics: false,
    };
    h.run(&ids, Args::Loss(p)).unwrap();
    let sums = h.read(ids[3]).unwrap();
    let count = 1 + metrics.count_ones() as usize;
    sums[..count].iter().map(|s| s / rows as f32).collect()
}

#[test]
fn losses_and_accuracy_match_keras() {
    let g = &golden()["losses"];
    let (y, p) = (rows(&g["y_true"]), rows(&g["y_pred"]));
    let num = |k: &str| g[k].as_f64().unwrap() as f32;
    for device in devices() {
        let d = format!("{device:?}");
        let r = loss_kernel(&device, 0, 0b011, &p, &y, 1);
        TOL.check(&format!("mae on {d}"), &r, &[num("mae"), num("mae"), num("mse")]);
        let r = loss_kernel(&device, 1, 0, &p, &y, 1);
        TOL.check(&format!("mse on {d}"), &r, &[num("mse")]);
        let r = loss_kernel(&device, 2, 0b100, &p, &y, 1);
        Tol { rel: 1e-5, abs: 1e-6 }.check(
            &format!("binary_crossentropy (clipped) and binary_accuracy on {d}"),
            &r,
            &[num("binary_crossentropy"), num("binary_accuracy")],
        );
        let r = loss_kernel(&device, 3, 0, &rows(&g["logits"]), &y, 1);
        Tol { rel: 1e-5, abs: 1e-6 }.check(
            &format!("bce from logits on {d}"),
            &r,
            &[num("binary_crossentropy_from_logits")],
        );
        let (y2, p2) = (rows(&g["y_true_2col"]), rows(&g["y_pred_2col"]));
        let r = loss_kernel(&device, 0, 0b010, &p2, &y2, 2);
        TOL.check(&format!("2-column mae/mse on {d}"), &r, &[num("mae_2col"), num("mse_2col")]);
    }
}

/// Each activation and its gradient against Keras 3 on TensorFlow
/// (tools/keras_golden_activations.py -> tests/golden/keras_activations.json): forward through the
/// activation kernel, the gradient through the backward kernel (from the output, as TensorFlow's
/// gradients of these activations are; from the input for silu and gelu), on both devices.
#[test]
fn activations_and_their_gradients_match_keras() {
    let g: Value = serde_json::from_str(include_str!("golden/keras_activations.json")).unwrap();
    let x = floats(&g["x"]);
    let n = x.len();
    let cases = g["activations"].as_object().unwrap();
    // Row-wise activations (softmax) are not elementwise: tests/multiclass.rs holds them to Keras.
    let elementwise: Vec<wgfit::Activation> = wgfit::Activation::ALL.into_iter().filter(|a| !a.is_row_wise()).collect();
    assert_eq!(cases.len(), elementwise.len(), "every elementwise activation has Keras numbers");
    for device in devices() {
        for &activation in &elementwise {
            let case = &cases[activation.name()];
            let (want_y, want_g) = (floats(&case["y"]), floats(&case["dy_dx"]));
            let mut h = KernelHarness::new(&device);
            let (src, dst, ones) =
                (h.buffer(&x).unwrap(), h.buffer(&vec![f32::NAN; n]).unwrap(), h.buffer(&vec![1.0; n]).unwrap());
            let forward =
                wgfit::testing::Args::ActivationForward(wgfit::testing::ActivationArgs { len: n as u32, activation });
            h.run(&[src, dst, src], forward).unwrap();
            let y = h.read(dst).unwrap();
            Tol { rel: 2e-6, abs: 1e-7 }.check(&format!("{activation:?} on {device:?}"), &y, &want_y);
            let grad = h.buffer(&vec![f32::NAN; n]).unwrap();
            let backward = wgfit::testing::Args::ActivationBackward(wgfit::testing::ActivationGradArgs {
                len: n as u32,
                derivative: activation,
            });
            // The derivative is read from the output, or from the input for silu and gelu.
            let from = if activation.needs_preactivation() { src } else { dst };
            h.run(&[ones, grad, from], backward).unwrap();
            let dy = h.read(grad).unwrap();
            Tol { rel: 2e-6, abs: 1e-6 }.check(&format!("{activation:?} gradient on {device:?}"), &dy, &want_g);
        }
    }
}

//! Sample and class weights: the weighted loss kernel against its CPU twin (several members,
//! NaN-poisoned gradients) and an f64 reference; Keras 3's numbers for weighted fits
//! (tools/keras_golden_weights.py -> tests/golden/keras_weights.json); finite differences of a
//! weighted loss; weights of 1 keep an unweighted fit's bits; typed errors for bad weights.

mod common;

use common::{devices, gpu, random_vec, rng, Tol, F32};
use rand::Rng;
use serde_json::Value;
use wgfit::testing::{Args, KernelHarness, LossArgs};
use wgfit::{Activation, Dense, Device, Error, Fit, Loss, Matrix, Sequential, Sgd};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_weights.json")).expect("golden JSON parses")
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

/// A column of values (class labels given as a flat list).
fn targets(v: &Value) -> Matrix {
    if v.as_array().unwrap()[0].is_array() {
        matrix(v)
    } else {
        let f = floats(v);
        Matrix::new(f.len(), 1, f).unwrap()
    }
}

/// Runs `args`' loss kernel for each member's inputs together on `device`; every buffer back.
fn run(device: &Device, per_member: &[Vec<Vec<f32>>], args: Args) -> Vec<Vec<f32>> {
    let mut h = KernelHarness::with_members(device, per_member.len());
    let ids: Vec<_> = (0..per_member[0].len())
        .map(|b| h.buffer(&per_member.iter().flat_map(|m| m[b].clone()).collect::<Vec<f32>>()).unwrap())
        .collect();
    h.run(&ids, args).unwrap();
    ids.iter().map(|&id| h.read(id).unwrap()).collect()
}

const LOSSES: [Loss; 8] = [
    Loss::MeanAbsoluteError,
    Loss::MeanSquaredError,
    Loss::BinaryCrossentropy { from_logits: false },
    Loss::BinaryCrossentropy { from_logits: true },
    Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.1 },
    Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.0 },
    Loss::SparseCategoricalCrossentropy { from_logits: false },
    Loss::SparseCategoricalCrossentropy { from_logits: true },
];

/// Random predictions, targets and weights (some 0) for `loss`; y with each row's weight after
/// its targets.
fn weighted_inputs(r: &mut impl Rng, loss: Loss, rows: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let code = LOSSES.iter().position(|l| *l == loss).unwrap();
    let pred: Vec<f32> = match code {
        2 => random_vec(r, rows * n, 0.01, 0.99),
        4 | 6 => {
            // Rows of probabilities.
            let mut p = random_vec(r, rows * n, 0.01, 1.0);
            for row in p.chunks_mut(n) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            p
        }
        _ => random_vec(r, rows * n, -3.0, 3.0),
    };
    let yw = loss.target_width(n);
    let y: Vec<f32> = match code {
        2 | 3 => (0..rows * n).map(|_| f32::from(u8::from(r.random_bool(0.5)))).collect(),
        4 | 5 => (0..rows)
            .flat_map(|_| {
                let c = r.random_range(0..n);
                (0..n).map(move |j| if j == c { 1.0 } else { 0.0 })
            })
            .collect(),
        6 | 7 => (0..rows).map(|_| r.random_range(0..n) as f32).collect(),
        _ => random_vec(r, rows * n, -3.0, 3.0),
    };
    let w: Vec<f32> = (0..rows).map(|_| if r.random_bool(0.2) { 0.0 } else { r.random_range(0.0..3.0) }).collect();
    let mut yw_rows = Vec::with_capacity(rows * (yw + 1));
    for (t, &wv) in y.chunks(yw).zip(&w) {
        yw_rows.extend_from_slice(t);
        yw_rows.push(wv);
    }
    (pred, yw_rows, w)
}

/// The weighted loss kernel with 3 members on both devices against each member run alone on the
/// CPU (exact) and on the GPU (within F32); the gradient buffer starts NaN; every loss, element
/// and row paths, weighted metrics on and off, odd row counts.
#[test]
fn weighted_loss_kernel_matches_twin_with_members() {
    let mut r = rng(131);
    let gpu = gpu();
    for (li, &loss) in LOSSES.iter().enumerate() {
        for &(rows, n) in &[(1usize, 1usize), (37, 3), (300, 2), (9, 5)] {
            let n = if li >= 4 { n.max(2) } else { n };
            for (metrics, weighted_metrics) in [(0b111u32, true), (0b101, false), (0b1011, true), (0b1110000, true)] {
                if li == 2 && metrics & 0b1000 != 0 && n == 1 {
                    continue;
                }
                let metrics = if loss.is_sparse() { metrics & !0b1000 } else { metrics & !0b1010000 };
                let args = LossArgs {
                    rows: rows as u32,
                    cols: n as u32,
                    loss,
                    output_activation: if li == 2 { Activation::Sigmoid } else { Activation::Linear },
                    metrics,
                    write_gradient: true,
                    accumulate: true,
                    slot: 3,
                    weighted: true,
                    weighted_metrics,
                };
                let per_member: Vec<Vec<Vec<f32>>> = (0..3)
                    .map(|_| {
                        let (pred, y, _) = weighted_inputs(&mut r, loss, rows, n);
                        vec![pred, y, vec![f32::NAN; rows * n], random_vec(&mut r, 14, 0.0, 1.0)]
                    })
                    .collect();
                let what =
                    format!("{loss:?} rows {rows} n {n} metrics {metrics:b} weighted metrics {weighted_metrics}");
                let (g, c) =
                    (run(&gpu, &per_member, Args::Loss(args)), run(&Device::cpu(), &per_member, Args::Loss(args)));
                for (m, inputs) in per_member.iter().enumerate() {
                    let alone = run(&Device::cpu(), std::slice::from_ref(inputs), Args::Loss(args));
                    for b in [2, 3] {
                        let len = inputs[b].len();
                        let block = |all: &Vec<Vec<f32>>| all[b][m * len..(m + 1) * len].to_vec();
                        assert_eq!(block(&c), alone[b], "{what}: member {m} buffer {b} on the CPU");
                        F32.check(&format!("{what}: member {m} buffer {b} GPU"), &block(&g), &alone[b]);
                    }
                    // Nothing past the slot's values and the weight sum is touched.
                    let nvals = 1 + metrics.count_ones() as usize;
                    let acc0 = &inputs[3];
                    let got = &alone[3];
                    assert_eq!(&got[..3], &acc0[..3], "{what}: wrote before its slot");
                    assert_eq!(&got[3 + nvals + 1..], &acc0[3 + nvals + 1..], "{what}: wrote past the weight sum");
                }
            }
        }
    }
}

/// The weighted sums against f64: sum(w * loss), sum(w * |p - t|) (weighted metric) and sum(w),
/// and the gradient w * dloss/dp / rows, for mse and sparse cross-entropy on logits.
#[test]
fn weighted_sums_match_f64() {
    let mut r = rng(7);
    for device in devices() {
        for loss in [Loss::MeanSquaredError, Loss::SparseCategoricalCrossentropy { from_logits: true }] {
            let (rows, n) = (53usize, 3usize);
            let (pred, y, w) = weighted_inputs(&mut r, loss, rows, n);
            let metrics = if loss.is_sparse() { 0b10000 } else { 0b1 };
            let args = LossArgs {
                rows: rows as u32,
                cols: n as u32,
                loss,
                output_activation: Activation::Linear,
                metrics,
                write_gradient: true,
                accumulate: false,
                slot: 0,
                weighted: true,
                weighted_metrics: true,
            };
            let out = run(
                &device,
                &[vec![pred.clone(), y.clone(), vec![f32::NAN; rows * n], vec![0.0; 4]]],
                Args::Loss(args),
            );
            let (mut l, mut m, mut ws) = (0.0f64, 0.0f64, 0.0f64);
            let mut grad = vec![0.0f64; rows * n];
            for row in 0..rows {
                let p = &pred[row * n..(row + 1) * n];
                let wv = w[row] as f64;
                ws += wv;
                if loss.is_sparse() {
                    let label = y[row * 2] as usize;
                    let mx = p.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
                    let lse = mx + p.iter().map(|&v| (v as f64 - mx).exp()).sum::<f64>().ln();
                    l += wv * (lse - p[label] as f64);
                    let am = (0..n).fold(0, |a, j| if p[j] > p[a] { j } else { a });
                    m += wv * f64::from(u8::from(am == label));
                    for j in 0..n {
                        let hit = f64::from(u8::from(j == label));
                        grad[row * n + j] = wv * ((p[j] as f64 - lse).exp() - hit) / rows as f64;
                    }
                } else {
                    let t = &y[row * (n + 1)..row * (n + 1) + n];
                    for j in 0..n {
                        let d = p[j] as f64 - t[j] as f64;
                        l += wv * d * d / n as f64;
                        m += wv * d.abs() / n as f64;
                        grad[row * n + j] = wv * 2.0 * d / (rows * n) as f64;
                    }
                }
            }
            let tol = Tol { rel: 1e-5, abs: 1e-6 };
            tol.check64(&format!("{loss:?} sums on {device:?}"), &out[3][..3], &[l, m, ws]);
            tol.check64(&format!("{loss:?} gradient on {device:?}"), &out[2], &grad);
        }
    }
}

/// Dense(3, relu) -> Dense(units) with the golden weights, SGD(0.1), as the script builds it.
fn golden_model(device: &Device, g: &Value, case: &Value) -> Sequential {
    let units = case["units"].as_u64().unwrap() as usize;
    let activation = case["activation"].as_str().unwrap();
    let name = case["name"].as_str().unwrap();
    let loss = if name.starts_with("regression") {
        Loss::MeanSquaredError
    } else if name.starts_with("sparse") {
        Loss::SparseCategoricalCrossentropy { from_logits: true }
    } else if name.starts_with("onehot") {
        Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }
    } else {
        Loss::BinaryCrossentropy { from_logits: true }
    };
    let metrics: Vec<String> = case["history"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "loss" && !k.starts_with("val_"))
        .cloned()
        .collect();
    let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let mut m = Sequential::new(
        device,
        vec![Dense::new(3).activation("relu").input_shape(2), Dense::new(units).activation(activation)],
    );
    m.compile(Sgd::new(0.1), loss, &metrics).unwrap();
    m.weighted_metrics(case["weighted_metrics"].as_bool().unwrap()).unwrap();
    let params: Vec<f32> = [&g["w1"], &g["b1"], &case["w2"], &case["b2"]].iter().flat_map(|v| floats(v)).collect();
    m.set_weights(&params, &[]).unwrap();
    m
}

#[test]
fn weighted_fits_match_keras() {
    let g = golden();
    assert!(g["sample_and_class_weight"].as_str().unwrap().contains("at the same time"));
    let (x, xv) = (matrix(&g["x"]), matrix(&g["x_val"]));
    let tol = Tol { rel: 3e-5, abs: 1e-6 };
    for device in devices() {
        for case in g["cases"].as_array().unwrap() {
            let what = format!("{} on {device:?}", case["name"].as_str().unwrap());
            let (y, yv) = (targets(&case["y"]), targets(&case["y_val"]));
            let mut m = golden_model(&device, &g, case);
            let sw = case.get("sample_weight").map(floats);
            let vw = (!case["val_weight"].is_null()).then(|| floats(&case["val_weight"]));
            let mut fit = Fit::new().batch_size(4).epochs(2).shuffle(false).verbose(0);
            fit = match &vw {
                Some(w) => fit.validation_data_weighted(&xv, &yv, w),
                None => fit.validation_data(&xv, &yv),
            };
            if let Some(w) = &sw {
                fit = fit.sample_weight(w);
            }
            if let Some(cw) = case.get("class_weight").and_then(Value::as_object) {
                fit = fit.class_weight(cw.iter().map(|(k, v)| (k.parse().unwrap(), v.as_f64().unwrap() as f32)));
            }
            let h = m.fit(&x, &y, fit).unwrap();
            for (key, want) in case["history"].as_object().unwrap() {
                tol.check(&format!("{what}: {key}"), h.get(key).unwrap(), &floats(want));
            }
            let (params, _) = m.get_weights().unwrap();
            tol.check(&format!("{what}: weights"), &params, &floats(&case["weights"]));
            let ev = match &vw {
                Some(w) => m.evaluate_weighted(&xv, &yv, w).unwrap(),
                None => m.evaluate(&xv, &yv).unwrap(),
            };
            for (key, value) in ev {
                tol.check(&format!("{what}: evaluate {key}"), &[value], &floats(&case["evaluate"][&key]));
            }
        }
        // validation_split takes the held-out rows' sample weights along.
        let s = &g["validation_split"];
        let case = &g["cases"][0];
        let mut m = golden_model(&device, &g, case);
        let params: Vec<f32> = [&g["w1"], &g["b1"], &s["w2"], &s["b2"]].iter().flat_map(|v| floats(v)).collect();
        m.set_weights(&params, &[]).unwrap();
        let sw = floats(&case["sample_weight"]);
        let fit = Fit::new().batch_size(4).epochs(2).shuffle(false).verbose(0).validation_split(0.2).sample_weight(&sw);
        let h = m.fit(&x, &targets(&case["y"]), fit).unwrap();
        for (key, want) in s["history"].as_object().unwrap() {
            tol.check(&format!("validation_split on {device:?}: {key}"), h.get(key).unwrap(), &floats(want));
        }
        let (params, _) = m.get_weights().unwrap();
        tol.check(&format!("validation_split on {device:?}: weights"), &params, &floats(&s["weights"]));
    }
}

fn small_model(device: &Device, loss: &str, units: usize, metrics: &[&str]) -> Sequential {
    let mut m = Sequential::new(device, vec![Dense::new(4).activation("tanh").input_shape(3), Dense::new(units)]);
    m.compile(Sgd::new(0.05), loss, metrics).unwrap();
    m
}

/// Weights of 1 train exactly as no weights: same History and weights, bit for bit, on both devices.
#[test]
fn unit_weights_keep_the_unweighted_bits() {
    let mut r = rng(3);
    let x = Matrix::new(45, 3, random_vec(&mut r, 135, -1.0, 1.0)).unwrap();
    let y = Matrix::new(45, 2, random_vec(&mut r, 90, -1.0, 1.0)).unwrap();
    let ones = vec![1.0f32; 45];
    for device in devices() {
        let mut runs = Vec::new();
        for weighted in [false, true] {
            let mut m = small_model(&device, "mse", 2, &["mae"]);
            m.weighted_metrics(true).unwrap();
            let mut fit = Fit::new().batch_size(8).epochs(3).seed(5).verbose(0).validation_data(&x, &y);
            if weighted {
                fit = fit.sample_weight(&ones).validation_data_weighted(&x, &y, &ones);
            }
            let h = m.fit(&x, &y, fit).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let hist: Vec<_> = ["loss", "mae", "val_loss", "val_mae"].iter().map(|k| bits(h.get(k).unwrap())).collect();
            runs.push((hist, bits(&m.get_weights().unwrap().0)));
        }
        assert_eq!(runs[0], runs[1], "weights of 1 changed the fit on {device:?}");
    }
}

/// The confusion metrics on a weighted dataset (whose target rows carry the weight after the
/// targets): weights of 1 give the unweighted AUC, precision and recall, weighted metrics or not;
/// weights of 2 with weighted metrics count every value twice.
#[test]
fn confusion_metrics_read_weighted_rows() {
    let mut r = rng(9);
    let x = Matrix::new(60, 3, random_vec(&mut r, 180, -1.0, 1.0)).unwrap();
    let y = Matrix::new(60, 1, (0..60).map(|i| (i % 3 == 0) as u8 as f32).collect()).unwrap();
    let keys = ["auc", "precision", "recall", "true_positives"];
    for device in devices() {
        let mut runs = Vec::new();
        for (weights, weighted_metrics) in [(None, false), (Some(1.0f32), false), (Some(1.0), true), (Some(2.0), true)]
        {
            let mut m = Sequential::new(
                &device,
                vec![Dense::new(4).activation("tanh").input_shape(3), Dense::new(1).activation("sigmoid")],
            );
            m.compile(Sgd::new(0.05), "binary_crossentropy", &keys).unwrap();
            m.weighted_metrics(weighted_metrics).unwrap();
            let w = vec![weights.unwrap_or(1.0); 60];
            let mut fit = Fit::new().batch_size(16).epochs(2).seed(1).verbose(0);
            if weights.is_some() {
                fit = fit.sample_weight(&w);
            }
            let h = m.fit(&x, &y, fit).unwrap();
            runs.push(keys.iter().map(|k| h.get(k).unwrap().to_vec()).collect::<Vec<_>>());
        }
        let what = format!("{device:?}");
        for run in &runs[1..3] {
            assert_eq!(run, &runs[0], "weights of 1 changed the confusion metrics on {what}");
        }
        // Weights of 2 move the fit (the loss doubles); their counts are twice the unweighted count
        // of the same predictions, so the ratios stay in [0, 1] and true_positives is even.
        let tp = &runs[3][3];
        assert!(tp.iter().all(|v| v % 2.0 == 0.0), "weighted counts of weight 2 on {what}: {tp:?}");
        assert!(runs[3][..3].iter().flatten().all(|v| (0.0..=1.0).contains(v)), "{what}: {:?}", runs[3]);
    }
}

/// The weighted loss's gradient (the kernel's) against central differences of the weighted
/// loss (`evaluate_weighted`, in f32, so a loose tolerance), binary and sparse multi-class.
#[test]
fn weighted_gradients_match_finite_differences() {
    let mut r = rng(17);
    let x = Matrix::new(12, 3, random_vec(&mut r, 36, -1.0, 1.0)).unwrap();
    let w: Vec<f32> = (0..12).map(|i| [0.0, 0.5, 2.0, 1.0][i % 4]).collect();
    for device in devices() {
        for (loss, units, y) in [
            ("binary_crossentropy", 1, Matrix::new(12, 1, (0..12).map(|i| (i % 2) as f32).collect()).unwrap()),
            (
                "sparse_categorical_crossentropy",
                3,
                Matrix::new(12, 1, (0..12).map(|i| (i % 3) as f32).collect()).unwrap(),
            ),
        ] {
            let mut m = Sequential::new(
                &device,
                vec![
                    Dense::new(4).activation("tanh").input_shape(3),
                    Dense::new(units).activation(if units == 1 { "sigmoid" } else { "softmax" }),
                ],
            );
            m.compile(Sgd::new(0.1), loss, &[]).unwrap();
            let (p0, s0) = m.get_weights().unwrap();
            let grads = m.loss_gradients_weighted(&x, &y, Some(&w), 0).unwrap();
            let h = 1e-2f32;
            for i in 0..p0.len() {
                let mut at = |d: f32| {
                    let mut p = p0.clone();
                    p[i] += d;
                    m.set_weights(&p, &s0).unwrap();
                    m.evaluate_weighted(&x, &y, &w).unwrap()[0].1 as f64
                };
                let fd = (at(h) - at(-h)) / (2.0 * h as f64);
                let g = grads[i] as f64;
                assert!(
                    (fd - g).abs() <= 2e-3 + 2e-2 * g.abs(),
                    "{loss} on {device:?}: d/dw{i}: kernel {g}, finite difference {fd}"
                );
            }
            m.set_weights(&p0, &s0).unwrap();
        }
    }
}

/// A row of weight 0 counts for nothing in the loss's gradient: the gradient equals that of the
/// other rows alone scaled by their share of the rows.
#[test]
fn zero_weight_rows_are_ignored() {
    let mut r = rng(23);
    let x = Matrix::new(10, 3, random_vec(&mut r, 30, -1.0, 1.0)).unwrap();
    let y = Matrix::new(10, 1, random_vec(&mut r, 10, -1.0, 1.0)).unwrap();
    let w: Vec<f32> = (0..10).map(|i| if i < 6 { 1.0 } else { 0.0 }).collect();
    let head: Vec<usize> = (0..6).collect();
    for device in devices() {
        let mut m = small_model(&device, "mse", 1, &[]);
        let g_all = m.loss_gradients_weighted(&x, &y, Some(&w), 0).unwrap();
        let g_head = m.loss_gradients(&x.select_rows(&head).unwrap(), &y.select_rows(&head).unwrap(), 0).unwrap();
        let scaled: Vec<f32> = g_head.iter().map(|v| v * 0.6).collect();
        Tol { rel: 1e-5, abs: 1e-7 }.check(&format!("zero weights on {device:?}"), &g_all, &scaled);
    }
}

fn expect_err<T: std::fmt::Debug>(r: wgfit::Result<T>, has: &[&str]) -> Error {
    let e = r.expect_err("expected an error");
    let text = e.to_string();
    for h in has {
        assert!(text.contains(h), "error {text:?} lacks {h:?}");
    }
    e
}

#[test]
fn bad_weights_are_typed_errors() {
    let device = Device::cpu();
    let x = Matrix::new(4, 3, vec![0.5; 12]).unwrap();
    let y = Matrix::new(4, 1, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let mut m = small_model(&device, "binary_crossentropy", 1, &["accuracy"]);
    let fit = || Fit::new().verbose(0);
    let e = expect_err(m.fit(&x, &y, fit().sample_weight(&[1.0, 2.0])), &["sample_weight", "4 weights"]);
    assert!(matches!(e, Error::Shape { .. }));
    let e = expect_err(m.fit(&x, &y, fit().sample_weight(&[1.0, f32::NAN, 1.0, 1.0])), &["sample_weight"]);
    assert!(matches!(e, Error::NonFinite { row: 1, .. }));
    let e = expect_err(m.fit(&x, &y, fit().sample_weight(&[1.0, 1.0, -0.5, 1.0])), &["sample_weight[2]"]);
    assert!(matches!(e, Error::InvalidValue { .. }));
    let e = expect_err(m.fit(&x, &y, fit().class_weight([(0, 1.0), (2, 3.0)])), &["class_weight", "0 to 1"]);
    assert!(matches!(e, Error::InvalidValue { .. }));
    expect_err(m.fit(&x, &y, fit().class_weight([(1, f32::INFINITY)])), &["class_weight[1]"]);
    expect_err(m.fit(&x, &y, fit().class_weight([(1, 2.0), (1, 3.0)])), &["once"]);
    expect_err(m.fit(&x, &y, fit().class_weight([(1, 2.0)]).sample_weight(&[1.0; 4])), &["sample_weight"]);
    expect_err(m.fit(&x, &y, fit().validation_data_weighted(&x, &y, &[1.0; 3])), &["validation sample_weight"]);
    expect_err(m.fit(&x, &y, fit().validation_split(0.5).sample_weight(&[1.0; 3])), &["sample_weight"]);
    expect_err(m.evaluate_weighted(&x, &y, &[1.0, 1.0, 1.0, -1.0]), &["evaluate sample_weight[3]"]);
    // Nothing above trained the model: a failed check comes before any step.
    let mut fresh = Sequential::new(&device, vec![Dense::new(1).input_shape(3)]);
    expect_err(fresh.weighted_metrics(true), &["compiled"]);
}

/// A sweep takes weights too: every member of a plan of two trains as the same model fit alone
/// with the same sample weights, weighted validation data and weighted metrics, on both devices.
#[test]
fn sweeps_train_with_weights() {
    use wgfit::{Member, Sweep};
    let mut r = rng(29);
    let x = Matrix::new(20, 3, random_vec(&mut r, 60, -1.0, 1.0)).unwrap();
    let y = Matrix::new(20, 1, (0..20).map(|i| (i % 2) as f32).collect()).unwrap();
    let w: Vec<f32> = (0..20).map(|i| [0.5, 2.0, 0.0, 1.0][i % 4]).collect();
    let keys = ["loss", "binary_accuracy", "val_loss", "val_binary_accuracy"];
    for device in devices() {
        let opts = || {
            Fit::new()
                .batch_size(8)
                .epochs(2)
                .shuffle(false)
                .verbose(0)
                .sample_weight(&w)
                .validation_data_weighted(&x, &y, &w)
        };
        let model = || {
            let mut m = small_model(&device, "binary_crossentropy", 1, &["binary_accuracy"]);
            m.weighted_metrics(true).unwrap();
            m
        };
        let h = model().fit(&x, &y, opts()).unwrap();
        let plain = small_model(&device, "binary_crossentropy", 1, &["binary_accuracy"])
            .fit(&x, &y, Fit::new().batch_size(8).epochs(2).shuffle(false).verbose(0))
            .unwrap();
        assert_ne!(h.get("loss").unwrap(), plain.get("loss").unwrap(), "the weights changed nothing");
        let mut sweep = Sweep::from_fn(2, |_| Ok(Member::new(model()))).unwrap();
        let report = sweep.fit(&x, &y, opts()).unwrap();
        for (i, m) in report.members.iter().enumerate() {
            for k in keys {
                let what = format!("sweep member {i} {k} on {device:?}");
                Tol { rel: 1e-6, abs: 1e-7 }.check(&what, m.history.get(k).unwrap(), h.get(k).unwrap());
            }
        }
    }
}

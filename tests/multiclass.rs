//! Multi-class classification: the loss kernel's row path and the softmax row passes against
//! their CPU twins (fresh random inputs, NaN-poisoned outputs) and against f64; the categorical
//! losses, accuracies and softmax against Keras 3 (tests/golden/keras_multiclass.json, written by
//! tools/keras_golden_multiclass.py); training on the shipped digits; typed errors for bad input.

mod common;

use common::{devices, gpu, random_vec, rng, Tol, F32};
use rand::Rng;
use serde_json::Value;
use wgfit::testing::{Args, KernelHarness, LossArgs, SoftmaxArgs};
use wgfit::{data, Activation, ActivationLayer, Dense, Device, Error, Fit, Loss, Matrix, Sequential};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_multiclass.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// Runs one launch over `inputs` on `device`; returns every buffer afterwards.
fn run(device: &Device, inputs: &[Vec<f32>], args: Args) -> Vec<Vec<f32>> {
    let mut h = KernelHarness::new(device);
    let ids: Vec<_> = inputs.iter().map(|d| h.buffer(d).unwrap()).collect();
    h.run(&ids, args).unwrap();
    ids.iter().map(|&id| h.read(id).unwrap()).collect()
}

fn both(inputs: &[Vec<f32>], args: Args) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    (run(&gpu(), inputs, args), run(&Device::cpu(), inputs, args))
}

const CODES: [Loss; 4] = [
    Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 },
    Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.0 },
    Loss::SparseCategoricalCrossentropy { from_logits: false },
    Loss::SparseCategoricalCrossentropy { from_logits: true },
];

fn softmax64(z: &[f32]) -> Vec<f64> {
    let mx = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - mx).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// The row loss in f64 from its definition (Keras's formulas), for one row.
fn row_loss64(loss: Loss, p: &[f32], y: &[f32]) -> f64 {
    let n = p.len() as f64;
    let clip = |v: f64| v.clamp(1e-7, 1.0 - 1e-7);
    match loss {
        Loss::CategoricalCrossentropy { from_logits, label_smoothing: ls } => {
            let ls = ls as f64;
            let t: Vec<f64> = y.iter().map(|&v| v as f64 * (1.0 - ls) + ls / n).collect();
            let q: Vec<f64> = if from_logits {
                softmax64(p)
            } else {
                let s: f64 = p.iter().map(|&v| v as f64).sum();
                p.iter().map(|&v| clip(v as f64 / s)).collect()
            };
            -t.iter().zip(&q).map(|(t, q)| t * q.ln()).sum::<f64>()
        }
        Loss::SparseCategoricalCrossentropy { from_logits } => {
            let c = y[0] as usize;
            if from_logits {
                -softmax64(p)[c].ln()
            } else {
                let s: f64 = p.iter().map(|&v| clip(v as f64)).sum();
                s.ln() - clip(p[c] as f64).ln()
            }
        }
        _ => unreachable!(),
    }
}

/// The row path of the loss kernel, GPU against the CPU twin and the loss sum against f64, over
/// every categorical loss, fused softmax or not, with label smoothing, every metric combination
/// the targets allow, and row counts below, at and above the workgroup's 256.
#[test]
fn row_loss_kernel_matches_twin_and_f64() {
    let mut seed = 100;
    for (ci, &base) in CODES.iter().enumerate() {
        for (rows, n) in [(1usize, 2usize), (7, 3), (256, 10), (300, 7), (33, 64)] {
            for variant in 0..3 {
                seed += 1;
                let mut r = rng(seed);
                let loss = match base {
                    Loss::CategoricalCrossentropy { from_logits, .. } if variant == 2 => {
                        Loss::CategoricalCrossentropy { from_logits, label_smoothing: 0.1 }
                    }
                    l => l,
                };
                let logits = random_vec(&mut r, rows * n, -4.0, 4.0);
                // Probabilities for the losses that take them: softmax rows, a few clipped at 0.
                let pred: Vec<f32> = if loss.from_logits() {
                    logits.clone()
                } else {
                    let mut p: Vec<f32> =
                        logits.chunks(n).flat_map(|z| softmax64(z).into_iter().map(|v| v as f32)).collect();
                    if rows > 2 {
                        p[n + 1] = 0.0;
                    }
                    p
                };
                let labels: Vec<usize> = (0..rows).map(|_| r.random_range(0..n)).collect();
                let y: Vec<f32> = if loss.is_sparse() {
                    labels.iter().map(|&c| c as f32).collect()
                } else {
                    labels.iter().flat_map(|&c| (0..n).map(move |j| f32::from(u8::from(j == c)))).collect()
                };
                let metrics: u32 =
                    if loss.is_sparse() { [0, 0b1010000, 0b10000][variant] } else { [0b101111, 0b1000, 0][variant] };
                let fused_act = variant == 1 && !loss.from_logits();
                let p = LossArgs {
                    rows: rows as u32,
                    cols: n as u32,
                    loss,
                    output_activation: if fused_act { Activation::Softmax } else { Activation::Linear },
                    metrics,
                    write_gradient: true,
                    accumulate: true,
                    slot: 2,
                    weighted: false,
                    weighted_metrics: false,
                };
                let acc0 = random_vec(&mut r, 16, 0.0, 1.0);
                let inputs = [pred.clone(), y.clone(), vec![f32::NAN; rows * n], acc0.clone()];
                let (g, c) = both(&inputs, Args::Loss(p));
                let what = format!("loss {ci} {loss:?} rows {rows} n {n} metrics {metrics:b} fused {fused_act}");
                F32.check(&format!("{what} grad"), &g[2], &c[2]);
                F32.check(&format!("{what} sums"), &g[3], &c[3]);
                assert_eq!(&c[3][..2], &acc0[..2], "{what}: wrote before its slot");
                let nvals = 1 + metrics.count_ones() as usize;
                assert_eq!(&c[3][2 + nvals..], &acc0[2 + nvals..], "{what}: wrote past its values");
                let yw = if loss.is_sparse() { 1 } else { n };
                let want: f64 =
                    (0..rows).map(|i| row_loss64(loss, &pred[i * n..(i + 1) * n], &y[i * yw..(i + 1) * yw])).sum();
                Tol { rel: 2e-4, abs: 2e-4 }.check64(
                    &format!("{what} loss vs f64"),
                    &c[3][2..3],
                    &[acc0[2] as f64 + want],
                );
                // The gradient in f64: from logits (or fused) (softmax(z) * sum(t) - t) / rows.
                if loss.from_logits() || fused_act {
                    let ls = loss.label_smoothing() as f64;
                    let mut want = Vec::new();
                    for i in 0..rows {
                        let s = if loss.from_logits() {
                            softmax64(&pred[i * n..(i + 1) * n])
                        } else {
                            pred[i * n..(i + 1) * n].iter().map(|&v| v as f64).collect()
                        };
                        for (j, sj) in s.iter().enumerate() {
                            let t = f64::from(u8::from(j == labels[i])) * (1.0 - ls) + ls / n as f64;
                            want.push((sj - t) / rows as f64);
                        }
                    }
                    Tol { rel: 1e-4, abs: 1e-6 }.check64(&format!("{what} gradient vs f64"), &c[2], &want);
                }
            }
        }
    }
}

/// The softmax row passes against their twins and f64, in place, on shapes around the
/// workgroup size; large logits do not overflow.
#[test]
fn softmax_kernels_match_twin_and_f64() {
    for (i, (rows, n)) in [(1usize, 1usize), (3, 2), (256, 10), (257, 3), (1000, 17)].into_iter().enumerate() {
        let mut r = rng(700 + i as u64);
        let mut z = random_vec(&mut r, rows * n, -6.0, 6.0);
        z[0] = 90.0; // exp(90) overflows f32: the max must be subtracted first
        let a = SoftmaxArgs { rows: rows as u32, cols: n as u32 };
        let (g, c) = both(&[z.clone()], Args::SoftmaxForward(a));
        F32.check("softmax_forward", &g[0], &c[0]);
        let want: Vec<f64> = z.chunks(n).flat_map(softmax64).collect();
        F32.check64("softmax_forward vs f64", &c[0], &want);
        let up = random_vec(&mut r, rows * n, -1.0, 1.0);
        let (g, c) = both(&[up.clone(), c[0].clone()], Args::SoftmaxBackward(a));
        F32.check("softmax_backward", &g[0], &c[0]);
        let mut want = Vec::new();
        for (u, y) in up.chunks(n).zip(c[1].chunks(n)) {
            let dot: f64 = u.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum();
            want.extend(u.iter().zip(y).map(|(&a, &b)| b as f64 * (a as f64 - dot)));
        }
        F32.check64("softmax_backward vs f64", &c[0], &want);
    }
}

/// One batch's loss mean, metric means and gradient through the loss kernel.
fn keras_case(device: &Device, loss: Loss, metrics: u32, pred: &[f32], y: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
    let n = pred.len() / rows;
    let p = LossArgs {
        rows: rows as u32,
        cols: n as u32,
        loss,
        output_activation: Activation::Linear,
        metrics,
        write_gradient: true,
        accumulate: false,
        slot: 0,
        weighted: false,
        weighted_metrics: false,
    };
    let out = run(device, &[pred.to_vec(), y.to_vec(), vec![f32::NAN; pred.len()], vec![f32::NAN; 8]], Args::Loss(p));
    let count = 1 + metrics.count_ones() as usize;
    (out[3][..count].iter().map(|s| s / rows as f32).collect(), out[2].clone())
}

/// Each categorical loss (label smoothing, from_logits, Keras's clipping and row normalization)
/// and its gradient, and the accuracies, against Keras 3 on both devices.
#[test]
fn losses_gradients_and_accuracies_match_keras() {
    let g = golden();
    let rows = g["rows"].as_u64().unwrap() as usize;
    let tol = Tol { rel: 2e-5, abs: 1e-6 };
    let (probs, logits) = (floats(&g["probs"]), floats(&g["logits"]));
    let (onehot, labels) = (floats(&g["onehot"]), floats(&g["labels"]));
    let (onehot_l, labels_l) = (floats(&g["onehot_logits"]), floats(&g["labels_logits"]));
    let cases: [(&str, Loss, &[f32], &[f32]); 6] = [
        ("cce_ls0.0", Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }, &probs, &onehot),
        ("cce_ls0.1", Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.1 }, &probs, &onehot),
        (
            "cce_logits_ls0.0",
            Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.0 },
            &logits,
            &onehot_l,
        ),
        (
            "cce_logits_ls0.2",
            Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.2 },
            &logits,
            &onehot_l,
        ),
        ("scce", Loss::SparseCategoricalCrossentropy { from_logits: false }, &probs, &labels),
        ("scce_logits", Loss::SparseCategoricalCrossentropy { from_logits: true }, &logits, &labels_l),
    ];
    let m = &g["metrics"];
    let num = |k: &str| m[k].as_f64().unwrap() as f32;
    for device in devices() {
        for (name, loss, pred, y) in cases {
            let (sums, grad) = keras_case(&device, loss, 0, pred, y, rows);
            let k = &g["losses"][name];
            tol.check(&format!("{name} loss on {device:?}"), &sums, &[k["loss"].as_f64().unwrap() as f32]);
            Tol { rel: 1e-4, abs: 1e-6 }.check(&format!("{name} gradient on {device:?}"), &grad, &floats(&k["grad"]));
        }
        let cce = Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.0 };
        let (sums, _) = keras_case(&device, cce, 0b101000, &logits, &onehot_l, rows);
        tol.check(
            &format!("categorical and top-5 accuracy on {device:?}"),
            &sums[1..],
            &[num("categorical_accuracy"), num("top_k_categorical_accuracy")],
        );
        let scce = Loss::SparseCategoricalCrossentropy { from_logits: true };
        let (sums, _) = keras_case(&device, scce, 0b1010000, &logits, &labels_l, rows);
        tol.check(
            &format!("sparse categorical and top-5 accuracy on {device:?}"),
            &sums[1..],
            &[num("sparse_categorical_accuracy"), num("sparse_top_k_categorical_accuracy")],
        );
        // Softmax, forward and backward, as Keras's.
        let s = &g["softmax"];
        let a = SoftmaxArgs { rows: rows as u32, cols: (logits.len() / rows) as u32 };
        let y = run(&device, &[floats(&s["x"])], Args::SoftmaxForward(a)).remove(0);
        tol.check(&format!("softmax on {device:?}"), &y, &floats(&s["y"]));
        let dx = run(&device, &[floats(&s["upstream"]), y.clone()], Args::SoftmaxBackward(a)).remove(0);
        Tol { rel: 1e-4, abs: 1e-6 }.check(&format!("softmax gradient on {device:?}"), &dx, &floats(&s["dx"]));
        // The fused gradient on a softmax output is Keras's d CCE(softmax(z)) / dz.
        let p = LossArgs {
            rows: rows as u32,
            cols: a.cols,
            loss: Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 },
            output_activation: Activation::Softmax,
            metrics: 0,
            write_gradient: true,
            accumulate: false,
            slot: 0,
            weighted: false,
            weighted_metrics: false,
        };
        let out = run(&device, &[y, onehot_l.clone(), vec![f32::NAN; logits.len()], vec![f32::NAN; 8]], Args::Loss(p));
        let sc = &g["softmax_cce"];
        // Row 6 (a logit of 40, its target's probability below the clip): Keras on torch chains
        // through the clipped log and gets a zero gradient, stuck; the fused gradient is
        // TensorFlow's (p - y) / rows, which still learns. Every other row is Keras's number.
        let n = a.cols as usize;
        let mut want = floats(&sc["dz"]);
        let p6 = softmax64(&logits[6 * n..7 * n]);
        for j in 0..n {
            want[6 * n + j] = ((p6[j] - onehot_l[6 * n + j] as f64) / rows as f64) as f32;
        }
        assert!(floats(&sc["dz"])[6 * n..7 * n].iter().all(|&v| v == 0.0), "the golden row 6 is Keras's clipped zero");
        Tol { rel: 1e-4, abs: 1e-6 }.check(&format!("softmax + cce gradient on {device:?}"), &out[2], &want);
        Tol { rel: 1e-4, abs: 1e-5 }.check(
            &format!("softmax + cce loss on {device:?}"),
            &[out[3][0] / rows as f32],
            &[sc["loss"].as_f64().unwrap() as f32],
        );
    }
}

fn digits_model(device: &Device, seed: u64) -> Sequential {
    Sequential::new(
        device,
        vec![
            Dense::new(64).activation("relu").input_shape(64),
            Dense::new(64).activation("relu"),
            Dense::new(10).activation("softmax"),
        ],
    )
    .seed(seed)
}

/// The digits quality bar, shortened: 64 relu -> 64 relu -> 10 softmax with sparse categorical
/// cross-entropy learns past 95% validation accuracy in 10 epochs on both devices, the two
/// devices agree, predictions are probability rows, and predict_classes is their argmax.
#[test]
fn digits_learn_on_both_devices() {
    let (xt, yt, xv, yv) = data::shipped::digits().unwrap();
    let mut finals = Vec::new();
    for device in devices() {
        let mut m = digits_model(&device, 0);
        m.compile("adam", "sparse_categorical_crossentropy", &["accuracy", "sparse_top_k_categorical_accuracy"])
            .unwrap();
        let h =
            m.fit(&xt, &yt, Fit::new().validation_data(&xv, &yv).batch_size(32).epochs(10).seed(0).verbose(0)).unwrap();
        assert_eq!(
            h.keys().collect::<Vec<_>>(),
            [
                "loss",
                "accuracy",
                "sparse_top_k_categorical_accuracy",
                "val_loss",
                "val_accuracy",
                "val_sparse_top_k_categorical_accuracy"
            ]
        );
        let acc = *h["val_accuracy"].last().unwrap();
        assert!(acc > 0.95, "val accuracy {acc} on {device:?}");
        assert!(h["loss"][9] < h["loss"][0] * 0.3, "{:?}", &h["loss"]);
        assert!(*h["val_sparse_top_k_categorical_accuracy"].last().unwrap() >= acc);
        let p = m.predict(&xv).unwrap();
        assert_eq!(p.cols(), 10);
        for r in 0..p.rows() {
            let row = p.row(r).unwrap();
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5 && row.iter().all(|v| *v >= 0.0));
        }
        let classes = m.predict_classes(&xv).unwrap();
        let hits = (0..xv.rows()).filter(|&r| classes.data()[r] == yv.data()[r]).count();
        let eval = m.evaluate(&xv, &yv).unwrap();
        let eval_acc = eval.iter().find(|(k, _)| k == "accuracy").unwrap().1;
        assert!((hits as f32 / xv.rows() as f32 - eval_acc).abs() < 1e-6, "predict_classes vs accuracy");
        finals.push(h["val_loss"].to_vec());
    }
    Tol { rel: 1e-3, abs: 1e-4 }.check("val_loss, GPU vs CPU", &finals[0], &finals[1]);
}

/// The same model on one-hot targets with categorical cross-entropy (and label smoothing), and
/// with a softmax Activation layer after a linear Dense: the loss sequences match the sparse
/// form's where they must.
#[test]
fn categorical_forms_agree() {
    let (xt, yt, _, _) = data::shipped::digits().unwrap();
    let (xt, yt) = (
        xt.select_rows(&(0..200).collect::<Vec<_>>()).unwrap(),
        yt.select_rows(&(0..200).collect::<Vec<_>>()).unwrap(),
    );
    let onehot = Matrix::new(
        200,
        10,
        yt.data().iter().flat_map(|&c| (0..10).map(move |j| f32::from(u8::from(j == c as usize)))).collect(),
    )
    .unwrap();
    let device = Device::cpu();
    let fit = || Fit::new().batch_size(32).epochs(3).seed(1).verbose(0);
    let mut sparse = digits_model(&device, 1);
    sparse.compile("adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let hs = sparse.fit(&xt, &yt, fit()).unwrap();
    let mut cat = digits_model(&device, 1);
    cat.compile("adam", "categorical_crossentropy", &["accuracy", "top_k_categorical_accuracy"]).unwrap();
    let hc = cat.fit(&xt, &onehot, fit()).unwrap();
    Tol { rel: 1e-4, abs: 1e-5 }.check("cce vs scce loss", &hc["loss"], &hs["loss"]);
    assert_eq!(hc["accuracy"], hs["accuracy"]);
    // A linear Dense and a softmax Activation layer: the same model, the same numbers.
    let mut layered = Sequential::new(
        &device,
        vec![
            Dense::new(64).activation("relu").input_shape(64),
            Dense::new(64).activation("relu"),
            Dense::new(10),
            ActivationLayer::new("softmax"),
        ],
    )
    .seed(1);
    layered.compile("adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let hl = layered.fit(&xt, &yt, fit()).unwrap();
    Tol { rel: 1e-4, abs: 1e-5 }.check("Activation(softmax) vs Dense(softmax)", &hl["loss"], &hs["loss"]);
    // Logits with from_logits: the same loss too.
    let mut logits = Sequential::new(
        &device,
        vec![Dense::new(64).activation("relu").input_shape(64), Dense::new(64).activation("relu"), Dense::new(10)],
    )
    .seed(1);
    logits.compile("adam", Loss::SparseCategoricalCrossentropy { from_logits: true }, &["accuracy"]).unwrap();
    let hg = logits.fit(&xt, &yt, fit()).unwrap();
    Tol { rel: 1e-4, abs: 1e-5 }.check("from_logits vs softmax", &hg["loss"], &hs["loss"]);
    let smooth = Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.1 };
    let mut ls = digits_model(&device, 1);
    ls.compile("adam", smooth, &[]).unwrap();
    let hl = ls.fit(&xt, &onehot, fit()).unwrap();
    assert!(hl["loss"][0] > hc["loss"][0] && hl["loss"].iter().all(|v| v.is_finite()));
}

fn expect_err(r: wgfit::Result<impl std::fmt::Debug>, has: &[&str]) -> Error {
    let e = r.expect_err("should fail");
    let msg = e.to_string();
    for h in has {
        assert!(msg.contains(h), "{msg:?} lacks {h:?}");
    }
    e
}

/// Bad multi-class input is a typed error that says what is wrong, never a panic.
#[test]
fn bad_multiclass_input_is_a_typed_error() {
    let device = Device::cpu();
    let x = Matrix::new(4, 3, vec![0.5; 12]).unwrap();
    let model = |units: usize, act: &str| {
        Sequential::new(
            &device,
            vec![Dense::new(8).activation("relu").input_shape(3), Dense::new(units).activation(act)],
        )
    };
    let fit = || Fit::new().epochs(1).verbose(0);
    // Sparse labels: not integers, out of range, negative.
    for (labels, what) in [([0.0, 1.5, 2.0, 0.0], "1.5"), ([0.0, 3.0, 2.0, 0.0], "3"), ([0.0, -1.0, 2.0, 0.0], "-1")] {
        let mut m = model(3, "softmax");
        m.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
        let y = Matrix::column(labels.to_vec());
        let e = expect_err(m.fit(&x, &y, fit()), &["row 1", what, "class indices 0..2"]);
        assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    }
    // Sparse labels given as one-hot rows, one-hot rows given to the sparse loss and back.
    let onehot = Matrix::new(4, 3, vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 0., 0.]).unwrap();
    let mut m = model(3, "softmax");
    m.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    expect_err(m.fit(&x, &onehot, fit()), &["1 columns", "class indices", "3 columns"]);
    let mut m = model(3, "softmax");
    m.compile("adam", "categorical_crossentropy", &[]).unwrap();
    expect_err(m.fit(&x, &Matrix::column(vec![0., 1., 2., 0.]), fit()), &["3 columns", "1 columns"]);
    // One-hot rows that are not distributions.
    let bad = Matrix::new(4, 3, vec![1., 0., 0., 0., 1., 1., 0., 0., 1., 1., 0., 0.]).unwrap();
    expect_err(m.fit(&x, &bad, fit()), &["row 1", "sum of 2", "sparse_categorical_crossentropy"]);
    let neg = Matrix::new(4, 3, vec![1., 0., 0., -0.5, 1., 0.5, 0., 0., 1., 1., 0., 0.]).unwrap();
    expect_err(m.fit(&x, &neg, fit()), &["row 1", "non-negative"]);
    // A softmax over one unit with categorical cross-entropy.
    let mut m = model(1, "softmax");
    m.compile("adam", "categorical_crossentropy", &[]).unwrap();
    let e = expect_err(m.fit(&x, &Matrix::column(vec![1.0; 4]), fit()), &["at least 2", "always 1"]);
    assert!(matches!(e, Error::Model(_)), "{e:?}");
    // Metrics that read the other target shape; label smoothing out of range.
    let mut m = model(3, "softmax");
    expect_err(m.compile("adam", "sparse_categorical_crossentropy", &["mse"]), &["mse", "one column of class indices"]);
    expect_err(m.compile("adam", "categorical_crossentropy", &["sparse_categorical_accuracy"]), &["one column"]);
    let e = expect_err(
        m.compile("adam", Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 1.5 }, &[]),
        &["label_smoothing"],
    );
    assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    expect_err(m.compile("adam", "categorical", &[]), &["categorical_crossentropy", "sparse_categorical_crossentropy"]);
}

/// The row passes and the loss kernel's row path with several members in one launch: each
/// member's blocks come out as that member run alone (a kernel that ignores its member offset
/// reads another member's rows).
#[test]
fn row_kernels_run_each_member_independently() {
    let (rows, n, k) = (37usize, 5usize, 3usize);
    let mut r = rng(91);
    let cases: Vec<(Args, Vec<Vec<Vec<f32>>>)> = vec![
        (
            Args::SoftmaxForward(SoftmaxArgs { rows: rows as u32, cols: n as u32 }),
            (0..k).map(|_| vec![random_vec(&mut r, rows * n, -3.0, 3.0)]).collect(),
        ),
        (
            Args::SoftmaxBackward(SoftmaxArgs { rows: rows as u32, cols: n as u32 }),
            (0..k)
                .map(|_| vec![random_vec(&mut r, rows * n, -1.0, 1.0), random_vec(&mut r, rows * n, 0.0, 1.0)])
                .collect(),
        ),
        (
            Args::Loss(LossArgs {
                rows: rows as u32,
                cols: n as u32,
                loss: Loss::SparseCategoricalCrossentropy { from_logits: true },
                output_activation: Activation::Linear,
                metrics: 0b1010000,
                write_gradient: true,
                accumulate: true,
                slot: 8,
                weighted: false,
                weighted_metrics: false,
            }),
            (0..k)
                .map(|_| {
                    let labels: Vec<f32> = (0..rows).map(|_| r.random_range(0..n) as f32).collect();
                    vec![
                        random_vec(&mut r, rows * n, -3.0, 3.0),
                        labels,
                        vec![f32::NAN; rows * n],
                        random_vec(&mut r, 16, 0.0, 1.0),
                    ]
                })
                .collect(),
        ),
    ];
    for (args, per_member) in cases {
        let together = |device: &Device| {
            let mut h = KernelHarness::with_members(device, k);
            let ids: Vec<_> = (0..per_member[0].len())
                .map(|b| h.buffer(&per_member.iter().flat_map(|m| m[b].clone()).collect::<Vec<f32>>()).unwrap())
                .collect();
            h.run(&ids, args).unwrap();
            ids.iter().map(|&id| h.read(id).unwrap()).collect::<Vec<_>>()
        };
        let (g, c) = (together(&gpu()), together(&Device::cpu()));
        for (m, inputs) in per_member.iter().enumerate() {
            let alone = run(&Device::cpu(), inputs, args);
            for b in 0..inputs.len() {
                let len = inputs[b].len();
                let block = |all: &Vec<Vec<f32>>| all[b][m * len..(m + 1) * len].to_vec();
                assert_eq!(block(&c), alone[b], "{args:?}: member {m}, buffer {b} on the CPU");
                F32.check(&format!("{:?} member {m} buffer {b} GPU", args.kernel()), &block(&g), &alone[b]);
            }
        }
    }
}

/// A multi-class model saves and loads with its loss (label smoothing included) and predicts the
/// same numbers after loading.
#[test]
fn multiclass_model_round_trips_through_a_file() {
    let (xt, yt, _, _) = data::shipped::digits().unwrap();
    let onehot = Matrix::new(
        xt.rows(),
        10,
        yt.data().iter().flat_map(|&c| (0..10).map(move |j| f32::from(u8::from(j == c as usize)))).collect(),
    )
    .unwrap();
    let device = Device::cpu();
    let mut m = digits_model(&device, 4);
    let loss = Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.05 };
    m.compile("adam", loss, &["accuracy", "top_k_categorical_accuracy"]).unwrap();
    m.fit(&xt, &onehot, Fit::new().epochs(1).verbose(0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    wgfit::io::save_model(&path, &mut m, None).unwrap();
    let mut back = wgfit::io::load_model(&path, &device).unwrap().model;
    assert_eq!(back.loss(), Some(loss));
    assert_eq!(back.predict(&xt).unwrap(), m.predict(&xt).unwrap());
    assert_eq!(back.evaluate(&xt, &onehot).unwrap(), m.evaluate(&xt, &onehot).unwrap());
}

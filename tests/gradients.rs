//! Finite-difference gradient checks: the analytic gradients of every layer type, activation and
//! loss (computed by the devices' backward kernels) against central differences of an
//! independent f64 forward pass written here from the layers' definitions.

mod common;

use common::{devices, random_vec, rng};
use wgfit::testing::random_unit;
use wgfit::{ActivationLayer, BatchNormalization, Dense, Dropout, Layer, LayerKind, Loss, Matrix, Sequential};

/// The model's loss in f64 for parameters `p`, in training mode (batch statistics, dropout step 0).
fn loss64(layers: &[Layer], p: &[f64], x: &Matrix, y: &Matrix, loss: &Loss, seed: u32) -> f64 {
    let rows = x.rows();
    let mut a: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();
    let mut width = x.cols();
    let mut off = 0;
    let act = common::act64;
    for (l, layer) in layers.iter().enumerate() {
        match layer.kind().clone() {
            LayerKind::Dense(c) => {
                let (units, activation, use_bias) = (c.units(), c.activation(), c.use_bias());
                let mut out = vec![0.0; rows * units];
                for r in 0..rows {
                    for j in 0..units {
                        let mut s = if use_bias { p[off + width * units + j] } else { 0.0 };
                        for k in 0..width {
                            s += a[r * width + k] * p[off + k * units + j];
                        }
                        out[r * units + j] = act(s, activation);
                    }
                }
                off += width * units + if use_bias { units } else { 0 };
                a = out;
                width = units;
                softmax_rows(&mut a, width, activation);
            }
            LayerKind::Activation(c) => {
                a.iter_mut().for_each(|v| *v = act(*v, c.activation()));
                softmax_rows(&mut a, width, c.activation());
            }
            LayerKind::Dropout(c) => {
                let rate = c.rate();
                for (i, v) in a.iter_mut().enumerate() {
                    let keep = random_unit(seed, 0, l as u32, i as u32) >= rate;
                    *v = if keep { *v / (1.0 - rate as f64) } else { 0.0 };
                }
            }
            LayerKind::BatchNormalization(c) => {
                let (epsilon, center, scale) = (c.epsilon(), c.center(), c.scale());
                let (g_off, b_off) = (off, off + if scale { width } else { 0 });
                for j in 0..width {
                    let mean = (0..rows).map(|r| a[r * width + j]).sum::<f64>() / rows as f64;
                    let var = (0..rows).map(|r| (a[r * width + j] - mean).powi(2)).sum::<f64>() / rows as f64;
                    let inv = 1.0 / (var + epsilon as f64).sqrt();
                    let g = if scale { p[g_off + j] } else { 1.0 };
                    let b = if center { p[b_off + j] } else { 0.0 };
                    for r in 0..rows {
                        a[r * width + j] = g * (a[r * width + j] - mean) * inv + b;
                    }
                }
                off += width * (usize::from(scale) + usize::from(center));
            }
            other => panic!("no reference for {other:?}"),
        }
    }
    if loss.is_row_loss() {
        let yw = y.cols();
        let rows_loss: f64 =
            (0..rows).map(|r| row_loss64(loss, &a[r * width..(r + 1) * width], &y.data()[r * yw..(r + 1) * yw])).sum();
        return rows_loss / rows as f64;
    }
    let mut total = 0.0;
    for (i, &t) in y.data().iter().enumerate() {
        let (pv, t) = (a[i], t as f64);
        total += match loss {
            Loss::MeanAbsoluteError => (pv - t).abs(),
            Loss::MeanSquaredError => (pv - t).powi(2),
            Loss::BinaryCrossentropy { from_logits: false } => {
                let pc = pv.clamp(1e-7, 1.0 - 1e-7);
                -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln())
            }
            _ => pv.max(0.0) - pv * t + (1.0 + (-pv.abs()).exp()).ln(),
        };
    }
    total / y.data().len() as f64
}

/// Softmax over each row of `a` (`width` wide) when `activation` is softmax (act64 is the
/// identity for it: it is not elementwise).
fn softmax_rows(a: &mut [f64], width: usize, activation: wgfit::Activation) {
    if activation != wgfit::Activation::Softmax {
        return;
    }
    for row in a.chunks_mut(width) {
        let mx = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let s: f64 = row.iter().map(|v| (v - mx).exp()).sum();
        row.iter_mut().for_each(|v| *v = (*v - mx).exp() / s);
    }
}

/// One row's categorical loss in f64, Keras's formulas (TensorFlow's for the sparse one).
fn row_loss64(loss: &Loss, p: &[f64], y: &[f32]) -> f64 {
    let clip = |v: f64| v.clamp(1e-7, 1.0 - 1e-7);
    let lse = |z: &[f64]| {
        let mx = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        mx + z.iter().map(|v| (v - mx).exp()).sum::<f64>().ln()
    };
    let n = p.len() as f64;
    match *loss {
        Loss::CategoricalCrossentropy { from_logits, label_smoothing } => {
            let ls = label_smoothing as f64;
            let s: f64 = p.iter().sum();
            p.iter()
                .zip(y)
                .map(|(&v, &t)| {
                    let t = t as f64 * (1.0 - ls) + ls / n;
                    if from_logits {
                        t * (lse(p) - v)
                    } else {
                        -t * clip(v / s).ln()
                    }
                })
                .sum()
        }
        Loss::SparseCategoricalCrossentropy { from_logits: true } => lse(p) - p[y[0] as usize],
        Loss::SparseCategoricalCrossentropy { from_logits: false } => {
            p.iter().map(|&v| clip(v)).sum::<f64>().ln() - clip(p[y[0] as usize]).ln()
        }
        _ => unreachable!("not a row loss"),
    }
}

fn check(name: &str, layers: Vec<Layer>, loss: Loss, inputs: usize, outputs: usize, rows: usize) {
    let mut r = rng(name.len() as u64 * 7919);
    let x = Matrix::new(rows, inputs, random_vec(&mut r, rows * inputs, -1.0, 1.0)).unwrap();
    let y_data: Vec<f32> = match loss {
        Loss::BinaryCrossentropy { .. } => (0..rows * outputs).map(|i| (i % 2) as f32).collect(),
        // Class indices of a 3-class output.
        Loss::SparseCategoricalCrossentropy { .. } => (0..rows).map(|r| ((r * 7 + 1) % 3) as f32).collect(),
        Loss::CategoricalCrossentropy { .. } => {
            (0..rows).flat_map(|r| (0..outputs).map(move |j| f32::from(u8::from(j == (r * 5 + 2) % outputs)))).collect()
        }
        _ => random_vec(&mut r, rows * outputs, -1.0, 1.0),
    };
    let y = Matrix::new(rows, outputs, y_data).unwrap();
    for device in devices() {
        let mut model = Sequential::new(&device, layers.clone()).seed(3);
        model.compile("sgd", loss, &[]).unwrap();
        let analytic = model.loss_gradients(&x, &y, 11).unwrap();
        let (params, _) = model.get_weights().unwrap();
        let p64: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        let h = 1e-6;
        for i in 0..p64.len() {
            let (mut up, mut down) = (p64.clone(), p64.clone());
            up[i] += h;
            down[i] -= h;
            let numeric =
                (loss64(&layers, &up, &x, &y, &loss, 11) - loss64(&layers, &down, &x, &y, &loss, 11)) / (2.0 * h);
            let got = analytic[i] as f64;
            let err = (got - numeric).abs();
            assert!(
                got.is_finite() && err <= 2e-3 * numeric.abs() + 2e-4,
                "{name} on {device:?}: d loss / d param[{i}] = {got}, finite difference {numeric}"
            );
        }
    }
}

#[test]
fn dense_activations_and_regression_losses() {
    check(
        "dense relu mse",
        vec![Dense::new(5).activation("relu").input_shape(3), Dense::new(2)],
        Loss::MeanSquaredError,
        3,
        2,
        7,
    );
    check(
        "dense sigmoid mae",
        vec![Dense::new(4).activation("sigmoid").input_shape(3), Dense::new(1)],
        Loss::MeanAbsoluteError,
        3,
        1,
        9,
    );
    // The other activations, as hidden layers and as a standalone layer: backward uses their
    // derivative written from the output.
    for (name, act) in [
        ("tanh", "tanh"),
        ("elu", "elu"),
        ("selu", "selu"),
        ("leaky_relu", "leaky_relu"),
        ("softplus", "softplus"),
        ("silu", "silu"),
        ("swish", "swish"),
        ("gelu", "gelu"),
        ("gelu_approximate", "gelu_approximate"),
    ] {
        check(
            &format!("dense {name} mse"),
            vec![Dense::new(5).activation(act).input_shape(3), Dense::new(4), ActivationLayer::new(act), Dense::new(2)],
            Loss::MeanSquaredError,
            3,
            2,
            7,
        );
    }
    check(
        "no bias",
        vec![Dense::new(3).use_bias(false).input_shape(2), Dense::new(1).activation("relu")],
        Loss::MeanSquaredError,
        2,
        1,
        5,
    );
}

#[test]
fn binary_crossentropy_with_sigmoid_and_from_logits() {
    check(
        "bce sigmoid",
        vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1).activation("sigmoid")],
        Loss::BinaryCrossentropy { from_logits: false },
        3,
        1,
        8,
    );
    check(
        "bce logits",
        vec![Dense::new(4).activation("relu").input_shape(3), Dense::new(1)],
        Loss::BinaryCrossentropy { from_logits: true },
        3,
        1,
        8,
    );
}

#[test]
fn activation_layer_dropout_and_batchnorm() {
    check(
        "dense bn activation",
        vec![Dense::new(4).input_shape(3), BatchNormalization::new(), ActivationLayer::new("relu"), Dense::new(1)],
        Loss::MeanSquaredError,
        3,
        1,
        6,
    );
    check(
        "bn first, dropout",
        vec![
            BatchNormalization::new().input_shape(3),
            Dense::new(6).activation("relu"),
            Dropout::new(0.4),
            Dense::new(1),
        ],
        Loss::MeanSquaredError,
        3,
        1,
        5,
    );
    check(
        "bn without scale, sigmoid activation layer",
        vec![
            Dense::new(3).activation("sigmoid").input_shape(2),
            BatchNormalization::new().center_scale(true, false),
            ActivationLayer::new("sigmoid"),
            Dense::new(1),
        ],
        Loss::MeanAbsoluteError,
        2,
        1,
        4,
    );
}

/// Softmax with each cross-entropy: the fused gradient (p - y) / rows on a Dense softmax and on a
/// softmax Activation layer, from logits, with label smoothing; the unfused paths (softmax with
/// mse, a softmax hidden layer, the cross-entropies' clipped and normalized forms on sigmoid outputs).
#[test]
fn softmax_and_the_cross_entropies() {
    let cce = Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 };
    let scce = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let hidden = || Dense::new(4).activation("tanh").input_shape(3);
    let cases: Vec<(&str, Vec<Layer>, Loss, usize)> = vec![
        ("softmax cce", vec![hidden(), Dense::new(3).activation("softmax")], cce, 3),
        (
            "softmax cce smoothed",
            vec![hidden(), Dense::new(3).activation("softmax")],
            Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.2 },
            3,
        ),
        ("softmax scce", vec![hidden(), Dense::new(3).activation("softmax")], scce, 1),
        ("activation softmax scce", vec![hidden(), Dense::new(3), ActivationLayer::new("softmax")], scce, 1),
        (
            "logits cce smoothed",
            vec![hidden(), Dense::new(3)],
            Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.1 },
            3,
        ),
        ("logits scce", vec![hidden(), Dense::new(3)], Loss::SparseCategoricalCrossentropy { from_logits: true }, 1),
        ("softmax mse", vec![hidden(), Dense::new(3).activation("softmax")], Loss::MeanSquaredError, 3),
        (
            "hidden softmax",
            vec![Dense::new(4).activation("softmax").input_shape(3), Dense::new(2)],
            Loss::MeanSquaredError,
            2,
        ),
        ("sigmoid cce", vec![hidden(), Dense::new(3).activation("sigmoid")], cce, 3),
        ("sigmoid scce", vec![hidden(), Dense::new(3).activation("sigmoid")], scce, 1),
    ];
    for (name, layers, loss, outputs) in cases {
        check(name, layers, loss, 3, outputs, 6);
    }
}

/// silu and gelu differentiate from the pre-activation the layer keeps: as the output layer (the
/// loss's gradient, then a separate derivative launch), below Dropout and BatchNormalization
/// (which read the Dense layer's pre-activation buffer), and as a first standalone layer (whose
/// pre-activation is the input batch).
#[test]
fn preactivation_activations_everywhere() {
    for act in ["silu", "gelu", "gelu_approximate"] {
        check(
            &format!("{act} output"),
            vec![Dense::new(4).activation("tanh").input_shape(3), Dense::new(2).activation(act)],
            Loss::MeanSquaredError,
            3,
            2,
            6,
        );
        check(
            &format!("{act} below dropout and batchnorm"),
            vec![
                Dense::new(5).activation(act).input_shape(3),
                Dropout::new(0.3),
                Dense::new(4).activation(act),
                BatchNormalization::new(),
                Dense::new(1),
            ],
            Loss::MeanAbsoluteError,
            3,
            1,
            7,
        );
        check(
            &format!("{act} standalone layers"),
            vec![
                ActivationLayer::new(act).input_shape(3),
                Dense::new(4),
                ActivationLayer::new(act),
                ActivationLayer::new("softplus"),
                Dense::new(1),
                ActivationLayer::new(act),
            ],
            Loss::MeanSquaredError,
            3,
            1,
            5,
        );
    }
}

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
            }
            LayerKind::Activation(c) => a.iter_mut().for_each(|v| *v = act(*v, c.activation())),
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

fn check(name: &str, layers: Vec<Layer>, loss: Loss, inputs: usize, outputs: usize, rows: usize) {
    let mut r = rng(name.len() as u64 * 7919);
    let x = Matrix::new(rows, inputs, random_vec(&mut r, rows * inputs, -1.0, 1.0)).unwrap();
    let y_data: Vec<f32> = match loss {
        Loss::BinaryCrossentropy { .. } => (0..rows * outputs).map(|i| (i % 2) as f32).collect(),
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

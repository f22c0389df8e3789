//! Shared test helpers: devices, tolerances, random data.
#![allow(dead_code)]

pub mod cli;

use rand::{Rng, SeedableRng};
use wgfit::{BatchNormalization, Dense, Device, Dropout, Sequential};

/// The GPU device. Tests never skip silently: with no adapter they fail and say how to get one.
pub fn gpu() -> Device {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    match Device::gpu() {
        Ok(d) => d,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and none was found ({e}). On Debian/Ubuntu run \
             `sudo apt-get install -y mesa-vulkan-drivers` (software Vulkan), or run scripts/test which does it."
        ),
    }
}

/// Both devices, GPU first.
pub fn devices() -> Vec<Device> {
    vec![gpu(), Device::cpu()]
}

/// A relative + absolute tolerance; NaN never passes.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub rel: f64,
    pub abs: f64,
}

pub const F32: Tol = Tol { rel: 1e-4, abs: 1e-6 };

impl Tol {
    pub fn check(self, what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        let mut worst = (0.0f64, 0usize);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let (g, w) = (g as f64, w as f64);
            assert!(g.is_finite() && w.is_finite(), "{what}[{i}]: non-finite value got {g} want {w}");
            let err = (g - w).abs();
            let bound = self.abs + self.rel * w.abs().max(g.abs());
            if err / bound > worst.0 {
                worst = (err / bound, i);
            }
            assert!(err <= bound, "{what}[{i}]: got {g}, want {w} (error {err:e} > {bound:e})");
        }
    }

    pub fn check64(self, what: &str, got: &[f32], want: &[f64]) {
        let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        self.check(what, got, &want32);
    }
}

pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

pub fn random_vec(rng: &mut impl Rng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// The course's concrete model: 8 -> 512 x 3 relu -> 1 (tests/fit.rs, tests/fit_bits.rs).
pub fn concrete_model(device: &Device) -> Sequential {
    Sequential::new(
        device,
        vec![
            Dense::new(512).activation("relu").input_shape(8),
            Dense::new(512).activation("relu"),
            Dense::new(512).activation("relu"),
            Dense::new(1),
        ],
    )
}

/// The course's ionosphere classifier: 33 -> 4 relu -> 4 relu -> 1 sigmoid.
pub fn ionosphere_model(device: &Device) -> Sequential {
    Sequential::new(
        device,
        vec![
            Dense::new(4).activation("relu").input_shape(33),
            Dense::new(4).activation("relu"),
            Dense::new(1).activation("sigmoid"),
        ],
    )
}

/// Two Dense(64, relu) -> BatchNormalization -> Dropout(0.3) blocks, then Dense(1).
pub fn dropout_batchnorm_model(device: &Device, width: usize) -> Sequential {
    Sequential::new(
        device,
        vec![
            Dense::new(64).activation("relu").input_shape(width),
            BatchNormalization::new(),
            Dropout::new(0.3),
            Dense::new(64).activation("relu"),
            BatchNormalization::new(),
            Dropout::new(0.3),
            Dense::new(1),
        ],
    )
}

/// A small regression model with Dropout and BatchNormalization, compiled (adam, mse, mae): for
/// tests that data fed another way (streamed, from a file) trains bit for bit alike, since its
/// random stream and batch statistics must not change.
pub fn small_dropout_batchnorm_model(device: &Device, width: usize) -> Sequential {
    let mut m = Sequential::new(
        device,
        vec![
            Dense::new(16).activation("relu").input_shape(width),
            BatchNormalization::new(),
            Dropout::new(0.25),
            Dense::new(1),
        ],
    )
    .seed(11);
    m.compile("adam", "mse", &["mae"]).unwrap();
    m
}

/// An activation in f64, from its definition (Keras's constants), independent of both devices.
pub fn act64(v: f64, a: wgfit::Activation) -> f64 {
    use wgfit::Activation as A;
    match a {
        A::Relu => v.max(0.0),
        A::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        A::Tanh => v.tanh(),
        A::Elu if v > 0.0 => v,
        A::Elu => v.exp_m1(),
        A::Selu if v > 0.0 => SELU_SCALE * v,
        A::Selu => SELU_SCALE * SELU_ALPHA * v.exp_m1(),
        A::LeakyRelu if v >= 0.0 => v,
        A::LeakyRelu => 0.2 * v,
        A::Softplus => v.max(0.0) + (-v.abs()).exp().ln_1p(),
        A::Silu => v / (1.0 + (-v).exp()),
        A::Gelu => 0.5 * v * (1.0 + erf64(v / std::f64::consts::SQRT_2)),
        A::GeluApproximate => 0.5 * v * (1.0 + (GELU_K * (v + 0.044715 * v.powi(3))).tanh()),
        _ => v,
    }
}

/// √(2/π).
const GELU_K: f64 = 0.7978845608028654;

/// erf in f64, independent of the crate's: its Maclaurin series below 2 (terms summed until they
/// vanish), erfc's continued fraction above (relative error of erfc about 1e-15).
pub fn erf64(x: f64) -> f64 {
    let t = x.abs();
    let r = if t == 0.0 {
        0.0
    } else if t < 2.0 {
        let (mut term, mut sum, mut n) = (t, t, 0.0f64);
        for _ in 0..200 {
            n += 1.0;
            term *= -t * t / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc's continued fraction, x + (1/2)/(x + 1/(x + (3/2)/(x + ...))), evaluated bottom-up.
        let mut f = t;
        for k in (1..=80).rev() {
            f = t + (k as f64 / 2.0) / f;
        }
        1.0 - (-t * t).exp() / std::f64::consts::PI.sqrt() / f
    };
    r.copysign(x)
}

const SELU_SCALE: f64 = 1.0507009873554805;
const SELU_ALPHA: f64 = 1.6732632423543772;

/// Its derivative in f64, written from the output y (TensorFlow's values at 0); for the
/// activations that need it (`Activation::needs_preactivation`: silu, gelu) `y` is the input x.
pub fn dact64_from_output(y: f64, a: wgfit::Activation) -> f64 {
    use wgfit::Activation as A;
    match a {
        A::Relu => f64::from(u8::from(y > 0.0)),
        A::Sigmoid => y * (1.0 - y),
        A::Tanh => 1.0 - y * y,
        A::Elu if y < 0.0 => y + 1.0,
        A::Selu if y < 0.0 => y + SELU_SCALE * SELU_ALPHA,
        A::Selu => SELU_SCALE,
        A::LeakyRelu if y > 0.0 => 1.0,
        A::LeakyRelu => 0.2,
        A::Softplus => -(-y).exp_m1(),
        A::Silu => {
            let s = 1.0 / (1.0 + (-y).exp());
            s + y * s * (1.0 - s)
        }
        A::Gelu => {
            0.5 * (1.0 + erf64(y / std::f64::consts::SQRT_2))
                + y * (-0.5 * y * y).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        A::GeluApproximate => {
            let t = (GELU_K * (y + 0.044715 * y.powi(3))).tanh();
            0.5 * (1.0 + t) + 0.5 * y * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * 0.044715 * y * y)
        }
        _ => 1.0,
    }
}

/// Concrete (shipped) with three columns more: a text column `grade` from the age (one category
/// with a leading space, kept as written), a text class `strength` from the compressive strength,
/// and a weight column `w` (0.5, 1.5, 2.5 in turn): categorical features, class labels and sample
/// weights from a file the tests may rely on.
pub fn concrete_with_text(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(cli::shipped("concrete.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if i == 0 {
            out += &format!("{line},grade,strength,w\n");
            continue;
        }
        let age: f32 = cells[7].parse().unwrap();
        let strength: f32 = cells[8].parse().unwrap();
        let grade = match age {
            a if a <= 7.0 => "young",
            a if a <= 28.0 => " mid",
            _ => "old",
        };
        let class = match strength {
            s if s < 25.0 => "low",
            s if s < 45.0 => "medium",
            _ => "high",
        };
        out += &format!("{line},{grade},{class},{}\n", 0.5 + (i % 3) as f32);
    }
    let path = dir.join("concrete_text.csv");
    std::fs::write(&path, out).unwrap();
    path
}

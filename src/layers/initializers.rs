//! Weight initializers by Keras's names, with Keras's formulas (VarianceScaling): drawn on the
//! host from the model's seed when a plan is built.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};

/// How a Dense layer's kernel or bias starts (Keras's `kernel_initializer` / `bias_initializer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Initializer {
    /// Uniform in ±sqrt(6 / (fan_in + fan_out)): Keras's default kernel initializer.
    #[default]
    GlorotUniform,
    /// Truncated normal, stddev sqrt(2 / (fan_in + fan_out)) / 0.8796.
    GlorotNormal,
    /// Uniform in ±sqrt(6 / fan_in).
    HeUniform,
    /// Truncated normal, stddev sqrt(2 / fan_in) / 0.8796.
    HeNormal,
    /// Uniform in ±sqrt(3 / fan_in).
    LecunUniform,
    /// Truncated normal, stddev sqrt(1 / fan_in) / 0.8796.
    LecunNormal,
    /// All zeros: Keras's default bias initializer.
    Zeros,
    /// All ones.
    Ones,
    /// Normal, mean 0, stddev 0.05 (Keras's defaults).
    RandomNormal,
    /// Uniform in [-0.05, 0.05) (Keras's defaults).
    RandomUniform,
}

/// Keras's VarianceScaling divides a truncated normal's stddev by this: the stddev of a standard
/// normal truncated to ±2.
const TRUNCATED_STDDEV: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// The names `Initializer::parse` accepts, for messages.
    pub const NAMES: &'static str = "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, \
                                     lecun_normal, zeros, ones, random_normal, random_uniform";

    /// Parses Keras's names.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_uniform" => Initializer::HeUniform,
            "he_normal" => Initializer::HeNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "lecun_normal" => Initializer::LecunNormal,
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            "random_normal" => Initializer::RandomNormal,
            "random_uniform" => Initializer::RandomUniform,
            _ => {
                return Err(Error::UnknownName {
                    kind: "initializer",
                    name: name.to_string(),
                    valid: Self::NAMES.to_string(),
                })
            }
        })
    }

    /// Fills `values` (a fan_in x fan_out kernel, or a bias with fan_in = fan_out = its length).
    pub(crate) fn fill(self, values: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut rand::rngs::StdRng) {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let uniform = |limit: f64, values: &mut [f32], rng: &mut rand::rngs::StdRng| {
            let limit = limit as f32;
            values.iter_mut().for_each(|v| *v = rng.random_range(-limit..limit));
        };
        let truncated = |stddev: f64, values: &mut [f32], rng: &mut rand::rngs::StdRng| {
            let normal = Normal::new(0.0f64, 1.0).expect("a unit normal");
            for v in values.iter_mut() {
                let z = loop {
                    let z = normal.sample(rng);
                    if z.abs() <= 2.0 {
                        break z;
                    }
                };
                *v = (z * stddev) as f32;
            }
        };
        match self {
            Initializer::GlorotUniform => uniform((6.0 / (fi + fo)).sqrt(), values, rng),
            Initializer::GlorotNormal => truncated((2.0 / (fi + fo)).sqrt() / TRUNCATED_STDDEV, values, rng),
            Initializer::HeUniform => uniform((6.0 / fi).sqrt(), values, rng),
            Initializer::HeNormal => truncated((2.0 / fi).sqrt() / TRUNCATED_STDDEV, values, rng),
            Initializer::LecunUniform => uniform((3.0 / fi).sqrt(), values, rng),
            Initializer::LecunNormal => truncated((1.0 / fi).sqrt() / TRUNCATED_STDDEV, values, rng),
            Initializer::Zeros => values.fill(0.0),
            Initializer::Ones => values.fill(1.0),
            Initializer::RandomNormal => {
                let normal = Normal::new(0.0f64, 0.05).expect("stddev 0.05");
                values.iter_mut().for_each(|v| *v = normal.sample(rng) as f32);
            }
            Initializer::RandomUniform => uniform(0.05, values, rng),
        }
    }
}

impl std::str::FromStr for Initializer {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Initializer::parse(name)
    }
}

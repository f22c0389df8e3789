//! Learning-rate schedules given as an optimizer's learning rate, as Keras 3's
//! `keras.optimizers.schedules`: each update's rate is the schedule at the optimizer's iteration
//! count *before* that update (0 for the first), computed on the host in f32 the way Keras's ops
//! compute it, and sent to the device with the epoch's other per-step rates.

use crate::error::{Error, Result};

/// A learning rate that changes with the optimizer's iterations (Keras's `LearningRateSchedule`).
///
/// Set it as an optimizer's `schedule`; it then gives every update's rate, and the optimizer's
/// `learning_rate` reports its value at step 0. As in Keras, a schedule's rate cannot be set
/// (ReduceLROnPlateau on an optimizer with a schedule ends the fit with [`Error::State`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "schedule")]
#[non_exhaustive]
pub enum LearningRateSchedule {
    /// `initial_learning_rate * decay_rate ^ (step / decay_steps)` (the exponent floored with
    /// `staircase`).
    ExponentialDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps per decay period (> 0).
        decay_steps: u64,
        /// The factor per period (>= 0).
        decay_rate: f32,
        /// Decay in whole periods.
        staircase: bool,
    },
    /// `initial_learning_rate / (1 + decay_rate * step / decay_steps)` (the ratio floored with
    /// `staircase`).
    InverseTimeDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps per decay period (> 0).
        decay_steps: u64,
        /// How fast the rate falls (>= 0).
        decay_rate: f32,
        /// Decay in whole periods.
        staircase: bool,
    },
    /// `values[0]` while `step <= boundaries[0]`, `values[i]` while `boundaries[i - 1] < step <=
    /// boundaries[i]`, and `values[last]` after the last boundary.
    PiecewiseConstantDecay {
        /// Increasing steps where the rate changes.
        boundaries: Vec<u64>,
        /// One more rate than boundaries.
        values: Vec<f32>,
    },
    /// Cosine decay from `initial_learning_rate` (or, after a linear warmup of `warmup_steps`
    /// from it, from `warmup_target`) to `alpha` times that over `decay_steps`, then constant.
    CosineDecay {
        /// The rate at step 0.
        initial_learning_rate: f32,
        /// Steps of the decay (> 0).
        decay_steps: u64,
        /// The final rate as a fraction of the decay's start (Keras's default 0).
        alpha: f32,
        /// The rate the warmup reaches (None: no warmup, Keras's default).
        warmup_target: Option<f32>,
        /// Steps of the warmup (Keras's default 0).
        warmup_steps: u64,
    },
}

fn rate(name: &str, v: f32) -> Result<()> {
    if !(v >= 0.0 && v.is_finite()) {
        return Err(Error::invalid(name, v, "a learning-rate schedule's rates must be finite and >= 0"));
    }
    Ok(())
}

fn steps(name: &str, v: u64) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid(name, v, "must be > 0"));
    }
    Ok(())
}

impl LearningRateSchedule {
    /// Keras's CosineDecay with no warmup and `alpha` 0.
    pub fn cosine_decay(initial_learning_rate: f32, decay_steps: u64) -> Self {
        LearningRateSchedule::CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
        }
    }

    /// Checks its parameters: rates finite and >= 0, decay periods > 0, boundaries increasing.
    pub fn validate(&self) -> Result<()> {
        match self {
            LearningRateSchedule::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, .. }
            | LearningRateSchedule::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, .. } => {
                rate("initial_learning_rate", *initial_learning_rate)?;
                steps("decay_steps", *decay_steps)?;
                if !(*decay_rate >= 0.0 && decay_rate.is_finite()) {
                    return Err(Error::invalid("decay_rate", decay_rate, "must be finite and >= 0"));
                }
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values } => {
                if values.len() != boundaries.len() + 1 {
                    return Err(Error::invalid(
                        "values",
                        format!("{} values", values.len()),
                        format!("one more than the {} boundaries", boundaries.len()),
                    ));
                }
                if let Some(w) = boundaries.windows(2).find(|w| w[1] <= w[0]) {
                    return Err(Error::invalid("boundaries", format!("{} then {}", w[0], w[1]), "must increase"));
                }
                for &v in values {
                    rate("values", v)?;
                }
            }
            LearningRateSchedule::CosineDecay { initial_learning_rate, decay_steps, alpha, warmup_target, .. } => {
                rate("initial_learning_rate", *initial_learning_rate)?;
                steps("decay_steps", *decay_steps)?;
                if !(0.0..=1.0).contains(alpha) {
                    return Err(Error::invalid("alpha", alpha, "must be in [0, 1]"));
                }
                if let Some(t) = warmup_target {
                    rate("warmup_target", *t)?;
                }
            }
        }
        Ok(())
    }

    /// The rate at `step` (the optimizer's iterations before the update), in f32 as Keras's ops
    /// compute it.
    pub fn value(&self, step: u64) -> f32 {
        let s = step as f32;
        match *self {
            LearningRateSchedule::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let mut p = s / decay_steps as f32;
                if staircase {
                    p = p.floor();
                }
                initial_learning_rate * decay_rate.powf(p)
            }
            LearningRateSchedule::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let mut p = s / decay_steps as f32;
                if staircase {
                    p = p.floor();
                }
                initial_learning_rate / (1.0 + decay_rate * p)
            }
            LearningRateSchedule::PiecewiseConstantDecay { ref boundaries, ref values } => {
                let i = boundaries.iter().take_while(|&&b| step > b).count();
                values.get(i).copied().unwrap_or(0.0)
            }
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let decay = decay_steps as f32;
                let cosine = |step: f32, from: f32| {
                    let fraction = step / decay;
                    let cosine_decayed = 0.5 * (1.0 + (std::f32::consts::PI * fraction).cos());
                    from * ((1.0 - alpha) * cosine_decayed + alpha)
                };
                match warmup_target {
                    None => cosine(s.min(decay), initial_learning_rate),
                    Some(target) => {
                        let warmup = warmup_steps as f32;
                        let s = s.min(decay + warmup);
                        if s < warmup {
                            (target - initial_learning_rate) * (s / warmup) + initial_learning_rate
                        } else {
                            cosine(s - warmup, target)
                        }
                    }
                }
            }
        }
    }

    /// One line for summaries and the CLI.
    pub fn describe(&self) -> String {
        match self {
            LearningRateSchedule::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                format!(
                    "ExponentialDecay({initial_learning_rate}, {decay_steps} steps, rate {decay_rate}{})",
                    if *staircase { ", staircase" } else { "" }
                )
            }
            LearningRateSchedule::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                format!(
                    "InverseTimeDecay({initial_learning_rate}, {decay_steps} steps, rate {decay_rate}{})",
                    if *staircase { ", staircase" } else { "" }
                )
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values } => {
                format!("PiecewiseConstantDecay(boundaries {boundaries:?}, values {values:?})")
            }
            LearningRateSchedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let warm =
                    warmup_target.map_or(String::new(), |t| format!(", warmup to {t} over {warmup_steps} steps"));
                format!("CosineDecay({initial_learning_rate}, {decay_steps} steps, alpha {alpha}{warm})")
            }
        }
    }
}

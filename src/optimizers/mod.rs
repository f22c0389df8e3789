//! Optimizers with Keras's defaults and exact update rules. Each is one module (its settings,
//! defaults, validation and launch); this file registers them and holds what Keras 3's
//! `BaseOptimizer` gives every optimizer: gradient clipping ([`Clip`]), decoupled weight decay
//! and a learning rate given as a [`LearningRateSchedule`].

mod adam;
mod adamw;
mod rmsprop;
mod schedules;
mod sgd;

pub use adam::Adam;
pub use adamw::AdamW;
pub use rmsprop::Rmsprop;
pub use schedules::LearningRateSchedule;
pub use sgd::Sgd;

use crate::device::{member_table as mt, Args, GradNormsArgs, UpdateArgs};
use crate::error::{Error, Result};

/// `1 - x` as Keras computes it for a decay rate the user gave as a Python float: in double
/// precision from that decimal, then rounded to f32 (`ops.multiply(..., 1 - self.beta_1)`).
/// An f32 `1 - 0.999` is 0.00099998713, Keras's 0.001: the second moment and every step would
/// be 1.3e-5 and 6e-6 relative apart. The decimal is the f32's shortest representation, which
/// is what the user wrote for any decimal of up to 6 significant digits.
pub(crate) fn keras_one_minus(x: f32) -> f32 {
    let decimal: f64 = x.to_string().parse().unwrap_or(x as f64);
    (1.0 - decimal) as f32
}

/// Learning rates per step in the epoch's rates buffer: the kernel's (Adam's with its bias
/// correction folded in) and the undecorated one weight decay multiplies.
pub(crate) const RATES_PER_STEP: usize = 2;

/// Keras's gradient clipping: at most one of `clipnorm`, `global_clipnorm` and `clipvalue`
/// (Keras refuses more than one), applied to the gradients before weight decay and the update.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clip {
    /// No clipping (Keras's default).
    #[default]
    None,
    /// Keras's `clipnorm`: each weight tensor's gradient `g * c / max(||g||, c)`.
    #[serde(rename = "clipnorm")]
    Norm(f32),
    /// Keras's `global_clipnorm`: all gradients scaled together to a joint L2 norm of at most c.
    #[serde(rename = "global_clipnorm")]
    GlobalNorm(f32),
    /// Keras's `clipvalue`: each gradient value clamped to [-c, c].
    #[serde(rename = "clipvalue")]
    Value(f32),
}

impl Clip {
    /// No clipping (for `skip_serializing_if`).
    pub fn is_none(&self) -> bool {
        *self == Clip::None
    }

    fn validate(&self) -> Result<()> {
        let (name, c) = match *self {
            Clip::None => return Ok(()),
            Clip::Norm(c) => ("clipnorm", c),
            Clip::GlobalNorm(c) => ("global_clipnorm", c),
            Clip::Value(c) => ("clipvalue", c),
        };
        if !(c > 0.0 && c.is_finite()) {
            return Err(Error::invalid(name, c, "must be a positive finite number"));
        }
        Ok(())
    }

    /// Whether the update needs the variables' gradient norms first (`grad_norms`).
    pub(crate) fn needs_norms(&self) -> bool {
        matches!(self, Clip::Norm(_) | Clip::GlobalNorm(_))
    }

    fn write_member_row(&self, row: &mut [f32]) {
        match *self {
            Clip::None => {}
            Clip::Norm(c) => row[mt::CLIP_NORM] = c,
            Clip::GlobalNorm(c) => row[mt::GLOBAL_CLIP_NORM] = c,
            Clip::Value(c) => row[mt::CLIP_VALUE] = c,
        }
    }

    fn describe(&self) -> Option<String> {
        match *self {
            Clip::None => None,
            Clip::Norm(c) => Some(format!("clipnorm {c}")),
            Clip::GlobalNorm(c) => Some(format!("global_clipnorm {c}")),
            Clip::Value(c) => Some(format!("clipvalue {c}")),
        }
    }
}

/// Any optimizer; `compile` also takes the names `"adam"`, `"adamw"`, `"rmsprop"` and `"sgd"`
/// (Keras's defaults).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Optimizer {
    /// Adam.
    Adam(Adam),
    /// Stochastic gradient descent.
    Sgd(Sgd),
    /// RMSprop.
    Rmsprop(Rmsprop),
    /// Adam with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW(AdamW),
}

/// What every optimizer has besides its own rule (Keras's `BaseOptimizer` arguments).
struct Common<'a> {
    learning_rate: f32,
    weight_decay: Option<f32>,
    clip: Clip,
    schedule: Option<&'a LearningRateSchedule>,
}

impl Optimizer {
    /// The names `compile` accepts, for messages.
    pub const NAMES: &'static str = "adam, adamw, rmsprop, sgd";

    fn common(&self) -> Common<'_> {
        match self {
            Optimizer::Adam(a) => Common {
                learning_rate: a.learning_rate,
                weight_decay: a.weight_decay,
                clip: a.clip,
                schedule: a.schedule.as_ref(),
            },
            Optimizer::Sgd(s) => Common {
                learning_rate: s.learning_rate,
                weight_decay: s.weight_decay,
                clip: s.clip,
                schedule: s.schedule.as_ref(),
            },
            Optimizer::Rmsprop(r) => Common {
                learning_rate: r.learning_rate,
                weight_decay: r.weight_decay,
                clip: r.clip,
                schedule: r.schedule.as_ref(),
            },
            Optimizer::AdamW(a) => Common {
                learning_rate: a.learning_rate,
                weight_decay: Some(a.weight_decay),
                clip: a.clip,
                schedule: a.schedule.as_ref(),
            },
        }
    }

    /// Checks the hyperparameters.
    pub(crate) fn validate(&self) -> Result<()> {
        let c = self.common();
        match c.schedule {
            Some(s) => s.validate()?,
            None => {
                let lr = c.learning_rate;
                if !(lr > 0.0 && lr.is_finite()) {
                    return Err(Error::invalid("learning_rate", lr, "must be a positive finite number"));
                }
            }
        }
        if let Some(wd) = c.weight_decay {
            if !(wd >= 0.0 && wd.is_finite()) {
                return Err(Error::invalid("weight_decay", wd, "must be finite and >= 0"));
            }
        }
        c.clip.validate()?;
        match self {
            Optimizer::Adam(a) => a.validate(),
            Optimizer::Sgd(s) => s.validate(),
            Optimizer::Rmsprop(r) => r.validate(),
            Optimizer::AdamW(a) => a.as_adam().validate(),
        }
    }

    /// The launch of an update over `len` parameters in `variables` weight tensors per member,
    /// with the rates of step `step` of the epoch (at `RATES_PER_STEP * step` of each member's).
    pub(crate) fn launch(&self, len: usize, variables: usize, step: usize) -> Args {
        let u = UpdateArgs { len: len as u32, lr_at: (RATES_PER_STEP * step) as u32, variables: variables as u32 };
        match self {
            Optimizer::Adam(_) | Optimizer::AdamW(_) => Args::Adam(u),
            Optimizer::Sgd(_) => Args::Sgd(u),
            Optimizer::Rmsprop(_) => Args::Rmsprop(u),
        }
    }

    /// The launch that sums each variable's gradient squares before the update (and applies
    /// clipnorm), when `clip` needs it.
    pub(crate) fn norms_launch(len: usize, variables: usize, clip_in_place: bool) -> Args {
        Args::GradNorms(GradNormsArgs { len: len as u32, variables: variables as u32, clip: clip_in_place })
    }

    /// The gradient clipping.
    pub fn clip(&self) -> Clip {
        self.common().clip
    }

    /// The learning-rate schedule, if the learning rate is one.
    pub fn schedule(&self) -> Option<&LearningRateSchedule> {
        self.common().schedule
    }

    /// The undecorated learning rate of update `t` (from 1): the schedule's at `t - 1` (Keras
    /// evaluates it at the iterations before the update), or the constant rate.
    pub(crate) fn raw_learning_rate(&self, t: u64) -> f32 {
        let c = self.common();
        match c.schedule {
            Some(s) => s.value(t.saturating_sub(1)),
            None => c.learning_rate,
        }
    }

    /// The rates of update `t` (from 1), as the kernel reads them at `lr_at` and `lr_at + 1`:
    /// the rate it applies (Adam's with its bias correction folded in, in f64 on the host) and
    /// the undecorated rate weight decay uses.
    pub(crate) fn step_rates(&self, t: u64) -> [f32; RATES_PER_STEP] {
        let lr = self.raw_learning_rate(t);
        let applied = match self {
            Optimizer::Adam(a) => a.step_learning_rate(lr, t),
            Optimizer::AdamW(a) => a.as_adam().step_learning_rate(lr, t),
            Optimizer::Sgd(_) | Optimizer::Rmsprop(_) => lr,
        };
        [applied, lr]
    }

    /// Writes its hyperparameters into a member's row of the member table.
    pub(crate) fn write_member_row(&self, row: &mut [f32]) {
        match self {
            Optimizer::Adam(a) => a.write_member_row(row),
            Optimizer::Sgd(s) => s.write_member_row(row),
            Optimizer::Rmsprop(r) => r.write_member_row(row),
            Optimizer::AdamW(a) => a.as_adam().write_member_row(row),
        }
        let c = self.common();
        row[mt::WEIGHT_DECAY] = c.weight_decay.unwrap_or(0.0);
        c.clip.write_member_row(row);
    }

    /// Whether it keeps a third per-parameter slot (amsgrad's maximum of v, centered RMSprop's
    /// mean gradient), which model files then save.
    pub(crate) fn uses_third_slot(&self) -> bool {
        match self {
            Optimizer::Adam(a) => a.amsgrad,
            Optimizer::AdamW(a) => a.amsgrad,
            Optimizer::Rmsprop(r) => r.centered,
            Optimizer::Sgd(_) => false,
        }
    }

    /// The current learning rate (with a schedule: its rate at step 0).
    pub fn learning_rate(&self) -> f32 {
        let c = self.common();
        match c.schedule {
            Some(s) => s.value(0),
            None => c.learning_rate,
        }
    }

    /// Changes the learning rate (used by ReduceLROnPlateau). As Keras, an optimizer whose
    /// learning rate is a schedule refuses a new rate ([`Error::State`]); setting the rate it
    /// already reports changes nothing and succeeds.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        if lr == self.learning_rate() {
            return Ok(());
        }
        if self.schedule().is_some() {
            return Err(Error::State(format!(
                "the optimizer's learning rate is a schedule ({}), so it cannot be set to {lr} (as in Keras); \
                 give the optimizer a constant learning_rate to change it during training",
                self.schedule().map(LearningRateSchedule::describe).unwrap_or_default()
            )));
        }
        match self {
            Optimizer::Adam(a) => a.learning_rate = lr,
            Optimizer::Sgd(s) => s.learning_rate = lr,
            Optimizer::Rmsprop(r) => r.learning_rate = lr,
            Optimizer::AdamW(a) => a.learning_rate = lr,
        }
        Ok(())
    }

    /// Its settings in one line (summary, CLI): name, rate or schedule, and the options set.
    pub fn describe(&self) -> String {
        let c = self.common();
        let mut parts = vec![match c.schedule {
            Some(s) => s.describe(),
            None => format!("learning_rate {}", c.learning_rate),
        }];
        match self {
            Optimizer::Adam(a) => {
                parts.push(format!("beta_1 {}, beta_2 {}, epsilon {}", a.beta_1, a.beta_2, a.epsilon));
                if a.amsgrad {
                    parts.push("amsgrad".into());
                }
            }
            Optimizer::AdamW(a) => {
                parts.push(format!("beta_1 {}, beta_2 {}, epsilon {}", a.beta_1, a.beta_2, a.epsilon));
                if a.amsgrad {
                    parts.push("amsgrad".into());
                }
            }
            Optimizer::Sgd(s) => {
                if s.momentum > 0.0 {
                    parts.push(format!("momentum {}{}", s.momentum, if s.nesterov { ", nesterov" } else { "" }));
                }
            }
            Optimizer::Rmsprop(r) => {
                parts.push(format!("rho {}, momentum {}, epsilon {}", r.rho, r.momentum, r.epsilon));
                if r.centered {
                    parts.push("centered".into());
                }
            }
        }
        if let Some(wd) = c.weight_decay {
            parts.push(format!("weight_decay {wd}"));
        }
        parts.extend(c.clip.describe());
        let name = match self {
            Optimizer::Adam(_) => "Adam",
            Optimizer::AdamW(_) => "AdamW",
            Optimizer::Sgd(_) => "SGD",
            Optimizer::Rmsprop(_) => "RMSprop",
        };
        format!("{name} ({})", parts.join(", "))
    }
}

impl std::str::FromStr for Optimizer {
    type Err = Error;

    /// Keras's names, with its default hyperparameters; an unknown name lists the valid ones.
    fn from_str(name: &str) -> Result<Optimizer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "adam" => Ok(Optimizer::Adam(Adam::default())),
            "adamw" => Ok(Optimizer::AdamW(AdamW::default())),
            "rmsprop" => Ok(Optimizer::Rmsprop(Rmsprop::default())),
            "sgd" => Ok(Optimizer::Sgd(Sgd::default())),
            _ => Err(Error::UnknownName { kind: "optimizer", name: name.to_string(), valid: Self::NAMES.into() }),
        }
    }
}

impl From<Adam> for Optimizer {
    fn from(a: Adam) -> Self {
        Optimizer::Adam(a)
    }
}

impl From<AdamW> for Optimizer {
    fn from(a: AdamW) -> Self {
        Optimizer::AdamW(a)
    }
}

impl From<Rmsprop> for Optimizer {
    fn from(r: Rmsprop) -> Self {
        Optimizer::Rmsprop(r)
    }
}

impl From<Sgd> for Optimizer {
    fn from(s: Sgd) -> Self {
        Optimizer::Sgd(s)
    }
}

/// What `compile` accepts as an optimizer: an [`Optimizer`] (or [`Adam`], [`AdamW`],
/// [`Rmsprop`], [`Sgd`]), or its name.
pub trait IntoOptimizer {
    /// The optimizer, or an error naming the valid ones.
    fn into_optimizer(self) -> Result<Optimizer>;
}

impl<T: Into<Optimizer>> IntoOptimizer for T {
    fn into_optimizer(self) -> Result<Optimizer> {
        Ok(self.into())
    }
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

impl IntoOptimizer for String {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

impl IntoOptimizer for &String {
    fn into_optimizer(self) -> Result<Optimizer> {
        self.parse()
    }
}

//! BatchNormalization with Keras's semantics: batch statistics in training (biased variance),
//! moving statistics (momentum 0.99, epsilon 0.001) at inference; gamma and beta trainable, the
//! moving mean and variance not.

use super::{BackwardLaunches, Below, LayerBuffers, LayerOps, LayerSpec, Pass, Placement, WeightSpec};
use crate::device::{Args, Backend, BatchNormArgs, Kernel};
use crate::error::{Error, Result};

/// A BatchNormalization layer's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BatchNormConfig {
    pub(crate) momentum: f32,
    pub(crate) epsilon: f32,
    pub(crate) center: bool,
    pub(crate) scale: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig { momentum: 0.99, epsilon: 1e-3, center: true, scale: true }
    }
}

impl BatchNormConfig {
    /// Momentum of the moving statistics (Keras's default 0.99).
    pub fn momentum(&self) -> f32 {
        self.momentum
    }

    /// Added to the variance (Keras's default 0.001).
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }

    /// Whether beta (an offset) is learned.
    pub fn center(&self) -> bool {
        self.center
    }

    /// Whether gamma (a scale) is learned.
    pub fn scale(&self) -> bool {
        self.scale
    }

    fn args(&self, at: &Placement, pass: &Pass, below: &Below) -> BatchNormArgs {
        BatchNormArgs {
            rows: pass.rows as u32,
            width: at.out_w as u32,
            gamma_off: at.param_off as u32,
            beta_off: (at.param_off + if self.scale { at.out_w } else { 0 }) as u32,
            state_off: at.state_off as u32,
            scale: self.scale,
            center: self.center,
            momentum: self.momentum,
            epsilon: self.epsilon,
            grad_below: below.needs_grad,
            derivative: below.activation,
        }
    }
}

impl LayerSpec for BatchNormConfig {
    fn type_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn name_prefix(&self) -> &'static str {
        "batch_normalization"
    }

    fn validate(&self, index: usize) -> Result<()> {
        if !(self.momentum >= 0.0 && self.momentum <= 1.0) {
            return Err(Error::invalid(
                format!("layer {index} BatchNormalization momentum"),
                self.momentum,
                "must be in [0, 1]",
            ));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid(
                format!("layer {index} BatchNormalization epsilon"),
                self.epsilon,
                "must be a positive finite number",
            ));
        }
        Ok(())
    }

    fn weights(&self, in_w: usize) -> Vec<WeightSpec> {
        let mut w = Vec::new();
        if self.scale {
            w.push(WeightSpec { name: "gamma", shape: vec![in_w], trainable: true });
        }
        if self.center {
            w.push(WeightSpec { name: "beta", shape: vec![in_w], trainable: true });
        }
        w.push(WeightSpec { name: "moving_mean", shape: vec![in_w], trainable: false });
        w.push(WeightSpec { name: "moving_variance", shape: vec![in_w], trainable: false });
        w
    }

    /// Gamma 1, beta 0, moving mean 0, moving variance 1.
    fn init(&self, at: &Placement, _rng: &mut rand::rngs::StdRng, params: &mut [f32], state: &mut [f32]) {
        if self.scale {
            params[at.param_off..at.param_off + at.out_w].fill(1.0);
        }
        state[at.state_off + at.out_w..at.state_off + 2 * at.out_w].fill(1.0);
    }

    /// The batch's mean and 1 / sqrt(var + eps), kept from forward for backward.
    fn scratch_len(&self, width: usize) -> usize {
        2 * width
    }

    fn bind(&self, b: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps> {
        let saved =
            bufs.scratch.ok_or_else(|| Error::Internal("BatchNormalization bound without its scratch".into()))?;
        let (x, p, s, y) = (bufs.input, bufs.params, bufs.state, bufs.output);
        let forward_train = b.bind(Kernel::BatchNormTrain, &[x, p, s, y, saved, bufs.table])?;
        let forward_infer = b.bind(Kernel::BatchNormInfer, &[x, p, s, y])?;
        let dx = bufs.grad_input.unwrap_or(bufs.unused_write);
        let backward =
            vec![b.bind(
                Kernel::BatchNormBackward,
                &[x, p, saved, bufs.grad_output, dx, bufs.grads, bufs.below_output],
            )?];
        Ok(LayerOps { forward_train, forward_infer, forward_activation: None, backward })
    }

    fn forward(&self, at: &Placement, pass: &Pass) -> Args {
        let args = self.args(at, pass, &Below::default());
        if pass.training {
            Args::BatchNormTrain(args)
        } else {
            Args::BatchNormInfer(args)
        }
    }

    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches {
        [Some(Args::BatchNormBackward(self.args(at, pass, below))), None]
    }
}

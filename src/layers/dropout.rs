//! Inverted dropout: zeroes inputs with probability `rate` in training, identity at inference.
//! The mask is never stored: both directions redraw it from (seed, step, layer, index).

use super::{BackwardLaunches, Below, LayerBuffers, LayerOps, LayerSpec, Pass, Placement};
use crate::device::{Args, Backend, DropoutArgs, Kernel};
use crate::error::{Error, Result};
use crate::trainer::fold_seed;

/// A Dropout layer's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DropoutConfig {
    pub(crate) rate: f32,
    /// Its own mask seed; otherwise the fit's seed.
    pub(crate) seed: Option<u64>,
}

impl DropoutConfig {
    /// Probability of zeroing each input while training.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// Its own mask seed, when set (else the fit's).
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The rate is each member's (the member table), so a mask is applied in training whatever
    /// this layer's own rate: a member whose rate is 0 keeps every value (times 1).
    fn args(&self, at: &Placement, pass: &Pass, masking: bool, below: &Below) -> DropoutArgs {
        DropoutArgs {
            len: (pass.rows * at.out_w) as u32,
            apply_mask: masking,
            own_seed: self.seed.map(fold_seed),
            step: pass.step,
            layer: at.index as u32,
            derivative: below.activation,
        }
    }
}

impl LayerSpec for DropoutConfig {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }

    fn name_prefix(&self) -> &'static str {
        "dropout"
    }

    fn validate(&self, index: usize) -> Result<()> {
        if !(self.rate >= 0.0 && self.rate < 1.0) {
            return Err(Error::invalid(format!("layer {index} Dropout rate"), self.rate, "must be in [0, 1)"));
        }
        Ok(())
    }

    fn bind(&self, b: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps> {
        let forward = b.bind(Kernel::DropoutForward, &[bufs.input, bufs.output, bufs.table])?;
        let mut backward = Vec::new();
        if let Some(dx) = bufs.grad_input {
            backward.push(b.bind(Kernel::DropoutBackward, &[bufs.grad_output, dx, bufs.below_output, bufs.table])?);
        }
        Ok(LayerOps { forward_train: forward, forward_infer: forward, forward_activation: None, backward })
    }

    fn forward(&self, at: &Placement, pass: &Pass) -> Args {
        Args::DropoutForward(self.args(at, pass, pass.training, &Below::default()))
    }

    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches {
        [below.needs_grad.then(|| Args::DropoutBackward(self.args(at, pass, true, below))), None]
    }
}

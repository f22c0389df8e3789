//! Normalization, Keras's preprocessing layer: `(x - mean) / max(sqrt(variance), 1e-7)` per
//! feature, with the mean and variance learned once by `adapt` (or given) and kept as
//! non-trainable state (Keras's weights `mean`, `variance`, `count`); `invert` undoes it.
//! Forward and backward are shaders/normalization.wgsl with their CPU twins.

use super::{BackwardLaunches, Below, LayerBuffers, LayerOps, LayerSpec, Pass, Placement, WeightSpec};
use crate::device::{Args, Backend, Kernel, NormalizationArgs};
use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::matrix::Matrix;

/// A Normalization layer's settings: the per-feature statistics (from `adapt` or given) and
/// whether it inverts.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct NormalizationConfig {
    pub(crate) mean: Option<Vec<f32>>,
    pub(crate) variance: Option<Vec<f32>>,
    /// Rows the statistics were adapted on (0 when given).
    #[serde(default)]
    pub(crate) count: u64,
    #[serde(default)]
    pub(crate) invert: bool,
}

impl NormalizationConfig {
    /// Per-feature means (None until adapted or given).
    pub fn mean(&self) -> Option<&[f32]> {
        self.mean.as_deref()
    }

    /// Per-feature population variances (None until adapted or given).
    pub fn variance(&self) -> Option<&[f32]> {
        self.variance.as_deref()
    }

    /// Whether it computes `mean + x * std` (Keras's `invert=True`).
    pub fn invert(&self) -> bool {
        self.invert
    }

    /// Keras's `adapt`: each column's mean and population variance over the rows of `data`
    /// (accumulated in f64). Empty data or a non-finite value is an error naming the row and column.
    pub(crate) fn adapt(&mut self, data: &Matrix) -> Result<()> {
        let (rows, cols) = (data.rows(), data.cols());
        if rows == 0 || cols == 0 {
            return Err(Error::invalid(
                "Normalization.adapt data",
                format!("{rows} x {cols}"),
                "needs rows and columns",
            ));
        }
        if let Some(i) = data.data().iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                format!("Normalization.adapt data at row {}, column {}", i / cols, i % cols),
                data.data()[i],
                "must be a finite number",
            ));
        }
        let mut mean = vec![0.0f64; cols];
        for row in data.data().chunks(cols) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var = vec![0.0f64; cols];
        for row in data.data().chunks(cols) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        self.mean = Some(mean.iter().map(|&m| m as f32).collect());
        self.variance = Some(var.iter().map(|&s| (s / rows as f64) as f32).collect());
        self.count = rows as u64;
        Ok(())
    }

    fn args(&self, at: &Placement, pass: &Pass, derivative: Activation) -> NormalizationArgs {
        NormalizationArgs {
            len: (pass.rows * at.out_w) as u32,
            width: at.out_w as u32,
            state_off: at.state_off as u32,
            invert: self.invert,
            derivative,
        }
    }
}

impl LayerSpec for NormalizationConfig {
    fn type_name(&self) -> &'static str {
        "Normalization"
    }

    fn name_prefix(&self) -> &'static str {
        "normalization"
    }

    fn validate(&self, index: usize) -> Result<()> {
        let (Some(mean), Some(variance)) = (&self.mean, &self.variance) else {
            return Err(Error::Model(format!(
                "layer {index}: the Normalization layer has no statistics; call .adapt(data) on it (or give \
                 mean and variance) before compiling"
            )));
        };
        if mean.len() != variance.len() {
            return Err(Error::shape(
                format!("layer {index} Normalization"),
                format!("a variance per mean ({})", mean.len()),
                format!("{} variances", variance.len()),
            ));
        }
        if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid(format!("layer {index} Normalization mean"), v, "must be finite"));
        }
        if let Some(v) = variance.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::invalid(format!("layer {index} Normalization variance"), v, "must be finite and >= 0"));
        }
        Ok(())
    }

    fn check_input(&self, index: usize, in_w: usize) -> Result<()> {
        match &self.mean {
            Some(mean) if mean.len() != in_w => Err(Error::shape(
                format!("layer {index} Normalization"),
                format!("statistics of its {in_w} input features"),
                format!("statistics of {} features", mean.len()),
            )),
            _ => Ok(()),
        }
    }

    fn weights(&self, in_w: usize) -> Vec<WeightSpec> {
        vec![
            WeightSpec { name: "mean", shape: vec![in_w], trainable: false },
            WeightSpec { name: "variance", shape: vec![in_w], trainable: false },
            WeightSpec { name: "count", shape: vec![], trainable: false },
        ]
    }

    fn init(&self, at: &Placement, _rng: &mut rand::rngs::StdRng, _params: &mut [f32], state: &mut [f32]) {
        let w = at.in_w;
        let s = &mut state[at.state_off..at.state_off + 2 * w + 1];
        if let (Some(mean), Some(variance)) = (&self.mean, &self.variance) {
            if mean.len() == w && variance.len() == w {
                s[..w].copy_from_slice(mean);
                s[w..2 * w].copy_from_slice(variance);
            }
        }
        s[2 * w] = self.count as f32;
    }

    fn bind(&self, b: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps> {
        let forward = b.bind(Kernel::NormalizationForward, &[bufs.input, bufs.state, bufs.output])?;
        let mut backward = Vec::new();
        if let Some(dx) = bufs.grad_input {
            backward
                .push(b.bind(Kernel::NormalizationBackward, &[bufs.grad_output, bufs.state, dx, bufs.below_output])?);
        }
        Ok(LayerOps { forward_train: forward, forward_infer: forward, forward_activation: None, backward })
    }

    fn forward(&self, at: &Placement, pass: &Pass) -> Args {
        Args::NormalizationForward(self.args(at, pass, Activation::Linear))
    }

    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches {
        [below.needs_grad.then(|| Args::NormalizationBackward(self.args(at, pass, below.activation))), None]
    }
}

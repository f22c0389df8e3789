//! Dense: `activation(x · W + b)`. One product forward (the bias rides as an implicit ones
//! column), two backward: [dW; db] = [Xᵀ; 1]·dZ and dX = (dZ·Wᵀ) ⊙ (layer below)'.

use super::{
    Activation, BackwardLaunches, Below, DerivativeSource, Initializer, LayerBuffers, LayerOps, LayerSpec, Pass,
    Placement, WeightSpec,
};
use crate::device::{ActivationArgs, Args, Backend, Kernel, MatmulArgs, Ones};
use crate::error::{Error, Result};
use crate::regularizers::{Penalty, Regularizer};

/// A Dense layer's settings (Keras's defaults: linear activation, with a bias).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DenseConfig {
    pub(crate) units: usize,
    pub(crate) activation: Activation,
    pub(crate) use_bias: bool,
    #[serde(default)]
    pub(crate) kernel_initializer: Initializer,
    #[serde(default = "zeros")]
    pub(crate) bias_initializer: Initializer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kernel_regularizer: Option<Regularizer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bias_regularizer: Option<Regularizer>,
}

/// Keras's default bias initializer (model files written before initializers had names).
fn zeros() -> Initializer {
    Initializer::Zeros
}

impl DenseConfig {
    pub(crate) fn new(units: usize) -> Self {
        DenseConfig {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
        }
    }

    /// The kernel's penalty, if any.
    pub fn kernel_regularizer(&self) -> Option<Regularizer> {
        self.kernel_regularizer
    }

    /// The bias's penalty, if any.
    pub fn bias_regularizer(&self) -> Option<Regularizer> {
        self.bias_regularizer
    }

    /// How the kernel starts (default glorot_uniform).
    pub fn kernel_initializer(&self) -> Initializer {
        self.kernel_initializer
    }

    /// How the bias starts (default zeros).
    pub fn bias_initializer(&self) -> Initializer {
        self.bias_initializer
    }

    /// Outputs of the layer.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The activation applied to its outputs.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether it adds a bias.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }
}

fn u(v: usize) -> u32 {
    v as u32
}

impl LayerSpec for DenseConfig {
    fn type_name(&self) -> &'static str {
        "Dense"
    }

    fn name_prefix(&self) -> &'static str {
        "dense"
    }

    fn validate(&self, index: usize) -> Result<()> {
        if self.units == 0 {
            return Err(Error::invalid(format!("layer {index} Dense units"), self.units, "must be at least 1"));
        }
        if let Some(r) = self.kernel_regularizer {
            r.validate(&format!("layer {index} Dense kernel_regularizer"))?;
        }
        if let Some(r) = self.bias_regularizer {
            r.validate(&format!("layer {index} Dense bias_regularizer"))?;
        }
        Ok(())
    }

    fn output_width(&self, _input: usize) -> usize {
        self.units
    }

    fn output_activation(&self) -> Activation {
        self.activation
    }

    fn weights(&self, in_w: usize) -> Vec<WeightSpec> {
        let mut w = vec![WeightSpec { name: "kernel", shape: vec![in_w, self.units], trainable: true }];
        if self.use_bias {
            w.push(WeightSpec { name: "bias", shape: vec![self.units], trainable: true });
        }
        w
    }

    /// The kernel from its initializer (fan_in x fan_out), then the bias from its own.
    fn init(&self, at: &Placement, rng: &mut rand::rngs::StdRng, params: &mut [f32], _state: &mut [f32]) {
        let kernel = at.param_off..at.param_off + at.in_w * at.out_w;
        self.kernel_initializer.fill(&mut params[kernel.clone()], at.in_w, at.out_w, rng);
        if self.use_bias {
            let bias = kernel.end..kernel.end + at.out_w;
            self.bias_initializer.fill(&mut params[bias], at.out_w, at.out_w, rng);
        }
    }

    fn notes(&self) -> Vec<String> {
        let named = [("kernel_regularizer", self.kernel_regularizer), ("bias_regularizer", self.bias_regularizer)];
        named.iter().filter_map(|(name, r)| r.map(|r| format!("{name}={}", r.describe()))).collect()
    }

    fn penalties(&self, at: &Placement) -> Vec<Penalty> {
        let kernel_len = at.in_w * at.out_w;
        let kernel =
            self.kernel_regularizer.map(|regularizer| Penalty { offset: at.param_off, len: kernel_len, regularizer });
        let bias = self.bias_regularizer.filter(|_| self.use_bias).map(|regularizer| Penalty {
            offset: at.param_off + kernel_len,
            len: at.out_w,
            regularizer,
        });
        kernel.into_iter().chain(bias).collect()
    }

    /// silu and gelu need the pre-activation z: the product goes to a buffer of its own, and
    /// the activation follows in a second launch (`forward_activation`).
    fn derivative_source(&self) -> DerivativeSource {
        if self.activation.needs_preactivation() {
            DerivativeSource::OwnBuffer
        } else {
            DerivativeSource::Output
        }
    }

    fn bind(&self, b: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps> {
        let (product, forward_activation) = match bufs.preactivation {
            Some(z) => (z, Some(b.bind(Kernel::ActivationForward, &[z, bufs.output, bufs.unused])?)),
            None => (bufs.output, None),
        };
        let forward = b.bind(Kernel::Matmul, &[bufs.input, bufs.params, product, bufs.unused])?;
        let mut backward = vec![b.bind(Kernel::Matmul, &[bufs.input, bufs.grad_output, bufs.grads, bufs.unused])?];
        if let Some(dx) = bufs.grad_input {
            backward.push(b.bind(Kernel::Matmul, &[bufs.grad_output, bufs.params, dx, bufs.below_output])?);
        }
        Ok(LayerOps { forward_train: forward, forward_infer: forward, forward_activation, backward })
    }

    fn forward(&self, at: &Placement, pass: &Pass) -> Args {
        Args::Matmul(MatmulArgs {
            m: u(pass.rows),
            n: u(at.out_w),
            k: u(at.in_w + usize::from(self.use_bias)),
            a_rs: u(at.in_w),
            a_cs: 1,
            b_off: u(at.param_off),
            b_rs: u(at.out_w),
            b_cs: 1,
            ones: if self.use_bias { Ones::LastColumn } else { Ones::None },
            // Fused into the product's epilogue, unless a second launch applies it.
            activation: if self.activation.needs_preactivation() { Activation::Linear } else { self.activation },
            ..Default::default()
        })
    }

    fn forward_activation(&self, at: &Placement, pass: &Pass) -> Option<Args> {
        self.activation.needs_preactivation().then(|| {
            Args::ActivationForward(ActivationArgs { len: u(pass.rows * at.out_w), activation: self.activation })
        })
    }

    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches {
        let weights = MatmulArgs {
            m: u(at.in_w + usize::from(self.use_bias)),
            n: u(at.out_w),
            k: u(pass.rows),
            a_rs: 1,
            a_cs: u(at.in_w),
            b_rs: u(at.out_w),
            b_cs: 1,
            c_off: u(at.param_off),
            ones: if self.use_bias { Ones::LastRow } else { Ones::None },
            ..Default::default()
        };
        let input_grad = below.needs_grad.then(|| {
            Args::Matmul(MatmulArgs {
                m: u(pass.rows),
                n: u(at.in_w),
                k: u(at.out_w),
                a_rs: u(at.out_w),
                a_cs: 1,
                b_off: u(at.param_off),
                b_rs: 1,
                b_cs: u(at.out_w),
                derivative: below.activation,
                ..Default::default()
            })
        });
        [Some(Args::Matmul(weights)), input_grad]
    }
}

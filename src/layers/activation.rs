//! A standalone activation layer, e.g. after BatchNormalization. Backward passes the gradient
//! down through the layer below's derivative (its own is fused by the layer above).

use super::{BackwardLaunches, Below, DerivativeSource, LayerBuffers, LayerOps, LayerSpec, Pass, Placement};
use crate::device::{ActivationArgs, ActivationGradArgs, Args, Backend, Kernel};
use crate::error::{Error, Result};

/// An activation function, applied elementwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Activation {
    /// The identity.
    #[default]
    Linear,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// x for x > 0, e^x - 1 below (Keras's alpha 1).
    Elu,
    /// Keras's selu: scale * x for x > 0, scale * alpha * (e^x - 1) below (self-normalizing constants).
    Selu,
    /// x for x >= 0, 0.2 x below (Keras 3's default negative_slope).
    #[serde(rename = "leaky_relu")]
    LeakyRelu,
    /// log(1 + e^x) (Keras's softplus).
    Softplus,
    /// x * sigmoid(x): Keras 3's `silu`, also named `swish` (both names parse).
    #[serde(alias = "swish")]
    Silu,
    /// x * Φ(x) = 0.5 x (1 + erf(x / √2)): Keras's `gelu` (its default, `approximate=False`).
    Gelu,
    /// 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))): Keras's `gelu(x, approximate=True)`.
    #[serde(rename = "gelu_approximate")]
    GeluApproximate,
    /// Row-wise e^x / sum(e^x) over a layer's outputs (max subtracted first, as Keras). Not
    /// elementwise: the elementwise kernels pass it through as the identity, and the plan adds a
    /// row pass (`softmax_forward`) after the layer and, going back, `softmax_backward` on its
    /// gradient, dx = y * (g - sum(g * y)) per row, unless the loss fuses it (a cross-entropy on a
    /// softmax output writes the gradient of the logits directly, (p - y) / rows).
    Softmax,
}

impl Activation {
    /// The names `Activation::parse` accepts, for messages.
    pub const NAMES: &'static str =
        "linear, relu, sigmoid, tanh, elu, selu, leaky_relu, softplus, silu (swish), gelu, gelu_approximate, softmax";
    /// Every activation, in code order (softmax, whose code stands apart, last).
    pub const ALL: [Activation; 12] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Elu,
        Activation::Selu,
        Activation::LeakyRelu,
        Activation::Softplus,
        Activation::Silu,
        Activation::Gelu,
        Activation::GeluApproximate,
        Activation::Softmax,
    ];

    /// Parses Keras's names ("linear" also as "none"/""); the same as `name.parse()`.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "linear" | "none" | "" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "elu" => Ok(Activation::Elu),
            "selu" => Ok(Activation::Selu),
            "leaky_relu" | "leakyrelu" => Ok(Activation::LeakyRelu),
            "softplus" => Ok(Activation::Softplus),
            "silu" | "swish" => Ok(Activation::Silu),
            "gelu" => Ok(Activation::Gelu),
            "gelu_approximate" | "gelu_tanh" => Ok(Activation::GeluApproximate),
            "softmax" => Ok(Activation::Softmax),
            _ => Err(Error::UnknownName { kind: "activation", name: name.to_string(), valid: Self::NAMES.to_string() }),
        }
    }

    /// Keras's name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Softplus => "softplus",
            Activation::Silu => "silu",
            Activation::Gelu => "gelu",
            Activation::GeluApproximate => "gelu_approximate",
            Activation::Softmax => "softmax",
        }
    }

    /// Whether its derivative needs the pre-activation x: silu and gelu cannot be inverted from
    /// their output, unlike the others, whose derivative the kernels write from the output y
    /// (`act_grad_from_output` in shaders/common.wgsl). A layer ending in one of these keeps x:
    /// Dense writes its product to a buffer of its own and applies the activation in a second
    /// launch, an Activation layer's input already is x; the plan then binds that buffer wherever
    /// the layer's output would be read for a derivative (the layer above's backward, the loss).
    pub fn needs_preactivation(self) -> bool {
        matches!(self, Activation::Silu | Activation::Gelu | Activation::GeluApproximate)
    }

    /// The code the kernels use (shaders/common.wgsl: ACT_*).
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::Linear => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
            Activation::Tanh => 3,
            Activation::Elu => 4,
            Activation::Selu => 5,
            Activation::LeakyRelu => 6,
            Activation::Softplus => 7,
            Activation::Silu => 8,
            Activation::Gelu => 9,
            Activation::GeluApproximate => 10,
            // Away from the elementwise codes (which grow from 0): no kernel switches on it, the
            // elementwise functions fall to their identity default, the row passes do the work.
            Activation::Softmax => 15,
        }
    }

    /// Whether it works on whole rows (softmax) rather than value by value: the elementwise
    /// kernels treat it as the identity (value and derivative) and the plan runs the row passes.
    pub fn is_row_wise(self) -> bool {
        matches!(self, Activation::Softmax)
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Activation::parse(name)
    }
}

/// An Activation layer's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ActivationConfig {
    pub(crate) activation: Activation,
}

impl ActivationConfig {
    /// The activation it applies.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl LayerSpec for ActivationConfig {
    fn type_name(&self) -> &'static str {
        "Activation"
    }

    fn name_prefix(&self) -> &'static str {
        "activation"
    }

    fn output_activation(&self) -> Activation {
        self.activation
    }

    /// silu and gelu differentiate from their pre-activation: this layer's input.
    fn derivative_source(&self) -> DerivativeSource {
        if self.activation.needs_preactivation() {
            DerivativeSource::Input
        } else {
            DerivativeSource::Output
        }
    }

    fn bind(&self, b: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps> {
        let forward = b.bind(Kernel::ActivationForward, &[bufs.input, bufs.output, bufs.unused])?;
        let mut backward = Vec::new();
        if let Some(dx) = bufs.grad_input {
            backward.push(b.bind(Kernel::ActivationBackward, &[bufs.grad_output, dx, bufs.below_output])?);
        }
        Ok(LayerOps { forward_train: forward, forward_infer: forward, forward_activation: None, backward })
    }

    fn forward(&self, at: &Placement, pass: &Pass) -> Args {
        Args::ActivationForward(ActivationArgs { len: (pass.rows * at.out_w) as u32, activation: self.activation })
    }

    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches {
        let args = ActivationGradArgs { len: (pass.rows * at.out_w) as u32, derivative: below.activation };
        [below.needs_grad.then_some(Args::ActivationBackward(args)), None]
    }
}

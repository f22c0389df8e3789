//! Layer configurations, as a user declares them. The math lives in the devices' kernels.

use crate::error::{Error, Result};

/// An activation function, applied elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
}

impl Activation {
    pub const NAMES: &'static str = "linear, relu, sigmoid";

    /// Parses Keras's names ("linear" also as "none"/"").
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "linear" | "none" | "" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            _ => Err(Error::UnknownName { kind: "activation", name: name.to_string(), valid: Self::NAMES.to_string() }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// The code the kernels use (shaders/common.wgsl: ACT_*).
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::Linear => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
        }
    }
}

/// What a layer does; its options are set through [`Layer`]'s builder methods.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum LayerKind {
    Dense { units: usize, activation: Activation, use_bias: bool },
    Activation { activation: Activation },
    Dropout { rate: f32, seed: Option<u64> },
    BatchNormalization { momentum: f32, epsilon: f32, center: bool, scale: bool },
}

/// One layer of a [`crate::Sequential`] model. Built with [`Dense::new`], [`Dropout::new`],
/// [`BatchNormalization::new`] or [`ActivationLayer::new`]; builder methods that do not apply to
/// the layer's kind are reported as an error by `compile`, never a panic.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub(crate) kind: LayerKind,
    pub(crate) name: Option<String>,
    pub(crate) input_shape: Option<usize>,
    /// A builder misuse, reported at compile.
    pub(crate) deferred_error: Option<String>,
}

impl Layer {
    fn of(kind: LayerKind) -> Self {
        Layer { kind, name: None, input_shape: None, deferred_error: None }
    }

    fn defer(mut self, message: String) -> Self {
        self.deferred_error.get_or_insert(message);
        self
    }

    pub fn kind(&self) -> &LayerKind {
        &self.kind
    }

    /// Applies a builder option to the layer kinds it fits; on any other kind, records the misuse
    /// for `compile` to report.
    fn configure(mut self, option: &str, apply: impl FnOnce(&mut LayerKind) -> bool) -> Self {
        if apply(&mut self.kind) {
            return self;
        }
        let msg = format!("{option}() does not apply to a {} layer", kind_name(&self.kind));
        self.defer(msg)
    }

    /// Sets the activation of a Dense or Activation layer ("linear", "relu", "sigmoid").
    pub fn activation(self, name: &str) -> Self {
        let parsed = match Activation::parse(name) {
            Ok(a) => a,
            Err(e) => return self.defer(e.to_string()),
        };
        self.configure("activation", |k| match k {
            LayerKind::Dense { activation, .. } | LayerKind::Activation { activation } => {
                *activation = parsed;
                true
            }
            _ => false,
        })
    }

    /// Whether a Dense layer adds a bias (default true).
    pub fn use_bias(self, on: bool) -> Self {
        self.configure("use_bias", |k| match k {
            LayerKind::Dense { use_bias, .. } => {
                *use_bias = on;
                true
            }
            _ => false,
        })
    }

    /// The number of input features; needed on the first layer unless fit infers it from the data.
    pub fn input_shape(mut self, features: usize) -> Self {
        self.input_shape = Some(features);
        self
    }

    /// A name shown by summary and used in saved files.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Dropout's own seed (otherwise derived from the fit seed and the layer's position).
    pub fn seed(self, value: u64) -> Self {
        self.configure("seed", |k| match k {
            LayerKind::Dropout { seed, .. } => {
                *seed = Some(value);
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization's momentum of the moving statistics (default 0.99).
    pub fn momentum(self, value: f32) -> Self {
        self.configure("momentum", |k| match k {
            LayerKind::BatchNormalization { momentum, .. } => {
                *momentum = value;
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization's epsilon (default 0.001).
    pub fn epsilon(self, value: f32) -> Self {
        self.configure("epsilon", |k| match k {
            LayerKind::BatchNormalization { epsilon, .. } => {
                *epsilon = value;
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization: learn beta (center) and gamma (scale); both default true.
    pub fn center_scale(self, with_center: bool, with_scale: bool) -> Self {
        self.configure("center_scale", |k| match k {
            LayerKind::BatchNormalization { center, scale, .. } => {
                *center = with_center;
                *scale = with_scale;
                true
            }
            _ => false,
        })
    }

    /// The layer's hyperparameters are within range.
    pub(crate) fn validate(&self, index: usize) -> Result<()> {
        if let Some(msg) = &self.deferred_error {
            return Err(Error::Model(format!("layer {index}: {msg}")));
        }
        match &self.kind {
            LayerKind::Dense { units, .. } if *units == 0 => {
                Err(Error::invalid(format!("layer {index} Dense units"), units, "must be at least 1"))
            }
            LayerKind::Dropout { rate, .. } if !(*rate >= 0.0 && *rate < 1.0) => {
                Err(Error::invalid(format!("layer {index} Dropout rate"), rate, "must be in [0, 1)"))
            }
            LayerKind::BatchNormalization { momentum, epsilon, .. } => {
                if !(*momentum >= 0.0 && *momentum <= 1.0) {
                    return Err(Error::invalid(
                        format!("layer {index} BatchNormalization momentum"),
                        momentum,
                        "must be in [0, 1]",
                    ));
                }
                if !(*epsilon > 0.0 && epsilon.is_finite()) {
                    return Err(Error::invalid(
                        format!("layer {index} BatchNormalization epsilon"),
                        epsilon,
                        "must be a positive finite number",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
        .and_then(|_| match self.input_shape {
            Some(0) => Err(Error::invalid(format!("layer {index} input_shape"), 0, "must be at least 1")),
            _ => Ok(()),
        })
    }

    /// Output width given the input width.
    pub(crate) fn output_width(&self, input: usize) -> usize {
        match self.kind {
            LayerKind::Dense { units, .. } => units,
            _ => input,
        }
    }

    /// The activation applied at the end of this layer, whose derivative the backward pass of the
    /// layer above fuses into its epilogue.
    pub(crate) fn output_activation(&self) -> Activation {
        match self.kind {
            LayerKind::Dense { activation, .. } | LayerKind::Activation { activation } => activation,
            _ => Activation::Linear,
        }
    }

    /// Keras's default name prefix.
    pub(crate) fn type_name(&self) -> &'static str {
        kind_name(&self.kind)
    }
}

fn kind_name(kind: &LayerKind) -> &'static str {
    match kind {
        LayerKind::Dense { .. } => "Dense",
        LayerKind::Activation { .. } => "Activation",
        LayerKind::Dropout { .. } => "Dropout",
        LayerKind::BatchNormalization { .. } => "BatchNormalization",
    }
}

/// A fully connected layer: `activation(x · W + b)`, W Glorot-uniform, b zeros.
pub struct Dense;

impl Dense {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(units: usize) -> Layer {
        Layer::of(LayerKind::Dense { units, activation: Activation::Linear, use_bias: true })
    }
}

/// A standalone activation layer, e.g. after BatchNormalization.
pub struct ActivationLayer;

impl ActivationLayer {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> Layer {
        Layer::of(LayerKind::Activation { activation: Activation::Linear }).activation(name)
    }
}

/// Inverted dropout: zeroes inputs with probability `rate` in training, identity at inference.
pub struct Dropout;

impl Dropout {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> Layer {
        Layer::of(LayerKind::Dropout { rate, seed: None })
    }
}

/// Batch normalization with Keras's defaults (momentum 0.99, epsilon 0.001, center, scale).
pub struct BatchNormalization;

impl BatchNormalization {
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Layer {
        Layer::of(LayerKind::BatchNormalization { momentum: 0.99, epsilon: 1e-3, center: true, scale: true })
    }
}

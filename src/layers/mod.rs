//! Layers. Each kind is one module that owns its Keras defaults, validation, weight specs,
//! initial values, kernel bindings and launches ([`LayerSpec`]); the plan composes them and
//! nothing else matches on the kind. A new layer kind is its module plus one line in
//! [`LayerKind::spec`] (and its kernels, if it brings new ones).

mod activation;
mod batchnorm;
mod dense;
mod dropout;
mod initializers;
mod normalization;

use crate::device::{Args, Backend, BufId, OpId};
use crate::error::{Error, Result};
use crate::regularizers::{IntoRegularizer, Penalty, Regularizer};

pub use activation::{Activation, ActivationConfig};
pub use batchnorm::BatchNormConfig;
pub use dense::DenseConfig;
pub use dropout::DropoutConfig;
pub use initializers::Initializer;
pub use normalization::NormalizationConfig;

/// What a layer does, with its settings (read through each config's accessors; set through
/// [`Layer`]'s builder methods). Saved as `{"type": "Dense", "units": ..}` in model files.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum LayerKind {
    /// A fully connected layer.
    Dense(DenseConfig),
    /// A standalone activation.
    Activation(ActivationConfig),
    /// Inverted dropout.
    Dropout(DropoutConfig),
    /// Batch normalization.
    BatchNormalization(BatchNormConfig),
    /// Keras's Normalization: fixed per-feature standardization learned by `adapt`.
    Normalization(NormalizationConfig),
}

impl LayerKind {
    /// The kind's module: the one place that dispatches on the kind.
    pub(crate) fn spec(&self) -> &dyn LayerSpec {
        match self {
            LayerKind::Dense(c) => c,
            LayerKind::Activation(c) => c,
            LayerKind::Dropout(c) => c,
            LayerKind::BatchNormalization(c) => c,
            LayerKind::Normalization(c) => c,
        }
    }
}

/// One named weight array of a layer (Keras's names and shapes): the one parameter counter
/// (plan sizes, summary, saved files and benchmarks all add these up).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WeightSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    /// Trainable weights live in the flat parameter vector; the others (BatchNormalization's
    /// moving statistics) in the state vector.
    pub trainable: bool,
}

impl WeightSpec {
    /// The number of values (saturating: shapes can come from a crafted file).
    pub fn len(&self) -> usize {
        self.shape.iter().try_fold(1usize, |a, b| a.checked_mul(*b)).unwrap_or(usize::MAX)
    }
}

/// Trainable and non-trainable value counts of a weight list (saturating).
pub(crate) fn count_weights(weights: &[WeightSpec]) -> (usize, usize) {
    let sum = |trainable: bool| {
        weights.iter().filter(|w| w.trainable == trainable).map(WeightSpec::len).fold(0, usize::saturating_add)
    };
    (sum(true), sum(false))
}

/// Where a layer sits in a plan: its position, widths and offsets into the flat vectors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placement {
    pub index: usize,
    pub in_w: usize,
    pub out_w: usize,
    /// Offset of the layer's trainable weights in the parameter (and gradient) vector.
    pub param_off: usize,
    pub param_len: usize,
    /// Offset of its non-trainable weights in the state vector.
    pub state_off: usize,
}

/// One pass over a batch: its rows, training or inference, and the step that (with each
/// member's seed) draws dropout masks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pass {
    pub rows: usize,
    pub training: bool,
    pub step: u32,
}

/// What a backward launch needs from the layer below: whether it wants dX at all (some layer at
/// or below it has weights) and its output activation, whose derivative multiplies dX (computed
/// from its output, kept in `below_output`). Made in one place, `Plan::below`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Below {
    pub needs_grad: bool,
    pub activation: Activation,
}

/// The buffers a layer's kernels bind.
pub(crate) struct LayerBuffers {
    pub input: BufId,
    pub output: BufId,
    /// dLoss/dOutput of this layer.
    pub grad_output: BufId,
    /// Where dX goes, when the layer below wants it.
    pub grad_input: Option<BufId>,
    /// The layer below's output, or its pre-activation when its activation needs that
    /// ([`Activation::needs_preactivation`]): its activation's derivative is computed from it.
    pub below_output: BufId,
    /// Where it writes its pre-activation (rows x out_w), when its `derivative_source` is
    /// [`DerivativeSource::OwnBuffer`].
    pub preactivation: Option<BufId>,
    /// The layer's own scratch (`LayerSpec::scratch_len` values), if it asked for one.
    pub scratch: Option<BufId>,
    pub params: BufId,
    pub grads: BufId,
    pub state: BufId,
    /// The member table (per-member settings: dropout rates and seeds, whether a member trains).
    pub table: BufId,
    /// One-value buffers for bindings a launch does not use.
    pub unused: BufId,
    pub unused_write: BufId,
}

/// A layer's bound kernels. `backward` lines up with the launches `LayerSpec::backward` returns.
pub(crate) struct LayerOps {
    pub forward_train: OpId,
    pub forward_infer: OpId,
    /// The activation applied after the forward launch (`LayerSpec::forward_activation`).
    pub forward_activation: Option<OpId>,
    pub backward: Vec<OpId>,
}

/// Where the values that a layer's activation derivative is written from live (see
/// [`Activation::needs_preactivation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DerivativeSource {
    /// Its output (every activation but silu and gelu).
    Output,
    /// Its input: an Activation layer's input is its pre-activation.
    Input,
    /// A pre-activation buffer the plan gives it (`LayerBuffers::preactivation`).
    OwnBuffer,
}

/// A layer's backward launches: at most two (Dense's dW and dX), held without an allocation per
/// batch; `None`s come last.
pub(crate) type BackwardLaunches = [Option<Args>; 2];

/// What each layer kind provides to the plan.
pub(crate) trait LayerSpec {
    /// Keras's class name ("Dense").
    fn type_name(&self) -> &'static str;
    /// Keras's default name prefix ("dense", then "dense_1", ...).
    fn name_prefix(&self) -> &'static str;
    /// The layer fits an input of `in_w` features (Normalization's statistics).
    fn check_input(&self, _index: usize, _in_w: usize) -> Result<()> {
        Ok(())
    }
    /// The hyperparameters are within range (`index`: the layer's position, for messages).
    fn validate(&self, _index: usize) -> Result<()> {
        Ok(())
    }
    fn output_width(&self, input: usize) -> usize {
        input
    }
    /// The activation applied last, whose derivative the layer above's backward multiplies in.
    fn output_activation(&self) -> Activation {
        Activation::Linear
    }
    /// Weight arrays for an input of `in_w` features, trainable first in parameter order.
    fn weights(&self, _in_w: usize) -> Vec<WeightSpec> {
        Vec::new()
    }
    /// Initial values of its slice of the parameter and state vectors.
    fn init(&self, _at: &Placement, _rng: &mut rand::rngs::StdRng, _params: &mut [f32], _state: &mut [f32]) {}
    /// Settings the summary table has no column for, as `name=value` (Dense's regularizers).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Its regularized weight arrays (Dense's kernel_regularizer and bias_regularizer).
    fn penalties(&self, _at: &Placement) -> Vec<Penalty> {
        Vec::new()
    }
    /// Values of per-batch scratch the layer keeps between forward and backward.
    fn scratch_len(&self, _width: usize) -> usize {
        0
    }
    /// Where its activation's derivative is read from (the layer above's backward, the loss).
    fn derivative_source(&self) -> DerivativeSource {
        DerivativeSource::Output
    }
    fn bind(&self, backend: &mut dyn Backend, bufs: &LayerBuffers) -> Result<LayerOps>;
    /// The forward launch (on `forward_train` or `forward_infer` by `pass.training`).
    fn forward(&self, at: &Placement, pass: &Pass) -> Args;
    /// A second forward launch (on `LayerOps::forward_activation`): the activation of a layer that
    /// keeps its pre-activation.
    fn forward_activation(&self, _at: &Placement, _pass: &Pass) -> Option<Args> {
        None
    }
    /// The backward launches, one per op in `LayerOps::backward`, in order.
    fn backward(&self, at: &Placement, pass: &Pass, below: &Below) -> BackwardLaunches;
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
    /// An [`Input`] entry: not a layer, it only fixes the input width of the layer after it
    /// (`Sequential::new` takes it off the front of the list).
    pub(crate) is_input: bool,
}

impl Layer {
    pub(crate) fn of(kind: LayerKind) -> Self {
        Layer { kind, name: None, input_shape: None, deferred_error: None, is_input: false }
    }

    fn defer(mut self, message: String) -> Self {
        self.deferred_error.get_or_insert(message);
        self
    }

    /// What kind of layer this is, with its settings.
    pub fn kind(&self) -> &LayerKind {
        &self.kind
    }

    pub(crate) fn spec(&self) -> &dyn LayerSpec {
        self.kind.spec()
    }

    /// Applies a builder option to the layer kinds it fits; on any other kind, records the misuse
    /// for `compile` to report.
    fn configure(mut self, option: &str, apply: impl FnOnce(&mut LayerKind) -> bool) -> Self {
        if self.is_input {
            return self.defer(format!("{option}() does not apply to an Input"));
        }
        if apply(&mut self.kind) {
            return self;
        }
        let msg = format!("{option}() does not apply to a {} layer", self.type_name());
        self.defer(msg)
    }

    /// Sets the activation of a Dense or Activation layer ("linear", "relu", "sigmoid").
    pub fn activation(self, name: &str) -> Self {
        let parsed = match Activation::parse(name) {
            Ok(a) => a,
            Err(e) => return self.defer(e.to_string()),
        };
        self.configure("activation", |k| match k {
            LayerKind::Dense(DenseConfig { activation, .. })
            | LayerKind::Activation(ActivationConfig { activation }) => {
                *activation = parsed;
                true
            }
            _ => false,
        })
    }

    /// How a Dense layer's kernel starts, by Keras's name (default "glorot_uniform"; also
    /// glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, zeros, ones,
    /// random_normal, random_uniform).
    pub fn kernel_initializer(self, name: &str) -> Self {
        self.initializer("kernel_initializer", name, |c, i| c.kernel_initializer = i)
    }

    /// How a Dense layer's bias starts, by Keras's name (default "zeros").
    pub fn bias_initializer(self, name: &str) -> Self {
        self.initializer("bias_initializer", name, |c, i| c.bias_initializer = i)
    }

    fn initializer(self, option: &str, name: &str, set: impl FnOnce(&mut DenseConfig, Initializer)) -> Self {
        let parsed = match Initializer::parse(name) {
            Ok(i) => i,
            Err(e) => return self.defer(e.to_string()),
        };
        self.configure(option, |k| match k {
            LayerKind::Dense(c) => {
                set(c, parsed);
                true
            }
            _ => false,
        })
    }

    /// A penalty on a Dense layer's kernel added to the loss: a [`Regularizer`] or Keras's name
    /// ("l1", "l2": factor 0.01).
    pub fn kernel_regularizer(self, regularizer: impl IntoRegularizer) -> Self {
        self.regularizer("kernel_regularizer", regularizer, |c, r| c.kernel_regularizer = Some(r))
    }

    /// A penalty on a Dense layer's bias added to the loss (see [`Layer::kernel_regularizer`]).
    pub fn bias_regularizer(self, regularizer: impl IntoRegularizer) -> Self {
        self.regularizer("bias_regularizer", regularizer, |c, r| c.bias_regularizer = Some(r))
    }

    fn regularizer(
        self,
        option: &str,
        regularizer: impl IntoRegularizer,
        set: impl FnOnce(&mut DenseConfig, Regularizer),
    ) -> Self {
        let parsed = match regularizer.into_regularizer() {
            Ok(r) => r,
            Err(e) => return self.defer(e.to_string()),
        };
        self.configure(option, |k| match k {
            LayerKind::Dense(c) => {
                set(c, parsed);
                true
            }
            _ => false,
        })
    }

    /// Whether a Dense layer adds a bias (default true).
    pub fn use_bias(self, on: bool) -> Self {
        self.configure("use_bias", |k| match k {
            LayerKind::Dense(c) => {
                c.use_bias = on;
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
            LayerKind::Dropout(c) => {
                c.seed = Some(value);
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization's momentum of the moving statistics (default 0.99).
    pub fn momentum(self, value: f32) -> Self {
        self.configure("momentum", |k| match k {
            LayerKind::BatchNormalization(c) => {
                c.momentum = value;
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization's epsilon (default 0.001).
    pub fn epsilon(self, value: f32) -> Self {
        self.configure("epsilon", |k| match k {
            LayerKind::BatchNormalization(c) => {
                c.epsilon = value;
                true
            }
            _ => false,
        })
    }

    /// BatchNormalization: learn beta (center) and gamma (scale); both default true.
    pub fn center_scale(self, with_center: bool, with_scale: bool) -> Self {
        self.configure("center_scale", |k| match k {
            LayerKind::BatchNormalization(c) => {
                c.center = with_center;
                c.scale = with_scale;
                true
            }
            _ => false,
        })
    }

    /// Normalization's statistics learned from `data` (Keras's `adapt`: each column's mean and
    /// population variance); bad data is reported by `compile`.
    pub fn adapt(self, data: &(impl crate::AsMatrix + ?Sized)) -> Self {
        let matrix = match data.as_matrix() {
            Ok(m) => m,
            Err(e) => return self.defer(format!("adapt: {e}")),
        };
        let mut failure = None;
        let layer = self.configure("adapt", |k| match k {
            LayerKind::Normalization(c) => {
                failure = c.adapt(&matrix).err();
                true
            }
            _ => false,
        });
        match failure {
            Some(e) => layer.defer(format!("adapt: {e}")),
            None => layer,
        }
    }

    /// Normalization: `mean + x * std` instead (Keras's `invert=True`). Default false.
    pub fn invert(self, on: bool) -> Self {
        self.configure("invert", |k| match k {
            LayerKind::Normalization(c) => {
                c.invert = on;
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
        if self.is_input {
            return Err(Error::Model(format!(
                "layer {index}: Input(shape) belongs at the start of the list, with at least one layer after it"
            )));
        }
        self.spec().validate(index)?;
        match self.input_shape {
            Some(0) => Err(Error::invalid(format!("layer {index} input_shape"), 0, "must be at least 1")),
            _ => Ok(()),
        }
    }

    /// Output width given the input width.
    pub(crate) fn output_width(&self, input: usize) -> usize {
        self.spec().output_width(input)
    }

    /// The activation applied at the end of this layer, whose derivative the backward pass of the
    /// layer above fuses into its epilogue.
    pub(crate) fn output_activation(&self) -> Activation {
        self.spec().output_activation()
    }

    /// Keras's class name.
    pub(crate) fn type_name(&self) -> &'static str {
        self.spec().type_name()
    }
}

/// Keras 3's `Input(shape)`, the first entry of a Sequential model as Keras 3 prefers it to an
/// `input_shape` argument: it fixes the number of input features. It is not a layer (no weights,
/// not in `summary`, as Keras's Sequential summary shows no InputLayer): `Sequential::new` takes
/// it off the list and gives its width to the first layer. An Input anywhere else, alone, with
/// width 0, or disagreeing with the first layer's own `input_shape` is an error at compile; data
/// of another width is an error at fit, evaluate and predict.
pub struct Input;

impl Input {
    /// An input of `features` values per row (Keras's `Input(shape=(features,))`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(features: usize) -> Layer {
        let mut layer = Layer::of(LayerKind::Activation(ActivationConfig { activation: Activation::Linear }));
        layer.input_shape = Some(features);
        layer.is_input = true;
        layer
    }
}

/// Takes a leading [`Input`] off `layers` and gives its width to the first layer.
pub(crate) fn apply_input(mut layers: Vec<Layer>) -> Vec<Layer> {
    if layers.len() < 2 || !layers[0].is_input {
        return layers;
    }
    let input = layers.remove(0);
    let first = &mut layers[0];
    if let Some(msg) = input.deferred_error {
        first.deferred_error.get_or_insert(format!("its Input: {msg}"));
    }
    match (first.input_shape, input.input_shape) {
        (Some(own), Some(w)) if own != w => {
            first.deferred_error.get_or_insert(format!(
                "Input(shape={w}) and this layer's input_shape({own}) disagree on the number of input features"
            ));
        }
        (_, w) => first.input_shape = w,
    }
    layers
}

/// A fully connected layer: `activation(x · W + b)`, W Glorot-uniform, b zeros.
pub struct Dense;

impl Dense {
    /// A Dense layer of `units` outputs (linear, with a bias, until set otherwise).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(units: usize) -> Layer {
        Layer::of(LayerKind::Dense(DenseConfig::new(units)))
    }
}

/// A standalone activation layer, e.g. after BatchNormalization.
pub struct ActivationLayer;

impl ActivationLayer {
    /// An activation layer applying `name` ("linear", "relu", "sigmoid"); an unknown name is reported by `compile`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> Layer {
        Layer::of(LayerKind::Activation(ActivationConfig { activation: Activation::Linear })).activation(name)
    }
}

/// Inverted dropout: zeroes inputs with probability `rate` in training, identity at inference.
pub struct Dropout;

impl Dropout {
    /// A Dropout layer that zeroes each input with probability `rate` while training.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> Layer {
        Layer::of(LayerKind::Dropout(DropoutConfig { rate, seed: None }))
    }
}

/// Keras's Normalization layer: `(x - mean) / max(sqrt(variance), 1e-7)` per feature, with the
/// statistics learned from data by [`Layer::adapt`] (or given) and saved with the model.
///
/// ```
/// use wgfit::{Dense, Device, Matrix, Normalization, Sequential};
/// # fn main() -> wgfit::Result<()> {
/// let x = Matrix::from_rows(&[[1.0, 200.0], [2.0, 400.0], [3.0, 300.0]])?;
/// let layers = vec![Normalization::new().adapt(&x), Dense::new(4).activation("relu"), Dense::new(1)];
/// let mut model = Sequential::new(&Device::cpu(), layers);
/// model.compile("adam", "mse", &[])?;
/// # Ok(())
/// # }
/// ```
pub struct Normalization;

impl Normalization {
    /// A Normalization layer without statistics: give it some with [`Layer::adapt`] (or
    /// [`Normalization::with_stats`]) before compiling.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Layer {
        Layer::of(LayerKind::Normalization(NormalizationConfig::default()))
    }

    /// A Normalization layer with given per-feature means and variances (Keras's `mean=` and
    /// `variance=` arguments).
    pub fn with_stats(mean: &[f32], variance: &[f32]) -> Layer {
        Layer::of(LayerKind::Normalization(NormalizationConfig {
            mean: Some(mean.to_vec()),
            variance: Some(variance.to_vec()),
            count: 0,
            invert: false,
        }))
    }
}

/// Batch normalization with Keras's defaults (momentum 0.99, epsilon 0.001, center, scale).
pub struct BatchNormalization;

impl BatchNormalization {
    /// A BatchNormalization layer with Keras's defaults.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Layer {
        Layer::of(LayerKind::BatchNormalization(BatchNormConfig::default()))
    }
}

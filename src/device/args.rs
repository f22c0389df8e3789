//! Typed launch arguments, one struct per kernel. The CPU twin takes the same struct; the GPU
//! gets it as a [`Uniform`] record made in one place ([`Args::uniform`]), laid out as the
//! `struct P_*` that the kernel's WGSL family declares. No field means two things.

use super::kernels::{Grid, Kernel};
use crate::layers::Activation;
use crate::losses::Loss;

/// One launch record as the GPU reads it: 32 words. The first [`MEMBER_STRIDE_WORDS`] are `ms`,
/// the member strides of the kernel's storage bindings (the GPU backend fills them from the
/// buffers it bound); a family's struct follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Uniform(pub [u32; 32]);

/// Words of `ms` at the head of every record: the member strides of storage bindings 1..=12.
pub const MEMBER_STRIDE_WORDS: usize = 12;

impl Uniform {
    /// The record of a family struct (a `#[repr(C)]` run of u32/f32 fields, at most 20).
    fn of<T: bytemuck::Pod>(fields: &T) -> Uniform {
        let mut u = Uniform::default();
        let bytes = bytemuck::bytes_of(fields);
        let at = MEMBER_STRIDE_WORDS * 4;
        bytemuck::bytes_of_mut(&mut u)[at..at + bytes.len()].copy_from_slice(bytes);
        u
    }

    /// Sets the member stride of storage binding `binding` (1..=12).
    pub fn set_member_stride(&mut self, binding: u32, stride: u32) {
        self.0[binding as usize - 1] = stride;
    }
}

/// The member table: one row per member of a plan, the settings its members may differ in, read
/// by the kernels that use them (optimizers, dropout, BatchNormalization's moving statistics).
/// Word offsets mirror the `MT_*` constants of shaders/common.wgsl.
pub mod member_table {
    /// 1: the member trains; 0: it stopped (its weights, moments and statistics stay as they are).
    pub const ACTIVE: usize = 0;
    /// Dropout's seed (u32 bits), the member's fit seed folded to 32 bits.
    pub const SEED: usize = 1;
    /// Adam's 1 - beta_1, as Keras computes it: in double precision from the decimal the user
    /// gave, then rounded to f32 (`crate::optimizers::keras_one_minus`).
    pub const ONE_MINUS_BETA_1: usize = 2;
    /// Adam's 1 - beta_2, as Keras computes it (see `ONE_MINUS_BETA_1`).
    pub const ONE_MINUS_BETA_2: usize = 3;
    /// Adam's and RMSprop's epsilon.
    pub const EPSILON: usize = 4;
    /// SGD's and RMSprop's momentum.
    pub const MOMENTUM: usize = 5;
    /// 1: Nesterov momentum.
    pub const NESTEROV: usize = 6;
    /// The member's updates before this epoch (u32 bits): dropout's step is this plus the
    /// launch's step in the epoch.
    pub const STEP: usize = 7;
    /// RMSprop's rho.
    pub const RHO: usize = 8;
    /// 1: RMSprop centered (its mean gradient in the optimizer's third slot).
    pub const CENTERED: usize = 9;
    /// 1: Adam's amsgrad (the running maximum of v in the optimizer's third slot).
    pub const AMSGRAD: usize = 10;
    /// Decoupled weight decay (0: none): `w -= w * weight_decay * lr` before the update, with
    /// the step's undecorated learning rate (`lrs[lr_at + 1]`), as Keras 3's every optimizer.
    pub const WEIGHT_DECAY: usize = 11;
    /// Keras's clipvalue (0: none): each gradient value clamped to [-c, c].
    pub const CLIP_VALUE: usize = 12;
    /// Keras's clipnorm (0: none): each variable's gradient scaled to at most this L2 norm.
    pub const CLIP_NORM: usize = 13;
    /// Keras's global_clipnorm (0: none): all gradients scaled to at most this joint L2 norm.
    pub const GLOBAL_CLIP_NORM: usize = 14;
    /// RMSprop's 1 - rho, as Keras computes it (see `ONE_MINUS_BETA_1`).
    pub const ONE_MINUS_RHO: usize = 15;
    /// Layer l's dropout rate at DROPOUT + 2 l, and its 1 / (1 - rate) at DROPOUT + 2 l + 1.
    pub const DROPOUT: usize = 16;

    /// Values in a row of a plan of `layers` layers.
    pub fn width(layers: usize) -> usize {
        DROPOUT + 2 * layers
    }
}

fn flag(on: bool) -> u32 {
    u32::from(on)
}

/// The implicit ones a Dense product appends to its A operand, so the bias rides in the product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ones {
    /// No implicit ones.
    #[default]
    None,
    /// A's last column is 1: the forward product picks up B's last row (the bias).
    LastColumn,
    /// A's last row is 1: the weight-gradient product gets dZ's column sums (the bias gradient).
    LastRow,
}

impl Ones {
    /// Every mode, in code order.
    pub const ALL: [Ones; 3] = [Ones::None, Ones::LastColumn, Ones::LastRow];

    /// The mode's code in the launch record.
    pub fn code(self) -> u32 {
        match self {
            Ones::None => 0,
            Ones::LastColumn => 1,
            Ones::LastRow => 2,
        }
    }
}

/// C (m x n, row-major at `c_off`) = epilogue(A · B), A m x k and B k x n strided views.
/// The epilogue applies `activation`, then multiplies by `derivative`'s value at `aux` (the
/// layer below's output; Linear multiplies by one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MatmulArgs {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B (the sum's length).
    pub k: u32,
    /// A's first value.
    pub a_off: u32,
    /// A's row stride.
    pub a_rs: u32,
    /// A's column stride.
    pub a_cs: u32,
    /// B's first value.
    pub b_off: u32,
    /// B's row stride.
    pub b_rs: u32,
    /// B's column stride.
    pub b_cs: u32,
    /// C's first value (C is row-major).
    pub c_off: u32,
    /// An implicit row or column of ones in A.
    pub ones: Ones,
    /// Applied to each value of C.
    pub activation: Activation,
    /// Its derivative, from `aux`, multiplies each value of C (Linear: none).
    pub derivative: Activation,
}

/// Mirrors `struct P_dense` in shaders/dense.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DenseRecord {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    ones: u32,
    activation: u32,
    derivative: u32,
}

impl MatmulArgs {
    /// The launch record of `struct P_dense`.
    pub fn uniform(&self) -> Uniform {
        Uniform::of(&DenseRecord {
            m: self.m,
            n: self.n,
            k: self.k,
            a_off: self.a_off,
            a_rs: self.a_rs,
            a_cs: self.a_cs,
            b_off: self.b_off,
            b_rs: self.b_rs,
            b_cs: self.b_cs,
            c_off: self.c_off,
            ones: self.ones.code(),
            activation: self.activation.code(),
            derivative: self.derivative.code(),
        })
    }
}

/// A storage binding as a kernel indexes it: the f32 values its array covers (for an array of
/// vec4s, its whole vec4s times 4) and the member stride the launch record gives it (`ms`, added
/// to every index for each workgroup z).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindingExtent {
    /// Values the binding's array covers.
    pub values: u64,
    /// The member stride the kernel reads from the launch record.
    pub member_stride: u32,
}

impl MatmulArgs {
    /// Whether every global index the tiled product kernels (shaders/dense_tiled.wgsl) can touch in
    /// this launch over `members` members (workgroup z) is inside its binding: A, B, C and aux in
    /// binding order. This is the proof that lets a launch run the tiled module built without
    /// runtime checks (`GpuOptions::unchecked_products`); the kernels' side of the argument, that
    /// they touch no other global index, is the `SAFETY` comment in src/device/gpu/matmul/mod.rs.
    ///
    /// The kernels read A only at stored (row, k) pairs (rows below `m`, or `m - 1` when the last
    /// row is implicit ones; k below `k`, or `k - 1` when the last column is), B at every (k, column)
    /// of the product, write C at every (row, column) after `c_off`, and read aux there (without
    /// `c_off`) only when a derivative multiplies in. Each index is a sum of nonnegative terms in
    /// u32, so the largest one below 2^32 means none wraps. A vec4 read covers 4 values from a
    /// multiple of 4 inside the same stored region, so it is in range when its last value is; a
    /// vec4 array's `values` is a multiple of 4, so a scalar read at index `i` (its vec4 `i / 4`) is
    /// in range when `i < values` too. Not proven (the checked module runs them): an empty
    /// dimension, or one of 2^31 or more, where the kernels' k loop or block origins could wrap.
    pub fn tiled_in_bounds(&self, members: u32, [a, b, c, aux]: [BindingExtent; 4]) -> bool {
        const LIMIT: u32 = 1 << 31;
        let (m, n, k) = (self.m, self.n, self.k);
        if members == 0 || m == 0 || n == 0 || k == 0 || m >= LIMIT || n >= LIMIT || k >= LIMIT {
            return false;
        }
        // u128: a member stride times the last member alone may exceed u64.
        let w = |v: u32| u128::from(v);
        let last = w(members - 1);
        let fits = |largest: u128, e: BindingExtent| largest < u128::from(e.values).min(1 << 32);
        let (stored_m, stored_k) = match self.ones {
            Ones::None => (m, k),
            Ones::LastColumn => (m, k - 1),
            Ones::LastRow => (m - 1, k),
        };
        let a_ok = stored_m == 0
            || stored_k == 0
            || fits(
                w(self.a_off)
                    + last * w(a.member_stride)
                    + w(stored_m - 1) * w(self.a_rs)
                    + w(stored_k - 1) * w(self.a_cs),
                a,
            );
        let b_ok =
            fits(w(self.b_off) + last * w(b.member_stride) + w(k - 1) * w(self.b_rs) + w(n - 1) * w(self.b_cs), b);
        let c_ok = fits(w(self.c_off) + last * w(c.member_stride) + w(m) * w(n) - 1, c);
        let aux_ok = self.derivative.code() == 0 || fits(last * w(aux.member_stride) + w(m) * w(n) - 1, aux);
        a_ok && b_ok && c_ok && aux_ok
    }
}

/// Copies `rows` dataset rows (x and y) from position `start` of the epoch (through the row
/// order when `shuffled`) into the batch buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GatherArgs {
    /// Rows to copy.
    pub rows: u32,
    /// Columns of x.
    pub x_cols: u32,
    /// Columns of y (0: no targets).
    pub y_cols: u32,
    /// Position in the row order of the first row.
    pub start: u32,
    /// Through the member's row order (else rows start.. in sequence).
    pub shuffled: bool,
}

/// `dst = activation(src)` over `len` values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ActivationArgs {
    /// Values per member.
    pub len: u32,
    /// The activation applied.
    pub activation: Activation,
}

/// `dst = src ⊙ derivative'(aux)` over `len` values: a gradient through the layer below's activation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ActivationGradArgs {
    /// Values per member.
    pub len: u32,
    /// The activation whose derivative multiplies the gradient.
    pub derivative: Activation,
}

/// Inverted dropout over `len` values per member; the mask is redrawn from (seed, step, layer,
/// index). The rate is the member's (member table, at the layer's index); the seed is the layer's
/// own when it has one, else the member's. Backward multiplies by the layer below's `derivative`
/// as well (forward ignores it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DropoutArgs {
    /// Values per member.
    pub len: u32,
    /// False: identity (inference).
    pub apply_mask: bool,
    /// The layer's own seed, folded to 32 bits (`Layer::seed`).
    pub own_seed: Option<u32>,
    /// The step in the epoch (added to the member's step count).
    pub step: u32,
    /// The layer's index (part of the mask's counter).
    pub layer: u32,
    /// Backward: the layer below's activation.
    pub derivative: Activation,
}

/// BatchNormalization over `rows` x `width` values (features are columns): gamma and beta at
/// their offsets of the parameter vector, moving mean and variance at `state_off` of the state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchNormArgs {
    /// Rows of the batch.
    pub rows: u32,
    /// Features.
    pub width: u32,
    /// Gamma's offset in the parameters.
    pub gamma_off: u32,
    /// Beta's offset in the parameters.
    pub beta_off: u32,
    /// The moving statistics' offset in the state.
    pub state_off: u32,
    /// Gamma is learned.
    pub scale: bool,
    /// Beta is learned.
    pub center: bool,
    /// Momentum of the moving statistics.
    pub momentum: f32,
    /// Added to the variance.
    pub epsilon: f32,
    /// Backward: write dX (some layer below has weights).
    pub grad_below: bool,
    /// Backward: the layer below's activation, whose derivative multiplies dX.
    pub derivative: Activation,
}

/// Values the loss kernel sums per pass: the loss and up to seven metrics (every kind of metric
/// at once fits). A weighted pass adds the weights' sum after them (shaders/loss.wgsl's VALUES
/// is this plus one).
pub const LOSS_KERNEL_VALUES: usize = 8;

/// A row pass of softmax over `rows` x `cols` values per member, in place: forward turns logits
/// into probabilities; backward turns the gradient of the output into that of the logits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SoftmaxArgs {
    /// Rows (one invocation each).
    pub rows: u32,
    /// Values per row (the classes).
    pub cols: u32,
}

/// Normalization over `len` values (`width` features per row) of each member, its mean and
/// variance at `state_off` of the state; backward multiplies in the derivative of the layer
/// below's activation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NormalizationArgs {
    /// Values (rows x width).
    pub len: u32,
    /// Features per row.
    pub width: u32,
    /// The mean's offset in the state (the variance follows it).
    pub state_off: u32,
    /// `mean + x * std` instead of `(x - mean) / std`.
    pub invert: bool,
    /// Backward: the layer below's activation, whose derivative multiplies dX.
    pub derivative: Activation,
}

/// Mirrors `struct P_normalization` in shaders/normalization.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormalizationRecord {
    len: u32,
    width: u32,
    state_off: u32,
    invert: u32,
    derivative: u32,
}

/// The loss (and its gradient when training) and the metrics of one batch, summed into the
/// accumulators at `slot`: the loss first, then the metrics in `metrics` bit order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossArgs {
    /// Rows of the batch.
    pub rows: u32,
    /// Outputs per row.
    pub cols: u32,
    /// The loss.
    pub loss: Loss,
    /// The output layer's activation, whose derivative the gradient fuses.
    pub output_activation: Activation,
    /// Bit `Metric::code()` set for each metric to compute.
    pub metrics: u32,
    /// Write the loss's gradient (training).
    pub write_gradient: bool,
    /// Add to the accumulators (else overwrite them: a pass's first batch).
    pub accumulate: bool,
    /// Where in the member's accumulators the sums go.
    pub slot: u32,
    /// Each row of y ends with its sample weight: the loss and its gradient are weighted and the
    /// weights' sum follows the metrics' sums (Keras's `sample_weight`).
    pub weighted: bool,
    /// The metrics are weighted too (Keras's `weighted_metrics`; needs `weighted`).
    pub weighted_metrics: bool,
}

/// Bits of the metrics that compare whole rows (argmax, top k): `Metric::code()` 3 and up.
const ROW_METRIC_BITS: u32 = !0b111;

impl LossArgs {
    /// Columns of the targets: one (class indices) for the sparse loss, else the output's (a
    /// weighted row of y holds one more: its weight).
    pub fn y_cols(&self) -> u32 {
        self.loss.target_width(self.cols as usize) as u32
    }

    /// The kernel takes its row path (one invocation per row): a categorical loss or a row metric.
    pub fn row_path(&self) -> bool {
        self.loss.is_row_loss() || self.metrics & ROW_METRIC_BITS != 0
    }

    /// The gradient is the fused one of the logits under a softmax output.
    pub fn fused_softmax(&self) -> bool {
        self.loss.fuses_softmax(self.output_activation)
    }
}

/// An optimizer step (Keras's Adam, SGD or RMSprop) over `len` parameters of each member:
/// hyperparameters from the member table, the learning rate from value `lr_at` of the member's
/// learning rates (Adam's with its bias correction folded in by the host, in f64) and the
/// undecorated rate weight decay uses at `lr_at + 1` (two values per step of the epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateArgs {
    /// Parameters per member.
    pub len: u32,
    /// Index of this step's learning rate in the member's rates.
    pub lr_at: u32,
    /// Weight tensors in the parameter vector (global_clipnorm sums their sums of squares).
    pub variables: u32,
}

/// The sum of squares of each variable's gradient (one segment of the flat gradient vector per
/// weight tensor, offsets in a shared table) into the member's norms buffer, for Keras's clipnorm
/// and global_clipnorm; with `clip`, each variable's gradient is then scaled by the member's
/// clipnorm (`g * c / max(norm, c)`, Keras's `_clip_by_norm`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradNormsArgs {
    /// Parameters per member.
    pub len: u32,
    /// Variables (segments) of the parameter vector.
    pub variables: u32,
    /// Scale each variable's gradient by the member's clipnorm.
    pub clip: bool,
}

/// A weight regularizer's penalty over `len` parameters at `offset` of each member: adds
/// `l1·sign(w) + 2·l2·w` to the gradients when `write_gradient`, and `rows · (l1·Σ|w| + l2·Σw²)`
/// to the loss sum at `slot` (always accumulating: it runs after the batch's loss launch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PenaltyArgs {
    /// The weights' offset in the parameters.
    pub offset: u32,
    /// How many weights.
    pub len: u32,
    /// L1 factor.
    pub l1: f32,
    /// L2 factor.
    pub l2: f32,
    /// Rows of the batch (the loss sum is per sample).
    pub rows: u32,
    /// Add the penalty's gradient (training).
    pub write_gradient: bool,
    /// The loss sum's index in the member's accumulators.
    pub slot: u32,
}

/// The confusion counts (TP, FP, TN, FN) of one batch at each of `thresholds` thresholds, into
/// the counts at `slot` (four per threshold): every output value flattened, a target positive
/// when not 0 (Keras's `multi_label=False` and bool cast). One workgroup per member, one
/// invocation per threshold (shaders/confusion.wgsl).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConfusionArgs {
    /// Rows of the batch.
    pub rows: u32,
    /// Outputs per row (the targets have as many).
    pub cols: u32,
    /// Thresholds, as (t, s) pairs in the thresholds buffer.
    pub thresholds: u32,
    /// Where in the member's counts this pass's counts start.
    pub slot: u32,
    /// Add to the counts (else overwrite them: a pass's first batch).
    pub accumulate: bool,
    /// The target rows carry their sample weight after the targets (a weighted dataset: the
    /// rows of y are `cols + 1` values).
    pub weighted: bool,
    /// Each value counts its row's weight instead of 1 (Keras's weighted_metrics).
    pub weight_counts: bool,
}

/// Mirrors `struct P_confusion` in shaders/confusion.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConfusionRecord {
    rows: u32,
    cols: u32,
    thresholds: u32,
    slot: u32,
    accumulate: u32,
    weighted: u32,
    weight_counts: u32,
}

/// Mirrors `struct P_gather` in shaders/gather.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GatherRecord {
    rows: u32,
    x_cols: u32,
    y_cols: u32,
    start: u32,
    shuffled: u32,
}

/// Mirrors `struct P_elementwise` in shaders/elementwise.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ElementwiseRecord {
    len: u32,
    activation: u32,
    derivative: u32,
}

/// Mirrors `struct P_dropout` in shaders/dropout.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DropoutRecord {
    len: u32,
    apply_mask: u32,
    own_seed: u32,
    seed: u32,
    step: u32,
    layer: u32,
    derivative: u32,
}

/// Mirrors `struct P_batchnorm` in shaders/batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BatchNormRecord {
    rows: u32,
    width: u32,
    gamma_off: u32,
    beta_off: u32,
    state_off: u32,
    scale: u32,
    center: u32,
    grad_below: u32,
    derivative: u32,
    momentum: f32,
    epsilon: f32,
}

/// Mirrors `struct P_loss` in shaders/loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossRecord {
    rows: u32,
    cols: u32,
    loss: u32,
    output_activation: u32,
    metrics: u32,
    write_gradient: u32,
    accumulate: u32,
    slot: u32,
    y_cols: u32,
    row_path: u32,
    fused_softmax: u32,
    top_k: u32,
    label_smoothing: f32,
    weighted: u32,
    weighted_metrics: u32,
}

/// Mirrors `struct P_softmax` in shaders/softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxRecord {
    rows: u32,
    cols: u32,
}

/// Mirrors `struct P_penalty` in shaders/penalty.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PenaltyRecord {
    offset: u32,
    len: u32,
    l1: f32,
    l2: f32,
    rows: u32,
    write_gradient: u32,
    slot: u32,
}

/// Mirrors `struct P_optim` in shaders/optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct OptimRecord {
    len: u32,
    lr_at: u32,
    variables: u32,
    clip: u32,
}

/// The arguments of one launch of any kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Args {
    /// Gather a batch.
    Gather(GatherArgs),
    /// A product with its epilogue.
    Matmul(MatmulArgs),
    /// An activation.
    ActivationForward(ActivationArgs),
    /// A gradient through an activation.
    ActivationBackward(ActivationGradArgs),
    /// Loss and metrics.
    Loss(LossArgs),
    /// A regularizer's penalty and gradient.
    Penalty(PenaltyArgs),
    /// Confusion counts at thresholds.
    Confusion(ConfusionArgs),
    /// Adam's update.
    Adam(UpdateArgs),
    /// SGD's update.
    Sgd(UpdateArgs),
    /// RMSprop's update.
    Rmsprop(UpdateArgs),
    /// Each variable's gradient sum of squares (and, for clipnorm, its clipping).
    GradNorms(GradNormsArgs),
    /// Dropout forward.
    DropoutForward(DropoutArgs),
    /// Dropout backward.
    DropoutBackward(DropoutArgs),
    /// BatchNormalization while training.
    BatchNormTrain(BatchNormArgs),
    /// BatchNormalization at inference.
    BatchNormInfer(BatchNormArgs),
    /// BatchNormalization backward.
    BatchNormBackward(BatchNormArgs),
    /// Softmax over rows, in place.
    SoftmaxForward(SoftmaxArgs),
    /// The gradient through a softmax, in place.
    SoftmaxBackward(SoftmaxArgs),
    /// Normalization forward.
    NormalizationForward(NormalizationArgs),
    /// Normalization backward.
    NormalizationBackward(NormalizationArgs),
}

impl Args {
    /// The kernel these arguments launch.
    pub fn kernel(&self) -> Kernel {
        match self {
            Args::Gather(_) => Kernel::Gather,
            Args::Matmul(_) => Kernel::Matmul,
            Args::ActivationForward(_) => Kernel::ActivationForward,
            Args::ActivationBackward(_) => Kernel::ActivationBackward,
            Args::Loss(_) => Kernel::Loss,
            Args::Penalty(_) => Kernel::Penalty,
            Args::Confusion(_) => Kernel::Confusion,
            Args::Adam(_) => Kernel::Adam,
            Args::Sgd(_) => Kernel::Sgd,
            Args::Rmsprop(_) => Kernel::Rmsprop,
            Args::GradNorms(_) => Kernel::GradNorms,
            Args::DropoutForward(_) => Kernel::DropoutForward,
            Args::DropoutBackward(_) => Kernel::DropoutBackward,
            Args::BatchNormTrain(_) => Kernel::BatchNormTrain,
            Args::BatchNormInfer(_) => Kernel::BatchNormInfer,
            Args::BatchNormBackward(_) => Kernel::BatchNormBackward,
            Args::SoftmaxForward(_) => Kernel::SoftmaxForward,
            Args::SoftmaxBackward(_) => Kernel::SoftmaxBackward,
            Args::NormalizationForward(_) => Kernel::NormalizationForward,
            Args::NormalizationBackward(_) => Kernel::NormalizationBackward,
        }
    }

    /// The GPU's launch record: the one place typed arguments become uniform words.
    pub fn uniform(&self) -> Uniform {
        match *self {
            Args::Gather(a) => Uniform::of(&GatherRecord {
                rows: a.rows,
                x_cols: a.x_cols,
                y_cols: a.y_cols,
                start: a.start,
                shuffled: flag(a.shuffled),
            }),
            Args::Matmul(a) => a.uniform(),
            Args::ActivationForward(a) => {
                Uniform::of(&ElementwiseRecord { len: a.len, activation: a.activation.code(), derivative: 0 })
            }
            Args::ActivationBackward(a) => {
                Uniform::of(&ElementwiseRecord { len: a.len, activation: 0, derivative: a.derivative.code() })
            }
            Args::Loss(a) => Uniform::of(&LossRecord {
                rows: a.rows,
                cols: a.cols,
                loss: a.loss.code(),
                output_activation: a.output_activation.code(),
                metrics: a.metrics,
                write_gradient: flag(a.write_gradient),
                accumulate: flag(a.accumulate),
                slot: a.slot,
                y_cols: a.y_cols(),
                row_path: flag(a.row_path()),
                fused_softmax: flag(a.fused_softmax()),
                top_k: crate::metrics::Metric::TOP_K,
                label_smoothing: a.loss.label_smoothing(),
                weighted: flag(a.weighted),
                weighted_metrics: flag(a.weighted && a.weighted_metrics),
            }),
            Args::Penalty(a) => Uniform::of(&PenaltyRecord {
                offset: a.offset,
                len: a.len,
                l1: a.l1,
                l2: a.l2,
                rows: a.rows,
                write_gradient: flag(a.write_gradient),
                slot: a.slot,
            }),
            Args::Confusion(a) => Uniform::of(&ConfusionRecord {
                rows: a.rows,
                cols: a.cols,
                thresholds: a.thresholds,
                slot: a.slot,
                accumulate: flag(a.accumulate),
                weighted: flag(a.weighted),
                weight_counts: flag(a.weight_counts),
            }),
            Args::NormalizationForward(a) | Args::NormalizationBackward(a) => Uniform::of(&NormalizationRecord {
                len: a.len,
                width: a.width,
                state_off: a.state_off,
                invert: flag(a.invert),
                derivative: a.derivative.code(),
            }),
            Args::SoftmaxForward(a) | Args::SoftmaxBackward(a) => {
                Uniform::of(&SoftmaxRecord { rows: a.rows, cols: a.cols })
            }
            Args::Adam(a) | Args::Sgd(a) | Args::Rmsprop(a) => {
                Uniform::of(&OptimRecord { len: a.len, lr_at: a.lr_at, variables: a.variables, clip: 0 })
            }
            Args::GradNorms(a) => {
                Uniform::of(&OptimRecord { len: a.len, lr_at: 0, variables: a.variables, clip: flag(a.clip) })
            }
            Args::DropoutForward(a) | Args::DropoutBackward(a) => Uniform::of(&DropoutRecord {
                len: a.len,
                apply_mask: flag(a.apply_mask),
                own_seed: flag(a.own_seed.is_some()),
                seed: a.own_seed.unwrap_or(0),
                step: a.step,
                layer: a.layer,
                derivative: a.derivative.code(),
            }),
            Args::BatchNormTrain(a) | Args::BatchNormInfer(a) | Args::BatchNormBackward(a) => {
                Uniform::of(&BatchNormRecord {
                    rows: a.rows,
                    width: a.width,
                    gamma_off: a.gamma_off,
                    beta_off: a.beta_off,
                    state_off: a.state_off,
                    scale: flag(a.scale),
                    center: flag(a.center),
                    grad_below: flag(a.grad_below),
                    derivative: a.derivative.code(),
                    momentum: a.momentum,
                    epsilon: a.epsilon,
                })
            }
        }
    }

    /// How the launch is sized on the GPU (per member: the backend adds the member axis as z).
    pub fn grid(&self) -> Grid {
        match *self {
            Args::Gather(a) => Grid::Flat(a.rows * (a.x_cols + a.y_cols)),
            Args::Matmul(a) => Grid::Tiles { m: a.m, n: a.n },
            Args::ActivationForward(a) => Grid::Flat(a.len),
            Args::ActivationBackward(a) => Grid::Flat(a.len),
            Args::Loss(_) | Args::Penalty(_) | Args::Confusion(_) => Grid::Single,
            // Four parameters per invocation (shaders/optim.wgsl).
            Args::Adam(a) | Args::Sgd(a) | Args::Rmsprop(a) => Grid::Flat(a.len.div_ceil(4)),
            // One workgroup per variable (shaders/optim.wgsl `grad_norms`).
            Args::GradNorms(a) => Grid::Groups(a.variables),
            Args::DropoutForward(a) | Args::DropoutBackward(a) => Grid::Flat(a.len),
            // One invocation per feature (column sums), or per value at inference.
            Args::BatchNormTrain(a) | Args::BatchNormBackward(a) => Grid::Flat(a.width),
            Args::BatchNormInfer(a) => Grid::Flat(a.rows * a.width),
            Args::SoftmaxForward(a) | Args::SoftmaxBackward(a) => Grid::Flat(a.rows),
            Args::NormalizationForward(a) | Args::NormalizationBackward(a) => Grid::Flat(a.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forward product over `members` members with exactly the bindings it needs: X (m x k-1,
    /// row-major), [W; b] after 5 values, Y after 3 values, aux m x n; each binding as a member
    /// buffer would have it (member strides in whole vec4s).
    fn forward(members: u32) -> (MatmulArgs, [BindingExtent; 4]) {
        let (m, n, k) = (70u32, 33u32, 20u32);
        let p = MatmulArgs {
            m,
            n,
            k,
            a_rs: k - 1,
            a_cs: 1,
            b_off: 5,
            b_rs: n,
            b_cs: 1,
            c_off: 3,
            ones: Ones::LastColumn,
            derivative: Activation::Relu,
            ..Default::default()
        };
        let extent = |len: u32| {
            let stride = len.div_ceil(4) * 4;
            BindingExtent { values: u64::from(stride * members), member_stride: stride }
        };
        (p, [extent(m * (k - 1)), extent(5 + k * n), extent(3 + m * n), extent(m * n)])
    }

    #[test]
    fn tiled_bounds_are_proven_for_exact_bindings() {
        for members in [1, 3] {
            let (p, e) = forward(members);
            assert!(p.tiled_in_bounds(members, e), "{members} members");
        }
        // C (an f32 array) of exactly its reach, not rounded to vec4s: still inside.
        let (p, mut e) = forward(1);
        e[2].values = u64::from(3 + p.m * p.n);
        assert!(p.tiled_in_bounds(1, e));
        // No derivative: aux is never read, whatever its size.
        let (mut p, mut e) = forward(2);
        p.derivative = Activation::Linear;
        e[3] = BindingExtent { values: 1, member_stride: 0 };
        assert!(p.tiled_in_bounds(2, e));
        // dW's form: A column-major with an implicit ones row (A stored (m - 1) x k).
        let (m, n, k) = (9u32, 5u32, 7u32);
        let p =
            MatmulArgs { m, n, k, a_rs: 1, a_cs: m - 1, b_rs: n, b_cs: 1, ones: Ones::LastRow, ..Default::default() };
        let exact = |values: u32| BindingExtent { values: u64::from(values), member_stride: 0 };
        assert!(p.tiled_in_bounds(1, [exact((m - 1) * k), exact(k * n), exact(m * n), exact(0)]));
        assert!(!p.tiled_in_bounds(1, [exact((m - 1) * k - 1), exact(k * n), exact(m * n), exact(0)]));
    }

    #[test]
    fn tiled_bounds_are_not_proven_one_value_short() {
        let members = 3;
        let (p, e) = forward(members);
        for binding in 0..4 {
            // The last member's block one value short of what the launch reaches.
            let mut short = e;
            let reach = match binding {
                0 => u64::from(2 * e[0].member_stride + p.m * (p.k - 1)),
                1 => u64::from(2 * e[1].member_stride + 5 + p.k * p.n),
                2 => u64::from(2 * e[2].member_stride + 3 + p.m * p.n),
                _ => u64::from(2 * e[3].member_stride + p.m * p.n),
            };
            short[binding].values = reach - 1;
            assert!(!p.tiled_in_bounds(members, short), "binding {binding} one value short");
            short[binding].values = reach;
            assert!(p.tiled_in_bounds(members, short), "binding {binding} exactly long enough");
        }
        // One member more than the bindings hold.
        assert!(!p.tiled_in_bounds(members + 1, e));
        // A stride that reaches past A, and an offset that does.
        assert!(!MatmulArgs { a_rs: p.a_rs + 1, ..p }.tiled_in_bounds(members, e));
        assert!(!MatmulArgs { c_off: 7, ..p }.tiled_in_bounds(members, e));
    }

    #[test]
    fn tiled_bounds_are_not_proven_for_degenerate_or_wrapping_launches() {
        let (p, e) = forward(1);
        assert!(!p.tiled_in_bounds(0, e));
        for q in [MatmulArgs { m: 0, ..p }, MatmulArgs { n: 0, ..p }, MatmulArgs { k: 0, ..p }] {
            assert!(!q.tiled_in_bounds(1, e), "{q:?}");
        }
        assert!(!MatmulArgs { k: 1 << 31, ..p }.tiled_in_bounds(1, e));
        // Bindings larger than u32 can index do not make a wrapping index safe.
        let huge = BindingExtent { values: 1 << 40, member_stride: 0 };
        let wide = MatmulArgs { a_rs: 1 << 28, ..p };
        assert!(!wide.tiled_in_bounds(1, [huge, e[1], e[2], e[3]]));
        assert!(MatmulArgs { a_rs: 1 << 20, ..p }.tiled_in_bounds(1, [huge, e[1], e[2], e[3]]));
        // A member stride of u32::MAX on the second of two members.
        let far = BindingExtent { values: 1 << 40, member_stride: u32::MAX };
        assert!(!p.tiled_in_bounds(2, [e[0], e[1], far, e[3]]));
    }
}

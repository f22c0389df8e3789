//! A compiled model is a plan: buffers sized once, kernels bound once, and functions that append
//! the launches of one batch (forward, loss, backward, update) to a recording.
//!
//! A plan holds K *members*: K models of one architecture, trained together. Every buffer that
//! belongs to a model is a member buffer (K blocks), every launch runs for all members, and the
//! member table holds what members may differ in (optimizer hyperparameters, dropout rates and
//! seeds, whether each still trains). One model is K = 1 of the same code.

use std::collections::HashMap;

use rand::SeedableRng;

use crate::data::DataFile;
use crate::device::{
    member_stride, member_table, ActivationGradArgs, Args, Backend, BufId, ConfusionArgs, Device, GatherArgs, Kernel,
    Launch, LossArgs, OpId, SoftmaxArgs, LOSS_KERNEL_VALUES,
};
use crate::error::{Error, Result};
use crate::layers::{
    count_weights, Activation, Below, DerivativeSource, Layer, LayerBuffers, LayerKind, LayerOps, Pass, Placement,
};
use crate::losses::Loss;
use crate::matrix::Matrix;
use crate::metrics::{MetricSet, COUNTS};
use crate::optimizers::{Clip, Optimizer};

/// Which sums of the accumulator buffer a loss pass writes: training first, evaluation after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccSlot {
    Train,
    Eval,
}

/// One member's sums of an epoch as read back: the loss kernel's (both slots, `Plan::acc_offset`)
/// and the confusion counts (`AccSlot::Train`'s thresholds, then `AccSlot::Eval`'s; empty without
/// a confusion metric).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MemberSums {
    pub sums: Vec<f32>,
    pub counts: Vec<f32>,
}

/// The confusion kernel bound to the current batch buffers (`Plan::prepare_metrics`): its
/// thresholds and the member buffer of counts, `COUNTS` per threshold per slot.
struct Confusion {
    thresholds: usize,
    counts: BufId,
    stride: usize,
    op: OpId,
}

/// Values per accumulator slot: the loss kernel's sums and, after them, a weighted pass's sum of
/// weights.
const ACC_SLOT_VALUES: usize = LOSS_KERNEL_VALUES + 1;

/// How a loss pass weighs its rows (Keras's `sample_weight`, `class_weight`,
/// `weighted_metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Weighting {
    /// The rows carry weights (the dataset was uploaded with them): the loss is weighted.
    pub rows: bool,
    /// The metrics are weighted means too.
    pub metrics: bool,
}

/// One layer of the plan: its settings and where its numbers live.
pub(crate) struct LayerSlots {
    pub layer: Layer,
    pub at: Placement,
}

/// A dataset on the device, with its gather kernel bound: uploaded whole, or streamed through a
/// chunk buffer (`chunk`). `rows` rows per member (its row order lists that many dataset rows for
/// each member).
pub(crate) struct DeviceData {
    pub role: DataRole,
    pub rows: usize,
    /// Rows per batch of the passes over it: as `Plan::upload` was asked, or for evaluation data
    /// streamed through a chunk smaller than that, the chunk's rows (wgfit chose that size, not
    /// the user).
    pub batch: usize,
    pub x_w: usize,
    pub y_w: usize,
    /// Each row of y carries its sample weight after the targets (`Plan::upload`'s weights).
    pub weighted: bool,
    pub order: BufId,
    /// Values per member of `order`.
    order_stride: usize,
    gather: OpId,
    /// Streamed from the host rather than uploaded whole.
    chunk: Option<Chunk>,
}

/// A dataset too large for one binding (or for `GpuOptions::max_data_bytes`), streamed: the
/// host writes the rows of `rows` consecutive positions of every member's order into the chunk
/// buffers (`Launch::Fill`), and the gathers of those positions read them there in sequence. The
/// batches are the same rows in the same order as from a whole upload, so training is
/// bit-identical; only where the gather reads from differs.
struct Chunk {
    /// Positions per fill: a whole number of the pass's batches, so no batch spans two fills.
    rows: usize,
    x: BufId,
    y: BufId,
    x_stride: usize,
    y_stride: usize,
    /// Each member's row order (dataset rows by position), kept on the host; empty until
    /// [`Plan::write_orders`]: the rows in sequence.
    orders: Vec<Vec<u32>>,
}

/// Where a dataset's features are on the host: a matrix, or `rows` rows of a [`DataFile`] from
/// row `first` (read from its spill file by each fill; such data always streams).
#[derive(Clone, Copy)]
pub(crate) enum Features<'d> {
    Memory(&'d Matrix),
    File { file: &'d DataFile, first: usize, rows: usize },
}

impl Features<'_> {
    pub fn rows(&self) -> usize {
        match self {
            Features::Memory(m) => m.rows(),
            Features::File { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Features::Memory(m) => m.cols(),
            Features::File { file, .. } => file.features().len(),
        }
    }
}

/// The host's copy of a dataset, which the fills of a streamed [`DeviceData`] read from: x, and
/// y with one weight per row when the upload had them.
#[derive(Clone, Copy)]
pub(crate) struct HostData<'d> {
    pub x: Features<'d>,
    pub y: Option<&'d [f32]>,
    pub weights: Option<&'d [f32]>,
}

/// A dataset as a recording's fills need it: where it is on the device, and its host copy.
pub(crate) type Feed<'d> = (&'d DeviceData, HostData<'d>);

/// The chunk budget when the data exceeds a binding and `GpuOptions::max_data_bytes` is not set:
/// large enough that a chunk's submission is long against its cost, small enough to leave the
/// device's memory to the model.
const DEFAULT_CHUNK_BYTES: usize = 256 << 20;

/// Buffers and kernels that depend on the batch capacity.
struct BatchBuffers {
    capacity: usize,
    x_batch: BufId,
    y_batch: BufId,
    out: Vec<BufId>,
    ops: Vec<LayerOps>,
    /// Per layer with a row-wise activation (softmax): its forward row pass, and its backward one
    /// when the layer's gradient is computed (`shaders/softmax.wgsl`).
    softmax: Vec<Option<(OpId, Option<OpId>)>>,
    loss: OpId,
    /// When the output activation needs its pre-activation (silu, gelu): the launch that turns
    /// the loss's dLoss/dOutput into dLoss/dPre-activation for the last layer.
    loss_derivative: Option<OpId>,
}

/// An optimizer's per-parameter state of one member, flat in parameter order: m (Adam's first
/// moment, SGD's and RMSprop's momentum), v (Adam's second moment, RMSprop's mean square) and the
/// third slot s (amsgrad's maximum of v, centered RMSprop's mean gradient; empty: zeros).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub s: Vec<f32>,
}

/// What one member of a plan may differ in from the others, as its member-table row holds it.
#[derive(Clone, Debug)]
pub(crate) struct MemberSettings {
    pub optimizer: Optimizer,
    /// The fit's seed (dropout masks; the host's row shuffles use it too).
    pub seed: u64,
    /// Each layer's dropout rate (0 for layers that are not Dropout).
    pub dropout: Vec<f32>,
    /// Updates applied before this epoch.
    pub steps: u64,
    pub active: bool,
}

impl MemberSettings {
    /// The dropout rates of `layers`, one per layer (0 where a layer is not Dropout).
    pub fn dropout_rates(layers: &[Layer]) -> Vec<f32> {
        layers
            .iter()
            .map(|l| match &l.kind {
                LayerKind::Dropout(c) => c.rate(),
                _ => 0.0,
            })
            .collect()
    }
}

pub(crate) struct Plan {
    pub backend: Box<dyn Backend>,
    pub layers: Vec<LayerSlots>,
    /// Models trained together (K); every member buffer holds K blocks.
    pub members: usize,
    pub input_w: usize,
    pub output_w: usize,
    pub n_params: usize,
    pub n_state: usize,
    pub params: BufId,
    pub grads: BufId,
    pub state: BufId,
    opt_m: BufId,
    opt_v: BufId,
    /// The optimizer's third slot (amsgrad's maximum of v, centered RMSprop's mean gradient).
    opt_s: BufId,
    /// Each weight tensor's gradient sum of squares (clipnorm, global_clipnorm), per member.
    norms: BufId,
    /// Where each weight tensor starts in the parameter vector, and the end (shared, u32).
    var_offsets: BufId,
    variables: usize,
    /// Some member clips by a norm (`grad_norms` runs before the update); some by clipnorm.
    clip_norms: (bool, bool),
    /// Loss and metric sums: `AccSlot::Train`'s, then `AccSlot::Eval`'s.
    pub acc: BufId,
    /// The confusion metrics' kernel and counts, when the compiled metrics have any.
    confusion: Option<Confusion>,
    /// One row of settings per member (`device::member_table`).
    table: BufId,
    dummy_r: BufId,
    dummy_w: BufId,
    /// The regularizers' kernel, bound to the parameters, gradients and sums.
    penalty: OpId,
    batch: Option<BatchBuffers>,
    /// The optimizer's bound update: its kernel, the learning-rate buffer it reads, the op.
    update: Option<(Kernel, BufId, OpId)>,
    /// Buffers reused across fit/evaluate/predict calls by name, and kernels bound once per
    /// binding list: repeated calls allocate nothing new unless their data outgrows the last.
    scratch: HashMap<String, (BufId, usize)>,
    bound: HashMap<(Kernel, Vec<BufId>), OpId>,
    /// Host buffers of one member's rows of a chunk fill (x, y, the dataset rows), kept between
    /// fills.
    fill_rows: (Vec<f32>, Vec<f32>, Vec<u32>),
}

/// Every layer's initial weights for `input_w` features, drawn in layer order from one
/// generator seeded with `seed` (each layer's own initializer): what a model built with this
/// seed starts from, computed on the host.
pub(crate) fn initial_weights(layer_cfgs: &[Layer], input_w: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let (layers, n_params, n_state) = place(layer_cfgs, input_w);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut p = vec![0.0f32; n_params];
    let mut s = vec![0.0f32; n_state];
    for l in &layers {
        l.layer.spec().init(&l.at, &mut rng, &mut p, &mut s);
    }
    (p, s)
}

/// Where each layer's numbers live, and the parameter and state counts (saturating: a size past
/// usize::MAX fails at buffer creation, before anything is indexed).
fn place(layer_cfgs: &[Layer], input_w: usize) -> (Vec<LayerSlots>, usize, usize) {
    let mut layers = Vec::with_capacity(layer_cfgs.len());
    let (mut n_params, mut n_state, mut width) = (0usize, 0usize, input_w);
    for (index, layer) in layer_cfgs.iter().enumerate() {
        let out_w = layer.output_width(width);
        let (param_len, state_len) = count_weights(&layer.spec().weights(width));
        let at = Placement { index, in_w: width, out_w, param_off: n_params, param_len, state_off: n_state };
        layers.push(LayerSlots { layer: layer.clone(), at });
        n_params = n_params.saturating_add(param_len);
        n_state = n_state.saturating_add(state_len);
        width = out_w;
    }
    (layers, n_params, n_state)
}

/// The offsets of the weight tensors (Keras's variables, whose gradients clipnorm clips one by
/// one) in the parameter vector, in layer order, then its length.
fn variable_offsets(layers: &[LayerSlots]) -> Vec<u32> {
    let mut offsets = Vec::new();
    for l in layers {
        let mut at = l.at.param_off;
        for w in l.layer.spec().weights(l.at.in_w).iter().filter(|w| w.trainable) {
            offsets.push(at as u32);
            at = at.saturating_add(w.len());
        }
    }
    offsets.push(layers.iter().map(|l| l.at.param_off + l.at.param_len).max().unwrap_or(0) as u32);
    offsets
}

/// Which dataset an upload holds: each role keeps its own buffers between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DataRole {
    Train,
    Valid,
    Eval,
}

impl DataRole {
    fn names(self) -> [&'static str; 3] {
        match self {
            DataRole::Train => ["training x", "training y", "training row order"],
            DataRole::Valid => ["validation x", "validation y", "validation row order"],
            DataRole::Eval => ["evaluation x", "evaluation y", "evaluation row order"],
        }
    }
}

fn u(v: usize) -> u32 {
    v as u32
}

impl Plan {
    /// Sizes every buffer for `members` models of this architecture (zero weights: write them
    /// with [`Plan::write_member_weights`] or [`Plan::initialize`]).
    pub fn build(device: &Device, layer_cfgs: &[Layer], input_w: usize, members: usize) -> Result<Plan> {
        if members == 0 {
            return Err(Error::invalid("members", 0, "a plan needs at least one model"));
        }
        for (index, layer) in layer_cfgs.iter().enumerate() {
            let width = layer_cfgs[..index].iter().fold(input_w, |w, l| l.output_width(w));
            layer.spec().check_input(index, width)?;
            if count_weights(&layer.spec().weights(width)).0 == usize::MAX {
                let out_w = layer.output_width(width);
                return Err(Error::invalid("units", out_w, format!("{width} x {out_w} weights overflow")));
            }
        }
        let (layers, n_params, n_state) = place(layer_cfgs, input_w);
        let width = layers.last().map_or(input_w, |l| l.at.out_w);
        if n_params == 0 {
            return Err(Error::Model("the model has no trainable layer (add a Dense layer)".into()));
        }
        let mut backend = device.backend(members);
        let params = backend.create_member_buffer(n_params, "parameters")?;
        let grads = backend.create_member_buffer(n_params, "gradients")?;
        let state = backend.create_member_buffer(n_state, "moving statistics")?;
        let opt_m = backend.create_member_buffer(n_params, "optimizer m")?;
        let opt_v = backend.create_member_buffer(n_params, "optimizer v")?;
        let opt_s = backend.create_member_buffer(n_params, "optimizer third slot")?;
        let offsets = variable_offsets(&layers);
        let variables = offsets.len() - 1;
        let norms = backend.create_member_buffer(variables, "gradient norms")?;
        let var_offsets = backend.create_buffer(offsets.len(), "weight tensor offsets")?;
        backend.write_u32(var_offsets, 0, &offsets)?;
        let acc = backend.create_member_buffer(2 * ACC_SLOT_VALUES, "loss and metric sums")?;
        let table = backend.create_member_buffer(member_table::width(layers.len()), "member table")?;
        let dummy_r = backend.create_member_buffer(1, "unused (read)")?;
        let dummy_w = backend.create_member_buffer(1, "unused (write)")?;
        let penalty = backend.bind(Kernel::Penalty, &[params, grads, acc])?;
        Ok(Plan {
            backend,
            layers,
            members,
            input_w,
            output_w: width,
            n_params,
            n_state,
            params,
            grads,
            state,
            opt_m,
            opt_v,
            opt_s,
            norms,
            var_offsets,
            variables,
            clip_norms: (false, false),
            acc,
            confusion: None,
            table,
            dummy_r,
            dummy_w,
            penalty,
            batch: None,
            update: None,
            scratch: HashMap::new(),
            bound: HashMap::new(),
            fill_rows: (Vec::new(), Vec::new(), Vec::new()),
        })
    }

    /// Member m's initial weights drawn from `seeds[m]` (one member per seed).
    pub fn initialize(&mut self, seeds: &[u64]) -> Result<()> {
        let cfgs: Vec<Layer> = self.layers.iter().map(|l| l.layer.clone()).collect();
        for (m, &seed) in seeds.iter().enumerate() {
            let (p, s) = initial_weights(&cfgs, self.input_w, seed);
            self.write_member_weights(m, &p, &s)?;
        }
        Ok(())
    }

    /// Values per member of the parameter and state buffers.
    fn strides(&self) -> (usize, usize) {
        (member_stride(self.n_params), member_stride(self.n_state))
    }

    /// Writes the member table: one row per member.
    pub fn write_table(&mut self, members: &[MemberSettings]) -> Result<()> {
        let width = member_table::width(self.layers.len());
        let stride = member_stride(width);
        let mut flat = vec![0.0f32; stride * self.members];
        let clips: Vec<_> = members.iter().take(self.members).map(|s| s.optimizer.clip()).collect();
        self.clip_norms = (clips.iter().any(|c| c.needs_norms()), clips.iter().any(|c| matches!(c, Clip::Norm(_))));
        for (m, s) in members.iter().enumerate().take(self.members) {
            let row = &mut flat[m * stride..m * stride + width];
            row[member_table::ACTIVE] = f32::from(u8::from(s.active));
            row[member_table::SEED] = f32::from_bits(crate::trainer::fold_seed(s.seed));
            row[member_table::STEP] = f32::from_bits(s.steps as u32);
            s.optimizer.write_member_row(row);
            for (l, &rate) in s.dropout.iter().enumerate().take(self.layers.len()) {
                row[member_table::DROPOUT + 2 * l] = rate;
                row[member_table::DROPOUT + 2 * l + 1] = 1.0 / (1.0 - rate);
            }
        }
        self.backend.write(self.table, 0, &flat)
    }

    /// Device memory the plan holds now, in bytes.
    pub fn device_bytes(&self) -> usize {
        self.backend.allocated_bytes()
    }

    /// Zeroes the optimizer's moments of every member (a fresh compile).
    pub fn reset_optimizer(&mut self) -> Result<()> {
        let zeros = vec![0.0f32; self.strides().0 * self.members];
        for buf in [self.opt_m, self.opt_v, self.opt_s] {
            self.backend.write(buf, 0, &zeros)?;
        }
        Ok(())
    }

    /// Whether the gradient of layer `l`'s output must be computed (some layer at or below has weights).
    fn needs_grad(&self, l: usize) -> bool {
        self.layers[..=l].iter().any(|s| s.at.param_len > 0)
    }

    /// What layer `l`'s backward pass needs from the layer below it: the one place that rule lives.
    fn below(&self, l: usize) -> Below {
        match l.checked_sub(1) {
            Some(b) => Below { needs_grad: self.needs_grad(b), activation: self.layers[b].layer.output_activation() },
            None => Below { needs_grad: false, activation: Activation::Linear },
        }
    }

    /// Makes the batch buffers hold `rows` rows, re-binding the kernels if they grow.
    pub fn ensure_capacity(&mut self, rows: usize) -> Result<()> {
        let rows = rows.max(1);
        if self.batch.as_ref().is_some_and(|b| b.capacity >= rows) {
            return Ok(());
        }
        let widest = self.layers.iter().map(|l| l.at.out_w).chain([self.input_w]).max().unwrap_or(1);
        let needed = member_stride(rows.saturating_mul(widest)).saturating_mul(self.members);
        if needed > self.backend.max_binding_values() {
            return Err(Error::Gpu(format!(
                "a batch of {rows} rows x {widest} values for {} models ({} bytes) exceeds the adapter's largest \
                 buffer binding ({} bytes); use a smaller batch_size or fewer models at once",
                self.members,
                needed.saturating_mul(4),
                self.backend.max_binding_values() * 4
            )));
        }
        // Bound to the batch buffers replaced below: `prepare_metrics` binds it again.
        self.confusion = None;
        let belows: Vec<Below> = (0..self.layers.len()).map(|l| self.below(l)).collect();
        let needs_grad: Vec<bool> = (0..self.layers.len()).map(|l| self.needs_grad(l)).collect();
        let b = &mut self.backend;
        let x_batch = b.create_member_buffer(rows * self.input_w, "input batch")?;
        // One more value per row: a weighted dataset's sample weight travels with its targets.
        let y_batch = b.create_member_buffer(rows * (self.output_w + 1), "target batch")?;
        let mut out = Vec::new();
        let mut grad = Vec::new();
        let mut scratch = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            out.push(b.create_member_buffer(rows * slots.at.out_w, &format!("layer {l} output"))?);
            grad.push(b.create_member_buffer(rows * slots.at.out_w, &format!("layer {l} gradient"))?);
            let len = slots.layer.spec().scratch_len(slots.at.out_w);
            scratch.push(if len > 0 {
                Some(b.create_member_buffer(len, &format!("layer {l} scratch"))?)
            } else {
                None
            });
        }
        // What each layer's activation derivative is read from: its output, or its pre-activation
        // (silu, gelu: Activation::needs_preactivation).
        let mut pre = Vec::new();
        let mut derivative_src = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            let source = slots.layer.spec().derivative_source();
            let own = match source {
                DerivativeSource::OwnBuffer => {
                    Some(b.create_member_buffer(rows * slots.at.out_w, &format!("layer {l} pre-activation"))?)
                }
                _ => None,
            };
            derivative_src.push(match source {
                DerivativeSource::Output => out[l],
                DerivativeSource::Input if l == 0 => x_batch,
                DerivativeSource::Input => out[l - 1],
                DerivativeSource::OwnBuffer => own.unwrap_or(out[l]),
            });
            pre.push(own);
        }
        let last = self.layers.len() - 1;
        let last_activation = self.layers[last].layer.output_activation();
        let grad_pre = if last_activation.needs_preactivation() {
            Some(b.create_member_buffer(rows * self.output_w, "output pre-activation gradient")?)
        } else {
            None
        };
        let mut ops = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            let bufs = LayerBuffers {
                input: if l == 0 { x_batch } else { out[l - 1] },
                output: out[l],
                grad_output: if l == last { grad_pre.unwrap_or(grad[l]) } else { grad[l] },
                grad_input: if belows[l].needs_grad { Some(grad[l - 1]) } else { None },
                below_output: if l > 0 { derivative_src[l - 1] } else { self.dummy_r },
                preactivation: pre[l],
                scratch: scratch[l],
                params: self.params,
                grads: self.grads,
                state: self.state,
                table: self.table,
                unused: self.dummy_r,
                unused_write: self.dummy_w,
            };
            ops.push(slots.layer.spec().bind(b.as_mut(), &bufs)?);
        }
        let mut softmax = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            softmax.push(if slots.layer.output_activation().is_row_wise() {
                let forward = b.bind(Kernel::SoftmaxForward, &[out[l]])?;
                let backward =
                    if needs_grad[l] { Some(b.bind(Kernel::SoftmaxBackward, &[grad[l], out[l]])?) } else { None };
                Some((forward, backward))
            } else {
                None
            });
        }
        let loss = b.bind(Kernel::Loss, &[out[last], y_batch, grad[last], self.acc])?;
        let loss_derivative = match grad_pre {
            Some(g) => Some(b.bind(Kernel::ActivationBackward, &[grad[last], g, derivative_src[last]])?),
            None => None,
        };
        self.batch = Some(BatchBuffers { capacity: rows, x_batch, y_batch, out, ops, softmax, loss, loss_derivative });
        Ok(())
    }

    /// A buffer of at least `len` values (for each member when `per_member`) kept under
    /// `name`: reused while it is large enough, replaced by one of the next power-of-two size when not.
    pub fn scratch(&mut self, name: &str, len: usize, per_member: bool) -> Result<BufId> {
        self.scratch_sized(name, len, per_member, false)
    }

    /// [`Plan::scratch`], and with `exact` a new buffer of exactly `len` (a chunk, whose size is a
    /// promise about device memory).
    fn scratch_sized(&mut self, name: &str, len: usize, per_member: bool, exact: bool) -> Result<BufId> {
        if let Some(&(id, cap)) = self.scratch.get(name) {
            if cap >= len {
                return Ok(id);
            }
        }
        let most = self.backend.max_binding_values() / if per_member { self.members } else { 1 };
        let grown = len.max(1).checked_next_power_of_two().unwrap_or(len).min(most.max(len));
        let cap = if exact { len.max(1) } else { grown };
        let id = if per_member {
            self.backend.create_member_buffer(cap, name)?
        } else {
            self.backend.create_buffer(cap, name)?
        };
        self.scratch.insert(name.to_string(), (id, cap));
        Ok(id)
    }

    /// The member stride of a member scratch buffer made by [`Plan::scratch`].
    pub fn scratch_stride(&self, name: &str) -> usize {
        self.scratch.get(name).map_or(0, |&(_, cap)| member_stride(cap))
    }

    /// `kernel` bound to `buffers`, binding it only the first time.
    fn bind_once(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId> {
        if let Some(&op) = self.bound.get(&(kernel, buffers.to_vec())) {
            return Ok(op);
        }
        let op = self.backend.bind(kernel, buffers)?;
        self.bound.insert((kernel, buffers.to_vec()), op);
        Ok(op)
    }

    /// Puts a dataset (x and, for training or evaluation, y; all members read it) on the device
    /// for `role`, makes a row order of `rows` rows per member and binds the gather kernel.
    /// `weights` (one per dataset row, with y): each row of y is stored with its weight after the
    /// targets, so the gather copies it with the batch and the loss kernel reads it there.
    ///
    /// The dataset is uploaded whole when it fits one binding and `GpuOptions::max_data_bytes`;
    /// otherwise (and always for the rows of a [`DataFile`]) it streams through the chunk buffers
    /// (see [`Chunk`]) in fills of a whole number of `batch`-row batches (the batch size of the
    /// passes that will gather it).
    pub fn upload(&mut self, role: DataRole, host: HostData<'_>, rows: usize, batch: usize) -> Result<DeviceData> {
        let batch_bufs = self.batch.as_ref().ok_or_else(|| Error::Internal("upload before ensure_capacity".into()))?;
        let (x_batch, y_batch) = (batch_bufs.x_batch, batch_bufs.y_batch);
        let HostData { x: features, y, weights } = host;
        let data_rows = features.rows();
        // The loss's target width: the output's, or one column of class indices (sparse loss).
        let y_w = match y {
            Some(y) if data_rows > 0 => y.len() / data_rows,
            Some(_) => self.output_w,
            None => 0,
        };
        if y_w > self.output_w {
            return Err(Error::Internal(format!("targets of {y_w} columns for {} outputs", self.output_w)));
        }
        let weighted = weights.is_some() && y.is_some();
        if let (Some(y), Some(w)) = (y, weights) {
            if w.len() * y_w.max(1) != y.len() {
                return Err(Error::Internal(format!("{} weights for {} target rows", w.len(), y.len() / y_w.max(1))));
            }
        }
        let [x_name, y_name, order_name] = role.names();
        let x_len = data_rows.saturating_mul(features.cols());
        let y_len = y.map_or(0, |y| y.len() + if weighted { y.len() / y_w.max(1) } else { 0 });
        let order_len = member_stride(rows).saturating_mul(self.members);
        let max = self.backend.max_binding_values();
        let whole_bytes = x_len.saturating_add(y_len).saturating_add(order_len).saturating_mul(4);
        let fits = x_len <= max && y_len <= max && order_len <= max;
        let whole = match features {
            Features::Memory(m) if fits && self.backend.max_data_bytes().is_none_or(|most| whole_bytes <= most) => {
                Some(m.data())
            }
            _ => None,
        };
        let Some(x) = whole else {
            // Evaluation's batch size is wgfit's choice: it shrinks to fit the chunk.
            let batch = match self.chunk_capacity() {
                Some(c) if role == DataRole::Eval && c > 0 => batch.min(c),
                _ => batch,
            };
            let chunk = self.chunk(data_rows, rows, batch)?;
            let gather = self.bind_once(Kernel::Gather, &[chunk.x, chunk.y, self.dummy_r, x_batch, y_batch])?;
            return Ok(DeviceData {
                role,
                rows,
                batch,
                x_w: self.input_w,
                y_w,
                weighted,
                order: self.dummy_r,
                order_stride: 0,
                gather,
                chunk: Some(chunk),
            });
        };
        let x_buf = self.scratch(x_name, x.len(), false)?;
        self.backend.write(x_buf, 0, x)?;
        let y_buf = match (y, weights) {
            (Some(y), Some(w)) => {
                let yw = y_w.max(1);
                let mut rows_w = Vec::with_capacity(y.len() + w.len());
                for (t, &wv) in y.chunks(yw).zip(w) {
                    rows_w.extend_from_slice(t);
                    rows_w.push(wv);
                }
                let buf = self.scratch(y_name, rows_w.len(), false)?;
                self.backend.write(buf, 0, &rows_w)?;
                buf
            }
            (Some(y), None) => {
                let buf = self.scratch(y_name, y.len(), false)?;
                self.backend.write(buf, 0, y)?;
                buf
            }
            (None, _) => self.dummy_r,
        };
        let order = self.scratch(order_name, rows, true)?;
        let gather = self.bind_once(Kernel::Gather, &[x_buf, y_buf, order, x_batch, y_batch])?;
        let order_stride = self.scratch_stride(order_name);
        Ok(DeviceData { role, rows, batch, x_w: self.input_w, y_w, weighted, order, order_stride, gather, chunk: None })
    }

    /// The chunk budget in bytes (`max_data_bytes`, else the default within one binding), and
    /// whether the user set it.
    fn chunk_budget(&self) -> (usize, Option<usize>) {
        let set = self.backend.max_data_bytes();
        (set.unwrap_or(DEFAULT_CHUNK_BYTES.min(self.backend.max_binding_values().saturating_mul(4))), set)
    }

    /// Device bytes of chunk buffers holding `rows` rows per member (x, and y with a weight), and
    /// the larger buffer's values.
    fn chunk_bytes(&self, rows: usize) -> (usize, usize) {
        let k = self.members;
        let (xw, yw) = (self.input_w.max(1), self.output_w + 1);
        let (xs, ys) = (member_stride(rows * xw).saturating_mul(k), member_stride(rows * yw).saturating_mul(k));
        (xs.saturating_add(ys).saturating_mul(4), xs.max(ys))
    }

    /// Rows per member the chunk buffers hold within the budget (and one binding each); None
    /// when not one row fits.
    fn chunk_capacity(&self) -> Option<usize> {
        let (budget, _) = self.chunk_budget();
        let max_values = self.backend.max_binding_values();
        let (xw, yw, k) = (self.input_w.max(1), self.output_w + 1, self.members.max(1));
        let mut capacity = (budget / 4 / k / (xw + yw)).min(max_values / k / xw.max(yw));
        while capacity > 0 {
            let (bytes, widest) = self.chunk_bytes(capacity);
            if bytes <= budget && widest <= max_values {
                return Some(capacity);
            }
            capacity -= 1;
        }
        None
    }

    /// The chunk buffers for a streamed dataset of `data_rows` rows (`rows` positions per member,
    /// gathered `batch` at a time). The buffers are sized by the budget, for the widest y a batch
    /// holds, so that every role of the plan shares one pair: as many rows per member as
    /// `max_data_bytes` (or the default) holds for all members, x and y (and a weight) together;
    /// or, for data that fits one fill, its rows (a larger dataset later makes the budget's pair).
    fn chunk(&mut self, data_rows: usize, rows: usize, batch: usize) -> Result<Chunk> {
        let capacity = self.chunk_capacity().unwrap_or(0);
        let part = if capacity >= rows { rows } else { capacity / batch.max(1) * batch.max(1) };
        if part == 0 {
            let (budget, set) = self.chunk_budget();
            let one = batch.min(rows).max(1);
            let (xw, yw) = (self.input_w.max(1), self.output_w + 1);
            let what = format!(
                "at least {} bytes: a chunk of the data holds one batch of {one} rows x {} values (x {xw}, y and \
                 weight {yw}) for {} model(s)",
                self.chunk_bytes(one).0,
                xw + yw,
                self.members
            );
            return Err(match set {
                Some(b) => Error::invalid("max_data_bytes (GpuOptions::max_data_bytes, WGFIT_MAX_DATA_BYTES)", b, what),
                None => Error::Gpu(format!(
                    "the data ({data_rows} rows) exceeds the adapter's largest buffer binding and streams in chunks of \
                     at most {budget} bytes, but a chunk needs {what}; use a smaller batch_size or fewer models at once"
                )),
            });
        }
        // Data that fits one fill (a small DataFile, which always streams) takes only its rows.
        let held = if capacity >= rows { rows } else { capacity };
        let (xw, yw) = (self.input_w.max(1), self.output_w + 1);
        let x = self.scratch_sized("data chunk x", held * xw, true, true)?;
        let y = self.scratch_sized("data chunk y", held * yw, true, true)?;
        Ok(Chunk {
            rows: part,
            x,
            y,
            x_stride: self.scratch_stride("data chunk x"),
            y_stride: self.scratch_stride("data chunk y"),
            orders: Vec::new(),
        })
    }

    /// Writes each member's row order of `data` (dataset row indices, `data.rows` per member):
    /// to the device, or for a streamed dataset kept on the host for its fills.
    pub fn write_orders(&mut self, data: &mut DeviceData, orders: &[Vec<u32>]) -> Result<()> {
        for (m, order) in orders.iter().enumerate().take(self.members) {
            if order.len() != data.rows {
                return Err(Error::Internal(format!("member {m}'s order has {} rows, not {}", order.len(), data.rows)));
            }
        }
        if let Some(c) = data.chunk.as_mut() {
            c.orders.resize(self.members, Vec::new());
            for (kept, order) in c.orders.iter_mut().zip(orders) {
                kept.clear();
                kept.extend_from_slice(order);
            }
            return Ok(());
        }
        let stride = data.order_stride;
        let mut flat = vec![0u32; stride * self.members];
        for (m, order) in orders.iter().enumerate().take(self.members) {
            flat[m * stride..m * stride + order.len()].copy_from_slice(order);
        }
        self.backend.write_u32(data.order, 0, &flat)
    }

    /// Writes positions `start..start + rows` of `data` into its chunk buffers: each member's rows
    /// (through its order when `shuffled`, else in sequence) gathered on the host from `host`.
    fn fill(&mut self, data: &DeviceData, host: HostData<'_>, start: usize, rows: usize, shuffled: bool) -> Result<()> {
        let c = data.chunk.as_ref().ok_or_else(|| Error::Internal("a fill of data uploaded whole".into()))?;
        let (xw, yw) = (data.x_w, data.y_w);
        let (mut xs, mut ys, mut picked) = std::mem::take(&mut self.fill_rows);
        let out_of = || Error::Internal(format!("a fill of rows {start}.. past the data"));
        // Every member's rows at once, member after member: a file's spans are then read once
        // for all the members of a sweep, not once per member.
        picked.clear();
        for m in 0..self.members {
            for p in start..start + rows {
                picked.push(match (shuffled, c.orders.get(m)) {
                    (true, Some(order)) => *order.get(p).ok_or_else(out_of)?,
                    (true, None) => return Err(Error::Internal("a shuffled fill before its row order".into())),
                    (false, _) => u32::try_from(p).map_err(|_| out_of())?,
                });
            }
        }
        xs.clear();
        match host.x {
            Features::Memory(x) => {
                for &r in &picked {
                    let r = r as usize;
                    xs.extend_from_slice(x.data().get(r * xw..(r + 1) * xw).ok_or_else(out_of)?);
                }
            }
            Features::File { file, first, rows: n } => {
                if picked.iter().any(|&r| r as usize >= n) || file.features().len() != xw {
                    return Err(out_of());
                }
                file.read_features(first, &picked, &mut xs)?;
            }
        }
        ys.clear();
        if let Some(y) = host.y {
            for &r in &picked {
                let r = r as usize;
                ys.extend_from_slice(y.get(r * yw..(r + 1) * yw).ok_or_else(out_of)?);
                if data.weighted {
                    ys.push(*host.weights.and_then(|w| w.get(r)).ok_or_else(out_of)?);
                }
            }
        }
        let y_row = yw + usize::from(data.weighted);
        for m in 0..self.members {
            self.backend.write(c.x, m * c.x_stride, &xs[m * rows * xw..(m + 1) * rows * xw])?;
            if !ys.is_empty() {
                self.backend.write(c.y, m * c.y_stride, &ys[m * rows * y_row..(m + 1) * rows * y_row])?;
            }
        }
        self.fill_rows = (xs, ys, picked);
        Ok(())
    }

    /// Runs a recording and reads back `reads`: in one submission, or, when it holds fills of
    /// streamed data, in one submission per fill, each fill written from `feeds` (the datasets
    /// the recording gathers, by role) just before the launches that read it. The device runs
    /// one piece while the host gathers the next (`Backend::submit`).
    pub fn run_recording(
        &mut self,
        launches: &[Launch],
        reads: &[(BufId, std::ops::Range<usize>)],
        feeds: &[Feed<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        let mut rest = launches;
        loop {
            while let Some(&Launch::Fill { role, start, rows, shuffled }) = rest.first() {
                let &(data, host) = feeds
                    .iter()
                    .find(|(d, _)| d.role == role)
                    .ok_or_else(|| Error::Internal(format!("a fill of {role:?} data with no host copy given")))?;
                self.fill(data, host, start, rows, shuffled)?;
                rest = &rest[1..];
            }
            match rest.iter().position(|l| matches!(l, Launch::Fill { .. })) {
                Some(next) => {
                    self.backend.submit(&rest[..next])?;
                    rest = &rest[next..];
                }
                None => return self.backend.run(rest, reads),
            }
        }
    }

    fn batch(&self) -> &BatchBuffers {
        self.batch.as_ref().expect("ensure_capacity runs before any launch")
    }

    /// The buffer holding the network's output for the current batch.
    pub fn output_buffer(&self) -> BufId {
        *self.batch().out.last().expect("at least one layer")
    }

    /// Copies rows `start..start + rows` of `data` (in `order` when `shuffled`) into the batch
    /// buffers. For streamed data, a gather at the start of a fill's positions first marks the
    /// fill (`Launch::Fill`): a pass gathers its positions in increasing order from 0.
    pub fn gather(&self, data: &DeviceData, start: usize, rows: usize, shuffled: bool, out: &mut Vec<Launch>) {
        let (start, shuffled) = match &data.chunk {
            Some(c) => {
                let first = start - start % c.rows;
                if first == start {
                    let rows = c.rows.min(data.rows - start);
                    out.push(Launch::Fill { role: data.role, start, rows, shuffled });
                }
                (start - first, false)
            }
            None => (start, shuffled),
        };
        let y_cols = u(data.y_w + usize::from(data.weighted));
        let args = GatherArgs { rows: u(rows), x_cols: u(data.x_w), y_cols, start: u(start), shuffled };
        out.push(Launch::Run { op: data.gather, args: Args::Gather(args) });
    }

    /// The forward pass of one batch; `step` (the step in the epoch) drives dropout masks when training.
    pub fn forward(&self, rows: usize, training: bool, step: u32, out: &mut Vec<Launch>) {
        let b = self.batch();
        let pass = Pass { rows, training, step };
        for ((s, ops), softmax) in self.layers.iter().zip(&b.ops).zip(&b.softmax) {
            let op = if training { ops.forward_train } else { ops.forward_infer };
            out.push(Launch::Run { op, args: s.layer.spec().forward(&s.at, &pass) });
            if let (Some(op), Some(args)) = (ops.forward_activation, s.layer.spec().forward_activation(&s.at, &pass)) {
                out.push(Launch::Run { op, args });
            }
            if let Some((op, _)) = softmax {
                out.push(Launch::Run { op: *op, args: Args::SoftmaxForward(self.softmax_args(s, rows)) });
            }
        }
    }

    fn softmax_args(&self, s: &LayerSlots, rows: usize) -> SoftmaxArgs {
        SoftmaxArgs { rows: u(rows), cols: u(s.at.out_w) }
    }

    /// Layer `l`'s softmax backward row pass (after the gradient of its output is written), if it has one.
    fn softmax_backward(&self, l: usize, rows: usize, out: &mut Vec<Launch>) {
        if let Some((_, Some(op))) = self.batch().softmax[l] {
            out.push(Launch::Run { op, args: Args::SoftmaxBackward(self.softmax_args(&self.layers[l], rows)) });
        }
    }

    /// Every member's outputs for every row of `x` (inference mode), flat row-major per member:
    /// one recording of batches of up to 1024 rows and one readback, or for streamed data (or
    /// outputs larger than one binding) one per part of the rows.
    pub fn predict(&mut self, x: Features<'_>) -> Result<Vec<Vec<f32>>> {
        let rows = x.rows();
        self.ensure_capacity(rows.clamp(1, 1024))?;
        let host = HostData { x, y: None, weights: None };
        let data = self.upload(DataRole::Eval, host, rows, rows.clamp(1, 1024))?;
        let (w, k, batch) = (self.output_w, self.members, data.batch);
        let part = match &data.chunk {
            Some(c) => c.rows,
            None => {
                let most = (self.backend.max_binding_values() / k).saturating_sub(4) / w.max(1);
                rows.min((most / batch * batch).max(batch))
            }
        }
        .max(1);
        let preds = self.scratch("predictions", part * w, true)?;
        let stride = self.scratch_stride("predictions");
        let mut out: Vec<Vec<f32>> = (0..k).map(|_| Vec::with_capacity(rows * w)).collect();
        let mut launches = Vec::new();
        for first in (0..rows).step_by(part) {
            let in_part = part.min(rows - first);
            launches.clear();
            for start in (first..first + in_part).step_by(batch) {
                let n = batch.min(rows - start);
                self.gather(&data, start, n, false, &mut launches);
                self.forward(n, false, 0, &mut launches);
                let (src, dst_off) = (self.output_buffer(), (start - first) * w);
                launches.push(Launch::Copy { src, src_off: 0, dst: preds, dst_off, len: n * w, member: None });
            }
            let read = [(preds, 0..stride * k)];
            let all = self.run_recording(&launches, &read, &[(&data, host)])?.pop().unwrap_or_default();
            for (m, block) in all.chunks(stride.max(1)).take(k).enumerate() {
                out[m].extend_from_slice(&block[..in_part * w]);
            }
        }
        Ok(out)
    }

    /// The accumulator index where `slot`'s sums start.
    pub fn acc_offset(metrics: &MetricSet, slot: AccSlot) -> usize {
        match slot {
            AccSlot::Train => 0,
            // The training sums, then the training weights' sum.
            AccSlot::Eval => metrics.values() + 1,
        }
    }

    /// Makes the confusion kernel ready for `metrics` (after [`Plan::ensure_capacity`]): its
    /// thresholds written, its counts buffer (both slots) made, bound to the batch buffers.
    /// Nothing without a confusion metric.
    pub fn prepare_metrics(&mut self, metrics: &MetricSet) -> Result<()> {
        let n = metrics.thresholds();
        if n == 0 {
            self.confusion = None;
            return Ok(());
        }
        let (out, y) = {
            let b =
                self.batch.as_ref().ok_or_else(|| Error::Internal("prepare_metrics before ensure_capacity".into()))?;
            (*b.out.last().expect("at least one layer"), b.y_batch)
        };
        let thr = self.scratch("metric thresholds", 2 * n, false)?;
        self.backend.write(thr, 0, metrics.threshold_pairs())?;
        let counts = self.scratch("confusion counts", 2 * COUNTS * n, true)?;
        let op = self.bind_once(Kernel::Confusion, &[out, y, thr, counts])?;
        let stride = self.scratch_stride("confusion counts");
        self.confusion = Some(Confusion { thresholds: n, counts, stride, op });
        Ok(())
    }

    /// Runs `launches` (one submission, or one per fill of the streamed data in `feeds`) and
    /// reads back the loss and metric sums of both slots, one block per member.
    pub fn run_for_sums(&mut self, launches: &[Launch], feeds: &[Feed<'_>]) -> Result<Vec<MemberSums>> {
        let reads = self.sums_read();
        let all = self.run_recording(launches, &reads, feeds)?;
        Ok(self.split_sums(&all))
    }

    /// The reads of every member's loss and metric sums, and of the confusion counts.
    pub fn sums_read(&self) -> Vec<(BufId, std::ops::Range<usize>)> {
        let mut reads = vec![(self.acc, 0..member_stride(2 * ACC_SLOT_VALUES) * self.members)];
        if let Some(c) = &self.confusion {
            reads.push((c.counts, 0..c.stride * self.members));
        }
        reads
    }

    /// The values of [`Plan::sums_read`], one block per member.
    pub fn split_sums(&self, all: &[Vec<f32>]) -> Vec<MemberSums> {
        let stride = member_stride(2 * ACC_SLOT_VALUES);
        (0..self.members)
            .map(|m| {
                let sums = all.first().and_then(|a| a.get(m * stride..(m + 1) * stride)).unwrap_or_default().to_vec();
                let counts = match (&self.confusion, all.get(1)) {
                    (Some(c), Some(a)) => {
                        a.get(m * c.stride..m * c.stride + 2 * COUNTS * c.thresholds).unwrap_or_default().to_vec()
                    }
                    _ => Vec::new(),
                };
                MemberSums { sums, counts }
            })
            .collect()
    }

    /// Where `slot`'s confusion counts start in a member's counts.
    pub fn counts_offset(metrics: &MetricSet, slot: AccSlot) -> usize {
        match slot {
            AccSlot::Train => 0,
            AccSlot::Eval => COUNTS * metrics.thresholds(),
        }
    }

    /// Loss and metrics of the current batch into the accumulators at `slot` (the gradient too
    /// when training), weighted as `weighting` says (its rows only when the batch was gathered
    /// from a weighted upload).
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        loss: Loss,
        metrics: &MetricSet,
        rows: usize,
        training: bool,
        accumulate: bool,
        slot: AccSlot,
        weighting: Weighting,
        out: &mut Vec<Launch>,
    ) {
        let output_activation = self.layers.last().map_or(Activation::Linear, |l| l.layer.output_activation());
        // silu and gelu differentiate from the pre-activation, which the loss kernel does not
        // read: it writes dLoss/dOutput and a second launch multiplies in the derivative.
        let separate = self.batch().loss_derivative.filter(|_| training);
        let args = LossArgs {
            rows: u(rows),
            cols: u(self.output_w),
            loss,
            output_activation: if output_activation.needs_preactivation() {
                Activation::Linear
            } else {
                output_activation
            },
            metrics: metrics.mask(),
            write_gradient: training,
            accumulate,
            slot: u(Plan::acc_offset(metrics, slot)),
            weighted: weighting.rows,
            weighted_metrics: weighting.rows && weighting.metrics,
        };
        out.push(Launch::Run { op: self.batch().loss, args: Args::Loss(args) });
        if let Some(op) = separate {
            let args = ActivationGradArgs { len: u(rows * self.output_w), derivative: output_activation };
            out.push(Launch::Run { op, args: Args::ActivationBackward(args) });
        }
        if let Some(c) = &self.confusion {
            let args = ConfusionArgs {
                rows: u(rows),
                cols: u(self.output_w),
                thresholds: u(c.thresholds),
                slot: u(Plan::counts_offset(metrics, slot)),
                accumulate,
                weighted: weighting.rows,
                weight_counts: weighting.rows && weighting.metrics,
            };
            out.push(Launch::Run { op: c.op, args: Args::Confusion(args) });
        }
        if !training {
            self.penalties(rows, false, Plan::acc_offset(metrics, slot), out);
        }
        // The loss wrote the gradient of a softmax output's values, unless it fused the softmax.
        if training && !args.fused_softmax() {
            self.softmax_backward(self.layers.len() - 1, rows, out);
        }
    }

    /// The regularizers' penalties added to the loss sum at `slot_offset` (Keras counts them in
    /// every batch's loss, evaluation included), and their gradients when `training`.
    fn penalties(&self, rows: usize, training: bool, slot_offset: usize, out: &mut Vec<Launch>) {
        for s in &self.layers {
            for p in s.layer.spec().penalties(&s.at) {
                out.push(Launch::Run { op: self.penalty, args: Args::Penalty(p.launch(rows, training, slot_offset)) });
            }
        }
    }

    /// Gradients of every weight for the current batch (after `loss` with training on), the
    /// regularizers' included (their penalties join the training loss sum here, once the
    /// backward pass has written the gradients they add to).
    pub fn backward(&self, rows: usize, step: u32, out: &mut Vec<Launch>) {
        let b = self.batch();
        let pass = Pass { rows, training: true, step };
        for l in (0..self.layers.len()).rev() {
            if !self.needs_grad(l) {
                break;
            }
            if l + 1 < self.layers.len() {
                // The layer above wrote the gradient of this layer's softmax output (Plan::loss
                // handles the last layer's).
                self.softmax_backward(l, rows, out);
            }
            let s = &self.layers[l];
            let launches = s.layer.spec().backward(&s.at, &pass, &self.below(l));
            for (&op, args) in b.ops[l].backward.iter().zip(launches.into_iter().flatten()) {
                out.push(Launch::Run { op, args });
            }
        }
        // The training sums (AccSlot::Train) start at 0 whatever the metrics.
        self.penalties(rows, true, 0, out);
    }

    /// The optimizer's update of every weight of every member at once, each member with its
    /// rates of step `step` in `lrs` (a member buffer of the epoch's rates,
    /// `optimizers::RATES_PER_STEP` per step). When a member clips by a norm (as the last
    /// [`Plan::write_table`] said), the weight tensors' gradient norms are summed first.
    pub fn update(&mut self, optimizer: &Optimizer, step: usize, lrs: BufId, out: &mut Vec<Launch>) -> Result<()> {
        let args = optimizer.launch(self.n_params, self.variables, step);
        let kernel = args.kernel();
        if self.clip_norms.0 {
            let bufs = [self.grads, self.norms, self.var_offsets, self.table];
            let op = self.bind_once(Kernel::GradNorms, &bufs)?;
            out.push(Launch::Run {
                op,
                args: Optimizer::norms_launch(self.n_params, self.variables, self.clip_norms.1),
            });
        }
        // Looked up once per step: kept by kernel and rates buffer, so a step allocates nothing.
        let op = match self.update {
            Some((k, l, op)) if k == kernel && l == lrs => op,
            _ => {
                let bufs = [self.params, self.grads, self.opt_m, self.opt_v, self.table, lrs, self.opt_s, self.norms];
                let op = self.bind_once(kernel, &bufs)?;
                self.update = Some((kernel, lrs, op));
                op
            }
        };
        out.push(Launch::Run { op, args });
        Ok(())
    }

    /// Every member's parameters and moving statistics, read back to the host.
    pub fn read_member_weights(&mut self) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let (ps, ss) = self.strides();
        let k = self.members;
        let mut r = self.backend.read(&[(self.params, 0..ps * k), (self.state, 0..ss * k)])?;
        let s = r.pop().unwrap_or_default();
        let p = r.pop().unwrap_or_default();
        Ok((0..k)
            .map(|m| (p[m * ps..m * ps + self.n_params].to_vec(), s[m * ss..m * ss + self.n_state].to_vec()))
            .collect())
    }

    /// Every member's optimizer moments (m, v, and the third slot), read back to the host.
    pub fn read_member_moments(&mut self) -> Result<Vec<Moments>> {
        let ps = self.strides().0;
        let k = self.members;
        let r = self.backend.read(&[(self.opt_m, 0..ps * k), (self.opt_v, 0..ps * k), (self.opt_s, 0..ps * k)])?;
        let n = self.n_params;
        let block = |b: usize, i: usize| r.get(b).map_or_else(Vec::new, |all| all[i * ps..i * ps + n].to_vec());
        Ok((0..k).map(|i| Moments { m: block(0, i), v: block(1, i), s: block(2, i) }).collect())
    }

    /// Replaces member `m`'s parameters and moving statistics.
    pub fn write_member_weights(&mut self, m: usize, params: &[f32], state: &[f32]) -> Result<()> {
        if params.len() != self.n_params || state.len() != self.n_state {
            return Err(Error::shape(
                "set_weights",
                format!("{} parameters and {} moving statistics (the model's)", self.n_params, self.n_state),
                format!("{} and {}", params.len(), state.len()),
            ));
        }
        let (ps, ss) = self.strides();
        self.backend.write(self.params, m * ps, params)?;
        self.backend.write(self.state, m * ss, state)
    }

    /// Replaces member `member`'s optimizer moments (an empty third slot: zeros, as an older
    /// model file or an optimizer without one leaves it).
    pub fn write_member_moments(&mut self, member: usize, moments: &Moments) -> Result<()> {
        let n = self.n_params;
        let Moments { m, v, s } = moments;
        if m.len() != n || v.len() != n || !(s.is_empty() || s.len() == n) {
            return Err(Error::shape(
                "optimizer state",
                format!("moments of {n} values each (the model's parameters)"),
                format!("moments of {}, {} and {} values", m.len(), v.len(), s.len()),
            ));
        }
        let ps = self.strides().0;
        self.backend.write(self.opt_m, member * ps, m)?;
        self.backend.write(self.opt_v, member * ps, v)?;
        if s.is_empty() {
            self.backend.write(self.opt_s, member * ps, &vec![0.0; n])
        } else {
            self.backend.write(self.opt_s, member * ps, s)
        }
    }

    /// Reads every parameter and moving statistic of the first member back to the host.
    pub fn read_weights(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut r = self.backend.read(&[(self.params, 0..self.n_params), (self.state, 0..self.n_state)])?;
        let s = r.pop().unwrap_or_default();
        let p = r.pop().unwrap_or_default();
        Ok((p, s))
    }

    /// The first member's optimizer moments (Adam's m and v; SGD's momentum in m; RMSprop's
    /// momentum in m and mean square in v; the third slot).
    pub fn read_optimizer_moments(&mut self) -> Result<Moments> {
        let n = self.n_params;
        let mut r = self.backend.read(&[(self.opt_m, 0..n), (self.opt_v, 0..n), (self.opt_s, 0..n)])?;
        let s = r.pop().unwrap_or_default();
        let v = r.pop().unwrap_or_default();
        let m = r.pop().unwrap_or_default();
        Ok(Moments { m, v, s })
    }

    pub fn write_optimizer_moments(&mut self, moments: &Moments) -> Result<()> {
        self.write_member_moments(0, moments)
    }

    pub fn write_weights(&mut self, params: &[f32], state: &[f32]) -> Result<()> {
        self.write_member_weights(0, params, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchNormalization, Dense};

    /// clipnorm's weight tensors: each layer's trainable weights in order, where the layer's
    /// parameters sit (kernel then bias; gamma then beta), then the parameter count.
    #[test]
    fn variable_offsets_follow_the_parameter_layout() {
        let layers = vec![Dense::new(3).input_shape(2), BatchNormalization::new(), Dense::new(1)];
        let (slots, n_params, _) = place(&layers, 2);
        assert_eq!(variable_offsets(&slots), [0, 6, 9, 12, 15, 18, 19]);
        assert_eq!(n_params, 19);
    }
}

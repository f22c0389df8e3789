//! A compiled model is a plan: buffers sized once, kernels bound once, and functions that append
//! the launches of one batch (forward, loss, backward, update) to a recording.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

use crate::device::{Backend, BufId, Device, Kernel, Launch, OpId, Params};
use crate::error::{Error, Result};
use crate::layers::{Activation, Layer, LayerKind};
use crate::losses::Loss;
use crate::optimizers::Optimizer;

/// Slots of the accumulator buffer: training sums first, validation sums after.
pub(crate) const TRAIN_SLOT: u32 = 0;
pub(crate) const EVAL_SLOT: u32 = 4;
pub(crate) const ACC_LEN: usize = 8;

/// Where one layer's numbers live.
pub(crate) struct LayerSlots {
    pub layer: Layer,
    pub in_w: usize,
    pub out_w: usize,
    /// Dense: W (in x out) then b (out) at this offset of the parameter vector.
    /// BatchNormalization: gamma then beta.
    pub param_off: usize,
    pub param_len: usize,
    /// BatchNormalization: moving mean then moving variance at this offset of the state vector.
    pub state_off: usize,
}

impl LayerSlots {
    fn bn_offsets(&self) -> (usize, usize, u32) {
        let LayerKind::BatchNormalization { center, scale, .. } = self.layer.kind else { return (0, 0, 0) };
        let gamma = self.param_off;
        let beta = self.param_off + if scale { self.out_w } else { 0 };
        (gamma, beta, u32::from(scale) | (u32::from(center) << 1))
    }
}

/// A dataset uploaded to the device, with its gather kernel bound.
pub(crate) struct DeviceData {
    pub rows: usize,
    pub x_w: usize,
    pub y_w: usize,
    pub order: BufId,
    gather: OpId,
}

/// Buffers and kernels that depend on the batch capacity.
struct BatchBuffers {
    capacity: usize,
    x_batch: BufId,
    y_batch: BufId,
    out: Vec<BufId>,
    forward_train: Vec<OpId>,
    forward_infer: Vec<OpId>,
    backward: Vec<Vec<OpId>>,
    loss: OpId,
}

pub(crate) struct Plan {
    pub backend: Box<dyn Backend>,
    pub layers: Vec<LayerSlots>,
    pub input_w: usize,
    pub output_w: usize,
    pub n_params: usize,
    pub n_state: usize,
    pub params: BufId,
    pub grads: BufId,
    pub state: BufId,
    opt_m: BufId,
    opt_v: BufId,
    pub acc: BufId,
    dummy_r: BufId,
    dummy_w: BufId,
    batch: Option<BatchBuffers>,
    update: Option<(Kernel, OpId)>,
    /// Buffers reused across fit/evaluate/predict calls by name, and kernels bound once per
    /// binding list: repeated calls allocate nothing new unless their data outgrows the last.
    scratch: HashMap<&'static str, (BufId, usize)>,
    bound: HashMap<(Kernel, Vec<BufId>), OpId>,
}

/// Which dataset an upload holds: each role keeps its own buffers between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Sizes every buffer, draws the initial weights (Glorot-uniform, zero biases) from `seed`.
    pub fn build(device: &Device, layer_cfgs: &[Layer], input_w: usize, seed: u64) -> Result<Plan> {
        let mut backend = device.backend();
        let mut layers = Vec::with_capacity(layer_cfgs.len());
        let (mut n_params, mut n_state, mut width) = (0usize, 0usize, input_w);
        for layer in layer_cfgs {
            let out_w = layer.output_width(width);
            let (param_len, state_len) = match layer.kind {
                LayerKind::Dense { units, use_bias, .. } => {
                    let len = width.checked_mul(units).and_then(|w| w.checked_add(if use_bias { units } else { 0 }));
                    let too_big = || Error::invalid("units", units, format!("{width} x {units} weights overflow"));
                    (len.ok_or_else(too_big)?, 0)
                }
                LayerKind::BatchNormalization { center, scale, .. } => {
                    (width.saturating_mul(usize::from(center) + usize::from(scale)), width.saturating_mul(2))
                }
                _ => (0, 0),
            };
            layers.push(LayerSlots {
                layer: layer.clone(),
                in_w: width,
                out_w,
                param_off: n_params,
                param_len,
                state_off: n_state,
            });
            // Saturating: a size past usize::MAX fails at create_buffer, before anything is indexed.
            n_params = n_params.saturating_add(param_len);
            n_state = n_state.saturating_add(state_len);
            width = out_w;
        }
        if n_params == 0 {
            return Err(Error::Model("the model has no trainable layer (add a Dense layer)".into()));
        }
        let params = backend.create_buffer(n_params, "parameters")?;
        let grads = backend.create_buffer(n_params, "gradients")?;
        let state = backend.create_buffer(n_state, "moving statistics")?;
        let opt_m = backend.create_buffer(n_params, "optimizer m")?;
        let opt_v = backend.create_buffer(n_params, "optimizer v")?;
        let acc = backend.create_buffer(ACC_LEN, "loss and metric sums")?;
        let dummy_r = backend.create_buffer(1, "unused (read)")?;
        let dummy_w = backend.create_buffer(1, "unused (write)")?;
        let mut plan = Plan {
            backend,
            layers,
            input_w,
            output_w: width,
            n_params,
            n_state,
            params,
            grads,
            state,
            opt_m,
            opt_v,
            acc,
            dummy_r,
            dummy_w,
            batch: None,
            update: None,
            scratch: HashMap::new(),
            bound: HashMap::new(),
        };
        let (p, s) = plan.initial_values(seed);
        plan.backend.write(plan.params, 0, &p)?;
        plan.backend.write(plan.state, 0, &s)?;
        Ok(plan)
    }

    /// Glorot-uniform kernels, zero biases, gamma 1, beta 0, moving mean 0, moving variance 1.
    fn initial_values(&self, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut p = vec![0.0f32; self.n_params];
        let mut s = vec![0.0f32; self.n_state];
        for l in &self.layers {
            match l.layer.kind {
                LayerKind::Dense { .. } => {
                    let limit = (6.0 / (l.in_w + l.out_w) as f64).sqrt() as f32;
                    for v in &mut p[l.param_off..l.param_off + l.in_w * l.out_w] {
                        *v = rng.random_range(-limit..limit);
                    }
                }
                LayerKind::BatchNormalization { scale, .. } => {
                    if scale {
                        p[l.param_off..l.param_off + l.out_w].fill(1.0);
                    }
                    s[l.state_off + l.out_w..l.state_off + 2 * l.out_w].fill(1.0);
                }
                _ => {}
            }
        }
        (p, s)
    }

    /// Zeroes the optimizer's moments (a fresh compile).
    pub fn reset_optimizer(&mut self) -> Result<()> {
        let zeros = vec![0.0f32; self.n_params];
        self.backend.write(self.opt_m, 0, &zeros)?;
        self.backend.write(self.opt_v, 0, &zeros)?;
        Ok(())
    }

    /// Whether the gradient of layer `l`'s output must be computed (some layer at or below has weights).
    fn needs_grad(&self, l: usize) -> bool {
        self.layers[..=l].iter().any(|s| s.param_len > 0)
    }

    /// Makes the batch buffers hold `rows` rows, re-binding the kernels if they grow.
    pub fn ensure_capacity(&mut self, rows: usize) -> Result<()> {
        let rows = rows.max(1);
        if self.batch.as_ref().is_some_and(|b| b.capacity >= rows) {
            return Ok(());
        }
        let widest = self.layers.iter().map(|l| l.out_w).chain([self.input_w]).max().unwrap_or(1);
        let needed = rows.saturating_mul(widest);
        if needed > self.backend.max_binding_values() {
            return Err(Error::Gpu(format!(
                "a batch of {rows} rows x {widest} values ({} bytes) exceeds the adapter's largest buffer \
                 binding ({} bytes); use a smaller batch_size",
                needed.saturating_mul(4),
                self.backend.max_binding_values() * 4
            )));
        }
        let b = &mut self.backend;
        let x_batch = b.create_buffer(rows * self.input_w, "input batch")?;
        let y_batch = b.create_buffer(rows * self.output_w, "target batch")?;
        let mut out = Vec::new();
        let mut grad = Vec::new();
        let mut saved = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            out.push(b.create_buffer(rows * slots.out_w, &format!("layer {l} output"))?);
            grad.push(b.create_buffer(rows * slots.out_w, &format!("layer {l} gradient"))?);
            saved.push(match slots.layer.kind {
                LayerKind::BatchNormalization { .. } => Some(b.create_buffer(2 * slots.out_w, "batch statistics")?),
                _ => None,
            });
        }
        let (dr, dw) = (self.dummy_r, self.dummy_w);
        let mut forward_train = Vec::new();
        let mut forward_infer = Vec::new();
        let mut backward = Vec::new();
        for (l, slots) in self.layers.iter().enumerate() {
            let input = if l == 0 { x_batch } else { out[l - 1] };
            let (train, infer) = match slots.layer.kind {
                LayerKind::Dense { .. } => {
                    let op = b.bind(Kernel::Matmul, &[input, self.params, out[l], dr])?;
                    (op, op)
                }
                LayerKind::Activation { .. } => {
                    let op = b.bind(Kernel::ActivationForward, &[input, out[l], dr])?;
                    (op, op)
                }
                LayerKind::Dropout { .. } => {
                    let op = b.bind(Kernel::DropoutForward, &[input, out[l]])?;
                    (op, op)
                }
                LayerKind::BatchNormalization { .. } => {
                    let s = saved[l].expect("made above");
                    (
                        b.bind(Kernel::BatchNormTrain, &[input, self.params, self.state, out[l], s])?,
                        b.bind(Kernel::BatchNormInfer, &[input, self.params, self.state, out[l]])?,
                    )
                }
            };
            forward_train.push(train);
            forward_infer.push(infer);
            let below_grad = l > 0 && self.layers[..l].iter().any(|s| s.param_len > 0);
            let dx = if below_grad { grad[l - 1] } else { dw };
            let below_out = if l > 0 { out[l - 1] } else { dr };
            let mut ops = Vec::new();
            match slots.layer.kind {
                LayerKind::Dense { .. } => {
                    ops.push(b.bind(Kernel::Matmul, &[input, grad[l], self.grads, dr])?);
                    if below_grad {
                        ops.push(b.bind(Kernel::Matmul, &[grad[l], self.params, dx, below_out])?);
                    }
                }
                LayerKind::Activation { .. } if below_grad => {
                    ops.push(b.bind(Kernel::ActivationBackward, &[grad[l], dx, below_out])?);
                }
                LayerKind::Dropout { .. } if below_grad => {
                    ops.push(b.bind(Kernel::DropoutBackward, &[grad[l], dx, below_out])?);
                }
                LayerKind::BatchNormalization { .. } => {
                    let s = saved[l].expect("made above");
                    ops.push(b.bind(
                        Kernel::BatchNormBackward,
                        &[input, self.params, s, grad[l], dx, self.grads, below_out],
                    )?);
                }
                _ => {}
            }
            backward.push(ops);
        }
        let last = self.layers.len() - 1;
        let loss = b.bind(Kernel::Loss, &[out[last], y_batch, grad[last], self.acc])?;
        self.batch =
            Some(BatchBuffers { capacity: rows, x_batch, y_batch, out, forward_train, forward_infer, backward, loss });
        Ok(())
    }

    /// A buffer of at least `len` values kept under `name`: reused while it is large enough,
    /// replaced by one of the next power-of-two size when not.
    pub fn scratch(&mut self, name: &'static str, len: usize) -> Result<BufId> {
        if let Some(&(id, cap)) = self.scratch.get(name) {
            if cap >= len {
                return Ok(id);
            }
        }
        let cap = len.max(1).checked_next_power_of_two().unwrap_or(len).min(self.backend.max_binding_values().max(len));
        let id = self.backend.create_buffer(cap, name)?;
        self.scratch.insert(name, (id, cap));
        Ok(id)
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

    /// Uploads a dataset (x and, for training or evaluation, y) into `role`'s buffers and binds
    /// its gather kernel.
    pub fn upload(&mut self, role: DataRole, x: &[f32], y: Option<&[f32]>, rows: usize) -> Result<DeviceData> {
        let batch =
            self.batch.as_ref().ok_or_else(|| Error::State("internal: upload before ensure_capacity".into()))?;
        let (x_batch, y_batch) = (batch.x_batch, batch.y_batch);
        let y_w = if y.is_some() { self.output_w } else { 0 };
        let max = self.backend.max_binding_values();
        if x.len() > max {
            return Err(Error::Gpu(format!(
                "the data ({rows} rows x {} columns, {} bytes) exceeds the adapter's largest buffer binding \
                 ({} bytes)",
                self.input_w,
                x.len() * 4,
                max * 4
            )));
        }
        let [x_name, y_name, order_name] = role.names();
        let x_buf = self.scratch(x_name, x.len())?;
        self.backend.write(x_buf, 0, x)?;
        let y_buf = match y {
            Some(y) => {
                let buf = self.scratch(y_name, y.len())?;
                self.backend.write(buf, 0, y)?;
                buf
            }
            None => self.dummy_r,
        };
        let order = self.scratch(order_name, rows)?;
        let gather = self.bind_once(Kernel::Gather, &[x_buf, y_buf, order, x_batch, y_batch])?;
        Ok(DeviceData { rows, x_w: self.input_w, y_w, order, gather })
    }

    fn batch(&self) -> &BatchBuffers {
        self.batch.as_ref().expect("ensure_capacity runs before any launch")
    }

    /// The buffer holding the network's output for the current batch.
    pub fn output_buffer(&self) -> BufId {
        *self.batch().out.last().expect("at least one layer")
    }

    /// Copies rows `start..start + rows` of `data` (in `order` when `shuffled`) into the batch buffers.
    pub fn gather(&self, data: &DeviceData, start: usize, rows: usize, shuffled: bool, out: &mut Vec<Launch>) {
        let params = Params {
            rows: u(rows),
            n: u(data.x_w),
            k: u(data.y_w),
            start: u(start),
            flags: u32::from(shuffled),
            ..Default::default()
        };
        out.push(Launch::Run { op: data.gather, params });
    }

    /// The forward pass of one batch; `step` and `seed` drive dropout masks when training.
    pub fn forward(&self, rows: usize, training: bool, step: u32, seed: u32, out: &mut Vec<Launch>) {
        let b = self.batch();
        for (l, s) in self.layers.iter().enumerate() {
            let op = if training { b.forward_train[l] } else { b.forward_infer[l] };
            let params = match s.layer.kind {
                LayerKind::Dense { activation, use_bias, .. } => Params {
                    m: u(rows),
                    n: u(s.out_w),
                    k: u(s.in_w + usize::from(use_bias)),
                    a_rs: u(s.in_w),
                    a_cs: 1,
                    b_off: u(s.param_off),
                    b_rs: u(s.out_w),
                    b_cs: 1,
                    aug: u32::from(use_bias),
                    act: activation.code(),
                    ..Default::default()
                },
                LayerKind::Activation { activation } => {
                    Params { total: u(rows * s.out_w), act: activation.code(), ..Default::default() }
                }
                LayerKind::Dropout { rate, seed: own } => Params {
                    total: u(rows * s.out_w),
                    flags: u32::from(training && rate > 0.0),
                    f0: rate,
                    f1: 1.0 / (1.0 - rate),
                    seed: own.map_or(seed, |v| v as u32),
                    step,
                    layer: u(l),
                    ..Default::default()
                },
                LayerKind::BatchNormalization { momentum, epsilon, .. } => {
                    let (gamma, beta, flags) = s.bn_offsets();
                    Params {
                        rows: u(rows),
                        n: u(s.out_w),
                        total: u(rows * s.out_w),
                        a_off: u(gamma),
                        b_off: u(beta),
                        c_off: u(s.state_off),
                        flags,
                        f0: momentum,
                        f1: epsilon,
                        ..Default::default()
                    }
                }
            };
            out.push(Launch::Run { op, params });
        }
    }

    /// Loss and metrics of the current batch into the accumulators at `slot` (the gradient too when training).
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        loss: &Loss,
        metrics: u32,
        rows: usize,
        training: bool,
        accumulate: bool,
        slot: u32,
        out: &mut Vec<Launch>,
    ) {
        let act = self.layers.last().map_or(Activation::Linear, |l| l.layer.output_activation());
        let params = Params {
            rows: u(rows),
            n: u(self.output_w),
            k: loss.code(),
            act: act.code(),
            m: metrics,
            flags: u32::from(training) | (u32::from(accumulate) << 1),
            slot,
            ..Default::default()
        };
        out.push(Launch::Run { op: self.batch().loss, params });
    }

    /// Gradients of every weight for the current batch (after `loss` with training on).
    pub fn backward(&self, rows: usize, step: u32, seed: u32, out: &mut Vec<Launch>) {
        let b = self.batch();
        for l in (0..self.layers.len()).rev() {
            if !self.needs_grad(l) {
                break;
            }
            let s = &self.layers[l];
            let dact = if l > 0 { self.layers[l - 1].layer.output_activation().code() } else { 0 };
            let ops = &b.backward[l];
            match s.layer.kind {
                LayerKind::Dense { use_bias, .. } => {
                    let dw = Params {
                        m: u(s.in_w + usize::from(use_bias)),
                        n: u(s.out_w),
                        k: u(rows),
                        a_rs: 1,
                        a_cs: u(s.in_w),
                        b_rs: u(s.out_w),
                        b_cs: 1,
                        c_off: u(s.param_off),
                        aug: if use_bias { 2 } else { 0 },
                        ..Default::default()
                    };
                    out.push(Launch::Run { op: ops[0], params: dw });
                    if let Some(&op) = ops.get(1) {
                        let dx = Params {
                            m: u(rows),
                            n: u(s.in_w),
                            k: u(s.out_w),
                            a_rs: u(s.out_w),
                            a_cs: 1,
                            b_off: u(s.param_off),
                            b_rs: 1,
                            b_cs: u(s.out_w),
                            dact,
                            ..Default::default()
                        };
                        out.push(Launch::Run { op, params: dx });
                    }
                }
                LayerKind::Activation { .. } => {
                    if let Some(&op) = ops.first() {
                        out.push(Launch::Run {
                            op,
                            params: Params { total: u(rows * s.out_w), dact, ..Default::default() },
                        });
                    }
                }
                LayerKind::Dropout { rate, seed: own } => {
                    if let Some(&op) = ops.first() {
                        let params = Params {
                            total: u(rows * s.out_w),
                            flags: u32::from(rate > 0.0),
                            f0: rate,
                            f1: 1.0 / (1.0 - rate),
                            seed: own.map_or(seed, |v| v as u32),
                            step,
                            layer: u(l),
                            dact,
                            ..Default::default()
                        };
                        out.push(Launch::Run { op, params });
                    }
                }
                LayerKind::BatchNormalization { .. } => {
                    let (gamma, beta, flags) = s.bn_offsets();
                    let below_grad = l > 0 && self.needs_grad(l - 1);
                    let params = Params {
                        rows: u(rows),
                        n: u(s.out_w),
                        a_off: u(gamma),
                        b_off: u(beta),
                        flags: flags | (u32::from(below_grad) << 2),
                        dact,
                        ..Default::default()
                    };
                    out.push(Launch::Run { op: ops[0], params });
                }
            }
        }
    }

    /// The optimizer's update of every weight at once; `t` counts updates from 1.
    pub fn update(&mut self, optimizer: &Optimizer, t: u64, out: &mut Vec<Launch>) -> Result<()> {
        let kernel = match optimizer {
            Optimizer::Adam(_) => Kernel::Adam,
            _ => Kernel::Sgd,
        };
        let op = match self.update {
            Some((k, op)) if k == kernel => op,
            _ => {
                let op = self.backend.bind(kernel, &[self.params, self.grads, self.opt_m, self.opt_v])?;
                self.update = Some((kernel, op));
                op
            }
        };
        let params = optimizer_params(optimizer, t, self.n_params)?;
        out.push(Launch::Run { op, params });
        Ok(())
    }

    /// Reads every parameter and moving statistic back to the host.
    pub fn read_weights(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut r = self.backend.read(&[(self.params, 0..self.n_params), (self.state, 0..self.n_state)])?;
        let s = r.pop().unwrap_or_default();
        let p = r.pop().unwrap_or_default();
        Ok((p, s))
    }

    /// The optimizer's moments (Adam's m and v; SGD's momentum in m), read back to the host.
    pub fn read_optimizer_moments(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut r = self.backend.read(&[(self.opt_m, 0..self.n_params), (self.opt_v, 0..self.n_params)])?;
        let v = r.pop().unwrap_or_default();
        let m = r.pop().unwrap_or_default();
        Ok((m, v))
    }

    pub fn write_optimizer_moments(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        if m.len() != self.n_params || v.len() != self.n_params {
            return Err(Error::shape(
                "optimizer state",
                format!("the model has {} parameters, the moments have {} and {}", self.n_params, m.len(), v.len()),
            ));
        }
        self.backend.write(self.opt_m, 0, m)?;
        self.backend.write(self.opt_v, 0, v)
    }

    pub fn write_weights(&mut self, params: &[f32], state: &[f32]) -> Result<()> {
        if params.len() != self.n_params || state.len() != self.n_state {
            return Err(Error::shape(
                "set_weights",
                format!(
                    "the model has {} parameters and {} moving statistics, got {} and {}",
                    self.n_params,
                    self.n_state,
                    params.len(),
                    state.len()
                ),
            ));
        }
        self.backend.write(self.params, 0, params)?;
        self.backend.write(self.state, 0, state)
    }
}

/// The launch record of one optimizer update of `n` parameters; `t` counts updates from 1.
/// Adam's bias correction is folded into the learning rate in f64 (Keras folds it in f32: a few ulps apart).
pub(crate) fn optimizer_params(optimizer: &Optimizer, t: u64, n: usize) -> Result<Params> {
    Ok(match optimizer {
        Optimizer::Adam(a) => {
            let (b1, b2, t) = (a.beta_1 as f64, a.beta_2 as f64, t as f64);
            let lr_t = a.learning_rate as f64 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
            Params { total: u(n), f0: lr_t as f32, f1: a.beta_1, f2: a.beta_2, f3: a.epsilon, ..Default::default() }
        }
        Optimizer::Sgd(s) => Params {
            total: u(n),
            f0: s.learning_rate,
            f1: s.momentum,
            flags: u32::from(s.nesterov),
            ..Default::default()
        },
        Optimizer::Named(_) => return Err(Error::State("internal: optimizer not resolved".into())),
    })
}

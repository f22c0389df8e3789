//! `Sequential`: compile a list of layers into a plan, then fit, evaluate and predict by replaying it.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::callbacks::{Callback, Logs, Progress, SnapshotOp, TrainContext};
use crate::device::{BufId, Device, Launch};
use crate::error::{Error, Result};
use crate::history::History;
use crate::layers::Layer;
use crate::losses::{Loss, Metric};
use crate::matrix::Matrix;
use crate::optimizers::Optimizer;
use crate::plan::{DataRole, Plan, ACC_LEN, EVAL_SLOT, TRAIN_SLOT};

/// Updates applied so far, and the optimizer's m and v, flat in parameter order.
pub(crate) type OptimizerMoments = (u64, Vec<f32>, Vec<f32>);

/// The settings of one `fit` call (Keras's keyword arguments).
#[derive(Default)]
pub struct Fit<'a> {
    pub(crate) validation: Option<(&'a Matrix, &'a Matrix)>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) epochs: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) shuffle: Option<bool>,
    pub(crate) verbose: Option<u8>,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
    pub(crate) validation_split: Option<f32>,
}

impl<'a> Fit<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Data to evaluate at the end of every epoch (`val_loss`, `val_<metric>`).
    pub fn validation_data(mut self, x: &'a Matrix, y: &'a Matrix) -> Self {
        self.validation = Some((x, y));
        self
    }

    /// Keras's `validation_split`: hold out the last `fraction` of the rows (taken before any
    /// shuffling) as validation data. Ignored when `validation_data` is given, as in Keras.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = Some(fraction);
        self
    }

    /// Rows per gradient step (default 32, as Keras).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Passes over the training data (default 1, as Keras; 0 trains nothing and returns an empty History).
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = Some(n);
        self
    }

    /// Seed of the epoch shuffles and dropout masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Shuffle the training rows every epoch (default true).
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = Some(on);
        self
    }

    /// 0 silent (nothing printed), 1 a progress bar over the epochs with the latest loss and ETA
    /// when stderr is a terminal (one line per epoch otherwise), 2 one line per epoch. Default: 1 on
    /// a terminal, 2 otherwise.
    pub fn verbose(mut self, level: u8) -> Self {
        self.verbose = Some(level);
        self
    }

    /// Adds callbacks (Keras's `callbacks=[...]`), run in order at every hook.
    pub fn callbacks(mut self, list: Vec<Box<dyn Callback + 'a>>) -> Self {
        self.callbacks.extend(list);
        self
    }

    /// Adds one callback. Pass `&mut cb` to keep it and read its state after fit
    /// (e.g. [`EarlyStopping::stopped_epoch`](crate::EarlyStopping::stopped_epoch)).
    pub fn callback(mut self, cb: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }
}

struct Compiled {
    optimizer: Optimizer,
    loss: Loss,
    /// (key, metric) in the user's order.
    metrics: Vec<(String, Metric)>,
    metric_mask: u32,
}

impl Compiled {
    /// Index (after the loss) of a metric's slot in the accumulators: the kernel writes metrics
    /// in METRIC_* bit order.
    fn metric_slot(&self, m: Metric) -> usize {
        1 + (self.metric_mask & ((1 << m.code()) - 1)).count_ones() as usize
    }
}

/// A stack of layers, each feeding the next, trained as one model.
pub struct Sequential {
    device: Device,
    layers: Vec<Layer>,
    seed: u64,
    compiled: Option<Compiled>,
    plan: Option<Plan>,
    /// Optimizer updates applied so far (Adam's t).
    steps: u64,
}

impl Sequential {
    /// A model on `device`. Nothing is checked or allocated until `compile`.
    pub fn new(device: &Device, layers: Vec<Layer>) -> Self {
        Sequential { device: device.clone(), layers, seed: 0, compiled: None, plan: None, steps: 0 }
    }

    /// Seed of the initial weights (default 0: the same model every run).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Chooses the optimizer, loss and metrics; resets the optimizer's state, keeps the weights.
    pub fn compile(&mut self, optimizer: impl Into<Optimizer>, loss: impl Into<Loss>, metrics: &[&str]) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Model("a Sequential model needs at least one layer".into()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate(i)?;
            if i > 0 && l.input_shape.is_some() {
                return Err(Error::Model(format!("layer {i}: input_shape belongs on the first layer only")));
            }
        }
        let optimizer = optimizer.into().resolve()?;
        let loss = loss.into().resolve()?;
        let mut list = Vec::new();
        let mut mask = 0;
        for name in metrics {
            let (metric, key) = Metric::parse(name, &loss)?;
            if !list.iter().any(|(k, _): &(String, Metric)| *k == key) {
                mask |= 1 << metric.code();
                list.push((key, metric));
            }
        }
        self.compiled = Some(Compiled { optimizer, loss, metrics: list, metric_mask: mask });
        if let Some(plan) = &mut self.plan {
            plan.reset_optimizer()?;
        } else if let Some(w) = self.layers[0].input_shape {
            self.build(w)?;
        }
        self.steps = 0;
        Ok(())
    }

    fn build(&mut self, input_w: usize) -> Result<()> {
        self.plan = Some(Plan::build(&self.device, &self.layers, input_w, self.seed)?);
        Ok(())
    }

    /// The compiled settings and a plan for `input_w` features, building it on first use.
    fn ready(&mut self, x: &Matrix, what: &str) -> Result<()> {
        if self.compiled.is_none() {
            return Err(Error::State(format!("{what} needs a compiled model: call compile() first")));
        }
        if x.rows() == 0 {
            return Err(Error::shape(what, "x has no rows"));
        }
        if x.cols() == 0 {
            return Err(Error::shape(what, "x has no columns"));
        }
        match &self.plan {
            Some(p) if p.input_w != x.cols() => Err(Error::shape(
                what,
                format!("the model takes {} input features, x has {} columns", p.input_w, x.cols()),
            )),
            Some(_) => Ok(()),
            None => self.build(x.cols()),
        }
    }

    fn check_xy(&self, x: &Matrix, y: &Matrix, what: &str) -> Result<()> {
        if x.rows() == 0 || x.cols() == 0 {
            return Err(Error::shape(what, format!("x is {} x {}: it needs rows and columns", x.rows(), x.cols())));
        }
        if x.rows() != y.rows() {
            return Err(Error::shape(what, format!("x has {} rows but y has {}", x.rows(), y.rows())));
        }
        let out_w = self.output_width(x.cols());
        if y.cols() != out_w {
            return Err(Error::shape(
                what,
                format!("y has {} columns but the model outputs {out_w} values per row", y.cols()),
            ));
        }
        x.check_finite(&format!("{what} x"))?;
        y.check_finite(&format!("{what} y"))?;
        if let Some(c) = &self.compiled {
            if c.loss.is_binary() {
                if let Some(i) = y.data().iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(Error::invalid(
                        format!("{what} y at row {}, column {}", i / y.cols(), i % y.cols()),
                        y.data()[i],
                        "binary_crossentropy targets must be in [0, 1]",
                    ));
                }
            }
        }
        Ok(())
    }

    fn output_width(&self, input_w: usize) -> usize {
        self.layers.iter().fold(input_w, |w, l| l.output_width(w))
    }

    /// Trains on `x`, `y`; returns the per-epoch losses and metrics.
    ///
    /// Each epoch is one recording (every batch's gather, forward, loss, backward and update, then
    /// validation) run as one submission with one readback of the loss and metric sums; callbacks
    /// see those sums as the epoch's logs. A non-finite loss ends fit with [`Error::Diverged`] (after
    /// the callbacks' `on_train_end`, so EarlyStopping still puts back its best weights), unless a
    /// callback (e.g. [`TerminateOnNaN`](crate::TerminateOnNaN)) stopped training at that epoch.
    pub fn fit(&mut self, x: &Matrix, y: &Matrix, mut opts: Fit<'_>) -> Result<History> {
        if let (Some(fraction), None) = (opts.validation_split, opts.validation) {
            let (xt, yt, xv, yv) = split_last_rows(x, y, fraction)?;
            return self.fit(&xt, &yt, Fit { validation_split: None, ..opts }.validation_data(&xv, &yv));
        }
        self.ready(x, "fit")?;
        self.check_xy(x, y, "fit")?;
        if let Some((vx, vy)) = opts.validation {
            self.check_xy(vx, vy, "validation_data")?;
            if vx.cols() != x.cols() {
                return Err(Error::shape(
                    "validation_data",
                    format!("x_valid has {} columns, x has {}", vx.cols(), x.cols()),
                ));
            }
        }
        let batch_size = opts.batch_size.unwrap_or(32);
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        let epochs = opts.epochs.unwrap_or(1);
        let n = x.rows();
        let batch = batch_size.min(n);
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let (loss, mask, mut optimizer) = (compiled.loss.clone(), compiled.metric_mask, compiled.optimizer.clone());
        let mut log_keys = vec!["loss".to_string()];
        log_keys.extend(compiled.metrics.iter().map(|(k, _)| k.clone()));
        if opts.validation.is_some() {
            let val: Vec<String> = log_keys.iter().map(|k| format!("val_{k}")).collect();
            log_keys.extend(val);
        }
        let plan = self.plan.as_mut().expect("built by ready");
        let val_rows = opts.validation.map_or(0, |(vx, _)| vx.rows());
        plan.ensure_capacity(batch.max(val_rows.min(batch_size)))?;
        let train = plan.upload(DataRole::Train, x.data(), Some(y.data()), n)?;
        let valid = match opts.validation {
            Some((vx, vy)) => Some(plan.upload(DataRole::Valid, vx.data(), Some(vy.data()), vx.rows())?),
            None => None,
        };
        let mut progress = Progress::new(opts.verbose, epochs);
        let mut callbacks = std::mem::take(&mut opts.callbacks);
        let mut ctx = TrainContext::new(epochs, log_keys, optimizer.learning_rate(), progress.level());
        // Device-side weight copies for the callbacks: (params copy, state copy), made once per fit.
        let mut snapshots: Vec<(BufId, BufId)> = Vec::new();
        // Copies requested by callbacks, run before the next epoch's launches (or at train end).
        let mut pending: Vec<Launch> = Vec::new();
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(&mut ctx)?;
        }
        apply_requests(&mut ctx, plan, &mut snapshots, &mut pending, &mut optimizer, &progress)?;
        let mut history = History::default();
        let mut logs = Logs::new();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut launches: Vec<Launch> = Vec::new();
        let seed32 = (opts.seed ^ (opts.seed >> 32)) as u32;
        let steps_per_epoch = n.div_ceil(batch);
        for epoch in 0..epochs {
            let started = std::time::Instant::now();
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
            apply_requests(&mut ctx, plan, &mut snapshots, &mut pending, &mut optimizer, &progress)?;
            if opts.shuffle.unwrap_or(true) {
                let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed.wrapping_add(epoch as u64));
                order.shuffle(&mut rng);
            }
            plan.backend.write_u32(train.order, 0, &order)?;
            launches.clear();
            launches.append(&mut pending);
            for s in 0..steps_per_epoch {
                let start = s * batch;
                let rows = batch.min(n - start);
                let step = self.steps as u32;
                plan.gather(&train, start, rows, true, &mut launches);
                plan.forward(rows, true, step, seed32, &mut launches);
                plan.loss(&loss, mask, rows, true, s > 0, TRAIN_SLOT, &mut launches);
                plan.backward(rows, step, seed32, &mut launches);
                self.steps += 1;
                plan.update(&optimizer, self.steps, &mut launches)?;
            }
            if let Some(v) = &valid {
                eval_launches(plan, v, batch_size, &loss, mask, &mut launches);
            }
            let sums = plan.backend.run(&launches, &[(plan.acc, 0..ACC_LEN)])?.pop().unwrap_or_default();
            let compiled = self.compiled.as_ref().expect("checked by ready");
            logs = Logs::new();
            record(&mut logs, compiled, &sums, TRAIN_SLOT as usize, n, "");
            if let Some(v) = &valid {
                record(&mut logs, compiled, &sums, EVAL_SLOT as usize, v.rows, "val_");
            }
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(epoch, &mut logs, &mut ctx)?;
            }
            for (k, v) in logs.iter() {
                history.push(k, v);
            }
            progress.epoch_done(epoch, started.elapsed().as_secs_f64() * 1e3, &logs);
            apply_requests(&mut ctx, plan, &mut snapshots, &mut pending, &mut optimizer, &progress)?;
            if let Some(reason) = ctx.stop.take() {
                history.stopped_epoch = Some(epoch);
                history.stop_reason = Some(reason);
                break;
            }
            let loss_now = logs.get("loss").unwrap_or(f32::NAN);
            if !loss_now.is_finite() {
                // The run still ends for the callbacks, so EarlyStopping(restore_best_weights) puts
                // back its best weights (a NaN epoch never replaces them) rather than leaving the
                // NaNs in the model; the divergence is the error reported, not theirs.
                for cb in callbacks.iter_mut() {
                    let _ = cb.on_train_end(&logs, &mut ctx);
                }
                apply_requests(&mut ctx, plan, &mut snapshots, &mut pending, &mut optimizer, &progress)?;
                if !pending.is_empty() {
                    plan.backend.run(&pending, &[])?;
                }
                progress.finish();
                return Err(Error::Diverged { what: "loss".into(), epoch, value: loss_now });
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(&logs, &mut ctx)?;
        }
        apply_requests(&mut ctx, plan, &mut snapshots, &mut pending, &mut optimizer, &progress)?;
        if !pending.is_empty() {
            plan.backend.run(&pending, &[])?;
        }
        progress.finish();
        history.best_epoch = ctx.best_epoch;
        if let Some(c) = self.compiled.as_mut() {
            c.optimizer.set_learning_rate(optimizer.learning_rate());
        }
        Ok(history)
    }

    /// Loss and metrics over all rows, keyed like the History without the `val_` prefix.
    pub fn evaluate(&mut self, x: &Matrix, y: &Matrix) -> Result<Vec<(String, f32)>> {
        self.ready(x, "evaluate")?;
        self.check_xy(x, y, "evaluate")?;
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let (loss, mask) = (compiled.loss.clone(), compiled.metric_mask);
        let plan = self.plan.as_mut().expect("built by ready");
        let batch = x.rows().min(1024);
        plan.ensure_capacity(batch)?;
        let data = plan.upload(DataRole::Eval, x.data(), Some(y.data()), x.rows())?;
        let mut launches = Vec::new();
        eval_launches(plan, &data, batch, &loss, mask, &mut launches);
        let sums = plan.backend.run(&launches, &[(plan.acc, 0..ACC_LEN)])?.pop().unwrap_or_default();
        let mut logs = Logs::new();
        record(&mut logs, self.compiled.as_ref().expect("checked"), &sums, EVAL_SLOT as usize, x.rows(), "");
        Ok(logs.iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The model's outputs for every row of `x` (inference mode: no dropout, moving statistics).
    pub fn predict(&mut self, x: &Matrix) -> Result<Matrix> {
        self.ready(x, "predict")?;
        x.check_finite("predict x")?;
        let plan = self.plan.as_mut().expect("built by ready");
        let batch = x.rows().min(1024);
        plan.ensure_capacity(batch)?;
        let data = plan.upload(DataRole::Eval, x.data(), None, x.rows())?;
        let out_w = plan.output_w;
        let preds = plan.scratch("predictions", x.rows() * out_w)?;
        let mut launches = Vec::new();
        for start in (0..x.rows()).step_by(batch) {
            let rows = batch.min(x.rows() - start);
            plan.gather(&data, start, rows, false, &mut launches);
            plan.forward(rows, false, 0, 0, &mut launches);
            launches.push(Launch::Copy {
                src: plan.output_buffer(),
                src_off: 0,
                dst: preds,
                dst_off: start * out_w,
                len: rows * out_w,
            });
        }
        let values = plan.backend.run(&launches, &[(preds, 0..x.rows() * out_w)])?.pop().unwrap_or_default();
        Matrix::new(x.rows(), out_w, values)
    }

    /// The optimizer's state: updates applied so far and its moments (m, v), for saving.
    pub(crate) fn optimizer_state(&mut self) -> Result<Option<OptimizerMoments>> {
        let steps = self.steps;
        match &mut self.plan {
            Some(p) if steps > 0 => {
                let (m, v) = p.read_optimizer_moments()?;
                Ok(Some((steps, m, v)))
            }
            _ => Ok(None),
        }
    }

    /// Restores what `optimizer_state` returned, so training continues where it stopped.
    pub(crate) fn set_optimizer_state(&mut self, steps: u64, m: &[f32], v: &[f32]) -> Result<()> {
        let plan = self.plan.as_mut().ok_or_else(|| Error::State("the model is not built yet".into()))?;
        plan.write_optimizer_moments(m, v)?;
        self.steps = steps;
        Ok(())
    }

    /// Accessors for saving and summary (src/io.rs, src/summary.rs).
    pub(crate) fn compiled_settings(&self) -> Option<(&Optimizer, &Loss, Vec<String>)> {
        self.compiled.as_ref().map(|c| (&c.optimizer, &c.loss, c.metrics.iter().map(|(k, _)| k.clone()).collect()))
    }

    /// The input width once known (built plan, or the first layer's input_shape).
    pub(crate) fn input_width(&self) -> Option<usize> {
        self.plan.as_ref().map(|p| p.input_w).or_else(|| self.layers.first().and_then(|l| l.input_shape))
    }

    pub(crate) fn init_seed(&self) -> u64 {
        self.seed
    }

    /// All parameters (per layer, W then b / gamma then beta) and moving statistics, flat.
    pub fn get_weights(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        match &mut self.plan {
            Some(p) => p.read_weights(),
            None => Err(Error::State("the model is not built yet: compile it with an input_shape, or fit it".into())),
        }
    }

    /// Replaces every parameter and moving statistic (as returned by `get_weights`).
    pub fn set_weights(&mut self, params: &[f32], state: &[f32]) -> Result<()> {
        match &mut self.plan {
            Some(p) => p.write_weights(params, state),
            None => Err(Error::State("the model is not built yet: compile it with an input_shape, or fit it".into())),
        }
    }
}

/// Keras's validation_split: the first `ceil(n * (1 - fraction))` rows train, the rest validate.
fn split_last_rows(x: &Matrix, y: &Matrix, fraction: f32) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    if x.rows() != y.rows() {
        return Err(Error::shape("fit", format!("x has {} rows but y has {}", x.rows(), y.rows())));
    }
    let at = crate::data::split_point(x.rows(), fraction)?;
    let (head, tail): (Vec<usize>, Vec<usize>) = ((0..at).collect(), (at..x.rows()).collect());
    Ok((x.select_rows(&head)?, y.select_rows(&head)?, x.select_rows(&tail)?, y.select_rows(&tail)?))
}

/// The launches of a validation/evaluation pass over `data`: forward in inference mode and the
/// loss into the evaluation accumulators.
fn eval_launches(
    plan: &Plan,
    data: &crate::plan::DeviceData,
    batch: usize,
    loss: &Loss,
    mask: u32,
    out: &mut Vec<Launch>,
) {
    for (i, start) in (0..data.rows).step_by(batch).enumerate() {
        let rows = batch.min(data.rows - start);
        plan.gather(data, start, rows, false, out);
        plan.forward(rows, false, 0, 0, out);
        plan.loss(loss, mask, rows, false, i > 0, EVAL_SLOT, out);
    }
}

/// Adds one epoch's mean loss and metrics (sums / rows) to the logs.
fn record(logs: &mut Logs, compiled: &Compiled, sums: &[f32], slot: usize, rows: usize, prefix: &str) {
    let mean = |i: usize| (sums.get(slot + i).copied().unwrap_or(f32::NAN) as f64 / rows as f64) as f32;
    logs.insert(&format!("{prefix}loss"), mean(0));
    for (key, metric) in &compiled.metrics {
        logs.insert(&format!("{prefix}{key}"), mean(compiled.metric_slot(*metric)));
    }
}

/// Carries out what the callbacks asked through the context: allocates new snapshot buffers (once
/// each per fit), turns weight saves/restores into device-side copies queued before the next
/// launches, applies a learning-rate change, and prints their messages.
fn apply_requests(
    ctx: &mut TrainContext,
    plan: &mut Plan,
    snapshots: &mut Vec<(BufId, BufId)>,
    pending: &mut Vec<Launch>,
    optimizer: &mut Optimizer,
    progress: &Progress,
) -> Result<()> {
    while snapshots.len() < ctx.snapshots {
        // The first snapshot reuses a buffer kept across fits; further ones (several callbacks
        // keeping weights) need buffers of their own, or they would share the first one.
        let (p, s) = if snapshots.is_empty() {
            (
                plan.scratch("weights snapshot", plan.n_params)?,
                plan.scratch("moving statistics snapshot", plan.n_state)?,
            )
        } else {
            (
                plan.backend.create_buffer(plan.n_params, "weights snapshot")?,
                plan.backend.create_buffer(plan.n_state, "moving statistics snapshot")?,
            )
        };
        snapshots.push((p, s));
    }
    for op in ctx.ops.drain(..) {
        let (i, save) = match op {
            SnapshotOp::Save(i) => (i, true),
            SnapshotOp::Restore(i) => (i, false),
        };
        let &(sp, ss) = snapshots
            .get(i)
            .ok_or_else(|| Error::State(format!("a callback used weight snapshot {i}, which this fit did not make")))?;
        for (live, copy, len) in [(plan.params, sp, plan.n_params), (plan.state, ss, plan.n_state)] {
            if len > 0 {
                let (src, dst) = if save { (live, copy) } else { (copy, live) };
                pending.push(Launch::Copy { src, src_off: 0, dst, dst_off: 0, len });
            }
        }
    }
    if ctx.learning_rate != optimizer.learning_rate() {
        optimizer.set_learning_rate(ctx.learning_rate);
    }
    for msg in ctx.messages.drain(..) {
        progress.message(&msg);
    }
    Ok(())
}

impl Sequential {
    /// How many device buffers this model has allocated (0 before it is built).
    #[doc(hidden)]
    pub fn device_buffer_count(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.backend.buffer_count())
    }

    /// The gradient of the loss over all rows of `x` (one batch, training mode, dropout step 0
    /// with `seed`), without updating anything: the test suite's finite-difference checks use it.
    #[doc(hidden)]
    pub fn loss_gradients(&mut self, x: &Matrix, y: &Matrix, seed: u32) -> Result<Vec<f32>> {
        self.ready(x, "loss_gradients")?;
        self.check_xy(x, y, "loss_gradients")?;
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let (loss, mask) = (compiled.loss.clone(), compiled.metric_mask);
        let plan = self.plan.as_mut().expect("built by ready");
        plan.ensure_capacity(x.rows())?;
        let data = plan.upload(DataRole::Eval, x.data(), Some(y.data()), x.rows())?;
        let mut launches = Vec::new();
        plan.gather(&data, 0, x.rows(), false, &mut launches);
        plan.forward(x.rows(), true, 0, seed, &mut launches);
        plan.loss(&loss, mask, x.rows(), true, false, TRAIN_SLOT, &mut launches);
        plan.backward(x.rows(), 0, seed, &mut launches);
        Ok(plan.backend.run(&launches, &[(plan.grads, 0..plan.n_params)])?.pop().unwrap_or_default())
    }
}

//! The trainer: runs epochs of a compiled plan, one recording and one readback each, drives the
//! callbacks (the progress display is one of them) and carries out what they ask (stop, learning
//! rate, device-side weight snapshots). `Sequential::fit` checks the data and hands over.
//!
//! The per-model state of a fit (callbacks, their context, History, snapshots, optimizer) is a
//! [`Run`]; the epoch loop records each run's launches, so a plan holding several models can
//! drive several runs from one submission.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::callbacks::{Callback, Logs, ProgbarLogger, SnapshotOp, TrainContext};
use crate::device::{BufId, Launch};
use crate::error::{Error, Result};
use crate::history::History;
use crate::losses::Loss;
use crate::matrix::Matrix;
use crate::metrics::MetricSet;
use crate::optimizers::Optimizer;
use crate::plan::{AccSlot, DataRole, DeviceData, Plan};

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

/// What a model was compiled with.
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub metrics: MetricSet,
}

/// The checked inputs of one fit.
pub(crate) struct FitData<'d> {
    pub x: &'d Matrix,
    pub y: &'d Matrix,
    pub validation: Option<(&'d Matrix, &'d Matrix)>,
}

/// One model's fit: its callbacks (the display last, as Keras appends its ProgbarLogger), their
/// context, its History, and the device-side copies they asked for.
struct Run<'a> {
    callbacks: Vec<Box<dyn Callback + 'a>>,
    ctx: TrainContext,
    history: History,
    logs: Logs,
    optimizer: Optimizer,
    /// (parameters, moving statistics) copies, made once per fit.
    snapshots: Vec<(BufId, BufId)>,
    /// Copies the callbacks requested, run before the next launches (or at train end).
    pending: Vec<Launch>,
}

impl<'a> Run<'a> {
    fn each(&mut self, mut hook: impl FnMut(&mut dyn Callback, &mut TrainContext) -> Result<()>) -> Result<()> {
        for cb in self.callbacks.iter_mut() {
            hook(cb.as_mut(), &mut self.ctx)?;
        }
        Ok(())
    }

    /// Carries out what the callbacks asked through the context: allocates new snapshot buffers
    /// (once each per fit), turns weight saves/restores into device-side copies queued before the
    /// next launches, and applies a learning-rate change.
    fn apply_requests(&mut self, plan: &mut Plan) -> Result<()> {
        while self.snapshots.len() < self.ctx.snapshots {
            // The first snapshot reuses a buffer kept across fits; further ones (several callbacks
            // keeping weights) need buffers of their own, or they would share the first one.
            let (p, s) = if self.snapshots.is_empty() {
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
            self.snapshots.push((p, s));
        }
        for op in self.ctx.ops.drain(..) {
            let (i, save) = match op {
                SnapshotOp::Save(i) => (i, true),
                SnapshotOp::Restore(i) => (i, false),
            };
            let &(sp, ss) = self.snapshots.get(i).ok_or_else(|| {
                Error::State(format!("a callback used weight snapshot {i}, which this fit did not make"))
            })?;
            for (live, copy, len) in [(plan.params, sp, plan.n_params), (plan.state, ss, plan.n_state)] {
                if len > 0 {
                    let (src, dst) = if save { (live, copy) } else { (copy, live) };
                    self.pending.push(Launch::Copy { src, src_off: 0, dst, dst_off: 0, len });
                }
            }
        }
        if self.ctx.learning_rate != self.optimizer.learning_rate() {
            self.optimizer.set_learning_rate(self.ctx.learning_rate);
        }
        Ok(())
    }

    /// Ends training for the callbacks, then runs the copies they asked for. `despite_errors`:
    /// every callback's `on_train_end` runs even if one fails (training already failed).
    fn end(&mut self, plan: &mut Plan, despite_errors: bool) -> Result<()> {
        for cb in self.callbacks.iter_mut() {
            let result = cb.on_train_end(&self.logs, &mut self.ctx);
            if !despite_errors {
                result?;
            }
        }
        self.apply_requests(plan)?;
        if !self.pending.is_empty() {
            plan.backend.run(&self.pending, &[])?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// The seed of dropout masks as the kernels take it: a u64 folded into 32 bits, so seeds that
/// differ only above bit 31 still draw different masks.
pub(crate) fn fold_seed(seed: u64) -> u32 {
    (seed ^ (seed >> 32)) as u32
}

/// Trains `plan` on checked data; `steps` counts the optimizer's updates across fits (Adam's t).
/// Returns the History and the optimizer as the callbacks left it (its learning rate).
pub(crate) fn fit<'a>(
    plan: &mut Plan,
    compiled: &Compiled,
    steps: &mut u64,
    data: FitData<'_>,
    mut opts: Fit<'a>,
) -> Result<(History, Optimizer)> {
    let batch_size = opts.batch_size.unwrap_or(32);
    let epochs = opts.epochs.unwrap_or(1);
    let n = data.x.rows();
    let batch = batch_size.min(n);
    let (loss, metrics) = (compiled.loss, &compiled.metrics);
    let mut log_keys = vec!["loss".to_string()];
    log_keys.extend(metrics.keys().map(|(k, _)| k.to_string()));
    if data.validation.is_some() {
        let val: Vec<String> = log_keys.iter().map(|k| format!("val_{k}")).collect();
        log_keys.extend(val);
    }
    let val_rows = data.validation.map_or(0, |(vx, _)| vx.rows());
    plan.ensure_capacity(batch.max(val_rows.min(batch_size)))?;
    let train = plan.upload(DataRole::Train, data.x.data(), Some(data.y.data()), n)?;
    let valid = match data.validation {
        Some((vx, vy)) => Some(plan.upload(DataRole::Valid, vx.data(), Some(vy.data()), vx.rows())?),
        None => None,
    };
    let progress = ProgbarLogger::new(opts.verbose, epochs);
    let mut callbacks = std::mem::take(&mut opts.callbacks);
    let ctx = TrainContext::new(epochs, log_keys, compiled.optimizer.learning_rate(), progress.level());
    callbacks.push(Box::new(progress));
    let mut run = Run {
        callbacks,
        ctx,
        history: History::default(),
        logs: Logs::new(),
        optimizer: compiled.optimizer,
        snapshots: Vec::new(),
        pending: Vec::new(),
    };
    run.each(|cb, ctx| cb.on_train_begin(ctx))?;
    run.apply_requests(plan)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut launches: Vec<Launch> = Vec::new();
    let seed32 = fold_seed(opts.seed);
    let steps_per_epoch = n.div_ceil(batch);
    for epoch in 0..epochs {
        run.each(|cb, ctx| cb.on_epoch_begin(epoch, ctx))?;
        run.apply_requests(plan)?;
        if opts.shuffle.unwrap_or(true) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed.wrapping_add(epoch as u64));
            order.shuffle(&mut rng);
        }
        plan.backend.write_u32(train.order, 0, &order)?;
        launches.clear();
        launches.append(&mut run.pending);
        for s in 0..steps_per_epoch {
            let start = s * batch;
            let rows = batch.min(n - start);
            let step = *steps as u32;
            plan.gather(&train, start, rows, true, &mut launches);
            plan.forward(rows, true, step, seed32, &mut launches);
            plan.loss(loss, metrics, rows, true, s > 0, AccSlot::Train, &mut launches);
            plan.backward(rows, step, seed32, &mut launches);
            *steps += 1;
            plan.update(&run.optimizer, *steps, &mut launches)?;
        }
        if let Some(v) = &valid {
            eval_launches(plan, v, batch_size, loss, metrics, &mut launches);
        }
        let sums = plan.run_for_sums(&launches, metrics)?;
        run.logs = Logs::new();
        record(&mut run.logs, metrics, &sums, AccSlot::Train, n, "");
        if let Some(v) = &valid {
            record(&mut run.logs, metrics, &sums, AccSlot::Eval, v.rows, "val_");
        }
        let mut logs = std::mem::take(&mut run.logs);
        let result = run.each(|cb, ctx| {
            // The History records what is there after every callback but the display ran: its
            // line shows the same values.
            cb.on_epoch_end(epoch, &mut logs, ctx)
        });
        run.logs = logs;
        result?;
        for (k, v) in run.logs.iter() {
            run.history.push(k, v);
        }
        run.apply_requests(plan)?;
        if let Some(reason) = run.ctx.stop.take() {
            run.history.stopped_epoch = Some(epoch);
            run.history.stop_reason = Some(reason);
            break;
        }
        let loss_now = run.logs.get("loss").unwrap_or(f32::NAN);
        if !loss_now.is_finite() {
            // The run still ends for the callbacks, so EarlyStopping(restore_best_weights) puts
            // back its best weights (a NaN epoch never replaces them) rather than leaving the
            // NaNs in the model; the divergence is the error reported, not theirs.
            run.end(plan, true)?;
            return Err(Error::Diverged { what: "loss".into(), epoch, value: loss_now });
        }
    }
    run.end(plan, false)?;
    run.history.best_epoch = run.ctx.best_epoch;
    Ok((run.history, run.optimizer))
}

/// The launches of a validation/evaluation pass over `data`: forward in inference mode and the
/// loss into the evaluation accumulators.
pub(crate) fn eval_launches(
    plan: &Plan,
    data: &DeviceData,
    batch: usize,
    loss: Loss,
    metrics: &MetricSet,
    out: &mut Vec<Launch>,
) {
    for (i, start) in (0..data.rows).step_by(batch).enumerate() {
        let rows = batch.min(data.rows - start);
        plan.gather(data, start, rows, false, out);
        plan.forward(rows, false, 0, 0, out);
        plan.loss(loss, metrics, rows, false, i > 0, AccSlot::Eval, out);
    }
}

/// Adds one pass's mean loss and metrics (sums / rows) to the logs.
pub(crate) fn record(logs: &mut Logs, metrics: &MetricSet, sums: &[f32], slot: AccSlot, rows: usize, prefix: &str) {
    let base = Plan::acc_offset(metrics, slot);
    let mean = |i: usize| (sums.get(base + i).copied().unwrap_or(f32::NAN) as f64 / rows as f64) as f32;
    logs.insert(&format!("{prefix}loss"), mean(0));
    for (key, offset) in metrics.keys() {
        logs.insert(&format!("{prefix}{key}"), mean(offset));
    }
}

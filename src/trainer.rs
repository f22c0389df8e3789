//! The trainer: runs epochs of a compiled plan, one recording and one readback each, drives the
//! callbacks (the progress display is one of them) and carries out what they ask (stop, learning
//! rate, device-side weight snapshots). `Sequential::fit` and `Sweep::fit` check the data and
//! hand over.
//!
//! A plan holds K members; each has a [`Run`] (callbacks, their context, History, snapshots,
//! optimizer, row order). One epoch of all members is one submission and one readback; a member
//! that stops (EarlyStopping, TerminateOnNaN, a diverged loss) is masked on the device and the
//! others go on.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::callbacks::{Callback, Logs, ProgbarLogger, SaveRequest, SnapshotOp, TrainContext};
use crate::data::DataFile;
use crate::device::{run_together, BufId, Launch, RunJob};
use crate::error::{Error, Result};
use crate::history::History;
use crate::io::ModelWriter;
use crate::losses::Loss;
use crate::matrix::Matrix;
use crate::metrics::MetricSet;
use crate::optimizers::Optimizer;
use crate::plan::{
    AccSlot, DataRole, DeviceData, Features, Feed, HostData, MemberSettings, MemberSums, Plan, Weighting,
};
use crate::profile::EpochProfile;

/// The settings of one `fit` call (Keras's keyword arguments).
#[derive(Default)]
pub struct Fit<'a> {
    pub(crate) validation: Option<(&'a Matrix, &'a Matrix)>,
    pub(crate) validation_file: Option<&'a DataFile>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) epochs: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) shuffle: Option<bool>,
    pub(crate) verbose: Option<u8>,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
    pub(crate) validation_split: Option<f32>,
    pub(crate) validation_freq: Option<usize>,
    pub(crate) sample_weight: Option<&'a [f32]>,
    pub(crate) class_weight: Option<Vec<(usize, f32)>>,
    pub(crate) validation_weights: Option<&'a [f32]>,
    pub(crate) profile: Option<bool>,
}

impl<'a> Fit<'a> {
    /// Keras's defaults: 1 epoch, batch 32, shuffled, no validation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts that must be at least 1 (a model's fit and a sweep's check them alike).
    pub(crate) fn check_counts(&self) -> Result<()> {
        if self.batch_size == Some(0) {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        if self.validation_freq == Some(0) {
            return Err(Error::invalid("validation_freq", 0, "must be at least 1 (validate every n-th epoch)"));
        }
        Ok(())
    }

    /// Data to evaluate at the end of every epoch (`val_loss`, `val_<metric>`).
    pub fn validation_data(mut self, x: &'a Matrix, y: &'a Matrix) -> Self {
        self.validation = Some((x, y));
        self
    }

    /// Validation data read from a [`DataFile`] (its features streamed from its spill file as
    /// training data is; see [`Sequential::fit_file`](crate::Sequential::fit_file)), for
    /// [`Sequential::fit`](crate::Sequential::fit) and `fit_file`. Not with
    /// [`Fit::validation_data`] (an error at fit: give one of them); like it, it overrides
    /// [`Fit::validation_split`]. A file opened with a weight column
    /// ([`DataFile::sample_weights`]) weighs `val_loss` by it, as
    /// [`Fit::validation_data_weighted`] weighs. For a [`Sweep`](crate::Sweep) too.
    pub fn validation_file(mut self, file: &'a DataFile) -> Self {
        self.validation_file = Some(file);
        self
    }

    /// Keras's `validation_data=(x, y, sample_weight)`: validation data whose rows weigh
    /// `weights` (one per row, finite, at least 0) in `val_loss` (and in the `val_` metrics with
    /// [`Sequential::weighted_metrics`](crate::Sequential::weighted_metrics)).
    pub fn validation_data_weighted(mut self, x: &'a Matrix, y: &'a Matrix, weights: &'a [f32]) -> Self {
        self.validation = Some((x, y));
        self.validation_weights = Some(weights);
        self
    }

    /// Keras's `sample_weight`: one weight per training row (finite, at least 0). A batch's loss
    /// becomes `sum(w_i * loss_i) / batch_rows`, and so its gradient: a weight of 2 counts a row
    /// twice, 0 ignores it. With `validation_split` the held-out rows keep their weights for the
    /// validation pass, as in Keras. Not with [`Fit::class_weight`] (Keras's ValueError).
    pub fn sample_weight(mut self, weights: &'a [f32]) -> Self {
        self.sample_weight = Some(weights);
        self
    }

    /// Keras's `class_weight`: (class, weight) pairs; each training row weighs its class's weight
    /// (1 for a class not listed, as Keras). A row's class is its target's argmax (one-hot or
    /// several outputs), else the target rounded (0/1 labels, class indices). A class the model
    /// does not have, a class listed twice or a weight that is negative or not finite is an
    /// error. Validation data is not class-weighted (Keras). See
    /// [`balanced_class_weights`](crate::balanced_class_weights) for scikit-learn's "balanced".
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
        self
    }

    /// Keras's `validation_split`: hold out the last `fraction` of the rows (taken before any
    /// shuffling) as validation data. Ignored when `validation_data` is given, as in Keras.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = Some(fraction);
        self
    }

    /// Keras's `validation_freq` (an int): validate after every `n`-th epoch (epochs `n`, `2n`, ...
    /// counted from 1), default 1. The `val_` keys are in the epoch's logs only on those epochs, as
    /// in Keras; the History, a table of one row per epoch, holds NaN in their columns on the
    /// others, and callbacks monitoring a `val_` key skip the epochs without one (Keras warns and
    /// skips). 0 is an error at fit.
    pub fn validation_freq(mut self, n: usize) -> Self {
        self.validation_freq = Some(n);
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

    /// Profiles this fit (or, with `false`, does not, whatever the device says): after each
    /// epoch a table of the time per kernel goes to stderr and into
    /// [`History::profile`](crate::History::profile), with the epoch's wall time and what the
    /// kernels leave unaccounted ([`EpochProfile`](crate::EpochProfile)). On a GPU opened with
    /// [`GpuOptions::profile`](crate::GpuOptions::profile) (`WGFIT_PROFILE=1`) every fit is
    /// profiled from GPU timestamp queries; on a GPU opened without it there are no timestamp
    /// queries to read, so each dispatch is timed alone (slower, and said so once); on the CPU
    /// path each kernel call is timed on the host. Default: what the device says (on a GPU its
    /// `GpuOptions::profile`, on the CPU path `WGFIT_PROFILE=1`; off otherwise).
    ///
    /// ```
    /// use wgfit::{Dense, Device, Fit, Matrix, Sequential};
    /// # fn main() -> wgfit::Result<()> {
    /// let x = Matrix::from_rows(&[[0.0f32, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])?;
    /// let y = Matrix::column(vec![1.0, 1.0, 0.0, 0.0]);
    /// let mut model = Sequential::new(&Device::cpu(), vec![Dense::new(4).activation("relu").input_shape(2), Dense::new(1)]);
    /// model.compile("adam", "mse", &[])?;
    /// let history = model.fit(&x, &y, Fit::new().epochs(2).verbose(0).profile(true))?;
    /// let epoch = &history.profile[1];
    /// assert!(epoch.kernel("matmul").is_some_and(|k| k.dispatches > 0));
    /// assert!(epoch.kernel_ms() <= epoch.wall_ms);
    /// # Ok(())
    /// # }
    /// ```
    pub fn profile(mut self, on: bool) -> Self {
        self.profile = Some(on);
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
    /// The metrics are Keras's `weighted_metrics` (`Sequential::weighted_metrics`).
    pub weighted_metrics: bool,
}

/// The data and shared settings of one fit of a plan's members.
pub(crate) struct FitData<'d> {
    pub x: Features<'d>,
    pub y: &'d Matrix,
    pub validation: Option<(Features<'d>, &'d Matrix)>,
    /// One weight per training row, per validation row (checked).
    pub weights: Option<&'d [f32]>,
    pub val_weights: Option<&'d [f32]>,
    /// The metrics are weighted means (Keras's `weighted_metrics`).
    pub weighted_metrics: bool,
    pub batch_size: usize,
    pub epochs: usize,
    pub shuffle: bool,
    /// Validate after every `validation_freq`-th epoch (Keras's int form, >= 1).
    pub validation_freq: usize,
    /// Profile the epochs (`Fit::profile`); None: as the device says.
    pub profile: Option<bool>,
}

impl FitData<'_> {
    /// The training data as the plan's uploads and fills read it.
    fn train_host(&self) -> HostData<'_> {
        HostData { x: self.x, y: Some(self.y.data()), weights: self.weights }
    }

    /// The validation data as the plan's uploads and fills read it.
    fn valid_host(&self) -> Option<HostData<'_>> {
        self.validation.map(|(x, y)| HostData { x, y: Some(y.data()), weights: self.val_weights })
    }

    /// Whether epoch `epoch` (from 0) ends with a validation pass: Keras validates when
    /// `(epoch + 1) % validation_freq == 0`.
    pub fn validates(&self, epoch: usize) -> bool {
        self.validation.is_some() && (epoch + 1).is_multiple_of(self.validation_freq.max(1))
    }
}

/// One member's side of a fit: what it starts from and its own settings.
pub(crate) struct MemberFit<'a> {
    pub optimizer: Optimizer,
    /// Updates applied before this fit (Adam's t).
    pub steps: u64,
    /// Seed of the member's row shuffles and dropout masks.
    pub seed: u64,
    /// Its dropout rate per layer (0 for layers that are not Dropout).
    pub dropout: Vec<f32>,
    pub callbacks: Vec<Box<dyn Callback + 'a>>,
    /// The display's level (`Fit::verbose`); a sweep gives 0 and shows its own.
    pub verbose: Option<u8>,
    /// The training rows it learns from (indices into `FitData::x`); None: all, in order.
    pub train_rows: Option<Vec<u32>>,
    /// Its validation rows (indices into the validation data); None: all.
    pub valid_rows: Option<Vec<u32>>,
    /// Writes its files when a callback asks (ModelCheckpoint); None: such a request is an error.
    pub writer: Option<ModelWriter>,
}

/// One member's logs of an epoch, for a sweep's display.
pub(crate) type MemberLogs<'l> = (usize, &'l Logs);

/// How one member's fit ended.
pub(crate) struct MemberOutcome {
    pub history: History,
    pub optimizer: Optimizer,
    pub steps: u64,
    /// The epoch and value of a non-finite loss that ended it (no callback stopped it first).
    pub diverged: Option<(usize, f32)>,
}

/// One member's fit: its callbacks (the display last, as Keras appends its ProgbarLogger), their
/// context, its History, row order and optimizer, and the device-side copies they asked for.
struct Run<'a> {
    member: usize,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    ctx: TrainContext,
    history: History,
    logs: Logs,
    optimizer: Optimizer,
    steps: u64,
    seed: u64,
    dropout: Vec<f32>,
    /// The member's training rows, and their order this epoch (positions into `rows`).
    rows: Vec<u32>,
    order: Vec<u32>,
    valid_rows: Vec<u32>,
    /// Still training (not stopped, not diverged).
    active: bool,
    diverged: Option<(usize, f32)>,
    /// Copies the callbacks requested, run before the next launches (or at train end).
    pending: Vec<Launch>,
    writer: Option<ModelWriter>,
    /// Files to write with the weights as they are now (requested in on_epoch_end).
    due: Vec<SaveRequest>,
}

impl<'a> Run<'a> {
    fn each(&mut self, mut hook: impl FnMut(&mut dyn Callback, &mut TrainContext) -> Result<()>) -> Result<()> {
        for cb in self.callbacks.iter_mut() {
            hook(cb.as_mut(), &mut self.ctx)?;
        }
        Ok(())
    }

    fn settings(&self) -> MemberSettings {
        MemberSettings {
            optimizer: self.optimizer.clone(),
            seed: self.seed,
            dropout: self.dropout.clone(),
            steps: self.steps,
            active: self.active,
        }
    }

    /// Carries out what the callbacks asked through the context: turns weight saves/restores
    /// into device-side copies of this member's block (queued before the next launches; the
    /// snapshot buffers are member buffers shared by all runs, made on first use), and applies a
    /// learning-rate change.
    fn apply_requests(&mut self, plan: &mut Plan, snapshots: &mut Vec<(BufId, BufId)>) -> Result<()> {
        while snapshots.len() < self.ctx.snapshots {
            let i = snapshots.len();
            snapshots.push((
                plan.scratch(&format!("weights snapshot {i}"), plan.n_params, true)?,
                plan.scratch(&format!("moving statistics snapshot {i}"), plan.n_state, true)?,
            ));
        }
        for op in self.ctx.ops.drain(..) {
            let (i, save) = match op {
                SnapshotOp::Save(i) => (i, true),
                SnapshotOp::Restore(i) => (i, false),
            };
            let &(sp, ss) = snapshots.get(i).ok_or_else(|| {
                Error::State(format!("a callback used weight snapshot {i}, which this fit did not make"))
            })?;
            for (live, copy, len) in [(plan.params, sp, plan.n_params), (plan.state, ss, plan.n_state)] {
                if len > 0 {
                    let (src, dst) = if save { (live, copy) } else { (copy, live) };
                    let member = Some(self.member);
                    self.pending.push(Launch::Copy { src, src_off: 0, dst, dst_off: 0, len, member });
                }
            }
        }
        if self.ctx.learning_rate != self.optimizer.learning_rate() {
            // A schedule's rate cannot be set (Keras's TypeError): a typed error ends the fit.
            self.optimizer.set_learning_rate(self.ctx.learning_rate)?;
        }
        Ok(())
    }

    /// Ends training for the callbacks and queues the copies they asked for; the member trains
    /// no more. `despite_errors`: every callback's `on_train_end` runs even if one fails.
    fn end(&mut self, plan: &mut Plan, snapshots: &mut Vec<(BufId, BufId)>, despite_errors: bool) -> Result<()> {
        self.active = false;
        for cb in self.callbacks.iter_mut() {
            let result = cb.on_train_end(&self.logs, &mut self.ctx);
            if !despite_errors {
                result?;
            }
        }
        self.history.best_epoch = self.ctx.best_epoch;
        self.apply_requests(plan, snapshots)
    }
}

/// The seed of dropout masks as the kernels take it: a u64 folded into 32 bits, so seeds that
/// differ only above bit 31 still draw different masks.
pub(crate) fn fold_seed(seed: u64) -> u32 {
    (seed ^ (seed >> 32)) as u32
}

/// The keys of an epoch's logs: loss and metrics, then their `val_` twins.
fn log_keys(metrics: &MetricSet, validation: bool) -> Vec<String> {
    let mut keys = vec!["loss".to_string()];
    keys.extend(metrics.keys().map(str::to_string));
    if validation {
        let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
        keys.extend(val);
    }
    keys
}

/// One plan's members in a fit: compiled settings, uploaded data, each member's [`Run`], and the
/// buffers and host scratch of its epochs.
struct PlanFit<'a, 'p> {
    plan: &'p mut Plan,
    loss: Loss,
    metrics: MetricSet,
    runs: Vec<Run<'a>>,
    train: DeviceData,
    valid: Option<DeviceData>,
    /// Training rows per member, rows per batch (capped at n), steps per epoch.
    n: usize,
    batch: usize,
    steps_per_epoch: usize,
    lrs: BufId,
    lr_stride: usize,
    snapshots: Vec<(BufId, BufId)>,
    orders: Vec<Vec<u32>>,
    rates: Vec<f32>,
}

/// One plan of a fit of several: the plan, what it was compiled with, and its members.
pub(crate) struct PlanMembers<'a, 'p> {
    pub plan: &'p mut Plan,
    pub loss: Loss,
    pub metrics: MetricSet,
    pub members: Vec<MemberFit<'a>>,
}

impl<'a, 'p> PlanFit<'a, 'p> {
    /// Checks the members' row counts, uploads the data, starts every member's callbacks.
    fn start(group: PlanMembers<'a, 'p>, data: &FitData<'_>) -> Result<Self> {
        let PlanMembers { plan, loss, metrics, members } = group;
        if members.len() != plan.members {
            return Err(Error::Internal(format!("{} members for a plan of {}", members.len(), plan.members)));
        }
        let (batch_size, epochs) = (data.batch_size, data.epochs);
        let n = members.first().and_then(|m| m.train_rows.as_ref()).map_or(data.x.rows(), Vec::len);
        let val_total = data.validation.map_or(0, |(vx, _)| vx.rows());
        let val_rows = members.first().and_then(|m| m.valid_rows.as_ref()).map_or(val_total, Vec::len);
        for (m, member) in members.iter().enumerate() {
            let rows = member.train_rows.as_ref().map_or(data.x.rows(), Vec::len);
            let vrows = member.valid_rows.as_ref().map_or(val_total, Vec::len);
            if rows != n || vrows != val_rows {
                return Err(Error::Internal(format!("member {m} trains on {rows} rows, member 0 on {n}")));
            }
        }
        if n == 0 {
            return Err(Error::shape("fit", "at least one training row", "no rows"));
        }
        let batch = batch_size.min(n);
        let keys = log_keys(&metrics, data.validation.is_some());
        plan.ensure_capacity(batch.max(val_rows.min(batch_size)))?;
        plan.prepare_metrics(&metrics)?;
        let train = plan.upload(DataRole::Train, data.train_host(), n, batch)?;
        let mut valid = match data.valid_host() {
            Some(host) => Some(plan.upload(DataRole::Valid, host, val_rows, batch_size)?),
            None => None,
        };
        let mut runs: Vec<Run<'a>> = Vec::with_capacity(members.len());
        for (m, member) in members.into_iter().enumerate() {
            let progress = ProgbarLogger::new(member.verbose, epochs);
            let mut callbacks = member.callbacks;
            let ctx = TrainContext::new(epochs, keys.clone(), member.optimizer.learning_rate(), progress.level());
            callbacks.push(Box::new(progress));
            runs.push(Run {
                member: m,
                callbacks,
                ctx,
                history: History::default(),
                logs: Logs::new(),
                optimizer: member.optimizer,
                steps: member.steps,
                seed: member.seed,
                dropout: member.dropout,
                rows: member.train_rows.unwrap_or_else(|| (0..n as u32).collect()),
                order: (0..n as u32).collect(),
                valid_rows: member.valid_rows.unwrap_or_else(|| (0..val_rows as u32).collect()),
                active: true,
                diverged: None,
                pending: Vec::new(),
                writer: member.writer,
                due: Vec::new(),
            });
        }
        if let Some(v) = &mut valid {
            let orders: Vec<Vec<u32>> = runs.iter().map(|r| r.valid_rows.clone()).collect();
            plan.write_orders(v, &orders)?;
        }
        let mut snapshots: Vec<(BufId, BufId)> = Vec::new();
        for run in runs.iter_mut() {
            run.each(|cb, ctx| cb.on_train_begin(ctx))?;
            run.apply_requests(plan, &mut snapshots)?;
        }
        let steps_per_epoch = n.div_ceil(batch);
        let lrs = plan.scratch("learning rates", steps_per_epoch * crate::optimizers::RATES_PER_STEP, true)?;
        let lr_stride = plan.scratch_stride("learning rates");
        let k = runs.len();
        Ok(PlanFit {
            plan,
            loss,
            metrics,
            runs,
            train,
            valid,
            n,
            batch,
            steps_per_epoch,
            lrs,
            lr_stride,
            snapshots,
            orders: vec![Vec::new(); k],
            rates: vec![0.0f32; lr_stride * k],
        })
    }

    fn active(&self) -> bool {
        self.runs.iter().any(|r| r.active)
    }

    /// Runs an epoch's launches alone (streamed data: one submission per fill, from `data`'s
    /// host copies) and reads back its sums.
    fn run_streamed(&mut self, launches: &[Launch], data: &FitData<'_>) -> Result<Vec<Vec<f32>>> {
        let mut feeds: Vec<Feed<'_>> = vec![(&self.train, data.train_host())];
        if let (Some(v), Some(host)) = (&self.valid, data.valid_host()) {
            feeds.push((v, host));
        }
        let reads = self.plan.sums_read();
        self.plan.run_recording(launches, &reads, &feeds)
    }

    /// Starts an epoch for the members still training (callbacks, row orders, learning rates,
    /// member table) and appends the epoch's launches: requested copies, every batch, validation.
    fn epoch_launches(&mut self, epoch: usize, data: &FitData<'_>, launches: &mut Vec<Launch>) -> Result<()> {
        let n = self.n;
        for (run, order) in self.runs.iter_mut().zip(self.orders.iter_mut()) {
            launches.append(&mut run.pending);
            if !run.active {
                // Its launches still run (masked on the device): any valid order will do.
                if order.len() != n {
                    order.clear();
                    order.extend(0..n as u32);
                }
                continue;
            }
            run.each(|cb, ctx| cb.on_epoch_begin(epoch, ctx))?;
            run.apply_requests(self.plan, &mut self.snapshots)?;
            launches.append(&mut run.pending);
            if data.shuffle {
                let mut rng = rand::rngs::StdRng::seed_from_u64(run.seed.wrapping_add(epoch as u64));
                run.order.shuffle(&mut rng);
            }
            order.clear();
            order.extend(run.order.iter().map(|&i| run.rows[i as usize]));
            for s in 0..self.steps_per_epoch {
                let rates = run.optimizer.step_rates(run.steps + s as u64 + 1);
                let at = run.member * self.lr_stride + s * rates.len();
                self.rates[at..at + rates.len()].copy_from_slice(&rates);
            }
        }
        let plan = &mut *self.plan;
        plan.write_orders(&mut self.train, &self.orders)?;
        plan.backend.write(self.lrs, 0, &self.rates)?;
        let settings: Vec<MemberSettings> = self.runs.iter().map(Run::settings).collect();
        plan.write_table(&settings)?;
        let optimizer = self.runs[0].optimizer.clone();
        let (loss, metrics) = (self.loss, &self.metrics);
        let weighting = Weighting { rows: self.train.weighted, metrics: data.weighted_metrics };
        for s in 0..self.steps_per_epoch {
            let start = s * self.batch;
            let rows = self.batch.min(n - start);
            plan.gather(&self.train, start, rows, true, launches);
            plan.forward(rows, true, s as u32, launches);
            plan.loss(loss, metrics, rows, true, s > 0, AccSlot::Train, weighting, launches);
            plan.backward(rows, s as u32, launches);
            plan.update(&optimizer, s, self.lrs, launches)?;
        }
        if let Some(v) = self.valid.as_ref().filter(|_| data.validates(epoch)) {
            eval_launches(plan, v, data.batch_size, loss, metrics, data.weighted_metrics, true, launches);
        }
        Ok(())
    }

    /// Ends an epoch with its loss and metric sums (one block per member): logs, callbacks,
    /// History, stops and divergences.
    fn epoch_end(&mut self, epoch: usize, validated: bool, sums: &[MemberSums], weighted_metrics: bool) -> Result<()> {
        let metrics = &self.metrics;
        let train_w = Weighting { rows: self.train.weighted, metrics: weighted_metrics };
        let valid_w = Weighting { rows: self.valid.as_ref().is_some_and(|v| v.weighted), metrics: weighted_metrics };
        for run in self.runs.iter_mut().filter(|r| r.active) {
            run.steps += self.steps_per_epoch as u64;
            let mut logs = Logs::new();
            let member_sums = &sums[run.member];
            record(&mut logs, metrics, member_sums, AccSlot::Train, self.n, train_w, "");
            if let Some(v) = self.valid.as_ref().filter(|_| validated) {
                record(&mut logs, metrics, member_sums, AccSlot::Eval, v.rows, valid_w, "val_");
            }
            let result = run.each(|cb, ctx| {
                // The History records what is there after every callback but the display ran: its
                // line shows the same values.
                cb.on_epoch_end(epoch, &mut logs, ctx)
            });
            run.logs = logs;
            result?;
            run.due.append(&mut run.ctx.saves);
            run.history.push_epoch(&run.logs);
            run.apply_requests(self.plan, &mut self.snapshots)?;
            if let Some(reason) = run.ctx.stop.take() {
                run.history.stopped_epoch = Some(epoch);
                run.history.stop_reason = Some(reason);
                run.end(self.plan, &mut self.snapshots, false)?;
                continue;
            }
            let loss_now = run.logs.get("loss").unwrap_or(f32::NAN);
            if !loss_now.is_finite() {
                // The run still ends for the callbacks, so EarlyStopping(restore_best_weights) puts
                // back its best weights (a NaN epoch never replaces them) rather than leaving the
                // NaNs in the model; the divergence is reported, not their errors.
                run.diverged = Some((epoch, loss_now));
                run.end(self.plan, &mut self.snapshots, true)?;
            }
        }
        // The weights now are the epoch's (copies queued above run with the next launches).
        write_files(self.plan, &mut self.runs)
    }

    /// Ends the members still training and runs the copies every member asked for last.
    fn finish(mut self) -> Result<Vec<MemberOutcome>> {
        let mut last = Vec::new();
        for run in self.runs.iter_mut() {
            if run.active {
                run.end(self.plan, &mut self.snapshots, false)?;
            }
            last.append(&mut run.pending);
        }
        if !last.is_empty() {
            self.plan.backend.run(&last, &[])?;
        }
        for run in self.runs.iter_mut() {
            run.due.append(&mut run.ctx.saves);
        }
        write_files(self.plan, &mut self.runs)?;
        Ok(self
            .runs
            .into_iter()
            .map(|r| MemberOutcome { history: r.history, optimizer: r.optimizer, steps: r.steps, diverged: r.diverged })
            .collect())
    }
}

/// Writes the files the members' callbacks asked for (`Run::due`), with each member's weights as
/// the plan holds them now: one readback of all members' weights (and optimizer moments when a
/// full model file is due) however many files. A member whose last loss is not finite writes
/// nothing: its weights could not be loaded back.
fn write_files(plan: &mut Plan, runs: &mut [Run<'_>]) -> Result<()> {
    if runs.iter().all(|r| r.due.is_empty()) {
        return Ok(());
    }
    let weights = plan.read_member_weights()?;
    let wants_moments = runs.iter().any(|r| r.steps > 0 && r.due.iter().any(|d| !d.weights_only));
    let moments = if wants_moments { Some(plan.read_member_moments()?) } else { None };
    for run in runs.iter_mut() {
        let due = std::mem::take(&mut run.due);
        if due.is_empty() || !run.logs.get("loss").is_none_or(f32::is_finite) {
            continue;
        }
        let writer = run.writer.as_ref().ok_or_else(|| {
            Error::State("a callback asked to save the model, which this fit cannot write (not compiled?)".into())
        })?;
        let (params, state) = weights
            .get(run.member)
            .ok_or_else(|| Error::Internal(format!("no weights read for member {}", run.member)))?;
        for req in due {
            let opt_state = match (&moments, run.steps) {
                (Some(m), steps) if steps > 0 && !req.weights_only => {
                    m.get(run.member).map(|moments| (steps, moments.clone()))
                }
                _ => None,
            };
            writer.write(&req, run.optimizer.clone(), params, state, opt_state)?;
        }
    }
    Ok(())
}

/// Trains one plan's members on checked data, one submission per epoch for all of them.
/// `on_epoch` sees each epoch's logs of the members that trained in it.
pub(crate) fn fit_members<'a>(
    plan: &mut Plan,
    loss: Loss,
    metrics: &MetricSet,
    data: FitData<'_>,
    members: Vec<MemberFit<'a>>,
    on_epoch: &mut dyn FnMut(usize, &[MemberLogs<'_>]),
) -> Result<Vec<MemberOutcome>> {
    let group = PlanMembers { plan, loss, metrics: metrics.clone(), members };
    Ok(fit_plans(vec![group], data, &mut |epoch, logs| on_epoch(epoch, logs[0]))?.pop().unwrap_or_default())
}

/// Trains several plans' members (a sweep over shapes) in lockstep on the same data: each
/// epoch, every plan still training records its launches and all of them run as one submission
/// with one wait (GPU plans of one device; `device::run_together`). `on_epoch` sees, per plan,
/// the logs of the members that trained in the epoch. Returns each plan's outcomes.
pub(crate) fn fit_plans<'a>(
    groups: Vec<PlanMembers<'a, '_>>,
    data: FitData<'_>,
    on_epoch: &mut dyn FnMut(usize, &[&[MemberLogs<'_>]]),
) -> Result<Vec<Vec<MemberOutcome>>> {
    let mut fits = Vec::with_capacity(groups.len());
    for g in groups {
        fits.push(PlanFit::start(g, &data)?);
    }
    let profiling = data.profile.unwrap_or_else(|| fits.iter().any(|f| f.plan.backend.profiles_every_fit()));
    for f in fits.iter_mut() {
        f.plan.backend.set_profiling(profiling);
    }
    // Profiling ends with the epochs, also when one fails (evaluate and predict are not profiled).
    let trained = run_epochs(&mut fits, &data, on_epoch, profiling);
    for f in fits.iter_mut() {
        f.plan.backend.set_profiling(false);
    }
    trained?;
    fits.into_iter().map(PlanFit::finish).collect()
}

/// The epochs of [`fit_plans`]: each one recording per live plan, one submission, then each
/// plan's epoch end (and, when `profiling`, the epoch's profile printed and kept).
fn run_epochs(
    fits: &mut [PlanFit<'_, '_>],
    data: &FitData<'_>,
    on_epoch: &mut dyn FnMut(usize, &[&[MemberLogs<'_>]]),
    profiling: bool,
) -> Result<()> {
    let mut launches: Vec<Vec<Launch>> = vec![Vec::new(); fits.len()];
    for epoch in 0..data.epochs {
        let live: Vec<usize> = (0..fits.len()).filter(|&g| fits[g].active()).collect();
        if live.is_empty() {
            break;
        }
        let started = profiling.then(Instant::now);
        for &g in &live {
            launches[g].clear();
            fits[g].epoch_launches(epoch, data, &mut launches[g])?;
        }
        let recorded = started.map(|s| s.elapsed().as_secs_f64());
        // Plans with streamed data run one after another, each in pieces; the others together.
        let streams = |g: &usize| launches[*g].iter().any(|l| matches!(l, Launch::Fill { .. }));
        let sums = if live.iter().any(streams) {
            let mut all = Vec::with_capacity(live.len());
            for &g in &live {
                all.push(fits[g].run_streamed(&launches[g], data)?);
            }
            all
        } else {
            let mut jobs: Vec<RunJob<'_>> = Vec::with_capacity(live.len());
            for (g, fit) in fits.iter_mut().enumerate() {
                if live.contains(&g) {
                    let reads = fit.plan.sums_read();
                    jobs.push(RunJob { backend: fit.plan.backend.as_mut(), launches: &launches[g], reads });
                }
            }
            run_together(&mut jobs)?
        };
        let profile = match (started, recorded) {
            (Some(started), Some(recorded)) => epoch_profile(fits, &live, epoch, started, recorded),
            _ => None,
        };
        for (&g, read) in live.iter().zip(sums) {
            let per_member = fits[g].plan.split_sums(&read);
            fits[g].epoch_end(epoch, data.validates(epoch), &per_member, data.weighted_metrics)?;
        }
        if let Some(profile) = profile {
            eprintln!("{profile}");
            for run in fits.iter_mut().flat_map(|f| f.runs.iter_mut()).filter(|r| r.history.epochs() > epoch) {
                run.history.profile.push(profile.clone());
            }
        }
        let shown: Vec<Vec<MemberLogs<'_>>> = fits
            .iter()
            .map(|f| f.runs.iter().filter(|r| r.history.epochs() > epoch).map(|r| (r.member, &r.logs)).collect())
            .collect();
        let views: Vec<&[MemberLogs<'_>]> = shown.iter().map(Vec::as_slice).collect();
        on_epoch(epoch, &views);
    }
    Ok(())
}

/// The epoch's profile: the kernel times of every plan that ran (one submission: their rows
/// and spans add up), the wall time since `started`, and the host's recording time (`recorded`
/// seconds of building launches, plus each backend's own).
fn epoch_profile(
    fits: &mut [PlanFit<'_, '_>],
    live: &[usize],
    epoch: usize,
    started: Instant,
    recorded: f64,
) -> Option<EpochProfile> {
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut all: Option<EpochProfile> = None;
    for &g in live {
        let Some(p) = fits[g].plan.backend.take_profile() else { continue };
        match all.as_mut() {
            None => all = Some(p),
            Some(a) => a.absorb(p),
        }
    }
    let mut profile = all?;
    profile.epoch = epoch;
    profile.wall_ms = wall_ms;
    profile.host_ms += recorded * 1e3;
    Some(profile)
}

/// The launches of a validation/evaluation pass over `data`: forward in inference mode and the
/// loss into the evaluation accumulators (weighted when `data` carries weights; the metrics too
/// with `weighted_metrics`). `through_order`: each member's rows are its row order (validation
/// rows per member), else the dataset's rows in sequence.
#[allow(clippy::too_many_arguments)]
pub(crate) fn eval_launches(
    plan: &Plan,
    data: &DeviceData,
    batch: usize,
    loss: Loss,
    metrics: &MetricSet,
    weighted_metrics: bool,
    through_order: bool,
    out: &mut Vec<Launch>,
) {
    let weighting = Weighting { rows: data.weighted, metrics: weighted_metrics };
    for (i, start) in (0..data.rows).step_by(batch).enumerate() {
        let rows = batch.min(data.rows - start);
        plan.gather(data, start, rows, through_order, out);
        plan.forward(rows, false, 0, out);
        plan.loss(loss, metrics, rows, false, i > 0, AccSlot::Eval, weighting, out);
    }
}

/// Adds one pass's mean loss and metrics to the logs: the loss is sums / rows (Keras's loss,
/// weighted or not, is the batch losses' mean weighted by batch size: the weighted sum over the
/// rows); the metrics of a pass weighted as `weighting` says are divided by the weights' sum
/// instead (0 when it is 0, Keras's divide_no_nan); confusion metrics come from the pass's counts.
pub(crate) fn record(
    logs: &mut Logs,
    metrics: &MetricSet,
    read: &MemberSums,
    slot: AccSlot,
    rows: usize,
    weighting: Weighting,
    prefix: &str,
) {
    let sums = read.sums.get(Plan::acc_offset(metrics, slot)..).unwrap_or_default();
    let counts = read.counts.get(Plan::counts_offset(metrics, slot)..).unwrap_or_default();
    let loss = sums.first().copied().unwrap_or(f32::NAN) as f64 / rows as f64;
    logs.insert(&format!("{prefix}loss"), loss as f32);
    let weight_sum =
        (weighting.rows && weighting.metrics).then(|| sums.get(metrics.values()).copied().unwrap_or(f32::NAN) as f64);
    for (key, value) in metrics.values_of(sums, counts, weight_sum.unwrap_or(rows as f64)) {
        logs.insert(&format!("{prefix}{key}"), value);
    }
}

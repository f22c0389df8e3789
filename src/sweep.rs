//! Many models at once: a [`Sweep`] trains a list of compiled [`Sequential`] models together.
//! Models of one architecture (and loss, metrics, optimizer kind and row counts) become the
//! members of one plan, trained in the same kernels: one dispatch per kernel for all of them, one
//! submission and one small readback per epoch. Each member keeps its own seed, learning rate,
//! optimizer hyperparameters, dropout rates, training and validation rows, callbacks and History,
//! and trains exactly as it would alone.
//!
//! ```
//! use wgfit::{Adam, Dense, Device, EarlyStopping, Fit, Matrix, Member, Sequential, Sweep};
//!
//! let device = Device::cpu();
//! let x = Matrix::new(8, 2, (0..16).map(|v| v as f32 / 16.0).collect()).unwrap();
//! let y = Matrix::new(8, 1, (0..8).map(|v| (v % 2) as f32).collect()).unwrap();
//! // Four learning rates, two seeds each: eight models trained together.
//! let mut sweep = Sweep::from_fn(8, |i| {
//!     let lr = [1e-3, 3e-3, 1e-2, 3e-2][i % 4];
//!     let layers = vec![Dense::new(4).activation("relu").input_shape(2), Dense::new(1).activation("sigmoid")];
//!     let mut model = Sequential::new(&device, layers).seed((i / 4) as u64);
//!     model.compile(Adam::new(lr), "binary_crossentropy", &["accuracy"])?;
//!     Ok(Member::new(model).label(format!("lr={lr} seed={}", i / 4)).callback(EarlyStopping::new().monitor("loss")))
//! })
//! .unwrap();
//! let result = sweep.fit(&x, &y, Fit::new().epochs(5).batch_size(4).verbose(0)).unwrap();
//! let board = result.leaderboard("loss").unwrap();
//! assert_eq!(board.len(), 8);
//! let best = sweep.model(board[0].member).unwrap();
//! assert_eq!(best.predict(&x).unwrap().rows(), 8);
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use crate::callbacks::{Callback, Logs, Mode};
use crate::data::DataFile;
use crate::device::member_stride;
use crate::error::{Error, Result};
use crate::history::History;
use crate::layers::{Layer, LayerKind};
use crate::matrix::Matrix;
use crate::model::{ModelState, Sequential};
use crate::plan::{Features, MemberSettings, Plan};
use crate::trainer::{self, Fit, FitData, MemberFit, PlanMembers};

/// One model of a sweep: a compiled [`Sequential`] with its own fit settings.
pub struct Member<'a> {
    model: Sequential,
    label: String,
    seed: Option<u64>,
    train_rows: Option<Vec<usize>>,
    valid_rows: Option<Vec<usize>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
}

impl<'a> Member<'a> {
    /// A member trained from `model` as it is (its weights, optimizer and learning rate). The
    /// model must be compiled.
    pub fn new(model: Sequential) -> Self {
        Member { model, label: String::new(), seed: None, train_rows: None, valid_rows: None, callbacks: Vec::new() }
    }

    /// A name for the leaderboard (e.g. its settings).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Seed of its row shuffles and dropout masks (default: the model's weight seed, as
    /// `wgfit train --seed` sets both).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Trains on these rows of x (k-fold, bootstrap, subsets); default all. Repeats are allowed.
    pub fn train_rows(mut self, rows: Vec<usize>) -> Self {
        self.train_rows = Some(rows);
        self
    }

    /// Validates on these rows of the validation data (default all).
    pub fn valid_rows(mut self, rows: Vec<usize>) -> Self {
        self.valid_rows = Some(rows);
        self
    }

    /// Adds one of its own callbacks (EarlyStopping, ReduceLROnPlateau, TerminateOnNaN, ...).
    pub fn callback(mut self, cb: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }
}

/// How one member's fit went.
#[derive(Clone, Debug)]
pub struct MemberReport {
    /// The member's label (`Member::label`).
    pub label: String,
    /// Its per-epoch losses and metrics.
    pub history: History,
    /// Epochs it trained (fewer than asked when it stopped early or diverged).
    pub epochs_run: usize,
    /// The epoch (0-based) and value of a non-finite loss that ended it, if one did.
    pub diverged: Option<(usize, f32)>,
}

/// One row of a leaderboard: a member and its best value of the monitored quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// The member's index in the sweep.
    pub member: usize,
    /// Its label.
    pub label: String,
    /// Its best value of the monitored quantity (NaN if it never had a finite one).
    pub best: f32,
    /// The epoch (0-based) of that value.
    pub best_epoch: usize,
}

/// What [`Sweep::fit`] returns: every member's History, in member order, and the sweep's cost.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Every member's report, in member order.
    pub members: Vec<MemberReport>,
    /// Wall seconds of the whole fit, building the plans included.
    pub wall_s: f64,
    /// Sum over members of the epochs each trained, per wall second (setup included).
    pub model_epochs_per_s: f64,
    /// Plans the members formed (one per architecture, split further when K did not fit in the
    /// adapter's largest buffer); they train in lockstep, one submission per epoch for all.
    pub plans: usize,
    /// Device memory of all the plans together, in bytes.
    pub device_bytes: usize,
}

impl SweepReport {
    /// Members sorted by their best value of `monitor` (the lowest first for losses and errors,
    /// the highest for accuracies, as Keras's `mode="auto"`). Members without a finite value of
    /// it (diverged from the start) come last.
    pub fn leaderboard(&self, monitor: &str) -> Result<Vec<Ranked>> {
        let max = Mode::Auto.maximizes(monitor);
        let mut rows = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let values = m.history.get(monitor).ok_or_else(|| Error::UnknownName {
                kind: "monitored quantity",
                name: monitor.to_string(),
                valid: m.history.keys().collect::<Vec<_>>().join(", "),
            })?;
            let best = values.iter().enumerate().filter(|(_, v)| v.is_finite()).fold(None, |acc, (e, &v)| match acc {
                Some((_, b)) if (max && v <= b) || (!max && v >= b) => acc,
                _ => Some((e, v)),
            });
            let (best_epoch, best) = best.unwrap_or((0, f32::NAN));
            rows.push(Ranked { member: i, label: m.label.clone(), best, best_epoch });
        }
        rows.sort_by(|a, b| {
            let key = |r: &Ranked| {
                if r.best.is_finite() {
                    if max {
                        -r.best
                    } else {
                        r.best
                    }
                } else {
                    f32::INFINITY
                }
            };
            key(a).total_cmp(&key(b)).then(a.member.cmp(&b.member))
        });
        Ok(rows)
    }
}

/// A fitted member's state, written into its Sequential when it is asked for.
struct Trained {
    model: ModelState,
    learning_rate: f32,
    input_w: usize,
}

/// Many compiled models trained together (see the module docs).
pub struct Sweep<'a> {
    members: Vec<Member<'a>>,
    trained: Vec<Option<Trained>>,
    /// Largest number of members per plan (tests, and memory limits of the caller's choosing).
    max_members: Option<usize>,
}

impl<'a> Sweep<'a> {
    /// A sweep of these members. Zero members is an error.
    pub fn new(members: Vec<Member<'a>>) -> Result<Self> {
        if members.is_empty() {
            return Err(Error::invalid("members", 0, "a sweep needs at least one model"));
        }
        let n = members.len();
        Ok(Sweep { members, trained: (0..n).map(|_| None).collect(), max_members: None })
    }

    /// A sweep of `count` members made by `make(i)`.
    pub fn from_fn(count: usize, mut make: impl FnMut(usize) -> Result<Member<'a>>) -> Result<Self> {
        Sweep::new((0..count).map(&mut make).collect::<Result<Vec<_>>>()?)
    }

    /// At most `k` members per plan (larger groups are split into several plans).
    pub fn max_members_per_plan(mut self, k: usize) -> Self {
        self.max_members = Some(k.max(1));
        self
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the sweep has no members (never, once built).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`'s model, holding its trained weights, optimizer state and learning rate: save
    /// it, predict, evaluate or fit it further like any model.
    pub fn model(&mut self, i: usize) -> Result<&mut Sequential> {
        let n = self.members.len();
        let member = self.members.get_mut(i).ok_or_else(|| Error::invalid("member", i, format!("there are {n}")))?;
        if let Some(t) = self.trained[i].take() {
            member.model.install_trained(&t.model, t.learning_rate, t.input_w)?;
        }
        Ok(&mut member.model)
    }

    /// Takes every model out of the sweep, in member order.
    pub fn into_models(mut self) -> Result<Vec<Sequential>> {
        for i in 0..self.members.len() {
            self.model(i)?;
        }
        Ok(self.members.into_iter().map(|m| m.model).collect())
    }

    /// The mean of the chosen members' predictions (an ensemble; a member listed twice counts
    /// twice). Members of one architecture predict together: one plan, one pass over `x`.
    pub fn predict_mean(&mut self, chosen: &[usize], x: &Matrix) -> Result<Matrix> {
        x.check_finite("predict_mean x")?;
        self.predict_mean_of(chosen, Features::Memory(x))
    }

    /// [`Sweep::predict_mean`] over every row of a [`DataFile`] (its target column unused), its
    /// features streamed from the spill file; the mean is one matrix in memory.
    pub fn predict_mean_file(&mut self, chosen: &[usize], file: &DataFile) -> Result<Matrix> {
        self.predict_mean_of(chosen, Features::File { file, first: 0, rows: file.rows() })
    }

    fn predict_mean_of(&mut self, chosen: &[usize], x: Features<'_>) -> Result<Matrix> {
        if chosen.is_empty() {
            return Err(Error::invalid("members", 0, "an ensemble needs at least one member"));
        }
        let n = self.members.len();
        if let Some(&bad) = chosen.iter().find(|&&i| i >= n) {
            return Err(Error::invalid("member", bad, format!("there are {n}")));
        }
        if x.rows() == 0 || x.cols() == 0 {
            return Err(Error::shape(
                "predict_mean",
                "x with rows and columns",
                format!("x of {} x {}", x.rows(), x.cols()),
            ));
        }
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for &i in chosen {
            let member = &self.members[i];
            if let Some(w) = member.model.input_shape().or(self.trained[i].as_ref().map(|t| t.input_w)) {
                if w != x.cols() {
                    return Err(Error::shape(
                        "predict_mean",
                        format!("x with {w} columns (member {i} takes {w} input features)"),
                        format!("x with {} columns", x.cols()),
                    ));
                }
            }
            let key = member.group_key(x.cols(), None, None)?;
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let mut sum: Vec<f64> = Vec::new();
        let mut out_w = None;
        for (_, group) in &groups {
            let outputs = self.predict_group(group, x)?;
            let w = outputs.first().map_or(0, |o| o.len() / x.rows());
            if out_w.is_some_and(|o| o != w) {
                return Err(Error::shape(
                    "predict_mean",
                    format!("members with {} outputs", out_w.unwrap_or(0)),
                    format!("a member with {w}"),
                ));
            }
            out_w = Some(w);
            sum.resize(x.rows() * w, 0.0);
            for o in outputs {
                for (acc, v) in sum.iter_mut().zip(o) {
                    *acc += v as f64;
                }
            }
        }
        let k = chosen.len() as f64;
        Matrix::new(x.rows(), out_w.unwrap_or(0), sum.into_iter().map(|v| (v / k) as f32).collect())
    }

    /// Each of `group`'s members' outputs for `x` (flat, row-major), from one plan of them all.
    fn predict_group(&mut self, group: &[usize], x: Features<'_>) -> Result<Vec<Vec<f32>>> {
        let first = &self.members[group[0]].model;
        let (device, layers) = (first.device().clone(), first.layers().to_vec());
        let mut plan = Plan::build(&device, &layers, x.cols(), group.len())?;
        for (k, &i) in group.iter().enumerate() {
            match &self.trained[i] {
                Some(t) => plan.write_member_weights(k, &t.model.params, &t.model.state)?,
                None => {
                    let start = self.members[i].model.starting_state(x.cols())?;
                    plan.write_member_weights(k, &start.params, &start.state)?;
                }
            }
        }
        plan.predict(x)
    }

    /// Trains every member on `x`, `y` with the shared settings of `opts` (epochs, batch size,
    /// shuffle, validation data, file or split, verbosity; its seed is unused: each member has
    /// its own). Callbacks belong to members ([`Member::callback`]); `opts` may not carry any.
    pub fn fit(&mut self, x: &Matrix, y: &Matrix, opts: Fit<'_>) -> Result<SweepReport> {
        crate::model::on_matrix(x, y, opts, |x, y, validation, opts| self.fit_features(x, y, validation, opts))
    }

    /// [`Sweep::fit`] on the rows of a [`DataFile`], streamed from its spill file as
    /// [`Sequential::fit_file`](crate::Sequential::fit_file) streams them (the same
    /// `validation_split`, validation data or file, and the file's own sample weights): every
    /// member reads its own rows (its order, its [`Member::train_rows`]) chunk by chunk, so
    /// device memory stays bounded however large the file. Each member's History and weights
    /// are those of `fit` on the file's table in memory, bit for bit.
    ///
    /// ```no_run
    /// use wgfit::data::DataFile;
    /// use wgfit::{Dense, Device, Fit, Member, Sequential, Sweep};
    /// # fn main() -> wgfit::Result<()> {
    /// let file = DataFile::open("houses.csv", Some("price"))?;
    /// let mut sweep = Sweep::from_fn(4, |i| {
    ///     let layers = vec![Dense::new(64).activation("relu").input_shape(file.features().len()), Dense::new(1)];
    ///     let mut model = Sequential::new(&Device::cpu(), layers).seed(i as u64);
    ///     model.compile("adam", "mse", &[])?;
    ///     Ok(Member::new(model).label(format!("seed {i}")))
    /// })?;
    /// let report = sweep.fit_file(&file, Fit::new().validation_split(0.2).epochs(20).batch_size(256))?;
    /// println!("best: {}", report.leaderboard("val_loss")?[0].label);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit_file(&mut self, file: &DataFile, opts: Fit<'_>) -> Result<SweepReport> {
        crate::model::on_file(file, opts, |x, y, validation, opts| self.fit_features(x, y, validation, opts))
    }

    /// The sweep's fit of every kind of data, once its validation data is chosen.
    fn fit_features(
        &mut self,
        x: Features<'_>,
        y: &Matrix,
        validation: Option<(Features<'_>, &Matrix)>,
        opts: Fit<'_>,
    ) -> Result<SweepReport> {
        if !opts.callbacks.is_empty() {
            return Err(Error::State(
                "a sweep's callbacks belong to its members (Member::callback); Fit::callbacks was given".into(),
            ));
        }
        opts.check_counts()?;
        let started = Instant::now();
        let epochs = opts.epochs.unwrap_or(1);
        let verbose = opts.verbose.unwrap_or(if std::io::IsTerminal::is_terminal(&std::io::stderr()) { 1 } else { 2 });
        let vrows = validation.map(|(vx, _)| vx.rows());
        for (i, m) in self.members.iter_mut().enumerate() {
            m.model.check_fit_features(x, y, validation).map_err(|e| e.in_member(i))?;
            if let Some(rows) = &m.train_rows {
                check_rows(rows, x.rows(), i, "train_rows")?;
            }
            if let Some(rows) = &m.valid_rows {
                let Some(vrows) = vrows else {
                    return Err(Error::State(format!("member {i} has valid_rows but the fit has no validation data")));
                };
                check_rows(rows, vrows, i, "valid_rows")?;
            }
        }
        if let (Some(w), Some(vrows)) = (opts.validation_weights, vrows) {
            crate::weights::check_sample_weights("validation sample_weight", w, vrows)?;
        }
        let groups = self.groups(x.cols(), x.rows(), vrows)?;
        let total = self.members.len();
        let mut reports: Vec<Option<MemberReport>> = (0..total).map(|_| None).collect();
        let mut display = SweepDisplay::new(verbose, total, epochs * total, groups.len());
        let (device_bytes, outcome) = self.fit_groups(&groups, x, y, validation, &opts, &mut display)?;
        for (i, r) in outcome {
            reports[i] = Some(r);
        }
        let members: Vec<MemberReport> = reports.into_iter().map(|r| r.expect("every member is in a group")).collect();
        let wall_s = started.elapsed().as_secs_f64();
        let model_epochs: usize = members.iter().map(|m| m.epochs_run).sum();
        display.finish();
        Ok(SweepReport {
            wall_s,
            model_epochs_per_s: model_epochs as f64 / wall_s.max(1e-9),
            plans: groups.len(),
            device_bytes,
            members,
        })
    }

    /// Members that can share a plan, in member order within each group; groups in order of
    /// their first member, split to fit the adapter's largest buffer.
    fn groups(&self, input_w: usize, rows: usize, val_rows: Option<usize>) -> Result<Vec<Vec<usize>>> {
        let mut keyed: BTreeMap<usize, (String, Vec<usize>)> = BTreeMap::new();
        let mut first_of: Vec<(String, usize)> = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let key = m.group_key(input_w, Some(rows), val_rows)?;
            match first_of.iter().find(|(k, _)| *k == key) {
                Some(&(_, first)) => keyed.get_mut(&first).expect("made below").1.push(i),
                None => {
                    first_of.push((key.clone(), i));
                    keyed.insert(i, (key, vec![i]));
                }
            }
        }
        let mut out = Vec::new();
        for (_, (_, members)) in keyed {
            let first = &self.members[members[0]].model;
            let per_plan = self.max_members.unwrap_or(usize::MAX).min(members_that_fit(first, input_w));
            out.extend(members.chunks(per_plan.max(1)).map(|c| c.to_vec()));
        }
        Ok(out)
    }

    /// Trains every group as a plan of its own, the plans in lockstep (one submission per
    /// epoch for all of them); returns the plans' device bytes together and each member's report.
    fn fit_groups(
        &mut self,
        groups: &[Vec<usize>],
        x: Features<'_>,
        y: &Matrix,
        validation: Option<(Features<'_>, &Matrix)>,
        opts: &Fit<'_>,
        display: &mut SweepDisplay,
    ) -> Result<(usize, Vec<(usize, MemberReport)>)> {
        let mut plans = Vec::with_capacity(groups.len());
        let mut compiled = Vec::with_capacity(groups.len());
        let mut fits = Vec::with_capacity(groups.len());
        for group in groups {
            let first = &self.members[group[0]].model;
            let device = first.device().clone();
            let layers: Vec<Layer> = first.layers().to_vec();
            compiled.push(first.loss_and_metrics()?);
            let mut plan = Plan::build(&device, &layers, x.cols(), group.len())?;
            let mut members = Vec::with_capacity(group.len());
            for (k, &i) in group.iter().enumerate() {
                let member = &mut self.members[i];
                // A member fit before continues from where that fit left it.
                let mut optimizer = member.model.optimizer()?;
                let start = match self.trained[i].take() {
                    Some(t) => {
                        optimizer.set_learning_rate(t.learning_rate)?;
                        t.model
                    }
                    None => member.model.starting_state(x.cols())?,
                };
                plan.write_member_weights(k, &start.params, &start.state)?;
                if let Some(moments) = &start.moments {
                    plan.write_member_moments(k, moments)?;
                }
                members.push(MemberFit {
                    optimizer,
                    steps: start.steps,
                    seed: member.seed.unwrap_or(member.model.init_seed()),
                    dropout: MemberSettings::dropout_rates(member.model.layers()),
                    callbacks: std::mem::take(&mut member.callbacks),
                    verbose: Some(0),
                    train_rows: member.train_rows.as_ref().map(|r| r.iter().map(|&v| v as u32).collect()),
                    valid_rows: member.valid_rows.as_ref().map(|r| r.iter().map(|&v| v as u32).collect()),
                    writer: crate::io::ModelWriter::of(&member.model, x.cols()),
                });
            }
            plans.push(plan);
            fits.push(members);
        }
        // Every member reads the same weights; the metrics are weighted when every member's are.
        let out_w = self.members.first().map_or(y.cols(), |m| m.model.output_width(x.cols()));
        let weights = crate::weights::training_weights(opts.sample_weight, opts.class_weight.as_deref(), y, out_w)?;
        let weighted_metrics = self.members.iter().all(|m| m.model.uses_weighted_metrics());
        let data = FitData {
            x,
            y,
            validation,
            weights: weights.as_deref(),
            val_weights: opts.validation_weights,
            weighted_metrics,
            batch_size: opts.batch_size.unwrap_or(32),
            epochs: opts.epochs.unwrap_or(1),
            shuffle: opts.shuffle.unwrap_or(true),
            validation_freq: opts.validation_freq.unwrap_or(1),
            profile: opts.profile,
        };
        let work: Vec<PlanMembers> = plans
            .iter_mut()
            .zip(compiled)
            .zip(fits)
            .map(|((plan, (loss, metrics)), members)| PlanMembers { plan, loss, metrics, members })
            .collect();
        let outcomes = trainer::fit_plans(work, data, &mut |epoch, per_plan| {
            let logs: Vec<_> = per_plan.iter().flat_map(|p| p.iter().copied()).collect();
            display.epoch(epoch, logs.len(), &logs)
        })?;
        let mut bytes = 0;
        let mut out = Vec::with_capacity(self.members.len());
        for ((group, plan), outcomes) in groups.iter().zip(plans.iter_mut()).zip(outcomes) {
            let weights = plan.read_member_weights()?;
            let moments = plan.read_member_moments()?;
            bytes += plan.device_bytes();
            for (((&i, outcome), (params, state)), moments) in group.iter().zip(outcomes).zip(weights).zip(moments) {
                self.trained[i] = Some(Trained {
                    model: ModelState { params, state, moments: Some(moments), steps: outcome.steps },
                    learning_rate: outcome.optimizer.learning_rate(),
                    input_w: x.cols(),
                });
                let epochs_run = outcome.history.epochs();
                let label = self.members[i].label.clone();
                out.push((i, MemberReport { label, history: outcome.history, epochs_run, diverged: outcome.diverged }));
            }
        }
        Ok((bytes, out))
    }
}

impl Member<'_> {
    /// What must match for two members to share a plan: architecture (Dropout rates aside: they
    /// are per member), loss and metrics, optimizer kind, device, and row counts.
    fn group_key(&self, input_w: usize, rows: Option<usize>, val_rows: Option<usize>) -> Result<String> {
        let layers: Vec<Layer> = self
            .model
            .layers()
            .iter()
            .map(|l| {
                let mut l = l.clone();
                if let LayerKind::Dropout(c) = &mut l.kind {
                    c.rate = 0.0;
                }
                l.name = None;
                l
            })
            .collect();
        let (loss, metrics) = self.model.loss_and_metrics()?;
        let optimizer = self.model.optimizer()?;
        let kind = std::mem::discriminant(&optimizer);
        let rows = self.train_rows.as_ref().map(Vec::len).or(rows);
        let vrows = self.valid_rows.as_ref().map(Vec::len).or(val_rows);
        Ok(format!(
            "{layers:?}|{input_w}|{loss:?}|{:?}|{kind:?}|{rows:?}|{vrows:?}|{:?}",
            metrics.keys().collect::<Vec<_>>(),
            self.model.device()
        ))
    }
}

/// The most members of `model`'s architecture one plan can hold: every member buffer must fit
/// the adapter's largest binding.
fn members_that_fit(model: &Sequential, input_w: usize) -> usize {
    let (params, _, _) = crate::summary::count_params(model.layers(), input_w);
    let widest = model.layers().iter().scan(input_w, |w, l| {
        *w = l.output_width(*w);
        Some(*w)
    });
    let widest = widest.chain([input_w]).max().unwrap_or(1);
    // A batch of up to 1024 rows (evaluation) of the widest layer, or the parameters.
    let per_member = member_stride(params).max(member_stride(1024 * widest));
    let most = model.device_max_binding_values();
    (most / per_member.max(1)).max(1)
}

fn check_rows(rows: &[usize], available: usize, member: usize, what: &str) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::invalid(format!("member {member} {what}"), 0, "must list at least one row"));
    }
    if let Some(&bad) = rows.iter().find(|&&r| r >= available) {
        return Err(Error::invalid(
            format!("member {member} {what}"),
            bad,
            format!("is past the {available} rows of the data"),
        ));
    }
    Ok(())
}

/// The result of [`cross_validate`]: each fold's History and the spread of the monitored value.
#[derive(Clone, Debug)]
pub struct CrossValidation {
    /// Each fold's report, in fold order.
    pub folds: Vec<MemberReport>,
    /// Each fold's best value of the monitored quantity.
    pub best: Vec<f32>,
    /// Mean of `best` over the folds.
    pub mean: f32,
    /// Sample standard deviation over folds (0 for one fold).
    pub std: f32,
}

/// k-fold cross-validation in one call: `make(fold)` builds a compiled model for each fold; fold f
/// validates on the f-th of `folds` contiguous slices of the rows (scikit-learn's `KFold` without
/// shuffling: the first `n % folds` slices one row longer) and trains on the rest, all folds
/// together. Reports each fold's best `monitor` (e.g. "val_loss") with mean and spread.
pub fn cross_validate(
    folds: usize,
    x: &Matrix,
    y: &Matrix,
    opts: Fit<'_>,
    monitor: &str,
    make: impl FnMut(usize) -> Result<Sequential>,
) -> Result<CrossValidation> {
    check_folds(folds, x.rows(), &opts)?;
    // A fold's validation rows keep their sample weights (class weights train only, as Keras).
    let opts = match opts.sample_weight {
        Some(w) => opts.validation_data_weighted(x, y, w),
        None => opts.validation_data(x, y),
    };
    let mut sweep = fold_sweep(folds, x.rows(), make)?;
    let report = sweep.fit(x, y, opts)?;
    fold_scores(report, folds, monitor)
}

/// [`cross_validate`] on the rows of a [`DataFile`], streamed as [`Sweep::fit_file`] streams
/// them: the same folds, the same reports as `cross_validate` on the file's table in memory. A
/// file opened with a weight column weighs training and validation rows by it.
pub fn cross_validate_file(
    folds: usize,
    file: &DataFile,
    opts: Fit<'_>,
    monitor: &str,
    make: impl FnMut(usize) -> Result<Sequential>,
) -> Result<CrossValidation> {
    check_folds(folds, file.rows(), &opts)?;
    let opts = Fit { validation_file: Some(file), validation_weights: opts.sample_weight, ..opts };
    let mut sweep = fold_sweep(folds, file.rows(), make)?;
    let report = sweep.fit_file(file, opts)?;
    fold_scores(report, folds, monitor)
}

fn check_folds(folds: usize, n: usize, opts: &Fit<'_>) -> Result<()> {
    if folds < 2 {
        return Err(Error::invalid("folds", folds, "must be at least 2"));
    }
    if folds > n {
        return Err(Error::invalid("folds", folds, format!("more folds than the {n} rows")));
    }
    if opts.validation.is_some() || opts.validation_file.is_some() || opts.validation_split.is_some() {
        return Err(Error::State("cross_validate makes its own validation folds; give no validation data".into()));
    }
    Ok(())
}

/// A member per fold of `n` rows: fold f trains on every row outside its slice, validates on it.
fn fold_sweep<'a>(folds: usize, n: usize, mut make: impl FnMut(usize) -> Result<Sequential>) -> Result<Sweep<'a>> {
    let bounds = fold_bounds(n, folds);
    Sweep::from_fn(folds, |f| {
        let (lo, hi) = bounds[f];
        let train: Vec<usize> = (0..lo).chain(hi..n).collect();
        Ok(Member::new(make(f)?).label(format!("fold {f}")).train_rows(train).valid_rows((lo..hi).collect()))
    })
}

fn fold_scores(report: SweepReport, folds: usize, monitor: &str) -> Result<CrossValidation> {
    let board = report.leaderboard(monitor)?;
    let mut best = vec![f32::NAN; folds];
    for r in &board {
        best[r.member] = r.best;
    }
    let mean = best.iter().map(|&v| v as f64).sum::<f64>() / folds as f64;
    let var = best.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (folds as f64 - 1.0).max(1.0);
    Ok(CrossValidation { folds: report.members, best, mean: mean as f32, std: var.sqrt() as f32 })
}

/// [lo, hi) of each of `folds` contiguous folds of `n` rows (the first n % folds one longer).
pub fn fold_bounds(n: usize, folds: usize) -> Vec<(usize, usize)> {
    let (base, extra) = (n / folds, n % folds);
    let mut at = 0;
    (0..folds)
        .map(|f| {
            let len = base + usize::from(f < extra);
            let b = (at, at + len);
            at += len;
            b
        })
        .collect()
}

/// One progress display for a whole sweep: a bar over all model-epochs on a terminal (verbose 1),
/// a line per epoch of each plan otherwise (verbose 2), nothing at 0.
struct SweepDisplay {
    verbose: u8,
    bar: Option<indicatif::ProgressBar>,
    plans: usize,
    members: usize,
}

impl SweepDisplay {
    fn new(verbose: u8, members: usize, model_epochs: usize, plans: usize) -> Self {
        let bar = (verbose == 1 && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new(model_epochs as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} model-epochs {msg} ETA {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_prefix(format!("{members} models"));
            bar
        });
        SweepDisplay { verbose, bar, plans, members }
    }

    fn epoch(&mut self, epoch: usize, trained: usize, logs: &[(usize, &Logs)]) {
        let best = logs
            .iter()
            .filter_map(|(_, l)| l.get("val_loss").or_else(|| l.get("loss")))
            .filter(|v| v.is_finite())
            .fold(f32::INFINITY, f32::min);
        if let Some(bar) = &self.bar {
            bar.inc(trained as u64);
            bar.set_message(format!("best loss {best:.4}"));
        } else if self.verbose >= 1 {
            eprintln!(
                "epoch {}: {trained} of {} models ({} plans) training, best loss {best:.4}",
                epoch + 1,
                self.members,
                self.plans
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

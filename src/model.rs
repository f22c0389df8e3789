//! `Sequential`: compile a list of layers into a plan, then fit, evaluate and predict by replaying it.

use std::path::Path;

use crate::callbacks::Logs;
use crate::data::DataFile;
use crate::data::Preprocessor;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::history::History;
use crate::layers::{Activation, Layer};
use crate::losses::{IntoLoss, Loss};
use crate::matrix::{AsMatrix, Matrix};
use crate::metrics::MetricSet;
use crate::optimizers::{IntoOptimizer, Optimizer};
use crate::plan::{AccSlot, DataRole, Features, HostData, MemberSettings, Moments, Plan, Weighting};
use crate::trainer::{self, Compiled, Fit, FitData, MemberFit};

/// Updates applied so far, and the optimizer's moments, flat in parameter order.
pub(crate) type OptimizerMoments = (u64, Moments);

/// A model's weights and optimizer state outside its plan: what a sweep member starts from, and
/// what it brings back.
pub(crate) struct ModelState {
    pub params: Vec<f32>,
    pub state: Vec<f32>,
    /// The optimizer's moments, when it has trained.
    pub moments: Option<Moments>,
    /// Updates applied so far.
    pub steps: u64,
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
    /// A model on `device`. Nothing is checked or allocated until `compile`. The list may start
    /// with an [`Input`](crate::Input), as in Keras 3: it fixes the input width of the first layer.
    pub fn new(device: &Device, layers: Vec<Layer>) -> Self {
        let layers = crate::layers::apply_input(layers);
        Sequential { device: device.clone(), layers, seed: 0, compiled: None, plan: None, steps: 0 }
    }

    /// Seed of the initial weights (default 0: the same model every run).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The device the model trains on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Its layers, as given.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Chooses the optimizer, loss and metrics; resets the optimizer's state, keeps the weights.
    pub fn compile(&mut self, optimizer: impl IntoOptimizer, loss: impl IntoLoss, metrics: &[&str]) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Model("a Sequential model needs at least one layer".into()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate(i)?;
            if i > 0 && l.input_shape.is_some() {
                return Err(Error::Model(format!("layer {i}: input_shape belongs on the first layer only")));
            }
        }
        let optimizer = optimizer.into_optimizer()?;
        optimizer.validate()?;
        let loss = loss.into_loss()?;
        loss.validate()?;
        let metrics = MetricSet::new(metrics, &loss)?;
        self.compiled = Some(Compiled { optimizer, loss, metrics, weighted_metrics: false });
        if let Some(plan) = &mut self.plan {
            plan.reset_optimizer()?;
        } else if let Some(w) = self.layers[0].input_shape {
            self.build(w)?;
        }
        self.steps = 0;
        Ok(())
    }

    /// Makes the compiled metrics Keras's `weighted_metrics` (true) or its plain `metrics` (false,
    /// what `compile` sets): with sample or class weights, weighted metrics are the weighted means
    /// `sum(w * m) / sum(w)` (0 when every weight is 0), plain ones the unweighted means. The loss
    /// is weighted either way. Needs a compiled model; `compile` resets it; model files do not
    /// keep it.
    pub fn weighted_metrics(&mut self, on: bool) -> Result<()> {
        let c = self.compiled.as_mut().ok_or_else(|| Error::State("weighted_metrics needs a compiled model".into()))?;
        c.weighted_metrics = on;
        Ok(())
    }

    fn build(&mut self, input_w: usize) -> Result<()> {
        let mut plan = Plan::build(&self.device, &self.layers, input_w, 1)?;
        plan.initialize(&[self.seed])?;
        self.plan = Some(plan);
        Ok(())
    }

    /// The compiled settings and a plan for `x`'s features, building it on first use.
    fn ready(&mut self, x: Features<'_>, what: &str) -> Result<()> {
        if self.compiled.is_none() {
            return Err(Error::State(format!("{what} needs a compiled model: call compile() first")));
        }
        if x.rows() == 0 {
            return Err(Error::shape(what, "x with at least one row", "x with no rows"));
        }
        if x.cols() == 0 {
            return Err(Error::shape(what, "x with at least one column", "x with no columns"));
        }
        match &self.plan {
            Some(p) if p.input_w != x.cols() => Err(Error::shape(
                what,
                format!("x with {} columns (the model takes {} input features)", p.input_w, p.input_w),
                format!("x with {} columns", x.cols()),
            )),
            Some(_) => Ok(()),
            None => self.build(x.cols()),
        }
    }

    /// The checks of data for fit and evaluate: shapes, finite values (a [`DataFile`]'s were
    /// checked at open), and targets the loss can take.
    fn check_xy(&self, x: Features<'_>, y: &Matrix, what: &str) -> Result<()> {
        if x.rows() == 0 || x.cols() == 0 {
            return Err(Error::shape(what, "x with rows and columns", format!("x of {} x {}", x.rows(), x.cols())));
        }
        if x.rows() != y.rows() {
            return Err(Error::shape(
                what,
                format!("y with {} rows (as x)", x.rows()),
                format!("y with {} rows", y.rows()),
            ));
        }
        let out_w = self.output_width(x.cols());
        let loss = self.compiled.as_ref().map(|c| c.loss);
        if let Some(l) = &loss {
            l.check_output(out_w, self.layers.last().map_or(Activation::Linear, |l| l.output_activation()))?;
        }
        let y_w = loss.map_or(out_w, |l| l.target_width(out_w));
        if y.cols() != y_w {
            let why = if loss.is_some_and(|l| l.is_sparse()) {
                "one column of class indices (sparse_categorical_crossentropy; for one-hot rows use \
                 categorical_crossentropy)"
                    .to_string()
            } else {
                format!("the model outputs {out_w} values per row")
            };
            return Err(Error::shape(
                what,
                format!("y with {y_w} columns ({why})"),
                format!("y with {} columns", y.cols()),
            ));
        }
        if let Features::Memory(x) = x {
            x.check_finite(&format!("{what} x"))?;
        }
        y.check_finite(&format!("{what} y"))?;
        match &loss {
            Some(l) if l.is_sparse() => check_class_indices(y, out_w, what),
            Some(l) => l.check_targets(y, what),
            None => Ok(()),
        }
    }

    /// The class of each row of `x`: the index of the largest output (the first on ties, as
    /// Keras's argmax) for a multi-output model, `output > 0.5` as 0/1 for a one-output model
    /// (a sigmoid with binary cross-entropy; a one-output model on logits should compare with 0
    /// itself). A column of class indices, one per row.
    pub fn predict_classes(&mut self, x: &(impl AsMatrix + ?Sized)) -> Result<Matrix> {
        let p = self.predict(x)?;
        Matrix::new(p.rows(), 1, crate::metrics::classes_of(&p))
    }

    pub(crate) fn output_width(&self, input_w: usize) -> usize {
        self.layers.iter().fold(input_w, |w, l| l.output_width(w))
    }

    /// Trains on `x`, `y`; returns the per-epoch losses and metrics.
    ///
    /// Each epoch is one recording (every batch's gather, forward, loss, backward and update, then
    /// validation) run as one submission with one readback of the loss and metric sums; callbacks
    /// see those sums as the epoch's logs. Data larger than the GPU's largest buffer binding (or
    /// than [`GpuOptions::max_data_bytes`](crate::GpuOptions::max_data_bytes)) streams through a
    /// chunk buffer, one submission per chunk, with the same History as a whole upload. A non-finite loss ends fit with [`Error::Diverged`] (after
    /// the callbacks' `on_train_end`, so EarlyStopping still puts back its best weights), unless a
    /// callback (e.g. [`TerminateOnNaN`](crate::TerminateOnNaN)) stopped training at that epoch.
    pub fn fit(
        &mut self,
        x: &(impl AsMatrix + ?Sized),
        y: &(impl AsMatrix + ?Sized),
        opts: Fit<'_>,
    ) -> Result<History> {
        let (x, y) = (x.as_matrix()?, y.as_matrix()?);
        self.fit_matrix(&x, &y, opts)
    }

    fn fit_matrix(&mut self, x: &Matrix, y: &Matrix, opts: Fit<'_>) -> Result<History> {
        on_matrix(x, y, opts, |x, y, validation, opts| self.fit_features(x, y, validation, opts))
    }

    /// Trains on the rows of a [`DataFile`], streamed from its spill file: Keras's `fit` on a
    /// dataset read from a file, with the same [`Fit`] settings as [`Sequential::fit`] (epochs,
    /// batch_size, shuffle, seed, callbacks, validation). The same seed gives the same History
    /// and weights, bit for bit, as `fit` on the file's table in memory (`Table::read_csv(path)?
    /// .features_target(target)`).
    ///
    /// The features are never all on the host or the device: every epoch's batches are copied
    /// into a chunk buffer a group of whole batches at a time, each group's rows read from the
    /// spill file in the epoch's shuffled global order (as data larger than a binding streams;
    /// [`GpuOptions::max_data_bytes`](crate::GpuOptions::max_data_bytes) sets the chunk's size),
    /// on the GPU and the CPU path alike.
    ///
    /// - `validation_split`: the file's last rows validate (taken before any shuffle, as Keras).
    /// - [`Fit::validation_data`] (in memory) or [`Fit::validation_file`] (another file):
    ///   validation data as with `fit`.
    /// - `class_weight`: as with `fit` (the file's target column gives each row's class).
    /// - Sample weights: a file opened with a weight column
    ///   ([`FileOptions::sample_weight`](crate::FileOptions::sample_weight)) trains with those
    ///   weights, as Keras trains on a dataset's `(x, y, sample_weight)`; a validation file's own
    ///   weights weigh `val_loss` the same way. For a file without one, [`Fit::sample_weight`]
    ///   gives one weight per row in memory; giving it for a file that has its own is an error
    ///   (Keras's ValueError for `sample_weight` beside a dataset). With `validation_split` the
    ///   held-out rows keep their weights, as Keras.
    pub fn fit_file(&mut self, file: &DataFile, opts: Fit<'_>) -> Result<History> {
        on_file(file, opts, |x, y, validation, opts| self.fit_features(x, y, validation, opts))
    }

    /// The fit of every kind of data, once its validation data is chosen.
    fn fit_features(
        &mut self,
        x: Features<'_>,
        y: &Matrix,
        validation: Option<(Features<'_>, &Matrix)>,
        opts: Fit<'_>,
    ) -> Result<History> {
        self.ready(x, "fit")?;
        self.check_fit_features(x, y, validation)?;
        opts.check_counts()?;
        let writer = crate::io::ModelWriter::of(self, x.cols());
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let plan = self.plan.as_mut().expect("built by ready");
        let weights =
            crate::weights::training_weights(opts.sample_weight, opts.class_weight.as_deref(), y, plan.output_w)?;
        if let (Some(w), Some((vx, _))) = (opts.validation_weights, validation) {
            crate::weights::check_sample_weights("validation sample_weight", w, vx.rows())?;
        }
        let data = FitData {
            x,
            y,
            validation,
            weights: weights.as_deref(),
            val_weights: opts.validation_weights,
            weighted_metrics: compiled.weighted_metrics,
            batch_size: opts.batch_size.unwrap_or(32),
            epochs: opts.epochs.unwrap_or(1),
            shuffle: opts.shuffle.unwrap_or(true),
            validation_freq: opts.validation_freq.unwrap_or(1),
            profile: opts.profile,
        };
        let member = MemberFit {
            optimizer: compiled.optimizer.clone(),
            steps: self.steps,
            seed: opts.seed,
            dropout: MemberSettings::dropout_rates(&self.layers),
            callbacks: opts.callbacks,
            verbose: opts.verbose,
            train_rows: None,
            valid_rows: None,
            writer,
        };
        let outcome = trainer::fit_members(plan, compiled.loss, &compiled.metrics, data, vec![member], &mut |_, _| {})?
            .pop()
            .ok_or_else(|| Error::Internal("a fit of one model returned no outcome".into()))?;
        self.steps = outcome.steps;
        if let Some(c) = self.compiled.as_mut() {
            c.optimizer.set_learning_rate(outcome.optimizer.learning_rate())?;
        }
        if let Some((epoch, value)) = outcome.diverged {
            return Err(Error::Diverged { what: "loss".into(), epoch, value });
        }
        Ok(outcome.history)
    }

    /// The checks `fit` makes of its data (also of a sweep member's): compiled, shapes, finite
    /// values, targets.
    pub(crate) fn check_fit_features(
        &mut self,
        x: Features<'_>,
        y: &Matrix,
        validation: Option<(Features<'_>, &Matrix)>,
    ) -> Result<()> {
        if self.compiled.is_none() {
            return Err(Error::State("fit needs a compiled model: call compile() first".into()));
        }
        if let Some(p) = &self.plan {
            if p.input_w != x.cols() {
                return Err(Error::shape(
                    "fit",
                    format!("x with {} columns (the model takes {} input features)", p.input_w, p.input_w),
                    format!("x with {} columns", x.cols()),
                ));
            }
        }
        self.check_xy(x, y, "fit")?;
        if let Some((vx, vy)) = validation {
            self.check_xy(vx, vy, "validation_data")?;
            if vx.cols() != x.cols() {
                return Err(Error::shape(
                    "validation_data",
                    format!("x_valid with {} columns (as x)", x.cols()),
                    format!("x_valid with {} columns", vx.cols()),
                ));
            }
        }
        Ok(())
    }

    /// Whether the compiled metrics are Keras's `weighted_metrics`.
    pub(crate) fn uses_weighted_metrics(&self) -> bool {
        self.compiled.as_ref().is_some_and(|c| c.weighted_metrics)
    }

    pub(crate) fn loss_and_metrics(&self) -> Result<(Loss, MetricSet)> {
        let c = self.compiled.as_ref().ok_or_else(|| Error::State("the model is not compiled".into()))?;
        Ok((c.loss, c.metrics.clone()))
    }

    pub(crate) fn optimizer(&self) -> Result<Optimizer> {
        self.compiled
            .as_ref()
            .map(|c| c.optimizer.clone())
            .ok_or_else(|| Error::State("the model is not compiled".into()))
    }

    /// What a sweep member starts from: its weights (drawn from its seed on the host when it was
    /// never built), optimizer moments when it has trained, and updates so far.
    pub(crate) fn starting_state(&mut self, input_w: usize) -> Result<ModelState> {
        let steps = self.steps;
        match &mut self.plan {
            Some(p) => {
                let (params, state) = p.read_weights()?;
                let moments = if steps > 0 { Some(p.read_optimizer_moments()?) } else { None };
                Ok(ModelState { params, state, moments, steps })
            }
            None => {
                let (params, state) = crate::plan::initial_weights(&self.layers, input_w, self.seed);
                Ok(ModelState { params, state, moments: None, steps: 0 })
            }
        }
    }

    /// Installs what a sweep trained: weights, optimizer moments, updates and learning rate.
    pub(crate) fn install_trained(&mut self, trained: &ModelState, learning_rate: f32, input_w: usize) -> Result<()> {
        if self.plan.is_none() {
            self.plan = Some(Plan::build(&self.device, &self.layers, input_w, 1)?);
        }
        let plan = self.plan.as_mut().expect("built above");
        plan.write_weights(&trained.params, &trained.state)?;
        if let Some(moments) = &trained.moments {
            plan.write_optimizer_moments(moments)?;
        }
        self.steps = trained.steps;
        if let Some(c) = self.compiled.as_mut() {
            c.optimizer.set_learning_rate(learning_rate)?;
        }
        Ok(())
    }

    /// The device's largest buffer binding, in values (how many sweep members fit in one plan).
    pub(crate) fn device_max_binding_values(&self) -> usize {
        self.device.backend(1).max_binding_values()
    }

    /// Loss and metrics over all rows, keyed like the History without the `val_` prefix.
    pub fn evaluate(
        &mut self,
        x: &(impl AsMatrix + ?Sized),
        y: &(impl AsMatrix + ?Sized),
    ) -> Result<Vec<(String, f32)>> {
        let (x, y) = (&*x.as_matrix()?, &*y.as_matrix()?);
        self.evaluate_matrix(x, y, None)
    }

    /// Keras's `evaluate(x, y, sample_weight=w)`: the loss is `sum(w_i * loss_i) / rows` (the
    /// weighted sum over the rows, as Keras's batches of sum_over_batch_size averaged by size);
    /// the metrics are weighted means with [`Sequential::weighted_metrics`], else plain means.
    /// One weight per row, finite, at least 0.
    pub fn evaluate_weighted(
        &mut self,
        x: &(impl AsMatrix + ?Sized),
        y: &(impl AsMatrix + ?Sized),
        sample_weight: &[f32],
    ) -> Result<Vec<(String, f32)>> {
        let (x, y) = (&*x.as_matrix()?, &*y.as_matrix()?);
        self.evaluate_matrix(x, y, Some(sample_weight))
    }

    /// Loss and metrics over every row of a [`DataFile`] (its target column as y), its features
    /// streamed from the spill file as [`Sequential::fit_file`] streams them. When the file is
    /// larger than one chunk, its batches are the chunk's size where that is under
    /// `evaluate`'s 1024 rows, so the sums may round differently from `evaluate` on the whole
    /// matrices (as for data that streams in memory); otherwise the values are the same bits.
    ///
    /// A file opened with a weight column ([`DataFile::sample_weights`]) is weighted by it, as
    /// [`Sequential::evaluate_weighted`] weighs (Keras's `evaluate` on a dataset of
    /// `(x, y, sample_weight)`).
    pub fn evaluate_file(&mut self, file: &DataFile) -> Result<Vec<(String, f32)>> {
        let targets = file.targets_for("evaluate_file")?;
        self.evaluate_features(Features::File { file, first: 0, rows: file.rows() }, targets, file.sample_weights())
    }

    fn evaluate_matrix(&mut self, x: &Matrix, y: &Matrix, weights: Option<&[f32]>) -> Result<Vec<(String, f32)>> {
        self.evaluate_features(Features::Memory(x), y, weights)
    }

    fn evaluate_features(
        &mut self,
        x: Features<'_>,
        y: &Matrix,
        weights: Option<&[f32]>,
    ) -> Result<Vec<(String, f32)>> {
        self.ready(x, "evaluate")?;
        self.check_xy(x, y, "evaluate")?;
        if let Some(w) = weights {
            crate::weights::check_sample_weights("evaluate sample_weight", w, x.rows())?;
        }
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let plan = self.plan.as_mut().expect("built by ready");
        let batch = x.rows().min(1024);
        plan.ensure_capacity(batch)?;
        plan.prepare_metrics(&compiled.metrics)?;
        let host = HostData { x, y: Some(y.data()), weights };
        let data = plan.upload(DataRole::Eval, host, x.rows(), batch)?;
        let mut launches = Vec::new();
        let (loss, metrics, wm) = (compiled.loss, &compiled.metrics, compiled.weighted_metrics);
        trainer::eval_launches(plan, &data, data.batch, loss, metrics, wm, false, &mut launches);
        let sums = plan.run_for_sums(&launches, &[(&data, host)])?;
        let mut logs = Logs::new();
        let weighting = Weighting { rows: data.weighted, metrics: wm };
        trainer::record(&mut logs, metrics, &sums[0], AccSlot::Eval, x.rows(), weighting, "");
        Ok(logs.iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The model's outputs for every row of `x` (inference mode: no dropout, moving statistics).
    pub fn predict(&mut self, x: &(impl AsMatrix + ?Sized)) -> Result<Matrix> {
        let x = &*x.as_matrix()?;
        self.ready(Features::Memory(x), "predict")?;
        x.check_finite("predict x")?;
        self.predict_features(Features::Memory(x))
    }

    /// The model's outputs for every row of a [`DataFile`] (its target column unused), its
    /// features streamed from the spill file. The outputs are one matrix in memory.
    pub fn predict_file(&mut self, file: &DataFile) -> Result<Matrix> {
        self.predict_features(Features::File { file, first: 0, rows: file.rows() })
    }

    fn predict_features(&mut self, x: Features<'_>) -> Result<Matrix> {
        self.ready(x, "predict")?;
        let plan = self.plan.as_mut().expect("built by ready");
        let out_w = plan.output_w;
        let values = plan.predict(x)?.pop().unwrap_or_default();
        Matrix::new(x.rows(), out_w, values)
    }

    /// The optimizer's state: updates applied so far and its moments (m, v), for saving.
    pub(crate) fn optimizer_state(&mut self) -> Result<Option<OptimizerMoments>> {
        let steps = self.steps;
        match &mut self.plan {
            Some(p) if steps > 0 => Ok(Some((steps, p.read_optimizer_moments()?))),
            _ => Ok(None),
        }
    }

    /// Restores what `optimizer_state` returned, so training continues where it stopped.
    pub(crate) fn set_optimizer_state(&mut self, steps: u64, moments: &Moments) -> Result<()> {
        let plan = self.plan.as_mut().ok_or_else(|| Error::State("the model is not built yet".into()))?;
        plan.write_optimizer_moments(moments)?;
        self.steps = steps;
        Ok(())
    }

    /// The loss `compile` chose, if it ran.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// Accessors for saving and summary (src/io/, src/summary.rs).
    pub(crate) fn compiled_settings(&self) -> Option<(&Optimizer, &Loss, Vec<String>)> {
        self.compiled.as_ref().map(|c| (&c.optimizer, &c.loss, c.metrics.keys().map(str::to_string).collect()))
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

/// The validation data of `opts` (validation_data or validation_file, not both), and `opts`
/// with a validation file's own sample weights as its validation weights (Keras weighs a
/// validation dataset by its third element; weights given beside them are an error).
pub(crate) fn validation_of<'v>(mut opts: Fit<'v>) -> Result<(Option<(Features<'v>, &'v Matrix)>, Fit<'v>)> {
    let validation = match (opts.validation, opts.validation_file) {
        (Some(_), Some(file)) => {
            return Err(Error::invalid(
                "validation_file",
                file.source().display(),
                "one kind of validation data: validation_data or validation_file, not both",
            ))
        }
        (Some((vx, vy)), None) => Some((Features::Memory(vx), vy)),
        (None, Some(file)) => {
            if let Some(own) = file.sample_weights() {
                if opts.validation_weights.is_some() {
                    return Err(own_weights_given("validation sample_weight", file));
                }
                opts.validation_weights = Some(own);
            }
            Some((Features::File { file, first: 0, rows: file.rows() }, file.targets_for("validation_file")?))
        }
        (None, None) => None,
    };
    Ok((validation, opts))
}

/// Runs `go` with the training and validation data of a fit on matrices: Keras's
/// validation_split taken from the last rows (their sample weights with them), else the
/// validation data of `opts` ([`validation_of`]). For [`Sequential::fit`] and
/// [`Sweep::fit`](crate::Sweep::fit).
pub(crate) fn on_matrix<R>(
    x: &Matrix,
    y: &Matrix,
    opts: Fit<'_>,
    go: impl FnOnce(Features<'_>, &Matrix, Option<(Features<'_>, &Matrix)>, Fit<'_>) -> Result<R>,
) -> Result<R> {
    if let (Some(fraction), None, None) = (opts.validation_split, opts.validation, opts.validation_file) {
        let (xt, yt, xv, yv) = split_last_rows(x, y, fraction)?;
        let (wt, wv) = crate::weights::split_weights(opts.sample_weight, xt.rows(), x.rows())?;
        let fit = Fit {
            validation_split: None,
            sample_weight: wt.as_deref(),
            validation: Some((&xv, &yv)),
            validation_weights: wv.as_deref(),
            ..opts
        };
        let (validation, fit) = validation_of(fit)?;
        return go(Features::Memory(&xt), &yt, validation, fit);
    }
    let (validation, opts) = validation_of(opts)?;
    go(Features::Memory(x), y, validation, opts)
}

/// Weights given for a [`DataFile`] that carries its own.
fn own_weights_given(what: &str, file: &DataFile) -> Error {
    Error::invalid(
        what,
        file.source().display(),
        "the DataFile carries its own sample weights (its weight column, used wherever the file is: \
         Keras's dataset of (x, y, sample_weight)); give no other weights for it",
    )
}

/// Runs `go` with the training and validation data of a fit on `file`: Keras's
/// validation_split taken from the file's last rows (their features stay in the file), the
/// file's own sample weights as the training weights (split with it), and the validation data
/// of `opts` otherwise ([`validation_of`]). For [`Sequential::fit_file`] and
/// [`Sweep::fit_file`](crate::Sweep::fit_file).
pub(crate) fn on_file<R>(
    file: &DataFile,
    opts: Fit<'_>,
    go: impl FnOnce(Features<'_>, &Matrix, Option<(Features<'_>, &Matrix)>, Fit<'_>) -> Result<R>,
) -> Result<R> {
    let own = file.sample_weights();
    if own.is_some() && opts.sample_weight.is_some() {
        return Err(own_weights_given("sample_weight", file));
    }
    let opts = Fit { sample_weight: opts.sample_weight.or(own), ..opts };
    let n = file.rows();
    let targets = file.targets_for("fit_file")?;
    if let (Some(fraction), None, None) = (opts.validation_split, opts.validation, opts.validation_file) {
        let at = crate::data::split_point(n, fraction)?;
        let (head, tail): (Vec<usize>, Vec<usize>) = ((0..at).collect(), (at..n).collect());
        let (yt, yv) = (targets.select_rows(&head)?, targets.select_rows(&tail)?);
        let (wt, wv) = crate::weights::split_weights(opts.sample_weight, at, n)?;
        let validation_weights = wv.as_deref();
        let fit = Fit { validation_split: None, sample_weight: wt.as_deref(), validation_weights, ..opts };
        let train = Features::File { file, first: 0, rows: at };
        let valid = Features::File { file, first: at, rows: n - at };
        return go(train, &yt, Some((valid, &yv)), fit);
    }
    let (validation, opts) = validation_of(opts)?;
    go(Features::File { file, first: 0, rows: n }, targets, validation, opts)
}

/// Keras's validation_split: the first `ceil(n * (1 - fraction))` rows train, the rest validate.
pub(crate) fn split_last_rows(x: &Matrix, y: &Matrix, fraction: f32) -> Result<(Matrix, Matrix, Matrix, Matrix)> {
    if x.rows() != y.rows() {
        return Err(Error::shape(
            "fit",
            format!("y with {} rows (as x)", x.rows()),
            format!("y with {} rows", y.rows()),
        ));
    }
    let at = crate::data::split_point(x.rows(), fraction)?;
    let (head, tail): (Vec<usize>, Vec<usize>) = ((0..at).collect(), (at..x.rows()).collect());
    Ok((x.select_rows(&head)?, y.select_rows(&head)?, x.select_rows(&tail)?, y.select_rows(&tail)?))
}

impl Sequential {
    /// Bytes of device memory this model's buffers take (0 before it is built).
    #[doc(hidden)]
    pub fn device_bytes(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.device_bytes())
    }

    /// How many device buffers this model has allocated (0 before it is built).
    #[doc(hidden)]
    pub fn device_buffer_count(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.backend.buffer_count())
    }

    /// The gradient of the loss over all rows of `x` (one batch, training mode, dropout step 0
    /// with `seed`), without updating anything: the test suite's finite-difference checks use it.
    #[doc(hidden)]
    pub fn loss_gradients(&mut self, x: &Matrix, y: &Matrix, seed: u32) -> Result<Vec<f32>> {
        self.loss_gradients_weighted(x, y, None, seed)
    }

    /// [`Sequential::loss_gradients`] of the loss weighted by `weights` (one per row).
    #[doc(hidden)]
    pub fn loss_gradients_weighted(
        &mut self,
        x: &Matrix,
        y: &Matrix,
        weights: Option<&[f32]>,
        seed: u32,
    ) -> Result<Vec<f32>> {
        self.ready(Features::Memory(x), "loss_gradients")?;
        self.check_xy(Features::Memory(x), y, "loss_gradients")?;
        if let Some(w) = weights {
            crate::weights::check_sample_weights("sample_weight", w, x.rows())?;
        }
        let compiled = self.compiled.as_ref().expect("checked by ready");
        let plan = self.plan.as_mut().expect("built by ready");
        plan.ensure_capacity(x.rows())?;
        let host = HostData { x: Features::Memory(x), y: Some(y.data()), weights };
        let data = plan.upload(DataRole::Eval, host, x.rows(), x.rows())?;
        let settings = MemberSettings {
            optimizer: compiled.optimizer.clone(),
            seed: seed as u64,
            dropout: MemberSettings::dropout_rates(&self.layers),
            steps: 0,
            active: true,
        };
        plan.write_table(&[settings])?;
        let mut launches = Vec::new();
        plan.gather(&data, 0, x.rows(), false, &mut launches);
        plan.forward(x.rows(), true, 0, &mut launches);
        let weighting = Weighting { rows: data.weighted, metrics: false };
        plan.loss(compiled.loss, &compiled.metrics, x.rows(), true, false, AccSlot::Train, weighting, &mut launches);
        plan.backward(x.rows(), 0, &mut launches);
        let grads = plan.grads;
        Ok(plan.run_recording(&launches, &[(grads, 0..plan.n_params)], &[(&data, host)])?.pop().unwrap_or_default())
    }
}

/// Saving, loading and describing (the work is in `crate::io` and `crate::summary`).
impl Sequential {
    /// Saves the whole model to a JSON file (see [`crate::io`] for the format).
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::save_model(path, self, None)
    }

    /// Saves the whole model with the fitted CSV preprocessing (target, one-hot categories, scaler).
    pub fn save_with_preprocessor(&mut self, path: impl AsRef<Path>, preprocessor: &Preprocessor) -> Result<()> {
        crate::io::save_model(path, self, Some(preprocessor))
    }

    /// Loads a model saved by [`Sequential::save`] onto `device` (the preprocessing, if any, is
    /// dropped: use [`crate::io::load_model`] to get it).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Sequential> {
        Ok(crate::io::load_model(path, device)?.model)
    }

    /// Saves only the weights and moving statistics (JSON, or safetensors for a `.safetensors` name).
    pub fn save_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::save_weights(path, self)
    }

    /// Exports the model for inference as an ONNX file (opset 13): Dense as `Gemm`, each
    /// activation as its operator, BatchNormalization with its moving statistics, Dropout left
    /// out; the file computes what [`Sequential::predict`] does. See [`crate::io::onnx`].
    pub fn save_onnx(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::save_onnx(path, self, &crate::io::OnnxOptions::new())
    }

    /// [`Sequential::save_onnx`] with the CLI's fitted preprocessing in the graph (so the file
    /// takes raw feature values) and class labels as metadata.
    pub fn save_onnx_with(&mut self, path: impl AsRef<Path>, options: &crate::io::OnnxOptions<'_>) -> Result<()> {
        crate::io::save_onnx(path, self, options)
    }

    /// Loads weights saved by [`Sequential::save_weights`]; the architecture must match.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::load_weights(path, self)
    }

    /// The optimizer `compile` set (Keras's `model.optimizer`: hyperparameters, clipping,
    /// schedule; [`Optimizer::describe`] gives it in one line), or None before `compile`.
    pub fn optimizer_settings(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// Keras's `model.summary()` as a string: one row per layer with its name, type, output
    /// shape and parameter count, then total, trainable and non-trainable parameters
    /// (BatchNormalization's moving mean and variance are non-trainable). Before the input width
    /// is known (no `input_shape` and not yet fit) shapes and counts show as "?".
    pub fn summary(&self) -> String {
        crate::summary::summary(&self.layers, self.input_width())
    }

    /// The number of input features, once known (first layer's input_shape, or after fit).
    pub fn input_shape(&self) -> Option<usize> {
        self.input_width()
    }

    /// (total, trainable, non-trainable) parameter counts; `None` before the input width is known.
    pub fn count_params(&self) -> Option<(usize, usize, usize)> {
        Some(crate::summary::count_params(&self.layers, self.input_width()?))
    }
}

/// Sparse targets are class indices: whole numbers in 0..classes (`classes` the output width).
fn check_class_indices(y: &Matrix, classes: usize, what: &str) -> Result<()> {
    match y.data().iter().position(|&v| v < 0.0 || v.fract() != 0.0 || v as usize >= classes) {
        Some(r) => Err(Error::invalid(
            format!("{what} y at row {r}"),
            y.data()[r],
            format!(
                "sparse_categorical_crossentropy targets must be class indices 0..{} (the output has {classes} units)",
                classes.saturating_sub(1)
            ),
        )),
        None => Ok(()),
    }
}

//! `wgfit tune`: hyperparameter search over a grid of `train` settings (or a random sample of
//! it), each setting trained with several seeds and/or k folds, all trials in one
//! [`Sweep`](wgfit::Sweep) (trials of one architecture share kernels), then a leaderboard.
//!
//! A trial is exactly the `wgfit train` run with its settings and `--seed`: the data, defaults,
//! layers, optimizer and early stopping come from [`crate::setup`], as train's do, and a sweep
//! member trains as the same model alone would.
//!
//! Trials are numbered in a fixed order (setting, then seed, then fold), so that independent
//! processes (a Slurm array, a Kubernetes Indexed Job) can each run the trials with
//! `index % N == I` (`--shard I/N`) and write them to `DIR/shard-I-of-N.json` (`--out`);
//! `--collect DIR` merges those files into the report an unsharded run prints. Each shard file
//! carries a fingerprint of the whole trial list, its options and data, so shards of different
//! searches are never merged.
//!
//! With `--stream` the data is prepared as `train --stream` prepares it (files read in pieces,
//! features spilled to disk) and the sweep streams each trial's rows from there; everything else
//! (the trial list, members, fingerprint, report) is the in-memory path's, and so are its results.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::SeedableRng;
use serde_json::{json, Value};
use wgfit::callbacks::Mode;
use wgfit::{io, Fit, History, Member, MemberReport, Sweep, SweepReport};

use crate::setup::{self, Compile, Data, ModelSpec, OptimizerSpec};
use crate::{json_f32, pick_device, print_json, usage, CliResult, Failure, RunArgs, TuneArgs};

/// The `format` field of a shard file.
const SHARD_FORMAT: &str = "wgfit-tune-shard";
const SHARD_VERSION: u64 = 1;
/// How many of the best settings `--plot` draws (the best trial of each).
const PLOTTED: usize = 5;

pub(crate) fn tune(a: TuneArgs) -> CliResult<()> {
    if let Some(dir) = &a.collect {
        let results = collect(dir)?;
        return report(&results, &a.run);
    }
    let Some(data) = a.data.as_deref() else {
        return Err(usage("--data is required (or --collect DIR)"));
    };
    let settings = search_space(&a)?;
    if a.seeds == 0 {
        return Err(usage("--seeds must be at least 1"));
    }
    if a.run.epochs == 0 {
        return Err(usage("--epochs must be at least 1 (tune ranks trials by their epochs)"));
    }
    if let Some(k) = a.folds.filter(|k| *k < 2) {
        return Err(usage(format!("--folds must be at least 2, got {k}")));
    }
    let shard = shard_of(a.shard.as_deref(), a.shards, &|k| std::env::var(k).ok())?;
    if a.save_best.is_some() && shard.count > 1 {
        return Err(usage(
            "--save-best needs every trial in one process; with shards, collect the leaderboard and \
             retrain the best setting with `wgfit train --save` (it trains identically)",
        ));
    }
    let fit = setup::fit_settings(&a.run)?;
    let prepared = Data::prepare(a.stream, data, &a.data_opts, None)?;
    let rows = prepared.rows();
    if let Some(k) = a.folds.filter(|k| *k > rows) {
        return Err(usage(format!("--folds {k}: more folds than the {rows} training rows")));
    }
    let compile = Compile::for_target(prepared.targets(), &a.model, prepared.pre().classes().map(<[String]>::len));

    // The full trial list, in the order every shard numbers it.
    let folds: Vec<Option<usize>> = match a.folds {
        Some(k) => (0..k).map(Some).collect(),
        None => vec![None],
    };
    let trials: Vec<Trial> = (0..settings.len())
        .flat_map(|setting| (0..a.seeds as u64).map(move |seed| (setting, seed)))
        .flat_map(|(setting, seed)| folds.iter().map(move |&fold| Trial { setting, seed, fold }))
        .collect();
    let fingerprint = fingerprint(&settings, &trials, &a, &compile, &prepared)?;
    let mine: Vec<usize> = (0..trials.len()).filter(|i| i % shard.count == shard.index).collect();
    eprintln!(
        "wgfit: {} settings x {} seeds{} = {} trials{}",
        settings.len(),
        a.seeds,
        a.folds.map_or(String::new(), |k| format!(" x {k} folds")),
        trials.len(),
        if shard.count > 1 {
            format!("; shard {}/{} ({}) runs {} of them", shard.index, shard.count, shard.from, mine.len())
        } else {
            String::new()
        }
    );

    let device = pick_device(a.run.device.as_deref())?;
    let has_validation = prepared.has_valid() || a.folds.is_some();
    // k-fold: fold f validates on the f-th contiguous slice of the training rows and trains on the
    // rest. The scaling was fitted on all of them (one preprocessing for the search, saved with
    // --save-best), so each fold's validation rows took part in it: a slight optimism, as with
    // wgfit::cross_validate on prepared matrices.
    let bounds = a.folds.map(|k| wgfit::fold_bounds(rows, k));
    let mut members = Vec::with_capacity(mine.len());
    for &i in &mine {
        let t = trials[i];
        let spec = &settings[t.setting];
        // Unbuilt (no input width): the sweep trains it; compile would allocate a plan per model.
        let model = spec.build(&device, &compile, &a.model.activation, t.seed, None)?;
        let mut member = Member::new(model).label(spec.train_args()).seed(t.seed);
        if let (Some(f), Some(bounds)) = (t.fold, &bounds) {
            let (lo, hi) = bounds[f];
            member = member.train_rows((0..lo).chain(hi..rows).collect()).valid_rows((lo..hi).collect());
        }
        if let Some(early) = setup::early_stopping(&a.run, has_validation) {
            member = member.callback(early);
        }
        members.push(member);
    }
    let infos: Vec<TrialInfo> = mine
        .iter()
        .map(|&i| {
            let t = trials[i];
            TrialInfo {
                index: i,
                setting: t.setting,
                settings: settings[t.setting].to_json(),
                seed: t.seed,
                fold: t.fold,
            }
        })
        .collect();
    let (sweep_report, sweep) = if members.is_empty() {
        (SweepReport { members: Vec::new(), wall_s: 0.0, model_epochs_per_s: 0.0, plans: 0, device_bytes: 0 }, None)
    } else {
        let mut sweep = Sweep::new(members)?;
        (fit_sweep(&mut sweep, &prepared, fit, a.folds.is_some())?, Some(sweep))
    };
    let results = Results {
        monitor: setup::monitor(has_validation).to_string(),
        trials: infos,
        sweep: sweep_report,
        device: setup::device_json(&device),
    };

    if let (Some(path), Some(mut sweep)) = (&a.save_best, sweep) {
        let best = Ranking::of(&results)?.trials[0];
        io::save_model(path, sweep.model(best)?, Some(prepared.pre()))?;
        eprintln!("wgfit: the best trial's model (trial {}) saved to {}", results.trials[best].index, path.display());
    }
    if let Some(dir) = &a.out {
        let file = write_shard(dir, &shard, &fingerprint, trials.len(), &results)?;
        eprintln!("wgfit: {} trials written to {} (merge with `wgfit tune --collect`)", mine.len(), file.display());
    }
    report(&results, &a.run)
}

/// Trains the sweep on the training rows, in memory or streamed from the file. With `folds`
/// every trial validates on its slice of the training rows themselves (its `valid_rows`), else
/// on the validation rows if there are any.
fn fit_sweep(sweep: &mut Sweep, data: &Data, fit: Fit<'_>, folds: bool) -> CliResult<SweepReport> {
    Ok(match data {
        Data::Memory(p) => {
            let fit = match (&p.valid, folds) {
                (_, true) => fit.validation_data(&p.x, &p.y),
                (Some((vx, vy)), false) => fit.validation_data(vx, vy),
                (None, false) => fit,
            };
            sweep.fit(&p.x, &p.y, fit)?
        }
        Data::Files(p) => {
            let fit = match (&p.valid, folds) {
                (_, true) => fit.validation_file(&p.train),
                (Some(v), false) => fit.validation_file(v),
                (None, false) => fit,
            };
            sweep.fit_file(&p.train, fit)?
        }
    })
}

/// One trial of the full list.
#[derive(Clone, Copy, Debug)]
struct Trial {
    setting: usize,
    seed: u64,
    fold: Option<usize>,
}

/// The settings to try: the grid of every list's values (architectures, then optimizers, learning
/// rates, momenta (SGD's only), dropout rates, batch normalization), or with `--trials N` a
/// random sample of N of them drawn with `--search-seed`, kept in grid order.
fn search_space(a: &TuneArgs) -> CliResult<Vec<ModelSpec>> {
    let hidden: Vec<Vec<usize>> = a.layers.iter().map(|l| setup::parse_hidden(l)).collect::<CliResult<_>>()?;
    let optional = |flag: &str, s: &Option<String>| -> CliResult<Vec<Option<f32>>> {
        match s {
            Some(s) => Ok(parse_list::<f32>(flag, s)?.into_iter().map(Some).collect()),
            None => Ok(vec![None]),
        }
    };
    let lrs = optional("--lr", &a.lr)?;
    let dropouts = optional("--dropout", &a.dropout)?;
    let l2s = optional("--l2", &a.l2)?;
    let momenta = optional("--momentum", &a.momentum)?;
    let batchnorms = parse_list::<bool>("--batchnorm", &a.batchnorm)?;
    let optimizers = parse_list::<String>("--optimizer", &a.optimizer)?;
    if let Some(bad) = optimizers.iter().find(|o| !setup::OPTIMIZERS.contains(&o.as_str())) {
        return Err(usage(format!("--optimizer: unknown optimizer {bad:?} ({})", setup::OPTIMIZERS.join(", "))));
    }
    if a.momentum.is_some() && !optimizers.iter().any(|o| o == "sgd") {
        return Err(usage("--momentum applies to sgd only, and --optimizer lists no sgd"));
    }
    let mut grid = Vec::new();
    for h in &hidden {
        for opt in &optimizers {
            for &lr in &lrs {
                let momenta: &[Option<f32>] = if opt == "sgd" { &momenta } else { &[None] };
                for &momentum in momenta {
                    for &dropout in &dropouts {
                        for &batchnorm in &batchnorms {
                            for &l2 in &l2s {
                                let optimizer = OptimizerSpec::new(opt, lr, momentum);
                                grid.push(ModelSpec {
                                    hidden: h.clone(),
                                    dropout,
                                    batchnorm,
                                    l2,
                                    optimizer,
                                    extras: Default::default(),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    match a.trials {
        Some(0) => Err(usage("--trials must be at least 1")),
        Some(n) if n < grid.len() => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(a.search_seed);
            let mut picked = rand::seq::index::sample(&mut rng, grid.len(), n).into_vec();
            picked.sort_unstable();
            eprintln!(
                "wgfit: random search: {n} of the grid's {} settings (--search-seed {})",
                grid.len(),
                a.search_seed
            );
            Ok(picked.into_iter().map(|i| grid[i].clone()).collect())
        }
        Some(n) => {
            eprintln!("wgfit: --trials {n} covers the grid's {} settings: trying them all", grid.len());
            Ok(grid)
        }
        None => Ok(grid),
    }
}

/// A comma-separated list of `flag`'s values; an empty list or item is a usage error naming it.
fn parse_list<T: FromStr>(flag: &str, s: &str) -> CliResult<Vec<T>> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.iter().all(|i| i.is_empty()) {
        return Err(usage(format!("{flag} is empty: give at least one value (a comma-separated list)")));
    }
    items
        .iter()
        .map(|i| match i {
            &"" => Err(usage(format!("{flag} {s:?} has an empty item"))),
            i => i.parse().map_err(|_| usage(format!("{flag}: {i:?} is not a valid value"))),
        })
        .collect()
}

/// Which of `count` shards this process runs, and what chose it (for the notice).
#[derive(Clone, Copy, Debug)]
struct Shard {
    index: usize,
    count: usize,
    from: &'static str,
}

/// The shard: `--shard I/N`; else a Slurm array task (SLURM_ARRAY_TASK_ID minus
/// SLURM_ARRAY_TASK_MIN, as arrays may start at 1, of SLURM_ARRAY_TASK_COUNT or --shards);
/// else a Kubernetes Indexed Job's JOB_COMPLETION_INDEX of --shards or WGFIT_SHARDS; else the
/// whole list. `env` reads the environment (a parameter for the tests' sake).
fn shard_of(spec: Option<&str>, shards: Option<usize>, env: &dyn Fn(&str) -> Option<String>) -> CliResult<Shard> {
    let number = |name: &str, v: &str| {
        v.trim().parse::<usize>().map_err(|_| usage(format!("{name} must be a whole number, got {v:?}")))
    };
    let shard = if let Some(s) = spec {
        let (i, n) = s.split_once('/').ok_or_else(|| usage(format!("--shard must be I/N (e.g. 0/4), got {s:?}")))?;
        Shard { index: number("--shard's index", i)?, count: number("--shard's count", n)?, from: "--shard" }
    } else if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        let min = env("SLURM_ARRAY_TASK_MIN").map(|m| number("SLURM_ARRAY_TASK_MIN", &m)).transpose()?.unwrap_or(0);
        let count = match shards {
            Some(n) => n,
            None => number(
                "SLURM_ARRAY_TASK_COUNT",
                &env("SLURM_ARRAY_TASK_COUNT")
                    .ok_or_else(|| usage("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT"))?,
            )?,
        };
        let index = id
            .checked_sub(min)
            .ok_or_else(|| usage(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")))?;
        Shard { index, count, from: "SLURM_ARRAY_TASK_ID" }
    } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
        let count = match (shards, env("WGFIT_SHARDS")) {
            (Some(n), _) => n,
            (None, Some(n)) => number("WGFIT_SHARDS", &n)?,
            (None, None) => {
                return Err(usage(
                    "JOB_COMPLETION_INDEX is set but not the shard count: pass --shards N or set WGFIT_SHARDS",
                ))
            }
        };
        Shard { index: number("JOB_COMPLETION_INDEX", &i)?, count, from: "JOB_COMPLETION_INDEX" }
    } else if let Some(n) = shards {
        return Err(usage(format!(
            "--shards {n} needs a shard index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); pick one by hand with --shard I/{n}"
        )));
    } else {
        Shard { index: 0, count: 1, from: "all trials" }
    };
    if shard.count == 0 {
        return Err(usage(format!("the shard count ({}) must be at least 1", shard.from)));
    }
    if shard.index >= shard.count {
        return Err(usage(format!(
            "shard index {} ({}) is out of range for {} shards (0 to {})",
            shard.index,
            shard.from,
            shard.count,
            shard.count - 1
        )));
    }
    Ok(shard)
}

/// 64-bit FNV-1a: a hash that is the same in every build (std's hasher may change between Rust
/// releases, and shards may be run by different builds).
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    /// A matrix's row count, as the start of its values.
    fn rows(&mut self, rows: usize) {
        self.write(&(rows as u64).to_le_bytes());
    }

    /// Values of a matrix, row after row; a matrix hashed in pieces of whole rows hashes as if
    /// whole, so that a file read in pieces and the same table in memory agree.
    fn values(&mut self, values: &[f32]) {
        for v in values {
            self.write(&v.to_bits().to_le_bytes());
        }
    }
}

/// Values per piece when the fingerprint reads a file's features (16 MiB of f32s): bounded
/// memory, as `--stream` promises, in reads large enough not to slow the hash down.
const FINGERPRINT_PIECE_VALUES: usize = 4 << 20;

/// What must be the same for shards to belong to one search: the trial list, the options that
/// shape every trial, and the preprocessed data (so a changed CSV or scaling shows too). The data
/// is hashed as the training features, the training targets, then the validation features and
/// targets, each as its row count and its values: the same value whether the data is in memory
/// or streamed from files, so shards run with and without `--stream` collect together.
fn fingerprint(settings: &[ModelSpec], trials: &[Trial], a: &TuneArgs, c: &Compile, data: &Data) -> CliResult<String> {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for t in trials {
        h.write(format!("{}|{}|{:?};", settings[t.setting].train_args(), t.seed, t.fold).as_bytes());
    }
    let r = &a.run;
    h.write(
        format!(
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{:?}|{:?}",
            r.epochs,
            r.batch_size,
            r.patience,
            r.min_delta,
            r.restore_best,
            a.model.activation,
            c.loss,
            c.output,
            c.metrics,
            a.folds
        )
        .as_bytes(),
    );
    match data {
        Data::Memory(p) => {
            let valid = p.valid.iter().flat_map(|(vx, vy)| [vx, vy]);
            for m in [&p.x, &p.y].into_iter().chain(valid) {
                h.rows(m.rows());
                h.values(m.data());
            }
        }
        Data::Files(p) => {
            for file in std::iter::once(&p.train).chain(&p.valid) {
                let n = file.rows();
                let piece = (FINGERPRINT_PIECE_VALUES / file.features().len().max(1)).max(1);
                h.rows(n);
                for start in (0..n).step_by(piece) {
                    let (x, _) = file.read_rows(start..(start + piece).min(n))?;
                    h.values(x.data());
                }
                h.rows(n);
                h.values(file.targets().data());
            }
        }
    }
    Ok(format!("{:016x}", h.0))
}

/// A trial that has a result: its number in the full list, its setting (number and JSON), seed and fold.
struct TrialInfo {
    index: usize,
    setting: usize,
    settings: Value,
    seed: u64,
    fold: Option<usize>,
}

/// What a run or a collect reports: trials in trial order, with their fits (`sweep.members`, in
/// the same order; a collect's totals are summed over its shards).
struct Results {
    monitor: String,
    trials: Vec<TrialInfo>,
    sweep: SweepReport,
    /// The device object (an array of them when collected shards ran on different devices).
    device: Value,
}

/// The trials ranked by their best value of the monitor, and the settings by its mean over their
/// seeds and folds.
struct Ranking {
    /// Per trial (positions in `Results::trials`): the best value and its epoch (0-based).
    best: Vec<(f32, usize)>,
    /// Trial positions, best first.
    trials: Vec<usize>,
    /// Settings, best mean first.
    settings: Vec<SettingRow>,
}

/// One setting on the leaderboard.
struct SettingRow {
    /// Its trials (positions), best first.
    trials: Vec<usize>,
    mean: f32,
    /// Sample standard deviation over its trials (None for one trial).
    std: Option<f32>,
    epochs_run: f64,
}

impl Ranking {
    fn of(r: &Results) -> CliResult<Ranking> {
        // The sweep's leaderboard: each trial's best epoch, lowest losses / highest accuracies first.
        let board = r.sweep.leaderboard(&r.monitor)?;
        let mut best = vec![(f32::NAN, 0); r.trials.len()];
        for row in &board {
            best[row.member] = (row.best, row.best_epoch);
        }
        let trials: Vec<usize> = board.iter().map(|row| row.member).collect();
        let mut by_setting: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &t in &trials {
            by_setting.entry(r.trials[t].setting).or_default().push(t);
        }
        let mut settings: Vec<SettingRow> = by_setting
            .into_values()
            .map(|members| {
                let values: Vec<f64> = members.iter().map(|&t| best[t].0 as f64).collect();
                let n = values.len() as f64;
                let mean = values.iter().sum::<f64>() / n;
                let std = (values.len() > 1)
                    .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() as f32);
                let epochs_run = members.iter().map(|&t| r.sweep.members[t].epochs_run as f64).sum::<f64>() / n;
                SettingRow { trials: members, mean: mean as f32, std, epochs_run }
            })
            .collect();
        let max = Mode::Auto.maximizes(&r.monitor);
        let key = |s: &SettingRow| match s.mean {
            m if !m.is_finite() => f32::INFINITY,
            m if max => -m,
            m => m,
        };
        settings.sort_by(|a, b| {
            key(a).total_cmp(&key(b)).then(r.trials[a.trials[0]].setting.cmp(&r.trials[b.trials[0]].setting))
        });
        Ok(Ranking { best, trials, settings })
    }
}

/// A trial as JSON: settings, seed, fold, its best epoch and value and its History (as train's).
fn trial_json(r: &Results, rank: &Ranking, t: usize) -> Value {
    let (info, m) = (&r.trials[t], &r.sweep.members[t]);
    let (best, best_epoch) = rank.best[t];
    json!({
        "trial": info.index,
        "setting": info.setting,
        "settings": info.settings,
        "label": m.label,
        "seed": info.seed,
        "fold": info.fold,
        "epochs_run": m.epochs_run,
        "best_epoch": best.is_finite().then_some(best_epoch),
        "best": json_f32(best),
        "monitor": r.monitor,
        "diverged": m.diverged.map(|(epoch, value)| json!({"epoch": epoch, "value": json_f32(value)})),
        "history": setup::history_json(&m.history),
    })
}

fn timing_json(s: &SweepReport) -> Value {
    json!({"wall_s": s.wall_s, "model_epochs_per_s": s.model_epochs_per_s, "plans": s.plans})
}

/// Prints the leaderboard (or the JSON object with `--json`) and draws `--plot`.
fn report(r: &Results, run: &RunArgs) -> CliResult<()> {
    let rank = Ranking::of(r)?;
    match &run.plot {
        Some(path) if r.trials.is_empty() => eprintln!("wgfit: no trials, so no plot at {}", path.display()),
        Some(path) => {
            plot(r, &rank, path)?;
            eprintln!("wgfit: learning curves of the best trials written to {}", path.display());
        }
        None => {}
    }
    if run.json {
        let leaderboard: Vec<Value> = rank
            .settings
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let first = s.trials[0];
                json!({
                    "rank": i + 1,
                    "setting": r.trials[first].setting,
                    "settings": r.trials[first].settings,
                    "label": r.sweep.members[first].label,
                    "monitor": r.monitor,
                    "mean": json_f32(s.mean),
                    "std": s.std.map(json_f32),
                    "trials": s.trials.len(),
                    "best": json_f32(rank.best[first].0),
                    "best_trial": r.trials[first].index,
                    "epochs_run": s.epochs_run,
                })
            })
            .collect();
        return print_json(&json!({
            "trials": (0..r.trials.len()).map(|t| trial_json(r, &rank, t)).collect::<Vec<_>>(),
            "leaderboard": leaderboard,
            "timing": timing_json(&r.sweep),
            "device": r.device,
        }));
    }
    let mut out = std::io::stdout().lock();
    if !rank.settings.is_empty() {
        let head = format!("{} mean", r.monitor);
        let _ =
            writeln!(out, "{:>4}  {head:>14}  {:>10}  {:>6}  {:>6}  settings", "rank", "spread", "trials", "epochs");
    }
    for (i, s) in rank.settings.iter().enumerate() {
        let std = s.std.map_or("-".to_string(), |v| format!("{v:.4}"));
        let label = &r.sweep.members[s.trials[0]].label;
        let _ = writeln!(
            out,
            "{:>4}  {:>14.4}  {std:>10}  {:>6}  {:>6.1}  {label}",
            i + 1,
            s.mean,
            s.trials.len(),
            s.epochs_run
        );
    }
    match rank.trials.first() {
        Some(&t) => {
            let (info, m) = (&r.trials[t], &r.sweep.members[t]);
            let (best, epoch) = rank.best[t];
            let fold = info.fold.map_or(String::new(), |f| format!(", fold {f}"));
            let _ = writeln!(
                out,
                "best trial: #{} (seed {}{fold}): {} {best:.4} at epoch {} of {}; `wgfit train {} --seed {}` with the same other options {}",
                info.index,
                info.seed,
                r.monitor,
                epoch + 1,
                m.epochs_run,
                m.label,
                info.seed,
                if info.fold.is_some() { "trains the same setting on all the rows" } else { "trains it identically" }
            );
        }
        None => {
            let _ = writeln!(out, "no trials ran (this shard has none)");
        }
    }
    let model_epochs: usize = r.sweep.members.iter().map(|m| m.epochs_run).sum();
    let device = match &r.device {
        Value::Array(list) => format!("{} devices", list.len()),
        d => format!("{} ({})", d["adapter"].as_str().unwrap_or("?"), d["backend"].as_str().unwrap_or("?")),
    };
    let _ = writeln!(
        out,
        "{} trials, {model_epochs} model-epochs in {:.2}s ({:.1} model-epochs/s, {} plan{}) on {device}",
        r.trials.len(),
        r.sweep.wall_s,
        r.sweep.model_epochs_per_s,
        r.sweep.plans,
        if r.sweep.plans == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The learning curves of the best trial of each of the best settings, over each other: the
/// monitored key and, when that is val_loss, the training loss.
fn plot(r: &Results, rank: &Ranking, path: &Path) -> CliResult<()> {
    let labels: Vec<(String, &History)> = rank
        .settings
        .iter()
        .take(PLOTTED)
        .enumerate()
        .map(|(i, s)| {
            let t = s.trials[0];
            let (info, m) = (&r.trials[t], &r.sweep.members[t]);
            let fold = info.fold.map_or(String::new(), |f| format!(" fold {f}"));
            (format!("#{} {} seed {}{fold}", i + 1, m.label, info.seed), &m.history)
        })
        .collect();
    let runs: Vec<(&str, &History)> = labels.iter().map(|(l, h)| (l.as_str(), *h)).collect();
    let keys: &[&str] = if r.monitor == "val_loss" { &["val_loss", "loss"] } else { &["loss"] };
    Ok(History::plot_compare(&runs, keys, path)?)
}

/// Writes `DIR/shard-I-of-N.json` atomically: the shard's trials (as `--json` prints them), which
/// trials those are, the fingerprint of the whole search, timing and device.
fn write_shard(dir: &Path, shard: &Shard, fingerprint: &str, total: usize, r: &Results) -> CliResult<PathBuf> {
    let rank = Ranking::of(r)?;
    let file = dir.join(format!("shard-{}-of-{}.json", shard.index, shard.count));
    let v = json!({
        "format": SHARD_FORMAT,
        "version": SHARD_VERSION,
        "shard": shard.index,
        "shards": shard.count,
        "fingerprint": fingerprint,
        "total_trials": total,
        "monitor": r.monitor,
        "trial_indices": r.trials.iter().map(|t| t.index).collect::<Vec<_>>(),
        "trials": (0..r.trials.len()).map(|t| trial_json(r, &rank, t)).collect::<Vec<_>>(),
        "timing": timing_json(&r.sweep),
        "device": r.device,
    });
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure { code: 1, message: format!("cannot create {}: {e}", dir.display()) })?;
    let text = serde_json::to_string(&v).map_err(|e| Failure { code: 1, message: e.to_string() })?;
    io::write_atomic(&file, text.as_bytes())?;
    Ok(file)
}

/// Why the shard files of a directory cannot be merged.
#[derive(Debug)]
enum CollectError {
    /// The directory cannot be listed.
    Directory { dir: PathBuf, detail: String },
    /// No `shard-*.json` files.
    Empty { dir: PathBuf },
    /// A file that is not a readable shard file of this version.
    Unreadable { file: PathBuf, detail: String },
    /// Files of different searches (trial lists, options or data) or different shard counts.
    Mixed { first: (PathBuf, String), other: (PathBuf, String) },
    /// Two files claim the same shard.
    Duplicate { shard: usize, files: [PathBuf; 2] },
    /// Shards of the search with no file.
    Missing { missing: Vec<usize>, count: usize, dir: PathBuf },
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Directory { dir, detail } => write!(f, "cannot read the shard directory {}: {detail}", dir.display()),
            CollectError::Empty { dir } => write!(f, "no shard files (shard-*.json) in {}", dir.display()),
            CollectError::Unreadable { file, detail } => write!(f, "{}: not a usable shard file: {detail}", file.display()),
            CollectError::Mixed { first, other } => write!(
                f,
                "shard files of different searches: {} has {} but {} has {} (trial lists, options, data or shard counts differ)",
                first.0.display(),
                first.1,
                other.0.display(),
                other.1
            ),
            CollectError::Duplicate { shard, files } => {
                write!(f, "duplicate shard {shard}: {} and {} both hold it", files[0].display(), files[1].display())
            }
            CollectError::Missing { missing, count, dir } => {
                let list = missing.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
                write!(f, "missing shards in {}: {list} of 0..{} (run them, then collect again)", dir.display(), count - 1)
            }
        }
    }
}

impl From<CollectError> for Failure {
    fn from(e: CollectError) -> Self {
        Failure { code: 1, message: e.to_string() }
    }
}

/// One shard file's contents, checked.
struct ShardFile {
    file: PathBuf,
    shard: usize,
    shards: usize,
    fingerprint: String,
    total: usize,
    monitor: String,
    timing: (f64, usize),
    device: Value,
    trials: Vec<(TrialInfo, MemberReport)>,
}

/// Merges the shard files of `dir` into the results of the whole search, checking that they are
/// of one search, one each, and all there.
fn collect(dir: &Path) -> Result<Results, CollectError> {
    let unreadable = |file: &Path, detail: String| CollectError::Unreadable { file: file.to_path_buf(), detail };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CollectError::Directory { dir: dir.to_path_buf(), detail: e.to_string() })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("shard-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CollectError::Empty { dir: dir.to_path_buf() });
    }
    let shards = files.iter().map(|f| read_shard(f)).collect::<Result<Vec<_>, _>>()?;
    let first = &shards[0];
    let id = |s: &ShardFile| format!("fingerprint {} of {} shards", s.fingerprint, s.shards);
    for s in &shards[1..] {
        if s.fingerprint != first.fingerprint || s.shards != first.shards || s.total != first.total {
            return Err(CollectError::Mixed { first: (first.file.clone(), id(first)), other: (s.file.clone(), id(s)) });
        }
    }
    let count = first.shards;
    let mut by_index: BTreeMap<usize, &ShardFile> = BTreeMap::new();
    for s in &shards {
        if let Some(prev) = by_index.insert(s.shard, s) {
            return Err(CollectError::Duplicate { shard: s.shard, files: [prev.file.clone(), s.file.clone()] });
        }
    }
    let missing: Vec<usize> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(CollectError::Missing { missing, count, dir: dir.to_path_buf() });
    }
    let (monitor, total) = (first.monitor.clone(), first.total);
    let mut devices: Vec<Value> = Vec::new();
    let (mut wall_s, mut model_epochs, mut plans) = (0.0, 0, 0);
    let mut trials: Vec<(TrialInfo, MemberReport)> = Vec::with_capacity(total);
    for s in shards {
        wall_s += s.timing.0;
        plans += s.timing.1;
        if !devices.contains(&s.device) {
            devices.push(s.device);
        }
        model_epochs += s.trials.iter().map(|(_, m)| m.epochs_run).sum::<usize>();
        trials.extend(s.trials);
    }
    trials.sort_by_key(|(t, _)| t.index);
    if trials.len() != total || trials.iter().enumerate().any(|(i, (t, _))| t.index != i) {
        return Err(unreadable(
            dir,
            format!("the shards hold {} trials, not each of the search's {total} once", trials.len()),
        ));
    }
    let (trials, members): (Vec<TrialInfo>, Vec<MemberReport>) = trials.into_iter().unzip();
    Ok(Results {
        monitor,
        trials,
        // Totals over the shards: device time, not elapsed time (shards may run at once).
        sweep: SweepReport {
            members,
            wall_s,
            model_epochs_per_s: model_epochs as f64 / wall_s.max(1e-9),
            plans,
            device_bytes: 0,
        },
        device: if devices.len() == 1 { devices.remove(0) } else { Value::Array(devices) },
    })
}

/// Reads and checks one shard file.
fn read_shard(file: &Path) -> Result<ShardFile, CollectError> {
    let bad = |detail: String| CollectError::Unreadable { file: file.to_path_buf(), detail };
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    if v["format"] != SHARD_FORMAT || v["version"] != SHARD_VERSION {
        return Err(bad(format!("expected \"format\": {SHARD_FORMAT:?}, \"version\": {SHARD_VERSION}")));
    }
    let uint = |v: &Value, key: &str| {
        v[key].as_u64().map(|n| n as usize).ok_or_else(|| bad(format!("no whole number {key:?}")))
    };
    let text_of =
        |v: &Value, key: &str| v[key].as_str().map(str::to_string).ok_or_else(|| bad(format!("no text {key:?}")));
    let (shard, shards, total) = (uint(&v, "shard")?, uint(&v, "shards")?, uint(&v, "total_trials")?);
    if shards == 0 || shard >= shards {
        return Err(bad(format!("shard {shard} of {shards} is out of range")));
    }
    let list = v["trials"].as_array().ok_or_else(|| bad("no \"trials\" list".into()))?;
    let mut trials = Vec::with_capacity(list.len());
    for t in list {
        let index = uint(t, "trial")?;
        if index % shards != shard {
            return Err(bad(format!("trial {index} does not belong to shard {shard}/{shards}")));
        }
        let history =
            history_from_json(&t["history"]).ok_or_else(|| bad(format!("trial {index}: unreadable \"history\"")))?;
        let diverged = match &t["diverged"] {
            Value::Null => None,
            d => Some((uint(d, "epoch")?, d["value"].as_f64().map_or(f32::NAN, |x| x as f32))),
        };
        let info = TrialInfo {
            index,
            setting: uint(t, "setting")?,
            settings: t["settings"].clone(),
            seed: t["seed"].as_u64().ok_or_else(|| bad(format!("trial {index}: no \"seed\"")))?,
            fold: t["fold"].as_u64().map(|f| f as usize),
        };
        let label = text_of(t, "label")?;
        trials.push((info, MemberReport { label, history, epochs_run: uint(t, "epochs_run")?, diverged }));
    }
    let timing = &v["timing"];
    Ok(ShardFile {
        file: file.to_path_buf(),
        shard,
        shards,
        fingerprint: text_of(&v, "fingerprint")?,
        total,
        monitor: text_of(&v, "monitor")?,
        timing: (timing["wall_s"].as_f64().unwrap_or(0.0), timing["plans"].as_u64().unwrap_or(0) as usize),
        device: v["device"].clone(),
        trials,
    })
}

/// A History from its `--json` form (`{"loss": [..], ..}`, null for non-finite values). The
/// numbers are f32 values written as f64, so they read back exactly.
fn history_from_json(v: &Value) -> Option<History> {
    let m = v.as_object()?;
    let keys: Vec<&String> = m.keys().collect();
    let values: Vec<&Vec<Value>> = m.values().map(Value::as_array).collect::<Option<_>>()?;
    History::from_json(&json!({"keys": keys, "values": values}).to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shard_from_flag_slurm_and_kubernetes() {
        let s = shard_of(Some("1/3"), None, &env(&[])).unwrap();
        assert_eq!((s.index, s.count), (1, 3));
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        let s = shard_of(None, None, &slurm).unwrap();
        assert_eq!((s.index, s.count), (3, 4));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("WGFIT_SHARDS", "5")]);
        let s = shard_of(None, None, &k8s).unwrap();
        assert_eq!((s.index, s.count), (2, 5));
        assert_eq!(shard_of(None, Some(6), &k8s).unwrap().count, 6);
        let s = shard_of(None, None, &env(&[("WGFIT_SHARDS", "5")])).unwrap();
        assert_eq!((s.index, s.count), (0, 1));
    }

    #[test]
    fn bad_shards_are_usage_errors() {
        for (spec, shards, vars) in [
            (Some("3/3"), None, env(&[])),
            (Some("x"), None, env(&[])),
            (Some("0/0"), None, env(&[])),
            (None, Some(2), env(&[])),
            (None, None, env(&[("JOB_COMPLETION_INDEX", "0")])),
            (None, None, env(&[("SLURM_ARRAY_TASK_ID", "0")])),
        ] {
            let e = shard_of(spec, shards, &vars).unwrap_err();
            assert_eq!(e.code, 2, "{}", e.message);
        }
    }

    #[test]
    fn lists_reject_empty_values() {
        assert_eq!(parse_list::<f32>("--lr", "0.1, 0.01").unwrap(), vec![0.1, 0.01]);
        assert!(parse_list::<f32>("--lr", "").unwrap_err().message.contains("--lr is empty"));
        assert!(parse_list::<f32>("--lr", "0.1,,0.2").unwrap_err().message.contains("empty item"));
        assert!(parse_list::<bool>("--batchnorm", "yes").is_err());
    }
}

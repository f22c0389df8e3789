//! `wgfit train`: fit a model on a CSV file (in memory, or with `--stream` read in pieces from
//! disk), report, plot and save it.

use std::io::Write;
use std::time::Instant;

use serde_json::{json, Map, Value};
use wgfit::io;

use crate::setup::{self, Compile, Data, ModelSpec, OptimizerExtras, OptimizerSpec};
use crate::{json_f32, pick_device, print_json, usage, CliResult, TrainArgs};

pub(crate) fn train(a: TrainArgs, started: Instant) -> CliResult<()> {
    if a.momentum.is_some() && !matches!(a.optimizer.as_str(), "sgd" | "rmsprop") {
        return Err(usage("--momentum applies to --optimizer sgd or rmsprop only"));
    }
    if a.rho.is_some() && a.optimizer != "rmsprop" {
        return Err(usage("--rho applies to --optimizer rmsprop only"));
    }
    let spec = ModelSpec {
        hidden: setup::parse_hidden(&a.layers)?,
        dropout: a.dropout,
        batchnorm: a.batchnorm,
        l2: a.l2,
        optimizer: OptimizerSpec::new(&a.optimizer, a.lr, a.momentum),
        extras: OptimizerExtras { rho: a.rho, weight_decay: a.weight_decay, clipnorm: a.clipnorm },
    };
    let fit = setup::fit_settings(&a.run)?;
    let data = Data::prepare(a.stream, &a.data, &a.data_opts, a.sample_weight.as_deref())?;
    let (pre, y, input_w, has_valid) = (data.pre(), data.targets(), data.inputs(), data.has_valid());
    let class_weight = match &a.class_weight {
        Some(spec) => Some(parse_class_weight(spec, y, pre.classes())?),
        None => None,
    };
    let compile = Compile::for_target(y, &a.model, pre.classes().map(<[String]>::len));
    let device = pick_device(a.run.device.as_deref())?;
    let mut model = spec.build(&device, &compile, &a.model.activation, a.seed, Some(input_w))?;

    let mut fit = fit.seed(a.seed);
    match &data {
        Data::Memory(p) => {
            match (&p.valid, &p.valid_weights) {
                (Some((vx, vy)), Some(vw)) => fit = fit.validation_data_weighted(vx, vy, vw),
                (Some((vx, vy)), None) => fit = fit.validation_data(vx, vy),
                _ => {}
            }
            if let Some(w) = &p.weights {
                fit = fit.sample_weight(w);
            }
        }
        Data::Files(p) => {
            // A file's weight column weighs its rows wherever the file is used.
            if let Some(v) = &p.valid {
                fit = fit.validation_file(v);
            }
        }
    }
    if let Some(cw) = &class_weight {
        eprintln!("wgfit: class weights {cw:?}");
        fit = fit.class_weight(cw.iter().copied());
    }
    if let Some(early) = setup::early_stopping(&a.run, has_valid) {
        fit = fit.callback(early);
    }
    if let Some(template) = &a.checkpoint {
        let monitor = if has_valid { "val_loss" } else { "loss" };
        fit = fit.callback(
            wgfit::ModelCheckpoint::new(template.as_str())
                .monitor(monitor)
                .save_best_only(a.checkpoint_best_only)
                .preprocessor(pre),
        );
    }
    let startup_s = started.elapsed().as_secs_f64();
    let fit_started = Instant::now();
    let history = match &data {
        Data::Memory(p) => model.fit(&p.x, &p.y, fit)?,
        Data::Files(p) => model.fit_file(&p.train, fit)?,
    };
    let fit_s = fit_started.elapsed().as_secs_f64();
    let epochs_run = history.epochs();

    // In History order: loss, metrics, then val_ keys; weighted as the fit was (the training
    // rows by their sample weights, not their class weights: Keras's evaluate takes no class_weight).
    let scores = match &data {
        Data::Memory(p) => {
            let mut scores: Vec<(String, f32)> = match &p.weights {
                Some(w) => model.evaluate_weighted(&p.x, &p.y, w)?,
                None => model.evaluate(&p.x, &p.y)?,
            };
            if let Some((vx, vy)) = &p.valid {
                let val = match &p.valid_weights {
                    Some(w) => model.evaluate_weighted(vx, vy, w)?,
                    None => model.evaluate(vx, vy)?,
                };
                scores.extend(val.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            scores
        }
        Data::Files(p) => {
            let mut scores = model.evaluate_file(&p.train)?;
            if let Some(v) = &p.valid {
                scores.extend(model.evaluate_file(v)?.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            scores
        }
    };
    let fin: Map<String, Value> = scores.iter().map(|(k, v)| (k.clone(), json_f32(*v))).collect();
    if let Some(path) = &a.run.plot {
        history.plot(path)?;
        eprintln!("wgfit: learning curves written to {}", path.display());
    }
    if let Some(path) = &a.save {
        io::save_model(path, &mut model, Some(pre))?;
        eprintln!("wgfit: model saved to {}", path.display());
    }
    let total_s = started.elapsed().as_secs_f64();
    let result = json!({
        "device": setup::device_json(&device),
        "history": setup::history_json(&history),
        "epochs_run": epochs_run,
        "best_epoch": history.best_epoch,
        "final": Value::Object(fin.clone()),
        "timing": {
            "total_s": total_s,
            "startup_s": startup_s,
            "ms_per_epoch": if epochs_run > 0 { fit_s * 1e3 / epochs_run as f64 } else { 0.0 },
        },
        "inputs": pre.input_names(),
        "target": pre.target(),
        "saved": a.save.as_ref().map(|p| p.display().to_string()),
    });
    if a.run.json {
        print_json(&result)?;
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "trained {epochs_run} epochs on {} ({}) in {total_s:.2}s",
            device.info().adapter,
            device.info().backend
        );
        if let Some(b) = history.best_epoch {
            let _ = writeln!(out, "best epoch: {} (1-based)", b + 1);
        }
        for (k, v) in &scores {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    Ok(())
}

/// `--class-weight`: "balanced" (scikit-learn's n_samples / (n_classes * count) over the training
/// rows) or LABEL:WEIGHT pairs, comma-separated, keyed by the target's class labels (a text or
/// `--task multiclass` target) or its values (0 and 1 for a binary target).
fn parse_class_weight(spec: &str, y: &wgfit::Matrix, classes: Option<&[String]>) -> CliResult<Vec<(usize, f32)>> {
    if spec == "balanced" {
        return Ok(wgfit::balanced_class_weights(y)?);
    }
    let mut out = Vec::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (label, weight) = pair
            .rsplit_once(':')
            .ok_or_else(|| usage(format!("--class-weight: {pair:?} is not LABEL:WEIGHT (or use \"balanced\")")))?;
        let weight: f32 =
            weight.trim().parse().map_err(|_| usage(format!("--class-weight: weight {weight:?} is not a number")))?;
        let label = label.trim();
        let class = match classes {
            Some(names) => names.iter().position(|n| n == label).ok_or_else(|| {
                usage(format!("--class-weight: {label:?} is not a class of the target (classes: {})", names.join(", ")))
            })?,
            None => match label.parse::<f64>() {
                Ok(v) if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f64 => v as usize,
                _ => {
                    return Err(usage(format!(
                        "--class-weight: {label:?} is not a class value of the target (0, 1, ... for a numeric target)"
                    )))
                }
            },
        };
        out.push((class, weight));
    }
    if out.is_empty() {
        return Err(usage("--class-weight needs \"balanced\" or LABEL:WEIGHT pairs"));
    }
    Ok(out)
}

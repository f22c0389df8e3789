//! `wgfit train`: fit a model on a CSV file, report, plot and save it.

use std::io::Write;
use std::time::Instant;

use serde_json::{json, Map, Value};
use wgfit::data::{CsvOptions, Preprocessor, RawTable, ScaleKind};
use wgfit::{
    io, Adam, BatchNormalization, Dense, Device, Dropout, EarlyStopping, Fit, History, Layer, Matrix, Optimizer,
    Sequential, Sgd,
};

use crate::{json_f32, pick_device, print_json, usage, CliResult, TrainArgs};

fn device_json(device: &Device) -> Value {
    let info = device.info();
    json!({"kind": info.kind, "adapter": info.adapter, "backend": info.backend})
}

fn is_binary(y: &Matrix) -> bool {
    y.data().iter().all(|v| *v == 0.0 || *v == 1.0)
}

pub(crate) fn train(a: TrainArgs, started: Instant) -> CliResult<()> {
    if let Some(f) = a.validation_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(usage(format!("--validation-split must be in (0, 1), got {f}")));
        }
    }
    if a.momentum.is_some() && a.optimizer != "sgd" {
        return Err(usage("--momentum applies to --optimizer sgd only"));
    }
    if a.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    let hidden: Vec<usize> = match a.layers.trim() {
        "" | "none" => Vec::new(),
        s => s
            .split(',')
            .map(|u| u.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| usage(format!("--layers must be positive integers separated by commas, got {s:?}")))?,
    };
    let scale = ScaleKind::parse(&a.scale)?;

    let table = RawTable::read_csv(&a.data)?;
    let (train_raw, valid_raw) = match (&a.valid, a.validation_split) {
        (Some(path), _) => (table, Some(RawTable::read_csv(path)?)),
        (None, Some(f)) => {
            let (t, v) = table.split_last(f)?;
            (t, Some(v))
        }
        (None, None) => (table, None),
    };
    let opts = CsvOptions { target: a.target.clone(), drop: a.drop.clone(), categorical: a.categorical.clone(), scale };
    let pre = Preprocessor::fit(&train_raw, &opts)?;
    let (x, y) = pre.transform_xy(&train_raw)?;
    let valid = match &valid_raw {
        Some(v) => Some(pre.transform_xy(v)?),
        None => None,
    };
    eprintln!(
        "wgfit: {} training rows{}, {} inputs, target {:?}",
        x.rows(),
        valid.as_ref().map_or(String::new(), |(vx, _)| format!(", {} validation rows", vx.rows())),
        x.cols(),
        pre.target()
    );

    // Defaults from the target.
    let binary = is_binary(&y);
    let loss = a.loss.clone().unwrap_or_else(|| if binary { "binary_crossentropy" } else { "mae" }.into());
    // An unknown name is reported by compile, with the valid ones.
    let bce = loss.parse::<wgfit::Loss>().is_ok_and(|l| l.is_binary());
    let output = a.output.clone().unwrap_or_else(|| if bce { "sigmoid" } else { "linear" }.into());
    let metrics: Vec<String> =
        a.metrics.clone().unwrap_or_else(|| vec![if bce { "binary_accuracy" } else { "mae" }.to_string()]);
    if a.loss.is_none() || a.output.is_none() || a.metrics.is_none() {
        eprintln!(
            "wgfit: {} target: using a {output} output, {loss} loss and {} metrics (override with --output, --loss, --metrics)",
            if binary { "binary 0/1" } else { "numeric" },
            metrics.join(", ")
        );
    }

    let device = pick_device(a.device.as_deref())?;
    let mut layers: Vec<Layer> = Vec::new();
    for (i, units) in hidden.iter().enumerate() {
        let mut l = Dense::new(*units).activation(&a.activation);
        if i == 0 {
            l = l.input_shape(x.cols());
        }
        layers.push(l);
        if a.batchnorm {
            layers.push(BatchNormalization::new());
        }
        if let Some(rate) = a.dropout {
            layers.push(Dropout::new(rate));
        }
    }
    let mut out = Dense::new(1).activation(&output);
    if hidden.is_empty() {
        out = out.input_shape(x.cols());
    }
    layers.push(out);
    let optimizer: Optimizer = match a.optimizer.as_str() {
        "sgd" => Sgd {
            learning_rate: a.lr.unwrap_or(Sgd::default().learning_rate),
            momentum: a.momentum.unwrap_or(0.0),
            nesterov: false,
        }
        .into(),
        _ => Adam::new(a.lr.unwrap_or(Adam::default().learning_rate)).into(),
    };
    let mut model = Sequential::new(&device, layers).seed(a.seed);
    let metric_refs: Vec<&str> = metrics.iter().map(String::as_str).collect();
    model.compile(optimizer, loss.as_str(), &metric_refs)?;

    let mut fit = Fit::new().epochs(a.epochs).batch_size(a.batch_size).seed(a.seed);
    if let Some(v) = a.verbose {
        fit = fit.verbose(v);
    }
    if let Some((vx, vy)) = &valid {
        fit = fit.validation_data(vx, vy);
    }
    if let Some(patience) = a.patience {
        let monitor = if valid.is_some() { "val_loss" } else { "loss" };
        fit = fit.callback(
            EarlyStopping::new()
                .monitor(monitor)
                .patience(patience)
                .min_delta(a.min_delta)
                .restore_best_weights(a.restore_best)
                .verbose(true),
        );
    }
    let startup_s = started.elapsed().as_secs_f64();
    let fit_started = Instant::now();
    let history = model.fit(&x, &y, fit)?;
    let fit_s = fit_started.elapsed().as_secs_f64();
    let epochs_run = history.epochs();

    // In History order: loss, metrics, then val_ keys.
    let mut scores: Vec<(String, f32)> = model.evaluate(&x, &y)?;
    if let Some((vx, vy)) = &valid {
        scores.extend(model.evaluate(vx, vy)?.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
    }
    let fin: Map<String, Value> = scores.iter().map(|(k, v)| (k.clone(), json_f32(*v))).collect();
    if let Some(path) = &a.plot {
        history.plot(path)?;
        eprintln!("wgfit: learning curves written to {}", path.display());
    }
    if let Some(path) = &a.save {
        io::save_model(path, &mut model, Some(&pre))?;
        eprintln!("wgfit: model saved to {}", path.display());
    }
    let total_s = started.elapsed().as_secs_f64();
    let result = json!({
        "device": device_json(&device),
        "history": history_json(&history),
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
    if a.json {
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

fn history_json(h: &History) -> Value {
    let mut m = Map::new();
    for k in h.keys() {
        m.insert(k.to_string(), Value::Array(h.get(k).unwrap_or(&[]).iter().map(|v| json_f32(*v)).collect()));
    }
    Value::Object(m)
}

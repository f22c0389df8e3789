//! `wgfit summary` and `wgfit devices`: describe a saved model, list the GPU adapters.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use wgfit::{data, io, Device};

use crate::{print_json, CliResult, Failure};

pub(crate) fn summary(model_path: &Path) -> CliResult<()> {
    let loaded = io::load_model(model_path, &Device::cpu())?;
    let model = loaded.model;
    let mut out = String::new();
    out.push_str(&model.summary());
    if let Some(last) = model.layers().last() {
        let act = match last.kind() {
            wgfit::LayerKind::Dense(c) => Some(c.activation()),
            wgfit::LayerKind::Activation(c) => Some(c.activation()),
            _ => None,
        };
        if let Some(act) = act {
            out.push_str(&format!(" Output activation: {}\n", act.name()));
        }
    }
    if let Some(loss) = model.loss() {
        let logits = if loss.from_logits() { " (from logits)" } else { "" };
        let smoothing = loss.label_smoothing();
        let smoothing = if smoothing > 0.0 { format!(", label smoothing {smoothing}") } else { String::new() };
        out.push_str(&format!(" Loss: {}{logits}{smoothing}\n", loss.name()));
    }
    if let Some(o) = model.optimizer_settings() {
        out.push_str(&format!(" Optimizer: {}\n", o.describe()));
    }
    if let Some(p) = &loaded.preprocessor {
        out.push_str(&format!(" Target: {}\n", p.target()));
        if let Some(classes) = p.classes() {
            out.push_str(&format!(" Classes ({}): {}\n", classes.len(), classes.join(", ")));
        }
        out.push_str(&format!(" Inputs ({}): {}\n", p.input_width(), p.input_names().join(", ")));
        if !p.dropped().is_empty() {
            out.push_str(&format!(" Dropped: {}\n", p.dropped().join(", ")));
        }
        let scaler = match p.scaler() {
            data::Scaler::None => "none",
            data::Scaler::MinMax(_) => "min-max (fitted on the training rows)",
            data::Scaler::Standard { .. } => "standardization (fitted on the training rows)",
        };
        out.push_str(&format!(" Scaling: {scaler}\n"));
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| Failure { code: 1, message: format!("cannot write to stdout: {e}") })
}

pub(crate) fn devices(json: bool) -> CliResult<()> {
    let list = Device::list_adapters();
    let (default, why) = Device::auto();
    let default = default.info();
    if json {
        let adapters: Vec<Value> = list
            .iter()
            .map(|(i, chosen)| {
                json!({"adapter": i.adapter, "backend": i.backend, "device_type": i.device_type, "selected": chosen})
            })
            .collect();
        let auto = json!({"kind": default.kind, "adapter": default.adapter, "why": why});
        return print_json(&json!({"adapters": adapters, "default": auto}));
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        let _ = writeln!(out, "no GPU adapter found (install a Vulkan driver for your GPU, or mesa-vulkan-drivers)");
    }
    for (info, chosen) in &list {
        let _ = writeln!(
            out,
            "{} {} ({}, {})",
            if *chosen { "*" } else { " " },
            info.adapter,
            info.backend,
            info.device_type
        );
    }
    let _ = writeln!(out, "  cpu reference (--device cpu)");
    let _ = writeln!(out, "* = --device gpu; the default (--device auto) is {}: {why}", default.adapter);
    Ok(())
}

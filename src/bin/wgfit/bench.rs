//! `wgfit bench`: the benchmark workloads of BENCHMARKS.md as one table or JSON records.

use std::io::Write;

use crate::{print_json, usage, CliResult};

/// Runs the benchmark workloads (time budgets and W3's size: see BENCHMARKS.md's WGFIT_BENCH_* knobs).
pub(crate) fn bench(workloads: &[String], device: &str, json: bool) -> CliResult<()> {
    let workloads: Vec<String> = workloads.iter().map(|w| w.trim().to_ascii_uppercase()).collect();
    if let Some(w) = workloads.iter().find(|w| !wgfit::bench::WORKLOADS.contains(&w.as_str())) {
        return Err(usage(format!("unknown workload {w:?}; valid: {}", wgfit::bench::WORKLOADS.join(", "))));
    }
    let names: Vec<&str> = workloads.iter().map(String::as_str).collect();
    let devices: &[&str] = match device {
        "gpu" => &["gpu"],
        "cpu" => &["cpu"],
        _ => &["gpu", "cpu"],
    };
    let records = wgfit::bench::run(&names, devices)?;
    if json {
        return print_json(&serde_json::to_value(&records).map_err(|e| usage(e.to_string()))?);
    }
    let _ = writeln!(std::io::stdout().lock(), "{}", wgfit::bench::table(&records));
    Ok(())
}

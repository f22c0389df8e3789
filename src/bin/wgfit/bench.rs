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
    let records = wgfit::bench::run(&names, devices(device))?;
    if json {
        return print_json(&serde_json::to_value(&records).map_err(|e| usage(e.to_string()))?);
    }
    let _ = writeln!(std::io::stdout().lock(), "{}", wgfit::bench::table(&records));
    Ok(())
}

fn devices(choice: &str) -> &'static [&'static str] {
    match choice {
        "gpu" => &["gpu"],
        "cpu" => &["cpu"],
        _ => &["gpu", "cpu"],
    }
}

/// Runs the sweeps S1 and S2 with `models` models on each device (WGFIT_BENCH_EPOCHS shortens them).
pub(crate) fn sweeps(device: &str, models: usize, json: bool) -> CliResult<()> {
    if models == 0 {
        return Err(usage("--models must be at least 1"));
    }
    let opts = wgfit::bench::Options::from_env();
    let mut records = Vec::new();
    for s in wgfit::bench::SWEEPS {
        for d in devices(device) {
            match wgfit::bench::run_sweep(s, d, models, &opts) {
                Ok(r) => records.push(r),
                Err(e @ wgfit::Error::NoAdapter { .. }) => eprintln!("{s} on {d}: skipped: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if json {
        return print_json(&serde_json::to_value(&records).map_err(|e| usage(e.to_string()))?);
    }
    let _ = writeln!(std::io::stdout().lock(), "{}", wgfit::bench::sweep_table(&records));
    Ok(())
}

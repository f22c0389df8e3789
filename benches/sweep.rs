//! Sweeps S1 and S2 of benches/WORKLOADS.md (K models trained together) on the GPU and CPU paths.
//! `cargo bench --bench sweep [-- S1,S2 gpu,cpu 64]`; WGFIT_BENCH_EPOCHS replaces the epoch counts.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let sweeps: Vec<String> = match args.first() {
        Some(w) => w.split(',').map(|s| s.trim().to_uppercase()).collect(),
        None => wgfit::bench::SWEEPS.iter().map(|s| s.to_string()).collect(),
    };
    let devices: Vec<String> = match args.get(1) {
        Some(d) => d.split(',').map(|s| s.trim().to_lowercase()).collect(),
        None => vec!["gpu".into(), "cpu".into()],
    };
    let models: usize = args.get(2).and_then(|k| k.parse().ok()).unwrap_or(64);
    let opts = wgfit::bench::Options::from_env();
    let mut records = Vec::new();
    for s in &sweeps {
        for d in &devices {
            match wgfit::bench::run_sweep(s, d, models, &opts) {
                Ok(r) => records.push(r),
                Err(e) => {
                    eprintln!("{s} on {d}: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    println!("{}", wgfit::bench::sweep_table(&records));
}

//! W1..W4 of benches/WORKLOADS.md on the GPU and CPU paths, one table.
//! `cargo bench --bench train [-- W1,W2 gpu,cpu]`; knobs: WGFIT_BENCH_EPOCHS, WGFIT_BENCH_SECONDS,
//! WGFIT_BENCH_W3_ROWS (see `wgfit::bench::Options`), WGFIT_BENCH_JSON=1 for JSON records too.

fn main() {
    // cargo passes `--bench`; the optional positional arguments select workloads and devices.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let workloads: Vec<String> = match args.first() {
        Some(w) => w.split(',').map(|s| s.trim().to_uppercase()).collect(),
        None => wgfit::bench::WORKLOADS.iter().map(|s| s.to_string()).collect(),
    };
    let devices: Vec<String> = match args.get(1) {
        Some(d) => d.split(',').map(|s| s.trim().to_lowercase()).collect(),
        None => vec!["gpu".into(), "cpu".into()],
    };
    let w: Vec<&str> = workloads.iter().map(|s| s.as_str()).collect();
    let d: Vec<&str> = devices.iter().map(|s| s.as_str()).collect();
    match wgfit::bench::run(&w, &d) {
        Ok(records) => {
            println!("{}", wgfit::bench::table(&records));
            if std::env::var("WGFIT_BENCH_JSON").is_ok_and(|v| v == "1") {
                println!("{}", serde_json::to_string_pretty(&records).unwrap_or_default());
            }
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}

//! GFLOP/s of the GEMM crates the CPU path can use (src/device/cpu/product.rs), called directly on
//! the stored shapes of every product a training step of W1 and W3 runs (a Dense layer's forward
//! X·W, dX = dZ·Wᵀ and dW = Xᵀ·dZ, with their real m, k, n and transposes) and on 1024³:
//! `matrixmultiply` (its pool, MATMUL_NUM_THREADS or the cores), `faer` on 1 thread and in two
//! blocks on 2 threads (the Faer engine), `gemm` on 1 and 2 threads, and
//! `wgfit`'s own choice (`product`, what the CPU path runs: a block per core). Rounds alternate the candidates, and
//! each figure is the median over rounds of each round's median; the load average is printed
//! before and after, since the machine may be shared.
//! `cargo bench --bench gemm_crates [-- FILTER]`; WGFIT_GEMM_ROUNDS (default 5).

use std::time::Instant;

use wgfit::testing::{cpu_product, CpuEngine};

struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// A transposed (Xᵀ), B transposed (Wᵀ).
    at: bool,
    bt: bool,
}

const fn s(name: &'static str, m: usize, k: usize, n: usize, at: bool, bt: bool) -> Shape {
    Shape { name, m, k, n, at, bt }
}

const SHAPES: [Shape; 18] = [
    s("1024^3 A·B", 1024, 1024, 1024, false, false),
    s("W1 8->512 forward X·W 256x8x512", 256, 8, 512, false, false),
    s("W1 8->512 dW = Xᵀ·dZ 8x256x512", 8, 256, 512, true, false),
    s("W1 512->512 forward X·W 256x512x512", 256, 512, 512, false, false),
    s("W1 512->512 dX = dZ·Wᵀ 256x512x512", 256, 512, 512, false, true),
    s("W1 512->512 dW = Xᵀ·dZ 512x256x512", 512, 256, 512, true, false),
    s("W1 512->1 forward X·W 256x512x1", 256, 512, 1, false, false),
    s("W1 512->1 dX = dZ·Wᵀ 256x1x512", 256, 1, 512, false, true),
    s("W1 512->1 dW = Xᵀ·dZ 512x256x1", 512, 256, 1, true, false),
    s("W3 256->1024 forward X·W 1024x256x1024", 1024, 256, 1024, false, false),
    s("W3 256->1024 dW = Xᵀ·dZ 256x1024x1024", 256, 1024, 1024, true, false),
    s("W3 1024->1024 forward X·W 1024x1024x1024", 1024, 1024, 1024, false, false),
    s("W3 1024->1024 dX = dZ·Wᵀ 1024x1024x1024", 1024, 1024, 1024, false, true),
    s("W3 1024->1024 dW = Xᵀ·dZ 1024x1024x1024", 1024, 1024, 1024, true, false),
    s("W3 1024->1 forward X·W 1024x1024x1", 1024, 1024, 1, false, false),
    s("W3 1024->1 dX = dZ·Wᵀ 1024x1x1024", 1024, 1, 1024, false, true),
    s("W3 1024->1 dW = Xᵀ·dZ 1024x1024x1", 1024, 1024, 1, true, false),
    s("W1 last batch 512->512 forward 209x512x512", 209, 512, 512, false, false),
];

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rounds: usize = std::env::var("WGFIT_GEMM_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let candidates: [(&str, Option<CpuEngine>, usize); 6] = [
        ("matrixmultiply", Some(CpuEngine::MatrixMultiply), 0),
        ("faer 1 thread", Some(CpuEngine::Faer), 1),
        ("faer 2 blocks", Some(CpuEngine::Faer), 2),
        ("gemm 1 thread", Some(CpuEngine::Gemm), 1),
        ("gemm 2 threads", Some(CpuEngine::Gemm), 2),
        ("wgfit's choice", None, 0),
    ];
    println!("load average before: {}", load());
    print!("| product (m x k x n) |");
    candidates.iter().for_each(|c| print!(" {} |", c.0));
    println!(" choice |\n|---|---|---|---|---|---|");
    for sh in SHAPES.iter().filter(|sh| filter.is_empty() || filter.iter().any(|f| sh.name.contains(f.as_str()))) {
        let (m, k, n) = (sh.m, sh.k, sh.n);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01).collect();
        let mut c = vec![0.0f32; m * n];
        let (a_rs, a_cs) = if sh.at { (1, m) } else { (k, 1) };
        let (b_rs, b_cs) = if sh.bt { (1, k) } else { (n, 1) };
        let flop = 2.0 * (m * k * n) as f64;
        let mut rates = vec![Vec::new(); candidates.len()];
        for _ in 0..rounds {
            for (i, &(_, engine, threads)) in candidates.iter().enumerate() {
                let mut run = || {
                    assert!(cpu_product(engine, threads, m, k, n, &a, (a_rs, a_cs), &b, (b_rs, b_cs), &mut c));
                };
                run();
                rates[i].push(flop / median_seconds(&mut run) / 1e9);
            }
        }
        print!("| {} |", sh.name);
        for r in &mut rates {
            r.sort_by(|x, y| x.total_cmp(y));
            print!(" {:.0} |", r[r.len() / 2]);
        }
        println!(" {:?} |", wgfit::testing::cpu_engine_choice(m, k, n, (b_rs, b_cs)));
    }
    println!("load average after: {}", load());
}

/// Median seconds of `f` over 5 to 100 calls (about 0.4 s).
fn median_seconds(f: &mut impl FnMut()) -> f64 {
    let mut times = Vec::new();
    let clock = Instant::now();
    while times.len() < 5 || (times.len() < 100 && clock.elapsed().as_secs_f64() < 0.4) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|x, y| x.total_cmp(y));
    times[times.len() / 2]
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

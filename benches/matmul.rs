//! GFLOP/s of the Matmul kernel on the GPU and CPU paths: 1024^3, and the training shapes of W1
//! (721 rows, 512 -> 512): forward X·W, dX = dZ·Wᵀ and dW = Xᵀ·dZ (the two transposed forms).
//! `cargo bench --bench matmul [-- gpu,cpu]`; WGFIT_MATMUL=scalar runs the GPU reference kernel,
//! WGFIT_MATMUL=tiled the workgroup-tiled one everywhere (tiled64 / tiled128: in that configuration),
//! WGFIT_MATMUL=untiled never; WGFIT_UNCHECKED=1 runs the tiled kernels without shader runtime
//! checks where their bounds are proven, WGFIT_TILED_VEC4=0 with scalar loads only;
//! WGFIT_BENCH_4096=1 adds 2048^3 and 4096^3 products (where the 64 and 128 tiles trade places); WGFIT_BENCH_MATMUL_S the seconds each timing
//! takes at most (default 3; at least 5 calls). On the GPU the product's column names the
//! pipeline that ran.

use std::time::Instant;

use wgfit::testing::{Args, KernelHarness, MatmulArgs, Ones};
use wgfit::Activation;
use wgfit::Device;

struct Shape {
    name: &'static str,
    m: u32,
    n: u32,
    k: u32,
    /// A row-major (false) or transposed (true); B row-major (false) or transposed (true).
    at: bool,
    bt: bool,
    /// The Dense epilogue: implicit ones (1: A's last column, 2: A's last row), activation, derivative.
    aug: u32,
    act: u32,
    dact: u32,
}

fn params(s: &Shape) -> MatmulArgs {
    // Stored rows and columns of A (an implicit ones row or column is not stored).
    let (am, ak) = match s.aug {
        1 => (s.m, s.k - 1),
        2 => (s.m - 1, s.k),
        _ => (s.m, s.k),
    };
    let (a_rs, a_cs) = if s.at { (1, am) } else { (ak, 1) };
    let (b_rs, b_cs) = if s.bt { (1, s.k) } else { (s.n, 1) };
    MatmulArgs {
        m: s.m,
        n: s.n,
        k: s.k,
        a_rs,
        a_cs,
        b_rs,
        b_cs,
        ones: Ones::ALL[s.aug as usize],
        activation: Activation::ALL[s.act as usize],
        derivative: Activation::ALL[s.dact as usize],
        ..Default::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let devices: Vec<String> = match args.first() {
        Some(d) => d.split(',').map(|s| s.trim().to_lowercase()).collect(),
        None => vec!["gpu".into(), "cpu".into()],
    };
    let plain = Shape { name: "", m: 0, n: 0, k: 0, at: false, bt: false, aug: 0, act: 0, dact: 0 };
    let shapes = [
        Shape { name: "1024^3 A·B", m: 1024, n: 1024, k: 1024, ..plain },
        Shape { name: "721x512x512 forward X·W", m: 721, n: 512, k: 512, ..plain },
        Shape { name: "721x512x512 dX = dZ·Wᵀ", m: 721, n: 512, k: 512, bt: true, ..plain },
        Shape { name: "512x512 (k=721) dW = Xᵀ·dZ", m: 512, n: 512, k: 721, at: true, ..plain },
        // A W1 batch through a 512 -> 512 relu layer, with the Dense epilogues.
        Shape { name: "W1 batch forward relu(X·W + b), 256x512x513", m: 256, n: 512, k: 513, aug: 1, act: 1, ..plain },
        Shape {
            name: "W1 batch dX = dZ·Wᵀ ⊙ relu', 256x512x512", m: 256, n: 512, k: 512, bt: true, dact: 1, ..plain
        },
        Shape {
            name: "W1 batch [dW; db] = [Xᵀ; 1]·dZ, 513x512 (k=256)",
            m: 513,
            n: 512,
            k: 256,
            at: true,
            aug: 2,
            ..plain
        },
        // A W3 batch through a 1024 -> 1024 layer (the BatchNorm follows, so no activation).
        Shape { name: "W3 batch forward X·W + b, 1024x1024x1025", m: 1024, n: 1024, k: 1025, aug: 1, ..plain },
        Shape {
            name: "W3 batch dX = dZ·Wᵀ ⊙ relu', 1024x1024x1024",
            m: 1024,
            n: 1024,
            k: 1024,
            bt: true,
            dact: 1,
            ..plain
        },
        Shape {
            name: "W3 batch [dW; db] = [Xᵀ; 1]·dZ, 1025x1024 (k=1024)",
            m: 1025,
            n: 1024,
            k: 1024,
            at: true,
            aug: 2,
            ..plain
        },
        // Only with WGFIT_BENCH_4096=1 (scripts/gpu-proof on a GPU machine): minutes on a CPU.
        // 1024^3 has 64 blocks of 128 x 128, 2048^3 256 (where the tiled kernels switch), 4096^3 1024.
        Shape { name: "2048^3 A·B", m: 2048, n: 2048, k: 2048, ..plain },
        Shape { name: "4096^3 A·B", m: 4096, n: 4096, k: 4096, ..plain },
    ];
    let large = std::env::var("WGFIT_BENCH_4096").is_ok_and(|v| v == "1");
    println!(
        "| device | product | ms, one launch | GFLOP/s | ms per launch, {REPEAT} in one submission | GFLOP/s | \
         GFLOP/s per 2 busy cores ({REPEAT}) |\n|---|---|---|---|---|---|---|"
    );
    for d in &devices {
        let device = match d.as_str() {
            "gpu" => match Device::gpu() {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("gpu skipped: {e}");
                    continue;
                }
            },
            _ => Device::cpu(),
        };
        let label = format!("{} ({})", d, device.info().adapter);
        let only = args.get(1).cloned().unwrap_or_default();
        for s in shapes.iter().filter(|s| s.name.contains(only.as_str()) && (large || s.m < 2048)) {
            let mut h = KernelHarness::new(&device);
            let (m, n, k) = (s.m as usize, s.n as usize, s.k as usize);
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.01).collect();
            let bufs = [
                h.buffer(&a).expect("buffer"),
                h.buffer(&b).expect("buffer"),
                h.buffer(&vec![0.0; m * n]).expect("buffer"),
                h.buffer(&vec![0.5; m * n]).expect("buffer"),
            ];
            let matmul = params(s);
            let p = Args::Matmul(matmul);
            let pipeline = match h.matmul_pipeline(&bufs, matmul).expect("bind") {
                Some(name) => format!(" [{name}]"),
                None => String::new(),
            };
            h.run(&bufs, p).expect("warm-up");
            h.run_repeated(&bufs, p, REPEAT).expect("warm-up");
            // One launch per submission (on llvmpipe: both operands packed into textures first),
            // then REPEAT launches per submission: the difference is the product alone.
            let (one, _) = median_time(|| h.run(&bufs, p).expect("run"));
            let (many, busy) = median_time(|| h.run_repeated(&bufs, p, REPEAT).expect("run"));
            let each = ((many - one) / (REPEAT - 1) as f64).max(1e-9);
            let flop = 2.0 * (m * n * k) as f64;
            println!(
                "| {label} | {}{pipeline} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} |",
                s.name,
                one * 1e3,
                flop / one / 1e9,
                each * 1e3,
                flop / each / 1e9,
                flop * REPEAT as f64 / (busy / 2.0) / 1e9
            );
        }
    }
}

const REPEAT: usize = 9;

/// Median wall time of `f` over 5 to 50 calls (about WGFIT_BENCH_MATMUL_S, default 3 s), and the
/// median call's process CPU time.
fn median_time(mut f: impl FnMut()) -> (f64, f64) {
    let budget: f64 = std::env::var("WGFIT_BENCH_MATMUL_S").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    let mut times = Vec::new();
    let cpu0 = cpu_seconds();
    let clock = Instant::now();
    while times.len() < 5 || (times.len() < 50 && clock.elapsed().as_secs_f64() < budget) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    let busy = (cpu_seconds() - cpu0) / times.len() as f64;
    times.sort_by(|x, y| x.total_cmp(y));
    (times[times.len() / 2], busy)
}

/// CPU time of this process (all threads, user + system), from /proc; 0 where there is none.
/// Divided by 2 it tells what the run would take alone on the 2 cores when others load the machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

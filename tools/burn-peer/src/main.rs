//! Burn peer for the benchmark workloads W1-W4 of shared/peers/WORKLOADS.md.
//!
//! Mirrors shared/peers/python/torch_bench.py: same data prep (common.py's split files, min-max
//! scaling with train-split min/max, raw targets), same models, Adam(lr 1e-3, eps 1e-7),
//! Glorot-uniform weights and zero biases, a fresh shuffle every epoch, validation after every
//! epoch, the same timing (each epoch timed inside the process; steady = median of epochs 2..N,
//! startup = setup + epoch 1 - steady) and the same JSON-line fields as the Python peers.
//!
//! Usage: burn-peer [--workloads W1,W2,W3,W4] [--backends flex,wgpu] [--seeds 0]
//!                  [--epochs-w3 N] [--smoke] [--out results.jsonl]

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const BURN_VERSION: &str = "0.22.1";

// ---------------------------------------------------------------- data

fn data_dir() -> String {
    std::env::var("PEERS_DATA").unwrap_or_else(|_| "/work/shared/datasets".into())
}
fn splits_dir() -> String {
    std::env::var("PEERS_SPLITS").unwrap_or_else(|_| "/work/shared/peers/splits".into())
}

/// Row-major matrix on the host.
#[derive(Clone)]
struct Mat {
    rows: usize,
    cols: usize,
    v: Vec<f32>,
}

struct Split {
    xt: Mat,
    yt: Mat,
    xv: Mat,
    yv: Mat,
}

fn read_csv(name: &str) -> (Vec<Vec<f64>>, usize) {
    let text = std::fs::read_to_string(format!("{}/{}.csv", data_dir(), name)).unwrap();
    let mut lines = text.lines();
    let ncols = lines.next().unwrap().split(',').count();
    let rows: Vec<Vec<f64>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|s| s.trim().parse::<f64>().unwrap()).collect())
        .collect();
    (rows, ncols)
}

/// common.load_split: the course's split (indices in shared/peers/splits), features min-max
/// scaled with train min/max (span 1 where constant), target (last column) raw, float32.
fn load_split(name: &str) -> Split {
    let (rows, ncols) = read_csv(name);
    let js: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}/{}.json", splits_dir(), name)).unwrap()).unwrap();
    let idx =
        |k: &str| -> Vec<usize> { js[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect() };
    let (tr, va) = (idx("train"), idx("valid"));
    let nf = ncols - 1;
    let mut lo = vec![f64::INFINITY; nf];
    let mut hi = vec![f64::NEG_INFINITY; nf];
    for &r in &tr {
        for j in 0..nf {
            lo[j] = lo[j].min(rows[r][j]);
            hi[j] = hi[j].max(rows[r][j]);
        }
    }
    let span: Vec<f64> = (0..nf).map(|j| if hi[j] > lo[j] { hi[j] - lo[j] } else { 1.0 }).collect();
    let build = |ids: &[usize]| -> (Mat, Mat) {
        let mut x = Vec::with_capacity(ids.len() * nf);
        let mut y = Vec::with_capacity(ids.len());
        for &r in ids {
            for j in 0..nf {
                x.push(((rows[r][j] - lo[j]) / span[j]) as f32);
            }
            y.push(rows[r][nf] as f32);
        }
        (Mat { rows: ids.len(), cols: nf, v: x }, Mat { rows: ids.len(), cols: 1, v: y })
    };
    let (xt, yt) = build(&tr);
    let (xv, yv) = build(&va);
    Split { xt, yt, xv, yv }
}

/// W3 data: x ~ U(-1, 1), y = sin(x0 + ... + x7). (Values differ from numpy's; timing only.)
fn synthetic(rows: usize, features: usize) -> (Mat, Mat) {
    let mut rng = StdRng::seed_from_u64(0);
    let x: Vec<f32> = (0..rows * features).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = (0..rows).map(|r| x[r * features..r * features + 8].iter().sum::<f32>().sin()).collect();
    (Mat { rows, cols: features, v: x }, Mat { rows, cols: 1, v: y })
}

fn to_tensor(m: &Mat, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(m.v.clone(), [m.rows, m.cols]), device)
}

// ---------------------------------------------------------------- model

/// Dense stack: hidden Linear + ReLU layers (the first `norms.len()` of them followed by
/// BatchNorm and Dropout, as W3 has), then a Linear to one output (no activation: the binary
/// models' sigmoid is fused into the loss, as the PyTorch peer does).
#[derive(Module, Debug)]
struct Net {
    hidden: Vec<Linear>,
    norms: Vec<BatchNorm>,
    dropout: Dropout,
    out: Linear,
}

/// Keras Dense defaults: Glorot-uniform weights, zero biases.
fn dense(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out).with_initializer(Initializer::XavierUniform { gain: 1.0 }).init(device);
    l.bias = Some(Initializer::Zeros.init_with([d_out], Some(d_in), Some(d_out), device));
    l
}

impl Net {
    fn new(n_in: usize, widths: &[usize], n_norm: usize, device: &Device) -> Self {
        let mut hidden = Vec::new();
        let mut norms = Vec::new();
        let mut prev = n_in;
        for (i, &w) in widths.iter().enumerate() {
            hidden.push(dense(prev, w, device));
            if i < n_norm {
                // Keras BatchNormalization defaults: momentum 0.99 (Burn's 0.01), epsilon 1e-3.
                norms.push(BatchNormConfig::new(w).with_momentum(0.01).with_epsilon(1e-3).init(device));
            }
            prev = w;
        }
        Net { hidden, norms, dropout: DropoutConfig::new(0.3).init(), out: dense(prev, 1, device) }
    }

    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for (i, l) in self.hidden.iter().enumerate() {
            x = relu(l.forward(x));
            if let Some(bn) = self.norms.get(i) {
                x = self.dropout.forward(bn.forward(x));
            }
        }
        self.out.forward(x)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum LossKind {
    Mae,
    Mse,
    BceLogits,
}

fn loss_fn(kind: LossKind, out: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::Mae => (out - y).abs().mean(),
        LossKind::Mse => {
            let d = out - y;
            (d.clone() * d).mean()
        }
        // Numerically stable BCE on logits (= torch's BCEWithLogitsLoss):
        // max(z, 0) - z*y + log(1 + exp(-|z|)).
        LossKind::BceLogits => (relu(out.clone()) - out.clone() * y + out.abs().neg().exp().log1p()).mean(),
    }
}

// ---------------------------------------------------------------- probes

fn cpu_jiffies() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let f: Vec<u64> = s.lines().next().unwrap().split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    let idle = f[3] + f[4];
    let total: u64 = f.iter().sum();
    (total - idle, total)
}

/// utime + stime of this process, seconds (clock ticks at the usual 100 Hz).
fn proc_cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields 14 and 15 of stat(5) are utime, stime; `after` starts at field 3.
    let ut: f64 = f[11].parse().unwrap();
    let st: f64 = f[12].parse().unwrap();
    (ut + st) / 100.0
}

struct Probe {
    t: Instant,
    cpu: f64,
    j: (u64, u64),
}
struct ProbeResult {
    wall: f64,
    proc_cpu_s: f64,
    machine_busy: f64,
    others_busy: f64,
}
impl Probe {
    fn start() -> Self {
        Probe { t: Instant::now(), cpu: proc_cpu_s(), j: cpu_jiffies() }
    }
    fn stop(self) -> ProbeResult {
        let (b, t) = cpu_jiffies();
        let wall = self.t.elapsed().as_secs_f64();
        let cpu = proc_cpu_s() - self.cpu;
        let busy = (b - self.j.0) as f64 / ((t - self.j.1).max(1)) as f64;
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let own = cpu / (ncpu * wall);
        ProbeResult { wall, proc_cpu_s: cpu, machine_busy: busy, others_busy: (busy - own).max(0.0) }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn r(x: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (x * p).round() / p
}

// ---------------------------------------------------------------- workloads

struct Args {
    workloads: Vec<String>,
    backends: Vec<String>,
    seeds: Vec<u64>,
    epochs_w3: Option<usize>,
    smoke: bool,
    out: Option<String>,
}

fn epochs_for(w: &str, a: &Args) -> usize {
    let (full, smoke) = match w {
        "W1" => (100, 5),
        "W2" => (200, 10),
        "W3" => (3, 2),
        _ => (1000, 30),
    };
    if w == "W3" {
        if let Some(n) = a.epochs_w3 {
            return n;
        }
    }
    if a.smoke {
        smoke
    } else {
        full
    }
}

fn make_device(backend: &str) -> Device {
    match backend {
        "flex" => Device::flex(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(DeviceKind::DefaultDevice),
        other => panic!("backend {other} not built (wgpu needs --features wgpu)"),
    }
}

/// One-time lazy initialization paid once per process and backend (as torch_bench's
/// process_warmup): a tiny forward/backward/Adam step.
fn process_warmup(base: &Device) -> f64 {
    let t = Instant::now();
    let ad = base.clone().autodiff();
    let m = dense(2, 1, &ad);
    let mut opt = AdamConfig::new().with_epsilon(1e-7).init();
    let loss = m.forward(Tensor::<2>::zeros([4, 2], &ad)).sum();
    let g = GradientsParams::from_grads(loss.backward(), &m);
    let m = opt.step(1e-3, m, g);
    let _ = m.weight.val().into_data();
    t.elapsed().as_secs_f64()
}

fn run(w: &str, seed: u64, backend: &str, base: &Device, process: &Value, a: &Args) -> Value {
    let ad = base.clone().autodiff();
    ad.seed(seed);
    base.seed(seed);
    let mut rng = StdRng::seed_from_u64(seed); // shuffling
    let (xt, yt, val) = match w {
        "W1" => {
            let s = load_split("concrete");
            (s.xt, s.yt, Some((s.xv, s.yv)))
        }
        "W3" => {
            let (x, y) = synthetic(if a.smoke { 4096 } else { 65536 }, 256);
            (x, y, None)
        }
        _ => {
            let s = load_split("ionosphere");
            (s.xt, s.yt, Some((s.xv, s.yv)))
        }
    };
    let n = xt.rows;
    let xt_t = to_tensor(&xt, &ad);
    let yt_t = to_tensor(&yt, &ad);
    let val_t = val.as_ref().map(|(xv, yv)| (to_tensor(xv, base), to_tensor(yv, base), yv.v.clone()));
    let binary = w == "W2" || w == "W4";

    let t = Instant::now();
    let (mut model, kind, batch) = match w {
        "W1" => (Net::new(8, &[512, 512, 512], 0, &ad), LossKind::Mae, 256),
        "W3" => (Net::new(256, &[1024, 1024, 1024], 2, &ad), LossKind::Mse, 1024),
        _ => (Net::new(33, &[4, 4], 0, &ad), LossKind::BceLogits, 512),
    };
    let mut optim = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-7).init();
    let setup_s = t.elapsed().as_secs_f64();

    let epochs = epochs_for(w, a);
    let mut times = Vec::new();
    let mut hist: Vec<BTreeMap<&str, f64>> = Vec::new();
    // EarlyStopper (common.py) state
    let (patience, min_delta) = (10usize, 0.001f64);
    let (mut best, mut best_epoch, mut wait) = (f64::INFINITY, -1i64, 0usize);
    let mut best_model: Option<Net> = None;
    let mut perm: Vec<i64> = (0..n as i64).collect();

    let probe = Probe::start();
    for epoch in 0..epochs {
        let t = Instant::now();
        perm.shuffle(&mut rng);
        let mut total = 0.0f64;
        let mut i = 0;
        while i < n {
            let j = (i + batch).min(n);
            let idx = Tensor::<1, Int>::from_data(TensorData::new(perm[i..j].to_vec(), [j - i]), &ad);
            let xb = xt_t.clone().select(0, idx.clone());
            let yb = yt_t.clone().select(0, idx);
            let loss = loss_fn(kind, model.forward(xb), yb);
            let grads = loss.backward();
            let grads = GradientsParams::from_grads(grads, &model);
            model = optim.step(1e-3, model, grads);
            total += loss.into_scalar::<f32>() as f64 * (j - i) as f64; // as torch's loss.item()
            i = j;
        }
        let mut logs = BTreeMap::new();
        logs.insert("loss", total / n as f64);
        if let Some((xv, yv, yv_host)) = &val_t {
            let vm = model.valid();
            let out = vm.forward(xv.clone());
            logs.insert("val_loss", loss_fn(kind, out.clone(), yv.clone()).into_scalar::<f32>() as f64);
            if binary {
                let o: Vec<f32> = out.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                let hits = o.iter().zip(yv_host).filter(|(z, y)| ((**z > 0.0) as u8 as f32) == **y).count();
                logs.insert("val_acc", hits as f64 / o.len() as f64);
            }
        }
        times.push(t.elapsed().as_secs_f64());
        let vl = logs.get("val_loss").copied();
        hist.push(logs);
        if w == "W4" {
            let vl = vl.unwrap();
            wait += 1;
            let improved = vl + min_delta < best;
            if improved {
                best = vl;
                best_epoch = epoch as i64;
                wait = 0;
                best_model = Some(model.valid());
            }
            if !improved && wait >= patience && epoch > 0 {
                break;
            }
        }
    }
    if let Some(bm) = best_model.take() {
        // restore_best_weights=True (kept for fidelity; nothing after this uses the model)
        let _restored = bm;
    }
    let pr = probe.stop();

    let steady = if times.len() > 1 { median(&times[1..]) } else { times[0] };
    let last = hist.last().unwrap();
    let mut rec = json!({
        "engine": format!("burn-{backend}"),
        "workload": w,
        "mode": if a.smoke { "smoke" } else { "full" },
        "seed": seed,
        "startup_s": r(setup_s + times[0] - steady, 4),
        "ms_per_epoch_median": r(steady * 1e3, 3),
        "epochs": times.len(),
        "samples_per_s": r(n as f64 / steady, 1),
        "n_train": n,
        "first_epoch_ms": r(times[0] * 1e3, 3),
        "setup_s": r(setup_s, 4),
        "fit_wall_s": r(pr.wall, 4),
        "fit_wall_excl_startup_s": r(pr.wall - (times[0] - steady), 4),
        "proc_cpu_s": r(pr.proc_cpu_s, 3),
        "machine_busy_frac": r(pr.machine_busy, 3),
        "others_busy_frac": r(pr.others_busy, 3),
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap().split_whitespace().take(3).collect::<Vec<_>>(),
        "final_train_loss": last["loss"],
    });
    let m = rec.as_object_mut().unwrap();
    match w {
        "W1" => {
            m.insert("final_val_metric".into(), json!(last["val_loss"]));
            m.insert("metric".into(), json!("val_mae"));
        }
        "W2" => {
            m.insert("final_val_metric".into(), json!(last["val_acc"]));
            m.insert("metric".into(), json!("val_binary_accuracy"));
            m.insert("final_val_loss".into(), json!(last["val_loss"]));
        }
        "W3" => {
            // Trainable parameters (as torch's requires_grad count): Burn's num_params() also
            // counts BatchNorm's running mean/var, so count weights, biases, gamma and beta.
            let widths = [256usize, 1024, 1024, 1024, 1];
            let params = widths.windows(2).map(|p| p[0] * p[1] + p[1]).sum::<usize>() + 2 * 2 * 1024;
            m.insert("burn_num_params".into(), json!(model.num_params()));
            m.insert("final_val_metric".into(), Value::Null);
            m.insert("metric".into(), Value::Null);
            m.insert("params".into(), json!(params));
            m.insert("achieved_gflops".into(), json!(r(6.0 * params as f64 * n as f64 / steady / 1e9, 2)));
        }
        _ => {
            let be = best_epoch.max(0) as usize;
            m.insert("final_val_metric".into(), json!(best));
            m.insert("metric".into(), json!("best_val_loss"));
            m.insert("best_epoch".into(), json!(best_epoch + 1));
            m.insert("val_acc_at_best".into(), json!(hist[be]["val_acc"]));
            let minv = hist.iter().map(|h| h["val_loss"]).fold(f64::INFINITY, f64::min);
            m.insert("min_val_loss".into(), json!(minv));
        }
    }
    m.insert("process".into(), process.clone());
    m.insert("epoch_ms".into(), json!(times.iter().map(|t| r(t * 1e3, 3)).collect::<Vec<_>>()));
    rec
}

fn parse_args() -> Args {
    let mut a = Args {
        workloads: vec!["W1".into(), "W2".into(), "W3".into(), "W4".into()],
        backends: vec!["flex".into()],
        seeds: vec![0],
        epochs_w3: None,
        smoke: false,
        out: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |s: &str| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>();
    while i < argv.len() {
        let v = || argv.get(i + 1).cloned().expect("missing value");
        match argv[i].as_str() {
            "--workloads" => {
                a.workloads = list(&v());
                i += 1;
            }
            "--backends" => {
                a.backends = list(&v());
                i += 1;
            }
            "--seeds" => {
                a.seeds = list(&v()).iter().map(|s| s.parse().unwrap()).collect();
                i += 1;
            }
            "--epochs-w3" => {
                a.epochs_w3 = Some(v().parse().unwrap());
                i += 1;
            }
            "--out" => {
                a.out = Some(v());
                i += 1;
            }
            "--smoke" => a.smoke = true,
            "-h" | "--help" => {
                println!("burn-peer [--workloads W1,W2,W3,W4] [--backends flex,wgpu] [--seeds 0] [--epochs-w3 N] [--smoke] [--out FILE.jsonl]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    a
}

fn main() {
    let a = parse_args();
    let mut recs = Vec::new();
    let mut out = a.out.as_ref().map(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap());
    for backend in &a.backends {
        let t = Instant::now();
        let base = make_device(backend);
        let warm = process_warmup(&base);
        let process = json!({
            "burn": BURN_VERSION,
            "backend": backend,
            "rayon_threads": rayon_threads(),
            "device_init_plus_warmup_s": r(t.elapsed().as_secs_f64(), 3),
            "process_warmup_s": r(warm, 3),
        });
        for &seed in &a.seeds {
            for w in &a.workloads {
                let rec = run(w, seed, backend, &base, &process, &a);
                let line = rec.to_string();
                println!("{line}");
                if let Some(f) = out.as_mut() {
                    writeln!(f, "{line}").unwrap();
                }
                recs.push(rec);
            }
        }
    }
    // Human table (stderr so stdout stays JSON lines).
    eprintln!();
    eprintln!("| engine | workload | seed | epochs | startup s | ms/epoch (median 2..N) | samples/s | quality |");
    eprintln!("|---|---|---|---|---|---|---|---|");
    for r in &recs {
        let q = match r["workload"].as_str().unwrap() {
            "W1" => format!("val MAE {:.3}", r["final_val_metric"].as_f64().unwrap()),
            "W2" => format!("val acc {:.3}", r["final_val_metric"].as_f64().unwrap()),
            "W3" => format!("{} GFLOP/s ({} params)", r["achieved_gflops"], r["params"]),
            _ => format!(
                "best val loss {:.3} at epoch {}, {} epochs run",
                r["final_val_metric"].as_f64().unwrap(),
                r["best_epoch"],
                r["epochs"]
            ),
        };
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r["engine"].as_str().unwrap(),
            r["workload"].as_str().unwrap(),
            r["seed"],
            r["epochs"],
            r["startup_s"],
            r["ms_per_epoch_median"],
            r["samples_per_s"],
            q
        );
    }
}

fn rayon_threads() -> Value {
    match std::env::var("RAYON_NUM_THREADS") {
        Ok(v) => json!(v),
        Err(_) => {
            json!(format!("default ({} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)))
        }
    }
}

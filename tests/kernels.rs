//! Every GPU kernel against its CPU twin on fresh random inputs, over many shapes.
//! Outputs are poisoned with NaN first, so an element a kernel forgets to write fails.

mod common;

use common::{gpu, random_vec, rng, F32};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use wgfit::testing::{
    member_table as mt, ActivationArgs, ActivationGradArgs, Args, BatchNormArgs, ConfusionArgs, DropoutArgs,
    GatherArgs, GradNormsArgs, Kernel, KernelHarness, LossArgs, MatmulArgs, Ones, PenaltyArgs, UpdateArgs,
};
use wgfit::{Activation, Device, Loss};

/// Runs `args`' kernel on GPU and CPU with the same inputs; returns each device's final buffers.
fn both(inputs: &[Vec<f32>], args: Args) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let run = |device: &Device| {
        let mut h = KernelHarness::new(device);
        let ids: Vec<_> = inputs.iter().map(|d| h.buffer(d).unwrap()).collect();
        h.run(&ids, args).unwrap();
        ids.iter().map(|&id| h.read(id).unwrap()).collect::<Vec<_>>()
    };
    (run(&gpu()), run(&Device::cpu()))
}

fn nan(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

/// A member-table row for a plan of `layers` layers: active, with `set` applied.
fn table_row(layers: usize, set: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut row = vec![0.0f32; mt::width(layers)];
    row[mt::ACTIVE] = 1.0;
    set(&mut row);
    row
}

/// Runs `args`' kernel once for `per_member.len()` members together (member m's buffers hold
/// `per_member[m]`), on the GPU and the CPU; checks every member's every buffer against the same
/// kernel run for that member alone on the CPU (exactly on the CPU, within `tol` on the GPU), so
/// a kernel that reads or writes another member's block, or ignores its member offset, fails.
fn check_members(what: &str, per_member: &[Vec<Vec<f32>>], args: Args, tol: common::Tol) {
    let k = per_member.len();
    let bindings = per_member[0].len();
    let run = |device: &Device, members: &[Vec<Vec<f32>>]| {
        let mut h = KernelHarness::with_members(device, members.len());
        let ids: Vec<_> = (0..bindings)
            .map(|b| h.buffer(&members.iter().flat_map(|m| m[b].clone()).collect::<Vec<f32>>()).unwrap())
            .collect();
        h.run(&ids, args).unwrap();
        ids.iter().map(|&id| h.read(id).unwrap()).collect::<Vec<_>>()
    };
    let gpu_all = run(&gpu(), per_member);
    let cpu_all = run(&Device::cpu(), per_member);
    for (m, inputs) in per_member.iter().enumerate() {
        let alone = run(&Device::cpu(), std::slice::from_ref(inputs));
        for b in 0..bindings {
            let len = inputs[b].len();
            let block = |all: &Vec<Vec<f32>>| all[b][m * len..(m + 1) * len].to_vec();
            let (c, g) = (block(&cpu_all), block(&gpu_all));
            let same = c.iter().zip(&alone[b]).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{what}: member {m} of {k}, buffer {b}: CPU with members differs from alone");
            tol.check(&format!("{what}: member {m} of {k}, buffer {b}, GPU vs alone"), &g, &alone[b]);
        }
    }
}

/// Every pipeline the GPU backend can make on this adapter compiles (the Matmul variants are
/// otherwise compiled lazily, some by no test): each kernel, the vec4 Matmul variants, the subgroup
/// ones and the texture form with its two pack kernels where the adapter has them. And a broken
/// dense.wgsl (the dense-source override) fails to compile, with an error rather than a panic.
#[test]
fn every_pipeline_compiles_on_the_gpu() {
    use wgfit::testing::{compile_all_pipelines, gpu_matmul_paths};
    let device = gpu();
    let names = compile_all_pipelines(&device).unwrap();
    let (subgroups, textures) = gpu_matmul_paths(&device);
    eprintln!("{} pipelines (subgroups {subgroups}, textures {textures}): {names:?}", names.len());
    // Kernels, then matmul_nn/nt/tn, matmul_tiled and matmul_tiled128 each in 8 pipelines (vec4
    // loads of neither operand, A, B or both; checked and unchecked module), the three subgroup
    // twins, matmul_tex with pack and pack_t.
    let expected = Kernel::ALL.len() + 3 + 2 * 8 + if subgroups { 3 } else { 0 } + if textures { 1 + 2 } else { 0 };
    assert_eq!(names.len(), expected, "{names:?}");
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    for tiled in ["matmul_tiled", "matmul_tiled128"] {
        for pipeline in ["", " a4", " b4", " a4 b4", " unchecked", " a4 b4 unchecked"] {
            let name = format!("{tiled}{pipeline}");
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    for k in Kernel::ALL {
        assert!(names.iter().any(|n| n == k.entry()), "{} missing from {names:?}", k.entry());
    }
    assert!(!textures || subgroups, "texture operands come with the subgroup kernels");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("dense.wgsl");
    std::fs::write(&broken, "@compute @workgroup_size(8, 8)\nfn matmul(this is not WGSL\n").unwrap();
    let device = Device::gpu_with(wgfit::GpuOptions::from_env().dense_wgsl(&broken)).unwrap();
    match compile_all_pipelines(&device) {
        Err(wgfit::Error::Gpu(e)) => assert!(e.contains("compiling kernel matmul"), "{e}"),
        other => panic!("a broken dense.wgsl must fail to compile: {other:?}"),
    }
}

/// Matmul modes: forward (ones column, activation), dX (transposed B, derivative),
/// dW (transposed A, ones row).
#[derive(Clone, Copy, Debug)]
enum Mode {
    Forward(u32),
    InputGrad(u32),
    WeightGrad,
    Plain,
}

/// f64 reference of `matmul` written from its doc comment, independent of both devices.
#[allow(clippy::too_many_arguments)]
fn reference(p: &MatmulArgs, a: &[f32], b: &[f32], aux: &[f32]) -> Vec<f64> {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for kk in 0..k {
                let av = if p.ones == Ones::LastColumn && kk == k - 1 || p.ones == Ones::LastRow && i == m - 1 {
                    1.0
                } else {
                    a[(p.a_off as usize) + i * p.a_rs as usize + kk * p.a_cs as usize] as f64
                };
                s += av * b[p.b_off as usize + kk * p.b_rs as usize + j * p.b_cs as usize] as f64;
            }
            let mut v = common::act64(s, p.activation);
            let y = aux.get(i * n + j).copied().unwrap_or(0.0) as f64;
            v *= common::dact64_from_output(y, p.derivative);
            c[i * n + j] = v;
        }
    }
    c
}

fn check_matmul(rows: usize, inw: usize, outw: usize, mode: Mode, seed: u64) {
    let mut r = rng(seed);
    // A batch x in, W (in x out) followed by b (out) at an offset, as in the parameter buffer.
    let w_off = r.random_range(0..5usize);
    let x = random_vec(&mut r, rows * inw, -1.0, 1.0);
    let dz = random_vec(&mut r, rows * outw, -1.0, 1.0);
    let wb = random_vec(&mut r, w_off + (inw + 1) * outw, -1.0, 1.0);
    let (p, a, b, aux, c_len) = match mode {
        Mode::Forward(act) => (
            MatmulArgs {
                m: rows as u32,
                n: outw as u32,
                k: inw as u32 + 1,
                a_rs: inw as u32,
                a_cs: 1,
                b_off: w_off as u32,
                b_rs: outw as u32,
                b_cs: 1,
                ones: Ones::LastColumn,
                activation: Activation::ALL[act as usize],
                ..Default::default()
            },
            x.clone(),
            wb.clone(),
            vec![0.0],
            rows * outw,
        ),
        Mode::InputGrad(dact) => {
            let below: Vec<f32> = random_vec(&mut r, rows * inw, -0.5, 1.0)
                .into_iter()
                .map(|v| if dact == 2 { v.abs() } else { v })
                .collect();
            (
                MatmulArgs {
                    m: rows as u32,
                    n: inw as u32,
                    k: outw as u32,
                    a_rs: outw as u32,
                    a_cs: 1,
                    b_off: w_off as u32,
                    b_rs: 1,
                    b_cs: outw as u32,
                    derivative: Activation::ALL[dact as usize],
                    ..Default::default()
                },
                dz.clone(),
                wb.clone(),
                below,
                rows * inw,
            )
        }
        Mode::WeightGrad => (
            MatmulArgs {
                m: inw as u32 + 1,
                n: outw as u32,
                k: rows as u32,
                a_rs: 1,
                a_cs: inw as u32,
                b_rs: outw as u32,
                b_cs: 1,
                c_off: 3,
                ones: Ones::LastRow,
                ..Default::default()
            },
            x.clone(),
            dz.clone(),
            vec![0.0],
            (inw + 1) * outw + 3,
        ),
        Mode::Plain => (
            MatmulArgs {
                m: rows as u32,
                n: outw as u32,
                k: inw as u32,
                a_rs: inw as u32,
                a_cs: 1,
                b_off: w_off as u32,
                b_rs: outw as u32,
                b_cs: 1,
                ..Default::default()
            },
            x.clone(),
            wb.clone(),
            vec![0.0],
            rows * outw,
        ),
    };
    let (g, c) = both(&[a.clone(), b.clone(), nan(c_len), aux.clone()], Args::Matmul(p));
    let off = p.c_off as usize;
    let what = format!("matmul {mode:?} rows={rows} in={inw} out={outw}");
    let want = reference(&p, &a, &b, &aux);
    // Sums of k products of values in [-1, 1]: f32 rounding grows with k near cancellations.
    let tol = common::Tol { rel: 1e-4, abs: 4e-7 * p.k as f64 };
    tol.check64(&format!("{what} cpu vs f64"), &c[2][off..], &want);
    tol.check(&format!("{what} gpu vs cpu"), &g[2][off..], &c[2][off..]);
    // Nothing outside the output region was touched.
    assert!(g[2][..off].iter().all(|v| v.is_nan()), "{what}: wrote before c_off");
}

#[test]
fn matmul_matches_cpu_twin_on_many_shapes() {
    let sizes = [1usize, 2, 3, 4, 7, 8, 9, 16, 31, 33, 64, 65];
    let mut r = rng(7);
    for case in 0..96u64 {
        let rows = *sizes.choose(&mut r).unwrap();
        let inw = *sizes.choose(&mut r).unwrap();
        let outw = *sizes.choose(&mut r).unwrap();
        let mode = [
            Mode::Forward(0),
            Mode::Forward(1),
            Mode::Forward(2),
            Mode::Forward(3),
            Mode::Forward(4),
            Mode::Forward(5),
            Mode::Forward(6),
            Mode::InputGrad(1),
            Mode::InputGrad(2),
            Mode::InputGrad(0),
            Mode::InputGrad(3),
            Mode::InputGrad(4),
            Mode::InputGrad(5),
            Mode::InputGrad(6),
            Mode::WeightGrad,
            Mode::Plain,
        ][case as usize % 16];
        check_matmul(rows, inw, outw, mode, 1000 + case);
    }
}

#[test]
fn matmul_large_and_non_tile_multiple() {
    for (i, mode) in [Mode::Forward(1), Mode::InputGrad(1), Mode::WeightGrad].into_iter().enumerate() {
        check_matmul(257, 513, 129, mode, 50 + i as u64);
        check_matmul(721 % 300, 8, 512, mode, 60 + i as u64);
    }
}

#[test]
fn gather_follows_the_row_order() {
    for (rows_all, xw, yw, batch, start, shuffled) in [
        (10usize, 3usize, 1usize, 4usize, 2usize, true),
        (1, 1, 1, 1, 0, false),
        (300, 33, 2, 257, 40, true),
        (50, 8, 0, 50, 0, false),
    ] {
        let mut r = rng(rows_all as u64);
        let x = random_vec(&mut r, rows_all * xw, -5.0, 5.0);
        let y = random_vec(&mut r, (rows_all * yw).max(1), -5.0, 5.0);
        let mut order: Vec<u32> = (0..rows_all as u32).collect();
        order.shuffle(&mut r);
        let order_f: Vec<f32> = order.iter().map(|&v| f32::from_bits(v)).collect();
        let p = GatherArgs {
            rows: batch.min(rows_all - start) as u32,
            x_cols: xw as u32,
            y_cols: yw as u32,
            start: start as u32,
            shuffled,
        };
        let rows = p.rows as usize;
        let (g, c) = both(&[x.clone(), y.clone(), order_f, nan(rows * xw), nan((rows * yw).max(1))], Args::Gather(p));
        for row in 0..rows {
            let src = if shuffled { order[start + row] as usize } else { start + row };
            assert_eq!(&c[3][row * xw..(row + 1) * xw], &x[src * xw..(src + 1) * xw]);
            if yw > 0 {
                assert_eq!(&c[4][row * yw..(row + 1) * yw], &y[src * yw..(src + 1) * yw]);
            }
        }
        assert_eq!(g[3], c[3]);
        if yw > 0 {
            assert_eq!(g[4], c[4]);
        }
    }
}

#[test]
fn activations_forward_and_backward() {
    for total in [1usize, 7, 256, 1000, 70_001] {
        for act in 0..Activation::ALL.len() as u32 {
            let mut r = rng(total as u64 + act as u64);
            let src = random_vec(&mut r, total, -4.0, 4.0);
            let aux = random_vec(&mut r, total, 0.0, 1.0);
            let activation = Activation::ALL[act as usize];
            let p = Args::ActivationForward(ActivationArgs { len: total as u32, activation });
            let (g, c) = both(&[src.clone(), nan(total), aux.clone()], p);
            F32.check("activation_forward", &g[1], &c[1]);
            let want: Vec<f64> = src.iter().map(|&v| common::act64(v as f64, activation)).collect();
            F32.check64(&format!("{activation:?} forward vs f64"), &c[1], &want);
            // The derivative from outputs of both signs (aux is the layer below's output).
            let aux: Vec<f32> = aux.iter().map(|&v| 2.0 * v - 0.5).collect();
            let p = Args::ActivationBackward(ActivationGradArgs { len: total as u32, derivative: activation });
            let (g, c) = both(&[src.clone(), nan(total), aux.clone()], p);
            F32.check(&format!("{activation:?} backward"), &g[1], &c[1]);
            let want: Vec<f64> = src
                .iter()
                .zip(&aux)
                .map(|(&s, &y)| s as f64 * common::dact64_from_output(y as f64, activation))
                .collect();
            F32.check64(&format!("{activation:?} backward vs f64"), &c[1], &want);
        }
    }
}

fn loss_case(loss: u32, act: u32, rows: usize, n: usize, metrics: u32, training: bool, seed: u64) {
    let mut r = rng(seed);
    let pred: Vec<f32> = match loss {
        2 => random_vec(&mut r, rows * n, 0.0, 1.0),
        _ => random_vec(&mut r, rows * n, -3.0, 3.0),
    };
    let y: Vec<f32> = match loss {
        2 | 3 => (0..rows * n).map(|_| f32::from(u8::from(r.random_bool(0.5)))).collect(),
        _ => random_vec(&mut r, rows * n, -3.0, 3.0),
    };
    let acc0 = random_vec(&mut r, 8, 0.0, 1.0);
    let p = LossArgs {
        rows: rows as u32,
        cols: n as u32,
        loss: [
            Loss::MeanAbsoluteError,
            Loss::MeanSquaredError,
            Loss::BinaryCrossentropy { from_logits: false },
            Loss::BinaryCrossentropy { from_logits: true },
        ][loss as usize],
        output_activation: Activation::ALL[act as usize],
        metrics,
        write_gradient: training,
        accumulate: true,
        slot: 4,
        weighted: false,
        weighted_metrics: false,
    };
    let grad0 = if training { nan(rows * n) } else { vec![0.0; rows * n] };
    let (g, c) = both(&[pred.clone(), y.clone(), grad0, acc0.clone()], Args::Loss(p));
    let what = format!("loss {loss} act {act} rows {rows} n {n} metrics {metrics:b}");
    F32.check(&format!("{what} grad"), &g[2], &c[2]);
    F32.check(&format!("{what} sums"), &g[3], &c[3]);
    // Independent f64 sums of the per-sample loss.
    let mut want = 0.0f64;
    for (&pv, &t) in pred.iter().zip(&y) {
        let (pv, t) = (pv as f64, t as f64);
        want += match loss {
            0 => (pv - t).abs(),
            1 => (pv - t).powi(2),
            2 => {
                let pc = pv.clamp(1e-7, 1.0 - 1.1920929e-7);
                -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln())
            }
            _ => pv.max(0.0) - pv * t + (1.0 + (-pv.abs()).exp()).ln(),
        };
    }
    let expect = acc0[4] as f64 + want / n as f64;
    common::Tol { rel: 1e-4, abs: 1e-4 }.check64(&format!("{what} loss sum vs f64"), &c[3][4..5], &[expect]);
    assert_eq!(&c[3][..4], &acc0[..4], "{what}: wrote outside its slots");
}

#[test]
fn loss_and_metrics_match() {
    let mut seed = 0;
    for (loss, act) in [(0u32, 0u32), (1, 0), (1, 1), (2, 2), (3, 0), (0, 2)] {
        for (rows, n) in [(1usize, 1usize), (7, 1), (256, 1), (513, 1), (33, 3), (1024, 1)] {
            for metrics in [0u32, 1, 3, 7] {
                if metrics & 4 != 0 && loss < 2 {
                    continue;
                }
                seed += 1;
                loss_case(loss, act, rows, n, metrics, seed % 2 == 0, seed);
            }
        }
    }
}

/// The offsets of `variables` weight tensors splitting `total` parameters unevenly (as u32 bits),
/// as the plan's shared offsets table holds them.
fn offsets_of(total: usize, variables: usize) -> Vec<f32> {
    let mut o: Vec<u32> = (0..variables).map(|j| (total * j * j / (variables * variables)) as u32).collect();
    o.push(total as u32);
    o.into_iter().map(f32::from_bits).collect()
}

/// A change to a member-table row (one optimizer option).
type RowEdit = fn(&mut [f32]);

#[test]
fn optimizers_match() {
    for total in [1usize, 7, 300, 70_000] {
        let mut r = rng(total as u64);
        let param = random_vec(&mut r, total, -1.0, 1.0);
        let grad = random_vec(&mut r, total, -1.0, 1.0);
        let m = random_vec(&mut r, total, -0.1, 0.1);
        let v = random_vec(&mut r, total, 0.003, 0.1);
        // Centered RMSprop's mean gradient: its square stays below v, as it does in training.
        let s = random_vec(&mut r, total, -0.05, 0.05);
        let norms = vec![0.3, 2.5, 0.7];
        let update = UpdateArgs { len: total as u32, lr_at: 2, variables: 3 };
        let row = table_row(1, |r| {
            r[mt::ONE_MINUS_BETA_1] = 0.1;
            r[mt::ONE_MINUS_BETA_2] = 0.001;
            r[mt::EPSILON] = 1e-7;
        });
        let lrs = vec![0.5, 0.5, 0.01, 0.02, 0.7];
        let inputs =
            [param.clone(), grad.clone(), m.clone(), v.clone(), row.clone(), lrs.clone(), s.clone(), norms.clone()];
        let (g, c) = both(&inputs, Args::Adam(update));
        for i in [0, 2, 3, 6] {
            F32.check("adam", &g[i], &c[i]);
        }
        assert_eq!(c[6], s, "adam without amsgrad wrote the third slot");
        // The update against its formula (f64), with lr 0.01 from lrs[2].
        let want: Vec<f64> = (0..total)
            .map(|i| {
                let (p, g, m, v) = (param[i] as f64, grad[i] as f64, m[i] as f64, v[i] as f64);
                let (m1, v1) = (0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g);
                p - 0.01 * m1 / (v1.sqrt() + 1e-7)
            })
            .collect();
        common::Tol { rel: 1e-4, abs: 1e-6 }.check64("adam vs f64", &c[0], &want);
        // A member that stopped is left as it is.
        let stopped = table_row(1, |r| r[mt::ACTIVE] = 0.0);
        let inputs =
            [param.clone(), grad.clone(), m.clone(), v.clone(), stopped, lrs.clone(), s.clone(), norms.clone()];
        for args in [Args::Adam(update), Args::Sgd(update), Args::Rmsprop(update)] {
            let (g, c) = both(&inputs, args);
            assert_eq!((&g[0], &c[0], &c[2], &g[6]), (&param, &param, &m, &s), "an inactive member changed");
        }
        // Every rule with each option: amsgrad, weight decay (undecorated rate 0.02 at lrs[3]),
        // clipvalue, global_clipnorm (the norms' sum 3.5: a scale of 0.5 / sqrt(3.5)).
        let variants: [(&str, RowEdit); 5] = [
            ("plain", |_| {}),
            ("amsgrad", |r| r[mt::AMSGRAD] = 1.0),
            ("weight decay", |r| r[mt::WEIGHT_DECAY] = 0.3),
            ("clipvalue", |r| r[mt::CLIP_VALUE] = 0.25),
            ("global_clipnorm", |r| r[mt::GLOBAL_CLIP_NORM] = 0.5),
        ];
        for (what, set) in variants {
            for (momentum, nesterov, centered) in [(0.0f32, false, false), (0.9, false, true), (0.9, true, false)] {
                let row = table_row(1, |r| {
                    r[mt::ONE_MINUS_BETA_1] = 0.1;
                    r[mt::ONE_MINUS_BETA_2] = 0.01;
                    r[mt::EPSILON] = 1e-3;
                    r[mt::RHO] = 0.8;
                    r[mt::ONE_MINUS_RHO] = 0.2;
                    r[mt::MOMENTUM] = momentum;
                    r[mt::NESTEROV] = f32::from(u8::from(nesterov));
                    r[mt::CENTERED] = f32::from(u8::from(centered));
                    set(r);
                });
                let inputs =
                    [param.clone(), grad.clone(), m.clone(), v.clone(), row, lrs.clone(), s.clone(), norms.clone()];
                for args in [Args::Adam(update), Args::Sgd(update), Args::Rmsprop(update)] {
                    let (g, c) = both(&inputs, args);
                    for i in [0, 2, 3, 6] {
                        F32.check(&format!("{:?} {what} momentum {momentum}", args.kernel()), &g[i], &c[i]);
                    }
                }
            }
        }
    }
}

#[test]
fn grad_norms_match() {
    for (total, variables) in [(1usize, 1usize), (7, 2), (300, 3), (70_000, 4), (1000, 40)] {
        let mut r = rng(total as u64 + 7);
        let grad = random_vec(&mut r, total, -1.0, 1.0);
        let offsets = offsets_of(total, variables);
        for (clip, c) in [(false, 0.0f32), (true, 0.5), (true, 1e6)] {
            let row = table_row(1, |r| r[mt::CLIP_NORM] = c);
            let args = Args::GradNorms(GradNormsArgs { len: total as u32, variables: variables as u32, clip });
            let inputs = [grad.clone(), nan(variables), offsets.clone(), row];
            let (g, cpu) = both(&inputs, args);
            F32.check("grad_norms gradient", &g[0], &cpu[0]);
            F32.check("grad_norms sums", &g[1], &cpu[1]);
            // Against f64: each segment's sum of squares, and clipnorm's scaling.
            for j in 0..variables {
                let (lo, hi) = (offsets[j].to_bits() as usize, offsets[j + 1].to_bits() as usize);
                let sum: f64 = grad[lo..hi].iter().map(|&x| x as f64 * x as f64).sum();
                common::Tol { rel: 1e-4, abs: 1e-6 }.check64("sum of squares", &cpu[1][j..=j], &[sum]);
                let scale = if clip { c as f64 / sum.sqrt().max(c as f64) } else { 1.0 };
                let want: Vec<f64> = grad[lo..hi].iter().map(|&x| x as f64 * scale).collect();
                common::Tol { rel: 1e-4, abs: 1e-6 }.check64("clipnorm", &cpu[0][lo..hi], &want);
            }
        }
    }
}

#[test]
fn dropout_masks_are_identical_on_both_devices() {
    for (total, rate) in [(1usize, 0.5f32), (7, 0.3), (1000, 0.1), (65_537, 0.9), (300, 0.0)] {
        for step in [0u32, 1, 12345] {
            let mut r = rng(total as u64 + step as u64);
            let src = random_vec(&mut r, total, 0.5, 2.0);
            let aux = random_vec(&mut r, total, -1.0, 1.0);
            // The member's step count before the epoch (table) plus the step in the epoch (args).
            let p = DropoutArgs {
                len: total as u32,
                apply_mask: true,
                own_seed: None,
                step: step - step / 2,
                layer: 3,
                derivative: Activation::Relu,
            };
            let row = table_row(4, |r| {
                r[mt::SEED] = f32::from_bits(42);
                r[mt::STEP] = f32::from_bits(step / 2);
                r[mt::DROPOUT + 6] = rate;
                r[mt::DROPOUT + 7] = 1.0 / (1.0 - rate);
            });
            let (g, c) = both(&[src.clone(), nan(total), row.clone()], Args::DropoutForward(p));
            assert_eq!(g[1], c[1], "dropout_forward total {total} rate {rate}: masks differ");
            for (i, (&out, &x)) in c[1].iter().zip(&src).enumerate() {
                let keep = wgfit::testing::random_unit(42, step, 3, i as u32) >= rate;
                assert_eq!(out, if keep { x * (1.0 / (1.0 - rate)) } else { 0.0 }, "dropout at {i}");
            }
            let (g, c) = both(&[src.clone(), nan(total), aux.clone(), row.clone()], Args::DropoutBackward(p));
            assert_eq!(g[1], c[1], "dropout_backward total {total} rate {rate}: masks differ");
            // A layer's own seed wins over the member's.
            let own = DropoutArgs { own_seed: Some(7), ..p };
            let (g, c) = both(&[src.clone(), nan(total), row.clone()], Args::DropoutForward(own));
            assert_eq!(g[1], c[1], "dropout_forward with its own seed: masks differ");
            // Inference is the identity.
            let identity = DropoutArgs { apply_mask: false, ..p };
            let (g, _) = both(&[src.clone(), nan(total), row.clone()], Args::DropoutForward(identity));
            assert_eq!(g[1], src);
        }
    }
}

#[test]
fn dropout_statistics() {
    let (total, rate) = (200_000usize, 0.3f32);
    let src = vec![1.0f32; total];
    let p =
        DropoutArgs { len: total as u32, apply_mask: true, own_seed: Some(9), step: 4, layer: 1, ..Default::default() };
    let row = table_row(2, |r| {
        r[mt::DROPOUT + 2] = rate;
        r[mt::DROPOUT + 3] = 1.0 / (1.0 - rate);
    });
    let (g, _) = both(&[src, nan(total), row], Args::DropoutForward(p));
    let kept = g[1].iter().filter(|&&v| v != 0.0).count() as f64;
    let expect = total as f64 * (1.0 - rate as f64);
    let sigma = (total as f64 * rate as f64 * (1.0 - rate as f64)).sqrt();
    assert!((kept - expect).abs() < 3.0 * sigma, "kept {kept}, expected {expect} ± {}", 3.0 * sigma);
    let mean = g[1].iter().map(|&v| v as f64).sum::<f64>() / total as f64;
    assert!((mean - 1.0).abs() < 3.0 * sigma / expect * 1.5, "mean activation {mean} not preserved");
}

fn bn_case(rows: usize, n: usize, scale: bool, center: bool, seed: u64) {
    let mut r = rng(seed);
    let x = random_vec(&mut r, rows * n, -3.0, 5.0);
    let param = random_vec(&mut r, 2 * n + 2, 0.5, 1.5);
    let state = random_vec(&mut r, 2 * n + 1, 0.1, 2.0);
    let p = BatchNormArgs {
        rows: rows as u32,
        width: n as u32,
        gamma_off: 1,
        beta_off: 1 + n as u32,
        state_off: 1,
        scale,
        center,
        momentum: 0.99,
        epsilon: 1e-3,
        grad_below: false,
        derivative: Activation::Linear,
    };
    let what = format!("batchnorm rows {rows} n {n} scale {scale} center {center}");
    let active = table_row(1, |_| {});
    let inputs = [x.clone(), param.clone(), state.clone(), nan(rows * n), nan(2 * n), active];
    let (g, c) = both(&inputs, Args::BatchNormTrain(p));
    for i in 2..5 {
        F32.check(&format!("{what} train buffer {i}"), &g[i], &c[i]);
    }
    // A member that stopped normalizes its batch but keeps its moving statistics.
    let stopped = table_row(1, |r| r[mt::ACTIVE] = 0.0);
    let inputs = [x.clone(), param.clone(), state.clone(), nan(rows * n), nan(2 * n), stopped];
    let (g2, c2) = both(&inputs, Args::BatchNormTrain(p));
    assert_eq!((&g2[2], &c2[2]), (&state, &state), "{what}: an inactive member's moving statistics moved");
    F32.check(&format!("{what} train output of an inactive member"), &g2[3], &c[3]);
    let saved = c[4].clone();
    let (g, c) = both(&[x.clone(), param.clone(), state.clone(), nan(rows * n)], Args::BatchNormInfer(p));
    F32.check(&format!("{what} infer"), &g[3], &c[3]);
    let dy = random_vec(&mut r, rows * n, -1.0, 1.0);
    let aux = random_vec(&mut r, rows * n, -1.0, 1.0);
    let bp = BatchNormArgs { grad_below: true, derivative: Activation::Relu, ..p };
    let grads0 = nan(2 * n + 2);
    let (g, c) = both(&[x.clone(), param.clone(), saved, dy, nan(rows * n), grads0, aux], Args::BatchNormBackward(bp));
    F32.check(&format!("{what} dx"), &g[4], &c[4]);
    let written: Vec<usize> =
        (0..n).flat_map(|j| [1 + j, 1 + n + j]).filter(|&i| if i <= n { scale } else { center }).collect();
    let pick = |v: &Vec<f32>| written.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    common::Tol { rel: 1e-4, abs: 1e-5 }.check(&format!("{what} dgamma/dbeta"), &pick(&g[5]), &pick(&c[5]));
}

#[test]
fn batchnorm_matches_on_many_shapes() {
    let mut seed = 0;
    // Widths that are multiples of 4 take the vec4 path (300, 68, 1024: several workgroups); the rest by component.
    // 129 x 520 is past the CPU path's split threshold (columns and rows in parts, one per core).
    for (rows, n) in [
        (2usize, 1usize),
        (2, 7),
        (3, 33),
        (64, 5),
        (257, 31),
        (1024, 3),
        (8192, 2),
        (5, 300),
        (9, 68),
        (33, 1024),
        (129, 520),
    ] {
        for (scale, center) in [(true, true), (false, true), (true, false)] {
            seed += 1;
            bn_case(rows, n, scale, center, seed);
        }
    }
}

/// The member axis: every kernel, run for 3 members at once with different inputs and settings
/// (member table rows: learning rates, betas, momentum, dropout rates and seeds, one member
/// stopped), gives each member exactly what it gives that member alone.
#[test]
fn kernels_run_each_member_independently() {
    let k = 3;
    let mut r = rng(99);
    let mut vecs =
        |len: usize, lo: f32, hi: f32| -> Vec<Vec<f32>> { (0..k).map(|_| random_vec(&mut r, len, lo, hi)).collect() };
    let tol = common::Tol { rel: 1e-4, abs: 1e-5 };
    let (rows, inw, outw) = (9usize, 6usize, 5usize);

    // Matmul: forward with the bias row and relu; dW with its ones row at an offset; dX with a derivative.
    let (x, wb, dz, below) = (
        vecs(rows * inw, -1.0, 1.0),
        vecs(2 + (inw + 1) * outw, -1.0, 1.0),
        vecs(rows * outw, -1.0, 1.0),
        vecs(rows * inw, -0.5, 1.0),
    );
    let forward = MatmulArgs {
        m: rows as u32,
        n: outw as u32,
        k: inw as u32 + 1,
        a_rs: inw as u32,
        a_cs: 1,
        b_off: 2,
        b_rs: outw as u32,
        b_cs: 1,
        ones: Ones::LastColumn,
        activation: Activation::Relu,
        ..Default::default()
    };
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![x[m].clone(), wb[m].clone(), nan(rows * outw), vec![0.0]]).collect();
    check_members("matmul forward", &members, Args::Matmul(forward), tol);
    let weights = MatmulArgs {
        m: inw as u32 + 1,
        n: outw as u32,
        k: rows as u32,
        a_rs: 1,
        a_cs: inw as u32,
        b_rs: outw as u32,
        b_cs: 1,
        c_off: 2,
        ones: Ones::LastRow,
        ..Default::default()
    };
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![x[m].clone(), dz[m].clone(), vec![0.5; 2 + (inw + 1) * outw], vec![0.0]]).collect();
    check_members("matmul dW", &members, Args::Matmul(weights), tol);
    let input_grad = MatmulArgs {
        m: rows as u32,
        n: inw as u32,
        k: outw as u32,
        a_rs: outw as u32,
        a_cs: 1,
        b_off: 2,
        b_rs: 1,
        b_cs: outw as u32,
        derivative: Activation::Relu,
        ..Default::default()
    };
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![dz[m].clone(), wb[m].clone(), nan(rows * inw), below[m].clone()]).collect();
    check_members("matmul dX", &members, Args::Matmul(input_grad), tol);

    // Shapes large and aligned enough for the vec4 and subgroup variants (texture operands are
    // for single models only).
    let (rows2, inw2, outw2) = (40usize, 32usize, 64usize);
    let (x2, w2, dz2) =
        (vecs(rows2 * inw2, -1.0, 1.0), vecs((inw2 + 1) * outw2, -1.0, 1.0), vecs(rows2 * outw2, -1.0, 1.0));
    let big = [
        (
            MatmulArgs {
                m: rows2 as u32,
                n: outw2 as u32,
                k: inw2 as u32 + 1,
                a_rs: inw2 as u32,
                a_cs: 1,
                b_rs: outw2 as u32,
                b_cs: 1,
                ones: Ones::LastColumn,
                activation: Activation::Relu,
                ..Default::default()
            },
            (x2.clone(), w2.clone(), rows2 * outw2),
        ),
        (
            MatmulArgs {
                m: rows2 as u32,
                n: inw2 as u32,
                k: outw2 as u32,
                a_rs: outw2 as u32,
                a_cs: 1,
                b_rs: 1,
                b_cs: outw2 as u32,
                ..Default::default()
            },
            (dz2.clone(), w2.clone(), rows2 * inw2),
        ),
        (
            MatmulArgs {
                m: inw2 as u32 + 1,
                n: outw2 as u32,
                k: rows2 as u32,
                a_rs: 1,
                a_cs: inw2 as u32,
                b_rs: outw2 as u32,
                b_cs: 1,
                ones: Ones::LastRow,
                ..Default::default()
            },
            (x2.clone(), dz2.clone(), (inw2 + 1) * outw2),
        ),
    ];
    for (i, (p, (a, b, c_len))) in big.iter().enumerate() {
        let members: Vec<Vec<Vec<f32>>> =
            (0..k).map(|m| vec![a[m].clone(), b[m].clone(), nan(*c_len), vec![0.0]]).collect();
        check_members(&format!("large matmul {i}"), &members, Args::Matmul(*p), common::Tol { rel: 1e-4, abs: 1e-5 });
    }

    // Gather through each member's own order of a dataset.
    let data_rows = 12;
    let xs = random_vec(&mut rng(5), data_rows * inw, -1.0, 1.0);
    let ys = random_vec(&mut rng(6), data_rows, -1.0, 1.0);
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|m| {
            let mut order: Vec<u32> = (0..data_rows as u32).collect();
            order.shuffle(&mut rng(m as u64));
            let order: Vec<f32> = order.into_iter().map(f32::from_bits).collect();
            vec![xs.clone(), ys.clone(), order, nan(4 * inw), nan(4)]
        })
        .collect();
    let gather = GatherArgs { rows: 4, x_cols: inw as u32, y_cols: 1, start: 3, shuffled: true };
    check_members("gather", &members, Args::Gather(gather), common::Tol { rel: 0.0, abs: 0.0 });
    // Gather in sequence from each member's own rows (a chunk of streamed data, Plan::fill):
    // the source is a member buffer whose blocks differ.
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|m| {
            let xs = random_vec(&mut rng(20 + m as u64), data_rows * inw, -1.0, 1.0);
            let ys = random_vec(&mut rng(40 + m as u64), data_rows * 2, -1.0, 1.0);
            vec![xs, ys, vec![0.0], nan(5 * inw), nan(5 * 2)]
        })
        .collect();
    let gather = GatherArgs { rows: 5, x_cols: inw as u32, y_cols: 2, start: 6, shuffled: false };
    check_members("gather from member rows", &members, Args::Gather(gather), common::Tol { rel: 0.0, abs: 0.0 });

    // Elementwise.
    let len = rows * outw;
    let (src, aux) = (vecs(len, -2.0, 2.0), vecs(len, 0.0, 1.0));
    let members: Vec<Vec<Vec<f32>>> = (0..k).map(|m| vec![src[m].clone(), nan(len), aux[m].clone()]).collect();
    check_members(
        "activation_forward",
        &members,
        Args::ActivationForward(ActivationArgs { len: len as u32, activation: Activation::Sigmoid }),
        tol,
    );
    check_members(
        "activation_backward",
        &members,
        Args::ActivationBackward(ActivationGradArgs { len: len as u32, derivative: Activation::Sigmoid }),
        tol,
    );

    // Dropout: each member its own seed, rate and step count.
    let dropout = DropoutArgs {
        len: len as u32,
        apply_mask: true,
        own_seed: None,
        step: 2,
        layer: 1,
        derivative: Activation::Relu,
    };
    let rows_t: Vec<Vec<f32>> = (0..k)
        .map(|m| {
            table_row(3, |row| {
                row[mt::SEED] = f32::from_bits(100 + m as u32);
                row[mt::STEP] = f32::from_bits(7 * m as u32);
                let rate = [0.0, 0.3, 0.6][m];
                row[mt::DROPOUT + 2] = rate;
                row[mt::DROPOUT + 3] = 1.0 / (1.0 - rate);
            })
        })
        .collect();
    let members: Vec<Vec<Vec<f32>>> = (0..k).map(|m| vec![src[m].clone(), nan(len), rows_t[m].clone()]).collect();
    check_members("dropout_forward", &members, Args::DropoutForward(dropout), tol);
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![src[m].clone(), nan(len), aux[m].clone(), rows_t[m].clone()]).collect();
    check_members("dropout_backward", &members, Args::DropoutBackward(dropout), tol);

    // Loss and metrics into each member's accumulators.
    let (pred, target) = (
        vecs(rows, 0.05, 0.95),
        (0..k).map(|m| (0..rows).map(|i| ((i + m) % 2) as f32).collect()).collect::<Vec<Vec<f32>>>(),
    );
    let loss = LossArgs {
        rows: rows as u32,
        cols: 1,
        loss: Loss::BinaryCrossentropy { from_logits: false },
        output_activation: Activation::Sigmoid,
        metrics: 1,
        write_gradient: true,
        accumulate: true,
        slot: 4,
        weighted: false,
        weighted_metrics: false,
    };
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![pred[m].clone(), target[m].clone(), nan(rows), vec![0.25; 8]]).collect();
    check_members("loss", &members, Args::Loss(loss), tol);

    // Optimizers: each member its learning rate and hyperparameters; member 1 stopped.
    let n = 37;
    let (param, grad, mm, vv) = (vecs(n, -1.0, 1.0), vecs(n, -1.0, 1.0), vecs(n, -0.1, 0.1), vecs(n, 0.003, 0.1));
    let opt_rows: Vec<Vec<f32>> = (0..k)
        .map(|m| {
            table_row(2, |row| {
                row[mt::ACTIVE] = f32::from(u8::from(m != 1));
                row[mt::ONE_MINUS_BETA_1] = [0.1, 0.2, 0.5][m];
                row[mt::ONE_MINUS_BETA_2] = [0.001, 0.01, 0.1][m];
                row[mt::EPSILON] = [1e-7, 1e-3, 1e-5][m];
                row[mt::MOMENTUM] = [0.0, 0.9, 0.5][m];
                row[mt::NESTEROV] = [0.0, 0.0, 1.0][m];
                row[mt::RHO] = [0.9, 0.5, 0.8][m];
                row[mt::ONE_MINUS_RHO] = [0.1, 0.5, 0.2][m];
                row[mt::CENTERED] = [1.0, 0.0, 0.0][m];
                row[mt::AMSGRAD] = [0.0, 1.0, 1.0][m];
                row[mt::WEIGHT_DECAY] = [0.0, 0.1, 0.004][m];
                row[mt::CLIP_VALUE] = [0.0, 0.0, 0.3][m];
                row[mt::GLOBAL_CLIP_NORM] = [1.0, 0.0, 0.0][m];
                row[mt::CLIP_NORM] = [0.0, 0.5, 0.2][m];
            })
        })
        .collect();
    let ss = vecs(n, -0.05, 0.05);
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|m| {
            vec![
                param[m].clone(),
                grad[m].clone(),
                mm[m].clone(),
                vv[m].clone(),
                opt_rows[m].clone(),
                vec![0.1, 0.1, [1e-3, 1e-2, 3e-2][m], [2e-3, 2e-2, 6e-2][m]],
                ss[m].clone(),
                vec![[0.5, 2.0, 1.0][m], 0.25],
            ]
        })
        .collect();
    let update = UpdateArgs { len: n as u32, lr_at: 2, variables: 2 };
    check_members("adam", &members, Args::Adam(update), tol);
    check_members("sgd", &members, Args::Sgd(update), tol);
    check_members("rmsprop", &members, Args::Rmsprop(update), tol);
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![grad[m].clone(), nan(2), offsets_of(n, 2), opt_rows[m].clone()]).collect();
    let norms = GradNormsArgs { len: n as u32, variables: 2, clip: true };
    check_members("grad_norms", &members, Args::GradNorms(norms), tol);

    // BatchNormalization: member 2 stopped (its moving statistics stay).
    let width = 7;
    let (bx, bparam, bstate) =
        (vecs(rows * width, -3.0, 3.0), vecs(2 * width + 1, 0.5, 1.5), vecs(2 * width + 1, 0.1, 2.0));
    let bn = BatchNormArgs {
        rows: rows as u32,
        width: width as u32,
        gamma_off: 1,
        beta_off: 1 + width as u32,
        state_off: 1,
        scale: true,
        center: true,
        momentum: 0.9,
        epsilon: 1e-3,
        grad_below: true,
        derivative: Activation::Relu,
    };
    let bn_rows: Vec<Vec<f32>> =
        (0..k).map(|m| table_row(1, |row| row[mt::ACTIVE] = f32::from(u8::from(m != 2)))).collect();
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|m| {
            vec![
                bx[m].clone(),
                bparam[m].clone(),
                bstate[m].clone(),
                nan(rows * width),
                nan(2 * width),
                bn_rows[m].clone(),
            ]
        })
        .collect();
    check_members("batchnorm_train", &members, Args::BatchNormTrain(bn), tol);
    let members: Vec<Vec<Vec<f32>>> =
        (0..k).map(|m| vec![bx[m].clone(), bparam[m].clone(), bstate[m].clone(), nan(rows * width)]).collect();
    check_members("batchnorm_infer", &members, Args::BatchNormInfer(bn), tol);
    let (saved, dy) = (vecs(2 * width, 0.2, 1.0), vecs(rows * width, -1.0, 1.0));
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|m| {
            vec![
                bx[m].clone(),
                bparam[m].clone(),
                saved[m].clone(),
                dy[m].clone(),
                nan(rows * width),
                vec![0.0; 2 * width + 1],
                bx[m].clone(),
            ]
        })
        .collect();
    check_members("batchnorm_backward", &members, Args::BatchNormBackward(bn), tol);
}

/// The regularizers' kernel against its twin and against f64: the gradient gains
/// l1·sign(w) + 2·l2·w inside its range and nothing outside it (NaN there stays NaN, so a write
/// past the range fails), the loss sum gains rows·penalty and no other slot changes; with
/// several members, each member alone.
#[test]
fn penalty_matches_twin_and_f64() {
    let mut r = rng(41);
    for (case, &(len, offset, l1, l2, training)) in [
        (1usize, 0usize, 0.01f32, 0.0f32, true),
        (7, 3, 0.0, 0.05, true),
        (256, 1, 0.02, 0.03, false),
        (1000, 17, 0.01, 0.01, true),
        (70_001, 5, 0.004, 0.0, true),
    ]
    .iter()
    .enumerate()
    {
        let total = offset + len + 3;
        let mut w = random_vec(&mut r, total, -2.0, 2.0);
        w[offset] = 0.0; // sign(0) = 0, as TensorFlow's gradient of |w|
        let mut g0 = random_vec(&mut r, total, -1.0, 1.0);
        for (i, v) in g0.iter_mut().enumerate() {
            if !(offset..offset + len).contains(&i) {
                *v = f32::NAN;
            }
        }
        let acc0 = random_vec(&mut r, 8, 0.0, 1.0);
        let rows = 1 + case * 13;
        let p = PenaltyArgs {
            offset: offset as u32,
            len: len as u32,
            l1,
            l2,
            rows: rows as u32,
            write_gradient: training,
            slot: 5,
        };
        let (g, c) = both(&[w.clone(), g0.clone(), acc0.clone()], Args::Penalty(p));
        let what = format!("penalty len {len} offset {offset} l1 {l1} l2 {l2}");
        F32.check(&format!("{what} grad"), &g[1][offset..offset + len], &c[1][offset..offset + len]);
        F32.check(&format!("{what} sums"), &g[2], &c[2]);
        for out in [&g, &c] {
            assert!(
                out[1][..offset].iter().chain(&out[1][offset + len..]).all(|v| v.is_nan()),
                "{what}: wrote outside"
            );
            let others = |a: &[f32]| [&a[..5], &a[6..]].concat();
            assert_eq!(others(&out[2]), others(&acc0), "{what}: wrote another slot");
        }
        let (mut grad64, mut sum64) = (Vec::with_capacity(len), 0.0f64);
        for i in offset..offset + len {
            let (v, sign) = (
                w[i] as f64,
                if w[i] > 0.0 {
                    1.0
                } else if w[i] < 0.0 {
                    -1.0
                } else {
                    0.0
                },
            );
            grad64.push(g0[i] as f64 + if training { l1 as f64 * sign + 2.0 * l2 as f64 * v } else { 0.0 });
            sum64 += l1 as f64 * v.abs() + l2 as f64 * v * v;
        }
        common::Tol { rel: 1e-5, abs: 1e-6 }.check64(
            &format!("{what} grad vs f64"),
            &c[1][offset..offset + len],
            &grad64,
        );
        let want = acc0[5] as f64 + rows as f64 * sum64;
        common::Tol { rel: 1e-4, abs: 1e-5 }.check64(&format!("{what} sum vs f64"), &c[2][5..6], &[want]);
    }
    let k = 3;
    let members: Vec<Vec<Vec<f32>>> = (0..k)
        .map(|_| {
            vec![random_vec(&mut r, 41, -1.0, 1.0), random_vec(&mut r, 41, -1.0, 1.0), random_vec(&mut r, 8, 0.0, 1.0)]
        })
        .collect();
    let p = PenaltyArgs { offset: 2, len: 37, l1: 0.01, l2: 0.02, rows: 9, write_gradient: true, slot: 1 };
    check_members("penalty", &members, Args::Penalty(p), common::Tol { rel: 1e-4, abs: 1e-5 });
}

/// The erf behind gelu (shaders/common.wgsl `erf_f32` / `erfc_f32` and their CPU twins) against an
/// independent f64 erf: relative error within 2.5e-7 (about 2 ulp) over [-6, 6] and tiny
/// arguments; erfc relative within 5e-6 down to its 3.95 cutoff (the exp of an f32 log; gelu
/// reads it only in its tail). The GPU's copy is held to the twin through gelu in
/// `activations_forward_and_backward`.
#[test]
fn erf_is_accurate_to_float32() {
    let mut worst = (0.0f64, 0.0f32);
    let grid = (0..=240_000).map(|i| -6.0 + 12.0 * i as f32 / 240_000.0);
    let tiny = (0..200).map(|i| 10f32.powf(-30.0 + 0.15 * i as f32));
    for x in grid.chain(tiny).flat_map(|x| [x, -x]) {
        let want = common::erf64(x as f64);
        if want == 0.0 {
            continue;
        }
        let rel = (wgfit::testing::erf(x) as f64 - want).abs() / want.abs();
        if rel > worst.0 {
            worst = (rel, x);
        }
        if (0.0..3.9).contains(&x) {
            let want_c = 1.0 - want;
            let rel_c = (wgfit::testing::erfc(x) as f64 - want_c).abs() / want_c;
            assert!(rel_c < 5e-6, "erfc({x}) = {}, want {want_c} (relative error {rel_c:e})", wgfit::testing::erfc(x));
        }
    }
    assert!(worst.0 < 2.5e-7, "erf's worst relative error {:e} at x = {}", worst.0, worst.1);
    assert_eq!(wgfit::testing::erf(0.0), 0.0);
    assert_eq!(wgfit::testing::erf(10.0), 1.0);
    assert_eq!(wgfit::testing::erfc(-10.0), 2.0);
}

/// Random predictions in [-0.2, 1.2] with some exactly on a threshold (0.5, k / 199, 0, 1), and
/// targets 0, 1 or another non-zero value (positive, as Keras's bool cast).
fn confusion_inputs(r: &mut rand::rngs::StdRng, len: usize) -> (Vec<f32>, Vec<f32>) {
    let pred = (0..len)
        .map(|_| match r.random_range(0..6) {
            0 => 0.5,
            1 => r.random_range(0..200) as f32 / 199.0,
            2 => *[0.0f32, 1.0].choose(r).unwrap(),
            _ => r.random_range(-0.2..1.2),
        })
        .collect();
    let y = (0..len).map(|_| *[0.0f32, 1.0, 1.0, 0.0, 2.0].choose(r).unwrap()).collect();
    (pred, y)
}

/// Keras's AUC thresholds as (t, s) pairs (n of them), then `plain` thresholds as (t, 0).
fn threshold_pairs(n: usize, plain: &[f32]) -> Vec<f32> {
    let mut thr = Vec::new();
    for i in 0..n {
        thr.extend([if i == 0 { -1.0 } else { i as f32 }, (n - 1) as f32]);
    }
    for &t in plain {
        thr.extend([t, 0.0]);
    }
    thr
}

/// The confusion kernel against its twin (exactly: counts are integers) and against a count
/// written here, over batch shapes, threshold lists longer than a workgroup, overwrite and
/// accumulate, NaN-poisoned outputs (an unwritten count fails); then 3 members at once.
#[test]
fn confusion_matches_twin_and_a_direct_count() {
    let mut r = rng(131);
    for &(rows, cols, n, plain, slot) in &[
        (1usize, 1usize, 0usize, &[0.5f32][..], 0usize),
        (37, 1, 200, &[0.5][..], 0),
        (64, 3, 200, &[][..], 12),
        (300, 2, 3, &[0.5, 0.0, 0.9][..], 4),
        (5, 7, 400, &[0.25][..], 0),
    ] {
        let (pred, y) = confusion_inputs(&mut r, rows * cols);
        let thr = threshold_pairs(n, plain);
        let t = thr.len() / 2;
        for accumulate in [false, true] {
            let acc0 = if accumulate {
                random_vec(&mut r, slot + 4 * t, 0.0, 50.0).iter().map(|v| v.round()).collect()
            } else {
                nan(slot + 4 * t)
            };
            let acc0: Vec<f32> = if accumulate { acc0 } else { [vec![7.0; slot], nan(4 * t)].concat() };
            let args = ConfusionArgs {
                rows: rows as u32,
                cols: cols as u32,
                thresholds: t as u32,
                slot: slot as u32,
                accumulate,
                ..Default::default()
            };
            let (g, c) = both(&[pred.clone(), y.clone(), thr.clone(), acc0.clone()], Args::Confusion(args));
            let what = format!("confusion {rows}x{cols}, {n} AUC + {plain:?} thresholds, accumulate {accumulate}");
            let exact = common::Tol { rel: 0.0, abs: 0.0 };
            exact.check(&format!("{what}: GPU vs CPU"), &g[3], &c[3]);
            // The direct count: Keras's bucket rule for the AUC list, `p > t` for the others.
            let mut want = acc0[..slot].to_vec();
            for i in 0..t {
                let mut q = [0.0f32; 4];
                for (&p, &target) in pred.iter().zip(&y) {
                    let above = if i < n {
                        i > 0 && i < n - 1 && (p.clamp(0.0, 1.0) * (n - 1) as f32).ceil() - 1.0 >= i as f32
                    } else {
                        p > plain[i - n]
                    };
                    q[match (above, target != 0.0) {
                        (true, true) => 0,
                        (true, false) => 1,
                        (false, false) => 2,
                        (false, true) => 3,
                    }] += 1.0;
                }
                if i == 0 && n > 0 {
                    // The first AUC threshold (-1e-7) counts every value as above.
                    let (pos, neg) = (q[0] + q[3], q[1] + q[2]);
                    q = [pos, neg, 0.0, 0.0];
                }
                for (k, v) in q.iter().enumerate() {
                    want.push(if accumulate { acc0[slot + 4 * i + k] + v } else { *v });
                }
            }
            exact.check(&format!("{what}: CPU vs a direct count"), &c[3], &want);
        }
    }
    let members: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| {
            let (pred, y) = confusion_inputs(&mut r, 40 * 2);
            vec![pred, y, threshold_pairs(200, &[0.5]), nan(4 * 201 + 8)]
        })
        .collect();
    let args = ConfusionArgs { rows: 40, cols: 2, thresholds: 201, slot: 8, accumulate: false, ..Default::default() };
    let per_member: Vec<Vec<Vec<f32>>> = members
        .into_iter()
        .map(|mut m| {
            m[3][..8].fill(3.0);
            m
        })
        .collect();
    check_members("confusion", &per_member, Args::Confusion(args), common::Tol { rel: 0.0, abs: 0.0 });
}

/// A weighted dataset's target rows carry the sample weight after the targets: the confusion
/// kernel reads the targets past it, and with weight_counts each value adds its row's weight
/// (Keras's weighted_metrics), against the twin and a weighted count in f64.
#[test]
fn confusion_reads_weighted_rows() {
    let mut r = rng(7);
    let (rows, cols) = (53usize, 3usize);
    let (pred, targets) = confusion_inputs(&mut r, rows * cols);
    let weights = random_vec(&mut r, rows, 0.0, 2.0);
    let y: Vec<f32> =
        (0..rows).flat_map(|i| targets[i * cols..(i + 1) * cols].iter().copied().chain([weights[i]])).collect();
    let thr = threshold_pairs(0, &[0.5, 0.1]);
    for weight_counts in [false, true] {
        let args = ConfusionArgs {
            rows: rows as u32,
            cols: cols as u32,
            thresholds: 2,
            slot: 0,
            accumulate: false,
            weighted: true,
            weight_counts,
        };
        let (g, c) = both(&[pred.clone(), y.clone(), thr.clone(), nan(8)], Args::Confusion(args));
        let what = format!("weighted confusion, weight_counts {weight_counts}");
        common::Tol { rel: 1e-6, abs: 1e-6 }.check(&format!("{what}: GPU vs CPU"), &g[3], &c[3]);
        let mut want = vec![0.0f64; 8];
        for (i, t) in [0.5f32, 0.1].iter().enumerate() {
            for (e, &p) in pred.iter().enumerate() {
                let w = if weight_counts { weights[e / cols] as f64 } else { 1.0 };
                let k = match (p > *t, targets[e] != 0.0) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, false) => 2,
                    (false, true) => 3,
                };
                want[4 * i + k] += w;
            }
        }
        common::Tol { rel: 1e-5, abs: 1e-5 }.check64(&format!("{what}: CPU vs f64"), &c[3], &want);
    }
}

//! The CPU twins of the WGSL kernels: same names, the same typed arguments (`device::args`),
//! buffers in the order of `Kernel::bindings`. Plain loops over f32, written to be held against
//! the shaders line by line. Each runs for one member: its buffers are that member's blocks
//! (the backend hands them over), as a WGSL kernel's are after its member offsets.

use std::ops::Range;

use multiversion::multiversion;

use super::parallel::{columns_in_parts, in_parts, rows_in_parts};

use crate::device::args::{
    member_table as mt, ActivationArgs, ActivationGradArgs, BatchNormArgs, ConfusionArgs, DropoutArgs, GatherArgs,
    GradNormsArgs, LossArgs, MatmulArgs, NormalizationArgs, Ones, PenaltyArgs, SoftmaxArgs, UpdateArgs,
};

// Keras's selu constants, written as shaders/common.wgsl writes them (the same f32 values).
#[allow(clippy::excessive_precision)]
const SELU_SCALE: f32 = 1.0507009873554805;
#[allow(clippy::excessive_precision)]
const SELU_ALPHA: f32 = 1.6732632423543772;
const LEAKY_SLOPE: f32 = 0.2;

/// erf(x) / x-based erf below 0.875, as `erf_small` in shaders/common.wgsl.
#[allow(clippy::excessive_precision)]
fn erf_small(x: f32) -> f32 {
    let s = x * x;
    let mut p = 8.776225877227262e-05f32;
    p = p * s - 0.0008232922991737723;
    p = p * s + 0.00520850857719779;
    p = p * s - 0.026862235739827156;
    p = p * s + 0.11283744126558304;
    p = p * s - 0.37612637877464294;
    p = p * s + 1.128379225730896;
    x * p
}

/// erfc(t) for t >= 0.875, as `erfc_tail` in shaders/common.wgsl.
#[allow(clippy::excessive_precision)]
fn erfc_tail(t: f32) -> f32 {
    if t >= 3.95 {
        return 0.0;
    }
    let mut q = 1.63782999607065e-06f32;
    q = q * t - 4.602995250024833e-05;
    q = q * t + 0.0005962118739262223;
    q = q * t - 0.004755112808197737;
    q = q * t + 0.02640349231660366;
    q = q * t - 0.11004029214382172;
    q = q * t - 0.6318776607513428;
    q = q * t - 1.1301977634429932;
    q = q * t + 0.000309971917886287;
    q.exp()
}

/// erf to float32 accuracy (relative error below 2.5e-7), as `erf_f32` in shaders/common.wgsl.
pub(crate) fn erf(x: f32) -> f32 {
    if x.abs() < 0.875 {
        return erf_small(x);
    }
    (1.0 - erfc_tail(x.abs())).copysign(x)
}

/// erfc, as `erfc_f32` in shaders/common.wgsl (gelu's lower tail, where 1 + erf would cancel).
pub(crate) fn erfc(x: f32) -> f32 {
    if x.abs() < 0.875 {
        return 1.0 - erf_small(x);
    }
    let e = erfc_tail(x.abs());
    if x > 0.0 {
        e
    } else {
        2.0 - e
    }
}

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
#[allow(clippy::excessive_precision)]
const INV_SQRT_2PI: f32 = 0.3989422804014327;
#[allow(clippy::excessive_precision)]
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;

/// log(1 + e) as shaders/common.wgsl's `log1p_f32` (Goldberg's trick).
fn log1p(e: f32) -> f32 {
    let u = 1.0 + e;
    if u == 1.0 {
        return e;
    }
    u.ln() * (e / (u - 1.0))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn act_forward(x: f32, act: u32) -> f32 {
    match act {
        1 => x.max(0.0),
        2 => 1.0 / (1.0 + (-x).exp()),
        3 => x.tanh(),
        4 if x > 0.0 => x,
        4 => x.exp() - 1.0,
        5 if x > 0.0 => SELU_SCALE * x,
        5 => SELU_SCALE * (SELU_ALPHA * (x.exp() - 1.0)),
        6 if x >= 0.0 => x,
        6 => LEAKY_SLOPE * x,
        7 => x.max(0.0) + log1p((-x.abs()).exp()),
        8 => x * sigmoid(x),
        9 => 0.5 * x * erfc(-x * SQRT_HALF),
        10 => x * sigmoid(2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)),
        _ => x,
    }
}

/// The derivative from the output, as shaders/common.wgsl writes it (TensorFlow's choices at 0);
/// for silu and gelu (codes 8 to 10) `y` is the pre-activation (see `act_grad_from_output` there).
fn act_grad_from_output(y: f32, act: u32) -> f32 {
    match act {
        1 if y > 0.0 => 1.0,
        1 => 0.0,
        2 => y * (1.0 - y),
        3 => 1.0 - y * y,
        4 if y < 0.0 => y + 1.0,
        4 => 1.0,
        5 if y < 0.0 => y + SELU_SCALE * SELU_ALPHA,
        5 => SELU_SCALE,
        6 if y > 0.0 => 1.0,
        6 => LEAKY_SLOPE,
        7 if y.abs() < 0.01 => y * (1.0 - y * (0.5 - y * (1.0 / 6.0))),
        7 => 1.0 - (-y).exp(),
        8 => {
            let s = sigmoid(y);
            s + y * s * (1.0 - s)
        }
        9 => 0.5 * erfc(-y * SQRT_HALF) + y * INV_SQRT_2PI * (-0.5 * y * y).exp(),
        10 => {
            let g = sigmoid(2.0 * SQRT_2_OVER_PI * (y + GELU_CUBIC * y * y * y));
            g + 2.0 * y * g * (1.0 - g) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * y * y)
        }
        _ => 1.0,
    }
}

fn mix32(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

/// Counter-based random bits, identical to `random_bits` in shaders/common.wgsl.
pub(crate) fn random_bits(seed: u32, step: u32, layer: u32, index: u32) -> u32 {
    mix32(random_prefix(seed, step, layer) ^ index)
}

/// `random_bits`' state before the index: its first three rounds, which a launch shares by all
/// its values (so a loop over them hashes once per value, not four times).
fn random_prefix(seed: u32, step: u32, layer: u32) -> u32 {
    let mut h = mix32(seed ^ 0x9e3779b9);
    h = mix32(h ^ step);
    mix32(h ^ layer.wrapping_mul(0x85ebca6b))
}

/// Uniform in [0, 1) from the top 24 bits of random bits, as `random_unit` in shaders/common.wgsl.
fn unit_from_bits(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16777216.0)
}

/// Uniform in [0, 1) from the top 24 bits, identical to `random_unit` in shaders/common.wgsl.
pub(crate) fn random_unit(seed: u32, step: u32, layer: u32, index: u32) -> f32 {
    unit_from_bits(random_bits(seed, step, layer, index))
}

pub(crate) fn gather(
    p: &GatherArgs,
    x_all: &[f32],
    y_all: &[f32],
    order: &[f32],
    x_batch: &mut [f32],
    y_batch: &mut [f32],
) {
    let (n, k) = (p.x_cols as usize, p.y_cols as usize);
    for r in 0..p.rows as usize {
        let mut src = p.start as usize + r;
        if p.shuffled {
            src = order[src].to_bits() as usize;
        }
        x_batch[r * n..(r + 1) * n].copy_from_slice(&x_all[src * n..(src + 1) * n]);
        y_batch[r * k..(r + 1) * k].copy_from_slice(&y_all[src * k..(src + 1) * k]);
    }
}

/// Element (i, kk) of matmul's A view, with the implicit row or column of ones (`aug`).
fn load_a(p: &MatmulArgs, a: &[f32], i: usize, kk: usize) -> f32 {
    let (m, k) = (p.m as usize, p.k as usize);
    if p.ones == Ones::LastColumn && kk == k - 1 {
        return 1.0;
    }
    if p.ones == Ones::LastRow && i == m - 1 {
        return 1.0;
    }
    a[p.a_off as usize + i * p.a_rs as usize + kk * p.a_cs as usize]
}

pub(crate) fn matmul(p: &MatmulArgs, a: &[f32], b: &[f32], c: &mut [f32], aux: &[f32]) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let mut row = vec![0.0f32; n];
    for i in 0..m {
        row.iter_mut().for_each(|v| *v = 0.0);
        for kk in 0..k {
            let av = load_a(p, a, i, kk);
            let b0 = p.b_off as usize + kk * p.b_rs as usize;
            for (j, acc) in row.iter_mut().enumerate() {
                *acc += av * b[b0 + j * p.b_cs as usize];
            }
        }
        for (j, &acc) in row.iter().enumerate() {
            let mut v = act_forward(acc, p.activation.code());
            if p.derivative.code() != 0 {
                v *= act_grad_from_output(aux[i * n + j], p.derivative.code());
            }
            c[p.c_off as usize + i * n + j] = v;
        }
    }
}

/// The Matmul epilogue over a finished m x n product: activation, then the derivative factor.
#[multiversion(targets("x86_64+avx2+avx"))]
pub(crate) fn epilogue(p: &MatmulArgs, out: &mut [f32], aux: &[f32]) {
    match p.activation.code() {
        0 => {}
        1 => out.iter_mut().for_each(|v| *v = v.max(0.0)),
        act => out.iter_mut().for_each(|v| *v = act_forward(*v, act)),
    }
    match p.derivative.code() {
        0 => {}
        1 => out.iter_mut().zip(aux).for_each(|(v, &y)| *v *= if y > 0.0 { 1.0 } else { 0.0 }),
        d => out.iter_mut().zip(aux).for_each(|(v, &y)| *v *= act_grad_from_output(y, d)),
    }
}

pub(crate) fn activation_forward(p: &ActivationArgs, src: &[f32], dst: &mut [f32], _aux: &[f32]) {
    for i in 0..p.len as usize {
        dst[i] = act_forward(src[i], p.activation.code());
    }
}

pub(crate) fn activation_backward(p: &ActivationGradArgs, src: &[f32], dst: &mut [f32], aux: &[f32]) {
    for i in 0..p.len as usize {
        dst[i] = src[i] * act_grad_from_output(aux[i], p.derivative.code());
    }
}

/// (loss, d loss / d p) of one value for the elementwise losses (shaders/loss.wgsl: elementwise_loss).
fn elementwise_loss(code: u32, pv: f32, t: f32) -> (f32, f32) {
    const EPS: f32 = 1e-7;
    let d = pv - t;
    match code {
        0 => (
            d.abs(),
            if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            },
        ),
        1 => (d * d, 2.0 * d),
        2 => {
            let pc = pv.clamp(EPS, 1.0 - EPS);
            let l = -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln());
            let g = if pv > EPS && pv < 1.0 - EPS { (pc - t) / (pc * (1.0 - pc)) } else { 0.0 };
            (l, g)
        }
        _ => (pv.max(0.0) - pv * t + (1.0 + (-pv.abs()).exp()).ln(), 1.0 / (1.0 + (-pv).exp()) - t),
    }
}

/// The kernel's sums of one invocation: the loss, then each requested metric in bit order.
struct Sums<'a> {
    sums: &'a mut [f32; 9],
    slot: usize,
    metrics: u32,
}

impl Sums<'_> {
    fn metric(&mut self, bit: u32, v: f32) {
        if self.metrics & bit != 0 {
            self.sums[self.slot] += v;
            self.slot += 1;
        }
    }
}

/// The layout and the two paths are documented in shaders/loss.wgsl.
pub(crate) fn loss(p: &LossArgs, pred: &[f32], y: &[f32], grad: &mut [f32], acc: &mut [f32]) {
    // Same summation order as the kernel: 256 strided partial sums, then a tree.
    let mut partial = [[0.0f32; 9]; 256];
    let row_path = p.row_path();
    for (tid, sums) in partial.iter_mut().enumerate() {
        if row_path {
            loss_rows(p, tid, pred, y, grad, sums);
        } else {
            loss_elements(p, tid, pred, y, grad, sums);
        }
    }
    let mut s = 128;
    while s > 0 {
        let (low, high) = partial.split_at_mut(s);
        for (into, from) in low.iter_mut().zip(high.iter()) {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
        s >>= 1;
    }
    let nvals = 1 + p.metrics.count_ones() as usize;
    let slot = p.slot as usize;
    let divisor = if row_path { 1.0 } else { p.cols as f32 };
    for j in 0..nvals {
        let per_sample = partial[0][j] / divisor;
        if p.accumulate {
            acc[slot + j] += per_sample;
        } else {
            acc[slot + j] = per_sample;
        }
    }
    if p.weighted {
        let wsum = partial[0][WEIGHT_SUM] / divisor;
        if p.accumulate {
            acc[slot + nvals] += wsum;
        } else {
            acc[slot + nvals] = wsum;
        }
    }
}

/// Where the weight sum waits in the partial sums (after the loss and seven metrics).
const WEIGHT_SUM: usize = 8;

/// A row's sample weight (1 unweighted) and the weight its metric values take.
fn row_weight(p: &LossArgs, y: &[f32], r: usize) -> (f32, f32) {
    if !p.weighted {
        return (1.0, 1.0);
    }
    let yw = p.y_cols() as usize;
    let w = y[r * (yw + 1) + yw];
    (w, if p.weighted_metrics { w } else { 1.0 })
}

/// The twin of `penalty` (shaders/penalty.wgsl), in its summation order.
pub(crate) fn penalty(p: &PenaltyArgs, param: &[f32], grad: &mut [f32], acc: &mut [f32]) {
    let (off, len) = (p.offset as usize, p.len as usize);
    let (w, g) = (&param[off..off + len], &mut grad[off..off + len]);
    let mut partial = [0.0f32; 256];
    for (tid, sum) in partial.iter_mut().enumerate() {
        for i in (tid..len).step_by(256) {
            let v = w[i];
            // WGSL's sign: 0 at 0 (f32::signum is 1 there), as TensorFlow's gradient of |w|.
            let sign = if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            };
            if p.write_gradient {
                g[i] += p.l1 * sign + 2.0 * p.l2 * v;
            }
            *sum += p.l1 * v.abs() + p.l2 * v * v;
        }
    }
    let mut s = 128;
    while s > 0 {
        for i in 0..s {
            partial[i] += partial[i + s];
        }
        s >>= 1;
    }
    acc[p.slot as usize] += partial[0] * p.rows as f32;
}

/// Twin of `confusion` (shaders/confusion.wgsl): per threshold i, the batch's (TP, FP, TN, FN)
/// at `acc[slot + 4 i..]`, every value counted in order (f32 counts, exact per batch).
pub(crate) fn confusion(p: &ConfusionArgs, pred: &[f32], y: &[f32], thr: &[f32], acc: &mut [f32]) {
    let count = (p.rows * p.cols) as usize;
    let cols = p.cols as usize;
    let y_stride = cols + usize::from(p.weighted);
    for i in 0..p.thresholds as usize {
        let (t, s) = (thr[2 * i], thr[2 * i + 1]);
        let mut c = [0.0f32; 4];
        for (e, &v) in pred[..count].iter().enumerate() {
            let r = e / cols;
            // As clip(p, 0, 1) * (n - 1) > i: Keras's bucket rule for evenly spaced thresholds.
            let above = if s > 0.0 { v.clamp(0.0, 1.0) * s > t } else { v > t };
            let positive = y[r * y_stride + e % cols] != 0.0;
            let w = if p.weight_counts { y[r * y_stride + cols] } else { 1.0 };
            let k = match (above, positive) {
                (true, true) => 0,
                (true, false) => 1,
                (false, false) => 2,
                (false, true) => 3,
            };
            c[k] += w;
        }
        let a = &mut acc[p.slot as usize + 4 * i..p.slot as usize + 4 * i + 4];
        for (dst, v) in a.iter_mut().zip(c) {
            *dst = if p.accumulate { *dst + v } else { v };
        }
    }
}

fn loss_elements(p: &LossArgs, tid: usize, pred: &[f32], y: &[f32], grad: &mut [f32], sums: &mut [f32; 9]) {
    let count = (p.rows * p.cols) as usize;
    let loss = p.loss.code();
    let inv = 1.0 / count as f32;
    let cols = p.cols as usize;
    for e in (tid..count).step_by(256) {
        let (r, c) = (e / cols, e % cols);
        let (w, mw) = row_weight(p, y, r);
        let t = if p.weighted { y[r * (cols + 1) + c] } else { y[e] };
        let pv = pred[e];
        let d = pv - t;
        let (l, g) = elementwise_loss(loss, pv, t);
        if p.write_gradient {
            let mut gz = g * inv * w;
            if loss != 3 {
                gz *= act_grad_from_output(pv, p.output_activation.code());
            }
            grad[e] = gz;
        }
        sums[0] += l * w;
        sums[WEIGHT_SUM] += w;
        let mut s = Sums { sums: &mut *sums, slot: 1, metrics: p.metrics };
        s.metric(1, d.abs() * mw);
        s.metric(2, d * d * mw);
        s.metric(4, (if (if pv > 0.5 { 1.0 } else { 0.0 }) == t { 1.0 } else { 0.0 }) * mw);
    }
}

fn loss_rows(p: &LossArgs, tid: usize, pred: &[f32], y: &[f32], grad: &mut [f32], sums: &mut [f32; 9]) {
    const EPS: f32 = 1e-7;
    let (n, yw) = (p.cols as usize, p.y_cols() as usize);
    let code = p.loss.code();
    let fused = p.fused_softmax();
    let ls = p.loss.label_smoothing();
    let inv_rows = 1.0 / p.rows as f32;
    let clip = |v: f32| v.clamp(EPS, 1.0 - EPS);
    for r in (tid..p.rows as usize).step_by(256) {
        let pr = &pred[r * n..(r + 1) * n];
        let ys = yw + usize::from(p.weighted);
        let yr = &y[r * ys..r * ys + yw];
        let (w, mw) = row_weight(p, y, r);
        let smoothed = |j: usize| yr[j] * (1.0 - ls) + ls / n as f32;
        let (mut mx, mut am) = (pr[0], 0usize);
        for (j, &v) in pr.iter().enumerate().skip(1) {
            if v > mx {
                mx = v;
                am = j;
            }
        }
        let mut target = 0usize;
        if yw == 1 && n > 1 {
            target = (yr[0].max(0.0) as u32 as usize).min(n - 1);
        } else {
            let mut ty = yr[0];
            for (j, &v) in yr.iter().enumerate().skip(1) {
                if v > ty {
                    ty = v;
                    target = j;
                }
            }
        }
        let (mut sum_exp, mut sum_p, mut sum_clip, mut sum_t) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (j, &v) in pr.iter().enumerate() {
            sum_exp += (v - mx).exp();
            sum_p += v;
            sum_clip += clip(v);
            if code == 4 || code == 5 {
                sum_t += smoothed(j);
            }
        }
        let lse = mx + sum_exp.ln();
        let (mut tm, mut l, mut emae, mut emse, mut ebin) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (j, &v) in pr.iter().enumerate() {
            match code {
                4 => {
                    let q = v / sum_p;
                    let t = smoothed(j);
                    l -= t * clip(q).ln();
                    if q > EPS && q < 1.0 - EPS {
                        tm += t;
                    }
                }
                5 => l += smoothed(j) * (lse - v),
                _ => {}
            }
            if code <= 3 {
                let t = yr[j];
                l += elementwise_loss(code, v, t).0;
                emae += (v - t).abs();
                emse += (v - t) * (v - t);
                ebin += if (if v > 0.5 { 1.0 } else { 0.0 }) == t { 1.0 } else { 0.0 };
            }
        }
        let pt = pr[target];
        match code {
            6 => l = sum_clip.ln() - clip(pt).ln(),
            7 => l = lse - pt,
            _ => {}
        }
        if code <= 3 {
            l /= n as f32;
        }
        if p.write_gradient {
            for (j, &v) in pr.iter().enumerate() {
                let hit = if j == target { 1.0 } else { 0.0 };
                let mut scale = inv_rows;
                let g = match code {
                    4 if fused => v * sum_t - smoothed(j),
                    4 => {
                        let q = v / sum_p;
                        let own = if q > EPS && q < 1.0 - EPS { smoothed(j) / q } else { 0.0 };
                        (tm - own) / sum_p
                    }
                    5 => (v - lse).exp() * sum_t - smoothed(j),
                    6 if fused => v - hit,
                    6 if v > EPS && v < 1.0 - EPS => 1.0 / sum_clip - hit / v,
                    6 => 0.0,
                    7 => (v - lse).exp() - hit,
                    _ => {
                        scale = inv_rows / n as f32;
                        elementwise_loss(code, v, yr[j]).1
                    }
                };
                let mut gz = g * scale * w;
                if !fused && code != 3 {
                    gz *= act_grad_from_output(v, p.output_activation.code());
                }
                grad[r * n + j] = gz;
            }
        }
        let above = pr.iter().filter(|&&v| v > pt).count() as u32;
        let in_top_k = if above < crate::metrics::Metric::TOP_K { 1.0 } else { 0.0 };
        let nf = n as f32;
        sums[0] += l * w;
        sums[WEIGHT_SUM] += w;
        let mut s = Sums { sums: &mut *sums, slot: 1, metrics: p.metrics };
        s.metric(1, emae / nf * mw);
        s.metric(2, emse / nf * mw);
        s.metric(4, ebin / nf * mw);
        s.metric(8, (if am == target { 1.0 } else { 0.0 }) * mw);
        s.metric(16, (if am as f32 == yr[0] { 1.0 } else { 0.0 }) * mw);
        s.metric(32, in_top_k * mw);
        s.metric(64, in_top_k * mw);
    }
}

/// Softmax over each row, in place (shaders/softmax.wgsl).
pub(crate) fn softmax_forward(p: &SoftmaxArgs, v: &mut [f32]) {
    let n = p.cols as usize;
    for row in v[..p.rows as usize * n].chunks_mut(n.max(1)) {
        let mx = row.iter().skip(1).fold(row[0], |m, &x| m.max(x));
        let mut s = 0.0f32;
        for x in row.iter_mut() {
            *x = (*x - mx).exp();
            s += *x;
        }
        let inv = 1.0 / s;
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The gradient through a softmax, in place: dx = y * (g - sum(g * y)) per row.
pub(crate) fn softmax_backward(p: &SoftmaxArgs, g: &mut [f32], out: &[f32]) {
    let n = p.cols as usize;
    for r in 0..p.rows as usize {
        let (gr, yr) = (&mut g[r * n..(r + 1) * n], &out[r * n..(r + 1) * n]);
        let mut dot = 0.0f32;
        for (a, b) in gr.iter().zip(yr) {
            dot += a * b;
        }
        for (a, b) in gr.iter_mut().zip(yr) {
            *a = b * (*a - dot);
        }
    }
}

/// The gradient value `g` clipped as the member's row says (clipvalue; global_clipnorm by the
/// variables' sums of squares in `norms`, Keras's `clip_by_global_norm`), as `clipped_grad` in
/// shaders/optim.wgsl. clipnorm was applied to the gradient by `grad_norms`.
struct Clip {
    value: f32,
    scale: Option<f32>,
}

impl Clip {
    fn new(p: &UpdateArgs, table: &[f32], norms: &[f32]) -> Clip {
        let c = table[mt::GLOBAL_CLIP_NORM];
        let scale = (c > 0.0).then(|| {
            let total = norms[..p.variables as usize].iter().fold(0.0f32, |a, &x| a + x);
            let norm = total.sqrt();
            // Keras adds norm - norm: NaN for a non-finite norm, so the update poisons the weights
            // and the fit reports divergence instead of silently skipping the step.
            if norm.is_finite() {
                c * (1.0 / norm).min(1.0 / c)
            } else {
                f32::NAN
            }
        });
        Clip { value: table[mt::CLIP_VALUE], scale }
    }

    fn is_identity(&self) -> bool {
        self.value <= 0.0 && self.scale.is_none()
    }

    #[inline]
    fn apply(&self, mut g: f32) -> f32 {
        if self.value > 0.0 {
            // WGSL's clamp: min(max(g, lo), hi).
            g = g.max(-self.value).min(self.value);
        }
        if let Some(s) = self.scale {
            g *= s;
        }
        g
    }
}

/// Keras's decoupled weight decay before an update: w - w * wd * lr (lr undecorated, at
/// `lrs[lr_at + 1]`).
#[inline]
fn decayed(w: f32, wd: f32, lr: f32) -> f32 {
    if wd == 0.0 {
        w
    } else {
        w - w * wd * lr
    }
}

/// What every optimizer's update reads alike from a member's row: the step's learning rate,
/// the decoupled weight decay with its undecorated rate, and the gradient's clipping.
struct UpdateBase {
    lr: f32,
    wd: f32,
    raw_lr: f32,
    clip: Clip,
}

impl UpdateBase {
    fn new(p: &UpdateArgs, table: &[f32], lrs: &[f32], norms: &[f32]) -> UpdateBase {
        let wd = table[mt::WEIGHT_DECAY];
        UpdateBase {
            lr: lrs[p.lr_at as usize],
            wd,
            raw_lr: if wd == 0.0 { 0.0 } else { lrs[p.lr_at as usize + 1] },
            clip: Clip::new(p, table, norms),
        }
    }

    /// The clipped gradient and the decayed weight an update starts from.
    #[inline]
    fn start(&self, g: f32, w: f32) -> (f32, f32) {
        (self.clip.apply(g), decayed(w, self.wd, self.raw_lr))
    }
}

/// One Adam update's constants for a member, read once from its row.
struct AdamStep {
    base: UpdateBase,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    amsgrad: bool,
}

/// `table` is the member's row of the member table; `lrs` its learning rates of the epoch (the
/// step's at `lr_at`, its undecorated one at `lr_at + 1`); `s` amsgrad's maximum of v; `norms`
/// the variables' gradient sums of squares (global_clipnorm). Each value's update is its own,
/// so large layers update in parts (`parallel::in_parts`), one per core, with the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam(
    p: &UpdateArgs,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    table: &[f32],
    lrs: &[f32],
    s: &mut [f32],
    norms: &[f32],
) {
    if table[mt::ACTIVE] == 0.0 {
        return;
    }
    let step = AdamStep {
        base: UpdateBase::new(p, table, lrs, norms),
        one_minus_beta_1: table[mt::ONE_MINUS_BETA_1],
        one_minus_beta_2: table[mt::ONE_MINUS_BETA_2],
        epsilon: table[mt::EPSILON],
        amsgrad: table[mt::AMSGRAD] != 0.0,
    };
    let n = p.len as usize;
    // Plain Adam (no clipping, decay or amsgrad) keeps a loop without their branches.
    if step.base.clip.is_identity() && step.base.wd == 0.0 && !step.amsgrad {
        in_parts(n, (&mut param[..n], &grad[..n], &mut m[..n], &mut v[..n]), |_, (w, g, m, v)| {
            adam_plain(&step, w, g, m, v)
        });
    } else {
        in_parts(n, (&mut param[..n], &grad[..n], &mut m[..n], &mut v[..n], &mut s[..n]), |_, (w, g, m, v, s)| {
            adam_full(&step, w, g, m, v, s)
        });
    }
}

/// Zipped slices: no bounds checks, so the loop vectorizes (same operations in the same order).
#[multiversion(targets("x86_64+avx2+avx"))]
fn adam_plain(step: &AdamStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((w, &g), mi), vi) in param.iter_mut().zip(grad).zip(m).zip(v) {
        let m1 = *mi + (g - *mi) * step.one_minus_beta_1;
        let v1 = *vi + (g * g - *vi) * step.one_minus_beta_2;
        *mi = m1;
        *vi = v1;
        *w -= (m1 * step.base.lr) / (v1.sqrt() + step.epsilon);
    }
}

#[multiversion(targets("x86_64+avx2+avx"))]
fn adam_full(step: &AdamStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &mut [f32]) {
    for ((((w, &g), mi), vi), si) in param.iter_mut().zip(grad).zip(m).zip(v).zip(s) {
        let (g, w0) = step.base.start(g, *w);
        let m1 = *mi + (g - *mi) * step.one_minus_beta_1;
        let v1 = *vi + (g * g - *vi) * step.one_minus_beta_2;
        *mi = m1;
        *vi = v1;
        let vd = if step.amsgrad {
            let vhat = si.max(v1);
            *si = vhat;
            vhat
        } else {
            v1
        };
        *w = w0 - (m1 * step.base.lr) / (vd.sqrt() + step.epsilon);
    }
}

/// Keras 3's SGD (momentum, nesterov); each value's update is its own, so large layers update
/// in parts (`parallel::in_parts`), one per core, with the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd(
    p: &UpdateArgs,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    _v: &mut [f32],
    table: &[f32],
    lrs: &[f32],
    _s: &mut [f32],
    norms: &[f32],
) {
    if table[mt::ACTIVE] == 0.0 {
        return;
    }
    let step = SgdStep {
        base: UpdateBase::new(p, table, lrs, norms),
        momentum: table[mt::MOMENTUM],
        nesterov: table[mt::NESTEROV] != 0.0,
    };
    let n = p.len as usize;
    // Without momentum `m` is not read or written (its buffer may be shorter).
    let m = if step.momentum == 0.0 { &mut m[..0] } else { &mut m[..n] };
    in_parts(n, (&mut param[..n], &grad[..n], m), |_, (w, g, m)| sgd_span(&step, w, g, m));
}

/// One SGD update's constants for a member.
struct SgdStep {
    base: UpdateBase,
    momentum: f32,
    nesterov: bool,
}

#[multiversion(targets("x86_64+avx2+avx"))]
fn sgd_span(step: &SgdStep, param: &mut [f32], grad: &[f32], m: &mut [f32]) {
    let lr = step.base.lr;
    for i in 0..param.len() {
        let (g, w) = step.base.start(grad[i], param[i]);
        if step.momentum == 0.0 {
            param[i] = w - lr * g;
            continue;
        }
        let mi = step.momentum * m[i] - lr * g;
        m[i] = mi;
        if step.nesterov {
            // Keras's association: w + (momentum m - lr g).
            param[i] = w + (step.momentum * mi - lr * g);
        } else {
            param[i] = w + mi;
        }
    }
}

/// Keras 3's RMSprop (epsilon inside the root; centered's mean gradient in `s`; momentum's
/// accumulated increments in `m`); large layers update in parts, as Adam.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rmsprop(
    p: &UpdateArgs,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    table: &[f32],
    lrs: &[f32],
    s: &mut [f32],
    norms: &[f32],
) {
    if table[mt::ACTIVE] == 0.0 {
        return;
    }
    let step = RmspropStep {
        base: UpdateBase::new(p, table, lrs, norms),
        rho: table[mt::RHO],
        one_minus_rho: table[mt::ONE_MINUS_RHO],
        momentum: table[mt::MOMENTUM],
        epsilon: table[mt::EPSILON],
        centered: table[mt::CENTERED] != 0.0,
    };
    let n = p.len as usize;
    // `m` is read only with momentum, `s` only when centered (their buffers may be shorter).
    let m = if step.momentum > 0.0 { &mut m[..n] } else { &mut m[..0] };
    let s = if step.centered { &mut s[..n] } else { &mut s[..0] };
    in_parts(n, (&mut param[..n], &grad[..n], m, &mut v[..n], s), |_, (w, g, m, v, s)| {
        rmsprop_span(&step, w, g, m, v, s)
    });
}

/// One RMSprop update's constants for a member.
struct RmspropStep {
    base: UpdateBase,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    centered: bool,
}

#[multiversion(targets("x86_64+avx2+avx"))]
fn rmsprop_span(step: &RmspropStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &mut [f32]) {
    for i in 0..param.len() {
        let (g, w) = step.base.start(grad[i], param[i]);
        let vi = step.rho * v[i] + step.one_minus_rho * (g * g);
        v[i] = vi;
        let denominator = if step.centered {
            let si = step.rho * s[i] + step.one_minus_rho * g;
            s[i] = si;
            vi - si * si + step.epsilon
        } else {
            vi + step.epsilon
        };
        let increment = (step.base.lr * g) / denominator.sqrt();
        if step.momentum > 0.0 {
            let mi = step.momentum * m[i] + increment;
            m[i] = mi;
            param[i] = w - mi;
        } else {
            param[i] = w - increment;
        }
    }
}

/// Each variable's gradient sum of squares (offsets as u32 bits in `offsets`), summed as the
/// WGSL's workgroup does (256 strided partial sums, then a halving tree); with `clip`, each
/// variable's gradient scaled by the member's clipnorm (Keras's `_clip_by_norm`).
pub(crate) fn grad_norms(p: &GradNormsArgs, grad: &mut [f32], norms: &mut [f32], offsets: &[f32], table: &[f32]) {
    let active = table[mt::ACTIVE] != 0.0;
    let c = table[mt::CLIP_NORM];
    for j in 0..p.variables as usize {
        let (lo, hi) = (offsets[j].to_bits() as usize, offsets[j + 1].to_bits() as usize);
        let mut partial = [0.0f32; 256];
        for (li, acc) in partial.iter_mut().enumerate() {
            let mut i = lo + li;
            while i < hi {
                *acc += grad[i] * grad[i];
                i += 256;
            }
        }
        let mut h = 128;
        while h > 0 {
            for li in 0..h {
                partial[li] += partial[li + h];
            }
            h >>= 1;
        }
        let sum = partial[0];
        norms[j] = sum;
        if p.clip && active && c > 0.0 {
            let norm = if sum > 0.0 { sum.sqrt() } else { sum };
            let denominator = norm.max(c);
            for g in &mut grad[lo..hi] {
                *g = *g * c / denominator;
            }
        }
    }
}

/// The member's dropout mask of one launch, read once from its table row: value i is 0 or
/// 1 / (1 - rate), or 1 without a mask. W3's profile had the per-value table reads and the four
/// hash rounds of `random_unit` at 30% of an epoch; the same bits now cost one round.
struct Mask {
    apply: bool,
    prefix: u32,
    rate: f32,
    scale: f32,
}

impl Mask {
    fn new(p: &DropoutArgs, table: &[f32]) -> Mask {
        if !p.apply_mask {
            return Mask { apply: false, prefix: 0, rate: 0.0, scale: 1.0 };
        }
        let seed = p.own_seed.unwrap_or(table[mt::SEED].to_bits());
        let at = mt::DROPOUT + 2 * p.layer as usize;
        let step = table[mt::STEP].to_bits().wrapping_add(p.step);
        Mask { apply: true, prefix: random_prefix(seed, step, p.layer), rate: table[at], scale: table[at + 1] }
    }

    #[inline]
    fn at(&self, i: usize) -> f32 {
        if !self.apply {
            return 1.0;
        }
        if unit_from_bits(mix32(self.prefix ^ i as u32)) >= self.rate {
            self.scale
        } else {
            0.0
        }
    }
}

/// Expands `$body` with `$d` bound to the derivative of activation `$code` as a closure the
/// compiler inlines: none and relu (the common cases) get loops of their own, which vectorise,
/// where a match per value would not; the rest take the general function. Same values as
/// `act_grad_from_output` in every arm.
macro_rules! by_derivative {
    ($code:expr, |$d:ident| $body:expr) => {
        match $code {
            0 => {
                let $d = |_: f32| 1.0f32;
                $body
            }
            1 => {
                let $d = |y: f32| if y > 0.0 { 1.0f32 } else { 0.0 };
                $body
            }
            c => {
                let $d = |y: f32| act_grad_from_output(y, c);
                $body
            }
        }
    };
}

/// The mask of each value is a hash of its index, so large layers run in parts
/// (`parallel::in_parts`), one per core, with the same bits.
pub(crate) fn dropout_forward(p: &DropoutArgs, src: &[f32], dst: &mut [f32], table: &[f32]) {
    let mask = Mask::new(p, table);
    let n = p.len as usize;
    in_parts(n, (&mut dst[..n], &src[..n]), |range, (d, s)| dropout_forward_span(&mask, range.start, d, s));
}

#[multiversion(targets("x86_64+avx2+avx"))]
fn dropout_forward_span(mask: &Mask, start: usize, dst: &mut [f32], src: &[f32]) {
    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
        *d = s * mask.at(start + i);
    }
}

pub(crate) fn dropout_backward(p: &DropoutArgs, src: &[f32], dst: &mut [f32], aux: &[f32], table: &[f32]) {
    let mask = Mask::new(p, table);
    let (n, code) = (p.len as usize, p.derivative.code());
    in_parts(n, (&mut dst[..n], &src[..n], &aux[..n]), |range, (d, s, y)| {
        dropout_backward_span(&mask, code, range.start, d, s, y)
    });
}

#[multiversion(targets("x86_64+avx2+avx"))]
fn dropout_backward_span(mask: &Mask, code: u32, start: usize, dst: &mut [f32], src: &[f32], aux: &[f32]) {
    by_derivative!(code, |dact| {
        for (i, ((d, &s), &y)) in dst.iter_mut().zip(src).zip(aux).enumerate() {
            *d = s * mask.at(start + i) * dact(y);
        }
    })
}

fn bn_gamma(p: &BatchNormArgs, param: &[f32], j: usize) -> f32 {
    if p.scale {
        param[p.gamma_off as usize + j]
    } else {
        1.0
    }
}

fn bn_beta(p: &BatchNormArgs, param: &[f32], j: usize) -> f32 {
    if p.center {
        param[p.beta_off as usize + j]
    } else {
        0.0
    }
}

/// Each column's sums run over rows in order whichever half of the columns a thread takes, and
/// each output is its own: large layers run in parts (`parallel`), one per core, with the same bits.
pub(crate) fn batchnorm_train(
    p: &BatchNormArgs,
    x: &[f32],
    param: &[f32],
    state: &mut [f32],
    y: &mut [f32],
    saved: &mut [f32],
    table: &[f32],
) {
    let active = table[mt::ACTIVE] != 0.0;
    // Row-major passes (cache-friendly); each column's sums still run over rows in order, as the
    // kernel's one invocation per column does. `saved` holds the sums until it holds mean, inv.
    let (n, rows) = (p.width as usize, p.rows as usize);
    let x = &x[..rows * n];
    let (means, invs) = saved[..2 * n].split_at_mut(n);
    columns_in_parts(n, rows, (&mut *means, &mut *invs), |columns, (means, invs)| {
        batchnorm_statistics(x, n, columns, means, invs)
    });
    for j in 0..n {
        let variance = invs[j];
        invs[j] = 1.0 / (variance + p.epsilon).sqrt();
        if active {
            let (mm, mv) = (p.state_off as usize + j, p.state_off as usize + n + j);
            state[mm] = state[mm] * p.momentum + means[j] * (1.0 - p.momentum);
            state[mv] = state[mv] * p.momentum + variance * (1.0 - p.momentum);
        }
    }
    // gamma and beta per column once (1 and 0 where the layer has none: the same products and
    // sums as before), so the row loop is straight arithmetic over slices, which vectorizes.
    let mut columns = BN_SCALE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    columns.clear();
    columns.extend((0..n).map(|j| bn_gamma(p, param, j)));
    columns.extend((0..n).map(|j| bn_beta(p, param, j)));
    let (gammas, betas) = columns.split_at(n);
    let (means, invs) = (&*means, &*invs);
    rows_in_parts(rows, n, (&mut y[..rows * n], x), |_, (y, x)| {
        batchnorm_normalize(n, y, x, (means, invs), (gammas, betas))
    });
    BN_SCALE.with(|c| *c.borrow_mut() = columns);
}

/// Columns `columns` of batchnorm_train's statistics: into `means` each column's mean, into
/// `invs` its (biased) variance, as sums over the rows of the row-major `x` in order.
#[multiversion(targets("x86_64+avx2+avx"))]
fn batchnorm_statistics(x: &[f32], n: usize, columns: Range<usize>, means: &mut [f32], invs: &mut [f32]) {
    let rows = x.len() / n;
    means.fill(0.0);
    for xr in x.chunks_exact(n) {
        for (s, v) in means.iter_mut().zip(&xr[columns.clone()]) {
            *s += v;
        }
    }
    means.iter_mut().for_each(|s| *s /= rows as f32);
    invs.fill(0.0);
    for xr in x.chunks_exact(n) {
        for ((q, v), m) in invs.iter_mut().zip(&xr[columns.clone()]).zip(means.iter()) {
            let d = v - m;
            *q += d * d;
        }
    }
    invs.iter_mut().for_each(|q| *q /= rows as f32);
}

/// batchnorm_train's output rows: gamma (x - mean) inv + beta.
#[multiversion(targets("x86_64+avx2+avx"))]
fn batchnorm_normalize(
    n: usize,
    y: &mut [f32],
    x: &[f32],
    (means, invs): (&[f32], &[f32]),
    (gammas, betas): (&[f32], &[f32]),
) {
    for (yr, xr) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        for (((out, &xv), (&m, &inv)), (&g, &b)) in
            yr.iter_mut().zip(xr).zip(means.iter().zip(invs.iter())).zip(gammas.iter().zip(betas))
        {
            *out = g * (xv - m) * inv + b;
        }
    }
}

pub(crate) fn batchnorm_infer(p: &BatchNormArgs, x: &[f32], param: &[f32], state: &mut [f32], y: &mut [f32]) {
    let n = p.width as usize;
    for i in 0..(p.rows * p.width) as usize {
        let j = i % n;
        let inv = 1.0 / (state[p.state_off as usize + n + j] + p.epsilon).sqrt();
        y[i] = bn_gamma(p, param, j) * (x[i] - state[p.state_off as usize + j]) * inv + bn_beta(p, param, j);
    }
}

/// Parts as in batchnorm_train: the sums by columns, dX by rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batchnorm_backward(
    p: &BatchNormArgs,
    x: &[f32],
    param: &[f32],
    saved: &mut [f32],
    dy: &[f32],
    dx: &mut [f32],
    grads: &mut [f32],
    aux: &[f32],
) {
    // Row-major passes; per column the sums run over rows in order, as in the kernel.
    let (n, rows) = (p.width as usize, p.rows as usize);
    let (x, dy) = (&x[..rows * n], &dy[..rows * n]);
    BN_SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.clear();
        scratch.resize(2 * n, 0.0);
        let (dbeta, dgamma) = scratch.split_at_mut(n);
        let (mean, inv) = saved[..2 * n].split_at(n);
        columns_in_parts(n, rows, (&mut *dbeta, &mut *dgamma, mean, inv), |columns, (dbeta, dgamma, mean, inv)| {
            batchnorm_parameter_sums(n, columns, (x, dy), (mean, inv), dbeta, dgamma)
        });
        for j in 0..n {
            if p.scale {
                grads[p.gamma_off as usize + j] = dgamma[j];
            }
            if p.center {
                grads[p.beta_off as usize + j] = dbeta[j];
            }
        }
        if p.grad_below {
            let rows_f = rows as f32;
            // Each column's scale once (the same expression as per value before), so the row
            // loop is straight arithmetic over slices.
            let mut scale = BN_SCALE.with(|c| std::mem::take(&mut *c.borrow_mut()));
            scale.clear();
            scale.extend((0..n).map(|j| bn_gamma(p, param, j) * saved[n + j] / rows_f));
            let columns = BnColumns { mean, inv, scale: &scale, dbeta, dgamma };
            let code = p.derivative.code();
            rows_in_parts(rows, n, (&mut dx[..rows * n], x, dy, &aux[..rows * n]), |_, (dx, x, dy, aux)| {
                batchnorm_input_gradient(code, n, rows_f, &columns, dx, (x, dy, aux))
            });
            BN_SCALE.with(|c| *c.borrow_mut() = scale);
        }
    });
}

/// Columns `columns` of batchnorm_backward's sums over rows (in order): dbeta (of dY) and
/// dgamma (of dY x-hat).
#[multiversion(targets("x86_64+avx2+avx"))]
fn batchnorm_parameter_sums(
    n: usize,
    columns: Range<usize>,
    (x, dy): (&[f32], &[f32]),
    (mean, inv): (&[f32], &[f32]),
    dbeta: &mut [f32],
    dgamma: &mut [f32],
) {
    for (dyr, xr) in dy.chunks_exact(n).zip(x.chunks_exact(n)) {
        for ((((db, dg), &g), &xv), (&m, &iv)) in dbeta
            .iter_mut()
            .zip(dgamma.iter_mut())
            .zip(&dyr[columns.clone()])
            .zip(&xr[columns.clone()])
            .zip(mean.iter().zip(inv))
        {
            *db += g;
            *dg += g * (xv - m) * iv;
        }
    }
}

/// batchnorm_backward's per-column values for the input gradient.
struct BnColumns<'a> {
    mean: &'a [f32],
    inv: &'a [f32],
    scale: &'a [f32],
    dbeta: &'a [f32],
    dgamma: &'a [f32],
}

/// batchnorm_backward's dX rows, times the derivative (`code`) of the activation before it.
#[multiversion(targets("x86_64+avx2+avx"))]
fn batchnorm_input_gradient(
    code: u32,
    n: usize,
    rows_f: f32,
    c: &BnColumns,
    dx: &mut [f32],
    (x, dy, aux): (&[f32], &[f32], &[f32]),
) {
    by_derivative!(code, |dact| {
        for (((dxr, xr), dyr), auxr) in
            dx.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(dy.chunks_exact(n)).zip(aux.chunks_exact(n))
        {
            let columns = c.mean.iter().zip(c.inv).zip(c.scale.iter().zip(c.dbeta.iter().zip(c.dgamma)));
            for ((d_out, ((&xv, &g), &y)), ((&m, &iv), (&sc, (&db, &dg)))) in
                dxr.iter_mut().zip(xr.iter().zip(dyr).zip(auxr)).zip(columns)
            {
                let xhat = (xv - m) * iv;
                let d = sc * (rows_f * g - db - xhat * dg);
                *d_out = d * dact(y);
            }
        }
    });
}

thread_local! {
    /// batchnorm_backward's per-column sums, reused across calls (no allocation per step).
    static BN_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// batchnorm_backward's per-column scales, and batchnorm_train's gamma and beta, likewise.
    static BN_SCALE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The feature's (mean, std) as shaders/normalization.wgsl reads them.
fn norm_stats(p: &NormalizationArgs, state: &[f32], c: usize) -> (f32, f32) {
    let (off, w) = (p.state_off as usize, p.width as usize);
    (state[off + c], state[off + w + c].sqrt().max(1e-7))
}

/// Twin of `normalization_forward`.
pub(crate) fn normalization_forward(p: &NormalizationArgs, src: &[f32], state: &[f32], dst: &mut [f32]) {
    for i in 0..p.len as usize {
        let (mean, std) = norm_stats(p, state, i % p.width as usize);
        dst[i] = if p.invert { mean + src[i] * std } else { (src[i] - mean) / std };
    }
}

/// Twin of `normalization_backward`.
pub(crate) fn normalization_backward(p: &NormalizationArgs, src: &[f32], state: &[f32], dst: &mut [f32], aux: &[f32]) {
    for i in 0..p.len as usize {
        let (_, std) = norm_stats(p, state, i % p.width as usize);
        let dx = if p.invert { src[i] * std } else { src[i] / std };
        dst[i] = dx * act_grad_from_output(aux[i], p.derivative.code());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::parallel::with_threads;
    use crate::layers::Activation;
    use rand::{Rng, SeedableRng};

    /// The kernels that split large launches in parts (the optimizers, dropout,
    /// BatchNormalization) give the same bits on one thread and on two, three and four, on
    /// sizes that split unevenly (rows and columns not multiples of 16, up to four parts).
    #[test]
    fn parts_give_the_same_bits_as_one_thread() {
        let (rows, n) = (521usize, 257usize);
        let len = rows * n;
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let mut random = |lo: f32, hi: f32| -> Vec<f32> { (0..len).map(|_| rng.random_range(lo..hi)).collect() };
        let (x, dy, aux, grad, m0, v0) = (
            random(-3.0, 5.0),
            random(-1.0, 1.0),
            random(-1.0, 1.0),
            random(-1.0, 1.0),
            random(-0.1, 0.1),
            random(0.003, 0.1),
        );
        let mut table = vec![0.0f32; mt::width(2)];
        table[mt::ACTIVE] = 1.0;
        table[mt::ONE_MINUS_BETA_1] = 0.1;
        table[mt::ONE_MINUS_BETA_2] = 0.001;
        table[mt::EPSILON] = 1e-7;
        table[mt::SEED] = f32::from_bits(42);
        table[mt::DROPOUT + 2] = 0.3;
        table[mt::DROPOUT + 3] = 1.0 / 0.7;
        let param: Vec<f32> = (0..2 * n).map(|j| 0.5 + j as f32 / n as f32).collect();
        let bn = BatchNormArgs {
            rows: rows as u32,
            width: n as u32,
            gamma_off: 0,
            beta_off: n as u32,
            state_off: 0,
            scale: true,
            center: true,
            momentum: 0.99,
            epsilon: 1e-3,
            grad_below: true,
            derivative: Activation::Relu,
        };
        let drop = DropoutArgs {
            len: len as u32,
            apply_mask: true,
            step: 3,
            layer: 1,
            derivative: Activation::Relu,
            ..Default::default()
        };
        let run = |threads: usize| {
            with_threads(threads, || {
                let mut out: Vec<Vec<f32>> = Vec::new();
                for amsgrad in [0.0, 1.0] {
                    let mut t = table.clone();
                    t[mt::AMSGRAD] = amsgrad;
                    let (mut w, mut m, mut v, mut s) = (x.clone(), m0.clone(), v0.clone(), v0.clone());
                    let update = UpdateArgs { len: len as u32, lr_at: 0, variables: 1 };
                    adam(&update, &mut w, &grad, &mut m, &mut v, &t, &[0.01, 0.01], &mut s, &[1.0]);
                    out.extend([w, m, v, s]);
                }
                let mut t = table.clone();
                (t[mt::MOMENTUM], t[mt::NESTEROV], t[mt::CENTERED], t[mt::RHO], t[mt::ONE_MINUS_RHO]) =
                    (0.9, 1.0, 1.0, 0.9, 0.1);
                let update = UpdateArgs { len: len as u32, lr_at: 0, variables: 1 };
                for rule in [sgd, rmsprop] {
                    // Centered RMSprop's mean gradient stays small against v, as in training (no NaN roots).
                    let s: Vec<f32> = m0.iter().map(|&a| 0.1 * a).collect();
                    let (mut w, mut m, mut v, mut s) = (x.clone(), m0.clone(), v0.clone(), s);
                    rule(&update, &mut w, &grad, &mut m, &mut v, &t, &[0.01, 0.01], &mut s, &[1.0]);
                    out.extend([w, m, v, s]);
                }
                let mut y = vec![f32::NAN; len];
                dropout_forward(&drop, &x, &mut y, &table);
                out.push(y.clone());
                dropout_backward(&drop, &dy, &mut y, &aux, &table);
                out.push(y);
                let (mut state, mut y, mut saved) = (vec![1.0f32; 2 * n], vec![f32::NAN; len], vec![f32::NAN; 2 * n]);
                batchnorm_train(&bn, &x, &param, &mut state, &mut y, &mut saved, &table);
                let (mut dx, mut grads) = (vec![f32::NAN; len], vec![f32::NAN; 2 * n]);
                batchnorm_backward(&bn, &x, &param, &mut saved, &dy, &mut dx, &mut grads, &aux);
                out.extend([state, y, saved, dx, grads]);
                out.into_iter().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()).collect::<Vec<_>>()
            })
        };
        let one = run(1);
        assert!(one.iter().flatten().all(|&b| !f32::from_bits(b).is_nan()), "a kernel left a value unwritten");
        for threads in [2, 3, 4] {
            let many = run(threads);
            for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                assert!(a == b, "output {i} differs between one thread and {threads}");
            }
        }
    }
}

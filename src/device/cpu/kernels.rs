//! The CPU twins of the WGSL kernels: same names, the same typed arguments (`device::args`),
//! buffers in the order of `Kernel::bindings`. Plain loops over f32, written to be held against
//! the shaders line by line. Each runs for one member: its buffers are that member's blocks
//! (the backend hands them over), as a WGSL kernel's are after its member offsets.

use crate::device::args::{
    member_table as mt, ActivationArgs, ActivationGradArgs, BatchNormArgs, DropoutArgs, GatherArgs, LossArgs,
    MatmulArgs, Ones, UpdateArgs,
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
    let mut h = mix32(seed ^ 0x9e3779b9);
    h = mix32(h ^ step);
    h = mix32(h ^ layer.wrapping_mul(0x85ebca6b));
    mix32(h ^ index)
}

/// Uniform in [0, 1) from the top 24 bits, identical to `random_unit` in shaders/common.wgsl.
pub(crate) fn random_unit(seed: u32, step: u32, layer: u32, index: u32) -> f32 {
    (random_bits(seed, step, layer, index) >> 8) as f32 * (1.0 / 16777216.0)
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

pub(crate) fn loss(p: &LossArgs, pred: &[f32], y: &[f32], grad: &mut [f32], acc: &mut [f32]) {
    const EPS: f32 = 1e-7;
    let count = (p.rows * p.cols) as usize;
    let loss = p.loss.code();
    let inv = 1.0 / count as f32;
    // Same summation order as the kernel: 256 strided partial sums, then a tree.
    let mut partial = [[0.0f32; 4]; 256];
    for (tid, sums) in partial.iter_mut().enumerate() {
        for e in (tid..count).step_by(256) {
            let (pv, t) = (pred[e], y[e]);
            let d = pv - t;
            let (l, g) = match loss {
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
            };
            if p.write_gradient {
                let mut gz = g * inv;
                if loss != 3 {
                    gz *= act_grad_from_output(pv, p.output_activation.code());
                }
                grad[e] = gz;
            }
            sums[0] += l;
            let mut slot = 1;
            if p.metrics & 1 != 0 {
                sums[slot] += d.abs();
                slot += 1;
            }
            if p.metrics & 2 != 0 {
                sums[slot] += d * d;
                slot += 1;
            }
            if p.metrics & 4 != 0 {
                let predicted = if pv > 0.5 { 1.0 } else { 0.0 };
                sums[slot] += if predicted == t { 1.0 } else { 0.0 };
            }
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
    for j in 0..nvals {
        let per_sample = partial[0][j] / p.cols as f32;
        if p.accumulate {
            acc[slot + j] += per_sample;
        } else {
            acc[slot + j] = per_sample;
        }
    }
}

/// `table` is the member's row of the member table; `lrs` its learning rates of the epoch.
pub(crate) fn adam(
    p: &UpdateArgs,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    table: &[f32],
    lrs: &[f32],
) {
    if table[mt::ACTIVE] == 0.0 {
        return;
    }
    let (beta_1, beta_2, epsilon) = (table[mt::BETA_1], table[mt::BETA_2], table[mt::EPSILON]);
    let lr = lrs[p.lr_at as usize];
    let n = p.len as usize;
    // Zipped slices: no bounds checks, so the loop vectorizes (same operations in the same order).
    for (((w, &g), mi), vi) in param[..n].iter_mut().zip(&grad[..n]).zip(&mut m[..n]).zip(&mut v[..n]) {
        let m1 = *mi + (g - *mi) * (1.0 - beta_1);
        let v1 = *vi + (g * g - *vi) * (1.0 - beta_2);
        *mi = m1;
        *vi = v1;
        *w -= (m1 * lr) / (v1.sqrt() + epsilon);
    }
}

pub(crate) fn sgd(
    p: &UpdateArgs,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    _v: &mut [f32],
    table: &[f32],
    lrs: &[f32],
) {
    if table[mt::ACTIVE] == 0.0 {
        return;
    }
    let (momentum, nesterov) = (table[mt::MOMENTUM], table[mt::NESTEROV] != 0.0);
    let lr = lrs[p.lr_at as usize];
    for i in 0..p.len as usize {
        let g = grad[i];
        if momentum == 0.0 {
            param[i] -= lr * g;
            continue;
        }
        let mi = momentum * m[i] - lr * g;
        m[i] = mi;
        if nesterov {
            param[i] += momentum * mi - lr * g;
        } else {
            param[i] += mi;
        }
    }
}

/// The member's dropout mask value at `i`: 0 or 1 / (1 - rate), from its table row.
fn keep_scale(p: &DropoutArgs, table: &[f32], i: usize) -> f32 {
    if !p.apply_mask {
        return 1.0;
    }
    let seed = p.own_seed.unwrap_or(table[mt::SEED].to_bits());
    let at = mt::DROPOUT + 2 * p.layer as usize;
    let (rate, scale) = (table[at], table[at + 1]);
    let step = table[mt::STEP].to_bits().wrapping_add(p.step);
    if random_unit(seed, step, p.layer, i as u32) >= rate {
        scale
    } else {
        0.0
    }
}

pub(crate) fn dropout_forward(p: &DropoutArgs, src: &[f32], dst: &mut [f32], table: &[f32]) {
    for i in 0..p.len as usize {
        dst[i] = src[i] * keep_scale(p, table, i);
    }
}

pub(crate) fn dropout_backward(p: &DropoutArgs, src: &[f32], dst: &mut [f32], aux: &[f32], table: &[f32]) {
    for i in 0..p.len as usize {
        dst[i] = src[i] * keep_scale(p, table, i) * act_grad_from_output(aux[i], p.derivative.code());
    }
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
    let (means, invs) = saved[..2 * n].split_at_mut(n);
    means.fill(0.0);
    for r in 0..rows {
        for (s, v) in means.iter_mut().zip(&x[r * n..(r + 1) * n]) {
            *s += v;
        }
    }
    means.iter_mut().for_each(|s| *s /= rows as f32);
    invs.fill(0.0);
    for r in 0..rows {
        for ((q, v), m) in invs.iter_mut().zip(&x[r * n..(r + 1) * n]).zip(means.iter()) {
            let d = v - m;
            *q += d * d;
        }
    }
    for j in 0..n {
        let variance = invs[j] / rows as f32;
        invs[j] = 1.0 / (variance + p.epsilon).sqrt();
        if active {
            let (mm, mv) = (p.state_off as usize + j, p.state_off as usize + n + j);
            state[mm] = state[mm] * p.momentum + means[j] * (1.0 - p.momentum);
            state[mv] = state[mv] * p.momentum + variance * (1.0 - p.momentum);
        }
    }
    for r in 0..rows {
        for j in 0..n {
            let (g, b) = (bn_gamma(p, param, j), bn_beta(p, param, j));
            y[r * n + j] = g * (x[r * n + j] - means[j]) * invs[j] + b;
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
    BN_SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.clear();
        scratch.resize(2 * n, 0.0);
        let (dbeta, dgamma) = scratch.split_at_mut(n);
        for r in 0..rows {
            for j in 0..n {
                let g = dy[r * n + j];
                dbeta[j] += g;
                dgamma[j] += g * (x[r * n + j] - saved[j]) * saved[n + j];
            }
        }
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
            for r in 0..rows {
                for j in 0..n {
                    let (mean, inv) = (saved[j], saved[n + j]);
                    let scale = bn_gamma(p, param, j) * inv / rows_f;
                    let xhat = (x[r * n + j] - mean) * inv;
                    let d = scale * (rows_f * dy[r * n + j] - dbeta[j] - xhat * dgamma[j]);
                    dx[r * n + j] = d * act_grad_from_output(aux[r * n + j], p.derivative.code());
                }
            }
        }
    });
}

thread_local! {
    /// batchnorm_backward's per-column sums, reused across calls (no allocation per step).
    static BN_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

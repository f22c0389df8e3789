// Batch normalization over P.rows x P.n values (features are columns).
// gamma at param[P.a_off], beta at param[P.b_off] (P.flags bit 0: scale, bit 1: center);
// moving mean / variance at state[P.c_off] and state[P.c_off + P.n];
// f0 = momentum, f1 = epsilon. The batch statistics kept for backward: saved[j] = mean,
// saved[P.n + j] = 1 / sqrt(var + eps).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> param: array<f32>;

fn gamma(j: u32) -> f32 {
    return select(1.0, param[P.a_off + j], (P.flags & 1u) != 0u);
}

fn beta(j: u32) -> f32 {
    return select(0.0, param[P.b_off + j], (P.flags & 2u) != 0u);
}

@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved: array<f32>;

// Training: one invocation per feature computes the batch mean and biased variance (two passes),
// normalizes its column and moves the moving statistics as Keras does.
@compute @workgroup_size(256)
fn batchnorm_train(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    if (j >= P.n) { return; }
    let n = P.n;
    var sum = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) { sum = sum + x[r * n + j]; }
    let mean = sum / f32(P.rows);
    var sq = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let d = x[r * n + j] - mean;
        sq = sq + d * d;
    }
    let variance = sq / f32(P.rows);
    let inv = 1.0 / sqrt(variance + P.f1);
    let g = gamma(j);
    let b = beta(j);
    for (var r = 0u; r < P.rows; r = r + 1u) {
        y[r * n + j] = g * (x[r * n + j] - mean) * inv + b;
    }
    saved[j] = mean;
    saved[n + j] = inv;
    let mm = P.c_off + j;
    let mv = P.c_off + n + j;
    state[mm] = state[mm] * P.f0 + mean * (1.0 - P.f0);
    state[mv] = state[mv] * P.f0 + variance * (1.0 - P.f0);
}

// Inference: the moving statistics, one invocation per value (P.total = rows * n).
@compute @workgroup_size(256)
fn batchnorm_infer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    let j = i % P.n;
    let inv = 1.0 / sqrt(state[P.c_off + P.n + j] + P.f1);
    y[i] = gamma(j) * (x[i] - state[P.c_off + j]) * inv + beta(j);
}

@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;
@group(0) @binding(8) var<storage, read> aux: array<f32>;

// Backward through the batch statistics, one invocation per feature:
// dbeta = Σ dy, dgamma = Σ dy·x̂, dx = γ·inv/N · (N·dy − dbeta − x̂·dgamma), times the layer
// below's activation derivative act'(aux) (P.dact). dx goes to `y` (binding 4) when P.flags bit 2.
@compute @workgroup_size(256)
fn batchnorm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    if (j >= P.n) { return; }
    let n = P.n;
    let mean = saved[j];
    let inv = saved[n + j];
    var dbeta = 0.0;
    var dgamma = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let g = dy[r * n + j];
        dbeta = dbeta + g;
        dgamma = dgamma + g * (x[r * n + j] - mean) * inv;
    }
    if ((P.flags & 1u) != 0u) { grads[P.a_off + j] = dgamma; }
    if ((P.flags & 2u) != 0u) { grads[P.b_off + j] = dbeta; }
    if ((P.flags & 4u) != 0u) {
        let rows = f32(P.rows);
        let scale = gamma(j) * inv / rows;
        for (var r = 0u; r < P.rows; r = r + 1u) {
            let xhat = (x[r * n + j] - mean) * inv;
            let d = scale * (rows * dy[r * n + j] - dbeta - xhat * dgamma);
            y[r * n + j] = d * act_grad_from_output(aux[r * n + j], P.dact);
        }
    }
}

// Batch normalization over P.rows x P.width values (features are columns).
// gamma at param[P.gamma_off] when P.scale, beta at param[P.beta_off] when P.center;
// moving mean / variance at state[P.state_off] and state[P.state_off + P.width].
// The batch statistics kept for backward: saved[j] = mean, saved[P.width + j] = 1 / sqrt(var + eps).
struct P_batchnorm {
    rows: u32, width: u32,
    gamma_off: u32, beta_off: u32, state_off: u32,
    scale: u32, center: u32,
    grad_below: u32,  // backward: write dX
    derivative: u32,  // backward: ACT_* of the layer below
    momentum: f32, epsilon: f32,
}
@group(1) @binding(0) var<uniform> P: P_batchnorm;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> param: array<f32>;

fn gamma(j: u32) -> f32 {
    return select(1.0, param[P.gamma_off + j], P.scale != 0u);
}

fn beta(j: u32) -> f32 {
    return select(0.0, param[P.beta_off + j], P.center != 0u);
}

@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved: array<f32>;

// Training: one invocation per feature computes the batch mean and biased variance (two passes),
// normalizes its column and moves the moving statistics as Keras does.
@compute @workgroup_size(256)
fn batchnorm_train(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    if (j >= P.width) { return; }
    let n = P.width;
    var sum = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) { sum = sum + x[r * n + j]; }
    let mean = sum / f32(P.rows);
    var sq = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let d = x[r * n + j] - mean;
        sq = sq + d * d;
    }
    let variance = sq / f32(P.rows);
    let inv = 1.0 / sqrt(variance + P.epsilon);
    let g = gamma(j);
    let b = beta(j);
    for (var r = 0u; r < P.rows; r = r + 1u) {
        y[r * n + j] = g * (x[r * n + j] - mean) * inv + b;
    }
    saved[j] = mean;
    saved[n + j] = inv;
    let mm = P.state_off + j;
    let mv = P.state_off + n + j;
    state[mm] = state[mm] * P.momentum + mean * (1.0 - P.momentum);
    state[mv] = state[mv] * P.momentum + variance * (1.0 - P.momentum);
}

// Inference: the moving statistics, one invocation per value.
@compute @workgroup_size(256)
fn batchnorm_infer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.rows * P.width) { return; }
    let j = i % P.width;
    let inv = 1.0 / sqrt(state[P.state_off + P.width + j] + P.epsilon);
    y[i] = gamma(j) * (x[i] - state[P.state_off + j]) * inv + beta(j);
}

@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;
@group(0) @binding(8) var<storage, read> aux: array<f32>;

// Backward through the batch statistics, one invocation per feature:
// dbeta = Σ dy, dgamma = Σ dy·x̂, dx = γ·inv/N · (N·dy − dbeta − x̂·dgamma), times the layer
// below's activation derivative act'(aux) (P.derivative). dx goes to `y` (binding 4) when P.grad_below.
@compute @workgroup_size(256)
fn batchnorm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    if (j >= P.width) { return; }
    let n = P.width;
    let mean = saved[j];
    let inv = saved[n + j];
    var dbeta = 0.0;
    var dgamma = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let g = dy[r * n + j];
        dbeta = dbeta + g;
        dgamma = dgamma + g * (x[r * n + j] - mean) * inv;
    }
    if (P.scale != 0u) { grads[P.gamma_off + j] = dgamma; }
    if (P.center != 0u) { grads[P.beta_off + j] = dbeta; }
    if (P.grad_below != 0u) {
        let rows = f32(P.rows);
        let scale = gamma(j) * inv / rows;
        for (var r = 0u; r < P.rows; r = r + 1u) {
            let xhat = (x[r * n + j] - mean) * inv;
            let d = scale * (rows * dy[r * n + j] - dbeta - xhat * dgamma);
            y[r * n + j] = d * act_grad_from_output(aux[r * n + j], P.derivative);
        }
    }
}

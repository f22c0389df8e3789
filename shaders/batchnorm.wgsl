// Batch normalization over P.rows x P.width values (features are columns).
// gamma at param[P.gamma_off] when P.scale, beta at param[P.beta_off] when P.center;
// moving mean / variance at state[P.state_off] and state[P.state_off + P.width].
// The batch statistics kept for backward: saved[j] = mean, saved[P.width + j] = 1 / sqrt(var + eps).
// Every binding is the member's block (workgroup z): the M* offsets below, set first by each entry.
// Training moves the moving statistics only of members the member table (binding 9) marks active.
struct P_batchnorm {
    ms: array<vec4<u32>, 3>,
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

var<private> MX: u32;
var<private> MP: u32;
var<private> MS: u32;
var<private> MY: u32;
var<private> MV: u32;
var<private> MD: u32;
var<private> MG: u32;
var<private> MA: u32;

fn set_member(mem: u32) {
    MX = mem * P.ms[0].x;
    MP = mem * P.ms[0].y;
    MS = mem * P.ms[0].z;
    MY = mem * P.ms[0].w;
    MV = mem * P.ms[1].x;
    MD = mem * P.ms[1].y;
    MG = mem * P.ms[1].z;
    MA = mem * P.ms[1].w;
}

fn gamma(j: u32) -> f32 {
    return select(1.0, param[MP + P.gamma_off + j], P.scale != 0u);
}

fn beta(j: u32) -> f32 {
    return select(0.0, param[MP + P.beta_off + j], P.center != 0u);
}

@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved: array<f32>;
@group(0) @binding(9) var<storage, read> table: array<f32>;

// Training: one invocation per feature computes the batch mean and biased variance (two passes),
// normalizes its column and moves the moving statistics as Keras does.
@compute @workgroup_size(256)
fn batchnorm_train(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    set_member(gid.z);
    let j = flat_index(gid, nwg);
    if (j >= P.width) { return; }
    let n = P.width;
    var sum = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) { sum = sum + x[MX + r * n + j]; }
    let mean = sum / f32(P.rows);
    var sq = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let d = x[MX + r * n + j] - mean;
        sq = sq + d * d;
    }
    let variance = sq / f32(P.rows);
    let inv = 1.0 / sqrt(variance + P.epsilon);
    let g = gamma(j);
    let b = beta(j);
    for (var r = 0u; r < P.rows; r = r + 1u) {
        y[MY + r * n + j] = g * (x[MX + r * n + j] - mean) * inv + b;
    }
    saved[MV + j] = mean;
    saved[MV + n + j] = inv;
    if (table[gid.z * P.ms[2].x + MT_ACTIVE] == 0.0) { return; }
    let mm = MS + P.state_off + j;
    let mv = MS + P.state_off + n + j;
    state[mm] = state[mm] * P.momentum + mean * (1.0 - P.momentum);
    state[mv] = state[mv] * P.momentum + variance * (1.0 - P.momentum);
}

// Inference: the moving statistics, one invocation per value.
@compute @workgroup_size(256)
fn batchnorm_infer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    set_member(gid.z);
    let i = flat_index(gid, nwg);
    if (i >= P.rows * P.width) { return; }
    let j = i % P.width;
    let inv = 1.0 / sqrt(state[MS + P.state_off + P.width + j] + P.epsilon);
    y[MY + i] = gamma(j) * (x[MX + i] - state[MS + P.state_off + j]) * inv + beta(j);
}

@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;
@group(0) @binding(8) var<storage, read> aux: array<f32>;

// Backward through the batch statistics, one invocation per feature:
// dbeta = Σ dy, dgamma = Σ dy·x̂, dx = γ·inv/N · (N·dy − dbeta − x̂·dgamma), times the layer
// below's activation derivative act'(aux) (P.derivative). dx goes to `y` (binding 4) when P.grad_below.
@compute @workgroup_size(256)
fn batchnorm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    set_member(gid.z);
    let j = flat_index(gid, nwg);
    if (j >= P.width) { return; }
    let n = P.width;
    let mean = saved[MV + j];
    let inv = saved[MV + n + j];
    var dbeta = 0.0;
    var dgamma = 0.0;
    for (var r = 0u; r < P.rows; r = r + 1u) {
        let g = dy[MY + r * n + j];
        dbeta = dbeta + g;
        dgamma = dgamma + g * (x[MX + r * n + j] - mean) * inv;
    }
    if (P.scale != 0u) { grads[MG + P.gamma_off + j] = dgamma; }
    if (P.center != 0u) { grads[MG + P.beta_off + j] = dbeta; }
    if (P.grad_below != 0u) {
        let rows = f32(P.rows);
        let scale = gamma(j) * inv / rows;
        for (var r = 0u; r < P.rows; r = r + 1u) {
            let xhat = (x[MX + r * n + j] - mean) * inv;
            let d = scale * (rows * dy[MY + r * n + j] - dbeta - xhat * dgamma);
            y[MY + r * n + j] = d * act_grad_from_output(aux[MX + r * n + j], P.derivative);
        }
    }
}

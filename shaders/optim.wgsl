// Optimizer updates over the whole flat parameter vector (all layers at once: one dispatch).
// P.len parameters, 4 per invocation: the buffers are read as vec4s (made in whole vec4s), which
// llvmpipe loads in one go instead of lane by lane (Adam over W3's 2.4M parameters: 3x faster).
// Adam's P.lr has its bias correction folded in: lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) (from
// the host in f64). Adam reads beta_1, beta_2, epsilon; SGD momentum and nesterov.
struct P_optim {
    len: u32, nesterov: u32,
    lr: f32, beta_1: f32, beta_2: f32, epsilon: f32, momentum: f32,
}
@group(1) @binding(0) var<uniform> P: P_optim;

@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

// Lanes of vec4 q that hold parameters (the last vec4 may be partly past P.len: those lanes
// are computed but not stored).
fn live(q: u32) -> vec4<bool> {
    let i = q * 4u;
    return vec4<bool>(i < P.len, i + 1u < P.len, i + 2u < P.len, i + 3u < P.len);
}

// Stores the parameters, and m and v where `moments` says (0: none, 1: m, 2: m and v).
fn store4(q: u32, pv: vec4<f32>, mv: vec4<f32>, vv: vec4<f32>, moments: u32) {
    if (all(live(q))) {
        param[q] = pv;
        if (moments >= 1u) { m[q] = mv; }
        if (moments >= 2u) { v[q] = vv; }
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (q * 4u + j < P.len) {
            param[q][j] = pv[j];
            if (moments >= 1u) { m[q][j] = mv[j]; }
            if (moments >= 2u) { v[q][j] = vv[j]; }
        }
    }
}

// Keras's Adam: epsilon is added to sqrt(v) outside the bias correction.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let g = grad[q];
    let mq = m[q] + (g - m[q]) * (1.0 - P.beta_1);
    let vq = v[q] + (g * g - v[q]) * (1.0 - P.beta_2);
    store4(q, param[q] - (mq * P.lr) / (sqrt(vq) + P.epsilon), mq, vq, 2u);
}

// Keras's SGD: m = momentum * m - lr * g; w += m (Nesterov: w += momentum * m - lr * g).
// With momentum 0 the host launches it with m bound but unused.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let g = grad[q];
    if (P.momentum == 0.0) {
        store4(q, param[q] - P.lr * g, vec4<f32>(0.0), vec4<f32>(0.0), 0u);
        return;
    }
    let mq = P.momentum * m[q] - P.lr * g;
    var pq = param[q] + mq;
    if (P.nesterov != 0u) {
        pq = param[q] + P.momentum * mq - P.lr * g;
    }
    store4(q, pq, mq, vec4<f32>(0.0), 1u);
}

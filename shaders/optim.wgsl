// Optimizer updates over each member's whole flat parameter vector (all layers at once: one
// dispatch for all members). P.len parameters per member, 4 per invocation: the buffers are read as
// vec4s (member strides are whole vec4s), which llvmpipe loads in one go instead of lane by lane
// (Adam over W3's 2.4M parameters: 3x faster).
// The member's hyperparameters come from the member table (binding 5) and its learning rate of
// this step from `lrs` (binding 6) at P.lr_at; Adam's has its bias correction folded in:
// lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) (from the host in f64). A member whose table says it is
// not active (it stopped early) is left exactly as it is.
struct P_optim { ms: array<vec4<u32>, 3>, len: u32, lr_at: u32 }
@group(1) @binding(0) var<uniform> P: P_optim;

@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> table: array<f32>;
@group(0) @binding(6) var<storage, read> lrs: array<f32>;

// Lanes of vec4 q (of the member) that hold parameters (the last vec4 may be partly past P.len:
// those lanes are computed but not stored).
fn live(q: u32) -> vec4<bool> {
    let i = q * 4u;
    return vec4<bool>(i < P.len, i + 1u < P.len, i + 2u < P.len, i + 3u < P.len);
}

// Stores the parameters, and m and v where `moments` says (0: none, 1: m, 2: m and v); q is the
// member's vec4 index, base its member's first vec4.
fn store4(base: u32, q: u32, pv: vec4<f32>, mv: vec4<f32>, vv: vec4<f32>, moments: u32) {
    let at = base + q;
    if (all(live(q))) {
        param[at] = pv;
        if (moments >= 1u) { m[at] = mv; }
        if (moments >= 2u) { v[at] = vv; }
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (q * 4u + j < P.len) {
            param[at][j] = pv[j];
            if (moments >= 1u) { m[at][j] = mv[j]; }
            if (moments >= 2u) { v[at][j] = vv[j]; }
        }
    }
}

// The member's row in the member table, or none when it no longer trains.
fn member_row(mem: u32) -> u32 {
    return mem * P.ms[1].x;
}

fn lr_of(mem: u32) -> f32 {
    return lrs[mem * P.ms[1].y + P.lr_at];
}

// Keras's Adam: epsilon is added to sqrt(v) outside the bias correction.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let mem = gid.z;
    let row = member_row(mem);
    if (table[row + MT_ACTIVE] == 0.0) { return; }
    let beta_1 = table[row + MT_BETA_1];
    let beta_2 = table[row + MT_BETA_2];
    let epsilon = table[row + MT_EPSILON];
    let lr = lr_of(mem);
    let base = mem * (P.ms[0].x >> 2u);
    let at = base + q;
    let g = grad[at];
    let mq = m[at] + (g - m[at]) * (1.0 - beta_1);
    let vq = v[at] + (g * g - v[at]) * (1.0 - beta_2);
    store4(base, q, param[at] - (mq * lr) / (sqrt(vq) + epsilon), mq, vq, 2u);
}

// Keras's SGD: m = momentum * m - lr * g; w += m (Nesterov: w += momentum * m - lr * g).
// With momentum 0 m is bound but unused.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let mem = gid.z;
    let row = member_row(mem);
    if (table[row + MT_ACTIVE] == 0.0) { return; }
    let momentum = table[row + MT_MOMENTUM];
    let lr = lr_of(mem);
    let base = mem * (P.ms[0].x >> 2u);
    let at = base + q;
    let g = grad[at];
    if (momentum == 0.0) {
        store4(base, q, param[at] - lr * g, vec4<f32>(0.0), vec4<f32>(0.0), 0u);
        return;
    }
    let mq = momentum * m[at] - lr * g;
    var pq = param[at] + mq;
    if (table[row + MT_NESTEROV] != 0.0) {
        pq = param[at] + momentum * mq - lr * g;
    }
    store4(base, q, pq, mq, vec4<f32>(0.0), 1u);
}

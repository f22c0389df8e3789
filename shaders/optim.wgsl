// Optimizer updates over each member's whole flat parameter vector (all layers at once: one
// dispatch for all members). P.len parameters per member, 4 per invocation: the buffers are read as
// vec4s (member strides are whole vec4s), which llvmpipe loads in one go instead of lane by lane
// (Adam over W3's 2.4M parameters: 3x faster).
// The member's hyperparameters come from the member table (binding 5) and its learning rate of
// this step from `lrs` (binding 6) at P.lr_at; Adam's has its bias correction folded in:
// lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) (from the host in f64). A member whose table says it is
// not active (it stopped early) is left exactly as it is.
//
// Before its own rule every update does what Keras 3's `BaseOptimizer.apply` does first, from the
// member's table row: clip the gradient (clipvalue: clamp to [-c, c]; global_clipnorm: scale by
// c * min(1 / norm, 1 / c) with the norm over the sums of squares `grad_norms` left in `norms`;
// clipnorm was applied in place by `grad_norms`), then decay the weights decoupled from the
// gradient: w -= w * weight_decay * lr, lr the step's undecorated rate at lrs[lr_at + 1].
// The third slot `s` holds amsgrad's running maximum of v, or centered RMSprop's mean gradient.
// P.variables: the weight tensors (segments of the flat parameter vector); P.clip: grad_norms
// scales by clipnorm.
struct P_optim { ms: array<vec4<u32>, 3>, len: u32, lr_at: u32, variables: u32, clip: u32 }
@group(1) @binding(0) var<uniform> P: P_optim;

@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> table: array<f32>;
@group(0) @binding(6) var<storage, read> lrs: array<f32>;
@group(0) @binding(7) var<storage, read_write> s: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> norms: array<f32>;
// grad_norms's own: the variables' offsets (shared), and grad and norms writable.
@group(0) @binding(9) var<storage, read> offsets: array<u32>;
@group(0) @binding(10) var<storage, read_write> grad_w: array<f32>;
@group(0) @binding(11) var<storage, read_write> norms_w: array<f32>;

// Lanes of vec4 q (of the member) that hold parameters (the last vec4 may be partly past P.len:
// those lanes are computed but not stored).
fn live(q: u32) -> vec4<bool> {
    let i = q * 4u;
    return vec4<bool>(i < P.len, i + 1u < P.len, i + 2u < P.len, i + 3u < P.len);
}

// Stores the parameters, and m, v and s where `moments` says (0: none, 1: m, 2: m and v, 3: m,
// v and s); q is the member's vec4 index, base its member's first vec4 (s's block: sbase).
fn store4(base: u32, q: u32, pv: vec4<f32>, mv: vec4<f32>, vv: vec4<f32>, sv: vec4<f32>, moments: u32) {
    let at = base + q;
    if (all(live(q))) {
        param[at] = pv;
        if (moments >= 1u) { m[at] = mv; }
        if (moments >= 2u) { v[at] = vv; }
        if (moments >= 3u) { s[at] = sv; }
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (q * 4u + j < P.len) {
            param[at][j] = pv[j];
            if (moments >= 1u) { m[at][j] = mv[j]; }
            if (moments >= 2u) { v[at][j] = vv[j]; }
            if (moments >= 3u) { s[at][j] = sv[j]; }
        }
    }
}

// The member's row in the member table.
fn member_row(mem: u32) -> u32 {
    return mem * P.ms[1].x;
}

fn lr_of(mem: u32) -> f32 {
    return lrs[mem * P.ms[1].y + P.lr_at];
}

// The member's gradient at vec4 q, clipped as its table row says (clipvalue, global_clipnorm).
fn clipped_grad(mem: u32, row: u32, at: u32) -> vec4<f32> {
    var g = grad[at];
    let value = table[row + MT_CLIP_VALUE];
    if (value > 0.0) {
        g = clamp(g, vec4<f32>(-value), vec4<f32>(value));
    }
    let c = table[row + MT_GLOBAL_CLIP_NORM];
    if (c > 0.0) {
        // Keras's global_norm: the variables' sums of squares summed in order, then the root.
        let base = mem * P.ms[1].w;
        var total = 0.0;
        for (var j = 0u; j < P.variables; j = j + 1u) {
            total = total + norms[base + j];
        }
        let norm = sqrt(total);
        // clip_by_global_norm: NaN for a non-finite norm (norm - norm).
        let scale = c * min(1.0 / norm, 1.0 / c) + (norm - norm);
        g = g * scale;
    }
    return g;
}

// Keras's decoupled weight decay, before the update: w - w * wd * lr (lr undecorated).
fn decayed(mem: u32, row: u32, w: vec4<f32>) -> vec4<f32> {
    let wd = table[row + MT_WEIGHT_DECAY];
    if (wd == 0.0) { return w; }
    let lr = lrs[mem * P.ms[1].y + P.lr_at + 1u];
    return w - w * wd * lr;
}

// Keras's Adam: epsilon is added to sqrt(v) outside the bias correction; with amsgrad the
// running maximum of v (in s) takes v's place. The table holds 1 - beta as Keras computes it
// (Python's double, then f32), which differs from f32's 1 - beta by up to 1.3e-5 relative.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let mem = gid.z;
    let row = member_row(mem);
    if (table[row + MT_ACTIVE] == 0.0) { return; }
    let one_minus_beta_1 = table[row + MT_ONE_MINUS_BETA_1];
    let one_minus_beta_2 = table[row + MT_ONE_MINUS_BETA_2];
    let epsilon = table[row + MT_EPSILON];
    let lr = lr_of(mem);
    let base = mem * (P.ms[0].x >> 2u);
    let at = base + q;
    let g = clipped_grad(mem, row, at);
    let w = decayed(mem, row, param[at]);
    let mq = m[at] + (g - m[at]) * one_minus_beta_1;
    let vq = v[at] + (g * g - v[at]) * one_minus_beta_2;
    if (table[row + MT_AMSGRAD] != 0.0) {
        let vhat = max(s[at], vq);
        store4(base, q, w - (mq * lr) / (sqrt(vhat) + epsilon), mq, vq, vhat, 3u);
        return;
    }
    store4(base, q, w - (mq * lr) / (sqrt(vq) + epsilon), mq, vq, vec4<f32>(0.0), 2u);
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
    let g = clipped_grad(mem, row, at);
    let w = decayed(mem, row, param[at]);
    if (momentum == 0.0) {
        store4(base, q, w - lr * g, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), 0u);
        return;
    }
    let mq = momentum * m[at] - lr * g;
    var pq = w + mq;
    if (table[row + MT_NESTEROV] != 0.0) {
        pq = w + (momentum * mq - lr * g);
    }
    store4(base, q, pq, mq, vec4<f32>(0.0), vec4<f32>(0.0), 1u);
}

// Keras 3's RMSprop: v = rho v + (1 - rho) g^2; centered: s = rho s + (1 - rho) g and the
// denominator sqrt(v - s^2 + epsilon), else sqrt(v + epsilon) (epsilon inside the root);
// increment = lr g / denominator; with momentum m = momentum m + increment, w -= m; else w -=
// increment.
@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_index(gid, nwg);
    if (q * 4u >= P.len) { return; }
    let mem = gid.z;
    let row = member_row(mem);
    if (table[row + MT_ACTIVE] == 0.0) { return; }
    let rho = table[row + MT_RHO];
    let one_minus_rho = table[row + MT_ONE_MINUS_RHO];
    let momentum = table[row + MT_MOMENTUM];
    let epsilon = table[row + MT_EPSILON];
    let lr = lr_of(mem);
    let base = mem * (P.ms[0].x >> 2u);
    let at = base + q;
    let g = clipped_grad(mem, row, at);
    let w = decayed(mem, row, param[at]);
    let vq = rho * v[at] + one_minus_rho * (g * g);
    var sq = s[at];
    var denominator = vq + epsilon;
    if (table[row + MT_CENTERED] != 0.0) {
        sq = rho * sq + one_minus_rho * g;
        denominator = vq - sq * sq + epsilon;
    }
    let increment = (lr * g) / sqrt(denominator);
    var mq = m[at];
    var pq = w - increment;
    if (momentum > 0.0) {
        mq = momentum * mq + increment;
        pq = w - mq;
    }
    store4(base, q, pq, mq, vq, sq, 3u);
}

var<workgroup> partial: array<f32, 256>;

// One workgroup per variable (strided when more than the grid): the sum of squares of its
// gradient segment offsets[j]..offsets[j + 1] into norms[j] (a tree over 256 partial sums);
// with P.clip, then each value scaled by the member's clipnorm c: g * c / max(norm, c), where
// norm is sqrt(sum) when sum > 0 and sum itself otherwise (Keras's `_clip_by_norm`). An inactive
// member's gradients are left alone (its update skips them).
@compute @workgroup_size(256)
fn grad_norms(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let mem = wg.z;
    let row = member_row(mem);
    let trains = table[row + MT_ACTIVE] != 0.0;
    let c = table[row + MT_CLIP_NORM];
    let gbase = mem * P.ms[2].y;
    let nbase = mem * P.ms[2].z;
    for (var j = wg.x; j < P.variables; j = j + nwg.x) {
        let lo = offsets[j];
        let hi = offsets[j + 1u];
        var acc = 0.0;
        for (var i = lo + li; i < hi; i = i + 256u) {
            let x = grad_w[gbase + i];
            acc = acc + x * x;
        }
        partial[li] = acc;
        workgroupBarrier();
        for (var h = 128u; h > 0u; h = h >> 1u) {
            if (li < h) { partial[li] = partial[li] + partial[li + h]; }
            workgroupBarrier();
        }
        let sum = partial[0];
        workgroupBarrier();
        if (li == 0u) { norms_w[nbase + j] = sum; }
        if (P.clip != 0u && trains && c > 0.0) {
            var norm = sum;
            if (sum > 0.0) { norm = sqrt(sum); }
            let denominator = max(norm, c);
            for (var i = lo + li; i < hi; i = i + 256u) {
                grad_w[gbase + i] = grad_w[gbase + i] * c / denominator;
            }
        }
    }
}

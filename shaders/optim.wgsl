// Optimizer updates over the whole flat parameter vector (all layers at once: one dispatch).
// P.total parameters. Adam: f0 = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) (from the host in f64),
// f1 = beta_1, f2 = beta_2, f3 = epsilon. SGD: f0 = lr, f1 = momentum, P.flags bit 0 = nesterov.
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

// Keras's Adam: epsilon is added to sqrt(v) outside the bias correction.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    let g = grad[i];
    let mi = m[i] + (g - m[i]) * (1.0 - P.f1);
    let vi = v[i] + (g * g - v[i]) * (1.0 - P.f2);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] - (mi * P.f0) / (sqrt(vi) + P.f3);
}

// Keras's SGD: m = momentum * m - lr * g; w += m (Nesterov: w += momentum * m - lr * g).
// With momentum 0 the host launches it with m bound but unused.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    let g = grad[i];
    if (P.f1 == 0.0) {
        param[i] = param[i] - P.f0 * g;
        return;
    }
    let mi = P.f1 * m[i] - P.f0 * g;
    m[i] = mi;
    if ((P.flags & 1u) != 0u) {
        param[i] = param[i] + P.f1 * mi - P.f0 * g;
    } else {
        param[i] = param[i] + mi;
    }
}

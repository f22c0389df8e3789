// Softmax over rows: one invocation per row of P.rows x P.cols values, in place. The plan runs
// softmax_forward after a layer whose activation is softmax (the layer's own kernel wrote the
// logits: its elementwise epilogue treats softmax as the identity), and softmax_backward on that
// layer's gradient before its backward pass, unless the loss fused it (shaders/loss.wgsl).

struct P_softmax { ms: array<vec4<u32>, 3>, rows: u32, cols: u32 }
@group(1) @binding(0) var<uniform> P: P_softmax;

@group(0) @binding(1) var<storage, read_write> v: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;

// v = exp(v - max) / sum(exp(v - max)) per row (the max subtracted first, so no overflow).
@compute @workgroup_size(256)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= P.rows) { return; }
    let b = gid.z * P.ms[0].x + r * P.cols;
    var mx = v[b];
    for (var j = 1u; j < P.cols; j = j + 1u) { mx = max(mx, v[b + j]); }
    var s = 0.0;
    for (var j = 0u; j < P.cols; j = j + 1u) {
        let e = exp(v[b + j] - mx);
        v[b + j] = e;
        s = s + e;
    }
    let inv = 1.0 / s;
    for (var j = 0u; j < P.cols; j = j + 1u) { v[b + j] = v[b + j] * inv; }
}

// The gradient of the softmax's input from that of its output g (in v) and its output y (out):
// dx = y * (g - sum(g * y)) per row.
@compute @workgroup_size(256)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= P.rows) { return; }
    let b = gid.z * P.ms[0].x + r * P.cols;
    let o = gid.z * P.ms[0].y + r * P.cols;
    var dot = 0.0;
    for (var j = 0u; j < P.cols; j = j + 1u) { dot = dot + v[b + j] * out[o + j]; }
    for (var j = 0u; j < P.cols; j = j + 1u) { v[b + j] = out[o + j] * (v[b + j] - dot); }
}

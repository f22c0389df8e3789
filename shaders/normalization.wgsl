// Normalization (Keras's preprocessing layer) over P.len = rows x P.width values of each member:
// y = (x - mean) / max(sqrt(variance), 1e-7), or with P.invert y = mean + x * max(sqrt(variance),
// 1e-7), as Keras 3 computes it; mean and variance are the layer's adapted, non-trainable state at
// P.state_off (mean[width], variance[width], count). Backward: dx = dy / std (dy * std inverted)
// times the derivative of the layer below's activation (P.derivative, from aux).
struct P_normalization {
    ms: array<vec4<u32>, 3>,
    len: u32, width: u32, state_off: u32, invert: u32, derivative: u32,
}
@group(1) @binding(0) var<uniform> P: P_normalization;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

const NORM_EPSILON: f32 = 1e-7;

// The feature's (mean, std) of member `mem`.
fn norm_stats(mem: u32, c: u32) -> vec2<f32> {
    let s0 = mem * P.ms[0].y + P.state_off;
    return vec2<f32>(state[s0 + c], max(sqrt(state[s0 + P.width + c]), NORM_EPSILON));
}

@compute @workgroup_size(256)
fn normalization_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    let s = norm_stats(mem, i % P.width);
    let x = src[mem * P.ms[0].x + i];
    var y = (x - s.x) / s.y;
    if (P.invert != 0u) { y = s.x + x * s.y; }
    dst[mem * P.ms[0].z + i] = y;
}

@compute @workgroup_size(256)
fn normalization_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    let s = norm_stats(mem, i % P.width);
    let d = act_grad_from_output(aux[mem * P.ms[0].w + i], P.derivative);
    let g = src[mem * P.ms[0].x + i];
    var dx = g / s.y;
    if (P.invert != 0u) { dx = g * s.y; }
    dst[mem * P.ms[0].z + i] = dx * d;
}

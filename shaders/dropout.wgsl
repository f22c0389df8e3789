// Inverted dropout over P.len values. The keep mask is never stored: both directions redraw it
// from random_unit(P.seed, P.step, P.layer, index), as does the CPU twin.
// P.keep_scale = 1 / (1 - rate) (from the host); P.apply_mask 0: identity (inference, or a rate of 0).
struct P_dropout {
    len: u32, apply_mask: u32, seed: u32, step: u32, layer: u32,
    derivative: u32,  // backward: ACT_* of the layer below
    rate: f32, keep_scale: f32,
}
@group(1) @binding(0) var<uniform> P: P_dropout;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;

fn keep_scale(i: u32) -> f32 {
    if (P.apply_mask == 0u) { return 1.0; }
    return select(0.0, P.keep_scale, random_unit(P.seed, P.step, P.layer, i) >= P.rate);
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    dst[i] = src[i] * keep_scale(i);
}

// dst = src ⊙ mask ⊙ act'(aux): the gradient through the mask and the layer below's activation (P.derivative).
@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    dst[i] = src[i] * keep_scale(i) * act_grad_from_output(aux[i], P.derivative);
}

// Inverted dropout over P.len values of each member. The keep mask is never stored: both
// directions redraw it from random_unit(seed, step, P.layer, index), as does the CPU twin; step is
// the member's update count (MT_STEP, before this epoch) plus P.step (the step in the epoch).
// The rate and 1 / (1 - rate) are the member's (member table, binding 4); the seed is the layer's
// own P.seed when P.own_seed, else the member's. P.apply_mask 0: identity (inference).
struct P_dropout {
    ms: array<vec4<u32>, 3>,
    len: u32, apply_mask: u32, own_seed: u32, seed: u32, step: u32, layer: u32,
    derivative: u32,  // backward: ACT_* of the layer below
}
@group(1) @binding(0) var<uniform> P: P_dropout;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<f32>;

fn keep_scale(mem: u32, i: u32) -> f32 {
    if (P.apply_mask == 0u) { return 1.0; }
    let row = mem * P.ms[0].w;
    let seed = select(bitcast<u32>(table[row + MT_SEED]), P.seed, P.own_seed != 0u);
    let rate = table[row + MT_DROPOUT + 2u * P.layer];
    let scale = table[row + MT_DROPOUT + 2u * P.layer + 1u];
    let step = bitcast<u32>(table[row + MT_STEP]) + P.step;
    return select(0.0, scale, random_unit(seed, step, P.layer, i) >= rate);
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    dst[mem * P.ms[0].y + i] = src[mem * P.ms[0].x + i] * keep_scale(mem, i);
}

// dst = src ⊙ mask ⊙ act'(aux): the gradient through the mask and the layer below's activation (P.derivative).
@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    let d = act_grad_from_output(aux[mem * P.ms[0].z + i], P.derivative);
    dst[mem * P.ms[0].y + i] = src[mem * P.ms[0].x + i] * keep_scale(mem, i) * d;
}

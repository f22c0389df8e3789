// Inverted dropout over P.total values. The keep mask is never stored: both directions redraw it
// from random_unit(P.seed, P.step, P.layer, index), as does the CPU twin.
// f0 = rate, f1 = 1 / (1 - rate) (from the host); P.flags bit 0 = training (else identity).
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;

fn keep_scale(i: u32) -> f32 {
    if ((P.flags & 1u) == 0u) { return 1.0; }
    return select(0.0, P.f1, random_unit(P.seed, P.step, P.layer, i) >= P.f0);
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    dst[i] = src[i] * keep_scale(i);
}

// dst = src ⊙ mask ⊙ act'(aux): the gradient through the mask and the layer below's activation (P.dact).
@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    dst[i] = src[i] * keep_scale(i) * act_grad_from_output(aux[i], P.dact);
}

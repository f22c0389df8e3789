// Elementwise kernels over P.total values.

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;

// Activation layer forward: dst = act(src), P.act.
@compute @workgroup_size(256)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    dst[i] = act_forward(src[i], P.act);
}

// Passes a gradient down unchanged except for the layer below's activation derivative:
// dst = src ⊙ act'(aux), P.dact (aux = the layer below's output).
@compute @workgroup_size(256)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.total) { return; }
    dst[i] = src[i] * act_grad_from_output(aux[i], P.dact);
}

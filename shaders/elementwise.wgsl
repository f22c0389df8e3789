// Elementwise kernels over P.len values of each member.

struct P_elementwise { ms: array<vec4<u32>, 3>, len: u32, activation: u32, derivative: u32 }
@group(1) @binding(0) var<uniform> P: P_elementwise;

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;

// Activation layer forward: dst = act(src), P.activation.
@compute @workgroup_size(256)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    dst[mem * P.ms[0].y + i] = act_forward(src[mem * P.ms[0].x + i], P.activation);
}

// Passes a gradient down unchanged except for the layer below's activation derivative:
// dst = src ⊙ act'(aux), P.derivative (aux = the layer below's output).
@compute @workgroup_size(256)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= P.len) { return; }
    let mem = gid.z;
    let d = act_grad_from_output(aux[mem * P.ms[0].z + i], P.derivative);
    dst[mem * P.ms[0].y + i] = src[mem * P.ms[0].x + i] * d;
}

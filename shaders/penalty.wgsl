// A weight regularizer over P.len parameters at P.offset of each member (one workgroup per
// member): adds l1·sign(w) + 2·l2·w to the gradients when P.write_gradient (after the backward
// pass wrote them), and P.rows · (l1·Σ|w| + l2·Σw²) to the loss sum acc[P.slot], which already
// holds the batch's per-sample loss sum (the host divides by the rows once per epoch, so a
// penalty counted once per row adds exactly the penalty to the mean, as Keras's batch loss does).
struct P_penalty {
    ms: array<vec4<u32>, 3>,
    offset: u32, len: u32, l1: f32, l2: f32, rows: u32, write_gradient: u32, slot: u32,
}
@group(1) @binding(0) var<uniform> P: P_penalty;

@group(0) @binding(1) var<storage, read> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn penalty(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let mem = wid.z;
    let p0 = mem * P.ms[0].x + P.offset;
    let g0 = mem * P.ms[0].y + P.offset;
    var sum = 0.0;
    for (var i = tid; i < P.len; i = i + 256u) {
        let w = param[p0 + i];
        if (P.write_gradient != 0u) { grad[g0 + i] = grad[g0 + i] + (P.l1 * sign(w) + 2.0 * P.l2 * w); }
        sum = sum + (P.l1 * abs(w) + P.l2 * w * w);
    }
    partial[tid] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
        workgroupBarrier();
    }
    if (tid == 0u) {
        let a = mem * P.ms[0].z + P.slot;
        acc[a] = acc[a] + partial[0] * f32(P.rows);
    }
}

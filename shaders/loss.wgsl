// Loss, its gradient and the metrics of one batch, reduced on the GPU by one workgroup per member.
// pred and y are P.rows x P.cols row-major. P.loss = LOSS_*; P.output_activation = the output
// layer's activation (its derivative is fused into the gradient); P.write_gradient; P.accumulate:
// add to the accumulators (else overwrite them); P.metrics = metric mask (bit METRIC_*).
// acc[P.slot] receives the batch's summed per-sample loss, acc[P.slot + 1 + j] the summed
// per-sample value of the j-th requested metric (in METRIC_* order). Dividing by the row count is
// left to the host, once per epoch.
struct P_loss {
    ms: array<vec4<u32>, 3>,
    rows: u32, cols: u32, loss: u32, output_activation: u32,
    metrics: u32, write_gradient: u32, accumulate: u32, slot: u32,
}
@group(1) @binding(0) var<uniform> P: P_loss;

@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;

const LOSS_MAE: u32 = 0u;
const LOSS_MSE: u32 = 1u;
const LOSS_BCE: u32 = 2u;
const LOSS_BCE_LOGITS: u32 = 3u;
const EPS: f32 = 1e-7;

var<workgroup> partial: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn loss(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let mem = wid.z;
    let p0 = mem * P.ms[0].x;
    let y0 = mem * P.ms[0].y;
    let g0 = mem * P.ms[0].z;
    let a0 = mem * P.ms[0].w + P.slot;
    let count = P.rows * P.cols;
    let inv = 1.0 / f32(count);
    var sums = vec4<f32>(0.0);
    for (var e = tid; e < count; e = e + 256u) {
        let p = pred[p0 + e];
        let t = y[y0 + e];
        let d = p - t;
        var l = 0.0;
        var g = 0.0;
        switch P.loss {
            case 0u: { l = abs(d); g = sign(d); }
            case 1u: { l = d * d; g = 2.0 * d; }
            case 2u: {
                let pc = clamp(p, EPS, 1.0 - EPS);
                l = -(t * log(pc) + (1.0 - t) * log(1.0 - pc));
                // d/dp of the clipped loss: zero where the clip is active.
                if (p > EPS && p < 1.0 - EPS) { g = (pc - t) / (pc * (1.0 - pc)); }
            }
            default: {
                l = max(p, 0.0) - p * t + log(1.0 + exp(-abs(p)));
                g = 1.0 / (1.0 + exp(-p)) - t;
            }
        }
        if (P.write_gradient != 0u) {
            var gz = g * inv;
            if (P.loss != LOSS_BCE_LOGITS) { gz = gz * act_grad_from_output(p, P.output_activation); }
            grad[g0 + e] = gz;
        }
        sums.x = sums.x + l;
        var slot = 1u;
        if ((P.metrics & 1u) != 0u) { sums[slot] = sums[slot] + abs(d); slot = slot + 1u; }
        if ((P.metrics & 2u) != 0u) { sums[slot] = sums[slot] + d * d; slot = slot + 1u; }
        if ((P.metrics & 4u) != 0u) {
            let hit = select(0.0, 1.0, select(0.0, 1.0, p > 0.5) == t);
            sums[slot] = sums[slot] + hit;
        }
    }
    partial[tid] = sums;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
        workgroupBarrier();
    }
    if (tid == 0u) {
        let per_sample = partial[0] / f32(P.cols);
        let nvals = 1u + countOneBits(P.metrics);
        for (var j = 0u; j < nvals; j = j + 1u) {
            if (P.accumulate != 0u) {
                acc[a0 + j] = acc[a0 + j] + per_sample[j];
            } else {
                acc[a0 + j] = per_sample[j];
            }
        }
    }
}

// Confusion counts of one batch at a list of thresholds (Keras's AUC, Precision, Recall,
// TruePositives..FalseNegatives), one workgroup per member, one invocation per threshold: each
// invocation walks the batch's P.rows x P.cols values in order and counts, so the counts are
// exact (integers below 2^24 per batch), deterministic and need no atomics.
//
// Layout:
//   pred  P.rows x P.cols: the output layer's values, every output flattened (Keras's
//         multi_label=False).
//   y     P.rows rows of P.cols targets, each followed by the row's sample weight when
//         P.weighted; a target counts as positive when it is not 0 (Keras casts y_true to bool).
//   thr   P.thresholds pairs (t, s), shared by the members: s == 0 is a plain threshold,
//         `p > t` (Keras's general path); s > 0 is threshold t of Keras's evenly distributed
//         list of s + 1 (AUC's), counted as Keras's bucketed path does: `clip(p, 0, 1) * s > t`
//         (t = -1 for the first, always counted; t = s for the last, never).
//   acc   per threshold i, at P.slot + 4 i: (TP, FP, TN, FN). P.accumulate: add (else
//         overwrite: a pass's first batch). With P.weight_counts each value adds its row's
//         weight instead of 1 (Keras's weighted_metrics: true_labels = y * w, false_labels =
//         (1 - y) * w).
struct P_confusion {
    ms: array<vec4<u32>, 3>,
    rows: u32, cols: u32, thresholds: u32, slot: u32, accumulate: u32,
    weighted: u32, weight_counts: u32,
}
@group(1) @binding(0) var<uniform> P: P_confusion;

@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> thr: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;

@compute @workgroup_size(256)
fn confusion(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let mem = wid.z;
    let p0 = mem * P.ms[0].x;
    let y0 = mem * P.ms[0].y;
    let t0 = mem * P.ms[0].z;
    let a0 = mem * P.ms[0].w + P.slot;
    let count = P.rows * P.cols;
    let y_stride = P.cols + select(0u, 1u, P.weighted != 0u);
    for (var i = tid; i < P.thresholds; i = i + 256u) {
        let t = thr[t0 + 2u * i];
        let s = thr[t0 + 2u * i + 1u];
        var c = vec4<f32>(0.0);
        for (var e = 0u; e < count; e = e + 1u) {
            let p = pred[p0 + e];
            var above = p > t;
            if (s > 0.0) { above = clamp(p, 0.0, 1.0) * s > t; }
            let r = e / P.cols;
            let positive = y[y0 + r * y_stride + e % P.cols] != 0.0;
            var w = 1.0;
            if (P.weight_counts != 0u) { w = y[y0 + r * y_stride + P.cols]; }
            // (TP, FP, TN, FN): exactly one of the four gains the value.
            c = c + w * select(select(vec4<f32>(0.0, 0.0, 1.0, 0.0), vec4<f32>(0.0, 0.0, 0.0, 1.0), positive),
                           select(vec4<f32>(0.0, 1.0, 0.0, 0.0), vec4<f32>(1.0, 0.0, 0.0, 0.0), positive), above);
        }
        let a = a0 + 4u * i;
        if (P.accumulate != 0u) {
            acc[a] = acc[a] + c.x;
            acc[a + 1u] = acc[a + 1u] + c.y;
            acc[a + 2u] = acc[a + 2u] + c.z;
            acc[a + 3u] = acc[a + 3u] + c.w;
        } else {
            acc[a] = c.x;
            acc[a + 1u] = c.y;
            acc[a + 2u] = c.z;
            acc[a + 3u] = c.w;
        }
    }
}

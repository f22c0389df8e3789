// Loss, its gradient and the metrics of one batch, reduced on the GPU by one workgroup per member.
//
// Layout (what a new loss, metric or per-sample weight extends):
//   pred  P.rows x P.cols, row-major: the output layer's values (probabilities, or logits when the
//         loss says from_logits).
//   y     P.rows x (P.y_cols + P.weighted): P.y_cols = P.cols, or 1 (class indices) for the
//         sparse loss; with P.weighted each row ends with its sample weight w (the gather copies it
//         with the batch; w = 1 otherwise, and x * 1 keeps an unweighted fit's bits).
//   grad  P.rows x P.cols: d(mean loss) / d(the output layer's pre-activation): the output
//         activation's derivative P.output_activation is fused; with P.fused_softmax (a
//         cross-entropy on a softmax output) the gradient of the logits, (p - y) / rows, is written
//         and the host runs no softmax_backward.
//   acc   acc[P.slot] += the batch's summed per-sample loss; acc[P.slot + 1 + j] += the summed
//         per-sample value of the j-th requested metric, in METRIC_* bit order (P.metrics is the
//         mask). At most 8 sums (the loss and 7 metrics); dividing by the row count is left to
//         the host, once per epoch. P.accumulate: add (else overwrite: a pass's first batch).
//         P.weighted (Keras's sample_weight): every row's loss and gradient are multiplied by w
//         and acc[P.slot + 1 + metrics] += the batch's sum of w; the host still divides the loss
//         by the rows (Keras's sum_over_batch_size). P.weighted_metrics (Keras's
//         weighted_metrics): the metric values are multiplied by w too, and the host divides them
//         by sum(w); else they stay unweighted means, as Keras's plain `metrics`.
//
// Two paths, one workgroup of 256 invocations either way:
//   element path (elementwise losses, no row metric): invocation tid takes values tid, tid + 256..
//         and the sums are divided by P.cols at the end (a per-sample mean over the columns).
//   row path (P.row_path: a categorical loss or a row metric): invocation tid takes rows tid,
//         tid + 256..: the row's max, log-sum-exp, loss, gradient, argmax and the target's rank for
//         the accuracies. Elementwise losses and metrics are averaged over the row's columns there,
//         so every sum is already per sample.
struct P_loss {
    ms: array<vec4<u32>, 3>,
    rows: u32, cols: u32, loss: u32, output_activation: u32,
    metrics: u32, write_gradient: u32, accumulate: u32, slot: u32,
    y_cols: u32, row_path: u32, fused_softmax: u32, top_k: u32,
    label_smoothing: f32, weighted: u32, weighted_metrics: u32,
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
const LOSS_CCE: u32 = 4u;
const LOSS_CCE_LOGITS: u32 = 5u;
const LOSS_SCCE: u32 = 6u;
const LOSS_SCCE_LOGITS: u32 = 7u;
const METRIC_MAE: u32 = 1u;
const METRIC_MSE: u32 = 2u;
const METRIC_BINARY_ACCURACY: u32 = 4u;
const METRIC_CATEGORICAL_ACCURACY: u32 = 8u;
const METRIC_SPARSE_CATEGORICAL_ACCURACY: u32 = 16u;
const METRIC_TOP_K: u32 = 32u;
const METRIC_SPARSE_TOP_K: u32 = 64u;
const EPS: f32 = 1e-7;
const VALUES: u32 = 9u;
// Where the weight sum waits in the partial sums (after the loss and 7 metrics).
const WEIGHT_SUM: u32 = 8u;

var<workgroup> partial: array<array<f32, 9>, 256>;

// (loss, d loss / d p) of one value for the elementwise losses.
fn elementwise_loss(code: u32, p: f32, t: f32) -> vec2<f32> {
    let d = p - t;
    switch code {
        case 0u: { return vec2<f32>(abs(d), sign(d)); }
        case 1u: { return vec2<f32>(d * d, 2.0 * d); }
        case 2u: {
            let pc = clamp(p, EPS, 1.0 - EPS);
            let l = -(t * log(pc) + (1.0 - t) * log(1.0 - pc));
            // d/dp of the clipped loss: zero where the clip is active.
            var g = 0.0;
            if (p > EPS && p < 1.0 - EPS) { g = (pc - t) / (pc * (1.0 - pc)); }
            return vec2<f32>(l, g);
        }
        default: {
            return vec2<f32>(max(p, 0.0) - p * t + log(1.0 + exp(-abs(p))), 1.0 / (1.0 + exp(-p)) - t);
        }
    }
}

// Adds v to the next metric's sum when `bit` is requested.
fn add_metric(sums: ptr<function, array<f32, 9>>, slot: ptr<function, u32>, bit: u32, v: f32) {
    if ((P.metrics & bit) != 0u) {
        (*sums)[*slot] = (*sums)[*slot] + v;
        *slot = *slot + 1u;
    }
}

// Categorical cross-entropy's target j of the row at yb (label smoothing applied).
fn smoothed(yb: u32, j: u32) -> f32 {
    return y[yb + j] * (1.0 - P.label_smoothing) + P.label_smoothing / f32(P.cols);
}

fn element_path(tid: u32, p0: u32, y0: u32, g0: u32, sums: ptr<function, array<f32, 9>>) {
    let count = P.rows * P.cols;
    let inv = 1.0 / f32(count);
    let ys = P.y_cols + P.weighted;
    for (var e = tid; e < count; e = e + 256u) {
        let r = e / P.cols;
        var yi = y0 + e;
        var w = 1.0;
        if (P.weighted != 0u) {
            yi = y0 + r * ys + (e - r * P.cols);
            w = y[y0 + r * ys + P.y_cols];
        }
        let mw = select(1.0, w, P.weighted_metrics != 0u);
        let p = pred[p0 + e];
        let t = y[yi];
        let d = p - t;
        let lg = elementwise_loss(P.loss, p, t);
        if (P.write_gradient != 0u) {
            var gz = lg.y * inv * w;
            if (P.loss != LOSS_BCE_LOGITS) { gz = gz * act_grad_from_output(p, P.output_activation); }
            grad[g0 + e] = gz;
        }
        (*sums)[0] = (*sums)[0] + lg.x * w;
        (*sums)[WEIGHT_SUM] = (*sums)[WEIGHT_SUM] + w;
        var slot = 1u;
        add_metric(sums, &slot, METRIC_MAE, abs(d) * mw);
        add_metric(sums, &slot, METRIC_MSE, d * d * mw);
        add_metric(sums, &slot, METRIC_BINARY_ACCURACY, select(0.0, 1.0, select(0.0, 1.0, p > 0.5) == t) * mw);
    }
}

fn row_path(tid: u32, p0: u32, y0: u32, g0: u32, sums: ptr<function, array<f32, 9>>) {
    let n = P.cols;
    let code = P.loss;
    let sparse = code == LOSS_SCCE || code == LOSS_SCCE_LOGITS;
    let inv_rows = 1.0 / f32(P.rows);
    for (var r = tid; r < P.rows; r = r + 256u) {
        let pb = p0 + r * n;
        let yb = y0 + r * (P.y_cols + P.weighted);
        let gb = g0 + r * n;
        var w = 1.0;
        if (P.weighted != 0u) { w = y[yb + P.y_cols]; }
        let mw = select(1.0, w, P.weighted_metrics != 0u);
        // The row's max and argmax (the first of ties), the target class (cls).
        var mx = pred[pb];
        var am = 0u;
        for (var j = 1u; j < n; j = j + 1u) {
            if (pred[pb + j] > mx) { mx = pred[pb + j]; am = j; }
        }
        var cls = 0u;
        if (P.y_cols == 1u && n > 1u) {
            cls = min(u32(max(y[yb], 0.0)), n - 1u);
        } else {
            var ty = y[yb];
            for (var j = 1u; j < P.y_cols; j = j + 1u) {
                if (y[yb + j] > ty) { ty = y[yb + j]; cls = j; }
            }
        }
        // Row sums the categorical losses need: sum of exp(z - max), of p, of clipped p, of targets.
        var sum_exp = 0.0;
        var sum_p = 0.0;
        var sum_clip = 0.0;
        var sum_t = 0.0;
        for (var j = 0u; j < n; j = j + 1u) {
            let p = pred[pb + j];
            sum_exp = sum_exp + exp(p - mx);
            sum_p = sum_p + p;
            sum_clip = sum_clip + clamp(p, EPS, 1.0 - EPS);
            if (code == LOSS_CCE || code == LOSS_CCE_LOGITS) { sum_t = sum_t + smoothed(yb, j); }
        }
        let lse = mx + log(sum_exp);
        // CCE on probabilities: sum over j of t_j * mask_j (the clip inactive), for its gradient.
        var tm = 0.0;
        var l = 0.0;
        var emae = 0.0;
        var emse = 0.0;
        var ebin = 0.0;
        for (var j = 0u; j < n; j = j + 1u) {
            let p = pred[pb + j];
            switch code {
                case 4u: {
                    let q = p / sum_p;
                    let t = smoothed(yb, j);
                    l = l - t * log(clamp(q, EPS, 1.0 - EPS));
                    if (q > EPS && q < 1.0 - EPS) { tm = tm + t; }
                }
                case 5u: { l = l + smoothed(yb, j) * (lse - p); }
                default: {}
            }
            if (code <= LOSS_BCE_LOGITS) {
                let t = y[yb + j];
                l = l + elementwise_loss(code, p, t).x;
                emae = emae + abs(p - t);
                emse = emse + (p - t) * (p - t);
                ebin = ebin + select(0.0, 1.0, select(0.0, 1.0, p > 0.5) == t);
            }
        }
        let pt = pred[pb + cls];
        switch code {
            case 6u: { l = log(sum_clip) - log(clamp(pt, EPS, 1.0 - EPS)); }
            case 7u: { l = lse - pt; }
            default: {}
        }
        if (code <= LOSS_BCE_LOGITS) { l = l / f32(n); }
        if (P.write_gradient != 0u) {
            for (var j = 0u; j < n; j = j + 1u) {
                let p = pred[pb + j];
                let hit = select(0.0, 1.0, j == cls);
                var g = 0.0;
                var scale = inv_rows;
                switch code {
                    case 4u: {
                        if (P.fused_softmax != 0u) {
                            g = p * sum_t - smoothed(yb, j);
                        } else {
                            let q = p / sum_p;
                            var own = 0.0;
                            if (q > EPS && q < 1.0 - EPS) { own = smoothed(yb, j) / q; }
                            g = (tm - own) / sum_p;
                        }
                    }
                    case 5u: { g = exp(p - lse) * sum_t - smoothed(yb, j); }
                    case 6u: {
                        if (P.fused_softmax != 0u) {
                            g = p - hit;
                        } else if (p > EPS && p < 1.0 - EPS) {
                            g = 1.0 / sum_clip - hit / p;
                        }
                    }
                    case 7u: { g = exp(p - lse) - hit; }
                    default: {
                        g = elementwise_loss(code, p, y[yb + j]).y;
                        scale = inv_rows / f32(n);
                    }
                }
                var gz = g * scale * w;
                if (P.fused_softmax == 0u && code != LOSS_BCE_LOGITS) {
                    gz = gz * act_grad_from_output(p, P.output_activation);
                }
                grad[gb + j] = gz;
            }
        }
        // The cls's rank: outputs strictly above it (TensorFlow's in_top_k counts ties for it).
        var above = 0u;
        for (var j = 0u; j < n; j = j + 1u) {
            if (pred[pb + j] > pt) { above = above + 1u; }
        }
        let in_top_k = select(0.0, 1.0, above < P.top_k);
        let nf = f32(n);
        (*sums)[0] = (*sums)[0] + l * w;
        (*sums)[WEIGHT_SUM] = (*sums)[WEIGHT_SUM] + w;
        var slot = 1u;
        add_metric(sums, &slot, METRIC_MAE, emae / nf * mw);
        add_metric(sums, &slot, METRIC_MSE, emse / nf * mw);
        add_metric(sums, &slot, METRIC_BINARY_ACCURACY, ebin / nf * mw);
        add_metric(sums, &slot, METRIC_CATEGORICAL_ACCURACY, select(0.0, 1.0, am == cls) * mw);
        // Keras compares the label as a number with the argmax: a label of 2.5 matches nothing.
        add_metric(sums, &slot, METRIC_SPARSE_CATEGORICAL_ACCURACY, select(0.0, 1.0, f32(am) == y[yb]) * mw);
        add_metric(sums, &slot, METRIC_TOP_K, in_top_k * mw);
        add_metric(sums, &slot, METRIC_SPARSE_TOP_K, in_top_k * mw);
    }
}

@compute @workgroup_size(256)
fn loss(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let mem = wid.z;
    let p0 = mem * P.ms[0].x;
    let y0 = mem * P.ms[0].y;
    let g0 = mem * P.ms[0].z;
    let a0 = mem * P.ms[0].w + P.slot;
    var sums: array<f32, 9>;
    for (var j = 0u; j < VALUES; j = j + 1u) { sums[j] = 0.0; }
    if (P.row_path != 0u) {
        row_path(tid, p0, y0, g0, &sums);
    } else {
        element_path(tid, p0, y0, g0, &sums);
    }
    partial[tid] = sums;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (tid < s) {
            for (var j = 0u; j < VALUES; j = j + 1u) { partial[tid][j] = partial[tid][j] + partial[tid + s][j]; }
        }
        workgroupBarrier();
    }
    if (tid == 0u) {
        let divisor = select(f32(P.cols), 1.0, P.row_path != 0u);
        let nvals = 1u + countOneBits(P.metrics);
        for (var j = 0u; j < nvals; j = j + 1u) {
            let per_sample = partial[0][j] / divisor;
            if (P.accumulate != 0u) {
                acc[a0 + j] = acc[a0 + j] + per_sample;
            } else {
                acc[a0 + j] = per_sample;
            }
        }
        if (P.weighted != 0u) {
            let wsum = partial[0][WEIGHT_SUM] / divisor;
            if (P.accumulate != 0u) {
                acc[a0 + nvals] = acc[a0 + nvals] + wsum;
            } else {
                acc[a0 + nvals] = wsum;
            }
        }
    }
}

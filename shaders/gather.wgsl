// Copies one batch of rows of the dataset (x and y together) into each member's batch buffers, in
// the member's row order. P.rows rows; P.x_cols x columns; P.y_cols y columns; P.start = first
// position in the order; P.shuffled: gather through the member's `order` (its own rows, shuffled
// or not), else take dataset rows start.. in sequence. The dataset is shared (member stride 0:
// every member reads the same rows) or, for a chunk of a dataset streamed from the host, a member
// buffer holding each member's own rows in its order (`Plan::fill`).
struct P_gather { ms: array<vec4<u32>, 3>, rows: u32, x_cols: u32, y_cols: u32, start: u32, shuffled: u32 }
@group(1) @binding(0) var<uniform> P: P_gather;

@group(0) @binding(1) var<storage, read> x_all: array<f32>;
@group(0) @binding(2) var<storage, read> y_all: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> x_batch: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_batch: array<f32>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let width = P.x_cols + P.y_cols;
    if (i >= P.rows * width) { return; }
    let mem = gid.z;
    let r = i / width;
    let c = i % width;
    var src_row = P.start + r;
    if (P.shuffled != 0u) { src_row = order[mem * P.ms[0].z + src_row]; }
    if (c < P.x_cols) {
        x_batch[mem * P.ms[0].w + r * P.x_cols + c] = x_all[mem * P.ms[0].x + src_row * P.x_cols + c];
    } else {
        let cy = c - P.x_cols;
        y_batch[mem * P.ms[1].x + r * P.y_cols + cy] = y_all[mem * P.ms[0].y + src_row * P.y_cols + cy];
    }
}

// Copies one batch of rows of the dataset (x and y together) into the batch buffers, in the
// epoch's shuffled order. P.rows rows; P.n x columns; P.k y columns; P.start = first position in
// the order; P.flags bit 0: gather through `order`, else take rows start.. in sequence.
@group(0) @binding(1) var<storage, read> x_all: array<f32>;
@group(0) @binding(2) var<storage, read> y_all: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> x_batch: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_batch: array<f32>;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let width = P.n + P.k;
    if (i >= P.rows * width) { return; }
    let r = i / width;
    let c = i % width;
    var src_row = P.start + r;
    if ((P.flags & 1u) != 0u) { src_row = order[src_row]; }
    if (c < P.n) {
        x_batch[r * P.n + c] = x_all[src_row * P.n + c];
    } else {
        let cy = c - P.n;
        y_batch[r * P.k + cy] = y_all[src_row * P.k + cy];
    }
}

// matmul_tiled: the product for hardware GPUs. A 16 x 16 workgroup computes a 64 x 64 block of C,
// each invocation a 4 x 4 tile in registers (the Acc of dense.wgsl), k in steps of 16 through
// workgroup memory: every invocation loads 4 values of A's 64 x 16 block and 4 of B's 16 x 64
// block, with consecutive invocations on consecutive addresses of whichever layout the operand
// has (row- or column-major: coalesced either way), so each value of A and B is read from memory
// once per workgroup instead of once per invocation. The blocks are stored k-major as vec4s, so
// the inner loop reads one vec4 of A (4 rows) and one of B (4 columns) per k. Any strides, the
// implicit ones and every epilogue of dense.wgsl (load_a/load_b are bounds-checked: a block past
// an edge of C or k reads zeros; only stored outputs are written).
const TILED_M: u32 = 64u;
const TILED_N: u32 = 64u;
const TILED_K: u32 = 16u;

// [k][m / 4] and [k][n / 4]: 16 x 16 vec4 each.
var<workgroup> tiled_a: array<vec4<f32>, 256>;
var<workgroup> tiled_b: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    set_member(wid.z);
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * TILED_M;
    let n0 = wid.x * TILED_N;
    var acc = zero();
    for (var k0 = 0u; k0 < P.k; k0 = k0 + TILED_K) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = e * 256u + tid;
            // A's block: along k when rows are contiguous (a_cs = 1), else along m.
            var i = idx % TILED_M;
            var ka = idx / TILED_M;
            if (P.a_cs == 1u) {
                i = idx / TILED_K;
                ka = idx % TILED_K;
            }
            tiled_a[ka * 16u + (i >> 2u)][i & 3u] = load_a(m0 + i, k0 + ka);
            // B's block: along n when rows are contiguous (b_cs = 1), else along k.
            var j = idx / TILED_K;
            var kb = idx % TILED_K;
            if (P.b_cs == 1u) {
                j = idx % TILED_N;
                kb = idx / TILED_N;
            }
            tiled_b[kb * 16u + (j >> 2u)][j & 3u] = load_b(k0 + kb, n0 + j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILED_K; kk = kk + 1u) {
            let av = tiled_a[kk * 16u + lid.y];
            let bv = tiled_b[kk * 16u + lid.x];
            acc.r0 = acc.r0 + av.x * bv;
            acc.r1 = acc.r1 + av.y * bv;
            acc.r2 = acc.r2 + av.z * bv;
            acc.r3 = acc.r3 + av.w * bv;
        }
        workgroupBarrier();
    }
    let row0 = m0 + lid.y * 4u;
    let col0 = n0 + lid.x * 4u;
    if (row0 < P.m && col0 < P.n) {
        store_tile(row0, col0, acc);
    }
}

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

// Element `idx` of an operand block `len` long (rows of A, columns of B) and `depth` deep (k), as
// (position along len, k): consecutive elements run along k when the operand is contiguous along
// k, else along len, so consecutive invocations load consecutive addresses either way.
fn block_coord(idx: u32, len: u32, depth: u32, along_k: bool) -> vec2<u32> {
    if (along_k) {
        return vec2<u32>(idx / depth, idx % depth);
    }
    return vec2<u32>(idx % len, idx / len);
}

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
            let a = block_coord(idx, TILED_M, TILED_K, P.a_cs == 1u);
            tiled_a[a.y * 16u + (a.x >> 2u)][a.x & 3u] = load_a(m0 + a.x, k0 + a.y);
            let b = block_coord(idx, TILED_N, TILED_K, P.b_cs != 1u);
            tiled_b[b.y * 16u + (b.x >> 2u)][b.x & 3u] = load_b(k0 + b.y, n0 + b.x);
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

// matmul_tiled128: the large-product configuration. A 16 x 16 workgroup computes 128 x 128 of C,
// each invocation 8 x 8 in registers as four 4 x 4 tiles 64 apart in each direction (so the 16
// invocations of a row read 16 consecutive vec4s of the block: no bank conflicts), k in steps of
// 8 through workgroup memory (16 KiB, WebGPU's guaranteed maximum). Twice the outputs per value
// loaded of matmul_tiled, for products with enough 128 x 128 blocks to fill a large GPU.
const T128_MN: u32 = 128u;
const T128_K: u32 = 8u;

// [k][m / 4] and [k][n / 4]: 8 x 32 vec4 each.
var<workgroup> t128_a: array<vec4<f32>, 256>;
var<workgroup> t128_b: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn matmul_tiled128(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    set_member(wid.z);
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * T128_MN;
    let n0 = wid.x * T128_MN;
    var c00 = zero();
    var c01 = zero();
    var c10 = zero();
    var c11 = zero();
    for (var k0 = 0u; k0 < P.k; k0 = k0 + T128_K) {
        // 1024 values of each block, 4 per invocation, consecutive invocations on consecutive
        // addresses of the operand's own layout.
        for (var e = 0u; e < 4u; e = e + 1u) {
            let idx = e * 256u + tid;
            let a = block_coord(idx, T128_MN, T128_K, P.a_cs == 1u);
            t128_a[a.y * 32u + (a.x >> 2u)][a.x & 3u] = load_a(m0 + a.x, k0 + a.y);
            let b = block_coord(idx, T128_MN, T128_K, P.b_cs != 1u);
            t128_b[b.y * 32u + (b.x >> 2u)][b.x & 3u] = load_b(k0 + b.y, n0 + b.x);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < T128_K; kk = kk + 1u) {
            let a0 = t128_a[kk * 32u + lid.y];
            let a1 = t128_a[kk * 32u + 16u + lid.y];
            let b0 = t128_b[kk * 32u + lid.x];
            let b1 = t128_b[kk * 32u + 16u + lid.x];
            c00.r0 = c00.r0 + a0.x * b0;
            c00.r1 = c00.r1 + a0.y * b0;
            c00.r2 = c00.r2 + a0.z * b0;
            c00.r3 = c00.r3 + a0.w * b0;
            c01.r0 = c01.r0 + a0.x * b1;
            c01.r1 = c01.r1 + a0.y * b1;
            c01.r2 = c01.r2 + a0.z * b1;
            c01.r3 = c01.r3 + a0.w * b1;
            c10.r0 = c10.r0 + a1.x * b0;
            c10.r1 = c10.r1 + a1.y * b0;
            c10.r2 = c10.r2 + a1.z * b0;
            c10.r3 = c10.r3 + a1.w * b0;
            c11.r0 = c11.r0 + a1.x * b1;
            c11.r1 = c11.r1 + a1.y * b1;
            c11.r2 = c11.r2 + a1.z * b1;
            c11.r3 = c11.r3 + a1.w * b1;
        }
        workgroupBarrier();
    }
    let row0 = m0 + lid.y * 4u;
    let col0 = n0 + lid.x * 4u;
    store_tile(row0, col0, c00);
    store_tile(row0, col0 + 64u, c01);
    store_tile(row0 + 64u, col0, c10);
    store_tile(row0 + 64u, col0 + 64u, c11);
}

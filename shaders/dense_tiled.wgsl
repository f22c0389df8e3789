// The products for hardware GPUs, appended to dense.wgsl in a module of their own (the tiled
// module: `DenseModule::Tiled`, made on first use, so llvmpipe's Dense module is unchanged), whose
// pipelines set the constants below per launch.
//
// matmul_tiled: a 16 x 16 workgroup computes a 64 x 64 block of C, each invocation a 4 x 4 tile in
// registers (the Acc of dense.wgsl), k in steps of 16 through workgroup memory: the workgroup
// stages A's 64 x 16 block and B's 16 x 64 block (stage_a, stage_b), so each value of A and B is
// read from memory once per workgroup instead of once per invocation. The blocks are stored k-major
// as vec4s, so the inner loop reads one vec4 of A (4 rows) and one of B (4 columns) per k. Any
// strides, the implicit ones and every epilogue of dense.wgsl (load_a/load_b are bounds-checked: a
// block past an edge of C or k reads zeros; only stored outputs are written).
//
// Staging reads each operand along its contiguous axis, whichever layout it has (row- or
// column-major: the forward X·W, dX = dZ·Wᵀ and dW = Xᵀ·dZ alike), so consecutive invocations
// read consecutive addresses. With A_VEC4 / B_VEC4 (set by the host when the operand's offset,
// every member's, and its other stride are multiples of 4: `Vec4Loads::of`), each invocation
// reads its 4 values as one vec4 along that axis; a vec4 that would cross the stored part of the
// operand (an edge of the product, the implicit ones) takes the checked scalar loads.
//
// Not built: a transposed copy of an operand written once per step so that every operand is
// contiguous along the same axis. Coalescing does not need it (staging reads along the contiguous
// axis of either layout, as vec4s when aligned); the layout only decides whether a staged vec4
// lands in workgroup memory as one vec4 store (A column-major, B row-major) or as four scalar
// stores (A row-major, B column-major), with 4-way (64 x 64) or 2-way (128 x 128) bank conflicts
// on 32 banks. Modelled for a large NVIDIA GPU (BENCHMARKS.md, issue 15's tiled products): no
// cost that matters for matmul_tiled128, which large products run (its workgroup memory is busy
// half the time its multiply-adds take, transposed layouts included); 6-25% for
// matmul_tiled on the transposed layouts, a cost of workgroup-memory stores that a swizzled or
// padded block layout removes at no memory traffic, where a transpose would cost a dispatch and a
// read and write of the whole operand per step, each copy reused by one product only (X by the
// forward product, W by dX; dW reads X column-major already). Left for a hardware profile.
//
// The tiled module is also made without runtime checks (`GpuOptions::unchecked_products`), used
// for a launch only when `MatmulArgs::tiled_in_bounds` proves its every global index in range;
// the argument that this suffices is in src/device/gpu/matmul/mod.rs (`SAFETY`). Whatever is
// added here must keep it: workgroup-memory and vector indices bounded by constants, integer
// divisions by nonzero constants, loops bounded by constants or by P.k < 2^31, global indices
// only those of load_a, load_b and store_row (or their vec4 forms inside the stored region).
const TILED_M: u32 = 64u;
const TILED_N: u32 = 64u;
const TILED_K: u32 = 16u;

// Pipeline constants: A (B) is staged by vec4 loads along its contiguous axis.
override A_VEC4: bool = false;
override B_VEC4: bool = false;

// Element `idx` of an operand block `len` long (rows of A, columns of B) and `depth` deep (k), as
// (position along len, k): consecutive elements run along k when the operand is contiguous along
// k, else along len, so consecutive invocations load consecutive addresses either way.
fn block_coord(idx: u32, len: u32, depth: u32, along_k: bool) -> vec2<u32> {
    if (along_k) {
        return vec2<u32>(idx / depth, idx % depth);
    }
    return vec2<u32>(idx % len, idx / len);
}

// The operand blocks of one k step, k-major: [k][len / 4] vec4s (len = 64 or 128 of A's rows and
// of B's columns, depth 16 or 8 of k: 256 vec4s, 4 KiB, each).
var<workgroup> blk_a: array<vec4<f32>, 256>;
var<workgroup> blk_b: array<vec4<f32>, 256>;

// A's len x depth block at (m0, k0) into blk_a: invocation `tid` (0..255) stages 4 values.
fn stage_a(tid: u32, m0: u32, k0: u32, len: u32, depth: u32) {
    let row = len >> 2u;
    if (!A_VEC4) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let a = block_coord(e * 256u + tid, len, depth, P.a_cs == 1u);
            blk_a[a.y * row + (a.x >> 2u)][a.x & 3u] = load_a(m0 + a.x, k0 + a.y);
        }
        return;
    }
    if (P.a_cs == 1u) {
        // Along k (row-major A): depth / 4 vec4s per row, landing in 4 rows of blk_a.
        let i = tid / (depth >> 2u);
        let kk = (tid % (depth >> 2u)) * 4u;
        var v = vec4<f32>(0.0);
        if (m0 + i < stored_m() && k0 + kk + 4u <= stored_k()) {
            v = a[(A0 + (m0 + i) * P.a_rs + k0 + kk) >> 2u];
        } else {
            for (var j = 0u; j < 4u; j = j + 1u) { v[j] = load_a(m0 + i, k0 + kk + j); }
        }
        for (var j = 0u; j < 4u; j = j + 1u) { blk_a[(kk + j) * row + (i >> 2u)][i & 3u] = v[j]; }
    } else {
        // Along m (column-major A, dW's Xᵀ): len / 4 vec4s per k, each one vec4 of blk_a.
        let i = (tid % row) * 4u;
        let kk = tid / row;
        var v = vec4<f32>(0.0);
        if (m0 + i + 4u <= stored_m() && k0 + kk < stored_k()) {
            v = a[(A0 + m0 + i + (k0 + kk) * P.a_cs) >> 2u];
        } else {
            for (var j = 0u; j < 4u; j = j + 1u) { v[j] = load_a(m0 + i + j, k0 + kk); }
        }
        blk_a[kk * row + (i >> 2u)] = v;
    }
}

// B's depth x len block at (k0, n0) into blk_b, as stage_a.
fn stage_b(tid: u32, n0: u32, k0: u32, len: u32, depth: u32) {
    let row = len >> 2u;
    if (!B_VEC4) {
        for (var e = 0u; e < 4u; e = e + 1u) {
            let b = block_coord(e * 256u + tid, len, depth, P.b_cs != 1u);
            blk_b[b.y * row + (b.x >> 2u)][b.x & 3u] = load_b(k0 + b.y, n0 + b.x);
        }
        return;
    }
    if (P.b_cs == 1u) {
        // Along n (row-major B): len / 4 vec4s per k, each one vec4 of blk_b.
        let j = (tid % row) * 4u;
        let kk = tid / row;
        var v = vec4<f32>(0.0);
        if (n0 + j + 4u <= P.n && k0 + kk < P.k) {
            v = b[(B0 + (k0 + kk) * P.b_rs + n0 + j) >> 2u];
        } else {
            for (var t = 0u; t < 4u; t = t + 1u) { v[t] = load_b(k0 + kk, n0 + j + t); }
        }
        blk_b[kk * row + (j >> 2u)] = v;
    } else {
        // Along k (column-major B, dX's Wᵀ): depth / 4 vec4s per column, landing in 4 rows.
        let j = tid / (depth >> 2u);
        let kk = (tid % (depth >> 2u)) * 4u;
        var v = vec4<f32>(0.0);
        if (n0 + j < P.n && k0 + kk + 4u <= P.k) {
            v = b[(B0 + (n0 + j) * P.b_cs + k0 + kk) >> 2u];
        } else {
            for (var t = 0u; t < 4u; t = t + 1u) { v[t] = load_b(k0 + kk + t, n0 + j); }
        }
        for (var t = 0u; t < 4u; t = t + 1u) { blk_b[(kk + t) * row + (j >> 2u)][j & 3u] = v[t]; }
    }
}

// acc + a ⊗ b: one k step of a 4 x 4 register tile (rows from a, columns from b).
fn outer_add(acc: Acc, a: vec4<f32>, b: vec4<f32>) -> Acc {
    return Acc(acc.r0 + a.x * b, acc.r1 + a.y * b, acc.r2 + a.z * b, acc.r3 + a.w * b);
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    set_member(wid.z);
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * TILED_M;
    let n0 = wid.x * TILED_N;
    var acc = zero();
    for (var k0 = 0u; k0 < P.k; k0 = k0 + TILED_K) {
        stage_a(tid, m0, k0, TILED_M, TILED_K);
        stage_b(tid, n0, k0, TILED_N, TILED_K);
        workgroupBarrier();
        for (var kk = 0u; kk < TILED_K; kk = kk + 1u) {
            let av = blk_a[kk * 16u + lid.y];
            let bv = blk_b[kk * 16u + lid.x];
            acc = outer_add(acc, av, bv);
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
// 8 through workgroup memory (8 KiB of WebGPU's guaranteed 16). Twice the outputs per value
// loaded of matmul_tiled, for products with enough 128 x 128 blocks to fill a large GPU.
const T128_MN: u32 = 128u;
const T128_K: u32 = 8u;

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
        stage_a(tid, m0, k0, T128_MN, T128_K);
        stage_b(tid, n0, k0, T128_MN, T128_K);
        workgroupBarrier();
        for (var kk = 0u; kk < T128_K; kk = kk + 1u) {
            let a0 = blk_a[kk * 32u + lid.y];
            let a1 = blk_a[kk * 32u + 16u + lid.y];
            let b0 = blk_b[kk * 32u + lid.x];
            let b1 = blk_b[kk * 32u + 16u + lid.x];
            c00 = outer_add(c00, a0, b0);
            c01 = outer_add(c01, a0, b1);
            c10 = outer_add(c10, a1, b0);
            c11 = outer_add(c11, a1, b1);
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

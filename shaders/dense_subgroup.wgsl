// Appended to dense.wgsl in a second module, made only on adapters with subgroup operations
// whose subgroups are exactly the 8 x-lanes of a workgroup row (llvmpipe at 256 bits; the
// backend checks subgroup_min_size == subgroup_max_size == 8 and a CPU adapter).
// matmul_nn_sg: matmul_nn where each of the 8 lanes (same row0) loads one 4-wide k chunk of the
// 4 A rows and the others take it with subgroupShuffle from a constant lane, so A costs 4 loads
// per 32 k instead of 32. Measured on llvmpipe: 721x512x512 forward 7.8 -> 10.7-11.4 GFLOP/s per
// 2 busy cores. Lanes are numbered by local_invocation_id.x (naga accepts
// subgroup_invocation_id only for 1-D workgroups).
@compute @workgroup_size(8, 8)
fn matmul_nn_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // 8 rows x 4 columns per invocation (two 4-row halves): B's loads serve twice the rows.
    let lane = lid.x;
    let row0 = gid.y * 8u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 8u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) {
            store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
            if (row0 + 4u < P.m) {
                store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, 0u, zero()));
            }
        }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    let k32 = stored_k() & ~31u;
    let ars = P.a_rs >> 2u;
    let brs = P.b_rs >> 2u;
    let abase = (P.a_off + row0 * P.a_rs) >> 2u;
    var bi = (P.b_off + col0) >> 2u;
    for (var kb = 0u; kb < k32; kb = kb + 32u) {
        let ai = abase + (kb >> 2u) + lane;
        let m0 = a[ai];
        let m1 = a[ai + ars];
        let m2 = a[ai + 2u * ars];
        let m3 = a[ai + 3u * ars];
        let m4 = a[ai + 4u * ars];
        let m5 = a[ai + 5u * ars];
        let m6 = a[ai + 6u * ars];
        let m7 = a[ai + 7u * ars];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let b0 = b[bi];
            let b1 = b[bi + brs];
            let b2 = b[bi + 2u * brs];
            let b3 = b[bi + 3u * brs];
            var t = subgroupShuffle(m0, q);
            s0 = s0 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m1, q);
            s1 = s1 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m2, q);
            s2 = s2 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m3, q);
            s3 = s3 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m4, q);
            s4 = s4 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m5, q);
            s5 = s5 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m6, q);
            s6 = s6 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m7, q);
            s7 = s7 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            bi = bi + 4u * brs;
        }
    }
    for (var kk = k32; kk < P.k; kk = kk + 1u) {
        let bv = b_row4(kk, col0);
        s0 = s0 + load_a(row0, kk) * bv;
        s1 = s1 + load_a(row0 + 1u, kk) * bv;
        s2 = s2 + load_a(row0 + 2u, kk) * bv;
        s3 = s3 + load_a(row0 + 3u, kk) * bv;
        s4 = s4 + load_a(row0 + 4u, kk) * bv;
        s5 = s5 + load_a(row0 + 5u, kk) * bv;
        s6 = s6 + load_a(row0 + 6u, kk) * bv;
        s7 = s7 + load_a(row0 + 7u, kk) * bv;
    }
    store_tile(row0, col0, Acc(s0, s1, s2, s3));
    store_tile(row0 + 4u, col0, Acc(s4, s5, s6, s7));
}

// matmul_nt_sg: matmul_nt (dX = dZ·Wᵀ) with A's rows shared the same way, 8 rows x 4 columns.
@compute @workgroup_size(8, 8)
fn matmul_nt_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x;
    let row0 = gid.y * 8u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 8u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) {
            store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
            if (row0 + 4u < P.m) {
                store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, 0u, zero()));
            }
        }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    let k32 = stored_k() & ~31u;
    let ars = P.a_rs >> 2u;
    let bcs = P.b_cs >> 2u;
    let abase = (P.a_off + row0 * P.a_rs) >> 2u;
    var bi = (P.b_off + col0 * P.b_cs) >> 2u;
    for (var kb = 0u; kb < k32; kb = kb + 32u) {
        let ai = abase + (kb >> 2u) + lane;
        let m0 = a[ai];
        let m1 = a[ai + ars];
        let m2 = a[ai + 2u * ars];
        let m3 = a[ai + 3u * ars];
        let m4 = a[ai + 4u * ars];
        let m5 = a[ai + 5u * ars];
        let m6 = a[ai + 6u * ars];
        let m7 = a[ai + 7u * ars];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let c0 = b[bi];
            let c1 = b[bi + bcs];
            let c2 = b[bi + 2u * bcs];
            let c3 = b[bi + 3u * bcs];
            var t = subgroupShuffle(m0, q);
            s0 = s0 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m1, q);
            s1 = s1 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m2, q);
            s2 = s2 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m3, q);
            s3 = s3 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m4, q);
            s4 = s4 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m5, q);
            s5 = s5 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m6, q);
            s6 = s6 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m7, q);
            s7 = s7 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            bi = bi + 1u;
        }
    }
    store_tile(row0, col0, tile_scalar(row0, col0, k32, Acc(s0, s1, s2, s3)));
    store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, k32, Acc(s4, s5, s6, s7)));
}

// matmul_tn_sg: matmul_tn (dW = Xᵀ·dZ), 8 rows x 4 columns: A's 8 rows at one k are two vec4s;
// lane l loads those at k = kb + l and the others take them by shuffle (2 A loads per 8 k).
@compute @workgroup_size(8, 8)
fn matmul_tn_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x;
    let row0 = gid.y * 8u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 8u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) {
            store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
            if (row0 + 4u < P.m) {
                store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, 0u, zero()));
            }
        }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    let k8 = stored_k() & ~7u;
    let brs = P.b_rs >> 2u;
    var bi = (P.b_off + col0) >> 2u;
    for (var kb = 0u; kb < k8; kb = kb + 8u) {
        let at = (P.a_off + row0 + (kb + lane) * P.a_cs) >> 2u;
        let m = a[at];
        let n = a[at + 1u];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let bv = b[bi];
            let u = subgroupShuffle(m, q);
            let v = subgroupShuffle(n, q);
            s0 = s0 + u.x * bv;
            s1 = s1 + u.y * bv;
            s2 = s2 + u.z * bv;
            s3 = s3 + u.w * bv;
            s4 = s4 + v.x * bv;
            s5 = s5 + v.y * bv;
            s6 = s6 + v.z * bv;
            s7 = s7 + v.w * bv;
            bi = bi + brs;
        }
    }
    store_tile(row0, col0, tile_scalar(row0, col0, k8, Acc(s0, s1, s2, s3)));
    store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, k8, Acc(s4, s5, s6, s7)));
}

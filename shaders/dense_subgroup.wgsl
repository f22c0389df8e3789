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
    let lane = lid.x;
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    // The 8 lanes of a subgroup share row0: each loads one 4-wide k chunk of the 4 A rows and
    // the others get it by subgroupShuffle from a constant lane. Needs every lane interior.
    if (!subgroupAll(live && interior(row0, col0))) {
        if (live) { store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero())); }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let ks = stored_k();
    let k32 = ks & ~31u;
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
        for (var q = 0u; q < 8u; q = q + 1u) {
            let a0 = subgroupShuffle(m0, q);
            let a1 = subgroupShuffle(m1, q);
            let a2 = subgroupShuffle(m2, q);
            let a3 = subgroupShuffle(m3, q);
            let b0 = b[bi];
            let b1 = b[bi + brs];
            let b2 = b[bi + 2u * brs];
            let b3 = b[bi + 3u * brs];
            s0 = s0 + a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
            s1 = s1 + a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
            s2 = s2 + a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
            s3 = s3 + a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
            bi = bi + 4u * brs;
        }
    }
    for (var kk = k32; kk < P.k; kk = kk + 1u) {
        let bv = b_row4(kk, col0);
        s0 = s0 + load_a(row0, kk) * bv;
        s1 = s1 + load_a(row0 + 1u, kk) * bv;
        s2 = s2 + load_a(row0 + 2u, kk) * bv;
        s3 = s3 + load_a(row0 + 3u, kk) * bv;
    }
    store_tile(row0, col0, Acc(s0, s1, s2, s3));
}

// matmul_nt_sg: matmul_nt (dX = dZ·Wᵀ) with A's rows shared the same way (4 loads per 32 k).
@compute @workgroup_size(8, 8)
fn matmul_nt_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x;
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && interior(row0, col0))) {
        if (live) { store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero())); }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
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
        for (var q = 0u; q < 8u; q = q + 1u) {
            let a0 = subgroupShuffle(m0, q);
            let a1 = subgroupShuffle(m1, q);
            let a2 = subgroupShuffle(m2, q);
            let a3 = subgroupShuffle(m3, q);
            let c0 = b[bi];
            let c1 = b[bi + bcs];
            let c2 = b[bi + 2u * bcs];
            let c3 = b[bi + 3u * bcs];
            s0 = s0 + vec4<f32>(dot(a0, c0), dot(a0, c1), dot(a0, c2), dot(a0, c3));
            s1 = s1 + vec4<f32>(dot(a1, c0), dot(a1, c1), dot(a1, c2), dot(a1, c3));
            s2 = s2 + vec4<f32>(dot(a2, c0), dot(a2, c1), dot(a2, c2), dot(a2, c3));
            s3 = s3 + vec4<f32>(dot(a3, c0), dot(a3, c1), dot(a3, c2), dot(a3, c3));
            bi = bi + 1u;
        }
    }
    store_tile(row0, col0, tile_scalar(row0, col0, k32, Acc(s0, s1, s2, s3)));
}

// matmul_tn_sg: matmul_tn (dW = Xᵀ·dZ): A's 4 rows at one k are one vec4; lane l loads the one
// at k = kb + l and the others take it by shuffle (1 A load per 8 k instead of 8).
@compute @workgroup_size(8, 8)
fn matmul_tn_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x;
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && interior(row0, col0))) {
        if (live) { store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero())); }
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let k8 = stored_k() & ~7u;
    let brs = P.b_rs >> 2u;
    var bi = (P.b_off + col0) >> 2u;
    for (var kb = 0u; kb < k8; kb = kb + 8u) {
        let m = a[(P.a_off + row0 + (kb + lane) * P.a_cs) >> 2u];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let av = subgroupShuffle(m, q);
            let bv = b[bi];
            s0 = s0 + av.x * bv;
            s1 = s1 + av.y * bv;
            s2 = s2 + av.z * bv;
            s3 = s3 + av.w * bv;
            bi = bi + brs;
        }
    }
    store_tile(row0, col0, tile_scalar(row0, col0, k8, Acc(s0, s1, s2, s3)));
}

// Appended to dense.wgsl in a second module, made only on adapters with subgroup operations
// whose subgroups are exactly the 8 x-lanes of a workgroup row (llvmpipe at 256 bits; the
// backend checks subgroup_min_size == subgroup_max_size == 8 and a CPU adapter).
// matmul_nn_sg: matmul_nn where each of the 8 lanes (same row0) loads one 4-wide k chunk of the
// 4 A rows and the others take it with subgroupShuffle from a constant lane, so A costs 4 loads
// per 32 k instead of 32. Measured on llvmpipe: 721x512x512 forward 7.8 -> 10.7-11.4 GFLOP/s per
// 2 busy cores. Lanes are numbered by local_invocation_id.x (naga accepts
// subgroup_invocation_id only for 1-D workgroups).
// A 16-row block at the edge of C (or of a subgroup that straddles it): the scalar path, 4 rows at a time.
fn edge_rows_16(row0: u32, col0: u32) {
    for (var r = row0; r < min(row0 + 16u, P.m); r = r + 4u) {
        store_tile(r, col0, tile_scalar(r, col0, 0u, zero()));
    }
}

@compute @workgroup_size(8, 8)
fn matmul_nn_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    set_member(gid.z);
    let lane = lid.x;
    let row0 = gid.y * 16u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 16u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) { edge_rows_16(row0, col0); }
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
    var s8 = vec4<f32>(0.0);
    var s9 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0);
    var s11 = vec4<f32>(0.0);
    var s12 = vec4<f32>(0.0);
    var s13 = vec4<f32>(0.0);
    var s14 = vec4<f32>(0.0);
    var s15 = vec4<f32>(0.0);
    let k32 = stored_k() & ~31u;
    let ars = P.a_rs >> 2u;
    let brs = P.b_rs >> 2u;
    let abase = (A0 + row0 * P.a_rs) >> 2u;
    var bi = (B0 + col0) >> 2u;
    for (var kb = 0u; kb < k32; kb = kb + 32u) {
        let ai = abase + (kb >> 2u) + lane;
        let m0 = a[ai + 0u * ars];
        let m1 = a[ai + 1u * ars];
        let m2 = a[ai + 2u * ars];
        let m3 = a[ai + 3u * ars];
        let m4 = a[ai + 4u * ars];
        let m5 = a[ai + 5u * ars];
        let m6 = a[ai + 6u * ars];
        let m7 = a[ai + 7u * ars];
        let m8 = a[ai + 8u * ars];
        let m9 = a[ai + 9u * ars];
        let m10 = a[ai + 10u * ars];
        let m11 = a[ai + 11u * ars];
        let m12 = a[ai + 12u * ars];
        let m13 = a[ai + 13u * ars];
        let m14 = a[ai + 14u * ars];
        let m15 = a[ai + 15u * ars];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let b0 = b[bi];
            let b1 = b[bi + brs];
            let b2 = b[bi + 2u * brs];
            let b3 = b[bi + 3u * brs];
            var t: vec4<f32>;
            t = subgroupShuffle(m0, q);
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
            t = subgroupShuffle(m8, q);
            s8 = s8 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m9, q);
            s9 = s9 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m10, q);
            s10 = s10 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m11, q);
            s11 = s11 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m12, q);
            s12 = s12 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m13, q);
            s13 = s13 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m14, q);
            s14 = s14 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            t = subgroupShuffle(m15, q);
            s15 = s15 + t.x * b0 + t.y * b1 + t.z * b2 + t.w * b3;
            bi = bi + 4u * brs;
        }
    }
    for (var kk = k32; kk < P.k; kk = kk + 1u) {
        let bv = b_row4(kk, col0);
        s0 = s0 + load_a(row0 + 0u, kk) * bv;
        s1 = s1 + load_a(row0 + 1u, kk) * bv;
        s2 = s2 + load_a(row0 + 2u, kk) * bv;
        s3 = s3 + load_a(row0 + 3u, kk) * bv;
        s4 = s4 + load_a(row0 + 4u, kk) * bv;
        s5 = s5 + load_a(row0 + 5u, kk) * bv;
        s6 = s6 + load_a(row0 + 6u, kk) * bv;
        s7 = s7 + load_a(row0 + 7u, kk) * bv;
        s8 = s8 + load_a(row0 + 8u, kk) * bv;
        s9 = s9 + load_a(row0 + 9u, kk) * bv;
        s10 = s10 + load_a(row0 + 10u, kk) * bv;
        s11 = s11 + load_a(row0 + 11u, kk) * bv;
        s12 = s12 + load_a(row0 + 12u, kk) * bv;
        s13 = s13 + load_a(row0 + 13u, kk) * bv;
        s14 = s14 + load_a(row0 + 14u, kk) * bv;
        s15 = s15 + load_a(row0 + 15u, kk) * bv;
    }
    store_tile(row0 + 0u, col0, Acc(s0, s1, s2, s3));
    store_tile(row0 + 4u, col0, Acc(s4, s5, s6, s7));
    store_tile(row0 + 8u, col0, Acc(s8, s9, s10, s11));
    store_tile(row0 + 12u, col0, Acc(s12, s13, s14, s15));
}

// matmul_nt_sg: matmul_nt (dX = dZ·Wᵀ) with A's rows shared the same way, 16 rows x 4 columns.
@compute @workgroup_size(8, 8)
fn matmul_nt_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    set_member(gid.z);
    let lane = lid.x;
    let row0 = gid.y * 16u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 16u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) { edge_rows_16(row0, col0); }
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
    var s8 = vec4<f32>(0.0);
    var s9 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0);
    var s11 = vec4<f32>(0.0);
    var s12 = vec4<f32>(0.0);
    var s13 = vec4<f32>(0.0);
    var s14 = vec4<f32>(0.0);
    var s15 = vec4<f32>(0.0);
    let k32 = stored_k() & ~31u;
    let ars = P.a_rs >> 2u;
    let bcs = P.b_cs >> 2u;
    let abase = (A0 + row0 * P.a_rs) >> 2u;
    var bi = (B0 + col0 * P.b_cs) >> 2u;
    for (var kb = 0u; kb < k32; kb = kb + 32u) {
        let ai = abase + (kb >> 2u) + lane;
        let m0 = a[ai + 0u * ars];
        let m1 = a[ai + 1u * ars];
        let m2 = a[ai + 2u * ars];
        let m3 = a[ai + 3u * ars];
        let m4 = a[ai + 4u * ars];
        let m5 = a[ai + 5u * ars];
        let m6 = a[ai + 6u * ars];
        let m7 = a[ai + 7u * ars];
        let m8 = a[ai + 8u * ars];
        let m9 = a[ai + 9u * ars];
        let m10 = a[ai + 10u * ars];
        let m11 = a[ai + 11u * ars];
        let m12 = a[ai + 12u * ars];
        let m13 = a[ai + 13u * ars];
        let m14 = a[ai + 14u * ars];
        let m15 = a[ai + 15u * ars];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let c0 = b[bi];
            let c1 = b[bi + bcs];
            let c2 = b[bi + 2u * bcs];
            let c3 = b[bi + 3u * bcs];
            var t: vec4<f32>;
            t = subgroupShuffle(m0, q);
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
            t = subgroupShuffle(m8, q);
            s8 = s8 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m9, q);
            s9 = s9 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m10, q);
            s10 = s10 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m11, q);
            s11 = s11 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m12, q);
            s12 = s12 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m13, q);
            s13 = s13 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m14, q);
            s14 = s14 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            t = subgroupShuffle(m15, q);
            s15 = s15 + vec4<f32>(dot(t, c0), dot(t, c1), dot(t, c2), dot(t, c3));
            bi = bi + 1u;
        }
    }
    store_tile(row0 + 0u, col0, tile_scalar(row0 + 0u, col0, k32, Acc(s0, s1, s2, s3)));
    store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, k32, Acc(s4, s5, s6, s7)));
    store_tile(row0 + 8u, col0, tile_scalar(row0 + 8u, col0, k32, Acc(s8, s9, s10, s11)));
    store_tile(row0 + 12u, col0, tile_scalar(row0 + 12u, col0, k32, Acc(s12, s13, s14, s15)));
}

// matmul_tn_sg: matmul_tn (dW = Xᵀ·dZ), 16 rows x 4 columns: A's rows at one k are 4 vec4s;
// lane l loads those at k = kb + l and the others take them by shuffle.
@compute @workgroup_size(8, 8)
fn matmul_tn_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    set_member(gid.z);
    let lane = lid.x;
    let row0 = gid.y * 16u;
    let col0 = gid.x * TILE;
    let live = row0 < P.m && col0 < P.n;
    if (!subgroupAll(live && row0 + 16u <= stored_m() && col0 + TILE <= P.n)) {
        if (live) { edge_rows_16(row0, col0); }
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
    var s8 = vec4<f32>(0.0);
    var s9 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0);
    var s11 = vec4<f32>(0.0);
    var s12 = vec4<f32>(0.0);
    var s13 = vec4<f32>(0.0);
    var s14 = vec4<f32>(0.0);
    var s15 = vec4<f32>(0.0);
    let k8 = stored_k() & ~7u;
    let brs = P.b_rs >> 2u;
    var bi = (B0 + col0) >> 2u;
    for (var kb = 0u; kb < k8; kb = kb + 8u) {
        let at = (A0 + row0 + (kb + lane) * P.a_cs) >> 2u;
        let m0 = a[at + 0u];
        let m1 = a[at + 1u];
        let m2 = a[at + 2u];
        let m3 = a[at + 3u];
        for (var q = 0u; q < 8u; q = q + 1u) {
            let bv = b[bi];
            var t: vec4<f32>;
            t = subgroupShuffle(m0, q);
            s0 = s0 + t.x * bv;
            s1 = s1 + t.y * bv;
            s2 = s2 + t.z * bv;
            s3 = s3 + t.w * bv;
            t = subgroupShuffle(m1, q);
            s4 = s4 + t.x * bv;
            s5 = s5 + t.y * bv;
            s6 = s6 + t.z * bv;
            s7 = s7 + t.w * bv;
            t = subgroupShuffle(m2, q);
            s8 = s8 + t.x * bv;
            s9 = s9 + t.y * bv;
            s10 = s10 + t.z * bv;
            s11 = s11 + t.w * bv;
            t = subgroupShuffle(m3, q);
            s12 = s12 + t.x * bv;
            s13 = s13 + t.y * bv;
            s14 = s14 + t.z * bv;
            s15 = s15 + t.w * bv;
            bi = bi + brs;
        }
    }
    store_tile(row0 + 0u, col0, tile_scalar(row0 + 0u, col0, k8, Acc(s0, s1, s2, s3)));
    store_tile(row0 + 4u, col0, tile_scalar(row0 + 4u, col0, k8, Acc(s4, s5, s6, s7)));
    store_tile(row0 + 8u, col0, tile_scalar(row0 + 8u, col0, k8, Acc(s8, s9, s10, s11)));
    store_tile(row0 + 12u, col0, tile_scalar(row0 + 12u, col0, k8, Acc(s12, s13, s14, s15)));
}

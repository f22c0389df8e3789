// Appended to dense.wgsl + dense_subgroup.wgsl in a third module, made only on adapters where
// the subgroup kernels run (8-lane subgroups: llvmpipe) and rgba32float storage textures can be
// read (TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES). llvmpipe turns each storage-buffer load into a
// loop over the 8 SIMD lanes, but loads a texel of a storage texture as one vector: with both
// operands in textures the 721x512x512 product runs at about 60 GFLOP/s instead of 17-26.
//
// Operand textures hold a matrix M row by row, 4 columns per texel: texel (x, y) = M[y][4x..4x+4],
// zero outside M (the host makes them 128-aligned in both dimensions), so the kernels need no
// bounds checks and no edge paths. `pack` fills one from any strided view of a storage buffer;
// the backend packs each operand once and reuses it until a launch writes its buffer.
@group(0) @binding(5) var ta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var tb: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var packed: texture_storage_2d<rgba32float, write>;

// pack: M is P.m x P.k with M[r][c] = a[a_off + r * a_rs + c * a_cs]; P.ones 1 makes its last
// column ones, 2 its last row (the implicit ones of a Dense layer's bias). One texel per invocation.
@compute @workgroup_size(8, 8)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dims = textureDimensions(packed);
    if (gid.x >= dims.x || gid.y >= dims.y) { return; }
    let r = gid.y;
    let c0 = gid.x * 4u;
    var v = vec4<f32>(0.0);
    let rows = select(P.m, P.m - 1u, P.ones == 2u);
    let cols = select(P.k, P.k - 1u, P.ones == 1u);
    if (r < rows) {
        let at = P.a_off + r * P.a_rs + c0 * P.a_cs;
        if (P.a_cs == 1u && (at & 3u) == 0u && c0 + 4u <= cols) {
            v = a[at >> 2u];
        } else {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (c0 + j < cols) { v[j] = a_at(at + j * P.a_cs); }
            }
        }
    }
    if (P.ones == 1u && r < P.m) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (c0 + j == P.k - 1u) { v[j] = 1.0; }
        }
    }
    if (P.ones == 2u && r == P.m - 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (c0 + j < P.k) { v[j] = 1.0; }
        }
    }
    textureStore(packed, vec2<u32>(gid.x, gid.y), v);
}

// pack_t: `pack` for a transposed view (P.a_rs == 1: M's columns are the source's rows, P.a_cs
// apart, both 4-aligned), 4 texels of a column per invocation: four vec4 loads along the source's
// rows, transposed in registers, instead of sixteen strided scalar loads.
@compute @workgroup_size(8, 8)
fn pack_t(@builtin(global_invocation_id) gid: vec3<u32>) {
    let dims = textureDimensions(packed);
    let x = gid.x;
    let r0 = gid.y * 4u;
    if (x >= dims.x || r0 >= dims.y) { return; }
    let c0 = x * 4u;
    let rows = select(P.m, P.m - 1u, P.ones == 2u);
    let cols = select(P.k, P.k - 1u, P.ones == 1u);
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    if (r0 + 4u <= rows && c0 + 4u <= cols) {
        let at = (P.a_off + r0 + c0 * P.a_cs) >> 2u;
        let cs = P.a_cs >> 2u;
        s0 = a[at];
        s1 = a[at + cs];
        s2 = a[at + 2u * cs];
        s3 = a[at + 3u * cs];
    } else {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let r = r0 + j;
            if (r < rows) {
                let at = P.a_off + r + c0 * P.a_cs;
                if (c0 < cols) { s0[j] = a_at(at); }
                if (c0 + 1u < cols) { s1[j] = a_at(at + P.a_cs); }
                if (c0 + 2u < cols) { s2[j] = a_at(at + 2u * P.a_cs); }
                if (c0 + 3u < cols) { s3[j] = a_at(at + 3u * P.a_cs); }
            }
        }
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let r = r0 + j;
        var v = vec4<f32>(s0[j], s1[j], s2[j], s3[j]);
        if (P.ones == 1u && r < P.m) {
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (c0 + i == P.k - 1u) { v[i] = 1.0; }
            }
        }
        if (P.ones == 2u && r == P.m - 1u) {
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (c0 + i < P.k) { v[i] = 1.0; }
            }
        }
        if (r < dims.y) { textureStore(packed, vec2<u32>(x, r), v); }
    }
}

fn tex_a(x: u32, y: u32) -> vec4<f32> {
    return textureLoad(ta, vec2<u32>(x, y));
}

fn tex_b(x: u32, y: u32) -> vec4<f32> {
    return textureLoad(tb, vec2<u32>(x, y));
}

// C = A · B with ta = A (m x k) and tb = B (k x n), whatever the layout of A and B in their
// buffers: the transposed products of the backward pass read Wᵀ and Xᵀ from textures that
// pack_t made (measured on llvmpipe, pack included, this beats kernels that read the stored
// matrices in transposed order: W3's dX 51 -> 37 ms, dW 53 -> 40 ms).
// Each invocation owns 16 rows x 4 columns;
// the 8 lanes of a workgroup row (one subgroup) share row0 and split A's 32-wide k chunk, a texel
// each, passing them round with subgroupShuffle from a constant lane.
@compute @workgroup_size(8, 8)
fn matmul_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    set_member(gid.z);
    let lane = lid.x;
    let row0 = gid.y * 16u;
    let cq = gid.x;
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
    let kend = (P.k + 31u) & ~31u;
    for (var kb = 0u; kb < kend; kb = kb + 32u) {
        let ax = (kb >> 2u) + lane;
        let m0 = tex_a(ax, row0 + 0u);
        let m1 = tex_a(ax, row0 + 1u);
        let m2 = tex_a(ax, row0 + 2u);
        let m3 = tex_a(ax, row0 + 3u);
        let m4 = tex_a(ax, row0 + 4u);
        let m5 = tex_a(ax, row0 + 5u);
        let m6 = tex_a(ax, row0 + 6u);
        let m7 = tex_a(ax, row0 + 7u);
        let m8 = tex_a(ax, row0 + 8u);
        let m9 = tex_a(ax, row0 + 9u);
        let m10 = tex_a(ax, row0 + 10u);
        let m11 = tex_a(ax, row0 + 11u);
        let m12 = tex_a(ax, row0 + 12u);
        let m13 = tex_a(ax, row0 + 13u);
        let m14 = tex_a(ax, row0 + 14u);
        let m15 = tex_a(ax, row0 + 15u);
        for (var q = 0u; q < 8u; q = q + 1u) {
            let k0 = kb + 4u * q;
            let b0 = tex_b(cq, k0);
            let b1 = tex_b(cq, k0 + 1u);
            let b2 = tex_b(cq, k0 + 2u);
            let b3 = tex_b(cq, k0 + 3u);
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
        }
    }
    let col0 = cq * 4u;
    store_tile(row0 + 0u, col0, Acc(s0, s1, s2, s3));
    store_tile(row0 + 4u, col0, Acc(s4, s5, s6, s7));
    store_tile(row0 + 8u, col0, Acc(s8, s9, s10, s11));
    store_tile(row0 + 12u, col0, Acc(s12, s13, s14, s15));
}

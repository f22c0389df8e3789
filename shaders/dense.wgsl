// C = epilogue(A · B) for the three products of a Dense layer, each a view with strides:
//   forward   Y  = act(X · [W; b])   (P.ones = 1: A's last column is implicitly 1, so b is B's last row)
//   backward  dX = (dZ · Wᵀ) ⊙ act'(Y_prev)   (P.derivative: the derivative, from `aux` = the layer below's output)
//   weights   [dW; db] = [Xᵀ; 1] · dZ   (P.ones = 2: A's last row is implicitly 1, giving the bias sums)
// Shapes: A is m x k at a_off with strides (a_rs, a_cs); B is k x n at b_off with (b_rs, b_cs);
// C is m x n row-major at c_off. P.activation: activation applied to the result; P.derivative: derivative
// multiplied in (aux is m x n row-major). Each invocation owns a TILE x TILE block of C.
//
// Variants (one pipeline each, chosen per launch by `device::kernels::MatmulVariant`):
//   matmul     any strides, scalar loads with a bounds check each (the reference kernel);
//   matmul_nn  A and B row-major (the forward product), vec4 loads along k of A and n of B;
//   matmul_nt  A row-major, B column-major (dX = dZ·Wᵀ), vec4 loads along k of both;
//   matmul_tn  A column-major, B row-major (dW = Xᵀ·dZ), vec4 loads along m of A and n of B.
// The vec4 variants need 4-aligned offsets and strides along the vectorised dimension (the host
// checks); tiles that cross an edge of C, the implicit ones, and the k remainder use scalar loads.
// A and B are read as vec4 arrays (buffers are made in multiples of 16 bytes); a scalar element
// is picked out of its vec4. llvmpipe turns each storage load into a loop over the SIMD lanes, so
// the win is fewer, wider loads and no per-load bounds checks in the interior; workgroup memory
// and barriers are slower there.
struct P_dense {
    ms: array<vec4<u32>, 3>,  // member strides of bindings 1..12 (common.wgsl)
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32,
    ones: u32,        // 0 none, 1 A's last column is 1, 2 A's last row is 1
    activation: u32,  // ACT_* applied to the product
    derivative: u32,  // ACT_* whose derivative at aux multiplies the result (0: none)
}
@group(1) @binding(0) var<uniform> P: P_dense;

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

const TILE: u32 = 4u;

// This invocation's member's views: the launch's offsets moved by its member's strides
// (workgroup z is the member). Every entry point sets them first.
var<private> A0: u32;
var<private> B0: u32;
var<private> C0: u32;
var<private> X0: u32;

fn set_member(mem: u32) {
    A0 = P.a_off + mem * P.ms[0].x;
    B0 = P.b_off + mem * P.ms[0].y;
    C0 = P.c_off + mem * P.ms[0].z;
    X0 = mem * P.ms[0].w;
}

fn a_at(idx: u32) -> f32 {
    return a[idx >> 2u][idx & 3u];
}

fn b_at(idx: u32) -> f32 {
    return b[idx >> 2u][idx & 3u];
}

fn load_a(i: u32, kk: u32) -> f32 {
    if (i >= P.m || kk >= P.k) { return 0.0; }
    if (P.ones == 1u && kk == P.k - 1u) { return 1.0; }
    if (P.ones == 2u && i == P.m - 1u) { return 1.0; }
    return a_at(A0 + i * P.a_rs + kk * P.a_cs);
}

fn load_b(kk: u32, j: u32) -> f32 {
    if (kk >= P.k || j >= P.n) { return 0.0; }
    return b_at(B0 + kk * P.b_rs + j * P.b_cs);
}

// Rows of A that are stored (aug 2 makes the last one implicit).
fn stored_m() -> u32 {
    return select(P.m, P.m - 1u, P.ones == 2u);
}

// Columns of A (rows of B) that are stored in A (aug 1 makes A's last column implicit).
fn stored_k() -> u32 {
    return select(P.k, P.k - 1u, P.ones == 1u);
}

// True when the 4x4 tile at (row0, col0) lies inside C and every row is a stored row of A.
fn interior(row0: u32, col0: u32) -> bool {
    return row0 + TILE <= stored_m() && col0 + TILE <= P.n;
}

// One invocation's 4x4 accumulators, a row each. Kept as a struct of vectors (never an array
// indexed by a loop variable) so that the compiler keeps them in registers.
struct Acc {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// The tile by scalar, bounds-checked loads over k in [k0, P.k), added to acc.
fn tile_scalar(row0: u32, col0: u32, k0: u32, acc_in: Acc) -> Acc {
    var acc = acc_in;
    for (var kk = k0; kk < P.k; kk = kk + 1u) {
        let bv = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 1u), load_b(kk, col0 + 2u), load_b(kk, col0 + 3u));
        acc.r0 = acc.r0 + load_a(row0, kk) * bv;
        acc.r1 = acc.r1 + load_a(row0 + 1u, kk) * bv;
        acc.r2 = acc.r2 + load_a(row0 + 2u, kk) * bv;
        acc.r3 = acc.r3 + load_a(row0 + 3u, kk) * bv;
    }
    return acc;
}

// The less common activations go through the scalar functions of common.wgsl in a loop rather
// than four inlined calls: every call site inlines the whole switch (erf included), and compile
// time on llvmpipe grew with their count.
fn act4(x: vec4<f32>) -> vec4<f32> {
    switch P.activation {
        case 1u: { return max(x, vec4<f32>(0.0)); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        case 0u: { return x; }
        default: {
            var v = x;
            for (var j = 0u; j < TILE; j = j + 1u) { v[j] = act_forward(x[j], P.activation); }
            return v;
        }
    }
}

fn dact4(y: vec4<f32>) -> vec4<f32> {
    switch P.derivative {
        case 1u: { return select(vec4<f32>(0.0), vec4<f32>(1.0), y > vec4<f32>(0.0)); }
        case 2u: { return y * (1.0 - y); }
        case 0u: { return vec4<f32>(1.0); }
        default: {
            var d = y;
            for (var j = 0u; j < TILE; j = j + 1u) { d[j] = act_grad_from_output(y[j], P.derivative); }
            return d;
        }
    }
}

// Row r of the tile, columns col0..col0+3 (those inside C), through the epilogue: computed once
// as a vec4 for a full and a partial tile alike (one inlined epilogue per row, not two).
fn store_row(r: u32, col0: u32, acc: vec4<f32>) {
    if (r >= P.m || col0 >= P.n) { return; }
    let base = r * P.n + col0;
    let cols = min(P.n - col0, TILE);
    var v = act4(acc);
    if (P.derivative != 0u) {
        var y = vec4<f32>(0.0);
        for (var j = 0u; j < cols; j = j + 1u) { y[j] = aux[X0 + base + j]; }
        v = v * dact4(y);
    }
    for (var j = 0u; j < cols; j = j + 1u) { c[C0 + base + j] = v[j]; }
}

// The tile's rows in a loop for the same reason as act4's.
fn store_tile(row0: u32, col0: u32, acc: Acc) {
    var rows = array<vec4<f32>, 4>(acc.r0, acc.r1, acc.r2, acc.r3);
    for (var i = 0u; i < TILE; i = i + 1u) { store_row(row0 + i, col0, rows[i]); }
}

fn zero() -> Acc {
    return Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
}

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_member(gid.z);
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    if (row0 >= P.m || col0 >= P.n) { return; }
    store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
}

// B row kk, columns col0..col0+3 (aligned: b_off, b_rs and col0 are multiples of 4).
fn b_row4(kk: u32, col0: u32) -> vec4<f32> {
    return b[(B0 + kk * P.b_rs + col0) >> 2u];
}

@compute @workgroup_size(8, 8)
fn matmul_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_member(gid.z);
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    if (row0 >= P.m || col0 >= P.n) { return; }
    if (!interior(row0, col0)) {
        store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let k4 = stored_k() & ~3u;
    let ars = P.a_rs >> 2u;
    let brs = P.b_rs >> 2u;
    var ai = (A0 + row0 * P.a_rs) >> 2u;
    var bi = (B0 + col0) >> 2u;
    for (var kk = 0u; kk < k4; kk = kk + 4u) {
        let a0 = a[ai];
        let a1 = a[ai + ars];
        let a2 = a[ai + 2u * ars];
        let a3 = a[ai + 3u * ars];
        let b0 = b[bi];
        let b1 = b[bi + brs];
        let b2 = b[bi + 2u * brs];
        let b3 = b[bi + 3u * brs];
        s0 = s0 + a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
        s1 = s1 + a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
        s2 = s2 + a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
        s3 = s3 + a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
        ai = ai + 1u;
        bi = bi + 4u * brs;
    }
    // The k remainder (and the implicit ones column): B's rows are stored and aligned.
    for (var kk = k4; kk < P.k; kk = kk + 1u) {
        let bv = b_row4(kk, col0);
        s0 = s0 + load_a(row0, kk) * bv;
        s1 = s1 + load_a(row0 + 1u, kk) * bv;
        s2 = s2 + load_a(row0 + 2u, kk) * bv;
        s3 = s3 + load_a(row0 + 3u, kk) * bv;
    }
    store_tile(row0, col0, Acc(s0, s1, s2, s3));
}

@compute @workgroup_size(8, 8)
fn matmul_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_member(gid.z);
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    if (row0 >= P.m || col0 >= P.n) { return; }
    if (!interior(row0, col0)) {
        store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let k4 = stored_k() & ~3u;
    let ars = P.a_rs >> 2u;
    let bcs = P.b_cs >> 2u;
    var ai = (A0 + row0 * P.a_rs) >> 2u;
    var bi = (B0 + col0 * P.b_cs) >> 2u;
    for (var kk = 0u; kk < k4; kk = kk + 4u) {
        let a0 = a[ai];
        let a1 = a[ai + ars];
        let a2 = a[ai + 2u * ars];
        let a3 = a[ai + 3u * ars];
        let c0 = b[bi];
        let c1 = b[bi + bcs];
        let c2 = b[bi + 2u * bcs];
        let c3 = b[bi + 3u * bcs];
        s0 = s0 + vec4<f32>(dot(a0, c0), dot(a0, c1), dot(a0, c2), dot(a0, c3));
        s1 = s1 + vec4<f32>(dot(a1, c0), dot(a1, c1), dot(a1, c2), dot(a1, c3));
        s2 = s2 + vec4<f32>(dot(a2, c0), dot(a2, c1), dot(a2, c2), dot(a2, c3));
        s3 = s3 + vec4<f32>(dot(a3, c0), dot(a3, c1), dot(a3, c2), dot(a3, c3));
        ai = ai + 1u;
        bi = bi + 1u;
    }
    store_tile(row0, col0, tile_scalar(row0, col0, k4, Acc(s0, s1, s2, s3)));
}

@compute @workgroup_size(8, 8)
fn matmul_tn(@builtin(global_invocation_id) gid: vec3<u32>) {
    set_member(gid.z);
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    if (row0 >= P.m || col0 >= P.n) { return; }
    if (!interior(row0, col0)) {
        store_tile(row0, col0, tile_scalar(row0, col0, 0u, zero()));
        return;
    }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let ks = stored_k();
    let acs = P.a_cs >> 2u;
    let brs = P.b_rs >> 2u;
    var ai = (A0 + row0) >> 2u;
    var bi = (B0 + col0) >> 2u;
    var kk = 0u;
    for (; kk + 2u <= ks; kk = kk + 2u) {
        let av = a[ai];
        let bv = b[bi];
        let av2 = a[ai + acs];
        let bv2 = b[bi + brs];
        s0 = s0 + av.x * bv + av2.x * bv2;
        s1 = s1 + av.y * bv + av2.y * bv2;
        s2 = s2 + av.z * bv + av2.z * bv2;
        s3 = s3 + av.w * bv + av2.w * bv2;
        ai = ai + 2u * acs;
        bi = bi + 2u * brs;
    }
    store_tile(row0, col0, tile_scalar(row0, col0, kk, Acc(s0, s1, s2, s3)));
}

// C = epilogue(A · B) for the three products of a Dense layer, each a view with strides:
//   forward   Y  = act(X · [W; b])   (P.aug = 1: A's last column is implicitly 1, so b is B's last row)
//   backward  dX = (dZ · Wᵀ) ⊙ act'(Y_prev)   (P.dact: the derivative, from `aux` = the layer below's output)
//   weights   [dW; db] = [Xᵀ; 1] · dZ   (P.aug = 2: A's last row is implicitly 1, giving the bias sums)
// Shapes: A is m x k at a_off with strides (a_rs, a_cs); B is k x n at b_off with (b_rs, b_cs);
// C is m x n row-major at c_off. P.act: activation applied to the result; P.dact: derivative
// multiplied in (aux is m x n row-major). Each invocation owns a TILE x TILE block of C.
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

const TILE: u32 = 4u;

fn load_a(i: u32, kk: u32) -> f32 {
    if (i >= P.m || kk >= P.k) { return 0.0; }
    if (P.aug == 1u && kk == P.k - 1u) { return 1.0; }
    if (P.aug == 2u && i == P.m - 1u) { return 1.0; }
    return a[P.a_off + i * P.a_rs + kk * P.a_cs];
}

fn load_b(kk: u32, j: u32) -> f32 {
    if (kk >= P.k || j >= P.n) { return 0.0; }
    return b[P.b_off + kk * P.b_rs + j * P.b_cs];
}

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TILE;
    let col0 = gid.x * TILE;
    if (row0 >= P.m || col0 >= P.n) { return; }
    var acc: array<array<f32, 4>, 4>;
    for (var kk = 0u; kk < P.k; kk = kk + 1u) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var t = 0u; t < TILE; t = t + 1u) {
            av[t] = load_a(row0 + t, kk);
            bv[t] = load_b(kk, col0 + t);
        }
        for (var i = 0u; i < TILE; i = i + 1u) {
            for (var j = 0u; j < TILE; j = j + 1u) {
                acc[i][j] = acc[i][j] + av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < TILE; i = i + 1u) {
        let r = row0 + i;
        if (r >= P.m) { break; }
        for (var j = 0u; j < TILE; j = j + 1u) {
            let col = col0 + j;
            if (col >= P.n) { break; }
            var v = act_forward(acc[i][j], P.act);
            if (P.dact != 0u) {
                v = v * act_grad_from_output(aux[r * P.n + col], P.dact);
            }
            c[P.c_off + r * P.n + col] = v;
        }
    }
}

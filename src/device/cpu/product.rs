//! The one place the CPU path multiplies large matrices: `product` runs `faer`'s AVX-512 kernels
//! one thread per block of C, a block per core (`Engine::choose`), from figures measured on the
//! training shapes (`cargo bench --bench gemm_crates`, BENCHMARKS.md); `gemm` and
//! `matrixmultiply` stay selectable for side-by-side measurements.

use std::sync::OnceLock;

use crate::device::args::MatmulArgs;

/// A strided view of a matrix: element (i, j) at `off + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// A Matmul launch's A view.
    pub(crate) fn of_a(p: &MatmulArgs) -> View {
        View { off: p.a_off as usize, rs: p.a_rs as usize, cs: p.a_cs as usize }
    }

    /// A Matmul launch's B view.
    pub(crate) fn of_b(p: &MatmulArgs) -> View {
        View { off: p.b_off as usize, rs: p.b_rs as usize, cs: p.b_cs as usize }
    }

    /// One past the largest index the `rows` x `cols` view touches (0 when it is empty).
    pub(crate) fn end(self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            return 0;
        }
        self.off + (rows - 1) * self.rs + (cols - 1) * self.cs + 1
    }
}

/// Which crate computes a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `faer` (its x86 AVX-512/AVX2 kernels, packing into thread-local space, so no allocation
    /// per call), one thread per block of C, the blocks on rayon's pool.
    Faer,
    /// `gemm` (AVX-512 kernels through its `x86-v4` feature; rayon threads; allocates its
    /// packing space on every call).
    Gemm,
    /// `matrixmultiply` (its own thread pool; allocates its packing space on every call).
    MatrixMultiply,
}

impl Engine {
    /// The engine for an m x k x n product whose B view is `b`: `WGFIT_CPU_GEMM=faer|gemm|
    /// matrixmultiply` forces one (for side-by-side measurements); otherwise `faer`. Measured by
    /// benches/gemm_crates.rs on the 2-core AVX-512 machine (alternated rounds): level with
    /// `gemm` on forward and most dW products, 1.25-1.7x on every dX (B transposed: 400-415
    /// GFLOP/s where gemm ran 240-335), about 5% behind on W3's 1024³ dW; and it allocates
    /// nothing per call, which neither other crate manages.
    pub(crate) fn choose(_m: usize, _k: usize, _n: usize, _b: View) -> Engine {
        forced().unwrap_or(Engine::Faer)
    }
}

/// The engine named by `WGFIT_CPU_GEMM`, read once; an unknown name is ignored (the choice by
/// shape stands), since a benchmark knob must not make training fail.
fn forced() -> Option<Engine> {
    static FORCED: OnceLock<Option<Engine>> = OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("WGFIT_CPU_GEMM").ok()?.to_ascii_lowercase().as_str() {
        "faer" => Some(Engine::Faer),
        "gemm" => Some(Engine::Gemm),
        "matrixmultiply" => Some(Engine::MatrixMultiply),
        _ => None,
    })
}

/// Below this many multiply-adds a product runs on one thread: waking a pool costs more than the
/// second core saves. Measured on the 2-core machine (benches/gemm_crates.rs): W1's 1M multiply-add
/// products (256x8x512 forward, 8x256x512 dW) ran at 146 and 186 GFLOP/s on one thread, 88 and 57
/// on two; its 67M ones gain from two.
const PARALLEL_MIN_WORK: usize = 1 << 22;

/// C = A · B for A m x k and B k x n strided views, C row-major m x n with row stride n (the
/// first m * n values of `c`), by `engine`. False (nothing written) when a view reaches past its
/// slice or C is too short.
#[allow(clippy::too_many_arguments)]
pub(crate) fn product(
    engine: Engine,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    av: View,
    b: &[f32],
    bv: View,
    c: &mut [f32],
) -> bool {
    if av.end(m, k) > a.len() || bv.end(k, n) > b.len() || c.len() < m * n {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return true;
    }
    // One part per core this thread may use, each of at least half PARALLEL_MIN_WORK.
    let threads = (m * k * n / (PARALLEL_MIN_WORK / 2)).clamp(1, super::parallel::threads());
    // SAFETY: every index the views touch was checked against the slices above; `c` is
    // exclusively borrowed and holds m x n values (row stride n). Strides fit isize: they come
    // from u32 launch fields.
    unsafe {
        let (a, b) = (a.as_ptr().add(av.off), b.as_ptr().add(bv.off));
        match engine {
            Engine::Faer => faer_product(m, k, n, a, av, b, bv, c.as_mut_ptr(), threads),
            Engine::Gemm => gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a,
                av.cs as isize,
                av.rs as isize,
                b,
                bv.cs as isize,
                bv.rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None },
            ),
            Engine::MatrixMultiply => matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a,
                av.rs as isize,
                av.cs as isize,
                b,
                bv.rs as isize,
                bv.cs as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            ),
        }
    }
    true
}

/// `faer`'s product on one thread, or, with `threads` > 1, C split into that many blocks, each
/// on one thread of rayon's pool (`split_product`; `rayon::join` keeps its jobs on the stack, so
/// this allocates nothing; faer's own parallel product allocates its task tree on every call).
/// Each output is a sum over the whole of k either way (the split only chooses which thread
/// computes it), and on the shapes tested (`threads_do_not_change_bits`) one thread and two,
/// three, four or sixteen blocks give the same bits: faer's blocking along k does not depend on
/// m or n there.
///
/// # Safety
/// `a` and `b` point at the views' first elements and every element the views reach is
/// readable; `c` points at m x n writable values (row stride n) that nothing else accesses.
#[allow(clippy::too_many_arguments)]
unsafe fn faer_product(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    av: View,
    b: *const f32,
    bv: View,
    c: *mut f32,
    threads: usize,
) {
    use faer::{MatMut, MatRef};
    // SAFETY: the caller's contract; strides fit isize (they come from u32 launch fields).
    let (lhs, rhs, dst) = unsafe {
        (
            MatRef::<f32>::from_raw_parts(a, m, k, av.rs as isize, av.cs as isize),
            MatRef::<f32>::from_raw_parts(b, k, n, bv.rs as isize, bv.cs as isize),
            MatMut::<f32>::from_raw_parts_mut(c, m, n, n as isize, 1),
        )
    };
    split_product(dst, lhs, rhs, threads, av.rs == 1 && av.cs > 1);
}

/// C = lhs · rhs by faer on one thread, or, for `parts` > 1, C cut in two (in proportion to
/// the parts each side gets; `parallel::cut`) and each side split again on rayon's pool, down to
/// one-thread products. The cut runs along C's longer side, except that a dW product
/// (`a_transposed`: A = Xᵀ) cuts C's columns while they number 64 or more: cut by rows, each
/// thread read X's columns at a stride of the layer's width, and W3's 1024³ dW ran 162-171
/// GFLOP/s against 180-191 cut by columns (alternated runs of benches/gemm_crates.rs on the
/// 2-core Zen 4 host, 2026-12-03); the other layouts measured level either way.
fn split_product(
    dst: faer::MatMut<'_, f32>,
    lhs: faer::MatRef<'_, f32>,
    rhs: faer::MatRef<'_, f32>,
    parts: usize,
    a_transposed: bool,
) {
    let (m, n) = (dst.nrows(), dst.ncols());
    let by_columns = m < n || (a_transposed && n >= 64);
    let side = if by_columns { n } else { m };
    let left = parts / 2;
    let mid = if parts > 1 { super::parallel::cut(side, left, parts) } else { 0 };
    if mid == 0 || mid >= side {
        faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0, faer::Par::Seq);
        clean_upper_vector_state();
    } else if by_columns {
        let ((d0, d1), (r0, r1)) = (dst.split_at_col_mut(mid), rhs.split_at_col(mid));
        rayon::join(
            || split_product(d0, lhs, r0, left, a_transposed),
            || split_product(d1, lhs, r1, parts - left, a_transposed),
        );
    } else {
        let ((d0, d1), (l0, l1)) = (dst.split_at_row_mut(mid), lhs.split_at_row(mid));
        rayon::join(
            || split_product(d0, l0, rhs, left, a_transposed),
            || split_product(d1, l1, rhs, parts - left, a_transposed),
        );
    }
}

/// faer's AVX-512 kernels return with the upper halves of the vector registers in use (no
/// `vzeroupper`), and the code after them (the CPU twins, built for baseline x86-64 SSE) then
/// ran up to 5x slower on this machine: an Adam step of W1's 530k weights took 1.6 ms after a
/// product on the same thread, 0.28 ms after `vzeroupper` (measured in a scratch program; W1's
/// Adam per epoch 4.97 ms against 0.86 with `gemm`, whose kernels clear the state).
fn clean_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above), all `vzeroupper` needs.
        unsafe { zero_upper() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::parallel::with_threads;
    use rand::{Rng, SeedableRng};

    /// The three layouts of a Dense layer's products: (A row-major, B row-major) forward X·W,
    /// (A row-major, B transposed) dX = dZ·Wᵀ, (A transposed, B row-major) dW = Xᵀ·dZ.
    fn views(layout: usize, m: usize, k: usize, n: usize) -> (View, View) {
        let (off_a, off_b) = (3, 5);
        match layout {
            0 => (View { off: off_a, rs: k, cs: 1 }, View { off: off_b, rs: n, cs: 1 }),
            1 => (View { off: off_a, rs: k, cs: 1 }, View { off: off_b, rs: 1, cs: k }),
            _ => (View { off: off_a, rs: 1, cs: m }, View { off: off_b, rs: n, cs: 1 }),
        }
    }

    /// Every engine against an f64 reference over odd shapes (edges of every micro-kernel tile),
    /// the three layouts, on one thread and on all; nothing written past C's m x n values.
    #[test]
    fn engines_match_f64_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let mut cases = 0;
        for &(m, k, n) in
            &[(1, 1, 1), (1, 7, 33), (33, 1, 7), (17, 31, 1), (47, 65, 129), (129, 257, 63), (300, 97, 300)]
        {
            for layout in 0..3 {
                let (av, bv) = views(layout, m, k, n);
                let a: Vec<f32> = (0..av.end(m, k)).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b: Vec<f32> = (0..bv.end(k, n)).map(|_| rng.random_range(-1.0..1.0)).collect();
                let want: Vec<f64> = (0..m * n)
                    .map(|e| {
                        let (i, j) = (e / n, e % n);
                        (0..k)
                            .map(|r| {
                                a[av.off + i * av.rs + r * av.cs] as f64 * b[bv.off + r * bv.rs + j * bv.cs] as f64
                            })
                            .sum()
                    })
                    .collect();
                for engine in [Engine::Faer, Engine::Gemm, Engine::MatrixMultiply] {
                    for threads in [1, 2] {
                        let mut c = vec![f32::NAN; m * n + 4];
                        assert!(with_threads(threads, || product(engine, m, k, n, &a, av, &b, bv, &mut c)));
                        for (e, (&g, &w)) in c.iter().zip(&want).enumerate() {
                            let err = (g as f64 - w).abs() / (w.abs() + (k as f64).sqrt());
                            assert!(
                                err <= 1e-6,
                                "{engine:?} {threads} threads {m}x{k}x{n} layout {layout} at {e}: {g} vs {w}"
                            );
                        }
                        assert!(c[m * n..].iter().all(|v| v.is_nan()), "{engine:?}: wrote past C");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 3 * 3 * 2);
    }

    /// `faer` (split in blocks) and `gemm` split the outputs, never a sum, between threads: one
    /// thread and two, three, four or sixteen give the same bits, and so do repeated runs (the
    /// CPU path's histories do not depend on the cores, and a sweep's one-thread members equal
    /// lone fits).
    /// The shapes take both cuts of every layout (a dW with more rows than columns cuts columns)
    /// and uneven blocks (3 parts of 600 x 40).
    #[test]
    fn threads_do_not_change_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for &(m, k, n) in &[(256, 512, 512), (513, 256, 512), (300, 1030, 200), (600, 300, 40)] {
            for layout in 0..3 {
                let (av, bv) = views(layout, m, k, n);
                let a: Vec<f32> = (0..av.end(m, k)).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b: Vec<f32> = (0..bv.end(k, n)).map(|_| rng.random_range(-1.0..1.0)).collect();
                for engine in [Engine::Faer, Engine::Gemm] {
                    let run = |threads: usize| {
                        let mut c = vec![0.0f32; m * n];
                        assert!(with_threads(threads, || product(engine, m, k, n, &a, av, &b, bv, &mut c)));
                        c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                    };
                    let one = run(1);
                    for threads in [2, 3, 4, 16] {
                        let many = run(threads);
                        assert!(one == many, "{engine:?} {m}x{k}x{n} layout {layout}: {threads} threads differ from 1");
                    }
                    assert!(one == run(2), "{engine:?} {m}x{k}x{n} layout {layout}: a rerun differs");
                }
            }
        }
    }

    /// Views past their slices and a short C are refused, with nothing written.
    #[test]
    fn out_of_bounds_views_are_refused() {
        let (a, b) = (vec![1.0f32; 12], vec![1.0f32; 12]);
        let mut c = vec![7.0f32; 16];
        let v = View { off: 0, rs: 3, cs: 1 };
        assert!(product(Engine::Gemm, 4, 3, 4, &a, v, &b, View { off: 0, rs: 4, cs: 1 }, &mut c));
        assert!(!product(
            Engine::Gemm,
            4,
            3,
            4,
            &a,
            View { off: 1, ..v },
            &b,
            View { off: 0, rs: 4, cs: 1 },
            &mut c[..]
        ));
        assert!(!product(Engine::Gemm, 5, 3, 4, &a, v, &b, View { off: 0, rs: 4, cs: 1 }, &mut c));
        let mut short = vec![7.0f32; 15];
        assert!(!product(Engine::MatrixMultiply, 4, 3, 4, &a, v, &b, View { off: 0, rs: 4, cs: 1 }, &mut short));
        assert!(short.iter().all(|&x| x == 7.0));
    }
}

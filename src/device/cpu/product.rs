//! The one place the CPU path multiplies large matrices: `product` picks the GEMM crate and the
//! thread count by shape class (`Engine::choose`), from figures measured on the training shapes
//! (`cargo bench --bench gemm_crates`, BENCHMARKS.md).

use std::cell::Cell;
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
    /// `gemm` (AVX-512 kernels through its `x86-v4` feature; rayon threads).
    Gemm,
    /// `matrixmultiply` (its own thread pool).
    MatrixMultiply,
}

impl Engine {
    /// The engine for an m x k x n product whose B view is `b`: `WGFIT_CPU_GEMM=gemm|matrixmultiply`
    /// forces one (for side-by-side measurements); otherwise the faster on this shape class, as
    /// measured by benches/gemm_crates.rs on the 2-core AVX-512 machine (3 quiet runs): `gemm`
    /// on every class (1.1-1.3x on the square and Xᵀ products of W1 and W3, 5-15x on the thin
    /// ones, k or n of 1 or 8), except B transposed (Wᵀ, a dX product) of W1's size, where
    /// matrixmultiply was ahead (263-274 against 234-240 GFLOP/s on 256x512x512; level at 1024³).
    pub(crate) fn choose(m: usize, k: usize, n: usize, b: View) -> Engine {
        let transposed_b = b.rs == 1 && b.cs != 1;
        // Only the sizes measured: below, gemm led on every small shape tried.
        let w1_sized = (1 << 24..=1 << 27).contains(&(m * k * n));
        forced().unwrap_or(if transposed_b && w1_sized { Engine::MatrixMultiply } else { Engine::Gemm })
    }
}

/// The engine named by `WGFIT_CPU_GEMM`, read once; an unknown name is ignored (the choice by
/// shape stands), since a benchmark knob must not make training fail.
fn forced() -> Option<Engine> {
    static FORCED: OnceLock<Option<Engine>> = OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("WGFIT_CPU_GEMM").ok()?.to_ascii_lowercase().as_str() {
        "gemm" => Some(Engine::Gemm),
        "matrixmultiply" => Some(Engine::MatrixMultiply),
        _ => None,
    })
}

/// The cores, asked once: `available_parallelism` reads cgroup files on Linux, which costs more
/// than a small product.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

thread_local! {
    /// Threads one product may use from this thread: the cores, or 1 inside the CPU backend's
    /// member workers (which already keep every core busy; nested pools would only contend).
    static THREADS: Cell<usize> = Cell::new(cores());
}

/// Runs `f` with products on this thread limited to one thread each.
pub(crate) fn single_threaded<R>(f: impl FnOnce() -> R) -> R {
    with_threads(1, f)
}

/// Runs `f` with products on this thread using at most `threads` threads (0: the cores).
pub(crate) fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let threads = if threads == 0 { cores() } else { threads };
    let before = THREADS.with(|t| t.replace(threads));
    let r = f();
    THREADS.with(|t| t.set(before));
    r
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
    let threads = if m * k * n < PARALLEL_MIN_WORK { 1 } else { THREADS.with(Cell::get) };
    // SAFETY: every index the views touch was checked against the slices above; `c` is
    // exclusively borrowed and holds m x n values (row stride n). Strides fit isize: they come
    // from u32 launch fields.
    unsafe {
        let (a, b) = (a.as_ptr().add(av.off), b.as_ptr().add(bv.off));
        match engine {
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

#[cfg(test)]
mod tests {
    use super::*;
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
                for engine in [Engine::Gemm, Engine::MatrixMultiply] {
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
        assert_eq!(cases, 7 * 3 * 2 * 2);
    }

    /// `gemm` splits the outputs, never a sum, between threads: one thread and two give the same
    /// bits, and so do repeated runs (the CPU path's histories are reproducible on a machine).
    #[test]
    fn gemm_threads_do_not_change_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        for &(m, k, n) in &[(256, 512, 512), (513, 256, 512), (300, 1030, 200)] {
            for layout in 0..3 {
                let (av, bv) = views(layout, m, k, n);
                let a: Vec<f32> = (0..av.end(m, k)).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b: Vec<f32> = (0..bv.end(k, n)).map(|_| rng.random_range(-1.0..1.0)).collect();
                let run = |threads: usize| {
                    let mut c = vec![0.0f32; m * n];
                    assert!(with_threads(threads, || product(Engine::Gemm, m, k, n, &a, av, &b, bv, &mut c)));
                    c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                let one = run(1);
                assert!(one == run(2), "{m}x{k}x{n} layout {layout}: 2 threads differ from 1");
                assert!(one == run(2), "{m}x{k}x{n} layout {layout}: a rerun differs");
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

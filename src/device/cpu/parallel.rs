//! How many cores one launch of the CPU path may use, and the one way its kernels use two:
//! halves of their outputs on rayon's pool (`rayon::join` keeps its jobs on the stack, so a
//! split allocates nothing). Every split divides outputs, never a sum, so one thread and two
//! give the same bits.

use std::cell::Cell;
use std::ops::Range;
use std::sync::OnceLock;

/// The cores, asked once: `available_parallelism` reads cgroup files on Linux, which costs more
/// than a small product.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

thread_local! {
    /// Threads one launch may use from this thread: the cores, or 1 inside the CPU backend's
    /// member workers (which already keep every core busy; nested pools would only contend).
    static THREADS: Cell<usize> = Cell::new(cores());
}

/// Threads a launch on this thread may use.
pub(crate) fn threads() -> usize {
    THREADS.with(Cell::get)
}

/// Runs `f` with launches on this thread limited to one thread each.
pub(crate) fn single_threaded<R>(f: impl FnOnce() -> R) -> R {
    with_threads(1, f)
}

/// Runs `f` with launches on this thread using at most `threads` threads (0: the cores).
pub(crate) fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let threads = if threads == 0 { cores() } else { threads };
    let before = THREADS.with(|t| t.replace(threads));
    let r = f();
    THREADS.with(|t| t.set(before));
    r
}

/// Below this many values an elementwise pass stays on one thread: waking the pool (a few
/// microseconds) costs more than the second core saves on a pass that is itself that short.
const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// Slices (and tuples of them) that split at an index into two independent parts.
pub(crate) trait Halves: Sized + Send {
    fn split(self, mid: usize) -> (Self, Self);
}

impl Halves for &mut [f32] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid.min(self.len()))
    }
}

impl Halves for &[f32] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at(mid.min(self.len()))
    }
}

macro_rules! halves_for_tuples {
    ($(($($t:ident $v:ident),+)),+) => {$(
        impl<$($t: Halves),+> Halves for ($($t,)+) {
            fn split(self, mid: usize) -> (Self, Self) {
                let ($($v,)+) = self;
                $(let $v = $v.split(mid);)+
                (($($v.0,)+), ($($v.1,)+))
            }
        }
    )+};
}
halves_for_tuples!((A a, B b), (A a, B b, C c), (A a, B b, C c, D d), (A a, B b, C c, D d, E e));

/// Runs `f(range, parts)` over the `len` values of `parts` (each of whose slices holds its
/// values for `0..len`, one per index): once over all of them, or, for `len` of
/// `PARALLEL_MIN_VALUES` or more where this thread may use two cores, over two halves on
/// rayon's pool, each half's slices starting at its range's start.
pub(crate) fn in_halves<T: Halves>(len: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(len, 1, len, parts, f)
}

/// `in_halves` over the `rows` rows of row-major `width`-wide matrices: `range` is in rows and
/// every slice of `parts` holds `width` values a row.
pub(crate) fn rows_in_halves<T: Halves>(rows: usize, width: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(rows, width, rows * width, parts, f)
}

/// `in_halves` over the `columns` columns of a pass that reads `rows` values of each (a sum
/// down every column): `range` is in columns and every slice of `parts` holds one value a column.
pub(crate) fn columns_in_halves<T: Halves>(columns: usize, rows: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(columns, 1, columns * rows, parts, f)
}

/// The one split behind the three: `units` units of `unit_len` values in each slice, `work`
/// values touched in all.
fn split<T: Halves>(units: usize, unit_len: usize, work: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    if work < PARALLEL_MIN_VALUES || units < 2 || threads() < 2 {
        return f(0..units, parts);
    }
    // A multiple of 16 units where there are enough, so neither half splits a vector's lanes.
    let mid = if units >= 64 { (units / 2).next_multiple_of(16) } else { units / 2 };
    let (lo, hi) = parts.split(mid * unit_len);
    rayon::join(|| f(0..mid, lo), || f(mid..units, hi));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two halves cover every index once, with each slice cut where the range starts.
    #[test]
    fn halves_cover_every_value_once() {
        for len in [0, 5, PARALLEL_MIN_VALUES - 1, PARALLEL_MIN_VALUES + 7, 3 * PARALLEL_MIN_VALUES + 1] {
            for threads in [1, 2] {
                let src: Vec<f32> = (0..len).map(|i| i as f32).collect();
                let mut dst = vec![-1.0f32; len];
                let mut seen = vec![0.0f32; len];
                let calls = std::sync::atomic::AtomicUsize::new(0);
                with_threads(threads, || {
                    in_halves(len, (&mut dst[..], &mut seen[..], &src[..]), |range, (d, s, x)| {
                        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        assert_eq!(d.len(), range.len());
                        for (i, ((d, s), &x)) in range.zip(d.iter_mut().zip(s.iter_mut()).zip(x)) {
                            *d = x + 1.0;
                            *s += i as f32 + 1.0;
                        }
                    })
                });
                assert!(dst.iter().enumerate().all(|(i, &v)| v == i as f32 + 1.0), "len {len} threads {threads}");
                assert!(seen.iter().enumerate().all(|(i, &v)| v == i as f32 + 1.0), "len {len} threads {threads}");
                let two = threads == 2 && len >= PARALLEL_MIN_VALUES;
                assert_eq!(calls.into_inner(), if two { 2 } else { 1 }, "len {len} threads {threads}");
            }
        }
    }
}

//! How many cores one launch of the CPU path may use, and the one way its kernels use them:
//! parts of their outputs on rayon's pool, split in halves recursively (`rayon::join` keeps its
//! jobs on the stack, so a split allocates nothing). Every split divides outputs, never a sum,
//! so one thread and many give the same bits.

use std::cell::Cell;
use std::ops::Range;
use std::sync::OnceLock;

/// The cores the CPU path may use: the threads of rayon's global pool (the machine's cores,
/// `RAYON_NUM_THREADS`, or a pool the application built with `ThreadPoolBuilder::build_global`
/// before its first fit), asked once.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| rayon::current_num_threads().max(1))
}

thread_local! {
    /// Threads one launch may use from this thread: the cores, or inside the CPU backend's
    /// member workers the cores they leave over (1 where they keep every core busy already:
    /// nested splits would only contend).
    static THREADS: Cell<usize> = Cell::new(cores());
}

/// Threads a launch on this thread may use.
pub(crate) fn threads() -> usize {
    THREADS.with(Cell::get)
}

/// Runs `f` with launches on this thread using at most `threads` threads (0: the cores).
pub(crate) fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let threads = if threads == 0 { cores() } else { threads };
    let before = THREADS.with(|t| t.replace(threads));
    let r = f();
    THREADS.with(|t| t.set(before));
    r
}

/// Values each part of a split pass gets at least: below twice this a pass stays on one thread,
/// since waking the pool (a few microseconds) costs more than a second core saves on a pass
/// that is itself that short.
const MIN_VALUES_PER_PART: usize = 1 << 15;

/// Slices (and tuples of them) that split at an index into two independent parts.
pub(crate) trait Parts: Sized + Send {
    fn split(self, mid: usize) -> (Self, Self);
}

impl Parts for &mut [f32] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid.min(self.len()))
    }
}

impl Parts for &[f32] {
    fn split(self, mid: usize) -> (Self, Self) {
        self.split_at(mid.min(self.len()))
    }
}

macro_rules! parts_for_tuples {
    ($(($($t:ident $v:ident),+)),+) => {$(
        impl<$($t: Parts),+> Parts for ($($t,)+) {
            fn split(self, mid: usize) -> (Self, Self) {
                let ($($v,)+) = self;
                $(let $v = $v.split(mid);)+
                (($($v.0,)+), ($($v.1,)+))
            }
        }
    )+};
}
parts_for_tuples!((A a, B b), (A a, B b, C c), (A a, B b, C c, D d), (A a, B b, C c, D d, E e));

/// Runs `f(range, parts)` over the `len` values of `parts` (each of whose slices holds its
/// values for `0..len`, one per index): once over all of them, or, for large `len` where this
/// thread may use several cores, over up to one part per core on rayon's pool, each part's
/// slices starting at its range's start.
pub(crate) fn in_parts<T: Parts>(len: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(len, 1, len, parts, f)
}

/// `in_parts` over the `rows` rows of row-major `width`-wide matrices: `range` is in rows and
/// every slice of `parts` holds `width` values a row.
pub(crate) fn rows_in_parts<T: Parts>(rows: usize, width: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(rows, width, rows * width, parts, f)
}

/// `in_parts` over the `columns` columns of a pass that reads `rows` values of each (a sum
/// down every column): `range` is in columns and every slice of `parts` holds one value a column.
pub(crate) fn columns_in_parts<T: Parts>(columns: usize, rows: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    split(columns, 1, columns * rows, parts, f)
}

/// How many parts a pass of `work` values over `units` units takes on this thread: one per
/// core it may use, each of at least `MIN_VALUES_PER_PART` values and one unit.
fn part_count(units: usize, work: usize) -> usize {
    threads().min(work / MIN_VALUES_PER_PART).min(units).max(1)
}

/// Where to cut `units` units between the first `left` of `parts` parts and the rest: in
/// proportion, on a multiple of 16 units where each part has 16 or more (so no cut splits a
/// vector's lanes or a product's micro-kernel block).
pub(crate) fn cut(units: usize, left: usize, parts: usize) -> usize {
    let mid = units * left / parts;
    if units >= 16 * parts {
        mid / 16 * 16
    } else {
        mid
    }
}

/// The one split behind the three: `units` units of `unit_len` values in each slice, `work`
/// values touched in all.
fn split<T: Parts>(units: usize, unit_len: usize, work: usize, parts: T, f: impl Fn(Range<usize>, T) + Sync) {
    recurse(0..units, unit_len, part_count(units, work), parts, &f)
}

fn recurse<T: Parts>(
    range: Range<usize>,
    unit_len: usize,
    count: usize,
    parts: T,
    f: &(impl Fn(Range<usize>, T) + Sync),
) {
    let units = range.len();
    let left = count / 2;
    let mid = if count > 1 { cut(units, left, count) } else { 0 };
    if mid == 0 || mid >= units {
        return f(range, parts);
    }
    let (lo, hi) = parts.split(mid * unit_len);
    let at = range.start + mid;
    rayon::join(
        || recurse(range.start..at, unit_len, left, lo, f),
        || recurse(at..range.end, unit_len, count - left, hi, f),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts cover every index once, with each slice cut where its range starts.
    #[test]
    fn parts_cover_every_value_once() {
        let min = 2 * MIN_VALUES_PER_PART;
        for len in [0, 5, min - 1, min + 7, 3 * min + 1] {
            for threads in [1, 2, 3, 8] {
                let src: Vec<f32> = (0..len).map(|i| i as f32).collect();
                let mut dst = vec![-1.0f32; len];
                let mut seen = vec![0.0f32; len];
                let calls = std::sync::atomic::AtomicUsize::new(0);
                with_threads(threads, || {
                    in_parts(len, (&mut dst[..], &mut seen[..], &src[..]), |range, (d, s, x)| {
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
                let want = threads.min(len / MIN_VALUES_PER_PART).max(1);
                assert_eq!(calls.into_inner(), want, "len {len} threads {threads}");
            }
        }
    }
}

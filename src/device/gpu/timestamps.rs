//! The profiler's GPU clock: timestamp queries written between the dispatches of an epoch's own
//! recording, resolved into a buffer and read back with the epoch's results, then turned into
//! time per kernel (`crate::profile::EpochProfile`).
//!
//! A query set holds at most [`SET_QUERIES`] (4096, WebGPU's limit) timestamps and an epoch can
//! have many more dispatches, so a recording's queries are numbered globally and query `g` lives
//! in set `g / 4096` at index `g % 4096`. The sets are made on the first profiled run and kept
//! (grown as epochs need more): the memory is 8 bytes per query on the device, in the resolve
//! buffer and in the readback buffer, so an epoch of `d` dispatches in `p` compute passes costs
//! `8 (d + p)` bytes of each (`16 d` without timestamps inside passes).

use crate::device::kernels::Family;
use crate::profile::{EpochProfile, ProfileClock};

/// Queries per query set: WebGPU's (and wgpu's) limit.
pub(crate) const SET_QUERIES: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// How timestamps are placed around dispatches: what the device's features allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimestampMode {
    /// `TIMESTAMP_QUERY_INSIDE_PASSES`: a timestamp at the start of each compute pass and after
    /// each of its dispatches, so a dispatch's time is the step between two (barriers included):
    /// `n + 1` queries for a pass of `n` dispatches, the recording otherwise unchanged.
    InsidePasses,
    /// `TIMESTAMP_QUERY` alone (WebGPU's baseline, Apple GPUs): every dispatch in a compute pass
    /// of its own with the pass's beginning and end timestamps, two queries each, in one set
    /// (pairs start at even indices and a set's size is even).
    PassPerDispatch,
}

impl TimestampMode {
    /// The best mode `features` allow, if any.
    pub(crate) fn of(features: wgpu::Features) -> Option<TimestampMode> {
        if !features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            None
        } else if features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES) {
            Some(TimestampMode::InsidePasses)
        } else {
            Some(TimestampMode::PassPerDispatch)
        }
    }

    /// The features the mode needs on the device.
    pub(crate) fn features(self) -> wgpu::Features {
        match self {
            TimestampMode::InsidePasses => {
                wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            }
            TimestampMode::PassPerDispatch => wgpu::Features::TIMESTAMP_QUERY,
        }
    }

    /// Queries a recording needs: `steps` says, step by step, whether it is a dispatch (a run of
    /// dispatches is one compute pass; other steps end it).
    pub(crate) fn queries(self, steps: impl IntoIterator<Item = bool>) -> u32 {
        let (mut queries, mut in_pass) = (0u32, false);
        for dispatch in steps {
            queries += match (self, dispatch) {
                (TimestampMode::PassPerDispatch, true) => 2,
                (TimestampMode::InsidePasses, true) => 1 + u32::from(!in_pass),
                (_, false) => 0,
            };
            in_pass = dispatch;
        }
        queries
    }
}

/// Where global query `g` lives: (query set, index in it).
pub(crate) fn slot(g: u32) -> (usize, u32) {
    ((g / SET_QUERIES) as usize, g % SET_QUERIES)
}

/// Query sets needed for `queries` queries.
pub(crate) fn sets_for(queries: u32) -> usize {
    queries.div_ceil(SET_QUERIES) as usize
}

/// One timed dispatch: its kernel and the global queries written before and after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    pub family: Family,
    pub kernel: &'static str,
    pub begin: u32,
    pub end: u32,
}

/// A backend's query sets and the buffer they resolve into (made on first use, kept, grown).
#[derive(Default)]
pub(crate) struct QuerySets {
    pub sets: Vec<wgpu::QuerySet>,
    /// The resolve buffer (QUERY_RESOLVE | COPY_SRC) and its size in bytes.
    pub resolve: Option<(wgpu::Buffer, u64)>,
}

impl QuerySets {
    /// Makes sure there are sets for `queries` queries and a resolve buffer for them.
    pub(crate) fn ensure(&mut self, device: &wgpu::Device, queries: u32) {
        while self.sets.len() < sets_for(queries) {
            self.sets.push(device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profiler timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: SET_QUERIES,
            }));
        }
        let bytes = u64::from(queries) * u64::from(wgpu::QUERY_SIZE);
        if self.resolve.as_ref().is_none_or(|(_, cap)| *cap < bytes) {
            let capacity = bytes.next_power_of_two().max(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT);
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profiler timestamps"),
                size: capacity,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            self.resolve = Some((buffer, capacity));
        }
    }

    /// Resolves queries `0..queries` into the resolve buffer (query `g` at byte `8 g`: each
    /// set's range starts at a multiple of 32 KiB, so at the 256-byte alignment resolving needs).
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder, queries: u32) {
        let Some((buffer, _)) = &self.resolve else { return };
        let mut first = 0;
        while first < queries {
            let (set, _) = slot(first);
            let count = (queries - first).min(SET_QUERIES);
            let at = u64::from(first) * u64::from(wgpu::QUERY_SIZE);
            encoder.resolve_query_set(&self.sets[set], 0..count, buffer, at);
            first += count;
        }
    }
}

/// The kernels' times from the timestamps read back (`ticks[g]` is query `g`), in nanoseconds
/// per tick `period` (`Queue::get_timestamp_period`), into `profile`'s rows; its span is the
/// first mark's start to the last one's end. A step that runs backwards (a timestamp counter that
/// wrapped, or a driver that reorders) counts as zero.
pub(crate) fn decode(marks: &[Mark], ticks: &[u64], period: f32, profile: &mut EpochProfile) {
    let seconds = |from: u32, to: u32| match (ticks.get(from as usize), ticks.get(to as usize)) {
        (Some(a), Some(b)) => b.saturating_sub(*a) as f64 * f64::from(period) * 1e-9,
        _ => 0.0,
    };
    profile.clock = ProfileClock::Timestamps;
    profile.add_kernels(marks.iter().map(|m| (m.family.name(), m.kernel, 1, seconds(m.begin, m.end))));
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        profile.span_ms = seconds(first.begin, last.end) * 1e3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> EpochProfile {
        EpochProfile {
            epoch: 0,
            clock: ProfileClock::DispatchesAlone,
            device: "test".into(),
            wall_ms: 0.0,
            host_ms: 0.0,
            span_ms: 0.0,
            kernels: Vec::new(),
        }
    }

    #[test]
    fn modes_follow_the_features() {
        use wgpu::Features as F;
        assert_eq!(TimestampMode::of(F::empty()), None);
        assert_eq!(TimestampMode::of(F::TIMESTAMP_QUERY), Some(TimestampMode::PassPerDispatch));
        let all = F::TIMESTAMP_QUERY | F::TIMESTAMP_QUERY_INSIDE_PASSES | F::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        assert_eq!(TimestampMode::of(all), Some(TimestampMode::InsidePasses));
        // Inside passes without the base feature is no timestamps at all.
        assert_eq!(TimestampMode::of(F::TIMESTAMP_QUERY_INSIDE_PASSES), None);
        assert!(all.contains(TimestampMode::InsidePasses.features()));
    }

    #[test]
    fn queries_per_pass_and_per_dispatch() {
        // Two passes (3 dispatches, a copy, 2 dispatches), then a copy.
        let steps = [true, true, true, false, true, true, false];
        assert_eq!(TimestampMode::InsidePasses.queries(steps), 3 + 1 + 2 + 1);
        assert_eq!(TimestampMode::PassPerDispatch.queries(steps), 10);
        assert_eq!(TimestampMode::InsidePasses.queries([false, false]), 0);
    }

    #[test]
    fn queries_split_across_sets() {
        assert_eq!(sets_for(0), 0);
        assert_eq!(sets_for(1), 1);
        assert_eq!(sets_for(SET_QUERIES), 1);
        assert_eq!(sets_for(SET_QUERIES + 1), 2);
        assert_eq!(sets_for(3 * SET_QUERIES + 7), 4);
        assert_eq!(slot(0), (0, 0));
        assert_eq!(slot(SET_QUERIES - 1), (0, SET_QUERIES - 1));
        assert_eq!(slot(SET_QUERIES), (1, 0));
        assert_eq!(slot(2 * SET_QUERIES + 5), (2, 5));
        // A pair that starts at an even index never straddles two sets.
        assert_eq!(SET_QUERIES % 2, 0);
        for g in (0..3 * SET_QUERIES).step_by(2) {
            assert_eq!(slot(g).0, slot(g + 1).0);
        }
    }

    #[test]
    fn ticks_become_milliseconds_per_kernel() {
        let mark = |kernel, family, begin, end| Mark { family, kernel, begin, end };
        // One pass inside-passes style: queries 0..4 for three dispatches, then one across a set
        // boundary (global queries 4095 and 4096).
        let marks = [
            mark("gather", Family::Gather, 0, 1),
            mark("matmul_nn", Family::Dense, 1, 2),
            mark("matmul_nn", Family::Dense, 2, 3),
            mark("adam", Family::Optim, SET_QUERIES - 1, SET_QUERIES),
        ];
        let mut ticks = vec![0u64; SET_QUERIES as usize + 1];
        ticks[..4].copy_from_slice(&[1_000, 1_500, 4_000, 4_250]);
        ticks[SET_QUERIES as usize - 1] = 5_000;
        ticks[SET_QUERIES as usize] = 9_000;
        // 2.5 ns per tick (an adapter whose counter is not in nanoseconds).
        let mut p = empty();
        decode(&marks, &ticks, 2.5, &mut p);
        assert_eq!(p.clock, ProfileClock::Timestamps);
        let ms = |k: &str| p.kernel(k).unwrap().ms;
        assert!((ms("gather") - 500.0 * 2.5e-6).abs() < 1e-12);
        assert!((ms("matmul_nn") - (2_500.0 + 250.0) * 2.5e-6).abs() < 1e-12);
        assert_eq!(p.kernel("matmul_nn").unwrap().dispatches, 2);
        assert_eq!(p.kernel("matmul_nn").unwrap().family, "dense");
        assert!((ms("adam") - 4_000.0 * 2.5e-6).abs() < 1e-12);
        assert!((p.span_ms - 8_000.0 * 2.5e-6).abs() < 1e-12);
        // A step backwards counts zero, and a query past the readback too: never negative.
        let mut p = empty();
        decode(&[mark("loss", Family::Loss, 1, 0), mark("loss", Family::Loss, 0, 99)], &[5, 10], 1.0, &mut p);
        assert_eq!(p.kernel("loss").unwrap().ms, 0.0);
    }

    /// Both placements on this adapter (lavapipe here), over more dispatches than one query set
    /// holds and with copies between passes: every dispatch counted, the times positive and the
    /// kernels inside the span. An adapter without timestamp queries fails, saying so (the
    /// fallback is tested through fit in tests/profile.rs).
    #[test]
    fn both_placements_time_every_dispatch_on_the_device() {
        use crate::device::args::{ActivationArgs, Args};
        use crate::device::gpu::{GpuBackend, GpuContext, GpuOptions};
        use crate::device::kernels::Kernel;
        use crate::device::{Backend, Launch};
        use crate::layers::Activation;
        let ctx = match GpuContext::new(&GpuOptions::from_env().profile(true)) {
            Ok(c) => std::sync::Arc::new(c),
            Err(e) => panic!("GPU tests need a wgpu adapter ({e}); install mesa-vulkan-drivers (scripts/test does)"),
        };
        let Some(mode) = ctx.timestamps else {
            panic!("{} has no timestamp queries: this test needs them", ctx.info().adapter)
        };
        eprintln!("{}: {mode:?}, {} ns per tick", ctx.info().adapter, ctx.timestamp_period);
        let modes = match mode {
            TimestampMode::InsidePasses => vec![TimestampMode::InsidePasses, TimestampMode::PassPerDispatch],
            TimestampMode::PassPerDispatch => vec![TimestampMode::PassPerDispatch],
        };
        for mode in modes {
            let mut g = GpuBackend::new(ctx.clone(), 1);
            g.timestamp_mode = Some(mode);
            let src = g.create_member_buffer(4096, "src").unwrap();
            let dst = g.create_member_buffer(4096, "dst").unwrap();
            let op = g.bind(Kernel::ActivationForward, &[src, dst, src]).unwrap();
            let args = Args::ActivationForward(ActivationArgs { len: 4096, activation: Activation::Relu });
            // 2600 dispatches in passes of 100 with a copy between: 2626 queries inside passes,
            // 5200 one pass per dispatch: two query sets.
            let mut launches = Vec::new();
            for i in 0..2600 {
                launches.push(Launch::Run { op, args });
                if i % 100 == 99 {
                    launches.push(Launch::Copy { src: dst, src_off: 0, dst: src, dst_off: 0, len: 4096, member: None });
                }
            }
            g.set_profiling(true);
            let read = g.run(&launches, &[(dst, 0..4)]).unwrap();
            assert_eq!(read[0].len(), 4);
            let p = g.take_profile().expect("a profiled run has a profile");
            assert_eq!(p.clock, ProfileClock::Timestamps);
            let row = p.kernel("activation_forward").expect("the kernel's row");
            assert_eq!((row.family, row.dispatches), ("elementwise", 2600), "{mode:?}");
            assert!(row.ms > 0.0, "{mode:?}: {p}");
            assert!(p.kernel_ms() <= p.span_ms * (1.0 + 1e-9), "{mode:?}: {p}");
            // Off again: no profile, no timestamps.
            g.set_profiling(false);
            g.run(&launches[..3], &[(dst, 0..4)]).unwrap();
            assert!(g.take_profile().is_none());
            assert!(
                g.queries.sets.len()
                    == sets_for(mode.queries(launches.iter().map(|l| matches!(l, Launch::Run { .. }))))
            );
        }
    }
}

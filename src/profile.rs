//! The profiler's record of an epoch ([`EpochProfile`]): time per kernel, the epoch's wall time
//! and what the kernels leave unaccounted, with the one table formatter both devices print.
//! `Fit::profile(true)` (or a GPU device opened with `GpuOptions::profile(true)` /
//! `WGFIT_PROFILE=1`) turns it on; each epoch's profile is printed to stderr and kept in
//! [`History::profile`](crate::History::profile).

use std::fmt;

/// Where a profile's kernel times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileClock {
    /// GPU timestamp queries written between the dispatches of the epoch's own recording (one
    /// submission, as without the profiler): the kernels' time on the device.
    Timestamps,
    /// No timestamp queries on this device: each dispatch was submitted and waited for alone,
    /// timed on the host. Every time includes a submission and a wait, and the epoch runs
    /// slower than it would unprofiled (its wall time is that slower epoch's).
    DispatchesAlone,
    /// The CPU path: each kernel timed on the host around its call (summed over the threads
    /// that run members, so with several threads the sum can exceed the wall time).
    Host,
}

/// One row of an [`EpochProfile`]: a kernel entry point (a Matmul variant, a pack kernel, or
/// any other kernel) with the WGSL family (file) it lives in.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// The family: the file `shaders/<family>.wgsl` (`dense`, `gather`, `optim`, ...).
    pub family: &'static str,
    /// The entry point (`matmul_nn`, `adam`, ...).
    pub kernel: &'static str,
    /// Dispatches in the epoch (each runs for every member of the plan).
    pub dispatches: u64,
    /// Their summed time, in milliseconds.
    pub ms: f64,
}

/// Where one epoch's time went. Rows are sorted by family, then by time (longest first).
///
/// `wall_ms` runs from the start of the epoch's recording on the host to the end of its
/// readback; `kernel_ms()` is the kernels' part of it and `remainder_ms()` the rest: recording
/// on the host (`host_ms`), the device between dispatches (copies, barriers, the starts of
/// compute passes: `span_ms - kernel_ms()` with timestamps), submission, waiting and reading
/// back.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochProfile {
    /// The epoch (from 0).
    pub epoch: usize,
    /// Where the kernel times come from.
    pub clock: ProfileClock,
    /// The adapter's name (`cpu reference` on the CPU path).
    pub device: String,
    /// The epoch's wall time, in milliseconds.
    pub wall_ms: f64,
    /// Recording the epoch's launches on the host, before submission, in milliseconds.
    pub host_ms: f64,
    /// From the first timestamp to the last (the device busy with the epoch), in milliseconds;
    /// without timestamps, the kernels' sum.
    pub span_ms: f64,
    /// One row per kernel entry point that ran.
    pub kernels: Vec<KernelTime>,
}

impl EpochProfile {
    /// The kernels' summed time, in milliseconds.
    pub fn kernel_ms(&self) -> f64 {
        self.kernels.iter().map(|k| k.ms).sum()
    }

    /// The wall time the kernels do not account for, in milliseconds.
    pub fn remainder_ms(&self) -> f64 {
        self.wall_ms - self.kernel_ms()
    }

    /// Host time recording the epoch per dispatch, in microseconds: the cost each launch adds on
    /// the CPU, which bounds how small a kernel can usefully be (with timestamps it includes
    /// writing them; without dispatches, 0).
    pub fn host_us_per_dispatch(&self) -> f64 {
        let dispatches: u64 = self.kernels.iter().map(|k| k.dispatches).sum();
        if dispatches == 0 {
            0.0
        } else {
            self.host_ms * 1e3 / dispatches as f64
        }
    }

    /// The row of `kernel` (an entry point), if it ran.
    pub fn kernel(&self, kernel: &str) -> Option<&KernelTime> {
        self.kernels.iter().find(|k| k.kernel == kernel)
    }

    /// Adds `other`'s host time, device span and kernel rows to this one's: two plans' runs in one
    /// submission, or the pieces of an epoch of streamed data.
    pub(crate) fn absorb(&mut self, other: EpochProfile) {
        self.host_ms += other.host_ms;
        self.span_ms += other.span_ms;
        self.add_kernels(other.kernels.into_iter().map(|k| (k.family, k.kernel, k.dispatches, k.ms * 1e-3)));
    }

    /// Adds rows of (family, kernel, dispatches, seconds), merging those of one kernel, and
    /// sorts the rows (the recorders and the merge of several plans' profiles share it).
    pub(crate) fn add_kernels(&mut self, rows: impl IntoIterator<Item = (&'static str, &'static str, u64, f64)>) {
        for (family, kernel, dispatches, seconds) in rows {
            match self.kernels.iter_mut().find(|k| k.kernel == kernel) {
                Some(k) => {
                    k.dispatches += dispatches;
                    k.ms += seconds * 1e3;
                }
                None => self.kernels.push(KernelTime { family, kernel, dispatches, ms: seconds * 1e3 }),
            }
        }
        self.kernels.sort_by(|a, b| a.family.cmp(b.family).then(b.ms.total_cmp(&a.ms)));
    }
}

impl fmt::Display for EpochProfile {
    /// The table the profiler prints: a row per kernel with its share of the wall time, the
    /// kernels' total, then what the remainder is made of.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = match self.clock {
            ProfileClock::Timestamps => "GPU timestamp queries",
            ProfileClock::DispatchesAlone => {
                "no timestamp queries: each dispatch submitted and timed alone, so every time includes a \
                 submission and a wait and the epoch ran slower than unprofiled"
            }
            ProfileClock::Host => "host clock around each kernel, summed over threads",
        };
        let share = |ms: f64| if self.wall_ms > 0.0 { 100.0 * ms / self.wall_ms } else { 0.0 };
        writeln!(
            f,
            "wgfit profile, epoch {} on {} ({clock}): wall {:.2} ms",
            self.epoch + 1,
            self.device,
            self.wall_ms
        )?;
        writeln!(
            f,
            "  {:<14} {:<24} {:>10} {:>11} {:>7} {:>10}",
            "family", "kernel", "dispatches", "ms", "share", "us each"
        )?;
        for k in &self.kernels {
            writeln!(
                f,
                "  {:<14} {:<24} {:>10} {:>11.3} {:>6.1}% {:>10.2}",
                k.family,
                k.kernel,
                k.dispatches,
                k.ms,
                share(k.ms),
                if k.dispatches > 0 { k.ms * 1e3 / k.dispatches as f64 } else { 0.0 }
            )?;
        }
        let kernels = self.kernel_ms();
        let dispatches: u64 = self.kernels.iter().map(|k| k.dispatches).sum();
        writeln!(f, "  {:<39} {dispatches:>10} {kernels:>11.3} {:>6.1}%", "kernels", share(kernels))?;
        writeln!(
            f,
            "  {:<50} {:>11.3} {:>6.1}% {:>10.2}",
            "host: recording the launches",
            self.host_ms,
            share(self.host_ms),
            self.host_us_per_dispatch()
        )?;
        let mut rest = Vec::new();
        let other = self.wall_ms - kernels - self.host_ms;
        if self.clock == ProfileClock::Timestamps {
            // Never below zero but for rounding: the dispatches' steps tile the span.
            let between = (self.span_ms - kernels).max(0.0);
            rest.push(("device: between dispatches (copies, barriers)", between));
            rest.push(("submission, waiting, readback", other - between));
        } else {
            rest.push(("submission, waiting, readback", other));
        }
        for (what, ms) in rest {
            writeln!(f, "  {what:<50} {ms:>11.3} {:>6.1}%", share(ms))?;
        }
        write!(
            f,
            "  {:<50} {:>11.3} {:>6.1}%",
            "remainder (wall - kernels)",
            self.remainder_ms(),
            share(self.remainder_ms())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> EpochProfile {
        EpochProfile {
            epoch: 0,
            clock: ProfileClock::Timestamps,
            device: "test".into(),
            wall_ms: 10.0,
            host_ms: 1.0,
            span_ms: 8.0,
            kernels: Vec::new(),
        }
    }

    #[test]
    fn rows_merge_by_kernel_and_sort_by_family_then_time() {
        let mut p = profile();
        p.add_kernels([("optim", "adam", 2, 0.001), ("dense", "matmul_nn", 3, 0.002), ("dense", "pack", 1, 0.003)]);
        p.add_kernels([("dense", "matmul_nn", 1, 0.002)]);
        let names: Vec<_> = p.kernels.iter().map(|k| k.kernel).collect();
        assert_eq!(names, ["matmul_nn", "pack", "adam"]);
        let mm = p.kernel("matmul_nn").unwrap();
        assert_eq!(mm.dispatches, 4);
        assert!((mm.ms - 4.0).abs() < 1e-9, "{}", mm.ms);
        assert!((p.kernel_ms() - 8.0).abs() < 1e-9);
        assert!((p.remainder_ms() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_table_adds_up() {
        let mut p = profile();
        p.add_kernels([("dense", "matmul_nn", 3, 0.005), ("optim", "adam", 3, 0.001)]);
        // Columns are padded: compare with single spaces.
        let text = p.to_string().split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        assert!(text.contains("wall 10.00 ms"), "{text}");
        assert!(text.contains("remainder (wall - kernels) 4.000 40.0%"), "{text}");
        assert!(text.contains("GPU timestamp queries"), "{text}");
        // kernels 6 ms; between dispatches 8 - 6 = 2; host 1; the rest 10 - 6 - 1 - 2 = 1.
        for line in
            ["kernels 6 6.000 60.0%", "barriers) 2.000 20.0%", "launches 1.000 10.0% 166.67", "readback 1.000 10.0%"]
        {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!((p.host_us_per_dispatch() - 1e3 / 6.0).abs() < 1e-9);
        p.clock = ProfileClock::DispatchesAlone;
        assert!(p.to_string().contains("no timestamp queries"));
    }
}

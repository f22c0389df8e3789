//! Where the math runs. A [`Device`] is either the GPU (wgpu) or the CPU reference; both run the
//! same plan of kernel launches through the [`Backend`] trait, so the model code never asks which.

pub(crate) mod args;
pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod kernels;

use std::ops::Range;
use std::sync::Arc;

use crate::error::Result;
pub use args::*;
pub use gpu::GpuOptions;
pub use kernels::{Family, Kernel};

/// A compute device: a GPU adapter through wgpu, or the CPU reference path.
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: DeviceInner,
}

#[derive(Clone)]
pub(crate) enum DeviceInner {
    Gpu(Arc<gpu::GpuContext>),
    /// The CPU path; `max_data_bytes` as `GpuOptions::max_data_bytes` (the test suite's, to
    /// stream data on the CPU path too).
    Cpu {
        max_data_bytes: Option<usize>,
    },
}

/// What a device is, for display and for `--json` output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// "gpu" or "cpu".
    pub kind: String,
    /// The adapter's name (the CPU path says "cpu reference").
    pub adapter: String,
    /// "vulkan", "metal", "dx12", "gl", or "cpu".
    pub backend: String,
    /// The adapter's type as wgpu reports it (DiscreteGpu, IntegratedGpu, Cpu...).
    pub device_type: String,
}

impl Device {
    /// The best GPU adapter: discrete, then integrated, then a software one, with the settings of
    /// the `WGFIT_*` environment variables (`WGFIT_ADAPTER`, a substring of the adapter's name;
    /// `WGFIT_BACKEND`: vulkan, metal, dx12, gl; ...): `Device::gpu_with(GpuOptions::from_env())`.
    pub fn gpu() -> Result<Device> {
        Device::gpu_with(GpuOptions::from_env())
    }

    /// A GPU device with these options (adapter, backend, timeout, matmul variants, lowered limits).
    /// Invalid options are errors that name the setting.
    pub fn gpu_with(options: GpuOptions) -> Result<Device> {
        Ok(Device { inner: DeviceInner::Gpu(Arc::new(gpu::GpuContext::new(&options)?)) })
    }

    /// The CPU path: the kernels' twins, with products on faer. It takes as many cores as
    /// rayon's global pool has (`RAYON_NUM_THREADS`, or a pool the application builds first),
    /// and its results do not depend on how many that is.
    pub fn cpu() -> Device {
        Device { inner: DeviceInner::Cpu { max_data_bytes: None } }
    }

    /// The fastest device by default: a hardware GPU (discrete or integrated) when there is one,
    /// otherwise the CPU path. A software adapter (llvmpipe/lavapipe, WARP, SwiftShader) is slower
    /// than the CPU path on every workload measured, so it runs only when asked for
    /// ([`Device::gpu`], `WGFIT_ADAPTER` or `WGFIT_BACKEND`: then this is `Device::gpu()`, falling
    /// back to the CPU when it fails). Only Vulkan, Metal and DX12 are probed unless GL is named, so
    /// no driver prints to the terminal. Returns the device and one line saying which and why.
    ///
    /// ```
    /// let (device, why) = wgfit::Device::auto();
    /// eprintln!("wgfit: {why}");
    /// # let _ = device;
    /// ```
    pub fn auto() -> (Device, String) {
        let options = GpuOptions::from_env();
        if options.names_a_gpu() {
            return match Device::gpu_with(options) {
                Ok(d) => {
                    let i = d.info();
                    let why =
                        format!("running on the GPU {} ({}), as WGFIT_ADAPTER/WGFIT_BACKEND ask", i.adapter, i.backend);
                    (d, why)
                }
                Err(e) => (Device::cpu(), format!("running on the CPU path: the GPU asked for is not available ({e})")),
            };
        }
        let found = gpu::auto_candidates(&options);
        match gpu::auto_choice(&found) {
            gpu::AutoChoice::Gpu(i) => {
                let chosen = &found[i];
                match Device::gpu_with(options.adapter(chosen.adapter.clone())) {
                    Ok(d) => (
                        d,
                        format!("running on the GPU {} ({}, {})", chosen.adapter, chosen.backend, chosen.device_type),
                    ),
                    Err(e) => (
                        Device::cpu(),
                        format!("running on the CPU path: the GPU {} failed to open ({e})", chosen.adapter),
                    ),
                }
            }
            gpu::AutoChoice::Cpu(why) => (Device::cpu(), format!("running on the CPU path: {why}")),
        }
    }

    /// The GPU if one can be had (a software adapter too), else the CPU path, with the reason it
    /// fell back. [`Device::auto`] is the better default: it passes over software adapters.
    pub fn gpu_or_cpu() -> (Device, Option<crate::Error>) {
        match Device::gpu() {
            Ok(d) => (d, None),
            Err(e) => (Device::cpu(), Some(e)),
        }
    }

    /// Whether this is the GPU path.
    pub fn is_gpu(&self) -> bool {
        matches!(self.inner, DeviceInner::Gpu(_))
    }

    /// The adapter's description (the CPU path's too).
    pub fn info(&self) -> DeviceInfo {
        match &self.inner {
            DeviceInner::Gpu(ctx) => ctx.info(),
            DeviceInner::Cpu { .. } => DeviceInfo {
                kind: "cpu".into(),
                adapter: "cpu reference".into(),
                backend: "cpu".into(),
                device_type: "Cpu".into(),
            },
        }
    }

    /// Every adapter wgpu can see, with the one `Device::gpu()` would pick marked.
    pub fn list_adapters() -> Vec<(DeviceInfo, bool)> {
        gpu::list_adapters()
    }

    /// A fresh set of buffers and launches for a plan of `members` models.
    pub(crate) fn backend(&self, members: usize) -> Box<dyn Backend> {
        match &self.inner {
            DeviceInner::Gpu(ctx) => Box::new(gpu::GpuBackend::new(ctx.clone(), members)),
            DeviceInner::Cpu { max_data_bytes } => Box::new(cpu::CpuBackend::new(members, *max_data_bytes)),
        }
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.info();
        write!(f, "Device({} {} on {})", info.kind, info.adapter, info.backend)
    }
}

/// A buffer of f32 (or u32) values owned by one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufId(pub usize);

/// A kernel with its buffers bound, made once per model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpId(pub usize);

/// One step of a recording. A kernel launch runs for every member of the plan.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Launch {
    Run {
        op: OpId,
        args: Args,
    },
    /// Copies `len` values between two member buffers (offsets and length in values, within a
    /// member's block), for one member or, with `member` None, for each.
    Copy {
        src: BufId,
        src_off: usize,
        dst: BufId,
        dst_off: usize,
        len: usize,
        member: Option<usize>,
    },
    /// A streamed dataset's next rows are due: the host writes positions `start..start + rows` of
    /// `role`'s data (through each member's row order when `shuffled`) into its chunk buffers
    /// before the launches after this one run (`Plan::run_recording`, which submits a recording
    /// in pieces at these marks). Never reaches a backend.
    Fill {
        role: crate::plan::DataRole,
        start: usize,
        rows: usize,
        shuffled: bool,
    },
}

/// Values per member in a member buffer of `len` values: whole vec4s, so that every member's
/// block starts 16-byte aligned (the vectorised kernels' loads) on both devices.
pub(crate) fn member_stride(len: usize) -> usize {
    len.max(1).div_ceil(4).saturating_mul(4)
}

/// What each device provides: buffers, bound kernels, and running a recording with one readback.
///
/// A backend serves a plan of [`Backend::members`] models. A *member buffer* holds one block of
/// [`member_stride`]`(len)` values per member, back to back; a *shared* buffer (the dataset) is
/// one block all members read. Writes and reads address a member buffer flat: member m's value i
/// is at `m * stride + i`. Kernels only write member buffers.
pub(crate) trait Backend: Send {
    /// Models in the plan this backend serves.
    fn members(&self) -> usize;
    /// A zeroed buffer of `len` values that every member reads.
    fn create_buffer(&mut self, len: usize, label: &str) -> Result<BufId>;
    /// A zeroed member buffer: `len` values for each member.
    fn create_member_buffer(&mut self, len: usize, label: &str) -> Result<BufId>;
    /// Writes values at `offset` (in values). Ordered before the next `run`.
    fn write(&mut self, buf: BufId, offset: usize, data: &[f32]) -> Result<()>;
    /// Writes u32 values (index buffers) at `offset`.
    fn write_u32(&mut self, buf: BufId, offset: usize, data: &[u32]) -> Result<()> {
        self.write(buf, offset, bytemuck::cast_slice(data))
    }
    /// Binds `buffers` to `kernel`'s storage bindings, in `Kernel::bindings` order.
    fn bind(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId>;
    /// Runs the launches in order, then reads back the given ranges (in values): on the GPU one
    /// submission and one mapping, however many launches.
    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>>;
    /// Starts the launches without waiting for them or reading anything back; the next `run`,
    /// `submit` or `write` is ordered after them. The GPU keeps at most one submission queued
    /// behind the one running (each holds a staged chunk of data), so the host prepares the next
    /// chunk while the device works and memory stays bounded.
    fn submit(&mut self, launches: &[Launch]) -> Result<()> {
        self.run(launches, &[]).map(|_| ())
    }
    /// The most device memory one dataset may take (`GpuOptions::max_data_bytes`); None: no
    /// limit of its own.
    fn max_data_bytes(&self) -> Option<usize> {
        None
    }
    /// Reads ranges without launching anything.
    fn read(&mut self, reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        self.run(&[], reads)
    }
    /// Largest buffer this backend can bind to a kernel, in values.
    fn max_binding_values(&self) -> usize;
    /// Buffers allocated so far (the tests check that repeated calls do not add any).
    fn buffer_count(&self) -> usize;
    /// Bytes of all buffers allocated so far.
    fn allocated_bytes(&self) -> usize;
    /// The GPU backend, to submit several backends' recordings at once (`run_together`).
    fn gpu(&mut self) -> Option<&mut gpu::GpuBackend> {
        None
    }
    /// Profiles each run from now on, or stops (a fit's epochs: `Fit::profile`).
    fn set_profiling(&mut self, on: bool);
    /// Whether the device asks for every fit to be profiled (`GpuOptions::profile`).
    fn profiles_every_fit(&self) -> bool {
        false
    }
    /// The last profiled run's kernel times (its wall time and epoch are the caller's to fill).
    fn take_profile(&mut self) -> Option<crate::profile::EpochProfile>;
}

/// Runs each job's launches and reads on its backend: GPU backends of one device record into
/// one submission and wait once (several plans, one epoch), other backends one after another.
/// Returns each job's reads.
pub(crate) fn run_together(jobs: &mut [RunJob<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut first: Option<Arc<gpu::GpuContext>> = None;
    let one_device = jobs.iter_mut().all(|j| match j.backend.gpu() {
        Some(g) => Arc::ptr_eq(first.get_or_insert_with(|| g.ctx.clone()), &g.ctx),
        None => false,
    });
    if !one_device || jobs.len() < 2 {
        return jobs.iter_mut().map(|j| j.backend.run(j.launches, &j.reads)).collect();
    }
    let mut commands = Vec::with_capacity(jobs.len());
    let mut ctx = None;
    for j in jobs.iter_mut() {
        let g = j.backend.gpu().expect("checked above");
        ctx.get_or_insert_with(|| g.ctx.clone());
        commands.push(g.prepare(j.launches, &j.reads)?);
    }
    let ctx = ctx.expect("at least two jobs");
    let submission = ctx.submit(commands);
    jobs.iter_mut().map(|j| j.backend.gpu().expect("checked above").collect(submission.clone(), &j.reads)).collect()
}

/// One backend's share of [`run_together`].
pub(crate) struct RunJob<'a> {
    pub backend: &'a mut dyn Backend,
    pub launches: &'a [Launch],
    pub reads: Vec<(BufId, Range<usize>)>,
}

/// Checks a binding list: right count, and no buffer written while also bound elsewhere.
pub(crate) fn check_bindings(kernel: Kernel, buffers: &[BufId]) -> Result<()> {
    let spec = kernel.bindings();
    if spec.len() != buffers.len() {
        return Err(crate::Error::Internal(format!(
            "{} takes {} buffers, {} given",
            kernel.entry(),
            spec.len(),
            buffers.len()
        )));
    }
    for (i, (_, access)) in spec.iter().enumerate() {
        if *access == kernels::Access::ReadWrite && buffers.iter().enumerate().any(|(j, b)| j != i && *b == buffers[i])
        {
            return Err(crate::Error::Internal(format!(
                "{} binds buffer {:?} writable and again in another slot",
                kernel.entry(),
                buffers[i]
            )));
        }
    }
    Ok(())
}

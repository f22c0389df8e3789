//! Lets the test suite launch one kernel at a time on either device, to hold each GPU kernel
//! against its CPU twin. Not part of the stable API.

use crate::device::{member_stride, Backend, Device, DeviceInner, Launch};
pub use crate::device::{
    member_table, ActivationArgs, ActivationGradArgs, Args, BatchNormArgs, BufId, ConfusionArgs, DropoutArgs, Family,
    GatherArgs, GradNormsArgs, Kernel, LossArgs, MatmulArgs, NormalizationArgs, Ones, PenaltyArgs, SoftmaxArgs,
    UpdateArgs,
};
use crate::error::Result;

/// A scratch backend: make buffers, launch single kernels, read buffers back.
pub struct KernelHarness {
    backend: Box<dyn Backend>,
    /// Per buffer: values per member (a shared buffer counts as one member).
    lens: Vec<(usize, bool)>,
}

impl KernelHarness {
    /// One member.
    pub fn new(device: &Device) -> Self {
        KernelHarness::with_members(device, 1)
    }

    /// A plan of `members` members: every launch runs for each.
    pub fn with_members(device: &Device, members: usize) -> Self {
        KernelHarness { backend: device.backend(members), lens: Vec::new() }
    }

    pub fn members(&self) -> usize {
        self.backend.members()
    }

    /// A member buffer holding `data`, the members' blocks of `data.len() / members` values back
    /// to back.
    pub fn buffer(&mut self, data: &[f32]) -> Result<BufId> {
        let k = self.backend.members();
        let len = data.len() / k;
        let id = self.backend.create_member_buffer(len, "test")?;
        let stride = member_stride(len);
        for (m, block) in data.chunks(len.max(1)).take(k).enumerate() {
            self.backend.write(id, m * stride, block)?;
        }
        self.lens.push((len, true));
        Ok(id)
    }

    /// A buffer every member reads (a dataset).
    pub fn shared_buffer(&mut self, data: &[f32]) -> Result<BufId> {
        let id = self.backend.create_buffer(data.len(), "test")?;
        self.backend.write(id, 0, data)?;
        self.lens.push((data.len(), false));
        Ok(id)
    }

    /// A member buffer holding u32 values (row orders), as [`KernelHarness::buffer`].
    pub fn buffer_u32(&mut self, data: &[u32]) -> Result<BufId> {
        self.buffer(bytemuck::cast_slice(data))
    }

    /// Launches the kernel of `args` once over `buffers` (in `Kernel::bindings` order).
    pub fn run(&mut self, buffers: &[BufId], args: Args) -> Result<()> {
        let op = self.backend.bind(args.kernel(), buffers)?;
        self.backend.run(&[Launch::Run { op, args }], &[])?;
        Ok(())
    }

    /// Launches `kernel` `times` times over the same buffers in one submission (the GPU's matmul
    /// packs its texture operands once: the bench separates that cost from the product's).
    pub fn run_repeated(&mut self, buffers: &[BufId], args: Args, times: usize) -> Result<()> {
        let op = self.backend.bind(args.kernel(), buffers)?;
        let launches: Vec<Launch> = (0..times).map(|_| Launch::Run { op, args }).collect();
        self.backend.run(&launches, &[])?;
        Ok(())
    }

    /// The name of the Matmul pipeline a launch of `args` over `buffers` runs on the GPU (e.g.
    /// "matmul_tiled128 a4 b4 unchecked": the benchmarks say which kernel they timed); None on
    /// the CPU.
    pub fn matmul_pipeline(&mut self, buffers: &[BufId], args: MatmulArgs) -> Result<Option<String>> {
        let op = self.backend.bind(Kernel::Matmul, buffers)?;
        Ok(self.backend.gpu().map(|g| {
            let record = g.launch_record(op.0, &Args::Matmul(args));
            g.matmul_pipeline_for(&args, op.0, &record).name()
        }))
    }

    /// A buffer's values: the members' blocks back to back, `len` values each (as written).
    pub fn read(&mut self, id: BufId) -> Result<Vec<f32>> {
        let (len, per_member) = self.lens[id.0];
        if !per_member {
            return Ok(self.backend.read(&[(id, 0..len)])?.pop().unwrap_or_default());
        }
        let k = self.backend.members();
        let stride = member_stride(len);
        let all = self.backend.read(&[(id, 0..k * stride)])?.pop().unwrap_or_default();
        Ok(all.chunks(stride).flat_map(|c| c[..len].to_vec()).collect())
    }
}

/// Compiles every pipeline the GPU backend can make on the device: each kernel, each Matmul
/// variant whose shader module the adapter supports, and the texture pack kernels where texture
/// operands are on. Returns their entry points (none on the CPU).
pub fn compile_all_pipelines(device: &Device) -> Result<Vec<String>> {
    match &device.inner {
        DeviceInner::Gpu(ctx) => ctx.compile_all(),
        DeviceInner::Cpu { .. } => Ok(Vec::new()),
    }
}

/// Which Matmul paths the GPU device uses: (subgroup kernels, texture operands). CPU: (false, false).
pub fn gpu_matmul_paths(device: &Device) -> (bool, bool) {
    match &device.inner {
        DeviceInner::Gpu(ctx) => (ctx.subgroup8, ctx.textures),
        DeviceInner::Cpu { .. } => (false, false),
    }
}

/// Submissions the GPU device has made so far (0 on the CPU).
pub fn gpu_submissions(device: &Device) -> u64 {
    match &device.inner {
        DeviceInner::Gpu(ctx) => ctx.submissions(),
        DeviceInner::Cpu { .. } => 0,
    }
}

/// Whether the GPU device writes the profiler's timestamp queries (opened with
/// `GpuOptions::profile` on an adapter that has them). False on the CPU.
pub fn gpu_timestamps(device: &Device) -> bool {
    match &device.inner {
        DeviceInner::Gpu(ctx) => ctx.timestamps.is_some(),
        DeviceInner::Cpu { .. } => false,
    }
}

/// Changes the longest wait of a GPU device from now on (tests of the timeout, then recovery).
pub fn set_gpu_timeout(device: &Device, timeout: std::time::Duration) {
    if let DeviceInner::Gpu(ctx) = &device.inner {
        ctx.set_timeout(timeout);
    }
}

/// The CPU twin of the dropout mask's random function.
pub fn random_unit(seed: u32, step: u32, layer: u32, index: u32) -> f32 {
    crate::device::cpu::kernels::random_unit(seed, step, layer, index)
}

/// The launch the model makes for an update of `n` parameters in `variables` weight tensors
/// with the rates of step 0, the member-table row it reads (`layers` layers, no dropout), and the
/// rates of update number `t` (from 1) as the host computes them (the `lrs` buffer of one step).
pub fn optimizer_launch(
    optimizer: &crate::Optimizer,
    t: u64,
    n: usize,
    variables: usize,
    layers: usize,
) -> Result<(Args, Vec<f32>, Vec<f32>)> {
    optimizer.validate()?;
    let mut row = vec![0.0f32; member_table::width(layers)];
    row[member_table::ACTIVE] = 1.0;
    optimizer.write_member_row(&mut row);
    Ok((optimizer.launch(n, variables, 0), row, optimizer.step_rates(t).to_vec()))
}

/// The launch that sums (and, with `clip_in_place`, clips by clipnorm) the gradient norms of
/// `variables` weight tensors over `n` parameters, run before an update that clips by a norm.
pub fn grad_norms_launch(n: usize, variables: usize, clip_in_place: bool) -> Args {
    crate::Optimizer::norms_launch(n, variables, clip_in_place)
}

/// The CPU twin's erf (shaders/common.wgsl's `erf_f32`), for the accuracy test against an f64 erf.
pub fn erf(x: f32) -> f32 {
    crate::device::cpu::kernels::erf(x)
}

/// The CPU twin's erfc (shaders/common.wgsl's `erfc_f32`).
pub fn erfc(x: f32) -> f32 {
    crate::device::cpu::kernels::erfc(x)
}

/// The GEMM crates the CPU path can run a product on (benches/gemm_crates.rs).
pub use crate::device::cpu::product::Engine as CpuEngine;

/// The CPU path's product C = A · B (A m x k with (row, column) strides `a_strides`, B k x n
/// likewise, C row-major m x n): on `engine` with at most `threads` threads (0: the cores), or
/// as the CPU path chooses (`None`). False when a view reaches past its slice.
#[allow(clippy::too_many_arguments)]
pub fn cpu_product(
    engine: Option<CpuEngine>,
    threads: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
) -> bool {
    use crate::device::cpu::parallel::with_threads;
    use crate::device::cpu::product::{product, Engine, View};
    let av = View { off: 0, rs: a_strides.0, cs: a_strides.1 };
    let bv = View { off: 0, rs: b_strides.0, cs: b_strides.1 };
    let engine = engine.unwrap_or_else(|| Engine::choose(m, k, n, bv));
    with_threads(threads, || product(engine, m, k, n, a, av, b, bv, c))
}

/// The engine the CPU path picks for an m x k x n product whose B has (row, column) strides
/// `b_strides`.
pub fn cpu_engine_choice(m: usize, k: usize, n: usize, b_strides: (usize, usize)) -> CpuEngine {
    use crate::device::cpu::product::{Engine, View};
    Engine::choose(m, k, n, View { off: 0, rs: b_strides.0, cs: b_strides.1 })
}

/// The CPU path with a limit on the memory one dataset may take, as
/// [`GpuOptions::max_data_bytes`](crate::GpuOptions::max_data_bytes) sets it on a GPU: larger data
/// streams through a chunk buffer on the CPU path too (the tests hold it against a whole upload).
pub fn cpu_with_max_data_bytes(bytes: usize) -> Device {
    Device { inner: DeviceInner::Cpu { max_data_bytes: Some(bytes) } }
}

/// Each epoch's wall time in ms, from its `on_epoch_begin` to its `on_epoch_end`, as a user's
/// callback would measure it (tests/profile.rs, benches/file_fit.rs).
#[derive(Debug, Default)]
pub struct EpochTimes {
    started: Option<std::time::Instant>,
    /// One value per epoch ended.
    pub ms: Vec<f64>,
}

impl crate::callbacks::Callback for EpochTimes {
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut crate::callbacks::TrainContext) -> Result<()> {
        self.started = Some(std::time::Instant::now());
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut crate::callbacks::Logs,
        _ctx: &mut crate::callbacks::TrainContext,
    ) -> Result<()> {
        self.ms.push(self.started.take().map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1e3));
        Ok(())
    }
}

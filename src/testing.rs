//! Lets the test suite launch one kernel at a time on either device, to hold each GPU kernel
//! against its CPU twin. Not part of the stable API.

pub use crate::device::{
    ActivationArgs, ActivationGradArgs, AdamArgs, Args, BatchNormArgs, BufId, DropoutArgs, Family, GatherArgs, Kernel,
    LossArgs, MatmulArgs, Ones, SgdArgs,
};
use crate::device::{Backend, Device, DeviceInner, Launch};
use crate::error::Result;

/// A scratch backend: make buffers, launch single kernels, read buffers back.
pub struct KernelHarness {
    backend: Box<dyn Backend>,
    lens: Vec<usize>,
}

impl KernelHarness {
    pub fn new(device: &Device) -> Self {
        KernelHarness { backend: device.backend(), lens: Vec::new() }
    }

    /// A buffer holding `data`.
    pub fn buffer(&mut self, data: &[f32]) -> Result<BufId> {
        let id = self.backend.create_buffer(data.len(), "test")?;
        self.backend.write(id, 0, data)?;
        self.lens.push(data.len());
        Ok(id)
    }

    /// A buffer holding u32 values (row orders).
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

    pub fn read(&mut self, id: BufId) -> Result<Vec<f32>> {
        let len = self.lens[id.0];
        Ok(self.backend.read(&[(id, 0..len)])?.pop().unwrap_or_default())
    }
}

/// Compiles every pipeline the GPU backend can make on the device: each kernel, each Matmul
/// variant whose shader module the adapter supports, and the texture pack kernels where texture
/// operands are on. Returns their entry points (none on the CPU).
pub fn compile_all_pipelines(device: &Device) -> Result<Vec<String>> {
    match &device.inner {
        DeviceInner::Gpu(ctx) => ctx.compile_all(),
        DeviceInner::Cpu => Ok(Vec::new()),
    }
}

/// Which Matmul paths the GPU device uses: (subgroup kernels, texture operands). CPU: (false, false).
pub fn gpu_matmul_paths(device: &Device) -> (bool, bool) {
    match &device.inner {
        DeviceInner::Gpu(ctx) => (ctx.subgroup8, ctx.textures),
        DeviceInner::Cpu => (false, false),
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

/// The launch the model makes for update number `t` (from 1) of `n` parameters.
pub fn optimizer_launch(optimizer: &crate::Optimizer, t: u64, n: usize) -> Result<Args> {
    optimizer.validate()?;
    Ok(optimizer.launch(t, n))
}

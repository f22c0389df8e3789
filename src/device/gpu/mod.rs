//! The wgpu backend: adapter choice, pipelines made once per device, and the recorder that turns
//! a list of launches into one submission with one readback.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kernels::{Access, Family, Kernel, MatmulVariant, Params};
use super::{check_bindings, Backend, BufId, DeviceInfo, Launch, OpId};
use crate::error::{Error, Result};

/// Bytes between two launch records in the params buffer (the dynamic-offset alignment WebGPU
/// guarantees to be enough).
const RECORD_STRIDE: u64 = 256;

/// How long any wait on the GPU may take before it is reported as an error.
fn gpu_timeout() -> Duration {
    let secs = std::env::var("WGFIT_GPU_TIMEOUT_S").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(600);
    Duration::from_secs(secs)
}

pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    /// Matmul only: the `MatmulVariant` pipelines made so far (on first use: compiling the ones a
    /// model never launches cost ~0.4 s of startup on llvmpipe), all with `pipeline_layout`.
    variants: Mutex<HashMap<MatmulVariant, wgpu::ComputePipeline>>,
    pipeline_layout: wgpu::PipelineLayout,
}

/// One wgpu device and queue, with the compiled pipelines shared by every model on it.
pub(crate) struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    params_layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<Kernel, Arc<Pipeline>>>,
    modules: Mutex<HashMap<Family, wgpu::ShaderModule>>,
    /// The Dense family with the subgroup kernels appended (made on first use).
    subgroup_module: Mutex<Option<wgpu::ShaderModule>>,
    /// Subgroups are exactly the 8 x-lanes of a workgroup row (llvmpipe at 256 bits) and the
    /// device has subgroup operations: Matmul's forward form uses `MatmulVariant::NnSubgroup`.
    /// `WGFIT_SUBGROUPS=0` turns it off.
    subgroup8: bool,
    /// The first error wgpu reported outside an error scope, or the device-lost reason.
    fault: Arc<Mutex<Option<String>>>,
}

fn backends_from_env() -> Result<wgpu::Backends> {
    match std::env::var("WGFIT_BACKEND") {
        Err(_) => Ok(wgpu::Backends::all()),
        Ok(name) => match name.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" | "mtl" => Ok(wgpu::Backends::METAL),
            "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
            "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
            "" | "all" => Ok(wgpu::Backends::all()),
            _ => Err(Error::UnknownName { kind: "WGFIT_BACKEND", name, valid: "vulkan, metal, dx12, gl".into() }),
        },
    }
}

fn rank(info: &wgpu::AdapterInfo) -> u32 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_name(b: wgpu::Backend) -> String {
    match b {
        wgpu::Backend::Vulkan => "vulkan".into(),
        wgpu::Backend::Metal => "metal".into(),
        wgpu::Backend::Dx12 => "dx12".into(),
        wgpu::Backend::Gl => "gl".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn describe(info: &wgpu::AdapterInfo) -> DeviceInfo {
    DeviceInfo {
        kind: "gpu".into(),
        adapter: info.name.clone(),
        backend: backend_name(info.backend),
        device_type: format!("{:?}", info.device_type),
    }
}

/// Adapters that can run our kernels (compute shaders), best first, after the env overrides.
fn candidates() -> Result<Vec<wgpu::Adapter>> {
    let requested = backends_from_env()?;
    // GL is asked only when named, or when no primary backend (Vulkan, Metal, DX12) has an
    // adapter: it is the weakest for compute, and probing EGL prints noise on headless machines.
    let tiers = if requested == wgpu::Backends::all() {
        vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY]
    } else {
        vec![requested]
    };
    for backends in tiers {
        let adapters = adapters_for(backends);
        if !adapters.is_empty() {
            return Ok(adapters);
        }
    }
    Ok(Vec::new())
}

fn adapters_for(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let mut adapters: Vec<wgpu::Adapter> = pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .filter(|a| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS))
        .collect();
    if let Ok(want) = std::env::var("WGFIT_ADAPTER") {
        let want = want.to_ascii_lowercase();
        adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&want));
    }
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        // Vulkan first among equals: the backend the kernels are tuned and tested on.
        (rank(&info), u32::from(info.backend != wgpu::Backend::Vulkan))
    });
    adapters
}

pub(crate) fn list_adapters() -> Vec<(DeviceInfo, bool)> {
    let backends = backends_from_env().unwrap_or(wgpu::Backends::all());
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let chosen = candidates().ok().and_then(|c| c.first().map(|a| a.get_info()));
    pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            let picked = chosen.as_ref().is_some_and(|c| c.name == info.name && c.backend == info.backend);
            (describe(&info), picked)
        })
        .collect()
}

impl GpuContext {
    pub(crate) fn new(limits: Option<wgpu::Limits>) -> Result<GpuContext> {
        let adapters = candidates()?;
        let Some(adapter) = adapters.into_iter().next() else {
            let detail = match (std::env::var("WGFIT_ADAPTER"), std::env::var("WGFIT_BACKEND")) {
                (Ok(a), _) => format!(" matching WGFIT_ADAPTER={a:?}"),
                (_, Ok(b)) => format!(" for WGFIT_BACKEND={b:?}"),
                _ => String::new(),
            };
            return Err(Error::NoAdapter { detail });
        };
        let adapter_info = adapter.get_info();
        let required_limits = limits.unwrap_or_else(|| adapter.limits());
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgfit"),
            // Subgroup operations where the adapter has them (the llvmpipe matmul variant shares
            // rows between SIMD lanes with subgroupShuffle).
            required_features: adapter.features() & wgpu::Features::SUBGROUP,
            required_limits: required_limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("could not open {}: {e}", adapter_info.name)))?;
        let fault: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let on_error = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = on_error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let on_lost = fault.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = on_lost.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("device lost ({reason:?}): {message}"));
        });
        let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("params"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                },
                count: None,
            }],
        });
        let subgroup8 = device.features().contains(wgpu::Features::SUBGROUP)
            && adapter_info.subgroup_min_size == 8
            && adapter_info.subgroup_max_size == 8
            && adapter_info.device_type == wgpu::DeviceType::Cpu
            && std::env::var("WGFIT_SUBGROUPS").map_or(true, |v| v != "0");
        Ok(GpuContext {
            subgroup8,
            device,
            queue,
            adapter_info,
            limits: required_limits,
            params_layout,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            subgroup_module: Mutex::new(None),
            fault,
        })
    }

    pub(crate) fn info(&self) -> DeviceInfo {
        describe(&self.adapter_info)
    }

    pub(crate) fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Errors if wgpu reported a fault or lost the device.
    fn check_fault(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes, turning what they catch into errors.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o.or(v) {
            return Err(Error::Gpu(format!("{what}: {e}")));
        }
        self.check_fault()?;
        Ok(value)
    }

    /// The kernel's pipeline, compiled on first use and shared afterwards.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).get(&kernel) {
            return Ok(p.clone());
        }
        let pipeline = self.scoped(&format!("compiling kernel {}", kernel.entry()), || {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            let module = modules.entry(kernel.family()).or_insert_with(|| {
                // Measured on llvmpipe: create_shader_module_trusted without wgpu's bounds checks
                // and loop bounding gave no clear gain, so the checked module stays.
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.entry()),
                    source: wgpu::ShaderSource::Wgsl(kernel.family().source().into()),
                })
            });
            let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
                .bindings()
                .iter()
                .map(|&(binding, access)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: access == Access::Read },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry()),
                entries: &entries,
            });
            let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry()),
                bind_group_layouts: &[Some(&layout), Some(&self.params_layout)],
                immediate_size: 0,
            });
            let make = |entry: &str| {
                self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            };
            let pipeline = make(kernel.entry());
            Arc::new(Pipeline { pipeline, layout, variants: Mutex::new(HashMap::new()), pipeline_layout })
        })?;
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(kernel, pipeline.clone());
        Ok(pipeline)
    }

    /// The Matmul pipeline of variant `v` (`pipe` is Matmul's), compiled on first use.
    fn matmul_variant(&self, pipe: &Pipeline, v: MatmulVariant) -> Result<wgpu::ComputePipeline> {
        if v == MatmulVariant::Scalar {
            return Ok(pipe.pipeline.clone());
        }
        if let Some(p) = pipe.variants.lock().unwrap_or_else(|p| p.into_inner()).get(&v) {
            return Ok(p.clone());
        }
        let made = self.scoped(&format!("compiling kernel {}", v.entry()), || {
            let subgroup_kernel = v.subgroup().is_none();
            let make = |module: &wgpu::ShaderModule| {
                self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(v.entry()),
                    layout: Some(&pipe.pipeline_layout),
                    module,
                    entry_point: Some(v.entry()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            };
            if subgroup_kernel {
                let mut sg = self.subgroup_module.lock().unwrap_or_else(|p| p.into_inner());
                let module = sg.get_or_insert_with(|| {
                    self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some("dense (subgroups)"),
                        source: wgpu::ShaderSource::Wgsl(Family::dense_subgroup_source().into()),
                    })
                });
                make(module)
            } else {
                let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
                let module = modules.get(&Family::Dense).expect("made with the Matmul pipeline");
                make(module)
            }
        })?;
        pipe.variants.lock().unwrap_or_else(|p| p.into_inner()).insert(v, made.clone());
        Ok(made)
    }

    /// Blocks until the queue's work is done, at most the GPU timeout.
    fn wait(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: Some(gpu_timeout()) })
            .map_err(|e| {
                Error::Gpu(format!(
                    "waiting for the GPU (timeout {:?}, set by WGFIT_GPU_TIMEOUT_S): {e}",
                    gpu_timeout()
                ))
            })?;
        self.check_fault()
    }
}

struct GpuBuffer {
    buffer: wgpu::Buffer,
    len: usize,
}

/// One model's buffers and bound kernels on a [`GpuContext`].
pub(crate) struct GpuBackend {
    ctx: Arc<GpuContext>,
    buffers: Vec<GpuBuffer>,
    ops: Vec<(Kernel, Arc<Pipeline>, wgpu::BindGroup)>,
    /// Launch records, one per RECORD_STRIDE, and the bind group that exposes one at a time.
    params: Option<(wgpu::Buffer, wgpu::BindGroup, u64)>,
    staging: Option<(wgpu::Buffer, u64)>,
    record_bytes: Vec<u8>,
    /// Matmul launches use the scalar reference kernel only (`WGFIT_MATMUL=scalar`, and tests).
    pub(crate) scalar_matmul: bool,
    /// Matmul launches never use the subgroup variant (tests, to cover the plain one too).
    pub(crate) no_subgroup: bool,
}

impl GpuBackend {
    pub(crate) fn new(ctx: Arc<GpuContext>) -> Self {
        let scalar_matmul = std::env::var("WGFIT_MATMUL").is_ok_and(|v| v.eq_ignore_ascii_case("scalar"));
        GpuBackend {
            ctx,
            buffers: Vec::new(),
            ops: Vec::new(),
            params: None,
            staging: None,
            record_bytes: Vec::new(),
            scalar_matmul,
            no_subgroup: false,
        }
    }

    fn buffer(&self, id: BufId) -> Result<&GpuBuffer> {
        self.buffers.get(id.0).ok_or_else(|| Error::State(format!("internal: no buffer {id:?}")))
    }

    /// The params buffer, grown to hold `records` launch records.
    fn params_for(&mut self, records: u64) -> Result<()> {
        let needed = records.max(1) * RECORD_STRIDE;
        if self.params.as_ref().is_some_and(|(_, _, cap)| *cap >= needed) {
            return Ok(());
        }
        let capacity = needed.next_power_of_two().max(64 * RECORD_STRIDE);
        let ctx = self.ctx.clone();
        let made = ctx.scoped("allocating launch records", || {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("launch records"),
                size: capacity,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("launch records"),
                layout: &ctx.params_layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                    }),
                }],
            });
            (buffer, group)
        })?;
        self.params = Some((made.0, made.1, capacity));
        Ok(())
    }

    fn staging_for(&mut self, bytes: u64) -> Result<()> {
        if self.staging.as_ref().is_some_and(|(_, cap)| *cap >= bytes) {
            return Ok(());
        }
        let capacity = bytes.next_power_of_two().max(256);
        let ctx = self.ctx.clone();
        let buffer = ctx.scoped("allocating the readback buffer", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: capacity,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.staging = Some((buffer, capacity));
        Ok(())
    }
}

impl GpuBackend {
    /// The Matmul kernel a launch runs: the scalar reference when forced, else the vec4 variant its
    /// layout allows, or that variant's subgroup twin where the adapter has one.
    fn matmul_variant_for(&self, p: &Params) -> MatmulVariant {
        if self.scalar_matmul {
            return MatmulVariant::Scalar;
        }
        let v = MatmulVariant::choose(p);
        // The subgroup kernels only pay where a whole subgroup's 32 columns and 16 rows fit in C;
        // elsewhere they would take their edge path (and cost a module compile at startup).
        let big = p.n >= 32 && p.m >= 17;
        match v.subgroup() {
            Some(sg) if self.ctx.subgroup8 && !self.no_subgroup && big => sg,
            _ => v,
        }
    }
}

impl Backend for GpuBackend {
    fn create_buffer(&mut self, len: usize, label: &str) -> Result<BufId> {
        // Whole vec4s: the matmul kernels read their operands as arrays of vec4.
        let bytes = (len.max(1) as u64).saturating_mul(4).div_ceil(16).saturating_mul(16);
        let limits = self.ctx.limits();
        if bytes > limits.max_buffer_size || bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Gpu(format!(
                "{label} needs {bytes} bytes, more than this adapter allows in one buffer \
                 (max_buffer_size {}, max_storage_buffer_binding_size {}); use a smaller batch or fewer rows",
                limits.max_buffer_size, limits.max_storage_buffer_binding_size
            )));
        }
        let ctx = self.ctx.clone();
        let buffer = ctx.scoped(&format!("allocating {label} ({bytes} bytes)"), || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })?;
        self.buffers.push(GpuBuffer { buffer, len: len.max(1) });
        Ok(BufId(self.buffers.len() - 1))
    }

    fn write(&mut self, buf: BufId, offset: usize, data: &[f32]) -> Result<()> {
        let b = self.buffer(buf)?;
        if offset + data.len() > b.len {
            return Err(Error::State(format!(
                "internal: write of {} values at {offset} past a buffer of {}",
                data.len(),
                b.len
            )));
        }
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&b.buffer, (offset * 4) as u64, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn bind(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId> {
        check_bindings(kernel, buffers)?;
        let pipeline = self.ctx.pipeline(kernel)?;
        let mut entries = Vec::with_capacity(buffers.len());
        for (&(binding, _), id) in kernel.bindings().iter().zip(buffers) {
            entries.push(wgpu::BindGroupEntry { binding, resource: self.buffer(*id)?.buffer.as_entire_binding() });
        }
        let ctx = self.ctx.clone();
        let group = ctx.scoped(&format!("binding kernel {}", kernel.entry()), || {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.entry()),
                layout: &pipeline.layout,
                entries: &entries,
            })
        })?;
        self.ops.push((kernel, pipeline, group));
        Ok(OpId(self.ops.len() - 1))
    }

    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        self.ctx.check_fault()?;
        let records = launches.iter().filter(|l| matches!(l, Launch::Run { .. })).count() as u64;
        self.params_for(records)?;
        let read_bytes: u64 = reads.iter().map(|(_, r)| (r.len() * 4) as u64).sum();
        if read_bytes > 0 {
            self.staging_for(read_bytes)?;
        }
        // All launch records go up in one write, before the submission that reads them.
        self.record_bytes.clear();
        self.record_bytes.resize((records * RECORD_STRIDE) as usize, 0);
        let mut i = 0;
        for l in launches {
            if let Launch::Run { params, .. } = l {
                let at = i * RECORD_STRIDE as usize;
                self.record_bytes[at..at + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(params));
                i += 1;
            }
        }
        for (b, r) in reads {
            let buf = self.buffer(*b)?;
            if r.end > buf.len || r.start > r.end {
                return Err(Error::State(format!("internal: read {r:?} past a buffer of {}", buf.len)));
            }
        }
        let ctx = self.ctx.clone();
        // Matmul variants are compiled on first use, before recording.
        for l in launches {
            if let Launch::Run { op, params } = l {
                let (kernel, pipeline, _) = &self.ops[op.0];
                if *kernel == Kernel::Matmul {
                    ctx.matmul_variant(pipeline, self.matmul_variant_for(params))?;
                }
            }
        }
        let (params_buf, params_group, _) = self.params.as_ref().expect("made above");
        let submission = ctx.scoped("recording the launches", || -> Result<wgpu::SubmissionIndex> {
            if !self.record_bytes.is_empty() {
                ctx.queue.write_buffer(params_buf, 0, &self.record_bytes);
            }
            let mut encoder =
                ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("epoch") });
            let mut record = 0u64;
            let mut pending = launches;
            while !pending.is_empty() {
                // A compute pass per run of kernel launches; copies go between passes.
                let runs = pending.iter().take_while(|l| matches!(l, Launch::Run { .. })).count();
                if runs > 0 {
                    let mut pass = encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    for l in &pending[..runs] {
                        let Launch::Run { op, params } = l else { unreachable!("counted runs") };
                        let (kernel, pipeline, group) = &self.ops[op.0];
                        let (chosen, groups) = match *kernel {
                            Kernel::Matmul => {
                                let v = self.matmul_variant_for(params);
                                let made = pipeline.variants.lock().unwrap_or_else(|p| p.into_inner()).get(&v).cloned();
                                match made {
                                    Some(p) => (p, v.workgroups(params)),
                                    // Scalar (or, never expected, a variant not made): the reference.
                                    None => (pipeline.pipeline.clone(), MatmulVariant::Scalar.workgroups(params)),
                                }
                            }
                            _ => (pipeline.pipeline.clone(), kernel.grid(params).workgroups()),
                        };
                        pass.set_pipeline(&chosen);
                        pass.set_bind_group(0, group, &[]);
                        pass.set_bind_group(1, params_group, &[(record * RECORD_STRIDE) as u32]);
                        let [x, y, z] = groups;
                        pass.dispatch_workgroups(x, y, z);
                        record += 1;
                    }
                    pending = &pending[runs..];
                } else {
                    let Launch::Copy { src, src_off, dst, dst_off, len } = pending[0] else {
                        unreachable!("not a run")
                    };
                    encoder.copy_buffer_to_buffer(
                        &self.buffers[src.0].buffer,
                        (src_off * 4) as u64,
                        &self.buffers[dst.0].buffer,
                        (dst_off * 4) as u64,
                        (len * 4) as u64,
                    );
                    pending = &pending[1..];
                }
            }
            let mut at = 0u64;
            if let Some((staging, _)) = &self.staging {
                for (b, r) in reads {
                    let bytes = (r.len() * 4) as u64;
                    if bytes > 0 {
                        encoder.copy_buffer_to_buffer(
                            &self.buffers[b.0].buffer,
                            (r.start * 4) as u64,
                            staging,
                            at,
                            bytes,
                        );
                    }
                    at += bytes;
                }
            }
            Ok(ctx.queue.submit([encoder.finish()]))
        })??;
        if read_bytes == 0 {
            ctx.wait(submission)?;
            return Ok(reads.iter().map(|_| Vec::new()).collect());
        }
        let (staging, _) = self.staging.as_ref().expect("made above");
        let slice = staging.slice(0..read_bytes);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            sender.send(r).ok();
        });
        let answered = ctx.wait(submission).and_then(|()| match pollster::block_on(receiver.receive()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Gpu(format!("reading results back: {e}"))),
            None => Err(Error::Gpu("reading results back: the GPU never answered".into())),
        });
        if let Err(e) = answered {
            // A wait that timed out leaves the readback buffer mapped (or its map pending): drop it,
            // so that the next run makes a fresh one instead of failing on a mapped buffer.
            self.staging = None;
            return Err(e);
        }
        let out = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("reading results back: {e:?}")))?;
            let values: &[f32] = bytemuck::cast_slice(&view);
            let mut at = 0;
            reads
                .iter()
                .map(|(_, r)| {
                    let v = values[at..at + r.len()].to_vec();
                    at += r.len();
                    v
                })
                .collect()
        };
        staging.unmap();
        Ok(out)
    }

    fn buffer_count(&self) -> usize {
        self.buffers.len()
    }

    fn max_binding_values(&self) -> usize {
        self.ctx.limits().max_storage_buffer_binding_size.min(self.ctx.limits().max_buffer_size) as usize / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::kernels as twin;
    use rand::{Rng, SeedableRng};

    /// Every Matmul variant on this adapter (lavapipe here) against the CPU twin: odd sizes, every
    /// aug / act / dact mode, the three layouts of a Dense layer, with padded (4-aligned) leading
    /// dimensions so the vec4 variants run, and unpadded ones so the scalar fallback does.
    #[test]
    fn matmul_variants_match_cpu_twin() {
        let ctx = match GpuContext::new(None) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!(
                "GPU tests need a wgpu adapter ({e}); on Debian/Ubuntu install mesa-vulkan-drivers \
                 (scripts/test does)"
            ),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let sizes = [1usize, 7, 33, 513];
        let modes = [(0u32, 0u32), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1)];
        let mut seen = std::collections::HashSet::new();
        let mut case = 0usize;
        for &m in &sizes {
            for &n in &sizes {
                for &k in &sizes {
                    if m * n * k > 33 * 513 * 513 {
                        continue;
                    }
                    for layout in 0..3 {
                        for aug in 0..3u32 {
                            if (aug == 1 && k < 2) || (aug == 2 && m < 2) {
                                continue;
                            }
                            case += 1;
                            let (act, dact) = modes[(case / 2) % modes.len()];
                            let pad = case.is_multiple_of(2);
                            let ld = |d: usize| if pad { d.div_ceil(4) * 4 + 4 } else { d };
                            let off = if pad { 4 * rng.random_range(0..3u32) } else { rng.random_range(0..3u32) };
                            // (a_rs, a_cs, a_len) and (b_rs, b_cs, b_len) for the layout.
                            let (a_rs, a_cs, a_len, b_rs, b_cs, b_len) = match layout {
                                0 => (ld(k), 1, m * ld(k), ld(n), 1, k * ld(n)),
                                1 => (ld(k), 1, m * ld(k), 1, ld(k), n * ld(k)),
                                _ => (1, ld(m), k * ld(m), ld(n), 1, k * ld(n)),
                            };
                            let p = Params {
                                m: m as u32,
                                n: n as u32,
                                k: k as u32,
                                a_off: off,
                                a_rs: a_rs as u32,
                                a_cs: a_cs as u32,
                                b_off: off,
                                b_rs: b_rs as u32,
                                b_cs: b_cs as u32,
                                c_off: 3,
                                aug,
                                act,
                                dact,
                                ..Default::default()
                            };
                            let a: Vec<f32> = (0..off as usize + a_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let b: Vec<f32> = (0..off as usize + b_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let aux: Vec<f32> = (0..m * n).map(|_| rng.random_range(-0.5..1.0)).collect();
                            let mut want = vec![7.0f32; 3 + m * n + 1];
                            twin::matmul(&p, &a, &b, &mut want, &aux);
                            for (scalar, no_subgroup) in [(false, false), (false, true), (true, false)] {
                                let mut g = GpuBackend::new(ctx.clone());
                                g.scalar_matmul = scalar;
                                g.no_subgroup = no_subgroup;
                                let bufs: Vec<BufId> = [&a, &b, &vec![7.0f32; want.len()], &aux]
                                    .iter()
                                    .map(|d| {
                                        let id = g.create_buffer(d.len(), "t").unwrap();
                                        g.write(id, 0, d).unwrap();
                                        id
                                    })
                                    .collect();
                                let op = g.bind(Kernel::Matmul, &bufs).unwrap();
                                let got = g.run(&[Launch::Run { op, params: p }], &[(bufs[2], 0..want.len())]).unwrap();
                                let mut v = if scalar { MatmulVariant::Scalar } else { MatmulVariant::choose(&p) };
                                if let Some(sg) =
                                    v.subgroup().filter(|_| ctx.subgroup8 && !no_subgroup && n >= 32 && m >= 17)
                                {
                                    v = sg;
                                }
                                seen.insert(v);
                                let scale = (k as f32).sqrt();
                                for (i, (x, w)) in got[0].iter().zip(&want).enumerate() {
                                    assert!(
                                        (x - w).abs() / (w.abs() + scale) <= 1e-4,
                                        "{v:?} {p:?} at {i}: got {x}, want {w}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        eprintln!("subgroup variant on this adapter: {}", ctx.subgroup8);
        let expected = MatmulVariant::ALL
            .iter()
            .filter(|v| ctx.subgroup8 || v.subgroup().is_some() || **v == MatmulVariant::Scalar)
            .count();
        assert_eq!(seen.len(), expected, "variants exercised: {seen:?}");
    }
}

#[cfg(test)]
mod fused_tests {
    use super::*;
    use crate::device::cpu::kernels as twin;
    use rand::{Rng, SeedableRng};

    /// dense_backward (dW and dX in one dispatch) against its CPU twin: odd and aligned widths,
    /// with and without bias, every derivative, one batch row to many.
    #[test]
    fn dense_backward_matches_cpu_twin() {
        let ctx = match GpuContext::new(None) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!(
                "GPU tests need a wgpu adapter ({e}); on Debian/Ubuntu install mesa-vulkan-drivers \
                 (scripts/test does)"
            ),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut case = 0u32;
        for &rows in &[1usize, 7, 33, 257] {
            for &in_w in &[1usize, 4, 7, 33, 64] {
                for &out_w in &[1usize, 4, 8, 33, 513] {
                    for bias in [false, true] {
                        case += 1;
                        let param_off = if case.is_multiple_of(2) { 4 } else { 3 };
                        let p = Params {
                            m: (in_w + usize::from(bias)) as u32,
                            n: out_w as u32,
                            k: rows as u32,
                            a_rs: 1,
                            a_cs: in_w as u32,
                            b_rs: out_w as u32,
                            b_cs: 1,
                            c_off: param_off,
                            aug: if bias { 2 } else { 0 },
                            u21: case % 3,
                            ..Default::default()
                        };
                        let gen = |rng: &mut rand::rngs::StdRng, n: usize| -> Vec<f32> {
                            (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
                        };
                        let x = gen(&mut rng, rows * in_w);
                        let dz = gen(&mut rng, rows * out_w);
                        let aux = gen(&mut rng, rows * in_w);
                        let n_params = param_off as usize + (in_w + 1) * out_w + 2;
                        let params = gen(&mut rng, n_params);
                        let mut want_g = vec![5.0f32; n_params];
                        let mut want_dx = vec![5.0f32; rows * in_w];
                        twin::dense_backward(&p, &x, &dz, &mut want_g, &aux, &params, &mut want_dx);
                        let mut g = GpuBackend::new(ctx.clone());
                        let bufs: Vec<BufId> =
                            [&x, &dz, &vec![5.0f32; n_params], &aux, &params, &vec![5.0f32; rows * in_w]]
                                .iter()
                                .map(|d| {
                                    let id = g.create_buffer(d.len(), "t").unwrap();
                                    g.write(id, 0, d).unwrap();
                                    id
                                })
                                .collect();
                        let op = g.bind(Kernel::DenseBackward, &bufs).unwrap();
                        let got = g
                            .run(&[Launch::Run { op, params: p }], &[(bufs[2], 0..n_params), (bufs[5], 0..rows * in_w)])
                            .unwrap();
                        for (what, got, want, k) in
                            [("grads", &got[0], &want_g, rows), ("dx", &got[1], &want_dx, out_w)]
                        {
                            let scale = (k as f32).sqrt();
                            for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                                assert!(
                                    (a - b).abs() / (b.abs() + scale) <= 1e-4,
                                    "{what} {p:?} at {i}: got {a}, want {b}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

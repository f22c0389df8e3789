//! The wgpu backend: adapter choice, pipelines made once per device, and the recorder that turns
//! a list of launches into one submission with one readback.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::args::{Args, MatmulArgs, Ones, Uniform};
use super::kernels::{Access, DenseModule, Family, Kernel, MatmulVariant};
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
    /// The texture-operand kernels, their layouts and pipelines (made on first use).
    texture_kernels: Mutex<Option<Arc<TextureKernels>>>,
    /// The subgroup kernels run here and rgba32float storage textures can be read and written:
    /// large Matmul launches read their operands from packed textures (`MatmulVariant::Texture`).
    /// `WGFIT_TEXTURES=0` turns it off.
    textures: bool,
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
            // and storage textures readable in every format the adapter allows (the llvmpipe matmul
            // reads its operands from rgba32float textures).
            required_features: adapter.features()
                & (wgpu::Features::SUBGROUP | wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES),
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
                    min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Uniform>() as u64),
                },
                count: None,
            }],
        });
        let subgroup8 = device.features().contains(wgpu::Features::SUBGROUP)
            && adapter_info.subgroup_min_size == 8
            && adapter_info.subgroup_max_size == 8
            && adapter_info.device_type == wgpu::DeviceType::Cpu
            && std::env::var("WGFIT_SUBGROUPS").map_or(true, |v| v != "0");
        let storage_rw =
            wgpu::TextureFormatFeatureFlags::STORAGE_READ_ONLY | wgpu::TextureFormatFeatureFlags::STORAGE_WRITE_ONLY;
        let textures = subgroup8
            && device.features().contains(wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES)
            && adapter.get_texture_format_features(wgpu::TextureFormat::Rgba32Float).flags.contains(storage_rw)
            && std::env::var("WGFIT_TEXTURES").map_or(true, |v| v != "0");
        Ok(GpuContext {
            subgroup8,
            textures,
            texture_kernels: Mutex::new(None),
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
        if v.module() == DenseModule::Texture {
            return self.texture_pipeline(v.entry());
        }
        let made = self.scoped(&format!("compiling kernel {}", v.entry()), || {
            let subgroup_kernel = v.module() == DenseModule::Subgroup;
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

    /// The texture-operand module and layouts, made on first use.
    fn texture_kernels(&self) -> Result<Arc<TextureKernels>> {
        let mut slot = self.texture_kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let made = self.scoped("compiling the texture-operand kernels", || {
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("dense (textures)"),
                source: wgpu::ShaderSource::Wgsl(Family::dense_texture_source().into()),
            });
            let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            };
            let texture = |binding: u32, access: wgpu::StorageTextureAccess| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access,
                    format: wgpu::TextureFormat::Rgba32Float,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            };
            let read = wgpu::StorageTextureAccess::ReadOnly;
            let layout = |label: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
                let group = self
                    .device
                    .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries });
                let pipeline = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(label),
                    bind_group_layouts: &[Some(&group), Some(&self.params_layout)],
                    immediate_size: 0,
                });
                (group, pipeline)
            };
            let matmul =
                layout("matmul (textures)", &[storage(3, false), storage(4, true), texture(5, read), texture(6, read)]);
            let pack = layout("pack", &[storage(1, true), texture(7, wgpu::StorageTextureAccess::WriteOnly)]);
            Arc::new(TextureKernels { module, matmul, pack, pipelines: Mutex::new(HashMap::new()) })
        })?;
        *slot = Some(made.clone());
        Ok(made)
    }

    /// A pipeline of the texture-operand module (`pack` or a texture Matmul variant), made on first use.
    fn texture_pipeline(&self, entry: &'static str) -> Result<wgpu::ComputePipeline> {
        let kernels = self.texture_kernels()?;
        if let Some(p) = kernels.pipelines.lock().unwrap_or_else(|p| p.into_inner()).get(entry) {
            return Ok(p.clone());
        }
        let layout = if entry.starts_with("pack") { &kernels.pack.1 } else { &kernels.matmul.1 };
        let made = self.scoped(&format!("compiling kernel {entry}"), || {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(layout),
                module: &kernels.module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        })?;
        kernels.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(entry, made.clone());
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

/// The texture-operand kernels: one module, the bind group and pipeline layouts of the matmul
/// forms and of `pack`, and their pipelines by entry point.
pub(crate) struct TextureKernels {
    module: wgpu::ShaderModule,
    matmul: (wgpu::BindGroupLayout, wgpu::PipelineLayout),
    pack: (wgpu::BindGroupLayout, wgpu::PipelineLayout),
    pipelines: Mutex<HashMap<&'static str, wgpu::ComputePipeline>>,
}

/// A matrix view of a storage buffer (`rows x cols`, element (r, c) at off + r * rs + c * cs;
/// `ones` 1 or 2: the last column or row is implicit ones) as a texture-operand Matmul reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OperandKey {
    buf: usize,
    off: u32,
    rs: u32,
    cs: u32,
    rows: u32,
    cols: u32,
    ones: Ones,
}

/// Texture sides are multiples of this (in values): the kernels' tiles never leave the texture,
/// and the zeros beyond the matrix make edge paths unnecessary.
const OPERAND_ALIGN: u32 = 128;

impl OperandKey {
    /// The operand textures of a texture-form launch: A (m x k) and B (k x n) in the product's
    /// order, whatever their layout in the buffers.
    fn pair(p: &MatmulArgs, a: BufId, b: BufId) -> (OperandKey, OperandKey) {
        (
            OperandKey { buf: a.0, off: p.a_off, rs: p.a_rs, cs: p.a_cs, rows: p.m, cols: p.k, ones: p.ones },
            OperandKey { buf: b.0, off: p.b_off, rs: p.b_rs, cs: p.b_cs, rows: p.k, cols: p.n, ones: Ones::None },
        )
    }

    /// Texture width and height in texels.
    fn extent(&self) -> (u32, u32) {
        (self.cols.div_ceil(OPERAND_ALIGN) * OPERAND_ALIGN / 4, self.rows.div_ceil(OPERAND_ALIGN) * OPERAND_ALIGN)
    }

    /// Whether the stored values can be refreshed by copy_buffer_to_texture: rows whole texels
    /// apart by a multiple of 256 bytes, starting on a texel.
    fn copyable(&self) -> bool {
        let (_, stored_cols) = self.stored();
        self.cs == 1 && stored_cols.is_multiple_of(4) && (self.rs * 4).is_multiple_of(256) && self.off.is_multiple_of(4)
    }

    /// Rows and columns of stored values (the implicit ones row or column excluded).
    fn stored(&self) -> (u32, u32) {
        match self.ones {
            Ones::LastColumn => (self.rows, self.cols - 1),
            Ones::LastRow => (self.rows - 1, self.cols),
            Ones::None => (self.rows, self.cols),
        }
    }

    /// The pack kernel's record: the view to pack as a Matmul A operand (m x k with its ones).
    fn pack_params(&self) -> Uniform {
        MatmulArgs {
            m: self.rows,
            k: self.cols,
            a_off: self.off,
            a_rs: self.rs,
            a_cs: self.cs,
            ones: self.ones,
            ..Default::default()
        }
        .uniform()
    }
}

struct OperandTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    pack_group: wgpu::BindGroup,
    /// Packed once: its implicit ones and zero padding are in place.
    packed: bool,
}

/// A kernel bound to its buffers.
struct BoundOp {
    kernel: Kernel,
    pipeline: Arc<Pipeline>,
    group: wgpu::BindGroup,
    buffers: Vec<BufId>,
}

/// One dispatch or copy of a recording, after Matmul variants are chosen and packs inserted.
enum Step {
    Dispatch {
        pipeline: wgpu::ComputePipeline,
        group: wgpu::BindGroup,
        params: Uniform,
        groups: [u32; 3],
    },
    Copy {
        src: BufId,
        src_off: usize,
        dst: BufId,
        dst_off: usize,
        len: usize,
    },
    /// Refreshes an operand texture's stored values by a plain copy (its ones and zeros stay).
    Refresh {
        key: OperandKey,
    },
}

/// One model's buffers and bound kernels on a [`GpuContext`].
pub(crate) struct GpuBackend {
    ctx: Arc<GpuContext>,
    buffers: Vec<GpuBuffer>,
    ops: Vec<BoundOp>,
    /// Operand textures of texture-form Matmul launches, made on first use and kept.
    operands: HashMap<OperandKey, OperandTexture>,
    /// Bind groups of texture-form Matmul launches: (op, A texture, B texture).
    texture_groups: HashMap<(usize, OperandKey, OperandKey), wgpu::BindGroup>,
    steps: Vec<Step>,
    /// Launch records, one per RECORD_STRIDE, and the bind group that exposes one at a time.
    params: Option<(wgpu::Buffer, wgpu::BindGroup, u64)>,
    staging: Option<(wgpu::Buffer, u64)>,
    record_bytes: Vec<u8>,
    /// Matmul launches use the scalar reference kernel only (`WGFIT_MATMUL=scalar`, and tests).
    pub(crate) scalar_matmul: bool,
    /// Matmul launches never use the subgroup variant (tests, to cover the plain one too).
    pub(crate) no_subgroup: bool,
    /// Matmul launches never use the texture-operand variants (tests, to cover the others).
    pub(crate) no_texture: bool,
}

impl GpuBackend {
    pub(crate) fn new(ctx: Arc<GpuContext>) -> Self {
        let scalar_matmul = std::env::var("WGFIT_MATMUL").is_ok_and(|v| v.eq_ignore_ascii_case("scalar"));
        GpuBackend {
            ctx,
            buffers: Vec::new(),
            ops: Vec::new(),
            operands: HashMap::new(),
            texture_groups: HashMap::new(),
            steps: Vec::new(),
            params: None,
            staging: None,
            record_bytes: Vec::new(),
            scalar_matmul,
            no_subgroup: false,
            no_texture: false,
        }
    }

    fn buffer(&self, id: BufId) -> Result<&GpuBuffer> {
        self.buffers.get(id.0).ok_or_else(|| Error::Internal(format!("no buffer {id:?}")))
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
                        size: wgpu::BufferSize::new(std::mem::size_of::<Uniform>() as u64),
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
    fn matmul_variant_for(&self, p: &MatmulArgs) -> MatmulVariant {
        if self.scalar_matmul {
            return MatmulVariant::Scalar;
        }
        let v = MatmulVariant::choose(p);
        // The subgroup kernels only pay where a whole subgroup's 32 columns and 16 rows fit in C;
        // elsewhere they would take their edge path (and cost a module compile at startup).
        let big = p.n >= 32 && p.m >= 17;
        // The texture form pads every dimension (k and n to 32, m to 128) and packs both operands
        // first, two more dispatches: worth it from about 64k multiply-adds, even for the thin
        // products (n = 1 or k = 1: a 1-wide output layer, measured on llvmpipe 4-10x faster than
        // the buffer kernels' edge paths), within the adapter's texture size.
        let side = self.ctx.limits().max_texture_dimension_2d;
        let fits = [p.m, p.n, p.k].iter().all(|d| d.div_ceil(OPERAND_ALIGN) * OPERAND_ALIGN <= side);
        let work = u64::from(p.m) * u64::from(p.n) * u64::from(p.k);
        if self.ctx.textures && !self.no_texture && !self.no_subgroup && work >= 1 << 16 && fits {
            return MatmulVariant::Texture;
        }
        match v.subgroup() {
            Some(sg) if self.ctx.subgroup8 && !self.no_subgroup && big => sg,
            _ => v,
        }
    }
}

impl GpuBackend {
    /// Turns launches into steps: each Matmul's variant chosen, and before a texture-form one the
    /// packs of its operands that are not already current. A pack stays current until a launch or
    /// copy writes its buffer; every recording starts with none current (the host may have
    /// written any buffer in between).
    fn plan_steps(&mut self, launches: &[Launch], steps: &mut Vec<Step>) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut current: HashSet<OperandKey> = HashSet::new();
        for l in launches {
            match *l {
                Launch::Run { op, args } => {
                    let bound = self.ops.get(op.0).ok_or_else(|| Error::Internal(format!("no op {op:?}")))?;
                    let kernel = bound.kernel;
                    if args.kernel() != kernel {
                        return Err(Error::Internal(format!(
                            "{} launched with {:?}'s arguments",
                            kernel.entry(),
                            args.kernel()
                        )));
                    }
                    let params = args.uniform();
                    if let Args::Matmul(matmul) = args {
                        let v = self.matmul_variant_for(&matmul);
                        let pipeline = ctx.matmul_variant(&self.ops[op.0].pipeline, v)?;
                        let group = if v.module() == DenseModule::Texture {
                            let (a, b) = (self.ops[op.0].buffers[0], self.ops[op.0].buffers[1]);
                            let (ka, kb) = OperandKey::pair(&matmul, a, b);
                            for key in [ka, kb] {
                                if current.insert(key) {
                                    steps.push(self.pack_step(key)?);
                                }
                            }
                            self.texture_group(op.0, ka, kb)?
                        } else {
                            self.ops[op.0].group.clone()
                        };
                        steps.push(Step::Dispatch { pipeline, group, params, groups: v.workgroups(&matmul) });
                    } else {
                        let bound = &self.ops[op.0];
                        steps.push(Step::Dispatch {
                            pipeline: bound.pipeline.pipeline.clone(),
                            group: bound.group.clone(),
                            params,
                            groups: args.grid().workgroups(),
                        });
                    }
                    for (&(_, access), buf) in kernel.bindings().iter().zip(&self.ops[op.0].buffers) {
                        if access == Access::ReadWrite {
                            current.retain(|k| k.buf != buf.0);
                        }
                    }
                }
                Launch::Copy { src, src_off, dst, dst_off, len } => {
                    current.retain(|k| k.buf != dst.0);
                    steps.push(Step::Copy { src, src_off, dst, dst_off, len });
                }
            }
        }
        Ok(())
    }

    /// The step that brings `key`'s texture up to date: a plain copy where the layout allows and the
    /// texture was packed before (measured on llvmpipe: a copy costs a fraction of a pack), else
    /// the pack kernel.
    fn pack_step(&mut self, key: OperandKey) -> Result<Step> {
        let transposed = key.rs == 1 && key.cs != 1 && key.off.is_multiple_of(4) && key.cs.is_multiple_of(4);
        let pack = self.ctx.texture_pipeline(if transposed { "pack_t" } else { "pack" })?;
        let operand = self.operands_entry(key)?;
        if operand.packed && key.copyable() {
            return Ok(Step::Refresh { key });
        }
        operand.packed = true;
        let (w, h) = key.extent();
        let groups = [w.div_ceil(8), h.div_ceil(if transposed { 32 } else { 8 }), 1];
        Ok(Step::Dispatch { pipeline: pack, group: operand.pack_group.clone(), params: key.pack_params(), groups })
    }

    fn operands_entry(&mut self, key: OperandKey) -> Result<&mut OperandTexture> {
        self.operand(key)?;
        Ok(self.operands.get_mut(&key).expect("made above"))
    }

    /// The operand texture of `key` with its pack bind group, made on first use.
    fn operand(&mut self, key: OperandKey) -> Result<&OperandTexture> {
        if !self.operands.contains_key(&key) {
            let ctx = self.ctx.clone();
            let kernels = ctx.texture_kernels()?;
            let source = self.buffers.get(key.buf).ok_or_else(|| Error::Internal("no operand buffer".into()))?;
            let (width, height) = key.extent();
            let made = ctx.scoped(&format!("allocating a {width}x{height} operand texture"), || {
                let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("matmul operand"),
                    size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: wgpu::TextureFormat::Rgba32Float,
                    usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
                    view_formats: &[],
                });
                let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
                let pack_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("pack"),
                    layout: &kernels.pack.0,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 1, resource: source.buffer.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 7, resource: wgpu::BindingResource::TextureView(&view) },
                    ],
                });
                OperandTexture { texture, view, pack_group, packed: false }
            })?;
            self.operands.insert(key, made);
        }
        Ok(&self.operands[&key])
    }

    /// The bind group of a texture-form Matmul launch of `op` (its C and aux buffers, the two
    /// operand textures), made on first use.
    fn texture_group(&mut self, op: usize, a: OperandKey, b: OperandKey) -> Result<wgpu::BindGroup> {
        if let Some(g) = self.texture_groups.get(&(op, a, b)) {
            return Ok(g.clone());
        }
        let ctx = self.ctx.clone();
        let kernels = ctx.texture_kernels()?;
        self.operand(a)?;
        self.operand(b)?;
        let bufs = &self.ops[op].buffers;
        let (c, aux) = (&self.buffers[bufs[2].0].buffer, &self.buffers[bufs[3].0].buffer);
        let group = ctx.scoped("binding a texture-operand matmul", || {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("matmul (textures)"),
                layout: &kernels.matmul.0,
                entries: &[
                    wgpu::BindGroupEntry { binding: 3, resource: c.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: aux.as_entire_binding() },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: wgpu::BindingResource::TextureView(&self.operands[&a].view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 6,
                        resource: wgpu::BindingResource::TextureView(&self.operands[&b].view),
                    },
                ],
            })
        })?;
        self.texture_groups.insert((op, a, b), group.clone());
        Ok(group)
    }

    /// Records the steps into one submission: launch records uploaded in one write, a compute pass
    /// per run of dispatches, copies between passes, then the copies of `reads` to the staging buffer.
    fn record(&mut self, steps: &[Step], reads: &[(BufId, Range<usize>)]) -> Result<wgpu::SubmissionIndex> {
        let records = steps.iter().filter(|s| matches!(s, Step::Dispatch { .. })).count();
        self.params_for(records as u64)?;
        self.record_bytes.clear();
        self.record_bytes.resize(records * RECORD_STRIDE as usize, 0);
        let mut i = 0;
        for step in steps {
            if let Step::Dispatch { params, .. } = step {
                let at = i * RECORD_STRIDE as usize;
                self.record_bytes[at..at + std::mem::size_of::<Uniform>()].copy_from_slice(bytemuck::bytes_of(params));
                i += 1;
            }
        }
        let ctx = self.ctx.clone();
        let (params_buf, params_group, _) = self.params.as_ref().expect("made above");
        ctx.scoped("recording the launches", || -> Result<wgpu::SubmissionIndex> {
            if !self.record_bytes.is_empty() {
                ctx.queue.write_buffer(params_buf, 0, &self.record_bytes);
            }
            let mut encoder =
                ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("epoch") });
            let mut record = 0u64;
            let mut pending = steps;
            while !pending.is_empty() {
                let runs = pending.iter().take_while(|s| matches!(s, Step::Dispatch { .. })).count();
                if runs > 0 {
                    let mut pass = encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    for step in &pending[..runs] {
                        let Step::Dispatch { pipeline, group, groups: [x, y, z], .. } = step else {
                            unreachable!("counted dispatches")
                        };
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, group, &[]);
                        pass.set_bind_group(1, params_group, &[(record * RECORD_STRIDE) as u32]);
                        pass.dispatch_workgroups(*x, *y, *z);
                        record += 1;
                    }
                    pending = &pending[runs..];
                } else {
                    match pending[0] {
                        Step::Copy { src, src_off, dst, dst_off, len } => encoder.copy_buffer_to_buffer(
                            &self.buffers[src.0].buffer,
                            (src_off * 4) as u64,
                            &self.buffers[dst.0].buffer,
                            (dst_off * 4) as u64,
                            (len * 4) as u64,
                        ),
                        Step::Refresh { key } => {
                            let (rows, cols) = key.stored();
                            encoder.copy_buffer_to_texture(
                                wgpu::TexelCopyBufferInfo {
                                    buffer: &self.buffers[key.buf].buffer,
                                    layout: wgpu::TexelCopyBufferLayout {
                                        offset: u64::from(key.off) * 4,
                                        bytes_per_row: Some(key.rs * 4),
                                        rows_per_image: None,
                                    },
                                },
                                wgpu::TexelCopyTextureInfo {
                                    texture: &self.operands[&key].texture,
                                    mip_level: 0,
                                    origin: wgpu::Origin3d::ZERO,
                                    aspect: wgpu::TextureAspect::All,
                                },
                                wgpu::Extent3d { width: cols / 4, height: rows, depth_or_array_layers: 1 },
                            );
                        }
                        Step::Dispatch { .. } => unreachable!("not a dispatch"),
                    }
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
        })?
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
            return Err(Error::Internal(format!(
                "write of {} values at {offset} past a buffer of {}",
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
        self.ops.push(BoundOp { kernel, pipeline, group, buffers: buffers.to_vec() });
        Ok(OpId(self.ops.len() - 1))
    }

    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        self.ctx.check_fault()?;
        for (b, r) in reads {
            let buf = self.buffer(*b)?;
            if r.end > buf.len || r.start > r.end {
                return Err(Error::Internal(format!("read {r:?} past a buffer of {}", buf.len)));
            }
        }
        let read_bytes: u64 = reads.iter().map(|(_, r)| (r.len() * 4) as u64).sum();
        if read_bytes > 0 {
            self.staging_for(read_bytes)?;
        }
        let mut steps = std::mem::take(&mut self.steps);
        steps.clear();
        let planned = self.plan_steps(launches, &mut steps);
        let recorded = planned.and_then(|()| self.record(&steps, reads));
        self.steps = steps;
        let submission = recorded?;
        let ctx = self.ctx.clone();
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
                            let p = MatmulArgs {
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
                                ones: Ones::ALL[aug as usize],
                                activation: crate::layers::Activation::ALL[act as usize],
                                derivative: crate::layers::Activation::ALL[dact as usize],
                            };
                            let a: Vec<f32> = (0..off as usize + a_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let b: Vec<f32> = (0..off as usize + b_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let aux: Vec<f32> = (0..m * n).map(|_| rng.random_range(-0.5..1.0)).collect();
                            let mut want = vec![7.0f32; 3 + m * n + 1];
                            twin::matmul(&p, &a, &b, &mut want, &aux);
                            for (scalar, no_subgroup, no_texture) in
                                [(false, false, false), (false, false, true), (false, true, true), (true, false, false)]
                            {
                                let mut g = GpuBackend::new(ctx.clone());
                                g.scalar_matmul = scalar;
                                g.no_subgroup = no_subgroup;
                                g.no_texture = no_texture;
                                let bufs: Vec<BufId> = [&a, &b, &vec![7.0f32; want.len()], &aux]
                                    .iter()
                                    .map(|d| {
                                        let id = g.create_buffer(d.len(), "t").unwrap();
                                        g.write(id, 0, d).unwrap();
                                        id
                                    })
                                    .collect();
                                let op = g.bind(Kernel::Matmul, &bufs).unwrap();
                                let got = g
                                    .run(&[Launch::Run { op, args: Args::Matmul(p) }], &[(bufs[2], 0..want.len())])
                                    .unwrap();
                                let v = g.matmul_variant_for(&p);
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
        eprintln!("subgroup variants on this adapter: {}, texture variants: {}", ctx.subgroup8, ctx.textures);
        let expected = MatmulVariant::ALL
            .iter()
            .filter(|v| match v.module() {
                DenseModule::Plain => true,
                DenseModule::Subgroup => ctx.subgroup8,
                DenseModule::Texture => ctx.textures,
            })
            .count();
        assert_eq!(seen.len(), expected, "variants exercised: {seen:?}");
    }
}

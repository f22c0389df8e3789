//! [`GpuContext`]: one wgpu device and queue, its limits, the faults wgpu reports outside an error
//! scope, and the shader modules and pipelines shared by every model on the device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::adapter::{candidates, describe};
use super::matmul::texture::{textures_supported, TextureKernels, PACK_ENTRIES};
use super::matmul::{family_source, subgroup8, DenseModule, MatmulPipeline, MatmulVariant, Vec4Loads};
use super::options::GpuOptions;
use super::timestamps::TimestampMode;
use crate::device::args::Uniform;
use crate::device::kernels::{Access, Family, Kernel};
use crate::device::DeviceInfo;
use crate::error::{Error, Result};

/// A kernel's compiled pipeline and binding layout.
pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    /// Matmul only: the variant pipelines made so far (on first use: compiling the ones a model
    /// never launches cost ~0.4 s of startup on llvmpipe), all with `pipeline_layout`.
    pub(crate) variants: Mutex<HashMap<MatmulPipeline, wgpu::ComputePipeline>>,
    pub(crate) pipeline_layout: wgpu::PipelineLayout,
}

/// One wgpu device and queue, with the compiled pipelines shared by every model on it.
pub(crate) struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter_info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pub(crate) params_layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<Kernel, Arc<Pipeline>>>,
    pub(crate) modules: Mutex<HashMap<Family, wgpu::ShaderModule>>,
    /// The Dense family with the subgroup kernels appended (made on first use).
    pub(crate) subgroup_module: Mutex<Option<wgpu::ShaderModule>>,
    /// The Dense family with the tiled kernels appended, with runtime checks ([0]) and without
    /// ([1]: only for launches proven in bounds), each made on first use.
    pub(crate) tiled_modules: Mutex<[Option<wgpu::ShaderModule>; 2]>,
    /// The texture-operand kernels, their layouts and pipelines (made on first use).
    pub(crate) texture_kernels: Mutex<Option<Arc<TextureKernels>>>,
    /// The subgroup kernels run here and rgba32float storage textures can be read and written:
    /// large Matmul launches read their operands from packed textures (`MatmulVariant::Texture`).
    /// `GpuOptions::textures(false)` turns it off.
    pub(crate) textures: bool,
    /// Subgroups are exactly the 8 x-lanes of a workgroup row (llvmpipe at 256 bits) and the
    /// device has subgroup operations: Matmul's forward form uses `MatmulVariant::NnSubgroup`.
    /// `GpuOptions::subgroups(false)` turns it off.
    pub(crate) subgroup8: bool,
    /// Every Matmul launch runs the scalar reference kernel (`GpuOptions::scalar_matmul`).
    pub(crate) scalar_matmul: bool,
    /// Every Matmul launch runs the workgroup-tiled kernel (Some(true)), none does (Some(false)),
    /// or by adapter and shape (`GpuOptions::tiled_matmul`).
    pub(crate) tiled_matmul: Option<bool>,
    /// The tiled configuration every tiled product runs (`WGFIT_MATMUL=tiled64|tiled128`), or
    /// None: [`MatmulVariant::tiled_for`] chooses by shape.
    pub(crate) tile: Option<MatmulVariant>,
    /// A hardware GPU (discrete, integrated or virtual): large products run the workgroup-tiled
    /// kernel (`MatmulVariant::Tiled`).
    pub(crate) hardware: bool,
    /// Tiled products stage aligned operands by vec4 loads (`GpuOptions::tiled_vec4_loads`).
    pub(crate) tiled_vec4: bool,
    /// Tiled products proven in bounds run the unchecked module (`GpuOptions::unchecked_products`).
    pub(crate) unchecked_products: bool,
    /// Profile every fit on this device (`GpuOptions::profile`, `WGFIT_PROFILE=1`).
    pub(crate) profile: bool,
    /// The most device memory one dataset may take (`GpuOptions::max_data_bytes`).
    pub(crate) max_data_bytes: Option<u64>,
    /// How the profiler places timestamps: the timestamp features were requested (only with
    /// `GpuOptions::profile`) and the adapter has them. None: dispatches are timed alone.
    pub(crate) timestamps: Option<TimestampMode>,
    /// Whether the adapter has timestamp queries (for the profiler's note when they are off).
    adapter_timestamps: bool,
    /// Nanoseconds per timestamp tick (`Queue::get_timestamp_period`).
    pub(crate) timestamp_period: f32,
    /// The profiler said once that it times dispatches alone.
    said_no_timestamps: std::sync::atomic::AtomicBool,
    /// Submissions made so far (the tests count them: one per epoch however many plans).
    submissions: std::sync::atomic::AtomicU64,
    /// The replacement for shaders/dense.wgsl (`GpuOptions::dense_wgsl`), read when the device opened.
    dense_override: Option<String>,
    /// How long any wait on the GPU may take before it is reported as an error.
    timeout: Mutex<Duration>,
    /// The first error wgpu reported outside an error scope, or the device-lost reason.
    fault: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Opens the best adapter the options allow.
    pub(crate) fn new(options: &GpuOptions) -> Result<GpuContext> {
        let timeout = options.timeout_value()?;
        let max_data_bytes = options.max_data_bytes_value()?;
        let dense_override = options.dense_wgsl_text()?;
        let adapters = candidates(options)?;
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(Error::NoAdapter { detail: options.no_adapter_detail() });
        };
        let adapter_info = adapter.get_info();
        let required_limits = options.limits(&adapter.limits());
        // The profiler's timestamp queries: asked for only when profiling, so an unprofiled
        // device is opened exactly as before.
        let adapter_timestamps = TimestampMode::of(adapter.features()).is_some();
        let timestamps = TimestampMode::of(adapter.features()).filter(|_| options.profile_on());
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgfit"),
            // Subgroup operations where the adapter has them (the llvmpipe matmul variant shares
            // rows between SIMD lanes with subgroupShuffle).
            // and storage textures readable in every format the adapter allows (the llvmpipe matmul
            // reads its operands from rgba32float textures).
            required_features: (adapter.features()
                & (wgpu::Features::SUBGROUP | wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES))
                | timestamps.map_or(wgpu::Features::empty(), TimestampMode::features),
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
        let subgroup8 = subgroup8(&device, &adapter_info) && options.subgroups_on();
        let textures = textures_supported(&adapter, &device, subgroup8) && options.textures_on();
        Ok(GpuContext {
            subgroup8,
            textures,
            scalar_matmul: options.scalar_matmul_on(),
            tiled_matmul: options.tiled_matmul_choice(),
            tile: match options.tile_choice() {
                Some(64) => Some(MatmulVariant::Tiled),
                Some(128) => Some(MatmulVariant::Tiled128),
                _ => None,
            },
            hardware: matches!(
                adapter_info.device_type,
                wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
            ),
            tiled_vec4: options.tiled_vec4_on(),
            unchecked_products: options.unchecked_products_on(),
            profile: options.profile_on(),
            max_data_bytes,
            timestamps,
            adapter_timestamps,
            timestamp_period: queue.get_timestamp_period(),
            said_no_timestamps: std::sync::atomic::AtomicBool::new(false),
            submissions: std::sync::atomic::AtomicU64::new(0),
            dense_override,
            timeout: Mutex::new(timeout),
            texture_kernels: Mutex::new(None),
            device,
            queue,
            adapter_info,
            limits: required_limits,
            params_layout,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            subgroup_module: Mutex::new(None),
            tiled_modules: Mutex::new([None, None]),
            fault,
        })
    }

    pub(crate) fn info(&self) -> DeviceInfo {
        describe(&self.adapter_info)
    }

    pub(crate) fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The replacement for shaders/dense.wgsl, if the options gave one.
    pub(crate) fn dense_override(&self) -> Option<&str> {
        self.dense_override.as_deref()
    }

    /// Changes the longest wait on the GPU (tests: a timeout, then recovery on the same device).
    pub(crate) fn set_timeout(&self, timeout: Duration) {
        *self.timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
    }

    /// Errors if wgpu reported a fault or lost the device.
    pub(crate) fn check_fault(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes, turning what they catch into errors.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
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
                    source: wgpu::ShaderSource::Wgsl(family_source(kernel.family(), self.dense_override()).into()),
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
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry()),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(kernel.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
            Arc::new(Pipeline { pipeline, layout, variants: Mutex::new(HashMap::new()), pipeline_layout })
        })?;
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(kernel, pipeline.clone());
        Ok(pipeline)
    }

    /// Compiles every pipeline this device can make: each kernel, each Matmul variant whose module
    /// the device has (the tiled ones in each of their vec4 loads, checked and unchecked), and the
    /// pack kernels where textures are on. Returns their names (entry points, and the tiled
    /// pipelines' constants and module after them).
    pub(crate) fn compile_all(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for k in Kernel::ALL {
            self.pipeline(k)?;
            names.push(k.entry().to_string());
        }
        let matmul = self.pipeline(Kernel::Matmul)?;
        for v in MatmulVariant::ALL {
            // The scalar variant is Kernel::Matmul's own pipeline.
            if v == MatmulVariant::Scalar || !self.has_module(v.module()) {
                continue;
            }
            if v.module() == DenseModule::Tiled {
                for loads in Vec4Loads::ALL {
                    for unchecked in [false, true] {
                        let key = MatmulPipeline { variant: v, loads, unchecked };
                        self.matmul_pipeline(&matmul, key)?;
                        names.push(key.name());
                    }
                }
            } else {
                self.matmul_pipeline(&matmul, MatmulPipeline::plain(v))?;
                names.push(v.entry().to_string());
            }
        }
        if self.has_module(DenseModule::Texture) {
            for entry in PACK_ENTRIES {
                self.texture_pipeline(entry)?;
                names.push(entry.to_string());
            }
        }
        Ok(names)
    }

    /// Says once per device, on stderr, why a profile times each dispatch alone.
    pub(crate) fn note_no_timestamps(&self) {
        if self.said_no_timestamps.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let why = if self.adapter_timestamps {
            "this device was opened without them (GpuOptions::profile(true) or WGFIT_PROFILE=1 asks for them)"
        } else {
            "the adapter has none"
        };
        eprintln!(
            "wgfit profile: no timestamp queries on {}: {why}; timing each dispatch alone instead (a submission \
             and a wait each, so epochs run slower and the times include that overhead)",
            self.adapter_info.name
        );
    }

    /// Submits command buffers to the queue: the one place wgfit submits, counted.
    pub(crate) fn submit(&self, commands: impl IntoIterator<Item = wgpu::CommandBuffer>) -> wgpu::SubmissionIndex {
        self.submissions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.queue.submit(commands)
    }

    /// Submissions made so far on this device.
    pub(crate) fn submissions(&self) -> u64 {
        self.submissions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Blocks until the queue's work is done, at most the GPU timeout.
    pub(crate) fn wait(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let timeout = *self.timeout.lock().unwrap_or_else(|p| p.into_inner());
        self.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: Some(timeout) }).map_err(
            |e| {
                Error::Gpu(format!(
                    "waiting for the GPU (timeout {timeout:?}, set by WGFIT_GPU_TIMEOUT_S or GpuOptions::timeout): {e}"
                ))
            },
        )?;
        self.check_fault()
    }
}

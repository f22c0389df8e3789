//! Everything that exists only for llvmpipe's texture-operand Matmul (`MatmulVariant::Texture`):
//! when it applies, the operand textures packed from the buffers, the `pack` kernels, the texture
//! module's layouts and pipelines, and the steps that keep the textures current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::dense_texture_source;
use crate::device::args::{MatmulArgs, Ones, Uniform};
use crate::device::gpu::context::GpuContext;
use crate::device::gpu::recorder::{GpuBackend, Step};
use crate::device::kernels::Family;
use crate::device::BufId;
use crate::error::{Error, Result};

/// The entry points of the pack kernels: `pack` reads any layout, `pack_t` a 4-aligned transposed one.
pub(crate) const PACK_ENTRIES: [&str; 2] = ["pack", "pack_t"];

/// Texture sides are multiples of this (in values): the kernels' tiles never leave the texture,
/// and the zeros beyond the matrix make edge paths unnecessary.
const OPERAND_ALIGN: u32 = 128;

/// Whether the device can read and write rgba32float storage textures (given the subgroup
/// kernels, which the texture module includes): texture operands are possible here.
pub(crate) fn textures_supported(adapter: &wgpu::Adapter, device: &wgpu::Device, subgroup8: bool) -> bool {
    let storage_rw =
        wgpu::TextureFormatFeatureFlags::STORAGE_READ_ONLY | wgpu::TextureFormatFeatureFlags::STORAGE_WRITE_ONLY;
    subgroup8
        && device.features().contains(wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES)
        && adapter.get_texture_format_features(wgpu::TextureFormat::Rgba32Float).flags.contains(storage_rw)
}

/// Whether a launch is worth the texture form. It pads every dimension (k and n to 32, m to 128)
/// and packs both operands first, two more dispatches: worth it from about 64k multiply-adds, even
/// for the thin products (n = 1 or k = 1: a 1-wide output layer, measured on llvmpipe 4-10x faster
/// than the buffer kernels' edge paths), within the adapter's texture size.
pub(crate) fn worth_textures(ctx: &GpuContext, p: &MatmulArgs) -> bool {
    let side = ctx.limits().max_texture_dimension_2d;
    let fits = [p.m, p.n, p.k].iter().all(|d| d.div_ceil(OPERAND_ALIGN) * OPERAND_ALIGN <= side);
    let work = u64::from(p.m) * u64::from(p.n) * u64::from(p.k);
    work >= 1 << 16 && fits
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
pub(crate) struct OperandKey {
    pub(crate) buf: usize,
    off: u32,
    rs: u32,
    cs: u32,
    rows: u32,
    cols: u32,
    ones: Ones,
}

impl OperandKey {
    /// The operand textures of a texture-form launch: A (m x k) and B (k x n) in the product's
    /// order, whatever their layout in the buffers.
    pub(crate) fn pair(p: &MatmulArgs, a: BufId, b: BufId) -> (OperandKey, OperandKey) {
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

    /// The pack kernel's record: the view to pack, as a Matmul A operand (m x k with its ones).
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

/// One operand texture of a model, with the bind group that packs it.
pub(crate) struct OperandTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    pack_group: wgpu::BindGroup,
    /// Packed once: its implicit ones and zero padding are in place.
    packed: bool,
}

impl GpuContext {
    /// The texture-operand module and layouts, made on first use.
    fn texture_kernels(&self) -> Result<Arc<TextureKernels>> {
        let mut slot = self.texture_kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let made = self.scoped("compiling the texture-operand kernels", || {
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("dense (textures)"),
                source: wgpu::ShaderSource::Wgsl(dense_texture_source(self.dense_override()).into()),
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
    pub(crate) fn texture_pipeline(&self, entry: &'static str) -> Result<wgpu::ComputePipeline> {
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
}

impl GpuBackend {
    /// The step that brings `key`'s texture up to date: a plain copy where the layout allows and the
    /// texture was packed before (measured on llvmpipe: a copy costs a fraction of a pack), else
    /// the pack kernel.
    pub(crate) fn pack_step(&mut self, key: OperandKey) -> Result<Step> {
        let transposed = key.rs == 1 && key.cs != 1 && key.off.is_multiple_of(4) && key.cs.is_multiple_of(4);
        let entry = if transposed { PACK_ENTRIES[1] } else { PACK_ENTRIES[0] };
        let pack = self.ctx.texture_pipeline(entry)?;
        let operand = self.operands_entry(key)?;
        if operand.packed && key.copyable() {
            return Ok(Step::Refresh { key });
        }
        operand.packed = true;
        let (w, h) = key.extent();
        let groups = [w.div_ceil(8), h.div_ceil(if transposed { 32 } else { 8 }), 1];
        Ok(Step::Dispatch {
            pipeline: pack,
            group: operand.pack_group.clone(),
            params: key.pack_params(),
            groups,
            name: entry,
            family: Family::Dense,
        })
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
    pub(crate) fn texture_group(&mut self, op: usize, a: OperandKey, b: OperandKey) -> Result<wgpu::BindGroup> {
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

    /// Records a `Step::Refresh`: the operand's stored values copied from its buffer into its
    /// texture (the implicit ones and the zero padding stay).
    pub(crate) fn encode_refresh(&self, encoder: &mut wgpu::CommandEncoder, key: OperandKey) {
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
}

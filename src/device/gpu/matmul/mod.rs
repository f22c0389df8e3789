//! Matmul's variants on the GPU: the [`MatmulVariant`] pipelines of `Kernel::Matmul`, the shader
//! modules they live in, when the subgroup ones apply, and which one each launch runs.
//! Everything that exists only for llvmpipe's texture operands is in [`texture`].

pub(crate) mod texture;

use super::context::{GpuContext, Pipeline};
use super::recorder::GpuBackend;
use crate::device::args::{BindingExtent, MatmulArgs};
use crate::device::kernels::{Family, Grid};
use crate::error::Result;

/// The GPU pipelines of `Kernel::Matmul` (entry points of shaders/dense.wgsl). All share one
/// binding layout; the backend picks one per launch with [`MatmulVariant::choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MatmulVariant {
    /// Any strides, scalar bounds-checked loads: the reference kernel.
    Scalar,
    /// A and B row-major (forward): vec4 loads along k of A and n of B.
    Nn,
    /// A row-major, B column-major (dX = dZ·Wᵀ): vec4 loads along k.
    Nt,
    /// A column-major, B row-major (dW = Xᵀ·dZ): vec4 loads along m of A and n of B.
    Tn,
    /// Nn sharing A's rows across the 8 SIMD lanes with subgroupShuffle (shaders/dense_subgroup.wgsl;
    /// only on adapters whose subgroups are the 8 x-lanes of a workgroup row: llvmpipe).
    NnSubgroup,
    /// Nt with A's rows shared by subgroupShuffle (same file and conditions).
    NtSubgroup,
    /// Tn with A's k-columns shared by subgroupShuffle (same file and conditions).
    TnSubgroup,
    /// Both operands read from rgba32float storage textures packed from the buffers in the
    /// product's order, any layout (shaders/dense_texture.wgsl; llvmpipe, where a texel load is
    /// one vector load and a storage-buffer load a loop over the SIMD lanes).
    Texture,
    /// Any layout through workgroup-memory blocks, 64 x 64 of C per workgroup of 16 x 16
    /// (shaders/dense_tiled.wgsl): for hardware GPUs, where a workgroup sharing its loads saves
    /// memory traffic (on llvmpipe, barriers and workgroup memory are slow: never chosen there).
    Tiled,
    /// The same with 128 x 128 of C per workgroup, 8 x 8 per invocation, k blocks of 8: for
    /// products with enough such blocks to fill a large GPU ([`MatmulVariant::tiled_for`]).
    Tiled128,
}

/// Which shader module a Matmul variant's entry point lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DenseModule {
    Plain,
    Subgroup,
    Texture,
    /// shaders/dense_tiled.wgsl: its own module, so that its pipeline constants (which make wgpu
    /// build each pipeline of a module from the whole module again) and its unchecked twin leave
    /// the Dense module that llvmpipe runs as it was.
    Tiled,
}

/// Which operands a tiled launch stages by vec4 loads: the pipeline constants A_VEC4 and B_VEC4
/// of shaders/dense_tiled.wgsl.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Vec4Loads {
    pub(crate) a: bool,
    pub(crate) b: bool,
}

impl Vec4Loads {
    pub(crate) const ALL: [Vec4Loads; 4] = [
        Vec4Loads { a: false, b: false },
        Vec4Loads { a: true, b: false },
        Vec4Loads { a: false, b: true },
        Vec4Loads { a: true, b: true },
    ];

    /// The vec4 loads a launch's layout allows: an operand's vec4s along its contiguous axis must
    /// start on vec4s of the binding, so its offset, its member stride (`member_strides`: A's and
    /// B's) and its stride along the other axis are multiples of 4 (the block origins along the
    /// contiguous axis are). The axis is the kernel's: A along k when `a_cs` is 1, else along m
    /// when `a_rs` is 1; B along n when `b_cs` is 1, else along k when `b_rs` is 1.
    pub(crate) fn of(p: &MatmulArgs, member_strides: [u32; 2]) -> Vec4Loads {
        let al = |v: u32| v.is_multiple_of(4);
        let a_axis = if p.a_cs == 1 { al(p.a_rs) } else { p.a_rs == 1 && al(p.a_cs) };
        let b_axis = if p.b_cs == 1 { al(p.b_rs) } else { p.b_rs == 1 && al(p.b_cs) };
        Vec4Loads {
            a: a_axis && al(p.a_off) && al(member_strides[0]),
            b: b_axis && al(p.b_off) && al(member_strides[1]),
        }
    }
}

/// One Matmul pipeline: a variant's entry point, and for the tiled variants the vec4 loads it is
/// compiled for and whether it comes from the module without runtime checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MatmulPipeline {
    pub(crate) variant: MatmulVariant,
    pub(crate) loads: Vec4Loads,
    pub(crate) unchecked: bool,
}

impl MatmulPipeline {
    /// A variant's only pipeline (every variant but the tiled ones has one).
    pub(crate) fn plain(variant: MatmulVariant) -> MatmulPipeline {
        MatmulPipeline { variant, loads: Vec4Loads::default(), unchecked: false }
    }

    /// The entry point, then for a tiled pipeline its vec4 operands and module:
    /// "matmul_tiled128 a4 b4 unchecked".
    pub(crate) fn name(&self) -> String {
        let mut name = self.variant.entry().to_string();
        for (on, what) in [(self.loads.a, " a4"), (self.loads.b, " b4"), (self.unchecked, " unchecked")] {
            if on {
                name.push_str(what);
            }
        }
        name
    }
}

impl MatmulVariant {
    pub(crate) const ALL: [MatmulVariant; 10] = [
        MatmulVariant::Scalar,
        MatmulVariant::Nn,
        MatmulVariant::Nt,
        MatmulVariant::Tn,
        MatmulVariant::NnSubgroup,
        MatmulVariant::NtSubgroup,
        MatmulVariant::TnSubgroup,
        MatmulVariant::Texture,
        MatmulVariant::Tiled,
        MatmulVariant::Tiled128,
    ];

    pub(crate) fn entry(self) -> &'static str {
        match self {
            MatmulVariant::Scalar => "matmul",
            MatmulVariant::Nn => "matmul_nn",
            MatmulVariant::Nt => "matmul_nt",
            MatmulVariant::Tn => "matmul_tn",
            MatmulVariant::NnSubgroup => "matmul_nn_sg",
            MatmulVariant::NtSubgroup => "matmul_nt_sg",
            MatmulVariant::TnSubgroup => "matmul_tn_sg",
            MatmulVariant::Texture => "matmul_tex",
            MatmulVariant::Tiled => "matmul_tiled",
            MatmulVariant::Tiled128 => "matmul_tiled128",
        }
    }

    pub(crate) fn module(self) -> DenseModule {
        match self {
            MatmulVariant::NnSubgroup | MatmulVariant::NtSubgroup | MatmulVariant::TnSubgroup => DenseModule::Subgroup,
            MatmulVariant::Texture => DenseModule::Texture,
            MatmulVariant::Tiled | MatmulVariant::Tiled128 => DenseModule::Tiled,
            _ => DenseModule::Plain,
        }
    }

    /// The subgroup twin of a vec4 variant (llvmpipe), if it has one.
    pub(crate) fn subgroup(self) -> Option<MatmulVariant> {
        match self {
            MatmulVariant::Nn => Some(MatmulVariant::NnSubgroup),
            MatmulVariant::Nt => Some(MatmulVariant::NtSubgroup),
            MatmulVariant::Tn => Some(MatmulVariant::TnSubgroup),
            _ => None,
        }
    }

    /// Workgroup counts of a launch: every variant covers 32x32 of C per workgroup of 8x8 (a
    /// 4x4 tile per invocation). Measured on llvmpipe: workgroups of 8 covering 4 x 32, which make
    /// A's loads uniform across the SIMD lanes, were no faster (and slower on 1024^3).
    pub(crate) fn workgroups(self, p: &MatmulArgs) -> [u32; 3] {
        match self {
            // 8 rows per invocation: 64 x 32 of C per workgroup.
            // 16 rows x 4 columns per invocation: 128 x 32 of C per workgroup.
            MatmulVariant::NnSubgroup
            | MatmulVariant::NtSubgroup
            | MatmulVariant::TnSubgroup
            | MatmulVariant::Texture => [p.n.div_ceil(32).max(1), p.m.div_ceil(128).max(1), 1],
            MatmulVariant::Tiled => [p.n.div_ceil(64).max(1), p.m.div_ceil(64).max(1), 1],
            MatmulVariant::Tiled128 => [p.n.div_ceil(128).max(1), p.m.div_ceil(128).max(1), 1],
            _ => Grid::Tiles { m: p.m, n: p.n }.workgroups(),
        }
    }

    /// The workgroup-tiled configuration for a product: 128 x 128 blocks once there are at least
    /// 256 of them (two per streaming multiprocessor of the largest GPUs), else 64 x 64, whose
    /// four times as many workgroups keep a large GPU busy on mid-sized products. A first guess,
    /// not yet measured on hardware (`scripts/gpu-proof` times both; `WGFIT_MATMUL=tiled64` /
    /// `tiled128` force one).
    pub(crate) fn tiled_for(p: &MatmulArgs) -> MatmulVariant {
        if (p.m / 128) * (p.n / 128) >= 256 {
            MatmulVariant::Tiled128
        } else {
            MatmulVariant::Tiled
        }
    }

    /// The vectorised variant whose layout and alignment (4-aligned offsets and strides along the
    /// vector loads) a launch meets, else the scalar one.
    pub(crate) fn choose(p: &MatmulArgs) -> MatmulVariant {
        let al = |v: u32| v.is_multiple_of(4);
        if p.a_cs == 1 && p.b_cs == 1 && al(p.a_off) && al(p.a_rs) && al(p.b_off) && al(p.b_rs) {
            MatmulVariant::Nn
        } else if p.a_cs == 1 && p.b_rs == 1 && al(p.a_off) && al(p.a_rs) && al(p.b_off) && al(p.b_cs) {
            MatmulVariant::Nt
        } else if p.a_rs == 1 && p.b_cs == 1 && al(p.a_off) && al(p.a_cs) && al(p.b_off) && al(p.b_rs) {
            MatmulVariant::Tn
        } else {
            MatmulVariant::Scalar
        }
    }
}

/// The WGSL source of a family's module: [`Family::source`], except that the Dense family is
/// `dense_override` (a replacement for shaders/dense.wgsl, kernel development) where one is given.
pub(crate) fn family_source(family: Family, dense_override: Option<&str>) -> String {
    match dense_override {
        Some(text) if family == Family::Dense => {
            const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
            // `enable` directives must open the module: hoist them above the prelude.
            let (en, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("enable "));
            format!("{}\n{COMMON}\n{}", en.join("\n"), rest.join("\n"))
        }
        _ => family.source(),
    }
}

/// The Dense family with the tiled kernels appended (the tiled module, made on first use).
pub(crate) fn dense_tiled_source(dense_override: Option<&str>) -> String {
    format!(
        "{}\n{}",
        family_source(Family::Dense, dense_override),
        include_str!("../../../../shaders/dense_tiled.wgsl")
    )
}

/// The Dense family with the subgroup kernels appended (a second module, made only where the
/// device has subgroup operations).
pub(crate) fn dense_subgroup_source(dense_override: Option<&str>) -> String {
    format!(
        "{}\n{}",
        family_source(Family::Dense, dense_override),
        include_str!("../../../../shaders/dense_subgroup.wgsl")
    )
}

/// The Dense family with the subgroup and the texture-operand kernels (a third module, made only
/// where rgba32float storage textures can be read as well).
pub(crate) fn dense_texture_source(dense_override: Option<&str>) -> String {
    format!("{}\n{}", dense_subgroup_source(dense_override), include_str!("../../../../shaders/dense_texture.wgsl"))
}

/// Whether the subgroup variants apply: subgroups are exactly the 8 x-lanes of a workgroup row
/// (llvmpipe at 256 bits) and the device has subgroup operations.
pub(crate) fn subgroup8(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> bool {
    device.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
        && info.device_type == wgpu::DeviceType::Cpu
}

impl GpuContext {
    /// Whether this device makes (and its launches may use) the Matmul variants of `module`.
    pub(crate) fn has_module(&self, module: DenseModule) -> bool {
        match module {
            DenseModule::Plain | DenseModule::Tiled => true,
            DenseModule::Subgroup => self.subgroup8,
            DenseModule::Texture => self.textures,
        }
    }

    /// The Matmul pipeline `key` (`pipe` is Matmul's), compiled on first use.
    pub(crate) fn matmul_pipeline(&self, pipe: &Pipeline, key: MatmulPipeline) -> Result<wgpu::ComputePipeline> {
        let v = key.variant;
        if key == MatmulPipeline::plain(MatmulVariant::Scalar) {
            return Ok(pipe.pipeline.clone());
        }
        if let Some(p) = pipe.variants.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        if v.module() == DenseModule::Texture {
            return self.texture_pipeline(v.entry());
        }
        let made = self.scoped(&format!("compiling kernel {}", key.name()), || {
            let constants: &[(&str, f64)] = if v.module() == DenseModule::Tiled {
                &[("A_VEC4", f64::from(u8::from(key.loads.a))), ("B_VEC4", f64::from(u8::from(key.loads.b)))]
            } else {
                &[]
            };
            let make = |module: &wgpu::ShaderModule| {
                self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(v.entry()),
                    layout: Some(&pipe.pipeline_layout),
                    module,
                    entry_point: Some(v.entry()),
                    compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
                    cache: None,
                })
            };
            match v.module() {
                DenseModule::Subgroup => {
                    let mut sg = self.subgroup_module.lock().unwrap_or_else(|p| p.into_inner());
                    let module = sg.get_or_insert_with(|| {
                        self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some("dense (subgroups)"),
                            source: wgpu::ShaderSource::Wgsl(dense_subgroup_source(self.dense_override()).into()),
                        })
                    });
                    make(module)
                }
                DenseModule::Tiled => {
                    let mut tiled = self.tiled_modules.lock().unwrap_or_else(|p| p.into_inner());
                    let module = tiled[usize::from(key.unchecked)].get_or_insert_with(|| {
                        let desc = wgpu::ShaderModuleDescriptor {
                            label: Some(if key.unchecked { "dense (tiled, unchecked)" } else { "dense (tiled)" }),
                            source: wgpu::ShaderSource::Wgsl(dense_tiled_source(self.dense_override()).into()),
                        };
                        if !key.unchecked {
                            return self.device.create_shader_module(desc);
                        }
                        // SAFETY: this module's pipelines run only launches for which
                        // `MatmulArgs::tiled_in_bounds` holds (`GpuBackend::matmul_pipeline_for`),
                        // and what wgpu's checks would otherwise guard cannot happen in the tiled
                        // kernels (shaders/dense_tiled.wgsl, with dense.wgsl and common.wgsl):
                        // - global indices: A is read only at stored (row, k) pairs, by load_a
                        //   behind its checks or by a vec4 whose 4 values lie inside the stored
                        //   region; B only at (k, column) pairs inside the product, alike; C and aux
                        //   only in store_row behind its row and column checks. tiled_in_bounds
                        //   proves the largest of each in its binding and below 2^32 (no u32 sum
                        //   wraps); workgroup z is below the members it counts (the dispatch's z).
                        // - workgroup memory, vector components and local arrays: indices bounded
                        //   by constants (blk_a/blk_b below 256 from tid < 256 and the block
                        //   shapes 64 x 16 and 128 x 8; components `& 3u` or loop counters below 4).
                        // - loops: constant trip counts, the k loop's step constant with k < 2^31
                        //   (proven), store_row's below 4: none can be infinite.
                        // - integer division: only by the nonzero constants of the block shapes.
                        // Any other launch (or the scalar, vec4, subgroup and texture variants) uses
                        // the checked modules.
                        unsafe {
                            self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                        }
                    });
                    make(module)
                }
                DenseModule::Plain | DenseModule::Texture => {
                    let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
                    let module = modules.get(&Family::Dense).expect("made with the Matmul pipeline");
                    make(module)
                }
            }
        })?;
        pipe.variants.lock().unwrap_or_else(|p| p.into_inner()).insert(key, made.clone());
        Ok(made)
    }
}

impl GpuBackend {
    /// The pipeline a Matmul launch of op `op` runs: its variant, and for a tiled variant the vec4
    /// loads its layout allows and the unchecked module where the bounds are proven (`params`: the
    /// launch record, whose member strides the kernel will read).
    pub(crate) fn matmul_pipeline_for(
        &self,
        p: &MatmulArgs,
        op: usize,
        params: &crate::device::args::Uniform,
    ) -> MatmulPipeline {
        let variant = self.matmul_variant_for(p);
        if variant.module() != DenseModule::Tiled {
            return MatmulPipeline::plain(variant);
        }
        // Matmul's bindings are 1..=4: A, B, C, aux; ms word b - 1 is binding b's member stride.
        let ms = |i: usize| params.0[i];
        let loads = if self.tiled_vec4 { Vec4Loads::of(p, [ms(0), ms(1)]) } else { Vec4Loads::default() };
        let unchecked = self.unchecked_products && {
            let bufs = &self.ops[op].buffers;
            let extent = |i: usize, vec4: bool| {
                let bytes = self.buffers[bufs[i].0].buffer.size();
                let values = if vec4 { bytes / 16 * 4 } else { bytes / 4 };
                BindingExtent { values, member_stride: ms(i) }
            };
            // A and B are arrays of vec4 in the kernels, C and aux of f32.
            let extents = [extent(0, true), extent(1, true), extent(2, false), extent(3, false)];
            p.tiled_in_bounds(u32::try_from(self.members).unwrap_or(0), extents)
        };
        MatmulPipeline { variant, loads, unchecked }
    }

    /// The Matmul kernel a launch runs: the scalar reference when forced, else the vec4 variant its
    /// layout allows, or that variant's subgroup twin where the adapter has one.
    pub(crate) fn matmul_variant_for(&self, p: &MatmulArgs) -> MatmulVariant {
        if self.scalar_matmul {
            return MatmulVariant::Scalar;
        }
        if let Some(v) = self.force_tiled {
            return v;
        }
        // Hardware GPUs tile through workgroup memory once C has a whole 64 x 64 block.
        let by_shape = self.ctx.hardware && p.m >= 64 && p.n >= 64;
        if self.ctx.tiled_matmul.unwrap_or(by_shape) {
            return self.ctx.tile.unwrap_or_else(|| MatmulVariant::tiled_for(p));
        }
        let v = MatmulVariant::choose(p);
        // The subgroup kernels only pay where a whole subgroup's 32 columns and 16 rows fit in C;
        // elsewhere they would take their edge path (and cost a module compile at startup).
        let big = p.n >= 32 && p.m >= 17;
        // Operand textures are packed for one model (the pack kernels have no member axis).
        if self.members == 1
            && self.ctx.textures
            && !self.no_texture
            && !self.no_subgroup
            && texture::worth_textures(&self.ctx, p)
        {
            return MatmulVariant::Texture;
        }
        match v.subgroup() {
            Some(sg) if self.ctx.subgroup8 && !self.no_subgroup && big => sg,
            _ => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::kernels as twin;
    use crate::device::gpu::options::GpuOptions;
    use crate::device::kernels::Kernel;
    use crate::device::{Backend, BufId, Launch};
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    /// Every Matmul variant on this adapter (lavapipe here) against the CPU twin: odd sizes, every
    /// aug / act / dact mode, the three layouts of a Dense layer, with padded (4-aligned) leading
    /// dimensions so the vec4 variants run, and unpadded ones so the scalar fallback does.
    #[test]
    fn matmul_variants_match_cpu_twin() {
        let ctx = match GpuContext::new(&GpuOptions::from_env()) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!(
                "GPU tests need a wgpu adapter ({e}); on Debian/Ubuntu install mesa-vulkan-drivers \
                 (scripts/test does)"
            ),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let sizes = [1usize, 7, 33, 513];
        // (activation, derivative) codes: the fast vec4 arms (0-2) and the scalar loop of the rest.
        let modes =
            [(0u32, 0u32), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1), (3, 0), (9, 4), (10, 7), (0, 8), (7, 10), (8, 9)];
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
                                ones: crate::device::Ones::ALL[aug as usize],
                                activation: crate::layers::Activation::ALL[act as usize],
                                derivative: crate::layers::Activation::ALL[dact as usize],
                            };
                            let a: Vec<f32> = (0..off as usize + a_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let b: Vec<f32> = (0..off as usize + b_len).map(|_| rng.random_range(-1.0..1.0)).collect();
                            let aux: Vec<f32> = (0..m * n).map(|_| rng.random_range(-0.5..1.0)).collect();
                            let mut want = vec![7.0f32; 3 + m * n + 1];
                            twin::matmul(&p, &a, &b, &mut want, &aux);
                            // The tiled kernels from the unchecked module in every third case.
                            let unchecked = case.is_multiple_of(3);
                            for (scalar, no_subgroup, no_texture, tiled) in [
                                (false, false, false, None),
                                (false, false, true, None),
                                (false, true, true, None),
                                (true, false, false, None),
                                (false, false, false, Some(MatmulVariant::Tiled)),
                                (false, false, false, Some(MatmulVariant::Tiled128)),
                            ] {
                                let mut g = GpuBackend::new(ctx.clone(), 1);
                                g.scalar_matmul = scalar;
                                g.force_tiled = tiled;
                                g.unchecked_products = unchecked;
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
                                    .run(
                                        &[Launch::Run { op, args: crate::device::Args::Matmul(p) }],
                                        &[(bufs[2], 0..want.len())],
                                    )
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
                DenseModule::Plain | DenseModule::Tiled => true,
                DenseModule::Subgroup => ctx.subgroup8,
                DenseModule::Texture => ctx.textures,
            })
            .count();
        assert_eq!(seen.len(), expected, "variants exercised: {seen:?}");
    }

    /// The tiled kernels with several members: each member's product is its own (workgroup z is
    /// the member), against the twin per member; shapes past one 128 block with ragged edges.
    #[test]
    fn tiled_matmul_runs_each_member_on_its_own_blocks() {
        for variant in [MatmulVariant::Tiled, MatmulVariant::Tiled128] {
            tiled_members_match_twin(variant);
        }
    }

    fn tiled_members_match_twin(variant: MatmulVariant) {
        let ctx = Arc::new(
            GpuContext::new(&GpuOptions::from_env()).expect("a wgpu adapter (scripts/test installs lavapipe)"),
        );
        let (k_members, m, n, k) = (3usize, 150usize, 133usize, 45usize);
        let p = MatmulArgs {
            m: m as u32,
            n: n as u32,
            k: k as u32 + 1,
            a_rs: k as u32,
            a_cs: 1,
            b_rs: n as u32,
            b_cs: 1,
            ones: crate::device::Ones::LastColumn,
            activation: crate::layers::Activation::Tanh,
            ..Default::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut vecs = |len: usize| -> Vec<Vec<f32>> {
            (0..k_members).map(|_| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()).collect()
        };
        let (a, b, aux) = (vecs(m * k), vecs((k + 1) * n), vecs(m * n));
        let mut g = GpuBackend::new(ctx, k_members);
        g.force_tiled = Some(variant);
        assert_eq!(g.matmul_variant_for(&p), variant);
        let stride = |len: usize| crate::device::member_stride(len);
        let mut member_buffer = |data: &[Vec<f32>], len: usize| {
            let id = g.create_member_buffer(len, "t").unwrap();
            let mut flat = vec![f32::NAN; stride(len) * k_members];
            for (mem, d) in data.iter().enumerate() {
                flat[mem * stride(len)..mem * stride(len) + d.len()].copy_from_slice(d);
            }
            g.write(id, 0, &flat).unwrap();
            id
        };
        let bufs = [
            member_buffer(&a, m * k),
            member_buffer(&b, (k + 1) * n),
            member_buffer(&vec![vec![f32::NAN; m * n]; k_members], m * n),
            member_buffer(&aux, m * n),
        ];
        let op = g.bind(Kernel::Matmul, &bufs).unwrap();
        let got = g
            .run(
                &[Launch::Run { op, args: crate::device::Args::Matmul(p) }],
                &[(bufs[2], 0..stride(m * n) * k_members)],
            )
            .unwrap();
        for mem in 0..k_members {
            let mut want = vec![0.0f32; m * n];
            twin::matmul(&p, &a[mem], &b[mem], &mut want, &aux[mem]);
            let block = &got[0][mem * stride(m * n)..mem * stride(m * n) + m * n];
            for (i, (x, w)) in block.iter().zip(&want).enumerate() {
                assert!((x - w).abs() <= 1e-4 * (w.abs() + 1.0), "{variant:?} member {mem} at {i}: got {x}, want {w}");
            }
        }
    }

    /// Shapes for the tiled pipelines: odd sizes, sizes of whole vec4s and blocks, and 1031 (past
    /// eight 128 blocks) on each side; every pipeline and layout gets one small and one larger.
    const SMALL: [(usize, usize, usize); 6] = [(1, 1, 1), (3, 4, 7), (4, 7, 3), (7, 3, 4), (1, 33, 4), (33, 1, 7)];
    const LARGER: [(usize, usize, usize); 8] = [
        (33, 64, 127),
        (64, 127, 33),
        (127, 33, 64),
        (513, 7, 33),
        (7, 1031, 4),
        (1031, 4, 64),
        (33, 513, 127),
        (127, 65, 1031),
    ];

    /// One tiled launch against the CPU twin, each member on its own random data: A row- or
    /// column-major (`a_t`), B alike (`b_t`), each laid out so that vec4 loads are allowed
    /// (`aligned`: padded leading dimension and offset) or not (odd ones). Returns the pipeline
    /// the backend chose.
    #[allow(clippy::too_many_arguments)]
    fn tiled_case(
        g: &mut GpuBackend,
        rng: &mut rand::rngs::StdRng,
        (m, n, k): (usize, usize, usize),
        (a_t, b_t): (bool, bool),
        aligned: [bool; 2],
        ones: crate::device::Ones,
        (act, dact): (u32, u32),
    ) -> MatmulPipeline {
        use crate::device::{member_stride, Ones};
        let members = g.members;
        let (sm, sk) = match ones {
            Ones::None => (m, k),
            Ones::LastColumn => (m, k - 1),
            Ones::LastRow => (m - 1, k),
        };
        // A leading dimension of whole vec4s (sometimes one more), or one that is not.
        let ld = |d: usize, al: bool, extra: bool| {
            if al {
                d.div_ceil(4) * 4 + if extra { 4 } else { 0 }
            } else if d.is_multiple_of(4) {
                d + 1
            } else {
                d
            }
        };
        let mut off = |al: bool| if al { 4 * rng.random_range(0..3u32) } else { rng.random_range(1..4u32) };
        let (a_off, b_off) = (off(aligned[0]), off(aligned[1]));
        let extra = rng.random_range(0..2) == 1;
        let (a_rs, a_cs, a_len) = if a_t {
            let l = ld(sm, aligned[0], extra);
            (1, l, sk * l)
        } else {
            let l = ld(sk, aligned[0], extra);
            (l, 1, sm * l)
        };
        let (b_rs, b_cs, b_len) = if b_t {
            let l = ld(k, aligned[1], !extra);
            (1, l, n * l)
        } else {
            let l = ld(n, aligned[1], !extra);
            (l, 1, k * l)
        };
        let c_off = rng.random_range(0..5usize);
        let p = MatmulArgs {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            a_off,
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_off,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            c_off: c_off as u32,
            ones,
            activation: crate::layers::Activation::ALL[act as usize],
            derivative: crate::layers::Activation::ALL[dact as usize],
        };
        let lens = [a_off as usize + a_len, b_off as usize + b_len, c_off + m * n + 1, m * n];
        let mut data: Vec<Vec<Vec<f32>>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                (0..members)
                    .map(|_| match i {
                        2 => vec![7.0; len],
                        3 => (0..len).map(|_| rng.random_range(-0.5..1.0)).collect(),
                        _ => (0..len).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    })
                    .collect()
            })
            .collect();
        let bufs: Vec<BufId> = lens
            .iter()
            .zip(&data)
            .map(|(&len, blocks)| {
                let id = g.create_member_buffer(len, "t").unwrap();
                for (mem, block) in blocks.iter().enumerate() {
                    g.write(id, mem * member_stride(len), block).unwrap();
                }
                id
            })
            .collect();
        let op = g.bind(Kernel::Matmul, &bufs).unwrap();
        let args = crate::device::Args::Matmul(p);
        let key = g.matmul_pipeline_for(&p, op.0, &g.launch_record(op.0, &args));
        let stride = member_stride(lens[2]);
        let got = g.run(&[Launch::Run { op, args }], &[(bufs[2], 0..stride * members)]).unwrap();
        let scale = (k as f32).sqrt();
        for mem in 0..members {
            let mut want = std::mem::take(&mut data[2][mem]);
            twin::matmul(&p, &data[0][mem], &data[1][mem], &mut want, &data[3][mem]);
            let block = &got[0][mem * stride..mem * stride + lens[2]];
            for (i, (x, w)) in block.iter().zip(want.iter()).enumerate() {
                assert!(
                    (x - w).abs() / (w.abs() + scale) <= 1e-4,
                    "{} member {mem} of {members}, {p:?} at {i}: got {x}, want {w}",
                    key.name()
                );
            }
        }
        key
    }

    /// Every tiled pipeline against the CPU twin: both configurations (64 and 128), vec4 loads of
    /// neither operand, A, B or both, from the checked and the unchecked module; each over every
    /// layout of A and B (row- or column-major: the forward, dX and dW forms and the fourth), odd
    /// and block-sized shapes from 1 to 1031 per side, every implicit-ones mode, the epilogues of
    /// both arms of act4/dact4, and one to three members. The layouts are padded or not so that
    /// the host's choice of pipeline is the one under test (asserted), and each vec4 pipeline is
    /// asserted to have met shapes where its vec4 loads run along both axes of each operand.
    #[test]
    fn tiled_pipelines_match_cpu_twin() {
        use crate::device::Ones;
        let ctx = Arc::new(
            GpuContext::new(&GpuOptions::from_env()).expect("a wgpu adapter (scripts/test installs lavapipe)"),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let modes =
            [(0u32, 0u32), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1), (3, 0), (9, 4), (10, 7), (0, 8), (7, 10), (8, 9)];
        let mut ran: std::collections::HashMap<MatmulPipeline, usize> = Default::default();
        // (pipeline, operand, axis) where a vec4 load had a whole vec4 inside the stored operand.
        let mut vec4_axes = std::collections::HashSet::new();
        let mut case = 0usize;
        for variant in [MatmulVariant::Tiled, MatmulVariant::Tiled128] {
            for loads in Vec4Loads::ALL {
                for unchecked in [false, true] {
                    for layout in [(false, false), (false, true), (true, false), (true, true)] {
                        for shape in [SMALL[case % SMALL.len()], LARGER[case % LARGER.len()]] {
                            case += 1;
                            let (m, _, k) = shape;
                            let ones = match Ones::ALL[case % 3] {
                                Ones::LastColumn if k < 2 => Ones::None,
                                Ones::LastRow if m < 2 => Ones::None,
                                o => o,
                            };
                            let mut g = GpuBackend::new(ctx.clone(), 1 + case % 3);
                            g.force_tiled = Some(variant);
                            g.unchecked_products = unchecked;
                            let mode = modes[case % modes.len()];
                            let key = tiled_case(&mut g, &mut rng, shape, layout, [loads.a, loads.b], ones, mode);
                            assert_eq!(key, MatmulPipeline { variant, loads, unchecked }, "{shape:?} {layout:?}");
                            *ran.entry(key).or_default() += 1;
                            let (sm, sk) = match ones {
                                Ones::None => (m, k),
                                Ones::LastColumn => (m, k - 1),
                                Ones::LastRow => (m - 1, k),
                            };
                            let n = shape.1;
                            // A: along m when column-major (layout.0), else along k; B: along k
                            // when column-major (layout.1), else along n.
                            let a_room = if layout.0 { sm >= 4 && sk >= 1 } else { sm >= 1 && sk >= 4 };
                            let b_room = if layout.1 { k >= 4 && n >= 1 } else { k >= 1 && n >= 4 };
                            if loads.a && a_room {
                                vec4_axes.insert((key, 'a', layout.0));
                            }
                            if loads.b && b_room {
                                vec4_axes.insert((key, 'b', layout.1));
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(ran.len(), 16, "pipelines run: {ran:?}");
        for key in ran.keys() {
            for (operand, on) in [('a', key.loads.a), ('b', key.loads.b)] {
                for transposed in [false, true] {
                    assert!(
                        !on || vec4_axes.contains(&(*key, operand, transposed)),
                        "{}: no case ran {operand}'s vec4 loads with {operand} transposed = {transposed}",
                        key.name()
                    );
                }
            }
        }
    }

    /// The unchecked module is used only where the launch is proven in bounds: a binding one value
    /// short of what the launch reaches keeps the checked module (so does the option off).
    #[test]
    fn unchecked_tiled_pipeline_needs_the_proof() {
        let ctx = Arc::new(
            GpuContext::new(&GpuOptions::from_env()).expect("a wgpu adapter (scripts/test installs lavapipe)"),
        );
        // A 5 x 5 row-major: its last value is index 24, so 24 values (6 vec4s) are one short.
        let p = MatmulArgs { m: 5, n: 5, k: 5, a_rs: 5, a_cs: 1, b_rs: 5, b_cs: 1, ..Default::default() };
        for (a_len, option, proven) in [(25, true, true), (24, true, false), (25, false, false)] {
            let mut g = GpuBackend::new(ctx.clone(), 1);
            g.force_tiled = Some(MatmulVariant::Tiled);
            g.unchecked_products = option;
            let bufs: Vec<BufId> = [a_len, 25, 25, 25].iter().map(|&len| g.create_buffer(len, "t").unwrap()).collect();
            let op = g.bind(Kernel::Matmul, &bufs).unwrap();
            let args = crate::device::Args::Matmul(p);
            let key = g.matmul_pipeline_for(&p, op.0, &g.launch_record(op.0, &args));
            assert_eq!(key.unchecked, proven, "A of {a_len} values, option {option}");
        }
    }
}

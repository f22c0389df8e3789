//! The kernel catalogue shared by both devices: each [`Kernel`] names a WGSL entry point in
//! `shaders/<family>.wgsl` and its CPU twin in `device::cpu::kernels` (same name, same bindings);
//! its typed launch arguments are in `device::args`.

use super::args::MatmulArgs;

/// Kernel families: one WGSL file each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Gather,
    Dense,
    Elementwise,
    Loss,
    Optim,
    Dropout,
    BatchNorm,
}

impl Family {
    /// The WGSL source: the shared prelude followed by the family's kernels.
    pub fn source(self) -> String {
        const COMMON: &str = include_str!("../../shaders/common.wgsl");
        let body = match self {
            Family::Gather => include_str!("../../shaders/gather.wgsl"),
            Family::Dense => include_str!("../../shaders/dense.wgsl"),
            Family::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Family::Loss => include_str!("../../shaders/loss.wgsl"),
            Family::Optim => include_str!("../../shaders/optim.wgsl"),
            Family::Dropout => include_str!("../../shaders/dropout.wgsl"),
            Family::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
        };
        // Kernel development: WGFIT_DENSE_WGSL=path replaces dense.wgsl at run time (no rebuild).
        if self == Family::Dense {
            if let Some(text) = std::env::var_os("WGFIT_DENSE_WGSL").and_then(|p| std::fs::read_to_string(p).ok()) {
                // `enable` directives must open the module: hoist them above the prelude.
                let (en, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("enable "));
                return format!("{}\n{COMMON}\n{}", en.join("\n"), rest.join("\n"));
            }
        }
        format!("{COMMON}\n{body}")
    }

    /// The Dense family with the subgroup kernels appended (a second module, made only where the
    /// device has subgroup operations).
    pub fn dense_subgroup_source() -> String {
        format!("{}\n{}", Family::Dense.source(), include_str!("../../shaders/dense_subgroup.wgsl"))
    }

    /// The Dense family with the subgroup and the texture-operand kernels (a third module, made only
    /// where rgba32float storage textures can be read as well).
    pub fn dense_texture_source() -> String {
        format!("{}\n{}", Family::dense_subgroup_source(), include_str!("../../shaders/dense_texture.wgsl"))
    }
}

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

use Access::{Read as R, ReadWrite as W};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gather,
    Matmul,
    ActivationForward,
    ActivationBackward,
    Loss,
    Adam,
    Sgd,
    DropoutForward,
    DropoutBackward,
    BatchNormTrain,
    BatchNormInfer,
    BatchNormBackward,
}

/// The GPU pipelines of `Kernel::Matmul` (entry points of shaders/dense.wgsl). All share one
/// binding layout; the backend picks one per launch with [`MatmulVariant::choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
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
}

/// Which shader module a Matmul variant's entry point lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenseModule {
    Plain,
    Subgroup,
    Texture,
}

impl MatmulVariant {
    #[cfg_attr(not(test), allow(dead_code))]
    pub const ALL: [MatmulVariant; 8] = [
        MatmulVariant::Scalar,
        MatmulVariant::Nn,
        MatmulVariant::Nt,
        MatmulVariant::Tn,
        MatmulVariant::NnSubgroup,
        MatmulVariant::NtSubgroup,
        MatmulVariant::TnSubgroup,
        MatmulVariant::Texture,
    ];

    pub fn entry(self) -> &'static str {
        match self {
            MatmulVariant::Scalar => "matmul",
            MatmulVariant::Nn => "matmul_nn",
            MatmulVariant::Nt => "matmul_nt",
            MatmulVariant::Tn => "matmul_tn",
            MatmulVariant::NnSubgroup => "matmul_nn_sg",
            MatmulVariant::NtSubgroup => "matmul_nt_sg",
            MatmulVariant::TnSubgroup => "matmul_tn_sg",
            MatmulVariant::Texture => "matmul_tex",
        }
    }

    pub fn module(self) -> DenseModule {
        match self {
            MatmulVariant::NnSubgroup | MatmulVariant::NtSubgroup | MatmulVariant::TnSubgroup => DenseModule::Subgroup,
            MatmulVariant::Texture => DenseModule::Texture,
            _ => DenseModule::Plain,
        }
    }

    /// The subgroup twin of a vec4 variant (llvmpipe), if it has one.
    pub fn subgroup(self) -> Option<MatmulVariant> {
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
    pub fn workgroups(self, p: &MatmulArgs) -> [u32; 3] {
        match self {
            // 8 rows per invocation: 64 x 32 of C per workgroup.
            // 16 rows x 4 columns per invocation: 128 x 32 of C per workgroup.
            MatmulVariant::NnSubgroup
            | MatmulVariant::NtSubgroup
            | MatmulVariant::TnSubgroup
            | MatmulVariant::Texture => [p.n.div_ceil(32).max(1), p.m.div_ceil(128).max(1), 1],
            _ => Grid::Tiles { m: p.m, n: p.n }.workgroups(),
        }
    }

    /// The vectorised variant whose layout and alignment (4-aligned offsets and strides along the
    /// vector loads) a launch meets, else the scalar one.
    pub fn choose(p: &MatmulArgs) -> MatmulVariant {
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

/// How a kernel's launch is sized.
pub enum Grid {
    /// One invocation per element of `total` elements, 256 per workgroup.
    Flat(u32),
    /// One invocation per 4x4 tile of an m x n output, 8x8 invocations per workgroup.
    Tiles { m: u32, n: u32 },
    /// Exactly one workgroup.
    Single,
}

impl Kernel {
    pub const ALL: [Kernel; 12] = [
        Kernel::Gather,
        Kernel::Matmul,
        Kernel::ActivationForward,
        Kernel::ActivationBackward,
        Kernel::Loss,
        Kernel::Adam,
        Kernel::Sgd,
        Kernel::DropoutForward,
        Kernel::DropoutBackward,
        Kernel::BatchNormTrain,
        Kernel::BatchNormInfer,
        Kernel::BatchNormBackward,
    ];

    pub fn family(self) -> Family {
        match self {
            Kernel::Gather => Family::Gather,
            Kernel::Matmul => Family::Dense,
            Kernel::ActivationForward | Kernel::ActivationBackward => Family::Elementwise,
            Kernel::Loss => Family::Loss,
            Kernel::Adam | Kernel::Sgd => Family::Optim,
            Kernel::DropoutForward | Kernel::DropoutBackward => Family::Dropout,
            Kernel::BatchNormTrain | Kernel::BatchNormInfer | Kernel::BatchNormBackward => Family::BatchNorm,
        }
    }

    /// The WGSL entry point (and the CPU twin's name).
    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Gather => "gather",
            Kernel::Matmul => "matmul",
            Kernel::ActivationForward => "activation_forward",
            Kernel::ActivationBackward => "activation_backward",
            Kernel::Loss => "loss",
            Kernel::Adam => "adam",
            Kernel::Sgd => "sgd",
            Kernel::DropoutForward => "dropout_forward",
            Kernel::DropoutBackward => "dropout_backward",
            Kernel::BatchNormTrain => "batchnorm_train",
            Kernel::BatchNormInfer => "batchnorm_infer",
            Kernel::BatchNormBackward => "batchnorm_backward",
        }
    }

    /// Storage bindings as (binding number, access), in the order the CPU twin takes its buffers
    /// (the launch record is group 1, binding 0).
    pub fn bindings(self) -> &'static [(u32, Access)] {
        match self {
            Kernel::Gather => &[(1, R), (2, R), (3, R), (4, W), (5, W)],
            Kernel::Matmul => &[(1, R), (2, R), (3, W), (4, R)],
            Kernel::Loss => &[(1, R), (2, R), (3, W), (4, W)],
            Kernel::ActivationForward | Kernel::ActivationBackward => &[(1, R), (2, W), (3, R)],
            Kernel::Adam | Kernel::Sgd => &[(1, W), (2, R), (3, W), (4, W)],
            Kernel::DropoutForward => &[(1, R), (2, W)],
            Kernel::DropoutBackward => &[(1, R), (2, W), (3, R)],
            // x, param (gamma/beta), state (moving stats), y, saved batch statistics
            Kernel::BatchNormTrain => &[(1, R), (2, R), (3, W), (4, W), (5, W)],
            // x, param, state, y
            Kernel::BatchNormInfer => &[(1, R), (2, R), (3, W), (4, W)],
            // x, param, saved, dy, dx, grads, aux (the output of the layer below)
            Kernel::BatchNormBackward => &[(1, R), (2, R), (5, W), (6, R), (4, W), (7, W), (8, R)],
        }
    }
}

impl Grid {
    /// Workgroup counts for a dispatch (x capped at 65535, spilling into y as common.wgsl expects).
    pub fn workgroups(&self) -> [u32; 3] {
        match *self {
            Grid::Flat(total) => {
                let groups = total.div_ceil(256).max(1);
                if groups <= 65535 {
                    [groups, 1, 1]
                } else {
                    [65535, groups.div_ceil(65535), 1]
                }
            }
            Grid::Tiles { m, n } => [n.div_ceil(32).max(1), m.div_ceil(32).max(1), 1],
            Grid::Single => [1, 1, 1],
        }
    }
}

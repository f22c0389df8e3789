//! The kernel catalogue shared by both devices: each [`Kernel`] names a WGSL entry point in
//! `shaders/<family>.wgsl` and its CPU twin in `device::cpu::kernels` (same name, same bindings);
//! its typed launch arguments are in `device::args`.

/// Kernel families: one WGSL file each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// shaders/gather.wgsl
    Gather,
    /// shaders/dense.wgsl (and its tiled, subgroup and texture modules: `gpu::matmul`)
    Dense,
    /// shaders/elementwise.wgsl
    Elementwise,
    /// shaders/loss.wgsl
    Loss,
    /// shaders/penalty.wgsl
    Penalty,
    /// shaders/confusion.wgsl
    Confusion,
    /// shaders/optim.wgsl
    Optim,
    /// shaders/dropout.wgsl
    Dropout,
    /// shaders/batchnorm.wgsl
    BatchNorm,
    /// shaders/softmax.wgsl
    Softmax,
    /// shaders/normalization.wgsl
    Normalization,
}

impl Family {
    /// The file's stem (`shaders/<name>.wgsl`), as the profiler's table names the family.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gather => "gather",
            Family::Dense => "dense",
            Family::Elementwise => "elementwise",
            Family::Loss => "loss",
            Family::Penalty => "penalty",
            Family::Confusion => "confusion",
            Family::Optim => "optim",
            Family::Dropout => "dropout",
            Family::BatchNorm => "batchnorm",
            Family::Softmax => "softmax",
            Family::Normalization => "normalization",
        }
    }

    /// The WGSL source: the shared prelude followed by the family's kernels.
    pub fn source(self) -> String {
        const COMMON: &str = include_str!("../../shaders/common.wgsl");
        let body = match self {
            Family::Gather => include_str!("../../shaders/gather.wgsl"),
            Family::Dense => include_str!("../../shaders/dense.wgsl"),
            Family::Elementwise => include_str!("../../shaders/elementwise.wgsl"),
            Family::Loss => include_str!("../../shaders/loss.wgsl"),
            Family::Penalty => include_str!("../../shaders/penalty.wgsl"),
            Family::Confusion => include_str!("../../shaders/confusion.wgsl"),
            Family::Optim => include_str!("../../shaders/optim.wgsl"),
            Family::Dropout => include_str!("../../shaders/dropout.wgsl"),
            Family::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            Family::Softmax => include_str!("../../shaders/softmax.wgsl"),
            Family::Normalization => include_str!("../../shaders/normalization.wgsl"),
        };
        format!("{COMMON}\n{body}")
    }
}

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

use Access::{Read as R, ReadWrite as W};

/// Every kernel: a WGSL entry point and its CPU twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `gather`
    Gather,
    /// `matmul` (and its variants)
    Matmul,
    /// `activation_forward`
    ActivationForward,
    /// `activation_backward`
    ActivationBackward,
    /// `loss`
    Loss,
    /// `penalty`
    Penalty,
    /// `confusion`
    Confusion,
    /// `adam`
    Adam,
    /// `sgd`
    Sgd,
    /// `rmsprop`
    Rmsprop,
    /// `grad_norms`
    GradNorms,
    /// `dropout_forward`
    DropoutForward,
    /// `dropout_backward`
    DropoutBackward,
    /// `batchnorm_train`
    BatchNormTrain,
    /// `batchnorm_infer`
    BatchNormInfer,
    /// `batchnorm_backward`
    BatchNormBackward,
    /// `softmax_forward`
    SoftmaxForward,
    /// `softmax_backward`
    SoftmaxBackward,
    /// `normalization_forward`
    NormalizationForward,
    /// `normalization_backward`
    NormalizationBackward,
}

/// How a kernel's launch is sized.
pub enum Grid {
    /// One invocation per element of `total` elements, 256 per workgroup.
    Flat(u32),
    /// One invocation per 4x4 tile of an m x n output, 8x8 invocations per workgroup.
    Tiles { m: u32, n: u32 },
    /// Exactly one workgroup (per member).
    Single,
    /// This many workgroups (at most 65535; the kernel strides over more).
    Groups(u32),
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 20] = [
        Kernel::Gather,
        Kernel::Matmul,
        Kernel::ActivationForward,
        Kernel::ActivationBackward,
        Kernel::Loss,
        Kernel::Penalty,
        Kernel::Confusion,
        Kernel::Adam,
        Kernel::Sgd,
        Kernel::Rmsprop,
        Kernel::GradNorms,
        Kernel::DropoutForward,
        Kernel::DropoutBackward,
        Kernel::BatchNormTrain,
        Kernel::BatchNormInfer,
        Kernel::BatchNormBackward,
        Kernel::SoftmaxForward,
        Kernel::SoftmaxBackward,
        Kernel::NormalizationForward,
        Kernel::NormalizationBackward,
    ];

    /// The WGSL family (file) it lives in.
    pub fn family(self) -> Family {
        match self {
            Kernel::Gather => Family::Gather,
            Kernel::Matmul => Family::Dense,
            Kernel::ActivationForward | Kernel::ActivationBackward => Family::Elementwise,
            Kernel::Loss => Family::Loss,
            Kernel::Penalty => Family::Penalty,
            Kernel::Confusion => Family::Confusion,
            Kernel::Adam | Kernel::Sgd | Kernel::Rmsprop | Kernel::GradNorms => Family::Optim,
            Kernel::DropoutForward | Kernel::DropoutBackward => Family::Dropout,
            Kernel::BatchNormTrain | Kernel::BatchNormInfer | Kernel::BatchNormBackward => Family::BatchNorm,
            Kernel::SoftmaxForward | Kernel::SoftmaxBackward => Family::Softmax,
            Kernel::NormalizationForward | Kernel::NormalizationBackward => Family::Normalization,
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
            Kernel::Penalty => "penalty",
            Kernel::Confusion => "confusion",
            Kernel::Adam => "adam",
            Kernel::Sgd => "sgd",
            Kernel::Rmsprop => "rmsprop",
            Kernel::GradNorms => "grad_norms",
            Kernel::DropoutForward => "dropout_forward",
            Kernel::DropoutBackward => "dropout_backward",
            Kernel::BatchNormTrain => "batchnorm_train",
            Kernel::BatchNormInfer => "batchnorm_infer",
            Kernel::BatchNormBackward => "batchnorm_backward",
            Kernel::SoftmaxForward => "softmax_forward",
            Kernel::SoftmaxBackward => "softmax_backward",
            Kernel::NormalizationForward => "normalization_forward",
            Kernel::NormalizationBackward => "normalization_backward",
        }
    }

    /// Storage bindings as (binding number, access), in the order the CPU twin takes its buffers
    /// (the launch record is group 1, binding 0).
    pub fn bindings(self) -> &'static [(u32, Access)] {
        match self {
            Kernel::Gather => &[(1, R), (2, R), (3, R), (4, W), (5, W)],
            Kernel::Matmul => &[(1, R), (2, R), (3, W), (4, R)],
            Kernel::Loss => &[(1, R), (2, R), (3, W), (4, W)],
            // param, grad, loss sums
            Kernel::Penalty => &[(1, R), (2, W), (3, W)],
            // predictions, targets, thresholds (shared), confusion counts
            Kernel::Confusion => &[(1, R), (2, R), (3, R), (4, W)],
            Kernel::ActivationForward | Kernel::ActivationBackward => &[(1, R), (2, W), (3, R)],
            // param, grad, m, v, member table, learning rates, third slot (amsgrad's v_hat,
            // RMSprop's mean gradient), the variables' gradient sums of squares
            Kernel::Adam | Kernel::Sgd | Kernel::Rmsprop => {
                &[(1, W), (2, R), (3, W), (4, W), (5, R), (6, R), (7, W), (8, R)]
            }
            // grad (scaled in place by clipnorm), sums of squares per variable, variable
            // offsets (shared, u32), member table
            Kernel::GradNorms => &[(10, W), (11, W), (9, R), (5, R)],
            // src, dst, member table
            Kernel::DropoutForward => &[(1, R), (2, W), (4, R)],
            // src, dst, aux (the output of the layer below), member table
            Kernel::DropoutBackward => &[(1, R), (2, W), (3, R), (4, R)],
            // x, param (gamma/beta), state (moving stats), y, saved batch statistics, member table
            Kernel::BatchNormTrain => &[(1, R), (2, R), (3, W), (4, W), (5, W), (9, R)],
            // x, param, state, y
            Kernel::BatchNormInfer => &[(1, R), (2, R), (3, W), (4, W)],
            // x, param, saved, dy, dx, grads, aux (the output of the layer below)
            Kernel::BatchNormBackward => &[(1, R), (2, R), (5, W), (6, R), (4, W), (7, W), (8, R)],
            // values (in place)
            Kernel::SoftmaxForward => &[(1, W)],
            // gradient (in place), the softmax's output
            Kernel::SoftmaxBackward => &[(1, W), (2, R)],
            // x, state (mean, variance), y
            Kernel::NormalizationForward => &[(1, R), (2, R), (3, W)],
            // dy, state, dx, aux (the layer below's derivative source)
            Kernel::NormalizationBackward => &[(1, R), (2, R), (3, W), (4, R)],
        }
    }
}

#[cfg(test)]
#[test]
fn all_lists_kernels_in_declaration_order() {
    // The CPU profiler tallies by `kernel as usize` into arrays in `Kernel::ALL` order.
    for (i, k) in Kernel::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i, "{k:?}");
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
            Grid::Groups(n) => [n.clamp(1, 65535), 1, 1],
        }
    }
}

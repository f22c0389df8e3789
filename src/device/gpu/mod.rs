//! The wgpu backend.
//!
//! - [`options`]: [`GpuOptions`], every setting of the GPU path (the `WGFIT_*` variables are read there only);
//! - [`adapter`]: which adapter a device opens, `Device::auto`'s rule, and `list_adapters`;
//! - [`context`]: [`GpuContext`], one device and queue with its limits, faults and compiled pipelines;
//! - [`recorder`]: [`GpuBackend`], one model's buffers and bound kernels, and the recorder that turns
//!   a list of launches into one submission with one readback;
//! - [`matmul`]: which Matmul variant a launch runs, and (`matmul::texture`) llvmpipe's texture operands;
//! - [`timestamps`]: the profiler's timestamp queries.

mod adapter;
mod context;
mod matmul;
mod options;
mod recorder;
mod timestamps;

pub(crate) use adapter::{auto_candidates, auto_choice, list_adapters, AutoChoice};
pub(crate) use context::GpuContext;
pub use options::GpuOptions;
pub(crate) use recorder::GpuBackend;

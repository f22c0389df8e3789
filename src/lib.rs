#![deny(missing_docs)]
//! wgfit trains dense neural networks on any GPU through wgpu compute shaders, with Keras's API.
//!
//! ```
//! use wgfit::{Dense, Device, Fit, Matrix, Sequential};
//!
//! # fn main() -> wgfit::Result<()> {
//! let device = Device::cpu(); // or Device::gpu()?
//! let x = Matrix::from_rows(&[[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])?;
//! let y = Matrix::column(vec![0.0, 1.0, 1.0, 2.0]);
//! let mut model = Sequential::new(&device, vec![
//!     Dense::new(8).activation("relu").input_shape(2),
//!     Dense::new(1),
//! ]);
//! model.compile("adam", "mse", &["mae"])?;
//! let history = model.fit(&x, &y, Fit::new().epochs(5).batch_size(2).verbose(0))?;
//! assert_eq!(history["loss"].len(), 5);
//! let predictions = model.predict(&x)?;
//! assert_eq!(predictions.rows(), 4);
//! # Ok(())
//! # }
//! ```

#[doc(hidden)]
pub mod bench;
pub mod callbacks;
pub mod data;
mod device;
mod error;
mod history;
pub mod io;
mod layers;
mod losses;
mod matrix;
mod metrics;
mod model;
mod optimizers;
mod plan;
mod profile;
mod regularizers;
mod summary;
mod sweep;
mod trainer;
mod weights;

pub use callbacks::{
    Callback, CsvLogger, EarlyStopping, LearningRateScheduler, Logs, Mode, ModelCheckpoint, ReduceLROnPlateau,
    TerminateOnNaN, TrainContext,
};
pub use data::{DataFile, FileOptions};
pub use device::{Device, DeviceInfo, GpuOptions};
pub use error::{Error, Result};
pub use history::History;
pub use layers::{
    Activation, ActivationConfig, ActivationLayer, BatchNormConfig, BatchNormalization, Dense, DenseConfig, Dropout,
    DropoutConfig, Initializer, Input, Layer, LayerKind, Normalization, NormalizationConfig,
};
pub use losses::{IntoLoss, Loss};
pub use matrix::{AsMatrix, Matrix};
pub use metrics::Metric;
pub use model::Sequential;
pub use optimizers::{Adam, AdamW, Clip, IntoOptimizer, LearningRateSchedule, Optimizer, Rmsprop, Sgd};
pub use profile::{EpochProfile, KernelTime, ProfileClock};
pub use regularizers::{IntoRegularizer, Regularizer};
pub use sweep::{
    cross_validate, cross_validate_file, fold_bounds, CrossValidation, Member, MemberReport, Ranked, Sweep, SweepReport,
};
pub use trainer::Fit;
pub use weights::balanced_class_weights;

/// Internals exposed for the test suite and benchmarks only; not a stable API.
#[doc(hidden)]
pub mod testing;

/// The README's code blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

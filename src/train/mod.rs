//! The diffusion trainer behind `diffusion-train`.
//!
//! The settings, schedules, per-step draws and checkpoint files are pure (or plain file
//! I/O) and always built and tested with the rest of the crate; everything that touches
//! burn is behind the `train` cargo feature, so the data-preparation CLI builds in seconds
//! without the GPU stack.

pub mod checkpoint;
pub mod data;
pub mod draws;
pub mod error;
#[cfg(feature = "train")]
pub mod family;
pub mod gaussian;
pub mod grid;
pub mod metrics;
pub mod plateau;
pub mod schedule;
pub mod settings;

#[cfg(feature = "train")]
pub mod adm;
#[cfg(feature = "train")]
pub mod bench;
#[cfg(feature = "train")]
pub mod device;
#[cfg(feature = "train")]
pub mod ema;
#[cfg(feature = "train")]
pub mod feed;
#[cfg(feature = "train")]
pub mod generate;
#[cfg(feature = "train")]
pub mod job;
#[cfg(feature = "train")]
pub mod kernels;
#[cfg(feature = "train")]
pub mod loss;
#[cfg(feature = "train")]
pub mod optim;
#[cfg(feature = "train")]
pub mod profile;
#[cfg(feature = "train")]
pub mod state;
#[cfg(feature = "train")]
pub mod step;
#[cfg(feature = "train")]
pub mod tensorboard;
#[cfg(feature = "train")]
pub mod torch_files;
#[cfg(feature = "train")]
pub mod trainer;
#[cfg(feature = "train")]
pub mod unet;
#[cfg(feature = "train")]
pub mod visualize;

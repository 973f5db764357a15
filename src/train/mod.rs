//! The diffusion trainer behind `diffusion-train`.
//!
//! The settings and the schedules are pure and always built (and tested) with the rest of
//! the crate; everything that touches burn is behind the `train` cargo feature, so the
//! data-preparation CLI builds in seconds without the GPU stack.

pub mod draws;
pub mod schedule;
pub mod settings;

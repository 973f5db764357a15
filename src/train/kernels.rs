//! Our own CPU kernels where burn's bound the training step (`diffusion-train bench --ops`,
//! docs/performance.md): each a pure function on slices, property-tested against its
//! definition, and an operation of burn's CPU backend with its own backward (`ops`),
//! property-tested against burn's operation. Only the CPU path uses them; on a GPU the
//! operations are burn's.

mod conv3x3;
mod dropout;
mod gemm;
mod group_norm;
mod ops;
mod silu;

pub use ops::{conv3x3, dropout, group_norm, silu};

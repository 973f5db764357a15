//! balance-split: reproducible, class-balanced training manifests from an imbalanced
//! image-classification split.
//!
//! The crate is organised as pure logic ([`weights`], [`plan`], [`rng`]) with I/O at the
//! edges ([`config`] and [`split`] read the user's files, [`manifest`] writes ours,
//! [`balance`] runs a whole job). The `balance-split` binary only parses arguments and
//! prints.

pub mod balance;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod images;
pub mod input;
pub mod leaks;
pub mod manifest;
pub mod output;
pub mod pipe;
pub mod plan;
pub mod plot;
pub mod prepare;
pub mod report;
pub mod rng;
pub mod sample;
pub mod sampler;
pub mod split;
pub mod stats;
pub mod stdout;
pub mod synthetic;
pub mod text;
pub mod train;
pub mod usage;
pub mod verify;
pub mod weights;

pub use error::Error;

//! The library's aggregate error, where the CLI and the Python package meet the library,
//! and the one place that decides exit codes.
//!
//! Each job has its own error type ([`BalanceError`], [`PrepareError`], ...) and knows
//! which of its failures are the user's input (exit 2) and which the environment's
//! (exit 1); this type sits above every job and imports them, never the other way round.

use crate::balance::BalanceError;
use crate::config::ConfigError;
use crate::images::cache::CacheError;
use crate::leaks::LeaksError;
use crate::manifest::ManifestError;
use crate::output::{DestinationError, WriteError};
use crate::plot::PlotError;
use crate::prepare::PrepareError;
use crate::sample::SampleError;
use crate::split::SplitError;
use crate::stats::StatsError;
use crate::verify::VerifyError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Balance(#[from] BalanceError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Leaks(#[from] LeaksError),
    /// The decoded image cache cannot be made or used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The chart cannot be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// `split` could not make its split files.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A split or manifest that cannot be read (`check-images`, the Python package).
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A config that cannot be read (the Python package's loader settings).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A usage problem of the command line itself, not of one job (options that do not fit
    /// together).
    #[error("{0}")]
    Usage(String),
    /// The output path is an input or not a regular file.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// Writing an output failed: the environment, not the user's input.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Error {
    /// 2 for bad input (the user can fix their files or arguments), 1 for internal failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Balance(e) => e.exit_code(),
            Error::Sample(e) => e.exit_code(),
            Error::Cache(e) => e.exit_code(),
            Error::Plot(e) => e.exit_code(),
            Error::Prepare(e) => e.exit_code(),
            Error::Write(_) => 1,
            Error::Verify(_)
            | Error::Stats(_)
            | Error::Leaks(_)
            | Error::Split(_)
            | Error::Manifest(_)
            | Error::Config(_)
            | Error::Usage(_)
            | Error::Destination(_) => 2,
        }
    }
}

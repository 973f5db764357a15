//! The library's top-level error, and the one place that decides exit codes.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::images::cache::CacheError;
use crate::manifest::ManifestError;
use crate::output::DestinationError;
use crate::plan::PlanError;
use crate::plot::PlotError;
use crate::prepare::PrepareError;
use crate::sampler::SamplerError;
use crate::split::SplitError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest's sampler cannot produce the requested epoch.
    #[error("{manifest}: {source}")]
    Sampler {
        manifest: PathBuf,
        #[source]
        source: SamplerError,
    },
    /// The split and config are each valid but do not fit together.
    #[error("{split}: {source}")]
    Plan {
        split: PathBuf,
        #[source]
        source: PlanError,
    },
    /// A usage problem that is not about one file's contents (missing `data.split_file`,
    /// output path equal to the input).
    #[error("{0}")]
    Usage(String),
    /// Something outside the user's input failed (the OS could not provide a seed).
    #[error("{0}")]
    Internal(String),
    /// The decoded image cache cannot be made or used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The output path is an input or not a regular file.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The chart could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Writing the output failed: the environment, not the user's input.
    #[error("{path}: cannot write {what}: {source}")]
    Write {
        path: PathBuf,
        /// What the file is ("manifest", "split file").
        what: &'static str,
        source: std::io::Error,
    },
    /// `split` could not make its split files.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

impl Error {
    /// 2 for bad input (the user can fix their files or arguments), 1 for internal failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Write { .. } | Error::Internal(_) | Error::Plot(_) => 1,
            // The environment's limit, not the user's input.
            Error::Sampler {
                source: SamplerError::OutOfMemory { .. },
                ..
            } => 1,
            Error::Prepare(e) => e.exit_code(),
            Error::Config(_)
            | Error::Split(_)
            | Error::Manifest(_)
            | Error::Sampler { .. }
            | Error::Cache(_)
            | Error::Plan { .. }
            | Error::Destination(_)
            | Error::Usage(_) => 2,
        }
    }
}

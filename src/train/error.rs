//! The trainer's errors, and the exit code each one gives.

use crate::config::ConfigError;
use crate::images::cache::CacheError;
use crate::images::loader::LoadError;
use crate::manifest::ManifestError;
use crate::sampler::SamplerError;
use crate::split::SplitError;

use super::checkpoint::CheckpointError;

/// Everything `diffusion-train` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{0}")]
    Sampler(#[from] SamplerError),
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Inputs that are each valid but do not fit together (a manifest with another
    /// number of classes than the config, a split that changed since the manifest).
    #[error("{0}")]
    Mismatch(String),
    /// The device asked for cannot be used on this machine (no adapter, no driver): the
    /// user's choice to change, so bad input.
    #[error("{0}")]
    Unavailable(String),
    /// The device failed while working.
    #[error("{0}")]
    Device(String),
    /// An output path that is an input or not a regular file, with the config key (or
    /// option) that put it there.
    #[error("{key}: {source}")]
    Destination {
        key: String,
        source: crate::output::DestinationError,
    },
    /// Writing outputs (metrics, logs, images) failed.
    #[error("{path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl TrainError {
    /// 2 for input the user can fix, 1 for the environment.
    pub fn exit_code(&self) -> i32 {
        match self {
            TrainError::Write { .. } | TrainError::Device(_) => 1,
            TrainError::Load(LoadError::OutOfMemory { .. })
            | TrainError::Sampler(SamplerError::OutOfMemory { .. }) => 1,
            TrainError::Checkpoint(CheckpointError::Write { .. }) => 1,
            TrainError::Config(_)
            | TrainError::Split(_)
            | TrainError::Manifest(_)
            | TrainError::Cache(_)
            | TrainError::Sampler(_)
            | TrainError::Load(_)
            | TrainError::Checkpoint(_)
            | TrainError::Unavailable(_)
            | TrainError::Destination { .. }
            | TrainError::Mismatch(_) => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_device_is_the_users_to_change_and_a_failing_one_is_not() {
        assert_eq!(TrainError::Unavailable("no adapter".into()).exit_code(), 2);
        assert_eq!(TrainError::Device("lost".into()).exit_code(), 1);
    }
}

//! The `sample` job: a manifest's index stream for one epoch and one rank, so a trainer in
//! any language can consume exactly the order balance-split defines.

use std::path::{Path, PathBuf};

use crate::input;
use crate::manifest::{Manifest, ManifestError};
use crate::sampler::{self, SamplerError, Source};
use crate::split::SplitError;

/// Why a manifest's epoch cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{manifest}: {source}")]
    Sampler {
        manifest: PathBuf,
        #[source]
        source: SamplerError,
    },
}

impl SampleError {
    /// 2 for bad input, 1 when the machine refuses the memory an epoch needs.
    pub fn exit_code(&self) -> i32 {
        match self {
            SampleError::Sampler {
                source: SamplerError::OutOfMemory { .. },
                ..
            } => 1,
            _ => 2,
        }
    }
}

/// What to draw.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub epoch: u64,
    pub rank: usize,
    pub world_size: usize,
    /// `data.loading.shuffle_train`; `--no-shuffle` sets it false.
    pub shuffle: bool,
}

/// Positions in the manifest's `train` list for this epoch and rank.
pub fn run(manifest: &Path, req: Request) -> Result<Vec<usize>, SampleError> {
    let bytes = input::read(manifest)?;
    let text = input::text(&bytes, manifest)?;
    let m = Manifest::parse(text, manifest)?;
    positions(&m, req).map_err(|source| SampleError::Sampler {
        manifest: manifest.to_owned(),
        source,
    })
}

/// How many positions [`positions`] gives each rank, without drawing them.
pub fn epoch_len(m: &Manifest, world_size: usize) -> usize {
    let weighted = m.record.sampler.as_ref().map(|s| s.weighted());
    sampler::epoch_len(m.split.train.len(), weighted.as_ref(), world_size)
}

/// The pure part: the positions of a parsed manifest.
pub fn positions(m: &Manifest, req: Request) -> Result<Vec<usize>, SamplerError> {
    let labels = m.split.train_labels();
    let weighted = m.record.sampler.as_ref().map(|s| s.weighted());
    let src = Source {
        labels: &labels,
        num_classes: m.split.classes.len(),
        weighted: weighted.as_ref(),
        shuffle: req.shuffle,
    };
    sampler::epoch(&src, m.record.seed, req.epoch, req.rank, req.world_size)
}

//! From a list of (path, label) entries and an epoch's positions to batches of normalised
//! CHW f32 tensors, decoded in parallel (rayon) and prefetched by a background thread.
//!
//! Every sample is a pure function of (file, seed, epoch, its position in the epoch): its
//! augmentation comes from its own ChaCha8 stream, so a batch is identical for any number
//! of threads and the same sample drawn twice in an epoch is augmented differently.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use rayon::prelude::*;

use image::RgbImage;

use super::cache::Cache;
use super::decode::{self, Problem};
use super::transform::{self, Augment, AugmentationConfig};
use crate::input;
use crate::rng::EpochStream;
use crate::split::Entry;

/// A batch that could not be loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// A sample: the entry index, its path, and why.
    #[error("entry {index} ({path}): {problem}")]
    Sample {
        index: usize,
        path: String,
        problem: Problem,
    },
    /// The batch's buffer could not be allocated.
    #[error("out of memory: a batch of {images} images needs {bytes} bytes")]
    OutOfMemory { images: usize, bytes: u64 },
}

/// How samples become tensors.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// `model.architecture.image_size`.
    pub image_size: u32,
    /// `model.architecture.in_channels`: 3 (RGB) or 1 (luminance).
    pub channels: usize,
    pub batch_size: usize,
    pub drop_last: bool,
    /// `None` for validation data, which is never augmented.
    pub augmentation: Option<AugmentationConfig>,
    pub seed: u64,
}

/// One batch: `images` is `[batch, channels, size, size]` in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Positions of the samples in the entry list.
    pub entries: Vec<usize>,
    pub shape: [usize; 4],
}

/// The entries of one list with their paths resolved against the project root.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// (resolved path, label, path as the split names it)
    items: Arc<Vec<(PathBuf, u32, String)>>,
    cache: Option<Cached>,
}

/// A cache and, per item, its slot there (looked up once, not per sample).
#[derive(Clone, Debug)]
struct Cached {
    cache: Arc<Cache>,
    slots: Arc<Vec<Option<usize>>>,
}

impl Dataset {
    pub fn new(entries: &[Entry], root: &Path) -> Dataset {
        Dataset {
            items: Arc::new(
                entries
                    .iter()
                    .map(|e| {
                        (
                            input::under(root, Path::new(&*e.path)),
                            e.label,
                            e.path.to_string(),
                        )
                    })
                    .collect(),
            ),
            cache: None,
        }
    }

    /// Takes decoded, resized pixels from `cache` (see [`super::cache`]) instead of the
    /// files; entries the cache does not hold are decoded as usual.
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Dataset {
        let slots = self.items.iter().map(|(_, _, name)| cache.slot(name));
        let slots = Arc::new(slots.collect());
        self.cache = Some(Cached { cache, slots });
        self
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sample `index` as normalised CHW floats into `out`; `slot` is its position in the
    /// epoch (which picks its augmentation stream).
    fn load_into(
        &self,
        index: usize,
        epoch: u64,
        slot: u64,
        cfg: &LoaderConfig,
        out: &mut [f32],
    ) -> Result<(), LoadError> {
        let path = &self.items[index].0;
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.slots[index].map(|s| c.cache.pixels_at(s)));
        let pixels = match cached {
            Some(px) => px,
            None => decode::read(path)
                .and_then(|b| decode::decode_resized(&b, cfg.image_size))
                .map(image::RgbImage::into_raw),
        }
        .map_err(|problem| LoadError::Sample {
            index,
            path: path.display().to_string(),
            problem,
        })?;
        match &cfg.augmentation {
            None => transform::normalize(&pixels, cfg.channels, out),
            Some(aug) => {
                let a = Augment::draw(aug, &mut EpochStream::augment(cfg.seed, epoch, slot));
                let img = RgbImage::from_raw(cfg.image_size, cfg.image_size, pixels)
                    .expect("decode_resized and the cache give image_size^2 RGB pixels");
                transform::normalize(&transform::augment(img, &a), cfg.channels, out);
            }
        }
        Ok(())
    }

    /// The batch of entries `positions` at epoch positions `slots`, decoded
    /// in parallel on the current rayon pool straight into the batch's buffer. Of several
    /// failing samples, the first in the batch is reported, whatever the thread count.
    pub fn batch(
        &self,
        positions: &[usize],
        slots: Slots,
        epoch: u64,
        cfg: &LoaderConfig,
    ) -> Result<Batch, LoadError> {
        let s = cfg.image_size as usize;
        let per = cfg.channels * s * s;
        // Fallible: the bounds on sizes allow batches of gigabytes, and an allocation the
        // machine (or its ulimit) refuses is an error, not an abort.
        let n = per * positions.len();
        let mut images: Vec<f32> = Vec::new();
        images
            .try_reserve_exact(n)
            .map_err(|_| LoadError::OutOfMemory {
                images: positions.len(),
                bytes: n as u64 * 4,
            })?;
        images.resize(n, 0.0);
        if per > 0 {
            images
                .par_chunks_mut(per)
                .zip(positions)
                .enumerate()
                .map(|(k, (out, &index))| self.load_into(index, epoch, slots.at(k), cfg, out))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Result<(), LoadError>>()?;
        }
        Ok(Batch {
            images,
            labels: positions.iter().map(|&i| self.items[i].1).collect(),
            entries: positions.to_vec(),
            shape: [positions.len(), cfg.channels, s, s],
        })
    }

    /// All batches of an epoch, produced by a background thread at most `depth` batches
    /// ahead of the consumer (so memory stays at `depth + 1` batches); dropping the
    /// iterator stops the producer.
    pub fn batches(
        &self,
        positions: Vec<usize>,
        epoch: u64,
        cfg: LoaderConfig,
        depth: usize,
    ) -> Prefetch {
        self.rank_batches(positions, Shard::WHOLE, epoch, cfg, depth)
    }

    /// [`Self::batches`] for one rank's share of an epoch: `positions` is the rank's shard
    /// ([`crate::sampler::shard`]), and each sample keeps the augmentation of its place in
    /// the whole epoch, so the ranks together load exactly what one process would.
    pub fn rank_batches(
        &self,
        positions: Vec<usize>,
        shard: Shard,
        epoch: u64,
        cfg: LoaderConfig,
        depth: usize,
    ) -> Prefetch {
        let (tx, rx) = mpsc::sync_channel(depth.max(1));
        let data = self.clone();
        let handle = std::thread::spawn(move || {
            for (range, slots) in batch_plan(positions.len(), shard, &cfg) {
                if tx
                    .send(data.batch(&positions[range], slots, epoch, &cfg))
                    .is_err()
                {
                    break;
                }
            }
        });
        Prefetch {
            rx,
            _handle: handle,
        }
    }
}

/// How `len` positions of one rank's shard split into batches: each batch's range of
/// the positions and its place in the whole epoch, `batch_size` and `drop_last` as `cfg`
/// says. One plan for the host pipeline and the trainer's device-resident images, so
/// their batches cannot differ in their bounds or their augmentation streams.
pub fn batch_plan(
    len: usize,
    shard: Shard,
    cfg: &LoaderConfig,
) -> impl Iterator<Item = (std::ops::Range<usize>, Slots)> {
    let b = cfg.batch_size.max(1);
    let drop_last = cfg.drop_last;
    (0..len.div_ceil(b))
        .map(move |k| (k * b..len.min((k + 1) * b), k))
        .take_while(move |(range, _)| !(drop_last && range.len() < b))
        .map(move |(range, k)| {
            let slots = Slots {
                first: shard.rank + k * b * shard.world_size,
                step: shard.world_size,
            };
            (range, slots)
        })
}

/// Where a batch's samples sit in the whole epoch: sample `k` of the batch is at
/// `first + k * step` (step 1 for one process, the world size for one rank's shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    pub first: usize,
    pub step: usize,
}

impl Slots {
    /// A batch at the start of a single-process epoch.
    pub const START: Slots = Slots { first: 0, step: 1 };

    /// The epoch position of the batch's sample `k`.
    pub fn at(self, k: usize) -> u64 {
        (self.first + k * self.step) as u64
    }
}

/// One rank of a distributed epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world_size: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard {
        rank: 0,
        world_size: 1,
    };
}

/// The iterator [`Dataset::batches`] returns.
pub struct Prefetch {
    rx: mpsc::Receiver<Result<Batch, LoadError>>,
    _handle: std::thread::JoinHandle<()>,
}

impl Iterator for Prefetch {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

#[cfg(test)]
mod tests;

//! `balance_split.Loader`: the trainer's image pipeline (decode, resize, augment,
//! normalise, batch; parallel, prefetched) feeding a Python loop. A batch is exactly what
//! the Rust trainer would see for the same manifest, epoch and settings: the same
//! `Dataset` code makes it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use numpy::{IntoPyArray, PyArray1, PyArray4, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use balance_split::images::cache::{self, Cache};
use balance_split::images::loader::{Dataset, LoaderConfig, Prefetch, Shard};
use balance_split::images::settings::PipelineSettings;
use balance_split::images::transform::{AugmentationConfig, ColorJitterConfig};
use balance_split::sample::{self, Request};
use balance_split::sampler;

use crate::errors;
use crate::manifest::{Loaded, Manifest};

/// A batch larger than this many bytes of floats is refused before it is allocated.
const MAX_BATCH_BYTES: usize = 16 << 30;

/// The most batches decoded ahead: each holds a whole batch in memory, and the channel
/// that carries them is allocated for all of them up front.
const MAX_PREFETCH: usize = 64;

/// Frozen, its epoch atomic: shared between threads it works (see `EpochSampler`).
#[pyclass(module = "balance_split", name = "Loader", frozen)]
pub struct Loader {
    loaded: Arc<Loaded>,
    /// "train", "val" or "test": train follows the sampler, the others their list order.
    list: String,
    data: Dataset,
    cfg: LoaderConfig,
    shuffle: bool,
    shard: Shard,
    epoch: AtomicU64,
    prefetch: usize,
}

/// `augmentation=dict(...)`: the keys of the user's `data.augmentation`, nothing else.
fn augmentation(d: &Bound<'_, PyDict>) -> PyResult<AugmentationConfig> {
    let mut a = AugmentationConfig::default();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        let value = |what: &str| errors::bad(format!("augmentation[{key:?}]: expected {what}"));
        match key.as_str() {
            "horizontal_flip" => a.horizontal_flip = v.extract().map_err(|_| value("a bool"))?,
            "rotation_degrees" => a.rotation_degrees = v.extract().map_err(|_| value("a number"))?,
            "color_jitter" => {
                let j = v.cast::<PyDict>().map_err(|_| {
                    value("a dict with \"enabled\" and \"strength\"")
                })?;
                a.color_jitter = jitter(j)?;
            }
            _ => {
                return Err(errors::bad(format!(
                    "augmentation: unknown key {key:?}; expected horizontal_flip, rotation_degrees or color_jitter"
                )))
            }
        }
    }
    Ok(a)
}

fn jitter(d: &Bound<'_, PyDict>) -> PyResult<ColorJitterConfig> {
    let mut j = ColorJitterConfig::default();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        let value = |what: &str| {
            errors::bad(format!(
                "augmentation[\"color_jitter\"][{key:?}]: expected {what}"
            ))
        };
        match key.as_str() {
            "enabled" => j.enabled = v.extract().map_err(|_| value("a bool"))?,
            "strength" => j.strength = v.extract().map_err(|_| value("a number"))?,
            _ => {
                return Err(errors::bad(format!(
                "augmentation[\"color_jitter\"]: unknown key {key:?}; expected enabled or strength"
            )))
            }
        }
    }
    Ok(j)
}

/// The pipeline settings checked as the config reader checks them, the message naming
/// the argument (`rotation_degrees` for `data.augmentation.rotation_degrees`).
fn check(s: &PipelineSettings) -> PyResult<()> {
    s.check().map_err(|(key, message)| {
        let arg = ["model.architecture.", "data.loading.", "data."]
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or(key);
        errors::bad(format!("Loader: {arg}: {message}"))
    })?;
    cache::check_image_size(s.image_size).map_err(errors::from_lib)?;
    let bytes = s.batch_size as u128 * s.in_channels as u128 * (s.image_size as u128).pow(2) * 4;
    if bytes > MAX_BATCH_BYTES as u128 {
        return Err(errors::bad(format!(
            "Loader: batch_size: a batch of {} images of {}x{}x{} floats is {bytes} bytes, over the {MAX_BATCH_BYTES}-byte limit",
            s.batch_size, s.in_channels, s.image_size, s.image_size
        )));
    }
    Ok(())
}

struct Where {
    split: String,
    root: PathBuf,
    cache: Option<PathBuf>,
    rank: Option<usize>,
    world_size: Option<usize>,
    prefetch: usize,
}

impl Loader {
    fn build(
        py: Python<'_>,
        manifest: &Bound<'_, Manifest>,
        settings: PipelineSettings,
        augment: bool,
        at: Where,
    ) -> PyResult<Loader> {
        if at.prefetch > MAX_PREFETCH {
            return Err(errors::bad(format!(
                "Loader: prefetch: expected 0 to {MAX_PREFETCH} batches decoded ahead, found {}",
                at.prefetch
            )));
        }
        let loaded = manifest.get().loaded.clone();
        let train = at.split == "train";
        let entries = loaded.list(&at.split)?;
        check(&settings)?;
        let (rank, world_size) = crate::dist::rank_and_size(py, at.rank, at.world_size)?;
        crate::sampler::check_rank(&loaded, rank, world_size)?;
        let mut data = Dataset::new(entries, &at.root);
        if let Some(path) = &at.cache {
            let c = crate::guard::detach(py, || {
                Cache::open(path, &loaded.sha256, settings.image_size)
            })?
            .map_err(errors::from_lib)?;
            data = data.with_cache(Arc::new(c));
        }
        let mut cfg = settings.loader(loaded.manifest.record.seed, train);
        if !augment {
            cfg.augmentation = None;
        }
        Ok(Loader {
            loaded,
            list: at.split,
            data,
            cfg,
            shuffle: settings.shuffle_train,
            shard: Shard { rank, world_size },
            epoch: AtomicU64::new(0),
            prefetch: at.prefetch.max(1),
        })
    }

    /// Positions of this rank's share of the epoch in the list.
    fn positions(&self, py: Python<'_>) -> PyResult<Vec<usize>> {
        if self.list == "train" {
            let req = Request {
                epoch: self.epoch.load(Ordering::Relaxed),
                rank: self.shard.rank,
                world_size: self.shard.world_size,
                shuffle: self.shuffle,
            };
            return crate::sampler::positions(py, &self.loaded, req);
        }
        let all: Vec<usize> = (0..self.data.len()).collect();
        sampler::shard(&all, self.shard.rank, self.shard.world_size)
            .map_err(|e| crate::sampler::error(&self.loaded, e))
    }

    fn samples(&self) -> usize {
        if self.list == "train" {
            sample::epoch_len(&self.loaded.manifest, self.shard.world_size)
        } else {
            sampler::epoch_len(self.data.len(), None, self.shard.world_size)
        }
    }
}

#[pymethods]
impl Loader {
    /// Batches of one list of the manifest. `augmentation` takes the keys of the config's
    /// `data.augmentation` and applies to train only (validation data is never augmented);
    /// `cache` is a file written by `balance-split cache` for this manifest and size.
    #[new]
    #[pyo3(signature = (manifest, split = "train", root = PathBuf::from("."), image_size = 40,
        batch_size = 64, drop_last = false, augmentation = None, in_channels = 3, cache = None,
        rank = None, world_size = None, prefetch = 2, shuffle = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        manifest: &Bound<'_, Manifest>,
        split: &str,
        root: PathBuf,
        image_size: u32,
        batch_size: usize,
        drop_last: bool,
        augmentation: Option<&Bound<'_, PyDict>>,
        in_channels: usize,
        cache: Option<PathBuf>,
        rank: Option<usize>,
        world_size: Option<usize>,
        prefetch: usize,
        shuffle: bool,
    ) -> PyResult<Loader> {
        if augmentation.is_some() && split != "train" {
            return Err(errors::bad(format!(
                "Loader: augmentation applies to train only, not to {split:?} (validation data is never augmented)"
            )));
        }
        let settings = PipelineSettings {
            image_size,
            in_channels,
            batch_size,
            shuffle_train: shuffle,
            drop_last,
            augmentation: augmentation
                .map(self::augmentation)
                .transpose()?
                .unwrap_or_default(),
        };
        let at = Where {
            split: split.to_owned(),
            root,
            cache,
            rank,
            world_size,
            prefetch,
        };
        Loader::build(py, manifest, settings, augmentation.is_some(), at)
    }

    /// The loader the trainer would build from a config: `model.architecture`,
    /// `data.loading` and `data.augmentation` of the YAML at `config`.
    #[staticmethod]
    #[pyo3(signature = (manifest, config, split = "train", root = PathBuf::from("."), cache = None,
        rank = None, world_size = None, prefetch = 2))]
    #[allow(clippy::too_many_arguments)]
    fn from_config(
        py: Python<'_>,
        manifest: &Bound<'_, Manifest>,
        config: PathBuf,
        split: &str,
        root: PathBuf,
        cache: Option<PathBuf>,
        rank: Option<usize>,
        world_size: Option<usize>,
        prefetch: usize,
    ) -> PyResult<Loader> {
        let settings = crate::guard::detach(py, || PipelineSettings::load(&config))?
            .map_err(errors::from_lib)?;
        let at = Where {
            split: split.to_owned(),
            root,
            cache,
            rank,
            world_size,
            prefetch,
        };
        Loader::build(py, manifest, settings, true, at)
    }

    /// The epoch the next iteration loads (its order and its augmentation).
    fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    #[getter]
    fn rank(&self) -> usize {
        self.shard.rank
    }

    #[getter]
    fn world_size(&self) -> usize {
        self.shard.world_size
    }

    #[getter]
    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }

    /// This epoch's batches: `(images, labels)`, images float32 `[B, C, H, W]` in [-1, 1],
    /// labels int64 `[B]`; decoded in parallel, `prefetch` batches ahead.
    fn __iter__(&self, py: Python<'_>) -> PyResult<Batches> {
        let positions = self.positions(py)?;
        let batches = self.data.rank_batches(
            positions,
            self.shard,
            self.epoch.load(Ordering::Relaxed),
            self.cfg.clone(),
            self.prefetch,
        );
        Ok(Batches {
            rx: Mutex::new(batches),
            manifest: self.loaded.path.clone(),
        })
    }

    /// Batches per epoch for this rank.
    fn __len__(&self) -> usize {
        let (n, b) = (self.samples(), self.cfg.batch_size);
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Loader({:?}, {:?}, image_size={}, in_channels={}, batch_size={}, epoch={}, rank={}, world_size={})",
            self.loaded.path.display().to_string(),
            self.list,
            self.cfg.image_size,
            self.cfg.channels,
            self.cfg.batch_size,
            self.epoch.load(Ordering::Relaxed),
            self.shard.rank,
            self.shard.world_size
        )
    }
}

/// One epoch of a [`Loader`]; dropping it stops the background decoding.
#[pyclass(module = "balance_split", name = "Batches")]
pub struct Batches {
    rx: Mutex<Prefetch>,
    manifest: PathBuf,
}

type Item<'py> = (Bound<'py, PyArray4<f32>>, Bound<'py, PyArray1<i64>>);

#[pymethods]
impl Batches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Item<'py>>> {
        let next = crate::guard::detach(py, || {
            self.rx.lock().unwrap_or_else(|e| e.into_inner()).next()
        })?;
        let batch = match next {
            None => return Ok(None),
            Some(Err(e @ balance_split::images::loader::LoadError::OutOfMemory { .. })) => {
                return Err(errors::Error::new_err(format!(
                    "{}: {e}",
                    self.manifest.display()
                )));
            }
            Some(Err(e)) => {
                return Err(errors::bad(format!("{}: {e}", self.manifest.display())));
            }
            Some(Ok(b)) => b,
        };
        // The batch's own buffer becomes the array's: no copy.
        let images = batch.images.into_pyarray(py).reshape(batch.shape)?;
        let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
        Ok(Some((images, labels.into_pyarray(py))))
    }
}

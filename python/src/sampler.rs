//! `balance_split.EpochSampler`: `balance-split sample` as a `torch.utils.data.Sampler`
//! (`__iter__`, `__len__`, `set_epoch`, as `DistributedSampler`). Epoch k of rank r is a
//! pure function of (manifest, k, r, world size), so every rank draws its own share of
//! the same epoch without talking to the others.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList};

use balance_split::sample::{self, Request};
use balance_split::sampler;

use crate::errors;
use crate::manifest::{Loaded, Manifest};

/// Frozen, its epoch atomic: shared between threads (a DataLoader's, or the user's own), it
/// works, `set_epoch` from one while another iterates included.
#[pyclass(module = "balance_split", name = "EpochSampler", frozen)]
pub struct EpochSampler {
    loaded: Arc<Loaded>,
    shuffle: bool,
    rank: usize,
    world_size: usize,
    epoch: AtomicU64,
}

/// A sampler error as the CLI words it (`balance-split sample`'s, naming the manifest).
pub fn error(loaded: &Loaded, source: sampler::SamplerError) -> PyErr {
    errors::from_lib(balance_split::sample::SampleError::Sampler {
        manifest: loaded.path.clone(),
        source,
    })
}

/// Checks the rank against the world size with the CLI's message.
pub fn check_rank(loaded: &Loaded, rank: usize, world_size: usize) -> PyResult<()> {
    sampler::shard(&[], rank, world_size)
        .map(drop)
        .map_err(|e| error(loaded, e))
}

/// The train positions of one epoch for one rank, as `balance-split sample` prints them.
pub fn positions(py: Python<'_>, loaded: &Loaded, req: Request) -> PyResult<Vec<usize>> {
    crate::guard::detach(py, || sample::positions(&loaded.manifest, req))?
        .map_err(|e| error(loaded, e))
}

impl EpochSampler {
    fn request(&self) -> Request {
        Request {
            epoch: self.epoch.load(Ordering::Relaxed),
            rank: self.rank,
            world_size: self.world_size,
            shuffle: self.shuffle,
        }
    }
}

#[pymethods]
impl EpochSampler {
    /// `rank` and `world_size` default to torch.distributed's when a process group is
    /// initialised, else to a single process.
    #[new]
    #[pyo3(signature = (manifest, shuffle = true, rank = None, world_size = None))]
    fn new(
        py: Python<'_>,
        manifest: &Bound<'_, Manifest>,
        shuffle: bool,
        rank: Option<usize>,
        world_size: Option<usize>,
    ) -> PyResult<EpochSampler> {
        let loaded = manifest.get().loaded.clone();
        let (rank, world_size) = crate::dist::rank_and_size(py, rank, world_size)?;
        check_rank(&loaded, rank, world_size)?;
        Ok(EpochSampler {
            loaded,
            shuffle,
            rank,
            world_size,
            epoch: AtomicU64::new(0),
        })
    }

    /// The epoch the next iteration draws (as `DistributedSampler.set_epoch`).
    fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    #[getter]
    fn rank(&self) -> usize {
        self.rank
    }

    #[getter]
    fn world_size(&self) -> usize {
        self.world_size
    }

    #[getter]
    fn shuffle(&self) -> bool {
        self.shuffle
    }

    /// This epoch's positions in the manifest's train list for this rank, as int64.
    fn indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        // Converted with the GIL released too: a gigabyte at 2^27 positions.
        let (loaded, request) = (&self.loaded, self.request());
        let p = crate::guard::detach(py, || {
            sample::positions(&loaded.manifest, request)
                .map(|p| p.into_iter().map(|i| i as i64).collect::<Vec<_>>())
        })?
        .map_err(|e| error(loaded, e))?;
        Ok(p.into_pyarray(py))
    }

    /// Iterates this epoch's positions as Python ints (drawn in one go, GIL released).
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        let p = positions(py, &self.loaded, self.request())?;
        PyList::new(py, p)?.try_iter()
    }

    /// Positions per rank: the epoch padded to a multiple of the world size, divided by it.
    fn __len__(&self) -> usize {
        sample::epoch_len(&self.loaded.manifest, self.world_size)
    }

    fn __repr__(&self) -> String {
        format!(
            "EpochSampler({:?}, epoch={}, rank={}, world_size={}, shuffle={})",
            self.loaded.path.display().to_string(),
            self.epoch.load(Ordering::Relaxed),
            self.rank,
            self.world_size,
            if self.shuffle { "True" } else { "False" }
        )
    }
}

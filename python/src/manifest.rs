//! `balance_split.Manifest`: a manifest read and validated as the CLI reads it, its
//! lists exposed as Python lists and read-only NumPy arrays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use balance_split::manifest::Manifest as Parsed;
use balance_split::split::Entry;
use balance_split::{input, Error};

use crate::errors;

/// What the sampler and the loader share: the parsed manifest, owned.
pub struct Loaded {
    pub path: PathBuf,
    /// Of the file's bytes: what a decoded-image cache is tied to.
    pub sha256: String,
    pub manifest: Parsed<'static>,
}

impl Loaded {
    fn read(path: &Path) -> Result<Loaded, Error> {
        let bytes = input::read(path)?;
        let text = input::text(&bytes, path)?;
        let manifest = Parsed::parse(text, path)?.into_owned();
        Ok(Loaded {
            path: path.to_owned(),
            sha256: input::sha256_hex(&bytes),
            manifest,
        })
    }

    /// One of the lists by its name in the split file.
    pub fn list(&self, name: &str) -> PyResult<&[Entry<'static>]> {
        let s = &self.manifest.split;
        let list = match name {
            "train" => Some(&s.train),
            "val" => s.val.as_ref(),
            "test" => s.test.as_ref(),
            other => {
                return Err(errors::bad(format!(
                    "split must be \"train\", \"val\" or \"test\", found {other:?}"
                )))
            }
        };
        list.map(Vec::as_slice)
            .ok_or_else(|| errors::bad(format!("{}: has no {name} list", self.path.display())))
    }
}

/// A balanced manifest (what `balance-split balance` writes), validated as the CLI
/// validates it.
#[pyclass(module = "balance_split", name = "Manifest", frozen)]
pub struct Manifest {
    pub loaded: Arc<Loaded>,
    /// Made once, read-only: `train_labels` hands out the same array without a copy.
    train_labels: Py<PyArray1<i64>>,
}

fn labels_array<'py>(py: Python<'py>, list: &[Entry]) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let labels: Vec<i64> = list.iter().map(|e| i64::from(e.label)).collect();
    let array = labels.into_pyarray(py);
    let flags = PyDict::new(py);
    flags.set_item("write", false)?;
    array.call_method("setflags", (), Some(&flags))?;
    Ok(array)
}

impl Manifest {
    pub fn open(py: Python<'_>, path: PathBuf) -> PyResult<Manifest> {
        let loaded = crate::guard::detach(py, || Loaded::read(&path))?.map_err(errors::from_lib)?;
        let train_labels = labels_array(py, &loaded.manifest.split.train)?.unbind();
        Ok(Manifest {
            loaded: Arc::new(loaded),
            train_labels,
        })
    }
}

#[pymethods]
impl Manifest {
    /// Reads and validates the manifest at `path`.
    #[staticmethod]
    #[pyo3(name = "open")]
    fn py_open(py: Python<'_>, path: PathBuf) -> PyResult<Manifest> {
        Manifest::open(py, path)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.loaded.path.clone()
    }

    /// sha256 of the manifest file's bytes.
    #[getter]
    fn sha256(&self) -> &str {
        &self.loaded.sha256
    }

    /// `balancing.strategy`: the strategy that was applied.
    #[getter]
    fn strategy(&self) -> &str {
        &self.loaded.manifest.record.strategy
    }

    /// `balancing.seed`: every epoch's order derives from it.
    #[getter]
    fn seed(&self) -> u64 {
        self.loaded.manifest.record.seed
    }

    /// Class names indexed by label.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.loaded.manifest.split.classes.clone()
    }

    /// `balancing.warnings`: what the planner warned about when it wrote the manifest.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.loaded.manifest.record.warnings.clone()
    }

    /// The split file the manifest was made from, as recorded.
    #[getter]
    fn split_file(&self) -> &str {
        &self.loaded.manifest.record.source.split_file
    }

    /// Labels of the (balanced) train list, int64, read-only.
    #[getter]
    fn train_labels<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.train_labels.bind(py).clone()
    }

    /// Paths of the (balanced) train list, as the split names them.
    #[getter]
    fn train_paths(&self) -> Vec<String> {
        paths(&self.loaded.manifest.split.train)
    }

    /// `balancing.loss.class_weights` (float64, one per class) or None when the loss is
    /// not weighted.
    #[getter]
    fn loss_weights<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        let loss = self.loaded.manifest.record.loss.as_ref()?;
        Some(loss.class_weights.clone().into_pyarray(py))
    }

    /// `balancing.sampler.class_weights` or None when the strategy is not the weighted
    /// sampler.
    #[getter]
    fn sampler_weights<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        let s = self.loaded.manifest.record.sampler.as_ref()?;
        Some(s.class_weights.clone().into_pyarray(py))
    }

    /// How many entries at the end of the train list are synthetic (0 without synthetic
    /// augmentation); the real ones come first.
    #[getter]
    fn synthetic_count(&self) -> usize {
        let m = &self.loaded.manifest;
        m.split.train.len() - m.record.real_entries()
    }

    /// Paths of the list `split` ("train", "val" or "test").
    fn paths(&self, split: &str) -> PyResult<Vec<String>> {
        Ok(paths(self.loaded.list(split)?))
    }

    /// Labels of the list `split` ("train", "val" or "test"), int64.
    fn labels<'py>(&self, py: Python<'py>, split: &str) -> PyResult<Bound<'py, PyArray1<i64>>> {
        labels_array(py, self.loaded.list(split)?)
    }

    /// The number of train entries.
    fn __len__(&self) -> usize {
        self.loaded.manifest.split.train.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Manifest({:?}, strategy={:?}, seed={}, train={})",
            self.loaded.path.display().to_string(),
            self.loaded.manifest.record.strategy,
            self.loaded.manifest.record.seed,
            self.loaded.manifest.split.train.len()
        )
    }
}

fn paths(list: &[Entry]) -> Vec<String> {
    list.iter().map(|e| e.path.to_string()).collect()
}

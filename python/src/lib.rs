//! `balance_split._native`: the library's jobs as Python objects.
//!
//! Nothing is decided here. Every number comes from the `balance_split` crate, through the
//! same functions the CLI calls, so Python and the CLI agree by construction; this crate
//! only converts (paths, lists, NumPy arrays, exceptions). Work that takes time (balancing,
//! drawing an epoch, decoding a batch) runs with the GIL released.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

// The `balance-split` program itself, compiled in from the CLI's sources so that the
// command the wheel installs is the same clap program, not a copy of it.
#[path = "../../src/cli/mod.rs"]
mod cli;
mod convert;
mod dist;
mod errors;
mod guard;
mod loader;
mod manifest;
mod sampler;

/// Balance a config's split and write the manifest, exactly as `balance-split balance`
/// does (same bytes); returns the written manifest. `overrides` maps dotted keys to
/// values, as `--dotted.key value` on the command line (the user's rules: applied before
/// the config is read, a key not in the config refused).
#[pyfunction]
#[pyo3(signature = (config, split = None, seed = None, out = None, overrides = None))]
fn balance(
    py: Python<'_>,
    config: PathBuf,
    split: Option<PathBuf>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    overrides: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<manifest::Manifest> {
    let overrides = match overrides {
        Some(d) => convert::overrides(d)?,
        None => Default::default(),
    };
    let req = balance_split::balance::Request {
        config,
        split,
        seed,
        out,
        dry_run: false,
        fsync: false,
        overrides,
    };
    let outcome =
        guard::detach(py, || balance_split::balance::run(&req))?.map_err(errors::from_lib)?;
    manifest::Manifest::open(py, outcome.out_path)
}

/// The `balance-split` command: runs the CLI on `argv` (program name first) and returns
/// its exit status. As a command it owns the process, so Ctrl-C removes its temporary
/// files as the binary's does.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> PyResult<u8> {
    balance_split::output::set_signal_cleanup(true);
    guard::detach(py, || cli::main(argv))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Inside Python, Ctrl-C is Python's KeyboardInterrupt; the library must not take the
    // signal (a file being written is still removed: the writer cleans up on error).
    balance_split::output::set_signal_cleanup(false);
    let py = m.py();
    // NumPy's C API, imported now: imported lazily, at the first array after work that
    // released the GIL, a Ctrl-C pending then made the import fail inside rust-numpy, which
    // panics (a PanicException instead of KeyboardInterrupt).
    numpy::PyArray1::<i64>::zeros(py, 0, false);
    m.add("Error", py.get_type::<errors::Error>())?;
    m.add("BadInput", py.get_type::<errors::BadInput>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<manifest::Manifest>()?;
    m.add_class::<sampler::EpochSampler>()?;
    m.add_class::<loader::Loader>()?;
    m.add_class::<loader::Batches>()?;
    m.add_function(wrap_pyfunction!(balance, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    Ok(())
}

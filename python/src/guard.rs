//! The boundary between Python and the library's work: the GIL released while the work
//! runs, a Rust panic turned into `balance_split.Error` (never a `PanicException`, which is
//! a `BaseException` that `except Exception` does not catch), and a Ctrl-C that arrived
//! meanwhile raised as Python's own `KeyboardInterrupt` as soon as the work returns.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use crate::errors;

/// Runs `work` with the GIL released; see the module documentation.
pub fn detach<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    // A signal that came while the GIL was released is Python's to raise, now.
    py.check_signals()?;
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        errors::Error::new_err(format!(
            "internal error (a bug of balance-split, please report it): {message}"
        ))
    })
}

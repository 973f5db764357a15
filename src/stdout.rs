//! Standard output and error for the binaries (`balance-split`, `diffusion-train`).
//!
//! `println!` panics when stdout is a closed pipe or a full disk (exit 101, after the work
//! was done). Here a write failure becomes an error value: a closed pipe (`| head`) ends
//! the program quietly with success, as `sample` always did; anything else (a full disk)
//! is one `error:` line and exit 1.

use std::fmt::Display;
use std::io::{self, Write};

/// A write to standard output failed.
#[derive(Debug, thiserror::Error)]
#[error("standard output: {0}")]
pub struct StdoutError(#[from] pub io::Error);

impl StdoutError {
    /// The reader went away: nothing is wrong with what we did.
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Prints `text` followed by a newline, and flushes.
pub fn line(text: impl Display) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(out.flush()?)
}

/// Prints `text` as it is (a rendered table that ends in its own newline), and flushes.
pub fn text(text: &str) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(out.flush()?)
}

/// Prints pretty JSON and a newline.
pub fn json<T: serde::Serialize>(value: &T) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(out.flush()?)
}

/// A line on standard error. A failure to write it is ignored: there is nowhere left to
/// report it, and the exit code still tells.
pub fn note(text: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

//! Reading the user's input files.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::split::SplitError;

/// Opens a split or manifest, with an error that names the file.
pub fn read(path: &Path) -> Result<Input, SplitError> {
    Input::open(path).map_err(|source| SplitError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The file's bytes as text, or an error that names the file.
pub fn text<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, SplitError> {
    std::str::from_utf8(bytes).map_err(|e| SplitError::Json {
        path: path.to_owned(),
        message: format!("not UTF-8 text: {e}"),
    })
}

/// A file's bytes: memory-mapped when it is a regular file (a 900 MB split is then
/// read without first copying it into fresh memory, which costs more than parsing half
/// of it), read into memory otherwise (pipes, /dev/stdin).
pub enum Input {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Input {
    pub fn open(path: &Path) -> std::io::Result<Input> {
        let file = fs::File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is read-only and lives only for this command. If another
            // process truncates the file meanwhile we may fault; if it rewrites it, the
            // parse sees mixed bytes and the sha256 in the manifest will not match the file
            // (balance-split verify would report it). The user's input files are never
            // written by us.
            return Ok(Input::Mapped(unsafe { memmap2::Mmap::map(&file)? }));
        }
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut v)?;
        Ok(Input::Read(v))
    }
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Read(v) => v,
        }
    }
}

/// Lower-case hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `path` relative to `root`, without a leading `./` when the root is the current
/// directory (so messages show the path as the user wrote it).
pub fn under(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new(".") {
        path.to_owned()
    } else {
        root.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_current_directory_stay_as_written() {
        let p = Path::new("splits/example/images/a.png");
        assert_eq!(under(Path::new("."), p), p);
        assert_eq!(
            under(Path::new("/data"), p),
            Path::new("/data/splits/example/images/a.png")
        );
    }
}

//! Reading the user's input files.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::split::SplitError;

/// The largest split or manifest read, in bytes. A 10-million-entry manifest is about
/// 1 GB; the bound keeps a wrong path (a disk image, a 40 GB sparse file) from becoming
/// an allocation of its size.
pub const MAX_INPUT_BYTES: u64 = 8 << 30;

/// Opens a split or manifest, with an error that names the file.
///
/// Read into memory, not memory-mapped: a map turns another process truncating the file
/// while we read it (a script rewriting the split with `open(path, "w")`) into SIGBUS,
/// which kills the process without a message. Read, a file changing underneath gives the
/// old bytes, the new ones or a mixture; a mixture fails to parse, or parses and no longer
/// matches the sha256 the manifest records (`verify` reports it).
pub fn read(path: &Path) -> Result<Vec<u8>, SplitError> {
    read_bounded(path, MAX_INPUT_BYTES).map_err(|source| SplitError::Read {
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

/// Reads at most `limit` bytes of `path` (a regular file, a pipe, `/dev/stdin`); more is
/// an error naming the limit, found before anything of that size is allocated.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(Error::new(ErrorKind::IsADirectory, "is a directory"));
    }
    read_at_most(&file, &meta, limit)?.map_err(|_| {
        Error::new(
            ErrorKind::InvalidData,
            format!("larger than the {limit}-byte limit for this kind of file"),
        )
    })
}

/// An open file's bytes when there are at most `limit` of them, else `Err(size)` (the
/// size seen: from `fstat`, or as far as the read got). The size is only a hint for the
/// first allocation, since the file may grow or shrink meanwhile; the limit holds
/// whatever it does.
pub fn read_at_most(
    file: &fs::File,
    meta: &fs::Metadata,
    limit: u64,
) -> std::io::Result<Result<Vec<u8>, u64>> {
    use std::io::Read;
    let hint = if meta.is_file() { meta.len() } else { 0 };
    if hint > limit {
        return Ok(Err(hint));
    }
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(if bytes.len() as u64 > limit {
        Err(bytes.len() as u64)
    } else {
        Ok(bytes)
    })
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

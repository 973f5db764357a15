//! The decoded cache: every distinct image of a manifest, decoded and resized once, as raw
//! RGB bytes in one file that training reads image by image, so epochs do not decode again.
//!
//! Read with positioned reads (`pread`), never memory-mapped: a map turns a cache file
//! truncated in place by another process into SIGBUS, which kills the process (a Python
//! loader included) without a message. Read, a truncated cache is an error naming the
//! image and the file.
//!
//! Layout (little-endian):
//!
//! ```text
//! "BSCACHE1" | header length: u32 | header: JSON | zero padding to a multiple of 64 | pixels
//! header = {"version": 1, "manifest_sha256", "image_size", "channels": 3, "classes", "paths"}
//! pixels = for each path in order: image_size * image_size * 3 bytes, RGB, row-major
//! ```
//!
//! The header names the manifest's SHA-256; a loader refuses a cache made from another
//! manifest (or another image size) instead of silently training on stale pixels.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decode::{self, Problem};
use crate::input;
use crate::manifest::{Manifest, ManifestError};
use crate::output::{check_destination, write_atomically, DestinationError, WriteError};
use crate::split::SplitError;

const MAGIC: &[u8; 8] = b"BSCACHE1";
const VERSION: u32 = 1;
const ALIGN: usize = 64;

/// Why a cache cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: not a balance-split image cache ({reason})")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: stale cache: it was made from a manifest with sha256 {found}, not {expected}; run balance-split cache again")]
    Stale {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: the cache holds {found}x{found} images but {expected}x{expected} are needed; run balance-split cache --image-size {expected}")]
    Size {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    #[error("{manifest}: {index} ({path}): {problem}")]
    Image {
        manifest: PathBuf,
        index: String,
        path: String,
        problem: Problem,
    },
    #[error("--image-size: expected 1 to {MAX_IMAGE_SIDE}, found {0}")]
    ImageSize(u32),
    #[error("{manifest}: too many image paths for one cache ({bytes} bytes of header)")]
    TooManyPaths { manifest: PathBuf, bytes: usize },
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl CacheError {
    /// 2 for bad input, 1 when the cache could not be written.
    pub fn exit_code(&self) -> i32 {
        match self {
            CacheError::Write(_) => 1,
            _ => 2,
        }
    }
}

/// The JSON header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub manifest_sha256: String,
    pub image_size: u32,
    pub channels: u32,
    pub classes: Vec<String>,
    pub paths: Vec<String>,
}

/// A cache opened for reading: its checked header, and the open file the pixels are read
/// from.
#[derive(Debug)]
pub struct Cache {
    pub header: Header,
    path: PathBuf,
    file: std::fs::File,
    data_start: u64,
    slots: HashMap<String, usize>,
}

/// What `balance-split cache` did.
#[derive(Clone, Debug, Serialize)]
pub struct Written {
    pub images: usize,
    pub bytes: u64,
    pub out: PathBuf,
}

/// The largest side `cache` and the loader resize to: 4096 x 4096 RGB is 48 MiB an image,
/// far above what a diffusion model of this kind trains on.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// Images decoded at once before their pixels are written: bounds the memory a cache of
/// any size takes to build.
const CHUNK: usize = 512;

/// Refuses an image size of 0 or above [`MAX_IMAGE_SIDE`], naming the option.
pub fn check_image_size(image_size: u32) -> Result<(), CacheError> {
    if (1..=MAX_IMAGE_SIDE).contains(&image_size) {
        Ok(())
    } else {
        Err(CacheError::ImageSize(image_size))
    }
}

/// Builds the cache of `manifest` into `out`.
pub fn build(
    manifest: &Path,
    root: &Path,
    image_size: u32,
    out: &Path,
) -> Result<Written, CacheError> {
    check_image_size(image_size)?;
    check_destination(out, &[manifest])?;
    let bytes = input::read(manifest)?;
    let sha = input::sha256_hex(&bytes);
    let m = Manifest::parse(input::text(&bytes, manifest)?, manifest)?;
    let paths = m.split.distinct_paths();
    let header = Header {
        version: VERSION,
        manifest_sha256: sha,
        image_size,
        channels: 3,
        classes: m.split.classes.clone(),
        paths: paths.iter().map(|&(p, _, _)| p.to_string()).collect(),
    };
    let head = serde_json::to_vec(&header).expect("plain data");
    let used = MAGIC.len() + 4 + head.len();
    let pad = used.div_ceil(ALIGN) * ALIGN - used;
    let per_image = (image_size as usize).pow(2) * 3;
    let total = (used + pad) as u64 + paths.len() as u64 * per_image as u64;
    let head_len = u32::try_from(head.len()).map_err(|_| CacheError::TooManyPaths {
        manifest: manifest.to_owned(),
        bytes: head.len(),
    })?;
    // The first failing image, in manifest order, stops the write and is the error.
    let mut failed: Option<CacheError> = None;
    let written = write_atomically(out, false, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&head_len.to_le_bytes())?;
        w.write_all(&head)?;
        w.write_all(&vec![0u8; pad])?;
        for chunk in paths.chunks(CHUNK) {
            let pixels: Vec<Result<Vec<u8>, CacheError>> = chunk
                .par_iter()
                .map(|&(p, list, i)| {
                    let fail = |problem| CacheError::Image {
                        manifest: manifest.to_owned(),
                        index: format!("{list}[{i}]"),
                        path: p.to_string(),
                        problem,
                    };
                    // The loader's own decode, so cached pixels equal uncached ones exactly.
                    decode::read(&root.join(p))
                        .and_then(|b| decode::decode_resized(&b, image_size))
                        .map(image::RgbImage::into_raw)
                        .map_err(fail)
                })
                .collect();
            for p in pixels {
                match p {
                    Ok(p) => w.write_all(&p)?,
                    Err(e) => {
                        failed = Some(e);
                        return Err(std::io::Error::other("an image failed"));
                    }
                }
            }
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    written?;
    Ok(Written {
        images: paths.len(),
        bytes: total,
        out: out.to_owned(),
    })
}

impl Cache {
    /// Opens a cache and checks it was made from the manifest whose bytes hash to
    /// `manifest_sha256`, at `image_size`. Every header field is checked before anything
    /// of its size is allocated, and the file's size against what the header describes.
    pub fn open(path: &Path, manifest_sha256: &str, image_size: u32) -> Result<Cache, CacheError> {
        let format = |reason: &str| CacheError::Format {
            path: path.to_owned(),
            reason: reason.to_string(),
        };
        let file = std::fs::File::open(path).map_err(|e| format(&e.to_string()))?;
        let size = file.metadata().map_err(|e| format(&e.to_string()))?.len();
        let mut fixed = [0u8; 12];
        read_at(&file, &mut fixed, 0).map_err(|_| format("shorter than its 12-byte preamble"))?;
        if &fixed[..8] != MAGIC {
            return Err(format("bad magic number"));
        }
        let len = u64::from(u32::from_le_bytes(
            fixed[8..12].try_into().expect("4 bytes"),
        ));
        if 12 + len > size {
            return Err(format(&format!(
                "its header claims {len} bytes but the file has {size}"
            )));
        }
        let mut head = vec![0u8; len as usize];
        read_at(&file, &mut head, 12).map_err(|e| format(&e.to_string()))?;
        let header: Header = serde_json::from_slice(&head).map_err(|e| format(&e.to_string()))?;
        if header.version != VERSION {
            return Err(format(&format!(
                "version {} (this balance-split reads {VERSION})",
                header.version
            )));
        }
        if header.channels != 3 {
            return Err(format(&format!(
                "header: channels is {}; a cache holds RGB images (3)",
                header.channels
            )));
        }
        if !(1..=MAX_IMAGE_SIDE).contains(&header.image_size) {
            return Err(format(&format!(
                "header: image_size is {}; expected 1 to {MAX_IMAGE_SIDE}",
                header.image_size
            )));
        }
        if header.manifest_sha256 != manifest_sha256 {
            return Err(CacheError::Stale {
                path: path.to_owned(),
                expected: manifest_sha256.to_string(),
                found: header.manifest_sha256,
            });
        }
        if header.image_size != image_size {
            return Err(CacheError::Size {
                path: path.to_owned(),
                expected: image_size,
                found: header.image_size,
            });
        }
        let data_start = (12 + len).div_ceil(ALIGN as u64) * ALIGN as u64;
        let need = (header.paths.len() as u64)
            .checked_mul(Self::image_bytes(&header) as u64)
            .and_then(|n| n.checked_add(data_start));
        if need != Some(size) {
            return Err(format(&format!(
                "{size} bytes, but its header describes {}",
                need.map_or_else(|| "more than 2^64".into(), |n| n.to_string())
            )));
        }
        let mut slots = HashMap::with_capacity(header.paths.len());
        for (i, p) in header.paths.iter().enumerate() {
            if slots.insert(p.clone(), i).is_some() {
                return Err(format(&format!("header: the path {p:?} is listed twice")));
            }
        }
        Ok(Cache {
            header,
            path: path.to_owned(),
            file,
            data_start,
            slots,
        })
    }

    fn image_bytes(h: &Header) -> usize {
        (h.image_size as usize).pow(2) * h.channels as usize
    }

    /// Where `path`'s pixels are, if the cache holds it.
    pub fn slot(&self, path: &str) -> Option<usize> {
        self.slots.get(path).copied()
    }

    /// The RGB pixels at `slot` (from [`Cache::slot`]), read from the file. A file
    /// truncated or rewritten since it was opened fails here, naming it.
    pub fn pixels_at(&self, slot: usize) -> Result<Vec<u8>, Problem> {
        let n = Self::image_bytes(&self.header);
        let mut out = vec![0u8; n];
        read_at(&self.file, &mut out, self.data_start + (slot * n) as u64).map_err(|e| {
            Problem::Truncated(format!(
                "the cache {} no longer holds this image ({e}); run balance-split cache again",
                self.path.display()
            ))
        })?;
        Ok(out)
    }
}

/// `buf.len()` bytes at `offset`, without moving a shared file position (threads read
/// images of one cache at once).
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    }
}

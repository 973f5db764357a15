//! `check-leaks`: the same image, or nearly the same, on two sides of a split.
//!
//! Every distinct image file is decoded once, in parallel, and fingerprinted three ways:
//! the SHA-256 of its bytes (the same file), the SHA-256 of its decoded RGB pixels with the
//! size (a PNG and its lossless re-encode), and a 64-bit perceptual hash (a re-saved JPEG, a
//! resized or slightly shifted copy). Pairs are then found without comparing all pairs:
//! exact ones by grouping equal digests, near ones through [`index::pairs_within`].
//!
//! The perceptual hash is the DCT pHash of Krawetz's "Looks like it", with the settings of
//! the `imagehash` Python package (which `imagededup` also uses): the image to 8-bit
//! luma (PIL's `L`, ITU-R 601 weights), resized (Lanczos3) to 32x32, a 2-D DCT-II, the 8x8
//! lowest frequencies, each bit set when its coefficient is above their median. Low DCT
//! frequencies survive JPEG quantisation and resampling, which is what leaks look like;
//! a mirror image changes their signs, so flips are not matched. `image_hasher` was
//! measured first: it fixes the DCT at twice the hash size (16x16, so the 8x8 block reaches
//! mid frequencies) and distinct images collided far more often; the transform itself is
//! `rustdct`'s.
//!
//! For a manifest the entries are its distinct source entries: an upsampled duplicate in
//! `train` is the same entry, not a leak.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use image::imageops::FilterType;
use rayon::prelude::*;
use rustdct::DctPlanner;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::images::check::Bad;
use crate::images::decode::{self, Problem};
use crate::input;
use crate::split::Split;

pub mod index;
pub mod report;

/// The default largest Hamming distance between two pHashes reported as a near duplicate,
/// chosen from the measurements in `tests/leaks_quality.rs` (README has the table).
pub const DEFAULT_THRESHOLD: u32 = 8;

/// The largest threshold accepted: beyond a quarter of the bits, unrelated images match.
pub const MAX_THRESHOLD: u32 = 16;

/// What to check.
#[derive(Clone, Debug)]
pub struct Request {
    pub file: PathBuf,
    /// Image paths are resolved against this directory.
    pub root: PathBuf,
    pub threshold: u32,
    /// Also report duplicates inside one list.
    pub within: bool,
}

/// How two entries are the same image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "distance", rename_all = "snake_case")]
pub enum Kind {
    /// The same bytes (the same file, or a copy of it).
    IdenticalBytes,
    /// Different files, the same decoded pixels.
    IdenticalPixels,
    /// pHashes this many bits apart.
    Near(u32),
}

/// One side of a pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub list: &'static str,
    pub index: usize,
    pub path: String,
    pub label: u32,
    pub class: String,
}

/// Two entries holding the same (or nearly the same) image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub a: Side,
    pub b: Side,
    #[serde(flatten)]
    pub kind: Kind,
    /// The two entries carry different labels: the same image under two classes.
    pub label_conflict: bool,
}

impl Pair {
    pub fn crosses_lists(&self) -> bool {
        self.a.list != self.b.list
    }
}

/// The verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub file: PathBuf,
    /// Distinct image files decoded.
    pub images: usize,
    pub threshold: u32,
    pub within: bool,
    /// Label conflicts first, then across lists before within, then by kind and position.
    pub pairs: Vec<Pair>,
    /// Files that could not be used (as `check-images` reports them); they are skipped.
    pub unreadable: Vec<Bad>,
    /// Cross-list pairs per list pair (`"train-test"`) and per class of the first side.
    pub by_lists: BTreeMap<String, usize>,
    pub by_class: BTreeMap<String, usize>,
}

impl Report {
    /// Pairs whose two sides are in different lists.
    pub fn leaks(&self) -> usize {
        self.pairs.iter().filter(|p| p.crosses_lists()).count()
    }
}

/// One image's fingerprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub bytes: [u8; 32],
    pub pixels: [u8; 32],
    pub phash: u64,
}

/// The fingerprints of one image file's bytes.
pub fn fingerprint(bytes: &[u8]) -> Result<Fingerprint, Problem> {
    let (img, _) = decode::decode(bytes)?;
    let rgb = decode::into_rgb8(img);
    let mut h = Sha256::new();
    h.update(rgb.width().to_le_bytes());
    h.update(rgb.height().to_le_bytes());
    h.update(rgb.as_raw());
    Ok(Fingerprint {
        bytes: Sha256::digest(bytes).into(),
        pixels: h.finalize().into(),
        phash: phash(&rgb),
    })
}

/// The 64-bit DCT pHash (see the module docs); bit 63 is the DC coefficient, then row by
/// row.
pub fn phash(img: &image::RgbImage) -> u64 {
    const N: usize = 32;
    let luma = image::GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let [r, g, b] = img.get_pixel(x, y).0.map(u32::from);
        // PIL's convert("L"): (299 R + 587 G + 114 B) / 1000, rounded.
        image::Luma([((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8])
    });
    let small = image::imageops::resize(&luma, N as u32, N as u32, FilterType::Lanczos3);
    let mut m: Vec<f32> = small.pixels().map(|p| f32::from(p[0])).collect();
    let dct = DctPlanner::new().plan_dct2(N);
    // Rows, then columns (through a transpose and back).
    for row in m.chunks_exact_mut(N) {
        dct.process_dct2(row);
    }
    let mut t = vec![0f32; N * N];
    for y in 0..N {
        for x in 0..N {
            t[x * N + y] = m[y * N + x];
        }
    }
    for col in t.chunks_exact_mut(N) {
        dct.process_dct2(col);
    }
    // t[x][y] now holds frequency (row y, column x); take rows 0..8, columns 0..8.
    let low: Vec<f32> = (0..8)
        .flat_map(|y| (0..8).map(move |x| (x, y)))
        .map(|(x, y)| t[x * N + y])
        .collect();
    let mut sorted = low.clone();
    sorted.sort_by(f32::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    low.iter()
        .fold(0u64, |h, &v| h << 1 | u64::from(v > median))
}

/// Runs the check; `total` is told how many files there are, `progress` after each one.
pub fn run(
    req: &Request,
    total: impl FnOnce(usize),
    progress: impl Fn() + Sync,
) -> Result<Report, Error> {
    if req.threshold > MAX_THRESHOLD {
        return Err(Error::Usage(format!(
            "--threshold: expected 0 to {MAX_THRESHOLD} bits, found {}",
            req.threshold
        )));
    }
    let bytes = input::read(&req.file)?;
    let text = input::text(&bytes, &req.file)?;
    let (split, _) = Split::parse_with_balancing(text, &req.file)?;

    // Each list's distinct entries (a manifest repeats upsampled ones).
    let mut sides: Vec<Side> = Vec::new();
    for (list, entries) in split.lists() {
        let mut seen = std::collections::HashSet::new();
        for (index, e) in entries.iter().enumerate() {
            if seen.insert(&*e.path) {
                sides.push(Side {
                    list,
                    index,
                    path: e.path.to_string(),
                    label: e.label,
                    class: split.classes[e.label as usize].clone(),
                });
            }
        }
    }
    let files = split.distinct_paths();
    total(files.len());
    let prints: Vec<Result<Fingerprint, Problem>> = files
        .par_iter()
        .map(|(path, _, _)| {
            let r = decode::read(&input::under(&req.root, std::path::Path::new(path)))
                .and_then(|b| fingerprint(&b));
            progress();
            r
        })
        .collect();
    let mut by_path: HashMap<&str, Fingerprint> = HashMap::new();
    let mut unreadable = Vec::new();
    for (&(path, list, index), r) in files.iter().zip(prints) {
        match r {
            Ok(f) => {
                by_path.insert(path, f);
            }
            Err(problem) => unreadable.push(Bad {
                list: list.to_string(),
                index,
                path: path.to_string(),
                problem,
            }),
        }
    }
    let usable: Vec<(&Side, Fingerprint)> = sides
        .iter()
        .filter_map(|s| by_path.get(s.path.as_str()).map(|f| (s, *f)))
        .collect();
    let wanted = |i: usize, j: usize| req.within || usable[i].0.list != usable[j].0.list;
    let mut found: Vec<(usize, usize, Kind)> = Vec::new();

    // Exact: equal pixel digests.
    let mut groups: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for (i, (_, f)) in usable.iter().enumerate() {
        groups.entry(f.pixels).or_default().push(i);
    }
    for members in groups.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if wanted(i, j) {
                    let kind = if usable[i].1.bytes == usable[j].1.bytes {
                        Kind::IdenticalBytes
                    } else {
                        Kind::IdenticalPixels
                    };
                    found.push((i, j, kind));
                }
            }
        }
    }
    // Near: pHashes within the threshold, pixel-identical pairs already counted.
    let hashes: Vec<u64> = usable.iter().map(|(_, f)| f.phash).collect();
    for (i, j, d) in index::pairs_within(&hashes, req.threshold, |i, j| {
        wanted(i, j) && usable[i].1.pixels != usable[j].1.pixels
    }) {
        found.push((i, j, Kind::Near(d)));
    }

    let mut pairs: Vec<Pair> = found
        .into_iter()
        .map(|(i, j, kind)| {
            let (a, b) = (usable[i].0.clone(), usable[j].0.clone());
            let label_conflict = a.label != b.label;
            Pair {
                a,
                b,
                kind,
                label_conflict,
            }
        })
        .collect();
    let key = |p: &Pair| {
        let rank = |l: &str| ["train", "val", "test"].iter().position(|&n| n == l);
        (
            !p.label_conflict,
            !p.crosses_lists(),
            p.kind,
            (rank(p.a.list), p.a.index),
            (rank(p.b.list), p.b.index),
        )
    };
    pairs.sort_by_key(key);
    let mut by_lists = BTreeMap::new();
    let mut by_class = BTreeMap::new();
    for p in pairs.iter().filter(|p| p.crosses_lists()) {
        *by_lists
            .entry(format!("{}-{}", p.a.list, p.b.list))
            .or_insert(0) += 1;
        *by_class.entry(p.a.class.clone()).or_insert(0) += 1;
    }
    Ok(Report {
        file: req.file.clone(),
        images: files.len(),
        threshold: req.threshold,
        within: req.within,
        pairs,
        unreadable,
        by_lists,
        by_class,
    })
}

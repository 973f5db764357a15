//! `check-leaks`: the same image, or nearly the same, on two sides of a split.
//!
//! Every distinct image file is decoded once, in parallel, for its size and a 64-bit
//! perceptual hash (a re-saved JPEG, a resized or slightly shifted copy); large JPEGs at a
//! reduced DCT scale, see [`sketch`]. Only files whose
//! size and hash collide with another one's get the SHA-256 of their bytes (the same file)
//! and of their decoded RGB pixels (a PNG and its lossless re-encode), see [`look_all`].
//! Pairs are then found without comparing all pairs: exact ones by
//! grouping equal digests, near ones through [`index::pairs_within`].
//!
//! The perceptual hash is the DCT pHash of Krawetz's "Looks like it", with the settings of
//! the `imagehash` Python package (which `imagededup` also uses): the image to 8-bit
//! luma (PIL's `L`, ITU-R 601 weights), resized with Pillow's Lanczos (`fast_image_resize`)
//! to 32x32, a 2-D DCT-II, the 8x8
//! lowest frequencies, each bit set when its coefficient is above their median. Low DCT
//! frequencies survive JPEG quantisation and resampling, which is what leaks look like;
//! a mirror image changes their signs, so flips are not matched. `image_hasher` was
//! measured first: it fixes the DCT at twice the hash size (16x16, so the 8x8 block reaches
//! mid frequencies) and distinct images collided far more often; the transform itself is
//! `rustdct`'s.
//!
//! For a manifest the entries are its distinct source entries: an upsampled duplicate in
//! `train` is the same entry, not a leak. A manifest's synthetic entries (synthetic
//! augmentation) are a list of their own, `synthetic`, compared with `val` and `test`: a
//! generated image that nearly copies a real test image inflates a train-on-synthetic
//! score. (That it resembles a real training image is what a generator is for, so those
//! pairs are listed only with `--within`.)

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

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
/// chosen from the measurements in `tests/leaks_quality.rs` (docs/check-leaks.md has the table).
pub const DEFAULT_THRESHOLD: u32 = 6;

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
    /// A leak: two different lists, other than a synthetic image and a real training one.
    pub fn crosses_lists(&self) -> bool {
        crosses(self.a.list, self.b.list)
    }
}

fn crosses(a: &str, b: &str) -> bool {
    a != b && !matches!((a, b), ("train", "synthetic") | ("synthetic", "train"))
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

/// The two digests that tell copies apart from look-alikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256 of the file's bytes.
    pub bytes: [u8; 32],
    /// SHA-256 of the decoded RGB pixels and the size.
    pub pixels: [u8; 32],
}

/// What is known of one image file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub phash: u64,
    /// Only for files that could have another file's pixels (see [`look_all`]); no other
    /// file can be a copy.
    pub digests: Option<Digests>,
}

/// The side of the square the pHash resizes every image to.
const PHASH_SIDE: u32 = 32;

/// What pass 1 of [`look_all`] learns of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sketch {
    /// The full image's size.
    pub width: u32,
    pub height: u32,
    pub phash: u64,
    /// A JPEG that libjpeg decoded for the hash, at a reduced DCT scale where it is large
    /// enough; the rest were decoded in full by the `image` crate.
    pub by_libjpeg: bool,
}

/// The shorter side a JPEG is decoded to, at least, for its pHash.
const JPEG_SIDE: u32 = 2 * PHASH_SIDE;

/// The size and pHash of an image file's bytes. A JPEG is decoded by libjpeg at the
/// smallest DCT scale that keeps `JPEG_SIDE` (64) pixels a side (1/4 of a 256-pixel photo),
/// and then resized as any image is: entropy decoding alone is most of a full decode's
/// cost, and the inverse DCT of frequencies far above the hash's is work the resize averages
/// away. Reduced to the hash's own 32 pixels, libjpeg's box-like downscale missed one of 400
/// enlarged JPEG copies (`tests/leaks_quality.rs`); at twice that, the Lanczos resize
/// anti-aliases as it does for other formats and none is missed. Other formats, and JPEGs
/// libjpeg cannot decode cleanly, are decoded in full (and reported as `check-images`
/// reports them).
pub fn sketch(bytes: &[u8]) -> Result<Sketch, Problem> {
    if let Some(jpeg) = decode::jpeg_reduced(bytes, JPEG_SIDE) {
        return Ok(Sketch {
            width: jpeg.width,
            height: jpeg.height,
            phash: phash(&jpeg.image),
            by_libjpeg: true,
        });
    }
    let (img, _) = decode::decode(bytes)?;
    let rgb = decode::into_rgb8(img);
    Ok(Sketch {
        width: rgb.width(),
        height: rgb.height(),
        phash: phash(&rgb),
        by_libjpeg: false,
    })
}

/// Each file's [`Look`], or why it is unusable. Pass 1 reads every file once, in parallel,
/// for its [`Sketch`] (`progress` after each); pass 2 decodes in full only the files that
/// could have another's pixels, for their digests. Identical pixels imply the same size
/// and, for two files hashed the same way, the same pHash; a reduced JPEG decode and a full
/// decode hash identical pixels a little differently, so between the two ways only the
/// size is compared. (Two JPEGs hash alike when their DCT coefficients are equal: the same
/// image re-saved with other metadata or Huffman tables. Two encodings whose different
/// coefficients round to the same pixels, which is rare, are reported as near copies.)
/// Hashing every image's full pixels cost more than decoding it.
pub fn look_all(paths: &[PathBuf], progress: impl Fn() + Sync) -> Vec<Result<Look, Problem>> {
    let quick: Vec<Result<Sketch, Problem>> = paths
        .par_iter()
        .map(|path| {
            let r = decode::read(path).and_then(|b| sketch(&b));
            progress();
            r
        })
        .collect();
    let mut same: HashMap<Sketch, usize> = HashMap::new();
    let mut sizes: std::collections::HashSet<(u32, u32, bool)> = Default::default();
    for q in quick.iter().flatten() {
        *same.entry(*q).or_default() += 1;
        sizes.insert((q.width, q.height, q.by_libjpeg));
    }
    paths
        .par_iter()
        .zip(quick)
        .map(|(path, q)| {
            let q = q?;
            let twin = same[&q] > 1 || sizes.contains(&(q.width, q.height, !q.by_libjpeg));
            let digests = twin
                .then(|| decode::read(path).and_then(|b| digests(&b)).ok())
                .flatten();
            Ok(Look {
                phash: q.phash,
                digests,
            })
        })
        .collect()
}

fn digests(bytes: &[u8]) -> Result<Digests, Problem> {
    let (img, _) = decode::decode(bytes)?;
    let rgb = decode::into_rgb8(img);
    let mut h = Sha256::new();
    h.update(rgb.width().to_le_bytes());
    h.update(rgb.height().to_le_bytes());
    h.update(rgb.as_raw());
    Ok(Digests {
        bytes: Sha256::digest(bytes).into(),
        pixels: h.finalize().into(),
    })
}

/// The 64-bit DCT pHash of an image (see the module docs); bit 63 is the DC coefficient,
/// then row by row. [`sketch`] says how a file's image is decoded for it.
pub fn phash(img: &image::RgbImage) -> u64 {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    };
    const N: usize = PHASH_SIDE as usize;
    thread_local! {
        // Planning a DCT costs more than running it on one image.
        static DCT: std::sync::Arc<dyn rustdct::TransformType2And3<f32>> =
            DctPlanner::new().plan_dct2(N);
    }
    // PIL's convert("L"): (299 R + 587 G + 114 B) / 1000, rounded.
    let luma: Vec<u8> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
            ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
        })
        .collect();
    // Pillow's Lanczos (imagehash's ANTIALIAS), as fast_image_resize implements it.
    let src =
        ImageRef::new(img.width(), img.height(), &luma, PixelType::U8).expect("one byte per pixel");
    let mut small = Image::new(N as u32, N as u32, PixelType::U8);
    Resizer::new()
        .resize(
            &src,
            &mut small,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .expect("same pixel type, non-empty sizes");
    let mut m: Vec<f32> = small.buffer().iter().map(|&v| f32::from(v)).collect();
    let dct = DCT.with(|d| d.clone());
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
    let (split, raw) = Split::parse_with_balancing(text, &req.file)?;
    let real = match raw {
        Some(raw) => crate::manifest::Manifest::from_parts(split.clone(), raw, &req.file)?
            .record
            .real_entries(),
        None => split.train.len(),
    };
    let mut lists = split.lists();
    let (train, synthetic) = split.train.split_at(real);
    lists[0].1 = train;
    if !synthetic.is_empty() {
        lists.insert(1, ("synthetic", synthetic));
    }

    // Each list's distinct entries (a manifest repeats upsampled ones).
    let mut sides: Vec<Side> = Vec::new();
    for (list, entries) in lists {
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
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(p, _, _)| input::under(&req.root, std::path::Path::new(p)))
        .collect();
    let mut by_path: HashMap<&str, Look> = HashMap::new();
    let mut unreadable = Vec::new();
    for (&(path, list, index), r) in files.iter().zip(look_all(&paths, progress)) {
        match r {
            Ok(look) => {
                by_path.insert(path, look);
            }
            Err(problem) => unreadable.push(Bad {
                list: list.to_string(),
                index,
                path: path.to_string(),
                problem,
            }),
        }
    }
    let usable: Vec<(&Side, Look)> = sides
        .iter()
        .filter_map(|s| by_path.get(s.path.as_str()).map(|&look| (s, look)))
        .collect();
    let wanted = |i: usize, j: usize| req.within || crosses(usable[i].0.list, usable[j].0.list);
    let pixels = |i: usize| usable[i].1.digests.map(|d| d.pixels);
    let mut found: Vec<(usize, usize, Kind)> = Vec::new();

    // Exact: equal pixel digests.
    let mut groups: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for (i, (_, look)) in usable.iter().enumerate() {
        if let Some(d) = look.digests {
            groups.entry(d.pixels).or_default().push(i);
        }
    }
    for members in groups.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if wanted(i, j) {
                    let bytes = |k: usize| usable[k].1.digests.map(|d| d.bytes);
                    let kind = if bytes(i) == bytes(j) {
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
    let hashes: Vec<u64> = usable.iter().map(|(_, look)| look.phash).collect();
    for (i, j, d) in index::pairs_within(&hashes, req.threshold, |i, j| {
        // Only files with digests can be pixel-identical (see look_all).
        wanted(i, j) && (pixels(i).is_none() || pixels(i) != pixels(j))
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
        let rank = |l: &str| {
            ["train", "synthetic", "val", "test"]
                .iter()
                .position(|&n| n == l)
        };
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

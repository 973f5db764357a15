//! `check-leaks`: the same image, or nearly the same, on two sides of a split.
//!
//! Over 500 lines on purpose: the job's two stages, clusters and report; hashing, the
//! index and the confirmation are the modules under it.
//!
//! Every distinct image file is decoded once, in parallel ([`look::look_all`]), for its
//! size, a 64-bit perceptual hash and a tiny colour thumbnail; large JPEGs at a reduced
//! DCT scale. Only files whose size and hash collide with another one's get the SHA-256 of
//! their bytes (the same file) and of their decoded RGB pixels (a PNG and its lossless
//! re-encode). Then, without comparing all pairs:
//!
//! - **exact copies** are grouped by equal digests (and equal paths: a file listed twice is
//!   the same bytes) and reported as **clusters**, each with its members per list, so 6,000
//!   copies of one blank frame are one cluster, not 18 million pairs;
//! - **near copies** are found in two stages: the hash index ([`index::pairs_within`])
//!   gives the candidates within `threshold` bits, and the pixels decide
//!   ([`confirm::residual`] on the thumbnails, at most `max_residual`). A hash distance
//!   alone cries wolf on look-alike images (the embedded example's 250 distinct discs gave
//!   317 "near" pairs at 6 bits) and misses a re-encoded photo at 8; the second stage is
//!   what tells a copy from a look-alike (`bench/leaks_quality.py` measures both, table in
//!   docs/check-leaks.md). At most [`MAX_PAIRS`] near pairs are kept; all are counted.
//!
//! The perceptual hash is the DCT pHash of Krawetz's "Looks like it", with the settings of
//! the `imagehash` Python package (which `imagededup` also uses), see [`look::phash`].
//!
//! For a manifest the entries are its distinct source entries: an upsampled duplicate in
//! `train` is the same entry, not a leak. A manifest's synthetic entries (synthetic
//! augmentation) are a list of their own, `synthetic`, compared with `val` and `test`: a
//! generated image that nearly copies a real test image inflates a train-on-synthetic
//! score. (That it resembles a real training image is what a generator is for, so those
//! pairs are listed only with `--within`.)

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::images::check::Bad;
use crate::input;
use crate::manifest::ManifestError;
use crate::split::{Split, SplitError};

/// Why the check cannot run (a leak is a [`Report`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum LeaksError {
    #[error("--threshold: expected 0 to {MAX_THRESHOLD} bits, found {0}")]
    Threshold(u32),
    #[error("--max-residual: expected a number of levels from 0 up, found {0}")]
    MaxResidual(f64),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

pub mod confirm;
pub mod index;
pub mod look;
pub mod report;

pub use look::{look_all, phash, sketch, Digests, Look, Sketch};

/// The default largest Hamming distance between two pHashes for a candidate near copy,
/// chosen from the measurements in `bench/leaks_quality.py` (docs/check-leaks.md).
pub const DEFAULT_THRESHOLD: u32 = 10;

/// The largest threshold accepted: beyond a quarter of the bits, unrelated images match
/// and the index compares nearly every pair.
pub const MAX_THRESHOLD: u32 = 16;

/// Near pairs kept in a report (every one is counted): beyond it a list of pairs is not
/// read by anyone, and it grows with the square of the images.
pub const MAX_PAIRS: usize = 100_000;

/// Members of a cluster listed in the text report (all are in the JSON).
pub const SHOWN_MEMBERS: usize = 10;

/// What to check.
#[derive(Clone, Debug)]
pub struct Request {
    pub file: PathBuf,
    /// Image paths are resolved against this directory.
    pub root: PathBuf,
    /// Candidates: pHashes at most this many bits apart.
    pub threshold: u32,
    /// Confirmation: the largest pixel residual of a near copy (see [`confirm`]); `None`
    /// reports every candidate (the hash alone).
    pub max_residual: Option<f64>,
    /// Also report duplicates inside one list.
    pub within: bool,
}

/// How exact copies are the same image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exact {
    /// The same bytes (the same file, or a copy of it).
    IdenticalBytes,
    /// Different files, the same decoded pixels (some members may share their bytes).
    IdenticalPixels,
}

/// One entry of a pair or a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub list: &'static str,
    pub index: usize,
    pub path: String,
    pub label: u32,
    pub class: String,
}

/// Entries holding exactly the same image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub kind: Exact,
    /// In list order (train, synthetic, val, test), then position.
    pub members: Vec<Side>,
    /// Members per list, in list order (a JSON object).
    #[serde(serialize_with = "ordered_map")]
    pub lists: Vec<(&'static str, usize)>,
    /// The members carry different labels: the same image under two classes.
    pub label_conflict: bool,
}

/// Two entries holding nearly the same image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pair {
    pub a: Side,
    pub b: Side,
    /// pHash bits apart.
    pub distance: u32,
    /// The pixels' residual ([`confirm::residual`]), 8-bit levels.
    pub residual: f64,
    /// Two featureless images of one colour ([`confirm::FLAT_MEAN`]): a candidate
    /// whatever their hash distance, which noise decides for such images.
    pub featureless: bool,
    pub label_conflict: bool,
}

impl Pair {
    /// A leak: two different lists, other than a synthetic image and a real training one.
    pub fn crosses_lists(&self) -> bool {
        crosses(self.a.list, self.b.list)
    }
}

fn ordered_map<S: serde::Serializer>(v: &[(&str, usize)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, n) in v {
        m.serialize_entry(k, n)?;
    }
    m.end()
}

impl Cluster {
    /// A leak: members in two lists that may not share an image.
    pub fn crosses_lists(&self) -> bool {
        let lists: Vec<&str> = self.lists.iter().map(|(l, _)| *l).collect();
        lists
            .iter()
            .enumerate()
            .any(|(i, a)| lists[i + 1..].iter().any(|b| crosses(a, b)))
    }
}

fn crosses(a: &str, b: &str) -> bool {
    a != b && !matches!((a, b), ("train", "synthetic") | ("synthetic", "train"))
}

fn rank(list: &str) -> Option<usize> {
    ["train", "synthetic", "val", "test"]
        .iter()
        .position(|&n| n == list)
}

/// The verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub file: PathBuf,
    /// Distinct image files decoded.
    pub images: usize,
    pub threshold: u32,
    pub max_residual: Option<f64>,
    pub within: bool,
    /// Label conflicts first, then across lists before within, then by position.
    pub clusters: Vec<Cluster>,
    /// The same order; at most [`MAX_PAIRS`] of them.
    pub pairs: Vec<Pair>,
    /// Near pairs found, kept or not.
    pub pairs_found: usize,
    /// Files that could not be used (as `check-images` reports them); they are skipped.
    pub unreadable: Vec<Bad>,
    /// Leaks (cross-list clusters and pairs) per list pair (`"train-test"`) and per class
    /// of the first member.
    pub by_lists: BTreeMap<String, usize>,
    pub by_class: BTreeMap<String, usize>,
    /// Leaks in all: clusters across lists, and near pairs across lists (kept or not).
    pub leaks: usize,
    /// The image files read (resolved), for refusing a report written over one.
    #[serde(skip)]
    pub inputs: Vec<PathBuf>,
}

impl Report {
    /// Clusters and near pairs across lists.
    pub fn leaks(&self) -> usize {
        self.leaks
    }
}

/// The lists of a split or manifest as check-leaks compares them: a manifest's synthetic
/// entries are a list of their own.
fn lists<'s, 'a>(
    split: &'s Split<'a>,
    real: usize,
) -> Vec<(&'static str, &'s [crate::split::Entry<'a>])> {
    let mut lists = split.lists();
    let (train, synthetic) = split.train.split_at(real);
    lists[0].1 = train;
    if !synthetic.is_empty() {
        lists.insert(1, ("synthetic", synthetic));
    }
    lists
}

/// Runs the check; `total` is told how many files there are, `progress` after each one.
pub fn run(
    req: &Request,
    total: impl FnOnce(usize),
    progress: impl Fn() + Sync,
) -> Result<Report, LeaksError> {
    if req.threshold > MAX_THRESHOLD {
        return Err(LeaksError::Threshold(req.threshold));
    }
    if let Some(r) = req.max_residual.filter(|r| !(r.is_finite() && *r >= 0.0)) {
        return Err(LeaksError::MaxResidual(r));
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
    // Each list's distinct entries (a manifest repeats upsampled ones).
    let mut sides: Vec<Side> = Vec::new();
    for (list, entries) in lists(&split, real) {
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
    let usable: Vec<(&Side, &Look)> = sides
        .iter()
        .filter_map(|s| by_path.get(s.path.as_str()).map(|look| (s, look)))
        .collect();
    let found = Found::new(&usable, req);
    let mut report = found.report(req, files.len(), unreadable);
    report.inputs = paths;
    Ok(report)
}

/// The exact groups and the confirmed near pairs, as indices into `usable`.
struct Found<'u> {
    usable: &'u [(&'u Side, &'u Look)],
    /// Each exact group of two or more entries (sorted members), with its kind.
    groups: Vec<(Exact, Vec<usize>)>,
    /// `(i, j, distance, residual)`, `i < j`.
    near: Vec<(usize, usize, u32, f64)>,
    /// Pairs found by colour ([`flat_pairs`]).
    featureless: std::collections::HashSet<(usize, usize)>,
}

impl<'u> Found<'u> {
    fn new(usable: &'u [(&'u Side, &'u Look)], req: &Request) -> Found<'u> {
        // Exact: equal pixel digests; a file without digests (no other file could share its
        // pixels) groups by its path, so a file listed twice is one group.
        #[derive(Hash, PartialEq, Eq)]
        enum Key<'a> {
            Pixels([u8; 32]),
            Path(&'a str),
        }
        let mut groups: HashMap<Key, Vec<usize>> = HashMap::new();
        for (i, (side, look)) in usable.iter().enumerate() {
            let key = match look.digests {
                Some(d) => Key::Pixels(d.pixels),
                None => Key::Path(&side.path),
            };
            groups.entry(key).or_default().push(i);
        }
        let mut group_of = vec![usize::MAX; usable.len()];
        let mut exact = Vec::new();
        for members in groups.into_values().filter(|m| m.len() > 1) {
            let bytes = |k: usize| usable[k].1.digests.map(|d| d.bytes);
            let same_bytes = members.iter().all(|&k| {
                bytes(k) == bytes(members[0]) || usable[k].0.path == usable[members[0]].0.path
            });
            let kind = if same_bytes {
                Exact::IdenticalBytes
            } else {
                Exact::IdenticalPixels
            };
            for &k in &members {
                group_of[k] = exact.len();
            }
            exact.push((kind, members));
        }
        let wanted = |i: usize, j: usize| {
            (req.within || crosses(usable[i].0.list, usable[j].0.list))
                && (group_of[i] == usize::MAX || group_of[i] != group_of[j])
        };
        let hashes: Vec<u64> = usable.iter().map(|(_, look)| look.phash).collect();
        let confirmed = |i: usize, j: usize, d: u32| {
            let r = confirm::residual(&usable[i].1.thumb, &usable[j].1.thumb);
            req.max_residual
                .is_none_or(|max| r <= max)
                .then_some((i, j, d, r))
        };
        let featureless: std::collections::HashSet<(usize, usize)> = flat_pairs(usable)
            .into_iter()
            .filter(|&(i, j)| wanted(i, j))
            .collect();
        let mut candidates: Vec<(usize, usize, u32)> =
            index::pairs_within(&hashes, req.threshold, wanted);
        let by_hash: std::collections::HashSet<(usize, usize)> =
            candidates.iter().map(|&(i, j, _)| (i, j)).collect();
        candidates.extend(
            featureless
                .iter()
                .filter(|pair| !by_hash.contains(pair))
                .map(|&(i, j)| (i, j, (hashes[i] ^ hashes[j]).count_ones())),
        );
        let mut near: Vec<(usize, usize, u32, f64)> = candidates
            .into_iter()
            .filter_map(|(i, j, d)| confirmed(i, j, d))
            .collect();
        near.sort_by_key(|&(i, j, _, _)| (i, j));
        Found {
            usable,
            groups: exact,
            near,
            featureless,
        }
    }

    fn report(self, req: &Request, images: usize, unreadable: Vec<Bad>) -> Report {
        self.into_report(req, images, unreadable)
    }
}

/// Pairs `(i, j)`, `i < j`, of featureless images ([`confirm::FLAT_SPREAD`]) whose mean
/// colours are within [`confirm::FLAT_MEAN`]: found through buckets of the mean colour (an
/// image and those in the 27 buckets around its own), so the work stays near-linear.
fn flat_pairs(usable: &[(&Side, &Look)]) -> Vec<(usize, usize)> {
    let flat: Vec<(usize, [f64; 3])> = usable
        .iter()
        .enumerate()
        .filter(|(_, (_, look))| confirm::spread(&look.thumb) < confirm::FLAT_SPREAD)
        .map(|(i, (_, look))| (i, confirm::mean(&look.thumb)))
        .collect();
    let cell = |m: &[f64; 3]| m.map(|v| (v / (2.0 * confirm::FLAT_MEAN)).floor() as i64);
    let mut buckets: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (k, (_, m)) in flat.iter().enumerate() {
        buckets.entry(cell(m)).or_default().push(k);
    }
    let mut out = Vec::new();
    for (k, (i, m)) in flat.iter().enumerate() {
        let c = cell(m);
        for d in 0..27 {
            let key = [c[0] + d % 3 - 1, c[1] + d / 3 % 3 - 1, c[2] + d / 9 - 1];
            for &l in buckets.get(&key).map_or(&[][..], Vec::as_slice) {
                let (j, n) = &flat[l];
                let close = (0..3).all(|ch| (m[ch] - n[ch]).abs() <= confirm::FLAT_MEAN);
                if l > k && close {
                    out.push(((*i).min(*j), (*i).max(*j)));
                }
            }
        }
    }
    out
}

/// What the report counts: leaks by pair of lists and by class.
#[derive(Default)]
struct Tally {
    by_lists: BTreeMap<String, usize>,
    by_class: BTreeMap<String, usize>,
    leaks: usize,
}

impl Tally {
    /// One leak of `class`: a copy in list `a` and in list `b`.
    fn leak(&mut self, class: &str, a: &Side, b: &Side) {
        self.leaks += 1;
        *self.by_class.entry(class.to_owned()).or_insert(0) += 1;
        self.lists(a, b);
    }

    fn lists(&mut self, a: &Side, b: &Side) {
        let (a, b) = if rank(a.list) <= rank(b.list) {
            (a, b)
        } else {
            (b, a)
        };
        *self
            .by_lists
            .entry(format!("{}-{}", a.list, b.list))
            .or_insert(0) += 1;
    }
}

impl Found<'_> {
    fn into_report(self, req: &Request, images: usize, unreadable: Vec<Bad>) -> Report {
        let mut tally = Tally::default();
        let clusters = self.clusters(req);
        for c in clusters.iter().filter(|c| c.crosses_lists()) {
            // A cluster is one leak, counted once for each pair of lists it spans.
            tally.leaks += 1;
            *tally
                .by_class
                .entry(c.members[0].class.clone())
                .or_insert(0) += 1;
            let firsts: Vec<&Side> = c
                .lists
                .iter()
                .filter_map(|(l, _)| c.members.iter().find(|m| m.list == *l))
                .collect();
            for (x, a) in firsts.iter().enumerate() {
                for b in firsts[x + 1..].iter().filter(|b| crosses(a.list, b.list)) {
                    tally.lists(a, b);
                }
            }
        }
        let pairs = self.pairs(&mut tally);
        Report {
            file: req.file.clone(),
            images,
            threshold: req.threshold,
            max_residual: req.max_residual,
            within: req.within,
            clusters,
            pairs,
            pairs_found: self.near.len(),
            unreadable,
            by_lists: tally.by_lists,
            by_class: tally.by_class,
            leaks: tally.leaks,
            inputs: Vec::new(),
        }
    }

    fn side(&self, k: usize) -> Side {
        self.usable[k].0.clone()
    }

    /// The clusters of identical images the report shows (those across lists, or all with
    /// `--within`), label conflicts and leaks first.
    fn clusters(&self, req: &Request) -> Vec<Cluster> {
        let mut clusters: Vec<Cluster> = self
            .groups
            .iter()
            .map(|(kind, members)| {
                let mut members: Vec<Side> = members.iter().map(|&k| self.side(k)).collect();
                members.sort_by_key(|s| (rank(s.list), s.index));
                let mut lists: Vec<(&'static str, usize)> = Vec::new();
                for m in &members {
                    match lists.last_mut() {
                        Some((l, n)) if *l == m.list => *n += 1,
                        _ => lists.push((m.list, 1)),
                    }
                }
                let label_conflict = members.iter().any(|m| m.label != members[0].label);
                Cluster {
                    kind: *kind,
                    members,
                    lists,
                    label_conflict,
                }
            })
            .filter(|c| req.within || c.crosses_lists())
            .collect();
        clusters.sort_by_key(|c| {
            (
                !c.label_conflict,
                !c.crosses_lists(),
                c.kind,
                (rank(c.members[0].list), c.members[0].index),
            )
        });
        clusters
    }

    /// The near pairs, label conflicts and leaks first, at most [`MAX_PAIRS`] kept; every
    /// leak among them is counted in `tally`, kept or not.
    fn pairs(&self, tally: &mut Tally) -> Vec<Pair> {
        let mut pairs: Vec<Pair> = Vec::with_capacity(self.near.len().min(MAX_PAIRS));
        let mut order: Vec<&(usize, usize, u32, f64)> = self.near.iter().collect();
        order.sort_by_key(|&&(i, j, _, _)| {
            let (a, b) = (self.usable[i].0, self.usable[j].0);
            (
                a.label == b.label,
                !crosses(a.list, b.list),
                (rank(a.list), a.index),
                (rank(b.list), b.index),
            )
        });
        for &&(i, j, distance, residual) in &order {
            let (a, b) = (self.side(i), self.side(j));
            if crosses(a.list, b.list) {
                tally.leak(&a.class, &a, &b);
            }
            if pairs.len() < MAX_PAIRS {
                let label_conflict = a.label != b.label;
                pairs.push(Pair {
                    a,
                    b,
                    distance,
                    residual,
                    featureless: self.featureless.contains(&(i, j)),
                    label_conflict,
                });
            }
        }
        pairs
    }
}

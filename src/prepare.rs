//! The `split` job: the user's data-preparation step. Class folders and their YAML in, split
//! files out: in ratio and repeated k-fold mode exactly the files their Python writes (bar
//! `created_at`), and with `split.group_by` splits where no group straddles two lists.
//!
//! The I/O is here; the rules are pure, in [`cut`] (their counts), [`PyRandom`] (their
//! shuffle), [`groups`] (our group placement) and [`mod@write`] (their JSON layout).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::output::{check_destination, DestinationError, WriteError};
use crate::rng::{OsSeedError, Purpose, Stream};

pub mod config;
pub mod cut;
pub mod groups;
pub mod report;
pub mod scan;
pub mod write;

use crate::rng::pyrandom::PyRandom;
use config::{GroupBy, Mode, Number, PrepConfig};
use write::{Entry, SplitFile};

/// The largest group table (`group_by.csv`) read, in bytes.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Class folders or groups that cannot be used. Every message names the config and key,
/// or the file.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{config}: classes.{class}.path: {message}")]
    Class {
        config: PathBuf,
        class: String,
        message: String,
    },
    #[error("{config}: split.group_by: {message}")]
    Groups { config: PathBuf, message: String },
    #[error("{file}: {message}")]
    Table { file: PathBuf, message: String },
    #[error("{config}: split.save_dir: {message}")]
    SaveDir { config: PathBuf, message: String },
    /// `--check-leaks` found the same image in two lists of a split (exit 4).
    #[error("{path}: {message}")]
    Leaks { path: PathBuf, message: String },
    /// Some split files of a set were written before one failed.
    #[error("{first}; {written} of the {total} split files were written (each complete, in its new version) before the failure; the others are as they were (their previous version, or absent)")]
    Partial {
        written: usize,
        total: usize,
        first: Box<PrepareError>,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// Writing failed: the environment, not the user's input.
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Seed(#[from] OsSeedError),
}

impl PrepareError {
    /// 2 for bad input, 4 for leaks found, 1 when the environment failed; a partial
    /// write takes the code of the failure behind it.
    pub fn exit_code(&self) -> i32 {
        match self {
            PrepareError::Partial { first, .. } => first.exit_code(),
            PrepareError::Leaks { .. } => 4,
            PrepareError::Write(_) | PrepareError::Seed(_) => 1,
            _ => 2,
        }
    }
}

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub config: PathBuf,
    /// `--force`: overwrite existing split files (as `split.force: true`).
    pub force: bool,
    pub dry_run: bool,
    /// `--created-at`: add the user's `created_at` timestamp (local time, to the second).
    pub created_at: bool,
    /// `--check-leaks`: decode every image first and refuse (exit 4, nothing written) when
    /// identical pixels would land in two lists of a split.
    pub check_leaks: bool,
    /// The user's `--dotted.key value` overrides, applied to the config before it is read.
    pub overrides: crate::config::overrides::Overrides,
}

/// What became of one split file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Written,
    /// It existed and neither `--force` nor `split.force` was given.
    Kept,
    /// `--dry-run`: it would have been written.
    WouldWrite,
    /// `--dry-run`: it exists and would have been kept.
    WouldKeep,
}

/// One class's row of a split's table.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassRow {
    pub name: String,
    pub total: usize,
    /// Entries in train, val, test.
    pub counts: [usize; 3],
    /// With groups: the shares of the class each list was asked for.
    pub requested: Option<[f64; 3]>,
}

/// One split file's report.
#[derive(Clone, Debug)]
pub struct SplitReport {
    /// K-fold mode: `(split_index, repeat, fold)`.
    pub index: SplitIndex,
    pub path: PathBuf,
    pub status: Status,
    /// Empty for a ratio-mode file that was kept (the folders were not read).
    pub rows: Vec<ClassRow>,
}

/// What the job did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub splits: Vec<SplitReport>,
    pub warnings: Vec<String>,
    /// `split.seed` was null or missing: the seed drawn from the OS.
    pub drawn_seed: Option<i128>,
    /// With groups: how many groups there were.
    pub groups: Option<usize>,
}

/// A class folder's files, and with groups each file's group number.
struct Class<'c> {
    spec: &'c config::ClassSpec,
    /// Its position in the config (the order of `metadata.classes`).
    config_index: usize,
    files: Vec<String>,
    groups: Vec<usize>,
}

/// K-fold mode: `(split_index, repeat, fold)`.
pub type SplitIndex = Option<(usize, usize, usize)>;

/// The three lists of one split, as (class, file) positions in label order.
type Lists = [Vec<(usize, usize)>; 3];

/// Runs the whole job.
pub fn run(req: &Request) -> Result<Outcome, PrepareError> {
    let cfg = crate::config::parse_with(&req.config, &req.overrides, PrepConfig::parse)?;
    let force = req.force || cfg.force;
    let mut warnings: Vec<String> = cfg
        .unused
        .iter()
        .map(|k| format!("{}: {k} is not used in this mode", req.config.display()))
        .chain(
            cfg.warnings
                .iter()
                .map(|w| format!("{}: {w}", req.config.display())),
        )
        .collect();
    let save_dir = PathBuf::from(&cfg.save_dir);
    let status_of = |path: &Path| match (path.exists() && !force, req.dry_run) {
        (true, false) => Status::Kept,
        (true, true) => Status::WouldKeep,
        (false, false) => Status::Written,
        (false, true) => Status::WouldWrite,
    };
    let csv_path = match &cfg.group_by {
        Some(GroupBy::Csv { file, .. }) => Some(file.as_path()),
        _ => None,
    };

    // The user's ratio mode leaves an existing file alone before reading any folder.
    if matches!(cfg.mode, Mode::Ratio { .. }) {
        let path = save_dir.join(&cfg.split_file);
        let status = status_of(&path);
        if matches!(status, Status::Kept | Status::WouldKeep) {
            return Ok(Outcome {
                splits: vec![SplitReport {
                    index: None,
                    path,
                    status,
                    rows: Vec::new(),
                }],
                warnings,
                drawn_seed: None,
                groups: None,
            });
        }
    }

    let mut order: Vec<(usize, &config::ClassSpec)> = cfg.classes.iter().enumerate().collect();
    order.sort_by_key(|(_, c)| c.label);
    let mut classes = Vec::with_capacity(order.len());
    for (config_index, spec) in order {
        let files = scan::scan(&spec.path).map_err(|e| class_error(&req.config, spec, e))?;
        classes.push(Class {
            spec,
            config_index,
            files,
            groups: Vec::new(),
        });
    }
    let group_count = match &cfg.group_by {
        Some(g) => Some(find_groups(&req.config, g, &mut classes, &mut warnings)?),
        None => None,
    };

    // Every output's path and fate are known before any list is made: the destination
    // checks (also in a dry run) and the folder come first, so a bad path fails before
    // anything is written.
    let paths: Vec<(SplitIndex, PathBuf)> = match &cfg.mode {
        Mode::Ratio { .. } => vec![(None, save_dir.join(&cfg.split_file))],
        Mode::KFold {
            n_folds, n_repeats, ..
        } => (0..*n_repeats as usize)
            .flat_map(|r| (0..*n_folds as usize).map(move |f| (r, f)))
            .map(|(r, f)| {
                let index = r * *n_folds as usize + f;
                let name = cfg.split_file.replace("{index}", &index.to_string());
                (Some((index, r, f)), save_dir.join(name))
            })
            .collect(),
    };
    let statuses: Vec<Status> = paths.iter().map(|(_, p)| status_of(p)).collect();
    let mut inputs: Vec<&Path> = vec![&req.config];
    inputs.extend(csv_path);
    for ((_, path), status) in paths.iter().zip(&statuses) {
        if matches!(status, Status::Written | Status::WouldWrite) {
            check_destination(path, &inputs)?;
        }
    }
    if let (Some(g), Mode::KFold { n_folds, .. }) = (group_count, &cfg.mode) {
        if g < *n_folds as usize {
            warnings.push(format!(
                "only {g} group(s) for {n_folds} folds: some test folds are empty"
            ));
        }
    }

    let group_meta = match (group_count, &cfg.group_by) {
        (Some(g), Some(by)) => Some((group_by_value(by), Value::from(g))),
        _ => None,
    };
    let twins = if req.check_leaks {
        identical_images(&classes)
    } else {
        HashMap::new()
    };
    let emit = Emit {
        classes: &classes,
        created_at: req.created_at.then(local_timestamp),
        group_meta,
    };
    // Each mode makes and checks its splits (--check-leaks) before the folder is touched.
    let make_folder = || {
        if statuses.contains(&Status::Written) {
            prepare_folder(&req.config, &save_dir, &paths[0].1)
        } else {
            Ok(())
        }
    };
    let mut drawn_seed = None;
    let results: Vec<Result<SplitReport, PrepareError>> = match &cfg.mode {
        Mode::Ratio {
            seed,
            train,
            val,
            test,
        } => {
            let seed = match seed {
                Some(s) => *s,
                None => {
                    let s = i128::from(crate::rng::os_seed()?);
                    drawn_seed = Some(s);
                    s
                }
            };
            let lists = match group_count {
                None => ratio_lists(&classes, seed, train.value, val.value),
                Some(g) => {
                    let shares = [train.value, val.value, test.value];
                    let mut rng = Stream::new(seed as u64, Purpose::SplitGroups, &[0]);
                    let bins = place(&classes, g, None, &|_| shares.to_vec(), &mut rng);
                    lists_from_bins(&classes, &bins)
                }
            };
            if test.value > 0.0 {
                for (c, class) in classes.iter().enumerate() {
                    if !lists[2].iter().any(|&(k, _)| k == c) {
                        warnings.push(format!(
                            "class '{}' has too few samples ({}) to populate the test split; its test entries are empty although test_ratio > 0",
                            class.spec.name,
                            class.files.len()
                        ));
                    }
                }
            }
            refuse_leaks(&twins, &classes, &lists, &paths[0].1)?;
            make_folder()?;
            let requested = group_count.map(|_| [train.value, val.value, test.value]);
            let mut extra = Map::new();
            extra.insert("seed".into(), int_value(seed));
            extra.insert("train_ratio".into(), number_value(*train));
            extra.insert("val_ratio".into(), number_value(*val));
            extra.insert("test_ratio".into(), number_value(*test));
            let job = Job {
                index: None,
                path: paths[0].1.clone(),
                lists,
                extra,
                requested: vec![requested; classes.len()],
            };
            vec![emit.finish(job, statuses[0])]
        }
        Mode::KFold {
            n_folds,
            n_repeats,
            repeat_seeds,
            val_fraction,
        } => {
            let k = *n_folds as usize;
            for class in &classes {
                if class.files.len() < k {
                    warnings.push(format!(
                        "class '{}' has {} samples, fewer than n_folds ({k}); some of its test folds are empty",
                        class.spec.name,
                        class.files.len()
                    ));
                }
            }
            // With identical images present, every split is checked before the first is
            // written (the folds are cheap to cut again).
            if !twins.is_empty() {
                for (repeat, &seed) in repeat_seeds.iter().enumerate() {
                    let folds = Folds::new(&classes, group_count, seed, k, val_fraction.value);
                    for fold in 0..k {
                        let (lists, _) = folds.fold(fold);
                        refuse_leaks(&twins, &classes, &lists, &paths[repeat * k + fold].1)?;
                    }
                }
            }
            make_folder()?;
            // One repeat at a time, its folds in parallel, each split's lists dropped once
            // written: memory stays one repeat's shuffles plus a split per thread.
            let mut results = Vec::with_capacity(paths.len());
            for (repeat, &seed) in repeat_seeds.iter().enumerate() {
                let folds = Folds::new(&classes, group_count, seed, k, val_fraction.value);
                let batch: Vec<Result<SplitReport, PrepareError>> = (0..k)
                    .into_par_iter()
                    .map(|fold| {
                        let (lists, requested) = folds.fold(fold);
                        let index = repeat * k + fold;
                        let mut extra = Map::new();
                        extra.insert("mode".into(), "kfold".into());
                        extra.insert("split_index".into(), index.into());
                        extra.insert("repeat".into(), repeat.into());
                        extra.insert("fold".into(), fold.into());
                        extra.insert("n_folds".into(), (*n_folds).into());
                        extra.insert("n_repeats".into(), (*n_repeats).into());
                        extra.insert("repeat_seed".into(), int_value(seed));
                        extra.insert("val_fraction".into(), number_value(*val_fraction));
                        let job = Job {
                            index: paths[index].0,
                            path: paths[index].1.clone(),
                            lists,
                            extra,
                            requested,
                        };
                        emit.finish(job, statuses[index])
                    })
                    .collect();
                results.extend(batch);
            }
            results
        }
    };
    let total = results.len();
    let mut splits = Vec::with_capacity(total);
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => splits.push(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        let written = splits
            .iter()
            .filter(|s| s.status == Status::Written)
            .count();
        if written == 0 {
            return Err(e);
        }
        return Err(PrepareError::Partial {
            written,
            total,
            first: Box::new(e),
        });
    }
    Ok(Outcome {
        splits,
        warnings,
        drawn_seed,
        groups: group_count,
    })
}

/// With `--check-leaks`: for each file whose decoded pixels another file also has, a number
/// shared by all files with those pixels. Unreadable files are left out (check-images
/// reports them).
fn identical_images(classes: &[Class]) -> HashMap<(usize, usize), usize> {
    let files: Vec<(usize, usize)> = classes
        .iter()
        .enumerate()
        .flat_map(|(c, class)| (0..class.files.len()).map(move |i| (c, i)))
        .collect();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|&(c, i)| PathBuf::from(&classes[c].files[i]))
        .collect();
    let mut by_digest: HashMap<[u8; 32], Vec<(usize, usize)>> = HashMap::new();
    for (&file, look) in files.iter().zip(crate::leaks::look_all(&paths, || {})) {
        if let Some(d) = look.ok().and_then(|l| l.digests) {
            by_digest.entry(d.pixels).or_default().push(file);
        }
    }
    let mut twins = HashMap::new();
    for (n, members) in by_digest.into_values().filter(|m| m.len() > 1).enumerate() {
        for f in members {
            twins.insert(f, n);
        }
    }
    twins
}

/// Refuses a split whose lists hold the same pixels twice (exit 4, before anything is
/// written): the first such pair, and how many there are.
fn refuse_leaks(
    twins: &HashMap<(usize, usize), usize>,
    classes: &[Class],
    lists: &Lists,
    path: &Path,
) -> Result<(), PrepareError> {
    if twins.is_empty() {
        return Ok(());
    }
    // (list, (class, file)) of a copy's first sighting, and each pair across lists.
    type Seen = (usize, (usize, usize));
    let mut first_list: HashMap<usize, Seen> = HashMap::new();
    let mut found: Vec<(Seen, Seen)> = Vec::new();
    for (l, list) in lists.iter().enumerate() {
        for &f in list {
            if let Some(&n) = twins.get(&f) {
                match first_list.get(&n) {
                    Some(&(l0, f0)) if l0 != l => found.push(((l0, f0), (l, f))),
                    Some(_) => {}
                    None => {
                        first_list.insert(n, (l, f));
                    }
                }
            }
        }
    }
    let Some(&((la, a), (lb, b))) = found.first() else {
        return Ok(());
    };
    let names = ["train", "val", "test"];
    let show = |(c, i): (usize, usize)| crate::text::escape(&classes[c].files[i]).into_owned();
    Err(PrepareError::Leaks {
        path: path.to_owned(),
        message: format!(
            "identical pixels in {} ({}) and {} ({}){}; nothing written (group them with split.group_by, or remove the copy)",
            names[la],
            show(a),
            names[lb],
            show(b),
            if found.len() > 1 { format!(", and {} more", found.len() - 1) } else { String::new() }
        ),
    })
}

/// Creates `save_dir` and checks that a file can be made in it, naming `split.save_dir`
/// when it is a file or under one.
fn prepare_folder(config: &Path, save_dir: &Path, probe: &Path) -> Result<(), PrepareError> {
    let bad = |what: String| -> PrepareError {
        PrepareError::SaveDir {
            config: config.to_owned(),
            message: what,
        }
    };
    if save_dir.exists() && !save_dir.is_dir() {
        return Err(bad(format!("not a directory: {}", save_dir.display())));
    }
    std::fs::create_dir_all(save_dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
            bad(format!("cannot create {}: {e}", save_dir.display()))
        }
        _ => WriteError {
            path: save_dir.to_owned(),
            what: "split folder",
            source: e,
        }
        .into(),
    })?;
    // A temporary file made and dropped: a read-only folder fails here, before any split.
    crate::output::AtomicFile::create(probe).map_err(|source| WriteError {
        path: probe.to_owned(),
        what: "split file",
        source,
    })?;
    Ok(())
}

/// One repeat's per-class shuffles (their mode) or group folds (grouped), from which each
/// fold's lists are cut.
enum Folds<'a> {
    Theirs {
        classes: &'a [Class<'a>],
        orders: Vec<Vec<usize>>,
        chunks: Vec<Vec<std::ops::Range<usize>>>,
        val_fraction: f64,
    },
    Grouped {
        classes: &'a [Class<'a>],
        n_groups: usize,
        seed: u64,
        k: usize,
        fold_of: Vec<usize>,
        val_fraction: f64,
    },
}

impl<'a> Folds<'a> {
    fn new(
        classes: &'a [Class<'a>],
        groups: Option<usize>,
        seed: i128,
        k: usize,
        val_fraction: f64,
    ) -> Folds<'a> {
        match groups {
            None => {
                let mut rng = PyRandom::new(seed);
                let orders: Vec<Vec<usize>> = classes
                    .iter()
                    .map(|class| {
                        let mut order: Vec<usize> = (0..class.files.len()).collect();
                        rng.shuffle(&mut order);
                        order
                    })
                    .collect();
                let chunks = orders.iter().map(|o| cut::chunks(o.len(), k)).collect();
                Folds::Theirs {
                    classes,
                    orders,
                    chunks,
                    val_fraction,
                }
            }
            Some(n_groups) => {
                let seed = seed as u64;
                let share = 1.0 / k as f64;
                let mut rng = Stream::new(seed, Purpose::SplitGroups, &[0]);
                let fold_of = place(classes, n_groups, None, &|_| vec![share; k], &mut rng);
                Folds::Grouped {
                    classes,
                    n_groups,
                    seed,
                    k,
                    fold_of,
                    val_fraction,
                }
            }
        }
    }

    /// Fold `fold`'s lists, and with groups the requested shares per class.
    fn fold(&self, fold: usize) -> (Lists, Vec<Option<[f64; 3]>>) {
        match self {
            Folds::Theirs {
                classes,
                orders,
                chunks,
                val_fraction,
            } => {
                let mut lists: Lists = Default::default();
                for (c, order) in orders.iter().enumerate() {
                    let chunks = &chunks[c];
                    lists[2].extend(order[chunks[fold].clone()].iter().map(|&i| (c, i)));
                    let pool: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|&(f, _)| f != fold)
                        .flat_map(|(_, r)| order[r.clone()].iter().copied())
                        .collect();
                    let val_n = cut::val_count(order.len(), pool.len(), *val_fraction);
                    lists[1].extend(pool[..val_n].iter().map(|&i| (c, i)));
                    lists[0].extend(pool[val_n..].iter().map(|&i| (c, i)));
                }
                (lists, vec![None; classes.len()])
            }
            Folds::Grouped {
                classes,
                n_groups,
                seed,
                k,
                fold_of,
                val_fraction,
            } => grouped_fold(classes, *n_groups, *seed, *k, fold_of, fold, *val_fraction),
        }
    }
}

/// Writes (or only describes) one split.
struct Emit<'a> {
    classes: &'a [Class<'a>],
    created_at: Option<String>,
    group_meta: Option<(Value, Value)>,
}

impl Emit<'_> {
    fn finish(&self, mut job: Job, status: Status) -> Result<SplitReport, PrepareError> {
        if let Some((by, n)) = &self.group_meta {
            job.extra.insert("group_by".into(), by.clone());
            job.extra.insert("groups".into(), n.clone());
        }
        let rows = job.rows(self.classes);
        if status == Status::Written {
            job.write(self.classes, &rows, self.created_at.as_deref())?;
        }
        Ok(SplitReport {
            index: job.index,
            path: job.path,
            status,
            rows,
        })
    }
}

/// One split file to write.
struct Job {
    index: SplitIndex,
    path: PathBuf,
    lists: Lists,
    /// The mode's metadata keys, after the common ones.
    extra: Map<String, Value>,
    /// Per class (label order), with groups: the requested shares of train, val, test.
    requested: Vec<Option<[f64; 3]>>,
}

impl Job {
    fn rows(&self, classes: &[Class]) -> Vec<ClassRow> {
        classes
            .iter()
            .enumerate()
            .map(|(c, class)| ClassRow {
                name: class.spec.name.clone(),
                total: class.files.len(),
                counts: self
                    .lists
                    .each_ref()
                    .map(|l| l.iter().filter(|&&(k, _)| k == c).count()),
                requested: self.requested[c],
            })
            .collect()
    }

    /// Writes the file; `rows` are this split's [`Job::rows`] (its `class_samples`).
    fn write(
        &self,
        classes: &[Class],
        rows: &[ClassRow],
        created_at: Option<&str>,
    ) -> Result<(), PrepareError> {
        let entries = |list: &[(usize, usize)]| -> Vec<Entry> {
            list.iter()
                .map(|&(c, i)| Entry {
                    path: &classes[c].files[i],
                    label: classes[c].spec.label,
                })
                .collect()
        };
        let [train, val, test] = self.lists.each_ref().map(|l| entries(l));
        let mut m = Map::new();
        if let Some(t) = created_at {
            m.insert("created_at".into(), t.into());
        }
        m.insert(
            "total_samples".into(),
            (train.len() + val.len() + test.len()).into(),
        );
        m.insert("train_samples".into(), train.len().into());
        m.insert("val_samples".into(), val.len().into());
        m.insert("test_samples".into(), test.len().into());
        // `classes` in the config's order (their dict comprehension over the YAML mapping);
        // everything else per class in label order.
        let mut config_order: Vec<&Class> = classes.iter().collect();
        config_order.sort_by_key(|c| c.config_index);
        m.insert(
            "classes".into(),
            Value::Object(
                config_order
                    .iter()
                    .map(|c| (c.spec.name.clone(), c.spec.label.into()))
                    .collect(),
            ),
        );
        m.insert(
            "class_samples".into(),
            Value::Object(
                rows.iter()
                    .map(|r| {
                        let mut o = Map::new();
                        o.insert("total".into(), r.total.into());
                        o.insert("train".into(), r.counts[0].into());
                        o.insert("val".into(), r.counts[1].into());
                        o.insert("test".into(), r.counts[2].into());
                        (r.name.clone(), Value::Object(o))
                    })
                    .collect(),
            ),
        );
        m.insert(
            "source_paths".into(),
            Value::Object(
                classes
                    .iter()
                    .map(|c| (c.spec.name.clone(), c.spec.path.clone().into()))
                    .collect(),
            ),
        );
        m.extend(self.extra.clone());
        let doc = SplitFile {
            metadata: m,
            train,
            val,
            test,
        };
        crate::output::write_file_atomically(&self.path, "split file", false, |w| {
            write::write(w, &doc)
        })
        .map_err(PrepareError::from)
    }
}

/// Their ratio mode: one generator for all classes, in label order.
fn ratio_lists(classes: &[Class], seed: i128, train: f64, val: f64) -> Lists {
    let mut rng = PyRandom::new(seed);
    let mut lists: Lists = Default::default();
    for (c, class) in classes.iter().enumerate() {
        let mut order: Vec<usize> = (0..class.files.len()).collect();
        rng.shuffle(&mut order);
        let (t, v) = cut::ratio_cuts(order.len(), train, val);
        for (pos, &i) in order.iter().enumerate() {
            let list = if pos < t {
                0
            } else if pos < v {
                1
            } else {
                2
            };
            lists[list].push((c, i));
        }
    }
    lists
}

/// Grouped k-fold, one fold: the groups of the other folds go to val and train.
fn grouped_fold(
    classes: &[Class],
    n_groups: usize,
    seed: u64,
    k: usize,
    fold_of: &[usize],
    fold: usize,
    val_fraction: f64,
) -> (Lists, Vec<Option<[f64; 3]>>) {
    let share = 1.0 / k as f64;
    let in_pool: Vec<bool> = fold_of.iter().map(|&f| f != fold).collect();
    let totals: Vec<usize> = classes.iter().map(|c| c.files.len()).collect();
    let pool = pool_counts(classes, &in_pool);
    let val_n: Vec<usize> = totals
        .iter()
        .zip(&pool)
        .map(|(&n, &p)| cut::val_count(n, p, val_fraction))
        .collect();
    // Val and train targets as shares of the class, so the deviations compare with the
    // test folds'.
    let target = |c: usize| {
        let n = totals[c].max(1) as f64;
        vec![val_n[c] as f64 / n, (pool[c] - val_n[c]) as f64 / n]
    };
    let mut rng = Stream::new(seed, Purpose::SplitGroups, &[1, fold as u64]);
    let sub = place(classes, n_groups, Some(&in_pool), &target, &mut rng);
    let bins: Vec<usize> = (0..n_groups)
        .map(|g| {
            if !in_pool[g] {
                2
            } else if sub[g] == 0 {
                1
            } else {
                0
            }
        })
        .collect();
    // What was asked: 1/k of the class tested, its val count, the rest trained.
    let requested = (0..classes.len())
        .map(|c| {
            let val = val_n[c] as f64 / totals[c].max(1) as f64;
            Some([1.0 - share - val, val, share])
        })
        .collect();
    (lists_from_bins(classes, &bins), requested)
}

/// Images of each class among the groups marked `true`.
fn pool_counts(classes: &[Class], in_pool: &[bool]) -> Vec<usize> {
    classes
        .iter()
        .map(|c| c.groups.iter().filter(|&&g| in_pool[g]).count())
        .collect()
}

/// Places groups (all, or those marked in `only`) into bins; `shares(class)` gives each
/// bin's share of a class. Groups outside `only` get bin 0 (unused by the caller).
fn place(
    classes: &[Class],
    n_groups: usize,
    only: Option<&[bool]>,
    shares: &dyn Fn(usize) -> Vec<f64>,
    rng: &mut Stream,
) -> Vec<usize> {
    let k = classes.len();
    let mut counts: Vec<groups::Members> = vec![Vec::new(); n_groups];
    for (c, class) in classes.iter().enumerate() {
        for &g in &class.groups {
            match counts[g].last_mut() {
                Some((last, n)) if *last == c => *n += 1,
                _ => counts[g].push((c, 1)),
            }
        }
    }
    let members: Vec<usize> = (0..n_groups)
        .filter(|&g| only.is_none_or(|o| o[g]))
        .collect();
    let totals: Vec<u32> = classes.iter().map(|c| c.files.len() as u32).collect();
    let per_class: Vec<Vec<f64>> = (0..k).map(shares).collect();
    let bins = per_class.first().map_or(1, Vec::len);
    let targets: Vec<Vec<f64>> = (0..bins)
        .map(|b| {
            (0..k)
                .map(|c| per_class[c][b] * f64::from(totals[c]))
                .collect()
        })
        .collect();
    let picked: Vec<groups::Members> = members
        .iter()
        .map(|&g| std::mem::take(&mut counts[g]))
        .collect();
    let placed = groups::assign(&picked, &targets, &totals, rng);
    let mut bin = vec![0; n_groups];
    for (&g, &b) in members.iter().zip(&placed) {
        bin[g] = b;
    }
    bin
}

/// Lists from each group's bin (0 train, 1 val, 2 test); within a class, files stay in
/// path order.
fn lists_from_bins(classes: &[Class], bins: &[usize]) -> Lists {
    let mut lists: Lists = Default::default();
    for (c, class) in classes.iter().enumerate() {
        for (i, &g) in class.groups.iter().enumerate() {
            lists[bins[g]].push((c, i));
        }
    }
    lists
}

/// Each file's group; returns the number of groups.
fn find_groups(
    config: &Path,
    by: &GroupBy,
    classes: &mut [Class],
    warnings: &mut Vec<String>,
) -> Result<usize, PrepareError> {
    let table = match by {
        GroupBy::Csv {
            file,
            path_column,
            group_column,
        } => Some(read_table(file, path_column, group_column)?),
        GroupBy::Regex(_) => None,
    };
    let mut ids: Vec<String> = Vec::new();
    let mut unmatched: Vec<&str> = Vec::new();
    let mut unmatched_count = 0usize;
    let mut owner: Vec<(usize, usize)> = Vec::new();
    for (c, class) in classes.iter().enumerate() {
        for (i, path) in class.files.iter().enumerate() {
            let id = match (by, &table) {
                (GroupBy::Regex(re), _) => {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    re.captures(name)
                        .and_then(|m| m.name("group"))
                        .map(|m| m.as_str().to_owned())
                }
                (_, Some(t)) => t.get(path).cloned(),
                _ => None,
            };
            match id {
                Some(id) => {
                    ids.push(id);
                    owner.push((c, i));
                }
                None => {
                    unmatched_count += 1;
                    if unmatched.len() < 5 {
                        unmatched.push(path);
                    }
                }
            }
        }
    }
    if unmatched_count > 0 {
        let how = match by {
            GroupBy::Regex(re) => format!("the regex {} does not match", re.as_str()),
            GroupBy::Csv { file, .. } => format!("not listed in {}", file.display()),
        };
        let shown: Vec<String> = unmatched
            .iter()
            .map(|p| crate::text::escape(p).into_owned())
            .collect();
        return Err(PrepareError::Groups {
            config: config.to_owned(),
            message: format!(
                "{unmatched_count} file(s) have no group ({how}): {}{}",
                shown.join(", "),
                if unmatched_count > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        });
    }
    let (numbers, names) = groups::number_groups(ids.iter().map(String::as_str));
    let n_groups = names.len();
    for class in classes.iter_mut() {
        class.groups = vec![0; class.files.len()];
    }
    // Each group's first class, and whether another one follows.
    let mut first: Vec<Option<usize>> = vec![None; n_groups];
    let mut is_mixed = vec![false; n_groups];
    for (&(c, i), &g) in owner.iter().zip(&numbers) {
        classes[c].groups[i] = g;
        match first[g] {
            None => first[g] = Some(c),
            Some(f) if f != c => is_mixed[g] = true,
            Some(_) => {}
        }
    }
    let mixed = is_mixed.iter().filter(|&&m| m).count();
    if mixed > 0 {
        warnings.push(format!(
            "{mixed} group(s) have images of more than one class; each is placed whole and counts in each of its classes"
        ));
    }
    Ok(n_groups)
}

/// `group_by.csv`: path (normalised as pathlib prints it) -> group.
fn read_table(
    file: &Path,
    path_column: &str,
    group_column: &str,
) -> Result<std::collections::HashMap<String, String>, PrepareError> {
    let err = |message: String| -> PrepareError {
        PrepareError::Table {
            file: file.to_owned(),
            message,
        }
    };
    let bytes = crate::input::read_bounded(file, MAX_CSV_BYTES)
        .map_err(|e| err(format!("cannot read group table: {e}")))?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let headers = r
        .headers()
        .map_err(|e| err(crate::text::one_line(&e.to_string()).into_owned()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            err(format!(
                "no column {name:?} in the header (found {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (pc, gc) = (column(path_column)?, column(group_column)?);
    let mut table = std::collections::HashMap::new();
    for (row, record) in r.records().enumerate() {
        let record = record.map_err(|e| err(crate::text::one_line(&e.to_string()).into_owned()))?;
        let line = row + 2;
        let (Some(path), Some(group)) = (record.get(pc), record.get(gc)) else {
            return Err(err(format!(
                "line {line}: expected columns {path_column} and {group_column}"
            )));
        };
        if group.is_empty() {
            return Err(err(format!("line {line}: {group_column} is empty")));
        }
        let key = scan::pathlib_str(path);
        if let Some(old) = table.insert(key, group.to_owned()) {
            if old != group {
                return Err(err(format!(
                    "line {line}: {} is listed again with another group ({old} before, {group} here)",
                    crate::text::escape(path)
                )));
            }
        }
    }
    Ok(table)
}

fn class_error(config: &Path, spec: &config::ClassSpec, e: scan::ScanError) -> PrepareError {
    let p = crate::text::escape(&spec.path);
    let message = match e {
        scan::ScanError::Missing => format!("class directory not found: {p}"),
        scan::ScanError::NotADirectory => format!("not a directory: {p}"),
        scan::ScanError::Empty => format!(
            "no image files (*.{} and upper case) in {p}",
            scan::EXTENSIONS.join(", *.")
        ),
        scan::ScanError::NotUtf8(name) => {
            format!(
                "{p}: file name {} is not UTF-8; rename it",
                crate::text::escape(&name)
            )
        }
        scan::ScanError::Io(e) => format!("cannot read {p}: {e}"),
    };
    PrepareError::Class {
        config: config.to_owned(),
        class: spec.name.clone(),
        message,
    }
}

fn int_value(n: i128) -> Value {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(i), _) => i.into(),
        (_, Ok(u)) => u.into(),
        // Seeds come from YAML integers, which fit one of the two.
        _ => Value::from(n as f64),
    }
}

/// A ratio as the user wrote it: `0` stays an integer, `0.0` a float.
fn number_value(n: Number) -> Value {
    if n.integer {
        (n.value as i64).into()
    } else {
        n.value.into()
    }
}

fn group_by_value(by: &GroupBy) -> Value {
    let mut m = Map::new();
    match by {
        GroupBy::Regex(re) => {
            m.insert("regex".into(), re.as_str().into());
        }
        GroupBy::Csv {
            file,
            path_column,
            group_column,
        } => {
            m.insert("csv".into(), file.to_string_lossy().into_owned().into());
            m.insert("path_column".into(), path_column.clone().into());
            m.insert("group_column".into(), group_column.clone().into());
        }
    }
    Value::Object(m)
}

/// `datetime.now().isoformat(timespec="seconds")`: local time, no zone.
fn local_timestamp() -> String {
    let now = libc_time();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        now.tm_year + 1900,
        now.tm_mon + 1,
        now.tm_mday,
        now.tm_hour,
        now.tm_min,
        now.tm_sec
    )
}

fn libc_time() -> libc::tm {
    // SAFETY: time(NULL) has no preconditions; localtime_r writes into the zeroed tm we own.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    }
}

#[cfg(test)]
mod tests;

//! The `split` job: the user's data-preparation step. Class folders and their YAML in, split
//! files out: in ratio and repeated k-fold mode exactly the files their Python writes (bar
//! `created_at`), and with `split.group_by` splits where no group straddles two lists.
//!
//! Over 500 lines on purpose: the job's flow and its two modes' driving (ratio and k-fold,
//! with and without groups); each computation is in the modules above.
//!
//! This file is the job's flow; each step is a module of its own: [`config`] (their YAML),
//! [`scan`] (the class folders), `membership` (each file's group), `lists` (their
//! ratio cut and k-fold, our group placement's bins, from [`cut`]'s counts and
//! [`groups`]' placement), `twins` (`--check-leaks`), `emit` and [`mod@write`] (the
//! files, in their JSON layout) and [`report`] (the summary).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Map;

use crate::config::ConfigError;
use crate::output::{check_destination, DestinationError, WriteError};
use crate::rng::{OsSeedError, Purpose, Stream};

pub mod config;
pub mod cut;
mod emit;
pub mod groups;
mod lists;
mod membership;
pub mod report;
pub mod scan;
mod twins;
pub mod write;

use config::{Mode, Number, PrepConfig};
use emit::{group_by_value, int_value, number_value, Emit, Job};
use lists::Folds;

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

/// Runs the whole job.
pub fn run(req: &Request) -> Result<Outcome, PrepareError> {
    let cfg = crate::config::parse_with(&req.config, &req.overrides, PrepConfig::parse)?;
    let mut warnings = config_warnings(&req.config, &cfg);
    let force = req.force || cfg.force;
    let status_of = |path: &Path| match (path.exists() && !force, req.dry_run) {
        (true, false) => Status::Kept,
        (true, true) => Status::WouldKeep,
        (false, false) => Status::Written,
        (false, true) => Status::WouldWrite,
    };
    let save_dir = PathBuf::from(&cfg.save_dir);

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

    let mut classes = read_classes(&req.config, &cfg)?;
    let group_count = match &cfg.group_by {
        Some(g) => Some(membership::find_groups(
            &req.config,
            g,
            &mut classes,
            &mut warnings,
        )?),
        None => None,
    };
    // Every output's path and fate are known before any list is made: the destination
    // checks (also in a dry run) and the folder come first, so a bad path fails before
    // anything is written.
    let paths = output_paths(&cfg, &save_dir);
    let statuses: Vec<Status> = paths.iter().map(|(_, p)| status_of(p)).collect();
    check_outputs(req, &cfg, &paths, &statuses)?;
    if let (Some(g), Mode::KFold { n_folds, .. }) = (group_count, &cfg.mode) {
        if g < *n_folds as usize {
            warnings.push(format!(
                "only {g} group(s) for {n_folds} folds: some test folds are empty"
            ));
        }
    }

    let splits = Splits::new(
        req,
        &cfg,
        &classes,
        group_count,
        &save_dir,
        &paths,
        &statuses,
    );
    let (results, drawn_seed) = splits.make(&cfg.mode, &mut warnings)?;
    Ok(Outcome {
        splits: gather(results)?,
        warnings,
        drawn_seed,
        groups: group_count,
    })
}

/// The config's keys this mode does not read, and its other warnings, naming the file.
fn config_warnings(config: &Path, cfg: &PrepConfig) -> Vec<String> {
    cfg.unused
        .iter()
        .map(|k| format!("{}: {k} is not used in this mode", config.display()))
        .chain(
            cfg.warnings
                .iter()
                .map(|w| format!("{}: {w}", config.display())),
        )
        .collect()
}

/// Each class folder's files, in label order.
fn read_classes<'c>(config: &Path, cfg: &'c PrepConfig) -> Result<Vec<Class<'c>>, PrepareError> {
    let mut order: Vec<(usize, &config::ClassSpec)> = cfg.classes.iter().enumerate().collect();
    order.sort_by_key(|(_, c)| c.label);
    order
        .into_iter()
        .map(|(config_index, spec)| {
            let files = scan::scan(&spec.path).map_err(|e| class_error(config, spec, e))?;
            Ok(Class {
                spec,
                config_index,
                files,
                groups: Vec::new(),
            })
        })
        .collect()
}

/// Every split file's index and path: one in ratio mode, `n_repeats x n_folds` in k-fold.
fn output_paths(cfg: &PrepConfig, save_dir: &Path) -> Vec<(SplitIndex, PathBuf)> {
    match &cfg.mode {
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
    }
}

/// The destination checks of every file that would be written (also in a dry run).
fn check_outputs(
    req: &Request,
    cfg: &PrepConfig,
    paths: &[(SplitIndex, PathBuf)],
    statuses: &[Status],
) -> Result<(), PrepareError> {
    let mut inputs: Vec<&Path> = vec![&req.config];
    if let Some(config::GroupBy::Csv { file, .. }) = &cfg.group_by {
        inputs.push(file);
    }
    for ((_, path), status) in paths.iter().zip(statuses) {
        if matches!(status, Status::Written | Status::WouldWrite) {
            check_destination(path, &inputs).map_err(|e| match e {
                // A file where the folder goes is `split.save_dir`'s (or above it).
                DestinationError::NotAFolder { blocker, .. } => PrepareError::SaveDir {
                    config: req.config.clone(),
                    message: format!("not a directory: {}", blocker.display()),
                },
                other => other.into(),
            })?;
        }
    }
    Ok(())
}

/// The split files' reports, or the first failure; when some files were written before
/// it, [`PrepareError::Partial`] says how many.
fn gather(
    results: Vec<Result<SplitReport, PrepareError>>,
) -> Result<Vec<SplitReport>, PrepareError> {
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
    let Some(e) = first_error else {
        return Ok(splits);
    };
    let written = splits
        .iter()
        .filter(|s| s.status == Status::Written)
        .count();
    if written == 0 {
        return Err(e);
    }
    Err(PrepareError::Partial {
        written,
        total,
        first: Box::new(e),
    })
}

/// K-fold mode's settings.
struct KFold<'a> {
    n_folds: u32,
    n_repeats: u32,
    repeat_seeds: &'a [i128],
    val_fraction: Number,
}

/// What making the split files needs, once the classes are read and the outputs checked.
struct Splits<'a> {
    config: &'a Path,
    classes: &'a [Class<'a>],
    group_count: Option<usize>,
    save_dir: &'a Path,
    paths: &'a [(SplitIndex, PathBuf)],
    statuses: &'a [Status],
    /// `--check-leaks`: files with another's pixels (empty without it).
    twins: HashMap<(usize, usize), usize>,
    emit: Emit<'a>,
}

type Results = Vec<Result<SplitReport, PrepareError>>;

impl<'a> Splits<'a> {
    fn new(
        req: &'a Request,
        cfg: &PrepConfig,
        classes: &'a [Class<'a>],
        group_count: Option<usize>,
        save_dir: &'a Path,
        paths: &'a [(SplitIndex, PathBuf)],
        statuses: &'a [Status],
    ) -> Splits<'a> {
        Splits {
            config: &req.config,
            classes,
            group_count,
            save_dir,
            paths,
            statuses,
            twins: if req.check_leaks {
                twins::identical_images(classes)
            } else {
                HashMap::new()
            },
            emit: Emit {
                classes,
                created_at: req.created_at.then(emit::local_timestamp),
                group_meta: match (group_count, &cfg.group_by) {
                    (Some(g), Some(by)) => Some((group_by_value(by), g.into())),
                    _ => None,
                },
            },
        }
    }

    /// The mode's split files (and the seed drawn from the OS, in ratio mode without one).
    fn make(
        &self,
        mode: &Mode,
        warnings: &mut Vec<String>,
    ) -> Result<(Results, Option<i128>), PrepareError> {
        match mode {
            Mode::Ratio {
                seed,
                train,
                val,
                test,
            } => self.ratio(*seed, [*train, *val, *test], warnings),
            Mode::KFold {
                n_folds,
                n_repeats,
                repeat_seeds,
                val_fraction,
            } => {
                let folds = KFold {
                    n_folds: *n_folds,
                    n_repeats: *n_repeats,
                    repeat_seeds,
                    val_fraction: *val_fraction,
                };
                Ok((self.kfold(&folds, warnings)?, None))
            }
        }
    }
}

impl Splits<'_> {
    /// Creates the folder once a split is to be written; each mode makes and checks its
    /// splits (`--check-leaks`) before this.
    fn make_folder(&self) -> Result<(), PrepareError> {
        if self.statuses.contains(&Status::Written) {
            emit::prepare_folder(self.config, self.save_dir, &self.paths[0].1)
        } else {
            Ok(())
        }
    }

    /// Ratio mode's one file (and the seed drawn from the OS when `split.seed` is null).
    fn ratio(
        &self,
        seed: Option<i128>,
        [train, val, test]: [Number; 3],
        warnings: &mut Vec<String>,
    ) -> Result<(Results, Option<i128>), PrepareError> {
        let (seed, drawn_seed) = match seed {
            Some(s) => (s, None),
            None => {
                let s = i128::from(crate::rng::os_seed()?);
                (s, Some(s))
            }
        };
        let classes = self.classes;
        let lists = match self.group_count {
            None => lists::ratio_lists(classes, seed, train.value, val.value),
            Some(g) => {
                let shares = [train.value, val.value, test.value];
                let mut rng = Stream::new(seed as u64, Purpose::SplitGroups, &[0]);
                let bins = lists::place(classes, g, None, &|_| shares.to_vec(), &mut rng);
                lists::lists_from_bins(classes, &bins)
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
        twins::refuse_leaks(&self.twins, classes, &lists, &self.paths[0].1)?;
        self.make_folder()?;
        let requested = self
            .group_count
            .map(|_| [train.value, val.value, test.value]);
        let mut extra = Map::new();
        extra.insert("seed".into(), int_value(seed));
        extra.insert("train_ratio".into(), number_value(train));
        extra.insert("val_ratio".into(), number_value(val));
        extra.insert("test_ratio".into(), number_value(test));
        let job = Job {
            index: None,
            path: self.paths[0].1.clone(),
            lists,
            extra,
            requested: vec![requested; classes.len()],
        };
        Ok((vec![self.emit.finish(job, self.statuses[0])], drawn_seed))
    }

    /// K-fold mode's files: one repeat at a time, its folds in parallel, each split's
    /// lists dropped once written, so memory stays one repeat's shuffles plus a split per
    /// thread.
    fn kfold(&self, f: &KFold, warnings: &mut Vec<String>) -> Result<Results, PrepareError> {
        let k = f.n_folds as usize;
        for class in self.classes {
            if class.files.len() < k {
                warnings.push(format!(
                    "class '{}' has {} samples, fewer than n_folds ({k}); some of its test folds are empty",
                    class.spec.name,
                    class.files.len()
                ));
            }
        }
        let folds_of = |seed| {
            Folds::new(
                self.classes,
                self.group_count,
                seed,
                k,
                f.val_fraction.value,
            )
        };
        // With identical images present, every split is checked before the first is
        // written (the folds are cheap to cut again).
        if !self.twins.is_empty() {
            for (repeat, &seed) in f.repeat_seeds.iter().enumerate() {
                let folds = folds_of(seed);
                for fold in 0..k {
                    let (lists, _) = folds.fold(fold);
                    let path = &self.paths[repeat * k + fold].1;
                    twins::refuse_leaks(&self.twins, self.classes, &lists, path)?;
                }
            }
        }
        self.make_folder()?;
        let mut results = Vec::with_capacity(self.paths.len());
        for (repeat, &seed) in f.repeat_seeds.iter().enumerate() {
            let folds = folds_of(seed);
            let batch: Results = (0..k)
                .into_par_iter()
                .map(|fold| {
                    let (lists, requested) = folds.fold(fold);
                    let index = repeat * k + fold;
                    let mut extra = Map::new();
                    extra.insert("mode".into(), "kfold".into());
                    extra.insert("split_index".into(), index.into());
                    extra.insert("repeat".into(), repeat.into());
                    extra.insert("fold".into(), fold.into());
                    extra.insert("n_folds".into(), f.n_folds.into());
                    extra.insert("n_repeats".into(), f.n_repeats.into());
                    extra.insert("repeat_seed".into(), int_value(seed));
                    extra.insert("val_fraction".into(), number_value(f.val_fraction));
                    let job = Job {
                        index: self.paths[index].0,
                        path: self.paths[index].1.clone(),
                        lists,
                        extra,
                        requested,
                    };
                    self.emit.finish(job, self.statuses[index])
                })
                .collect();
            results.extend(batch);
        }
        Ok(results)
    }
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

#[cfg(test)]
mod tests;

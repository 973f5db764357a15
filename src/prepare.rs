//! The `split` job: the user's data-preparation step. Class folders and their YAML in, split
//! files out: in ratio and repeated k-fold mode exactly the files their Python writes (bar
//! `created_at`), and with `split.group_by` splits where no group straddles two lists.
//!
//! The I/O is here; the rules are pure, in [`cut`] (their counts), [`pyrandom`] (their
//! shuffle), [`groups`] (our group placement) and [`write`] (their JSON layout).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::output::check_destination;
use crate::rng::{Purpose, Stream};

pub mod config;
pub mod cut;
pub mod groups;
pub mod pyrandom;
pub mod report;
pub mod scan;
pub mod write;

use config::{GroupBy, Mode, Number, PrepConfig};
use pyrandom::PyRandom;
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
    pub index: Option<(usize, usize, usize)>,
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

/// The three lists of one split, as (class, file) positions in label order.
type Lists = [Vec<(usize, usize)>; 3];

/// Runs the whole job.
pub fn run(req: &Request) -> Result<Outcome, Error> {
    let cfg = PrepConfig::load(&req.config)?;
    let force = req.force || cfg.force;
    let mut warnings: Vec<String> = cfg
        .unused
        .iter()
        .map(|k| format!("{}: {k} is not used in this mode", req.config.display()))
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

    let mut drawn_seed = None;
    let mut jobs: Vec<Job> = Vec::new();
    match &cfg.mode {
        Mode::Ratio {
            seed,
            train,
            val,
            test,
        } => {
            let seed = match seed {
                Some(s) => *s,
                None => {
                    let s = i128::from(crate::balance::os_seed()?);
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
            let requested = group_count.map(|_| [train.value, val.value, test.value]);
            let mut extra = Map::new();
            extra.insert("seed".into(), int_value(seed));
            extra.insert("train_ratio".into(), number_value(*train));
            extra.insert("val_ratio".into(), number_value(*val));
            extra.insert("test_ratio".into(), number_value(*test));
            jobs.push(Job {
                index: None,
                path: save_dir.join(&cfg.split_file),
                lists,
                extra,
                requested: vec![requested; classes.len()],
            });
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
            for (repeat, &seed) in repeat_seeds.iter().enumerate() {
                let folds = match group_count {
                    None => kfold_lists(&classes, seed, k, val_fraction.value),
                    Some(g) => grouped_kfold_lists(&classes, g, seed as u64, k, val_fraction.value),
                };
                for (fold, (lists, requested)) in folds.into_iter().enumerate() {
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
                    jobs.push(Job {
                        index: Some((index, repeat, fold)),
                        path: save_dir.join(cfg.split_file.replace("{index}", &index.to_string())),
                        lists,
                        extra,
                        requested,
                    });
                }
            }
        }
    }

    if let (Some(g), Some(by)) = (group_count, &cfg.group_by) {
        for job in &mut jobs {
            job.extra.insert("group_by".into(), group_by_value(by));
            job.extra.insert("groups".into(), g.into());
        }
    }
    let created_at = req.created_at.then(local_timestamp);
    let statuses: Vec<Status> = jobs.iter().map(|j| status_of(&j.path)).collect();
    if !req.dry_run {
        let mut inputs: Vec<&Path> = vec![&req.config];
        inputs.extend(csv_path);
        for (job, status) in jobs.iter().zip(&statuses) {
            if *status == Status::Written {
                check_destination(&job.path, &inputs)?;
            }
        }
        if statuses.contains(&Status::Written) {
            std::fs::create_dir_all(&save_dir).map_err(|source| Error::Write {
                path: save_dir.clone(),
                what: "split folder",
                source,
            })?;
        }
        jobs.par_iter()
            .zip(&statuses)
            .filter(|(_, s)| **s == Status::Written)
            .try_for_each(|(job, _)| job.write(&classes, created_at.as_deref()))?;
    }
    let splits = jobs
        .iter()
        .zip(statuses)
        .map(|(job, status)| SplitReport {
            index: job.index,
            path: job.path.clone(),
            status,
            rows: job.rows(&classes),
        })
        .collect();
    Ok(Outcome {
        splits,
        warnings,
        drawn_seed,
        groups: group_count,
    })
}

/// One split file to write.
struct Job {
    index: Option<(usize, usize, usize)>,
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

    fn write(&self, classes: &[Class], created_at: Option<&str>) -> Result<(), Error> {
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
        let rows = self.rows(classes);
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
        crate::balance::write_file_atomically(&self.path, "split file", false, |w| {
            write::write(w, &doc)
        })
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

/// Their k-fold mode for one repeat: each fold's lists (no requested shares: the counts
/// are their rules', exactly).
fn kfold_lists(
    classes: &[Class],
    seed: i128,
    k: usize,
    val_fraction: f64,
) -> Vec<(Lists, Vec<Option<[f64; 3]>>)> {
    let mut rng = PyRandom::new(seed);
    let orders: Vec<Vec<usize>> = classes
        .iter()
        .map(|class| {
            let mut order: Vec<usize> = (0..class.files.len()).collect();
            rng.shuffle(&mut order);
            order
        })
        .collect();
    (0..k)
        .map(|fold| {
            let mut lists: Lists = Default::default();
            for (c, order) in orders.iter().enumerate() {
                let chunks = cut::chunks(order.len(), k);
                lists[2].extend(order[chunks[fold].clone()].iter().map(|&i| (c, i)));
                let pool: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|&(f, _)| f != fold)
                    .flat_map(|(_, r)| order[r.clone()].iter().copied())
                    .collect();
                let val_n = cut::val_count(order.len(), pool.len(), val_fraction);
                lists[1].extend(pool[..val_n].iter().map(|&i| (c, i)));
                lists[0].extend(pool[val_n..].iter().map(|&i| (c, i)));
            }
            (lists, vec![None; classes.len()])
        })
        .collect()
}

/// Grouped k-fold for one repeat: groups to test folds, then per fold the pool's groups
/// to val and train.
fn grouped_kfold_lists(
    classes: &[Class],
    n_groups: usize,
    seed: u64,
    k: usize,
    val_fraction: f64,
) -> Vec<(Lists, Vec<Option<[f64; 3]>>)> {
    let share = 1.0 / k as f64;
    let mut rng = Stream::new(seed, Purpose::SplitGroups, &[0]);
    let fold_of = place(classes, n_groups, None, &|_| vec![share; k], &mut rng);
    (0..k)
        .map(|fold| {
            let in_pool: Vec<bool> = fold_of.iter().map(|&f| f != fold).collect();
            let totals: Vec<usize> = classes.iter().map(|c| c.files.len()).collect();
            let pool = pool_counts(classes, &in_pool);
            let val_n: Vec<usize> = totals
                .iter()
                .zip(&pool)
                .map(|(&n, &p)| cut::val_count(n, p, val_fraction))
                .collect();
            // Val and train targets as shares of the class, so the deviations compare
            // with the test folds'.
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
            let requested = (0..classes.len())
                .map(|c| {
                    let t = target(c);
                    Some([t[1], t[0], if totals[c] == 0 { 0.0 } else { share }])
                })
                .collect();
            (lists_from_bins(classes, &bins), requested)
        })
        .collect()
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
) -> Result<usize, Error> {
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
        }
        .into());
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
) -> Result<std::collections::HashMap<String, String>, Error> {
    let err = |message: String| -> Error {
        PrepareError::Table {
            file: file.to_owned(),
            message,
        }
        .into()
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

fn class_error(config: &Path, spec: &config::ClassSpec, e: scan::ScanError) -> Error {
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
    .into()
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

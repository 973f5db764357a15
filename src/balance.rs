//! The `balance` job: config + split in, manifest out. All file I/O of the command lives
//! here; the decisions live in [`crate::plan`], the bytes in [`crate::manifest`].

use std::path::{Path, PathBuf};

use crate::config::overrides::Overrides;
use crate::config::ConfigError;
use crate::config::{Config, SeedSetting};
use crate::input;
use crate::manifest::{self, Provenance, SyntheticSource};
use crate::output::{check_destination, write_atomically, DestinationError, WriteError};
use crate::plan::{self, Plan, PlanError, PlanInput, SyntheticInput};
use crate::rng::{os_seed, OsSeedError};
use crate::split::{Entry, Split, SplitError};

/// Why a `balance` cannot produce its manifest.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The split and config are each valid but do not fit together.
    #[error("{split}: {source}")]
    Plan {
        split: PathBuf,
        #[source]
        source: PlanError,
    },
    /// Arguments or config keys that do not fit together (no `data.split_file`, `--out`
    /// with several splits).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Selection(#[from] UnreadableSelection),
    #[error(transparent)]
    Seed(#[from] OsSeedError),
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl BalanceError {
    /// 2 for bad input, 1 when the environment failed (no seed, no room to write).
    pub fn exit_code(&self) -> i32 {
        match self {
            BalanceError::Seed(_) | BalanceError::Write(_) => 1,
            _ => 2,
        }
    }
}

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub config: PathBuf,
    /// `--split`, overriding `data.split_file`.
    pub split: Option<PathBuf>,
    /// `--seed`, overriding `compute.seed`.
    pub seed: Option<u64>,
    /// `--out`; default: `<split dir>/<split stem>.balanced.json`.
    pub out: Option<PathBuf>,
    pub dry_run: bool,
    /// `--fsync`: flush the manifest to stable storage before the rename.
    pub fsync: bool,
    /// The user's `--dotted.key value` overrides, applied to the config before it is read.
    pub overrides: Overrides,
}

/// What was done, for the summary table.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    /// The seed was drawn from the OS because `compute.seed` is null.
    pub seed_from_os: bool,
    pub classes: Vec<String>,
    pub plan: Plan,
    pub split_path: PathBuf,
    pub out_path: PathBuf,
    /// False for `--dry-run`.
    pub written: bool,
}

/// Runs the whole job.
pub fn run(req: &Request) -> Result<Outcome, BalanceError> {
    let config = Config::load_with(&req.config, &req.overrides)?;
    let split_name = split_name(req, &config)?;
    let split_path = PathBuf::from(&split_name);
    let (seed, seed_from_os) = match (req.seed, config.seed) {
        (Some(s), _) => (s, false),
        (None, SeedSetting::Fixed(s)) => (s, false),
        (None, SeedSetting::FromOs) => (os_seed()?, true),
    };
    let out_path = req
        .out
        .clone()
        .unwrap_or_else(|| default_output(&split_path));
    let selection_path = config
        .synthetic
        .as_ref()
        .map(|s| PathBuf::from(&s.split_file));
    if req.dry_run {
        crate::output::clear_stale_beside(&out_path);
    } else {
        let mut inputs = vec![split_path.as_path(), req.config.as_path()];
        inputs.extend(selection_path.as_deref());
        check_destination(&out_path, &inputs)?;
    }

    let mut timer = Timer::from_env();
    let bytes = input::read(&split_path)?;
    let (sha, parsed) = hashed(&bytes, || {
        input::text(&bytes, &split_path).and_then(|text| Split::parse(text, &split_path))
    });
    let split = parsed?;
    timer.lap("read+parse+hash");

    let selection_bytes = match &selection_path {
        Some(p) => Some(read_selection(&req.config, p)?),
        None => None,
    };
    let selection = match (&selection_path, &selection_bytes) {
        (Some(p), Some(bytes)) => Some(parse_selection(p, bytes, split.classes.len())?),
        _ => None,
    };
    let plan = plan_of(&config, &split, &split_path, seed, selection.as_ref())?;
    timer.lap("plan");
    if !req.dry_run {
        let prov = Provenance {
            seed,
            config: config.balancing.as_ref(),
            split_file: &split_name,
            split_sha256: &sha,
            overrides: &req.overrides.recorded(),
            synthetic: selection.as_ref().map(|(entries, sha)| SyntheticSource {
                entries,
                sha256: sha,
            }),
        };
        write_atomically(&out_path, req.fsync, |w| {
            manifest::write(w, &split, &plan, &prov)
        })?;
        timer.lap("write");
    }
    Ok(Outcome {
        seed,
        seed_from_os,
        classes: split.classes.clone(),
        plan,
        split_path,
        out_path,
        written: !req.dry_run,
    })
}

/// `--split`, else `data.split_file`.
fn split_name(req: &Request, config: &Config) -> Result<String, BalanceError> {
    match (&req.split, &config.split_file) {
        (Some(p), _) => Ok(p.to_string_lossy().into_owned()),
        (None, Some(s)) => Ok(s.clone()),
        (None, None) => Err(BalanceError::Usage(format!(
            "{}: data.split_file: missing; set it or pass --split FILE",
            req.config.display()
        ))),
    }
}

/// Synthetic augmentation's selection file cannot be read; the message names the config
/// key that points at it.
#[derive(Debug, thiserror::Error)]
#[error("{config}: data.synthetic_augmentation.split_file: cannot read the sample-selection file {path}: {source}")]
pub struct UnreadableSelection {
    config: PathBuf,
    path: PathBuf,
    source: std::io::Error,
}

/// The bytes of synthetic augmentation's selection file.
pub(crate) fn read_selection(config: &Path, path: &Path) -> Result<Vec<u8>, UnreadableSelection> {
    input::read_bounded(path, input::MAX_INPUT_BYTES).map_err(|source| UnreadableSelection {
        config: config.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// The selection file's `train` entries and its SHA-256.
pub(crate) fn parse_selection<'a>(
    path: &Path,
    bytes: &'a [u8],
    num_classes: usize,
) -> Result<(Vec<Entry<'a>>, String), SplitError> {
    let (sha, parsed) = hashed(bytes, || {
        input::text(bytes, path).and_then(|text| Split::parse_selection(text, path, num_classes))
    });
    Ok((parsed?, sha))
}

/// `bytes`' SHA-256, computed on the other core while `parse` runs on this one.
fn hashed<T>(bytes: &[u8], parse: impl FnOnce() -> T) -> (String, T) {
    std::thread::scope(|s| {
        let hasher = s.spawn(|| input::sha256_hex(bytes));
        let parsed = parse();
        (hasher.join().expect("sha256 does not panic"), parsed)
    })
}

/// The plan of `split` under `config`, with the selection file's entries when synthetic
/// augmentation is on.
fn plan_of(
    config: &Config,
    split: &Split,
    split_path: &Path,
    seed: u64,
    selection: Option<&(Vec<Entry>, String)>,
) -> Result<Plan, BalanceError> {
    let selection_labels: Vec<u32> = selection
        .map(|(entries, _)| entries.iter().map(|e| e.label).collect())
        .unwrap_or_default();
    let labels = split.train_labels();
    plan::plan(&PlanInput {
        labels: &labels,
        classes: &split.classes,
        balancing: config.balancing.as_ref(),
        seed,
        num_classes: config.num_classes,
        synthetic: config.synthetic.as_ref().map(|c| SyntheticInput {
            config: c,
            labels: &selection_labels,
        }),
    })
    .map_err(|source| BalanceError::Plan {
        split: split_path.to_owned(),
        source,
    })
}

/// One split's result in [`run_many`].
pub type SplitResult = (PathBuf, Result<Outcome, BalanceError>);

/// Balances several splits with one config, in parallel, each into the manifest beside it
/// (`--out` is for a single split). Each manifest is the one [`run`] writes for that split
/// alone; a failure in one is returned in its place and the others still complete. With
/// `compute.seed: null` one seed is drawn for all, so the set stays comparable.
pub fn run_many(req: &Request, splits: &[PathBuf]) -> Result<Vec<SplitResult>, BalanceError> {
    use rayon::prelude::*;
    if req.out.is_some() && splits.len() > 1 {
        return Err(BalanceError::Usage(format!(
            "--out takes a single split, found {}; without it each manifest is written beside its split",
            splits.len()
        )));
    }
    let mut req = req.clone();
    let mut drawn = false;
    if req.seed.is_none()
        && Config::load_with(&req.config, &req.overrides)?.seed == SeedSetting::FromOs
    {
        req.seed = Some(os_seed()?);
        drawn = true;
    }
    // Two splits whose manifests would have one name (`x.json` and `x.txt`): the second
    // would replace the first's, so neither is written.
    let mut seen: std::collections::HashMap<PathBuf, &PathBuf> = Default::default();
    for split in splits {
        if let Some(first) = seen.insert(default_output(split), split) {
            return Err(BalanceError::Usage(format!(
                "--split {} and {} would both write {}; rename one of them, or balance each with --out",
                first.display(),
                split.display(),
                default_output(split).display()
            )));
        }
    }
    // One split's manifest must not be another's input (a plain split that happens to be
    // named like a manifest): each output is checked against every split of the set.
    let all: Vec<&Path> = splits.iter().map(PathBuf::as_path).collect();
    Ok(splits
        .par_iter()
        .map(|split| {
            let one = Request {
                split: Some(split.clone()),
                ..req.clone()
            };
            let out = default_output(split);
            let result = if req.dry_run {
                Ok(())
            } else {
                check_destination(&out, &all).map_err(BalanceError::from)
            };
            let result = result.and_then(|()| run(&one)).map(|mut o| {
                o.seed_from_os = drawn;
                o
            });
            (split.clone(), result)
        })
        .collect())
}

/// The `--split` arguments with shell-style patterns (`'cv_split_*.json'`, quoted so the
/// shell left them) expanded in path order, skipping the manifests (`*.balanced.json`) a
/// previous run wrote beside the splits; a pattern that matches nothing is an error, a
/// plain path is kept as given, and a path given twice is balanced once.
pub fn expand_splits(args: &[PathBuf]) -> Result<Vec<PathBuf>, BalanceError> {
    let mut out: Vec<PathBuf> = Vec::new();
    let push = |p: PathBuf, out: &mut Vec<PathBuf>| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for arg in args {
        let text = arg.to_string_lossy();
        if arg.exists() || !text.contains(['*', '?', '[']) {
            push(arg.clone(), &mut out);
            continue;
        }
        let pattern = glob::glob(&text).map_err(|e| {
            BalanceError::Usage(format!("--split {text}: not a valid pattern: {e}"))
        })?;
        let mut found: Vec<PathBuf> = pattern
            .filter_map(Result::ok)
            .filter(|p| !p.to_string_lossy().ends_with(".balanced.json"))
            .collect();
        if found.is_empty() {
            return Err(BalanceError::Usage(format!(
                "--split {text}: no split file matches (manifests, *.balanced.json, are skipped)"
            )));
        }
        found.sort();
        for p in found {
            push(p, &mut out);
        }
    }
    Ok(out)
}

/// `splits/example/train_val_split.json` -> `splits/example/train_val_split.balanced.json`.
pub fn default_output(split: &Path) -> PathBuf {
    let stem = split
        .file_stem()
        .map_or_else(|| "split".into(), |s| s.to_string_lossy());
    split.with_file_name(format!("{stem}.balanced.json"))
}

/// Stage timings on stderr when `BALANCE_SPLIT_TIMINGS` is set: the benchmark's view of
/// where the time goes, off by default so normal output stays byte-stable.
struct Timer(Option<std::time::Instant>);

impl Timer {
    fn from_env() -> Timer {
        Timer(std::env::var_os("BALANCE_SPLIT_TIMINGS").map(|_| std::time::Instant::now()))
    }

    fn lap(&mut self, stage: &str) {
        if let Some(t) = &mut self.0 {
            eprintln!("timing: {stage} {:.3}s", t.elapsed().as_secs_f64());
            *t = std::time::Instant::now();
        }
    }
}

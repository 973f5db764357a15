//! The `balance` job: config + split in, manifest out. All file I/O of the command lives
//! here; the decisions live in [`crate::plan`], the bytes in [`crate::manifest`].

use std::path::{Path, PathBuf};

use crate::config::overrides::Overrides;
use crate::config::{Config, SeedSetting};
use crate::error::Error;
use crate::input;
use crate::manifest::{self, Provenance, SyntheticSource};
use crate::output::{check_destination, AtomicFile};
use crate::pipe::{PipeWriter, WritebackFile};
use crate::plan::{self, Plan, PlanInput, SyntheticInput};
use crate::split::{Entry, Split};

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
pub fn run(req: &Request) -> Result<Outcome, Error> {
    let config = Config::load_with(&req.config, &req.overrides)?;
    let split_name = match (&req.split, &config.split_file) {
        (Some(p), _) => p.to_string_lossy().into_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{}: data.split_file: missing; set it or pass --split FILE",
                req.config.display()
            )))
        }
    };
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
    let bytes: &[u8] = &bytes;
    // Hash on the other core while this one parses.
    let (sha, parsed) = std::thread::scope(|s| {
        let hasher = s.spawn(|| input::sha256_hex(bytes));
        let parsed =
            input::text(bytes, &split_path).and_then(|text| Split::parse(text, &split_path));
        (hasher.join().expect("sha256 does not panic"), parsed)
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
    let selection_labels: Vec<u32> = selection
        .as_ref()
        .map(|(entries, _)| entries.iter().map(|e| e.label).collect())
        .unwrap_or_default();
    let labels = split.train_labels();
    let plan = plan::plan(&PlanInput {
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
    .map_err(|source| Error::Plan {
        split: split_path.clone(),
        source,
    })?;

    timer.lap("plan");
    if !req.dry_run {
        let overrides: Vec<(String, String)> = req
            .overrides
            .0
            .iter()
            .map(|o| (o.key.clone(), o.raw.clone()))
            .collect();
        let prov = Provenance {
            seed,
            config: config.balancing.as_ref(),
            split_file: &split_name,
            split_sha256: &sha,
            overrides: &overrides,
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

/// The bytes of synthetic augmentation's selection file; a file that cannot be read is
/// an error naming the config key that points at it.
pub(crate) fn read_selection(config: &Path, path: &Path) -> Result<Vec<u8>, Error> {
    input::read_bounded(path, input::MAX_INPUT_BYTES).map_err(|e| {
        Error::Usage(format!(
            "{}: data.synthetic_augmentation.split_file: cannot read the sample-selection file {}: {e}",
            config.display(),
            path.display()
        ))
    })
}

/// The selection file's `train` entries and its SHA-256.
pub(crate) fn parse_selection<'a>(
    path: &Path,
    bytes: &'a [u8],
    num_classes: usize,
) -> Result<(Vec<Entry<'a>>, String), Error> {
    let (sha, parsed) = std::thread::scope(|s| {
        let hasher = s.spawn(|| input::sha256_hex(bytes));
        let parsed = input::text(bytes, path)
            .and_then(|text| Split::parse_selection(text, path, num_classes));
        (hasher.join().expect("sha256 does not panic"), parsed)
    });
    Ok((parsed?, sha))
}

/// One split's result in [`run_many`].
pub type SplitResult = (PathBuf, Result<Outcome, Error>);

/// Balances several splits with one config, in parallel, each into the manifest beside it
/// (`--out` is for a single split). Each manifest is the one [`run`] writes for that split
/// alone; a failure in one is returned in its place and the others still complete. With
/// `compute.seed: null` one seed is drawn for all, so the set stays comparable.
pub fn run_many(req: &Request, splits: &[PathBuf]) -> Result<Vec<SplitResult>, Error> {
    use rayon::prelude::*;
    if req.out.is_some() && splits.len() > 1 {
        return Err(Error::Usage(format!(
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
            return Err(Error::Usage(format!(
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
                check_destination(&out, &all).map_err(Error::from)
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
pub fn expand_splits(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
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
        let pattern = glob::glob(&text)
            .map_err(|e| Error::Usage(format!("--split {text}: not a valid pattern: {e}")))?;
        let mut found: Vec<PathBuf> = pattern
            .filter_map(Result::ok)
            .filter(|p| !p.to_string_lossy().ends_with(".balanced.json"))
            .collect();
        if found.is_empty() {
            return Err(Error::Usage(format!(
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

/// Writes the output through an [`AtomicFile`], so no reader
/// ever sees a partial manifest: if the process dies or the disk fills, an existing
/// manifest stays as it was and no temporary file is left.
///
/// With `fsync`, the data also reaches stable storage before the rename, so even a power
/// cut cannot leave a renamed but empty file; writeback then starts chunk by chunk while
/// formatting continues. It is off by default: a manifest is reproducible from its inputs
/// (`balance-split verify`), and the wait is the disk's, not ours (0.1 to 0.4 s for a
/// 10-million-entry manifest on our machines, with seconds of variance).
pub fn write_atomically(
    path: &Path,
    fsync: bool,
    body: impl FnOnce(&mut PipeWriter) -> std::io::Result<()>,
) -> Result<(), Error> {
    write_file_atomically(path, "manifest", fsync, body)
}

/// [`write_atomically`] for any output; `what` names it in the error message.
pub fn write_file_atomically(
    path: &Path,
    what: &'static str,
    fsync: bool,
    body: impl FnOnce(&mut PipeWriter) -> std::io::Result<()>,
) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        what,
        source,
    };
    let out = AtomicFile::create(path).map_err(err)?;
    let file = out.file().try_clone().map_err(err)?;
    let mut w = if fsync {
        PipeWriter::new(WritebackFile::new(file))
    } else {
        PipeWriter::new(file)
    };
    let written = body(&mut w);
    // On error `out` is dropped, which leaves nothing behind.
    written.and_then(|()| w.finish()).map_err(err)?;
    out.commit(fsync).map_err(err)
}

pub(crate) fn os_seed() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Internal(format!("cannot draw a seed from the OS: {e}")))?;
    // Keep it below 2^53 so it survives a round trip through JSON readers that use f64
    // (JavaScript, some Python tooling).
    Ok(u64::from_le_bytes(b) >> 11)
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

//! `balance-split balance`.

use std::path::PathBuf;

use balance_split::{balance, report};

use balance_split::stdout as out;

/// Balance the training split named by a config and write a manifest.
#[derive(clap::Args)]
pub struct Args {
    /// The diffusion or classifier YAML config (reads data.split_file, data.balancing,
    /// data.synthetic_augmentation, compute.seed, model.conditioning.num_classes). The
    /// user's overrides follow as --dotted.key VALUE (for example --compute.seed 3).
    #[arg(long)]
    config: PathBuf,
    /// Split file(s) to balance instead of the config's data.split_file. Repeat it, give
    /// several after one --split (a shell glob), or a quoted pattern ('cv_split_*.json');
    /// each gets its own manifest beside it, balanced in parallel.
    #[arg(long, num_args = 1..)]
    split: Vec<PathBuf>,
    /// Seed instead of the config's compute.seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output manifest [default: <split dir>/<split stem>.balanced.json]; single split only.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compute and print the plan without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Flush the manifest to stable storage before renaming it into place (survives a
    /// power cut; slower for large manifests).
    #[arg(long)]
    fsync: bool,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The user's `--dotted.key value` overrides (taken out before the rest is parsed).
    #[arg(skip)]
    pub overrides: balance_split::config::overrides::Overrides,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let splits = balance::expand_splits(&a.split).map_err(balance_split::Error::from)?;
    let req = balance::Request {
        config: a.config,
        split: splits.first().cloned(),
        seed: a.seed,
        out: a.out,
        dry_run: a.dry_run,
        fsync: a.fsync,
        overrides: a.overrides,
    };
    if splits.len() > 1 {
        return run_many(&req, &splits, a.json);
    }
    let outcome = balance::run(&req).map_err(balance_split::Error::from)?;
    for w in &outcome.plan.warnings {
        out::note(format_args!("warning: {w}"));
    }
    if outcome.seed_from_os {
        out::note(format_args!(
            "note: compute.seed is null; drew seed {} from the OS (pass --seed {} to repeat this run)",
            outcome.seed, outcome.seed
        ));
    }
    if a.json {
        out::json(&report::summary_json(&outcome))?;
    } else {
        out::text(&report::summary(&outcome))?;
    }
    Ok(0)
}

/// Several splits: every failure is one `error:` line naming its split, the table has a
/// row per split, and the exit code is 2 (1 for an internal failure) if any failed.
fn run_many(req: &balance::Request, splits: &[PathBuf], json: bool) -> anyhow::Result<u8> {
    let results = balance::run_many(req, splits).map_err(balance_split::Error::from)?;
    let mut code = 0;
    for (split, result) in &results {
        match result {
            Ok(o) => {
                for w in &o.plan.warnings {
                    out::note(format_args!("warning: {}: {w}", split.display()));
                }
            }
            Err(e) => {
                out::note(format_args!(
                    "error: {}",
                    balance_split::text::one_line(&e.to_string())
                ));
                code = code.max(if e.exit_code() == 2 { 2 } else { 1 });
            }
        }
    }
    if let Some(o) = results.iter().find_map(|r| r.1.as_ref().ok()) {
        if o.seed_from_os {
            out::note(format_args!(
                "note: compute.seed is null; drew seed {} from the OS for every split (pass --seed {} to repeat this run)",
                o.seed, o.seed
            ));
        }
    }
    if json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(split, r)| match r {
                Ok(o) => serde_json::json!({"split": split, "summary": report::summary_json(o)}),
                Err(e) => serde_json::json!({"split": split, "error": e.to_string()}),
            })
            .collect();
        out::json(&rows)?;
    } else {
        out::text(&report::many_summary(&results))?;
    }
    Ok(code as u8)
}

//! `balance-split balance`.

use std::path::PathBuf;

use balance_split::{balance, report};

use balance_split::stdout as out;

/// Balance the training split named by a config and write a manifest.
#[derive(clap::Args)]
pub struct Args {
    /// The diffusion YAML config (reads data.split_file, data.balancing, compute.seed).
    #[arg(long)]
    config: PathBuf,
    /// Split file to balance instead of the config's data.split_file.
    #[arg(long)]
    split: Option<PathBuf>,
    /// Seed instead of the config's compute.seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output manifest [default: <split dir>/<split stem>.balanced.json].
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
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let outcome = balance::run(&balance::Request {
        config: a.config,
        split: a.split,
        seed: a.seed,
        out: a.out,
        dry_run: a.dry_run,
        fsync: a.fsync,
    })?;
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
    Ok(())
}

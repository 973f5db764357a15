//! `balance-split split`.

use std::path::PathBuf;

use balance_split::prepare::{self, report};
use balance_split::stdout as out;

/// Make split files from class folders with the user's data-preparation config.
#[derive(clap::Args)]
pub struct Args {
    /// The data-preparation YAML (experiment: data_preparation; classes, split).
    #[arg(long)]
    config: PathBuf,
    /// Overwrite existing split files (as split.force: true).
    #[arg(long)]
    force: bool,
    /// Compute and print the splits without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Add the user's metadata.created_at timestamp (local time). Off by default so the
    /// same folders and config give the same bytes.
    #[arg(long)]
    created_at: bool,
    /// Decode every image first; refuse (exit 4, nothing written) when identical pixels
    /// would be in two lists of a split.
    #[arg(long)]
    check_leaks: bool,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// The user's `--dotted.key value` overrides (taken out before the rest is parsed).
    #[arg(skip)]
    pub overrides: balance_split::config::overrides::Overrides,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let outcome = prepare::run(&prepare::Request {
        config: a.config,
        force: a.force,
        dry_run: a.dry_run,
        created_at: a.created_at,
        check_leaks: a.check_leaks,
        overrides: a.overrides,
    })
    .map_err(balance_split::Error::from)?;
    for w in &outcome.warnings {
        out::note(format_args!("warning: {w}"));
    }
    if let Some(seed) = outcome.drawn_seed {
        out::note(format_args!(
            "note: split.seed is null; drew seed {seed} from the OS and recorded it in metadata.seed"
        ));
    }
    if a.json {
        out::json(&report::summary_json(&outcome))?;
    } else {
        out::text(&report::summary(&outcome))?;
    }
    Ok(())
}

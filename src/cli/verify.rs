//! `balance-split verify`.

use std::path::PathBuf;

use balance_split::verify;

use balance_split::stdout as out;

/// Exit code when the manifest differs from its recomputation.
const DIFFERS: u8 = 3;

/// Recompute a manifest from its recorded source, config and seed, and compare.
#[derive(clap::Args)]
pub struct Args {
    /// The manifest to check.
    manifest: PathBuf,
    /// Also report where this config's effective data.balancing or seed differ from the
    /// recorded ones.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The source split, instead of the recorded balancing.source.split_file (resolved
    /// against the current directory).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let report = verify::run(&verify::Request {
        manifest: a.manifest,
        config: a.config,
        split: a.split,
    })
    .map_err(balance_split::Error::from)?;
    let code = if report.identical { 0 } else { DIFFERS };
    let printed = if a.json {
        out::json(&report)
    } else if report.identical {
        out::line(format_args!(
            "ok: {} is exactly what {} gives with its recorded config and seed",
            report.manifest.display(),
            report.source.display()
        ))
    } else {
        let mut text = format!("differs: {}\n", report.manifest.display());
        for d in &report.differences {
            text += &format!(
                "  {}: expected {}, found {}\n",
                d.field, d.expected, d.found
            );
        }
        out::text(&text)
    };
    super::verdict(code, printed.map_err(Into::into))
}

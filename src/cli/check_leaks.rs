//! `balance-split check-leaks`.

use std::path::PathBuf;

use balance_split::leaks::{self, report};
use balance_split::output;
use balance_split::stdout as out;

/// Exit code when images cross lists (DESIGN.md's contract).
const LEAKS: u8 = 4;

/// Find the same (or nearly the same) image on two sides of a split or manifest.
#[derive(clap::Args)]
pub struct Args {
    /// A split file or a manifest (its distinct source entries are checked).
    file: PathBuf,
    /// Directory the image paths are relative to (the user's project root).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Candidates: pHashes at most this many bits apart (0 to 16).
    #[arg(long, default_value_t = leaks::DEFAULT_THRESHOLD)]
    threshold: u32,
    /// A candidate is a near copy when its pixels differ by at most this residual (8-bit
    /// levels, RMS on a 6x6 thumbnail after one brightness/contrast map; see the docs).
    #[arg(long, default_value_t = leaks::confirm::DEFAULT_MAX_RESIDUAL, conflicts_with = "hash_only")]
    max_residual: f64,
    /// Report every candidate the hash finds, without comparing pixels.
    #[arg(long)]
    hash_only: bool,
    /// Also report duplicates inside one list.
    #[arg(long)]
    within: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the pairs to FILE.csv, or an HTML page with thumbnails to FILE.html.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let html = match a
        .report
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
    {
        None if a.report.is_none() => None,
        Some("html") => Some(true),
        Some("csv") => Some(false),
        _ => {
            return Err(balance_split::Error::Usage(format!(
                "--report {}: expected a file name ending in .html or .csv",
                a.report
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))
            .into())
        }
    };
    if let Some(dest) = &a.report {
        output::check_destination(dest, &[&a.file]).map_err(balance_split::Error::from)?;
    }
    let bar = super::image_progress();
    let req = leaks::Request {
        file: a.file.clone(),
        root: a.root.clone(),
        threshold: a.threshold,
        max_residual: (!a.hash_only).then_some(a.max_residual),
        within: a.within,
    };
    let r = leaks::run(&req, |n| bar.set_length(n as u64), || bar.inc(1))
        .map_err(balance_split::Error::from)?;
    bar.finish_and_clear();
    if let (Some(dest), Some(html)) = (&a.report, html) {
        // Not over any image it read either (a report named like one of them).
        let mut inputs: Vec<&std::path::Path> = vec![&a.file];
        inputs.extend(r.inputs.iter().map(PathBuf::as_path));
        output::check_destination(dest, &inputs).map_err(balance_split::Error::from)?;
        let mut bytes = Vec::new();
        if html {
            report::write_html(&mut bytes, &r, &a.root)?;
        } else {
            report::write_csv(&mut bytes, &r)?;
        }
        output::write_bytes(dest, &bytes).map_err(|source| {
            balance_split::Error::from(output::WriteError {
                path: dest.clone(),
                what: "report",
                source,
            })
        })?;
    }
    let code = if r.leaks() > 0 {
        LEAKS
    } else if !r.unreadable.is_empty() {
        super::BAD_IMAGES
    } else {
        0
    };
    let printed = if a.json {
        out::json(&r)
    } else {
        out::text(&report::render(&r))
    };
    super::verdict(code, printed.map_err(Into::into))
}

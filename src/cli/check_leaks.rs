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
    /// Largest pHash Hamming distance reported as a near duplicate (0 to 16 bits).
    #[arg(long, default_value_t = leaks::DEFAULT_THRESHOLD)]
    threshold: u32,
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
        file: a.file,
        root: a.root.clone(),
        threshold: a.threshold,
        within: a.within,
    };
    let r = leaks::run(&req, |n| bar.set_length(n as u64), || bar.inc(1))?;
    bar.finish_and_clear();
    if let (Some(dest), Some(html)) = (&a.report, html) {
        let mut bytes = Vec::new();
        if html {
            report::write_html(&mut bytes, &r, &a.root)?;
        } else {
            report::write_csv(&mut bytes, &r)?;
        }
        output::write_bytes(dest, &bytes).map_err(|source| balance_split::Error::Write {
            path: dest.clone(),
            what: "report",
            source,
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

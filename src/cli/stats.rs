//! `balance-split stats`.

use std::path::PathBuf;

use balance_split::{plot, stats};

use balance_split::stdout as out;

/// Per-class counts, shares and imbalance of a split or a manifest.
#[derive(clap::Args)]
pub struct Args {
    /// A split file or a manifest.
    file: PathBuf,
    /// Print the statistics as JSON.
    #[arg(long)]
    json: bool,
    /// Also draw a grouped bar chart (before/after per class for a manifest) into this PNG.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let s = stats::run(&a.file).map_err(balance_split::Error::from)?;
    if let Some(png) = &a.plot {
        plot::draw(&s, png).map_err(balance_split::Error::from)?;
    }
    if a.json {
        out::json(&s)?;
    } else {
        out::text(&stats::render(&s))?;
        if let Some(png) = &a.plot {
            out::line(format_args!("chart: {}", png.display()))?;
        }
    }
    Ok(())
}

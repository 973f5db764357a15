//! `balance-split check-images`.

use std::path::PathBuf;

use balance_split::images::check;

use balance_split::stdout as out;

/// Decode every image a split or manifest references and report the unusable ones.
#[derive(clap::Args)]
pub struct Args {
    /// A split file or a manifest.
    file: PathBuf,
    #[command(flatten)]
    images: super::ImageArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let bar = super::image_progress();
    let req = check::Request {
        file: a.file,
        root: a.images.root,
        image_size: a.images.image_size,
    };
    let report = check::run(&req, |total| bar.set_length(total as u64), || bar.inc(1))
        .map_err(balance_split::Error::from)?;
    bar.finish_and_clear();
    let code = if report.bad.is_empty() {
        0
    } else {
        super::BAD_IMAGES
    };
    let printed = if a.json {
        out::json(&report)
    } else {
        out::text(&check::render(&report))
    };
    super::verdict(code, printed.map_err(Into::into))
}

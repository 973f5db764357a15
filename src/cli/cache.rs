//! `balance-split cache`.

use std::path::PathBuf;

use balance_split::images::cache;

use balance_split::stdout as out;

/// Decode and resize every image of a manifest once, into one memory-mappable file.
#[derive(clap::Args)]
pub struct Args {
    /// The manifest whose images to cache (train, val and test).
    manifest: PathBuf,
    /// The cache file to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    images: super::ImageArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let w = cache::build(&a.manifest, &a.images.root, a.images.image_size, &a.out)
        .map_err(balance_split::Error::from)?;
    if a.json {
        out::json(&w)?;
    } else {
        out::line(format_args!(
            "cached {} images of {}x{} ({} bytes) in {}",
            w.images,
            a.images.image_size,
            a.images.image_size,
            w.bytes,
            w.out.display()
        ))?;
    }
    Ok(())
}

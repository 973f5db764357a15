//! `balance-split cache`.

use std::path::PathBuf;

use balance_split::images::cache;

/// Decode and resize every image of a manifest once, into one memory-mappable file.
#[derive(clap::Args)]
pub struct Args {
    /// The manifest whose images to cache (train, val and test).
    manifest: PathBuf,
    /// The cache file to write.
    #[arg(long)]
    out: PathBuf,
    /// Directory the image paths are relative to (the user's project root).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// model.architecture.image_size: the side of the cached images.
    #[arg(long, default_value_t = 40)]
    image_size: u32,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let w = cache::build(&a.manifest, &a.root, a.image_size, &a.out)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&w)?);
    } else {
        println!(
            "cached {} images of {}x{} ({} bytes) in {}",
            w.images,
            a.image_size,
            a.image_size,
            w.bytes,
            w.out.display()
        );
    }
    Ok(())
}

//! `balance-split sample`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use balance_split::sample;

use balance_split::stdout::StdoutError;

/// Print the training order of one epoch (positions in the manifest's train list).
#[derive(clap::Args)]
pub struct Args {
    /// The manifest written by `balance-split balance`.
    manifest: PathBuf,
    /// The epoch (0-based); each epoch has its own random stream.
    #[arg(long)]
    epoch: u64,
    /// This process's rank in distributed training.
    #[arg(long, default_value_t = 0)]
    rank: usize,
    /// The number of ranks; the epoch is padded by wrap-around to a multiple of it.
    #[arg(long, default_value_t = 1)]
    world_size: usize,
    /// `lines`: one position per line; `json`: one JSON array.
    #[arg(long, value_enum, default_value_t = Format::Lines)]
    format: Format,
    /// Same as `--format json`.
    #[arg(long)]
    json: bool,
    /// Keep the manifest's order (data.loading.shuffle_train: false); the weighted
    /// sampler ignores it.
    #[arg(long)]
    no_shuffle: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Lines,
    Json,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let positions = sample::run(
        &a.manifest,
        sample::Request {
            epoch: a.epoch,
            rank: a.rank,
            world_size: a.world_size,
            shuffle: !a.no_shuffle,
        },
    )
    .map_err(balance_split::Error::from)?;
    print(&positions, if a.json { Format::Json } else { a.format }).map_err(StdoutError)?;
    Ok(())
}

fn print(positions: &[usize], format: Format) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut num = itoa::Buffer::new();
    match format {
        Format::Lines => {
            for &p in positions {
                out.write_all(num.format(p).as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        Format::Json => {
            out.write_all(b"[")?;
            for (i, &p) in positions.iter().enumerate() {
                if i > 0 {
                    out.write_all(b", ")?;
                }
                out.write_all(num.format(p).as_bytes())?;
            }
            out.write_all(b"]\n")?;
        }
    }
    out.flush()
}

//! `balance-split`: argument parsing and printing only; every decision is in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "balance-split",
    version,
    about = "Reproducible, class-balanced training manifests from an imbalanced split"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Balance the training split of a config's split file and write a manifest.
    Balance(cli::balance::Args),
    /// Decode and resize every image of a manifest once, into a memory-mapped cache.
    Cache(cli::cache::Args),
    /// Decode every image a split or manifest references; report the unusable ones.
    CheckImages(cli::check_images::Args),
    /// Print the training order of one epoch of a manifest, for one rank.
    Sample(cli::sample::Args),
    /// Per-class counts, shares and imbalance of a split or manifest (optionally a chart).
    Stats(cli::stats::Args),
    /// Recompute a manifest from what it records and compare (exit 0 same, 3 different).
    Verify(cli::verify::Args),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Balance(a) => cli::balance::run(a).map(|()| ExitCode::SUCCESS),
        Command::Cache(a) => cli::cache::run(a).map(|()| ExitCode::SUCCESS),
        Command::CheckImages(a) => cli::check_images::run(a),
        Command::Sample(a) => cli::sample::run(a).map(|()| ExitCode::SUCCESS),
        Command::Stats(a) => cli::stats::run(a).map(|()| ExitCode::SUCCESS),
        Command::Verify(a) => cli::verify::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<balance_split::Error>()
                .map_or(1, balance_split::Error::exit_code);
            // Library messages already carry their cause; printing the chain would repeat it.
            eprintln!("error: {e}");
            ExitCode::from(code as u8)
        }
    }
}

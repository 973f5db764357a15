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
    /// Find the same (or nearly the same) image on two sides of a split (exit 4 if found).
    CheckLeaks(cli::check_leaks::Args),
    /// Print the training order of one epoch of a manifest, for one rank.
    Sample(cli::sample::Args),
    /// Make split files from class folders (the user's data-preparation step).
    Split(cli::split::Args),
    /// Per-class counts, shares and imbalance of a split or manifest (optionally a chart).
    Stats(cli::stats::Args),
    /// Recompute a manifest from what it records and compare (exit 0 same, 3 different).
    Verify(cli::verify::Args),
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    let result = match args.command {
        Command::Balance(a) => cli::balance::run(a),
        Command::Cache(a) => cli::cache::run(a).map(|()| ExitCode::SUCCESS),
        Command::CheckImages(a) => cli::check_images::run(a),
        Command::CheckLeaks(a) => cli::check_leaks::run(a),
        Command::Sample(a) => cli::sample::run(a).map(|()| ExitCode::SUCCESS),
        Command::Split(a) => cli::split::run(a).map(|()| ExitCode::SUCCESS),
        Command::Stats(a) => cli::stats::run(a).map(|()| ExitCode::SUCCESS),
        Command::Verify(a) => cli::verify::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(out) = e.downcast_ref::<balance_split::stdout::StdoutError>() {
                if out.is_closed_pipe() {
                    return ExitCode::SUCCESS;
                }
            }
            let code = e
                .downcast_ref::<balance_split::Error>()
                .map_or(1, balance_split::Error::exit_code);
            // Library messages already carry their cause; printing the chain would repeat it.
            balance_split::stdout::note(format_args!(
                "error: {}",
                balance_split::text::one_line(&e.to_string())
            ));
            ExitCode::from(code as u8)
        }
    }
}

/// clap's own messages, in the shape of ours: `--help` and `--version` print as clap
/// renders them (exit 0); a usage error is one `error:` line, its tips folded in, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return match balance_split::stdout::text(&e.render().to_string()) {
            Err(out) if !out.is_closed_pipe() => {
                balance_split::stdout::note(format_args!("error: {out}"));
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        };
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        balance_split::stdout::note(format_args!(
            "error: a subcommand is required (balance, cache, check-images, check-leaks, sample, split, stats, verify); see --help"
        ));
        return ExitCode::from(2);
    }
    // clap's message: a first line, continuation lines (the missing arguments), tips; the usage
    // and the pointer to --help are left to --help.
    let rendered = e.render().to_string();
    let mut line = String::from("error:");
    for part in rendered
        .lines()
        .map(str::trim)
        .filter(|l| !(l.is_empty() || l.starts_with("Usage:") || l.starts_with("For more")))
    {
        match part.strip_prefix("tip: ") {
            Some(tip) => line += &format!("; {tip}"),
            None => line += &format!(" {}", part.strip_prefix("error: ").unwrap_or(part)),
        }
    }
    line += "; see --help";
    balance_split::stdout::note(line);
    ExitCode::from(2)
}

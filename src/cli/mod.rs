//! One module per subcommand, each with its arguments and a `run` function.

pub mod balance;
pub mod cache;
pub mod check_images;
pub mod check_leaks;
pub mod sample;
pub mod split;
pub mod stats;
pub mod verify;

use std::path::PathBuf;

use balance_split::config::overrides::{OverrideError, Overrides};
use clap::{Parser, Subcommand};

/// A verdict command's exit status once its result is printed: the verdict survives a
/// closed standard output (`check-leaks ... | head -1` in a script still sees exit 4).
pub fn verdict(code: u8, printed: anyhow::Result<()>) -> anyhow::Result<u8> {
    match printed {
        Err(e)
            if e.downcast_ref::<balance_split::stdout::StdoutError>()
                .is_some_and(balance_split::stdout::StdoutError::is_closed_pipe) =>
        {
            Ok(code)
        }
        other => other.map(|()| code),
    }
}

/// Exit code when images are not usable (`check-images`; `check-leaks` when nothing else
/// is wrong).
pub const BAD_IMAGES: u8 = 3;

/// Where a split's images are and what size training wants: shared by the image commands.
#[derive(clap::Args)]
pub struct ImageArgs {
    /// Directory the image paths are relative to (the user's project root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// model.architecture.image_size: the side images are resized to.
    #[arg(long, default_value_t = 40)]
    pub image_size: u32,
}

/// A progress bar over images, only for a person watching a terminal; never in pipes or CI
/// logs.
pub fn image_progress() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
            .expect("valid template"),
    );
    b
}

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
    Balance(balance::Args),
    /// Decode and resize every image of a manifest once, into a memory-mapped cache.
    Cache(cache::Args),
    /// Decode every image a split or manifest references; report the unusable ones.
    CheckImages(check_images::Args),
    /// Find the same (or nearly the same) image on two sides of a split (exit 4 if found).
    CheckLeaks(check_leaks::Args),
    /// Print the training order of one epoch of a manifest, for one rank.
    Sample(sample::Args),
    /// Make split files from class folders (the user's data-preparation step).
    Split(split::Args),
    /// Per-class counts, shares and imbalance of a split or manifest (optionally a chart).
    Stats(stats::Args),
    /// Recompute a manifest from what it records and compare (exit 0 same, 3 different).
    Verify(verify::Args),
}

/// The whole program for the arguments `args` (the program name first), returning its exit
/// status: the `balance-split` binary and the Python package's command both run this.
pub fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let (args, overrides) = match take_overrides(args.into_iter().map(Into::into).collect()) {
        Ok(split) => split,
        Err(e) => {
            balance_split::stdout::note(format_args!(
                "error: {}",
                balance_split::text::one_line(&e.to_string())
            ));
            return 2;
        }
    };
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    let result = match args.command {
        Command::Balance(mut a) => {
            a.overrides = overrides;
            balance::run(a)
        }
        Command::Cache(a) => cache::run(a).map(|()| 0),
        Command::CheckImages(a) => check_images::run(a),
        Command::CheckLeaks(a) => check_leaks::run(a),
        Command::Sample(a) => sample::run(a).map(|()| 0),
        Command::Split(mut a) => {
            a.overrides = overrides;
            split::run(a).map(|()| 0)
        }
        Command::Stats(a) => stats::run(a).map(|()| 0),
        Command::Verify(a) => verify::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(out) = e.downcast_ref::<balance_split::stdout::StdoutError>() {
                if out.is_closed_pipe() {
                    return 0;
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
            code as u8
        }
    }
}

/// The user's `--dotted.key value` overrides taken out of the arguments of the commands
/// that read their configs (`balance`, `split`); clap parses the rest.
fn take_overrides(
    args: Vec<std::ffi::OsString>,
) -> Result<(Vec<std::ffi::OsString>, Overrides), OverrideError> {
    let command = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1);
    match command {
        Some(i) if matches!(args[i].to_str(), Some("balance" | "split")) => {
            Overrides::take_from_args(args, i + 1)
        }
        _ => Ok((args, Overrides::default())),
    }
}

fn usage_error(e: clap::Error) -> u8 {
    balance_split::usage::report(
        &e,
        "balance, cache, check-images, check-leaks, sample, split, stats, verify",
    )
}

//! `diffusion-train`: argument parsing, logging setup and printing; the run itself is
//! `balance_split::train::job`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use balance_split::train::error::TrainError;
use balance_split::train::job::{self, TrainRequest};
use balance_split::train::settings::DeviceChoice;
use balance_split::train::trainer::RunOptions;

#[derive(Parser)]
#[command(
    name = "diffusion-train",
    version,
    about = "Train the class-conditional DDPM of a config on a balanced manifest (burn + wgpu)"
)]
struct Args {
    /// The diffusion YAML (model, training, output sections).
    #[arg(long)]
    config: PathBuf,
    /// Manifest from `balance-split balance` [default: <split dir>/<split stem>.balanced.json
    /// of the config's data.split_file].
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where to run [default: compute.device of the config; cuda means the GPU via wgpu].
    #[arg(long, value_parser = parse_device)]
    device: Option<DeviceChoice>,
    /// Train this many epochs instead of training.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many optimizer steps in total (and checkpoint there).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Output directory instead of output.base_dir.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory the image paths and the source split are relative to.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Decoded image cache from `balance-split cache` for this manifest.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Continue from this checkpoint (as training.resume with enabled: true).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    DeviceChoice::parse(s).ok_or_else(|| format!("expected auto, wgpu or cpu, found {s:?}"))
}

/// Console at info (warnings only with --quiet), the log file at debug; other crates'
/// messages (wgpu, burn) only from warnings up, so the log stays readable.
fn init_logging(file: &std::path::Path, quiet: bool) -> anyhow::Result<()> {
    use simplelog::{
        ColorChoice, CombinedLogger, ConfigBuilder, LevelFilter, TermLogger, TerminalMode,
        WriteLogger,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("{}: cannot open log file", file.display()))?;
    let ours = ConfigBuilder::new()
        .add_filter_allow_str("balance_split")
        .add_filter_allow_str("diffusion_train")
        .build();
    let theirs = ConfigBuilder::new()
        .add_filter_ignore_str("balance_split")
        .add_filter_ignore_str("diffusion_train")
        .build();
    let console = if quiet {
        LevelFilter::Warn
    } else {
        LevelFilter::Info
    };
    CombinedLogger::init(vec![
        TermLogger::new(
            console,
            ours.clone(),
            TerminalMode::Stderr,
            ColorChoice::Auto,
        ),
        TermLogger::new(
            LevelFilter::Warn,
            theirs.clone(),
            TerminalMode::Stderr,
            ColorChoice::Auto,
        ),
        WriteLogger::new(LevelFilter::Debug, ours, log.try_clone()?),
        WriteLogger::new(LevelFilter::Warn, theirs, log),
    ])
    .context("cannot install the logger")
}

fn run(args: Args) -> anyhow::Result<()> {
    let req = TrainRequest {
        config: args.config,
        manifest: args.manifest,
        device: args.device,
        out: args.out,
        root: args.root,
        resume: args.resume,
        options: RunOptions {
            epochs: args.epochs,
            max_steps: args.max_steps,
            cache: args.cache,
            progress: !args.quiet,
        },
    };
    let settings = job::settings(&req)?;
    init_logging(&settings.output.logs.join("train.log"), args.quiet)?;
    let summary = job::train(&req, &settings)?;
    if let Some(last) = &summary.last {
        println!(
            "trained {} epochs ({} steps): loss {:.5}, weighted loss {:.5}, {:.1} images/s",
            summary.epochs, summary.steps, last.loss, last.weighted_loss, last.images_per_s
        );
    }
    if let Some(c) = &summary.checkpoint {
        println!("checkpoint: {}", c.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e
                .downcast_ref::<TrainError>()
                .map_or(1, TrainError::exit_code);
            eprintln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

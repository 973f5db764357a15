//! `diffusion-train`: argument parsing, logging setup and printing; the work is in
//! `balance_split::train::job`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use balance_split::config::overrides::Overrides;
use balance_split::stdout as out;
use balance_split::text::one_line;
use balance_split::train::error::TrainError;
use balance_split::train::job::{self, GenerateRequest, TrainRequest};
use balance_split::train::settings::DeviceChoice;
use balance_split::train::trainer::RunOptions;

#[derive(Parser)]
#[command(
    name = "diffusion-train",
    version,
    about = "Train the diffusion model of a config (the user's class-conditional DDPM, or their fine-tuning of OpenAI's ADM) on a balanced manifest (burn + wgpu), and generate from it",
    after_help = "Without a command, `diffusion-train --config FILE ...` trains."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command line with `train` supplied when no command is named, so the documented
/// `diffusion-train --config FILE --manifest FILE` trains. (clap's optional subcommand
/// with flattened required arguments cannot express this without making every
/// training argument optional.)
fn args_with_default_command() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let named = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| {
        matches!(
            a,
            "train"
                | "generate"
                | "export"
                | "bench"
                | "help"
                | "-h"
                | "--help"
                | "-V"
                | "--version"
        )
    });
    if !named {
        args.insert(1, "train".into());
    }
    args
}

/// A count that must be at least 1: `--epochs 0` would exit 0 having done nothing.
fn positive<T: std::str::FromStr + PartialEq + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n != T::from(0) => Ok(n),
        Ok(_) => Err("expected at least 1 (0 would train nothing)".into()),
        Err(_) => Err(format!("expected a positive integer, found {s:?}")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train (what `diffusion-train --config FILE` does; `mode: generate` in the config
    /// generates instead).
    Train(TrainArgs),
    /// Generate samples per class from a checkpoint (generation section of the config).
    Generate(GenerateArgs),
    /// Write a checkpoint's weights as safetensors under the user's PyTorch names, for their
    /// DDPMModel (with the noise-schedule buffers) or AdmDdpmModel .load_state_dict(strict=True).
    Export(ExportArgs),
    /// Time training steps of the configured model on random data (one JSON line per batch size).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct Common {
    /// The diffusion YAML.
    #[arg(long)]
    config: PathBuf,
    /// Where to run: auto, cuda, wgpu or cpu [default: compute.device of the config; cuda
    /// without the `cuda` feature means the GPU through wgpu].
    #[arg(long, value_parser = parse_device)]
    device: Option<DeviceChoice>,
    /// No progress bar; only warnings on the console.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    common: Common,
    // A help attribute, not a doc comment: rustdoc would read `<split dir>` as HTML.
    #[arg(
        long,
        help = "Manifest from `balance-split balance` [default: <split dir>/<split stem>.balanced.json of the config's data.split_file]"
    )]
    manifest: Option<PathBuf>,
    /// Train this many epochs instead of training.epochs.
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Stop after this many optimizer steps in total (and checkpoint there).
    #[arg(long, value_parser = positive::<u64>)]
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
    /// Memory the decoded training and validation images may take on the device, in MiB:
    /// a set that fits is uploaded once and its batches are gathered (and flipped and
    /// rotated) there; 0 keeps every batch on the host pipeline.
    #[arg(long, value_name = "MB", default_value_t = balance_split::train::feed::DEFAULT_BUDGET_MB)]
    device_data_mb: u64,
    /// Continue from this checkpoint (as training.resume with enabled: true).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from these weights (as training.init_from): a .safetensors file with the
    /// user's names, or their .pth checkpoint.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The diffusion YAML the checkpoint was trained with (recorded in the file's metadata).
    #[arg(long)]
    config: PathBuf,
    /// A checkpoint written by diffusion-train.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// The EMA weights (refused when the checkpoint has none) [default: the EMA when present].
    #[arg(long, conflicts_with = "raw")]
    ema: bool,
    /// The trained weights, not the EMA.
    #[arg(long)]
    raw: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[command(flatten)]
    common: Common,
    /// Checkpoint to sample from instead of generation.checkpoint.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Output directory instead of output.base_dir (images go to its generated/ subdirectory).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Batch sizes to time.
    #[arg(long, num_args = 1.., default_values_t = [8, 64])]
    batch: Vec<usize>,
    /// Timed steps per batch size.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Untimed steps first (kernel compilation, autotuning).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Also time each kind of layer alone, forward and backward (`ops` in the output).
    #[arg(long)]
    ops: bool,
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    DeviceChoice::parse(s).ok_or_else(|| format!("expected auto, cuda, wgpu or cpu, found {s:?}"))
}

/// Console at info (warnings only with --quiet), the log file at debug; other crates'
/// messages (wgpu, burn) only from warnings up, so the log stays readable.
fn init_logging(file: Option<&Path>, quiet: bool) -> anyhow::Result<()> {
    use simplelog::{
        ColorChoice, CombinedLogger, ConfigBuilder, LevelFilter, SharedLogger, TermLogger,
        TerminalMode, WriteLogger,
    };
    let ours = ConfigBuilder::new()
        .add_filter_allow_str("balance_split")
        .build();
    let theirs = ConfigBuilder::new()
        .add_filter_ignore_str("balance_split")
        .build();
    // wgpu-hal reports every failed probe of a graphics API (no Vulkan driver, no EGL)
    // as an error, though the adapter search goes on; what it found or why it found
    // nothing is our one line, and its messages stay in the log file.
    let theirs_console = ConfigBuilder::new()
        .add_filter_ignore_str("balance_split")
        .add_filter_ignore_str("wgpu_hal")
        .build();
    // simplelog's Auto still colours a pipe; only a terminal gets colours.
    let colors = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let console = if quiet {
        LevelFilter::Warn
    } else {
        LevelFilter::Info
    };
    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![
        TermLogger::new(console, ours.clone(), TerminalMode::Stderr, colors),
        TermLogger::new(
            LevelFilter::Warn,
            theirs_console,
            TerminalMode::Stderr,
            colors,
        ),
    ];
    if let Some(file) = file {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create log directory", dir.display()))?;
        }
        let log = balance_split::output::open_append(file)
            .with_context(|| format!("{}: cannot open log file", file.display()))?;
        loggers.push(WriteLogger::new(LevelFilter::Debug, ours, log.try_clone()?));
        loggers.push(WriteLogger::new(LevelFilter::Warn, theirs, log));
    }
    CombinedLogger::init(loggers).context("cannot install the logger")
}

/// The log file of a run and the directories made for it, so a run refused for bad input
/// leaves nothing behind: what the user already had stays, a directory holding anything
/// else stays.
struct FreshLog {
    file: Option<PathBuf>,
    /// The directories that did not exist, deepest first.
    dirs: Vec<PathBuf>,
}

impl FreshLog {
    fn before(file: &Path) -> FreshLog {
        let dirs = file
            .ancestors()
            .skip(1)
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        FreshLog {
            file: (!file.exists()).then(|| file.to_path_buf()),
            dirs,
        }
    }

    fn discard(&self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
        for d in &self.dirs {
            // Only an empty directory goes.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Runs `job` logging to `log`; `job` calls its argument once it has checked and loaded
/// everything. A job refused for bad input before that leaves nothing behind; one that
/// fails later keeps its log beside what it wrote.
fn with_log<T>(
    log: &Path,
    quiet: bool,
    job: impl FnOnce(&dyn Fn()) -> Result<T, TrainError>,
) -> anyhow::Result<T> {
    let fresh = FreshLog::before(log);
    init_logging(Some(log), quiet)?;
    let started = std::cell::Cell::new(false);
    job(&|| started.set(true)).map_err(|e| {
        if e.exit_code() == 2 && !started.get() {
            fresh.discard();
        }
        e.into()
    })
}

fn train(args: TrainArgs, overrides: Overrides) -> anyhow::Result<()> {
    let c = args.common;
    let req = TrainRequest {
        config: c.config,
        manifest: args.manifest,
        device: c.device,
        out: args.out,
        root: args.root,
        resume: args.resume,
        init_from: args.init_from,
        options: RunOptions {
            epochs: args.epochs,
            max_steps: args.max_steps,
            cache: args.cache,
            progress: !c.quiet,
            device_data_bytes: Some(args.device_data_mb.saturating_mul(1024 * 1024)),
        },
        overrides,
    };
    let settings = job::settings(&req)?;
    if settings.generate_mode {
        let gen = GenerateRequest {
            config: req.config,
            checkpoint: None,
            device: req.device,
            out: req.out,
        };
        return generate_with(&gen, &settings, c.quiet);
    }
    let manifest = job::manifest_path(&req, &settings)?;
    let mut inputs = vec![req.config.as_path(), manifest.as_path()];
    inputs.extend(req.options.cache.as_deref());
    inputs.extend(settings.training.init_from.as_deref());
    job::check_outputs(&settings, true, &inputs)?;
    let log = settings.output.logs.join("train.log");
    let summary = with_log(&log, c.quiet, |on_start| {
        job::train(&req, &settings, on_start)
    })?;
    if let Some(last) = &summary.last {
        out::line(format_args!(
            "trained {} epochs ({} steps): loss {:.5}, weighted loss {:.5}, {:.1} images/s",
            summary.epochs, summary.steps, last.loss, last.weighted_loss, last.images_per_s
        ))?;
    }
    if let Some(c) = &summary.checkpoint {
        out::line(format_args!("checkpoint: {}", c.display()))?;
    }
    for p in &summary.images {
        out::line(format_args!("image: {}", p.display()))?;
    }
    Ok(())
}

fn generate_with(
    req: &GenerateRequest,
    settings: &balance_split::train::settings::TrainSettings,
    quiet: bool,
) -> anyhow::Result<()> {
    let checkpoint = req
        .checkpoint
        .clone()
        .or_else(|| settings.generation.checkpoint.clone());
    let mut inputs = vec![req.config.as_path()];
    inputs.extend(checkpoint.as_deref());
    job::check_outputs(settings, false, &inputs)?;
    let log = settings.output.logs.join("generate.log");
    let written = with_log(&log, quiet, |on_start| {
        job::generate(req, settings, on_start)
    })?;
    for p in written {
        out::line(p.display())?;
    }
    Ok(())
}

fn generate(args: GenerateArgs, overrides: &Overrides) -> anyhow::Result<()> {
    let c = args.common;
    let req = GenerateRequest {
        config: c.config,
        checkpoint: args.checkpoint,
        device: c.device,
        out: args.out,
    };
    let settings = job::load_settings(&req.config, overrides, req.device, req.out.as_deref())?;
    generate_with(&req, &settings, c.quiet)
}

fn export(args: ExportArgs, overrides: &Overrides) -> anyhow::Result<()> {
    let settings = job::load_settings(&args.config, overrides, None, None)?;
    let which = match (args.ema, args.raw) {
        (true, _) => job::ExportWeights::Ema,
        (_, true) => job::ExportWeights::Raw,
        _ => job::ExportWeights::Default,
    };
    let inputs = [args.config.as_path(), args.checkpoint.as_path()];
    balance_split::output::protect(&inputs);
    balance_split::output::check_destination(&args.out, &inputs).map_err(|source| {
        TrainError::Destination {
            key: "--out".into(),
            source,
        }
    })?;
    let e = job::export(&settings, &args.checkpoint, &args.out, which)?;
    out::line(format_args!(
        "exported {} tensors ({} parameters, {} weights, epoch {} step {}) to {}",
        e.tensors,
        e.parameters,
        if e.ema { "EMA" } else { "trained" },
        e.epoch,
        e.step,
        args.out.display()
    ))?;
    Ok(())
}

fn bench(args: BenchArgs, overrides: &Overrides) -> anyhow::Result<()> {
    let c = args.common;
    let settings = job::load_settings(&c.config, overrides, c.device, None)?;
    init_logging(None, c.quiet)?;
    for t in job::bench(
        &settings,
        &c.config,
        &args.batch,
        args.steps,
        args.warmup,
        args.ops,
    )? {
        out::line(serde_json::to_string(&t)?)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // burn creates a few internal tensors (an optimizer state being loaded) on its
    // default device, which with the wgpu feature is the GPU. Every device we use is
    // chosen explicitly, so the default is pinned to the CPU backend: resuming on a
    // machine without Vulkan must not try to start one. Set while the process has one
    // thread, before anything reads the environment.
    if std::env::var_os("BURN_DEVICE").is_none() {
        std::env::set_var("BURN_DEVICE", "flex");
    }
    // The user's `--dotted.key value` overrides, after the command's name.
    let (args, overrides) = match Overrides::take_from_args(args_with_default_command(), 2) {
        Ok(split) => split,
        Err(e) => {
            out::note(format_args!("error: {}", one_line(&e.to_string())));
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            return ExitCode::from(balance_split::usage::report(
                &e,
                "train, generate, export, bench",
            ))
        }
    };
    let result = match cli.command {
        Command::Train(a) => train(a, overrides),
        Command::Generate(a) => generate(a, &overrides),
        Command::Export(a) => export(a, &overrides),
        Command::Bench(a) => bench(a, &overrides),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<out::StdoutError>()
                .is_some_and(out::StdoutError::is_closed_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => match e.downcast_ref::<TrainError>() {
            // Library errors already carry their cause; the chain would repeat it.
            Some(t) => {
                out::note(format_args!("error: {}", one_line(&t.to_string())));
                ExitCode::from(t.exit_code() as u8)
            }
            None => {
                out::note(format_args!("error: {}", one_line(&format!("{e:#}"))));
                ExitCode::from(1)
            }
        },
    }
}

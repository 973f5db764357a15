//! A whole `diffusion-train` run: settings, device, data, resume, train.

use std::path::{Path, PathBuf};

use crate::config::overrides::Overrides;

use super::checkpoint::Checkpoint;
use super::data::{SourceCheck, TrainData};
use super::device;
use super::error::TrainError;
use super::family::{Net, Process};
use super::settings::{DeviceChoice, TrainSettings};
use super::state;
use super::torch_files;
use super::trainer::{RunOptions, Summary, Trainer};
use super::visualize;

/// A training request from the command line.
#[derive(Clone, Debug, Default)]
pub struct TrainRequest {
    pub config: PathBuf,
    /// `None`: the manifest `balance-split balance` writes for the config's split file.
    pub manifest: Option<PathBuf>,
    pub device: Option<DeviceChoice>,
    pub out: Option<PathBuf>,
    /// Directory image paths (and the manifest's source split) are relative to.
    pub root: PathBuf,
    /// `--resume CKPT`: overrides `training.resume`.
    pub resume: Option<PathBuf>,
    /// `--init-from FILE`: overrides `training.init_from`.
    pub init_from: Option<PathBuf>,
    pub options: RunOptions,
    /// The user's `--dotted.key value` overrides, applied to the config before it is read.
    pub overrides: Overrides,
}

/// The config's settings with the user's overrides, then the command line's `--device` and
/// `--out` applied.
pub fn load_settings(
    config: &Path,
    overrides: &Overrides,
    device: Option<DeviceChoice>,
    out: Option<&Path>,
) -> Result<TrainSettings, TrainError> {
    let mut s = TrainSettings::load_with(config, overrides)?;
    if let Some(d) = device {
        s.device = d;
    }
    if let Some(out) = out {
        s.output = s.output.rebased(out);
    }
    Ok(s)
}

/// Before anything is written: registers the run's `inputs` as files no output may replace
/// (every writer checks at its commit, see [`crate::output::protect`]), and checks the
/// outputs whose names are fixed, naming the config key that placed each.
pub fn check_outputs(s: &TrainSettings, train: bool, inputs: &[&Path]) -> Result<(), TrainError> {
    crate::output::protect(inputs);
    let o = &s.output;
    let mut fixed = vec![(
        "output.subdirs.logs",
        o.logs
            .join(if train { "train.log" } else { "generate.log" }),
    )];
    if train {
        fixed.extend([
            ("output.base_dir", o.base_dir.join("metrics.csv")),
            (
                "output.subdirs.checkpoints",
                o.checkpoints.join("latest.ckpt"),
            ),
            (
                "output.subdirs.checkpoints",
                o.checkpoints.join("best.ckpt"),
            ),
        ]);
    }
    for (key, path) in fixed {
        crate::output::check_destination(&path, inputs).map_err(|source| {
            TrainError::Destination {
                key: key.into(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The settings of a training request (`--resume` included).
pub fn settings(req: &TrainRequest) -> Result<TrainSettings, TrainError> {
    let mut s = load_settings(&req.config, &req.overrides, req.device, req.out.as_deref())?;
    if let Some(r) = &req.resume {
        s.training.resume.enabled = true;
        s.training.resume.checkpoint = Some(r.clone());
    }
    if let Some(i) = &req.init_from {
        s.training.init_from = Some(i.clone());
    }
    if s.training.resume.enabled && s.training.init_from.is_some() {
        return Err(TrainError::Mismatch(format!(
            "{}: training.init_from (or --init-from) cannot be combined with a resume: a resumed run takes its weights from the checkpoint",
            req.config.display()
        )));
    }
    Ok(s)
}

/// The manifest path: `--manifest`, or `<split dir>/<split stem>.balanced.json` beside
/// the config's `data.split_file`, where `balance-split balance` writes it by default.
pub fn manifest_path(req: &TrainRequest, s: &TrainSettings) -> Result<PathBuf, TrainError> {
    if let Some(m) = &req.manifest {
        return Ok(m.clone());
    }
    let split = s.split_file.as_deref().ok_or_else(|| {
        TrainError::Mismatch(format!(
            "{}: data.split_file: missing; set it or pass --manifest FILE",
            req.config.display()
        ))
    })?;
    Ok(crate::input::under(
        &req.root,
        &crate::balance::default_output(Path::new(split)),
    ))
}

/// The device the settings ask for, or why it cannot be had.
fn choose_device(s: &TrainSettings) -> Result<device::Chosen, TrainError> {
    device::choose(s.device).map_err(|e| TrainError::Unavailable(e.to_string()))
}

/// `training.performance.use_amp: true` is CUDA-only in the user's trainer, so off a GPU
/// (the CPU backend, or lavapipe, a CPU behind wgpu) it changes nothing there or here; on a
/// GPU theirs would train in mixed precision, which diffusion-train does not implement, so
/// it refuses rather than silently train in f32.
fn check_amp(s: &TrainSettings, chosen: &device::Chosen, config: &Path) -> Result<(), TrainError> {
    if !s.use_amp {
        return Ok(());
    }
    if !chosen.gpu {
        log::info!("training.performance.use_amp: true has no effect on the CPU (as in the user's trainer, where it applies to CUDA only)");
        return Ok(());
    }
    Err(TrainError::Config(crate::config::ConfigError::Invalid {
        path: config.to_owned(),
        key: "training.performance.use_amp".into(),
        message: format!(
            "true: mixed precision is not implemented by diffusion-train, which trains in f32 on {}; set it to false (or use --device cpu, where the user's trainer does not use it either)",
            chosen.description
        ),
    }))
}

/// Runs training as `req` and the config say. `on_start` is called once everything is
/// checked and loaded, before the first step: an error before it is the input's alone.
pub fn train(
    req: &TrainRequest,
    s: &TrainSettings,
    on_start: impl FnOnce(),
) -> Result<Summary, TrainError> {
    // OpenAI's file is needed unless the weights come from a checkpoint; a missing one is
    // said before anything else is read.
    let pretrained = match &s.adm {
        Some(adm) if !s.training.resume.enabled && s.training.init_from.is_none() => {
            Some(pretrained_file(req, adm)?)
        }
        _ => None,
    };
    state::check_trainable(s, &req.config)?;
    let manifest = manifest_path(req, s)?;
    let data = TrainData::load(&manifest, &req.root, s)?;
    match &data.source_check {
        SourceCheck::Matches(p) => {
            log::info!("source split {} matches the manifest's sha256", p.display())
        }
        SourceCheck::Absent(p) => log::warn!(
            "source split {} is not here; its sha256 was not checked",
            p.display()
        ),
    }
    let chosen = choose_device(s)?;
    log::info!("device: {}", chosen.description);
    check_amp(s, &chosen, &req.config)?;
    if !s.ignored.is_empty() {
        log::info!(
            "ignored (no effect in diffusion-train): {}",
            s.ignored.join(", ")
        );
    }
    let device = chosen.device.autodiff();
    let seed = state::training_seed(s);
    if seed != data.data_seed {
        log::info!(
            "training seed {seed}; the data order follows the manifest's seed {} (as balance-split sample prints it)",
            data.data_seed
        );
    }
    log::info!(
        "manifest {}: {} training entries ({}), {} validation entries; loss {}",
        manifest.display(),
        data.train.len(),
        if data.sampler.is_some() {
            "weighted sampler"
        } else {
            "shuffled"
        },
        data.val.as_ref().map_or(0, |v| v.len()),
        match &data.loss_weights {
            Some(w) => format!("class-weighted {w:?}"),
            None => "plain MSE".into(),
        }
    );
    let mut state = state::fresh(s, seed, &device);
    let r = &s.training.resume;
    if r.enabled {
        let path = r
            .checkpoint
            .as_ref()
            .expect("validated: resume has a checkpoint");
        let ck = Checkpoint::load(path)?;
        state = state::restore(state, &ck, path, s)?;
        log::info!(
            "resumed from {} at epoch {} step {}",
            path.display(),
            state.epoch,
            state.step
        );
    }
    if let Some(path) = &s.training.init_from {
        let imported = torch_files::open(path)?;
        state = state::init_from(state, &imported, s)?;
        log::info!(
            "initialised the model from {}{}",
            path.display(),
            match (&state.ema, &imported.ema) {
                (Some(_), Some(_)) => " (the EMA from its ema_state_dict)",
                (Some(_), None) => " (the EMA starts at these weights)",
                (None, _) => "",
            }
        );
    }
    if let Some(file) = pretrained {
        let (st, loaded) = state::pretrained(state, &file)?;
        state = st;
        if let Some(loaded) = loaded {
            log_pretrained(&loaded, &file, s);
        }
    }
    state = state::freeze(state, s, &req.config)?;
    let t = Trainer {
        settings: s,
        data: &data,
        device,
        seed,
        options: req.options.clone(),
    };
    on_start();
    let (_, summary) = t.run(state)?;
    Ok(summary)
}

/// What loading OpenAI's file did.
fn log_pretrained(loaded: &super::adm::state_dict::Loaded, file: &Path, s: &TrainSettings) {
    log::info!(
        "loaded {} of the ADM's backbone tensors from {}{}{}; the label head ({} rows) is new",
        loaded.matched,
        file.display(),
        match loaded.missing.first() {
            None => String::new(),
            Some(first) => format!(", {} missing (first {first})", loaded.missing.len()),
        },
        if loaded.unexpected > 0 {
            format!(", {} of its tensors unused", loaded.unexpected)
        } else {
            String::new()
        },
        s.conditioning.as_ref().map_or(0, |c| c.num_classes + 1),
    );
}

/// OpenAI's checkpoint as `model.pretrained` places it (under `--root`). Nothing is
/// downloaded here: a missing file is one line naming the URL and where to put it.
fn pretrained_file(req: &TrainRequest, adm: &super::settings::Adm) -> Result<PathBuf, TrainError> {
    let file = crate::input::under(&req.root, &adm.checkpoint);
    if file.exists() {
        return Ok(file);
    }
    Err(TrainError::Config(crate::config::ConfigError::Invalid {
        path: req.config.clone(),
        key: adm.checkpoint_key.into(),
        message: format!(
            "{} does not exist; diffusion-train downloads nothing: fetch {} and put it there",
            file.display(),
            adm.checkpoint_url
                .as_deref()
                .unwrap_or("OpenAI's 64x64_diffusion.pt (guided-diffusion's README)")
        ),
    }))
}

/// A generation request from the command line.
#[derive(Clone, Debug, Default)]
pub struct GenerateRequest {
    pub config: PathBuf,
    /// Overrides `generation.checkpoint`.
    pub checkpoint: Option<PathBuf>,
    pub device: Option<DeviceChoice>,
    /// Overrides `output.base_dir`; images go to its `generated` subdirectory.
    pub out: Option<PathBuf>,
}

/// Generation mode: samples per class from a checkpoint, written as PNGs. The model's
/// shape and noise schedule come from the checkpoint; the sampling settings from the
/// config's `generation` section.
/// `on_start` is called before the first sample is drawn, as [`train`]'s.
pub fn generate(
    req: &GenerateRequest,
    s: &TrainSettings,
    on_start: impl FnOnce(),
) -> Result<Vec<PathBuf>, TrainError> {
    let path = req
        .checkpoint
        .clone()
        .or_else(|| s.generation.checkpoint.clone())
        .ok_or_else(|| {
            TrainError::Mismatch(format!(
                "{}: generation.checkpoint: missing; set it or pass --checkpoint FILE",
                req.config.display()
            ))
        })?;
    let ck = Checkpoint::load(&path)?;
    let m = &ck.meta;
    state::check_betas(m, &path)?;
    if let Some(sel) = &s.generation.class_selection {
        if let Some(bad) = sel.iter().find(|&&k| k >= m.class_names.len()) {
            return Err(TrainError::Mismatch(format!(
                "{}: generation.sampling.class_selection: class {bad} is not below the checkpoint's {} classes",
                req.config.display(),
                m.class_names.len()
            )));
        }
    }
    let chosen = choose_device(s)?;
    log::info!("device: {}", chosen.description);
    let process = checkpoint_process(m, s, &path)?;
    let model = Net::new(
        &m.architecture,
        m.num_classes,
        m.adm.as_ref(),
        &chosen.device,
    );
    let use_ema = s.generation.use_ema;
    if use_ema && !ck.has_ema() {
        log::warn!(
            "{}: no EMA weights; generating with the trained weights",
            path.display()
        );
    }
    let model = state::load_weights(model, &ck, &path, use_ema)?;
    let mut settings = s.clone();
    settings.architecture = m.architecture.clone();
    let seed = state::training_seed(s);
    let ctx = visualize::Context {
        model: &model,
        process: &process,
        settings: &settings,
        classes: &m.class_names,
        seed,
        device: &chosen.device,
        threshold: s.generation.threshold,
    };
    let title = format!(
        "{}: epoch {}, guidance {}, seed {seed}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        m.epoch,
        s.generation.guidance_scale
    );
    on_start();
    let written = visualize::generation(&ctx, &s.output.generated, &title)?;
    log::info!(
        "wrote {} files to {}",
        written.len(),
        s.output.generated.display()
    );
    Ok(written)
}

/// The process a checkpoint's model samples with: the DDPM's from its record; the ADM's
/// respaced as the config's `sample_timestep_respacing` says, which must be an ADM config.
fn checkpoint_process(
    m: &super::checkpoint::Meta,
    s: &TrainSettings,
    path: &Path,
) -> Result<Process, TrainError> {
    let Some(model) = &m.adm else {
        if s.adm.is_some() {
            return Err(TrainError::Mismatch(format!(
                "{}: a DDPM checkpoint (experiment: diffusion); generate with that experiment's config (this one's sampler is the ADM's)",
                path.display()
            )));
        }
        return Ok(Process::new(&m.diffusion, None));
    };
    let Some(adm) = &s.adm else {
        return Err(TrainError::Mismatch(format!(
            "{}: an ADM checkpoint (experiment: diffusion_pretrained); generate with that experiment's config",
            path.display()
        )));
    };
    super::gaussian::respacing(m.diffusion.num_timesteps, &adm.respacing).map_err(|e| {
        TrainError::Mismatch(format!(
            "{}: model.diffusion.sample_timestep_respacing for the checkpoint's {} steps: {e}",
            path.display(),
            m.diffusion.num_timesteps
        ))
    })?;
    Ok(Process::new(
        &m.diffusion,
        Some((model, adm.respacing.as_str())),
    ))
}

/// `diffusion-train bench`: timed training steps per batch size.
pub fn bench(
    s: &TrainSettings,
    config: &Path,
    batches: &[usize],
    steps: usize,
    warmup: usize,
    ops: bool,
) -> Result<Vec<super::bench::Timing>, TrainError> {
    let chosen = choose_device(s)?;
    let device = chosen.device.autodiff();
    batches
        .iter()
        .map(|&b| {
            super::bench::run(
                s,
                config,
                &device,
                &chosen.description,
                b,
                steps,
                warmup,
                ops,
            )
        })
        .collect()
}

/// Which weights of a checkpoint `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportWeights {
    /// The EMA's when the checkpoint has one, else the trained weights.
    Default,
    /// The EMA's; a checkpoint without one is refused.
    Ema,
    /// The trained weights.
    Raw,
}

/// What `export` wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    pub tensors: usize,
    pub parameters: usize,
    pub ema: bool,
    pub epoch: usize,
    pub step: u64,
}

/// `diffusion-train export`: a checkpoint's weights under the user's `state_dict` names
/// (their `DDPMModel`'s with its noise-schedule buffers, or their `AdmDdpmModel`'s), as
/// safetensors their `load_state_dict` takes with `strict=True`.
pub fn export(
    s: &TrainSettings,
    checkpoint: &Path,
    out: &Path,
    which: ExportWeights,
) -> Result<Exported, TrainError> {
    let ck = Checkpoint::load(checkpoint)?;
    state::check_same_model(&ck.meta, s, checkpoint)?;
    let has_ema = ck.has_ema();
    let ema = match which {
        ExportWeights::Raw => false,
        ExportWeights::Default => has_ema,
        ExportWeights::Ema if has_ema => true,
        ExportWeights::Ema => {
            return Err(TrainError::Mismatch(format!(
                "{}: --ema: the checkpoint has no EMA weights (training.ema.enabled was false); use --raw",
                checkpoint.display()
            )))
        }
    };
    let m = &ck.meta;
    let device = burn::prelude::Device::flex();
    let model = Net::new(&m.architecture, m.num_classes, m.adm.as_ref(), &device);
    let model = state::load_weights(model, &ck, checkpoint, ema)?;
    let (tensors, prefix) = model.export_tensors(&m.diffusion);
    let metadata = [
        ("format", "pt".to_owned()),
        ("config", s.text.clone()),
        ("epoch", m.epoch.to_string()),
        ("step", m.step.to_string()),
        ("ema", ema.to_string()),
        (
            "class_names",
            serde_json::to_string(&m.class_names).expect("strings"),
        ),
        (
            "tool",
            format!("diffusion-train {}", env!("CARGO_PKG_VERSION")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    torch_files::write_safetensors(out, &tensors, metadata)?;
    Ok(Exported {
        tensors: tensors.len(),
        parameters: tensors
            .iter()
            .filter(|t| t.name.starts_with(prefix))
            .map(|t| t.values.len())
            .sum(),
        ema,
        epoch: m.epoch,
        step: m.step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_amp_is_accepted_on_the_cpu_and_refused_on_a_gpu() {
        let mut s = TrainSettings::parse("", Path::new("c.yaml")).unwrap();
        let chosen = |cpu: bool, gpu: bool| device::Chosen {
            device: burn::prelude::Device::flex(),
            description: "wgpu Vulkan adapter \"X\"".into(),
            gpu,
            cpu,
        };
        let config = Path::new("c.yaml");
        check_amp(&s, &chosen(false, true), config).unwrap();
        s.use_amp = true;
        check_amp(&s, &chosen(true, false), config).unwrap();
        // lavapipe: wgpu, but a CPU.
        check_amp(&s, &chosen(false, false), config).unwrap();
        assert_eq!(
            check_amp(&s, &chosen(false, true), config)
                .unwrap_err()
                .to_string(),
            "c.yaml: training.performance.use_amp: true: mixed precision is not implemented by diffusion-train, which trains in f32 on wgpu Vulkan adapter \"X\"; set it to false (or use --device cpu, where the user's trainer does not use it either)"
        );
        assert_eq!(
            check_amp(&s, &chosen(false, true), config)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}

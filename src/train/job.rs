//! A whole `diffusion-train` run: settings, device, data, resume, train.

use std::path::{Path, PathBuf};

use super::checkpoint::Checkpoint;
use super::data::{SourceCheck, TrainData};
use super::device;
use super::error::TrainError;
use super::settings::{DeviceChoice, TrainSettings};
use super::trainer::{self, RunOptions, Summary, Trainer};

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
    pub options: RunOptions,
}

/// The settings with the command line's overrides applied.
pub fn settings(req: &TrainRequest) -> Result<TrainSettings, TrainError> {
    let mut s = TrainSettings::load(&req.config)?;
    if let Some(d) = req.device {
        s.device = d;
    }
    if let Some(out) = &req.out {
        s.output = s.output.rebased(out);
    }
    if let Some(r) = &req.resume {
        s.training.resume.enabled = true;
        s.training.resume.checkpoint = Some(r.clone());
    }
    Ok(s)
}

/// The manifest path: `--manifest`, or `<split dir>/<split stem>.balanced.json` beside
/// the config's `data.split_file`, where `balance-split balance` writes it by default.
pub fn manifest_path(req: &TrainRequest) -> Result<PathBuf, TrainError> {
    if let Some(m) = &req.manifest {
        return Ok(m.clone());
    }
    let cfg = crate::config::Config::load(&req.config)?;
    let split = cfg.split_file.ok_or_else(|| {
        TrainError::Mismatch(format!(
            "{}: data.split_file: missing; set it or pass --manifest FILE",
            req.config.display()
        ))
    })?;
    let split = Path::new(&split);
    let stem = split.file_stem().unwrap_or_default().to_string_lossy();
    Ok(super::data::under(
        &req.root,
        &split.with_file_name(format!("{stem}.balanced.json")),
    ))
}

/// Runs training as `req` and the config say.
pub fn train(req: &TrainRequest, s: &TrainSettings) -> Result<Summary, TrainError> {
    let manifest = manifest_path(req)?;
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
    let chosen = device::choose(s.device).map_err(|e| TrainError::Device(e.to_string()))?;
    log::info!("device: {}", chosen.description);
    let device = chosen.device.autodiff();
    let seed = trainer::training_seed(s);
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
    let mut state = trainer::fresh(s, seed, &device);
    let r = &s.training.resume;
    if r.enabled {
        let path = r
            .checkpoint
            .as_ref()
            .expect("validated: resume has a checkpoint");
        let ck = Checkpoint::load(path)?;
        state = trainer::restore(state, &ck, path, s, r.reset_optimizer)?;
        log::info!(
            "resumed from {} at epoch {} step {}",
            path.display(),
            state.epoch,
            state.step
        );
    }
    let t = Trainer {
        settings: s,
        data: &data,
        device,
        seed,
        options: req.options.clone(),
    };
    let (_, summary) = t.run(state)?;
    Ok(summary)
}

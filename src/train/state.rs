//! The training state (model, optimizer, EMA, position) and its checkpoints: a fresh
//! state from a seed, the checkpoint of a state, and a state restored from one.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::Bytes;

use super::checkpoint::{Checkpoint, CheckpointError, Meta, FORMAT_VERSION};
use super::data::TrainData;
use super::ema::Ema;
use super::error::TrainError;
use super::family::{self, Net};
use super::optim;
use super::plateau::PlateauState;
use super::schedule::learning_rate;
use super::schedule::NoiseSchedule;
use super::settings::{Scheduler, TrainSettings};
use super::torch_files::Imported;
use super::unet::state_dict::{buffers, check_buffers, load_state_dict, StateDictError};
use super::unet::UNet;

mod adm;
pub use adm::{check_trainable, freeze, pretrained};

/// The model, its optimizer, its average and where the run stands.
pub struct State {
    pub model: Net,
    pub optim: ModuleOptimizer,
    pub ema: Option<Ema>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    /// The epoch the learning-rate schedule counts from (moved by `reset_scheduler`).
    pub schedule_start: usize,
    pub best_val_loss: Option<f64>,
    /// The `plateau` scheduler's state, when it is the configured one.
    pub plateau: Option<PlateauState>,
}

/// A fresh plateau state when `plateau` is the configured scheduler.
fn fresh_plateau(s: &TrainSettings) -> Option<PlateauState> {
    match &s.training.scheduler {
        Scheduler::Plateau(p) => Some(PlateauState::new(p, s.training.optimizer.learning_rate)),
        _ => None,
    }
}

impl State {
    /// The learning rate of epoch `epoch`.
    pub fn learning_rate(&self, s: &TrainSettings, epoch: usize) -> f64 {
        if let Some(p) = &self.plateau {
            return p.lr;
        }
        learning_rate(
            s.training.optimizer.learning_rate,
            &s.training.scheduler,
            epoch - self.schedule_start,
        )
    }

    /// The model samples are drawn from: the EMA when there is one and `use_ema`.
    pub fn sampling_model(&self, use_ema: bool) -> Net {
        match (&self.ema, use_ema) {
            (Some(e), true) => e.model.clone(),
            _ => self.model.valid(),
        }
    }
}

/// The training seed (`compute.seed`); the OS seed of `compute.seed: null` is drawn once
/// and logged so the run can be repeated.
pub fn training_seed(s: &TrainSettings) -> u64 {
    match s.seed {
        crate::config::SeedSetting::Fixed(n) => n,
        crate::config::SeedSetting::FromOs => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).expect("the OS provides random bytes");
            let n = u64::from_le_bytes(b);
            log::info!("compute.seed is null; drew seed {n} from the OS");
            n
        }
    }
}

/// Touches every parameter. burn initialises parameters lazily, on first use, from the
/// device's generator; forcing it right after seeding makes the initial weights a
/// function of the seed alone, whatever runs before the first forward pass.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
        let _ = p.val();
    }
}

/// A fresh model and optimizer on `device`, initialised from `seed`.
pub fn fresh(s: &TrainSettings, seed: u64, device: &Device) -> State {
    device.seed(seed);
    let model = Net::new(
        &s.architecture,
        s.conditioning.as_ref().map(|c| c.num_classes),
        s.adm.as_ref().map(|a| &a.model),
        device,
    );
    model.visit(&mut Materialize);
    let ema = s
        .training
        .ema
        .enabled
        .then(|| Ema::new(&model, s.training.ema.decay));
    State {
        model,
        optim: optim::build(&s.training.optimizer),
        ema,
        epoch: 0,
        step: 0,
        schedule_start: 0,
        best_val_loss: None,
        plateau: fresh_plateau(s),
    }
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(CheckpointError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn load_module(m: Net, bytes: &[u8], path: &Path) -> Result<Net, TrainError> {
    m.load_record_bytes(bytes)
        .map_err(|e| record_error(path, e))
}

/// The ADM's model record of the settings, `None` for the DDPM.
fn adm_model(s: &TrainSettings) -> Option<&super::settings::AdmModel> {
    s.adm.as_ref().map(|a| &a.model)
}

/// The checkpoint of `state`.
pub fn checkpoint(
    state: &State,
    s: &TrainSettings,
    data: &TrainData,
    seed: u64,
    with_optimizer: bool,
) -> Checkpoint {
    let mut sections = vec![("model".to_string(), state.model.record_bytes())];
    if with_optimizer {
        let o = state
            .optim
            .into_bytes()
            .expect("an in-memory record always serialises");
        sections.push(("optimizer".to_string(), o.to_vec()));
    }
    if let Some(e) = &state.ema {
        sections.push(match adm::trained_ema(&state.model, &e.model) {
            Some(bytes) => (adm::TRAINED_EMA.to_string(), bytes),
            None => ("ema".to_string(), e.model.record_bytes()),
        });
    }
    Checkpoint {
        meta: Meta {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            epoch: state.epoch,
            step: state.step,
            seed,
            manifest: data.manifest.display().to_string(),
            manifest_sha256: data.manifest_sha256.clone(),
            architecture: s.architecture.clone(),
            num_classes: s.conditioning.as_ref().map(|c| c.num_classes),
            class_names: data.classes.clone(),
            diffusion: s.diffusion.clone(),
            schedule_start: state.schedule_start,
            best_val_loss: state.best_val_loss,
            betas_sha256: Some(family::betas_sha256(&s.diffusion, adm_model(s))),
            plateau: state.plateau.clone(),
            adm: adm_model(s).cloned(),
        },
        sections,
    }
}

/// Loads the model weights (the EMA's when `use_ema` and present) of a checkpoint into
/// `model`, which must have the checkpoint's architecture.
pub fn load_weights(
    model: Net,
    ck: &Checkpoint,
    path: &Path,
    use_ema: bool,
) -> Result<Net, TrainError> {
    if let Some(b) = ck.section("ema").filter(|_| use_ema) {
        return load_module(model, b, path);
    }
    let bytes = ck
        .section("model")
        .ok_or_else(|| record_error(path, "no model section"))?;
    let model = load_module(model, bytes, path)?;
    match ck.section(adm::TRAINED_EMA).filter(|_| use_ema) {
        Some(b) => adm::with_trained_ema(model, b, path),
        None => Ok(model),
    }
}

/// The first config key whose value the checkpoint's model does not share, with both
/// values as the config writes them. The ADM's widths and betas follow from its source and
/// step count, which come first.
fn first_difference(
    m: &Meta,
    s: &TrainSettings,
    num_classes: Option<usize>,
) -> Option<(&'static str, String, String)> {
    let classes = |n: Option<usize>| n.map_or_else(|| "null".to_owned(), |n| n.to_string());
    let schedule = |b| format!("{b:?}").to_lowercase();
    let (a, b) = (&m.architecture, &s.architecture);
    let (x, y) = (&m.diffusion, &s.diffusion);
    let pairs = [
        (
            "model.conditioning.num_classes",
            classes(m.num_classes),
            classes(num_classes),
        ),
        (
            "model.architecture.image_size",
            a.image_size.to_string(),
            b.image_size.to_string(),
        ),
        (
            "model.architecture.in_channels",
            a.in_channels.to_string(),
            b.in_channels.to_string(),
        ),
        (
            "model.diffusion.num_timesteps",
            x.num_timesteps.to_string(),
            y.num_timesteps.to_string(),
        ),
        (
            "model.architecture.model_channels",
            a.model_channels.to_string(),
            b.model_channels.to_string(),
        ),
        (
            "model.architecture.channel_multipliers",
            format!("{:?}", a.channel_multipliers),
            format!("{:?}", b.channel_multipliers),
        ),
        (
            "model.architecture.use_attention",
            format!("{:?}", a.use_attention),
            format!("{:?}", b.use_attention),
        ),
        (
            "model.diffusion.beta_schedule",
            schedule(x.beta_schedule),
            schedule(y.beta_schedule),
        ),
        (
            "model.diffusion.beta_start",
            x.beta_start.to_string(),
            y.beta_start.to_string(),
        ),
        (
            "model.diffusion.beta_end",
            x.beta_end.to_string(),
            y.beta_end.to_string(),
        ),
    ];
    pairs.into_iter().find(|(_, theirs, ours)| theirs != ours)
}

/// Refuses a checkpoint whose model (architecture, classes, noise schedule) is not the
/// config's, naming the first key that differs.
pub fn check_same_model(m: &Meta, s: &TrainSettings, path: &Path) -> Result<(), TrainError> {
    let num_classes = s.conditioning.as_ref().map(|c| c.num_classes);
    if m.adm.as_ref() != adm_model(s) {
        let family = |a: Option<&super::settings::AdmModel>| match a {
            None => "the DDPM (experiment: diffusion)".to_owned(),
            Some(a) => format!(
                "the ADM {} with the {} schedule (experiment: diffusion_pretrained)",
                a.source.name(),
                a.noise_schedule.name()
            ),
        };
        return Err(TrainError::Mismatch(format!(
            "{}: the checkpoint's model is {}, the config's {}",
            path.display(),
            family(m.adm.as_ref()),
            family(adm_model(s))
        )));
    }
    if let Some((key, theirs, ours)) = first_difference(m, s, num_classes) {
        return Err(TrainError::Mismatch(format!(
            "{}: the checkpoint's model differs from the config's: {key} is {theirs} in the checkpoint, {ours} in the config",
            path.display()
        )));
    }
    check_betas(m, path)
}

/// Refuses a checkpoint trained under other betas than its `model.diffusion` gives now
/// (the cosine schedule's clip was aligned with the user's [1e-4, 0.9999]; before, it was
/// [0, 0.999]); one too old to record them is used with a warning.
pub fn check_betas(m: &Meta, path: &Path) -> Result<(), TrainError> {
    let now = family::betas_sha256(&m.diffusion, m.adm.as_ref());
    match &m.betas_sha256 {
        Some(h) if *h == now => Ok(()),
        Some(_) => Err(TrainError::Mismatch(format!(
            "{}: the checkpoint was trained with other noise-schedule betas than its model.diffusion ({:?}) gives in this version",
            path.display(),
            m.diffusion
        ))),
        None => {
            log::warn!(
                "{}: written by an older diffusion-train that did not record its betas; a cosine schedule was then clipped to [0, 0.999], now to [1e-4, 0.9999] as the user's",
                path.display()
            );
            Ok(())
        }
    }
}

/// `state` with the weights of a user's file (`training.init_from`): the model's, and
/// the EMA's from the file's EMA when it has one, else from the model's new weights.
/// The optimizer and the position stay fresh.
pub fn init_from(
    state: State,
    imported: &Imported,
    s: &TrainSettings,
) -> Result<State, TrainError> {
    let (model, ema) = match state.model {
        Net::Ddpm(m) => init_from_ddpm(m, state.ema, imported, s)?,
        Net::Adm(m) => adm::init_from(m, state.ema, imported)?,
    };
    Ok(State {
        model,
        ema,
        ..state
    })
}

/// The DDPM from their `DDPMModel`'s names, its schedule buffers checked against
/// `model.diffusion`.
fn init_from_ddpm(
    m: UNet,
    ema: Option<Ema>,
    imported: &Imported,
    s: &TrainSettings,
) -> Result<(Net, Option<Ema>), TrainError> {
    let path = &imported.path;
    let err = |e: StateDictError| TrainError::Mismatch(format!("{}: {e}", path.display()));
    if adm::is_adm_file(imported.model.as_ref()) {
        return Err(TrainError::Mismatch(format!(
            "{}: a checkpoint of their AdmDdpmModel (unet.* names); the config trains the DDPM (experiment: diffusion)",
            path.display()
        )));
    }
    let expected = buffers(&NoiseSchedule::new(&s.diffusion));
    check_buffers(imported.model.as_ref(), &expected).map_err(err)?;
    let model = load_state_dict(m, imported.model.as_ref()).map_err(err)?;
    let ema = match (ema.map(|e| (e.model, e.decay)), &imported.ema) {
        (Some((Net::Ddpm(shadow), decay)), Some(src)) => Some(Ema {
            model: Net::Ddpm(load_state_dict(shadow, src.as_ref()).map_err(err)?),
            decay,
        }),
        (Some((_, decay)), _) => Some(Ema::new(&Net::Ddpm(model.clone()), decay)),
        (None, _) => None,
    };
    Ok((Net::Ddpm(model), ema))
}

/// Restores `state` from a checkpoint written by [`checkpoint`]. `reset_optimizer` keeps
/// the fresh optimizer; `reset_scheduler` starts the learning-rate schedule again at the
/// checkpoint's epoch.
pub fn restore(
    state: State,
    ck: &Checkpoint,
    path: &Path,
    s: &TrainSettings,
) -> Result<State, TrainError> {
    let m = &ck.meta;
    check_same_model(m, s, path)?;
    let r = &s.training.resume;
    let model = load_weights(state.model, ck, path, false)?;
    let optim = match ck.section("optimizer") {
        Some(b) if !r.reset_optimizer => state
            .optim
            .from_bytes(Bytes::from_bytes_vec(b.to_vec()))
            .map_err(|e| record_error(path, e))?,
        _ => state.optim,
    };
    let ema = match (state.ema, ck.section("ema"), ck.section(adm::TRAINED_EMA)) {
        (Some(e), Some(b), _) => Some(Ema {
            model: load_module(e.model, b, path)?,
            decay: e.decay,
        }),
        (Some(e), None, Some(b)) => Some(Ema {
            model: adm::with_trained_ema(model.valid(), b, path)?,
            decay: e.decay,
        }),
        // EMA newly enabled: start it at the restored weights.
        (Some(e), None, None) => Some(Ema::new(&model, e.decay)),
        (None, ..) => None,
    };
    Ok(State {
        model,
        optim,
        ema,
        epoch: m.epoch,
        step: m.step,
        schedule_start: if r.reset_scheduler {
            m.epoch
        } else {
            m.schedule_start
        },
        best_val_loss: m.best_val_loss,
        // A run that switched to plateau, or reset its scheduler, starts it afresh.
        plateau: match (&m.plateau, fresh_plateau(s)) {
            (Some(p), Some(_)) if !r.reset_scheduler => Some(p.clone()),
            (_, fresh) => fresh,
        },
    })
}

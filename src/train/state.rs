//! The training state (model, optimizer, EMA, position) and its checkpoints: a fresh
//! state from a seed, the checkpoint of a state, and a state restored from one.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::Bytes;

use super::adm::state_dict as adm_dict;
use super::checkpoint::{Checkpoint, CheckpointError, Meta, FORMAT_VERSION};
use super::data::TrainData;
use super::ema::Ema;
use super::error::TrainError;
use super::family::{self, Net};
use super::optim;
use super::plateau::PlateauState;
use super::schedule::learning_rate;
use super::schedule::NoiseSchedule;
use super::settings::{Scheduler, TrainSettings, Trainable};
use super::torch_files::Imported;
use super::unet::state_dict::{buffers, check_buffers, load_state_dict, StateDictError};

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

/// The record of the family's own module (not of the [`Net`] around it), so a DDPM's
/// checkpoint bytes are what they were before there were two families.
fn module_bytes(m: &Net) -> Vec<u8> {
    fn bytes<M: Module>(m: &M) -> Vec<u8> {
        m.clone()
            .into_record()
            .into_bytes()
            .expect("an in-memory record always serialises")
            .to_vec()
    }
    match m {
        Net::Ddpm(u) => bytes(u),
        Net::Adm(a) => bytes(a),
    }
}

fn load_module(m: Net, bytes: &[u8], path: &Path) -> Result<Net, TrainError> {
    fn load<M: Module>(m: M, bytes: &[u8], path: &Path) -> Result<M, TrainError> {
        let record = burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| record_error(path, e))?;
        m.try_load_record(record).map_err(|e| record_error(path, e))
    }
    Ok(match m {
        Net::Ddpm(u) => Net::Ddpm(load(u, bytes, path)?),
        Net::Adm(a) => Net::Adm(load(a, bytes, path)?),
    })
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
    let mut sections = vec![("model".to_string(), module_bytes(&state.model))];
    if with_optimizer {
        let o = state
            .optim
            .into_bytes()
            .expect("an in-memory record always serialises");
        sections.push(("optimizer".to_string(), o.to_vec()));
    }
    if let Some(e) = &state.ema {
        sections.push(("ema".to_string(), module_bytes(&e.model)));
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
    let section = if use_ema && ck.section("ema").is_some() {
        "ema"
    } else {
        "model"
    };
    let bytes = ck
        .section(section)
        .ok_or_else(|| record_error(path, "no model section"))?;
    load_module(model, bytes, path)
}

/// Refuses a checkpoint whose model (architecture, classes, noise schedule) is not the
/// config's.
pub fn check_same_model(m: &Meta, s: &TrainSettings, path: &Path) -> Result<(), TrainError> {
    let num_classes = s.conditioning.as_ref().map(|c| c.num_classes);
    if m.adm.as_ref() != adm_model(s) {
        let family = |a: Option<&super::settings::AdmModel>| match a {
            None => "the DDPM (experiment: diffusion)".to_owned(),
            Some(a) => format!(
                "the ADM {} with the {} schedule (experiment: diffusion_pretrained)",
                a.source.name(),
                family::schedule_name(a.noise_schedule)
            ),
        };
        return Err(TrainError::Mismatch(format!(
            "{}: the checkpoint's model is {}, the config's {}",
            path.display(),
            family(m.adm.as_ref()),
            family(adm_model(s))
        )));
    }
    if m.architecture != s.architecture
        || m.num_classes != num_classes
        || m.diffusion != s.diffusion
    {
        return Err(TrainError::Mismatch(format!(
            "{}: the checkpoint's model ({:?}, {:?}, {:?} classes) differs from the config's ({:?}, {:?}, {:?} classes)",
            path.display(),
            m.architecture,
            m.diffusion,
            m.num_classes,
            s.architecture,
            s.diffusion,
            num_classes
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
/// The optimizer and the position stay fresh. The DDPM's names are their `DDPMModel`'s
/// (schedule buffers checked against `model.diffusion`); the ADM's their `AdmDdpmModel`'s
/// (`unet.` first), whose EMA shadow holds the tensors that trained, the others starting at
/// the model's.
pub fn init_from(
    state: State,
    imported: &Imported,
    s: &TrainSettings,
) -> Result<State, TrainError> {
    let err = |e: StateDictError| TrainError::Mismatch(format!("{}: {e}", imported.path.display()));
    let ema = |e: Option<Ema>, model: &Net, load: &dyn Fn(Net) -> Result<Net, StateDictError>| {
        Ok::<_, TrainError>(match (e, &imported.ema) {
            (Some(e), Some(_)) => Some(Ema {
                model: load(e.model).map_err(err)?,
                decay: e.decay,
            }),
            (Some(e), None) => Some(Ema::new(model, e.decay)),
            (None, _) => None,
        })
    };
    let (model, ema) = match state.model {
        Net::Ddpm(m) => {
            let expected = buffers(&NoiseSchedule::new(&s.diffusion));
            check_buffers(imported.model.as_ref(), &expected).map_err(err)?;
            let model = Net::Ddpm(load_state_dict(m, imported.model.as_ref()).map_err(err)?);
            let ema = ema(state.ema, &model, &|e| match (e, &imported.ema) {
                (Net::Ddpm(e), Some(src)) => load_state_dict(e, src.as_ref()).map(Net::Ddpm),
                (e, _) => Ok(e),
            })?;
            (model, ema)
        }
        Net::Adm(m) => {
            let source = adm_dict::Prefixed(imported.model.as_ref());
            let model = Net::Adm(adm_dict::load_state_dict(m, &source).map_err(err)?);
            let ema = ema(state.ema, &model, &|_| {
                let (Net::Adm(start), Some(src)) = (model.valid(), &imported.ema) else {
                    unreachable!("an ADM model and a file with an EMA")
                };
                let (e, _) = adm_dict::load_present(start, &adm_dict::Prefixed(src.as_ref()))?;
                Ok(Net::Adm(e))
            })?;
            (model, ema)
        }
    };
    Ok(State {
        model,
        ema,
        ..state
    })
}

/// `state` with the ADM's backbone from OpenAI's file (`model.pretrained`): loaded by name
/// under their guard, the label head kept fresh for the user's classes, and the EMA
/// starting at the loaded weights. What the load did is returned for the log.
pub fn pretrained(state: State, file: &Path) -> Result<(State, adm_dict::Loaded), TrainError> {
    let Net::Adm(m) = state.model else {
        unreachable!("model.pretrained belongs to the ADM's settings")
    };
    let source = super::torch_files::open_state_dict(file)?;
    let (m, loaded) = adm_dict::load_pretrained(m, source.as_ref())
        .map_err(|e| TrainError::Mismatch(format!("{}: {e}", file.display())))?;
    let model = Net::Adm(m);
    let ema = state.ema.map(|e| Ema::new(&model, e.decay));
    Ok((
        State {
            model,
            ema,
            ..state
        },
        loaded,
    ))
}

/// The ADM with only the tensors `model.initialization` trains taking gradients (so the
/// others get no optimizer state and never move); applied after every load. The DDPM,
/// and full fine-tuning, train everything. `config` names the file in messages.
pub fn freeze(state: State, s: &TrainSettings, config: &Path) -> Result<State, TrainError> {
    let (Net::Adm(m), Some(adm)) = (&state.model, &s.adm) else {
        return Ok(state);
    };
    let patterns: Vec<String> = match &adm.trainable {
        Trainable::All => {
            log::info!(
                "training all of the ADM's {} tensors (freeze_backbone: false, no trainable_layers)",
                adm_dict::names(m).len()
            );
            return Ok(state);
        }
        Trainable::Heads => adm_dict::HEADS.iter().map(|p| p.to_string()).collect(),
        Trainable::Patterns(p) => p.clone(),
    };
    let names = adm_dict::names(m);
    let chosen = adm_dict::trainable(&names, &patterns).map_err(|e| {
        TrainError::Config(crate::config::ConfigError::Invalid {
            path: config.to_owned(),
            key: match adm.trainable {
                Trainable::Heads => "model.initialization.freeze_backbone",
                _ => "model.initialization.trainable_layers",
            }
            .into(),
            message: e.to_string(),
        })
    })?;
    log::info!(
        "training {} of the ADM's {} tensors ({})",
        chosen.len(),
        names.len(),
        patterns.join(", ")
    );
    let Net::Adm(m) = state.model else {
        unreachable!("matched above")
    };
    Ok(State {
        model: Net::Adm(adm_dict::freeze(m, &chosen)),
        ..state
    })
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
    let ema = match (state.ema, ck.section("ema")) {
        (Some(e), Some(b)) => Some(Ema {
            model: load_module(e.model, b, path)?,
            decay: e.decay,
        }),
        // EMA newly enabled: start it at the restored weights.
        (Some(e), None) => Some(Ema::new(&model, e.decay)),
        (None, _) => None,
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

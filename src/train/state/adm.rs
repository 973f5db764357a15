//! The training state's ADM-only steps: OpenAI's file as the starting point, which tensors
//! train (`model.initialization`), and their trainer's `AdmDdpmModel` checkpoints.

use std::collections::HashSet;
use std::path::Path;

use burn::module::Module;
use burn::prelude::*;

use super::State;
use crate::config::ConfigError;
use crate::train::adm::state_dict::{self as adm_dict, Loaded, Prefixed, EXPORT_PREFIX};
use crate::train::adm::AdmUNet;
pub use crate::train::checkpoint::TRAINED_EMA;
use crate::train::ema::Ema;
use crate::train::error::TrainError;
use crate::train::family::Net;
use crate::train::settings::{TrainSettings, Trainable};
use crate::train::torch_files::{self, Imported};
use crate::train::unet::state_dict::{Source, StateDictError};

/// `state` with the ADM's backbone from OpenAI's file (`model.pretrained`): loaded by name
/// under their guard, the label head kept fresh for the user's classes, and the EMA
/// starting at the loaded weights. What the load did is returned for the log (`None` for
/// the DDPM, which has no such file).
pub fn pretrained(state: State, file: &Path) -> Result<(State, Option<Loaded>), TrainError> {
    let Net::Adm(m) = state.model else {
        return Ok((state, None));
    };
    let source = torch_files::open_state_dict(file)?;
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
        Some(loaded),
    ))
}

/// Trained tensor names and the patterns that chose them.
type Chosen = (HashSet<String>, Vec<String>);

/// The names `model.initialization` trains, with the patterns that chose them; `None` when
/// everything trains (the DDPM, or full fine-tuning). A list matching nothing is refused,
/// naming the key in `config`.
fn trained_names(
    s: &TrainSettings,
    names: &[String],
    config: &Path,
) -> Result<Option<Chosen>, TrainError> {
    let Some(adm) = &s.adm else {
        return Ok(None);
    };
    let (key, patterns): (&str, Vec<String>) = match &adm.trainable {
        Trainable::All => return Ok(None),
        Trainable::Heads => (
            "model.initialization.freeze_backbone",
            adm_dict::HEADS.iter().map(|p| p.to_string()).collect(),
        ),
        Trainable::Patterns(p) => ("model.initialization.trainable_layers", p.clone()),
    };
    let chosen = adm_dict::trainable(names, &patterns).map_err(|e| {
        TrainError::Config(ConfigError::Invalid {
            path: config.to_owned(),
            key: key.into(),
            message: e.to_string(),
        })
    })?;
    Ok(Some((chosen, patterns)))
}

/// Refuses `trainable_layers` that match nothing before anything is read or written: the
/// names are the model's flags', known without making its weights (burn initialises a
/// parameter when it is first used, and naming uses none).
pub fn check_trainable(s: &TrainSettings, config: &Path) -> Result<(), TrainError> {
    let Some(adm) = &s.adm else {
        return Ok(());
    };
    let rows = s.conditioning.as_ref().map(|c| c.num_classes + 1);
    let model = AdmUNet::new(&adm.model.source.flags(), rows, &Device::flex());
    trained_names(s, &adm_dict::names(&model), config).map(drop)
}

/// The ADM with only the tensors `model.initialization` trains taking gradients (so the
/// others get no optimizer state and never move); applied after every load. The DDPM,
/// and full fine-tuning, train everything. `config` names the file in messages.
pub fn freeze(state: State, s: &TrainSettings, config: &Path) -> Result<State, TrainError> {
    let Net::Adm(m) = state.model else {
        return Ok(state);
    };
    let names = adm_dict::names(&m);
    let m = match trained_names(s, &names, config)? {
        None => {
            log::info!(
                "training all of the ADM's {} tensors (freeze_backbone: false, no trainable_layers)",
                names.len()
            );
            m
        }
        Some((chosen, patterns)) => {
            log::info!(
                "training {} of the ADM's {} tensors ({})",
                chosen.len(),
                names.len(),
                patterns.join(", ")
            );
            adm_dict::freeze(m, &chosen)
        }
    };
    Ok(State {
        model: Net::Adm(m),
        ..state
    })
}

/// The EMA's trained tensors as [`TRAINED_EMA`] bytes (with the backbone frozen the rest
/// of the average is the model's own weights, and storing it again doubled a checkpoint:
/// 1.2 GB more at the ImageNet-64 size; their EMA keeps the trained tensors only too), when `model` is an ADM with frozen
/// tensors; `None` otherwise (the whole EMA is stored, as for the DDPM).
pub(super) fn trained_ema(model: &Net, ema: &Net) -> Option<Vec<u8>> {
    let (Net::Adm(m), Net::Adm(e)) = (model, ema) else {
        return None;
    };
    let trained = adm_dict::trained_names(m);
    if trained.len() == adm_dict::names(m).len() {
        return None;
    }
    let tensors = adm_dict::subset(e, &trained);
    Some(
        torch_files::encode_safetensors(&tensors, Default::default())
            .expect("our own f32 tensors encode"),
    )
}

/// `model` (the checkpoint's trained weights) with the EMA's trained tensors of a
/// [`TRAINED_EMA`] section over it: the checkpoint's EMA.
pub(super) fn with_trained_ema(model: Net, bytes: &[u8], path: &Path) -> Result<Net, TrainError> {
    let bad = |e: String| {
        TrainError::Checkpoint(crate::train::checkpoint::CheckpointError::Format {
            path: path.to_owned(),
            reason: format!("its {TRAINED_EMA} section: {e}"),
        })
    };
    let Net::Adm(m) = model else {
        return Err(bad("an ADM's EMA in a DDPM checkpoint".into()));
    };
    let source = torch_files::safetensors_source(bytes.to_vec()).map_err(bad)?;
    let (m, _) = adm_dict::load_present(m, source.as_ref()).map_err(|e| bad(e.to_string()))?;
    Ok(Net::Adm(m))
}

/// Whether a file's names are their `AdmDdpmModel`'s (`unet.` first).
pub(super) fn is_adm_file(source: &dyn Source) -> bool {
    source.names().iter().any(|n| n.starts_with(EXPORT_PREFIX))
}

/// The ADM from their trainer's checkpoint of an `AdmDdpmModel` (`unet.` names, strictly);
/// its EMA shadow holds the tensors that trained (their EMA keeps those only), the rest
/// starting at the model's.
pub(super) fn init_from(
    m: AdmUNet,
    ema: Option<Ema>,
    imported: &Imported,
) -> Result<(Net, Option<Ema>), TrainError> {
    let path = &imported.path;
    let err = |e: StateDictError| {
        TrainError::Mismatch(format!(
            "{}: {}",
            path.display(),
            match e {
                StateDictError::Unexpected(n) => format!(
                    "{n}: not a parameter of the configured ADM (their AdmDdpmModel would refuse it too, with strict=True)"
                ),
                other => other.to_string(),
            }
        ))
    };
    if !is_adm_file(imported.model.as_ref()) {
        return Err(TrainError::Mismatch(format!(
            "{}: no unet.* tensors: expected a checkpoint of their AdmDdpmModel (a DDPMModel's names start with model.)",
            path.display()
        )));
    }
    let model = adm_dict::load_state_dict(m, &Prefixed(imported.model.as_ref())).map_err(err)?;
    let ema = match (ema, &imported.ema) {
        (Some(e), Some(src)) => {
            let (shadow, _) =
                adm_dict::load_present(model.valid(), &Prefixed(src.as_ref())).map_err(err)?;
            Some(Ema {
                model: Net::Adm(shadow),
                decay: e.decay,
            })
        }
        (Some(e), None) => Some(Ema::new(&Net::Adm(model.clone()), e.decay)),
        (None, _) => None,
    };
    Ok((Net::Adm(model), ema))
}

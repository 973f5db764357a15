//! `training` and `generation`: how long, with what optimizer and schedule, what is saved
//! and shown, and how samples are drawn.

use std::path::PathBuf;

use serde_yaml_ng::Value;

use super::doc::Doc;
use super::{
    Checkpointing, Conditioning, Ema, Generation, Optimizer, OptimizerKind, Resume, Scheduler,
    Threshold, Training, Validation, Visualization,
};
use crate::config::ConfigError;
use crate::train::plateau::{Plateau, KEYS as PLATEAU_KEYS};

pub(super) fn training(d: &Doc) -> Result<Training, ConfigError> {
    let epochs = d.positive("training.epochs", 500)?;
    let optimizer = optimizer(d)?;
    let scheduler = scheduler(d, epochs)?;
    let c = "training.checkpointing";
    let checkpointing = Checkpointing {
        save_frequency: d.positive(&format!("{c}.save_frequency"), 50)?,
        save_optimizer: d.get(&format!("{c}.save_optimizer"), true)?,
        save_best_only: d.get(&format!("{c}.save_best_only"), false)?,
        save_latest: d.get(&format!("{c}.save_latest"), false)?,
    };
    let ema = Ema {
        enabled: d.get("training.ema.enabled", true)?,
        decay: d.number("training.ema.decay", 0.9999, 0.0, 1.0)?,
    };
    let validation = Validation {
        enabled: d.get("training.validation.enabled", true)?,
        frequency: d.positive("training.validation.frequency", 50)?,
    };
    let visualization = visualization(d)?;
    let resume = resume(d)?;
    let init_from = d.opt::<String>("training.init_from")?.map(PathBuf::from);
    if init_from.is_some() && resume.enabled {
        return Err(d.invalid(
            "training.init_from",
            "cannot be combined with training.resume.enabled: a resumed run takes its weights from the checkpoint",
        ));
    }
    Ok(Training {
        epochs,
        optimizer,
        scheduler,
        checkpointing,
        ema,
        validation,
        visualization,
        resume,
        init_from,
    })
}

/// `training.optimizer`.
fn optimizer(d: &Doc) -> Result<Optimizer, ConfigError> {
    let o = "training.optimizer";
    let kind_name: String = d.get(&format!("{o}.type"), "adam".to_owned())?;
    let kind = match kind_name.to_ascii_lowercase().as_str() {
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::AdamW,
        _ => {
            return Err(d.invalid(
                &format!("{o}.type"),
                format!("expected adam or adamw, found {kind_name:?}"),
            ))
        }
    };
    let learning_rate = d.number(&format!("{o}.learning_rate"), 1e-4, 0.0, 10.0)?;
    if learning_rate == 0.0 {
        return Err(d.invalid(
            &format!("{o}.learning_rate"),
            "expected a positive number, found 0",
        ));
    }
    let weight_decay = d.number(&format!("{o}.weight_decay"), 0.0, 0.0, 1.0)?;
    let betas: Vec<f64> = d.get(&format!("{o}.betas"), vec![0.9, 0.999])?;
    let betas: [f64; 2] = match betas[..] {
        [a, b] if (0.0..1.0).contains(&a) && (0.0..1.0).contains(&b) => [a, b],
        _ => {
            return Err(d.invalid(
                &format!("{o}.betas"),
                format!("expected two numbers in [0, 1), found {betas:?}"),
            ))
        }
    };
    let gradient_clip_norm: Option<f64> = d.opt(&format!("{o}.gradient_clip_norm"))?;
    if let Some(c) = gradient_clip_norm {
        if !(c.is_finite() && c > 0.0) {
            return Err(d.invalid(
                &format!("{o}.gradient_clip_norm"),
                format!("expected a positive number or null, found {c}"),
            ));
        }
    }
    Ok(Optimizer {
        kind,
        learning_rate,
        weight_decay,
        betas,
        gradient_clip_norm,
    })
}

/// `training.visualization`.
fn visualization(d: &Doc) -> Result<Visualization, ConfigError> {
    let v = "training.visualization";
    Ok(Visualization {
        enabled: d.get(&format!("{v}.enabled"), true)?,
        num_samples: d.positive(&format!("{v}.num_samples"), 8)?,
        guidance_scale: d.number(&format!("{v}.guidance_scale"), 3.0, 0.0, 100.0)?,
        log_images_interval: d.interval(&format!("{v}.log_images_interval"), Some(50))?,
        log_denoising_interval: d.interval(&format!("{v}.log_denoising_interval"), Some(50))?,
        threshold: threshold(d, v)?,
    })
}

/// `training.resume`.
fn resume(d: &Doc) -> Result<Resume, ConfigError> {
    let r = "training.resume";
    let resume = Resume {
        enabled: d.get(&format!("{r}.enabled"), false)?,
        checkpoint: d
            .opt::<String>(&format!("{r}.checkpoint"))?
            .map(PathBuf::from),
        reset_optimizer: d.get(&format!("{r}.reset_optimizer"), false)?,
        reset_scheduler: d.get(&format!("{r}.reset_scheduler"), false)?,
    };
    if resume.enabled && resume.checkpoint.is_none() {
        return Err(d.invalid(
            &format!("{r}.checkpoint"),
            "required when training.resume.enabled is true",
        ));
    }
    Ok(resume)
}

pub(super) fn scheduler(d: &Doc, epochs: usize) -> Result<Scheduler, ConfigError> {
    let s = "training.scheduler";
    let kind: Option<String> = d.opt(&format!("{s}.type"))?;
    match kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("none") | Some("null") | Some("constant") => Ok(Scheduler::Constant),
        Some("cosine") => {
            let t_max = match d.value(&format!("{s}.T_max")) {
                None => epochs,
                Some(Value::String(a)) if a == "auto" => epochs,
                Some(_) => d.positive(&format!("{s}.T_max"), epochs)?,
            };
            Ok(Scheduler::Cosine {
                t_max,
                eta_min: d.number(&format!("{s}.eta_min"), 1e-6, 0.0, 10.0)?,
            })
        }
        Some("step") => Ok(Scheduler::Step {
            step_size: d.positive(&format!("{s}.step_size"), 30)?,
            gamma: d.number(&format!("{s}.gamma"), 0.1, 0.0, 1.0)?,
        }),
        Some("plateau") => plateau(d, s).map(Scheduler::Plateau),
        Some(other) => Err(d.invalid(
            &format!("{s}.type"),
            format!("expected cosine, step, plateau or null, found {other:?}"),
        )),
    }
}

/// `ReduceLROnPlateau`'s arguments, which the user's code passes from every key of the
/// section but `type`: one it does not take fails there with a `TypeError`, here up front.
pub(super) fn plateau(d: &Doc, s: &str) -> Result<Plateau, ConfigError> {
    if let Some(Value::Mapping(m)) = d.value(s) {
        for k in m.keys() {
            let name = k.as_str().unwrap_or_default();
            if name != "type" && !PLATEAU_KEYS.contains(&name) {
                return Err(d.invalid(
                    &format!("{s}.{name}"),
                    format!(
                        "not an argument of ReduceLROnPlateau (type: plateau takes {})",
                        PLATEAU_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    let default = Plateau::default();
    let choice = |key: &str, a: &str, b: &str| -> Result<bool, ConfigError> {
        let k = format!("{s}.{key}");
        match d.opt::<String>(&k)? {
            None => Ok(false),
            Some(v) if v == a => Ok(false),
            Some(v) if v == b => Ok(true),
            Some(v) => Err(d.invalid(&k, format!("expected {a} or {b}, found {v:?}"))),
        }
    };
    let factor = d.number(&format!("{s}.factor"), default.factor, 0.0, 1.0)?;
    if factor >= 1.0 {
        return Err(d.invalid(
            &format!("{s}.factor"),
            "expected a number below 1 (ReduceLROnPlateau refuses 1 and above), found 1",
        ));
    }
    Ok(Plateau {
        maximize: choice("mode", "min", "max")?,
        factor,
        patience: d.get(&format!("{s}.patience"), default.patience)?,
        threshold: d.number(&format!("{s}.threshold"), default.threshold, 0.0, f64::MAX)?,
        absolute: choice("threshold_mode", "rel", "abs")?,
        cooldown: d.get(&format!("{s}.cooldown"), default.cooldown)?,
        min_lr: d.number(&format!("{s}.min_lr"), default.min_lr, 0.0, f64::MAX)?,
        eps: d.number(&format!("{s}.eps"), default.eps, 0.0, f64::MAX)?,
    })
}

/// `use_dynamic_threshold` (default true, as the user's sampler) and
/// `dynamic_threshold_percentile` (default 0.995) under `section`: the names of their
/// sampler's arguments.
pub(super) fn threshold(d: &Doc, section: &str) -> Result<Threshold, ConfigError> {
    if !d.get(&format!("{section}.use_dynamic_threshold"), true)? {
        return Ok(Threshold::Clip);
    }
    let key = format!("{section}.dynamic_threshold_percentile");
    let percentile = d.number(&key, 0.995, 0.0, 1.0)?;
    Ok(Threshold::Dynamic { percentile })
}

pub(super) fn generation(d: &Doc, cond: Option<&Conditioning>) -> Result<Generation, ConfigError> {
    let g = "generation";
    let class_selection: Option<Vec<usize>> = d.opt(&format!("{g}.sampling.class_selection"))?;
    if let (Some(sel), Some(c)) = (&class_selection, cond) {
        if let Some(bad) = sel.iter().find(|&&k| k >= c.num_classes) {
            return Err(d.invalid(
                &format!("{g}.sampling.class_selection"),
                format!("class {bad} is not below num_classes {}", c.num_classes),
            ));
        }
    }
    Ok(Generation {
        checkpoint: d
            .opt::<String>(&format!("{g}.checkpoint"))?
            .map(PathBuf::from),
        num_samples: d.positive(&format!("{g}.sampling.num_samples"), 100)?,
        batch_size: d.positive(&format!("{g}.sampling.batch_size"), 50)?,
        guidance_scale: d.number(&format!("{g}.sampling.guidance_scale"), 3.0, 0.0, 100.0)?,
        threshold: threshold(d, &format!("{g}.sampling"))?,
        use_ema: d.get(&format!("{g}.sampling.use_ema"), true)?,
        class_selection,
        save_individual: d.get(&format!("{g}.output.save_individual"), true)?,
        save_grid: d.get(&format!("{g}.output.save_grid"), true)?,
        grid_nrow: d.positive(&format!("{g}.output.grid_nrow"), 10)?,
    })
}

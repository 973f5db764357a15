//! The training loop: epochs of the manifest's index stream through the image pipeline,
//! noised on the host-drawn schedule, the class-weighted MSE on the device, the optimizer
//! step, metrics, checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;

use crate::images::cache::Cache;
use crate::images::loader::Batch;

use super::checkpoint::{Checkpoint, Meta, FORMAT_VERSION};
use super::data::TrainData;
use super::draws;
use super::error::TrainError;
use super::loss;
use super::metrics::{Metrics, Row};
use super::optim;
use super::schedule::{learning_rate, NoiseSchedule};
use super::settings::TrainSettings;
use super::unet::UNet;

/// What a run is asked to do beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--epochs`: overrides `training.epochs`.
    pub epochs: Option<usize>,
    /// `--max-steps`: stop (and checkpoint) after this many optimizer steps in total.
    pub max_steps: Option<u64>,
    /// A decoded cache made by `balance-split cache` for this manifest.
    pub cache: Option<PathBuf>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    pub epochs: usize,
    pub steps: u64,
    pub last: Option<Row>,
    pub checkpoint: Option<PathBuf>,
}

/// The model, its optimizer and where the run stands.
pub struct State {
    pub model: UNet,
    pub optim: ModuleOptimizer,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
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

/// A fresh model and optimizer on `device`, initialised from `seed`.
pub fn fresh(s: &TrainSettings, seed: u64, device: &Device) -> State {
    device.seed(seed);
    State {
        model: UNet::new(
            &s.architecture,
            s.conditioning.as_ref().map(|c| c.num_classes),
            device,
        ),
        optim: optim::build(&s.training.optimizer),
        epoch: 0,
        step: 0,
    }
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(super::checkpoint::CheckpointError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The checkpoint of `state`.
pub fn checkpoint(
    state: &State,
    s: &TrainSettings,
    data: &TrainData,
    seed: u64,
    lr: f64,
    with_optimizer: bool,
) -> Checkpoint {
    let model = state
        .model
        .clone()
        .into_record()
        .into_bytes()
        .expect("an in-memory record always serialises");
    let mut sections = vec![("model".to_string(), model.to_vec())];
    if with_optimizer {
        let o = state
            .optim
            .into_bytes()
            .expect("an in-memory record always serialises");
        sections.push(("optimizer".to_string(), o.to_vec()));
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
            learning_rate: lr,
            best_val_loss: None,
        },
        sections,
    }
}

/// Restores `state` from a checkpoint written by [`checkpoint`]; `reset_optimizer`
/// keeps the fresh optimizer.
pub fn restore(
    state: State,
    ckpt: &Checkpoint,
    path: &Path,
    s: &TrainSettings,
    reset_optimizer: bool,
) -> Result<State, TrainError> {
    let m = &ckpt.meta;
    if m.architecture != s.architecture
        || m.num_classes != s.conditioning.as_ref().map(|c| c.num_classes)
    {
        return Err(TrainError::Mismatch(format!(
            "{}: the checkpoint's model ({:?}, {:?} classes) differs from the config's ({:?}, {:?} classes)",
            path.display(),
            m.architecture,
            m.num_classes,
            s.architecture,
            s.conditioning.as_ref().map(|c| c.num_classes)
        )));
    }
    let model_bytes = ckpt
        .section("model")
        .ok_or_else(|| record_error(path, "no model section"))?;
    let record = burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(model_bytes.to_vec()))
        .map_err(|e| record_error(path, e))?;
    let model = state
        .model
        .try_load_record(record)
        .map_err(|e| record_error(path, e))?;
    let optim = match ckpt.section("optimizer") {
        Some(b) if !reset_optimizer => state
            .optim
            .from_bytes(Bytes::from_bytes_vec(b.to_vec()))
            .map_err(|e| record_error(path, e))?,
        _ => state.optim,
    };
    Ok(State {
        model,
        optim,
        epoch: m.epoch,
        step: m.step,
    })
}

/// Host-side per-sample forward-process coefficients, `[B, 1, 1, 1]` each.
fn coefficients(schedule: &NoiseSchedule, t: &[usize], device: &Device) -> (Tensor<4>, Tensor<4>) {
    let (a, b): (Vec<f32>, Vec<f32>) = t
        .iter()
        .map(|&t| {
            let (a, b) = schedule.forward_coefficients(t);
            (a as f32, b as f32)
        })
        .unzip();
    let n = t.len();
    (
        Tensor::<1>::from_floats(a.as_slice(), device).reshape([n, 1, 1, 1]),
        Tensor::<1>::from_floats(b.as_slice(), device).reshape([n, 1, 1, 1]),
    )
}

/// The tensors of one training step.
pub struct StepInputs {
    pub x_t: Tensor<4>,
    pub noise: Tensor<4>,
    pub t: Tensor<1>,
    pub cond: Option<Tensor<1, Int>>,
    /// Per-sample weights of the true labels, when the loss is class-weighted.
    pub weights: Option<Tensor<1>>,
}

/// Builds step `step`'s inputs from a batch: noising, label dropout, weights.
pub fn step_inputs(
    batch: &Batch,
    s: &TrainSettings,
    schedule: &NoiseSchedule,
    loss_weights: Option<&[f64]>,
    seed: u64,
    step: u64,
    device: &Device,
) -> (StepInputs, u64) {
    let [_, c, h, w] = batch.shape;
    let d = draws::training_step(
        seed,
        step,
        &batch.labels,
        c * h * w,
        schedule.len(),
        s.conditioning.as_ref(),
    );
    let x0 = Tensor::<4>::from_data(TensorData::new(batch.images.clone(), batch.shape), device);
    let noise = Tensor::<4>::from_data(TensorData::new(d.noise, batch.shape), device);
    let (a, b) = coefficients(schedule, &d.timesteps, device);
    let x_t = x0 * a + noise.clone() * b;
    let t: Vec<f32> = d.timesteps.iter().map(|&t| t as f32).collect();
    let t = Tensor::<1>::from_floats(t.as_slice(), device);
    let cond = d.cond_labels.map(|l| {
        let l: Vec<i64> = l.into_iter().map(i64::from).collect();
        let n = l.len();
        Tensor::<1, Int>::from_data(TensorData::new(l, [n]), device)
    });
    let weights = loss_weights.map(|w| loss::sample_weights(w, &batch.labels, device));
    (
        StepInputs {
            x_t,
            noise,
            t,
            cond,
            weights,
        },
        d.device_seed,
    )
}

/// One optimizer step; returns the updated state and the step's (weighted loss, MSE) as
/// device scalars, not read back, so the GPU queue keeps flowing.
pub fn train_step(
    mut state: State,
    inputs: StepInputs,
    device_seed: u64,
    lr: f64,
    clip: Option<f64>,
    device: &Device,
) -> (State, Tensor<1>, Tensor<1>) {
    device.seed(device_seed);
    let pred = state.model.forward(inputs.x_t, inputs.t, inputs.cond);
    let per = loss::per_sample_mse(pred, inputs.noise);
    let mse = per.clone().mean().detach();
    let objective = loss::weighted_mse(per, inputs.weights);
    let grads = GradientsParams::from_grads(objective.backward(), &state.model);
    let grads = match clip {
        Some(max) => optim::clip_global_norm(&state.model, grads, max),
        None => grads,
    };
    state.model = state.optim.step(lr, state.model, grads);
    state.step += 1;
    (state, objective.detach(), mse)
}

/// Everything a run needs, prepared.
pub struct Trainer<'a> {
    pub settings: &'a TrainSettings,
    pub data: &'a TrainData,
    pub device: Device,
    pub seed: u64,
    pub options: RunOptions,
}

impl Trainer<'_> {
    /// Trains from `state` to the configured number of epochs (or `--max-steps`).
    pub fn run(&self, mut state: State) -> Result<(State, Summary), TrainError> {
        let s = self.settings;
        let epochs = self.options.epochs.unwrap_or(s.training.epochs);
        let schedule = NoiseSchedule::new(&s.diffusion);
        let mut train = self.data.train.clone();
        if let Some(path) = &self.options.cache {
            let cache = Cache::open(
                path,
                &self.data.manifest_sha256,
                s.architecture.image_size as u32,
            )?;
            train = train.with_cache(Arc::new(cache));
        }
        let loader = s.pipeline.loader(self.data.data_seed, true);
        let out = &s.output;
        let mut metrics = Metrics::open(&out.base_dir.join("metrics.csv"), &self.data.classes)?;
        let mut summary = Summary {
            epochs: state.epoch,
            steps: state.step,
            last: None,
            checkpoint: None,
        };
        let bar = self.progress_bar(epochs, state.epoch);
        let weights = self.data.loss_weights.as_deref();
        let clip = s.training.optimizer.gradient_clip_norm;
        while state.epoch < epochs {
            let epoch = state.epoch;
            let lr = learning_rate(
                s.training.optimizer.learning_rate,
                &s.training.scheduler,
                epoch,
            );
            let order = self
                .data
                .epoch_order(epoch as u64, s.pipeline.shuffle_train)?;
            let started = Instant::now();
            let mut images = 0usize;
            let mut sums: Option<(Tensor<1>, Tensor<1>)> = None;
            let mut steps = 0u64;
            let mut stopped = false;
            for batch in train.batches(order, epoch as u64, loader.clone(), 2) {
                let batch = batch?;
                images += batch.labels.len();
                let (inputs, device_seed) = step_inputs(
                    &batch,
                    s,
                    &schedule,
                    weights,
                    self.seed,
                    state.step,
                    &self.device,
                );
                let (next, objective, mse) =
                    train_step(state, inputs, device_seed, lr, clip, &self.device);
                state = next;
                steps += 1;
                sums = Some(match sums {
                    Some((o, m)) => (o + objective, m + mse),
                    None => (objective, mse),
                });
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "epoch {}/{epochs} step {} {:.0} img/s",
                        epoch + 1,
                        state.step,
                        images as f64 / started.elapsed().as_secs_f64()
                    ));
                }
                if self.options.max_steps.is_some_and(|m| state.step >= m) {
                    stopped = true;
                    break;
                }
            }
            let (objective, mse) = match sums {
                Some((o, m)) => (
                    o.into_scalar::<f32>() as f64 / steps as f64,
                    m.into_scalar::<f32>() as f64 / steps as f64,
                ),
                None => (f64::NAN, f64::NAN),
            };
            let elapsed = started.elapsed().as_secs_f64();
            if !stopped {
                state.epoch += 1;
            }
            let row = Row {
                epoch: state.epoch,
                step: state.step,
                loss: mse,
                weighted_loss: objective,
                lr,
                images_per_s: images as f64 / elapsed,
                val_loss: None,
                val_loss_per_class: Vec::new(),
            };
            metrics.write(&row)?;
            log::info!(
                "epoch {} step {}: loss {:.5} weighted {:.5} lr {:.3e} {:.1} img/s",
                row.epoch,
                row.step,
                row.loss,
                row.weighted_loss,
                row.lr,
                row.images_per_s
            );
            if let Some(bar) = &bar {
                bar.set_position(state.epoch as u64);
            }
            let last = state.epoch >= epochs || stopped;
            if last || state.epoch % s.training.checkpointing.save_frequency == 0 {
                let name = if stopped {
                    format!("checkpoint_step_{:08}.ckpt", state.step)
                } else {
                    format!("checkpoint_epoch_{:04}.ckpt", state.epoch)
                };
                let path = out.checkpoints.join(name);
                let ck = checkpoint(
                    &state,
                    s,
                    self.data,
                    self.seed,
                    lr,
                    s.training.checkpointing.save_optimizer,
                );
                ck.save(&path)?;
                ck.save(&out.checkpoints.join("latest.ckpt"))?;
                log::info!("saved {}", path.display());
                summary.checkpoint = Some(path);
            }
            summary.last = Some(row);
            if stopped {
                break;
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        summary.epochs = state.epoch;
        summary.steps = state.step;
        Ok((state, summary))
    }

    fn progress_bar(&self, epochs: usize, done: usize) -> Option<indicatif::ProgressBar> {
        use std::io::IsTerminal;
        if !self.options.progress || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(epochs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} epochs {msg} [{elapsed_precise}<{eta_precise}]",
            )
            .expect("a valid template"),
        );
        bar.set_position(done as u64);
        Some(bar)
    }
}

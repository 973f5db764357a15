//! The training loop: epochs of the manifest's index stream through the image pipeline,
//! noised with host-drawn timesteps and noise, the class-weighted MSE on the device, the
//! optimizer step and the EMA update; then per epoch metrics, validation, sample grids
//! and checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;

use crate::images::cache::Cache;
use crate::images::loader::{Batch, Dataset};

use super::checkpoint::{Checkpoint, CheckpointError, Meta, FORMAT_VERSION};
use super::data::TrainData;
use super::draws;
use super::ema::Ema;
use super::error::TrainError;
use super::loss;
use super::metrics::{Metrics, Row};
use super::optim;
use super::schedule::{learning_rate, NoiseSchedule};
use super::settings::TrainSettings;
use super::unet::UNet;
use super::visualize;

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
    pub images: Vec<PathBuf>,
}

/// The model, its optimizer, its average and where the run stands.
pub struct State {
    pub model: UNet,
    pub optim: ModuleOptimizer,
    pub ema: Option<Ema>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    /// The epoch the learning-rate schedule counts from (moved by `reset_scheduler`).
    pub schedule_start: usize,
    pub best_val_loss: Option<f64>,
}

impl State {
    /// The learning rate of epoch `epoch`.
    pub fn learning_rate(&self, s: &TrainSettings, epoch: usize) -> f64 {
        learning_rate(
            s.training.optimizer.learning_rate,
            &s.training.scheduler,
            epoch - self.schedule_start,
        )
    }

    /// The model samples are drawn from: the EMA when there is one and `use_ema`.
    pub fn sampling_model(&self, use_ema: bool) -> UNet {
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
    let model = UNet::new(
        &s.architecture,
        s.conditioning.as_ref().map(|c| c.num_classes),
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
    }
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(CheckpointError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn module_bytes(m: &UNet) -> Vec<u8> {
    m.clone()
        .into_record()
        .into_bytes()
        .expect("an in-memory record always serialises")
        .to_vec()
}

fn load_module(m: UNet, bytes: &[u8], path: &Path) -> Result<UNet, TrainError> {
    let record = burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| record_error(path, e))?;
    m.try_load_record(record).map_err(|e| record_error(path, e))
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
        },
        sections,
    }
}

/// Loads the model weights (the EMA's when `use_ema` and present) of a checkpoint into
/// `model`, which must have the checkpoint's architecture.
pub fn load_weights(
    model: UNet,
    ck: &Checkpoint,
    path: &Path,
    use_ema: bool,
) -> Result<UNet, TrainError> {
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
    let num_classes = s.conditioning.as_ref().map(|c| c.num_classes);
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
    })
}

/// Per-sample forward-process coefficients, `[B, 1, 1, 1]` each.
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

fn labels_tensor(labels: &[u32], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let n = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
}

/// `x_t`, the noise and the timesteps as the model takes them.
fn noised(
    images: Vec<f32>,
    shape: [usize; 4],
    noise: Vec<f32>,
    timesteps: &[usize],
    schedule: &NoiseSchedule,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
    let x0 = Tensor::<4>::from_data(TensorData::new(images, shape), device);
    let noise = Tensor::<4>::from_data(TensorData::new(noise, shape), device);
    let (a, b) = coefficients(schedule, timesteps, device);
    let x_t = x0 * a + noise.clone() * b;
    let t: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    (x_t, noise, Tensor::<1>::from_floats(t.as_slice(), device))
}

/// The tensors of one training step.
pub struct StepInputs {
    pub x_t: Tensor<4>,
    pub noise: Tensor<4>,
    pub t: Tensor<1>,
    pub cond: Option<Tensor<1, Int>>,
    /// Per-sample weights of the true labels, when the loss is class-weighted.
    pub weights: Option<Tensor<1>>,
    /// Seeds the device's generator (dropout masks).
    pub device_seed: u64,
}

/// Step `step`'s inputs from a batch: noising, label dropout, weights.
pub fn step_inputs(
    batch: Batch,
    s: &TrainSettings,
    schedule: &NoiseSchedule,
    loss_weights: Option<&[f64]>,
    seed: u64,
    step: u64,
    device: &Device,
) -> StepInputs {
    let [_, c, h, w] = batch.shape;
    let d = draws::training_step(
        seed,
        step,
        &batch.labels,
        c * h * w,
        schedule.len(),
        s.conditioning.as_ref(),
    );
    let (x_t, noise, t) = noised(
        batch.images,
        batch.shape,
        d.noise,
        &d.timesteps,
        schedule,
        device,
    );
    StepInputs {
        x_t,
        noise,
        t,
        cond: d.cond_labels.map(|l| labels_tensor(&l, device)),
        weights: loss_weights.map(|w| loss::sample_weights(w, &batch.labels, device)),
        device_seed: d.device_seed,
    }
}

/// One optimizer step (and EMA update); returns the step's (objective, unweighted MSE)
/// as device scalars, not read back, so the GPU queue keeps flowing.
pub fn train_step(
    state: &mut State,
    inputs: StepInputs,
    lr: f64,
    clip: Option<f64>,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    device.seed(inputs.device_seed);
    let pred = state.model.forward(inputs.x_t, inputs.t, inputs.cond);
    let per = loss::per_sample_mse(pred, inputs.noise);
    let mse = per.clone().mean().detach();
    let objective = loss::weighted_mse(per, inputs.weights);
    let grads = GradientsParams::from_grads(objective.backward(), &state.model);
    let grads = match clip {
        Some(max) => optim::clip_global_norm(&state.model, grads, max),
        None => grads,
    };
    let model = state.model.clone();
    state.model = state.optim.step(lr, model, grads);
    if let Some(e) = &mut state.ema {
        e.update(&state.model);
    }
    state.step += 1;
    (objective.detach(), mse)
}

/// Validation MSE (unweighted) over all of `val` and per class: no augmentation, no
/// resampling, true labels, and timesteps and noise fixed per batch, so the numbers are
/// comparable across epochs.
pub fn validate(
    model: &UNet,
    val: &Dataset,
    s: &TrainSettings,
    data_seed: u64,
    seed: u64,
    num_classes: usize,
    device: &Device,
) -> Result<(f64, Vec<Option<f64>>), TrainError> {
    let schedule = NoiseSchedule::new(&s.diffusion);
    let cfg = s.pipeline.loader(data_seed, false);
    let mut sum = vec![0f64; num_classes];
    let mut count = vec![0usize; num_classes];
    let order: Vec<usize> = (0..val.len()).collect();
    for (k, batch) in val.batches(order, 0, cfg, 2).enumerate() {
        let batch = batch?;
        let [n, c, h, w] = batch.shape;
        let (t, noise) = draws::validation_batch(seed, k as u64, n, c * h * w, schedule.len());
        let labels = batch.labels.clone();
        let (x_t, noise, tt) = noised(batch.images, batch.shape, noise, &t, &schedule, device);
        let y = model
            .is_conditional()
            .then(|| labels_tensor(&labels, device));
        let per = loss::per_sample_mse(model.forward(x_t, tt, y), noise)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 losses");
        for (l, v) in labels.iter().zip(per) {
            sum[*l as usize] += v as f64;
            count[*l as usize] += 1;
        }
    }
    let total: usize = count.iter().sum();
    let overall = sum.iter().sum::<f64>() / total.max(1) as f64;
    let per_class = sum
        .iter()
        .zip(&count)
        .map(|(s, &n)| (n > 0).then(|| s / n as f64))
        .collect();
    Ok((overall, per_class))
}

/// Everything a run needs, prepared.
pub struct Trainer<'a> {
    pub settings: &'a TrainSettings,
    pub data: &'a TrainData,
    pub device: Device,
    pub seed: u64,
    pub options: RunOptions,
}

/// Whether epoch `epoch` (1-based, completed) is a multiple of `interval`.
fn due(interval: Option<usize>, epoch: usize) -> bool {
    interval.is_some_and(|k| epoch % k == 0)
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
            images: Vec::new(),
        };
        let bar = self.progress_bar(epochs, state.epoch);
        let weights = self.data.loss_weights.as_deref();
        let clip = s.training.optimizer.gradient_clip_norm;
        while state.epoch < epochs {
            let epoch = state.epoch;
            let lr = state.learning_rate(s, epoch);
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
                let inputs = step_inputs(
                    batch,
                    s,
                    &schedule,
                    weights,
                    self.seed,
                    state.step,
                    &self.device,
                );
                let (objective, mse) = train_step(&mut state, inputs, lr, clip, &self.device);
                steps += 1;
                sums = Some(match sums {
                    Some((o, m)) => (o + objective, m + mse),
                    None => (objective, mse),
                });
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "step {} {:.0} img/s",
                        state.step,
                        images as f64 / started.elapsed().as_secs_f64()
                    ));
                }
                if self.options.max_steps.is_some_and(|m| state.step >= m) {
                    stopped = true;
                    break;
                }
            }
            // Reading the sums waits for the device: the epoch's time includes all its work.
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
            let mut row = Row {
                epoch: state.epoch,
                step: state.step,
                loss: mse,
                weighted_loss: objective,
                lr,
                images_per_s: images as f64 / elapsed,
                val_loss: None,
                val_loss_per_class: vec![None; self.data.classes.len()],
            };
            let finished = state.epoch >= epochs || stopped;
            let mut improved = false;
            let v = &s.training.validation;
            if let Some(val) =
                self.data.val.as_ref().filter(|_| {
                    v.enabled && !stopped && (state.epoch % v.frequency == 0 || finished)
                })
            {
                let (overall, per_class) = validate(
                    &state.model.valid(),
                    val,
                    s,
                    self.data.data_seed,
                    self.seed,
                    self.data.classes.len(),
                    &self.device,
                )?;
                row.val_loss = Some(overall);
                row.val_loss_per_class = per_class;
                if state.best_val_loss.is_none_or(|b| overall < b) {
                    state.best_val_loss = Some(overall);
                    improved = true;
                }
            }
            metrics.write(&row)?;
            log::info!(
                "epoch {} step {}: loss {:.5} weighted {:.5}{} lr {:.3e} {:.1} img/s",
                row.epoch,
                row.step,
                row.loss,
                row.weighted_loss,
                row.val_loss
                    .map_or(String::new(), |v| format!(" val {v:.5}")),
                row.lr,
                row.images_per_s
            );
            if let Some(bar) = &bar {
                bar.set_position(state.epoch as u64);
            }
            if !stopped {
                summary.images.extend(self.visualize(&state, &schedule)?);
            }
            let c = &s.training.checkpointing;
            let periodic = !c.save_best_only && state.epoch % c.save_frequency == 0;
            let mut named: Vec<PathBuf> = Vec::new();
            if stopped {
                named.push(
                    out.checkpoints
                        .join(format!("checkpoint_step_{:08}.ckpt", state.step)),
                );
            } else if periodic || (finished && !c.save_best_only) {
                named.push(
                    out.checkpoints
                        .join(format!("checkpoint_epoch_{:04}.ckpt", state.epoch)),
                );
            }
            if c.save_best_only && improved {
                named.push(out.checkpoints.join("best.ckpt"));
            }
            if !named.is_empty() || c.save_latest || finished {
                named.push(out.checkpoints.join("latest.ckpt"));
                let ck = checkpoint(&state, s, self.data, self.seed, c.save_optimizer);
                for path in &named {
                    ck.save(path)?;
                    log::debug!("saved {}", path.display());
                }
                summary.checkpoint = named.first().cloned();
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

    /// The epoch's sample grid and denoising strip, when due.
    fn visualize(
        &self,
        state: &State,
        schedule: &NoiseSchedule,
    ) -> Result<Vec<PathBuf>, TrainError> {
        let v = &self.settings.training.visualization;
        let epoch = state.epoch;
        let grid = due(v.log_images_interval, epoch);
        let strip = due(v.log_denoising_interval, epoch);
        if !v.enabled || !(grid || strip) {
            return Ok(Vec::new());
        }
        let model = state.sampling_model(self.settings.training.ema.enabled);
        let dir = &self.settings.output.samples;
        let mut written = Vec::new();
        let ctx = visualize::Context {
            model: &model,
            schedule,
            settings: self.settings,
            classes: &self.data.classes,
            seed: self.seed,
            device: &self.device.clone().without_autodiff(),
        };
        if grid {
            let path = dir.join(format!("samples_epoch_{epoch:04}.png"));
            visualize::sample_grid(&ctx, v.num_samples, v.guidance_scale, epoch, &path)?;
            written.push(path);
        }
        if strip {
            let path = dir.join(format!("denoising_epoch_{epoch:04}.png"));
            visualize::denoising_strip(&ctx, v.guidance_scale, epoch, &path)?;
            written.push(path);
        }
        for p in &written {
            log::info!("wrote {}", p.display());
        }
        Ok(written)
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

//! The training loop: epochs of the manifest's index stream through the image pipeline
//! into training steps ([`super::step`]), then per epoch metrics, validation, sample
//! grids and checkpoints ([`super::state`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;

use crate::images::cache::Cache;
use crate::images::loader::Dataset;

use super::feed::{self, Feed};

use super::data::TrainData;
use super::error::TrainError;
use super::family::Process;
use super::metrics::{Metrics, Row};
use super::settings::{Scheduler, TrainSettings};
use super::state::{checkpoint, State};
use super::step::{step_inputs, train_step, validate};
use super::tensorboard::{self, EventWriter};
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
    /// `--device-data-mb`: the bytes the training and validation images may take on the
    /// device; `None` for [`feed::DEFAULT_BUDGET_MB`], 0 keeps them on the host.
    pub device_data_bytes: Option<u64>,
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

/// Everything a run needs, prepared.
pub struct Trainer<'a> {
    pub settings: &'a TrainSettings,
    pub data: &'a TrainData,
    pub device: Device,
    pub seed: u64,
    pub options: RunOptions,
}

/// `ReduceLROnPlateau`'s step after an epoch, as their loop: on the validation loss when it
/// ran, else the training loss (their training loss is the objective, class-weighted or
/// not).
fn step_plateau(s: &TrainSettings, state: &mut State, row: &Row) {
    if let (Scheduler::Plateau(p), Some(plateau)) = (&s.training.scheduler, state.plateau.as_mut())
    {
        let before = plateau.lr;
        plateau.step(p, row.val_loss.unwrap_or(row.weighted_loss));
        if plateau.lr < before {
            log::info!("plateau: learning rate {before:.3e} -> {:.3e}", plateau.lr);
        }
    }
}

fn log_epoch(row: &Row) {
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
}

/// Whether epoch `epoch` (1-based, completed) is a multiple of `interval`.
fn due(interval: Option<usize>, epoch: usize) -> bool {
    interval.is_some_and(|k| epoch % k == 0)
}

/// One epoch's pass over the training set.
struct Pass {
    /// Mean objective (class-weighted where weights are set) and mean MSE per step.
    objective: f64,
    mse: f64,
    images: usize,
    seconds: f64,
    /// `--max-steps` was reached inside the epoch.
    stopped: bool,
}

impl Trainer<'_> {
    /// Trains from `state` to the configured number of epochs (or `--max-steps`).
    pub fn run(&self, mut state: State) -> Result<(State, Summary), TrainError> {
        let s = self.settings;
        let epochs = self.options.epochs.unwrap_or(s.training.epochs);
        let process = Process::of(s);
        let (train, val_data) = self.open_feeds()?;
        let out = &s.output;
        let mut metrics = Metrics::open(&out.base_dir.join("metrics.csv"), &self.data.classes)?;
        let mut board = match s.tensorboard.enabled {
            true => Some(EventWriter::create(&out.tensorboard)?),
            false => None,
        };
        let mut summary = Summary {
            epochs: state.epoch,
            steps: state.step,
            last: None,
            checkpoint: None,
            images: Vec::new(),
        };
        let bar = self.progress_bar(epochs, state.epoch);
        while state.epoch < epochs {
            let lr = state.learning_rate(s, state.epoch);
            let pass = self.train_epoch(&mut state, &train, &process, lr, bar.as_ref())?;
            let stopped = pass.stopped;
            if !stopped {
                state.epoch += 1;
            }
            let mut row = Row {
                epoch: state.epoch,
                step: state.step,
                loss: pass.mse,
                weighted_loss: pass.objective,
                lr,
                images_per_s: pass.images as f64 / pass.seconds,
                val_loss: None,
                val_loss_per_class: vec![None; self.data.classes.len()],
            };
            let finished = state.epoch >= epochs || stopped;
            let v = &s.training.validation;
            let improved = match val_data
                .as_ref()
                .filter(|_| v.enabled && !stopped && (state.epoch % v.frequency == 0 || finished))
            {
                Some(val) => self.validate_epoch(&mut state, val, &process, &mut row)?,
                None => false,
            };
            if !stopped {
                step_plateau(s, &mut state, &row);
            }
            metrics.write(&row)?;
            // A run stopped by --max-steps mid-epoch has no epoch to chart the partial one at.
            if let Some(b) = board.as_mut().filter(|_| !stopped) {
                for (tag, value) in tensorboard::epoch_scalars(&row, &self.data.classes) {
                    b.scalar(&tag, row.epoch as u64, value)?;
                }
            }
            log_epoch(&row);
            if let Some(bar) = &bar {
                bar.set_position(state.epoch as u64);
            }
            if !stopped {
                let images = self.visualize(&state, &process)?;
                if let Some(b) = board.as_mut().filter(|_| s.tensorboard.images) {
                    for path in &images {
                        tensorboard::png_file(b, path, state.epoch as u64)?;
                    }
                }
                summary.images.extend(images);
            }
            if let Some(b) = board.as_mut() {
                b.flush()?;
            }
            if let Some(first) = self.save_checkpoints(&state, stopped, finished, improved)? {
                summary.checkpoint = Some(first);
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

    /// The training and validation feeds, reading the decoded cache when one is given
    /// (it holds the validation images too).
    fn open_feeds(&self) -> Result<(Feed, Option<Feed>), TrainError> {
        let s = self.settings;
        let cache = match &self.options.cache {
            Some(path) => Some(Arc::new(Cache::open(
                path,
                &self.data.manifest_sha256,
                s.architecture.image_size as u32,
            )?)),
            None => None,
        };
        let cached = |d: &Dataset| match &cache {
            Some(c) => d.clone().with_cache(c.clone()),
            None => d.clone(),
        };
        self.feeds(
            &cached(&self.data.train),
            self.data
                .val
                .as_ref()
                .filter(|_| s.training.validation.enabled)
                .map(cached)
                .as_ref(),
        )
    }

    /// One epoch of training steps (fewer when `--max-steps` is reached).
    fn train_epoch(
        &self,
        state: &mut State,
        train: &Feed,
        process: &Process,
        lr: f64,
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<Pass, TrainError> {
        let s = self.settings;
        let epoch = state.epoch;
        let weights = self.data.loss_weights.as_deref();
        let clip = s.training.optimizer.gradient_clip_norm;
        let order = self
            .data
            .epoch_order(epoch as u64, s.pipeline.shuffle_train)?;
        let started = Instant::now();
        let mut images = 0usize;
        let mut sums: Option<(Tensor<1>, Tensor<1>)> = None;
        let mut steps = 0u64;
        let mut stopped = false;
        for batch in train.epoch(order, epoch as u64) {
            let batch = batch?;
            images += batch.labels.len();
            let inputs = step_inputs(
                batch,
                s,
                process,
                weights,
                self.seed,
                state.step,
                &self.device,
            );
            let (objective, mse) = train_step(state, process, inputs, lr, clip, &self.device);
            steps += 1;
            // The bar shows the loss every tenth step: reading it waits for the device,
            // which every step would keep the GPU's queue from filling.
            if let Some(bar) = bar.filter(|_| steps % 10 == 1) {
                let loss = objective.clone().into_scalar::<f32>();
                bar.set_message(format!(
                    "step {} {} {loss:.4} {:.0} img/s",
                    state.step,
                    if weights.is_some() {
                        "weighted loss"
                    } else {
                        "loss"
                    },
                    images as f64 / started.elapsed().as_secs_f64()
                ));
            }
            sums = Some(match sums {
                Some((o, m)) => (o + objective, m + mse),
                None => (objective, mse),
            });
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
        Ok(Pass {
            objective,
            mse,
            images,
            seconds: started.elapsed().as_secs_f64(),
            stopped,
        })
    }

    /// Validates into `row`; whether the validation loss is the best so far.
    fn validate_epoch(
        &self,
        state: &mut State,
        val: &Feed,
        process: &Process,
        row: &mut Row,
    ) -> Result<bool, TrainError> {
        let (overall, per_class) = validate(
            &state.model.valid(),
            val,
            process,
            self.seed,
            self.data.classes.len(),
            &self.device,
        )?;
        row.val_loss = Some(overall);
        row.val_loss_per_class = per_class;
        let improved = state.best_val_loss.is_none_or(|b| overall < b);
        if improved {
            state.best_val_loss = Some(overall);
        }
        Ok(improved)
    }

    /// The epoch's checkpoints (periodic, best, latest, or the step a `--max-steps` run
    /// stopped at); the first one's path.
    fn save_checkpoints(
        &self,
        state: &State,
        stopped: bool,
        finished: bool,
        improved: bool,
    ) -> Result<Option<PathBuf>, TrainError> {
        let s = self.settings;
        let dir = &s.output.checkpoints;
        let c = &s.training.checkpointing;
        let periodic = !c.save_best_only && state.epoch % c.save_frequency == 0;
        let mut named: Vec<PathBuf> = Vec::new();
        if stopped {
            named.push(dir.join(format!("checkpoint_step_{:08}.ckpt", state.step)));
        } else if periodic || (finished && !c.save_best_only) {
            named.push(dir.join(format!("checkpoint_epoch_{:04}.ckpt", state.epoch)));
        }
        if c.save_best_only && improved {
            named.push(dir.join("best.ckpt"));
        }
        if named.is_empty() && !c.save_latest && !finished {
            return Ok(None);
        }
        named.push(dir.join("latest.ckpt"));
        let ck = checkpoint(state, s, self.data, self.seed, c.save_optimizer);
        for path in &named {
            ck.save(path)?;
            log::debug!("saved {}", path.display());
        }
        Ok(named.first().cloned())
    }

    /// The training and validation sets' feeds: on the device while the budget lasts
    /// (training first), else through the host pipeline; the log says which and why.
    /// `val` is `None` when validation is off, so its images are never read, as before.
    fn feeds(
        &self,
        train: &Dataset,
        val: Option<&Dataset>,
    ) -> Result<(Feed, Option<Feed>), TrainError> {
        let s = self.settings;
        let mut left = self
            .options
            .device_data_bytes
            .unwrap_or(feed::DEFAULT_BUDGET_MB << 20);
        let mut place = |name: &str, data: &Dataset, train: bool| {
            let cfg = s.pipeline.loader(self.data.data_seed, train);
            let (f, bytes, why) = Feed::new(data, cfg, left, &self.device)?;
            left -= bytes;
            match why {
                None => log::info!(
                    "{name}: {} images on the device ({:.1} MiB), batches gathered there",
                    data.len(),
                    feed::mib(bytes)
                ),
                Some(why) => log::info!("{name}: images through the host pipeline ({why})"),
            }
            Ok::<_, TrainError>(f)
        };
        let train = place("train", train, true)?;
        let val = val.map(|v| place("val", v, false)).transpose()?;
        Ok((train, val))
    }

    /// The epoch's sample grid and denoising strip, when due.
    fn visualize(&self, state: &State, process: &Process) -> Result<Vec<PathBuf>, TrainError> {
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
            process,
            settings: self.settings,
            classes: &self.data.classes,
            seed: self.seed,
            device: &self.device.clone().without_autodiff(),
            threshold: self.settings.training.visualization.threshold,
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

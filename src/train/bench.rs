//! `diffusion-train bench`: training steps of the configured model on random data of the
//! configured shape (held on the device and gathered, flipped and rotated per step as the
//! trainer's resident images are), timed, for comparison with `bench/unet_torch.py` (the
//! user's UNet, same class-weighted loss with weights [1, 9], Adam at the configured
//! learning rate, timesteps, label dropout and noise drawn per step, no EMA, no clipping).
//!
//! A second pass times each phase of a step (data, forward, backward, optimizer, EMA)
//! with the device synchronised after each, so a GPU run shows where its time goes; those
//! syncs stop the device from overlapping phases, so the phases add up to more than the
//! pipelined step of the first pass.
//!
//! With `--ops`, a third pass times each kind of layer alone ([`super::profile`]).

use std::time::Instant;

use burn::prelude::*;

use crate::images::loader::{LoaderConfig, Slots};
use crate::rng::{Purpose, Stream};

use super::ema::Ema;
use super::error::TrainError;
use super::family::Process;
use super::feed::Resident;
use super::profile::{self, KindTime};
use super::settings::TrainSettings;
use super::state::{self, State};
use super::step;

/// One measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub device: String,
    pub batch: usize,
    pub steps: usize,
    pub image_size: usize,
    pub ms_per_step: f64,
    pub images_per_s: f64,
    pub final_loss: f64,
    /// Milliseconds per step in each phase (second pass, synchronised per phase; the EMA
    /// phase is 0 when `training.ema.enabled` is false).
    pub phases_ms: Phases,
    /// Per kind of layer, with `--ops`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<KindTime>>,
}

/// Time per step of each phase.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Phases {
    /// Timesteps, noise and label dropout drawn on the host, the noised batch uploaded.
    pub data: f64,
    pub forward: f64,
    pub backward: f64,
    pub optimizer: f64,
    pub ema: f64,
}

/// Times `steps` optimizer steps at batch size `batch` after `warmup` untimed ones, then
/// `steps` more phase by phase, then (with `ops`) every layer call alone, `steps` times.
#[allow(clippy::too_many_arguments)]
pub fn run(
    s: &TrainSettings,
    config: &std::path::Path,
    device: &Device,
    description: &str,
    batch: usize,
    steps: usize,
    warmup: usize,
    ops: bool,
) -> Result<Timing, TrainError> {
    let a = &s.architecture;
    let k = s.conditioning.as_ref().map_or(1, |c| c.num_classes);
    let weights: Vec<f64> = (0..k).map(|i| if i == 1 { 9.0 } else { 1.0 }).collect();
    let process = Process::of(s);
    let mut state: State = state::freeze(state::fresh(s, 0, device), s, config)?;
    // The reference keeps no average; timing ours with one would compare different work.
    state.ema = None;
    let mut data = Stream::fast(0, Purpose::Generation, &[u64::MAX]);
    let shape = [batch, a.in_channels, a.image_size, a.image_size];
    let mut images = vec![0f32; shape.iter().product()];
    data.fill_normal(&mut images);
    let labels: Vec<u32> = (0..batch).map(|_| data.below(k as u64) as u32).collect();
    let lr = s.training.optimizer.learning_rate;
    // Held on the device and gathered per step with the config's flips and rotations, as
    // the trainer's resident images are (`feed`), so the data phase is the trainer's.
    let cfg = LoaderConfig {
        batch_size: batch,
        ..s.pipeline.loader(0, true)
    };
    let resident = Resident::from_planes(images, shape, labels, &cfg, device);
    let positions: Vec<usize> = (0..batch).collect();
    let inputs = |i: u64| {
        let slots = Slots {
            first: i as usize * batch,
            step: 1,
        };
        let b = resident.batch(&positions, slots, 0);
        step::step_inputs(b, s, &process, Some(&weights), 0, i, device)
    };
    let step = |state: &mut State, i: u64| {
        step::train_step(state, &process, inputs(i), lr, None, device).0
    };
    let (dt, final_loss) = time_steps(&mut state, step, warmup, steps);

    let sync = || super::device::sync(device, description);
    if s.training.ema.enabled {
        state.ema = Some(Ema::new(&state.model, s.training.ema.decay));
        // Its first update compiles (and on a GPU autotunes) its kernels: not timed.
        step::update_ema(&mut state);
        sync()?;
    }
    let phases = time_phases(
        &mut state,
        &process,
        &inputs,
        warmup + steps,
        steps,
        lr,
        &sync,
        device,
    )?;
    let ops = ops
        .then(|| {
            let (_, calls) =
                profile::record(|| step::forward_loss(&state, &process, inputs(0), device));
            profile::by_kind(&calls, device, steps)
        })
        .transpose()?;
    let per_step = |seconds: f64| 1000.0 * seconds / steps.max(1) as f64;
    let phases_ms = Phases {
        data: per_step(phases.data),
        forward: per_step(phases.forward),
        backward: per_step(phases.backward),
        optimizer: per_step(phases.optimizer),
        ema: per_step(phases.ema),
    };
    Ok(Timing {
        implementation: "burn",
        device: description.to_owned(),
        batch,
        steps,
        image_size: a.image_size,
        ms_per_step: 1000.0 * dt / steps as f64,
        images_per_s: (batch * steps) as f64 / dt,
        final_loss,
        phases_ms,
        ops,
    })
}

/// Seconds for `steps` steps after `warmup` untimed ones, and the last step's loss.
fn time_steps(
    state: &mut State,
    step: impl Fn(&mut State, u64) -> Tensor<1>,
    warmup: usize,
    steps: usize,
) -> (f64, f64) {
    for i in 0..warmup {
        step(state, i as u64).into_scalar::<f32>();
    }
    let started = Instant::now();
    let mut last = None;
    for i in 0..steps {
        last = Some(step(state, (warmup + i) as u64));
    }
    // Reading the last loss waits for all queued work.
    let final_loss = last.map_or(f64::NAN, |l| l.into_scalar::<f32>() as f64);
    (started.elapsed().as_secs_f64(), final_loss)
}

/// `steps` steps from step `first`, each phase timed on its own (`sync` waits for the
/// device after each); seconds per phase in total.
#[allow(clippy::too_many_arguments)]
fn time_phases(
    state: &mut State,
    process: &Process,
    inputs: &dyn Fn(u64) -> step::StepInputs,
    first: usize,
    steps: usize,
    lr: f64,
    sync: &dyn Fn() -> Result<(), TrainError>,
    device: &Device,
) -> Result<Phases, TrainError> {
    let mut phases = Phases::default();
    let timed = |total: &mut f64, started: Instant| -> Result<(), TrainError> {
        sync()?;
        *total += started.elapsed().as_secs_f64();
        Ok(())
    };
    for i in 0..steps {
        let at = Instant::now();
        let x = inputs((first + i) as u64);
        timed(&mut phases.data, at)?;
        let at = Instant::now();
        let (objective, _) = step::forward_loss(state, process, x, device);
        timed(&mut phases.forward, at)?;
        let at = Instant::now();
        let grads = step::gradients(state, &objective);
        timed(&mut phases.backward, at)?;
        let at = Instant::now();
        step::apply(state, grads, lr, None);
        timed(&mut phases.optimizer, at)?;
        let at = Instant::now();
        step::update_ema(state);
        timed(&mut phases.ema, at)?;
    }
    Ok(phases)
}

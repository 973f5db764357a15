//! `diffusion-train bench`: training steps of the configured model on random data of the
//! configured shape, timed, for comparison with `../shared/bench/python/unet_ref.py`
//! (same model, same class-weighted loss with weights [1, 9], Adam at the configured
//! learning rate, timesteps, label dropout and noise drawn per step, no EMA, no clipping).

use std::time::Instant;

use burn::prelude::*;

use crate::rng::{Purpose, Stream};

use super::schedule::NoiseSchedule;
use super::settings::TrainSettings;
use super::state::{self, State};
use super::step;
use crate::images::loader::Batch;

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
}

/// Times `steps` optimizer steps at batch size `batch` after `warmup` untimed ones.
pub fn run(
    s: &TrainSettings,
    device: &Device,
    description: &str,
    batch: usize,
    steps: usize,
    warmup: usize,
) -> Timing {
    let a = &s.architecture;
    let k = s.conditioning.as_ref().map_or(1, |c| c.num_classes);
    let weights: Vec<f64> = (0..k).map(|i| if i == 1 { 9.0 } else { 1.0 }).collect();
    let schedule = NoiseSchedule::new(&s.diffusion);
    let mut state: State = state::fresh(s, 0, device);
    // The reference keeps no average; timing ours with one would compare different work.
    state.ema = None;
    let mut data = Stream::fast(0, Purpose::Generation, &[u64::MAX]);
    let shape = [batch, a.in_channels, a.image_size, a.image_size];
    let mut images = vec![0f32; shape.iter().product()];
    data.fill_normal(&mut images);
    let labels: Vec<u32> = (0..batch).map(|_| data.below(k as u64) as u32).collect();
    let lr = s.training.optimizer.learning_rate;
    let step = |state: &mut State, i: u64| {
        let b = Batch {
            images: images.clone(),
            labels: labels.clone(),
            entries: Vec::new(),
            shape,
        };
        let inputs = step::step_inputs(b, s, &schedule, Some(&weights), 0, i, device);
        step::train_step(state, inputs, lr, None, device).0
    };
    for i in 0..warmup {
        step(&mut state, i as u64).into_scalar::<f32>();
    }
    let started = Instant::now();
    let mut last = None;
    for i in 0..steps {
        last = Some(step(&mut state, (warmup + i) as u64));
    }
    // Reading the last loss waits for all queued work.
    let final_loss = last.map_or(f64::NAN, |l| l.into_scalar::<f32>() as f64);
    let dt = started.elapsed().as_secs_f64();
    Timing {
        implementation: "burn",
        device: description.to_owned(),
        batch,
        steps,
        image_size: a.image_size,
        ms_per_step: 1000.0 * dt / steps as f64,
        images_per_s: (batch * steps) as f64 / dt,
        final_loss,
    }
}

//! One training step and one validation pass: a batch noised with the step's host-drawn
//! timesteps and noise, the model's prediction, the (class-weighted) loss.

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::draws;
use super::error::TrainError;
use super::family::{Net, Process};
use super::feed::{DeviceBatch, Feed};
use super::loss;
use super::optim;
use super::settings::TrainSettings;
use super::state::State;

fn labels_tensor(labels: &[u32], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let n = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
}

/// `x_t`, the noise and the timesteps as the model takes them.
fn noised(
    x0: Tensor<4>,
    noise: Vec<f32>,
    timesteps: &[usize],
    process: &Process,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
    let shape = x0.dims();
    let noise = Tensor::<4>::from_data(TensorData::new(noise, shape), device);
    let x_t = process.noised(x0, noise.clone(), timesteps);
    let t: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    (x_t, noise, Tensor::<1>::from_floats(t.as_slice(), device))
}

/// The tensors of one training step.
pub struct StepInputs {
    /// The clean images (the ADM's variational bound needs them).
    pub x0: Tensor<4>,
    pub x_t: Tensor<4>,
    pub noise: Tensor<4>,
    pub t: Tensor<1>,
    pub timesteps: Vec<usize>,
    pub cond: Option<Tensor<1, Int>>,
    /// Per-sample weights of the true labels, when the loss is class-weighted.
    pub weights: Option<Tensor<1>>,
    /// Seeds the device's generator (dropout masks).
    pub device_seed: u64,
}

/// Step `step`'s inputs from a batch: noising, label dropout, weights.
pub fn step_inputs(
    batch: DeviceBatch,
    s: &TrainSettings,
    process: &Process,
    loss_weights: Option<&[f64]>,
    seed: u64,
    step: u64,
    device: &Device,
) -> StepInputs {
    let [_, c, h, w] = batch.x0.dims();
    let d = draws::training_step(
        seed,
        step,
        &batch.labels,
        c * h * w,
        process.len(),
        s.conditioning.as_ref(),
    );
    let (x_t, noise, t) = noised(batch.x0.clone(), d.noise, &d.timesteps, process, device);
    StepInputs {
        x0: batch.x0,
        x_t,
        noise,
        t,
        timesteps: d.timesteps,
        cond: d.cond_labels.map(|l| labels_tensor(&l, device)),
        weights: loss_weights.map(|w| loss::sample_weights(w, &batch.labels, device)),
        device_seed: d.device_seed,
    }
}

/// One optimizer step (and EMA update); returns the step's (objective, unweighted MSE)
/// as device scalars, not read back, so the GPU queue keeps flowing.
pub fn train_step(
    state: &mut State,
    process: &Process,
    inputs: StepInputs,
    lr: f64,
    clip: Option<f64>,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    let (objective, mse) = forward_loss(state, process, inputs, device);
    let grads = gradients(state, &objective);
    apply(state, grads, lr, clip);
    update_ema(state);
    (objective.detach(), mse)
}

/// The forward pass and the loss: (objective, unweighted epsilon MSE). The objective is
/// the family's per-sample loss (the DDPM's MSE, the ADM's hybrid `mse + vb`), each
/// sample's term times its class weight when the loss is class-weighted, averaged over the
/// batch. The phases of a step are separate functions so `diffusion-train bench` can time
/// each one.
pub fn forward_loss(
    state: &State,
    process: &Process,
    inputs: StepInputs,
    device: &Device,
) -> (Tensor<1>, Tensor<1>) {
    device.seed(inputs.device_seed);
    let out = state
        .model
        .forward(inputs.x_t.clone(), inputs.t, inputs.cond);
    let l = process.losses(out, inputs.x0, inputs.x_t, inputs.noise, &inputs.timesteps);
    let mse = l.mse.mean().detach();
    (loss::weighted_mse(l.per_sample, inputs.weights), mse)
}

/// The backward pass: the objective's gradients for every parameter.
pub fn gradients(state: &State, objective: &Tensor<1>) -> GradientsParams {
    GradientsParams::from_grads(objective.backward(), &state.model)
}

/// Clipping and the optimizer step; counts the step.
pub fn apply(state: &mut State, grads: GradientsParams, lr: f64, clip: Option<f64>) {
    let grads = match clip {
        Some(max) => optim::clip_global_norm(&state.model, grads, max),
        None => grads,
    };
    let model = state.model.clone();
    state.model = state.optim.step(lr, model, grads);
    state.step += 1;
}

/// The EMA update after a step, when there is an EMA.
pub fn update_ema(state: &mut State) {
    if let Some(e) = &mut state.ema {
        e.update(&state.model);
    }
}

/// Validation loss (unweighted: the DDPM's MSE, the ADM's hybrid loss) over all of `val`
/// and per class: no augmentation, no resampling, true labels, and timesteps and noise
/// fixed per batch, so the numbers are comparable across epochs. `val` must be made with the validation loader config
/// (`PipelineSettings::loader(seed, false)`): a feed applies its config's augmentation.
pub fn validate(
    model: &Net,
    val: &Feed,
    process: &Process,
    seed: u64,
    num_classes: usize,
    device: &Device,
) -> Result<(f64, Vec<Option<f64>>), TrainError> {
    let mut sum = vec![0f64; num_classes];
    let mut count = vec![0usize; num_classes];
    for (k, batch) in val.epoch((0..val.len()).collect(), 0).enumerate() {
        let DeviceBatch { x0, labels } = batch?;
        let [n, c, h, w] = x0.dims();
        let (t, noise) = draws::validation_batch(seed, k as u64, n, c * h * w, process.len());
        let (x_t, noise, tt) = noised(x0.clone(), noise, &t, process, device);
        let y = model
            .is_conditional()
            .then(|| labels_tensor(&labels, device));
        let out = model.forward(x_t.clone(), tt, y);
        let per = process
            .losses(out, x0, x_t, noise, &t)
            .per_sample
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

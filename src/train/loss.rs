//! The diffusion objective: MSE between predicted and true noise, optionally weighted per
//! sample by the class weight of the sample's *true* label (even when its conditioning
//! label was dropped for classifier-free guidance), so the rare class counts as the
//! manifest's `balancing.loss` says. Computed on the device, inside the autodiff graph.

use burn::prelude::*;

/// The per-sample MSE, mean over C, H and W: `[B]`.
pub fn per_sample_mse(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    mean_flat((pred - target).powi_scalar(2))
}

/// The mean over all but the batch dimension: `[B]`.
pub fn mean_flat(x: Tensor<4>) -> Tensor<1> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w]).mean_dim(1).reshape([b])
}

/// The batch loss: `mean_i(w[y_i] * mse_i)` with `weights` the per-sample weights
/// `[B]`, or the plain `mean_i(mse_i)` (= `nn.MSELoss()`) without.
pub fn weighted_mse(per_sample: Tensor<1>, weights: Option<Tensor<1>>) -> Tensor<1> {
    match weights {
        Some(w) => (per_sample * w).mean(),
        None => per_sample.mean(),
    }
}

/// The weight of each sample's true label, `[B]`, from the class weights.
pub fn sample_weights(class_weights: &[f64], labels: &[u32], device: &Device) -> Tensor<1> {
    let w: Vec<f32> = labels
        .iter()
        .map(|&l| class_weights[l as usize] as f32)
        .collect();
    Tensor::from_floats(w.as_slice(), device)
}

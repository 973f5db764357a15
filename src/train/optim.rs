//! The optimizer with PyTorch's semantics, and `clip_grad_norm_`.
//!
//! burn's Adam and AdamW follow the same update rules as torch's (Adam's weight decay is
//! the L2 term added to the gradient, AdamW's is decoupled), but their defaults differ
//! (epsilon 1e-5, AdamW weight decay 1e-4): every value is set here explicitly, epsilon
//! to torch's 1e-8. burn's gradient clipping is per tensor, while the user's loop clips
//! the global norm over all parameters, so that is done here before the step.

use burn::module::{ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::settings::{Optimizer, OptimizerKind};

/// torch.optim.Adam / AdamW's default epsilon.
const EPSILON: f32 = 1e-8;

/// The configured optimizer.
pub fn build(o: &Optimizer) -> ModuleOptimizer {
    let [b1, b2] = o.betas.map(|b| b as f32);
    match o.kind {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(b1)
            .with_beta_2(b2)
            .with_epsilon(EPSILON)
            .with_weight_decay(
                (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay as f32)),
            )
            .init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_beta_1(b1)
            .with_beta_2(b2)
            .with_epsilon(EPSILON)
            .with_weight_decay(o.weight_decay as f32)
            .init(),
    }
}

/// Sums the squares of every parameter's gradient.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Multiplies every parameter's gradient by a one-element factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let f = self.factor.clone().unsqueeze::<D>();
            self.grads.register(param.id, g * f);
        }
    }
}

/// The global L2 norm of all gradients of `module`'s parameters, `[1]`.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total.map(Tensor::sqrt)
}

/// `torch.nn.utils.clip_grad_norm_(params, max_norm)`: scales all gradients by
/// `min(1, max_norm / (total_norm + 1e-6))`. Stays on the device (no read-back), so it
/// does not stall the GPU pipeline.
pub fn clip_global_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> GradientsParams {
    let Some(norm) = global_norm(module, &grads) else {
        return grads;
    };
    let factor = norm
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    module.visit(&mut Scale {
        grads: &mut grads,
        factor,
    });
    grads
}

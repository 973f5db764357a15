//! Dropout as an operation of burn's CPU backend, with its own backward: the mask drawn by
//! our kernel from a seed that comes from the device's generator, so a step's masks follow
//! from the step's seed as burn's did (exact resume), and the backward draws it again.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata as _};
use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;

use super::{contiguous, elements, on_autodiff, tensor, Ad};
use crate::train::kernels::dropout as kernel;

/// `Dropout::forward`, with the mask drawn by our kernel on the CPU's autodiff backend. As
/// burn's: the identity outside training, without autodiff, or at probability 0.
pub fn dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !d.training.is_enabled() || !x.device().is_autodiff() || d.prob == 0.0 {
        return x;
    }
    if x.dtype() == DType::F32 {
        if let Some(p) = on_autodiff(&x) {
            let seed = draw_seed(&x.device());
            return Tensor::from_primitive::<Ad>(tracked(p, d.prob, seed));
        }
    }
    d.forward(x)
}

/// 64 bits from the device's generator (three uniform floats of 24 random bits each),
/// so the masks are a function of the step's seed.
fn draw_seed(device: &Device) -> u64 {
    let u = Tensor::<1>::random([3], Distribution::Uniform(0.0, 1.0), device)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 draws");
    u.iter()
        .fold(0u64, |acc, &v| (acc << 24) ^ ((v * 16_777_216.0) as u64))
}

fn tracked(x: FloatTensor<Ad>, p: f64, seed: u64) -> FloatTensor<Ad> {
    let forward = |x: FlexTensor| {
        let x = contiguous(x);
        tensor(kernel::apply(elements(&x), p, seed), x.shape().to_vec())
    };
    match DropoutBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((p, seed), forward(x.primitive().clone())),
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive().clone())),
    }
}

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    /// The probability and the mask's seed.
    type State = (f64, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (p, seed) = ops.state;
        if let Some(node) = node {
            let dx = kernel::apply(elements(&grad), p, seed);
            grads.register::<Flex>(node.id, tensor(dx, grad.shape().to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{floats, values};
    use super::*;
    use burn::nn::DropoutConfig;

    /// Values and input gradient through the autodiff backend: every element is 0 or
    /// `x / (1 - p)`, the gradient `r / (1 - p)` exactly where the value was kept, about a
    /// fraction `p` dropped, and the same masks again after the device is seeded again.
    #[test]
    fn values_and_gradient_share_one_mask_that_follows_the_device_seed() {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(0.25).init();
        let shape = [4, 8, 40, 40];
        let n: usize = shape.iter().product();
        let run = || {
            device.seed(9);
            let x = Tensor::<4>::from_data(
                TensorData::new(values(n, 3).iter().map(|v| v + 2.0).collect(), shape),
                &device,
            )
            .require_grad();
            let r = Tensor::<4>::from_data(TensorData::new(values(n, 5), shape), &device);
            let y = dropout(&d, x.clone());
            let grads = (y.clone() * r).sum().backward();
            (floats(y), floats(x.grad(&grads).unwrap()))
        };
        let (y, dx) = run();
        let (x, r) = (values(n, 3), values(n, 5));
        let mut kept = 0;
        for i in 0..n {
            if y[i] == 0.0 {
                assert_eq!(dx[i], 0.0, "element {i}");
            } else {
                kept += 1;
                assert!(
                    (y[i] - (x[i] + 2.0) / 0.75).abs() <= 1e-6 * y[i].abs(),
                    "element {i}"
                );
                assert!((dx[i] - r[i] / 0.75).abs() <= 1e-6, "element {i}");
            }
        }
        let fraction = kept as f64 / n as f64;
        assert!((fraction - 0.75).abs() < 0.01, "{fraction}");
        assert_eq!(run(), (y, dx), "the same seed, the same masks");
    }

    #[test]
    fn outside_training_it_is_the_identity() {
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &Device::flex());
        let d = DropoutConfig::new(0.5).init();
        assert_eq!(floats(dropout(&d, x.clone())), floats(x));
    }
}

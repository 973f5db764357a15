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
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    /// Values and input gradient through the autodiff backend: every element is 0 or
    /// `x / (1 - p)`, the gradient `r / (1 - p)` exactly where the value was kept, and the
    /// same masks again after the device is seeded again.
    fn check(shape: [usize; 3], p: f64, seed: u64) -> Result<usize, TestCaseError> {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(p).init();
        let n: usize = shape.iter().product();
        let (x, r) = (values(n, seed), values(n, seed ^ 5));
        let run = || {
            device.seed(seed);
            let xs = x.iter().map(|v| v + 2.0).collect();
            let x = Tensor::<3>::from_data(TensorData::new(xs, shape), &device).require_grad();
            let rt = Tensor::<3>::from_data(TensorData::new(r.clone(), shape), &device);
            let y = dropout(&d, x.clone());
            let grads = (y.clone() * rt).sum().backward();
            (floats(y), floats(x.grad(&grads).unwrap()))
        };
        let (y, dx) = run();
        let keep = (1.0 - p) as f32;
        let mut kept = 0;
        for i in 0..n {
            if y[i] == 0.0 {
                prop_assert_eq!(dx[i], 0.0, "element {}", i);
            } else {
                kept += 1;
                prop_assert!(
                    (y[i] - (x[i] + 2.0) / keep).abs() <= 1e-6 * y[i].abs(),
                    "element {}",
                    i
                );
                prop_assert!(
                    (dx[i] - r[i] / keep).abs() <= 1e-6 * (1.0 / keep),
                    "element {}",
                    i
                );
            }
        }
        prop_assert!(run() == (y, dx), "the same seed, other masks");
        Ok(kept)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn values_and_gradient_share_one_mask_that_follows_the_device_seed(
            a in 1usize..4, b in 1usize..20, c in 1usize..900, p in 0.05f64..0.9, seed in any::<u64>(),
        ) {
            check([a, b, c], p, seed)?;
        }
    }

    /// About a fraction `p` is dropped.
    #[test]
    fn the_drop_rate_is_the_probability() {
        let n = 4 * 8 * 1600;
        let kept = check([4, 8, 1600], 0.25, 9).unwrap();
        let fraction = kept as f64 / n as f64;
        assert!((fraction - 0.75).abs() < 0.01, "{fraction}");
    }

    #[test]
    fn outside_training_it_is_the_identity() {
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &Device::flex());
        let d = DropoutConfig::new(0.5).init();
        assert_eq!(floats(dropout(&d, x.clone())), floats(x));
    }
}

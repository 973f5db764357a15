//! Group normalisation as an operation of burn's CPU backend, with its own backward.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata as _};
use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;

use super::{contiguous, elements, on_autodiff, on_flex, tensor, Ad};
use crate::train::kernels::group_norm::{self as kernel, Dims};

/// `GroupNorm::forward` of an affine group norm on `[batch, channels, ..]`, computed by our
/// kernel on the CPU.
pub fn group_norm<const D: usize>(n: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    let (Some(gamma), Some(beta)) = (&n.gamma, &n.beta) else {
        return n.forward(x);
    };
    let (gamma, beta) = (gamma.val(), beta.val());
    let dims = x.dims();
    let d = Dims {
        batch: dims[0],
        channels: dims[1],
        size: dims[2..].iter().product(),
        groups: n.num_groups,
    };
    let eps = n.epsilon;
    if x.dtype() == DType::F32 && D >= 2 && dims[1] == n.num_channels {
        if let (Some(x), Some(g), Some(b)) =
            (on_autodiff(&x), on_autodiff(&gamma), on_autodiff(&beta))
        {
            return Tensor::from_primitive::<Ad>(tracked(d, eps, x, g, b));
        }
        if let (Some(x), Some(g), Some(b)) = (on_flex(&x), on_flex(&gamma), on_flex(&beta)) {
            return Tensor::from_primitive::<Flex>(forward(&d, eps, x, g, b));
        }
    }
    n.forward(x)
}

fn forward(d: &Dims, eps: f64, x: FlexTensor, gamma: FlexTensor, beta: FlexTensor) -> FlexTensor {
    let shape = x.shape().to_vec();
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let y = kernel::forward(d, elements(&x), elements(&gamma), elements(&beta), eps);
    tensor(y, shape)
}

fn tracked(
    d: Dims,
    eps: f64,
    x: FloatTensor<Ad>,
    gamma: FloatTensor<Ad>,
    beta: FloatTensor<Ad>,
) -> FloatTensor<Ad> {
    let prims = |x: &FloatTensor<Ad>, g: &FloatTensor<Ad>, b: &FloatTensor<Ad>| {
        (
            x.primitive().clone(),
            g.primitive().clone(),
            b.primitive().clone(),
        )
    };
    match GroupNormBackward
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&gamma), d, eps);
            let (x, gamma, beta) = prims(&x, &gamma, &beta);
            prep.finish(state, forward(&d, eps, x, gamma, beta))
        }
        OpsKind::UnTracked(prep) => {
            let (x, gamma, beta) = prims(&x, &gamma, &beta);
            prep.finish(forward(&d, eps, x, gamma, beta))
        }
    }
}

#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    type State = (NodeId, NodeId, Dims, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, gamma_state, d, eps) = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let gamma = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(gamma_state));
        let g = kernel::backward(&d, elements(&x), elements(&gamma), elements(&grad), eps);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(g.x, x.shape().to_vec()));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(g.gamma, vec![d.channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(g.beta, vec![d.channels]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{all_close, floats, values};
    use super::*;
    use burn::nn::GroupNormConfig;
    use proptest::prelude::*;

    /// Output and gradients (x, gamma, beta) of `sum(f(x) * r)`.
    fn run(
        f: fn(&GroupNorm, Tensor<4>) -> Tensor<4>,
        n: &GroupNorm,
        device: &Device,
        shape: [usize; 4],
        seed: u64,
    ) -> [Vec<f32>; 4] {
        let len = shape.iter().product();
        let data = |k| TensorData::new(values(len, seed ^ k), shape);
        let x = Tensor::<4>::from_data(data(1), device).require_grad();
        let r = Tensor::<4>::from_data(data(2), device);
        let y = f(n, x.clone());
        let grads = (y.clone() * r).sum().backward();
        [
            floats(y),
            floats(x.grad(&grads).unwrap()),
            floats(n.gamma.as_ref().unwrap().val().grad(&grads).unwrap()),
            floats(n.beta.as_ref().unwrap().val().grad(&grads).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Through the autodiff backend, the output and the gradients for the input, the
        /// scale and the shift are burn's `GroupNorm`'s, within 1e-4 of the largest value.
        #[test]
        fn the_operation_and_its_gradients_are_burns_group_norm(
            b in 1usize..4, groups in 1usize..5, per in 1usize..5, h in 1usize..9, w in 1usize..9,
            seed in any::<u64>(),
        ) {
            let device = Device::flex().autodiff();
            let channels = groups * per;
            let mut n = GroupNormConfig::new(groups, channels).init(&device);
            // Scale and shift other than the initial ones and zeros.
            let param = |k| Tensor::<1>::from_data(TensorData::new(values(channels, seed ^ k), [channels]), &device);
            n.gamma = n.gamma.map(|p| p.map(|_| param(3).require_grad()));
            n.beta = n.beta.map(|p| p.map(|_| param(4).require_grad()));
            let ours = run(group_norm, &n, &device, [b, channels, h, w], seed);
            let theirs = run(GroupNorm::forward, &n, &device, [b, channels, h, w], seed);
            all_close(&["output", "input grad", "scale grad", "shift grad"], &ours, &theirs)?;
        }
    }
}

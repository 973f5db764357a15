//! SiLU as an operation of burn's CPU backend, with its own backward.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata as _};
use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;

use super::{contiguous, elements, on_autodiff, on_flex, tensor, Ad};
use crate::train::kernels::silu as kernel;

/// `burn::tensor::activation::silu`, computed by our kernel on the CPU.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F32 {
        if let Some(x) = on_autodiff(&x) {
            return Tensor::from_primitive::<Ad>(tracked(x));
        }
        if let Some(x) = on_flex(&x) {
            return Tensor::from_primitive::<Flex>(forward(x));
        }
    }
    burn::tensor::activation::silu(x)
}

fn forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    tensor(kernel::forward(elements(&x)), x.shape().to_vec())
}

fn tracked(x: FloatTensor<Ad>) -> FloatTensor<Ad> {
    match SiluBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, forward(x.primitive().clone()))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive().clone())),
    }
}

#[derive(Debug)]
struct SiluBackward;

impl Backward<Flex, 1> for SiluBackward {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        if let Some(node) = node {
            let dx = kernel::backward(elements(&x), elements(&grad));
            grads.register::<Flex>(node.id, tensor(dx, x.shape().to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{all_close, floats, values};
    use super::*;
    use proptest::prelude::*;

    fn run(
        f: fn(Tensor<3>) -> Tensor<3>,
        device: &Device,
        shape: [usize; 3],
        seed: u64,
    ) -> [Vec<f32>; 2] {
        let n = shape.iter().product();
        let x = Tensor::<3>::from_data(
            TensorData::new(values(n, seed).iter().map(|v| v * 12.0).collect(), shape),
            device,
        )
        .require_grad();
        let r = Tensor::<3>::from_data(TensorData::new(values(n, seed ^ 5), shape), device);
        let y = f(x.clone());
        let grads = (y.clone() * r).sum().backward();
        [floats(y), floats(x.grad(&grads).unwrap())]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Through the autodiff backend, the values and the input gradient are burn's
        /// `silu`'s, within 1e-4 of the largest value.
        #[test]
        fn the_operation_and_its_gradient_are_burns_silu(
            a in 1usize..5, b in 1usize..40, c in 1usize..700, seed in any::<u64>(),
        ) {
            let device = Device::flex().autodiff();
            let ours = run(silu, &device, [a, b, c], seed);
            let theirs = run(burn::tensor::activation::silu, &device, [a, b, c], seed);
            all_close(&["values", "gradient"], &ours, &theirs)?;
        }
    }
}

//! The 3x3 convolution as an operation of burn's CPU backend, with its own backward.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata as _};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::NodeId;
use burn_flex::FlexTensor;

use super::{contiguous, elements, on_autodiff, on_flex, tensor, Ad};
use crate::train::kernels::conv3x3::{self as kernel, Dims};

/// A 3x3 convolution, stride 1, padding 1, one group, as the UNet's residual blocks use
/// it: `Conv2d::forward` of such a layer, computed by our kernel on the CPU.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let ours = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && weight.dims()[2..] == [3, 3]
        && weight.dims()[1] == x.dims()[1];
    if let (true, Some(bias)) = (ours, &bias) {
        if let (Some(x), Some(w), Some(b)) =
            (on_autodiff(&x), on_autodiff(&weight), on_autodiff(bias))
        {
            return Tensor::from_primitive::<Ad>(tracked(x, w, b));
        }
        if let (Some(x), Some(w), Some(b)) = (on_flex(&x), on_flex(&weight), on_flex(bias)) {
            return Tensor::from_primitive::<Flex>(forward(&x, &w, &b));
        }
    }
    conv2d(x, weight, bias, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
}

fn dims(x: &FlexTensor, weight: &FlexTensor) -> Dims {
    let [batch, cin, h, w] = x.shape().dims();
    let [cout, ..] = weight.shape().dims::<4>();
    Dims {
        batch,
        cin,
        cout,
        h,
        w,
    }
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let d = dims(x, weight);
    let (x, weight, bias) = (
        contiguous(x.clone()),
        contiguous(weight.clone()),
        contiguous(bias.clone()),
    );
    let out = kernel::forward(&d, elements(&x), elements(&weight), Some(elements(&bias)));
    tensor(out, vec![d.batch, d.cout, d.h, d.w])
}

/// The forward on the autodiff backend, recording [`Conv3x3Backward`] when any input
/// needs a gradient.
fn tracked(x: FloatTensor<Ad>, weight: FloatTensor<Ad>, bias: FloatTensor<Ad>) -> FloatTensor<Ad> {
    let prep = Conv3x3Backward
        .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
        .compute_bound();
    match prep.stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&weight),
                dims(x.primitive(), weight.primitive()),
            );
            let out = forward(x.primitive(), weight.primitive(), bias.primitive());
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.primitive(), weight.primitive(), bias.primitive()))
        }
    }
}

/// The gradients of [`conv3x3`] for its input, weight and bias, each only where asked.
#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 3> for Conv3x3Backward {
    type State = (NodeId, NodeId, Dims);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, d) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);
        let g = elements(&grad);
        if let Some(node) = node_x {
            let weight = contiguous(weight);
            let dx = kernel::input_grad(&d, elements(&weight), g);
            grads.register::<Flex>(node.id, tensor(dx, vec![d.batch, d.cin, d.h, d.w]));
        }
        if let Some(node) = node_weight {
            let x = contiguous(x);
            let dw = kernel::weight_grad(&d, elements(&x), g);
            grads.register::<Flex>(node.id, tensor(dw, vec![d.cout, d.cin, 3, 3]));
        }
        if let Some(node) = node_bias {
            let db = kernel::bias_grad(&d, g);
            grads.register::<Flex>(node.id, tensor(db, vec![d.cout]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{all_close, close, floats, values};
    use super::*;
    use proptest::prelude::*;

    /// The output and the three gradients of a loss `sum(conv(x) * r)` through `f`.
    fn run(
        f: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
        device: &Device,
        shapes: ([usize; 4], [usize; 4]),
        seed: u64,
    ) -> [Vec<f32>; 4] {
        let (xs, ws) = shapes;
        let data =
            |shape: [usize; 4], k| TensorData::new(values(shape.iter().product(), seed ^ k), shape);
        let x = Tensor::<4>::from_data(data(xs, 1), device).require_grad();
        let w = Tensor::<4>::from_data(data(ws, 2), device).require_grad();
        let b = Tensor::<1>::from_data(TensorData::new(values(ws[0], seed ^ 3), [ws[0]]), device)
            .require_grad();
        let out = f(x.clone(), w.clone(), Some(b.clone()));
        let r = Tensor::<4>::from_data(data(out.dims(), 4), device);
        let grads = (out.clone() * r).sum().backward();
        [
            floats(out),
            floats(x.grad(&grads).unwrap()),
            floats(w.grad(&grads).unwrap()),
            floats(b.grad(&grads).unwrap()),
        ]
    }

    fn burns(x: Tensor<4>, w: Tensor<4>, b: Option<Tensor<1>>) -> Tensor<4> {
        conv2d(x, w, b, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Through the autodiff backend, the output and the input, weight and bias
        /// gradients are burn's own convolution's, within 1e-4 of the largest value.
        #[test]
        fn the_operation_and_its_gradients_are_burns_convolution(
            b in 1usize..4, cin in 1usize..9, cout in 1usize..9, h in 1usize..12, w in 1usize..12,
            seed in any::<u64>(),
        ) {
            let device = Device::flex().autodiff();
            let shapes = ([b, cin, h, w], [cout, cin, 3, 3]);
            let ours = run(conv3x3, &device, shapes, seed);
            let theirs = run(burns, &device, shapes, seed);
            all_close(&["output", "input grad", "weight grad", "bias grad"], &ours, &theirs)?;
        }
    }

    #[test]
    fn without_autodiff_the_forward_is_burns_too() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(values(2 * 3 * 5 * 4, 9), [2, 3, 5, 4]),
            &device,
        );
        let w =
            Tensor::<4>::from_data(TensorData::new(values(4 * 3 * 9, 8), [4, 3, 3, 3]), &device);
        let b = Tensor::<1>::from_data(TensorData::new(values(4, 7), [4]), &device);
        let ours = conv3x3(x.clone(), w.clone(), Some(b.clone()));
        let theirs = burns(x, w, Some(b));
        close(&floats(ours), &floats(theirs)).unwrap();
    }
}

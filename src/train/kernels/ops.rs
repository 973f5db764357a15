//! The kernels as operations of burn's CPU backend (Flex), through burn's extension points:
//! a tensor is taken down to its backend primitive (`try_into_primitive`), on the autodiff
//! backend the operation records its own backward (`burn_autodiff::ops::Backward`), and the
//! result is wrapped back (`from_primitive`). Tensors on any other backend (wgpu, CUDA) take
//! burn's own operation, so the GPU path is what it was.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn_flex::FlexTensor;

mod conv3x3;
mod dropout;
mod group_norm;
mod silu;

pub use conv3x3::conv3x3;
pub use dropout::dropout;
pub use group_norm::group_norm;
pub use silu::silu;

/// The trainer's autodiff backend over Flex (no gradient checkpointing).
type Ad = Autodiff<Flex>;

/// The tensor's primitive on the autodiff backend over Flex, if it lives there.
fn on_autodiff<const D: usize>(t: &Tensor<D>) -> Option<FloatTensor<Ad>> {
    t.clone().try_into_primitive::<Ad>().ok()
}

/// The tensor's primitive on Flex without autodiff, if it lives there.
fn on_flex<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    t.clone().try_into_primitive::<Flex>().ok()
}

/// The tensor's elements in order (a copy only when its layout is strided).
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn elements(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("contiguous f32 (made so by `contiguous`)")
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod testing {
    use burn::prelude::*;
    use proptest::test_runner::TestCaseError;

    /// A tensor's values, in order.
    pub fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// [`close`] for each named result of ours against burn's.
    pub fn all_close(
        what: &[&str],
        ours: &[Vec<f32>],
        burns: &[Vec<f32>],
    ) -> Result<(), TestCaseError> {
        for ((what, a), b) in what.iter().zip(ours).zip(burns) {
            close(a, b).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        }
        Ok(())
    }

    /// Reproducible values in [-1, 1] (xorshift).
    pub fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every element of `a` within 1e-4 of `b`'s, relative to `b`'s largest magnitude.
    pub fn close(a: &[f32], b: &[f32]) -> Result<(), String> {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        match a
            .iter()
            .zip(b)
            .position(|(x, y)| (x - y).abs() > 1e-4 * scale)
        {
            None => Ok(()),
            Some(i) => Err(format!("element {i}: {} vs {} (scale {scale})", a[i], b[i])),
        }
    }
}

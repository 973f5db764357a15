//! `diffusion-train bench --ops`: where a training step's time goes, by kind of
//! operation. One forward pass of the model records every layer call (its kind, its
//! input's shape, the layer); each recorded call is then run alone on the same device,
//! forward and backward (input and parameter gradients, as in training), with the device
//! synchronised around each, and the times are summed by kind.
//!
//! burn has no per-operation profiler for its CPU backend, and perf's flat profile
//! cannot tell a convolution's GEMM from its backward's; timing each layer alone can,
//! on any device. What the layers do not cover (residual additions, concatenations, the
//! loss) shows as the difference from the step's own forward and backward times.

use std::cell::RefCell;
use std::time::Instant;

use burn::prelude::*;

use super::error::TrainError;

/// How a recorded call is timed: forward and backward seconds for one run.
type Run = Box<dyn Fn(&Device) -> Result<(f64, f64), TrainError>>;

/// One layer call of the recorded forward pass.
pub struct Recorded {
    pub kind: &'static str,
    run: Run,
}

thread_local! {
    /// The calls of the forward pass being recorded on this thread; `None` when not
    /// recording, which is always outside `record`.
    static CALLS: RefCell<Option<Vec<Recorded>>> = const { RefCell::new(None) };
}

/// `f(layer, x)`, recorded as a call of `kind` when a recording is under way. The layer
/// is cloned (burn tensors are shared handles) only then.
pub fn op<M, const D: usize, const E: usize>(
    kind: &'static str,
    layer: &M,
    x: Tensor<D>,
    f: fn(&M, Tensor<D>) -> Tensor<E>,
) -> Tensor<E>
where
    M: Clone + 'static,
{
    CALLS.with_borrow_mut(|calls| {
        if let Some(calls) = calls {
            let layer = layer.clone();
            let shape = x.shape();
            calls.push(Recorded {
                kind,
                run: Box::new(move |device| time(device, shape.clone(), |x| f(&layer, x))),
            });
        }
    });
    f(layer, x)
}

/// The layer calls `forward` makes, in order.
pub fn record<T>(forward: impl FnOnce() -> T) -> (T, Vec<Recorded>) {
    CALLS.with_borrow_mut(|c| *c = Some(Vec::new()));
    let out = forward();
    let calls = CALLS.with_borrow_mut(Option::take).unwrap_or_default();
    (out, calls)
}

fn time<const D: usize, const E: usize>(
    device: &Device,
    shape: Shape,
    f: impl Fn(Tensor<D>) -> Tensor<E>,
) -> Result<(f64, f64), TrainError> {
    let sync = || super::device::sync(device, "bench --ops");
    let x = Tensor::<D>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), device)
        .require_grad();
    sync()?;
    let at = Instant::now();
    let y = f(x);
    sync()?;
    let forward = at.elapsed().as_secs_f64();
    let at = Instant::now();
    drop(y.sum().backward());
    sync()?;
    Ok((forward, at.elapsed().as_secs_f64()))
}

/// Milliseconds per step spent in one kind of operation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KindTime {
    pub kind: &'static str,
    /// Calls per forward pass.
    pub calls: usize,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

/// Runs every call `repeats` times after one untimed run (kernels compile, buffers are
/// allocated) and sums the mean times by kind, in order of first appearance.
pub fn by_kind(
    calls: &[Recorded],
    device: &Device,
    repeats: usize,
) -> Result<Vec<KindTime>, TrainError> {
    let mut kinds: Vec<KindTime> = Vec::new();
    for call in calls {
        (call.run)(device)?;
        let (mut forward, mut backward) = (0.0, 0.0);
        for _ in 0..repeats.max(1) {
            let (f, b) = (call.run)(device)?;
            forward += f;
            backward += b;
        }
        let n = repeats.max(1) as f64;
        let i = match kinds.iter().position(|k| k.kind == call.kind) {
            Some(i) => i,
            None => {
                kinds.push(KindTime {
                    kind: call.kind,
                    calls: 0,
                    forward_ms: 0.0,
                    backward_ms: 0.0,
                });
                kinds.len() - 1
            }
        };
        let k = &mut kinds[i];
        k.calls += 1;
        k.forward_ms += 1000.0 * forward / n;
        k.backward_ms += 1000.0 * backward / n;
    }
    Ok(kinds)
}

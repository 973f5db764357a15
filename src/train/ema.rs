//! An exponential moving average of the model's parameters, updated after every
//! optimizer step: `shadow = decay * shadow + (1 - decay) * param`. The shadow is a
//! validation copy of the model (no autodiff, dropout off), so it samples directly.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

use super::family::Net;

/// The averaged model.
#[derive(Clone, Debug)]
pub struct Ema<M = Net> {
    pub model: M,
    pub decay: f64,
}

/// Every trained parameter's current value, flattened, without autodiff. A frozen one
/// (the ADM's backbone) never moves, so its average is its value: skipping it saves the
/// blend of hundreds of millions of weights per step.
struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        // (Off autodiff nothing requires a gradient, and everything is averaged.)
        let v = p.val();
        if v.is_autodiff() && !v.is_require_grad() {
            return;
        }
        let v = v.without_autodiff();
        let n = v.shape().num_elements();
        self.0.insert(p.id, v.reshape([n]));
    }
}

/// Blends each shadow parameter with the collected value of the same id.
struct Blend {
    values: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(new) = self.values.remove(&p.id) else {
            return p;
        };
        let decay = self.decay;
        p.map(|shadow| {
            let dims = shadow.dims();
            shadow.mul_scalar(decay) + new.reshape(dims).mul_scalar(1.0 - decay)
        })
    }
}

impl<M: Module> Ema<M> {
    /// Starts the average at the model's current weights.
    pub fn new(model: &M, decay: f64) -> Ema<M> {
        Ema {
            model: model.valid(),
            decay,
        }
    }

    /// One update towards `model` (the model being trained; same parameter ids).
    pub fn update(&mut self, model: &M) {
        let mut c = Collect(HashMap::new());
        model.visit(&mut c);
        let mut blend = Blend {
            values: c.0,
            decay: self.decay,
        };
        self.model = self.model.clone().map(&mut blend);
    }
}

//! The UNet's parameters under the user's PyTorch `state_dict` names and shapes
//! (`../shared/seed/user-unet-state-dict.tsv`), and their noise-schedule buffers, so weights
//! cross between `diffusion-train` and their `DDPMModel` in both directions.
//!
//! One walk over the model, in their order, names every parameter; export and import both
//! go through it, so the two directions cannot disagree on a name. burn keeps a linear
//! layer's weight as `[in, out]` and PyTorch as `[out, in]`: those are transposed on the
//! way; convolutions, norms and embeddings have the same layout in both.

use std::collections::HashSet;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, GroupNorm, Linear};
use burn::prelude::*;

use super::{Attention, ResBlock, UNet};
use crate::train::schedule::NoiseSchedule;

/// One tensor under its PyTorch name: its PyTorch shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Where imported weights come from: a name's PyTorch shape, and its values once the
/// shape is known to fit (so nothing larger than the model is ever read).
pub trait Source {
    /// The shape stored under `name`, `None` when absent.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// The values under `name`, as f32, in row-major order.
    fn values(&self, name: &str) -> Result<Vec<f32>, String>;
    /// Every name the source holds (for refusing unexpected ones, as `strict=True` does).
    fn names(&self) -> Vec<String>;
}

/// Why weights could not be loaded into the configured model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateDictError {
    #[error("{0}: missing (the configured model has it; expected shape {1:?})")]
    Missing(String, Vec<usize>),
    #[error("{name}: expected shape {expected:?} for the configured model, found {found:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{0}: not a parameter of the configured model (their DDPMModel would refuse it too, with strict=True)")]
    Unexpected(String),
    #[error("{0}: {1}")]
    Read(String, String),
    #[error("{name}: the file's noise schedule is not the one model.diffusion gives (largest difference {difference:.2e} of the buffer's scale); set model.diffusion as the file was trained")]
    Schedule { name: String, difference: f64 },
}

/// The buffer names of the user's `DDPMModel`, in their order; present in their
/// `state_dict`, derived from `model.diffusion`, never learned.
pub const BUFFERS: [&str; 13] = [
    "betas",
    "alphas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
];

/// The schedule buffers, by their formulas (the `1 - alpha_bar` denominators and the logs
/// clamped at 1e-20 as theirs are), computed in f64 and rounded once to f32.
pub fn buffers(s: &NoiseSchedule) -> Vec<Named> {
    let n = s.len();
    let ab = &s.alphas_cumprod;
    let prev: Vec<f64> = (0..n)
        .map(|t| if t == 0 { 1.0 } else { ab[t - 1] })
        .collect();
    let denom = |t: usize| (1.0 - ab[t]).max(1e-20);
    let post_var = |t: usize| s.betas[t] * (1.0 - prev[t]) / denom(t);
    let column = |t: usize, name: &str| -> f64 {
        let (b, a) = (s.betas[t], 1.0 - s.betas[t]);
        match name {
            "betas" => b,
            "alphas" => a,
            "alphas_cumprod" => ab[t],
            "alphas_cumprod_prev" => prev[t],
            "sqrt_alphas_cumprod" => ab[t].sqrt(),
            "sqrt_one_minus_alphas_cumprod" => (1.0 - ab[t]).sqrt(),
            "log_one_minus_alphas_cumprod" => (1.0 - ab[t]).max(1e-20).ln(),
            "sqrt_recip_alphas_cumprod" => (1.0 / ab[t]).sqrt(),
            "sqrt_recipm1_alphas_cumprod" => (1.0 / ab[t] - 1.0).sqrt(),
            "posterior_variance" => post_var(t),
            "posterior_log_variance_clipped" => post_var(t).max(1e-20).ln(),
            "posterior_mean_coef1" => b * prev[t].sqrt() / denom(t),
            "posterior_mean_coef2" => (1.0 - prev[t]) * a.sqrt() / denom(t),
            _ => unreachable!("one of BUFFERS"),
        }
    };
    BUFFERS
        .iter()
        .map(|name| Named {
            name: (*name).to_owned(),
            shape: vec![n],
            values: (0..n).map(|t| column(t, name) as f32).collect(),
        })
        .collect()
}

/// What a walk does with each parameter: `transposed` marks a linear weight, whose
/// PyTorch shape is the reverse of burn's.
pub(crate) trait Visit {
    fn param<const D: usize>(
        &mut self,
        name: String,
        p: &mut Param<Tensor<D>>,
        transposed: bool,
    ) -> Result<(), StateDictError>;
}

pub(crate) type Walked = Result<(), StateDictError>;

/// A model whose parameters a walk visits under their PyTorch names, in their order:
/// export, strict import and the pretrained load all go through it.
pub(crate) trait Walk {
    fn walk<V: Visit>(&mut self, v: &mut V) -> Walked;
}

impl Walk for UNet {
    fn walk<V: Visit>(&mut self, v: &mut V) -> Walked {
        walk(self, v)
    }
}

/// A layer's `weight` and optional `bias`, the shape of linear and conv layers alike.
pub(crate) fn weight_bias<const D: usize>(
    v: &mut impl Visit,
    name: &str,
    weight: &mut Param<Tensor<D>>,
    bias: Option<&mut Param<Tensor<1>>>,
    transposed: bool,
) -> Walked {
    v.param(format!("{name}.weight"), weight, transposed)?;
    match bias {
        Some(b) => v.param(format!("{name}.bias"), b, false),
        None => Ok(()),
    }
}

pub(crate) fn linear(v: &mut impl Visit, name: &str, l: &mut Linear) -> Walked {
    weight_bias(v, name, &mut l.weight, l.bias.as_mut(), true)
}

pub(crate) fn conv(v: &mut impl Visit, name: &str, c: &mut Conv2d) -> Walked {
    weight_bias(v, name, &mut c.weight, c.bias.as_mut(), false)
}

pub(crate) fn norm(v: &mut impl Visit, name: &str, n: &mut GroupNorm) -> Walked {
    if let Some(g) = &mut n.gamma {
        v.param(format!("{name}.weight"), g, false)?;
    }
    match &mut n.beta {
        Some(b) => v.param(format!("{name}.bias"), b, false),
        None => Ok(()),
    }
}

pub(crate) fn embedding(v: &mut impl Visit, name: &str, e: &mut Embedding) -> Walked {
    v.param(format!("{name}.weight"), &mut e.weight, false)
}

fn res_block(v: &mut impl Visit, name: &str, r: &mut ResBlock) -> Walked {
    linear(v, &format!("{name}.time_mlp"), &mut r.time)?;
    if let Some(c) = &mut r.class {
        linear(v, &format!("{name}.class_mlp"), c)?;
    }
    conv(v, &format!("{name}.conv1"), &mut r.conv1)?;
    conv(v, &format!("{name}.conv2"), &mut r.conv2)?;
    norm(v, &format!("{name}.norm1"), &mut r.norm1)?;
    norm(v, &format!("{name}.norm2"), &mut r.norm2)?;
    match &mut r.skip {
        Some(s) => conv(v, &format!("{name}.residual_conv"), s),
        None => Ok(()),
    }
}

fn attention(v: &mut impl Visit, name: &str, a: &mut Attention) -> Walked {
    norm(v, &format!("{name}.norm"), &mut a.norm)?;
    conv(v, &format!("{name}.qkv"), &mut a.qkv)?;
    conv(v, &format!("{name}.proj"), &mut a.proj)
}

/// Every parameter in the order of the user's `state_dict`.
fn walk(u: &mut UNet, v: &mut impl Visit) -> Walked {
    linear(v, "model.time_mlp.1", &mut u.time_in)?;
    linear(v, "model.time_mlp.3", &mut u.time_out)?;
    if let Some(e) = &mut u.class_emb {
        embedding(v, "model.class_emb", e)?;
    }
    conv(v, "model.conv_in", &mut u.conv_in)?;
    for (i, stage) in u.downs.iter_mut().enumerate() {
        for (j, r) in stage.res.iter_mut().enumerate() {
            res_block(v, &format!("model.downs.{i}.resblocks.{j}"), r)?;
        }
        if let Some(a) = &mut stage.attn {
            attention(v, &format!("model.downs.{i}.attention"), a)?;
        }
        if let Some(c) = &mut stage.resample {
            conv(v, &format!("model.downs.{i}.downsample_conv"), c)?;
        }
    }
    res_block(v, "model.mid.0", &mut u.mid1)?;
    attention(v, "model.mid.1", &mut u.mid_attn)?;
    res_block(v, "model.mid.2", &mut u.mid2)?;
    for (i, stage) in u.ups.iter_mut().enumerate() {
        for (j, r) in stage.res.iter_mut().enumerate() {
            res_block(v, &format!("model.ups.{i}.resblocks.{j}"), r)?;
        }
        if let Some(a) = &mut stage.attn {
            attention(v, &format!("model.ups.{i}.attention"), a)?;
        }
        if let Some(c) = &mut stage.resample {
            conv(v, &format!("model.ups.{i}.upsample_conv.1"), c)?;
        }
    }
    norm(v, "model.conv_out.0", &mut u.out_norm)?;
    conv(v, "model.conv_out.2", &mut u.out_conv)
}

pub(crate) fn torch_shape(dims: &[usize], transposed: bool) -> Vec<usize> {
    let mut s = dims.to_vec();
    if transposed {
        s.reverse();
    }
    s
}

struct Export<'a> {
    out: Vec<Named>,
    /// Only these names (all when `None`).
    only: Option<&'a HashSet<String>>,
}

impl Visit for Export<'_> {
    fn param<const D: usize>(&mut self, name: String, p: &mut Param<Tensor<D>>, t: bool) -> Walked {
        if self.only.is_some_and(|o| !o.contains(&name)) {
            return Ok(());
        }
        let mut value = p.val().without_autodiff();
        if t {
            value = value.transpose();
        }
        let shape = value.dims().to_vec();
        let values = value
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("converted to f32");
        self.out.push(Named {
            name,
            shape,
            values,
        });
        Ok(())
    }
}

/// The model's parameters under the user's names and shapes, in their order.
pub fn state_dict(model: &UNet) -> Vec<Named> {
    export(model)
}

/// A model's parameters under its PyTorch names and shapes, in their order.
pub(crate) fn export<M: Walk + Clone>(model: &M) -> Vec<Named> {
    export_some(model, None)
}

/// [`export`] of the named parameters only (the others are not read).
pub(crate) fn export_some<M: Walk + Clone>(
    model: &M,
    only: Option<&HashSet<String>>,
) -> Vec<Named> {
    let mut e = Export {
        out: Vec::new(),
        only,
    };
    model.clone().walk(&mut e).expect("exporting cannot fail");
    e.out
}

/// Replaces `p` by `values` (in PyTorch's `shape`, row-major), keeping whether it takes
/// gradients.
pub(crate) fn set_param<const D: usize>(
    p: &mut Param<Tensor<D>>,
    values: Vec<f32>,
    shape: Vec<usize>,
    transposed: bool,
) {
    *p = p.clone().map(|old| {
        let device = old.device();
        let torch = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
        let value = if transposed { torch.transpose() } else { torch };
        value.set_require_grad(old.is_require_grad())
    });
}

struct Import<'a> {
    source: &'a dyn Source,
    seen: HashSet<String>,
    /// A name the source lacks keeps its value (an EMA's shadow of the trained tensors
    /// only) instead of being refused.
    partial: bool,
}

impl Visit for Import<'_> {
    fn param<const D: usize>(&mut self, name: String, p: &mut Param<Tensor<D>>, t: bool) -> Walked {
        let expected = torch_shape(&p.val().dims(), t);
        let found = match self.source.shape(&name) {
            Some(found) => found,
            None if self.partial => return Ok(()),
            None => return Err(StateDictError::Missing(name.clone(), expected.clone())),
        };
        if found != expected {
            return Err(StateDictError::Shape {
                name,
                expected,
                found,
            });
        }
        let values = self
            .source
            .values(&name)
            .map_err(|e| StateDictError::Read(name.clone(), e))?;
        if values.len() != expected.iter().product::<usize>() {
            return Err(StateDictError::Read(
                name,
                format!("{} values for shape {expected:?}", values.len()),
            ));
        }
        set_param(p, values, expected, t);
        self.seen.insert(name);
        Ok(())
    }
}

/// `model` with every parameter replaced by the source's tensor of the same name. As
/// PyTorch's `load_state_dict(strict=True)`: every parameter must be there with its exact
/// shape, and a name the model lacks is refused; the schedule buffers are accepted and
/// not read (they follow from `model.diffusion`).
pub fn load_state_dict(model: UNet, source: &dyn Source) -> Result<UNet, StateDictError> {
    import(model, source, &BUFFERS)
}

/// `model` with every parameter replaced by the source's tensor of the same name, as
/// `load_state_dict(strict=True)`; names in `ignored` may be in the source and are not read.
pub(crate) fn import<M: Walk>(
    model: M,
    source: &dyn Source,
    ignored: &[&str],
) -> Result<M, StateDictError> {
    import_some(model, source, ignored, false).map(|(m, _)| m)
}

/// [`import`] where the source may lack some of the model's names (they keep their
/// values); a name the model lacks is still refused. Returns how many were read.
pub(crate) fn import_present<M: Walk>(
    model: M,
    source: &dyn Source,
) -> Result<(M, usize), StateDictError> {
    import_some(model, source, &[], true)
}

fn import_some<M: Walk>(
    model: M,
    source: &dyn Source,
    ignored: &[&str],
    partial: bool,
) -> Result<(M, usize), StateDictError> {
    let mut model = model;
    let mut import = Import {
        source,
        seen: HashSet::new(),
        partial,
    };
    model.walk(&mut import)?;
    let mut extra: Vec<String> = source
        .names()
        .into_iter()
        .filter(|n| !import.seen.contains(n) && !ignored.contains(&n.as_str()))
        .collect();
    extra.sort();
    match extra.into_iter().next() {
        Some(n) => Err(StateDictError::Unexpected(n)),
        None => Ok((model, import.seen.len())),
    }
}

/// Refuses a file whose schedule buffers, when it has them, are not `expected` (the
/// config's): their `strict=True` load refuses another length, and other values mean
/// the weights were trained for another noise schedule. Values are compared at a
/// tolerance of float32 rounding (theirs are computed in float32, ours in f64).
pub fn check_buffers(source: &dyn Source, expected: &[Named]) -> Result<(), StateDictError> {
    for b in expected {
        let Some(found) = source.shape(&b.name) else {
            continue;
        };
        if found != b.shape {
            return Err(StateDictError::Shape {
                name: b.name.clone(),
                expected: b.shape.clone(),
                found,
            });
        }
        let values = source
            .values(&b.name)
            .map_err(|e| StateDictError::Read(b.name.clone(), e))?;
        let scale = b
            .values
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()))
            .max(f32::MIN_POSITIVE);
        let difference = values
            .iter()
            .zip(&b.values)
            .map(|(a, e)| {
                if a.is_nan() {
                    f32::INFINITY
                } else {
                    (a - e).abs() / scale
                }
            })
            .fold(0f32, f32::max) as f64;
        if difference > 1e-3 {
            return Err(StateDictError::Schedule {
                name: b.name.clone(),
                difference,
            });
        }
    }
    Ok(())
}

/// A [`Source`] over tensors already in memory (tests, and the composition of the two
/// directions).
impl Source for Vec<Named> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.iter()
            .find(|n| n.name == name)
            .map(|n| n.shape.clone())
    }
    fn values(&self, name: &str) -> Result<Vec<f32>, String> {
        self.iter()
            .find(|n| n.name == name)
            .map(|n| n.values.clone())
            .ok_or_else(|| "absent".to_owned())
    }
    fn names(&self) -> Vec<String> {
        self.iter().map(|n| n.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests;

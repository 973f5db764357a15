//! The ADM's parameters under guided-diffusion's names: OpenAI's checkpoint loaded by
//! name (their guard: at least half of the backbone matched, every matched shape exact;
//! the label head is the user's own), the user's `AdmDdpmModel` names (`unet.` before
//! them) for export, and which tensors train (`freeze_backbone`, `trainable_layers`).

use std::collections::HashSet;

use burn::module::Param;
use burn::nn::conv::Conv1d;
use burn::prelude::*;

use super::{AdmUNet, Attention, Block, ResBlock};
use crate::train::unet::state_dict::{
    conv, embedding, export, export_some, import, import_present, linear, norm, set_param,
    torch_shape, weight_bias, Named, Source, StateDictError, Visit, Walk, Walked,
};

/// The label embedding: re-initialised for the user's classes, never loaded from OpenAI's
/// 1000 ImageNet rows.
pub const LABEL_HEAD: &str = "label_emb.weight";

/// The prefix of the user's `AdmDdpmModel` (`self.unet`), which export writes.
pub const EXPORT_PREFIX: &str = "unet.";

/// What `freeze_backbone: true` trains: the label head and the output head.
pub const HEADS: [&str; 2] = ["label_emb*", "out.*"];

fn conv1d(v: &mut impl Visit, name: &str, c: &mut Conv1d) -> Walked {
    weight_bias(v, name, &mut c.weight, c.bias.as_mut(), false)
}

fn res_block(v: &mut impl Visit, name: &str, r: &mut ResBlock) -> Walked {
    norm(v, &format!("{name}.in_layers.0"), &mut r.in_norm)?;
    conv(v, &format!("{name}.in_layers.2"), &mut r.in_conv)?;
    linear(v, &format!("{name}.emb_layers.1"), &mut r.emb)?;
    norm(v, &format!("{name}.out_layers.0"), &mut r.out_norm)?;
    conv(v, &format!("{name}.out_layers.3"), &mut r.out_conv)?;
    match &mut r.skip {
        Some(s) => conv(v, &format!("{name}.skip_connection"), s),
        None => Ok(()),
    }
}

fn attention(v: &mut impl Visit, name: &str, a: &mut Attention) -> Walked {
    norm(v, &format!("{name}.norm"), &mut a.norm)?;
    conv1d(v, &format!("{name}.qkv"), &mut a.qkv)?;
    conv1d(v, &format!("{name}.proj_out"), &mut a.proj_out)
}

/// A `TimestepEmbedSequential`: its layers numbered in order, counting the present ones.
fn block(v: &mut impl Visit, name: &str, b: &mut Block) -> Walked {
    let mut at = 0;
    let mut next = || {
        at += 1;
        format!("{name}.{}", at - 1)
    };
    if let Some(c) = &mut b.conv {
        conv(v, &next(), c)?;
    }
    if let Some(r) = &mut b.res {
        res_block(v, &next(), r)?;
    }
    if let Some(a) = &mut b.attn {
        attention(v, &next(), a)?;
    }
    match &mut b.res2 {
        Some(r) => res_block(v, &next(), r),
        None => Ok(()),
    }
}

impl Walk for AdmUNet {
    /// In the order of their `state_dict`.
    fn walk<V: Visit>(&mut self, v: &mut V) -> Walked {
        linear(v, "time_embed.0", &mut self.time_in)?;
        linear(v, "time_embed.2", &mut self.time_out)?;
        if let Some(e) = &mut self.label_emb {
            embedding(v, "label_emb", e)?;
        }
        for (i, b) in self.input_blocks.iter_mut().enumerate() {
            block(v, &format!("input_blocks.{i}"), b)?;
        }
        block(v, "middle_block", &mut self.middle)?;
        for (i, b) in self.output_blocks.iter_mut().enumerate() {
            block(v, &format!("output_blocks.{i}"), b)?;
        }
        norm(v, "out.0", &mut self.out_norm)?;
        conv(v, "out.2", &mut self.out_conv)
    }
}

/// Every parameter under guided-diffusion's name and PyTorch shape, in their order.
pub fn state_dict(model: &AdmUNet) -> Vec<Named> {
    export(model)
}

/// The same under the user's `AdmDdpmModel` names (`unet.` first), which their
/// generation and sample-selection code loads with `strict=True`.
pub fn for_user(model: &AdmUNet) -> Vec<Named> {
    let mut tensors = state_dict(model);
    for t in &mut tensors {
        t.name.insert_str(0, EXPORT_PREFIX);
    }
    tensors
}

/// `model` with every parameter from `source` under guided-diffusion's names, strictly
/// (as `load_state_dict(strict=True)`): our own weights, or a reference's.
pub fn load_state_dict(model: AdmUNet, source: &dyn Source) -> Result<AdmUNet, StateDictError> {
    import(model, source, &[])
}

/// `model` with the tensors `source` has (an EMA's shadow: their EMA keeps the trained
/// tensors only); the others keep their values. Returns how many were read.
pub fn load_present(
    model: AdmUNet,
    source: &dyn Source,
) -> Result<(AdmUNet, usize), StateDictError> {
    import_present(model, source)
}

/// A [`Source`] under the user's `AdmDdpmModel` names (`unet.` before guided-diffusion's),
/// seen by guided-diffusion's names. A name without the prefix stays as it is, so a strict
/// load refuses it.
pub struct Prefixed<'a>(pub &'a dyn Source);

impl Source for Prefixed<'_> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.0.shape(&format!("{EXPORT_PREFIX}{name}"))
    }
    fn values(&self, name: &str) -> Result<Vec<f32>, String> {
        self.0.values(&format!("{EXPORT_PREFIX}{name}"))
    }
    fn names(&self) -> Vec<String> {
        self.0
            .names()
            .into_iter()
            .map(|n| match n.strip_prefix(EXPORT_PREFIX) {
                Some(rest) => rest.to_owned(),
                None => n,
            })
            .collect()
    }
}

/// The names of the tensors that take gradients (all of a model off autodiff take none).
pub fn trained_names(model: &AdmUNet) -> HashSet<String> {
    struct Trained(HashSet<String>);
    impl Visit for Trained {
        fn param<const D: usize>(
            &mut self,
            n: String,
            p: &mut Param<Tensor<D>>,
            _: bool,
        ) -> Walked {
            if p.val().is_require_grad() {
                self.0.insert(n);
            }
            Ok(())
        }
    }
    let mut t = Trained(HashSet::new());
    model.clone().walk(&mut t).expect("naming cannot fail");
    t.0
}

/// The named tensors of `model` only, under guided-diffusion's names.
pub fn subset(model: &AdmUNet, names: &HashSet<String>) -> Vec<Named> {
    export_some(model, Some(names))
}

/// The parameter names, in order.
pub fn names(model: &AdmUNet) -> Vec<String> {
    let mut n = Names(Vec::new());
    model.clone().walk(&mut n).expect("naming cannot fail");
    n.0
}

struct Names(Vec<String>);

impl Visit for Names {
    fn param<const D: usize>(&mut self, name: String, _: &mut Param<Tensor<D>>, _: bool) -> Walked {
        self.0.push(name);
        Ok(())
    }
}

/// Why OpenAI's checkpoint (or a file given as one) was not loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PretrainedError {
    #[error(transparent)]
    Tensor(#[from] StateDictError),
    #[error("only {matched} of the model's {total} backbone tensors are in the file{hint}; expected OpenAI's ImageNet-64 ADM state dict (guided-diffusion's names, a plain dict saved by torch.save)")]
    TooFew {
        matched: usize,
        total: usize,
        hint: String,
    },
}

/// What a pretrained load did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub matched: usize,
    /// Backbone tensors the file lacks: they keep their fresh initialisation.
    pub missing: Vec<String>,
    /// Names in the file the model does not have (ignored, as their `strict=False`).
    pub unexpected: usize,
}

struct Pretrained<'a> {
    source: &'a dyn Source,
    seen: HashSet<String>,
    missing: Vec<String>,
}

impl Visit for Pretrained<'_> {
    fn param<const D: usize>(&mut self, name: String, p: &mut Param<Tensor<D>>, t: bool) -> Walked {
        if name == LABEL_HEAD {
            return Ok(());
        }
        let expected = torch_shape(&p.val().dims(), t);
        let Some(found) = self.source.shape(&name) else {
            self.missing.push(name);
            return Ok(());
        };
        if found != expected {
            // PyTorch's load_state_dict refuses a shape mismatch even with strict=False.
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
        // A damaged download would otherwise train to NaN without a word.
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(StateDictError::Read(
                name,
                format!("holds {v}: expected finite weights"),
            ));
        }
        set_param(p, values, expected, t);
        self.seen.insert(name);
        Ok(())
    }
}

/// `model` with its backbone from `source` (OpenAI's names, no prefix); the label head
/// keeps its fresh rows for the user's classes. Refused when fewer than half of the
/// backbone's tensors are in the file, or one of them has another shape.
pub fn load_pretrained(
    model: AdmUNet,
    source: &dyn Source,
) -> Result<(AdmUNet, Loaded), PretrainedError> {
    let mut model = model;
    let mut v = Pretrained {
        source,
        seen: HashSet::new(),
        missing: Vec::new(),
    };
    model.walk(&mut v)?;
    let matched = v.seen.len();
    let total = matched + v.missing.len();
    let names = source.names();
    if matched * 2 < total {
        return Err(PretrainedError::TooFew {
            matched,
            total,
            hint: wrapped_hint(&names),
        });
    }
    let unexpected = names
        .iter()
        .filter(|n| !v.seen.contains(*n) && n.as_str() != LABEL_HEAD)
        .count();
    Ok((
        model,
        Loaded {
            matched,
            missing: v.missing,
            unexpected,
        },
    ))
}

/// Says so when the file's names all share a first component (`model_state_dict.`,
/// `module.`, `unet.`): a checkpoint that wraps the state dict rather than is it.
fn wrapped_hint(names: &[String]) -> String {
    let first = |n: &String| n.split('.').next().unwrap_or_default().to_owned();
    let mut prefixes: Vec<String> = names.iter().map(first).collect();
    prefixes.sort();
    prefixes.dedup();
    match prefixes.as_slice() {
        [p] if names.len() > 1 => format!(" (every name in it starts with {p:?}: a wrapped dict)"),
        _ => String::new(),
    }
}

/// Why `model.initialization.trainable_layers` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{pattern:?} is not a valid fnmatch pattern: {reason}")]
    Invalid { pattern: String, reason: String },
    #[error("{0:?} match no parameter of the model (names like \"input_blocks.0.0.weight\", \"out.2.bias\")")]
    NoMatch(Vec<String>),
}

/// The parameter names that train: those matching any of `patterns` (fnmatch, as their
/// `set_trainable_layers`: `*` crosses dots, case-sensitive). A list matching nothing is
/// an error, not a model that trains nothing.
pub fn trainable(names: &[String], patterns: &[String]) -> Result<HashSet<String>, PatternError> {
    let compiled = patterns
        .iter()
        .map(|p| {
            // fnmatch reads `**` as `*`; glob would take it for a path component.
            let mut single = p.clone();
            while single.contains("**") {
                single = single.replace("**", "*");
            }
            glob::Pattern::new(&single).map_err(|e| PatternError::Invalid {
                pattern: p.clone(),
                reason: e.msg.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let chosen: HashSet<String> = names
        .iter()
        .filter(|n| compiled.iter().any(|p| p.matches(n)))
        .cloned()
        .collect();
    if chosen.is_empty() {
        return Err(PatternError::NoMatch(patterns.to_vec()));
    }
    Ok(chosen)
}

struct Freeze<'a>(&'a HashSet<String>);

impl Visit for Freeze<'_> {
    fn param<const D: usize>(&mut self, name: String, p: &mut Param<Tensor<D>>, _: bool) -> Walked {
        let train = self.0.contains(&name);
        *p = p.clone().set_require_grad(train);
        Ok(())
    }
}

/// `model` with only the `train` tensors taking gradients: the others get none, so the
/// optimizer keeps no state for them and never moves them.
pub fn freeze(model: AdmUNet, train: &HashSet<String>) -> AdmUNet {
    let mut model = model;
    model
        .walk(&mut Freeze(train))
        .expect("freezing cannot fail");
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::adm::AdmFlags;

    fn tiny(label_rows: usize, channels: usize) -> AdmUNet {
        let f = AdmFlags {
            model_channels: channels,
            ..AdmFlags::tiny()
        };
        AdmUNet::new(&f, Some(label_rows), &Device::flex())
    }

    #[test]
    fn names_are_guided_diffusions_in_their_order() {
        let n = names(&tiny(5, 32));
        assert_eq!(
            &n[..8],
            [
                "time_embed.0.weight",
                "time_embed.0.bias",
                "time_embed.2.weight",
                "time_embed.2.bias",
                "label_emb.weight",
                "input_blocks.0.0.weight",
                "input_blocks.0.0.bias",
                "input_blocks.1.0.in_layers.0.weight",
            ]
        );
        for expected in [
            "input_blocks.1.0.emb_layers.1.weight",
            "input_blocks.1.0.out_layers.3.bias",
            "input_blocks.3.0.skip_connection.weight",
            "input_blocks.3.1.qkv.weight",
            "input_blocks.3.1.proj_out.bias",
            "middle_block.1.norm.weight",
            "middle_block.2.out_layers.0.bias",
            "output_blocks.1.2.in_layers.2.weight",
        ] {
            assert!(n.iter().any(|x| x == expected), "{expected} missing");
        }
        assert!(!n.iter().any(|x| x.starts_with("input_blocks.1.1")));
        assert_eq!(&n[n.len() - 2..], ["out.2.weight", "out.2.bias"]);
    }

    #[test]
    fn a_wrapped_dict_is_refused_and_named() {
        let mut wrapped = state_dict(&tiny(5, 32));
        for t in &mut wrapped {
            t.name.insert_str(0, "model_state_dict.");
        }
        let e = load_pretrained(tiny(3, 32), &wrapped).err().unwrap();
        let total = names(&tiny(3, 32)).len() - 1;
        assert_eq!(
            e.to_string(),
            format!("only 0 of the model's {total} backbone tensors are in the file (every name in it starts with \"model_state_dict\": a wrapped dict); expected OpenAI's ImageNet-64 ADM state dict (guided-diffusion's names, a plain dict saved by torch.save)")
        );
    }

    #[test]
    fn another_shape_is_refused_at_its_first_tensor() {
        let other = state_dict(&tiny(5, 64));
        let e = load_pretrained(tiny(3, 32), &other).err().unwrap();
        assert_eq!(
            e.to_string(),
            "time_embed.0.weight: expected shape [128, 32] for the configured model, found [256, 64]"
        );
    }

    #[test]
    fn at_least_half_of_the_backbone_must_be_there() {
        let all = state_dict(&tiny(5, 32));
        let backbone = all.len() - 1;
        let keep = |n: usize| -> Vec<Named> { all.iter().take(n).cloned().collect() };
        // The label head is among the first five and does not count.
        let half = backbone.div_ceil(2) + 1;
        let (_, loaded) = load_pretrained(tiny(3, 32), &keep(half)).unwrap();
        assert_eq!(loaded.matched, half - 1);
        assert_eq!(loaded.missing.len(), backbone - (half - 1));
        let e = load_pretrained(tiny(3, 32), &keep(half - 1)).err().unwrap();
        assert!(
            e.to_string().starts_with(&format!(
                "only {} of the model's {backbone} backbone",
                half - 2
            )),
            "{e}"
        );
    }

    #[test]
    fn patterns_are_fnmatch_and_must_match() {
        let n = names(&tiny(3, 32));
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mid = trainable(&n, &p(&["middle_block.**"])).unwrap();
        assert_eq!(
            mid.len(),
            n.iter().filter(|x| x.starts_with("middle_block.")).count()
        );
        let one = trainable(&n, &p(&["out.?.bias", "nothing"])).unwrap();
        assert_eq!(
            one,
            HashSet::from(["out.0.bias".to_owned(), "out.2.bias".to_owned()])
        );
        assert_eq!(
            trainable(&n, &p(&["Out.*", "decoder.*"])).unwrap_err().to_string(),
            "[\"Out.*\", \"decoder.*\"] match no parameter of the model (names like \"input_blocks.0.0.weight\", \"out.2.bias\")"
        );
        assert!(matches!(
            trainable(&n, &p(&["out[.*"])).unwrap_err(),
            PatternError::Invalid { .. }
        ));
    }
}

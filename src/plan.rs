//! The balance plan: a pure function of (train labels, class names, config, seed).
//!
//! Over 500 lines on purpose: the one pure function every manifest comes from, with the
//! formulas of the three strategies and synthetic augmentation side by side.
//!
//! Counts follow the user's formulas in IEEE f64 with truncation, so for two classes they
//! are exactly their minority/majority rules (and imbalanced-learn's):
//!
//! - downsampling: `target = min(trunc(n_min / r), n_c)` for every class `c`;
//! - upsampling: `target = trunc(n_max * r)`; a class below it gets `target - n_c` extra
//!   duplicates drawn uniformly with replacement from itself; originals are always kept.
//!
//! Selection algorithms (each class has its own stream, see [`crate::rng`]):
//!
//! - downsampling keeps `t` of a class's `n` source indices (ascending source order `a`) by
//!   a partial Fisher-Yates shuffle: `for i in 0..t { j = i + below(n - i); swap(a[i], a[j]) }`,
//!   keeping `a[0..t]`;
//! - upsampling draws each extra as `a[below(n)]`.
//!
//! The result is always in canonical order: ascending source index, duplicates adjacent.

use crate::config::synthetic::SyntheticAugmentation;
use crate::config::{Balancing, ClassWeightsConfig, DataStrategy, WeightedSamplerConfig};
use crate::rng::{Purpose, Stream};
use crate::synthetic::{Composition, SyntheticError};
use crate::weights::{self, WeightError, WeightMethod};

/// Why no plan can be made for this split and config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "class {class:?} (label {label}) has no training samples; {what} needs every class's count"
    )]
    EmptyClass {
        class: String,
        label: usize,
        what: String,
    },
    #[error("data.balancing.{section}: class weights{message}")]
    Weights {
        section: &'static str,
        message: String,
    },
    #[error("data.balancing.{section}.manual_weights has {found} values but the split has {expected} classes")]
    ManualLength {
        section: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("data.balancing.weighted_sampler.num_samples is {num_samples} but replacement is false and the train split has only {train} samples")]
    TooManySamples { num_samples: u64, train: usize },
    #[error("the train split has {0} entries; balance-split handles at most 4,294,967,295")]
    TooLarge(usize),
    #[error("model.conditioning.num_classes is {config} but the split's metadata.classes has {split} classes")]
    NumClassesMismatch { config: u64, split: usize },
    #[error(transparent)]
    Synthetic(#[from] SyntheticError),
    #[error("data.synthetic_augmentation cannot be combined with data.balancing.{0} (enabled); the user's trainer refuses both together")]
    SyntheticWithStrategy(&'static str),
}

/// What was applied to the training data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    None,
    Data(DataStrategy),
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Data(s) => s.name(),
        }
    }
}

/// Which source train entries make up the balanced train list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The source list unchanged (no strategy, or the weighted sampler).
    All,
    /// `copies[i]`: how many times source entry `i` appears (0: dropped). Read in order,
    /// this is the canonical order: ascending source index, duplicates adjacent. One
    /// counter per source entry is also 4 bytes instead of 8 per output entry.
    Copies(Vec<u32>),
}

impl Selection {
    /// The source index of every balanced train entry, in canonical order.
    pub fn source_indices(&self, train_len: usize) -> Vec<usize> {
        match self {
            Selection::All => (0..train_len).collect(),
            Selection::Copies(c) => c
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| std::iter::repeat_n(i, n as usize))
                .collect(),
        }
    }
}

/// Parameters of the weighted sampler, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerPlan {
    pub class_weights: Vec<f64>,
    pub replacement: bool,
    pub num_samples: u64,
    /// Expected number of draws per class in one epoch.
    pub expected_counts: Vec<f64>,
}

/// The class-weighted loss, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct LossPlan {
    pub class_weights: Vec<f64>,
    pub method: WeightMethod,
    pub normalize: bool,
}

/// Everything balancing decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub strategy: Strategy,
    /// Enabled data strategies that lost on priority.
    pub overridden: Vec<DataStrategy>,
    /// Human-readable warnings, also recorded in the manifest.
    pub warnings: Vec<String>,
    pub counts_before: Vec<u64>,
    /// Counts of the balanced train list; for the weighted sampler, the expected counts of
    /// one epoch rounded to integers that sum to `num_samples` (largest remainder).
    pub counts_after: Vec<u64>,
    pub selection: Selection,
    pub sampler: Option<SamplerPlan>,
    pub loss: Option<LossPlan>,
    /// The synthetic part that follows the real entries (never with a data strategy).
    pub synthetic: Option<SyntheticPlan>,
}

/// Synthetic augmentation as applied: the section and the composed lists.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticPlan {
    pub config: SyntheticAugmentation,
    pub composition: Composition,
}

/// The synthetic side of a plan's inputs.
pub struct SyntheticInput<'a> {
    pub config: &'a SyntheticAugmentation,
    /// Labels of the selection file's `train` entries, each below the class count.
    pub labels: &'a [u32],
}

/// The inputs of a plan.
pub struct PlanInput<'a> {
    /// Train labels in source order, each below `classes.len()`.
    pub labels: &'a [u32],
    /// Class names by label.
    pub classes: &'a [String],
    /// `None`: the config has no `data.balancing`.
    pub balancing: Option<&'a Balancing>,
    pub seed: u64,
    /// `model.conditioning.num_classes`, if the config sets it.
    pub num_classes: Option<u64>,
    /// An enabled `data.synthetic_augmentation` and its selection file's labels.
    pub synthetic: Option<SyntheticInput<'a>>,
}

/// Computes the plan.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let k = input.classes.len();
    if u32::try_from(input.labels.len()).is_err() {
        return Err(PlanError::TooLarge(input.labels.len()));
    }
    let counts = class_counts(input.labels, k);
    let default = Balancing::default();
    let bal = input.balancing.unwrap_or(&default);
    let enabled = bal.enabled_strategies();
    let mut warnings = Vec::new();
    let weights_needed = bal.weighted_sampler.enabled || bal.class_weights.enabled;
    if let (Some(n), true) = (input.num_classes, weights_needed) {
        if n != k as u64 {
            return Err(PlanError::NumClassesMismatch {
                config: n,
                split: k,
            });
        }
    }
    if enabled.len() > 1 {
        let names: Vec<_> = enabled.iter().map(|s| s.name()).collect();
        warnings.push(format!(
            "data.balancing enables {}; using {} (priority weighted_sampler > downsampling > upsampling)",
            names.join(" and "),
            names[0]
        ));
    }
    let synthetic = match &input.synthetic {
        None => None,
        Some(_) if !enabled.is_empty() => {
            return Err(PlanError::SyntheticWithStrategy(enabled[0].name()))
        }
        Some(s) => Some(synthetic_plan(input, s, &mut warnings)?),
    };
    let mut chosen = enabled.first().copied();
    let overridden = enabled.iter().skip(1).copied().collect();
    if let (Some(s), 1) = (chosen, k) {
        warnings.push(format!(
            "the split declares a single class ({:?}); {} has nothing to balance and is skipped",
            input.classes[0],
            s.name()
        ));
        chosen = None;
    }
    let (selection, counts_after, sampler) =
        select(input, bal, chosen, synthetic.as_ref(), &counts)?;
    let loss = if bal.class_weights.enabled {
        // From the source distribution, as the user's design says; with synthetic
        // augmentation the source of training is the composed list.
        let source = if synthetic.is_some() {
            &counts_after
        } else {
            &counts
        };
        Some(loss_plan(&bal.class_weights, source, input.classes)?)
    } else {
        None
    };
    Ok(Plan {
        strategy: chosen.map_or(Strategy::None, Strategy::Data),
        overridden,
        warnings,
        counts_before: counts,
        counts_after,
        selection,
        sampler,
        loss,
        synthetic,
    })
}

/// Which entries the manifest keeps (and how often), the counts after, and the weighted
/// sampler when it is the strategy: the chosen data strategy's, or synthetic
/// augmentation's composition when none is.
fn select(
    input: &PlanInput,
    bal: &Balancing,
    chosen: Option<DataStrategy>,
    synthetic: Option<&SyntheticPlan>,
    counts: &[u64],
) -> Result<(Selection, Vec<u64>, Option<SamplerPlan>), PlanError> {
    let k = input.classes.len();
    let empty_class = |what: String| {
        counts
            .iter()
            .position(|&n| n == 0)
            .map(|label| PlanError::EmptyClass {
                class: input.classes[label].clone(),
                label,
                what,
            })
    };
    Ok(match (chosen, synthetic) {
        (None, Some(s)) => {
            let c = &s.composition;
            let after = (0..k)
                .map(|l| c.real[l] - c.removed[l] + c.synthetic[l])
                .collect();
            let selection = if c.real_copies.contains(&0) {
                Selection::Copies(c.real_copies.clone())
            } else {
                Selection::All
            };
            (selection, after, None)
        }
        (None, None) => (Selection::All, counts.to_vec(), None),
        (Some(s @ (DataStrategy::Downsampling | DataStrategy::Upsampling)), _) => {
            if let Some(e) = empty_class(s.name().into()) {
                return Err(e);
            }
            let (sel, after) = if s == DataStrategy::Downsampling {
                downsample(
                    input.labels,
                    counts,
                    bal.downsampling.target_ratio,
                    input.seed,
                )
            } else {
                upsample(
                    input.labels,
                    counts,
                    bal.upsampling.target_ratio,
                    input.seed,
                )
            };
            (Selection::Copies(sel), after, None)
        }
        (Some(DataStrategy::WeightedSampler), _) => {
            let (after, sampler) = sampler_plan(&bal.weighted_sampler, counts, input)?;
            (Selection::All, after, Some(sampler))
        }
    })
}

/// Synthetic augmentation's composition of the training list, its warnings added to the
/// plan's.
fn synthetic_plan(
    input: &PlanInput,
    s: &SyntheticInput,
    warnings: &mut Vec<String>,
) -> Result<SyntheticPlan, PlanError> {
    let k = input.classes.len();
    let composition = crate::synthetic::compose(input.labels, s.labels, k, s.config, input.seed)?;
    warnings.extend(composition.warnings.iter().cloned());
    Ok(SyntheticPlan {
        config: s.config.clone(),
        composition,
    })
}

/// The weighted sampler's class weights and expected epoch, and the per-class counts it
/// draws (apportioned from the expectation).
fn sampler_plan(
    ws: &WeightedSamplerConfig,
    counts: &[u64],
    input: &PlanInput,
) -> Result<(Vec<u64>, SamplerPlan), PlanError> {
    let class_weights =
        weights::class_weights(counts, ws.method, ws.beta, ws.manual_weights.as_deref())
            .map_err(|e| weight_error(e, "weighted_sampler", input.classes))?;
    weights::check(&class_weights, Some(counts)).map_err(|message| PlanError::Weights {
        section: "weighted_sampler",
        message,
    })?;
    let n = input.labels.len();
    let num_samples = ws.num_samples.unwrap_or(n as u64);
    if !ws.replacement && num_samples > n as u64 {
        return Err(PlanError::TooManySamples {
            num_samples,
            train: n,
        });
    }
    let expected_counts =
        expected_epoch_counts(counts, &class_weights, num_samples, ws.replacement);
    let after = apportion(&expected_counts, num_samples);
    Ok((
        after,
        SamplerPlan {
            class_weights,
            replacement: ws.replacement,
            num_samples,
            expected_counts,
        },
    ))
}

/// The loss's class weights from `source` counts, normalised when the config says so.
fn loss_plan(
    cw: &ClassWeightsConfig,
    source: &[u64],
    classes: &[String],
) -> Result<LossPlan, PlanError> {
    let raw = weights::class_weights(source, cw.method, cw.beta, cw.manual_weights.as_deref())
        .map_err(|e| weight_error(e, "class_weights", classes))?;
    weights::check(&raw, None).map_err(|message| PlanError::Weights {
        section: "class_weights",
        message,
    })?;
    Ok(LossPlan {
        class_weights: if cw.normalize {
            weights::normalize(&raw, classes.len())
        } else {
            raw
        },
        method: cw.method,
        normalize: cw.normalize,
    })
}

fn weight_error(e: WeightError, section: &'static str, classes: &[String]) -> PlanError {
    match e {
        WeightError::EmptyClass { label, method } => PlanError::EmptyClass {
            class: classes[label].clone(),
            label,
            what: format!("data.balancing.{section}.method {method}"),
        },
        WeightError::ManualLength { expected, found } => PlanError::ManualLength {
            section,
            expected,
            found,
        },
    }
}

/// Samples per class label.
pub fn class_counts(labels: &[u32], num_classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; num_classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

/// Source indices of class `label`, ascending. `u32` halves the memory the random swaps
/// of downsampling touch; [`plan`] refuses train lists that do not fit.
fn indices_of(labels: &[u32], label: usize, count: u64) -> Vec<u32> {
    let mut idx = Vec::with_capacity(count as usize);
    idx.extend(
        labels
            .iter()
            .enumerate()
            .filter_map(|(i, &l)| (l as usize == label).then_some(i as u32)),
    );
    idx
}

/// Per-class targets of downsampling: `min(trunc(n_min / r), n_c)`.
///
/// ```
/// // The user's two-class rule: the majority is cut to int(minority / ratio).
/// assert_eq!(balance_split::plan::downsampling_targets(&[180, 20], 0.5), vec![40, 20]);
/// ```
pub fn downsampling_targets(counts: &[u64], target_ratio: f64) -> Vec<u64> {
    let n_min = counts.iter().copied().min().unwrap_or(0);
    let cap = (n_min as f64 / target_ratio) as u64;
    counts.iter().map(|&n| n.min(cap)).collect()
}

/// Per-class targets of upsampling: `max(n_c, trunc(n_max * r))`.
///
/// ```
/// // The minority grows to int(majority * ratio); classes above that are left alone.
/// assert_eq!(balance_split::plan::upsampling_targets(&[180, 20, 150], 0.5), vec![180, 90, 150]);
/// ```
pub fn upsampling_targets(counts: &[u64], target_ratio: f64) -> Vec<u64> {
    let n_max = counts.iter().copied().max().unwrap_or(0);
    let target = (n_max as f64 * target_ratio) as u64;
    counts.iter().map(|&n| n.max(target)).collect()
}

fn downsample(
    labels: &[u32],
    counts: &[u64],
    target_ratio: f64,
    seed: u64,
) -> (Vec<u32>, Vec<u64>) {
    let targets = downsampling_targets(counts, target_ratio);
    let mut copies = vec![1u32; labels.len()];
    for (label, (&n, &t)) in counts.iter().zip(&targets).enumerate() {
        if t == n {
            continue;
        }
        let mut idx = indices_of(labels, label, n);
        let mut s = Stream::new(seed, Purpose::Downsampling, &[label as u64]);
        let n = idx.len();
        for i in 0..t as usize {
            let j = i + s.below((n - i) as u64) as usize;
            idx.swap(i, j);
        }
        for &dropped in &idx[t as usize..] {
            copies[dropped as usize] = 0;
        }
    }
    (copies, targets)
}

fn upsample(labels: &[u32], counts: &[u64], target_ratio: f64, seed: u64) -> (Vec<u32>, Vec<u64>) {
    let targets = upsampling_targets(counts, target_ratio);
    let mut copies = vec![1u32; labels.len()];
    for (label, (&n, &t)) in counts.iter().zip(&targets).enumerate() {
        if t == n {
            continue;
        }
        // Count draws per position within the class first: a class-sized counter array
        // stays in cache where random increments into the full train array would not.
        let mut extra = vec![0u32; n as usize];
        let mut s = Stream::new(seed, Purpose::Upsampling, &[label as u64]);
        for _ in 0..t - n {
            extra[s.below(n) as usize] += 1;
        }
        for (i, e) in indices_of(labels, label, n).into_iter().zip(extra) {
            copies[i as usize] += e;
        }
    }
    (copies, targets)
}

/// Expected draws per class in one epoch of `m` draws, per-sample weight = class weight.
///
/// With replacement this is exact: `m * n_c w_c / sum_k n_k w_k`. Without replacement
/// (successive weighted draws, torch.multinomial semantics) there is no closed form; we
/// use the large-population limit in which each item survives `m` draws with probability
/// `exp(-w_c t)`: solve `sum_c n_c (1 - exp(-w_c t)) = m` for `t` by bisection, then
/// `E_c = n_c (1 - exp(-w_c t))`. It is exact when `m` equals the train size or all
/// weights are equal, and within a fraction of a sample of simulation otherwise.
pub fn expected_epoch_counts(
    counts: &[u64],
    class_weights: &[f64],
    m: u64,
    replacement: bool,
) -> Vec<f64> {
    let mass: f64 = counts
        .iter()
        .zip(class_weights)
        .map(|(&n, &w)| n as f64 * w)
        .sum();
    let total: u64 = counts.iter().sum();
    if replacement || m == 0 || mass == 0.0 {
        return counts
            .iter()
            .zip(class_weights)
            .map(|(&n, &w)| {
                if mass == 0.0 {
                    0.0
                } else {
                    m as f64 * (n as f64 * w) / mass
                }
            })
            .collect();
    }
    if m >= total {
        return counts.iter().map(|&n| n as f64).collect();
    }
    let drawn = |t: f64| -> f64 {
        counts
            .iter()
            .zip(class_weights)
            .map(|(&n, &w)| n as f64 * -(-w * t).exp_m1())
            .sum()
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while drawn(hi) < m as f64 && hi < 1e300 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if drawn(mid) < m as f64 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    counts
        .iter()
        .zip(class_weights)
        .map(|(&n, &w)| n as f64 * -(-w * t).exp_m1())
        .collect()
}

/// Rounds expected counts to integers that sum to `total`: floors, then one more to the
/// largest remainders (ties to the lower label).
pub fn apportion(expected: &[f64], total: u64) -> Vec<u64> {
    let mut out: Vec<u64> = expected.iter().map(|&e| e.floor() as u64).collect();
    let assigned: u64 = out.iter().sum();
    let mut order: Vec<usize> = (0..expected.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = expected[a] - expected[a].floor();
        let rb = expected[b] - expected[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().take(total.saturating_sub(assigned) as usize) {
        out[i] += 1;
    }
    out
}

#[cfg(test)]
mod tests;

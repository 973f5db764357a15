//! The training list with synthetic augmentation, composed exactly as the user's loaders
//! compose it (`create_augmented_train_loader` and `create_synthetic_augmentation_dataset`
//! in their `src/utils/data/loaders.py`); pure: labels in, positions out.
//!
//! 1. The real part: every real training entry, in order; in `replace_minority` mode
//!    without those of `replace_class` (an error when none has that label, or all do).
//! 2. The synthetic candidates: the selection file's `train` entries, in order; in
//!    `replace_minority` mode only those of `replace_class` (an error when there are none).
//! 3. The limit, over the candidates: `max_samples` keeps the first N (the file is ranked
//!    best first, so doses nest); `max_ratio` keeps `N = int(real_part_size * ratio)`
//!    (f64 product, truncated) drawn with CPython's `random.Random(seed).sample(range(len),
//!    N)`, in the order drawn. `N <= 0` keeps none (a warning); `N >= len` keeps all.
//! 4. The list: the real part, then the kept synthetic entries.

use crate::config::synthetic::{Limit, SyntheticAugmentation};
use crate::rng::pyrandom::PyRandom;

/// Why the lists cannot be composed: their loader's run-time errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyntheticError {
    #[error("data.synthetic_augmentation.replace_class is {replace_class} but no real training entry has that label; the labels present are {present:?}")]
    NoRealEntry {
        replace_class: u64,
        present: Vec<u32>,
    },
    #[error("data.synthetic_augmentation.replace_class {replace_class} would remove every real training entry; at least one other real class is needed")]
    RemovesEverything { replace_class: u64 },
    #[error("data.synthetic_augmentation.replace_class is {replace_class} but the selection file has no entry of that label, so nothing would replace the removed real entries; its labels are {present:?}")]
    NoSyntheticEntry {
        replace_class: u64,
        present: Vec<u32>,
    },
}

/// The composed list, as positions in the two source lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Composition {
    /// Per real training entry: 1 when it stays, 0 when its class is replaced (the
    /// manifest's canonical `Copies` form).
    pub real_copies: Vec<u32>,
    /// The kept synthetic entries, as positions in the selection file's `train`, in the
    /// order they follow the real part.
    pub selection_index: Vec<usize>,
    /// Per class: real entries, real entries removed, synthetic entries kept.
    pub real: Vec<u64>,
    pub removed: Vec<u64>,
    pub synthetic: Vec<u64>,
    pub warnings: Vec<String>,
}

/// Composes the training list. `real` and `selection` are the labels of the real and
/// the selection file's training entries (each below `num_classes`); `seed` is the run's.
/// One function over 80 lines on purpose: its four steps are the module documentation's
/// (and their loader's) in order, each checked against the reference where it stands.
pub fn compose(
    real: &[u32],
    selection: &[u32],
    num_classes: usize,
    config: &SyntheticAugmentation,
    seed: u64,
) -> Result<Composition, SyntheticError> {
    let mut warnings = Vec::new();
    if config.ignored_replace_class {
        warnings.push(
            "data.synthetic_augmentation.replace_class is set but mode is augment, which keeps every real entry; it is ignored, as the user's trainer ignores it".into(),
        );
    }
    let replace = config.replace_class();
    let present = |labels: &[u32]| -> Vec<u32> {
        let mut seen: Vec<u32> = labels.to_vec();
        seen.sort_unstable();
        seen.dedup();
        seen
    };
    let real_copies: Vec<u32> = real
        .iter()
        .map(|&l| u32::from(Some(u64::from(l)) != replace))
        .collect();
    let kept_real = real_copies.iter().filter(|&&c| c == 1).count();
    if let Some(replace_class) = replace {
        if kept_real == real.len() {
            return Err(SyntheticError::NoRealEntry {
                replace_class,
                present: present(real),
            });
        }
        if kept_real == 0 {
            return Err(SyntheticError::RemovesEverything { replace_class });
        }
    }
    let candidates: Vec<usize> = (0..selection.len())
        .filter(|&i| replace.is_none_or(|r| u64::from(selection[i]) == r))
        .collect();
    if let (Some(replace_class), true) = (replace, candidates.is_empty()) {
        return Err(SyntheticError::NoSyntheticEntry {
            replace_class,
            present: present(selection),
        });
    }
    let n = candidates.len() as u64;
    let wanted = match config.limit {
        Limit::None => None,
        Limit::MaxSamples(m) => Some(m),
        // Python's `int(real_size * ratio)`: the f64 product, truncated toward zero. A
        // product past 2^64 saturates, which is past any list's length anyway.
        Limit::MaxRatio(r) => Some((kept_real as f64 * r) as u64),
    };
    let selection_index: Vec<usize> = match wanted {
        None => candidates,
        Some(0) => {
            warnings.push(format!(
                "data.synthetic_augmentation.limit resolves to 0 synthetic entries ({} of {kept_real} real entries); none is added",
                match config.limit {
                    Limit::MaxRatio(r) => format!("max_ratio {}", crate::text::number(r)),
                    _ => "max_samples 0".into(),
                }
            ));
            Vec::new()
        }
        Some(k) if k >= n => candidates,
        Some(k) => match config.limit {
            Limit::MaxSamples(_) => candidates[..k as usize].to_vec(),
            _ => PyRandom::new(i128::from(seed))
                .sample(n, k)
                .into_iter()
                .map(|i| candidates[i as usize])
                .collect(),
        },
    };
    let count = |labels: &mut dyn Iterator<Item = u32>| {
        let mut c = vec![0u64; num_classes];
        for l in labels {
            c[l as usize] += 1;
        }
        c
    };
    Ok(Composition {
        real: count(&mut real.iter().copied()),
        removed: count(
            &mut real
                .iter()
                .zip(&real_copies)
                .filter(|(_, &c)| c == 0)
                .map(|(&l, _)| l),
        ),
        synthetic: count(&mut selection_index.iter().map(|&i| selection[i])),
        real_copies,
        selection_index,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::synthetic::SyntheticMode;

    fn config(mode: SyntheticMode, limit: Limit) -> SyntheticAugmentation {
        SyntheticAugmentation {
            split_file: "sel.json".into(),
            mode,
            limit,
            ignored_replace_class: false,
        }
    }

    const REAL: [u32; 8] = [0, 1, 0, 0, 1, 0, 0, 0];
    const SELECTION: [u32; 6] = [1, 1, 0, 1, 1, 1];

    #[test]
    fn augment_keeps_every_real_entry_then_the_selection() {
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(SyntheticMode::Augment, Limit::None),
            0,
        )
        .unwrap();
        assert_eq!(c.real_copies, [1; 8]);
        assert_eq!(c.selection_index, [0, 1, 2, 3, 4, 5]);
        assert_eq!(
            (c.real, c.removed, c.synthetic),
            (vec![6, 2], vec![0, 0], vec![1, 5])
        );
    }

    #[test]
    fn replace_minority_drops_the_class_and_filters_before_the_limit() {
        let replace = SyntheticMode::ReplaceMinority { replace_class: 1 };
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(replace, Limit::MaxSamples(3)),
            0,
        )
        .unwrap();
        assert_eq!(c.real_copies, [1, 0, 1, 1, 0, 1, 1, 1]);
        // The first three entries of class 1: positions 0, 1 and 3 (2 is class 0).
        assert_eq!(c.selection_index, [0, 1, 3]);
        assert_eq!(
            (c.real, c.removed, c.synthetic),
            (vec![6, 2], vec![0, 2], vec![0, 3])
        );
    }

    /// `int(6 * 0.5) = 3` of the 5 candidates, drawn as `random.Random(42).sample(range(5),
    /// 3)` draws them in CPython 3.11: `[0, 4, 2]`, i.e. selection positions 0, 5, 3.
    #[test]
    fn max_ratio_draws_with_cpythons_sample() {
        let replace = SyntheticMode::ReplaceMinority { replace_class: 1 };
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(replace, Limit::MaxRatio(0.5)),
            42,
        )
        .unwrap();
        assert_eq!(PyRandom::new(42).sample(5, 3), [0, 4, 2]);
        assert_eq!(c.selection_index, [0, 5, 3]);
    }

    #[test]
    fn a_limit_of_zero_warns_and_a_large_one_keeps_all() {
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(SyntheticMode::Augment, Limit::MaxRatio(0.1)),
            0,
        )
        .unwrap();
        assert!(c.selection_index.is_empty());
        assert_eq!(
            c.warnings,
            ["data.synthetic_augmentation.limit resolves to 0 synthetic entries (max_ratio 0.1 of 8 real entries); none is added"]
        );
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(SyntheticMode::Augment, Limit::MaxRatio(1e300)),
            0,
        )
        .unwrap();
        assert_eq!(c.selection_index.len(), 6);
        let c = compose(
            &REAL,
            &SELECTION,
            2,
            &config(SyntheticMode::Augment, Limit::MaxSamples(6)),
            0,
        )
        .unwrap();
        assert_eq!(c.selection_index.len(), 6);
    }

    #[test]
    fn their_run_time_errors() {
        let mode = |c| SyntheticMode::ReplaceMinority { replace_class: c };
        assert_eq!(
            compose(&REAL, &SELECTION, 3, &config(mode(2), Limit::None), 0).unwrap_err().to_string(),
            "data.synthetic_augmentation.replace_class is 2 but no real training entry has that label; the labels present are [0, 1]"
        );
        assert_eq!(
            compose(&[1, 1], &SELECTION, 2, &config(mode(1), Limit::None), 0).unwrap_err().to_string(),
            "data.synthetic_augmentation.replace_class 1 would remove every real training entry; at least one other real class is needed"
        );
        assert_eq!(
            compose(&REAL, &[0, 0], 2, &config(mode(1), Limit::None), 0).unwrap_err().to_string(),
            "data.synthetic_augmentation.replace_class is 1 but the selection file has no entry of that label, so nothing would replace the removed real entries; its labels are [0]"
        );
    }
}

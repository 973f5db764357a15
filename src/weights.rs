//! Class weights: pure functions of per-class training counts.
//!
//! Shared by the weighted sampler (sampling probability per class) and the class-weighted
//! loss. The arithmetic follows the user's Python (`compute_weights_from_config`) operation
//! for operation in IEEE f64, so both give the same bits.

use serde::{Deserialize, Serialize};

/// How class weights are computed from the training distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMethod {
    /// `w_c = N / n_c`, N the number of training samples.
    InverseFrequency,
    /// `w_c = (1 - beta) / (1 - beta^n_c)` (Cui et al., "Class-Balanced Loss Based on
    /// Effective Number of Samples", CVPR 2019): saturates for large classes, so it
    /// reweights less aggressively than inverse frequency.
    EffectiveNum,
    /// The user's list, one weight per class in label order.
    Manual,
}

impl WeightMethod {
    /// The config spelling, for messages.
    pub fn name(self) -> &'static str {
        match self {
            WeightMethod::InverseFrequency => "inverse_frequency",
            WeightMethod::EffectiveNum => "effective_num",
            WeightMethod::Manual => "manual",
        }
    }

    /// Whether the method reads class counts (and so fails on an empty class).
    pub fn needs_counts(self) -> bool {
        !matches!(self, WeightMethod::Manual)
    }
}

/// Why weights could not be computed. Labels are class indices; the caller names them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    #[error("class {label} has no training samples, so its {method} weight is undefined")]
    EmptyClass { label: usize, method: &'static str },
    #[error("manual_weights has {found} values but there are {expected} classes")]
    ManualLength { expected: usize, found: usize },
}

/// Computes one weight per class from `counts[label]`.
///
/// `manual` is only read for [`WeightMethod::Manual`]; its values were validated as positive
/// and finite when the config was read.
///
/// ```
/// use balance_split::weights::{class_weights, normalize, WeightMethod};
/// // 180 normal, 20 abnormal: the minority weighs 9 times more.
/// let w = class_weights(&[180, 20], WeightMethod::InverseFrequency, 0.999, None).unwrap();
/// assert_eq!(normalize(&w, 2), vec![0.2, 1.8]);
/// ```
pub fn class_weights(
    counts: &[u64],
    method: WeightMethod,
    beta: f64,
    manual: Option<&[f64]>,
) -> Result<Vec<f64>, WeightError> {
    if method == WeightMethod::Manual {
        let manual = manual.unwrap_or(&[]);
        if manual.len() != counts.len() {
            return Err(WeightError::ManualLength {
                expected: counts.len(),
                found: manual.len(),
            });
        }
        return Ok(manual.to_vec());
    }
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .enumerate()
        .map(|(label, &n)| {
            if n == 0 {
                return Err(WeightError::EmptyClass {
                    label,
                    method: method.name(),
                });
            }
            Ok(match method {
                WeightMethod::InverseFrequency => total as f64 / n as f64,
                WeightMethod::EffectiveNum => (1.0 - beta) / (1.0 - beta.powf(n as f64)),
                WeightMethod::Manual => unreachable!("handled above"),
            })
        })
        .collect()
}

/// Refuses weights that the sampler or the loss cannot use, with a message to follow the
/// field's name (`[1]: expected ...` for the first bad value, `: the weights sum to ...`): each weight must be positive and finite, and so must their sum
/// and, given the class counts, the sum of class masses `n_c * w_c` (two weights of 1e308
/// are each finite, but their sum is infinite, which makes every probability 0 or NaN and
/// every normalised weight 0).
pub fn check(weights: &[f64], counts: Option<&[u64]>) -> Result<(), String> {
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(format!(
            "[{i}]: expected a positive finite number, found {}",
            crate::text::number(weights[i])
        ));
    }
    let sum: f64 = weights.iter().sum();
    if !sum.is_finite() {
        return Err(format!(
            ": the weights sum to {}; expected a finite sum",
            crate::text::number(sum)
        ));
    }
    if let Some(counts) = counts {
        let mass: f64 = counts
            .iter()
            .zip(weights)
            .map(|(&n, &w)| n as f64 * w)
            .sum();
        if !mass.is_finite() {
            return Err(format!(
                ": count times weight summed over the classes is {}; expected a finite number",
                crate::text::number(mass)
            ));
        }
    }
    Ok(())
}

/// Scales weights so they sum to `num_classes`, as `x / sum * num_classes` (the Python
/// order of operations, so results agree bit for bit).
pub fn normalize(weights: &[f64], num_classes: usize) -> Vec<f64> {
    let sum: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|w| w / sum * num_classes as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_frequency_is_total_over_count() {
        let w = class_weights(&[180, 20], WeightMethod::InverseFrequency, 0.999, None).unwrap();
        assert_eq!(w, vec![200.0 / 180.0, 10.0]);
    }

    #[test]
    fn effective_num_matches_hand_computed_values() {
        // beta = 0.9: E_1 = 1, so w = 1; E_2 = 1 + 0.9 = 1.9, so w = 0.1 / 0.19 = 1/1.9.
        let w = class_weights(&[1, 2], WeightMethod::EffectiveNum, 0.9, None).unwrap();
        assert!((w[0] - 1.0).abs() < 1e-15, "{w:?}");
        assert!((w[1] - 1.0 / 1.9).abs() < 1e-15, "{w:?}");
        // beta = 0.999, n = 180: (0.001) / (1 - 0.999^180); values from Python: (1-b)/(1-b**n)
        let w = class_weights(&[180, 20], WeightMethod::EffectiveNum, 0.999, None).unwrap();
        assert!((w[0] - 0.006_067_776_713_681_892).abs() < 1e-9, "{w:?}");
        assert!((w[1] - 0.050_476_663_320_677_08).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn effective_num_approaches_inverse_frequency_shape_as_beta_grows() {
        let w = class_weights(&[1000, 10], WeightMethod::EffectiveNum, 0.999_999, None).unwrap();
        let ratio = w[1] / w[0];
        assert!((ratio - 100.0).abs() < 0.1, "{ratio}");
    }

    #[test]
    fn manual_is_taken_as_given_and_must_match_class_count() {
        let w = class_weights(&[5, 0], WeightMethod::Manual, 0.9, Some(&[1.0, 5.0])).unwrap();
        assert_eq!(w, vec![1.0, 5.0]);
        let err = class_weights(&[5, 5, 5], WeightMethod::Manual, 0.9, Some(&[1.0])).unwrap_err();
        assert_eq!(
            err,
            WeightError::ManualLength {
                expected: 3,
                found: 1
            }
        );
    }

    #[test]
    fn empty_class_is_an_error_for_count_based_methods() {
        for method in [WeightMethod::InverseFrequency, WeightMethod::EffectiveNum] {
            let err = class_weights(&[3, 0, 2], method, 0.9, None).unwrap_err();
            assert_eq!(
                err,
                WeightError::EmptyClass {
                    label: 1,
                    method: method.name()
                }
            );
        }
    }

    #[test]
    fn normalize_sums_to_num_classes() {
        let w = normalize(&[200.0 / 180.0, 10.0], 2);
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        assert_eq!(w[0], (200.0 / 180.0) / (200.0 / 180.0 + 10.0) * 2.0);
        let w = normalize(&[1.0, 2.0, 3.0, 4.0], 4);
        assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        assert_eq!(w, vec![0.4, 0.8, 1.2, 1.6]); // the values Python prints
    }
}

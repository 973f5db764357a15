use super::Strategy;
use super::*;
use crate::config::{ClassWeightsConfig, ResampleConfig, WeightedSamplerConfig};
use pretty_assertions::assert_eq;
use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest, ProptestConfig};

fn names(k: usize) -> Vec<String> {
    (0..k).map(|i| format!("c{i}")).collect()
}

/// Labels with `counts[c]` samples of class c, interleaved round-robin so classes mix.
fn labels_for(counts: &[u64]) -> Vec<u32> {
    let mut left = counts.to_vec();
    let mut out = Vec::new();
    while left.iter().any(|&n| n > 0) {
        for (c, n) in left.iter_mut().enumerate() {
            if *n > 0 {
                *n -= 1;
                out.push(c as u32);
            }
        }
    }
    out
}

fn run(labels: &[u32], k: usize, b: &Balancing, seed: u64) -> Result<Plan, PlanError> {
    plan(&PlanInput {
        labels,
        classes: &names(k),
        balancing: Some(b),
        seed,
        num_classes: None,
        synthetic: None,
    })
}

fn down(r: f64) -> Balancing {
    Balancing {
        downsampling: ResampleConfig {
            enabled: true,
            target_ratio: r,
        },
        ..Balancing::default()
    }
}

fn up(r: f64) -> Balancing {
    Balancing {
        upsampling: ResampleConfig {
            enabled: true,
            target_ratio: r,
        },
        ..Balancing::default()
    }
}

fn weighted(replacement: bool, num_samples: Option<u64>) -> Balancing {
    Balancing {
        weighted_sampler: WeightedSamplerConfig {
            enabled: true,
            replacement,
            num_samples,
            ..WeightedSamplerConfig::default()
        },
        ..Balancing::default()
    }
}

fn indices(p: &Plan) -> Vec<usize> {
    match &p.selection {
        Selection::Copies(c) => p.selection.source_indices(c.len()),
        Selection::All => panic!("expected a selection"),
    }
}

#[test]
fn two_class_targets_match_the_users_formulas() {
    // minority 20, majority 180: downsampling keeps int(20 / r) of the majority.
    assert_eq!(downsampling_targets(&[180, 20], 1.0), vec![20, 20]);
    assert_eq!(downsampling_targets(&[180, 20], 0.5), vec![40, 20]);
    assert_eq!(downsampling_targets(&[180, 20], 0.3), vec![66, 20]); // int(66.66..)
    assert_eq!(downsampling_targets(&[180, 20], 0.1), vec![180, 20]); // min(200, 180)
                                                                      // upsampling: the minority grows to int(180 * r).
    assert_eq!(upsampling_targets(&[180, 20], 1.0), vec![180, 180]);
    assert_eq!(upsampling_targets(&[180, 20], 0.5), vec![180, 90]);
    assert_eq!(upsampling_targets(&[180, 20], 0.1), vec![180, 20]); // int(18.0) < 20: no extras
                                                                    // f64 truncation exactly as Python's int(): 0.7 * 10 = 7.000000000000001 -> 7, 0.29 * 100 = 28.999999999999996 -> 28.
    assert_eq!(upsampling_targets(&[10, 1], 0.7), vec![10, 7]);
    assert_eq!(upsampling_targets(&[100, 1], 0.29), vec![100, 28]);
}

#[test]
fn k_class_targets() {
    assert_eq!(downsampling_targets(&[50, 10, 30], 0.5), vec![20, 10, 20]);
    assert_eq!(upsampling_targets(&[50, 10, 30], 0.8), vec![50, 40, 40]);
}

#[test]
fn downsampling_golden_indices() {
    let labels = labels_for(&[6, 2]); // 0 1 0 1 0 0 0 0
    let p = run(&labels, 2, &down(1.0), 0).unwrap();
    assert_eq!(p.strategy, Strategy::Data(DataStrategy::Downsampling));
    assert_eq!(p.counts_before, vec![6, 2]);
    assert_eq!(p.counts_after, vec![2, 2]);
    assert_eq!(indices(&p), GOLDEN_DOWN);
}

#[test]
fn upsampling_golden_indices() {
    let labels = labels_for(&[6, 2]);
    let p = run(&labels, 2, &up(1.0), 0).unwrap();
    assert_eq!(p.counts_after, vec![6, 6]);
    assert_eq!(indices(&p), GOLDEN_UP);
}

// Pinned, and reproduced independently by examples/python/rng_reference.py.
const GOLDEN_DOWN: [usize; 4] = [0, 1, 2, 3];
const GOLDEN_UP: [usize; 12] = [0, 1, 1, 1, 1, 2, 3, 3, 4, 5, 6, 7];

#[test]
fn classes_use_independent_streams() {
    // Adding samples to class 1 must not change which class-0 samples survive.
    let a = labels_for(&[50, 10, 10]);
    let mut b = a.clone();
    b.extend([2u32; 5]);
    let keep0 = |l: &[u32]| -> Vec<usize> {
        let p = run(l, 3, &down(1.0), 9).unwrap();
        indices(&p).iter().copied().filter(|&i| l[i] == 0).collect()
    };
    assert_eq!(keep0(&a), keep0(&b));
}

#[test]
fn priority_picks_the_weighted_sampler_and_warns() {
    let mut b = weighted(true, None);
    b.downsampling.enabled = true;
    b.upsampling.enabled = true;
    let p = run(&labels_for(&[9, 3]), 2, &b, 0).unwrap();
    assert_eq!(p.strategy, Strategy::Data(DataStrategy::WeightedSampler));
    assert_eq!(
        p.overridden,
        vec![DataStrategy::Downsampling, DataStrategy::Upsampling]
    );
    assert_eq!(
        p.warnings,
        vec!["data.balancing enables weighted_sampler and downsampling and upsampling; using weighted_sampler (priority weighted_sampler > downsampling > upsampling)"]
    );
    assert_eq!(p.selection, Selection::All);
}

#[test]
fn weighted_sampler_with_replacement_expects_balanced_epochs() {
    let p = run(&labels_for(&[180, 20]), 2, &weighted(true, None), 0).unwrap();
    let s = p.sampler.unwrap();
    assert_eq!(s.class_weights, vec![200.0 / 180.0, 10.0]);
    assert_eq!(s.num_samples, 200);
    assert_eq!(s.expected_counts, vec![100.0, 100.0]);
    assert_eq!(p.counts_after, vec![100, 100]);
}

#[test]
fn weighted_sampler_without_replacement() {
    let p = run(&labels_for(&[180, 20]), 2, &weighted(false, None), 0).unwrap();
    // All 200 drawn once.
    assert_eq!(p.sampler.unwrap().expected_counts, vec![180.0, 20.0]);
    let err = run(&labels_for(&[180, 20]), 2, &weighted(false, Some(201)), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "data.balancing.weighted_sampler.num_samples is 201 but replacement is false and the train split has only 200 samples"
    );
    // Fewer draws: 20,000 simulated epochs of 40 successive draws give 14.87 minority samples.
    let p = run(&labels_for(&[180, 20]), 2, &weighted(false, Some(40)), 0).unwrap();
    let e = p.sampler.unwrap().expected_counts;
    assert!((e[0] + e[1] - 40.0).abs() < 1e-9, "{e:?}");
    assert!((e[1] - 14.87).abs() < 0.1, "{e:?}");
}

#[test]
fn expected_counts_without_replacement_match_simulation() {
    // Successive weighted draws without replacement, simulated many times.
    let counts = [30u64, 10];
    let w = [1.0, 4.0];
    let m = 12;
    let e = expected_epoch_counts(&counts, &w, m, false);
    let mut s = Stream::new(1, Purpose::Upsampling, &[99]);
    let trials = 20_000;
    let mut got = [0u64; 2];
    for _ in 0..trials {
        let mut left = counts;
        for _ in 0..m {
            let mass = left[0] as f64 * w[0] + left[1] as f64 * w[1];
            let u = (s.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * mass;
            let c = if u < left[0] as f64 * w[0] { 0 } else { 1 };
            left[c] -= 1;
            got[c] += 1;
        }
    }
    let sim1 = got[1] as f64 / trials as f64;
    assert!(
        (e[1] - sim1).abs() < 0.35,
        "approximation {e:?} vs simulated {sim1}"
    );
}

#[test]
fn apportion_sums_to_total() {
    assert_eq!(apportion(&[33.4, 33.3, 33.3], 100), vec![34, 33, 33]);
    assert_eq!(apportion(&[0.5, 0.5], 1), vec![1, 0]);
    assert_eq!(apportion(&[2.0, 3.0], 5), vec![2, 3]);
}

#[test]
fn loss_weights_come_from_the_source_distribution() {
    let b = Balancing {
        class_weights: ClassWeightsConfig {
            enabled: true,
            ..ClassWeightsConfig::default()
        },
        ..down(1.0)
    };
    let p = run(&labels_for(&[180, 20]), 2, &b, 0).unwrap();
    let loss = p.loss.unwrap();
    // inverse frequency of 180:20, normalized to sum to 2 (not of the downsampled 20:20).
    assert_eq!(loss.class_weights, vec![0.2, 1.8]);
    assert!(loss.normalize);
}

#[test]
fn empty_class_is_an_error_naming_it() {
    let labels = [0u32, 0, 2];
    for b in [down(1.0), up(1.0), weighted(true, None)] {
        let err = run(&labels, 3, &b, 0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("class \"c1\" (label 1) has no training samples; "),
            "{err}"
        );
    }
    // Manual sampler weights do not need counts.
    let mut b = weighted(true, None);
    b.weighted_sampler.method = WeightMethod::Manual;
    b.weighted_sampler.manual_weights = Some(vec![1.0, 2.0, 3.0]);
    let p = run(&labels, 3, &b, 0).unwrap();
    assert_eq!(p.counts_after, vec![1, 0, 2]);
}

#[test]
fn manual_weights_length_must_match_the_classes() {
    let mut b = weighted(true, None);
    b.weighted_sampler.method = WeightMethod::Manual;
    b.weighted_sampler.manual_weights = Some(vec![1.0]);
    let err = run(&labels_for(&[3, 3]), 2, &b, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "data.balancing.weighted_sampler.manual_weights has 1 values but the split has 2 classes"
    );
}

#[test]
fn num_classes_must_agree_when_weights_are_used() {
    let b = weighted(true, None);
    let err = plan(&PlanInput {
        labels: &[0, 1],
        classes: &names(2),
        balancing: Some(&b),
        seed: 0,
        num_classes: Some(3),
        synthetic: None,
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "model.conditioning.num_classes is 3 but the split's metadata.classes has 2 classes"
    );
}

#[test]
fn a_single_class_makes_data_strategies_a_no_op() {
    let p = run(&[0, 0, 0], 1, &down(1.0), 0).unwrap();
    assert_eq!(p.strategy, Strategy::None);
    assert_eq!(p.selection, Selection::All);
    assert_eq!(
        p.warnings,
        vec!["the split declares a single class (\"c0\"); downsampling has nothing to balance and is skipped"]
    );
}

#[test]
fn no_balancing_section_is_the_identity() {
    let p = plan(&PlanInput {
        labels: &[0, 1, 1],
        classes: &names(2),
        balancing: None,
        seed: 0,
        num_classes: None,
        synthetic: None,
    })
    .unwrap();
    assert_eq!(p.strategy, Strategy::None);
    assert_eq!(p.counts_after, vec![1, 2]);
    assert_eq!(p.loss, None);
}

fn count_by_class(labels: &[u32], idx: &[usize], k: usize) -> Vec<u64> {
    let mut c = vec![0u64; k];
    for &i in idx {
        c[labels[i] as usize] += 1;
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn downsampling_invariants(counts in prop::collection::vec(1u64..60, 2..5), r in 0.05f64..=1.0, seed: u64) {
        let labels = labels_for(&counts);
        let p = run(&labels, counts.len(), &down(r), seed).unwrap();
        let idx = indices(&p);
        let targets = downsampling_targets(&counts, r);
        // strictly ascending: a subset of the source without repeats, in canonical order
        prop_assert!(idx.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(idx.iter().all(|&i| i < labels.len()));
        let got = count_by_class(&labels, &idx, counts.len());
        prop_assert_eq!(&got, &targets);
        prop_assert_eq!(&p.counts_after, &targets);
        let cap = (*counts.iter().min().unwrap() as f64 / r) as u64;
        for (c, &n) in counts.iter().enumerate() {
            // at or under the target: every sample kept; above: exactly the target
            prop_assert_eq!(got[c], if n <= cap { n } else { cap });
        }
    }

    #[test]
    fn upsampling_invariants(counts in prop::collection::vec(1u64..60, 2..5), r in 0.05f64..=1.0, seed: u64) {
        let labels = labels_for(&counts);
        let p = run(&labels, counts.len(), &up(r), seed).unwrap();
        let idx = indices(&p);
        let targets = upsampling_targets(&counts, r);
        // ascending with duplicates adjacent, every original present
        prop_assert!(idx.windows(2).all(|w| w[0] <= w[1]));
        let mut distinct = idx.clone();
        distinct.dedup();
        prop_assert_eq!(distinct, (0..labels.len()).collect::<Vec<_>>());
        let got = count_by_class(&labels, &idx, counts.len());
        prop_assert_eq!(&got, &targets);
        let target = (*counts.iter().max().unwrap() as f64 * r) as u64;
        for (c, &n) in counts.iter().enumerate() {
            // extras only for classes below the target
            prop_assert_eq!(got[c] - n, target.saturating_sub(n));
        }
    }

    #[test]
    fn plans_are_deterministic(counts in prop::collection::vec(1u64..40, 2..4), seed: u64) {
        let labels = labels_for(&counts);
        prop_assert_eq!(run(&labels, counts.len(), &up(1.0), seed), run(&labels, counts.len(), &up(1.0), seed));
        prop_assert_eq!(run(&labels, counts.len(), &down(1.0), seed), run(&labels, counts.len(), &down(1.0), seed));
    }

    #[test]
    fn apportion_always_sums(expected in prop::collection::vec(0.0f64..1000.0, 1..6)) {
        let total = expected.iter().sum::<f64>().round() as u64;
        let a = apportion(&expected, total);
        prop_assert_eq!(a.iter().sum::<u64>(), total);
        for (x, e) in a.iter().zip(&expected) {
            prop_assert!((*x as f64 - e).abs() < 1.0 + 1e-9 * e);
        }
    }
}

use super::*;
use pretty_assertions::assert_eq;

fn weighted(class_weights: Vec<f64>, replacement: bool, num_samples: u64) -> Weighted {
    Weighted {
        class_weights,
        replacement,
        num_samples,
    }
}

/// 6 of class 0, 2 of class 1, interleaved: 0 1 0 1 0 0 0 0.
const LABELS: [u32; 8] = [0, 1, 0, 1, 0, 0, 0, 0];

fn src<'a>(labels: &'a [u32], w: Option<&'a Weighted>, shuffle: bool) -> Source<'a> {
    Source {
        labels,
        num_classes: 2,
        weighted: w,
        shuffle,
    }
}

#[test]
fn golden_streams() {
    assert_eq!(
        global(&src(&LABELS, None, true), 0, 0).unwrap(),
        GOLDEN_SHUFFLE_E0
    );
    assert_eq!(
        global(&src(&LABELS, None, true), 0, 1).unwrap(),
        GOLDEN_SHUFFLE_E1
    );
    assert_eq!(
        global(&src(&LABELS, None, false), 0, 0).unwrap(),
        (0..8).collect::<Vec<_>>()
    );
    let w = weighted(vec![1.0, 3.0], true, 10);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0).unwrap(),
        GOLDEN_WITH
    );
    let w = weighted(vec![1.0, 3.0], false, 8);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0).unwrap(),
        GOLDEN_WITHOUT
    );
}

// Pinned; examples/python/rng_reference.py re-derives them independently.
const GOLDEN_SHUFFLE_E0: [usize; 8] = [5, 1, 3, 7, 6, 4, 0, 2];
const GOLDEN_SHUFFLE_E1: [usize; 8] = [5, 7, 0, 6, 4, 3, 1, 2];
const GOLDEN_WITH: [usize; 10] = [0, 1, 3, 1, 3, 3, 3, 3, 2, 6];
const GOLDEN_WITHOUT: [usize; 8] = [0, 1, 3, 4, 6, 5, 2, 7];

#[test]
fn epochs_are_independent_of_each_other() {
    let w = weighted(vec![1.0, 3.0], true, 50);
    let s = src(&LABELS, Some(&w), true);
    let e5 = global(&s, 7, 5).unwrap();
    assert_eq!(e5, global(&s, 7, 5).unwrap());
    assert_ne!(e5, global(&s, 7, 4).unwrap());
    assert_ne!(e5, global(&s, 8, 5).unwrap());
}

#[test]
fn shuffle_is_a_permutation() {
    let labels = vec![0u32; 1000];
    let mut e = global(&src(&labels, None, true), 3, 9).unwrap();
    assert_ne!(e, (0..1000).collect::<Vec<_>>());
    e.sort_unstable();
    assert_eq!(e, (0..1000).collect::<Vec<_>>());
}

#[test]
fn shards_pad_by_wrap_around_and_cover_the_stream() {
    let g: Vec<usize> = (10..17).collect(); // 7 positions
    assert_eq!(shard(&g, 0, 3).unwrap(), vec![10, 13, 16]);
    assert_eq!(shard(&g, 1, 3).unwrap(), vec![11, 14, 10]);
    assert_eq!(shard(&g, 2, 3).unwrap(), vec![12, 15, 11]);
    // world larger than the stream: wrap around more than once, as DistributedSampler
    assert_eq!(shard(&[4, 5], 2, 5).unwrap(), vec![4]);
    assert_eq!(shard(&[4, 5], 4, 5).unwrap(), vec![4]);
    assert_eq!(
        shard(&g, 3, 3),
        Err(SamplerError::Rank {
            rank: 3,
            world_size: 3
        })
    );
    assert_eq!(shard(&g, 0, 0), Err(SamplerError::WorldSize));
}

#[test]
fn without_replacement_never_repeats_and_full_epochs_are_permutations() {
    let labels: Vec<u32> = (0..300).map(|i| (i % 3 == 0) as u32).collect();
    let w = weighted(vec![1.0, 5.0], false, 300);
    let mut e = global(&src(&labels, Some(&w), true), 1, 0).unwrap();
    e.sort_unstable();
    assert_eq!(e, (0..300).collect::<Vec<_>>());
    let w = weighted(vec![1.0, 5.0], false, 120);
    let e = global(&src(&labels, Some(&w), true), 1, 0).unwrap();
    let mut d = e.clone();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), 120);
}

#[test]
fn errors() {
    let w = weighted(vec![1.0, 1.0], false, 9);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0),
        Err(SamplerError::TooManySamples {
            num_samples: 9,
            train: 8
        })
    );
    let w = weighted(vec![1.0], true, 3);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0),
        Err(SamplerError::WeightsLength {
            expected: 2,
            found: 1
        })
    );
    let w = weighted(vec![0.0, 0.0], true, 3);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0),
        Err(SamplerError::NoMass)
    );
    // Without replacement, weight-0 classes cannot fill the epoch.
    let w = weighted(vec![0.0, 1.0], false, 3);
    assert_eq!(
        global(&src(&LABELS, Some(&w), true), 0, 0),
        Err(SamplerError::NoMass)
    );
}

/// Pearson's chi-square statistic of observed counts against expected counts.
fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum()
}

/// Critical values of the chi-square distribution at significance 0.001.
const CHI2_001: [f64; 4] = [10.828, 13.816, 16.266, 18.467]; // 1..=4 degrees of freedom

#[test]
fn with_replacement_class_frequencies_match_the_weights() {
    // 4 classes of 50, 30, 15, 5 samples; weights 1, 2, 4, 10: masses 50, 60, 60, 50.
    let labels: Vec<u32> = [50, 30, 15, 5]
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| vec![c as u32; n])
        .collect();
    let w = weighted(vec![1.0, 2.0, 4.0, 10.0], true, 200_000);
    for seed in [0u64, 1, 2] {
        let e = global(
            &Source {
                labels: &labels,
                num_classes: 4,
                weighted: Some(&w),
                shuffle: true,
            },
            seed,
            0,
        )
        .unwrap();
        let mut per_class = [0u64; 4];
        let mut per_sample = vec![0u64; labels.len()];
        for &i in &e {
            per_class[labels[i] as usize] += 1;
            per_sample[i] += 1;
        }
        let expected: Vec<f64> = [50.0, 60.0, 60.0, 50.0]
            .iter()
            .map(|m| 200_000.0 * m / 220.0)
            .collect();
        let x2 = chi_square(&per_class, &expected);
        assert!(x2 < CHI2_001[2], "seed {seed}: chi2 {x2} for {per_class:?}");
        // Within class 3 (5 samples), every member equally likely.
        let members = &per_sample[95..100];
        let each = members.iter().sum::<u64>() as f64 / 5.0;
        let x2 = chi_square(members, &[each; 5]);
        assert!(x2 < CHI2_001[3], "seed {seed}: members {members:?}");
    }
}

#[test]
fn without_replacement_first_draw_follows_the_weights() {
    // The first of successive draws picks class c with probability n_c w_c / sum.
    let labels: Vec<u32> = [20, 10, 5]
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| vec![c as u32; n])
        .collect();
    let w = weighted(vec![1.0, 3.0, 2.0], false, 5);
    let s = Source {
        labels: &labels,
        num_classes: 3,
        weighted: Some(&w),
        shuffle: true,
    };
    let epochs = 30_000;
    let mut first = [0u64; 3];
    let mut second_given_first_is_1 = [0u64; 3];
    for epoch in 0..epochs {
        let e = global(&s, 11, epoch).unwrap();
        let c0 = labels[e[0]] as usize;
        first[c0] += 1;
        if c0 == 1 {
            second_given_first_is_1[labels[e[1]] as usize] += 1;
        }
    }
    let total = 20.0 + 30.0 + 10.0;
    let expected: Vec<f64> = [20.0, 30.0, 10.0]
        .iter()
        .map(|m| epochs as f64 * m / total)
        .collect();
    let x2 = chi_square(&first, &expected);
    assert!(x2 < CHI2_001[1], "chi2 {x2} for {first:?}");
    // After a class-1 sample is gone: masses 20, 27, 10.
    let n: u64 = second_given_first_is_1.iter().sum();
    let expected: Vec<f64> = [20.0, 27.0, 10.0]
        .iter()
        .map(|m| n as f64 * m / 57.0)
        .collect();
    let x2 = chi_square(&second_given_first_is_1, &expected);
    assert!(
        x2 < CHI2_001[1],
        "chi2 {x2} for {second_given_first_is_1:?}"
    );
}

#[test]
fn the_stream_does_not_depend_on_threads() {
    let labels: Vec<u32> = (0..5000).map(|i| (i % 7 == 0) as u32).collect();
    let w = weighted(vec![1.0, 6.0], true, 5000);
    let s = Source {
        labels: &labels,
        num_classes: 2,
        weighted: Some(&w),
        shuffle: true,
    };
    let alone = global(&s, 5, 3).unwrap();
    let together: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| global(&s, 5, 3).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(together.iter().all(|t| *t == alone));
}

#[test]
fn alias_table_handles_zero_and_dominant_masses() {
    let t = Alias::new(&[0.0, 1.0, 0.0, 3.0], 4.0);
    let mut s = EpochStream::epoch(0, 0);
    let mut seen = [0u64; 4];
    for _ in 0..40_000 {
        seen[t.draw(&mut s)] += 1;
    }
    assert_eq!((seen[0], seen[2]), (0, 0));
    let x2 = chi_square(&[seen[1], seen[3]], &[10_000.0, 30_000.0]);
    assert!(x2 < CHI2_001[0], "{seen:?}");
}

mod shards_cover_the_stream {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn union_of_shards_is_the_padded_stream(n in 0usize..50, world in 1usize..9, seed: u64) {
            let labels = vec![0u32; n];
            let g = global(&Source { labels: &labels, num_classes: 1, weighted: None, shuffle: true }, seed, 0).unwrap();
            let shards: Vec<Vec<usize>> = (0..world).map(|r| shard(&g, r, world).unwrap()).collect();
            let per = if n == 0 { 0 } else { n.div_ceil(world) };
            prop_assert!(shards.iter().all(|s| s.len() == per));
            // Interleaving the shards back gives the padded stream, position by position.
            for p in 0..per * world {
                prop_assert_eq!(shards[p % world][p / world], g[p % n]);
            }
            // Without padding (n divisible by world), shards are disjoint positions.
            if n % world == 0 {
                let mut all: Vec<usize> = shards.concat();
                all.sort_unstable();
                let mut want = g.clone();
                want.sort_unstable();
                prop_assert_eq!(all, want);
            }
        }
    }
}

#[test]
fn epoch_len_is_the_length_of_every_ranks_epoch() {
    let labels = [0, 1, 1, 0, 1, 1, 1];
    let w = weighted(vec![1.0, 2.0], true, 11);
    let wo = weighted(vec![1.0, 2.0], false, 5);
    for ws in 1..5 {
        for source in [
            src(&labels, None, true),
            src(&labels, Some(&w), true),
            src(&labels, Some(&wo), true),
        ] {
            for rank in 0..ws {
                let got = epoch(&source, 3, 1, rank, ws).unwrap().len();
                assert_eq!(
                    epoch_len(source.labels.len(), source.weighted, ws),
                    got,
                    "world size {ws} rank {rank}"
                );
            }
        }
    }
}

//! The three lists of each split, as (class, file) positions: their ratio cut, their
//! k-fold (shuffled orders cut into chunks), and with groups the bins our placement
//! ([`super::groups`]) puts whole groups into.

use super::cut;
use super::groups;
use super::Class;
use crate::rng::pyrandom::PyRandom;
use crate::rng::{Purpose, Stream};

/// The three lists of one split, as (class, file) positions in label order.
pub(super) type Lists = [Vec<(usize, usize)>; 3];

/// One repeat's per-class shuffles (their mode) or group folds (grouped), from which each
/// fold's lists are cut.
pub(super) struct Folds<'a> {
    classes: &'a [Class<'a>],
    val_fraction: f64,
    cut: FoldCut,
}

enum FoldCut {
    Theirs {
        orders: Vec<Vec<usize>>,
        chunks: Vec<Vec<std::ops::Range<usize>>>,
    },
    Grouped {
        n_groups: usize,
        seed: u64,
        k: usize,
        fold_of: Vec<usize>,
    },
}

impl<'a> Folds<'a> {
    pub(super) fn new(
        classes: &'a [Class<'a>],
        groups: Option<usize>,
        seed: i128,
        k: usize,
        val_fraction: f64,
    ) -> Folds<'a> {
        let cut = match groups {
            None => {
                let mut rng = PyRandom::new(seed);
                let orders: Vec<Vec<usize>> = classes
                    .iter()
                    .map(|class| {
                        let mut order: Vec<usize> = (0..class.files.len()).collect();
                        rng.shuffle(&mut order);
                        order
                    })
                    .collect();
                let chunks = orders.iter().map(|o| cut::chunks(o.len(), k)).collect();
                FoldCut::Theirs { orders, chunks }
            }
            Some(n_groups) => {
                let seed = seed as u64;
                let share = 1.0 / k as f64;
                let mut rng = Stream::new(seed, Purpose::SplitGroups, &[0]);
                let fold_of = place(classes, n_groups, None, &|_| vec![share; k], &mut rng);
                FoldCut::Grouped {
                    n_groups,
                    seed,
                    k,
                    fold_of,
                }
            }
        };
        Folds {
            classes,
            val_fraction,
            cut,
        }
    }

    /// Fold `fold`'s lists, and with groups the requested shares per class.
    pub(super) fn fold(&self, fold: usize) -> (Lists, Vec<Option<[f64; 3]>>) {
        match &self.cut {
            FoldCut::Theirs { orders, chunks } => {
                let mut lists: Lists = Default::default();
                for (c, order) in orders.iter().enumerate() {
                    let chunks = &chunks[c];
                    lists[2].extend(order[chunks[fold].clone()].iter().map(|&i| (c, i)));
                    let pool: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|&(f, _)| f != fold)
                        .flat_map(|(_, r)| order[r.clone()].iter().copied())
                        .collect();
                    let val_n = cut::val_count(order.len(), pool.len(), self.val_fraction);
                    lists[1].extend(pool[..val_n].iter().map(|&i| (c, i)));
                    lists[0].extend(pool[val_n..].iter().map(|&i| (c, i)));
                }
                (lists, vec![None; self.classes.len()])
            }
            FoldCut::Grouped {
                n_groups,
                seed,
                k,
                fold_of,
            } => grouped_fold(
                self.classes,
                *n_groups,
                *seed,
                *k,
                fold_of,
                fold,
                self.val_fraction,
            ),
        }
    }
}

/// Their ratio mode: one generator for all classes, in label order.
pub(super) fn ratio_lists(classes: &[Class], seed: i128, train: f64, val: f64) -> Lists {
    let mut rng = PyRandom::new(seed);
    let mut lists: Lists = Default::default();
    for (c, class) in classes.iter().enumerate() {
        let mut order: Vec<usize> = (0..class.files.len()).collect();
        rng.shuffle(&mut order);
        let (t, v) = cut::ratio_cuts(order.len(), train, val);
        for (pos, &i) in order.iter().enumerate() {
            let list = if pos < t {
                0
            } else if pos < v {
                1
            } else {
                2
            };
            lists[list].push((c, i));
        }
    }
    lists
}

/// Grouped k-fold, one fold: the groups of the other folds go to val and train.
pub(super) fn grouped_fold(
    classes: &[Class],
    n_groups: usize,
    seed: u64,
    k: usize,
    fold_of: &[usize],
    fold: usize,
    val_fraction: f64,
) -> (Lists, Vec<Option<[f64; 3]>>) {
    let share = 1.0 / k as f64;
    let in_pool: Vec<bool> = fold_of.iter().map(|&f| f != fold).collect();
    let totals: Vec<usize> = classes.iter().map(|c| c.files.len()).collect();
    let pool = pool_counts(classes, &in_pool);
    let val_n: Vec<usize> = totals
        .iter()
        .zip(&pool)
        .map(|(&n, &p)| cut::val_count(n, p, val_fraction))
        .collect();
    // Val and train targets as shares of the class, so the deviations compare with the
    // test folds'.
    let target = |c: usize| {
        let n = totals[c].max(1) as f64;
        vec![val_n[c] as f64 / n, (pool[c] - val_n[c]) as f64 / n]
    };
    let mut rng = Stream::new(seed, Purpose::SplitGroups, &[1, fold as u64]);
    let sub = place(classes, n_groups, Some(&in_pool), &target, &mut rng);
    let bins: Vec<usize> = (0..n_groups)
        .map(|g| {
            if !in_pool[g] {
                2
            } else if sub[g] == 0 {
                1
            } else {
                0
            }
        })
        .collect();
    // What was asked: 1/k of the class tested, its val count, the rest trained.
    let requested = (0..classes.len())
        .map(|c| {
            let val = val_n[c] as f64 / totals[c].max(1) as f64;
            Some([1.0 - share - val, val, share])
        })
        .collect();
    (lists_from_bins(classes, &bins), requested)
}

/// Images of each class among the groups marked `true`.
pub(super) fn pool_counts(classes: &[Class], in_pool: &[bool]) -> Vec<usize> {
    classes
        .iter()
        .map(|c| c.groups.iter().filter(|&&g| in_pool[g]).count())
        .collect()
}

/// Places groups (all, or those marked in `only`) into bins; `shares(class)` gives each
/// bin's share of a class. Groups outside `only` get bin 0 (unused by the caller).
pub(super) fn place(
    classes: &[Class],
    n_groups: usize,
    only: Option<&[bool]>,
    shares: &dyn Fn(usize) -> Vec<f64>,
    rng: &mut Stream,
) -> Vec<usize> {
    let k = classes.len();
    let mut counts: Vec<groups::Members> = vec![Vec::new(); n_groups];
    for (c, class) in classes.iter().enumerate() {
        for &g in &class.groups {
            match counts[g].last_mut() {
                Some((last, n)) if *last == c => *n += 1,
                _ => counts[g].push((c, 1)),
            }
        }
    }
    let members: Vec<usize> = (0..n_groups)
        .filter(|&g| only.is_none_or(|o| o[g]))
        .collect();
    let totals: Vec<u32> = classes.iter().map(|c| c.files.len() as u32).collect();
    let per_class: Vec<Vec<f64>> = (0..k).map(shares).collect();
    let bins = per_class.first().map_or(1, Vec::len);
    let targets: Vec<Vec<f64>> = (0..bins)
        .map(|b| {
            (0..k)
                .map(|c| per_class[c][b] * f64::from(totals[c]))
                .collect()
        })
        .collect();
    let picked: Vec<groups::Members> = members
        .iter()
        .map(|&g| std::mem::take(&mut counts[g]))
        .collect();
    let placed = groups::assign(&picked, &targets, &totals, rng);
    let mut bin = vec![0; n_groups];
    for (&g, &b) in members.iter().zip(&placed) {
        bin[g] = b;
    }
    bin
}

/// Lists from each group's bin (0 train, 1 val, 2 test); within a class, files stay in
/// path order.
pub(super) fn lists_from_bins(classes: &[Class], bins: &[usize]) -> Lists {
    let mut lists: Lists = Default::default();
    for (c, class) in classes.iter().enumerate() {
        for (i, &g) in class.groups.iter().enumerate() {
            lists[bins[g]].push((c, i));
        }
    }
    lists
}

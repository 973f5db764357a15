use std::collections::HashMap;

use proptest::prelude::*;

use super::config::{ClassSpec, Mode, PrepConfig};
use super::lists::{lists_from_bins, place, Lists};
use super::*;

const USERS: &str = include_str!("../../tests/fixtures/data-preparation.yaml");
const USERS_KFOLD: &str = include_str!("../../tests/fixtures/data-preparation-kfold.yaml");

fn parse(text: &str) -> Result<PrepConfig, String> {
    PrepConfig::parse(text, Path::new("prep.yaml")).map_err(|e| e.to_string())
}

#[test]
fn the_users_configs_load_unchanged() {
    let c = parse(USERS).unwrap();
    assert_eq!(
        c.classes,
        [
            ClassSpec {
                name: "normal".into(),
                path: "data/0.Normal".into(),
                label: 0
            },
            ClassSpec {
                name: "abnormal".into(),
                path: "data/1.Abnormal".into(),
                label: 1
            }
        ]
    );
    let Mode::Ratio {
        seed,
        train,
        val,
        test,
    } = c.mode
    else {
        panic!("ratio mode expected");
    };
    assert_eq!(seed, Some(42));
    assert_eq!((train.value, val.value, test.value), (0.7, 0.15, 0.15));
    assert_eq!(
        (c.save_dir.as_str(), c.split_file.as_str()),
        ("outputs/splits", "train_val_test_split.json")
    );
    assert!(!c.force && c.group_by.is_none() && c.unused.is_empty());

    let k = parse(USERS_KFOLD).unwrap();
    assert_eq!(
        k.mode,
        Mode::KFold {
            n_folds: 5,
            n_repeats: 2,
            repeat_seeds: vec![42, 43],
            val_fraction: config::Number {
                value: 0.15,
                integer: false
            },
        }
    );
}

/// Replaces `from` (which must occur) in the user's ratio config.
fn edited(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from}");
    base.replacen(from, to, 1)
}

#[test]
fn every_rule_is_checked_with_the_key_named() {
    let r = USERS;
    let k = USERS_KFOLD;
    let cases: Vec<(String, &str)> = vec![
        (edited(r, "experiment: data_preparation", "experiment: diffusion"), "prep.yaml: experiment: expected data_preparation, found \"diffusion\""),
        (edited(r, "    label: 1", "    label: 0"), "prep.yaml: classes: label 0 is used by normal and abnormal; labels must be unique"),
        (edited(r, "    label: 1", "    label: 2"), "prep.yaml: classes: labels must be 0 to 1 (one per class), found 0, 2"),
        (edited(r, "    label: 1", "    label: -1"), "prep.yaml: classes.abnormal.label: expected a non-negative integer, found -1"),
        (edited(r, "    label: 1", "    label: true"), "prep.yaml: classes.abnormal.label: expected a non-negative integer, found true"),
        (edited(r, "    label: 1", "    label: 1\n    extra: 3"), "prep.yaml: classes.abnormal: unknown key \"extra\"; only path and label are allowed"),
        (edited(r, "path: \"data/1.Abnormal\"", "path: \"\""), "prep.yaml: classes.abnormal.path: expected a non-empty string, found \"\""),
        (edited(r, "  seed: 42", "  seed: 4.5"), "prep.yaml: split.seed: expected an integer or null, found 4.5"),
        (edited(r, "  train_ratio: 0.7", "  train_ratio: 1.0"), "prep.yaml: split.train_ratio: expected a number in (0, 1), found 1"),
        (edited(r, "  val_ratio: 0.15", "  val_ratio: 0"), "prep.yaml: split.val_ratio: expected a number in (0, 1), found 0"),
        (edited(r, "  test_ratio: 0.15", "  test_ratio: -0.1"), "prep.yaml: split.test_ratio: expected a number in [0, 1), found -0.1"),
        (edited(r, "  test_ratio: 0.15", "  test_ratio: 0.2"), "prep.yaml: split: train_ratio + val_ratio + test_ratio must be 1 (within 1e-6), found 1.05"),
        (edited(r, "  test_ratio: 0.15", "  test_ratio: \"0.15\""), "prep.yaml: split.test_ratio: expected a number in [0, 1), found \"0.15\""),
        (edited(r, "train_val_test_split.json\"", "split.txt\""), "prep.yaml: split.split_file: must end in .json, found \"split.txt\""),
        (edited(r, "  force: false", "  force: 1"), "prep.yaml: split.force: expected true or false, found 1"),
        (edited(r, "  force: false", "  forse: true"), "prep.yaml: split: unknown key \"forse\"; expected one of mode, save_dir, split_file, force, group_by, seed, train_ratio, val_ratio, test_ratio, n_folds, n_repeats, repeat_seeds, val_fraction"),
        (edited(r, "  seed: 42", "  mode: random"), "prep.yaml: split.mode: expected ratio or kfold, found \"random\""),
        (edited(r, "save_dir: \"outputs/splits\"", "save_dir: 3"), "prep.yaml: split.save_dir: expected a non-empty string, found 3"),
        (edited(k, "n_folds: 5 ", "n_folds: 1 "), "prep.yaml: split.n_folds: expected an integer from 2 to 100000, found 1"),
        (edited(k, "n_repeats: 2 ", "n_repeats: 0 "), "prep.yaml: split.n_repeats: expected an integer from 1 to 100000, found 0"),
        (edited(k, "repeat_seeds: [42, 43]", "repeat_seeds: [42]"), "prep.yaml: split.repeat_seeds: expected a list of 2 distinct integers (one per repeat), found a list"),
        (edited(k, "repeat_seeds: [42, 43]", "repeat_seeds: [42, 42]"), "prep.yaml: split.repeat_seeds[1]: 42 repeats repeat_seeds[0]; seeds must be distinct"),
        (edited(k, "repeat_seeds: [42, 43]", "repeat_seeds: [42, x]"), "prep.yaml: split.repeat_seeds[1]: expected an integer, found \"x\""),
        (edited(k, "val_fraction: 0.15", "val_fraction: 1.5"), "prep.yaml: split.val_fraction: expected a number in (0, 1), found 1.5"),
        (edited(k, "cv_split_{index}.json", "cv_split.json"), "prep.yaml: split.split_file: must contain {index} once and no other braces in mode kfold (it becomes 0 to 9), found \"cv_split.json\""),
        (edited(k, "cv_split_{index}.json", "cv_{index}_{fold}.json"), "prep.yaml: split.split_file: must contain {index} once and no other braces in mode kfold (it becomes 0 to 9), found \"cv_{index}_{fold}.json\""),
        (edited(k, "  n_folds: 5 ", "  n_folds: 1000\n  x_n_folds: 5 "), "prep.yaml: split: unknown key \"x_n_folds\"; expected one of mode, save_dir, split_file, force, group_by, seed, train_ratio, val_ratio, test_ratio, n_folds, n_repeats, repeat_seeds, val_fraction"),
        (edited(k, "n_repeats: 2 ", "n_repeats: 200 ").replace("[42, 43]", &format!("{:?}", (0..200).collect::<Vec<_>>())).replace("n_folds: 5 ", "n_folds: 1000 "), "prep.yaml: split: n_folds * n_repeats is 200000, more split files than the 100000 allowed"),
        (format!("{r}  group_by: {{regex: \"^(?P<patient>[^_]+)\"}}\n"), "prep.yaml: split.group_by.regex: needs a named group (?P<group>...) that captures the group id, found \"^(?P<patient>[^_]+)\""),
        (format!("{r}  group_by: {{regex: \"(?P<group>[\"}}\n"), "prep.yaml: split.group_by.regex: not a valid regex (unclosed character class): \"(?P<group>[\""),
        (format!("{r}  group_by: {{csv: p.csv}}\n"), "prep.yaml: split.group_by: expected {regex: PATTERN} or {csv: FILE, path_column: C, group_column: G}, found a mapping"),
        (edited(&format!("{r}  group_by: {{regex: \"^(?P<group>[^_]+)_\"}}\n"), "seed: 42", "seed: -3"), "prep.yaml: split.seed: with group_by, expected a non-negative integer (it seeds the group placement), found -3"),
        ("experiment: data_preparation\nsplit: {}\n".into(), "prep.yaml: classes: missing; expected the class folders"),
        ("experiment: data_preparation\nclasses: {a: {path: x, label: 0}}\n".into(), "prep.yaml: split: missing; expected the split settings"),
        ("experiment: data_preparation\nclasses: {a: {path: x, label: 0}}\nsplit: {save_dir: o}\n".into(), "prep.yaml: split.split_file: missing; expected the split file's name"),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text).err().as_deref(), Some(want), "{text}");
    }
}

#[test]
fn keys_of_the_other_mode_are_reported_unused() {
    let text = edited(USERS_KFOLD, "  mode: kfold", "  mode: kfold\n  seed: 1");
    assert_eq!(parse(&text).unwrap().unused, ["split.seed"]);
}

/// Classes of `sizes[c]` files whose groups are `group_of[c][i]`.
fn grouped<'a>(specs: &'a [ClassSpec], group_of: &[Vec<usize>]) -> Vec<Class<'a>> {
    specs
        .iter()
        .zip(group_of)
        .enumerate()
        .map(|(c, (spec, groups))| Class {
            spec,
            config_index: c,
            files: (0..groups.len()).map(|i| format!("c{c}/{i}.png")).collect(),
            groups: groups.clone(),
        })
        .collect()
}

fn specs(k: usize) -> Vec<ClassSpec> {
    (0..k)
        .map(|c| ClassSpec {
            name: format!("c{c}"),
            path: format!("c{c}"),
            label: c as u32,
        })
        .collect()
}

/// Every group's files in exactly one of the three lists, and every file in one list.
fn assert_groups_whole(classes: &[Class], lists: &Lists) {
    let mut list_of_group: HashMap<usize, usize> = HashMap::new();
    let mut seen = 0;
    for (l, list) in lists.iter().enumerate() {
        for &(c, i) in list {
            seen += 1;
            let g = classes[c].groups[i];
            assert_eq!(
                *list_of_group.entry(g).or_insert(l),
                l,
                "group {g} in two lists"
            );
        }
    }
    assert_eq!(seen, classes.iter().map(|c| c.files.len()).sum::<usize>());
}

fn all_folds(
    classes: &[Class],
    groups: Option<usize>,
    seed: i128,
    k: usize,
    val_fraction: f64,
) -> Vec<(Lists, Vec<Option<[f64; 3]>>)> {
    let folds = Folds::new(classes, groups, seed, k, val_fraction);
    (0..k).map(|f| folds.fold(f)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Ratio and k-fold placement never split a group, over random sets with groups of
    /// mixed labels too, and every file lands in exactly one list.
    #[test]
    fn no_group_straddles_two_lists(
        files in prop::collection::vec((0usize..3, 0usize..40), 1..300),
        seed in any::<u64>(),
        k in 2usize..6,
    ) {
        let sp = specs(3);
        let mut group_of = vec![Vec::new(); 3];
        for &(c, g) in &files {
            group_of[c].push(g);
        }
        // Dense numbers, as find_groups gives.
        let ids: Vec<String> = files.iter().map(|(_, g)| g.to_string()).collect();
        let (numbers, names) = groups::number_groups(ids.iter().map(String::as_str));
        let mut pos = [0usize; 3];
        for (&(c, _), &n) in files.iter().zip(&numbers) {
            group_of[c][pos[c]] = n;
            pos[c] += 1;
        }
        let classes = grouped(&sp, &group_of);
        let n_groups = names.len();
        let shares = [0.7, 0.15, 0.15];
        let mut rng = Stream::new(seed, Purpose::SplitGroups, &[0]);
        let bins = place(&classes, n_groups, None, &|_| shares.to_vec(), &mut rng);
        assert_groups_whole(&classes, &lists_from_bins(&classes, &bins));
        let folds = all_folds(&classes, Some(n_groups), i128::from(seed), k, 0.2);
        let mut tested = vec![0usize; n_groups];
        for (lists, _) in &folds {
            assert_groups_whole(&classes, lists);
            let mut in_test: Vec<usize> = lists[2].iter().map(|&(c, i)| classes[c].groups[i]).collect();
            in_test.sort_unstable();
            in_test.dedup();
            for g in in_test {
                tested[g] += 1;
            }
        }
        // The test folds of a repeat partition the groups.
        prop_assert!(tested.iter().all(|&t| t == 1));
    }

    /// Their k-fold mode: within a repeat each class's test folds partition it, and no path
    /// is in two lists of one split.
    #[test]
    fn kfold_test_folds_partition_each_class(
        sizes in prop::collection::vec(1usize..60, 1..4),
        seed in any::<i64>(),
        k in 2usize..8,
        val_fraction in 0.01f64..0.99,
    ) {
        let sp = specs(sizes.len());
        let classes: Vec<Class> = sp.iter().zip(&sizes).enumerate().map(|(c, (spec, &n))| Class {
            spec, config_index: c,
            files: (0..n).map(|i| format!("c{c}/{i}.png")).collect(),
            groups: Vec::new(),
        }).collect();
        let folds = all_folds(&classes, None, i128::from(seed), k, val_fraction);
        prop_assert_eq!(folds.len(), k);
        let mut tested: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![0; n]).collect();
        for (lists, _) in &folds {
            let mut seen: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![0; n]).collect();
            for list in lists {
                for &(c, i) in list {
                    seen[c][i] += 1;
                }
            }
            prop_assert!(seen.iter().flatten().all(|&s| s == 1));
            for &(c, i) in &lists[2] {
                tested[c][i] += 1;
            }
        }
        prop_assert!(tested.iter().flatten().all(|&t| t == 1));
    }
}

/// Grouped placement of a set where it can be exact is exact.
#[test]
fn grouped_ratio_meets_the_shares_when_the_groups_allow() {
    let sp = specs(2);
    // 20 groups of 1 normal image, 10 groups of 1 abnormal: 70/20/10 is reachable exactly.
    let group_of = vec![(0..20).collect(), (20..30).collect()];
    let classes = grouped(&sp, &group_of);
    let mut rng = Stream::new(5, Purpose::SplitGroups, &[0]);
    let bins = place(&classes, 30, None, &|_| vec![0.7, 0.2, 0.1], &mut rng);
    let lists = lists_from_bins(&classes, &bins);
    let count = |l: usize, c: usize| lists[l].iter().filter(|&&(k, _)| k == c).count();
    assert_eq!([count(0, 0), count(1, 0), count(2, 0)], [14, 4, 2]);
    assert_eq!([count(0, 1), count(1, 1), count(2, 1)], [7, 2, 1]);
}

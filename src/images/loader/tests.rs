use super::*;
use std::borrow::Cow;

/// `n` 24x16 PNGs with distinct content in a temp dir, and entries for them.
fn fixture(n: usize) -> (tempfile::TempDir, Vec<Entry<'static>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for i in 0..n {
        let img = image::RgbImage::from_fn(24, 16, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 15) as u8, (i * 40) as u8])
        });
        let name = format!("img{i}.png");
        img.save(dir.path().join(&name)).unwrap();
        entries.push(Entry {
            path: Cow::Owned(name),
            label: (i % 2) as u32,
            extra: None,
        });
    }
    (dir, entries)
}

fn cfg(augment: bool) -> LoaderConfig {
    LoaderConfig {
        image_size: 8,
        channels: 3,
        batch_size: 3,
        drop_last: false,
        augmentation: augment.then_some(AugmentationConfig {
            horizontal_flip: true,
            rotation_degrees: 15.0,
            color_jitter: transform::ColorJitterConfig {
                enabled: true,
                strength: 0.2,
            },
        }),
        seed: 7,
    }
}

#[test]
fn batches_have_the_shape_labels_and_range() {
    let (dir, entries) = fixture(5);
    let data = Dataset::new(&entries, dir.path());
    let batches: Vec<Batch> = data
        .batches(vec![4, 0, 3, 1, 2], 0, cfg(true), 2)
        .map(Result::unwrap)
        .collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].shape, [3, 3, 8, 8]);
    assert_eq!(batches[1].shape, [2, 3, 8, 8]);
    assert_eq!(batches[0].labels, vec![0, 0, 1]);
    assert_eq!(batches[0].entries, vec![4, 0, 3]);
    assert!(batches
        .iter()
        .flat_map(|b| &b.images)
        .all(|v| (-1.0..=1.0).contains(v)));
    let mut last = cfg(true);
    last.drop_last = true;
    assert_eq!(data.batches(vec![4, 0, 3, 1, 2], 0, last, 2).count(), 1);
}

#[test]
fn the_same_batch_for_one_and_two_threads() {
    let (dir, entries) = fixture(6);
    let data = Dataset::new(&entries, dir.path());
    let positions = [5, 1, 1, 3, 0, 2];
    let with = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| data.batch(&positions, Slots::START, 3, &cfg(true)).unwrap())
    };
    assert_eq!(with(1), with(2));
}

#[test]
fn augmentation_depends_on_epoch_and_position_and_validation_is_plain() {
    let (dir, entries) = fixture(2);
    let data = Dataset::new(&entries, dir.path());
    let b = data
        .batch(&[0, 0, 0, 0], Slots::START, 0, &cfg(true))
        .unwrap();
    let per = 3 * 8 * 8;
    let sample = |k: usize| &b.images[k * per..(k + 1) * per];
    // The same file at four positions: not all augmented alike.
    assert!((1..4).any(|k| sample(k) != sample(0)));
    // Epoch 1 differs from epoch 0; validation (no augmentation) is identical everywhere.
    assert_ne!(
        data.batch(&[0], Slots::START, 1, &cfg(true))
            .unwrap()
            .images,
        sample(0).to_vec()
    );
    let v = data.batch(&[0, 0], Slots::START, 0, &cfg(false)).unwrap();
    assert_eq!(v.images[..per], v.images[per..]);
}

#[test]
fn errors_name_the_entry_and_path() {
    let (dir, mut entries) = fixture(2);
    entries.push(Entry {
        path: Cow::Borrowed("gone.png"),
        label: 0,
        extra: None,
    });
    let data = Dataset::new(&entries, dir.path());
    let err = data
        .batch(&[0, 2], Slots::START, 0, &cfg(false))
        .unwrap_err();
    assert!(matches!(
        &err,
        LoadError::Sample {
            index: 2,
            problem: Problem::Missing,
            ..
        }
    ));
    assert!(err.to_string().starts_with("entry 2 ("), "{err}");
    assert!(
        err.to_string()
            .ends_with("gone.png): missing (no such file)"),
        "{err}"
    );
}

#[test]
fn one_channel_gives_luminance() {
    let (dir, entries) = fixture(1);
    let data = Dataset::new(&entries, dir.path());
    let mut c = cfg(false);
    c.channels = 1;
    let b = data.batch(&[0], Slots::START, 0, &c).unwrap();
    assert_eq!(b.shape, [1, 1, 8, 8]);
    assert_eq!(b.images.len(), 64);
}

#[test]
fn the_first_failing_sample_of_a_batch_is_reported_for_any_thread_count() {
    let (dir, mut entries) = fixture(4);
    for name in ["gone-a.png", "gone-b.png"] {
        entries.push(Entry {
            path: Cow::Borrowed(name),
            label: 0,
            extra: None,
        });
    }
    let data = Dataset::new(&entries, dir.path());
    // Entry 5 comes before entry 4 in the batch, with good samples around both.
    let positions = [0, 1, 5, 2, 3, 4, 0];
    for threads in [1, 2, 4] {
        let err = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                data.batch(&positions, Slots::START, 0, &cfg(false))
                    .unwrap_err()
            });
        let LoadError::Sample { index, path, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(index, 5, "{threads} threads");
        assert!(path.ends_with("gone-b.png"), "{path}");
    }
}

/// Two ranks' shards, each augmented by its samples' places in the whole epoch, load
/// exactly the samples one process loads (the shards interleave: rank r has the epoch's
/// positions r, r + 2, ...).
#[test]
fn ranks_together_load_what_one_process_loads() {
    let (dir, entries) = fixture(5);
    let data = Dataset::new(&entries, dir.path());
    let order = vec![4, 0, 3, 1, 2, 2];
    let per = 3 * 8 * 8;
    let whole: Vec<f32> = data
        .batches(order.clone(), 2, cfg(true), 2)
        .flat_map(|b| b.unwrap().images)
        .collect();
    for rank in 0..2 {
        let shard = crate::sampler::shard(&order, rank, 2).unwrap();
        let mine: Vec<f32> = data
            .rank_batches(
                shard,
                Shard {
                    rank,
                    world_size: 2,
                },
                2,
                cfg(true),
                2,
            )
            .flat_map(|b| b.unwrap().images)
            .collect();
        assert_eq!(mine.len(), 3 * per);
        for (k, sample) in mine.chunks(per).enumerate() {
            let at = rank + 2 * k;
            assert_eq!(
                sample,
                &whole[at * per..(at + 1) * per],
                "rank {rank} sample {k}"
            );
        }
    }
}

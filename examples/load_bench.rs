//! Images per second of the loading pipeline, for `bench/load.py`.
//!
//! ```text
//! cargo run --release --example load_bench -- /tmp/bench-images/png40 /tmp/bench-images/jpg256
//! ```
//!
//! For each directory, two measurements of each source (the files, then a decoded cache
//! of the set), every image decoded, converted to RGB, resized to 40x40 (when not
//! already), normalised to [-1, 1], in batches of 64 on all cores, prefetched by a
//! background thread, without augmentation (like the Python baseline):
//!
//! - `array`: gathered into one N x 3 x 40 x 40 array, the Python baseline's `np.stack`;
//! - `stream`: each batch consumed and dropped, as the trainer consumes them.
//!
//! Median of 5 after a warm-up (the Python baseline reports its median of 3); one JSON
//! line per measurement.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use balance_split::images::cache::Cache;
use balance_split::images::loader::{Dataset, LoaderConfig};
use balance_split::split::Entry;

fn main() {
    for dir in std::env::args().skip(1) {
        let dir = Path::new(&dir);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("image directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let entries: Vec<Entry> = names
            .iter()
            .map(|n| Entry {
                path: Cow::Borrowed(n.as_str()),
                label: 0,
                extra: None,
            })
            .collect();
        let cfg = LoaderConfig {
            image_size: 40,
            channels: 3,
            batch_size: 64,
            drop_last: false,
            augmentation: None,
            seed: 0,
        };
        let set = dir.file_name().unwrap().to_string_lossy().into_owned();
        let decode = Dataset::new(&entries, dir);
        measure(&set, "decode", &decode, &cfg);

        // The cache needs a manifest to name; a minimal one over the same files.
        let tmp = tempfile::tempdir().unwrap();
        let manifest = tmp.path().join("m.json");
        let list: Vec<String> = names
            .iter()
            .map(|n| format!("{{\"path\": \"{n}\", \"label\": 0}}"))
            .collect();
        let idx: Vec<String> = (0..names.len()).map(|i| i.to_string()).collect();
        std::fs::write(
            &manifest,
            format!(
                "{{\"metadata\": {{\"classes\": {{\"a\": 0}}}}, \"train\": [{}], \"balancing\": {{\"format_version\": 1, \"tool\": {{\"name\": \"b\", \"version\": \"0\"}}, \"seed\": 0, \"strategy\": \"none\", \"overridden\": [], \"warnings\": [], \"config\": null, \"source\": {{\"split_file\": \"x\", \"split_sha256\": \"x\", \"train_samples\": 1}}, \"class_counts\": {{\"before\": {{}}, \"after\": {{}}}}, \"sampler\": null, \"loss\": null, \"source_index\": [{}]}}}}",
                list.join(", "),
                idx.join(", ")
            ),
        )
        .unwrap();
        let cache_file = tmp.path().join("c.cache");
        balance_split::images::cache::build(&manifest, dir, 40, &cache_file).expect("cache");
        let sha = balance_split::input::sha256_hex(&std::fs::read(&manifest).unwrap());
        let cache = Arc::new(Cache::open(&cache_file, &sha, 40).unwrap());
        let cached = Dataset::new(&entries, dir).with_cache(cache);
        measure(&set, "cache", &cached, &cfg);
    }
}

fn measure(set: &str, source: &str, data: &Dataset, cfg: &LoaderConfig) {
    let n = data.len();
    report(set, source, "array", n, || {
        let all = load_all(data, cfg);
        assert_eq!(all.len(), n * 3 * 40 * 40);
    });
    report(set, source, "stream", n, || {
        assert_eq!(stream(data, cfg), n);
    });
}

/// Every image into one array, batch by batch.
fn load_all(data: &Dataset, cfg: &LoaderConfig) -> Vec<f32> {
    let mut all = Vec::with_capacity(data.len() * 3 * 40 * 40);
    for b in data.batches((0..data.len()).collect(), 0, cfg.clone(), 2) {
        all.extend_from_slice(&b.expect("image").images);
    }
    all
}

/// Every batch received and dropped; counts the images.
fn stream(data: &Dataset, cfg: &LoaderConfig) -> usize {
    data.batches((0..data.len()).collect(), 0, cfg.clone(), 2)
        .map(|b| std::hint::black_box(b.expect("image")).labels.len())
        .sum()
}

fn report(set: &str, source: &str, output: &str, n: usize, run: impl Fn()) {
    run();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"impl\": \"balance-split\", \"set\": \"{set}\", \"mode\": \"{source}\", \"output\": \"{output}\", \"n\": {n}, \"median_s\": {median:.4}, \"images_per_s\": {:.0}}}",
        n as f64 / median
    );
}

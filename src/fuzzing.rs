//! Entry points for the fuzz targets (`fuzz/`, run by `scripts/fuzz`) and their proptest
//! twins in the test command (`tests/arbitrary_input.rs`): each takes arbitrary bytes,
//! runs them through a reader exactly as the commands do, and panics only on a bug (a
//! panic of ours, or the split readers disagreeing). Errors are the expected outcome.

use std::path::Path;

use crate::config::Config;
use crate::manifest::Manifest;
use crate::split::Split;

/// The split readers: the fast one and the serde one agree or the fast one stands aside;
/// and the full parse (with its validation) returns, whatever the bytes.
pub fn split(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Err(disagreement) = Split::readers_agree(text) {
        panic!("split readers disagree on {text:?}: {disagreement}");
    }
    let _ = Split::parse(text, Path::new("fuzz.json"));
}

/// The config reader, nesting bound included (the file read adds only the size bound and
/// the BOM).
pub fn config(bytes: &[u8]) {
    yaml_text(bytes, |text, path| {
        let _ = Config::parse(text, path);
    });
}

/// UTF-8 config text past the nesting bound, as the readers get it.
fn yaml_text(bytes: &[u8], parse: impl FnOnce(&str, &Path)) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    if let Ok(text) = crate::config::yaml::prepare(text, path) {
        parse(text, path);
    }
}

/// The data-preparation config reader (`split`), with the same nesting bound.
pub fn prep_config(bytes: &[u8]) {
    yaml_text(bytes, |text, path| {
        let _ = crate::prepare::config::PrepConfig::parse(text, path);
    });
}

/// The manifest reader, and for a manifest it accepts, what `sample` and `stats` do with
/// it (epochs of up to 100,000 draws, to keep a run fast).
pub fn manifest(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = Path::new("fuzz.json");
    let Ok(m) = Manifest::parse(text, path) else {
        return;
    };
    let small = m
        .record
        .sampler
        .as_ref()
        .is_none_or(|s| s.num_samples <= 100_000);
    if small {
        let req = crate::sample::Request {
            epoch: 0,
            rank: 0,
            world_size: 3,
            shuffle: true,
        };
        let _ = crate::sample::positions(&m, req);
    }
    let _ = crate::stats::of_manifest(&m, path);
}

/// Image decoding as the loader (reduced JPEG decode and resize) and `check-images`
/// (full decode) do it.
pub fn image(bytes: &[u8]) {
    let _ = crate::images::decode::decode_resized(bytes, 16);
    let _ = crate::images::decode::decode(bytes);
}

/// The trainer's config reader (every section it reads, the experiment and model checks,
/// the size bounds) and the user's overrides typed from the same text, line by line.
pub fn train_config(bytes: &[u8]) {
    yaml_text(bytes, |text, path| {
        let _ = crate::train::settings::TrainSettings::parse(text, path);
        for line in text.lines().take(64) {
            let _ = crate::config::overrides::infer_type(line);
        }
    });
}

/// The decoded cache's reader on arbitrary file contents: its header checks and the
/// pixels of every slot it then claims to hold.
pub fn cache_header(bytes: &[u8]) {
    use std::io::Write;
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(bytes).is_err() {
        return;
    }
    // The checks that come before the manifest's hash and the size are compared.
    let sha = serde_json::from_slice::<serde_json::Value>(bytes.get(12..).unwrap_or_default())
        .ok()
        .and_then(|v| v["manifest_sha256"].as_str().map(str::to_owned))
        .unwrap_or_default();
    for size in [1, 40] {
        if let Ok(cache) = crate::images::cache::Cache::open(file.path(), &sha, size) {
            for slot in 0..cache.header.paths.len().min(64) {
                let _ = cache.pixels_at(slot);
            }
        }
    }
}

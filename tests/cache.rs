//! The decoded cache: round trip through the loader, and refusal of stale caches.

mod util;

use std::sync::Arc;

use balance_split::images::cache::{Cache, CacheError};
use balance_split::images::loader::{Dataset, LoaderConfig, Slots};
use balance_split::manifest::Manifest;
use pretty_assertions::assert_eq;
use util::{repo, run_in, Dir};

const MANIFEST: &str = "tests/golden/downsampling.balanced.json";

fn sha(path: &std::path::Path) -> String {
    balance_split::input::sha256_hex(&std::fs::read(path).unwrap())
}

fn cfg() -> LoaderConfig {
    LoaderConfig {
        image_size: 40,
        channels: 3,
        batch_size: 8,
        drop_last: false,
        augmentation: None,
        seed: 0,
    }
}

#[test]
fn cached_batches_equal_decoded_batches() {
    let d = Dir::new();
    let out = d.join("example.cache");
    let r = run_in(
        &repo(),
        &["cache", MANIFEST, "--out", out.to_str().unwrap()],
        &[],
    );
    r.assert_ok();
    // 20 + 20 train images (distinct files) and 50 val images: 90 x 40 x 40 x 3 = 432000
    // bytes of pixels after a 4928-byte header (a multiple of 64).
    assert_eq!(
        r.stdout,
        format!(
            "cached 90 images of 40x40 (436928 bytes) in {}\n",
            out.display()
        )
    );
    let cache = Arc::new(Cache::open(&out, &sha(&repo().join(MANIFEST)), 40).unwrap());
    assert_eq!(cache.header.classes, vec!["normal", "abnormal"]);
    let text = std::fs::read_to_string(repo().join(MANIFEST)).unwrap();
    let m = Manifest::parse(&text, std::path::Path::new(MANIFEST)).unwrap();
    let plain = Dataset::new(&m.split.train, &repo());
    let cached = Dataset::new(&m.split.train, &repo()).with_cache(cache);
    let positions: Vec<usize> = (0..m.split.train.len()).rev().collect();
    assert_eq!(
        plain.batch(&positions, Slots::START, 0, &cfg()).unwrap(),
        cached.batch(&positions, Slots::START, 0, &cfg()).unwrap()
    );
}

#[test]
fn stale_or_wrong_size_caches_are_refused() {
    let d = Dir::new();
    let out = d.join("c.cache");
    run_in(
        &repo(),
        &["cache", MANIFEST, "--out", out.to_str().unwrap()],
        &[],
    )
    .assert_ok();
    let err = Cache::open(&out, "0000", 40).unwrap_err();
    assert!(matches!(err, CacheError::Stale { .. }));
    assert!(
        err.to_string()
            .contains("stale cache: it was made from a manifest with sha256 "),
        "{err}"
    );
    let err = Cache::open(&out, &sha(&repo().join(MANIFEST)), 64).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: the cache holds 40x40 images but 64x64 are needed; run balance-split cache --image-size 64", out.display())
    );
    std::fs::write(d.join("junk.cache"), b"not a cache at all").unwrap();
    let err = Cache::open(&d.join("junk.cache"), "x", 40).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("not a balance-split image cache (bad magic number)"),
        "{err}"
    );
}

/// A project whose `m.json` upsamples a two-class split whose image files do not exist yet.
fn upsampled_manifest() -> Dir {
    let d = Dir::new();
    d.split(&[2, 1])
        .config("    upsampling:\n      enabled: true\n");
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    d
}

#[test]
fn a_missing_image_fails_the_cache_with_its_entry() {
    let d = upsampled_manifest();
    let r = d.run(&["cache", "m.json", "--out", "m.cache"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: m.json: train[0] (train/c0/img_00000.png): missing (no such file)"
    );
    assert!(!d.exists("m.cache"));
}

#[test]
fn cached_jpegs_equal_decoded_jpegs() {
    // Large JPEGs take the reduced-DCT decode; the cache must hold exactly those pixels.
    let d = upsampled_manifest();
    let text = d.read("m.json");
    let m = Manifest::parse(&text, std::path::Path::new("m.json")).unwrap();
    for (k, (p, _, _)) in m.split.distinct_paths().into_iter().enumerate() {
        let img = image::RgbImage::from_fn(200, 120, |x, y| {
            image::Rgb([
                (x + 7 * k as u32) as u8,
                (y * 2) as u8,
                ((x * y) % 251) as u8,
            ])
        });
        let file = d.join(p);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        // Named .png, JPEG inside: the format comes from the content.
        img.save_with_format(&file, image::ImageFormat::Jpeg)
            .unwrap();
    }
    d.run(&["cache", "m.json", "--out", "m.cache"]).assert_ok();
    let cache = Arc::new(Cache::open(&d.join("m.cache"), &sha(&d.join("m.json")), 40).unwrap());
    let plain = Dataset::new(&m.split.train, d.path());
    let cached = Dataset::new(&m.split.train, d.path()).with_cache(cache);
    let positions: Vec<usize> = (0..m.split.train.len()).collect();
    let a = plain.batch(&positions, Slots::START, 0, &cfg()).unwrap();
    assert_eq!(
        a,
        cached.batch(&positions, Slots::START, 0, &cfg()).unwrap()
    );
    assert_eq!(a.shape, [positions.len(), 3, 40, 40]);
}

/// A cache truncated in place while open (another process rewriting it) is an error naming
/// the image and the cache, never SIGBUS: the cache is read, not memory-mapped.
#[test]
fn a_cache_truncated_while_open_is_an_error_not_a_crash() {
    let d = Dir::new();
    let out = d.join("c.cache");
    run_in(
        &repo(),
        &["cache", MANIFEST, "--out", out.to_str().unwrap()],
        &[],
    )
    .assert_ok();
    let cache = Arc::new(Cache::open(&out, &sha(&repo().join(MANIFEST)), 40).unwrap());
    let text = std::fs::read_to_string(repo().join(MANIFEST)).unwrap();
    let m = Manifest::parse(&text, std::path::Path::new(MANIFEST)).unwrap();
    let cached = Dataset::new(&m.split.train, &repo()).with_cache(cache);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&out)
        .unwrap()
        .set_len(5000)
        .unwrap();
    let err = cached.batch(&[0], Slots::START, 0, &cfg()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "entry 0 ({}): truncated: the cache {} no longer holds this image (failed to fill whole buffer); run balance-split cache again",
            repo().join(&*m.split.train[0].path).display(),
            out.display()
        )
    );
}

/// Every header field is checked: a hand-edited cache is refused at open, naming the field.
#[test]
fn a_hand_edited_cache_header_is_refused() {
    let d = Dir::new();
    let out = d.join("c.cache");
    run_in(
        &repo(),
        &["cache", MANIFEST, "--out", out.to_str().unwrap()],
        &[],
    )
    .assert_ok();
    let bytes = std::fs::read(&out).unwrap();
    let sha = sha(&repo().join(MANIFEST));
    let edit = |from: &str, to: &str| -> String {
        let mut b = bytes.clone();
        let at = b
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap();
        b.splice(at..at + from.len(), to.bytes());
        let p = d.join("edited.cache");
        std::fs::write(&p, &b).unwrap();
        Cache::open(&p, &sha, 40).unwrap_err().to_string()
    };
    let p = d.join("edited.cache");
    assert_eq!(
        edit("\"channels\":3", "\"channels\":1"),
        format!("{}: not a balance-split image cache (header: channels is 1; a cache holds RGB images (3))", p.display())
    );
    assert_eq!(
        edit("\"image_size\":40", "\"image_size\":0 "),
        format!(
            "{}: not a balance-split image cache (header: image_size is 0; expected 1 to 4096)",
            p.display()
        )
    );
    let mut short = bytes.clone();
    short.truncate(bytes.len() - 1);
    std::fs::write(&p, &short).unwrap();
    assert_eq!(
        Cache::open(&p, &sha, 40).unwrap_err().to_string(),
        format!(
            "{}: not a balance-split image cache (436927 bytes, but its header describes 436928)",
            p.display()
        )
    );
    let mut huge = bytes.clone();
    huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&p, &huge).unwrap();
    assert_eq!(
        Cache::open(&p, &sha, 40).unwrap_err().to_string(),
        format!("{}: not a balance-split image cache (its header claims 4294967295 bytes but the file has 436928)", p.display())
    );
}

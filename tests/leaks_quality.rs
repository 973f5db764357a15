//! `check-leaks`' defaults, the hash's candidates confirmed by the pixels, on images made
//! here (bench/leaks_quality.py measures the same on photographs and at other settings;
//! docs/check-leaks.md has its table; `cargo test --release --test leaks_quality --
//! --nocapture` prints this one).
//!
//! Images: the committed 48x32 photo fixture, 400 generated ones (smooth random scenes:
//! blobs, gradients and texture at random colours, 64x64, from a fixed seed) and the
//! embedded example's 250 look-alike discs, each also as transformed copies: JPEG files at
//! quality 90 and 70, a 4x enlargement saved as JPEG at 90 (the JPEGs read as check-leaks
//! reads files: libjpeg at a reduced DCT scale), resized to half and back, resized to half,
//! shifted by 1 and 2 pixels, brightened by 12 levels, mirrored.

use balance_split::leaks::confirm::{self, Thumb};
use balance_split::leaks::{self, index};
use balance_split::rng::{Purpose, Stream};
use image::{imageops, Rgb, RgbImage};

const SIDE: u32 = 64;

fn scene(seed: u64) -> RgbImage {
    let mut r = Stream::new(seed, Purpose::Generation, &[]);
    let mut u = move || r.uniform();
    let base = [u() * 255.0, u() * 255.0, u() * 255.0];
    let grad = [(u() - 0.5) * 200.0, (u() - 0.5) * 200.0];
    let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..2 + (u() * 5.0) as usize)
        .map(|_| {
            (
                u(),
                u(),
                0.05 + u() * 0.3,
                [u() * 255.0, u() * 255.0, u() * 255.0],
            )
        })
        .collect();
    let freq = 2.0 + u() * 10.0;
    let phase = u() * std::f64::consts::TAU;
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (fx, fy) = (
            f64::from(x) / f64::from(SIDE),
            f64::from(y) / f64::from(SIDE),
        );
        let mut c = [0.0; 3];
        for k in 0..3 {
            c[k] = base[k] + grad[0] * (fx - 0.5) + grad[1] * (fy - 0.5);
        }
        for &(bx, by, rad, col) in &blobs {
            let w = (-((fx - bx).powi(2) + (fy - by).powi(2)) / (rad * rad)).exp();
            for k in 0..3 {
                c[k] = c[k] * (1.0 - w) + col[k] * w;
            }
        }
        let tex = 12.0 * (freq * std::f64::consts::TAU * (fx + 0.7 * fy) + phase).sin();
        Rgb(c.map(|v| (v + tex).clamp(0.0, 255.0) as u8))
    })
}

/// What check-leaks compares of an image: its pHash and thumbnail.
type Seen = (u64, Thumb);

fn seen(img: &RgbImage) -> Seen {
    (leaks::phash(img), confirm::thumbnail(img))
}

/// `img` saved as a JPEG file, read as check-leaks reads that file (libjpeg at a reduced
/// DCT scale).
fn jpeg(img: &RgbImage, quality: u8) -> Seen {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    let (sketch, thumb) = leaks::sketch(&out).unwrap();
    assert!(sketch.by_libjpeg, "{}x{}", img.width(), img.height());
    (sketch.phash, thumb)
}

fn shifted(img: &RgbImage, by: u32) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        *img.get_pixel(x.saturating_sub(by), y.saturating_sub(by))
    })
}

/// A transformed copy, as check-leaks sees it.
type Transform = (&'static str, fn(&RgbImage) -> Seen);

fn half(i: &RgbImage) -> RgbImage {
    imageops::resize(
        i,
        i.width() / 2,
        i.height() / 2,
        imageops::FilterType::Triangle,
    )
}

const TRANSFORMS: [Transform; 9] = [
    ("jpeg-90", |i| jpeg(i, 90)),
    ("jpeg-70", |i| jpeg(i, 70)),
    // A 4x upscaled copy saved as JPEG: libjpeg decodes it at 1/8 for the hash.
    ("4x-jpeg-90", |i| {
        let (w, h) = (i.width() * 4, i.height() * 4);
        jpeg(
            &imageops::resize(i, w, h, imageops::FilterType::Triangle),
            90,
        )
    }),
    ("resize-half-and-back", |i| {
        seen(&imageops::resize(
            &half(i),
            i.width(),
            i.height(),
            imageops::FilterType::Triangle,
        ))
    }),
    ("resize-half", |i| seen(&half(i))),
    ("shift-1", |i| seen(&shifted(i, 1))),
    ("shift-2", |i| seen(&shifted(i, 2))),
    ("brighter", |i| {
        let mut o = i.clone();
        o.pixels_mut()
            .for_each(|p| p.0 = p.0.map(|v| v.saturating_add(12)));
        seen(&o)
    }),
    ("mirror", |i| seen(&imageops::flip_horizontal(i))),
];

fn originals() -> Vec<RgbImage> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let split: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("splits/example/train_val_split.json")).unwrap(),
    )
    .unwrap();
    // The embedded example: variations of one synthetic disc, look-alikes by design, which
    // the pixels must tell apart where the hash cannot.
    let example = ["train", "val"]
        .iter()
        .flat_map(|l| split[l].as_array().unwrap().clone())
        .map(|e| repo.join(e["path"].as_str().unwrap()));
    let files =
        std::iter::once(repo.join("tests/fixtures/images/pattern_48x32.jpg")).chain(example);
    let mut out: Vec<RgbImage> = files
        .map(|p| {
            image::open(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .into_rgb8()
        })
        .collect();
    out.extend((0..400).map(scene));
    out
}

/// Reported by check-leaks at its defaults: a hash candidate (or two featureless images of
/// one colour) whose pixels confirm it.
fn reported(a: &Seen, b: &Seen) -> bool {
    let close = (a.0 ^ b.0).count_ones() <= leaks::DEFAULT_THRESHOLD;
    let flat = [a, b]
        .iter()
        .all(|s| confirm::spread(&s.1) < confirm::FLAT_SPREAD)
        && (0..3)
            .all(|c| (confirm::mean(&a.1)[c] - confirm::mean(&b.1)[c]).abs() <= confirm::FLAT_MEAN);
    (close || flat) && confirm::residual(&a.1, &b.1) <= confirm::DEFAULT_MAX_RESIDUAL
}

#[test]
fn the_defaults_find_reencoded_and_resized_copies_and_no_distinct_image() {
    let images = originals();
    let views: Vec<Seen> = images.iter().map(seen).collect();
    let mut table = String::from("transform | copies found at the defaults\n");
    let mut recall = Vec::new();
    for (name, t) in TRANSFORMS {
        let found = images
            .iter()
            .zip(&views)
            .filter(|(img, v)| reported(v, &t(img)))
            .count() as f64
            / images.len() as f64;
        table += &format!("{name} | {:.1}%\n", 100.0 * found);
        recall.push(found);
    }
    // Distinct images: the hash's candidates among them, then the pixels.
    let hashes: Vec<u64> = views.iter().map(|v| v.0).collect();
    let false_pairs: Vec<(usize, usize)> =
        index::pairs_within(&hashes, leaks::DEFAULT_THRESHOLD, |_, _| true)
            .into_iter()
            .filter(|&(i, j, _)| reported(&views[i], &views[j]))
            .map(|(i, j, _)| (i, j))
            .collect();
    println!(
        "{} images; distinct pairs reported: {}\n{table}",
        images.len(),
        false_pairs.len()
    );
    for (k, (name, _)) in TRANSFORMS.iter().enumerate() {
        if [
            "jpeg-90",
            "4x-jpeg-90",
            "resize-half-and-back",
            "resize-half",
        ]
        .contains(name)
        {
            assert_eq!(recall[k], 1.0, "{name} at the defaults\n{table}");
        }
    }
    assert_eq!(
        false_pairs,
        [],
        "distinct images reported as copies\n{table}"
    );
}

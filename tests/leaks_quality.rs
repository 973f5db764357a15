//! How well the pHash finds disguised copies, and how often it confuses distinct images: the
//! measurement behind `check-leaks`' default threshold (docs/check-leaks.md has the table this prints;
//! `cargo test --release --test leaks_quality -- --nocapture` shows it).
//!
//! Images: the committed 48x32 photo fixture and 400 generated ones (smooth random scenes:
//! blobs, gradients and texture at random colours, 64x64, from a fixed seed), each also as
//! transformed copies: JPEG files at quality 90 and 70, a 4x enlargement saved as JPEG at 90
//! (the JPEGs hashed as check-leaks hashes files: libjpeg at a reduced DCT scale), resized
//! to half and back, shifted by 1 and 2 pixels, brightened by 12 levels, mirrored.

use balance_split::leaks::{self, phash};
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

/// The pHash of `img` saved as a JPEG file, as check-leaks hashes that file (libjpeg at a
/// reduced DCT scale).
fn jpeg(img: &RgbImage, quality: u8) -> u64 {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    let sketch = leaks::sketch(&out).unwrap();
    assert!(sketch.by_libjpeg, "{}x{}", img.width(), img.height());
    sketch.phash
}

fn shifted(img: &RgbImage, by: u32) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        *img.get_pixel(x.saturating_sub(by), y.saturating_sub(by))
    })
}

/// A transformed copy's pHash.
type Transform = (&'static str, fn(&RgbImage) -> u64);

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
        phash(&imageops::resize(
            &half(i),
            i.width(),
            i.height(),
            imageops::FilterType::Triangle,
        ))
    }),
    ("resize-half", |i| phash(&half(i))),
    ("shift-1", |i| phash(&shifted(i, 1))),
    ("shift-2", |i| phash(&shifted(i, 2))),
    ("brighter", |i| {
        let mut o = i.clone();
        o.pixels_mut()
            .for_each(|p| p.0 = p.0.map(|v| v.saturating_add(12)));
        phash(&o)
    }),
    ("mirror", |i| phash(&imageops::flip_horizontal(i))),
];

fn originals() -> Vec<RgbImage> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The embedded example's images are left out: they are variations of one synthetic
    // template (a disc on a dark ground), near duplicates of each other by design.
    let files = [repo.join("tests/fixtures/images/pattern_48x32.jpg")];
    let mut out: Vec<RgbImage> = files
        .iter()
        .map(|p| {
            image::open(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .into_rgb8()
        })
        .collect();
    out.extend((0..400).map(scene));
    out
}

#[test]
fn the_default_threshold_finds_reencoded_and_resized_copies_and_not_distinct_images() {
    let images = originals();
    let hashes: Vec<u64> = images.iter().map(phash).collect();
    let mut table = String::from("threshold");
    for (name, _) in TRANSFORMS {
        table += &format!(" | {name}");
    }
    table += " | distinct pairs matched | distinct images with a false match\n";
    let distances: Vec<Vec<u32>> = TRANSFORMS
        .iter()
        .map(|(_, t)| {
            images
                .iter()
                .zip(&hashes)
                .map(|(img, &h)| (t(img) ^ h).count_ones())
                .collect()
        })
        .collect();
    let mut distinct = Vec::new();
    for i in 0..hashes.len() {
        for j in i + 1..hashes.len() {
            distinct.push((i, j, (hashes[i] ^ hashes[j]).count_ones()));
        }
    }
    let mut at_default = None;
    for t in [2u32, 4, 6, 8, 10, 12, 14, 16] {
        let recall: Vec<f64> = distances
            .iter()
            .map(|d| d.iter().filter(|&&x| x <= t).count() as f64 / d.len() as f64)
            .collect();
        let fp_pairs = distinct.iter().filter(|p| p.2 <= t).count();
        let mut flagged = vec![false; hashes.len()];
        for &(i, j, d) in &distinct {
            if d <= t {
                flagged[i] = true;
                flagged[j] = true;
            }
        }
        let fp_images = flagged.iter().filter(|&&f| f).count() as f64 / hashes.len() as f64;
        table += &format!("{t}");
        for r in &recall {
            table += &format!(" | {:.1}%", 100.0 * r);
        }
        table += &format!(
            " | {:.3}% | {:.2}%\n",
            100.0 * fp_pairs as f64 / distinct.len() as f64,
            100.0 * fp_images
        );
        if t == leaks::DEFAULT_THRESHOLD {
            at_default = Some((recall, fp_images));
        }
    }
    println!(
        "{} images, {} distinct pairs\n{table}",
        images.len(),
        distinct.len()
    );
    let (recall, fp_images) = at_default.expect("the default is one of the thresholds measured");
    for (k, (name, _)) in TRANSFORMS.iter().enumerate() {
        if [
            "jpeg-90",
            "4x-jpeg-90",
            "resize-half-and-back",
            "resize-half",
        ]
        .contains(name)
        {
            assert_eq!(recall[k], 1.0, "{name} at the default threshold\n{table}");
        }
    }
    assert!(fp_images < 0.01, "false positives {fp_images}\n{table}");
}

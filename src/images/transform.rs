//! Per-sample transforms, as the user's torchvision pipeline applies them:
//! `Resize((s, s))`, `RandomHorizontalFlip`, `RandomRotation(deg)`, optional
//! `ColorJitter`, `ToTensor`, `Normalize(0.5, 0.5)`. Pure functions on pixel buffers; the
//! randomness comes in as already-drawn parameters (see [`Augment::draw`]) so a sample's
//! result depends only on its own stream.

use image::imageops;
use image::RgbImage;
use serde::Deserialize;

use crate::rng::EpochStream;

/// `data.augmentation` of the user's config.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AugmentationConfig {
    pub horizontal_flip: bool,
    /// `RandomRotation(deg)`: an angle uniform in [-deg, deg]; 0 disables it.
    pub rotation_degrees: f64,
    pub color_jitter: ColorJitterConfig,
}

/// `data.augmentation.color_jitter`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ColorJitterConfig {
    pub enabled: bool,
    /// Brightness, contrast and saturation factors are drawn from [1 - s, 1 + s].
    pub strength: f64,
}

impl ColorJitterConfig {
    /// Whether jitter changes anything: enabled with a strength of 0 draws nothing.
    pub fn active(&self) -> bool {
        self.enabled && self.strength > 0.0
    }
}

/// The random choices for one sample, drawn in this fixed order from its own stream:
/// flip coin, rotation angle, brightness, contrast, saturation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    pub flip: bool,
    pub degrees: f64,
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
}

impl Augment {
    /// No augmentation (validation data).
    pub const NONE: Augment = Augment {
        flip: false,
        degrees: 0.0,
        brightness: 1.0,
        contrast: 1.0,
        saturation: 1.0,
    };

    /// Draws one sample's choices. Every enabled transform consumes its numbers; disabled
    /// ones consume none, so enabling jitter never changes the flips of a config without it.
    pub fn draw(cfg: &AugmentationConfig, s: &mut EpochStream) -> Augment {
        let mut a = Augment::NONE;
        if cfg.horizontal_flip {
            a.flip = s.uniform() < 0.5;
        }
        if cfg.rotation_degrees > 0.0 {
            a.degrees = (s.uniform() * 2.0 - 1.0) * cfg.rotation_degrees;
        }
        if cfg.color_jitter.active() {
            let k = cfg.color_jitter.strength;
            let mut factor = || (1.0 - k + s.uniform() * 2.0 * k).max(0.0);
            a.brightness = factor();
            a.contrast = factor();
            a.saturation = factor();
        }
        a
    }
}

/// Bilinear resize to `size` x `size` as PIL's `resize(BILINEAR)` (which torchvision's
/// `Resize` calls): a convolution whose support grows with the shrink factor, so it
/// averages the source footprint. fast_image_resize implements exactly Pillow's filter
/// with SIMD, several times faster than `image`'s own resize. Takes the image so that an
/// image already at the right size (a 40x40 PNG for a 40-pixel model) is returned as is.
pub fn resize(img: RgbImage, size: u32) -> RgbImage {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    };
    let (w, h) = img.dimensions();
    if (w, h) == (size, size) {
        return img;
    }
    let src = ImageRef::new(w, h, img.as_raw(), PixelType::U8x3)
        .expect("an RgbImage buffer is w * h * 3 bytes");
    let mut dst = Image::new(size, size, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .expect("same pixel type, non-empty sizes");
    RgbImage::from_raw(size, size, dst.into_vec()).expect("size * size * 3 bytes")
}

/// Applies flip, rotation and colour jitter, in torchvision's order, in place where the
/// transform allows.
pub fn augment(mut out: RgbImage, a: &Augment) -> RgbImage {
    if a.flip {
        imageops::flip_horizontal_in_place(&mut out);
    }
    if a.degrees != 0.0 {
        out = rotate(&out, a.degrees);
    }
    if (a.brightness, a.contrast, a.saturation) != (1.0, 1.0, 1.0) {
        jitter(&mut out, a);
    }
    out
}

/// Counter-clockwise rotation by `degrees` about the image centre, nearest neighbour,
/// same size, black fill (PIL's `rotate(angle)` as `RandomRotation` calls it): each output
/// pixel centre is mapped back into the source and takes the pixel it lands in.
pub fn rotate(img: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let source = rotation_source(w, h, degrees);
    RgbImage::from_fn(w, h, |x, y| match source(x, y) {
        Some((sx, sy)) => *img.get_pixel(sx, sy),
        None => image::Rgb([0, 0, 0]),
    })
}

/// The source pixel of output pixel (x, y) under [`rotate`], or `None` where it falls
/// outside the image (black). One function for both [`rotate`] and [`source_map`], so
/// the host pipeline and the device-resident one cannot pick different pixels.
fn rotation_source(w: u32, h: u32, degrees: f64) -> impl Fn(u32, u32) -> Option<(u32, u32)> {
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    move |x, y| {
        let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
        // Inverse of a counter-clockwise rotation in image coordinates (y down).
        let sx = cos * dx - sin * dy + cx;
        let sy = sin * dx + cos * dy + cy;
        (sx >= 0.0 && sy >= 0.0 && sx < w as f64 && sy < h as f64).then_some((sx as u32, sy as u32))
    }
}

/// Whether `cfg`'s augmentation only moves pixels (flips and rotations, no colour
/// jitter): then a sample's augmented image is its plain one gathered through
/// [`source_map`], which the trainer does on the device.
pub fn moves_pixels_only(cfg: &AugmentationConfig) -> bool {
    !cfg.color_jitter.active()
}

/// The flip and rotation of `a` on a `size` x `size` image as a gather: output pixel
/// `y * size + x` takes source pixel `map[y * size + x]`, where `size * size` stands for
/// black. `None` when `a` moves nothing. Per-pixel colour conversions (normalisation,
/// luminance) commute with it, so it applies to the normalised planes as to the RGB bytes.
/// i64, what burn's integer tensors take, so a side of 65536 or more cannot wrap.
pub fn source_map(a: &Augment, size: u32) -> Option<Vec<i64>> {
    if !a.flip && a.degrees == 0.0 {
        return None;
    }
    let side = i64::from(size);
    let black = side * side;
    let rotated = rotation_source(size, size, a.degrees);
    let source = |x: u32, y: u32| {
        let (sx, sy) = if a.degrees != 0.0 {
            rotated(x, y)?
        } else {
            (x, y)
        };
        // The flip comes first (torchvision's order): the rotation reads the flipped image.
        Some((if a.flip { size - 1 - sx } else { sx }, sy))
    };
    let map = (0..size)
        .flat_map(|y| (0..size).map(move |x| (x, y)))
        .map(|(x, y)| source(x, y).map_or(black, |(sx, sy)| i64::from(sy) * side + i64::from(sx)))
        .collect();
    Some(map)
}

/// Brightness, contrast and saturation as torchvision's functional ops define them:
/// blend with black, with the mean grey level, and with the greyscale image.
fn jitter(img: &mut RgbImage, a: &Augment) {
    let grey = |p: [f64; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let clamp = |v: f64| v.clamp(0.0, 255.0);
    for p in img.pixels_mut() {
        for c in &mut p.0 {
            *c = clamp(*c as f64 * a.brightness).round() as u8;
        }
    }
    let n = f64::from(img.width() * img.height()).max(1.0);
    let mean = img
        .pixels()
        .map(|p| grey(p.0.map(f64::from)).round())
        .sum::<f64>()
        / n;
    for p in img.pixels_mut() {
        for c in &mut p.0 {
            *c = clamp(a.contrast * *c as f64 + (1.0 - a.contrast) * mean).round() as u8;
        }
        let g = grey(p.0.map(f64::from));
        for c in &mut p.0 {
            *c = clamp(a.saturation * *c as f64 + (1.0 - a.saturation) * g).round() as u8;
        }
    }
}

/// torchvision's arithmetic in f32, `ToTensor`'s x / 255 then `Normalize`'s
/// (x - 0.5) / 0.5, evaluated once per byte value: a table lookup gives the same bits
/// and lets the cached path skip the two divisions per sample value.
const NORMALIZED: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = (v as f32 / 255.0 - 0.5) / 0.5;
        v += 1;
    }
    table
};

/// `ToTensor` then `Normalize(0.5, 0.5)` of interleaved RGB `pixels` into `out`:
/// channel-major floats in [-1, 1]. With `channels == 1`, `out` gets the luminance
/// (ITU-R 601, rounded to a level as PIL's `convert("L")` does) of each pixel.
pub fn normalize(pixels: &[u8], channels: usize, out: &mut [f32]) {
    let n = pixels.len() / 3;
    if channels == 1 {
        for (o, p) in out[..n].iter_mut().zip(pixels.chunks_exact(3)) {
            let [r, g, b] = [p[0], p[1], p[2]].map(f32::from);
            *o = NORMALIZED[(0.299 * r + 0.587 * g + 0.114 * b).round() as usize];
        }
    } else {
        let (red, rest) = out[..3 * n].split_at_mut(n);
        let (green, blue) = rest.split_at_mut(n);
        for (i, p) in pixels.chunks_exact(3).enumerate() {
            red[i] = NORMALIZED[usize::from(p[0])];
            green[i] = NORMALIZED[usize::from(p[1])];
            blue[i] = NORMALIZED[usize::from(p[2])];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x3 image whose pixel (x, y) is (10x + y, 0, 0).
    fn pattern() -> RgbImage {
        RgbImage::from_fn(3, 3, |x, y| image::Rgb([(10 * x + y) as u8, 0, 0]))
    }

    fn reds(img: &RgbImage) -> Vec<u8> {
        img.pixels().map(|p| p.0[0]).collect()
    }

    #[test]
    fn flip_mirrors_columns() {
        let a = Augment {
            flip: true,
            ..Augment::NONE
        };
        assert_eq!(
            reds(&augment(pattern(), &a)),
            vec![20, 10, 0, 21, 11, 1, 22, 12, 2]
        );
    }

    #[test]
    fn rotation_by_quarter_turns_is_exact() {
        // Counter-clockwise 90 degrees: the top row becomes the left column, read upwards.
        assert_eq!(
            reds(&rotate(&pattern(), 90.0)),
            vec![20, 21, 22, 10, 11, 12, 0, 1, 2]
        );
        assert_eq!(
            reds(&rotate(&pattern(), 180.0)),
            vec![22, 12, 2, 21, 11, 1, 20, 10, 0]
        );
        assert_eq!(reds(&rotate(&pattern(), 0.0)), reds(&pattern()));
    }

    #[test]
    fn rotation_fills_corners_with_black() {
        let white = RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
        let r = rotate(&white, 45.0);
        assert_eq!(r.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(r.get_pixel(4, 4).0, [255, 255, 255]);
    }

    #[test]
    fn normalisation_maps_to_minus_one_one() {
        let mut v = vec![0.0; 6];
        normalize(&[0, 255, 51, 255, 0, 102], 3, &mut v);
        // CHW: red plane, green plane, blue plane; torch gives -0.6000000238418579 and
        // -0.19999998807907104 for 51 and 102, the f32 values written here.
        assert_eq!(v, vec![-1.0, 1.0, 1.0, -1.0, -0.6, -0.19999999]);
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        let mut g = vec![0.0; 2];
        normalize(&[255, 255, 255, 10, 200, 30], 1, &mut g);
        // round(0.299 * 10 + 0.587 * 200 + 0.114 * 30) = 124.
        assert_eq!(g, vec![1.0, NORMALIZED[124]]);
    }

    #[test]
    fn the_table_holds_torchvisions_arithmetic_bit_for_bit() {
        // Evaluated at run time, so the check does not go through the const evaluator.
        let divide = std::hint::black_box(255.0f32);
        for v in 0..=255u8 {
            let want = (f32::from(v) / divide - 0.5) / 0.5;
            assert_eq!(NORMALIZED[usize::from(v)].to_bits(), want.to_bits(), "{v}");
        }
    }

    #[test]
    fn resize_keeps_flat_colours_and_shrinks() {
        let flat = RgbImage::from_pixel(256, 256, image::Rgb([200, 100, 50]));
        let r = resize(flat, 40);
        assert_eq!(r.dimensions(), (40, 40));
        assert!(r.pixels().all(|p| p.0 == [200, 100, 50]));
    }

    #[test]
    fn jitter_identity_and_brightness() {
        let img = pattern();
        let same = augment(img.clone(), &Augment::NONE);
        assert_eq!(same, img);
        let dark = augment(
            img,
            &Augment {
                brightness: 0.5,
                ..Augment::NONE
            },
        );
        assert_eq!(reds(&dark), vec![0, 5, 10, 1, 6, 11, 1, 6, 11]);
    }

    /// `normalize` of `img` through `map` (black where it says `size * size`).
    fn gathered(img: &RgbImage, channels: usize, map: &[i64]) -> Vec<f32> {
        let n = map.len();
        let mut plain = vec![0.0; channels * n];
        normalize(img.as_raw(), channels, &mut plain);
        let mut out = Vec::with_capacity(channels * n);
        for plane in plain.chunks_exact(n) {
            out.extend(
                map.iter()
                    .map(|&m| plane.get(m as usize).copied().unwrap_or(-1.0)),
            );
        }
        out
    }

    #[test]
    fn a_flip_then_a_quarter_turn_as_a_map() {
        let a = Augment {
            flip: true,
            degrees: 90.0,
            ..Augment::NONE
        };
        // pattern() flipped is [20 10 0 / 21 11 1 / 22 12 2]; a quarter turn of that
        // reads its top row upwards into the left column.
        assert_eq!(
            reds(&augment(pattern(), &a)),
            vec![0, 1, 2, 10, 11, 12, 20, 21, 22]
        );
        assert_eq!(source_map(&a, 3).unwrap(), vec![0, 3, 6, 1, 4, 7, 2, 5, 8]);
        assert_eq!(source_map(&Augment::NONE, 3), None);
        // 45 degrees on 2x2: every output centre lands in the image (none black), and
        // nearest neighbour takes the bottom-right pixel twice and the top-left not at all.
        let turned = Augment {
            degrees: 45.0,
            ..Augment::NONE
        };
        assert_eq!(source_map(&turned, 2).unwrap(), vec![1, 3, 2, 3]);
        // The corners of a larger image fall outside: black.
        assert_eq!(source_map(&turned, 8).unwrap()[0], 64);
    }

    #[test]
    fn jitter_is_the_only_transform_that_is_not_a_gather() {
        let mut cfg = AugmentationConfig {
            horizontal_flip: true,
            rotation_degrees: 15.0,
            ..AugmentationConfig::default()
        };
        assert!(moves_pixels_only(&cfg));
        cfg.color_jitter.enabled = true;
        assert!(moves_pixels_only(&cfg), "strength 0 jitters nothing");
        cfg.color_jitter.strength = 0.1;
        assert!(!moves_pixels_only(&cfg));
    }

    proptest::proptest! {
        /// The device path's gather gives exactly the host pipeline's augmented image,
        /// bit for bit, for RGB and for luminance.
        #[test]
        fn the_map_gathers_what_augment_computes(
            size in 1u32..12,
            flip: bool,
            degrees in proptest::prop_oneof![
                proptest::strategy::Just(0.0),
                proptest::strategy::Just(90.0),
                -180.0f64..180.0,
            ],
            seed: u64,
            channels in proptest::prop_oneof![proptest::strategy::Just(1usize), proptest::strategy::Just(3)],
        ) {
            let mut bits = seed;
            let img = RgbImage::from_fn(size, size, |_, _| {
                bits = bits.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let b = bits.to_le_bytes();
                image::Rgb([b[5], b[6], b[7]])
            });
            let a = Augment { flip, degrees, ..Augment::NONE };
            let n = (size * size) as usize;
            let mut want = vec![0.0; channels * n];
            normalize(augment(img.clone(), &a).as_raw(), channels, &mut want);
            let identity: Vec<i64> = (0..i64::from(size * size)).collect();
            let map = source_map(&a, size).unwrap_or(identity);
            proptest::prop_assert_eq!(gathered(&img, channels, &map), want);
        }
    }

    #[test]
    fn disabled_transforms_draw_nothing() {
        let cfg = AugmentationConfig::default();
        let mut s = EpochStream::epoch(0, 0);
        assert_eq!(Augment::draw(&cfg, &mut s), Augment::NONE);
        // The stream was not advanced.
        assert_eq!(s.next_u64(), EpochStream::epoch(0, 0).next_u64());
    }
}

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
        if cfg.color_jitter.enabled && cfg.color_jitter.strength > 0.0 {
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
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
        // Inverse of a counter-clockwise rotation in image coordinates (y down).
        let sx = cos * dx - sin * dy + cx;
        let sy = sin * dx + cos * dy + cy;
        if sx >= 0.0 && sy >= 0.0 && sx < w as f64 && sy < h as f64 {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
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

    #[test]
    fn disabled_transforms_draw_nothing() {
        let cfg = AugmentationConfig::default();
        let mut s = EpochStream::epoch(0, 0);
        assert_eq!(Augment::draw(&cfg, &mut s), Augment::NONE);
        // The stream was not advanced.
        assert_eq!(s.next_u64(), EpochStream::epoch(0, 0).next_u64());
    }
}

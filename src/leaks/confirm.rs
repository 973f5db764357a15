//! The second stage of `check-leaks`: a pair the hash calls near is confirmed (or not) by
//! comparing the two images' pixels, on a tiny colour thumbnail.
//!
//! A hash distance is a candidate filter, not a verdict: on look-alike images (the embedded
//! example, the user's scans: one structure in small variations) the pHash calls hundreds
//! of distinct pairs near, while a copy resized and re-encoded can be as far apart as they
//! are. What separates them (measured in `bench/leaks_quality.py`, table in
//! docs/check-leaks.md): a copy keeps the image's colours and layout at low resolution and
//! differs only in fine detail (JPEG's blocks and ringing, a resize's blur) and in a global
//! brightness or contrast; distinct look-alikes differ there (a disc shifted by a pixel, a
//! tint). So both images are reduced to [`SIDE`] x [`SIDE`] RGB (Pillow's Lanczos, as for
//! the hash), one affine map of levels `y = a x + b` shared by the three channels is fitted
//! from one to the other (`a` within [1/2, 2]: a change of brightness or contrast is a
//! disguise, not a difference), and the root-mean-square of what remains, in 8-bit levels,
//! is the pair's residual; the larger of the two directions is taken. A pair is a near copy
//! when its residual is at most the tolerance ([`DEFAULT_MAX_RESIDUAL`]).

use fast_image_resize::{
    images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};

/// The thumbnail's side: small enough that JPEG and resampling detail averages away, large
/// enough that a shift or a tint of a look-alike does not (6 was the best of 4 to 24 on the
/// three kinds of images measured).
pub const SIDE: usize = 6;

/// `SIDE x SIDE` RGB levels, row by row.
pub type Thumb = [f32; SIDE * SIDE * 3];

/// The largest residual (8-bit levels, RMS) of a confirmed near copy, chosen from the
/// measurements in `bench/leaks_quality.py` (docs/check-leaks.md has the table).
pub const DEFAULT_MAX_RESIDUAL: f64 = 3.0;

/// Below this spread of its thumbnail's luma (standard deviation, levels) an image is
/// featureless (a patch of sky, a blank frame): its pHash is noise, and a JPEG copy of it
/// lands anywhere from the original, so such images are paired by colour instead
/// ([`FLAT_MEAN`]). Measured: the photographs' sky patches 1.1 to 3.9, generated scenes 8
/// and up, the embedded example's discs 50 and up.
pub const FLAT_SPREAD: f64 = 4.0;

/// Two featureless images are the same when their mean colours differ by at most this
/// many levels in every channel: a JPEG or resized copy of a sky patch moves it by 0.15 at
/// most, distinct patches of one sky by 2.3 at least (measured on the photographs of
/// `bench/leaks_quality.py`). A brighter copy of a featureless image is not told from
/// another one.
pub const FLAT_MEAN: f64 = 1.0;

/// The standard deviation of the thumbnail's luma (PIL's `L` weights).
pub fn spread(t: &Thumb) -> f64 {
    let luma: Vec<f64> = t
        .chunks_exact(3)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let n = luma.len() as f64;
    let m = luma.iter().sum::<f64>() / n;
    (luma.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt()
}

/// The mean of each channel.
pub fn mean(t: &Thumb) -> [f64; 3] {
    let mut m = [0.0; 3];
    for p in t.chunks_exact(3) {
        for c in 0..3 {
            m[c] += f64::from(p[c]);
        }
    }
    m.map(|v| v / (t.len() / 3) as f64)
}

/// The image reduced to [`SIDE`] x [`SIDE`] with Pillow's Lanczos filter.
pub fn thumbnail(img: &image::RgbImage) -> Thumb {
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
        .expect("three bytes per pixel");
    let mut small = Image::new(SIDE as u32, SIDE as u32, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut small,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .expect("same pixel type, non-empty sizes");
    let mut out = [0f32; SIDE * SIDE * 3];
    for (o, &v) in out.iter_mut().zip(small.buffer()) {
        *o = f32::from(v);
    }
    out
}

/// The pair's residual: the larger of the two directions' (see the module documentation).
pub fn residual(a: &Thumb, b: &Thumb) -> f64 {
    one_way(a, b).max(one_way(b, a))
}

/// RMS of `y - (s x + t)` for the least-squares `s` (clamped to [1/2, 2]) and `t`.
fn one_way(x: &Thumb, y: &Thumb) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let my = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (f64::from(a) - mx, f64::from(b) - my);
        sxy += dx * dy;
        sxx += dx * dx;
    }
    let s = if sxx > 0.0 {
        (sxy / sxx).clamp(0.5, 2.0)
    } else {
        1.0
    };
    let t = my - s * mx;
    let sq: f64 = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| {
            let r = f64::from(b) - (s * f64::from(a) + t);
            r * r
        })
        .sum();
    (sq / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(f: impl Fn(usize) -> f32) -> Thumb {
        let mut t = [0f32; SIDE * SIDE * 3];
        for (i, v) in t.iter_mut().enumerate() {
            *v = f(i);
        }
        t
    }

    #[test]
    fn brightness_and_contrast_are_not_differences() {
        let a = thumb(|i| (i * 7 % 200) as f32);
        assert_eq!(residual(&a, &a), 0.0);
        let brighter = thumb(|i| (i * 7 % 200) as f32 + 12.0);
        assert!(residual(&a, &brighter) < 1e-9);
        // (A scale exact in f32, so the thumbnail holds exactly the mapped values.)
        let flatter = thumb(|i| (i * 7 % 200) as f32 * 0.75 + 20.0);
        assert!(residual(&a, &flatter) < 1e-9);
    }

    #[test]
    fn a_tint_or_a_rearrangement_is() {
        let a = thumb(|i| (i * 7 % 200) as f32);
        // Red up, blue down: no map shared by the channels undoes it.
        let tinted = thumb(|i| (i * 7 % 200) as f32 + [10.0, 0.0, -10.0][i % 3]);
        assert!(
            (residual(&a, &tinted) - 8.16).abs() < 0.01,
            "{}",
            residual(&a, &tinted)
        );
        let other = thumb(|i| (i * 13 % 200) as f32);
        assert!(residual(&a, &other) > 30.0);
    }

    #[test]
    fn the_thumbnail_of_a_flat_image_is_flat() {
        let img = image::RgbImage::from_pixel(40, 40, image::Rgb([10, 20, 30]));
        let t = thumbnail(&img);
        assert!(t.chunks(3).all(|p| p == [10.0, 20.0, 30.0]));
    }
}

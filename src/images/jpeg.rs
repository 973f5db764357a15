//! JPEG decoding through libjpeg-turbo, the library inside Pillow.
//!
//! Two reasons to leave the `image` crate's decoder on the training path. With the same
//! library and Pillow's settings (accurate integer IDCT, smooth chroma upsampling, both
//! TurboJPEG's defaults) a full-size decode gives exactly the pixels of the user's
//! `Image.open(p).convert("RGB")`. And libjpeg-turbo decodes at 1/2, 1/4 or 1/8 of the
//! size inside the inverse DCT, which saves most of the work when a 256-pixel photo
//! becomes a 40-pixel sample.

use std::cell::RefCell;

use image::RgbImage;
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

/// Larger images go to the `image` crate, whose allocation limit then reports them.
const MAX_PIXELS: usize = 1 << 27;

thread_local! {
    /// One decompressor per thread: creating one allocates libjpeg's state, which costs
    /// as much as decoding a small image.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// The image as RGB (grayscale replicated), decoded at the smallest of 1/8, 1/4, 1/2 and
/// full scale that keeps both sides at or above `min_side` (0: full size).
///
/// `None` when libjpeg-turbo cannot decode it cleanly: an error, a warning about corrupt
/// data (TurboJPEG reports those as failures too), a colour space without an RGB
/// conversion (CMYK). The caller then takes the `image` crate's decoder, which decodes
/// what it can and reports the rest precisely.
pub fn rgb(bytes: &[u8], min_side: u32) -> Option<RgbImage> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Decompressor::new().ok()?);
        }
        let d = slot.as_mut()?;
        let header = d.read_header(bytes).ok()?;
        if header.width.checked_mul(header.height)? > MAX_PIXELS {
            return None;
        }
        let factor = if header.is_lossless {
            ScalingFactor::ONE
        } else {
            scale_for(header.width.min(header.height), min_side)
        };
        d.set_scaling_factor(factor).ok()?;
        let out = header.scaled(factor);
        let mut pixels = vec![0u8; out.width * out.height * 3];
        let image = Image {
            pixels: &mut pixels[..],
            width: out.width,
            pitch: out.width * 3,
            height: out.height,
            format: PixelFormat::RGB,
        };
        d.decompress(bytes, image).ok()?;
        RgbImage::from_raw(out.width as u32, out.height as u32, pixels)
    })
}

/// The smallest power-of-two reduction keeping `side` at or above `min_side`. The odd
/// factors libjpeg-turbo also offers (3/8, 5/8, ...) have no SIMD code and save little.
fn scale_for(side: usize, min_side: u32) -> ScalingFactor {
    let min = min_side as usize;
    [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
    ]
    .into_iter()
    .find(|f| min > 0 && f.scale(side) >= min)
    .unwrap_or(ScalingFactor::ONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_power_of_two_that_keeps_the_target() {
        let f = |side, min| {
            let s = scale_for(side, min);
            (s.num(), s.denom())
        };
        assert_eq!(f(256, 40), (1, 4));
        assert_eq!(f(256, 32), (1, 8));
        assert_eq!(f(256, 33), (1, 4));
        assert_eq!(f(256, 128), (1, 2));
        assert_eq!(f(256, 129), (1, 1));
        assert_eq!(f(40, 40), (1, 1));
        assert_eq!(f(256, 0), (1, 1));
        // Partial blocks round up: 1/8 of 300 is 38 (37.5 rounded up).
        assert_eq!(f(300, 38), (1, 8));
    }
}

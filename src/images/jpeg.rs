//! JPEG decoding through libjpeg-turbo's decoder, the one inside Pillow.
//!
//! Two reasons to leave the `image` crate's decoder on the training path. With the same
//! decoder and Pillow's settings (accurate integer IDCT, smooth chroma upsampling, block
//! smoothing for progressive files: libjpeg's defaults, which Pillow keeps) a full-size
//! decode gives exactly the pixels of the user's `Image.open(p).convert("RGB")`. And
//! libjpeg decodes at 1/2, 1/4 or 1/8 of the size inside the inverse DCT, which saves most
//! of the work when a 256-pixel photo becomes a 40-pixel sample.
//!
//! The library comes from the `mozjpeg` crates: MozJPEG is libjpeg-turbo with a different
//! encoder, and its decoder is libjpeg-turbo's. Unlike the `turbojpeg` crate's bundled
//! build it compiles with the C compiler alone (no cmake); its SIMD code needs `nasm`
//! and is left out, silently and correctly, where `nasm` is missing.

use std::panic::{self, AssertUnwindSafe};

use image::RgbImage;
use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};

/// Larger images go to the `image` crate, whose allocation limit then reports them.
const MAX_PIXELS: usize = 1 << 27;

/// The image as RGB (grayscale replicated), decoded at the smallest of 1/8, 1/4, 1/2 and
/// full scale that keeps both sides at or above `min_side` (0: full size).
///
/// `None` when libjpeg cannot decode it cleanly: an error, a warning about corrupt or
/// missing data (a truncated file is one: libjpeg would pad it with grey), a colour space
/// without an RGB conversion (CMYK, YCCK), a JPEG kind this build lacks (lossless,
/// arithmetic-coded, 12-bit). The caller then takes the `image` crate's decoder, which
/// decodes what it can and reports the rest precisely.
pub fn rgb(bytes: &[u8], min_side: u32) -> Option<RgbImage> {
    sized(bytes, min_side).map(|s| s.image)
}

/// A JPEG decoded at a reduced scale, with the size of the full image.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The full image's width and height.
    pub width: u32,
    pub height: u32,
    pub image: RgbImage,
}

/// [`rgb`], with the full image's size: what a reduced decode cannot tell from its pixels.
pub fn sized(bytes: &[u8], min_side: u32) -> Option<Decoded> {
    // libjpeg reports errors by calling back into us; the callbacks unwind (the library is
    // compiled with -fexceptions for that), and the unwind ends here.
    panic::catch_unwind(AssertUnwindSafe(|| decode(bytes, min_side)))
        .ok()
        .flatten()
}

fn decode(bytes: &[u8], min_side: u32) -> Option<Decoded> {
    let mut d = Decompress::with_err(error_manager()).from_mem(bytes).ok()?;
    if !matches!(
        d.color_space(),
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_GRAYSCALE | ColorSpace::JCS_RGB
    ) {
        return None;
    }
    let (width, height) = d.size();
    if width.checked_mul(height)? > MAX_PIXELS {
        return None;
    }
    d.scale(eighths_for(width.min(height), min_side));
    let mut started = d.rgb().ok()?;
    let (w, h) = (started.width(), started.height());
    let mut pixels = vec![0u8; w.checked_mul(h)?.checked_mul(3)?];
    started.read_scanlines_into(&mut pixels).ok()?;
    started.finish().ok()?;
    Some(Decoded {
        width: u32::try_from(width).ok()?,
        height: u32::try_from(height).ok()?,
        image: RgbImage::from_raw(u32::try_from(w).ok()?, u32::try_from(h).ok()?, pixels)?,
    })
}

/// libjpeg's standard error manager with both ways of reporting turned into an unwind:
/// errors, and warnings too, since a warning means corrupt or missing data that libjpeg
/// would paper over (TurboJPEG's "stop on warning").
fn error_manager() -> jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is a plain C struct for which all-zero is a valid value, and
    // jpeg_std_error fills in every field it needs.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(unwind_on_warning);
    err
}

extern "C-unwind" fn unwind_on_error(_cinfo: &mut jpeg_common_struct) {
    // resume_unwind, not panic!: no panic hook, so nothing is printed.
    panic::resume_unwind(Box::new("libjpeg error"));
}

extern "C-unwind" fn unwind_on_warning(
    _cinfo: &mut jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    // Levels 0 and up are trace messages; -1 is a warning.
    if level < 0 {
        panic::resume_unwind(Box::new("libjpeg warning"));
    }
}

/// The scale, in eighths, of the smallest power-of-two reduction keeping `side` at or
/// above `min_side`. The odd factors libjpeg also offers (3/8, 5/8, ...) have no SIMD
/// code and save little. Partial blocks round up: 1/8 of 300 is 38.
fn eighths_for(side: usize, min_side: u32) -> u8 {
    let min = min_side as usize;
    [1u8, 2, 4]
        .into_iter()
        .find(|&e| min > 0 && (side * e as usize).div_ceil(8) >= min)
        .unwrap_or(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_power_of_two_that_keeps_the_target() {
        assert_eq!(eighths_for(256, 40), 2);
        assert_eq!(eighths_for(256, 32), 1);
        assert_eq!(eighths_for(256, 33), 2);
        assert_eq!(eighths_for(256, 128), 4);
        assert_eq!(eighths_for(256, 129), 8);
        assert_eq!(eighths_for(40, 40), 8);
        assert_eq!(eighths_for(256, 0), 8);
        // Partial blocks round up: 1/8 of 300 is 38 (37.5 rounded up).
        assert_eq!(eighths_for(300, 38), 1);
        assert_eq!(eighths_for(300, 39), 2);
    }
}

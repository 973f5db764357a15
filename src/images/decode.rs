//! Decoding one image file, and saying precisely why a file is not a usable image.

use std::io::ErrorKind;
use std::path::Path;

use image::{DynamicImage, ImageError, ImageFormat};
use serde::Serialize;

/// Why a file cannot be used as an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Problem {
    #[error("missing (no such file)")]
    Missing,
    #[error("not a file (a directory or a device)")]
    NotAFile,
    #[error("unreadable: {0}")]
    Unreadable(String),
    #[error("too large: {0} bytes (at most {MAX_IMAGE_BYTES} bytes per image file)")]
    TooLarge(u64),
    #[error("not an image: the content matches no known image signature")]
    NotAnImage,
    #[error("unsupported format: {0} (supported: PNG, JPEG, TIFF, BMP)")]
    Unsupported(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("too large to decode: {width}x{height} pixels need about {needed} bytes, more than the {budget} bytes decoding may take at once")]
    TooLargeToDecode {
        width: u32,
        height: u32,
        needed: u64,
        budget: u64,
    },
}

/// What a decodable file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Info {
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// As the file stores it: `L8`, `La8`, `Rgb8`, `Rgba8`, `L16`, `Rgb16`, ...
    pub color: String,
}

/// The largest image file read. Training images are kilobytes to a few megabytes; the
/// bound keeps a huge or sparse file named `.png` from becoming an allocation of its size.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Reads a file's bytes, classifying failures. One open and one `fstat` on the handle:
/// for a 40x40 PNG the file system calls cost a third as much as decoding.
pub fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    let unreadable = |e: std::io::Error| Problem::Unreadable(e.to_string());
    let file = open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Problem::Missing,
        _ => unreadable(e),
    })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(Problem::NotAFile);
    }
    crate::input::read_at_most(&file, &meta, MAX_IMAGE_BYTES)
        .map_err(unreadable)?
        .map_err(Problem::TooLarge)
}

/// Opens for reading without blocking: a FIFO named like an image would otherwise wait for
/// a writer forever before `read` could say it is not a file. Regular files ignore the flag.
#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Decodes image bytes. The format comes from the content, not the file name.
pub fn decode(bytes: &[u8]) -> Result<(DynamicImage, Info), Problem> {
    let format = image::guess_format(bytes).map_err(|_| Problem::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Tiff | ImageFormat::Bmp
    ) {
        return Err(Problem::Unsupported(format!("{format:?}").to_lowercase()));
    }
    if format == ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        // Some JPEG decoders return the part they could read without an error; PIL
        // reports these files as truncated, and so do we.
        return Err(Problem::Truncated("no JPEG end-of-image marker".into()));
    }
    let _admitted = budget::admit(bytes, format)?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(budget::TOTAL);
    reader.limits(limits);
    let img = reader.decode().map_err(classify)?;
    let info = Info {
        format: format!("{format:?}").to_lowercase(),
        width: img.width(),
        height: img.height(),
        color: format!("{:?}", img.color()),
    };
    Ok((img, info))
}

/// Whether a JPEG stream ends with its end-of-image marker (`FF D9`), allowing the zero
/// padding some writers append.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    end >= 2 && bytes[end - 2..end] == [0xFF, 0xD9]
}

fn classify(e: ImageError) -> Problem {
    match e {
        ImageError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            Problem::Truncated(io.to_string())
        }
        ImageError::Unsupported(u) => Problem::Unsupported(u.to_string()),
        other => {
            let message = other.to_string();
            let lower = message.to_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat") {
                Problem::Truncated(message)
            } else {
                Problem::Corrupt(message)
            }
        }
    }
}

/// The file as an RGB image of `size` x `size`, for training and for the cache: decode,
/// `convert("RGB")`, bilinear resize. JPEGs go through libjpeg-turbo (see [`super::jpeg`]):
/// pixel-identical to Pillow at full size, and a JPEG at least twice the target size in
/// both directions is decoded at a reduced DCT scale (1/2, 1/4 or 1/8, the smallest that
/// stays at or above the target) before the resize, since the inverse DCT of the dropped
/// frequencies is work the resize would average away. Those pixels then differ from a
/// full decode by a few levels; `check-images` always decodes fully.
pub fn decode_resized(bytes: &[u8], size: u32) -> Result<image::RgbImage, Problem> {
    if let Some(jpeg) = jpeg_reduced(bytes, size) {
        return Ok(super::transform::resize(jpeg.image, size));
    }
    let (img, _) = decode(bytes)?;
    Ok(super::transform::resize(into_rgb8(img), size))
}

/// A JPEG decoded by libjpeg at the smallest power-of-two DCT scale that keeps both sides
/// at or above `min_side` (see [`super::jpeg::sized`]); `None` for any other format and for
/// a JPEG libjpeg cannot decode cleanly, which [`decode`] then decodes or reports.
pub fn jpeg_reduced(bytes: &[u8], min_side: u32) -> Option<super::jpeg::Decoded> {
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) || !has_jpeg_end(bytes) {
        return None;
    }
    // A file over the budget is left to `decode`, which reports it.
    let _admitted = budget::admit(bytes, ImageFormat::Jpeg).ok()?;
    super::jpeg::sized(bytes, min_side)
}

/// The memory of decoding, bounded for the whole process, on every path (libjpeg's and
/// the `image` crate's): a file's declared size is read from its header first, refused when
/// its bytes could not encode that many pixels (a 1.2 KB JPEG declaring 11585x11585 made
/// the fallback decoder allocate 800 MB and call the file usable), and then decodes take
/// their estimated memory from one budget, so however many threads decode at once (a
/// 64-core machine's rayon pool) their sum stays within it.
mod budget {
    use std::sync::{Condvar, Mutex};

    use image::ImageFormat;

    use super::Problem;

    /// What all decodes in flight may take together: 1 GiB (2^27 pixels at 8 bytes).
    pub const TOTAL: u64 = 1 << 30;

    /// Bytes of memory a decode of one pixel may take, at most: 8-bit RGBA or 16-bit RGB
    /// samples (the `image` crate), or libjpeg's coefficients of a progressive file (2 bytes
    /// per pixel and component) and its output.
    const BYTES_PER_PIXEL: u64 = 8;

    /// Pixels any file may declare beyond what its size bounds: small images in small files
    /// (a 100-byte PNG of one colour) decode whatever the formulas below say.
    const SLACK_PIXELS: u64 = 1 << 20;

    static IN_FLIGHT: Mutex<u64> = Mutex::new(0);
    static FREED: Condvar = Condvar::new();

    /// A decode's share of the budget, returned when dropped.
    pub struct Admitted(u64);

    impl Drop for Admitted {
        fn drop(&mut self) {
            *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()) -= self.0;
            FREED.notify_all();
        }
    }

    /// The most pixels `len` bytes of `format` can encode. JPEG: at least one bit per 8x8
    /// block of one component (a Huffman code is never shorter), 512 pixels a byte. PNG:
    /// deflate expands at most 1032 times and a pixel takes at least one bit, 8256 pixels a
    /// byte. TIFF and BMP (LZW, PackBits, RLE with skips): 2^16 pixels a byte, generously.
    fn most_pixels(format: ImageFormat, len: u64) -> u64 {
        let per_byte = match format {
            ImageFormat::Jpeg => 512,
            ImageFormat::Png => 8 * 1032,
            _ => 1 << 16,
        };
        len.saturating_mul(per_byte).saturating_add(SLACK_PIXELS)
    }

    /// Checks the declared size against the bytes, then waits for its share of the budget.
    pub fn admit(bytes: &[u8], format: ImageFormat) -> Result<Admitted, Problem> {
        let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(super::classify)?;
        let pixels = u64::from(width) * u64::from(height);
        if pixels > most_pixels(format, bytes.len() as u64) {
            return Err(Problem::Corrupt(format!(
                "declares {width}x{height} pixels, more than its {} bytes can encode",
                bytes.len()
            )));
        }
        let needed = pixels.saturating_mul(BYTES_PER_PIXEL).max(1);
        if needed > TOTAL {
            return Err(Problem::TooLargeToDecode {
                width,
                height,
                needed,
                budget: TOTAL,
            });
        }
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        while *in_flight + needed > TOTAL {
            in_flight = FREED.wait(in_flight).unwrap_or_else(|e| e.into_inner());
        }
        *in_flight += needed;
        Ok(Admitted(needed))
    }
}

/// The user's `convert("RGB")`: three 8-bit channels, grayscale replicated, alpha dropped
/// (no copy when the file already is 8-bit RGB). 16-bit samples are scaled to 8 bits
/// (`round(v / 257)`); PIL would clip them at 255.
pub fn into_rgb8(img: DynamicImage) -> image::RgbImage {
    img.into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb};
    use std::io::Cursor;

    fn encode<P: image::PixelWithColorType>(
        img: &ImageBuffer<P, Vec<P::Subpixel>>,
        format: ImageFormat,
    ) -> Vec<u8>
    where
        [P::Subpixel]: image::EncodableLayout,
    {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    const RGB_2X2: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]];

    fn rgb_2x2() -> image::RgbImage {
        ImageBuffer::from_fn(2, 2, |x, y| Rgb(RGB_2X2[(y * 2 + x) as usize]))
    }

    #[test]
    fn rgb_png_is_pixel_exact() {
        let (img, info) = decode(&encode(&rgb_2x2(), ImageFormat::Png)).unwrap();
        assert_eq!(
            info,
            Info {
                format: "png".into(),
                width: 2,
                height: 2,
                color: "Rgb8".into()
            }
        );
        assert_eq!(into_rgb8(img).into_raw(), RGB_2X2.concat());
    }

    #[test]
    fn grayscale_16_bit_is_scaled_and_replicated() {
        let g: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_raw(4, 1, vec![0, 257, 32896, 65535]).unwrap();
        let (img, info) = decode(&encode(&g, ImageFormat::Png)).unwrap();
        assert_eq!(info.color, "L16");
        let rgb = into_rgb8(img).into_raw();
        assert_eq!(rgb, vec![0, 0, 0, 1, 1, 1, 128, 128, 128, 255, 255, 255]);
        // With `in_channels: 1` the loader's luminance of grey pixels is their level.
        let mut one = vec![0.0; 4];
        crate::images::transform::normalize(&rgb, 1, &mut one);
        let mut planes = vec![0.0; 12];
        crate::images::transform::normalize(&rgb, 3, &mut planes);
        assert_eq!(one, planes[..4]);
    }

    #[test]
    fn alpha_is_dropped_not_composited() {
        let a: image::RgbaImage =
            ImageBuffer::from_raw(2, 1, vec![10, 20, 30, 0, 40, 50, 60, 128]).unwrap();
        let (img, info) = decode(&encode(&a, ImageFormat::Png)).unwrap();
        assert_eq!(info.color, "Rgba8");
        // What PIL's convert("RGB") gives for the same file: [[10, 20, 30], [40, 50, 60]].
        assert_eq!(into_rgb8(img).into_raw(), vec![10, 20, 30, 40, 50, 60]);
    }

    #[test]
    fn jpeg_bmp_and_tiff_decode() {
        let flat: image::RgbImage = ImageBuffer::from_pixel(16, 16, Rgb([200, 100, 50]));
        let (img, info) = decode(&encode(&flat, ImageFormat::Jpeg)).unwrap();
        assert_eq!(info.format, "jpeg");
        for p in into_rgb8(img).pixels() {
            for (got, want) in p.0.iter().zip([200u8, 100, 50]) {
                assert!(got.abs_diff(want) <= 3, "{:?}", p.0);
            }
        }
        for format in [ImageFormat::Bmp, ImageFormat::Tiff] {
            let (img, _) = decode(&encode(&rgb_2x2(), format)).unwrap();
            assert_eq!(into_rgb8(img).into_raw(), RGB_2X2.concat(), "{format:?}");
        }
    }

    #[test]
    fn large_jpegs_decode_scaled_close_to_a_full_decode() {
        let img: image::RgbImage = ImageBuffer::from_fn(256, 192, |x, y| {
            Rgb([
                (x % 256) as u8,
                (y * 4 % 256) as u8,
                ((x + y) / 2 % 256) as u8,
            ])
        });
        let jpeg = encode(&img, ImageFormat::Jpeg);
        let small = decode_resized(&jpeg, 40).unwrap();
        assert_eq!(small.dimensions(), (40, 40));
        let (full, _) = decode(&jpeg).unwrap();
        let reference = crate::images::transform::resize(into_rgb8(full), 40);
        let diff: f64 = small
            .as_raw()
            .iter()
            .zip(reference.as_raw())
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / small.as_raw().len() as f64;
        assert!(diff < 4.0, "mean absolute difference {diff}");
        // Small JPEGs and other formats take the full decode.
        let png = encode(&rgb_2x2(), ImageFormat::Png);
        assert_eq!(
            decode_resized(&png, 2).unwrap().into_raw(),
            RGB_2X2.concat()
        );
    }

    /// A small JPEG whose frame header declares `w` x `h`, with `comment` bytes of COM
    /// segments before the frame (bytes the file has, that encode no pixel).
    fn jpeg_declaring(w: u16, h: u16, comment: usize) -> Vec<u8> {
        let mut jpeg = encode(
            &ImageBuffer::from_pixel(16, 16, Rgb([9u8, 9, 9])),
            ImageFormat::Jpeg,
        );
        let sof = jpeg
            .windows(2)
            .position(|m| m == [0xFF, 0xC0] || m == [0xFF, 0xC2])
            .expect("a frame header");
        jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        let mut junk = Vec::new();
        let mut left = comment;
        while left > 0 {
            let n = left.min(65_000);
            junk.extend([0xFF, 0xFE]);
            junk.extend(((n + 2) as u16).to_be_bytes());
            junk.extend(std::iter::repeat_n(b'x', n));
            left -= n;
        }
        jpeg.splice(2..2, junk);
        jpeg
    }

    /// A file declaring more pixels than its bytes can encode is refused from its header,
    /// before any decoder allocates for them (the 1.2 KB JPEG declaring 11585x11585).
    #[test]
    fn a_declared_size_the_bytes_cannot_hold_is_refused_before_decoding() {
        let jpeg = jpeg_declaring(11585, 11585, 0);
        assert!(jpeg.len() < 2000, "{}", jpeg.len());
        assert_eq!(
            decode(&jpeg).unwrap_err(),
            Problem::Corrupt(format!(
                "declares 11585x11585 pixels, more than its {} bytes can encode",
                jpeg.len()
            ))
        );
        assert!(jpeg_reduced(&jpeg, 64).is_none());
        assert_eq!(
            decode_resized(&jpeg, 40).unwrap_err(),
            decode(&jpeg).unwrap_err()
        );
    }

    /// One that its bytes could hold, but whose decode alone would pass the budget of all
    /// decodes, is refused too; within the budget, decodes wait for their share.
    #[test]
    fn a_decode_larger_than_the_whole_budget_is_refused() {
        let jpeg = jpeg_declaring(12000, 12000, 300_000);
        assert_eq!(
            decode(&jpeg).unwrap_err(),
            Problem::TooLargeToDecode {
                width: 12000,
                height: 12000,
                needed: 12000 * 12000 * 8,
                budget: 1 << 30
            }
        );
        assert_eq!(
            Problem::TooLargeToDecode { width: 12000, height: 12000, needed: 1_152_000_000, budget: 1 << 30 }.to_string(),
            "too large to decode: 12000x12000 pixels need about 1152000000 bytes, more than the 1073741824 bytes decoding may take at once"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_directory_is_not_a_file_and_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("image.png");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read(&fifo), Err(Problem::NotAFile));
        assert_eq!(read(dir.path()), Err(Problem::NotAFile));
        assert_eq!(read(&dir.path().join("gone.png")), Err(Problem::Missing));
    }

    #[test]
    fn broken_files_are_classified() {
        let png = encode(&rgb_2x2(), ImageFormat::Png);
        assert!(matches!(
            decode(&png[..png.len() / 2]),
            Err(Problem::Truncated(_) | Problem::Corrupt(_))
        ));
        let jpeg = encode(
            &ImageBuffer::from_pixel(16, 16, Rgb([1u8, 2, 3])),
            ImageFormat::Jpeg,
        );
        assert_eq!(
            decode(&jpeg[..jpeg.len() - 2]),
            Err(Problem::Truncated("no JPEG end-of-image marker".into()))
        );
        let mut padded = jpeg.clone();
        padded.extend([0, 0, 0]);
        assert!(
            decode(&padded).is_ok(),
            "zero padding after the end marker is fine"
        );
        assert_eq!(
            decode(b"hello, I am text").unwrap_err(),
            Problem::NotAnImage
        );
        assert_eq!(
            decode(b"GIF89a\x01\x00\x01\x00").unwrap_err(),
            Problem::Unsupported("gif".into())
        );
    }
}

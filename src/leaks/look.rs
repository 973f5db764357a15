//! What is known of each image file: its size, a 64-bit perceptual hash, a tiny colour
//! thumbnail for confirming near copies ([`super::confirm`]), and, where another file could
//! hold the same pixels, the digests that say so exactly.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;
use rustdct::DctPlanner;
use sha2::{Digest, Sha256};

use crate::images::decode::{self, Problem};

use super::confirm::{thumbnail, Thumb};

/// The two digests that tell copies apart from look-alikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256 of the file's bytes.
    pub bytes: [u8; 32],
    /// SHA-256 of the decoded RGB pixels and the size.
    pub pixels: [u8; 32],
}

/// What is known of one image file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub phash: u64,
    /// Only for files that could have another file's pixels (see [`look_all`]); no other
    /// file can be a copy.
    pub digests: Option<Digests>,
    /// For confirming a near copy found by the hash.
    pub thumb: Thumb,
}

/// The side of the square the pHash resizes every image to.
const PHASH_SIDE: u32 = 32;

/// What pass 1 of [`look_all`] learns of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sketch {
    /// The full image's size.
    pub width: u32,
    pub height: u32,
    pub phash: u64,
    /// A JPEG that libjpeg decoded for the hash, at a reduced DCT scale where it is large
    /// enough; the rest were decoded in full by the `image` crate.
    pub by_libjpeg: bool,
}

/// The shorter side a JPEG is decoded to, at least, for its pHash.
const JPEG_SIDE: u32 = 2 * PHASH_SIDE;

/// The size and pHash of an image file's bytes. A JPEG is decoded by libjpeg at the
/// smallest DCT scale that keeps `JPEG_SIDE` (64) pixels a side (1/4 of a 256-pixel photo),
/// and then resized as any image is: entropy decoding alone is most of a full decode's
/// cost, and the inverse DCT of frequencies far above the hash's is work the resize averages
/// away. Reduced to the hash's own 32 pixels, libjpeg's box-like downscale missed one of 400
/// enlarged JPEG copies (`tests/leaks_quality.rs`); at twice that, the Lanczos resize
/// anti-aliases as it does for other formats and none is missed. Other formats, and JPEGs
/// libjpeg cannot decode cleanly, are decoded in full (and reported as `check-images`
/// reports them).
pub fn sketch(bytes: &[u8]) -> Result<(Sketch, Thumb), Problem> {
    if let Some(jpeg) = decode::jpeg_reduced(bytes, JPEG_SIDE) {
        let s = Sketch {
            width: jpeg.width,
            height: jpeg.height,
            phash: phash(&jpeg.image),
            by_libjpeg: true,
        };
        return Ok((s, thumbnail(&jpeg.image)));
    }
    let (img, _) = decode::decode(bytes)?;
    let rgb = decode::into_rgb8(img);
    let s = Sketch {
        width: rgb.width(),
        height: rgb.height(),
        phash: phash(&rgb),
        by_libjpeg: false,
    };
    Ok((s, thumbnail(&rgb)))
}

/// Each file's [`Look`], or why it is unusable. Pass 1 reads every file once, in parallel,
/// for its [`Sketch`] (`progress` after each); pass 2 decodes in full only the files that
/// could have another's pixels, for their digests. Identical pixels imply the same size
/// and, for two files hashed the same way, the same pHash; a reduced JPEG decode and a full
/// decode hash identical pixels a little differently, so between the two ways only the
/// size is compared. (Two JPEGs hash alike when their DCT coefficients are equal: the same
/// image re-saved with other metadata or Huffman tables. Two encodings whose different
/// coefficients round to the same pixels, which is rare, are reported as near copies.)
/// Hashing every image's full pixels cost more than decoding it.
pub fn look_all(paths: &[PathBuf], progress: impl Fn() + Sync) -> Vec<Result<Look, Problem>> {
    let quick: Vec<Result<(Sketch, Thumb), Problem>> = paths
        .par_iter()
        .map(|path| {
            let r = decode::read(path).and_then(|b| sketch(&b));
            progress();
            r
        })
        .collect();
    let mut same: HashMap<Sketch, usize> = HashMap::new();
    let mut sizes: std::collections::HashSet<(u32, u32, bool)> = Default::default();
    for (q, _) in quick.iter().flatten() {
        *same.entry(*q).or_default() += 1;
        sizes.insert((q.width, q.height, q.by_libjpeg));
    }
    paths
        .par_iter()
        .zip(quick)
        .map(|(path, q)| {
            let (q, thumb) = q?;
            let twin = same[&q] > 1 || sizes.contains(&(q.width, q.height, !q.by_libjpeg));
            let digests = twin
                .then(|| decode::read(path).and_then(|b| digests(&b)).ok())
                .flatten();
            Ok(Look {
                phash: q.phash,
                digests,
                thumb,
            })
        })
        .collect()
}

fn digests(bytes: &[u8]) -> Result<Digests, Problem> {
    let (img, _) = decode::decode(bytes)?;
    let rgb = decode::into_rgb8(img);
    let mut h = Sha256::new();
    h.update(rgb.width().to_le_bytes());
    h.update(rgb.height().to_le_bytes());
    h.update(rgb.as_raw());
    Ok(Digests {
        bytes: Sha256::digest(bytes).into(),
        pixels: h.finalize().into(),
    })
}

/// The 64-bit DCT pHash of an image (see the module docs); bit 63 is the DC coefficient,
/// then row by row. [`sketch`] says how a file's image is decoded for it.
pub fn phash(img: &image::RgbImage) -> u64 {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    };
    const N: usize = PHASH_SIDE as usize;
    thread_local! {
        // Planning a DCT costs more than running it on one image.
        static DCT: std::sync::Arc<dyn rustdct::TransformType2And3<f32>> =
            DctPlanner::new().plan_dct2(N);
    }
    // PIL's convert("L"): (299 R + 587 G + 114 B) / 1000, rounded.
    let luma: Vec<u8> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
            ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
        })
        .collect();
    // Pillow's Lanczos (imagehash's ANTIALIAS), as fast_image_resize implements it.
    let src =
        ImageRef::new(img.width(), img.height(), &luma, PixelType::U8).expect("one byte per pixel");
    let mut small = Image::new(N as u32, N as u32, PixelType::U8);
    Resizer::new()
        .resize(
            &src,
            &mut small,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .expect("same pixel type, non-empty sizes");
    let mut m: Vec<f32> = small.buffer().iter().map(|&v| f32::from(v)).collect();
    let dct = DCT.with(|d| d.clone());
    // Rows, then columns (through a transpose and back).
    for row in m.chunks_exact_mut(N) {
        dct.process_dct2(row);
    }
    let mut t = vec![0f32; N * N];
    for y in 0..N {
        for x in 0..N {
            t[x * N + y] = m[y * N + x];
        }
    }
    for col in t.chunks_exact_mut(N) {
        dct.process_dct2(col);
    }
    // t[x][y] now holds frequency (row y, column x); take rows 0..8, columns 0..8.
    let low: Vec<f32> = (0..8)
        .flat_map(|y| (0..8).map(move |x| (x, y)))
        .map(|(x, y)| t[x * N + y])
        .collect();
    let mut sorted = low.clone();
    sorted.sort_by(f32::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    low.iter()
        .fold(0u64, |h, &v| h << 1 | u64::from(v > median))
}

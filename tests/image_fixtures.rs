//! Decoding files written by Pillow (`tests/fixtures/images/`, made with PIL 13 and its
//! bundled libjpeg-turbo; `*.pillow.rgb` hold its decoded bytes), against
//! what Pillow's own `convert("RGB")` returns for them.

mod util;

use balance_split::images::decode::{decode, into_rgb8, read};
use pretty_assertions::assert_eq;

fn rgb(name: &str) -> (Vec<u8>, String) {
    let bytes = read(&util::repo().join("tests/fixtures/images").join(name)).unwrap();
    let (img, info) = decode(&bytes).unwrap();
    (into_rgb8(img).into_raw(), info.color)
}

#[test]
fn pillow_written_files_decode_as_pillow_reads_them() {
    assert_eq!(
        rgb("rgb_2x2.png"),
        (
            vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30],
            "Rgb8".into()
        )
    );
    assert_eq!(
        rgb("rgba_2x1.png"),
        (vec![10, 20, 30, 40, 50, 60], "Rgba8".into())
    );
    assert_eq!(
        rgb("gray8_2x2.bmp").0,
        vec![0, 0, 0, 128, 128, 128, 200, 200, 200, 255, 255, 255]
    );
    let (px, color) = rgb("flat_16x16.jpg");
    assert_eq!(color, "Rgb8");
    assert_eq!(px.len(), 16 * 16 * 3);
    for p in px.chunks(3) {
        for (got, want) in p.iter().zip([200u8, 100, 50]) {
            assert!(got.abs_diff(want) <= 2, "{p:?}");
        }
    }
}

#[test]
fn sixteen_bit_grayscale_is_scaled_where_pillow_clips() {
    // Pillow 13 gives [0, 255, 255, 255] for the samples [0, 257, 32896, 65535]; we scale.
    let (px, color) = rgb("gray16_4x1.png");
    assert_eq!(color, "L16");
    assert_eq!(px, vec![0, 0, 0, 1, 1, 1, 128, 128, 128, 255, 255, 255]);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(util::repo().join("tests/fixtures/images").join(name)).unwrap()
}

/// The training path's JPEG decoder is the library inside Pillow, with Pillow's settings:
/// the pixels are Pillow's to the last level, at full size and at Pillow's `draft` scale.
#[test]
fn jpegs_decode_to_exactly_pillows_pixels() {
    use balance_split::images::jpeg;
    let colour = fixture("pattern_48x32.jpg");
    let full = jpeg::rgb(&colour, 0).unwrap();
    assert_eq!(full.dimensions(), (48, 32));
    assert_eq!(full.into_raw(), fixture("pattern_48x32.pillow.rgb"));
    // im.draft("RGB", (12, 8)) decodes at 1/4 inside the IDCT, as we do for a target of 8.
    let quarter = jpeg::rgb(&colour, 8).unwrap();
    assert_eq!(quarter.dimensions(), (12, 8));
    assert_eq!(
        quarter.into_raw(),
        fixture("pattern_48x32.draft_12x8.pillow.rgb")
    );
    // Grayscale replicated into three channels, as convert("RGB") does.
    let gray = jpeg::rgb(&fixture("gray_16x8.jpg"), 0).unwrap();
    assert_eq!(gray.into_raw(), fixture("gray_16x8.pillow.rgb"));
}

#[test]
fn the_training_decode_of_a_small_jpeg_is_pillows() {
    // 48x32 to a 48-pixel target: not twice the target, so decoded at full size; the
    // resize then sees exactly Pillow's pixels.
    let px =
        balance_split::images::decode::decode_resized(&fixture("pattern_48x32.jpg"), 48).unwrap();
    assert_eq!(px.dimensions(), (48, 48));
    let stretched = balance_split::images::transform::resize(
        image::RgbImage::from_raw(48, 32, fixture("pattern_48x32.pillow.rgb")).unwrap(),
        48,
    );
    assert_eq!(px, stretched);
}

#[test]
fn broken_jpegs_fall_back_to_the_checked_decoder() {
    use balance_split::images::decode::{decode_resized, Problem};
    let jpeg = fixture("pattern_48x32.jpg");
    assert_eq!(
        decode_resized(&jpeg[..jpeg.len() / 2], 8),
        Err(Problem::Truncated("no JPEG end-of-image marker".into()))
    );
    // Entropy-coded data replaced by garbage, end marker kept: libjpeg-turbo warns, so the
    // `image` crate's decoder takes over and, like Pillow, decodes what it can.
    let mut garbled = jpeg.clone();
    let n = garbled.len();
    for b in &mut garbled[n - 200..n - 2] {
        *b = 0xFF;
    }
    assert!(balance_split::images::jpeg::rgb(&garbled, 0).is_none());
    assert_eq!(decode_resized(&garbled, 8).unwrap().dimensions(), (8, 8));
}

#[test]
fn progressive_and_cmyk_jpegs() {
    use balance_split::images::{decode::decode_resized, jpeg};
    let progressive = jpeg::rgb(&fixture("progressive_48x32.jpg"), 0).unwrap();
    assert_eq!(
        progressive.into_raw(),
        fixture("progressive_48x32.pillow.rgb")
    );
    // CMYK has no RGB conversion in TurboJPEG; the `image` crate's decoder takes it.
    let cmyk = fixture("cmyk_16x16.jpg");
    assert!(jpeg::rgb(&cmyk, 0).is_none());
    let ours = decode_resized(&cmyk, 16).unwrap().into_raw();
    let pillow = fixture("cmyk_16x16.pillow.rgb");
    assert_eq!(ours.len(), pillow.len());
    // Its own IDCT: within one level of Pillow's (PIL 13 gives [0, 0, 63, 5, 0, 16, ...]).
    assert_eq!(&ours[..6], &pillow[..6]);
    assert!(ours.iter().zip(&pillow).all(|(a, b)| a.abs_diff(*b) <= 1));
}

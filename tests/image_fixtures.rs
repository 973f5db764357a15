//! Decoding files written by Pillow (`tests/fixtures/images/`, made with PIL 13), against
//! what Pillow's own `convert("RGB")` returns for them.

mod util;

use balance_split::images::decode::{decode, read, to_rgb8};
use pretty_assertions::assert_eq;

fn rgb(name: &str) -> (Vec<u8>, String) {
    let bytes = read(&util::repo().join("tests/fixtures/images").join(name)).unwrap();
    let (img, info) = decode(&bytes).unwrap();
    (to_rgb8(&img).into_raw(), info.color)
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

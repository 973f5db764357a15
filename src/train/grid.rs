//! Sample images as files a person looks at: generated tensors (CHW floats in [-1, 1])
//! to PNGs, and labelled grids with one row per class.
//!
//! Training images are small (40 x 40), so grid cells are enlarged by an integer factor
//! with nearest-neighbour sampling: every model pixel stays a crisp square.

use std::path::{Path, PathBuf};

use image::{imageops, Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot;

/// An image that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write image: {message}")]
pub struct ImageWriteError {
    pub path: PathBuf,
    pub message: String,
}

/// One generated sample, `[C, H, W]` with C = 1 or 3, values in [-1, 1] (clamped), to
/// 8-bit RGB: `round((x + 1) * 127.5)`, the inverse of the pipeline's normalisation.
pub fn to_rgb(chw: &[f32], channels: usize, size: usize) -> RgbImage {
    let plane = size * size;
    assert_eq!(chw.len(), channels * plane, "sample shape");
    let px = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        if channels == 1 {
            let g = px(chw[i]);
            Rgb([g, g, g])
        } else {
            Rgb([px(chw[i]), px(chw[plane + i]), px(chw[2 * plane + i])])
        }
    })
}

/// A row of the grid: its label and its images (all the same size).
pub struct GridRow {
    pub label: String,
    pub images: Vec<RgbImage>,
}

const PAD: u32 = 4;
const LABEL_WIDTH: u32 = 140;
const HEADER: u32 = 28;

/// The integer enlargement that makes a cell at least 64 pixels wide.
fn scale_for(side: u32) -> u32 {
    64u32.div_ceil(side.max(1)).max(1)
}

/// A labelled grid: a title line, then one row per [`GridRow`], the label on the left.
pub fn grid(title: &str, rows: &[GridRow]) -> RgbImage {
    let side = rows
        .iter()
        .flat_map(|r| r.images.first())
        .map(|i| i.width())
        .next()
        .unwrap_or(1);
    let k = scale_for(side);
    let cell = side * k;
    let cols = rows.iter().map(|r| r.images.len()).max().unwrap_or(0) as u32;
    let width = LABEL_WIDTH + cols * (cell + PAD) + PAD;
    let height = HEADER + rows.len() as u32 * (cell + PAD) + PAD;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        let y = HEADER + r as u32 * (cell + PAD);
        for (c, img) in row.images.iter().enumerate() {
            let big = imageops::resize(img, cell, cell, imageops::FilterType::Nearest);
            let x = LABEL_WIDTH + c as u32 * (cell + PAD);
            imageops::replace(&mut canvas, &big, x as i64, y as i64);
        }
    }
    draw_labels(&mut canvas, title, rows, cell);
    canvas
}

/// Titles and row labels in the embedded font (see [`crate::plot`]).
fn draw_labels(canvas: &mut RgbImage, title: &str, rows: &[GridRow], cell: u32) {
    plot::register_font();
    let (w, h) = canvas.dimensions();
    let buf: &mut [u8] = canvas;
    let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
    let style = |size: f64| {
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center))
    };
    // Text that does not fit is clipped by plotters; drawing never fails on a buffer.
    let _ = root.draw_text(title, &style(16.0), (PAD as i32, (HEADER / 2) as i32));
    for (r, row) in rows.iter().enumerate() {
        let y = HEADER + r as u32 * (cell + PAD) + cell / 2;
        let _ = root.draw_text(&row.label, &style(15.0), (PAD as i32, y as i32));
    }
    let _ = root.present();
}

/// Writes `img` as PNG, creating the directory.
pub fn save(img: &RgbImage, path: &Path) -> Result<(), ImageWriteError> {
    let err = |message: String| ImageWriteError {
        path: path.to_owned(),
        message,
    };
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| err(e.to_string()))?;
    crate::output::write_bytes(path, &png).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_rgb_inverts_the_normalisation_and_clamps() {
        // 2x2, 3 channels: R plane, G plane, B plane.
        let chw = [
            -1.0, 1.0, 0.0, 2.0, // R
            0.0, 0.0, 0.0, 0.0, // G
            1.0, -1.0, -3.0, 0.5, // B
        ];
        let img = to_rgb(&chw, 3, 2);
        assert_eq!(img.get_pixel(0, 0), &Rgb([0, 128, 255]));
        assert_eq!(img.get_pixel(1, 0), &Rgb([255, 128, 0]));
        assert_eq!(img.get_pixel(0, 1), &Rgb([128, 128, 0]));
        assert_eq!(img.get_pixel(1, 1), &Rgb([255, 128, 191]));
        let gray = to_rgb(&[0.0], 1, 1);
        assert_eq!(gray.get_pixel(0, 0), &Rgb([128, 128, 128]));
    }

    #[test]
    fn grid_layout_and_pixels() {
        let red = RgbImage::from_pixel(16, 16, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(16, 16, Rgb([0, 0, 255]));
        let rows = vec![
            GridRow {
                label: "normal".into(),
                images: vec![red.clone(), red.clone(), red],
            },
            GridRow {
                label: "abnormal".into(),
                images: vec![blue.clone(), blue.clone(), blue],
            },
        ];
        let g = grid("epoch 4", &rows);
        // 16 px cells are enlarged 4x to 64.
        assert_eq!(
            g.dimensions(),
            (LABEL_WIDTH + 3 * 68 + PAD, HEADER + 2 * 68 + PAD)
        );
        let centre = |r: u32, c: u32| *g.get_pixel(LABEL_WIDTH + c * 68 + 32, HEADER + r * 68 + 32);
        assert_eq!(centre(0, 2), Rgb([255, 0, 0]));
        assert_eq!(centre(1, 0), Rgb([0, 0, 255]));
        // The labels are drawn: some dark pixels in the label column of each row.
        for r in 0..2 {
            let dark = (0..LABEL_WIDTH)
                .flat_map(|x| (0..64).map(move |y| (x, HEADER + r * 68 + y)))
                .filter(|&(x, y)| g.get_pixel(x, y).0.iter().all(|&v| v < 100))
                .count();
            assert!(dark > 20, "row {r} has a label ({dark} dark pixels)");
        }
    }
}

//! What a person looks at: per-class sample grids and denoising strips during training,
//! and the files of generation mode.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::RgbImage;

use super::error::TrainError;
use super::family::{Net, Process};
use super::generate::{self, Request};
use super::grid::{self, GridRow};
use super::settings::{Threshold, TrainSettings};

/// A model ready to sample, and what it is sampled for.
pub struct Context<'a> {
    /// A validation copy (no autodiff), on `device`.
    pub model: &'a Net,
    pub process: &'a Process,
    pub settings: &'a TrainSettings,
    /// Class names by label.
    pub classes: &'a [String],
    pub seed: u64,
    pub device: &'a Device,
    /// `use_dynamic_threshold` of the section being drawn for.
    pub threshold: Threshold,
}

/// Noise streams of training-time pictures count down from the top of the batch
/// numbers, so they never share noise with generation mode (which counts up from 0),
/// and every epoch draws the same noise: grids of successive epochs are comparable.
const VIS_BATCH: u64 = u64::MAX - 1024;

fn write_err(e: grid::ImageWriteError) -> TrainError {
    TrainError::Write {
        path: e.path,
        source: std::io::Error::other(e.message),
    }
}

impl Context<'_> {
    fn conditional(&self) -> bool {
        self.model.is_conditional()
    }

    fn images(&self, flat: &[f32], n: usize) -> Vec<RgbImage> {
        let a = &self.settings.architecture;
        let per = a.in_channels * a.image_size * a.image_size;
        (0..n)
            .map(|i| grid::to_rgb(&flat[i * per..(i + 1) * per], a.in_channels, a.image_size))
            .collect()
    }

    /// Samples for `labels` in batches of `generation.sampling.batch_size`, batch `k`
    /// drawing from stream `first_batch + k`.
    fn generate(&self, labels: &[u32], scale: f64, first_batch: u64) -> Vec<RgbImage> {
        let a = &self.settings.architecture;
        let b = self.settings.generation.batch_size.max(1);
        let mut out = Vec::with_capacity(labels.len());
        for (k, chunk) in labels.chunks(b).enumerate() {
            let req = Request {
                labels: chunk,
                num_classes: self.classes.len(),
                guidance_scale: scale,
                threshold: self.threshold,
                channels: a.in_channels,
                size: a.image_size,
                seed: self.seed,
                batch: first_batch.wrapping_add(k as u64),
                snapshots: &[],
            };
            let (flat, _) = generate::sample(self.model, self.process, &req, self.device);
            out.extend(self.images(&flat, chunk.len()));
        }
        out
    }

    /// `(label, name)` of the rows: every class, or one unnamed row for an
    /// unconditional model.
    fn rows(&self, selection: Option<&[usize]>) -> Vec<(u32, String)> {
        if !self.conditional() {
            return vec![(0, "samples".into())];
        }
        match selection {
            Some(sel) => sel
                .iter()
                .map(|&k| (k as u32, self.classes[k].clone()))
                .collect(),
            None => self
                .classes
                .iter()
                .enumerate()
                .map(|(k, c)| (k as u32, c.clone()))
                .collect(),
        }
    }
}

/// A grid of `per_class` samples per class, one labelled row per class.
pub fn sample_grid(
    ctx: &Context,
    per_class: usize,
    scale: f64,
    epoch: usize,
    path: &Path,
) -> Result<(), TrainError> {
    let rows = ctx.rows(None);
    let labels: Vec<u32> = rows
        .iter()
        .flat_map(|(l, _)| std::iter::repeat_n(*l, per_class))
        .collect();
    let mut images = ctx.generate(&labels, scale, VIS_BATCH).into_iter();
    let grid_rows: Vec<GridRow> = rows
        .into_iter()
        .map(|(_, label)| GridRow {
            label,
            images: images.by_ref().take(per_class).collect(),
        })
        .collect();
    let title = format!("epoch {epoch}: {per_class} samples per class, guidance {scale}");
    grid::save(&grid::grid(&title, &grid_rows), path).map_err(write_err)
}

/// Columns shown in a denoising strip: eight of the sampler's `t` steps, from the noisiest
/// to the last.
pub fn strip_timesteps(t: usize) -> Vec<usize> {
    let cols = 8.min(t);
    (0..cols)
        .map(|i| (t - 1) - i * (t - 1) / (cols - 1).max(1))
        .collect()
}

/// One sample per class followed through sampling: `x_t` at eight timesteps and the
/// result.
pub fn denoising_strip(
    ctx: &Context,
    scale: f64,
    epoch: usize,
    path: &Path,
) -> Result<(), TrainError> {
    let rows = ctx.rows(None);
    let labels: Vec<u32> = rows.iter().map(|(l, _)| *l).collect();
    let a = &ctx.settings.architecture;
    let steps = strip_timesteps(ctx.process.sampling_len());
    let req = Request {
        labels: &labels,
        num_classes: ctx.classes.len(),
        guidance_scale: scale,
        threshold: ctx.threshold,
        channels: a.in_channels,
        size: a.image_size,
        seed: ctx.seed,
        batch: VIS_BATCH + 512,
        snapshots: &steps,
    };
    let (last, snaps) = generate::sample(ctx.model, ctx.process, &req, ctx.device);
    let n = labels.len();
    let columns: Vec<Vec<RgbImage>> = snaps
        .iter()
        .map(|(_, flat)| ctx.images(flat, n))
        .chain(std::iter::once(ctx.images(&last, n)))
        .collect();
    let grid_rows: Vec<GridRow> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (_, label))| GridRow {
            label,
            images: columns.iter().map(|c| c[i].clone()).collect(),
        })
        .collect();
    let ts: Vec<String> = steps
        .iter()
        .map(|&i| ctx.process.original_timestep(i).to_string())
        .collect();
    let title = format!(
        "epoch {epoch}: x_t at t = {}, then the sample",
        ts.join(", ")
    );
    grid::save(&grid::grid(&title, &grid_rows), path).map_err(write_err)
}

/// A file-name-safe form of a class name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How many of `total` samples each of `k` classes gets: as even as possible, the
/// earlier classes taking the remainder.
pub fn split_evenly(total: usize, k: usize) -> Vec<usize> {
    (0..k)
        .map(|i| total / k + usize::from(i < total % k))
        .collect()
}

/// Generation mode: `generation.sampling.num_samples` images over the selected classes,
/// as individual PNGs (`<class>_<index>.png`) and a grid, under `dir`.
pub fn generation(ctx: &Context, dir: &Path, title: &str) -> Result<Vec<PathBuf>, TrainError> {
    let g = &ctx.settings.generation;
    let rows = ctx.rows(g.class_selection.as_deref());
    let counts = split_evenly(g.num_samples, rows.len());
    let labels: Vec<u32> = rows
        .iter()
        .zip(&counts)
        .flat_map(|((l, _), &n)| std::iter::repeat_n(*l, n))
        .collect();
    let images = ctx.generate(&labels, g.guidance_scale, 0);
    let mut written = Vec::new();
    let mut grid_rows = Vec::new();
    let mut it = images.into_iter();
    for ((_, name), n) in rows.iter().zip(counts) {
        let class_images: Vec<RgbImage> = it.by_ref().take(n).collect();
        if g.save_individual {
            for (i, img) in class_images.iter().enumerate() {
                let path = dir.join(format!("{}_{i:04}.png", file_stem(name)));
                grid::save(img, &path).map_err(write_err)?;
                written.push(path);
            }
        }
        for (j, chunk) in class_images.chunks(g.grid_nrow).enumerate() {
            grid_rows.push(GridRow {
                label: if j == 0 { name.clone() } else { String::new() },
                images: chunk.to_vec(),
            });
        }
    }
    if g.save_grid {
        let path = dir.join("grid.png");
        grid::save(&grid::grid(title, &grid_rows), &path).map_err(write_err)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_span_the_schedule() {
        assert_eq!(
            strip_timesteps(1000),
            [999, 857, 714, 571, 429, 286, 143, 0]
        );
        assert_eq!(strip_timesteps(100), [99, 85, 71, 57, 43, 29, 15, 0]);
        assert_eq!(strip_timesteps(3), [2, 1, 0]);
        assert_eq!(strip_timesteps(1), [0]);
    }

    #[test]
    fn even_splits() {
        assert_eq!(split_evenly(100, 2), [50, 50]);
        assert_eq!(split_evenly(7, 3), [3, 2, 2]);
        assert_eq!(split_evenly(1, 3), [1, 0, 0]);
    }

    #[test]
    fn class_names_become_safe_file_names() {
        assert_eq!(file_stem("1.Abnormal cells/x"), "1_Abnormal_cells_x");
    }
}

//! `stats --plot`: a grouped bar chart of class counts as a PNG a person reads at a
//! glance: title, axis labels, legend, and the count on every bar.
//!
//! The font is compiled in (DejaVu Sans, `assets/fonts/`, free licence) so the chart
//! renders the same on every machine, with or without system fonts.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::output::{check_destination, DestinationError};
use crate::stats::Stats;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Makes the embedded font plotters' "sans-serif" (idempotent).
pub fn register_font() {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
}

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{0}: --plot writes a PNG; give it a name ending in .png")]
    NotPng(PathBuf),
    #[error("{file}: --plot draws at most {MAX_CLASSES} classes; this file has {classes}")]
    TooManyClasses { file: PathBuf, classes: usize },
    #[error("{file}: a count of {value} is outside what --plot can chart (0 to 1e15)")]
    OutOfRange { file: PathBuf, value: String },
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// Drawing or writing failed: the environment, not the user's input.
    #[error("{path}: cannot draw the chart: {message}")]
    Draw { path: PathBuf, message: String },
}

impl PlotError {
    /// 2 for a chart the input cannot make, 1 when drawing or writing failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            PlotError::Draw { .. } => 1,
            _ => 2,
        }
    }
}

/// One group of bars: a name for the legend and a value per class.
struct Series {
    name: String,
    values: Vec<f64>,
    color: RGBColor,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0xdd, 0x84, 0x52),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0x81, 0x72, 0xb3),
];

/// The most classes a chart draws: 150 pixels a group, so 64 classes are already a
/// 9,840-pixel-wide image, and 100,000 would be a 45 GB one.
pub const MAX_CLASSES: usize = 64;

/// The largest count a chart's axis shows (past it, the axis' arithmetic loses integers).
const MAX_VALUE: f64 = 1e15;

/// Draws the chart for `stats` into `path` (written atomically, never over the file the
/// statistics came from): before/after per class for a manifest, the lists (train, val,
/// test) per class for a plain split.
pub fn draw(stats: &Stats, path: &Path) -> Result<(), PlotError> {
    if path
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("png"))
    {
        return Err(PlotError::NotPng(path.to_owned()));
    }
    check_destination(path, &[&stats.file])?;
    if stats.classes.len() > MAX_CLASSES {
        return Err(PlotError::TooManyClasses {
            file: stats.file.clone(),
            classes: stats.classes.len(),
        });
    }
    let values = stats
        .lists
        .iter()
        .flat_map(|l| l.counts.iter().map(|&n| n as f64));
    let balancing = stats.balancing.iter().flat_map(|b| {
        let after = b.after.iter().map(|&n| n as f64);
        after.chain(b.expected_epoch.iter().flatten().copied())
    });
    if let Some(v) = values
        .chain(balancing)
        .find(|v| !(0.0..=MAX_VALUE).contains(v))
    {
        return Err(PlotError::OutOfRange {
            file: stats.file.clone(),
            value: crate::text::number(v),
        });
    }
    draw_checked(stats, path)
}

fn draw_checked(stats: &Stats, path: &Path) -> Result<(), PlotError> {
    let err = |e: String| PlotError::Draw {
        path: path.to_owned(),
        message: e,
    };
    let file = stats
        .file
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let (title, series): (String, Vec<Series>) = match &stats.balancing {
        Some(b) => (
            format!("{file}: {}, seed {}", b.strategy, b.seed),
            vec![
                series("before", b.before.iter().map(|&n| n as f64).collect(), 0),
                series(
                    if b.expected_epoch.is_some() {
                        "one epoch (expected)"
                    } else {
                        "after"
                    },
                    b.expected_epoch
                        .clone()
                        .unwrap_or_else(|| b.after.iter().map(|&n| n as f64).collect()),
                    1,
                ),
            ],
        ),
        None => (
            format!("{file}: class counts"),
            stats
                .lists
                .iter()
                .enumerate()
                .map(|(i, l)| series(&l.name, l.counts.iter().map(|&n| n as f64).collect(), i))
                .collect(),
        ),
    };
    register_font();
    let png = render(&title, &stats.classes, &series).map_err(|e| err(e.to_string()))?;
    crate::output::write_bytes(path, &png).map_err(|e| err(e.to_string()))
}

fn series(name: &str, values: Vec<f64>, i: usize) -> Series {
    Series {
        name: name.to_string(),
        values,
        color: COLORS[i % COLORS.len()],
    }
}

/// The chart as PNG bytes.
fn render(
    title: &str,
    classes: &[String],
    series: &[Series],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let k = classes.len();
    // Wide enough for the title and for the class names under their groups.
    let title_px = 13 * title.chars().count() as u32 + 80;
    let (width, height) = ((240 + 150 * k as u32).max(title_px).max(720), 520);
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw_into(&mut rgb, (width, height), title, classes, series)?;
    let mut png = Vec::new();
    image::RgbImage::from_raw(width, height, rgb)
        .expect("buffer of the chart's size")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

fn draw_into(
    rgb: &mut [u8],
    size: (u32, u32),
    title: &str,
    classes: &[String],
    series: &[Series],
) -> Result<(), Box<dyn std::error::Error>> {
    let k = classes.len();
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let ymax = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..k as f64, 0.0..ymax * 1.18)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_max_light_lines(1)
        .x_desc("class")
        .y_desc("samples")
        // Class names are drawn below each group instead (plotters puts ticks at round numbers).
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let group = 0.8;
    let bar = group / series.len() as f64;
    for (j, s) in series.iter().enumerate() {
        let left = |c: usize| c as f64 + (1.0 - group) / 2.0 + j as f64 * bar;
        let color = s.color;
        chart
            .draw_series(s.values.iter().enumerate().map(|(c, &v)| {
                Rectangle::new([(left(c), 0.0), (left(c) + bar * 0.92, v)], color.filled())
            }))?
            .label(s.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(s.values.iter().enumerate().map(|(c, &v)| {
            let text = if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            };
            Text::new(
                text,
                (left(c) + bar * 0.46, v + ymax * 0.02),
                ("sans-serif", 15)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
    }
    let centered_top = Pos::new(HPos::Center, VPos::Top);
    for (c, name) in classes.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
        let style = ("sans-serif", 17)
            .into_font()
            .color(&BLACK)
            .pos(centered_top);
        root.draw(&Text::new(name.as_str(), (x, y + 8), style))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

//! TensorBoard event files: the trainer's per-epoch scalars and its PNG images.
//!
//! Written here rather than with a crate: the one that writes this format, `tensorboard-rs`,
//! has had no release since March 2022 and pulls in `protobuf` 2.x and `image` 0.23, while
//! the four messages and the record framing we need fit in this file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::error::TrainError;
use super::metrics::Row;

/// One epoch's metrics row as TensorBoard charts: the CSV's columns under the same names,
/// the per-class validation losses grouped under `val_loss/`.
pub fn epoch_scalars(row: &Row, classes: &[String]) -> Vec<(String, f64)> {
    let mut out = vec![
        ("loss".to_owned(), row.loss),
        ("weighted_loss".to_owned(), row.weighted_loss),
        ("lr".to_owned(), row.lr),
        ("images_per_s".to_owned(), row.images_per_s),
    ];
    if let Some(v) = row.val_loss {
        out.push(("val_loss".to_owned(), v));
    }
    for (class, v) in classes.iter().zip(&row.val_loss_per_class) {
        if let Some(v) = v {
            out.push((format!("val_loss/{class}"), *v));
        }
    }
    out
}

/// Logs a PNG the trainer wrote (`samples_epoch_0010.png`) under the tag its name starts
/// with (`samples`, `denoising`).
pub fn png_file(w: &mut EventWriter, path: &Path, step: u64) -> Result<(), TrainError> {
    let err = |source| TrainError::Write {
        path: path.to_owned(),
        source,
    };
    let png = std::fs::read(path).map_err(err)?;
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(&png))
        .with_guessed_format()
        .map_err(err)?
        .into_dimensions()
        .map_err(|e| err(std::io::Error::other(e)))?;
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    let tag = name.split("_epoch").next().unwrap_or(&name);
    w.image(tag, step, &png, width, height, 3)
}

/// Appends events to one new `events.out.tfevents.*` file in a log directory.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, named as TensorBoard's own writer
    /// names them (`events.out.tfevents.<unix secs>.<hostname>.<pid>.<n>`: the pid and the
    /// per-process count keep two writers started in the same second apart).
    pub fn create(dir: &Path) -> Result<EventWriter, TrainError> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| TrainError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "events.out.tfevents.{secs:010}.{}.{}.{}",
            hostname(),
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err(&path))?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write(&Event {
            wall_time: wall_time(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One point of the chart `tag`. TensorBoard stores scalars as 32-bit floats.
    pub fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<(), TrainError> {
        self.summary(tag, step, Kind::SimpleValue(value as f32))
    }

    /// An already encoded PNG of `width` x `height` pixels with `channels` channels
    /// (1 grey, 2 grey and alpha, 3 RGB, 4 RGBA).
    pub fn image(
        &mut self,
        tag: &str,
        step: u64,
        png: &[u8],
        width: u32,
        height: u32,
        channels: u8,
    ) -> Result<(), TrainError> {
        let image = Image {
            height: i32::try_from(height).unwrap_or(i32::MAX),
            width: i32::try_from(width).unwrap_or(i32::MAX),
            colorspace: channels.into(),
            encoded_image_string: png.to_vec(),
        };
        self.summary(tag, step, Kind::Image(image))
    }

    /// Writes what is buffered through to the file, for TensorBoard to see.
    pub fn flush(&mut self) -> Result<(), TrainError> {
        self.out.flush().map_err(|source| TrainError::Write {
            path: self.path.clone(),
            source,
        })
    }

    fn summary(&mut self, tag: &str, step: u64, kind: Kind) -> Result<(), TrainError> {
        self.write(&Event {
            wall_time: wall_time(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: tag.to_owned(),
                    kind: Some(kind),
                }],
            })),
        })
    }

    fn write(&mut self, event: &Event) -> Result<(), TrainError> {
        self.out
            .write_all(&record(&event.encode_to_vec()))
            .map_err(|source| TrainError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = &buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)];
    match std::str::from_utf8(name) {
        Ok(s) if rc == 0 && !s.is_empty() && !s.contains('/') => s.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// One TFRecord: the length, its masked CRC, the data, the data's masked CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut r = Vec::with_capacity(data.len() + 16);
    r.extend_from_slice(&len);
    r.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    r.extend_from_slice(data);
    r.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    r
}

fn masked_crc32c(bytes: &[u8]) -> u32 {
    mask(crc32c::crc32c(bytes))
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

// The messages of TensorBoard's event.proto and summary.proto that we write, with their
// field numbers. The oneofs matter: a proto3 plain field equal to 0 is not written at all,
// so a scalar 0.0 would reach TensorBoard as a value of no kind.

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "Kind", tags = "2, 4")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

#[cfg(test)]
mod tests;

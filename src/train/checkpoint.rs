//! Checkpoint files: one file per checkpoint holding the run's metadata (JSON), the model
//! and optionally the optimizer and EMA weights (burnpack byte buffers), and a SHA-256 of
//! everything before it, so a truncated or damaged file is refused with a clear message
//! instead of loading garbage.
//!
//! Layout (little-endian):
//!
//! ```text
//! "BSDDPM\0\x01"  u32 meta_len  meta (JSON)
//! repeated: u16 name_len  name  u64 len  bytes      (sections: model, optimizer, ema or ema_trained)
//! sha256 of all bytes above (32 bytes)
//! ```
//!
//! Writes go to a temporary file in the target directory, are flushed to disk, and only
//! then renamed over the target: a crash at any point leaves either the old checkpoint or
//! the new one, never a partial file (see [`Staged`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plateau::PlateauState;
use super::settings::{AdmModel, Architecture, Diffusion};
use crate::output::AtomicFile;

const MAGIC: &[u8; 8] = b"BSDDPM\0\x01";

/// The section of an ADM's EMA that holds only the tensors that train (safetensors under
/// guided-diffusion's names; the rest of the average is the model's frozen weights).
pub const TRAINED_EMA: &str = "ema_trained";

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read checkpoint: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write checkpoint: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a diffusion-train checkpoint ({reason})")]
    Format { path: PathBuf, reason: String },
    /// A weights file of the user's side (safetensors, `torch.save`) that cannot be used.
    #[error("{path}: {reason}")]
    Weights { path: PathBuf, reason: String },
}

/// What a checkpoint records besides weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    pub tool_version: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    pub seed: u64,
    pub manifest: String,
    pub manifest_sha256: String,
    pub architecture: Architecture,
    pub num_classes: Option<usize>,
    pub class_names: Vec<String>,
    pub diffusion: Diffusion,
    /// The epoch the learning-rate schedule counts from (0 unless a resume reset it).
    pub schedule_start: usize,
    /// Lowest validation loss seen so far (for `save_best_only`).
    pub best_val_loss: Option<f64>,
    /// [`NoiseSchedule::betas_sha256`](super::schedule::NoiseSchedule::betas_sha256) of
    /// the schedule trained with (absent in checkpoints written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub betas_sha256: Option<String>,
    /// The `plateau` scheduler's state (absent in other runs and older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<PlateauState>,
    /// The ADM's source and noise schedule (`experiment: diffusion_pretrained`); absent for
    /// the DDPM, whose checkpoints stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adm: Option<AdmModel>,
}

/// A parsed checkpoint.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub meta: Meta,
    pub sections: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// Whether the checkpoint holds an EMA (whole, or the ADM's trained tensors of it).
    pub fn has_ema(&self) -> bool {
        self.section("ema").is_some() || self.section(TRAINED_EMA).is_some()
    }

    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let meta = serde_json::to_vec(&self.meta).expect("metadata serialises");
        let mut out = Vec::with_capacity(
            64 + meta.len()
                + self
                    .sections
                    .iter()
                    .map(|(_, b)| b.len() + 32)
                    .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        for (name, bytes) in &self.sections {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses a checkpoint's bytes; `path` is only used in messages.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bad = |reason: &str| CheckpointError::Format {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..8] != MAGIC {
            return Err(bad("bad magic number"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(bad("checksum mismatch: the file is truncated or damaged"));
        }
        let mut r = Cursor { bytes: body, at: 8 };
        let meta_len = u32::from_le_bytes(
            r.take(4)
                .ok_or_else(|| bad("short header"))?
                .try_into()
                .expect("4"),
        ) as usize;
        let meta: Meta =
            serde_json::from_slice(r.take(meta_len).ok_or_else(|| bad("short metadata"))?)
                .map_err(|e| bad(&format!("metadata: {e}")))?;
        match meta.format_version {
            FORMAT_VERSION => {}
            // Version 1 made the time embedding 4 x model_channels wide; the user's model
            // keeps it at 256, so the two agree only at 64 channels.
            1 if meta.architecture.model_channels * 4 == super::settings::TIME_EMBED_DIM => {}
            1 => {
                return Err(bad(&format!(
                    "written by an earlier diffusion-train whose model at model_channels {} was not the user's (its time embedding was {} wide, theirs is {} at every size); its weights fit no model trained now: train again",
                    meta.architecture.model_channels,
                    meta.architecture.model_channels * 4,
                    super::settings::TIME_EMBED_DIM
                )))
            }
            other => {
                return Err(bad(&format!(
                    "format version {other} (this diffusion-train reads {FORMAT_VERSION}, and 1 at 64 channels)"
                )))
            }
        }
        let mut sections = Vec::new();
        while r.at < body.len() {
            let n = u16::from_le_bytes(
                r.take(2)
                    .ok_or_else(|| bad("short section"))?
                    .try_into()
                    .expect("2"),
            ) as usize;
            let name = String::from_utf8(r.take(n).ok_or_else(|| bad("short section"))?.to_vec())
                .map_err(|_| bad("section name is not UTF-8"))?;
            let len = u64::from_le_bytes(
                r.take(8)
                    .ok_or_else(|| bad("short section"))?
                    .try_into()
                    .expect("8"),
            ) as usize;
            let data = r.take(len).ok_or_else(|| bad("short section"))?.to_vec();
            sections.push((name, data));
        }
        Ok(Checkpoint { meta, sections })
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.to_owned(),
            source,
        })?;
        Checkpoint::decode(&bytes, path)
    }

    /// Writes the checkpoint to a temporary file beside `path`, flushed to disk; nothing
    /// is visible at `path` until [`Staged::commit`].
    pub fn stage(&self, path: &Path) -> Result<Staged, CheckpointError> {
        let err = |source| CheckpointError::Write {
            path: path.to_owned(),
            source,
        };
        let mut tmp = AtomicFile::create(path).map_err(err)?;
        tmp.write_all(&self.encode()).map_err(err)?;
        tmp.file().sync_all().map_err(err)?;
        Ok(Staged {
            tmp,
            path: path.to_owned(),
        })
    }

    /// [`Checkpoint::stage`] then [`Staged::commit`].
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        self.stage(path)?.commit()
    }
}

/// The current checkpoint format.
/// 2 since the time embedding is the user's 256 at every size (1 made it 4 x
/// model_channels, which is the same only at 64).
pub const FORMAT_VERSION: u32 = 2;

/// A checkpoint written to a temporary file, not yet in place. Dropping it (or a crash)
/// leaves the previous file at the target untouched.
pub struct Staged {
    tmp: AtomicFile,
    path: PathBuf,
}

impl Staged {
    /// Atomically renames the staged file over the target.
    pub fn commit(self) -> Result<(), CheckpointError> {
        let path = self.path;
        // Already flushed to disk by `stage`.
        self.tmp
            .commit(false)
            .map_err(|source| CheckpointError::Write { path, source })
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::settings::BetaSchedule;

    fn sample(epoch: usize) -> Checkpoint {
        Checkpoint {
            meta: Meta {
                format_version: FORMAT_VERSION,
                tool_version: "test".into(),
                epoch,
                step: 10 * epoch as u64,
                seed: 3,
                manifest: "m.json".into(),
                manifest_sha256: "ab".repeat(32),
                architecture: Architecture {
                    image_size: 8,
                    in_channels: 3,
                    model_channels: 8,
                    channel_multipliers: vec![1, 2],
                    use_attention: vec![false, true],
                },
                num_classes: Some(2),
                class_names: vec!["normal".into(), "abnormal".into()],
                diffusion: Diffusion {
                    num_timesteps: 10,
                    beta_schedule: BetaSchedule::Linear,
                    beta_start: 1e-4,
                    beta_end: 0.02,
                },
                schedule_start: 0,
                best_val_loss: None,
                betas_sha256: None,
                plateau: None,
                adm: None,
            },
            sections: vec![("model".into(), vec![1, 2, 3]), ("ema".into(), vec![])],
        }
    }

    #[test]
    fn round_trip() {
        let c = sample(2);
        let back = Checkpoint::decode(&c.encode(), Path::new("c")).unwrap();
        assert_eq!(back.meta, c.meta);
        assert_eq!(back.sections, c.sections);
        assert_eq!(back.section("model"), Some(&[1u8, 2, 3][..]));
        assert_eq!(back.section("optimizer"), None);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample(1).encode();
        let err = |b: &[u8]| {
            Checkpoint::decode(b, Path::new("c.ckpt"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&bytes[..bytes.len() - 1]),
            "c.ckpt: not a diffusion-train checkpoint (checksum mismatch: the file is truncated or damaged)"
        );
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(err(&flipped).contains("checksum mismatch"));
        assert_eq!(
            err(b"PK\x03\x04 a zip file, not ours......................................"),
            "c.ckpt: not a diffusion-train checkpoint (bad magic number)"
        );
    }

    #[test]
    fn a_crash_between_write_and_rename_keeps_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latest.ckpt");
        sample(1).save(&path).unwrap();
        // The process dies after the new file is written but before the rename: the
        // staged file is abandoned.
        let staged = sample(2).stage(&path).unwrap();
        std::mem::forget(staged);
        assert_eq!(Checkpoint::load(&path).unwrap().meta.epoch, 1);
        // The next save still succeeds and replaces it.
        sample(3).save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap().meta.epoch, 3);
    }
}

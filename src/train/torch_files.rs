//! Weights files of the user's PyTorch side: safetensors, which `export` writes and
//! `init_from` reads, and their own `torch.save` checkpoints, which `init_from` reads
//! (through burn's reader of PyTorch files: pickle inside a zip, never executed).
//!
//! Tensor bytes are read only after the tensor's shape matches the configured model; the
//! container's index (a safetensors header, a pickle, a TAR's storages) is read whole,
//! bounded by the file and by the readers' own limits.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorInfo, TensorView};

use super::checkpoint::CheckpointError;
use super::unet::state_dict::{Named, Source};
use crate::output::AtomicFile;

/// The prefix `torch.compile` puts before every name of a compiled model's `state_dict`;
/// their EMA loader strips it, and so do we.
const COMPILED: &str = "_orig_mod.";

fn format_error(path: &Path, reason: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Weights {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// `tensors` (f32) and string `metadata` as safetensors bytes, the metadata in key order.
pub fn encode_safetensors(
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), b)
                .expect("the byte count follows from the shape");
            (t.name.as_str(), view)
        })
        .collect::<Vec<_>>();
    let mut encoded = safetensors::serialize(views, Some(metadata))
        .map_err(|e| format!("cannot encode safetensors: {e}"))?;
    sort_metadata(&mut encoded);
    Ok(encoded)
}

/// Writes `tensors` (f32) and string `metadata` as a safetensors file, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let encoded = encode_safetensors(tensors, metadata).map_err(|e| format_error(path, e))?;
    let write_err = |source| CheckpointError::Write {
        path: path.to_owned(),
        source,
    };
    let file = AtomicFile::create(path).map_err(write_err)?;
    file.file().write_all(&encoded).map_err(write_err)?;
    file.commit(true).map_err(write_err)
}

/// Safetensors bytes already in memory (a checkpoint's section) as a [`Source`].
pub fn safetensors_source(bytes: Vec<u8>) -> Result<Box<dyn Source>, String> {
    SafetensorsFile::from_bytes(bytes).map(|f| Box::new(f) as Box<dyn Source>)
}

/// Puts the header's `__metadata__` in key order. safetensors keeps it in a `HashMap`, so
/// its order (and the file's bytes) changed from run to run; the same weights and
/// metadata now make the same file. The header keeps its length (only the order moves),
/// so the tensors' offsets stay valid.
fn sort_metadata(encoded: &mut [u8]) {
    let n = u64::from_le_bytes(encoded[..8].try_into().expect("8 bytes")) as usize;
    let header = &encoded[8..8 + n];
    let mut v: serde_json::Value =
        serde_json::from_slice(header).expect("safetensors wrote a JSON header");
    if let Some(m) = v.get_mut("__metadata__").and_then(|m| m.as_object_mut()) {
        m.sort_keys();
    }
    let mut sorted = serde_json::to_vec(&v).expect("a JSON value serialises");
    assert!(sorted.len() <= n, "reordering keeps the header's length");
    sorted.resize(n, b' ');
    encoded[8..8 + n].copy_from_slice(&sorted);
}

/// Weights read from a file: the model's, and an EMA's when the file has one (their
/// checkpoint's `ema_state_dict.shadow`).
pub struct Imported {
    pub path: PathBuf,
    pub model: Box<dyn Source>,
    pub ema: Option<Box<dyn Source>>,
}

/// A missing or unreadable file is said as such, not as a format the file is not.
fn readable(path: &Path) -> Result<(), CheckpointError> {
    File::open(path)
        .map(drop)
        .map_err(|source| CheckpointError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Opens `path`: a `.safetensors` file by its extension, anything else as a `torch.save`
/// file (their checkpoint dict with `model_state_dict`, or a bare `state_dict`).
pub fn open(path: &Path) -> Result<Imported, CheckpointError> {
    readable(path)?;
    let is_safetensors = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if is_safetensors {
        return Ok(Imported {
            path: path.to_owned(),
            model: Box::new(SafetensorsFile::open(path)?),
            ema: None,
        });
    }
    let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| {
        format_error(
            path,
            format!("not a safetensors file (by its name) nor a torch.save file: {e}"),
        )
    })?;
    let mut model = HashMap::new();
    let mut ema = HashMap::new();
    let mut bare = HashMap::new();
    for (name, tensor) in reader.into_tensors() {
        if let Some(n) = name.strip_prefix("model_state_dict.") {
            model.insert(n.trim_start_matches(COMPILED).to_owned(), tensor);
        } else if let Some(n) = name.strip_prefix("ema_state_dict.shadow.") {
            ema.insert(n.trim_start_matches(COMPILED).to_owned(), tensor);
        } else {
            bare.insert(name.trim_start_matches(COMPILED).to_owned(), tensor);
        }
    }
    let model = if !model.is_empty() {
        model
    } else if bare
        .keys()
        .any(|k| k.starts_with("model.") || k.starts_with("unet."))
    {
        bare
    } else {
        return Err(format_error(
            path,
            "no model_state_dict and no model.* (DDPMModel) or unet.* (AdmDdpmModel) tensors: expected the user's checkpoint or a state_dict",
        ));
    };
    Ok(Imported {
        path: path.to_owned(),
        model: Box::new(PthTensors(model)),
        ema: (!ema.is_empty()).then(|| Box::new(PthTensors(ema)) as Box<dyn Source>),
    })
}

/// Opens `path` as a plain `torch.save`d state dict (OpenAI's checkpoints): every tensor
/// under its own name, nothing unwrapped; whether the names are the model's is the
/// loader's to judge.
pub fn open_state_dict(path: &Path) -> Result<Box<dyn Source>, CheckpointError> {
    readable(path)?;
    let reader = pytorch_reader::PytorchReader::new(path)
        .map_err(|e| format_error(path, format!("not a torch.save file: {e}")))?;
    Ok(Box::new(PthTensors(
        reader.into_tensors().into_iter().collect(),
    )))
}

fn f32_values(bytes: &[u8], f64_wide: bool, le: bool) -> Vec<f32> {
    let conv4 = |c: &[u8]| {
        let b = c.try_into().expect("4 bytes");
        if le {
            f32::from_le_bytes(b)
        } else {
            f32::from_ne_bytes(b)
        }
    };
    let conv8 = |c: &[u8]| {
        let b = c.try_into().expect("8 bytes");
        (if le {
            f64::from_le_bytes(b)
        } else {
            f64::from_ne_bytes(b)
        }) as f32
    };
    if f64_wide {
        bytes.chunks_exact(8).map(conv8).collect()
    } else {
        bytes.chunks_exact(4).map(conv4).collect()
    }
}

const DTYPE_HINT: &str =
    "expected float32 (or float64) weights; convert the model with .float() before saving";

/// The tensors of a `torch.save` file, by their names in the `state_dict`.
struct PthTensors(HashMap<String, pytorch_reader::Tensor>);

impl Source for PthTensors {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.0.get(name).map(|t| t.shape().to_vec())
    }
    fn values(&self, name: &str) -> Result<Vec<f32>, String> {
        use pytorch_reader::DType;
        let t = self.0.get(name).ok_or("absent")?;
        let wide = match t.dtype() {
            DType::F32 => false,
            DType::F64 => true,
            other => return Err(format!("dtype {other:?}; {DTYPE_HINT}")),
        };
        // The reader returns native-endian bytes.
        Ok(f32_values(
            &t.read().map_err(|e| e.to_string())?,
            wide,
            false,
        ))
    }
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// The largest weights file read: four times the user's full ADM in f32 (1.2 GB), far
/// above any model of theirs, so a wrong path cannot become an allocation of its size.
const MAX_WEIGHTS_BYTES: u64 = 5 << 30;

/// A safetensors file, read into memory (never mapped: a file truncated underneath would
/// be SIGBUS, not a message); its header is parsed and validated (offsets within the file,
/// sizes matching shapes) by the format's own crate.
struct SafetensorsFile {
    bytes: Vec<u8>,
    data_start: usize,
    infos: HashMap<String, TensorInfo>,
}

impl SafetensorsFile {
    fn open(path: &Path) -> Result<SafetensorsFile, CheckpointError> {
        let read_err = |source| CheckpointError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = crate::input::read_bounded(path, MAX_WEIGHTS_BYTES).map_err(read_err)?;
        SafetensorsFile::from_bytes(bytes).map_err(|e| format_error(path, e))
    }

    fn from_bytes(bytes: Vec<u8>) -> Result<SafetensorsFile, String> {
        let (header, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| format!("not a safetensors file: {e}"))?;
        let infos = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        Ok(SafetensorsFile {
            bytes,
            data_start: 8 + header,
            infos,
        })
    }
}

impl Source for SafetensorsFile {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.infos.get(name).map(|i| i.shape.clone())
    }
    fn values(&self, name: &str) -> Result<Vec<f32>, String> {
        let info = self.infos.get(name).ok_or("absent")?;
        let wide = match info.dtype {
            Dtype::F32 => false,
            Dtype::F64 => true,
            other => return Err(format!("dtype {other:?}; {DTYPE_HINT}")),
        };
        let (a, b) = info.data_offsets;
        let bytes = &self.bytes[self.data_start + a..self.data_start + b];
        Ok(f32_values(bytes, wide, true))
    }
    fn names(&self) -> Vec<String> {
        self.infos.keys().cloned().collect()
    }
}

//! Where a step's images come from. Either the host pipeline (decode, augment and
//! normalise on the CPU threads, one upload per batch), or, when the decoded set fits the
//! device-data budget, the device itself: every image uploaded once, normalised, and
//! each batch gathered there, its flips and rotations one more gather through maps the
//! host computes from the same draws ([`transform::source_map`]). Both give the same
//! batch, value for value. Per step the resident path uploads the batch's indices and,
//! when any of its samples moves, one map entry per pixel of every sample, instead of
//! the batch's images (one value per pixel per channel): a third for RGB, no saving for
//! one channel, nothing at all without augmentation.
//!
//! Colour jitter is not a gather (it rounds to bytes between its three blends), so with
//! jitter on, training batches come from the host pipeline; validation, never augmented,
//! can still be resident.

use burn::prelude::*;

use crate::images::loader::{batch_plan, Dataset, LoadError, LoaderConfig, Shard, Slots};
use crate::images::transform::{self, Augment};
use crate::rng::EpochStream;

/// The default `--device-data-mb` (MiB): the user's sets (about 600 RGB images of 40x40)
/// take 11 MiB, so this holds sets ninety times larger and stays small beside a GPU's
/// memory.
pub const DEFAULT_BUDGET_MB: u64 = 1024;

/// A batch ready for a step: `x0` is `[batch, channels, size, size]` on the device.
pub struct DeviceBatch {
    pub x0: Tensor<4>,
    pub labels: Vec<u32>,
}

/// Why a set stays on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostReason {
    /// Its decoded size (bytes) is over what is left of the budget (bytes).
    OverBudget { bytes: u64, left: u64 },
    /// Its augmentation includes colour jitter.
    Jitter,
}

impl std::fmt::Display for HostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostReason::OverBudget { bytes, left } => write!(
                f,
                "its decoded {:.1} MiB is over the {:.1} MiB left of --device-data-mb",
                mib(*bytes),
                mib(*left)
            ),
            HostReason::Jitter => write!(f, "colour jitter runs on the host"),
        }
    }
}

/// `bytes` in MiB, as the log and messages give sizes.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What a set of `n` samples takes on the device: f32 planes, each with its black value.
/// Saturating: a config's image size is not bounded here, and a wrapped product would let
/// a huge set through the budget check.
pub fn resident_bytes(n: usize, cfg: &LoaderConfig) -> u64 {
    let s = u64::from(cfg.image_size);
    [
        n as u64,
        cfg.channels as u64,
        s.saturating_mul(s).saturating_add(1),
        4,
    ]
    .into_iter()
    .fold(1, u64::saturating_mul)
}

/// Whether a set of `n` samples loaded with `cfg` goes to the device with `left` bytes of
/// budget: `Ok(bytes it takes)` or why not.
pub fn placement(n: usize, cfg: &LoaderConfig, left: u64) -> Result<u64, HostReason> {
    if cfg
        .augmentation
        .as_ref()
        .is_some_and(|a| !transform::moves_pixels_only(a))
    {
        return Err(HostReason::Jitter);
    }
    let bytes = resident_bytes(n, cfg);
    // A budget of 0 keeps even an empty set off the device, as `--device-data-mb 0` says.
    if bytes > left || left == 0 {
        return Err(HostReason::OverBudget { bytes, left });
    }
    Ok(bytes)
}

/// A set's images on the device.
pub struct Resident {
    /// `[N, C, H*W + 1]`: the normalised planes, each followed by one black value (-1,
    /// what a zero byte normalises to) for the pixels a rotation brings in from outside.
    pixels: Tensor<3>,
    labels: Vec<u32>,
    cfg: LoaderConfig,
}

impl Resident {
    /// Decodes all of `data` unaugmented through the pipeline (its cache when it has one)
    /// and uploads it. The first image that fails to load fails this, before any step.
    pub fn upload(
        data: &Dataset,
        cfg: &LoaderConfig,
        device: &Device,
    ) -> Result<Resident, LoadError> {
        let plain = LoaderConfig {
            augmentation: None,
            ..cfg.clone()
        };
        let all: Vec<usize> = (0..data.len()).collect();
        let b = data.batch(&all, Slots::START, 0, &plain)?;
        Ok(Resident::from_planes(
            b.images, b.shape, b.labels, cfg, device,
        ))
    }

    /// A set already decoded and normalised, `images` laid out in `shape` as
    /// [`Dataset::batch`] gives them: the pipeline's, or `bench`'s random ones, so that
    /// its data phase does the trainer's per-step work.
    pub fn from_planes(
        images: Vec<f32>,
        shape: [usize; 4],
        labels: Vec<u32>,
        cfg: &LoaderConfig,
        device: &Device,
    ) -> Resident {
        let [n, c, h, w] = shape;
        let hw = h * w;
        // Padded in place, last plane first (each moves right, never over one not yet
        // moved), so the host holds the set once, not twice, on the way to the device.
        let mut padded = images;
        padded.resize(n * c * (hw + 1), 0.0);
        for p in (0..n * c).rev() {
            padded.copy_within(p * hw..(p + 1) * hw, p * (hw + 1));
            padded[p * (hw + 1) + hw] = -1.0;
        }
        Resident {
            pixels: Tensor::<3>::from_data(TensorData::new(padded, [n, c, hw + 1]), device),
            labels,
            cfg: cfg.clone(),
        }
    }

    /// The samples at `positions` of the set, at epoch positions `slots`: the same
    /// values [`Dataset::batch`] gives.
    pub fn batch(&self, positions: &[usize], slots: Slots, epoch: u64) -> DeviceBatch {
        let device = self.pixels.device();
        let [_, c, padded] = self.pixels.dims();
        let (n, hw, s) = (positions.len(), padded - 1, self.cfg.image_size as usize);
        let index: Vec<i64> = positions.iter().map(|&i| i as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n]), &device);
        let x = self.pixels.clone().select(0, index);
        let maps: Vec<Option<Vec<i64>>> = match &self.cfg.augmentation {
            Some(aug) => (0..n)
                .map(|k| {
                    let mut stream = EpochStream::augment(self.cfg.seed, epoch, slots.at(k));
                    transform::source_map(&Augment::draw(aug, &mut stream), s as u32)
                })
                .collect(),
            None => Vec::new(),
        };
        let x = if maps.iter().all(Option::is_none) {
            x.slice([0..n, 0..c, 0..hw])
        } else {
            let mut flat: Vec<i64> = Vec::with_capacity(n * hw);
            for map in &maps {
                match map {
                    Some(m) => flat.extend_from_slice(m),
                    None => flat.extend(0..hw as i64),
                }
            }
            let maps = Tensor::<3, Int>::from_data(TensorData::new(flat, [n, 1, hw]), &device);
            x.gather(2, maps.expand([n, c, hw]))
        };
        DeviceBatch {
            x0: x.reshape([n, c, s, s]),
            labels: positions.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A set's batches, from wherever its images are.
pub enum Feed {
    Host {
        data: Dataset,
        cfg: LoaderConfig,
        device: Device,
    },
    Device(Box<Resident>),
}

impl Feed {
    /// `data` resident on `device` when [`placement`] allows it with `left` bytes of
    /// budget, else through the host pipeline; with the bytes it took and, on the host,
    /// why.
    pub fn new(
        data: &Dataset,
        cfg: LoaderConfig,
        left: u64,
        device: &Device,
    ) -> Result<(Feed, u64, Option<HostReason>), LoadError> {
        match placement(data.len(), &cfg, left) {
            Ok(bytes) => Ok((
                Feed::Device(Box::new(Resident::upload(data, &cfg, device)?)),
                bytes,
                None,
            )),
            Err(why) => Ok((
                Feed::Host {
                    data: data.clone(),
                    cfg,
                    device: device.clone(),
                },
                0,
                Some(why),
            )),
        }
    }

    /// The batches of one epoch visiting `order`, with `batch_size` and `drop_last` as
    /// the loader's config says.
    pub fn epoch(
        &self,
        order: Vec<usize>,
        epoch: u64,
    ) -> Box<dyn Iterator<Item = Result<DeviceBatch, LoadError>> + '_> {
        match self {
            Feed::Host { data, cfg, device } => {
                Box::new(data.batches(order, epoch, cfg.clone(), 2).map(move |b| {
                    b.map(|b| DeviceBatch {
                        x0: Tensor::<4>::from_data(TensorData::new(b.images, b.shape), device),
                        labels: b.labels,
                    })
                }))
            }
            Feed::Device(r) => Box::new(
                batch_plan(order.len(), Shard::WHOLE, &r.cfg)
                    .map(move |(range, slots)| Ok(r.batch(&order[range], slots, epoch))),
            ),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Feed::Host { data, .. } => data.len(),
            Feed::Device(r) => r.labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_resident(&self) -> bool {
        matches!(self, Feed::Device(_))
    }
}

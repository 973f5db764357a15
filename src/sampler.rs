//! The per-epoch index stream that training consumes: a pure function of (manifest, seed,
//! epoch, rank, world size).
//!
//! Epoch `k` draws from its own ChaCha8 stream `(seed, "epoch", k)` (see [`crate::rng`]), so its order never
//! depends on how many epochs ran before (a resumed run sees the same epochs as an
//! uninterrupted one). The stream is generated sequentially and is the same for any thread
//! count. Algorithms (pinned by golden tests, written out so they never change with a
//! crate version):
//!
//! - **shuffle** (down/upsampled or unbalanced manifests): Fisher-Yates from the end,
//!   `for i in (1..n).rev() { j = below(i + 1); swap(a[i], a[j]) }` over `0..n`;
//! - **weighted, with replacement**: every draw picks a class from a Walker/Vose alias table
//!   over the class masses `n_c * w_c` (one 64-bit number: its top 53 bits `x` give column
//!   `(x * K) >> 53` and coin `((x * K) mod 2^53) / 2^53`; class `col` if the coin is below
//!   `prob[col]`, else `alias[col]`), then a member of that class with `below(n_c)`: O(1)
//!   per draw, and the same distribution as drawing samples with per-sample weight
//!   `w_label`;
//! - **weighted, without replacement**: successive draws exactly as `torch.multinomial`
//!   defines them: each draw picks a class with probability `r_c w_c / sum_k r_k w_k`
//!   (`r` = samples of the class not yet drawn; `u * total` against the running sum in label
//!   order), then one of its remaining members with `below(r_c)` (swap-remove), so no index
//!   repeats. O(K) per draw, K the number of classes.
//! - **sharding** as `DistributedSampler`: the global stream padded by wrap-around to a
//!   multiple of the world size; rank `r` takes positions `r, r + W, r + 2W, ...`.
//!
//! Positions are indices into the manifest's `train` list.

use crate::rng::EpochStream;

/// Why an epoch cannot be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    #[error("--rank {rank} is not below --world-size {world_size}")]
    Rank { rank: usize, world_size: usize },
    #[error("--world-size must be at least 1")]
    WorldSize,
    #[error("sampler.num_samples is {num_samples} but replacement is false and train has only {train} entries")]
    TooManySamples { num_samples: u64, train: usize },
    #[error("sampler.class_weights has {found} values but there are {expected} classes")]
    WeightsLength { expected: usize, found: usize },
    #[error("no class has both training samples and a positive weight; nothing can be drawn")]
    NoMass,
    #[error("train has {0} entries; the weighted sampler handles at most 4,294,967,295")]
    TooLarge(usize),
    /// The epoch's positions could not be allocated (the bounds allow 2^30 draws, 8 GiB).
    #[error("out of memory: one epoch of {draws} draws needs {bytes} bytes")]
    OutOfMemory { draws: u64, bytes: u64 },
}

/// The weighted sampler of a manifest (`balancing.sampler`).
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    pub class_weights: Vec<f64>,
    pub replacement: bool,
    pub num_samples: u64,
}

/// What an epoch is drawn from.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    /// Labels of the manifest's `train` entries, in order.
    pub labels: &'a [u32],
    pub num_classes: usize,
    /// `None`: every entry once per epoch (shuffled or not).
    pub weighted: Option<&'a Weighted>,
    /// `data.loading.shuffle_train`; ignored by the weighted sampler, which is random anyway.
    pub shuffle: bool,
}

/// The global stream of epoch `epoch` (before sharding).
pub fn global(src: &Source, seed: u64, epoch: u64) -> Result<Vec<usize>, SamplerError> {
    let mut s = EpochStream::epoch(seed, epoch);
    match src.weighted {
        None if src.shuffle => {
            let mut a: Vec<usize> = (0..src.labels.len()).collect();
            for i in (1..a.len()).rev() {
                let j = s.below(i as u64 + 1) as usize;
                a.swap(i, j);
            }
            Ok(a)
        }
        None => Ok((0..src.labels.len()).collect()),
        Some(w) => {
            if u32::try_from(src.labels.len()).is_err() {
                return Err(SamplerError::TooLarge(src.labels.len()));
            }
            if w.class_weights.len() != src.num_classes {
                return Err(SamplerError::WeightsLength {
                    expected: src.num_classes,
                    found: w.class_weights.len(),
                });
            }
            let members = members_by_class(src.labels, src.num_classes);
            if w.replacement {
                with_replacement(&members, &w.class_weights, w.num_samples, &mut s)
            } else {
                without_replacement(members, &w.class_weights, w.num_samples, &mut s)
            }
        }
    }
}

/// Rank `rank`'s share of a global stream, padded by wrap-around as `DistributedSampler`
/// does; all ranks get the same number of positions and together cover the padded stream.
pub fn shard(global: &[usize], rank: usize, world_size: usize) -> Result<Vec<usize>, SamplerError> {
    if world_size == 0 {
        return Err(SamplerError::WorldSize);
    }
    if rank >= world_size {
        return Err(SamplerError::Rank { rank, world_size });
    }
    let n = global.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let total = n.div_ceil(world_size) * world_size;
    Ok((rank..total)
        .step_by(world_size)
        .map(|p| global[p % n])
        .collect())
}

/// The positions rank `rank` of `world_size` trains on in epoch `epoch`.
pub fn epoch(
    src: &Source,
    seed: u64,
    epoch: u64,
    rank: usize,
    world_size: usize,
) -> Result<Vec<usize>, SamplerError> {
    // Check the shard arguments before drawing a possibly large stream.
    shard(&[], rank, world_size)?;
    let all = global(src, seed, epoch)?;
    if world_size == 1 {
        // One rank's share is the whole stream: no copy of it.
        return Ok(all);
    }
    shard(&all, rank, world_size)
}

/// How many positions [`epoch`] gives each rank (the padded epoch divided by the world
/// size), without drawing them: what a `Sampler`'s `__len__` reports.
/// `entries` is the list's length; `weighted` as in [`Source`] (a list read in order, such
/// as validation data, passes `None`).
pub fn epoch_len(entries: usize, weighted: Option<&Weighted>, world_size: usize) -> usize {
    let n = match weighted {
        Some(w) => usize::try_from(w.num_samples).unwrap_or(usize::MAX),
        None => entries,
    };
    n.div_ceil(world_size.max(1))
}

/// Positions of each class's entries, ascending. `u32` halves the memory that the random
/// member lookups touch; [`global`] refuses longer lists.
fn members_by_class(labels: &[u32], k: usize) -> Vec<Vec<u32>> {
    let mut m = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        m[l as usize].push(i as u32);
    }
    m
}

/// Class masses `n_c * w_c`, and their sum; an error if nothing can be drawn.
fn masses(
    counts: impl Iterator<Item = usize>,
    weights: &[f64],
) -> Result<(Vec<f64>, f64), SamplerError> {
    let m: Vec<f64> = counts.zip(weights).map(|(n, &w)| n as f64 * w).collect();
    let total: f64 = m.iter().sum();
    if total > 0.0 && total.is_finite() {
        Ok((m, total))
    } else {
        Err(SamplerError::NoMass)
    }
}

/// Vose's alias table over class masses.
struct Alias {
    prob: Vec<f64>,
    alias: Vec<usize>,
}

impl Alias {
    fn new(masses: &[f64], total: f64) -> Alias {
        let k = masses.len();
        let mut prob: Vec<f64> = masses.iter().map(|m| m * k as f64 / total).collect();
        let mut alias: Vec<usize> = (0..k).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..k).partition(|&c| prob[c] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s] = l;
            prob[l] = (prob[l] + prob[s]) - 1.0;
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding, except a class without mass (no members),
        // which rounding can leave here too: it must never be drawn (there is nothing to
        // draw from), so its column goes to the first class of the largest mass.
        let heaviest = (0..k).fold(0, |b, c| if masses[c] > masses[b] { c } else { b });
        for c in small.into_iter().chain(large) {
            if masses[c] > 0.0 {
                prob[c] = 1.0;
            } else {
                prob[c] = 0.0;
                alias[c] = heaviest;
            }
        }
        Alias { prob, alias }
    }

    /// One draw from one 64-bit number: its top 53 bits `x` give the column
    /// `(x * K) >> 53` and the coin `((x * K) mod 2^53) / 2^53`. Each column's chance is
    /// within 2^-53 of 1/K, below the rounding of `prob` itself, and the coin is exactly
    /// uniform on its 2^53 steps.
    #[inline]
    fn draw(&self, s: &mut EpochStream) -> usize {
        const BITS: u32 = 53;
        let x = u128::from(s.next_u64() >> (64 - BITS)) * self.prob.len() as u128;
        let col = (x >> BITS) as usize;
        // The low 53 bits as u64 first: the same value, and no software u128-to-float.
        let coin = (x as u64 & ((1 << BITS) - 1)) as f64 * (1.0 / (1u64 << BITS) as f64);
        if coin < self.prob[col] {
            col
        } else {
            self.alias[col]
        }
    }
}

/// Draws are made in blocks: first every random choice of the block (compute-bound),
/// then every lookup of a class member (memory-bound, and independent of each other, so
/// the CPU overlaps their cache misses). The random numbers are consumed in exactly the
/// same order as one draw at a time.
const BLOCK: usize = 512;

fn with_replacement(
    members: &[Vec<u32>],
    weights: &[f64],
    num_samples: u64,
    s: &mut EpochStream,
) -> Result<Vec<usize>, SamplerError> {
    let (m, total) = masses(members.iter().map(Vec::len), weights)?;
    let table = Alias::new(&m, total);
    in_blocks(
        num_samples,
        || {
            let c = table.draw(s);
            Ok((c, s.below(members[c].len() as u64) as usize))
        },
        |c, j| members[c][j] as usize,
    )
}

fn without_replacement(
    mut members: Vec<Vec<u32>>,
    weights: &[f64],
    num_samples: u64,
    s: &mut EpochStream,
) -> Result<Vec<usize>, SamplerError> {
    let train: usize = members.iter().map(Vec::len).sum();
    if num_samples > train as u64 {
        return Err(SamplerError::TooManySamples { num_samples, train });
    }
    // Classes with weight 0 can never be drawn; without replacement they would leave the
    // epoch short, which torch.multinomial also refuses.
    let drawable: usize = members
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w > 0.0)
        .map(|(m, _)| m.len())
        .sum();
    if num_samples > drawable as u64 {
        return Err(SamplerError::NoMass);
    }
    let mut remaining: Vec<usize> = members.iter().map(Vec::len).collect();
    in_blocks(
        num_samples,
        || {
            let (m, total) = masses(remaining.iter().copied(), weights)?;
            let u = s.uniform() * total;
            let mut acc = 0.0;
            let mut class = None;
            for (c, &mass) in m.iter().enumerate() {
                if mass > 0.0 {
                    acc += mass;
                    class = Some(c);
                    if u < acc {
                        break;
                    }
                }
            }
            // `class` is the last class with mass if rounding left `u` beyond the final sum.
            let c = class.expect("total > 0 means some class has mass");
            let j = s.below(remaining[c] as u64) as usize;
            remaining[c] -= 1;
            Ok((c, j))
        },
        // Swap-remove in draw order: the same result as removing at each draw.
        |c, j| members[c].swap_remove(j) as usize,
    )
}

/// `num_samples` draws made in blocks (see [`BLOCK`]): `pick` makes the random choices
/// (class, index within the class), `take` turns each into a position.
fn in_blocks(
    num_samples: u64,
    mut pick: impl FnMut() -> Result<(usize, usize), SamplerError>,
    mut take: impl FnMut(usize, usize) -> usize,
) -> Result<Vec<usize>, SamplerError> {
    let mut out: Vec<usize> = Vec::new();
    out.try_reserve_exact(num_samples as usize)
        .map_err(|_| SamplerError::OutOfMemory {
            draws: num_samples,
            bytes: num_samples * std::mem::size_of::<usize>() as u64,
        })?;
    let mut picks = Vec::with_capacity(BLOCK);
    let mut left = num_samples as usize;
    while left > 0 {
        let block = left.min(BLOCK);
        picks.clear();
        for _ in 0..block {
            picks.push(pick()?);
        }
        out.extend(picks.iter().map(|&(c, j)| take(c, j)));
        left -= block;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

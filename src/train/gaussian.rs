//! guided-diffusion's Gaussian process as the user's ADM fine-tuning
//! (`experiment: diffusion_pretrained`) builds it: its named beta schedules (its cosine is
//! not the DDPM path's clipped one), respacing (`"250"`, `"10,20"`, `"ddim50"`), and the
//! tables of the forward process, its posterior and the learned-range variance.
//!
//! Pure numbers in f64, handed to the device as f32 per timestep, as their numpy tables
//! are (`_extract_into_tensor` reads a float64 table and casts). Definitions from Nichol and
//! Dhariwal 2021 ("Improved DDPM") and the published guided-diffusion; each table is the
//! formula, evaluated in the order written there, so the f64 values are theirs to the bit.

use std::f64::consts::PI;

use thiserror::Error;

/// `model.diffusion.noise_schedule` of their ADM path. guided-diffusion names two; their
/// config validator also lets `quadratic` and `sigmoid` through, which guided-diffusion then
/// rejects (`NotImplementedError`): refused here at the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmSchedule {
    Linear,
    Cosine,
}

impl AdmSchedule {
    /// The name in their config.
    pub fn name(self) -> &'static str {
        match self {
            AdmSchedule::Linear => "linear",
            AdmSchedule::Cosine => "cosine",
        }
    }
}

/// The betas of `get_named_beta_schedule(name, steps)`.
///
/// - linear: `linspace(1e-4 * 1000/T, 0.02 * 1000/T, T)` (numpy's: the last is exact);
/// - cosine: `beta_i = min(1 - f((i+1)/T) / f(i/T), 0.999)`, `f(t) = cos((t + 0.008) /
///   1.008 * pi / 2)^2`; no lower clip.
pub fn betas(schedule: AdmSchedule, steps: usize) -> Vec<f64> {
    match schedule {
        AdmSchedule::Linear => {
            let scale = 1000.0 / steps as f64;
            let (a, b) = (scale * 0.0001, scale * 0.02);
            if steps == 1 {
                return vec![a];
            }
            let step = (b - a) / (steps - 1) as f64;
            let mut v: Vec<f64> = (0..steps).map(|i| i as f64 * step + a).collect();
            v[steps - 1] = b;
            v
        }
        AdmSchedule::Cosine => {
            let alpha_bar = |t: f64| ((t + 0.008) / 1.008 * PI / 2.0).cos().powi(2);
            (0..steps)
                .map(|i| {
                    let t1 = i as f64 / steps as f64;
                    let t2 = (i + 1) as f64 / steps as f64;
                    (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999)
                })
                .collect()
        }
    }
}

/// Why a respacing string was refused; the message is what follows the key's name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RespacingError {
    #[error("{0:?} is not a list of step counts (\"250\", \"10,20,30\") nor \"ddimN\"")]
    Syntax(String),
    #[error("{spec:?}: cannot take exactly {count} steps of {steps} with an integer stride")]
    Stride {
        spec: String,
        count: usize,
        steps: usize,
    },
    #[error("{spec:?}: a section of {size} steps cannot be divided into {count}")]
    Section {
        spec: String,
        size: usize,
        count: usize,
    },
    /// guided-diffusion fails on a process of one step (its clipped posterior variance
    /// reads the second).
    #[error("{spec:?} keeps {kept} step(s); at least 2 are needed")]
    Few { spec: String, kept: usize },
}

/// The original timesteps a respacing keeps, ascending (`space_timesteps`): `""` keeps all
/// (their factory passes `[steps]`); `"ddimN"` the stride `i` with exactly `N` steps
/// `0, i, 2i, ...`; otherwise comma-separated counts, one per equal section of `0..T`
/// (the first `T % sections` one longer), each spread evenly over its section, rounded
/// half to even as Python's `round`.
pub fn respacing(steps: usize, spec: &str) -> Result<Vec<usize>, RespacingError> {
    let syntax = || RespacingError::Syntax(spec.to_owned());
    if spec.is_empty() {
        return Ok((0..steps).collect());
    }
    if let Some(n) = spec.strip_prefix("ddim") {
        let count = parse_count(n).ok_or_else(syntax)?;
        return (1..steps)
            .find(|&i| steps.div_ceil(i) == count)
            .map(|i| (0..steps).step_by(i).collect())
            .ok_or_else(|| RespacingError::Stride {
                spec: spec.to_owned(),
                count,
                steps,
            });
    }
    let counts = spec
        .split(',')
        .map(parse_count)
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(syntax)?;
    let (per, extra) = (steps / counts.len(), steps % counts.len());
    let mut kept = Vec::new();
    let mut start = 0;
    for (i, &count) in counts.iter().enumerate() {
        let size = per + usize::from(i < extra);
        if size < count {
            return Err(RespacingError::Section {
                spec: spec.to_owned(),
                size,
                count,
            });
        }
        let stride = if count <= 1 {
            1.0
        } else {
            (size - 1) as f64 / (count - 1) as f64
        };
        let mut at = 0.0f64;
        for _ in 0..count {
            kept.push(start + at.round_ties_even() as usize);
            at += stride;
        }
        start += size;
    }
    kept.sort_unstable();
    kept.dedup();
    if kept.len() < 2 {
        return Err(RespacingError::Few {
            spec: spec.to_owned(),
            kept: kept.len(),
        });
    }
    Ok(kept)
}

/// A step count as Python's `int` reads one from such a string: digits, surrounding
/// spaces allowed.
fn parse_count(s: &str) -> Option<usize> {
    let s = s.trim();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The tables of one (possibly respaced) process, indexed by its own timestep `i`;
/// `timestep_map[i]` is the original timestep the model is given.
#[derive(Clone, Debug, PartialEq)]
pub struct Process {
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
    pub alphas_cumprod_prev: Vec<f64>,
    pub sqrt_alphas_cumprod: Vec<f64>,
    pub sqrt_one_minus_alphas_cumprod: Vec<f64>,
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    pub posterior_variance: Vec<f64>,
    /// `log` of the posterior variance, its first entry (zero) replaced by the second's.
    pub posterior_log_variance_clipped: Vec<f64>,
    pub posterior_mean_coef1: Vec<f64>,
    pub posterior_mean_coef2: Vec<f64>,
    /// `log(beta)`: the upper end of the learned-range variance.
    pub log_betas: Vec<f64>,
    pub timestep_map: Vec<usize>,
}

impl Process {
    /// The process over all of `betas`' timesteps.
    pub fn new(betas: Vec<f64>) -> Process {
        let map = (0..betas.len()).collect();
        Process::with_map(betas, map)
    }

    /// The process restricted to `kept` timesteps (`SpacedDiffusion`): betas recomputed so
    /// that the kept steps' `alpha_bar` are the original ones, `1 - ab_k / ab_prev_kept`.
    pub fn respaced(betas: &[f64], kept: &[usize]) -> Process {
        let full = Process::new(betas.to_vec());
        let mut last = 1.0;
        let mut new = Vec::with_capacity(kept.len());
        for &t in kept {
            let ab = full.alphas_cumprod[t];
            new.push(1.0 - ab / last);
            last = ab;
        }
        Process::with_map(new, kept.to_vec())
    }

    fn with_map(betas: Vec<f64>, timestep_map: Vec<usize>) -> Process {
        let n = betas.len();
        let mut acc = 1.0;
        let ac: Vec<f64> = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        let prev: Vec<f64> = (0..n)
            .map(|t| if t == 0 { 1.0 } else { ac[t - 1] })
            .collect();
        let each = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
        let posterior_variance = each(&|t| betas[t] * (1.0 - prev[t]) / (1.0 - ac[t]));
        let posterior_log_variance_clipped = each(&|t| {
            // (A one-step process has no second entry; `respacing` refuses one.)
            let v = match t {
                0 => posterior_variance.get(1).unwrap_or(&posterior_variance[0]),
                _ => &posterior_variance[t],
            };
            v.ln()
        });
        Process {
            sqrt_alphas_cumprod: each(&|t| ac[t].sqrt()),
            sqrt_one_minus_alphas_cumprod: each(&|t| (1.0 - ac[t]).sqrt()),
            sqrt_recip_alphas_cumprod: each(&|t| (1.0 / ac[t]).sqrt()),
            sqrt_recipm1_alphas_cumprod: each(&|t| (1.0 / ac[t] - 1.0).sqrt()),
            posterior_mean_coef1: each(&|t| betas[t] * prev[t].sqrt() / (1.0 - ac[t])),
            posterior_mean_coef2: each(&|t| {
                (1.0 - prev[t]) * (1.0 - betas[t]).sqrt() / (1.0 - ac[t])
            }),
            log_betas: each(&|t| betas[t].ln()),
            posterior_variance,
            posterior_log_variance_clipped,
            alphas_cumprod_prev: prev,
            alphas_cumprod: ac,
            betas,
            timestep_map,
        }
    }

    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respacing_250_of_1000_spreads_evenly_from_0_to_999() {
        let kept = respacing(1000, "250").unwrap();
        assert_eq!(kept.len(), 250);
        assert_eq!(&kept[..4], &[0, 4, 8, 12]);
        assert_eq!(&kept[246..], &[987, 991, 995, 999]);
    }

    #[test]
    fn respacing_sections_and_ddim_and_the_full_chain() {
        assert_eq!(respacing(10, "").unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(respacing(10, "2,3").unwrap(), vec![0, 4, 5, 7, 9]);
        assert_eq!(respacing(10, "ddim5").unwrap(), vec![0, 2, 4, 6, 8]);
        assert_eq!(respacing(10, " 2 ").unwrap(), vec![0, 9]);
        assert_eq!(respacing(1000, "1000").unwrap().len(), 1000);
    }

    #[test]
    fn respacing_refusals_say_why() {
        let e = |s: &str| respacing(10, s).unwrap_err().to_string();
        assert_eq!(
            e("fast"),
            "\"fast\" is not a list of step counts (\"250\", \"10,20,30\") nor \"ddimN\""
        );
        assert_eq!(
            e("ddim7"),
            "\"ddim7\": cannot take exactly 7 steps of 10 with an integer stride"
        );
        assert_eq!(
            e("6,1"),
            "\"6,1\": a section of 5 steps cannot be divided into 6"
        );
        assert_eq!(e("0"), "\"0\" keeps 0 step(s); at least 2 are needed");
        assert_eq!(e("1"), "\"1\" keeps 1 step(s); at least 2 are needed");
        assert!(e("-1").starts_with("\"-1\" is not"));
    }

    #[test]
    fn cosine_betas_are_unclipped_below_and_capped_at_0_999() {
        let b = betas(AdmSchedule::Cosine, 1000);
        assert!(b[0] < 1e-4 && b[0] > 0.0, "{}", b[0]);
        assert_eq!(b[999], 0.999);
        let l = betas(AdmSchedule::Linear, 1000);
        assert_eq!((l[0], l[999]), (0.0001, 0.02));
    }

    #[test]
    fn a_respaced_process_keeps_the_original_alpha_bars() {
        let b = betas(AdmSchedule::Cosine, 100);
        let full = Process::new(b.clone());
        let kept = respacing(100, "10").unwrap();
        let p = Process::respaced(&b, &kept);
        for (i, &t) in kept.iter().enumerate() {
            let (x, y) = (p.alphas_cumprod[i], full.alphas_cumprod[t]);
            assert!((x - y).abs() <= 1e-9 * y, "{i}: {x} vs {y}");
        }
        assert_eq!(p.timestep_map, kept);
        assert_eq!(
            p.posterior_log_variance_clipped[0],
            p.posterior_variance[1].ln()
        );
    }
}

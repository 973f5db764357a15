//! The DDPM noise schedule and the learning-rate schedule: pure numbers, computed in f64
//! on the host and handed to the device as f32 tables, so every backend sees the same
//! values.

use std::f64::consts::PI;

use super::settings::{BetaSchedule, Diffusion, Scheduler};

/// `beta_t` and the products the forward and reverse processes need, for t = 0..T-1.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    /// `alpha_bar_t = prod_{s <= t} (1 - beta_s)`.
    pub alphas_cumprod: Vec<f64>,
}

/// `n` evenly spaced values from `a` to `b` inclusive, as `torch.linspace`.
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    let step = (b - a) / (n - 1) as f64;
    (0..n).map(|i| a + step * i as f64).collect()
}

impl NoiseSchedule {
    /// The schedule `model.diffusion` describes:
    ///
    /// - linear: `linspace(beta_start, beta_end, T)`;
    /// - quadratic: `linspace(sqrt(beta_start), sqrt(beta_end), T)^2`;
    /// - sigmoid: `sigmoid(linspace(-6, 6, T)) * (beta_end - beta_start) + beta_start`;
    /// - cosine (Nichol and Dhariwal 2021, s = 0.008): `f(t) = cos((t/T + s) / (1 + s) * pi/2)^2`,
    ///   `beta_t = clip(1 - f(t+1)/f(t), 1e-4, 0.9999)` (the user's bounds: the first and
    ///   last steps are clipped); beta_start and beta_end are not used.
    pub fn new(d: &Diffusion) -> NoiseSchedule {
        let t = d.num_timesteps;
        let betas: Vec<f64> = match d.beta_schedule {
            BetaSchedule::Linear => linspace(d.beta_start, d.beta_end, t),
            BetaSchedule::Quadratic => linspace(d.beta_start.sqrt(), d.beta_end.sqrt(), t)
                .into_iter()
                .map(|x| x * x)
                .collect(),
            BetaSchedule::Sigmoid => linspace(-6.0, 6.0, t)
                .into_iter()
                .map(|x| 1.0 / (1.0 + (-x).exp()) * (d.beta_end - d.beta_start) + d.beta_start)
                .collect(),
            BetaSchedule::Cosine => {
                let s = 0.008;
                let f = |i: usize| {
                    ((i as f64 / t as f64 + s) / (1.0 + s) * PI / 2.0)
                        .cos()
                        .powi(2)
                };
                (0..t)
                    .map(|i| (1.0 - f(i + 1) / f(i)).clamp(1e-4, 0.9999))
                    .collect()
            }
        };
        let mut acc = 1.0;
        let alphas_cumprod = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        NoiseSchedule {
            betas,
            alphas_cumprod,
        }
    }

    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// A digest of the betas, recorded in checkpoints so a checkpoint trained under other
    /// betas than the code now computes from the same `model.diffusion` is noticed.
    pub fn betas_sha256(&self) -> String {
        sha256_le(&self.betas)
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// `sqrt(alpha_bar_t)` and `sqrt(1 - alpha_bar_t)`: the forward process
    /// `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`.
    pub fn forward_coefficients(&self, t: usize) -> (f64, f64) {
        let a = self.alphas_cumprod[t];
        (a.sqrt(), (1.0 - a).sqrt())
    }

    /// The posterior `q(x_{t-1} | x_t, x_0)` of Ho et al. 2020 (eqs. 6-7): its mean is
    /// `c0 * x_0 + ct * x_t` with `c0 = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t)`,
    /// `ct = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t)`, and its standard
    /// deviation `sigma_t = sqrt(beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t))` (0 at
    /// t = 0). Sampling predicts x_0 from the noise estimate, clips it to [-1, 1] and takes
    /// this step; returned as `(c0, ct, sigma)`.
    pub fn posterior(&self, t: usize) -> (f64, f64, f64) {
        let beta = self.betas[t];
        let a_bar = self.alphas_cumprod[t];
        let a_bar_prev = if t == 0 {
            1.0
        } else {
            self.alphas_cumprod[t - 1]
        };
        let c0 = beta * a_bar_prev.sqrt() / (1.0 - a_bar);
        let ct = (1.0 - a_bar_prev) * (1.0 - beta).sqrt() / (1.0 - a_bar);
        let var = if t == 0 {
            0.0
        } else {
            beta * (1.0 - a_bar_prev) / (1.0 - a_bar)
        };
        (c0, ct, var.sqrt())
    }
}

/// The learning rate of epoch `epoch` (0-based), as PyTorch's schedulers give it when
/// `scheduler.step()` runs once at the end of each epoch.
pub fn learning_rate(base: f64, s: &Scheduler, epoch: usize) -> f64 {
    match *s {
        Scheduler::Constant => base,
        // CosineAnnealingLR's closed form; past T_max it keeps following the cosine, as
        // PyTorch's does.
        Scheduler::Cosine { t_max, eta_min } => {
            eta_min + (base - eta_min) * (1.0 + (PI * epoch as f64 / t_max as f64).cos()) / 2.0
        }
        Scheduler::Step { step_size, gamma } => base * gamma.powi((epoch / step_size) as i32),
        // Not a function of the epoch: the state's rate (`PlateauState`) is the one used.
        Scheduler::Plateau(_) => base,
    }
}

/// SHA-256 (hex) of values' little-endian bytes: a schedule's fingerprint in checkpoints.
pub fn sha256_le(values: &[f64]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for b in values {
        h.update(b.to_le_bytes());
    }
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diffusion(kind: BetaSchedule, t: usize) -> Diffusion {
        Diffusion {
            num_timesteps: t,
            beta_schedule: kind,
            beta_start: 1e-4,
            beta_end: 0.02,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn linear_and_quadratic_hit_both_ends() {
        let s = NoiseSchedule::new(&diffusion(BetaSchedule::Linear, 1000));
        assert_eq!(s.len(), 1000);
        assert!(close(s.betas[0], 1e-4) && close(s.betas[999], 0.02));
        assert!(close(s.betas[500], 1e-4 + (0.02 - 1e-4) * 500.0 / 999.0));
        let q = NoiseSchedule::new(&diffusion(BetaSchedule::Quadratic, 5));
        let r = (0.02f64.sqrt() - 0.01) / 4.0;
        for (i, b) in q.betas.iter().enumerate() {
            assert!(close(*b, (0.01 + r * i as f64).powi(2)), "{i}: {b}");
        }
    }

    #[test]
    fn sigmoid_is_symmetric_around_the_middle() {
        let s = NoiseSchedule::new(&diffusion(BetaSchedule::Sigmoid, 3));
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expect = [-6.0, 0.0, 6.0].map(|x| sig(x) * (0.02 - 1e-4) + 1e-4);
        for (b, e) in s.betas.iter().zip(expect) {
            assert!(close(*b, e));
        }
        assert!(close(s.betas[1], 1e-4 + (0.02 - 1e-4) / 2.0));
    }

    #[test]
    fn cosine_follows_the_formula_and_is_clipped() {
        let t = 1000;
        let s = NoiseSchedule::new(&diffusion(BetaSchedule::Cosine, t));
        let f = |i: f64| (((i / t as f64) + 0.008) / 1.008 * PI / 2.0).cos().powi(2);
        for i in [20, 500, 998] {
            let expect = 1.0 - f(i as f64 + 1.0) / f(i as f64);
            assert!(close(s.betas[i], expect), "{i}");
        }
        // The user's bounds: the first steps (4.1e-5 to 9.96e-5 unclipped, t = 0..=12)
        // are raised to 1e-4, the last (1 - 0) lowered to 0.9999.
        assert!((1.0 - f(13.0) / f(12.0)) < 1e-4 && (1.0 - f(14.0) / f(13.0)) > 1e-4);
        assert!(s.betas[..=12].iter().all(|&b| b == 1e-4));
        assert!(close(s.betas[13], 1.0 - f(14.0) / f(13.0)));
        assert_eq!(s.betas[999], 0.9999, "the last step is clipped");
        // Past the clipped steps, alpha_bar_t is f(t+1)/f(13) times their product.
        let first = (1.0f64 - 1e-4).powi(13);
        assert!(close(s.alphas_cumprod[100], f(101.0) / f(13.0) * first));
        assert!(s.alphas_cumprod.windows(2).all(|w| w[1] < w[0]));
    }

    #[test]
    fn forward_and_reverse_coefficients() {
        let s = NoiseSchedule::new(&diffusion(BetaSchedule::Linear, 10));
        let (a, b) = s.forward_coefficients(3);
        assert!(close(a * a + b * b, 1.0));
        // At t = 0 the posterior mean is x_0 itself and no noise is added.
        let (c0, ct, sigma) = s.posterior(0);
        assert!(close(c0, 1.0) && ct == 0.0 && sigma == 0.0);
        let (c0, ct, sigma) = s.posterior(5);
        let (b, a, ap) = (s.betas[5], s.alphas_cumprod[5], s.alphas_cumprod[4]);
        assert!(close(sigma * sigma, b * (1.0 - ap) / (1.0 - a)));
        // With x_0 recovered exactly from the true noise, the posterior mean equals the
        // eq. 11 step `(x_t - beta / sqrt(1 - a) eps) / sqrt(1 - beta)`.
        let (x0, eps) = (0.3, -1.2);
        let xt = a.sqrt() * x0 + (1.0 - a).sqrt() * eps;
        let eq11 = (xt - b / (1.0 - a).sqrt() * eps) / (1.0 - b).sqrt();
        assert!(close(c0 * x0 + ct * xt, eq11));
    }

    #[test]
    fn learning_rates_match_pytorch() {
        let cos = Scheduler::Cosine {
            t_max: 10,
            eta_min: 1e-6,
        };
        assert_eq!(learning_rate(1e-4, &cos, 0), 1e-4);
        assert!(close(
            learning_rate(1e-4, &cos, 5),
            1e-6 + (1e-4 - 1e-6) / 2.0
        ));
        assert!(close(learning_rate(1e-4, &cos, 10), 1e-6));
        let step = Scheduler::Step {
            step_size: 3,
            gamma: 0.5,
        };
        let lrs: Vec<f64> = (0..7).map(|e| learning_rate(1.0, &step, e)).collect();
        assert_eq!(lrs, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        assert_eq!(learning_rate(0.3, &Scheduler::Constant, 99), 0.3);
    }
}

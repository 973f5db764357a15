//! The random numbers of one training step, drawn on the host from the step's own ChaCha8
//! stream `(seed, "diffusion", step)`: which timestep each sample is noised to, which
//! labels are dropped to the unconditional class, the Gaussian noise, and the seed handed
//! to the device for dropout masks.
//!
//! Drawing them on the host makes a step a pure function of (seed, step, batch) whatever
//! the backend, so a resumed run repeats an uninterrupted one and the CPU and GPU train on
//! the same noise. Order within the stream (frozen): one `below(T)` per sample, then one
//! `uniform()` per sample when conditioning, then the noise (Box-Muller, sample-major),
//! then one raw `u64` for the device.

use crate::rng::{Purpose, Stream};

use super::settings::Conditioning;

/// One step's draws for a batch of `labels.len()` samples.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDraws {
    pub timesteps: Vec<usize>,
    /// The labels the model is conditioned on (`num_classes` where dropped); `None` for an
    /// unconditional model.
    pub cond_labels: Option<Vec<u32>>,
    /// `labels.len() * sample_len` standard normals, laid out like the batch.
    pub noise: Vec<f32>,
    /// Seeds the device's generator for this step's dropout masks.
    pub device_seed: u64,
}

/// The draws of training step `step` (counted over the whole run, from 0).
pub fn training_step(
    seed: u64,
    step: u64,
    labels: &[u32],
    sample_len: usize,
    num_timesteps: usize,
    cond: Option<&Conditioning>,
) -> StepDraws {
    let mut s = Stream::fast(seed, Purpose::Diffusion, &[step]);
    let timesteps = labels
        .iter()
        .map(|_| s.below(num_timesteps as u64) as usize)
        .collect();
    let cond_labels = cond.map(|c| {
        labels
            .iter()
            .map(|&l| {
                if s.uniform() < c.class_dropout_prob {
                    c.num_classes as u32
                } else {
                    l
                }
            })
            .collect()
    });
    let mut noise = vec![0f32; labels.len() * sample_len];
    s.fill_normal(&mut noise);
    StepDraws {
        timesteps,
        cond_labels,
        noise,
        device_seed: s.next_u64(),
    }
}

/// Fixed timesteps and noise for validation batch `batch`: the same every time the
/// validation runs, so its losses are comparable across epochs.
pub fn validation_batch(
    seed: u64,
    batch: u64,
    n: usize,
    sample_len: usize,
    num_timesteps: usize,
) -> (Vec<usize>, Vec<f32>) {
    let mut s = Stream::fast(seed, Purpose::Validation, &[batch]);
    let t = (0..n)
        .map(|_| s.below(num_timesteps as u64) as usize)
        .collect();
    let mut noise = vec![0f32; n * sample_len];
    s.fill_normal(&mut noise);
    (t, noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_a_pure_function_of_seed_and_step() {
        let cond = Conditioning {
            num_classes: 2,
            class_dropout_prob: 0.5,
        };
        let labels = [0, 1, 1, 0, 1, 0, 0, 1];
        let a = training_step(7, 3, &labels, 12, 1000, Some(&cond));
        assert_eq!(a, training_step(7, 3, &labels, 12, 1000, Some(&cond)));
        assert_ne!(a, training_step(7, 4, &labels, 12, 1000, Some(&cond)));
        assert_eq!(a.noise.len(), 8 * 12);
        assert!(a.timesteps.iter().all(|&t| t < 1000));
        let dropped = a.cond_labels.as_ref().unwrap();
        for (l, d) in labels.iter().zip(dropped) {
            assert!(
                d == l || *d == 2,
                "a label is kept or becomes the unconditional class"
            );
        }
        // Timesteps come first, so the conditioning never shifts them.
        let plain = training_step(7, 3, &labels, 12, 1000, None);
        assert_eq!(plain.timesteps, a.timesteps);
        assert_eq!(plain.cond_labels, None);
    }

    #[test]
    fn dropout_probability_is_respected() {
        let labels = vec![0u32; 10_000];
        let never = Conditioning {
            num_classes: 3,
            class_dropout_prob: 0.0,
        };
        let d = training_step(1, 0, &labels, 1, 10, Some(&never));
        assert_eq!(d.cond_labels.unwrap(), labels);
        let always = Conditioning {
            class_dropout_prob: 1.0,
            ..never.clone()
        };
        let d = training_step(1, 0, &labels, 1, 10, Some(&always));
        assert!(d.cond_labels.unwrap().iter().all(|&l| l == 3));
        let tenth = Conditioning {
            class_dropout_prob: 0.1,
            ..never
        };
        let d = training_step(1, 0, &labels, 1, 10, Some(&tenth));
        let n = d.cond_labels.unwrap().iter().filter(|&&l| l == 3).count();
        assert!((900..1100).contains(&n), "{n}");
    }

    #[test]
    fn validation_draws_repeat() {
        assert_eq!(
            validation_batch(5, 2, 4, 3, 100),
            validation_batch(5, 2, 4, 3, 100)
        );
        assert_ne!(
            validation_batch(5, 2, 4, 3, 100),
            validation_batch(5, 3, 4, 3, 100)
        );
    }
}

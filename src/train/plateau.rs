//! `training.scheduler.type: plateau`: PyTorch's `ReduceLROnPlateau`, stepped once per
//! epoch on a loss. Its rate depends on the losses seen so far, so unlike the closed-form
//! schedules it is state, saved in checkpoints and restored on resume.

use serde::{Deserialize, Serialize};

/// The scheduler's parameters, with `ReduceLROnPlateau`'s defaults and names (the user's
/// code passes every key under `training.scheduler` but `type` to it).
#[derive(Clone, Debug, PartialEq)]
pub struct Plateau {
    /// `mode: max`: the metric should grow (the default, `min`, wants it to fall).
    pub maximize: bool,
    pub factor: f64,
    pub patience: usize,
    pub threshold: f64,
    /// `threshold_mode: abs` (the default, `rel`, scales the threshold by the best value).
    pub absolute: bool,
    pub cooldown: usize,
    pub min_lr: f64,
    pub eps: f64,
}

impl Default for Plateau {
    fn default() -> Plateau {
        Plateau {
            maximize: false,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            absolute: false,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// The keys `ReduceLROnPlateau` takes besides the optimizer.
pub const KEYS: [&str; 8] = [
    "mode",
    "factor",
    "patience",
    "threshold",
    "threshold_mode",
    "cooldown",
    "min_lr",
    "eps",
];

/// Where the scheduler stands: what PyTorch's `state_dict()` of it holds that matters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    pub lr: f64,
    /// The best metric so far, starting at PyTorch's `+inf` (`-inf` with `mode: max`).
    #[serde(with = "float_or_name")]
    pub best: f64,
    pub num_bad_epochs: usize,
    pub cooldown_counter: usize,
}

impl PlateauState {
    pub fn new(p: &Plateau, lr: f64) -> PlateauState {
        PlateauState {
            lr,
            best: if p.maximize {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            num_bad_epochs: 0,
            cooldown_counter: 0,
        }
    }

    fn is_better(&self, p: &Plateau, a: f64) -> bool {
        let best = self.best;
        match (p.maximize, p.absolute) {
            (false, false) => a < best * (1.0 - p.threshold),
            (false, true) => a < best - p.threshold,
            (true, false) => a > best * (p.threshold + 1.0),
            (true, true) => a > best + p.threshold,
        }
    }

    /// One `scheduler.step(metric)`, in `ReduceLROnPlateau.step`'s order: compare, count,
    /// cool down, then reduce once the bad epochs exceed the patience.
    pub fn step(&mut self, p: &Plateau, metric: f64) {
        if self.is_better(p, metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > p.patience {
            let new = (self.lr * p.factor).max(p.min_lr);
            if self.lr - new > p.eps {
                self.lr = new;
            }
            self.cooldown_counter = p.cooldown;
            self.num_bad_epochs = 0;
        }
    }
}

/// JSON has no infinities (serde_json writes them as `null`): the best value is written
/// as a number, or as `"inf"`/`"-inf"`/`"nan"`.
mod float_or_name {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Name(String),
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => Repr::Number(v),
            v if v.is_nan() => Repr::Name("nan".into()),
            v if v > 0.0 => Repr::Name("inf".into()),
            _ => Repr::Name("-inf".into()),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Name(n) => match n.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", found {other:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &Plateau, lr: f64, losses: &[f64]) -> Vec<f64> {
        let mut s = PlateauState::new(p, lr);
        losses
            .iter()
            .map(|&l| {
                s.step(p, l);
                s.lr
            })
            .collect()
    }

    #[test]
    fn the_rate_falls_by_the_factor_after_patience_bad_epochs() {
        let p = Plateau {
            patience: 2,
            ..Plateau::default()
        };
        // 1.0 is best; 1.0 again is not better (relative threshold); the third bad epoch
        // exceeds patience 2.
        let lrs = run(&p, 1e-3, &[1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]);
        assert_eq!(lrs, [1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4, 1e-5]);
    }

    #[test]
    fn a_gain_below_the_relative_threshold_is_not_an_improvement() {
        let p = Plateau {
            patience: 0,
            threshold: 0.1,
            ..Plateau::default()
        };
        // 0.95 is within 10% of 1.0: bad, reduce; 0.85 beats 1.0 * 0.9.
        assert_eq!(run(&p, 1.0, &[1.0, 0.95, 0.85]), [1.0, 0.1, 0.1]);
    }

    #[test]
    fn cooldown_min_lr_and_eps_hold_the_rate() {
        let p = Plateau {
            patience: 0,
            cooldown: 2,
            min_lr: 0.05,
            factor: 0.5,
            ..Plateau::default()
        };
        // Reduce, then two cooldown epochs count no bad epochs, then reduce to min_lr.
        assert_eq!(
            run(&p, 0.4, &[1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
            [0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05]
        );
    }

    #[test]
    fn the_state_survives_json() {
        let p = Plateau::default();
        let mut s = PlateauState::new(&p, 0.1);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"lr":0.1,"best":"inf","num_bad_epochs":0,"cooldown_counter":0}"#
        );
        let back: PlateauState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        s.step(&p, 0.25);
        let back: PlateauState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // An infinite best survives: nothing beats -inf in min mode.
        s.step(&p, f64::NEG_INFINITY);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""best":"-inf""#), "{json}");
        let back: PlateauState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}

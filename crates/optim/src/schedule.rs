//! Learning-rate schedules: functions of the optimizer's iteration count, as in Keras 3.

use std::f64::consts::PI;

/// A learning rate that depends on the step (the optimizer's iteration count before the
/// update). Implement it for a custom schedule.
pub trait LearningRateSchedule: Send + Sync {
    /// The learning rate at `step`.
    fn learning_rate(&self, step: u64) -> f64;
    /// The Keras name (`"exponential_decay"`).
    fn name(&self) -> &'static str;
    /// The parameters with Keras's names.
    fn config(&self) -> Vec<(&'static str, f64)>;
    /// A boxed copy (schedules are cloned with their optimizer).
    fn clone_box(&self) -> Box<dyn LearningRateSchedule>;
}

/// `initial_learning_rate * decay_rate ^ (step / decay_steps)` (the exponent floored when
/// `staircase`).
///
/// ```
/// use optim::schedule::{ExponentialDecay, LearningRateSchedule};
/// let s = ExponentialDecay::new(0.1, 2, 0.5);
/// assert_eq!(s.learning_rate(0), 0.1);
/// assert_eq!(s.learning_rate(2), 0.05);
/// ```
#[derive(Clone, Debug)]
pub struct ExponentialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f64,
    /// The steps over which the rate is multiplied by `decay_rate` once.
    pub decay_steps: u64,
    /// The factor per `decay_steps` steps.
    pub decay_rate: f64,
    /// Whether the rate drops in steps (`floor(step / decay_steps)`) rather than smoothly.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// A smooth exponential decay (`staircase` false).
    pub fn new(initial_learning_rate: f64, decay_steps: u64, decay_rate: f64) -> Self {
        ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        }
    }

    /// Decay in whole steps of `decay_steps`.
    pub fn staircase(mut self, staircase: bool) -> Self {
        self.staircase = staircase;
        self
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn learning_rate(&self, step: u64) -> f64 {
        let mut p = step as f64 / self.decay_steps.max(1) as f64;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
    }
    fn name(&self) -> &'static str {
        "exponential_decay"
    }
    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("initial_learning_rate", self.initial_learning_rate),
            ("decay_steps", self.decay_steps as f64),
            ("decay_rate", self.decay_rate),
            ("staircase", self.staircase as u8 as f64),
        ]
    }
    fn clone_box(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

/// `values[0]` while `step <= boundaries[0]`, `values[i]` while
/// `boundaries[i-1] < step <= boundaries[i]`, and the last value after the last boundary.
///
/// ```
/// use optim::schedule::{LearningRateSchedule, PiecewiseConstantDecay};
/// let s = PiecewiseConstantDecay::new(vec![10, 20], vec![1.0, 0.5, 0.1]).unwrap();
/// assert_eq!((s.learning_rate(10), s.learning_rate(11), s.learning_rate(21)), (1.0, 0.5, 0.1));
/// ```
#[derive(Clone, Debug)]
pub struct PiecewiseConstantDecay {
    boundaries: Vec<u64>,
    values: Vec<f64>,
}

impl PiecewiseConstantDecay {
    /// Needs one more value than boundaries, and increasing boundaries.
    pub fn new(boundaries: Vec<u64>, values: Vec<f64>) -> Result<Self, crate::OptimError> {
        if values.len() != boundaries.len() + 1 || boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(crate::OptimError::InvalidHyperparameter {
                optimizer: "piecewise_constant_decay",
                name: "boundaries",
                message: format!(
                    "must increase and be one fewer than the values, got {} boundaries {boundaries:?} and {} values",
                    boundaries.len(),
                    values.len()
                ),
            });
        }
        Ok(PiecewiseConstantDecay { boundaries, values })
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn learning_rate(&self, step: u64) -> f64 {
        let i = self.boundaries.iter().take_while(|&&b| step > b).count();
        self.values[i]
    }
    fn name(&self) -> &'static str {
        "piecewise_constant_decay"
    }
    fn config(&self) -> Vec<(&'static str, f64)> {
        let mut c: Vec<(&'static str, f64)> = self
            .boundaries
            .iter()
            .map(|&b| ("boundary", b as f64))
            .collect();
        c.extend(self.values.iter().map(|&v| ("value", v)));
        c
    }
    fn clone_box(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

/// Cosine decay from `initial_learning_rate` (or, after a linear warmup, from
/// `warmup_target`) to `alpha` times it over `decay_steps`, then constant:
/// `lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)`.
#[derive(Clone, Debug)]
pub struct CosineDecay {
    /// The rate at step 0 (or at the start of the warmup).
    pub initial_learning_rate: f64,
    /// The steps of the cosine decay, after any warmup.
    pub decay_steps: u64,
    /// The fraction of the rate left at the end of the decay.
    pub alpha: f64,
    /// The rate the linear warmup reaches, if there is one.
    pub warmup_target: Option<f64>,
    /// The steps of the linear warmup (0: none).
    pub warmup_steps: u64,
}

impl CosineDecay {
    /// Decay to zero (`alpha` 0) without warmup.
    pub fn new(initial_learning_rate: f64, decay_steps: u64) -> Self {
        CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
        }
    }

    /// The final rate as a fraction of the starting one.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Rise linearly from `initial_learning_rate` to `target` over `steps` first.
    pub fn warmup(mut self, target: f64, steps: u64) -> Self {
        self.warmup_target = Some(target);
        self.warmup_steps = steps;
        self
    }

    fn decay(&self, step: f64, from: f64) -> f64 {
        let fraction = step / self.decay_steps.max(1) as f64;
        let cosine = 0.5 * (1.0 + (PI * fraction).cos());
        from * ((1.0 - self.alpha) * cosine + self.alpha)
    }
}

impl LearningRateSchedule for CosineDecay {
    fn learning_rate(&self, step: u64) -> f64 {
        let decay_steps = self.decay_steps as f64;
        match self.warmup_target {
            None => self.decay((step as f64).min(decay_steps), self.initial_learning_rate),
            Some(target) => {
                let warmup = self.warmup_steps as f64;
                let s = (step as f64).min(decay_steps + warmup);
                if s < warmup {
                    (target - self.initial_learning_rate) * (s / warmup)
                        + self.initial_learning_rate
                } else {
                    self.decay(s - warmup, target)
                }
            }
        }
    }
    fn name(&self) -> &'static str {
        "cosine_decay"
    }
    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("initial_learning_rate", self.initial_learning_rate),
            ("decay_steps", self.decay_steps as f64),
            ("alpha", self.alpha),
            ("warmup_target", self.warmup_target.unwrap_or(f64::NAN)),
            ("warmup_steps", self.warmup_steps as f64),
        ]
    }
    fn clone_box(&self) -> Box<dyn LearningRateSchedule> {
        Box::new(self.clone())
    }
}

/// Every schedule name [`from_config`] accepts.
pub const SCHEDULE_NAMES: &[&str] = &[
    "exponential_decay",
    "piecewise_constant_decay",
    "cosine_decay",
];

/// A schedule rebuilt from its [`name`](LearningRateSchedule::name) and
/// [`config`](LearningRateSchedule::config), as a saved model stores it.
///
/// ```
/// use optim::schedule::{self, ExponentialDecay, LearningRateSchedule};
/// let s = ExponentialDecay::new(0.1, 4, 0.5).staircase(true);
/// let config: Vec<(String, f64)> = s.config().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
/// let back = schedule::from_config(s.name(), &config).unwrap();
/// assert_eq!(back.learning_rate(9), s.learning_rate(9));
/// ```
///
/// # Errors
/// An unknown name (the message lists the valid ones), or a config that lacks a parameter,
/// has one the schedule does not know, or holds a value out of range.
pub fn from_config(
    name: &str,
    config: &[(String, f64)],
) -> Result<Box<dyn LearningRateSchedule>, crate::OptimError> {
    let schedule: &'static str = SCHEDULE_NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| crate::OptimError::UnknownName {
            name: name.to_string(),
            valid: SCHEDULE_NAMES,
        })?;
    let bad = |key: &'static str, message: String| crate::OptimError::InvalidHyperparameter {
        optimizer: schedule,
        name: key,
        message,
    };
    let get = |key: &'static str| {
        config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| bad(key, "is missing".into()))
    };
    let steps = |key: &'static str| {
        let v = get(key)?;
        if v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 {
            Ok(v as u64)
        } else {
            Err(bad(
                key,
                format!("must be a whole number of steps, got {v}"),
            ))
        }
    };
    let known: &[&str] = match schedule {
        "exponential_decay" => &[
            "initial_learning_rate",
            "decay_steps",
            "decay_rate",
            "staircase",
        ],
        "piecewise_constant_decay" => &["boundary", "value"],
        _ => &[
            "initial_learning_rate",
            "decay_steps",
            "alpha",
            "warmup_target",
            "warmup_steps",
        ],
    };
    if let Some((k, _)) = config.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(crate::OptimError::UnknownHyperparameter {
            optimizer: schedule,
            name: k.clone(),
            valid: known.to_vec(),
        });
    }
    Ok(match schedule {
        "exponential_decay" => Box::new(
            ExponentialDecay::new(
                get("initial_learning_rate")?,
                steps("decay_steps")?,
                get("decay_rate")?,
            )
            .staircase(crate::error::flag(
                schedule,
                "staircase",
                get("staircase")?,
            )?),
        ),
        "piecewise_constant_decay" => {
            let all = |key: &'static str| {
                config
                    .iter()
                    .filter(move |(k, _)| k == key)
                    .map(|(_, v)| *v)
            };
            let boundaries = all("boundary")
                .map(|b| {
                    if b >= 0.0 && b.fract() == 0.0 {
                        Ok(b as u64)
                    } else {
                        Err(bad(
                            "boundary",
                            format!("must be a whole number of steps, got {b}"),
                        ))
                    }
                })
                .collect::<Result<Vec<u64>, _>>()?;
            Box::new(PiecewiseConstantDecay::new(
                boundaries,
                all("value").collect(),
            )?)
        }
        _ => {
            let mut c = CosineDecay::new(get("initial_learning_rate")?, steps("decay_steps")?)
                .alpha(get("alpha")?);
            let target = get("warmup_target")?;
            if !target.is_nan() {
                c = c.warmup(target, steps("warmup_steps")?);
            }
            Box::new(c)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &dyn LearningRateSchedule) -> Box<dyn LearningRateSchedule> {
        let config: Vec<(String, f64)> = s
            .config()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        from_config(s.name(), &config).unwrap()
    }

    #[test]
    fn every_schedule_round_trips_through_its_config() {
        let schedules: Vec<Box<dyn LearningRateSchedule>> = vec![
            Box::new(ExponentialDecay::new(0.1, 3, 0.7)),
            Box::new(ExponentialDecay::new(0.1, 3, 0.7).staircase(true)),
            Box::new(PiecewiseConstantDecay::new(vec![2, 5], vec![3.0, 2.0, 1.0]).unwrap()),
            Box::new(CosineDecay::new(1.0, 10).alpha(0.1)),
            Box::new(CosineDecay::new(0.0, 10).warmup(1.0, 4)),
        ];
        for s in &schedules {
            let back = round_trip(s.as_ref());
            assert_eq!(back.name(), s.name());
            for step in 0..20 {
                assert_eq!(
                    back.learning_rate(step),
                    s.learning_rate(step),
                    "{}",
                    s.name()
                );
            }
        }
    }

    #[test]
    fn bad_schedule_configs_are_errors_naming_the_problem() {
        let c = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let e = from_config("linear_decay", &[]).err().unwrap().to_string();
        assert!(
            e.contains("linear_decay") && e.contains("cosine_decay"),
            "{e}"
        );
        let e = from_config("exponential_decay", &c(&[("initial_learning_rate", 0.1)]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("decay_steps is missing"), "{e}");
        let e = from_config(
            "cosine_decay",
            &c(&[("initial_learning_rate", 0.1), ("decay_steps", 2.5)]),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = from_config("cosine_decay", &c(&[("speed", 1.0)]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'speed'"), "{e}");
    }

    #[test]
    fn exponential_decay_smooth_and_staircase() {
        let s = ExponentialDecay::new(0.1, 4, 0.5);
        assert!((s.learning_rate(2) - 0.1 * 0.5f64.sqrt()).abs() < 1e-15);
        let s = s.staircase(true);
        assert_eq!(s.learning_rate(3), 0.1);
        assert_eq!(s.learning_rate(4), 0.05);
    }

    #[test]
    fn piecewise_boundaries_are_inclusive_below() {
        let s = PiecewiseConstantDecay::new(vec![2, 5], vec![3.0, 2.0, 1.0]).unwrap();
        let lrs: Vec<f64> = (0..8).map(|i| s.learning_rate(i)).collect();
        assert_eq!(lrs, vec![3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0]);
        assert!(PiecewiseConstantDecay::new(vec![5, 2], vec![1.0, 2.0, 3.0]).is_err());
        assert!(PiecewiseConstantDecay::new(vec![5], vec![1.0]).is_err());
    }

    #[test]
    fn cosine_decay_with_and_without_warmup() {
        let s = CosineDecay::new(1.0, 10).alpha(0.1);
        assert_eq!(s.learning_rate(0), 1.0);
        assert!((s.learning_rate(5) - 0.55).abs() < 1e-12);
        assert!((s.learning_rate(10) - 0.1).abs() < 1e-12);
        assert!((s.learning_rate(50) - 0.1).abs() < 1e-12);
        let w = CosineDecay::new(0.0, 10).warmup(1.0, 4);
        assert_eq!(w.learning_rate(2), 0.5);
        assert_eq!(w.learning_rate(4), 1.0);
        assert!((w.learning_rate(9) - 0.5).abs() < 1e-12);
    }
}

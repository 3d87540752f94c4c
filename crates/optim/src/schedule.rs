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
    pub initial_learning_rate: f64,
    pub decay_steps: u64,
    pub decay_rate: f64,
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
    pub initial_learning_rate: f64,
    pub decay_steps: u64,
    pub alpha: f64,
    pub warmup_target: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! What every optimizer shares: the learning rate (constant or scheduled), clipping, weight
//! decay, the iteration count and the parameter shapes it was built for.

use std::borrow::Cow;

use tensor::{Element, Tensor};

use crate::error::{OptimError, check_range};
use crate::schedule::LearningRateSchedule;

/// The optional settings every optimizer shares, by their Keras names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommonOption {
    /// `weight_decay`: before each update, `w -= w * weight_decay * lr`.
    WeightDecay,
    /// `clipnorm`: each gradient tensor clipped to at most this L2 norm.
    Clipnorm,
    /// `clipvalue`: every gradient element clipped to `[-clipvalue, clipvalue]`.
    Clipvalue,
    /// `global_clipnorm`: all gradients scaled together to at most this joint L2 norm.
    GlobalClipnorm,
}

impl CommonOption {
    /// All of them, in the order configs list them.
    pub const ALL: [CommonOption; 4] = [
        CommonOption::WeightDecay,
        CommonOption::Clipnorm,
        CommonOption::Clipvalue,
        CommonOption::GlobalClipnorm,
    ];

    /// The Keras name (`"clipnorm"`).
    pub fn name(self) -> &'static str {
        match self {
            CommonOption::WeightDecay => "weight_decay",
            CommonOption::Clipnorm => "clipnorm",
            CommonOption::Clipvalue => "clipvalue",
            CommonOption::GlobalClipnorm => "global_clipnorm",
        }
    }

    /// The option of a Keras name, if it is one.
    pub fn from_name(name: &str) -> Option<CommonOption> {
        CommonOption::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// A constant learning rate or a schedule of the iteration count.
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// A rate computed from the iteration count before each step.
    Schedule(Box<dyn LearningRateSchedule>),
}

impl Clone for LearningRate {
    fn clone(&self) -> Self {
        match self {
            LearningRate::Constant(v) => LearningRate::Constant(*v),
            LearningRate::Schedule(s) => LearningRate::Schedule(s.clone_box()),
        }
    }
}

impl std::fmt::Debug for LearningRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LearningRate::Constant(v) => write!(f, "{v}"),
            LearningRate::Schedule(s) => write!(f, "{}{:?}", s.name(), s.config()),
        }
    }
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v)
    }
}

impl From<f32> for LearningRate {
    fn from(v: f32) -> Self {
        LearningRate::Constant(v as f64)
    }
}

impl<S: LearningRateSchedule + 'static> From<S> for LearningRate {
    fn from(s: S) -> Self {
        LearningRate::Schedule(Box::new(s))
    }
}

/// The options and bookkeeping shared by all optimizers.
///
/// The optional settings (weight decay and the three kinds of clipping) are read here and
/// set through the optimizer, by its builders (`SGD::new(0.1).clipnorm(0.5)`, or
/// `.clipnorm(config.clipnorm)` for an `Option`) or by [`Optimizer::set_option`] on an
/// optimizer already made, which checks the value and the optimizer's own rules (AdamW's
/// decay cannot be switched off).
///
/// [`Optimizer::set_option`]: crate::Optimizer::set_option
#[derive(Clone, Debug)]
pub struct Common {
    /// The learning rate, constant or scheduled.
    pub learning_rate: LearningRate,
    /// Decoupled weight decay (`None`: off).
    weight_decay: Option<f64>,
    /// Per-tensor L2 norm limit of gradients.
    clipnorm: Option<f64>,
    /// Element-wise limit of gradients.
    clipvalue: Option<f64>,
    /// Joint L2 norm limit of all gradients.
    global_clipnorm: Option<f64>,
    /// Whether the rule needs weight decay (AdamW): then it cannot be set to `None`.
    decay_required: bool,
    iterations: u64,
    shapes: Option<Vec<Vec<usize>>>,
    /// The parameters' names, when they were given ([`Optimizer::step_named`]).
    ///
    /// [`Optimizer::step_named`]: crate::Optimizer::step_named
    names: Option<Vec<String>>,
}

impl Common {
    /// Options with this learning rate and nothing else set.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Common {
            learning_rate: learning_rate.into(),
            weight_decay: None,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            decay_required: false,
            iterations: 0,
            shapes: None,
            names: None,
        }
    }

    /// The value of an optional setting (`None`: off).
    pub fn option(&self, option: CommonOption) -> Option<f64> {
        match option {
            CommonOption::WeightDecay => self.weight_decay,
            CommonOption::Clipnorm => self.clipnorm,
            CommonOption::Clipvalue => self.clipvalue,
            CommonOption::GlobalClipnorm => self.global_clipnorm,
        }
    }

    /// Decoupled weight decay (`None`: off).
    pub fn weight_decay(&self) -> Option<f64> {
        self.weight_decay
    }

    /// Per-tensor L2 norm limit of gradients (`None`: off).
    pub fn clipnorm(&self) -> Option<f64> {
        self.clipnorm
    }

    /// Element-wise limit of gradients (`None`: off).
    pub fn clipvalue(&self) -> Option<f64> {
        self.clipvalue
    }

    /// Joint L2 norm limit of all gradients (`None`: off).
    pub fn global_clipnorm(&self) -> Option<f64> {
        self.global_clipnorm
    }

    /// Whether the optimizer's rule needs weight decay (AdamW), so that it cannot be off.
    pub fn decay_required(&self) -> bool {
        self.decay_required
    }

    /// Marks weight decay as part of the rule (AdamW's): it must be set, and setting it to
    /// `None` is an error.
    pub(crate) fn require_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self.decay_required = true;
        self
    }

    /// Sets an optional setting without checks (the builders'; the next step checks it).
    pub(crate) fn put(&mut self, option: CommonOption, value: Option<f64>) {
        *self.slot(option) = value;
    }

    fn slot(&mut self, option: CommonOption) -> &mut Option<f64> {
        match option {
            CommonOption::WeightDecay => &mut self.weight_decay,
            CommonOption::Clipnorm => &mut self.clipnorm,
            CommonOption::Clipvalue => &mut self.clipvalue,
            CommonOption::GlobalClipnorm => &mut self.global_clipnorm,
        }
    }

    /// Sets optional settings together, checked once as the next step would check them:
    /// on an error nothing changes. See [`Optimizer::set_options`](crate::Optimizer::set_options).
    pub(crate) fn set(
        &mut self,
        optimizer: &'static str,
        options: &[(CommonOption, Option<f64>)],
    ) -> Result<(), OptimError> {
        let mut changed = self.clone();
        for &(option, value) in options {
            *changed.slot(option) = value;
        }
        changed.validate(optimizer)?;
        *self = changed;
        Ok(())
    }

    /// Steps taken so far.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Sets the step count (when resuming from a checkpoint).
    pub fn set_iterations(&mut self, iterations: u64) {
        self.iterations = iterations;
    }

    pub(crate) fn increment(&mut self) {
        self.iterations += 1;
    }

    /// Whether the optimizer has state for a list of parameters.
    pub fn is_built(&self) -> bool {
        self.shapes.is_some()
    }

    /// The parameter shapes the optimizer was built for.
    pub fn shapes(&self) -> Option<&[Vec<usize>]> {
        self.shapes.as_deref()
    }

    /// The parameters' names the optimizer was built for, if it was given names.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    pub(crate) fn set_built(&mut self, shapes: Vec<Vec<usize>>, names: Option<Vec<String>>) {
        self.shapes = Some(shapes);
        self.names = names;
    }

    /// Forgets the parameter shapes (the next step builds fresh state).
    pub(crate) fn unbuild(&mut self) {
        self.shapes = None;
        self.names = None;
    }

    /// The state slot of each given parameter: its position in the built list, found by
    /// name when the optimizer was built with names (so that a caller passing the same
    /// parameters in another order still updates each with its own state).
    pub(crate) fn slots(
        &self,
        optimizer: &'static str,
        names: Option<&[&str]>,
        count: usize,
    ) -> Result<Vec<usize>, OptimError> {
        let mismatch = |message: String| OptimError::Mismatch { optimizer, message };
        match (names, &self.names) {
            (Some(given), Some(built)) => {
                if given.len() != built.len() {
                    return Err(mismatch(format!(
                        "built for the {} parameters {built:?}, got {} parameters {given:?}",
                        built.len(),
                        given.len()
                    )));
                }
                given
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        if built[i] == *name {
                            return Ok(i);
                        }
                        built.iter().position(|b| b == name).ok_or_else(|| {
                            mismatch(format!(
                                "has no state for a parameter named '{name}'; it was built for {built:?}"
                            ))
                        })
                    })
                    .collect()
            }
            (Some(_), None) if self.is_built() => Err(mismatch(
                "was built for unnamed parameters (step); call step_named from the start, or step throughout".into(),
            )),
            (None, Some(built)) => Err(mismatch(format!(
                "was built for the named parameters {built:?} (step_named); pass their names at every step"
            ))),
            _ => Ok((0..count).collect()),
        }
    }

    /// The learning rate at the current iteration.
    pub fn current_learning_rate(&self) -> f64 {
        match &self.learning_rate {
            LearningRate::Constant(v) => *v,
            LearningRate::Schedule(s) => s.learning_rate(self.iterations),
        }
    }

    pub(crate) fn set_learning_rate(&mut self, lr: f64) -> Result<(), OptimError> {
        if let LearningRate::Schedule(s) = &self.learning_rate {
            return Err(OptimError::InvalidHyperparameter {
                optimizer: "optimizer",
                name: "learning_rate",
                message: format!(
                    "is set by the schedule '{}' and cannot be changed; create the optimizer with a constant rate instead",
                    s.name()
                ),
            });
        }
        check_range("optimizer", "learning_rate", lr, 0.0, f64::INFINITY)?;
        self.learning_rate = LearningRate::Constant(lr);
        Ok(())
    }

    /// Checks the shared options.
    pub fn validate(&self, optimizer: &'static str) -> Result<(), OptimError> {
        if let LearningRate::Constant(lr) = self.learning_rate {
            check_range(optimizer, "learning_rate", lr, 0.0, f64::INFINITY)?;
        }
        if let Some(wd) = self.weight_decay {
            check_range(optimizer, "weight_decay", wd, 0.0, f64::INFINITY)?;
        } else if self.decay_required {
            return Err(OptimError::InvalidHyperparameter {
                optimizer,
                name: "weight_decay",
                message: "is part of this optimizer's rule and cannot be None (Keras raises \
                          too); for no decay use Adam, or set a decay of 0"
                    .into(),
            });
        }
        let clips = [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ];
        for (name, v) in clips {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(OptimError::InvalidHyperparameter {
                    optimizer,
                    name,
                    message: format!("must be a positive number, got {v}"),
                });
            }
        }
        let set: Vec<&str> = clips
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        if set.len() > 1 {
            return Err(OptimError::InvalidHyperparameter {
                optimizer,
                name: "clipping",
                message: format!(
                    "allows one of clipnorm, clipvalue, global_clipnorm; got {}",
                    set.join(" and ")
                ),
            });
        }
        Ok(())
    }

    /// Checks that parameters and gradients pair up, and match the built state.
    pub(crate) fn check<T: Element>(
        &self,
        optimizer: &'static str,
        params: &[&mut Tensor<T>],
        grads: &[&Tensor<T>],
        slots: &[usize],
    ) -> Result<(), OptimError> {
        let mismatch = |message: String| OptimError::Mismatch { optimizer, message };
        if params.len() != grads.len() {
            return Err(mismatch(format!(
                "got {} parameters but {} gradients",
                params.len(),
                grads.len()
            )));
        }
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.shape() != g.shape() {
                return Err(mismatch(format!(
                    "parameter {i} has shape {:?} but its gradient has shape {:?}",
                    p.shape(),
                    g.shape()
                )));
            }
        }
        if let Some(shapes) = &self.shapes {
            if shapes.len() != params.len() {
                return Err(mismatch(format!(
                    "built for {} parameters, got {}; pass the same parameters in the same order at every step",
                    shapes.len(),
                    params.len()
                )));
            }
            for (i, (&slot, p)) in slots.iter().zip(params).enumerate() {
                let s = &shapes[slot];
                if s.as_slice() != p.shape() {
                    return Err(mismatch(format!(
                        "parameter {i} had shape {s:?} at earlier steps, now {:?}; pass the same parameters in the same order at every step",
                        p.shape()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The gradients after clipping (borrowed unchanged when no clipping is set).
    pub(crate) fn clip<'g, T: Element>(&self, grads: &[&'g Tensor<T>]) -> Vec<Cow<'g, Tensor<T>>> {
        if let Some(c) = self.clipnorm {
            // g * c / max(||g||, c), per tensor.
            grads
                .iter()
                .map(|g| {
                    let norm = l2_norm(g);
                    let c = T::from_f64_lossy(c);
                    let denom = if norm > c { norm } else { c };
                    Cow::Owned(g.map(|v| v * c / denom))
                })
                .collect()
        } else if let Some(c) = self.global_clipnorm {
            // All gradients scaled by c * min(1 / ||all||, 1 / c).
            let total: T = grads
                .iter()
                .map(|g| g.as_array().iter().map(|&v| v * v).sum::<T>())
                .sum();
            let norm = total.sqrt();
            let c = T::from_f64_lossy(c);
            let scale = c * (T::one() / norm).min(T::one() / c);
            grads.iter().map(|g| Cow::Owned(*g * scale)).collect()
        } else if let Some(c) = self.clipvalue {
            let c = T::from_f64_lossy(c);
            grads.iter().map(|g| Cow::Owned(g.clamp(-c, c))).collect()
        } else {
            grads.iter().map(|g| Cow::Borrowed(*g)).collect()
        }
    }
}

fn l2_norm<T: Element>(g: &Tensor<T>) -> T {
    g.as_array().iter().map(|&v| v * v).sum::<T>().sqrt()
}

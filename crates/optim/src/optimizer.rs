//! The [`Optimizer`] trait: the update rule an optimizer writes, and the step (checks,
//! clipping, weight decay, bookkeeping) every optimizer shares around it.

use tensor::{Element, Tensor};

use crate::common::{Common, CommonOption};
use crate::error::OptimError;
/// An optimizer: turns gradients into parameter updates, keeping per-parameter state
/// (momentum, running averages) between steps.
///
/// Parameters are identified by position: pass them in the same order at every step, as
/// Keras does with its variable list. An implementation writes [`update`](Optimizer::update)
/// (the rule for one parameter) and [`build`](Optimizer::build); [`step`](Optimizer::step)
/// does the clipping, weight decay and bookkeeping around it.
pub trait Optimizer<T: Element>: Send {
    /// The Keras name (`"rmsprop"`).
    fn name(&self) -> &'static str;

    /// The options every optimizer shares (learning rate, clipping, weight decay, iterations).
    fn common(&self) -> &Common;

    /// Mutable access to the shared options.
    fn common_mut(&mut self) -> &mut Common;

    /// The rule's own hyperparameters with Keras's names (`("rho", 0.9)`), for configs and
    /// summaries.
    fn hyperparameters(&self) -> Vec<(&'static str, f64)>;

    /// Sets one of [`hyperparameters`](Optimizer::hyperparameters) by its Keras name (booleans
    /// as 0 or 1), as a saved config is read back. [`validate`](Optimizer::validate) checks
    /// the value's range at the next step.
    ///
    /// # Errors
    /// For a name the optimizer does not have (the message lists the valid ones), or a
    /// boolean that is neither 0 nor 1.
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError>;

    /// Checks the hyperparameters; an error names the bad one and the valid range.
    fn validate(&self) -> Result<(), OptimError>;

    /// Creates zeroed state for parameters of these shapes (called by the first `step`).
    fn build(&mut self, shapes: &[Vec<usize>]);

    /// The per-parameter state tensors, in a fixed order (for checkpoints).
    fn state(&self) -> Vec<&Tensor<T>>;

    /// Mutable access to the state tensors, in the order of [`state`](Optimizer::state).
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>>;

    /// Applies the update rule to parameter `index`, in place, in one pass over its elements.
    fn update(
        &mut self,
        index: usize,
        param: &mut [T],
        grad: &[T],
        learning_rate: T,
        iteration: u64,
    );

    /// The names of the state tensors kept per parameter, in the order
    /// [`state`](Optimizer::state) lists them (Keras's: `["momentum", "velocity"]` for
    /// Adam): `state()` holds slot 0 of every parameter, then slot 1, and so on.
    fn state_slots(&self) -> Vec<&'static str>;

    /// One optimization step: `params[i] ` is updated from `grads[i]`. Parameters are
    /// identified by position: pass the same ones in the same order at every step (or name
    /// them with [`step_named`](Optimizer::step_named)).
    ///
    /// # Errors
    /// If the counts differ, a gradient's shape differs from its parameter's, the parameters
    /// differ from those of earlier steps, or a hyperparameter is invalid. Nothing is changed
    /// then.
    fn step(
        &mut self,
        params: &mut [&mut Tensor<T>],
        grads: &[&Tensor<T>],
    ) -> Result<(), OptimError> {
        step_impl(self, None, params, grads)
    }

    /// One optimization step on named parameters: each keeps its state under its name, so
    /// the order may change between steps, and [`named_state`](Optimizer::named_state)
    /// gives the state by name for checkpoints. What `Sequential` calls, with
    /// `{layer}.{weight}` names.
    ///
    /// ```
    /// use optim::{Adam, Optimizer};
    /// use tensor::Tensor;
    /// let (mut a, mut b) = (Tensor::from_vec(vec![1.0f32], &[1]).unwrap(), Tensor::from_vec(vec![2.0f32, 3.0], &[2]).unwrap());
    /// let (ga, gb) = (Tensor::from_vec(vec![0.5f32], &[1]).unwrap(), Tensor::from_vec(vec![1.0f32, -1.0], &[2]).unwrap());
    /// let mut adam = Adam::new(0.1);
    /// adam.step_named(&["a", "b"], &mut [&mut a, &mut b], &[&ga, &gb]).unwrap();
    /// adam.step_named(&["b", "a"], &mut [&mut b, &mut a], &[&gb, &ga]).unwrap(); // by name
    /// let names: Vec<String> = adam.named_state().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["a/momentum", "b/momentum", "a/velocity", "b/velocity"]);
    /// assert!(adam.step_named(&["a", "c"], &mut [&mut a, &mut b], &[&ga, &gb]).is_err());
    /// ```
    ///
    /// # Errors
    /// As [`step`](Optimizer::step); also a name the optimizer has no state for.
    fn step_named(
        &mut self,
        names: &[&str],
        params: &mut [&mut Tensor<T>],
        grads: &[&Tensor<T>],
    ) -> Result<(), OptimError> {
        if names.len() != params.len() {
            return Err(OptimError::Mismatch {
                optimizer: self.name(),
                message: format!("got {} names for {} parameters", names.len(), params.len()),
            });
        }
        step_impl(self, Some(names), params, grads)
    }

    /// One step on weights kept as a map by name (the one list a hand-written loop keeps),
    /// with gradients in a map by the same names ([`step_named`](Optimizer::step_named)
    /// underneath, so each weight keeps its own state by name).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use optim::{Optimizer, SGD};
    /// use tensor::Tensor;
    /// let mut weights = BTreeMap::from([("w".to_string(), Tensor::new([1.0f32, 2.0]).unwrap())]);
    /// let grads = BTreeMap::from([("w".to_string(), Tensor::new([0.5f32, -0.5]).unwrap())]);
    /// SGD::new(0.1).step_map(&mut weights, &grads).unwrap();
    /// assert_eq!(weights["w"].to_vec(), vec![0.95, 2.05]);
    /// let wrong = BTreeMap::from([("v".to_string(), Tensor::new([0.5f32, -0.5]).unwrap())]);
    /// assert!(SGD::new(0.1).step_map(&mut weights, &wrong).is_err());
    /// ```
    ///
    /// # Errors
    /// If the gradients' names are not the weights' (the message lists both), and as
    /// [`step_named`](Optimizer::step_named). Nothing is changed then.
    fn step_map(
        &mut self,
        weights: &mut std::collections::BTreeMap<String, Tensor<T>>,
        grads: &std::collections::BTreeMap<String, Tensor<T>>,
    ) -> Result<(), OptimError> {
        if !weights.keys().eq(grads.keys()) {
            return Err(OptimError::Mismatch {
                optimizer: self.name(),
                message: format!(
                    "the gradients are for {:?}, the weights are {:?}",
                    grads.keys().collect::<Vec<_>>(),
                    weights.keys().collect::<Vec<_>>()
                ),
            });
        }
        let names: Vec<String> = weights.keys().cloned().collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut params: Vec<&mut Tensor<T>> = weights.values_mut().collect();
        let grads: Vec<&Tensor<T>> = grads.values().collect();
        step_impl(self, Some(&names), &mut params, &grads)
    }

    /// The state tensors named `{parameter}/{slot}` (`dense.kernel/momentum`), for
    /// checkpoints; parameters stepped without names are called by their position (`0`).
    fn named_state(&self) -> Vec<(String, &Tensor<T>)> {
        let slots = self.state_slots();
        let state = self.state();
        let n = self.common().shapes().map_or(0, <[_]>::len);
        let names: Vec<String> = match self.common().names() {
            Some(names) => names.to_vec(),
            None => (0..n).map(|i| i.to_string()).collect(),
        };
        state
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let slot = slots.get(i / n.max(1)).copied().unwrap_or("state");
                (format!("{}/{slot}", names[i % n.max(1)]), t)
            })
            .collect()
    }

    /// Puts back state saved by [`named_state`](Optimizer::named_state) for the named
    /// parameters of `shapes`, with the iteration count: `state` is asked for each
    /// `{parameter}/{slot}` tensor by name.
    ///
    /// # Errors
    /// If a tensor is missing or of the wrong shape; the optimizer is then left unbuilt.
    fn restore_named(
        &mut self,
        params: &[(String, Vec<usize>)],
        state: &mut dyn FnMut(&str) -> Option<Tensor<T>>,
        iterations: u64,
    ) -> Result<(), OptimError> {
        let shapes: Vec<Vec<usize>> = params.iter().map(|(_, s)| s.clone()).collect();
        self.build(&shapes);
        let slots = self.state_slots();
        let n = params.len();
        let mut values = Vec::with_capacity(slots.len() * n);
        for slot in &slots {
            for (name, _) in params {
                let key = format!("{name}/{slot}");
                match state(&key) {
                    Some(t) => values.push(t),
                    None => {
                        self.build(&[]);
                        self.common_mut().unbuild();
                        return Err(OptimError::Mismatch {
                            optimizer: self.name(),
                            message: format!("the saved state has no tensor '{key}'"),
                        });
                    }
                }
            }
        }
        let names = params.iter().map(|(n, _)| n.clone()).collect();
        self.restore(&shapes, values, iterations)?;
        self.common_mut().set_built(shapes, Some(names));
        Ok(())
    }

    /// The number of steps taken.
    fn iterations(&self) -> u64 {
        self.common().iterations()
    }

    /// Puts back what a checkpoint saved: the state for parameters of `shapes` (in the order
    /// of [`state`](Optimizer::state)) and the iteration count, so that the next step is the
    /// one an uninterrupted run would take.
    ///
    /// ```
    /// use optim::{Optimizer, RMSprop};
    /// use tensor::Tensor;
    /// let mut w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    /// let g = Tensor::from_vec(vec![0.5f32, -0.5], &[2]).unwrap();
    /// let mut a = RMSprop::new(0.01);
    /// a.step(&mut [&mut w], &[&g]).unwrap();
    /// // A fresh optimizer given a's state takes the same next step.
    /// let mut b = RMSprop::new(0.01);
    /// let state: Vec<Tensor<f32>> = a.state().into_iter().cloned().collect();
    /// b.restore(&[vec![2]], state, a.iterations()).unwrap();
    /// let (mut wa, mut wb) = (w.clone(), w.clone());
    /// a.step(&mut [&mut wa], &[&g]).unwrap();
    /// b.step(&mut [&mut wb], &[&g]).unwrap();
    /// assert_eq!(wa, wb);
    /// ```
    ///
    /// # Errors
    /// If the number or shapes of the state tensors are not what this optimizer keeps for
    /// those parameters; the optimizer is then left unbuilt (its next step starts fresh).
    fn restore(
        &mut self,
        shapes: &[Vec<usize>],
        state: Vec<Tensor<T>>,
        iterations: u64,
    ) -> Result<(), OptimError> {
        self.build(shapes);
        let expected: Vec<Vec<usize>> = self.state().iter().map(|t| t.shape().to_vec()).collect();
        let given: Vec<Vec<usize>> = state.iter().map(|t| t.shape().to_vec()).collect();
        if expected != given {
            self.build(&[]);
            self.common_mut().unbuild();
            return Err(OptimError::Mismatch {
                optimizer: self.name(),
                message: format!(
                    "the saved state does not fit: expected {} tensors of shapes {expected:?}, got {} of shapes {given:?}",
                    expected.len(),
                    given.len()
                ),
            });
        }
        for (slot, value) in self.state_mut().into_iter().zip(state) {
            *slot = value;
        }
        self.common_mut().set_built(shapes.to_vec(), None);
        self.common_mut().set_iterations(iterations);
        Ok(())
    }

    /// Sets one of the optional settings every optimizer shares (`None`: off), checked as
    /// a step would check it; on an error nothing changes. The one route for code that
    /// holds any optimizer (a `Box<dyn Optimizer>`) and a setting that may be absent:
    ///
    /// ```
    /// use optim::{CommonOption, Optimizer};
    /// let from_config: Option<f64> = None;
    /// for name in optim::OPTIMIZER_NAMES {
    ///     let mut opt = optim::by_name::<f32>(name).unwrap();
    ///     opt.set_option(CommonOption::Clipnorm, Some(1.0)).unwrap();
    ///     // AdamW's decay is part of its rule: it cannot be switched off by accident.
    ///     let cleared = opt.set_option(CommonOption::WeightDecay, from_config);
    ///     assert_eq!(cleared.is_err(), *name == "adamw");
    /// }
    /// ```
    ///
    /// # Errors
    /// A value out of range (a decay below 0, a clip limit that is not positive), a second
    /// kind of clipping, or `None` for a decay the rule needs (AdamW's).
    fn set_option(&mut self, option: CommonOption, value: Option<f64>) -> Result<(), OptimError> {
        self.set_options(&[(option, value)])
    }

    /// Sets several optional settings at once and checks them together, so that moving
    /// from one kind of clipping to another (which one at a time would pass through both)
    /// works; on an error nothing changes. What loading a saved config does.
    ///
    /// ```
    /// use optim::{CommonOption::*, Optimizer, SGD};
    /// let mut opt = SGD::<f32>::new(0.1).clipnorm(1.0);
    /// // One at a time, the first call would ask for two kinds of clipping at once.
    /// assert!(opt.set_option(GlobalClipnorm, Some(2.0)).is_err());
    /// opt.set_options(&[(Clipnorm, None), (GlobalClipnorm, Some(2.0))]).unwrap();
    /// assert_eq!((opt.common().clipnorm(), opt.common().global_clipnorm()), (None, Some(2.0)));
    /// // A bad value among them changes none of them.
    /// assert!(opt.set_options(&[(GlobalClipnorm, Some(3.0)), (WeightDecay, Some(-1.0))]).is_err());
    /// assert_eq!(opt.common().global_clipnorm(), Some(2.0));
    /// ```
    ///
    /// # Errors
    /// As [`set_option`](Optimizer::set_option), for the settings taken together.
    fn set_options(&mut self, options: &[(CommonOption, Option<f64>)]) -> Result<(), OptimError> {
        let name = self.name();
        self.common_mut().set(name, options)
    }

    /// The learning rate the next step will use.
    fn learning_rate(&self) -> f64 {
        self.common().current_learning_rate()
    }

    /// Sets a constant learning rate (what a per-epoch scheduler callback does).
    ///
    /// # Errors
    /// If the optimizer was created with a schedule, or the rate is negative or not finite.
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<(), OptimError> {
        self.common_mut().set_learning_rate(learning_rate)
    }
}

/// [`Optimizer::step`] and [`Optimizer::step_named`]: checks, builds the state on the first
/// step, clips, decays, and applies the rule to each parameter with its own state slot.
fn step_impl<T: Element, O: Optimizer<T> + ?Sized>(
    opt: &mut O,
    names: Option<&[&str]>,
    params: &mut [&mut Tensor<T>],
    grads: &[&Tensor<T>],
) -> Result<(), OptimError> {
    opt.validate()?;
    let slots = opt.common().slots(opt.name(), names, params.len())?;
    opt.common().check(opt.name(), params, grads, &slots)?;
    if !opt.common().is_built() {
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
        opt.build(&shapes);
        let names = names.map(|n| n.iter().map(|s| s.to_string()).collect());
        opt.common_mut().set_built(shapes, names);
    }
    let iteration = opt.common().iterations();
    let lr = opt.common().current_learning_rate();
    let lr_t = T::from_f64_lossy(lr);
    let grads = opt.common().clip(grads);
    if let Some(wd) = opt.common().weight_decay() {
        let wd = T::from_f64_lossy(wd);
        for p in params.iter_mut() {
            p.map_inplace(|w| w - w * wd * lr_t);
        }
    }
    for ((p, g), &slot) in params.iter_mut().zip(grads.iter()).zip(&slots) {
        let g = g.to_contiguous();
        let g = g.as_slice().expect("contiguous");
        opt.update(slot, p.as_slice_mut(), g, lr_t, iteration);
    }
    opt.common_mut().increment();
    Ok(())
}

/// Builder methods for the options every optimizer shares, generated for each optimizer.
/// Each takes a value or an `Option` (`None`: off), so that a setting read from a config
/// needs no branch; the first step checks them.
macro_rules! common_builders {
    ($ty:ident) => {
        impl<T: tensor::Element> $ty<T> {
            /// Decoupled weight decay: before each update, `w -= w * weight_decay * lr`.
            pub fn weight_decay(mut self, weight_decay: impl Into<Option<f64>>) -> Self {
                self.common.put(
                    crate::common::CommonOption::WeightDecay,
                    weight_decay.into(),
                );
                self
            }
            crate::optimizer::clip_builders!();
        }
    };
}
pub(crate) use common_builders;

/// The three clipping builders (see [`common_builders`]); AdamW, whose weight decay is
/// part of its rule, has these and a `weight_decay` of its own.
macro_rules! clip_builders {
    () => {
        /// Clips each gradient tensor to at most this L2 norm (`None`: off).
        pub fn clipnorm(mut self, clipnorm: impl Into<Option<f64>>) -> Self {
            self.common_mut()
                .put(crate::common::CommonOption::Clipnorm, clipnorm.into());
            self
        }

        /// Clips every gradient element to `[-clipvalue, clipvalue]` (`None`: off).
        pub fn clipvalue(mut self, clipvalue: impl Into<Option<f64>>) -> Self {
            self.common_mut()
                .put(crate::common::CommonOption::Clipvalue, clipvalue.into());
            self
        }

        /// Scales all gradients together so that their joint L2 norm is at most this
        /// (`None`: off).
        pub fn global_clipnorm(mut self, global_clipnorm: impl Into<Option<f64>>) -> Self {
            self.common_mut().put(
                crate::common::CommonOption::GlobalClipnorm,
                global_clipnorm.into(),
            );
            self
        }
    };
}
pub(crate) use clip_builders;

//! Adam and AdamW.

use tensor::{Element, Tensor};

use crate::common::{Common, LearningRate};
use crate::error::{OptimError, check_range, flag, unknown};
use crate::kernel::for_each_chunk;
use crate::optimizer::{Optimizer, common_builders};

/// Keras 3's `Adam`.
///
/// Defaults: `learning_rate` 0.001, `beta_1` 0.9, `beta_2` 0.999, `epsilon` 1e-7, `amsgrad`
/// false. At step `t` (counting from 1), per element:
/// - `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`;
/// - `m += (g - m) * (1 - beta_1)`, `v += (g^2 - v) * (1 - beta_2)`;
/// - amsgrad: `v_max = max(v_max, v)`, used in place of `v` below;
/// - `w -= alpha * m / (sqrt(v) + epsilon)` (epsilon on the uncorrected `v`, "epsilon hat").
#[derive(Clone, Debug)]
pub struct Adam<T: Element = f32> {
    /// Decay rate of the first-moment (mean) estimate (Keras: 0.9).
    pub beta_1: f64,
    /// Decay rate of the second-moment (uncentered variance) estimate (Keras: 0.999).
    pub beta_2: f64,
    /// Added to the root of the second moment for stability (Keras: 1e-7).
    pub epsilon: f64,
    /// Whether to use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    common: Common,
    momentums: Vec<Tensor<T>>,
    velocities: Vec<Tensor<T>>,
    velocity_hats: Vec<Tensor<T>>,
}

impl<T: Element> Default for Adam<T> {
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl<T: Element> Adam<T> {
    /// Adam with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            common: Common::new(learning_rate),
            momentums: Vec::new(),
            velocities: Vec::new(),
            velocity_hats: Vec::new(),
        }
    }

    /// Decay of the first-moment estimate, in `[0, 1)`.
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Decay of the second-moment estimate, in `[0, 1)`.
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Small constant added to `sqrt(v)`.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Use the running maximum of `v` (AMSGrad).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    fn check(&self, name: &'static str) -> Result<(), OptimError> {
        self.common.validate(name)?;
        check_range(name, "beta_1", self.beta_1, 0.0, 1.0)?;
        check_range(name, "beta_2", self.beta_2, 0.0, 1.0)?;
        check_range(name, "epsilon", self.epsilon, 0.0, f64::INFINITY)
    }

    fn adam_update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, iteration: u64) {
        let t = T::from_u64(iteration + 1).expect("step count fits the float type");
        let b1 = T::from_f64_lossy(self.beta_1);
        let b2 = T::from_f64_lossy(self.beta_2);
        let alpha = lr * (T::one() - b2.powf(t)).sqrt() / (T::one() - b1.powf(t));
        let one_minus_b1 = T::from_f64_lossy(1.0 - self.beta_1);
        let one_minus_b2 = T::from_f64_lossy(1.0 - self.beta_2);
        let eps = T::from_f64_lossy(self.epsilon);
        let m = self.momentums[index].as_slice_mut();
        let v = self.velocities[index].as_slice_mut();
        match self.velocity_hats.get_mut(index) {
            None => for_each_chunk(w, g, [m, v], |w, g, [m, v]| {
                for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m += (g - *m) * one_minus_b1;
                    *v += (g * g - *v) * one_minus_b2;
                    *w -= *m * alpha / (v.sqrt() + eps);
                }
            }),
            Some(v_hat) => {
                for_each_chunk(w, g, [m, v, v_hat.as_slice_mut()], |w, g, [m, v, vh]| {
                    for i in 0..w.len() {
                        m[i] += (g[i] - m[i]) * one_minus_b1;
                        v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
                        vh[i] = vh[i].max(v[i]);
                        w[i] -= m[i] * alpha / (vh[i].sqrt() + eps);
                    }
                })
            }
        }
    }

    fn adam_build(&mut self, shapes: &[Vec<usize>]) {
        let zeros = || shapes.iter().map(|s| Tensor::zeros(s)).collect::<Vec<_>>();
        self.momentums = zeros();
        self.velocities = zeros();
        self.velocity_hats = if self.amsgrad { zeros() } else { Vec::new() };
    }

    fn set_adam_hyperparameter(
        &mut self,
        optimizer: &'static str,
        name: &str,
        value: f64,
    ) -> Result<(), OptimError> {
        match name {
            "beta_1" => self.beta_1 = value,
            "beta_2" => self.beta_2 = value,
            "epsilon" => self.epsilon = value,
            "amsgrad" => self.amsgrad = flag(optimizer, "amsgrad", value)?,
            _ => return Err(unknown(optimizer, name, &self.adam_hyperparameters())),
        }
        Ok(())
    }

    fn adam_hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("beta_1", self.beta_1),
            ("beta_2", self.beta_2),
            ("epsilon", self.epsilon),
            ("amsgrad", self.amsgrad as u8 as f64),
        ]
    }
}

common_builders!(Adam);

impl<T: Element> Optimizer<T> for Adam<T> {
    fn name(&self) -> &'static str {
        "adam"
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        self.adam_hyperparameters()
    }
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        self.set_adam_hyperparameter("adam", name, value)
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.check("adam")
    }
    fn build(&mut self, shapes: &[Vec<usize>]) {
        self.adam_build(shapes)
    }
    fn state_slots(&self) -> Vec<&'static str> {
        if self.amsgrad {
            vec!["momentum", "velocity", "velocity_hat"]
        } else {
            vec!["momentum", "velocity"]
        }
    }
    fn state(&self) -> Vec<&Tensor<T>> {
        self.momentums
            .iter()
            .chain(&self.velocities)
            .chain(&self.velocity_hats)
            .collect()
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.momentums
            .iter_mut()
            .chain(&mut self.velocities)
            .chain(&mut self.velocity_hats)
            .collect()
    }
    fn update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, iteration: u64) {
        self.adam_update(index, w, g, lr, iteration)
    }
}

/// Keras 3's `AdamW`: [`Adam`] with decoupled weight decay on by default (0.004), applied
/// before each update as `w -= w * weight_decay * lr`.
#[derive(Clone, Debug)]
pub struct AdamW<T: Element = f32>(Adam<T>);

impl<T: Element> Default for AdamW<T> {
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl<T: Element> AdamW<T> {
    /// AdamW with this learning rate, weight decay 0.004 and Adam's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        let mut adam = Adam::new(learning_rate);
        adam.common = adam.common.require_decay(0.004);
        AdamW(adam)
    }

    /// Decoupled weight decay factor: a number, since the decay is part of AdamW's rule
    /// (for none, use [`Adam`]).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.0
            .common
            .put(crate::common::CommonOption::WeightDecay, Some(weight_decay));
        self
    }

    /// See [`Adam::beta_1`].
    pub fn beta_1(self, beta_1: f64) -> Self {
        AdamW(self.0.beta_1(beta_1))
    }

    /// See [`Adam::beta_2`].
    pub fn beta_2(self, beta_2: f64) -> Self {
        AdamW(self.0.beta_2(beta_2))
    }

    /// See [`Adam::epsilon`].
    pub fn epsilon(self, epsilon: f64) -> Self {
        AdamW(self.0.epsilon(epsilon))
    }

    /// See [`Adam::amsgrad`].
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        AdamW(self.0.amsgrad(amsgrad))
    }

    crate::optimizer::clip_builders!();
}

impl<T: Element> Optimizer<T> for AdamW<T> {
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn common(&self) -> &Common {
        &self.0.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.0.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        self.0.adam_hyperparameters()
    }
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        self.0.set_adam_hyperparameter("adamw", name, value)
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.0.check("adamw")
    }
    fn build(&mut self, shapes: &[Vec<usize>]) {
        self.0.adam_build(shapes)
    }
    fn state_slots(&self) -> Vec<&'static str> {
        self.0.state_slots()
    }
    fn state(&self) -> Vec<&Tensor<T>> {
        Optimizer::state(&self.0)
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>> {
        Optimizer::state_mut(&mut self.0)
    }
    fn update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, iteration: u64) {
        self.0.adam_update(index, w, g, lr, iteration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{close, run};

    fn adam_by_hand(lr: f64, g: f64, steps: usize, amsgrad: bool, wd: f64) -> f64 {
        let (mut w, mut m, mut v, mut vmax) = (1.0f64, 0.0, 0.0, 0.0f64);
        for t in 1..=steps {
            let g = g * t as f64; // growing gradients make amsgrad differ from adam
            w -= w * wd * lr;
            let alpha = lr * (1.0 - 0.999f64.powi(t as i32)).sqrt() / (1.0 - 0.9f64.powi(t as i32));
            m += (g - m) * (1.0 - 0.9);
            v += (g * g - v) * (1.0 - 0.999);
            vmax = vmax.max(v);
            let vu = if amsgrad { vmax } else { v };
            w -= m * alpha / (vu.sqrt() + 1e-7);
        }
        w
    }

    fn run_growing(opt: &mut dyn Optimizer<f64>, steps: usize) -> f64 {
        let mut w = Tensor::from_vec(vec![1.0], &[1]).unwrap();
        for t in 1..=steps {
            let g = Tensor::from_vec(vec![-3.0 * t as f64], &[1]).unwrap();
            opt.step(&mut [&mut w], &[&g]).unwrap();
        }
        w.item()
    }

    #[test]
    fn first_step_moves_by_about_the_learning_rate() {
        // The bias correction makes the first step lr * g / |g| (up to epsilon).
        let w = run(&mut Adam::new(0.01), &[1.0], &[2.0], 1);
        assert!((w[0] - 0.99).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn adam_amsgrad_and_adamw_match_the_rule_by_hand() {
        for (amsgrad, wd) in [(false, 0.0), (true, 0.0)] {
            let got = run_growing(&mut Adam::new(0.01).amsgrad(amsgrad), 5);
            close(&[got], &[adam_by_hand(0.01, -3.0, 5, amsgrad, wd)]);
        }
        let got = run_growing(&mut AdamW::new(0.01).weight_decay(0.1), 5);
        close(&[got], &[adam_by_hand(0.01, -3.0, 5, false, 0.1)]);
        assert_eq!(AdamW::<f32>::default().common().weight_decay(), Some(0.004));
    }

    #[test]
    fn clearing_every_optimizer_s_weight_decay_leaves_adamw_decaying() {
        // Code that clears an optional setting for whatever optimizer it holds (a config
        // with no decay) must not turn AdamW into Adam: AdamW refuses and keeps its decay.
        let decayed = run_growing(&mut AdamW::default(), 3);
        for name in crate::OPTIMIZER_NAMES {
            let mut opt = crate::by_name::<f64>(name).unwrap();
            let cleared = opt.set_option(crate::common::CommonOption::WeightDecay, None);
            if *name == "adamw" {
                let e = cleared.unwrap_err().to_string();
                assert!(
                    e.contains("adamw: weight_decay") && e.contains("Adam"),
                    "{e}"
                );
                assert_eq!(opt.common().weight_decay(), Some(0.004));
                assert_eq!(run_growing(opt.as_mut(), 3), decayed);
                assert_ne!(decayed, run_growing(&mut Adam::default(), 3));
            } else {
                cleared.unwrap();
                assert_eq!(opt.common().weight_decay(), None);
            }
        }
    }

    #[test]
    fn optional_settings_take_a_value_or_none_and_a_bad_one_changes_nothing() {
        let from_config: Option<f64> = None;
        let a = Adam::<f64>::new(0.01).clipnorm(from_config).clipvalue(0.5);
        assert_eq!(
            (a.common().clipnorm(), a.common().clipvalue()),
            (None, Some(0.5))
        );
        let mut opt: Box<dyn Optimizer<f64>> = Box::new(a);
        // A second kind of clipping, or a limit that is not positive: refused, unchanged.
        let e = opt
            .set_option(crate::common::CommonOption::Clipnorm, Some(1.0))
            .unwrap_err();
        assert!(e.to_string().contains("clipnorm and clipvalue"), "{e}");
        let e = opt
            .set_option(crate::common::CommonOption::Clipvalue, Some(-1.0))
            .unwrap_err();
        assert!(e.to_string().contains("got -1"), "{e}");
        assert_eq!(
            (opt.common().clipnorm(), opt.common().clipvalue()),
            (None, Some(0.5))
        );
        opt.set_option(crate::common::CommonOption::Clipvalue, None)
            .unwrap();
        opt.set_option(crate::common::CommonOption::Clipnorm, Some(1.0))
            .unwrap();
        assert_eq!(opt.common().clipnorm(), Some(1.0));
    }
}

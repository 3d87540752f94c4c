//! RMSprop: gradients divided by a running root mean square.

use tensor::{Element, Tensor};

use crate::common::{Common, LearningRate};
use crate::error::{OptimError, check_range, flag, unknown};
use crate::kernel::for_each_chunk;
use crate::optimizer::{Optimizer, common_builders};

/// Keras 3's `RMSprop`.
///
/// Defaults: `learning_rate` 0.001, `rho` 0.9, `momentum` 0, `epsilon` 1e-7, `centered`
/// false. Per element:
/// - `v = rho * v + (1 - rho) * g^2`;
/// - centered: `a = rho * a + (1 - rho) * g`, denominator `sqrt(v - a^2 + epsilon)`;
///   otherwise `sqrt(v + epsilon)` (epsilon inside the root, unlike PyTorch);
/// - `increment = lr * g / denominator`;
/// - with momentum: `m = momentum * m + increment`, `w -= m`; otherwise `w -= increment`.
#[derive(Clone, Debug)]
pub struct RMSprop<T: Element = f32> {
    /// Decay rate of the running average of squared gradients (Keras: 0.9).
    pub rho: f64,
    /// Momentum of the update (Keras: 0, none).
    pub momentum: f64,
    /// Added to the root of the average for stability (Keras: 1e-7).
    pub epsilon: f64,
    /// Whether to divide by the gradients' variance rather than their mean square.
    pub centered: bool,
    common: Common,
    velocities: Vec<Tensor<T>>,
    momentums: Vec<Tensor<T>>,
    average_gradients: Vec<Tensor<T>>,
}

impl<T: Element> Default for RMSprop<T> {
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl<T: Element> RMSprop<T> {
    /// RMSprop with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        RMSprop {
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            common: Common::new(learning_rate),
            velocities: Vec::new(),
            momentums: Vec::new(),
            average_gradients: Vec::new(),
        }
    }

    /// Discounting factor of the running mean square, in `[0, 1]`.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Momentum factor in `[0, 1]`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Small constant inside the square root.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Normalise by the running variance instead of the mean square.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

common_builders!(RMSprop);

impl<T: Element> Optimizer<T> for RMSprop<T> {
    fn name(&self) -> &'static str {
        "rmsprop"
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("rho", self.rho),
            ("momentum", self.momentum),
            ("epsilon", self.epsilon),
            ("centered", self.centered as u8 as f64),
        ]
    }
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        match name {
            "rho" => self.rho = value,
            "momentum" => self.momentum = value,
            "epsilon" => self.epsilon = value,
            "centered" => self.centered = flag("rmsprop", "centered", value)?,
            _ => return Err(unknown("rmsprop", name, &self.hyperparameters())),
        }
        Ok(())
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.common.validate("rmsprop")?;
        check_range("rmsprop", "rho", self.rho, 0.0, 1.0)?;
        check_range("rmsprop", "momentum", self.momentum, 0.0, 1.0)?;
        check_range("rmsprop", "epsilon", self.epsilon, 0.0, f64::INFINITY)
    }
    fn build(&mut self, shapes: &[Vec<usize>]) {
        let zeros = || shapes.iter().map(|s| Tensor::zeros(s)).collect::<Vec<_>>();
        self.velocities = zeros();
        self.momentums = if self.momentum > 0.0 {
            zeros()
        } else {
            Vec::new()
        };
        self.average_gradients = if self.centered { zeros() } else { Vec::new() };
    }
    fn state_slots(&self) -> Vec<&'static str> {
        let mut slots = vec!["velocity"];
        if self.momentum > 0.0 {
            slots.push("momentum");
        }
        if self.centered {
            slots.push("average_gradient");
        }
        slots
    }
    fn state(&self) -> Vec<&Tensor<T>> {
        self.velocities
            .iter()
            .chain(&self.momentums)
            .chain(&self.average_gradients)
            .collect()
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.velocities
            .iter_mut()
            .chain(&mut self.momentums)
            .chain(&mut self.average_gradients)
            .collect()
    }
    fn update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, _iteration: u64) {
        let rho = T::from_f64_lossy(self.rho);
        let one_minus_rho = T::from_f64_lossy(1.0 - self.rho);
        let eps = T::from_f64_lossy(self.epsilon);
        let mu = T::from_f64_lossy(self.momentum);
        let v = self.velocities[index].as_slice_mut();
        // One branch-free loop per variant, so that each vectorizes.
        match (
            self.average_gradients.get_mut(index),
            self.momentums.get_mut(index),
        ) {
            (None, None) => for_each_chunk(w, g, [v], |w, g, [v]| {
                for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                    *v = rho * *v + one_minus_rho * (g * g);
                    *w -= lr * g / (*v + eps).sqrt();
                }
            }),
            (Some(a), None) => for_each_chunk(w, g, [v, a.as_slice_mut()], |w, g, [v, a]| {
                for (((w, &g), v), a) in w.iter_mut().zip(g).zip(v.iter_mut()).zip(a.iter_mut()) {
                    *v = rho * *v + one_minus_rho * (g * g);
                    *a = rho * *a + one_minus_rho * g;
                    *w -= lr * g / (*v - *a * *a + eps).sqrt();
                }
            }),
            (None, Some(m)) => for_each_chunk(w, g, [v, m.as_slice_mut()], |w, g, [v, m]| {
                for (((w, &g), v), m) in w.iter_mut().zip(g).zip(v.iter_mut()).zip(m.iter_mut()) {
                    *v = rho * *v + one_minus_rho * (g * g);
                    *m = mu * *m + lr * g / (*v + eps).sqrt();
                    *w -= *m;
                }
            }),
            (Some(a), Some(m)) => for_each_chunk(
                w,
                g,
                [v, a.as_slice_mut(), m.as_slice_mut()],
                |w, g, [v, a, m]| {
                    for i in 0..w.len() {
                        v[i] = rho * v[i] + one_minus_rho * (g[i] * g[i]);
                        a[i] = rho * a[i] + one_minus_rho * g[i];
                        m[i] = mu * m[i] + lr * g[i] / (v[i] - a[i] * a[i] + eps).sqrt();
                        w[i] -= m[i];
                    }
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{close, run};

    #[test]
    fn first_steps_plain_centered_and_with_momentum() {
        // v = 0.1 * 4 = 0.4; w -= 0.01 * 2 / sqrt(0.4 + 1e-7)
        let step1 = 0.02 / (0.4f64 + 1e-7).sqrt();
        close(
            &run(&mut RMSprop::new(0.01), &[1.0], &[2.0], 1),
            &[1.0 - step1],
        );
        // v2 = 0.9 * 0.4 + 0.4 = 0.76
        let step2 = 0.02 / (0.76f64 + 1e-7).sqrt();
        close(
            &run(&mut RMSprop::new(0.01), &[1.0], &[2.0], 2),
            &[1.0 - step1 - step2],
        );
        // centered: a = 0.2, denominator sqrt(0.4 - 0.04 + 1e-7)
        let c1 = 0.02 / (0.36f64 + 1e-7).sqrt();
        close(
            &run(&mut RMSprop::new(0.01).centered(true), &[1.0], &[2.0], 1),
            &[1.0 - c1],
        );
        // momentum 0.5: m1 = step1, m2 = 0.5 * step1 + step2
        close(
            &run(&mut RMSprop::new(0.01).momentum(0.5), &[1.0], &[2.0], 2),
            &[1.0 - step1 - (0.5 * step1 + step2)],
        );
    }
}

//! Adagrad: per-element learning rates from the sum of squared gradients.

use tensor::{Element, Tensor};

use crate::common::{Common, LearningRate};
use crate::error::{OptimError, check_range, unknown};
use crate::kernel::for_each_chunk;
use crate::optimizer::{Optimizer, common_builders};

/// Keras 3's `Adagrad`.
///
/// Defaults: `learning_rate` 0.001, `initial_accumulator_value` 0.1, `epsilon` 1e-7. Per
/// element: `acc += g^2`, then `w -= lr * g / sqrt(acc + epsilon)`.
#[derive(Clone, Debug)]
pub struct Adagrad<T: Element = f32> {
    /// The starting value of each parameter's sum of squared gradients (Keras: 0.1).
    pub initial_accumulator_value: f64,
    /// Added to the root of the accumulator for stability (Keras: 1e-7).
    pub epsilon: f64,
    common: Common,
    accumulators: Vec<Tensor<T>>,
}

impl<T: Element> Default for Adagrad<T> {
    fn default() -> Self {
        Self::new(0.001)
    }
}

impl<T: Element> Adagrad<T> {
    /// Adagrad with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adagrad {
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            common: Common::new(learning_rate),
            accumulators: Vec::new(),
        }
    }

    /// The accumulators' starting value.
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.initial_accumulator_value = value;
        self
    }

    /// Small constant inside the square root.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }
}

common_builders!(Adagrad);

impl<T: Element> Optimizer<T> for Adagrad<T> {
    fn name(&self) -> &'static str {
        "adagrad"
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("epsilon", self.epsilon),
        ]
    }
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        match name {
            "initial_accumulator_value" => self.initial_accumulator_value = value,
            "epsilon" => self.epsilon = value,
            _ => return Err(unknown("adagrad", name, &self.hyperparameters())),
        }
        Ok(())
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.common.validate("adagrad")?;
        check_range(
            "adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
            0.0,
            f64::INFINITY,
        )?;
        check_range("adagrad", "epsilon", self.epsilon, 0.0, f64::INFINITY)
    }
    fn build(&mut self, shapes: &[Vec<usize>]) {
        let init = T::from_f64_lossy(self.initial_accumulator_value);
        self.accumulators = shapes.iter().map(|s| Tensor::full(s, init)).collect();
    }
    fn state_slots(&self) -> Vec<&'static str> {
        vec!["accumulator"]
    }
    fn state(&self) -> Vec<&Tensor<T>> {
        self.accumulators.iter().collect()
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.accumulators.iter_mut().collect()
    }
    fn update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, _iteration: u64) {
        let eps = T::from_f64_lossy(self.epsilon);
        let acc = self.accumulators[index].as_slice_mut();
        for_each_chunk(w, g, [acc], |w, g, [acc]| {
            for ((w, a), &g) in w.iter_mut().zip(acc.iter_mut()).zip(g) {
                *a += g * g;
                *w -= lr * g / (*a + eps).sqrt();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{close, run};

    #[test]
    fn accumulates_squared_gradients_from_the_initial_value() {
        // acc = 0.1 + 4 = 4.1, then 8.1
        let w = 1.0 - 0.2 / (4.1f64 + 1e-7).sqrt() - 0.2 / (8.1f64 + 1e-7).sqrt();
        close(&run(&mut Adagrad::new(0.1), &[1.0], &[2.0], 2), &[w]);
    }
}

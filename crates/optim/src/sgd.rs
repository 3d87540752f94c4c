//! Stochastic gradient descent, with optional momentum and Nesterov momentum.

use tensor::{Element, Tensor};

use crate::common::{Common, LearningRate};
use crate::error::{OptimError, check_range, flag, unknown};
use crate::kernel::for_each_chunk;
use crate::optimizer::{Optimizer, common_builders};

/// Gradient descent with optional (Nesterov) momentum; Keras 3's `SGD`.
///
/// Defaults: `learning_rate` 0.01, `momentum` 0, `nesterov` false. Per element, with
/// gradient `g` and learning rate `lr`:
/// - no momentum: `w -= lr * g`;
/// - momentum: `m = momentum * m - lr * g`, then `w += m`;
/// - Nesterov: `m = momentum * m - lr * g`, then `w += momentum * m - lr * g`.
///
/// ```
/// use optim::{Optimizer, SGD};
/// use tensor::Tensor;
/// let mut w = Tensor::from_vec(vec![1.0f32], &[1]).unwrap();
/// let g = Tensor::from_vec(vec![2.0f32], &[1]).unwrap();
/// SGD::new(0.1).step(&mut [&mut w], &[&g]).unwrap();
/// assert_eq!(w.to_vec(), vec![0.8]);
/// ```
#[derive(Clone, Debug)]
pub struct SGD<T: Element = f32> {
    /// Momentum of the update (Keras: 0, plain gradient descent).
    pub momentum: f64,
    /// Whether to use Nesterov momentum (the gradient at the looked-ahead point).
    pub nesterov: bool,
    common: Common,
    momentums: Vec<Tensor<T>>,
}

impl<T: Element> Default for SGD<T> {
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl<T: Element> SGD<T> {
    /// SGD with this learning rate (a number or a schedule), no momentum.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        SGD {
            momentum: 0.0,
            nesterov: false,
            common: Common::new(learning_rate),
            momentums: Vec::new(),
        }
    }

    /// The momentum factor in `[0, 1]`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Whether to use Nesterov momentum.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

common_builders!(SGD);

impl<T: Element> Optimizer<T> for SGD<T> {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn common_mut(&mut self) -> &mut Common {
        &mut self.common
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("momentum", self.momentum),
            ("nesterov", self.nesterov as u8 as f64),
        ]
    }
    fn set_hyperparameter(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        match name {
            "momentum" => self.momentum = value,
            "nesterov" => self.nesterov = flag("sgd", "nesterov", value)?,
            _ => return Err(unknown("sgd", name, &self.hyperparameters())),
        }
        Ok(())
    }
    fn validate(&self) -> Result<(), OptimError> {
        self.common.validate("sgd")?;
        check_range("sgd", "momentum", self.momentum, 0.0, 1.0)
    }
    fn build(&mut self, shapes: &[Vec<usize>]) {
        self.momentums = if self.momentum != 0.0 {
            shapes.iter().map(|s| Tensor::zeros(s)).collect()
        } else {
            Vec::new()
        };
    }
    fn state_slots(&self) -> Vec<&'static str> {
        if self.momentum != 0.0 {
            vec!["momentum"]
        } else {
            Vec::new()
        }
    }
    fn state(&self) -> Vec<&Tensor<T>> {
        self.momentums.iter().collect()
    }
    fn state_mut(&mut self) -> Vec<&mut Tensor<T>> {
        self.momentums.iter_mut().collect()
    }
    fn update(&mut self, index: usize, w: &mut [T], g: &[T], lr: T, _iteration: u64) {
        if self.momentum == 0.0 {
            for_each_chunk(w, g, [], |w, g, []| {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w -= g * lr;
                }
            });
            return;
        }
        let mu = T::from_f64_lossy(self.momentum);
        let m = self.momentums[index].as_slice_mut();
        if self.nesterov {
            for_each_chunk(w, g, [m], |w, g, [m]| {
                for ((w, m), &g) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                    *m = *m * mu - g * lr;
                    *w += *m * mu - g * lr;
                }
            });
        } else {
            for_each_chunk(w, g, [m], |w, g, [m]| {
                for ((w, m), &g) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                    *m = *m * mu - g * lr;
                    *w += *m;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{close, run};

    #[test]
    fn plain_momentum_and_nesterov_first_steps() {
        close(&run(&mut SGD::new(0.1), &[1.0], &[2.0], 2), &[0.6]);
        // m1 = -0.2, w = 0.8; m2 = 0.9 * -0.2 - 0.2 = -0.38, w = 0.42
        close(
            &run(&mut SGD::new(0.1).momentum(0.9), &[1.0], &[2.0], 2),
            &[0.42],
        );
        // w += 0.9 * m - 0.2: step 1: 1 - 0.38 = 0.62; step 2: 0.62 + 0.9 * -0.38 - 0.2 = 0.078
        close(
            &run(
                &mut SGD::new(0.1).momentum(0.9).nesterov(true),
                &[1.0],
                &[2.0],
                2,
            ),
            &[0.078],
        );
    }
}

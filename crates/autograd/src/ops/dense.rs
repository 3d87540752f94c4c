//! The fully connected layer as one op: `activation(x @ w + b)`, for activations whose
//! derivative is a function of their output (linear, relu, sigmoid, tanh). One op instead of
//! three means one pass over the output forward, one backward, and no intermediate tensors.

use tensor::{Element, Result, Tensor};

use crate::op::{InputGrads, Op};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// An activation whose derivative can be computed from its output `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputActivation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
}

/// `activation(x @ w + b)` for `x` `[n, k]`, `w` `[k, m]` and `b` `[m]` (inputs in that
/// order; without a bias, two inputs).
pub struct DenseOp(pub OutputActivation);

/// A layer's input and weight gradients run side by side on two cores when their products
/// take from this many floating-point operations (a few microseconds: less than that, and
/// handing one to another core costs more than it saves) up to the size from which the
/// matrix product splits itself across the cores
/// ([`PARALLEL_MIN_FLOPS`](tensor::ops::matmul::PARALLEL_MIN_FLOPS)).
const SIDE_BY_SIDE_MIN_FLOPS: usize = 250_000;

impl<T: Element> Op<T> for DenseOp {
    fn name(&self) -> &'static str {
        "dense"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let mut y = x[0].try_linear(x[1], x.get(2).copied())?;
        // One closure per activation, so that each loop is branch-free.
        match self.0 {
            OutputActivation::Linear => {}
            OutputActivation::Relu => y.map_inplace(|v| v.max(T::zero())),
            OutputActivation::Sigmoid => y.map_inplace(tensor::sigmoid_scalar),
            OutputActivation::Tanh => y.map_inplace(T::fast_tanh),
        }
        Ok(y)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        // Generic over the closure (not a `fn` pointer), so that each loop is inlined and
        // vectorizes: through a pointer, every element is an indirect call.
        fn zip<T: Element>(dy: &Tensor<T>, y: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
            dy.try_zip_map(y, "dense_backward", f)
                .expect("gradient has the output's shape")
        }
        let dz = match self.0 {
            OutputActivation::Linear => dy.clone(),
            OutputActivation::Relu => zip(dy, y, |g, y| if y > T::zero() { g } else { T::zero() }),
            OutputActivation::Sigmoid => zip(dy, y, |g, y| g * y * (T::one() - y)),
            OutputActivation::Tanh => zip(dy, y, |g, y| g * (T::one() - y * y)),
        };
        let (want_x, want_w) = (dx.wants(0), dx.wants(1));
        let want_b = x.len() > 2 && dx.wants(2);
        let grad_x = || want_x.then(|| dz.matmul(&x[1].transpose()));
        let grad_wb = || {
            let gw = want_w.then(|| x[0].transpose().matmul(&dz));
            (gw, want_b.then(|| dz.sum(0, false)))
        };
        // The input's gradient and the weights' are independent products: for a layer too
        // small for either to be split across cores, they run side by side.
        let (rows, k, units) = (x[0].shape()[0], x[0].shape()[1], x[1].shape()[1]);
        let flops = 2 * rows * k * units;
        let (gx, (gw, gb)) = if want_x
            && want_w
            && (SIDE_BY_SIDE_MIN_FLOPS..tensor::ops::matmul::PARALLEL_MIN_FLOPS).contains(&flops)
        {
            tensor::parallel::join(grad_x, grad_wb)
        } else {
            (grad_x(), grad_wb())
        };
        for (i, g) in [gx, gw, gb].into_iter().enumerate() {
            if let Some(g) = g {
                dx.set(i, g);
            }
        }
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// `activation(self @ w + b)` in one op; `self` is a batch `[n, k]`, `w` `[k, m]`, `b`
    /// `[m]`.
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_dense`](Var::try_dense).
    #[track_caller]
    pub fn dense(
        self,
        w: Var<'t, T>,
        b: Option<Var<'t, T>>,
        activation: OutputActivation,
    ) -> Var<'t, T> {
        unwrap_op(self.try_dense(w, b, activation))
    }

    /// [`dense`](Var::dense) that returns an error for shapes that do not fit.
    pub fn try_dense(
        self,
        w: Var<'t, T>,
        b: Option<Var<'t, T>>,
        activation: OutputActivation,
    ) -> Result<Var<'t, T>> {
        match b {
            Some(b) => self.tape.apply(DenseOp(activation), [self, w, b]),
            None => self.tape.apply(DenseOp(activation), [self, w]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    /// The gradients of `sum(relu(x @ w + b))` for x, w and b, from a fresh tape.
    fn grads(x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>) -> Vec<Tensor<f64>> {
        let tape = Tape::new();
        let vars = [tape.param(x), tape.param(w), tape.param(b)];
        let y = vars[0].dense(vars[1], Some(vars[2]), OutputActivation::Relu);
        let g = y.sum_all().backward().unwrap();
        vars.iter().map(|&v| g[v].clone()).collect()
    }

    #[test]
    fn side_by_side_gradients_equal_the_sequential_ones() {
        // Small enough (2 * 64 * 300 * 100 flops) for the input and weight gradients to run
        // side by side inside `install`, and one after the other outside the pool.
        let t = |shape: &[usize], seed: usize| {
            let n: usize = shape.iter().product();
            let v = (0..n).map(|i| ((i * 37 + seed) % 101) as f64 / 50.0 - 1.0);
            Tensor::from_vec(v.collect(), shape).unwrap()
        };
        let (x, w, b) = (t(&[64, 300], 1), t(&[300, 100], 2), t(&[100], 3));
        let sequential = grads(&x, &w, &b);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let side_by_side = pool.install(|| tensor::parallel::install(|| grads(&x, &w, &b)));
        assert_eq!(side_by_side, sequential);
        // And they are the gradients: dx = mask @ w^T, dw = x^T @ mask, db = column sums.
        let mask = (&x.matmul(&w) + &b).map(|v| if v > 0.0 { 1.0 } else { 0.0 });
        assert!(sequential[0].allclose(&mask.matmul(&w.transpose()), 1e-12, 1e-12));
        assert!(sequential[1].allclose(&x.transpose().matmul(&mask), 1e-12, 1e-12));
        assert!(sequential[2].allclose(&mask.sum(0, false), 1e-12, 1e-12));
    }
}

//! The fully connected layer as one op: `activation(x @ w + b)`, for activations whose
//! derivative is a function of their output (linear, relu, sigmoid, tanh). One op instead of
//! three means no pass of its own over the output forward (the bias and activation run on
//! each block of the product as it is computed), one backward, and no intermediate tensors.
//! The activation's derivative is not written here: it is the [`Elementwise`] function's own
//! (`Relu`, `Sigmoid`, `Tanh` in `unary`), so the fused op and the plain one cannot disagree,
//! and the recorded sweep gives the fused op its second derivatives.

use tensor::{Element, Result, Tensor};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unary::{Chain, Elementwise, Relu, Sigmoid, Tanh};
use crate::ops::unwrap_op;
use crate::real::RealFn;
use crate::tape::Var;

/// An activation whose derivative can be computed from its output `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputActivation {
    /// No activation.
    Linear,
    /// `max(z, 0)`.
    Relu,
    /// `1 / (1 + exp(-z))`.
    Sigmoid,
    /// `tanh(z)`.
    Tanh,
}

impl OutputActivation {
    /// Applies the activation to `v` in place, one branch-free loop per activation.
    pub(crate) fn apply_in_place<T: Element>(self, v: &mut [T]) {
        fn each<T: Element>(v: &mut [T], f: impl Fn(T) -> T) {
            tensor::simd::dispatch(
                #[inline(always)]
                || v.iter_mut().for_each(|v| *v = f(*v)),
            );
        }
        match self {
            OutputActivation::Linear => {}
            OutputActivation::Relu => each(v, |v| v.max(T::zero())),
            OutputActivation::Sigmoid => each(v, tensor::sigmoid_scalar),
            OutputActivation::Tanh => each(v, T::fast_tanh),
        }
    }

    /// [`chain`](OutputActivation::chain) on slices: `dz = dy * f'(y)`, by the same rule (for
    /// kernels that compute it a chunk at a time). Linear copies `dy`.
    pub(crate) fn chain_into<T: Element>(self, dy: &[T], y: &[T], dz: &mut [T]) {
        fn each<T: Element, F: Elementwise<T>>(f: &F, dy: &[T], y: &[T], dz: &mut [T]) {
            const {
                assert!(
                    F::OF_OUTPUT,
                    "a fused activation's derivative must read its output"
                )
            };
            let chain = Chain(f);
            tensor::simd::dispatch(
                #[inline(always)]
                || {
                    for ((d, &g), &y) in dz.iter_mut().zip(dy).zip(y) {
                        *d = chain.eval([g, y]);
                    }
                },
            );
        }
        match self {
            OutputActivation::Linear => dz.copy_from_slice(dy),
            OutputActivation::Relu => each(&Relu, dy, y, dz),
            OutputActivation::Sigmoid => each(&Sigmoid, dy, y, dz),
            OutputActivation::Tanh => each(&Tanh, dy, y, dz),
        }
    }

    /// The gradient before the activation, `dy * f'(y)`, from the activation's output `y`:
    /// the [`Elementwise`] function's own derivative, so that a fused op and the plain
    /// activation cannot disagree.
    pub(crate) fn chain<T: Element, V: Operand<T>>(self, dy: &V, y: &V) -> V {
        match self {
            OutputActivation::Linear => dy.clone(),
            OutputActivation::Relu => chain_of_output(&Relu, dy, y),
            OutputActivation::Sigmoid => chain_of_output(&Sigmoid, dy, y),
            OutputActivation::Tanh => chain_of_output(&Tanh, dy, y),
        }
    }
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
        x[0].try_linear_then(x[1], x.get(2).copied(), |v| self.0.apply_in_place(v))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let dz = self.0.chain(dy, y);
        let (want_x, want_w) = (dx.wants(0), dx.wants(1));
        if want_x && want_w {
            // The input's gradient and the weights' are independent products: for a layer too
            // small for either to be split across cores, they run side by side.
            let (xs, ws) = (x[0].shape(), x[1].shape());
            let flops = 2 * xs[0] * xs[1] * ws[1];
            let side_by_side =
                (SIDE_BY_SIDE_MIN_FLOPS..tensor::ops::matmul::PARALLEL_MIN_FLOPS).contains(&flops);
            let (wt, xt) = (x[1].transpose(), x[0].transpose());
            let (gx, gw) = V::matmul_pair([&dz, &wt], [&xt, &dz], side_by_side);
            dx.set(0, gx);
            dx.set(1, gw);
        } else {
            dx.set_with(0, || dz.matmul(&x[1].transpose()));
            dx.set_with(1, || x[0].transpose().matmul(&dz));
        }
        if x.len() > 2 {
            dx.set_with(2, || dz.sum(0, false));
        }
    }
}

/// `dy * f'(y)` for an activation whose derivative is written from its output (the only
/// kind a fused layer that keeps its output can differentiate).
fn chain_of_output<T: Element, V: Operand<T>, F: Elementwise<T>>(f: &F, dy: &V, y: &V) -> V {
    const {
        assert!(
            F::OF_OUTPUT,
            "a fused activation's derivative must read its output"
        )
    };
    V::map_real(&Chain(f), [dy, y])
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

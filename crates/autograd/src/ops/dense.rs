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
        dx.set_with(0, || dz.matmul(&x[1].transpose()));
        dx.set_with(1, || x[0].transpose().matmul(&dz));
        if x.len() > 2 {
            dx.set_with(2, || dz.sum(0, false));
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

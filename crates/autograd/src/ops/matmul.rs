//! The matrix product and its gradient (`dA = dY B^T`, `dB = A^T dY`, read through
//! transposed views without copies).

use tensor::{Element, Result, Tensor};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// `a @ b` for 2-D matrices or 3-D batches (see [`Tensor::matmul`]).
pub struct MatmulOp;

impl<T: Element> Op<T> for MatmulOp {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_matmul(x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        // Batched products whose operand was 2-D (or a batch of 1) are summed back by sum_to.
        dx.set_with(0, || dy.matmul(&x[1].transpose()).sum_to(&x[0].shape()));
        dx.set_with(1, || x[0].transpose().matmul(dy).sum_to(&x[1].shape()));
    }
    fn output_shape(&self, x: &[&[usize]]) -> Option<Vec<usize>> {
        // Plain 2-D products only; the batched forms run at once.
        match (x[0], x[1]) {
            (&[m, k], &[k2, n]) if k == k2 => Some(vec![m, n]),
            _ => None,
        }
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// The matrix product `self @ other` (2-D, or batched 3-D).
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_matmul`](Var::try_matmul).
    #[track_caller]
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        unwrap_op(self.try_matmul(other))
    }

    /// The matrix product, or an error naming both shapes.
    pub fn try_matmul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(MatmulOp, [self, other])
    }
}

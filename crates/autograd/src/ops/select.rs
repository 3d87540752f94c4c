//! Choosing between two variables by a constant mask.

use tensor::{Element, Result, Tensor};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// `mask ? a : b` element-wise, with broadcasting; the gradient goes to the chosen side.
pub struct WhereCondOp<T: Element>(pub Tensor<T>);

impl<T: Element> Op<T> for WhereCondOp<T> {
    fn name(&self) -> &'static str {
        "where_cond"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        self.0.try_where_cond(x[0], x[1])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        // The mask is constant: the gradient is routed, and routing again is its derivative.
        let zero = dy.constant(Tensor::scalar(T::zero()));
        dx.set_with(0, || {
            V::apply(WhereCondOp(self.0.clone()), [dy, &zero]).sum_to(&x[0].shape())
        });
        dx.set_with(1, || {
            V::apply(WhereCondOp(self.0.clone()), [&zero, dy]).sum_to(&x[1].shape())
        });
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Takes `on_true` where `mask` is non-zero and `on_false` elsewhere (NumPy's `where`);
    /// the three broadcast together. Masks come from the tensor comparisons (`gt_mask`, ...).
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_where_cond`](Var::try_where_cond).
    #[track_caller]
    pub fn where_cond(mask: &Tensor<T>, on_true: Var<'t, T>, on_false: Var<'t, T>) -> Var<'t, T> {
        unwrap_op(Self::try_where_cond(mask, on_true, on_false))
    }

    /// [`where_cond`](Var::where_cond) that returns an error if the shapes do not broadcast.
    pub fn try_where_cond(
        mask: &Tensor<T>,
        on_true: Var<'t, T>,
        on_false: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        on_true
            .tape
            .apply(WhereCondOp(mask.clone()), [on_true, on_false])
    }
}

//! Reductions (sum, mean, max, min, logsumexp, along an axis or over everything) and the
//! softmax family, with their gradients.

use tensor::{Element, Result, Tensor, normalize_axis};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unary::Exp;
use crate::ops::unwrap_op;
use crate::real::{Real, RealFn};
use crate::tape::Var;

/// The input shape with `axis` set to 1: the output shape under `keepdims`.
fn kept_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[axis] = 1;
    s
}

/// A reduction's output gradient (or value) in the `keepdims` shape, ready to broadcast
/// against the input.
fn as_kept<T: Element, V: Operand<T>>(t: &V, input_shape: &[usize], axis: usize) -> V {
    t.reshape(&kept_shape(input_shape, axis))
}

/// Sum along an axis; each input element gets the gradient of its sum.
pub struct SumOp {
    /// The axis reduced (negative counts from the end).
    pub axis: isize,
    /// Whether the reduced axis stays, with length 1.
    pub keepdims: bool,
}

impl<T: Element> Op<T> for SumOp {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_sum(self.axis, self.keepdims)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let shape = x[0].shape();
        let ax = normalize_axis("sum", self.axis, shape.len()).expect("checked in forward");
        dx.set_with(0, || as_kept(dy, &shape, ax).broadcast_to(&shape));
    }
}

/// Mean along an axis; each input element gets `1/n` of the gradient of its mean.
pub struct MeanOp {
    /// The axis reduced (negative counts from the end).
    pub axis: isize,
    /// Whether the reduced axis stays, with length 1.
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MeanOp {
    fn name(&self) -> &'static str {
        "mean"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_mean(self.axis, self.keepdims)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let shape = x[0].shape();
        let ax = normalize_axis("mean", self.axis, shape.len()).expect("checked in forward");
        let n = T::from_usize(shape[ax]).expect("length fits the float type");
        dx.set_with(0, || {
            as_kept(dy, &shape, ax).broadcast_to(&shape).div_scalar(n)
        });
    }
}

/// The sum of all elements, as a 0-D scalar.
pub struct SumAllOp;

impl<T: Element> Op<T> for SumAllOp {
    fn name(&self) -> &'static str {
        "sum_all"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(Tensor::scalar(x[0].sum_all()))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.broadcast_to(&x[0].shape()));
    }
}

/// The mean of all elements, as a 0-D scalar.
pub struct MeanAllOp;

impl<T: Element> Op<T> for MeanAllOp {
    fn name(&self) -> &'static str {
        "mean_all"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(Tensor::scalar(x[0].mean_all()))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let shape = x[0].shape();
        let n = T::from_usize(tensor::numel(&shape)).expect("length fits the float type");
        dx.set_with(0, || dy.div_scalar(n).broadcast_to(&shape));
    }
}

/// Gradient of `max`/`min` along an axis: to the elements equal to the result, shared
/// equally among ties (the choice is piecewise constant: it has no derivative of its own).
fn extremum_backward<T: Element, V: Operand<T>>(axis: isize, x: &V, y: &V, dy: &V) -> V {
    let shape = x.shape();
    let ax = normalize_axis("max", axis, shape.len()).expect("checked in forward");
    let hit = x
        .value()
        .eq_mask(&y.value().reshape(&kept_shape(&shape, ax)));
    let share = &hit / &hit.sum(ax as isize, true);
    as_kept(dy, &shape, ax)
        .broadcast_to(&shape)
        .mul_const(&share)
}

/// The largest element along an axis.
pub struct MaxOp {
    /// The axis reduced (negative counts from the end).
    pub axis: isize,
    /// Whether the reduced axis stays, with length 1.
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MaxOp {
    fn name(&self) -> &'static str {
        "max"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_max(self.axis, self.keepdims)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || extremum_backward(self.axis, x[0], y, dy));
    }
}

/// The smallest element along an axis.
pub struct MinOp {
    /// The axis reduced (negative counts from the end).
    pub axis: isize,
    /// Whether the reduced axis stays, with length 1.
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MinOp {
    fn name(&self) -> &'static str {
        "min"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_min(self.axis, self.keepdims)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || extremum_backward(self.axis, x[0], y, dy));
    }
}

/// `ln(sum(exp(x)))` along an axis; its gradient is the softmax.
pub struct LogSumExpOp {
    /// The axis reduced (negative counts from the end).
    pub axis: isize,
    /// Whether the reduced axis stays, with length 1.
    pub keepdims: bool,
}

impl<T: Element> Op<T> for LogSumExpOp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_logsumexp(self.axis, self.keepdims)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let shape = x[0].shape();
        let ax = normalize_axis("logsumexp", self.axis, shape.len()).expect("checked in forward");
        // softmax(x) * dy = e^(x - y) * dy, with y and dy broadcast back along the axis.
        dx.set_with(0, || {
            V::map_real(
                &SoftmaxTimes,
                [x[0], &as_kept(y, &shape, ax), &as_kept(dy, &shape, ax)],
            )
        });
    }
}

/// `e^(x - lse) * g`: the softmax from the log-sum-exp, times a gradient.
struct SoftmaxTimes;

impl<T: Element> RealFn<T, 3> for SoftmaxTimes {
    #[inline(always)]
    fn eval<R: Real<T>>(&self, [x, lse, g]: [R; 3]) -> R {
        (x - lse).exp() * g
    }
}

/// Softmax along an axis; `dx = y * (dy - sum(dy * y))`.
pub struct SoftmaxOp(pub isize);

impl<T: Element> Op<T> for SoftmaxOp {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_softmax(self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || {
            let dot = dy.mul(y).sum(self.0, true);
            y.mul(&dy.sub(&dot))
        });
    }
}

/// Log-softmax along an axis; `dx = dy - softmax * sum(dy)`.
pub struct LogSoftmaxOp(pub isize);

impl<T: Element> Op<T> for LogSoftmaxOp {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_log_softmax(self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || {
            let total = dy.sum(self.0, true);
            dy.sub(&V::apply(crate::ops::unary::Unary(Exp), [y]).mul(&total))
        });
    }
}

macro_rules! axis_reduction {
    ($(#[$doc:meta] $name:ident, $try_name:ident, $Op:ident;)*) => {
        impl<'t, T: Element> Var<'t, T> {$(
            #[$doc]
            ///
            /// # Panics
            /// On a bad axis; the `try_` form returns an error instead.
            #[track_caller]
            pub fn $name(self, axis: isize, keepdims: bool) -> Var<'t, T> {
                unwrap_op(self.$try_name(axis, keepdims))
            }

            #[$doc]
            /// Returns an error for a bad axis.
            pub fn $try_name(self, axis: isize, keepdims: bool) -> Result<Var<'t, T>> {
                self.tape.apply($Op { axis, keepdims }, [self])
            }
        )*}
    };
}

axis_reduction! {
    /// The sum along `axis` (negative counts from the end); `keepdims` keeps the axis with length 1.
    sum, try_sum, SumOp;
    /// The mean along `axis`.
    mean, try_mean, MeanOp;
    /// The largest element along `axis` (ties share the gradient).
    max, try_max, MaxOp;
    /// The smallest element along `axis` (ties share the gradient).
    min, try_min, MinOp;
    /// `ln(sum(exp(x)))` along `axis`, computed stably.
    logsumexp, try_logsumexp, LogSumExpOp;
}

impl<'t, T: Element> Var<'t, T> {
    /// The sum of all elements, as a scalar (a loss, typically).
    pub fn sum_all(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(SumAllOp, [self]))
    }

    /// The mean of all elements, as a scalar.
    pub fn mean_all(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(MeanAllOp, [self]))
    }

    /// Softmax along `axis` (`-1` for the last), stable for logits of any size.
    ///
    /// # Panics
    /// On a bad axis; see [`try_softmax`](Var::try_softmax).
    #[track_caller]
    pub fn softmax(self, axis: isize) -> Var<'t, T> {
        unwrap_op(self.try_softmax(axis))
    }

    /// [`softmax`](Var::softmax) that returns an error for a bad axis.
    pub fn try_softmax(self, axis: isize) -> Result<Var<'t, T>> {
        self.tape.apply(SoftmaxOp(axis), [self])
    }

    /// The logarithm of the softmax along `axis`, without the underflow of `softmax().ln()`.
    ///
    /// # Panics
    /// On a bad axis; see [`try_log_softmax`](Var::try_log_softmax).
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        unwrap_op(self.try_log_softmax(axis))
    }

    /// [`log_softmax`](Var::log_softmax) that returns an error for a bad axis.
    pub fn try_log_softmax(self, axis: isize) -> Result<Var<'t, T>> {
        self.tape.apply(LogSoftmaxOp(axis), [self])
    }
}

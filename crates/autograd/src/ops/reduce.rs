//! Reductions (sum, mean, max, min, logsumexp, along an axis or over everything) and the
//! softmax family, with their gradients.

use tensor::{Element, Result, Tensor, normalize_axis};

use crate::op::{InputGrads, Op};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// The input shape with `axis` set to 1: the output shape under `keepdims`.
fn kept_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[axis] = 1;
    s
}

/// A reduction's output gradient (or value) in the `keepdims` shape, ready to broadcast
/// against the input.
fn as_kept<T: Element>(t: &Tensor<T>, input_shape: &[usize], axis: usize) -> Tensor<T> {
    t.reshape(&kept_shape(input_shape, axis))
}

/// Sum along an axis; each input element gets the gradient of its sum.
pub struct SumOp {
    pub axis: isize,
    pub keepdims: bool,
}

impl<T: Element> Op<T> for SumOp {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_sum(self.axis, self.keepdims)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let ax = normalize_axis("sum", self.axis, x[0].ndim()).expect("checked in forward");
        dx.set_with(0, || {
            as_kept(dy, x[0].shape(), ax).broadcast_to(x[0].shape())
        });
    }
}

/// Mean along an axis; each input element gets `1/n` of the gradient of its mean.
pub struct MeanOp {
    pub axis: isize,
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MeanOp {
    fn name(&self) -> &'static str {
        "mean"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_mean(self.axis, self.keepdims)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let ax = normalize_axis("mean", self.axis, x[0].ndim()).expect("checked in forward");
        let n = T::from_usize(x[0].shape()[ax]).expect("length fits the float type");
        dx.set_with(0, || {
            as_kept(dy, x[0].shape(), ax).broadcast_to(x[0].shape()) / n
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
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set(0, Tensor::full(x[0].shape(), dy.item()));
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
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let n = T::from_usize(x[0].len()).expect("length fits the float type");
        dx.set(0, Tensor::full(x[0].shape(), dy.item() / n));
    }
}

/// Gradient of `max`/`min` along an axis: to the elements equal to the result, shared
/// equally among ties.
fn extremum_backward<T: Element>(
    axis: isize,
    x: &Tensor<T>,
    y: &Tensor<T>,
    dy: &Tensor<T>,
) -> Tensor<T> {
    let ax = normalize_axis("max", axis, x.ndim()).expect("checked in forward");
    let hit = x.eq_mask(&as_kept(y, x.shape(), ax));
    let count = hit.sum(ax as isize, true);
    &hit * &(&as_kept(dy, x.shape(), ax) / &count)
}

/// The largest element along an axis.
pub struct MaxOp {
    pub axis: isize,
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MaxOp {
    fn name(&self) -> &'static str {
        "max"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_max(self.axis, self.keepdims)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || extremum_backward(self.axis, x[0], y, dy));
    }
}

/// The smallest element along an axis.
pub struct MinOp {
    pub axis: isize,
    pub keepdims: bool,
}

impl<T: Element> Op<T> for MinOp {
    fn name(&self) -> &'static str {
        "min"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_min(self.axis, self.keepdims)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || extremum_backward(self.axis, x[0], y, dy));
    }
}

/// `ln(sum(exp(x)))` along an axis; its gradient is the softmax.
pub struct LogSumExpOp {
    pub axis: isize,
    pub keepdims: bool,
}

impl<T: Element> Op<T> for LogSumExpOp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_logsumexp(self.axis, self.keepdims)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let ax = normalize_axis("logsumexp", self.axis, x[0].ndim()).expect("checked in forward");
        dx.set_with(0, || {
            let softmax = (x[0] - &as_kept(y, x[0].shape(), ax)).exp();
            softmax * &as_kept(dy, x[0].shape(), ax)
        });
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
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            let dot = (dy * y).sum(self.0, true);
            y * &(dy - &dot)
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
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            let total = dy.sum(self.0, true);
            dy - &(y.exp() * &total)
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

//! Cross-entropy fused with the sigmoid or softmax before it: from logits `z` and targets
//! `t`, in one op, stable for any logits. With `clip`, the log-probabilities are clamped to
//! the bounds that Keras's probability clipping `[eps, 1 - eps]` implies (and get no gradient
//! where clamped), which reproduces Keras's numbers on probability outputs.

use tensor::ops::reduce::rows::log_softmax;
use tensor::{Element, Result, Tensor, TensorError, softplus_scalar};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::reduce::{LogSoftmaxOp, SumAllOp};
use crate::ops::unary::{Exp, Unary};
use crate::ops::unwrap_op;
use crate::real::{Real, RealFn};
use crate::tape::Var;

/// `[ln(lo), ln(hi)]` and `[ln(1 - hi), ln(1 - lo)]` for `lo = eps`, `hi = 1 - eps` computed
/// in `T` (in f32, `1 - 1e-7` rounds to `1 - 2^-23`, as in Keras).
fn log_bounds<T: Element>(eps: T) -> ((T, T), (T, T)) {
    let (lo, hi) = (eps, T::one() - eps);
    (
        (lo.ln(), hi.ln()),
        ((T::one() - hi).ln(), (T::one() - lo).ln()),
    )
}

fn check_same<T: Element>(op: &'static str, z: &Tensor<T>, t: &Tensor<T>) -> Result<()> {
    if z.shape() != t.shape() || z.ndim() == 0 {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: z.shape().to_vec(),
            rhs: t.shape().to_vec(),
        });
    }
    Ok(())
}

/// The mean over all elements of `-(t ln sigmoid(z) + (1 - t) ln(1 - sigmoid(z)))`:
/// binary cross-entropy from logits. Inputs `[z, t]`.
pub struct SigmoidCrossEntropyOp<T>(pub Option<T>);

impl<T: Element> SigmoidCrossEntropyOp<T> {
    /// Per element: `(ln p, ln(1 - p))` and whether each is inside the clip bounds.
    fn logs(&self, z: T) -> ((T, bool), (T, bool)) {
        (self.log_p(z), self.log_not_p(z))
    }

    /// `ln p` (clamped) and whether it is inside the clip bounds.
    fn log_p(&self, z: T) -> (T, bool) {
        let lp = -softplus_scalar(-z);
        match self.0 {
            None => (lp, true),
            Some(eps) => clamp_to(lp, log_bounds(eps).0),
        }
    }

    /// `ln(1 - p)` (clamped) and whether it is inside the clip bounds.
    fn log_not_p(&self, z: T) -> (T, bool) {
        let lnp = -softplus_scalar(z);
        match self.0 {
            None => (lnp, true),
            Some(eps) => clamp_to(lnp, log_bounds(eps).1),
        }
    }
}

/// `v` limited to `[lo, hi]`, and whether it was inside.
fn clamp_to<T: Element>(v: T, (lo, hi): (T, T)) -> (T, bool) {
    (v.max(lo).min(hi), v >= lo && v <= hi)
}

impl<T: Element> SigmoidCrossEntropyOp<T> {
    /// 1 where the clamped value `log(z)` is inside the bounds, 0 elsewhere.
    fn mask(log: impl Fn(T) -> (T, bool)) -> impl Fn(T) -> T {
        move |v| if log(v).1 { T::one() } else { T::zero() }
    }
}

impl<T: Element> Op<T> for SigmoidCrossEntropyOp<T> {
    fn name(&self) -> &'static str {
        "sigmoid_cross_entropy"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        check_same("sigmoid_cross_entropy", x[0], x[1])?;
        let z = x[0].to_contiguous();
        let t = x[1].to_contiguous();
        let (z, t) = (
            z.as_slice().expect("contiguous"),
            t.as_slice().expect("contiguous"),
        );
        let mut sum = T::zero();
        for (&z, &t) in z.iter().zip(t) {
            let ((lp, _), (lnp, _)) = self.logs(z);
            sum -= t * lp + (T::one() - t) * lnp;
        }
        Ok(Tensor::scalar(sum / T::from_usize(z.len()).expect("fits")))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let n = T::from_usize(tensor::numel(&x[0].shape())).expect("fits");
        let g = dy.div_scalar(n);
        dx.set_with(0, || {
            V::map_real(&SigmoidCeGradLogits(self), [x[0], x[1], &g])
        });
        dx.set_with(1, || V::map_real(&SigmoidCeGradTargets(self), [x[0], &g]));
    }
}

/// `d/dz` of one element of the sigmoid cross-entropy, times the output gradient `g`:
/// `s - t` unclipped; where a log-probability is clamped, its term has no gradient.
struct SigmoidCeGradLogits<'a, T>(&'a SigmoidCrossEntropyOp<T>);

impl<T: Element> RealFn<T, 3> for SigmoidCeGradLogits<'_, T> {
    #[inline(always)]
    fn eval<R: Real<T>>(&self, [z, t, g]: [R; 3]) -> R {
        let s = z.sigmoid();
        if self.0.0.is_none() {
            return g * (s - t);
        }
        let op = self.0;
        let in_p = z.piecewise(SigmoidCrossEntropyOp::mask(|v| op.log_p(v)));
        let in_np = z.piecewise(SigmoidCrossEntropyOp::mask(|v| op.log_not_p(v)));
        let one = z.cst(T::one());
        g * (in_np * (one - t) * s - in_p * t * (one - s))
    }
}

/// `d/dt` of one element of the sigmoid cross-entropy, times `g`: `-(ln p - ln(1 - p))`,
/// which is `-z` unclipped.
struct SigmoidCeGradTargets<'a, T>(&'a SigmoidCrossEntropyOp<T>);

impl<T: Element> RealFn<T, 2> for SigmoidCeGradTargets<'_, T> {
    #[inline(always)]
    fn eval<R: Real<T>>(&self, [z, g]: [R; 2]) -> R {
        if self.0.0.is_none() {
            return -(z * g);
        }
        let op = self.0;
        let lp = -(-z).softplus();
        let lnp = -z.softplus();
        // The clamped log-probabilities: the value itself inside the bounds, the bound (a
        // constant) outside.
        let in_p = z.piecewise(SigmoidCrossEntropyOp::mask(|v| op.log_p(v)));
        let in_np = z.piecewise(SigmoidCrossEntropyOp::mask(|v| op.log_not_p(v)));
        let lp = R::select(in_p, lp, z.piecewise(|v| op.log_p(v).0));
        let lnp = R::select(in_np, lnp, z.piecewise(|v| op.log_not_p(v).0));
        -((lp - lnp) * g)
    }
}

/// The mean over rows of `-sum(t * log_softmax(z))` along the last axis: categorical
/// cross-entropy from logits. Inputs `[z, t]`.
pub struct SoftmaxCrossEntropyOp<T>(pub Option<T>);

impl<T: Element> SoftmaxCrossEntropyOp<T> {
    fn bounds(&self) -> Option<(T, T)> {
        self.0.map(|eps| log_bounds(eps).0)
    }

    /// `(z, t, classes, rows)` with both operands contiguous.
    fn rows(x: &[&Tensor<T>]) -> (Tensor<T>, Tensor<T>, usize, usize) {
        let c = *x[0].shape().last().expect("at least 1-D");
        let rows = x[0].len() / c.max(1);
        (x[0].to_contiguous(), x[1].to_contiguous(), c, rows)
    }
}

impl<T: Element> Op<T> for SoftmaxCrossEntropyOp<T> {
    fn name(&self) -> &'static str {
        "softmax_cross_entropy"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        check_same("softmax_cross_entropy", x[0], x[1])?;
        let (z, t, c, rows) = Self::rows(x);
        let (z, t) = (
            z.as_slice().expect("contiguous"),
            t.as_slice().expect("contiguous"),
        );
        let bounds = self.bounds();
        let mut logs = vec![T::zero(); z.len()];
        let sum = if c > 0 {
            tensor::simd::dispatch(
                #[inline(always)]
                || {
                    log_softmax(z, c, &mut logs);
                    // A local accumulator: a captured `&mut` would be stored to memory and
                    // loaded back at every element.
                    let mut sum = T::zero();
                    for (&l, &t) in logs.iter().zip(t) {
                        let l = match bounds {
                            Some((lo, hi)) => l.max(lo).min(hi),
                            None => l,
                        };
                        sum -= t * l;
                    }
                    sum
                },
            )
        } else {
            T::zero()
        };
        Ok(Tensor::scalar(
            sum / T::from_usize(rows.max(1)).expect("fits"),
        ))
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        // The logits' gradient is an op of its own: a fused kernel on tensors, with its own
        // derivative (the second derivative of the loss) for the recorded sweep.
        dx.set_with(0, || V::apply(SoftmaxCeGradOp(self.0), [x[0], x[1], dy]));
        dx.set_with(1, || {
            let shape = x[0].shape();
            let rows = rows_of(&shape);
            let logs = V::apply(LogSoftmaxOp(-1), [x[0]]);
            V::map_real(&SoftmaxCeGradTargets(self.bounds(), rows), [&logs, dy])
        });
    }
}

/// The number of rows of logits of `shape` (classes along the last axis), as `T`.
fn rows_of<T: Element>(shape: &[usize]) -> T {
    let c = *shape.last().expect("at least 1-D");
    T::from_usize((tensor::numel(shape) / c.max(1)).max(1)).expect("fits")
}

/// The gradient of [`SoftmaxCrossEntropyOp`] with respect to its logits, as an op:
/// `(softmax(z) * w - t * m) * dy / rows`, where `m` is 1 where a log-probability is inside
/// the clip bounds (0 where clamped: no gradient there) and `w = sum(t * m)` along the row.
/// Inputs `[z, t, dy]`. Its forward is the fused kernel of the fast sweep; its backward, the
/// loss's second derivative, is what the recorded sweep differentiates.
pub struct SoftmaxCeGradOp<T>(pub Option<T>);

impl<T: Element> Op<T> for SoftmaxCeGradOp<T> {
    fn name(&self) -> &'static str {
        "softmax_cross_entropy_grad"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        check_same("softmax_cross_entropy_grad", x[0], x[1])?;
        let (z, t, c, rows) = SoftmaxCrossEntropyOp::<T>::rows(x);
        let scale = x[2].try_item()? / T::from_usize(rows.max(1)).expect("fits");
        let (z, t) = (
            z.as_slice().expect("contiguous"),
            t.as_slice().expect("contiguous"),
        );
        let bounds = SoftmaxCrossEntropyOp(self.0).bounds();
        let inside = |l: T| bounds.is_none_or(|(lo, hi)| l >= lo && l <= hi);
        let mut logs = vec![T::zero(); z.len()];
        let mut dz = vec![T::zero(); z.len()];
        if c > 0 {
            tensor::simd::dispatch(
                #[inline(always)]
                || {
                    log_softmax(z, c, &mut logs);
                    // The probabilities, in one pass over the whole buffer.
                    for (d, &l) in dz.iter_mut().zip(&logs) {
                        *d = l.fast_exp();
                    }
                    for ((d, l), t) in dz
                        .chunks_exact_mut(c)
                        .zip(logs.chunks_exact(c))
                        .zip(t.chunks_exact(c))
                    {
                        let weight = t
                            .iter()
                            .zip(l)
                            .fold(T::zero(), |s, (&t, &l)| if inside(l) { s + t } else { s });
                        for ((d, &l), &t) in d.iter_mut().zip(l).zip(t) {
                            let own = if inside(l) { t } else { T::zero() };
                            *d = (*d * weight - own) * scale;
                        }
                    }
                },
            );
        }
        Tensor::from_vec(dz, x[0].shape())
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, u: &V, dx: &mut InputGrads<'_, V>) {
        let (z, t, dy) = (x[0], x[1], x[2]);
        let rows: T = rows_of(&z.shape());
        let logs = V::apply(LogSoftmaxOp(-1), [z]);
        let s = V::apply(Unary(Exp), [&logs]);
        // The clip mask is piecewise constant.
        let mask = SoftmaxCrossEntropyOp(self.0).bounds().map(|(lo, hi)| {
            logs.value().map(|l| {
                if l >= lo && l <= hi {
                    T::one()
                } else {
                    T::zero()
                }
            })
        });
        let masked = |v: V| match &mask {
            Some(m) => v.mul_const(m),
            None => v,
        };
        let tm = masked(t.clone());
        let w = tm.sum(-1, true);
        let c = dy.div_scalar(rows);
        // G = (s w - t m) c. Through s (the softmax's vector-Jacobian product of a = u w c):
        dx.set_with(0, || {
            let a = u.mul(&w).mul(&c);
            s.mul(&a.sub(&a.mul(&s).sum(-1, true)))
        });
        // Through w and t m: c m (sum(u s) - u).
        dx.set_with(1, || masked(u.mul(&s).sum(-1, true).sub(u).mul(&c)));
        // Through c = dy / rows: sum(u (s w - t m)) / rows.
        dx.set_with(2, || {
            let g = u.mul(&s.mul(&w).sub(&tm));
            V::apply(SumAllOp, [&g])
                .div_scalar(rows)
                .reshape(&dy.shape())
        });
    }
}

/// `-clamp(ls) * dy / rows`: the gradient with respect to the targets.
struct SoftmaxCeGradTargets<T>(Option<(T, T)>, T);

impl<T: Element> RealFn<T, 2> for SoftmaxCeGradTargets<T> {
    #[inline(always)]
    fn eval<R: Real<T>>(&self, [logs, dy]: [R; 2]) -> R {
        let logs = match self.0 {
            None => logs,
            Some((lo, hi)) => {
                let inside = logs.piecewise(|l| {
                    if l >= lo && l <= hi {
                        T::one()
                    } else {
                        T::zero()
                    }
                });
                R::select(inside, logs, logs.piecewise(|l| l.max(lo).min(hi)))
            }
        };
        -(logs * (dy / self.1))
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Binary cross-entropy of `sigmoid(self)` against `targets`, averaged over all
    /// elements; `clip: Some(eps)` clamps the log-probabilities as Keras's clipping of
    /// probabilities to `[eps, 1 - eps]` does.
    ///
    /// # Panics
    /// If the shapes differ; see [`try_sigmoid_cross_entropy`](Var::try_sigmoid_cross_entropy).
    #[track_caller]
    pub fn sigmoid_cross_entropy(self, targets: Var<'t, T>, clip: Option<T>) -> Var<'t, T> {
        unwrap_op(self.try_sigmoid_cross_entropy(targets, clip))
    }

    /// [`sigmoid_cross_entropy`](Var::sigmoid_cross_entropy) that returns an error.
    pub fn try_sigmoid_cross_entropy(
        self,
        targets: Var<'t, T>,
        clip: Option<T>,
    ) -> Result<Var<'t, T>> {
        self.tape
            .apply(SigmoidCrossEntropyOp(clip), [self, targets])
    }

    /// Categorical cross-entropy of `softmax(self)` (over the last axis) against `targets`,
    /// averaged over rows; `clip` as in [`sigmoid_cross_entropy`](Var::sigmoid_cross_entropy).
    ///
    /// # Panics
    /// If the shapes differ; see [`try_softmax_cross_entropy`](Var::try_softmax_cross_entropy).
    #[track_caller]
    pub fn softmax_cross_entropy(self, targets: Var<'t, T>, clip: Option<T>) -> Var<'t, T> {
        unwrap_op(self.try_softmax_cross_entropy(targets, clip))
    }

    /// [`softmax_cross_entropy`](Var::softmax_cross_entropy) that returns an error.
    pub fn try_softmax_cross_entropy(
        self,
        targets: Var<'t, T>,
        clip: Option<T>,
    ) -> Result<Var<'t, T>> {
        self.tape
            .apply(SoftmaxCrossEntropyOp(clip), [self, targets])
    }
}

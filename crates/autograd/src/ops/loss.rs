//! Cross-entropy fused with the sigmoid or softmax before it: from logits `z` and targets
//! `t`, in one op, stable for any logits. With `clip`, the log-probabilities are clamped to
//! the bounds that Keras's probability clipping `[eps, 1 - eps]` implies (and get no gradient
//! where clamped), which reproduces Keras's numbers on probability outputs.

use tensor::ops::reduce::rows::log_softmax;
use tensor::{Element, Result, Tensor, TensorError, softplus_scalar};

use crate::op::{InputGrads, Op};
use crate::ops::unwrap_op;
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
        let lp = -softplus_scalar(-z);
        let lnp = -softplus_scalar(z);
        match self.0 {
            None => ((lp, true), (lnp, true)),
            Some(eps) => {
                let ((a, b), (c, d)) = log_bounds(eps);
                let clamp = |v: T, lo: T, hi: T| (v.max(lo).min(hi), v >= lo && v <= hi);
                (clamp(lp, a, b), clamp(lnp, c, d))
            }
        }
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
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let scale = dy.item() / T::from_usize(x[0].len()).expect("fits");
        dx.set_with(0, || {
            x[0].try_zip_map(x[1], "sigmoid_cross_entropy_backward", |z, t| {
                let ((_, in_p), (_, in_np)) = self.logs(z);
                let s = tensor::sigmoid_scalar(z);
                let mut g = T::zero();
                if in_p {
                    g -= t * (T::one() - s);
                }
                if in_np {
                    g += (T::one() - t) * s;
                }
                g * scale
            })
            .expect("same shape")
        });
        dx.set_with(1, || {
            x[0].map(|z| {
                let ((lp, _), (lnp, _)) = self.logs(z);
                -(lp - lnp) * scale
            })
        });
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
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let (z, t, c, rows) = Self::rows(x);
        let scale = dy.item() / T::from_usize(rows.max(1)).expect("fits");
        let (z, t) = (
            z.as_slice().expect("contiguous"),
            t.as_slice().expect("contiguous"),
        );
        let bounds = self.bounds();
        // Where a log-probability is clamped, it gets no gradient.
        let inside = |l: T| bounds.is_none_or(|(lo, hi)| l >= lo && l <= hi);
        let mut logs = vec![T::zero(); z.len()];
        let mut dz = vec![T::zero(); z.len()];
        let mut dt = vec![T::zero(); if dx.wants(1) { z.len() } else { 0 }];
        if c > 0 {
            tensor::simd::dispatch(
                #[inline(always)]
                || {
                    log_softmax(z, c, &mut logs);
                    // The probabilities, in one pass over the whole buffer.
                    for (d, &l) in dz.iter_mut().zip(&logs) {
                        *d = l.fast_exp();
                    }
                    // d/dz_k of -sum_j t_j m_j ls_j = -t_k m_k + softmax_k * sum_j t_j m_j, where
                    // m_j is 1 where ls_j is inside the clip bounds.
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
                    if !dt.is_empty() {
                        for (d, &l) in dt.iter_mut().zip(&logs) {
                            let l = match bounds {
                                Some((lo, hi)) => l.max(lo).min(hi),
                                None => l,
                            };
                            *d = -l * scale;
                        }
                    }
                },
            );
        }
        dx.set(0, Tensor::from_vec(dz, x[0].shape()).expect("same size"));
        if !dt.is_empty() {
            dx.set(1, Tensor::from_vec(dt, x[0].shape()).expect("same size"));
        }
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

//! Reductions along an axis (with `keepdims`) or over all elements, arg-reductions, and the
//! numerically stable `softmax`, `log_softmax` and `logsumexp` (they subtract the maximum
//! first, so logits of +-1e4 give exact, finite results).

use ndarray::{ArrayD, ArrayViewMut1, Axis};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::shape::normalize_axis;
use crate::tensor::Tensor;

fn lane_max<T: Element>(lane: &ArrayViewMut1<'_, T>) -> T {
    lane.fold(T::neg_infinity(), |m, &x| if x > m { x } else { m })
}

/// The softmax family over the rows of a row-major matrix (`c` values per row), shared by
/// the tensor functions and the fused cross-entropy of `autograd`. The exponentials run as
/// one pass over the whole buffer, not row by row: rows are often shorter than a vector (10
/// classes against 16 lanes). Plain loops over [`Element::fast_exp`]: run them inside
/// [`crate::simd::dispatch`] to vectorize them.
pub mod rows {
    use crate::element::Element;

    /// Values folded side by side by [`fold_lanes`]: a 512-bit vector of `f32`.
    const LANES: usize = 16;

    /// `f` folded over `row` from `init`, in `LANES` running accumulators (element `i` goes
    /// to accumulator `i % LANES`), which are then folded in order. One accumulator would be
    /// a chain of dependent operations, as long as the row (a 512-wide softmax spent most
    /// of its time there); a row shorter than `LANES` is one plain fold.
    #[inline(always)]
    fn fold_lanes<T: Element>(row: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
        let mut acc = [init; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a = f(*a, v);
            }
        }
        let tail = chunks.remainder().iter().fold(init, |a, &v| f(a, v));
        if row.len() < LANES {
            return tail;
        }
        acc.iter().fold(tail, |a, &v| f(a, v))
    }

    /// The row's maximum, ignoring NaN (a NaN never compares greater); `-inf` for none.
    /// Exact in any order, so the lanes change nothing.
    #[inline(always)]
    fn max<T: Element>(row: &[T]) -> T {
        fold_lanes(row, T::neg_infinity(), |m, x| if x > m { x } else { m })
    }

    /// The row's sum, in `LANES` partial sums for a row of at least `LANES` values.
    #[inline(always)]
    fn sum<T: Element>(row: &[T]) -> T {
        fold_lanes(row, T::zero(), |s, x| s + x)
    }

    /// What a row is shifted by before `exp`: its maximum, or 0 if that is not finite (a
    /// row holding +-inf or NaN then gives inf or NaN, not `inf - inf`).
    #[inline(always)]
    pub fn shift<T: Element>(row: &[T]) -> T {
        let m = max(row);
        if m.is_finite() { m } else { T::zero() }
    }

    /// `out = exp(x - shift(row))` for every row, calling `each_row(row_index, shift)` as it
    /// goes.
    #[inline(always)]
    fn shifted_exp<T: Element>(
        x: &[T],
        c: usize,
        out: &mut [T],
        mut each_row: impl FnMut(usize, T),
    ) {
        for (r, (row, o)) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)).enumerate() {
            let m = shift(row);
            each_row(r, m);
            for (o, &v) in o.iter_mut().zip(row) {
                *o = v - m;
            }
        }
        // The costly part, over the whole buffer so that it fills the vectors.
        for o in out.iter_mut() {
            *o = o.fast_exp();
        }
    }

    /// `out = x - logsumexp(row)` for every row of `c` values (`c > 0`).
    #[inline(always)]
    pub fn log_softmax<T: Element>(x: &[T], c: usize, out: &mut [T]) {
        let mut shifts = Vec::with_capacity(x.len() / c);
        shifted_exp(x, c, out, |_, m| shifts.push(m));
        for ((row, o), &m) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)).zip(&shifts) {
            let lse = m + sum(o).ln();
            for (o, &v) in o.iter_mut().zip(row) {
                *o = v - lse;
            }
        }
    }

    /// `out = exp(x - max) / sum(exp(x - max))` for every row of `c` values (`c > 0`).
    #[inline(always)]
    pub fn softmax<T: Element>(x: &[T], c: usize, out: &mut [T]) {
        shifted_exp(x, c, out, |_, _| {});
        for o in out.chunks_exact_mut(c) {
            let total = sum(o);
            for o in o.iter_mut() {
                *o /= total;
            }
        }
    }
}

/// Applies `f(x, c, out)` to the rows of the last axis of `x` (as a contiguous copy; `c`
/// values per row), writing a tensor of `x`'s shape, inside [`crate::simd::dispatch`] (pass
/// an `#[inline(always)]` closure, not a function item, so that it is inlined there).
fn map_last_axis<T: Element>(x: &Tensor<T>, f: impl Fn(&[T], usize, &mut [T])) -> Tensor<T> {
    let input = x.to_contiguous();
    let src = input.as_slice().expect("contiguous");
    let c = *x.shape().last().expect("at least 1-D");
    let mut out = vec![T::zero(); src.len()];
    if c > 0 {
        crate::simd::dispatch(
            #[inline(always)]
            || f(src, c, &mut out),
        );
    }
    Tensor::from_vec(out, x.shape()).expect("same length")
}

impl<T: Element> Tensor<T> {
    fn reduce_axis(
        &self,
        op: &'static str,
        axis: isize,
        keepdims: bool,
        empty_ok: bool,
        f: impl Fn(ndarray::ArrayView1<'_, T>) -> T,
    ) -> Result<Tensor<T>> {
        let ax = normalize_axis(op, axis, self.ndim())?;
        if !empty_ok && self.shape()[ax] == 0 {
            return Err(TensorError::invalid(
                op,
                format!(
                    "cannot reduce axis {ax} of length 0 (shape {:?})",
                    self.shape()
                ),
            ));
        }
        let mut out: ArrayD<T> = self.data.map_axis(Axis(ax), f);
        if keepdims {
            out = out.insert_axis(Axis(ax));
        }
        Ok(Tensor::from_array(out))
    }

    /// Sums along `axis` (negative counts from the end); `keepdims` keeps it with length 1.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(x.sum(1, false).to_vec(), vec![6.0, 15.0]);
    /// assert_eq!(x.sum(0, true).shape(), &[1, 3]);
    /// ```
    ///
    /// # Panics
    /// On a bad axis; see [`try_sum`](Self::try_sum).
    pub fn sum(&self, axis: isize, keepdims: bool) -> Tensor<T> {
        self.try_sum(axis, keepdims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`sum`](Self::sum) that returns an error for a bad axis.
    pub fn try_sum(&self, axis: isize, keepdims: bool) -> Result<Tensor<T>> {
        let ax = normalize_axis("sum", axis, self.ndim())?;
        if ax == 0
            && let Some(x) = self.as_slice()
        {
            // The leading axis of a contiguous tensor (a bias gradient): rows added into one
            // accumulator row, element by element in row order, vectorized along the row.
            let row = self.shape()[1..].iter().product::<usize>();
            let mut acc = vec![T::zero(); row];
            if row > 0 {
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        for r in x.chunks_exact(row) {
                            for (a, &v) in acc.iter_mut().zip(r) {
                                *a += v;
                            }
                        }
                    },
                );
            }
            let rest = &self.shape()[1..];
            return Ok(if keepdims {
                let shape: Vec<usize> = std::iter::once(1).chain(rest.iter().copied()).collect();
                Tensor::from_vec(acc, &shape)
            } else {
                Tensor::from_vec(acc, rest)
            }
            .expect("one row"));
        }
        let mut out = self.data.sum_axis(Axis(ax));
        if keepdims {
            out = out.insert_axis(Axis(ax));
        }
        Ok(Tensor::from_array(out))
    }

    /// The mean along `axis` (NaN for an axis of length 0).
    ///
    /// # Panics
    /// On a bad axis; see [`try_mean`](Self::try_mean).
    pub fn mean(&self, axis: isize, keepdims: bool) -> Tensor<T> {
        self.try_mean(axis, keepdims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`mean`](Self::mean) that returns an error for a bad axis.
    pub fn try_mean(&self, axis: isize, keepdims: bool) -> Result<Tensor<T>> {
        let ax = normalize_axis("mean", axis, self.ndim())?;
        let n = T::from_usize(self.shape()[ax]).expect("length fits the float type");
        let mut s = self.try_sum(axis, keepdims)?;
        s /= n;
        Ok(s)
    }

    /// The largest element along `axis`.
    ///
    /// # Panics
    /// On a bad axis or an axis of length 0; see [`try_max`](Self::try_max).
    pub fn max(&self, axis: isize, keepdims: bool) -> Tensor<T> {
        self.try_max(axis, keepdims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`max`](Self::max) that returns an error instead of panicking.
    pub fn try_max(&self, axis: isize, keepdims: bool) -> Result<Tensor<T>> {
        self.reduce_axis("max", axis, keepdims, false, |l| {
            l.fold(
                T::neg_infinity(),
                |m, &x| if x > m || x.is_nan() { x } else { m },
            )
        })
    }

    /// The smallest element along `axis`.
    ///
    /// # Panics
    /// On a bad axis or an axis of length 0; see [`try_min`](Self::try_min).
    pub fn min(&self, axis: isize, keepdims: bool) -> Tensor<T> {
        self.try_min(axis, keepdims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`min`](Self::min) that returns an error instead of panicking.
    pub fn try_min(&self, axis: isize, keepdims: bool) -> Result<Tensor<T>> {
        self.reduce_axis("min", axis, keepdims, false, |l| {
            l.fold(
                T::infinity(),
                |m, &x| if x < m || x.is_nan() { x } else { m },
            )
        })
    }

    /// The sum of all elements.
    pub fn sum_all(&self) -> T {
        self.data.sum()
    }

    /// The mean of all elements (NaN for an empty tensor).
    pub fn mean_all(&self) -> T {
        self.sum_all() / T::from_usize(self.len()).expect("length fits the float type")
    }

    /// The largest element (NaN if any is NaN), or `None` for an empty tensor.
    pub fn max_all(&self) -> Option<T> {
        self.data
            .iter()
            .copied()
            .reduce(|m, x| if x > m || x.is_nan() { x } else { m })
    }

    /// The smallest element (NaN if any is NaN), or `None` for an empty tensor.
    pub fn min_all(&self) -> Option<T> {
        self.data
            .iter()
            .copied()
            .reduce(|m, x| if x < m || x.is_nan() { x } else { m })
    }

    /// The index of the largest element along `axis` (the first one on ties), for each
    /// position of the other axes in row-major order: for a `[batch, classes]` tensor and
    /// axis `-1`, the predicted class of each row.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let p = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.5, 0.4, 0.1], &[2, 3]).unwrap();
    /// assert_eq!(p.argmax(-1), vec![1, 0]);
    /// ```
    ///
    /// # Panics
    /// On a bad axis or an axis of length 0; see [`try_argmax`](Self::try_argmax).
    pub fn argmax(&self, axis: isize) -> Vec<usize> {
        self.try_argmax(axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`argmax`](Self::argmax) that returns an error instead of panicking.
    pub fn try_argmax(&self, axis: isize) -> Result<Vec<usize>> {
        self.arg_reduce("argmax", axis, |x, best| x > best)
    }

    /// The index of the smallest element along `axis` (the first one on ties).
    ///
    /// # Panics
    /// On a bad axis or an axis of length 0; see [`try_argmin`](Self::try_argmin).
    pub fn argmin(&self, axis: isize) -> Vec<usize> {
        self.try_argmin(axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`argmin`](Self::argmin) that returns an error instead of panicking.
    pub fn try_argmin(&self, axis: isize) -> Result<Vec<usize>> {
        self.arg_reduce("argmin", axis, |x, best| x < best)
    }

    fn arg_reduce(
        &self,
        op: &'static str,
        axis: isize,
        better: impl Fn(T, T) -> bool,
    ) -> Result<Vec<usize>> {
        let ax = normalize_axis(op, axis, self.ndim())?;
        if self.shape()[ax] == 0 {
            return Err(TensorError::invalid(
                op,
                format!("cannot reduce axis {ax} of length 0"),
            ));
        }
        let idx = self.data.map_axis(Axis(ax), |lane| {
            let mut best = 0;
            for (i, &x) in lane.iter().enumerate() {
                if better(x, lane[best]) {
                    best = i;
                }
            }
            best
        });
        Ok(idx.iter().copied().collect())
    }

    /// `exp(x) / sum(exp(x))` along `axis`, computed as `exp(x - max) / sum(exp(x - max))`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let z = Tensor::from_vec(vec![1e4f32, 0.0, -1e4], &[1, 3]).unwrap();
    /// assert_eq!(z.softmax(-1).to_vec(), vec![1.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// On a bad axis; see [`try_softmax`](Self::try_softmax).
    pub fn softmax(&self, axis: isize) -> Tensor<T> {
        self.try_softmax(axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`softmax`](Self::softmax) that returns an error for a bad axis.
    pub fn try_softmax(&self, axis: isize) -> Result<Tensor<T>> {
        let ax = normalize_axis("softmax", axis, self.ndim())?;
        if ax + 1 == self.ndim() {
            return Ok(map_last_axis(
                self,
                #[inline(always)]
                |x, c, out| rows::softmax(x, c, out),
            ));
        }
        let mut out = self.data.as_standard_layout().into_owned();
        for mut lane in out.lanes_mut(Axis(ax)) {
            let m = lane_max(&lane);
            let m = if m.is_finite() { m } else { T::zero() };
            lane.mapv_inplace(|x| (x - m).fast_exp());
            let s = lane.sum();
            lane.mapv_inplace(|x| x / s);
        }
        Ok(Tensor::from_array(out))
    }

    /// `x - logsumexp(x)` along `axis`: the logarithm of [`softmax`](Self::softmax), without
    /// the underflow of taking `ln` of a tiny probability.
    ///
    /// # Panics
    /// On a bad axis; see [`try_log_softmax`](Self::try_log_softmax).
    pub fn log_softmax(&self, axis: isize) -> Tensor<T> {
        self.try_log_softmax(axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`log_softmax`](Self::log_softmax) that returns an error for a bad axis.
    pub fn try_log_softmax(&self, axis: isize) -> Result<Tensor<T>> {
        let ax = normalize_axis("log_softmax", axis, self.ndim())?;
        if ax + 1 == self.ndim() {
            return Ok(map_last_axis(
                self,
                #[inline(always)]
                |x, c, out| rows::log_softmax(x, c, out),
            ));
        }
        let mut out = self.data.as_standard_layout().into_owned();
        for mut lane in out.lanes_mut(Axis(ax)) {
            let m = lane_max(&lane);
            let m = if m.is_finite() { m } else { T::zero() };
            let lse = m + lane.fold(T::zero(), |s, &x| s + (x - m).fast_exp()).ln();
            lane.mapv_inplace(|x| x - lse);
        }
        Ok(Tensor::from_array(out))
    }

    /// `ln(sum(exp(x)))` along `axis`, computed as `max + ln(sum(exp(x - max)))`.
    ///
    /// # Panics
    /// On a bad axis; see [`try_logsumexp`](Self::try_logsumexp).
    pub fn logsumexp(&self, axis: isize, keepdims: bool) -> Tensor<T> {
        self.try_logsumexp(axis, keepdims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`logsumexp`](Self::logsumexp) that returns an error for a bad axis.
    pub fn try_logsumexp(&self, axis: isize, keepdims: bool) -> Result<Tensor<T>> {
        self.reduce_axis("logsumexp", axis, keepdims, true, |l| {
            let m = l.fold(T::neg_infinity(), |m, &x| if x > m { x } else { m });
            let shift = if m.is_finite() { m } else { T::zero() };
            shift + l.fold(T::zero(), |s, &x| s + (x - shift).fast_exp()).ln()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    #[test]
    fn axis_reductions_with_and_without_keepdims() {
        let x = t(&[1., 5., 3., 4., 2., 6.], &[2, 3]);
        assert_eq!(x.sum(0, false).to_vec(), vec![5., 7., 9.]);
        assert_eq!(x.mean(-1, true).shape(), &[2, 1]);
        assert_eq!(x.mean(-1, true).to_vec(), vec![3., 4.]);
        assert_eq!(x.max(1, false).to_vec(), vec![5., 6.]);
        assert_eq!(x.min(0, false).to_vec(), vec![1., 2., 3.]);
        assert_eq!(x.argmax(1), vec![1, 2]);
        assert_eq!(x.argmin(0), vec![0, 1, 0]);
        assert_eq!(x.sum_all(), 21.);
        assert_eq!(x.mean_all(), 3.5);
        assert_eq!(x.max_all(), Some(6.));
        assert_eq!(x.min_all(), Some(1.));
        assert_eq!(Tensor::<f64>::zeros(&[0]).max_all(), None);
        assert!(Tensor::<f64>::zeros(&[2, 0]).try_max(1, false).is_err());
        assert_eq!(
            x.try_sum(2, false).unwrap_err().to_string(),
            "sum: axis 2 is out of range for a 2-D tensor (valid: -2..2)"
        );
    }

    #[test]
    fn sums_over_the_leading_axis_match_the_general_path() {
        let x = t(
            &(0..24).map(|v| v as f64 * 0.5 - 3.0).collect::<Vec<_>>(),
            &[2, 3, 4],
        );
        // The general path (ndarray's) through a non-contiguous view of the same values.
        let strided = x.permute(&[2, 1, 0]).to_contiguous().permute(&[2, 1, 0]);
        assert!(strided.as_slice().is_none() && strided == x);
        for keepdims in [false, true] {
            let fast = x.sum(0, keepdims);
            assert_eq!(
                fast,
                Tensor::from_array(x.data.sum_axis(Axis(0))).reshape(fast.shape())
            );
            assert_eq!(fast, strided.sum(0, keepdims));
        }
        assert_eq!(x.sum(0, true).shape(), &[1, 3, 4]);
        let v = t(&[1., 2., 3.], &[3]);
        assert_eq!(v.sum(0, false).shape(), &[] as &[usize]);
        assert_eq!(v.sum(0, false).item(), 6.0);
        assert_eq!(
            Tensor::<f64>::zeros(&[0, 5]).sum(0, false).to_vec(),
            vec![0.0; 5]
        );
        assert_eq!(Tensor::<f64>::zeros(&[3, 0]).sum(0, false).shape(), &[0]);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(t(&[1., 3., 3.], &[3]).argmax(0), vec![1]);
    }

    #[test]
    fn softmax_family_is_stable_for_huge_logits() {
        let z = t(&[1e4, 0., -1e4, -1e4, -1e4 + 1.0, -1e4], &[2, 3]);
        let p = z.softmax(-1);
        assert!(p.all_finite());
        assert_eq!(p.to_vec()[..3], [1., 0., 0.]);
        let e = std::f64::consts::E;
        assert!((p.to_vec()[4] - e / (e + 2.0)).abs() < 1e-15);
        let lp = z.log_softmax(1);
        assert!(lp.all_finite());
        assert_eq!(lp.to_vec()[0], 0.0);
        assert_eq!(lp.to_vec()[2], -2e4);
        let lse = z.logsumexp(1, false);
        assert_eq!(lse.to_vec()[0], 1e4);
        assert!((lse.to_vec()[1] - (-1e4 + 1.0 + (1.0 + 2.0 / e).ln())).abs() < 1e-9);
    }

    #[test]
    fn softmax_along_a_leading_axis_and_on_a_view() {
        let z = t(&[0., 1., 2., 3.], &[2, 2]);
        let p = z.softmax(0);
        let q = z.transpose().softmax(1).transpose();
        assert!(p.allclose(&q, 1e-15, 0.0));
        let s = p.sum(0, false);
        assert!(s.allclose(&Tensor::ones(&[2]), 1e-15, 0.0));
    }

    #[test]
    fn long_rows_fold_in_lanes_and_match_the_definition() {
        // Rows of 37 (two lanes' worth and a tail) and of 5 (a plain fold), with the row's
        // maximum in the tail, in a lane and first; then rows holding NaN and +inf.
        for c in [37usize, 5] {
            let rows = 4;
            let mut v: Vec<f64> = (0..rows * c)
                .map(|i| ((i * 29 % 23) as f64) * 0.7 - 8.0)
                .collect();
            v[c - 1] = 40.0;
            v[c + 3] = 45.0;
            v[2 * c] = 50.0;
            let z = t(&v, &[rows, c]);
            let (p, lp) = (z.softmax(-1).to_vec(), z.log_softmax(-1).to_vec());
            for (r, row) in v.chunks(c).enumerate() {
                let m = row.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = row.iter().map(|x| (x - m).exp()).sum();
                for (j, x) in row.iter().enumerate() {
                    let want = (x - m).exp() / total;
                    assert!((p[r * c + j] - want).abs() <= 1e-15, "{c}: p[{r}][{j}]");
                    let want = x - m - total.ln();
                    assert!((lp[r * c + j] - want).abs() <= 1e-13, "{c}: lp[{r}][{j}]");
                }
            }
        }
        let mut v = vec![0.0f64; 2 * 20];
        v[17] = f64::NAN;
        v[20 + 3] = f64::INFINITY;
        let p = t(&v, &[2, 20]).softmax(-1).to_vec();
        assert!(
            p[..20].iter().all(|x| x.is_nan()),
            "a NaN spreads over its row"
        );
        // Shifted by 0, not by inf - inf: inf / inf at the +inf, 1 / inf elsewhere.
        assert!(p[23].is_nan());
        assert!(p[20..].iter().enumerate().all(|(j, &x)| j == 3 || x == 0.0));
    }

    #[test]
    fn f32_softmax_sums_to_one() {
        let z = Tensor::<f32>::from_vec(vec![3.0, -2.0, 0.5, 7.0], &[4]).unwrap();
        assert!((z.softmax(0).sum_all() - 1.0).abs() < 1e-6);
    }
}

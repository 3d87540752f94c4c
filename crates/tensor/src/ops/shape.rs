//! Operations that move elements without arithmetic: transpose, permute, reshape, broadcast,
//! concatenation and stacking, slicing, gathering rows by index, and one-hot encoding.
//!
//! `transpose`, `permute` and `slice_axis` return views that share storage (no copy);
//! `reshape` copies only when the input is not contiguous.

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::shape::{broadcast_shapes, normalize_axis, numel};
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Swaps the last two axes (the matrix transpose, batched for 3-D and up). A view: no copy.
    ///
    /// # Panics
    /// On a tensor of fewer than 2 dimensions; see [`try_transpose`](Self::try_transpose).
    pub fn transpose(&self) -> Tensor<T> {
        self.try_transpose().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`transpose`](Self::transpose) that returns an error for tensors below 2-D.
    pub fn try_transpose(&self) -> Result<Tensor<T>> {
        let n = self.ndim();
        if n < 2 {
            return Err(TensorError::RankMismatch {
                op: "transpose",
                expected: "at least 2 dimensions".into(),
                shape: self.shape().to_vec(),
            });
        }
        if n == 2 {
            // The common case, without building a permutation.
            return Ok(Tensor {
                data: self.data.clone().reversed_axes(),
            });
        }
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(n - 2, n - 1);
        self.try_permute(&axes)
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`. A view: no copy.
    ///
    /// # Panics
    /// If `axes` is not a permutation of `0..ndim`; see [`try_permute`](Self::try_permute).
    pub fn permute(&self, axes: &[usize]) -> Tensor<T> {
        self.try_permute(axes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`permute`](Self::permute) that returns an error for an invalid permutation.
    pub fn try_permute(&self, axes: &[usize]) -> Result<Tensor<T>> {
        let n = self.ndim();
        let mut seen = vec![false; n];
        let valid = axes.len() == n
            && axes
                .iter()
                .all(|&a| a < n && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(TensorError::invalid(
                "permute",
                format!(
                    "axes {axes:?} are not a permutation of 0..{n} for shape {:?}",
                    self.shape()
                ),
            ));
        }
        Ok(Tensor {
            data: self.data.clone().permuted_axes(IxDyn(axes)),
        })
    }

    /// The same elements (in row-major order) in another shape with as many elements.
    ///
    /// # Panics
    /// If the element counts differ; see [`try_reshape`](Self::try_reshape).
    pub fn reshape(&self, shape: &[usize]) -> Tensor<T> {
        self.try_reshape(shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`reshape`](Self::reshape) that returns an error when the element counts differ.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if numel(shape) != self.len() {
            return Err(TensorError::invalid(
                "reshape",
                format!(
                    "cannot reshape {:?} ({} elements) into {:?} ({} elements)",
                    self.shape(),
                    self.len(),
                    shape,
                    numel(shape)
                ),
            ));
        }
        let data = self.to_contiguous().data;
        Ok(Tensor {
            data: data
                .into_shape_with_order(IxDyn(shape))
                .expect("contiguous and same count"),
        })
    }

    /// Repeats the tensor along dimensions of size 1 (and new leading dimensions) to reach
    /// `shape`, following NumPy's broadcasting rules. The result owns its elements.
    ///
    /// # Panics
    /// If the tensor does not broadcast to `shape`; see [`try_broadcast_to`](Self::try_broadcast_to).
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
        self.try_broadcast_to(shape)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`broadcast_to`](Self::broadcast_to) that returns an error if the shapes do not fit.
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let view = self
            .data
            .broadcast(IxDyn(shape))
            .ok_or_else(|| TensorError::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            })?;
        Ok(Tensor::from_array(view.to_owned()))
    }

    /// Sums over the dimensions that broadcasting added or stretched, so that a tensor of
    /// a broadcast shape comes back to `shape` (the gradient of [`broadcast_to`](Self::broadcast_to)).
    ///
    /// # Panics
    /// If `shape` does not broadcast to this tensor's shape; see [`try_sum_to`](Self::try_sum_to).
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        self.try_sum_to(shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`sum_to`](Self::sum_to) that returns an error if `shape` does not broadcast to this shape.
    pub fn try_sum_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let own = self.shape();
        if broadcast_shapes("sum_to", shape, own)? != own {
            return Err(TensorError::ShapeMismatch {
                op: "sum_to",
                lhs: own.to_vec(),
                rhs: shape.to_vec(),
            });
        }
        let lead = own.len() - shape.len();
        let mut acc: ArrayD<T> = self.data.to_owned();
        for _ in 0..lead {
            acc = acc.sum_axis(Axis(0));
        }
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 && acc.shape()[i] != 1 {
                acc = acc.sum_axis(Axis(i)).insert_axis(Axis(i));
            }
        }
        Ok(Tensor::from_array(acc))
    }

    /// Joins tensors along an existing axis; all other dimensions must agree.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let a = Tensor::<f32>::ones(&[2, 3]);
    /// let b = Tensor::<f32>::zeros(&[1, 3]);
    /// assert_eq!(Tensor::concat(&[&a, &b], 0).shape(), &[3, 3]);
    /// ```
    ///
    /// # Panics
    /// On an empty list, a bad axis or shapes that differ off the axis; see [`try_concat`](Self::try_concat).
    pub fn concat(tensors: &[&Tensor<T>], axis: isize) -> Tensor<T> {
        Self::try_concat(tensors, axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`concat`](Self::concat) that returns an error instead of panicking.
    pub fn try_concat(tensors: &[&Tensor<T>], axis: isize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("concat", "needs at least one tensor, got none"))?;
        let ax = normalize_axis("concat", axis, first.ndim())?;
        for t in &tensors[1..] {
            let same_rank = t.ndim() == first.ndim();
            let fits = same_rank
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == ax || a == b);
            if !fits {
                return Err(TensorError::invalid(
                    "concat",
                    format!(
                        "shapes {:?} and {:?} differ off axis {ax}",
                        first.shape(),
                        t.shape()
                    ),
                ));
            }
        }
        let views: Vec<ArrayViewD<'_, T>> = tensors.iter().map(|t| t.data.view()).collect();
        let out = ndarray::concatenate(Axis(ax), &views).expect("shapes checked");
        Ok(Tensor::from_array(out))
    }

    /// Joins tensors of one shape along a new axis.
    ///
    /// # Panics
    /// On an empty list, a bad axis or unequal shapes; see [`try_stack`](Self::try_stack).
    pub fn stack(tensors: &[&Tensor<T>], axis: isize) -> Tensor<T> {
        Self::try_stack(tensors, axis).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`stack`](Self::stack) that returns an error instead of panicking.
    pub fn try_stack(tensors: &[&Tensor<T>], axis: isize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("stack", "needs at least one tensor, got none"))?;
        let ax = normalize_axis("stack", axis, first.ndim() + 1)?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(TensorError::ShapeMismatch {
                op: "stack",
                lhs: first.shape().to_vec(),
                rhs: t.shape().to_vec(),
            });
        }
        let views: Vec<ArrayViewD<'_, T>> = tensors.iter().map(|t| t.data.view()).collect();
        let out = ndarray::stack(Axis(ax), &views).expect("shapes checked");
        Ok(Tensor::from_array(out))
    }

    /// The elements with index in `range` along `axis`. A view: no copy.
    ///
    /// # Panics
    /// On a bad axis or a range past the end; see [`try_slice_axis`](Self::try_slice_axis).
    pub fn slice_axis(&self, axis: isize, range: Range<usize>) -> Tensor<T> {
        self.try_slice_axis(axis, range)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`slice_axis`](Self::slice_axis) that returns an error instead of panicking.
    pub fn try_slice_axis(&self, axis: isize, range: Range<usize>) -> Result<Tensor<T>> {
        let ax = normalize_axis("slice_axis", axis, self.ndim())?;
        let len = self.shape()[ax];
        if range.start > range.end || range.end > len {
            return Err(TensorError::invalid(
                "slice_axis",
                format!("range {range:?} does not fit axis {ax} of length {len}"),
            ));
        }
        Ok(Tensor {
            data: self
                .data
                .clone()
                .slice_axis_move(Axis(ax), Slice::from(range)),
        })
    }

    /// The rows `range` of the first axis (samples, for a batch), as `x[a..b]` reads in
    /// NumPy. A view: no copy.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[3, 2]).unwrap();
    /// assert_eq!(x.rows(1..3).to_vec(), vec![2.0, 3.0, 4.0, 5.0]);
    /// let e = x.try_rows(2..4).unwrap_err().to_string();
    /// assert!(e.contains("rows 2..4 do not fit a tensor of 3 rows"), "{e}");
    /// ```
    ///
    /// # Panics
    /// On a scalar or a range past the end; see [`try_rows`](Self::try_rows).
    pub fn rows(&self, range: Range<usize>) -> Tensor<T> {
        self.try_rows(range).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`rows`](Self::rows) that returns an error instead of panicking.
    pub fn try_rows(&self, range: Range<usize>) -> Result<Tensor<T>> {
        if self.ndim() == 0 {
            return Err(TensorError::invalid(
                "rows",
                "a scalar has no rows; expected a tensor of at least one dimension".to_string(),
            ));
        }
        let n = self.shape()[0];
        if range.start > range.end || range.end > n {
            return Err(TensorError::invalid(
                "rows",
                format!("rows {range:?} do not fit a tensor of {n} rows"),
            ));
        }
        self.try_slice_axis(0, range)
    }

    /// Selects entries along `axis` by index, in the given order, repeats allowed (NumPy's
    /// `take`, PyTorch's `index_select`): `x.gather(0, &[3, 0])` is rows 3 and 0 of `x`.
    ///
    /// # Panics
    /// On a bad axis or index; see [`try_gather`](Self::try_gather).
    #[doc(alias = "take")]
    #[doc(alias = "index_select")]
    pub fn gather(&self, axis: isize, indices: &[usize]) -> Tensor<T> {
        self.try_gather(axis, indices)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`gather`](Self::gather) that returns an error for a bad axis or an index out of range.
    pub fn try_gather(&self, axis: isize, indices: &[usize]) -> Result<Tensor<T>> {
        let ax = normalize_axis("gather", axis, self.ndim())?;
        let len = self.shape()[ax];
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(TensorError::IndexOutOfRange {
                op: "gather",
                index,
                len,
            });
        }
        Ok(Tensor::from_array(self.data.select(Axis(ax), indices)))
    }

    /// Adds the entries of `self` into a zero tensor of `shape` at the given indices along
    /// `axis` (repeated indices accumulate): the gradient of [`gather`](Self::gather).
    ///
    /// # Panics
    /// If the shapes or indices do not fit.
    pub fn scatter_add(&self, axis: isize, indices: &[usize], shape: &[usize]) -> Tensor<T> {
        let ax = normalize_axis("scatter_add", axis, shape.len()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            self.shape()[ax],
            indices.len(),
            "scatter_add: one index per entry along axis {ax}"
        );
        let mut out = ArrayD::<T>::zeros(IxDyn(shape));
        for (src, &dst) in indices.iter().enumerate() {
            let mut row = out.index_axis_mut(Axis(ax), dst);
            row += &self.data.index_axis(Axis(ax), src);
        }
        Tensor::from_array(out)
    }

    /// Rows of `depth` zeros with a one at each label: `one_hot(&[2, 0], 3)` is
    /// `[[0, 0, 1], [1, 0, 0]]`.
    ///
    /// # Errors
    /// [`TensorError::IndexOutOfRange`] for a label `>= depth`.
    pub fn one_hot(labels: &[usize], depth: usize) -> Result<Tensor<T>> {
        let mut out = ArrayD::<T>::zeros(IxDyn(&[labels.len(), depth]));
        for (i, &label) in labels.iter().enumerate() {
            if label >= depth {
                return Err(TensorError::IndexOutOfRange {
                    op: "one_hot",
                    index: label,
                    len: depth,
                });
            }
            out[[i, label]] = T::one();
        }
        Ok(Tensor::from_array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor<f64> {
        Tensor::from_vec((0..numel(shape)).map(|x| x as f64).collect(), shape).unwrap()
    }

    #[test]
    fn transpose_and_permute_are_views_with_the_right_order() {
        let a = seq(&[2, 3]);
        assert_eq!(a.transpose().shape(), &[3, 2]);
        assert_eq!(a.transpose().to_vec(), vec![0., 3., 1., 4., 2., 5.]);
        let b = seq(&[2, 3, 4]);
        let p = b.permute(&[2, 0, 1]);
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert_eq!(p.get(&[3, 1, 2]), b.get(&[1, 2, 3]));
        assert!(b.try_permute(&[0, 0, 1]).is_err());
        assert!(seq(&[3]).try_transpose().is_err());
    }

    #[test]
    fn reshape_keeps_row_major_order_even_from_a_view() {
        let a = seq(&[2, 3]).transpose();
        assert_eq!(a.reshape(&[6]).to_vec(), vec![0., 3., 1., 4., 2., 5.]);
        let e = a.try_reshape(&[4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reshape: cannot reshape [3, 2] (6 elements) into [4] (4 elements)"
        );
    }

    #[test]
    fn broadcast_to_and_sum_to_are_adjoint() {
        let b = seq(&[3, 1]);
        let big = b.broadcast_to(&[2, 3, 4]);
        assert_eq!(big.shape(), &[2, 3, 4]);
        let back = big.sum_to(&[3, 1]);
        assert_eq!(back.to_vec(), vec![0., 8., 16.]);
        assert!(b.try_broadcast_to(&[2, 2]).is_err());
        assert!(big.try_sum_to(&[5]).is_err());
    }

    #[test]
    fn concat_stack_slice_gather() {
        let a = seq(&[2, 2]);
        let b = seq(&[1, 2]);
        let c = Tensor::concat(&[&a, &b], 0);
        assert_eq!(c.to_vec(), vec![0., 1., 2., 3., 0., 1.]);
        assert!(Tensor::try_concat(&[&a, &seq(&[2, 3])], 0).is_err());
        assert!(Tensor::<f64>::try_concat(&[], 0).is_err());
        let s = Tensor::stack(&[&a, &a], -1);
        assert_eq!(s.shape(), &[2, 2, 2]);
        assert_eq!(s.to_vec(), vec![0., 0., 1., 1., 2., 2., 3., 3.]);
        assert_eq!(c.slice_axis(0, 1..3).to_vec(), vec![2., 3., 0., 1.]);
        assert!(c.try_slice_axis(0, 2..4).is_err());
        assert_eq!(
            c.gather(0, &[2, 0, 2]).to_vec(),
            vec![0., 1., 0., 1., 0., 1.]
        );
        let e = c.try_gather(0, &[3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gather: index 3 is out of range for length 3"
        );
        let back = c.gather(0, &[2, 0, 2]).scatter_add(0, &[2, 0, 2], &[3, 2]);
        assert_eq!(back.to_vec(), vec![0., 1., 0., 0., 0., 2.]);
    }

    #[test]
    fn one_hot_checks_labels() {
        let t = Tensor::<f32>::one_hot(&[2, 0], 3).unwrap();
        assert_eq!(t.to_vec(), vec![0., 0., 1., 1., 0., 0.]);
        let e = Tensor::<f32>::one_hot(&[3], 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "one_hot: index 3 is out of range for length 3"
        );
    }
}

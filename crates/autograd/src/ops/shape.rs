//! Operations that move elements: permute/transpose, reshape, broadcast, concat, stack,
//! slicing and gathering. Their gradients move the elements back.

use std::ops::Range;

use tensor::ndarray::{ArrayD, Axis, IxDyn, Slice};
use tensor::{Element, Result, Tensor, normalize_axis};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// Reorders axes; the gradient applies the inverse permutation.
pub struct PermuteOp(pub Vec<usize>);

impl<T: Element> Op<T> for PermuteOp {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_permute(&self.0)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let mut inverse = vec![0; self.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            inverse[a] = i;
        }
        dx.set_with(0, || dy.permute(&inverse));
    }
}

/// Gives the elements a new shape; the gradient takes the old one back.
pub struct ReshapeOp(pub Vec<usize>);

impl<T: Element> Op<T> for ReshapeOp {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_reshape(&self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.reshape(&x[0].shape()));
    }
}

/// Repeats along broadcast dimensions; the gradient sums them back.
pub struct BroadcastToOp(pub Vec<usize>);

impl<T: Element> Op<T> for BroadcastToOp {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_broadcast_to(&self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.sum_to(&x[0].shape()));
    }
}

/// Joins along an axis; each input's gradient is its slice of the output's.
pub struct ConcatOp(pub isize);

impl<T: Element> Op<T> for ConcatOp {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Tensor::try_concat(x, self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let ax = normalize_axis("concat", self.0, dy.shape().len()).expect("checked in forward");
        let mut start = 0;
        for (i, xi) in x.iter().enumerate() {
            let len = xi.shape()[ax];
            dx.set_with(i, || {
                let range = start..start + len;
                V::apply(
                    SliceAxisOp {
                        axis: ax as isize,
                        range,
                    },
                    [dy],
                )
            });
            start += len;
        }
    }
}

/// Joins along a new axis; each input's gradient is its entry of the output's.
pub struct StackOp(pub isize);

impl<T: Element> Op<T> for StackOp {
    fn name(&self) -> &'static str {
        "stack"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Tensor::try_stack(x, self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let ax = normalize_axis("stack", self.0, dy.shape().len()).expect("checked in forward");
        for (i, xi) in x.iter().enumerate() {
            dx.set_with(i, || {
                let entry = SliceAxisOp {
                    axis: ax as isize,
                    range: i..i + 1,
                };
                V::apply(entry, [dy]).reshape(&xi.shape())
            });
        }
    }
}

/// A range along an axis; the gradient is zero outside it.
pub struct SliceAxisOp {
    /// The axis sliced (negative counts from the end).
    pub axis: isize,
    /// The indices kept along it.
    pub range: Range<usize>,
}

impl<T: Element> Op<T> for SliceAxisOp {
    fn name(&self) -> &'static str {
        "slice_axis"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_slice_axis(self.axis, self.range.clone())
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let shape = x[0].shape();
        let ax = normalize_axis("slice_axis", self.axis, shape.len()).expect("checked in forward");
        let pad = PadAxisOp {
            axis: ax,
            range: self.range.clone(),
            len: shape[ax],
        };
        dx.set_with(0, || V::apply(pad, [dy]));
    }
}

/// Entries selected by index along an axis; the gradient adds back into those entries.
pub struct GatherOp {
    /// The axis selected along (negative counts from the end).
    pub axis: isize,
    /// The indices taken, in order; repeats allowed.
    pub indices: Vec<usize>,
}

impl<T: Element> Op<T> for GatherOp {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_gather(self.axis, &self.indices)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || {
            let scatter = ScatterAddOp {
                axis: self.axis,
                indices: self.indices.clone(),
                shape: x[0].shape().into_owned(),
            };
            V::apply(scatter, [dy])
        });
    }
}

/// Sums broadcast dimensions back down to a shape (the gradient of a broadcast); its own
/// gradient broadcasts again.
pub struct SumToOp(pub Vec<usize>);

impl<T: Element> Op<T> for SumToOp {
    fn name(&self) -> &'static str {
        "sum_to"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_sum_to(&self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || dy.broadcast_to(&x[0].shape()));
    }
}

/// Places the input at `range` along `axis` of a tensor of zeros `len` long on that axis (the
/// gradient of [`SliceAxisOp`]); its own gradient slices again.
pub struct PadAxisOp {
    /// The axis padded.
    pub axis: usize,
    /// Where the input goes along it.
    pub range: Range<usize>,
    /// The result's length along it.
    pub len: usize,
}

impl<T: Element> Op<T> for PadAxisOp {
    fn name(&self) -> &'static str {
        "pad_axis"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let mut shape = x[0].shape().to_vec();
        if self.axis >= shape.len()
            || shape[self.axis] != self.range.len()
            || self.range.end > self.len
        {
            return Err(tensor::TensorError::InvalidArgument {
                op: "pad_axis",
                message: format!(
                    "cannot place a tensor of shape {shape:?} at {:?} of axis {} of length {}",
                    self.range, self.axis, self.len
                ),
            });
        }
        shape[self.axis] = self.len;
        let mut full = ArrayD::<T>::zeros(IxDyn(&shape));
        full.slice_axis_mut(Axis(self.axis), Slice::from(self.range.clone()))
            .assign(&x[0].view());
        Ok(Tensor::from_array(full))
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let slice = SliceAxisOp {
            axis: self.axis as isize,
            range: self.range.clone(),
        };
        dx.set_with(0, || V::apply(slice, [dy]));
    }
}

/// Adds entries into the positions `indices` along `axis` of a tensor of zeros of `shape`
/// (the gradient of [`GatherOp`]); its own gradient gathers again.
pub struct ScatterAddOp {
    /// The axis added along (negative counts from the end).
    pub axis: isize,
    /// The positions each input entry adds into.
    pub indices: Vec<usize>,
    /// The result's shape.
    pub shape: Vec<usize>,
}

impl<T: Element> Op<T> for ScatterAddOp {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let ax = normalize_axis("scatter_add", self.axis, self.shape.len())?;
        let mut expected = self.shape.clone();
        expected[ax] = self.indices.len();
        if x[0].shape() != expected.as_slice() || self.indices.iter().any(|&i| i >= self.shape[ax])
        {
            return Err(tensor::TensorError::InvalidArgument {
                op: "scatter_add",
                message: format!(
                    "cannot add a tensor of shape {:?} at {} indices of axis {ax} into shape {:?}",
                    x[0].shape(),
                    self.indices.len(),
                    self.shape
                ),
            });
        }
        Ok(x[0].scatter_add(self.axis, &self.indices, &self.shape))
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let gather = GatherOp {
            axis: self.axis,
            indices: self.indices.clone(),
        };
        dx.set_with(0, || V::apply(gather, [dy]));
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Swaps the last two axes.
    ///
    /// # Panics
    /// Below 2-D; see [`try_transpose`](Var::try_transpose).
    #[track_caller]
    pub fn transpose(self) -> Var<'t, T> {
        unwrap_op(self.try_transpose())
    }

    /// [`transpose`](Var::transpose) that returns an error below 2-D.
    pub fn try_transpose(self) -> Result<Var<'t, T>> {
        let n = self.shape().len();
        if n < 2 {
            return Err(tensor::TensorError::RankMismatch {
                op: "transpose",
                expected: "at least 2 dimensions".into(),
                shape: self.shape(),
            });
        }
        let mut axes: Vec<usize> = (0..n).collect();
        axes.swap(n - 2, n - 1);
        self.try_permute(&axes)
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Panics
    /// If `axes` is not a permutation; see [`try_permute`](Var::try_permute).
    #[track_caller]
    pub fn permute(self, axes: &[usize]) -> Var<'t, T> {
        unwrap_op(self.try_permute(axes))
    }

    /// [`permute`](Var::permute) that returns an error for an invalid permutation.
    pub fn try_permute(self, axes: &[usize]) -> Result<Var<'t, T>> {
        self.tape.apply(PermuteOp(axes.to_vec()), [self])
    }

    /// The same elements in another shape.
    ///
    /// # Panics
    /// If the element counts differ; see [`try_reshape`](Var::try_reshape).
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        unwrap_op(self.try_reshape(shape))
    }

    /// [`reshape`](Var::reshape) that returns an error if the element counts differ.
    pub fn try_reshape(self, shape: &[usize]) -> Result<Var<'t, T>> {
        self.tape.apply(ReshapeOp(shape.to_vec()), [self])
    }

    /// Repeats along dimensions of size 1 to reach `shape` (NumPy broadcasting).
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_broadcast_to`](Var::try_broadcast_to).
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        unwrap_op(self.try_broadcast_to(shape))
    }

    /// [`broadcast_to`](Var::broadcast_to) that returns an error if the shapes do not fit.
    pub fn try_broadcast_to(self, shape: &[usize]) -> Result<Var<'t, T>> {
        self.tape.apply(BroadcastToOp(shape.to_vec()), [self])
    }

    /// Sums broadcast dimensions down to `shape` (the inverse of
    /// [`broadcast_to`](Var::broadcast_to)).
    ///
    /// # Panics
    /// If `shape` does not broadcast to this shape; see [`try_sum_to`](Var::try_sum_to).
    #[track_caller]
    pub fn sum_to(self, shape: &[usize]) -> Var<'t, T> {
        unwrap_op(self.try_sum_to(shape))
    }

    /// [`sum_to`](Var::sum_to) that returns an error if the shapes do not fit.
    pub fn try_sum_to(self, shape: &[usize]) -> Result<Var<'t, T>> {
        self.tape.apply(SumToOp(shape.to_vec()), [self])
    }

    /// Joins variables along an existing axis.
    ///
    /// # Panics
    /// On an empty list or shapes that differ off the axis; see [`try_concat`](Var::try_concat).
    #[track_caller]
    pub fn concat(vars: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        unwrap_op(Self::try_concat(vars, axis))
    }

    /// [`concat`](Var::concat) that returns an error instead of panicking.
    pub fn try_concat(vars: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
        let first = vars
            .first()
            .ok_or_else(|| tensor::TensorError::InvalidArgument {
                op: "concat",
                message: "needs at least one variable, got none".into(),
            })?;
        first.tape.apply_slice(ConcatOp(axis), vars)
    }

    /// Joins variables of one shape along a new axis.
    ///
    /// # Panics
    /// On an empty list or unequal shapes; see [`try_stack`](Var::try_stack).
    #[track_caller]
    pub fn stack(vars: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        unwrap_op(Self::try_stack(vars, axis))
    }

    /// [`stack`](Var::stack) that returns an error instead of panicking.
    pub fn try_stack(vars: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
        let first = vars
            .first()
            .ok_or_else(|| tensor::TensorError::InvalidArgument {
                op: "stack",
                message: "needs at least one variable, got none".into(),
            })?;
        first.tape.apply_slice(StackOp(axis), vars)
    }

    /// The entries with index in `range` along `axis`.
    ///
    /// # Panics
    /// On a bad axis or range; see [`try_slice_axis`](Var::try_slice_axis).
    #[track_caller]
    pub fn slice_axis(self, axis: isize, range: Range<usize>) -> Var<'t, T> {
        unwrap_op(self.try_slice_axis(axis, range))
    }

    /// [`slice_axis`](Var::slice_axis) that returns an error instead of panicking.
    pub fn try_slice_axis(self, axis: isize, range: Range<usize>) -> Result<Var<'t, T>> {
        self.tape.apply(SliceAxisOp { axis, range }, [self])
    }

    /// Entries selected by index along `axis` (repeats allowed), e.g. the rows of a batch.
    ///
    /// # Panics
    /// On a bad axis or index; see [`try_gather`](Var::try_gather).
    #[track_caller]
    pub fn gather(self, axis: isize, indices: &[usize]) -> Var<'t, T> {
        unwrap_op(self.try_gather(axis, indices))
    }

    /// [`gather`](Var::gather) that returns an error for a bad axis or index.
    pub fn try_gather(self, axis: isize, indices: &[usize]) -> Result<Var<'t, T>> {
        let op = GatherOp {
            axis,
            indices: indices.to_vec(),
        };
        self.tape.apply(op, [self])
    }
}

//! 2-D convolution as patches and one matrix product: `conv2d(x, k) = patches(x) @ k`,
//! reshaped. The patches op and its adjoint (`fold_patches`) are each other's gradients, so
//! every derivative of a convolution, of any order, follows from them and the matrix
//! product's.

use tensor::ops::conv::{Conv2dOptions, Window};
use tensor::{Element, Result, Tensor, TensorError};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// The windows of a channels-last batch `[b, h, w, c]`: `[b, oh, ow, kh * kw * c]` (see
/// [`Tensor::patches`]).
pub struct PatchesOp(pub Window);

impl<T: Element> Op<T> for PatchesOp {
    fn name(&self) -> &'static str {
        "patches"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].patches(&self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let fold = FoldPatchesOp {
            window: self.0,
            image_shape: x[0].shape().into_owned(),
        };
        dx.set_with(0, || V::apply(fold, [dy]));
    }
}

/// Sums patch entries back into the image they were read from (the adjoint of
/// [`PatchesOp`], see [`Tensor::fold_patches`]).
pub struct FoldPatchesOp {
    pub window: Window,
    pub image_shape: Vec<usize>,
}

impl<T: Element> Op<T> for FoldPatchesOp {
    fn name(&self) -> &'static str {
        "fold_patches"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].fold_patches(&self.window, &self.image_shape)
    }
    fn backward<V: Operand<T>>(&self, _: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || V::apply(PatchesOp(self.window), [dy]));
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// The windows of a channels-last batch (see [`Tensor::patches`]).
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit; see
    /// [`try_patches`](Var::try_patches).
    #[track_caller]
    pub fn patches(self, window: &Window) -> Var<'t, T> {
        unwrap_op(self.try_patches(window))
    }

    /// [`patches`](Var::patches) that returns an error.
    pub fn try_patches(self, window: &Window) -> Result<Var<'t, T>> {
        self.tape.apply(PatchesOp(*window), [self])
    }

    /// The 2-D convolution (cross-correlation, as Keras's `Conv2D` computes it) of a
    /// channels-last batch `[b, h, w, c_in]` with a kernel in Keras's layout
    /// `[kh, kw, c_in, c_out]`: `[b, oh, ow, c_out]`.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// use tensor::ops::conv::{Conv2dOptions, Padding};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::ones(&[1, 4, 4, 1]));
    /// let k = tape.param(&Tensor::ones(&[3, 3, 1, 2]));
    /// let same = Conv2dOptions { padding: Padding::Same, ..Default::default() };
    /// let y = x.conv2d(k, &same);
    /// assert_eq!(y.shape(), vec![1, 4, 4, 2]);
    /// assert_eq!(y.value().get(&[0, 0, 0, 0]), Some(4.0)); // a corner sees 4 pixels
    /// assert_eq!(y.value().get(&[0, 1, 1, 1]), Some(9.0));
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_conv2d`](Var::try_conv2d).
    #[track_caller]
    pub fn conv2d(self, kernel: Var<'t, T>, options: &Conv2dOptions) -> Var<'t, T> {
        unwrap_op(self.try_conv2d(kernel, options))
    }

    /// [`conv2d`](Var::conv2d) that returns an error if the input is not 4-D, the kernel not
    /// `[kh, kw, c_in, c_out]` with the input's channels, or the kernel does not fit.
    pub fn try_conv2d(self, kernel: Var<'t, T>, options: &Conv2dOptions) -> Result<Var<'t, T>> {
        let (xs, ks) = (self.shape(), kernel.shape());
        let &[kh, kw, c_in, c_out] = ks.as_slice() else {
            return Err(TensorError::RankMismatch {
                op: "conv2d",
                expected: "a kernel of 4 dimensions [kh, kw, c_in, c_out]".into(),
                shape: ks,
            });
        };
        if xs.len() != 4 || xs[3] != c_in {
            return Err(TensorError::InvalidArgument {
                op: "conv2d",
                message: format!(
                    "the input must be [batch, height, width, {c_in}] for a kernel of shape \
                     {ks:?}, got {xs:?}"
                ),
            });
        }
        let p = self.try_patches(&options.window([kh, kw]))?;
        let [b, oh, ow, row] = <[usize; 4]>::try_from(p.shape()).expect("patches are 4-D");
        let y = p
            .try_reshape(&[b * oh * ow, row])?
            .try_matmul(kernel.try_reshape(&[row, c_out])?)?;
        y.try_reshape(&[b, oh, ow, c_out])
    }
}

//! 2-D convolution and its two gradients, each an op: `conv2d(x, k)`, its gradient with
//! respect to the input (`conv2d_backprop_input(dy, k)`, a transposed convolution) and with
//! respect to the kernel (`conv2d_backprop_kernel(x, dy)`). The three are bilinear and each
//! one's gradients are the other two, so every derivative of a convolution, of any order,
//! follows from these three rules (as PyTorch's and JAX's convolutions are closed under
//! differentiation). The kernels run chunk by chunk over the batch (see
//! [`Tensor::conv2d`]): the patches of a whole batch are never built.
//!
//! The patches op (im2col) and its adjoint (`fold_patches`), each other's gradients, serve
//! average pooling.

use tensor::ops::conv::{Conv2dOptions, OutputGrad, Window};
use tensor::{Element, Result, Tensor, TensorError};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::dense::OutputActivation;
use crate::ops::unwrap_op;
use crate::tape::Var;

/// `activation(conv2d(x, k) + b)` for a channels-last batch `x` `[b, h, w, c_in]`, a kernel
/// `k` `[kh, kw, c_in, c_out]` and an optional bias `b` `[c_out]` (inputs in that order).
/// The bias and the activation are applied to each chunk of the output while it is in
/// cache; the activation's derivative is its own [`Elementwise`](crate::ops::unary) rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dOp {
    /// Strides, padding and dilation.
    pub options: Conv2dOptions,
    /// The activation applied to each chunk of the output, fused.
    pub activation: OutputActivation,
}

impl<T: Element> Op<T> for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let act = self.activation;
        x[0].conv2d(x[1], x.get(2).copied(), &self.options, &|v| {
            act.apply_in_place(v)
        })
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        if let (Some(xt), Some(kt), Some(yt), Some(dyt)) = (
            x[0].as_tensor(),
            x[1].as_tensor(),
            y.as_tensor(),
            dy.as_tensor(),
        ) {
            // The fast sweep: the rule below, with `dz` computed a chunk at a time inside the
            // two gradient kernels (by the same `chain`) instead of stored whole first.
            let act = self.activation;
            let chain = move |dy: &[T], y: &[T], dz: &mut [T]| act.chain_into(dy, y, dz);
            let grad = OutputGrad::Output {
                dy: dyt,
                through: (act != OutputActivation::Linear).then_some((yt, &chain)),
            };
            self.tensor_grads(grad, [xt, kt], x.len() > 2, dy, dx);
            return;
        }
        let dz = self.activation.chain(dy, y);
        let options = self.options;
        dx.set_with(0, || {
            let image_shape = x[0].shape().into_owned();
            V::apply(
                Conv2dBackpropInputOp {
                    options,
                    image_shape,
                },
                [&dz, x[1]],
            )
        });
        dx.set_with(1, || {
            let kernel_shape = x[1].shape().into_owned();
            V::apply(
                Conv2dBackpropKernelOp {
                    options,
                    kernel_shape,
                },
                [x[0], &dz],
            )
        });
        if x.len() > 2 {
            dx.set_with(2, || {
                let c_out = dz.shape()[3];
                let rows = dz.shape().iter().product::<usize>() / c_out.max(1);
                dz.reshape(&[rows, c_out]).sum(0, false)
            });
        }
    }
}

impl Conv2dOp {
    /// The fast sweep's gradients of the inputs `[x, k]` (and the bias, if `bias`) for an
    /// output gradient in any of [`OutputGrad`]'s forms, set as constants beside `like`.
    pub(crate) fn tensor_grads<T: Element, V: Operand<T>>(
        &self,
        grad: OutputGrad<'_, T>,
        [xt, kt]: [&Tensor<T>; 2],
        bias: bool,
        like: &V,
        dx: &mut InputGrads<'_, V>,
    ) {
        let checked = |e: TensorError| -> ! { panic!("conv2d's gradient: {e}") };
        if dx.wants(0) {
            let g = Tensor::conv2d_backprop_input_of(grad, kt, &self.options, xt.shape());
            dx.set(0, like.constant(g.unwrap_or_else(|e| checked(e))));
        }
        let bias = bias && dx.wants(2);
        if dx.wants(1) || bias {
            let (dk, db) = xt
                .conv2d_backprop_kernel_of(grad, &self.options, kt.shape(), bias)
                .unwrap_or_else(|e| checked(e));
            dx.set(1, like.constant(dk));
            if let Some(db) = db {
                dx.set(2, like.constant(db));
            }
        }
    }
}

/// A plain convolution (no bias, no activation), as the other two ops' gradients use it.
fn linear_conv(options: Conv2dOptions) -> Conv2dOp {
    Conv2dOp {
        options,
        activation: OutputActivation::Linear,
    }
}

/// The gradient of a convolution with respect to its input, for inputs `[dy, k]`: the batch
/// of `image_shape` (see [`Tensor::conv2d_backprop_input`]). Linear in each input: its
/// gradients are a convolution (for `dy`) and the kernel gradient (for `k`).
pub struct Conv2dBackpropInputOp {
    /// How the convolution moved its kernel.
    pub options: Conv2dOptions,
    /// The input batch's shape `[b, h, w, c_in]`, the result's.
    pub image_shape: Vec<usize>,
}

impl<T: Element> Op<T> for Conv2dBackpropInputOp {
    fn name(&self) -> &'static str {
        "conv2d_backprop_input"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].conv2d_backprop_input(x[1], &self.options, &self.image_shape)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dz: &V, dx: &mut InputGrads<'_, V>) {
        // <dz, I(g, k)> = <conv(dz, k), g> = <k, G(dz, g)>.
        let options = self.options;
        dx.set_with(0, || V::apply(linear_conv(options), [dz, x[1]]));
        dx.set_with(1, || {
            let kernel_shape = x[1].shape().into_owned();
            V::apply(
                Conv2dBackpropKernelOp {
                    options,
                    kernel_shape,
                },
                [dz, x[0]],
            )
        });
    }
}

/// The gradient of a convolution with respect to its kernel, for inputs `[x, dy]`: a kernel
/// of `kernel_shape` (see [`Tensor::conv2d_backprop_kernel`]). Linear in each input: its
/// gradients are the input gradient (for `x`) and a convolution (for `dy`).
pub struct Conv2dBackpropKernelOp {
    /// How the convolution moved its kernel.
    pub options: Conv2dOptions,
    /// The kernel's shape `[kh, kw, c_in, c_out]`, the result's.
    pub kernel_shape: Vec<usize>,
}

impl<T: Element> Op<T> for Conv2dBackpropKernelOp {
    fn name(&self) -> &'static str {
        "conv2d_backprop_kernel"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].conv2d_backprop_kernel(x[1], &self.options, &self.kernel_shape)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dz: &V, dx: &mut InputGrads<'_, V>) {
        // <dz, G(x, g)> = <conv(x, dz), g> = <x, I(g, dz)>.
        let options = self.options;
        dx.set_with(0, || {
            let image_shape = x[0].shape().into_owned();
            V::apply(
                Conv2dBackpropInputOp {
                    options,
                    image_shape,
                },
                [x[1], dz],
            )
        });
        dx.set_with(1, || V::apply(linear_conv(options), [x[0], dz]));
    }
}

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
    /// The window the patches were read with.
    pub window: Window,
    /// The image batch's shape `[b, h, w, c]`, the result's.
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
        self.try_conv2d_activated(kernel, None, OutputActivation::Linear, options)
    }

    /// `activation(conv2d(self, kernel) + bias)` in one op, as Keras's `Conv2D` layer
    /// computes it: one pass over the output instead of three.
    ///
    /// ```
    /// use autograd::{OutputActivation, Tape};
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Conv2dOptions;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::ones(&[1, 3, 3, 1]));
    /// let k = tape.param(&Tensor::ones(&[2, 2, 1, 1]));
    /// let b = tape.param(&Tensor::full(&[1], -5.0));
    /// let y = x.conv2d_activated(k, Some(b), OutputActivation::Relu, &Conv2dOptions::default());
    /// assert_eq!(y.value().to_vec(), vec![0.0; 4]); // 4 - 5, clipped at 0
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_conv2d_activated`](Var::try_conv2d_activated).
    #[track_caller]
    pub fn conv2d_activated(
        self,
        kernel: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        activation: OutputActivation,
        options: &Conv2dOptions,
    ) -> Var<'t, T> {
        unwrap_op(self.try_conv2d_activated(kernel, bias, activation, options))
    }

    /// [`conv2d_activated`](Var::conv2d_activated) that returns an error for shapes that do
    /// not fit (the bias must be `[c_out]`).
    pub fn try_conv2d_activated(
        self,
        kernel: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        activation: OutputActivation,
        options: &Conv2dOptions,
    ) -> Result<Var<'t, T>> {
        let op = Conv2dOp {
            options: *options,
            activation,
        };
        match bias {
            Some(b) => self.tape.apply(op, [self, kernel, b]),
            None => self.tape.apply(op, [self, kernel]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use tensor::ops::conv::Padding;

    /// The fast sweep computes a convolution's gradients in fused chunks; the recorded
    /// sweep composes the rule from ops. Both must give the same gradients, for every
    /// fused activation, with and without the input needing one.
    #[test]
    fn fused_gradients_equal_the_composed_rule() {
        let mut rng = tensor::random::seeded(11);
        let x = Tensor::<f64>::rand_normal(&[5, 6, 7, 2], 0.0, 1.0, &mut rng);
        let k = Tensor::<f64>::rand_normal(&[3, 3, 2, 3], 0.0, 0.5, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[3], 0.0, 0.5, &mut rng);
        let options = Conv2dOptions {
            strides: [2, 1],
            padding: Padding::Same,
            ..Default::default()
        };
        for act in [
            OutputActivation::Linear,
            OutputActivation::Relu,
            OutputActivation::Sigmoid,
            OutputActivation::Tanh,
        ] {
            for input_wants_grad in [true, false] {
                let tape = Tape::new();
                let xv = if input_wants_grad {
                    tape.param(&x)
                } else {
                    tape.constant(&x)
                };
                let (kv, bv) = (tape.param(&k), tape.param(&b));
                let y = xv.conv2d_activated(kv, Some(bv), act, &options);
                // A loss whose output gradient differs per element and is not zero where
                // a relu clips.
                let c = tape.constant(&Tensor::rand_normal(&y.shape(), 0.0, 1.0, &mut rng));
                let loss = (y * c + y * y).sum_all();
                let fast = loss.backward().unwrap();
                let wrt = if input_wants_grad {
                    vec![kv, bv, xv]
                } else {
                    vec![kv, bv]
                };
                let recorded = loss.grad(&wrt).unwrap();
                for (v, r) in wrt.iter().zip(&recorded) {
                    assert!(fast[*v].allclose(&r.value(), 1e-12, 1e-12), "{act:?}");
                }
            }
        }
    }
}

//! Pooling and dropout: max pooling (its own op, routing the gradient to each window's
//! largest element), average pooling and global average pooling (composed from patches and
//! reductions), and inverted dropout (a constant random mask). Max pooling's gradient is a
//! scatter of the output gradient to each window's largest element ([`MaxPoolGradOp`]),
//! whose own gradient is the matching gather ([`MaxPoolTakeOp`]), so all its derivatives
//! follow. [`Conv2dMaxPoolOp`] is a convolution and a max pooling in one op, whose rule is
//! theirs.

use std::sync::OnceLock;

use tensor::ops::conv::{Conv2dOptions, MaxPoolIndices, OutputGrad, Padding, PooledConv, Window};
use tensor::random::StdRng;
use tensor::{Element, Result, Tensor, TensorError};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::conv::Conv2dOp;
use crate::ops::dense::OutputActivation;
use crate::ops::unwrap_op;
use crate::tape::Var;

/// The largest element of each window of a channels-last batch `[b, h, w, c]`, per channel;
/// positions in padding never win (see [`Tensor::max_pool`]).
pub struct MaxPoolOp(pub Window);

impl<T: Element> Op<T> for MaxPoolOp {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].max_pool(&self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(0, || V::apply(MaxPoolGradOp(self.0), [x[0], dy]));
    }
}

/// Max pooling's gradient, for inputs `[x, dy]`: each window's `dy` at the position of the
/// largest element of `x` in it, zero elsewhere (see [`Tensor::max_pool_grad`]). Linear in
/// `dy`, whose gradient is the matching gather ([`MaxPoolTakeOp`]); which element is largest
/// is piecewise constant in `x`, so `x` has no gradient.
pub struct MaxPoolGradOp(pub Window);

impl<T: Element> Op<T> for MaxPoolGradOp {
    fn name(&self) -> &'static str {
        "max_pool2d_grad"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].max_pool_grad(x[1], &self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, g: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(1, || V::apply(MaxPoolTakeOp(self.0), [x[0], g]));
    }
}

/// For inputs `[x, source]`, the element of `source` at each window's largest element of
/// `x` (see [`Tensor::max_pool_take`]); the gradient of [`MaxPoolGradOp`], and its own
/// gradient is that op.
pub struct MaxPoolTakeOp(pub Window);

impl<T: Element> Op<T> for MaxPoolTakeOp {
    fn name(&self) -> &'static str {
        "max_pool2d_take"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].max_pool_take(x[1], &self.0)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], _: &V, g: &V, dx: &mut InputGrads<'_, V>) {
        dx.set_with(1, || V::apply(MaxPoolGradOp(self.0), [x[0], g]));
    }
}

/// `max_pool(activation(conv2d(x, k) + b))` in one op: a [`Conv2dOp`] whose output is
/// max-pooled with `pool` a chunk at a time, so that the convolution's output is never
/// stored (see [`Tensor::conv2d_max_pool`]). Its rule is the two ops' own. The forward pass
/// keeps each window's winner ([`MaxPoolIndices`], as PyTorch's max pooling keeps its
/// indices for its backward), and the fast sweep routes the gradient through the
/// activation's derivative at the winners straight to the kernel, bias and input gradients
/// ([`OutputGrad::MaxPooled`]), computing nothing again. The recorded sweep computes the
/// output again as a [`Conv2dOp`], then applies [`MaxPoolOp`]'s rule and [`Conv2dOp`]'s, so
/// every order of derivative follows from theirs.
pub struct Conv2dMaxPoolOp {
    /// The convolution.
    pub conv: Conv2dOp,
    /// The max pooling's window.
    pub pool: Window,
    /// The winners the forward pass found.
    winners: OnceLock<MaxPoolIndices>,
}

impl Conv2dMaxPoolOp {
    /// The convolution `conv` pooled by `pool`.
    pub fn new(conv: Conv2dOp, pool: Window) -> Self {
        Conv2dMaxPoolOp {
            conv,
            pool,
            winners: OnceLock::new(),
        }
    }
}

impl<T: Element> Op<T> for Conv2dMaxPoolOp {
    fn name(&self) -> &'static str {
        "conv2d_max_pool2d"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let act = self.conv.activation;
        let options = &self.conv.options;
        let (y, winners) = x[0].conv2d_max_pool_with_indices(
            x[1],
            x.get(2).copied(),
            options,
            &|v| act.apply_in_place(v),
            &self.pool,
        )?;
        // The tape runs an op forward once, when it records it or when it computes a
        // deferred value, so these winners are the output's.
        assert!(
            self.winners.set(winners).is_ok(),
            "an op's forward pass runs once"
        );
        Ok(y)
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], p: &V, dp: &V, dx: &mut InputGrads<'_, V>) {
        if let (Some(xt), Some(kt), Some(dpt)) =
            (x[0].as_tensor(), x[1].as_tensor(), dp.as_tensor())
        {
            let act = self.conv.activation;
            let apply = move |v: &mut [T]| act.apply_in_place(v);
            let chain = move |dy: &[T], y: &[T], dz: &mut [T]| act.chain_into(dy, y, dz);
            let conv = PooledConv {
                x: xt,
                kernel: kt,
                bias: x.get(2).and_then(|b| b.as_tensor()),
                activation: &apply,
                chain: (act != OutputActivation::Linear).then_some(&chain),
                output: p.as_tensor().zip(self.winners.get()),
            };
            let grad = OutputGrad::MaxPooled {
                dp: dpt,
                pool: self.pool,
                conv,
            };
            self.conv.tensor_grads(grad, [xt, kt], x.len() > 2, dp, dx);
            return;
        }
        let y = match x {
            [a, b, c] => V::apply(self.conv, [*a, *b, *c]),
            _ => V::apply(self.conv, [x[0], x[1]]),
        };
        let mut slot = [None];
        MaxPoolOp(self.pool).backward(
            &[&y],
            p,
            dp,
            &mut InputGrads {
                wants: &[true],
                slots: &mut slot,
            },
        );
        let dy = slot[0]
            .take()
            .expect("max pooling's rule sets its input's gradient");
        self.conv.backward(x, &y, &dy, dx);
    }
}

/// A pooling window of `pool_size`, strides defaulting to the pool size (Keras).
fn pool_window(pool_size: [usize; 2], strides: Option<[usize; 2]>, padding: Padding) -> Window {
    Window {
        size: pool_size,
        strides: strides.unwrap_or(pool_size),
        dilation: [1, 1],
        padding,
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Keras's `MaxPooling2D`: the largest element of each `pool_size` window of a
    /// channels-last batch, per channel; `strides` default to the pool size.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// use tensor::ops::conv::Padding;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::from_vec((0..16).map(f64::from).collect(), &[1, 4, 4, 1]).unwrap());
    /// let y = x.max_pool2d([2, 2], None, Padding::Valid);
    /// assert_eq!(y.value().to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit; see
    /// [`try_max_pool2d`](Var::try_max_pool2d).
    #[track_caller]
    pub fn max_pool2d(
        self,
        pool_size: [usize; 2],
        strides: Option<[usize; 2]>,
        padding: Padding,
    ) -> Var<'t, T> {
        unwrap_op(self.try_max_pool2d(pool_size, strides, padding))
    }

    /// [`max_pool2d`](Var::max_pool2d) that returns an error.
    pub fn try_max_pool2d(
        self,
        pool_size: [usize; 2],
        strides: Option<[usize; 2]>,
        padding: Padding,
    ) -> Result<Var<'t, T>> {
        let window = pool_window(pool_size, strides, padding);
        self.tape.apply(MaxPoolOp(window), [self])
    }

    /// Keras's `AveragePooling2D`: the mean of each window, per channel; with `same`
    /// padding, over the elements inside the image only (as TensorFlow averages).
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit; see
    /// [`try_avg_pool2d`](Var::try_avg_pool2d).
    #[track_caller]
    pub fn avg_pool2d(
        self,
        pool_size: [usize; 2],
        strides: Option<[usize; 2]>,
        padding: Padding,
    ) -> Var<'t, T> {
        unwrap_op(self.try_avg_pool2d(pool_size, strides, padding))
    }

    /// [`avg_pool2d`](Var::avg_pool2d) that returns an error.
    pub fn try_avg_pool2d(
        self,
        pool_size: [usize; 2],
        strides: Option<[usize; 2]>,
        padding: Padding,
    ) -> Result<Var<'t, T>> {
        let window = pool_window(pool_size, strides, padding);
        let shape = self.shape();
        let p = self.try_patches(&window)?;
        let [b, oh, ow, _] = <[usize; 4]>::try_from(p.shape()).expect("patches are 4-D");
        let (taps, c) = (pool_size[0] * pool_size[1], shape[3]);
        let sums = p.try_reshape(&[b, oh, ow, taps, c])?.try_sum(3, false)?;
        // How many window elements lie inside the image, per output position.
        let ones = Tensor::<T>::ones(&[1, shape[1], shape[2], 1]);
        let counts = ones.patches(&window)?.sum(3, true);
        sums.try_div(self.tape.constant(&counts))
    }

    /// Keras's `GlobalAveragePooling2D`: the mean over height and width of a channels-last
    /// batch, `[b, h, w, c]` to `[b, c]`.
    ///
    /// # Errors
    /// If the input is not 4-D.
    pub fn try_global_avg_pool2d(self) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let &[b, h, w, c] = shape.as_slice() else {
            return Err(TensorError::RankMismatch {
                op: "global_avg_pool2d",
                expected: "4 dimensions [batch, height, width, channels]".into(),
                shape,
            });
        };
        self.try_reshape(&[b, h * w, c])?.try_mean(1, false)
    }

    /// Inverted dropout, as Keras's `Dropout` in training: each element is kept with
    /// probability `1 - rate` and scaled by `1 / (1 - rate)`, or set to 0. The mask is a
    /// constant drawn from `rng`, so the same seed drops the same elements.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::ones(&[1000]));
    /// let y = x.try_dropout(0.25, &mut tensor::random::seeded(0)).unwrap().value().to_vec();
    /// assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    /// let kept = y.iter().filter(|&&v| v > 0.0).count();
    /// assert!((700..800).contains(&kept));
    /// ```
    ///
    /// # Errors
    /// If `rate` is not in `[0, 1)`.
    pub fn try_dropout(self, rate: f64, rng: &mut StdRng) -> Result<Var<'t, T>> {
        use tensor::random::Rng;
        self.try_dropout_keyed(rate, rng.next_u64(), 0)
    }

    /// Inverted dropout with the mask elements `offset..` of the mask keyed by `key`
    /// ([`Tensor::try_bernoulli_mask_keyed`]): a rank holding some rows of a batch drops
    /// what one process dropping the whole batch would.
    ///
    /// ```
    /// use autograd::Tape;
    /// use tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let batch = tape.param(&Tensor::ones(&[4, 5]));
    /// let last_two = tape.param(&Tensor::ones(&[2, 5]));
    /// let whole = batch.try_dropout_keyed(0.5, 9, 0).unwrap().value();
    /// let part = last_two.try_dropout_keyed(0.5, 9, 10).unwrap().value();
    /// assert_eq!(part, whole.rows(2..4));
    /// ```
    ///
    /// # Errors
    /// If `rate` is not in `[0, 1)`.
    pub fn try_dropout_keyed(self, rate: f64, key: u64, offset: usize) -> Result<Var<'t, T>> {
        if !(0.0..1.0).contains(&rate) {
            return Err(TensorError::InvalidArgument {
                op: "dropout",
                message: format!("rate must be in [0, 1), got {rate}"),
            });
        }
        if rate == 0.0 {
            return Ok(self);
        }
        let keep = T::from_f64_lossy(1.0 / (1.0 - rate));
        let mask = Tensor::try_bernoulli_mask_keyed(&self.shape(), rate, keep, key, offset)?;
        self.try_mul(self.tape.constant(&mask))
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// `max_pool(activation(conv2d(self, kernel) + bias))` in one op (Keras's `Conv2D`
    /// followed by `MaxPooling2D`): the convolution's output is pooled a chunk at a time and
    /// never stored, and the gradients go from each window's winner, kept by the forward
    /// pass, without forming the zeros of the pooling's gradient. The two ops' numbers, up
    /// to the rounding of sums taken in another order.
    ///
    /// ```
    /// use autograd::{OutputActivation, Tape};
    /// use tensor::Tensor;
    /// use tensor::ops::conv::{Conv2dOptions, Padding, Window};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(&Tensor::from_vec((0..16).map(f64::from).collect(), &[1, 4, 4, 1]).unwrap());
    /// let k = tape.param(&Tensor::ones(&[1, 1, 1, 1]));
    /// let pool = Window { strides: [2, 2], ..Window::new([2, 2]) };
    /// let relu = OutputActivation::Relu;
    /// let y = x.conv2d_max_pool2d(k, None, relu, &Conv2dOptions::default(), &pool);
    /// let two = x.conv2d_activated(k, None, relu, &Conv2dOptions::default())
    ///     .max_pool2d([2, 2], None, Padding::Valid);
    /// assert_eq!(y.value(), two.value());
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit; see [`try_conv2d_max_pool2d`](Var::try_conv2d_max_pool2d).
    #[track_caller]
    pub fn conv2d_max_pool2d(
        self,
        kernel: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        activation: OutputActivation,
        options: &Conv2dOptions,
        pool: &Window,
    ) -> Var<'t, T> {
        unwrap_op(self.try_conv2d_max_pool2d(kernel, bias, activation, options, pool))
    }

    /// [`conv2d_max_pool2d`](Var::conv2d_max_pool2d) that returns an error for shapes that
    /// do not fit (as [`try_conv2d_activated`](Var::try_conv2d_activated)'s, and the pooling
    /// window must fit the convolution's output).
    pub fn try_conv2d_max_pool2d(
        self,
        kernel: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        activation: OutputActivation,
        options: &Conv2dOptions,
        pool: &Window,
    ) -> Result<Var<'t, T>> {
        let conv = Conv2dOp {
            options: *options,
            activation,
        };
        let op = Conv2dMaxPoolOp::new(conv, *pool);
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

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    #[test]
    fn max_pool_with_same_padding_ignores_the_padding() {
        // Negative values: zero padding must not win.
        let x: Vec<f64> = (0..9).map(|v| -(v as f64) - 1.0).collect();
        let tape = Tape::<f64>::new();
        let v = tape.param(&t(&x, &[1, 3, 3, 1]));
        let y = v.max_pool2d([2, 2], None, Padding::Same);
        // Windows [[0,1],[3,4]], [[2],[5]], [[6,7]], [[8]] of -1..-9.
        assert_eq!(y.value().to_vec(), vec![-1.0, -3.0, -7.0, -9.0]);
        let g = y.sum_all().backward().unwrap();
        assert_eq!(
            g[v].to_vec(),
            vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn avg_pool_with_same_padding_averages_inside_the_image() {
        let tape = Tape::<f64>::new();
        let v = tape.param(&t(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            &[1, 3, 3, 1],
        ));
        let y = v.avg_pool2d([2, 2], None, Padding::Same);
        assert_eq!(y.value().to_vec(), vec![3.0, 4.5, 7.5, 9.0]);
        let g = v.try_global_avg_pool2d().unwrap();
        assert_eq!((g.shape(), g.value().to_vec()), (vec![1, 1], vec![5.0]));
    }

    #[test]
    fn dropout_checks_its_rate_and_scales_what_it_keeps() {
        let tape = Tape::<f64>::new();
        let x = tape.param(&Tensor::ones(&[8]));
        let mut rng = tensor::random::seeded(1);
        let e = x.try_dropout(1.0, &mut rng).unwrap_err().to_string();
        assert_eq!(e, "dropout: rate must be in [0, 1), got 1");
        let y = x.try_dropout(0.5, &mut rng).unwrap();
        let g = y.sum_all().backward().unwrap();
        // The gradient is the mask: 2 where kept, 0 where dropped, as the value.
        assert_eq!(g[x].to_vec(), y.value().to_vec());
        assert!(y.value().to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
    }

    /// The fused convolution and max pooling computes what the two ops compute apart, and
    /// its two sweeps (the fast one from the winners its forward pass kept, the recorded
    /// one composing the two ops' rules) give their gradients.
    #[test]
    fn conv2d_max_pool_is_the_two_ops() {
        use crate::ops::dense::OutputActivation;
        use tensor::ops::conv::Conv2dOptions;
        let mut rng = tensor::random::seeded(21);
        let x = Tensor::<f64>::rand_normal(&[5, 9, 8, 2], 0.0, 1.0, &mut rng);
        let k = Tensor::<f64>::rand_normal(&[3, 3, 2, 3], 0.0, 0.5, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[3], 0.0, 0.5, &mut rng);
        let options = Conv2dOptions {
            padding: Padding::Same,
            ..Default::default()
        };
        let pool = Window {
            strides: [2, 2],
            ..Window::new([2, 2])
        };
        for act in [
            OutputActivation::Relu,
            OutputActivation::Tanh,
            OutputActivation::Linear,
        ] {
            let tape = Tape::new();
            let (xv, kv, bv) = (tape.param(&x), tape.param(&k), tape.param(&b));
            let fused = xv.conv2d_max_pool2d(kv, Some(bv), act, &options, &pool);
            let apart = xv.conv2d_activated(kv, Some(bv), act, &options).max_pool2d(
                pool.size,
                None,
                Padding::Valid,
            );
            assert_eq!(fused.value(), apart.value(), "{act:?}");
            let c = tape.constant(&Tensor::rand_normal(&fused.shape(), 0.0, 1.0, &mut rng));
            let (lf, la) = (
                (fused * c + fused * fused).sum_all(),
                (apart * c + apart * apart).sum_all(),
            );
            let (fast, want) = (lf.backward().unwrap(), la.backward().unwrap());
            let recorded = lf.grad(&[xv, kv, bv]).unwrap();
            for (v, r) in [xv, kv, bv].iter().zip(&recorded) {
                assert!(fast[*v].allclose(&want[*v], 1e-12, 1e-12), "{act:?}");
                assert!(r.value().allclose(&want[*v], 1e-12, 1e-12), "{act:?}");
            }
        }
    }
}

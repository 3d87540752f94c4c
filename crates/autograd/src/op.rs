//! The [`Op`] trait: one operation's forward computation and its vector-Jacobian product,
//! written side by side, and [`Operand`], what the vector-Jacobian product computes with.
//!
//! An op's `backward` is written once, generically over `V: Operand`. The tape runs it with
//! `V = Tensor` for the ordinary reverse sweep ([`Var::backward`](crate::Var::backward): fast,
//! nothing recorded) and with `V = Var` when the gradient must be differentiable
//! ([`Var::grad`](crate::Var::grad)): then every step of the rule is recorded on the tape,
//! and gradients of gradients follow to any order.

use std::borrow::Cow;

use tensor::memory::Out;
use tensor::{Element, Result, Tensor};

use crate::real::RealFn;

/// One differentiable operation. Implementing it is all it takes to add an op to the tape:
/// `forward` computes the output from the input values, `backward` turns the gradient of
/// the output into gradients of the inputs (the vector-Jacobian product).
///
/// `backward` is written with [`Operand`] operations, never with closures over numbers, so
/// that the same rule serves the fast sweep (on tensors) and the recorded one (on variables,
/// for second and higher derivatives). The tape keeps the input and output values, so an op
/// stores only its attributes (an axis, an exponent), never tensors it could read back.
///
/// ```
/// use autograd::{InputGrads, Op, Operand, Tape};
/// use tensor::{Result, Tensor};
///
/// /// `x^3`, as a user-defined op.
/// struct Cube;
///
/// impl Op<f64> for Cube {
///     fn name(&self) -> &'static str {
///         "cube"
///     }
///     fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
///         Ok(x[0].map(|v| v * v * v))
///     }
///     fn backward<V: Operand<f64>>(&self, x: &[&V], _y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
///         // 3 x^2 dy, in differentiable steps: this op has second derivatives too.
///         dx.set(0, dy.mul(&x[0].mul(x[0]).scale(3.0)));
///     }
/// }
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(&Tensor::scalar(2.0));
/// let y = tape.apply(Cube, [x]).unwrap();
/// assert_eq!(y.backward().unwrap()[x].item(), 12.0);
/// // d/dx (3x^2) = 6x: the gradient is a variable that can be differentiated again.
/// let dy = y.grad(&[x]).unwrap()[0];
/// assert_eq!(dy.item(), 12.0);
/// assert_eq!(dy.grad(&[x]).unwrap()[0].item(), 12.0);
/// ```
pub trait Op<T: Element>: Send + 'static {
    /// A short lower-case name (`"matmul"`, `"softmax"`) used in errors and tape listings.
    fn name(&self) -> &'static str;

    /// Computes the output from the input values. Shape errors are returned, not panicked.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// Given `grad`, the gradient of the loss with respect to `output`, sets the gradient
    /// with respect to each input that [`InputGrads::wants`] (and has the input's shape).
    fn backward<V: Operand<T>>(
        &self,
        inputs: &[&V],
        output: &V,
        grad: &V,
        grads: &mut InputGrads<'_, V>,
    );

    /// The output's shape from the inputs' shapes, for an op that is expensive to run and
    /// whose `backward` never reads `output` (a matrix product). Such an op may be recorded
    /// before it runs, its value computed when first read: a Hessian-vector product never
    /// reads the value of the gradient it differentiates, so that product is never computed.
    /// `forward` must succeed on inputs of these shapes (it runs later, where an error can no
    /// longer be returned). `None` (the default): the op always runs at once.
    fn output_shape(&self, _inputs: &[&[usize]]) -> Option<Vec<usize>> {
        None
    }
}

/// Where an op's `backward` puts the gradients of its inputs. Inputs that need no gradient
/// (constants, data) are skipped, so that no work is spent on them.
pub struct InputGrads<'a, V> {
    pub(crate) wants: &'a [bool],
    pub(crate) slots: &'a mut [Option<V>],
}

impl<V> InputGrads<'_, V> {
    /// Whether input `i` needs a gradient; check it before computing an expensive one.
    pub fn wants(&self, i: usize) -> bool {
        self.wants[i]
    }

    /// Sets the gradient of input `i` (ignored if the input needs none).
    pub fn set(&mut self, i: usize, grad: V) {
        if self.wants[i] {
            self.slots[i] = Some(grad);
        }
    }

    /// Sets the gradient of input `i` to `f()`, calling `f` only if the input needs one.
    pub fn set_with(&mut self, i: usize, f: impl FnOnce() -> V) {
        if self.wants[i] {
            self.slots[i] = Some(f());
        }
    }
}

/// What a backward rule computes with: a [`Tensor`] in the fast sweep, a
/// [`Var`](crate::Var) in the recorded one. Shapes inside a rule fit by construction, so
/// these operations panic on a mismatch (a bug in the rule), as the tensor operators do.
pub trait Operand<T: Element>: Clone + Sized {
    /// The value's shape.
    fn shape(&self) -> Cow<'_, [usize]>;
    /// The value (for a variable: its tensor, which is not differentiated).
    fn value(&self) -> Tensor<T>;
    /// The tensor itself in the fast sweep, `None` for a variable: a rule whose tensor form
    /// can be computed in fewer passes (a convolution's gradients) takes it from here.
    fn as_tensor(&self) -> Option<&Tensor<T>>;
    /// A constant beside this value (on the same tape, for a variable): masks, counts.
    fn constant(&self, value: Tensor<T>) -> Self;
    /// Any op applied to operands: on tensors its forward, on variables recorded.
    fn apply<O: Op<T>, const N: usize>(op: O, inputs: [&Self; N]) -> Self;
    /// An element-wise formula over operands that broadcast together: on tensors one fused
    /// loop, on variables recorded step by step.
    fn map_real<F: RealFn<T, N>, const N: usize>(f: &F, args: [&Self; N]) -> Self;

    /// `self + other`, broadcasting.
    fn add(&self, other: &Self) -> Self;
    /// `self - other`, broadcasting.
    fn sub(&self, other: &Self) -> Self;
    /// `self * other`, element by element, broadcasting.
    fn mul(&self, other: &Self) -> Self;
    /// `self / other`, element by element, broadcasting.
    fn div(&self, other: &Self) -> Self;
    /// `-self`.
    fn neg(&self) -> Self;
    /// Times a constant scalar.
    fn scale(&self, c: T) -> Self;
    /// Divided by a constant scalar (a true division, not a product by `1/c`).
    fn div_scalar(&self, c: T) -> Self;
    /// Times a constant tensor that broadcasts with it (a mask).
    fn mul_const(&self, c: &Tensor<T>) -> Self;
    /// The matrix product `self @ other`.
    fn matmul(&self, other: &Self) -> Self;
    /// Two independent matrix products `a[0] @ a[1]` and `b[0] @ b[1]`, side by side on two
    /// cores where `side_by_side` and the operands are tensors.
    fn matmul_pair(a: [&Self; 2], b: [&Self; 2], side_by_side: bool) -> (Self, Self);
    /// Swaps the last two axes.
    fn transpose(&self) -> Self;
    /// The axes reordered: axis `i` of the result is axis `axes[i]` of `self`.
    fn permute(&self, axes: &[usize]) -> Self;
    /// The same elements in another shape.
    fn reshape(&self, shape: &[usize]) -> Self;
    /// `self` broadcast to `shape`.
    fn broadcast_to(&self, shape: &[usize]) -> Self;
    /// Sums broadcast dimensions back down to `shape` (the gradient of a broadcast).
    fn sum_to(&self, shape: &[usize]) -> Self;
    /// The sum along `axis`, kept as an axis of length 1 when `keepdims`.
    fn sum(&self, axis: isize, keepdims: bool) -> Self;
}

/// Element-wise formulas over at least this many elements run in chunks on the pool (a
/// convolution's activations; a Dense layer's 128 x 512 stay on one thread).
const PARALLEL_MAP_MIN: usize = 1 << 17;
/// Elements per chunk of a parallel element-wise formula (128 KiB of `f32`).
const MAP_CHUNK: usize = 1 << 15;

/// Writes `f` of the zipped slices into `out` (of their length): every element of `out`
/// once, zeroed first or uninitialized ([`Out`]). Zipped iterators (no bounds checks) into
/// a slice already allocated, so that the loop vectorizes (`simd::dispatch` compiles it for
/// the processor's vectors); appending to a vector instead counts its length up element by
/// element, which kept such loops scalar. `pick` builds the argument array from the first N
/// of four values; it folds away when inlined.
fn map_slices<T: Element, F: RealFn<T, N>, O: Out<T>, const N: usize>(
    f: &F,
    s: [&[T]; N],
    out: &mut [O],
) {
    fn pick<T: Copy, const N: usize>(v: [T; 4]) -> [T; N] {
        std::array::from_fn(|k| v[k])
    }
    // Every element of `out` is written only if the slices are as long (a caller may have
    // handed it uninitialized).
    assert!(
        s.iter().all(|s| s.len() == out.len()),
        "map_slices: operands of unequal length"
    );
    tensor::simd::dispatch(
        #[inline(always)]
        || match N {
            1 => out
                .iter_mut()
                .zip(s[0])
                .for_each(|(o, &a)| o.set(f.eval(pick([a; 4])))),
            2 => out
                .iter_mut()
                .zip(s[0].iter().zip(s[1]))
                .for_each(|(o, (&a, &b))| o.set(f.eval(pick([a, b, b, b])))),
            3 => out
                .iter_mut()
                .zip(s[0].iter().zip(s[1]).zip(s[2]))
                .for_each(|(o, ((&a, &b), &c))| o.set(f.eval(pick([a, b, c, c])))),
            _ => out
                .iter_mut()
                .enumerate()
                .for_each(|(i, o)| o.set(f.eval(s.map(|s| s[i])))),
        },
    );
}

#[track_caller]
fn ok<V>(r: Result<V>) -> V {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl<T: Element> Operand<T> for Tensor<T> {
    fn shape(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(Tensor::shape(self))
    }
    fn value(&self) -> Tensor<T> {
        self.clone()
    }
    fn as_tensor(&self) -> Option<&Tensor<T>> {
        Some(self)
    }
    fn constant(&self, value: Tensor<T>) -> Self {
        value
    }
    fn apply<O: Op<T>, const N: usize>(op: O, inputs: [&Self; N]) -> Self {
        ok(op.forward(&inputs))
    }
    fn map_real<F: RealFn<T, N>, const N: usize>(f: &F, args: [&Self; N]) -> Self {
        let shape = Tensor::shape(args[0]);
        let same = args.iter().all(|a| Tensor::shape(a) == shape);
        if same && args.iter().all(|a| a.as_slice().is_some()) {
            let n = args[0].len();
            let s: [&[T]; N] = args.map(|a| a.as_slice().expect("contiguous"));
            // Large operands (a convolution's activations) in chunks on the pool; the rest
            // in one loop on this thread, where handing work over costs more than it saves.
            let out = if n >= PARALLEL_MAP_MIN && tensor::parallel::num_threads() > 1 {
                tensor::parallel::fill_chunks(n, MAP_CHUNK, |range, out| {
                    map_slices(f, s.map(|s| &s[range.clone()]), out)
                })
            } else {
                // SAFETY: every slice in `s` holds `n` elements (the operands' shapes are
                // equal), so `map_slices` writes each of the `n` elements of `out`.
                unsafe { tensor::memory::write_once(n, |out| map_slices(f, s, out)) }
            };
            return Tensor::from_vec(out, shape).expect("same length");
        }
        // One-element operands (a loss's scale) beside full-size contiguous ones: repeat the
        // element, without ndarray's broadcasting machinery (which costs more than the loop
        // on small tensors).
        let full = args.iter().max_by_key(|a| a.len()).expect("N >= 1");
        let n = full.len();
        let fits = |a: &&Tensor<T>| {
            (Tensor::shape(a) == Tensor::shape(full) && a.as_slice().is_some())
                || (a.len() == 1 && a.ndim() <= full.ndim())
        };
        if args.iter().all(fits) {
            let one: [bool; N] = args.map(|a| a.len() == 1);
            let s: [&[T]; N] = args.map(|a| a.as_slice().expect("contiguous"));
            let mut out = Vec::with_capacity(n);
            out.extend(
                (0..n).map(|i| f.eval(std::array::from_fn(|k| s[k][if one[k] { 0 } else { i }]))),
            );
            return Tensor::from_vec(out, Tensor::shape(full)).expect("same length");
        }
        // Broadcast (or strided) operands: materialise each at the common shape, then run
        // the same loop.
        let mut target = shape.to_vec();
        for a in &args[1..] {
            target = ok(tensor::broadcast_shapes(
                "map_real",
                &target,
                Tensor::shape(a),
            ));
        }
        let owned: [Tensor<T>; N] = args.map(|a| a.broadcast_to(&target).to_contiguous());
        Self::map_real(f, std::array::from_fn(|i| &owned[i]))
    }
    fn add(&self, other: &Self) -> Self {
        ok(self.try_add(other))
    }
    fn sub(&self, other: &Self) -> Self {
        ok(self.try_sub(other))
    }
    fn mul(&self, other: &Self) -> Self {
        ok(self.try_mul(other))
    }
    fn div(&self, other: &Self) -> Self {
        ok(self.try_div(other))
    }
    fn neg(&self) -> Self {
        -self
    }
    fn scale(&self, c: T) -> Self {
        self * c
    }
    fn div_scalar(&self, c: T) -> Self {
        self / c
    }
    fn mul_const(&self, c: &Tensor<T>) -> Self {
        ok(self.try_mul(c))
    }
    fn matmul(&self, other: &Self) -> Self {
        ok(self.try_matmul(other))
    }
    fn matmul_pair(a: [&Self; 2], b: [&Self; 2], side_by_side: bool) -> (Self, Self) {
        let first = || ok(a[0].try_matmul(a[1]));
        let second = || ok(b[0].try_matmul(b[1]));
        if side_by_side {
            tensor::parallel::join(first, second)
        } else {
            (first(), second())
        }
    }
    fn transpose(&self) -> Self {
        ok(self.try_transpose())
    }
    fn permute(&self, axes: &[usize]) -> Self {
        ok(self.try_permute(axes))
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        ok(self.try_reshape(shape))
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        if Tensor::shape(self) == shape {
            return self.clone();
        }
        // Materialised: a broadcast view (zero strides) would slow every product and loop
        // that reads the gradient after it.
        ok(self.try_broadcast_to(shape)).to_contiguous()
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        ok(self.try_sum_to(shape))
    }
    fn sum(&self, axis: isize, keepdims: bool) -> Self {
        ok(self.try_sum(axis, keepdims))
    }
}

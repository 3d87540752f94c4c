//! Element-wise functions of one variable. Each is an [`Elementwise`]: its forward kernel and
//! its derivative, written once over [`Real`]. The one generic op [`Unary`] turns any of them
//! into a differentiable op: the fast sweep evaluates `dy * f'(x)` in one fused loop over
//! numbers, the recorded sweep evaluates the same `f'` on variables, so every function here
//! has second and higher derivatives without a second definition.

use tensor::{Element, Result, Tensor, cst};

use crate::op::{InputGrads, Op, Operand};
use crate::ops::unwrap_op;
use crate::real::{Real, RealFn};
use crate::tape::Var;

/// An element-wise function: a forward kernel on tensors and the derivative, written over
/// [`Real`] so that it serves the fast sweep and the recorded one.
///
/// ```
/// use autograd::{Elementwise, Real, Tape, Unary};
/// use tensor::{Result, Tensor};
///
/// /// `x^3`: derivative `3 x^2`.
/// struct Cube;
/// impl Elementwise<f64> for Cube {
///     fn name(&self) -> &'static str {
///         "cube"
///     }
///     fn forward(&self, x: &Tensor<f64>) -> Result<Tensor<f64>> {
///         Ok(x.map(|v| v * v * v))
///     }
///     fn derivative<R: Real<f64>>(&self, x: R) -> R {
///         x * x * 3.0
///     }
/// }
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(&Tensor::scalar(2.0));
/// let y = tape.apply(Unary(Cube), [x]).unwrap();
/// let d1 = y.grad(&[x]).unwrap()[0];
/// assert_eq!((d1.item(), d1.grad(&[x]).unwrap()[0].item()), (12.0, 12.0));
/// ```
pub trait Elementwise<T: Element>: Send + Sync + 'static {
    /// The op's name in errors and tape listings.
    fn name(&self) -> &'static str;
    /// The function on a whole tensor (the fast kernel).
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>>;
    /// Whether [`derivative`](Elementwise::derivative) is written in terms of the output
    /// `y = f(x)` instead of the input (`tanh' = 1 - y^2`): then the fused dense layer, which
    /// keeps only outputs, can use it too.
    const OF_OUTPUT: bool = false;
    /// `f'` at `arg`, the input `x` or, if [`OF_OUTPUT`](Elementwise::OF_OUTPUT), the output.
    fn derivative<R: Real<T>>(&self, arg: R) -> R;
}

/// The op of an [`Elementwise`] function.
pub struct Unary<F>(pub F);

/// `dy * f'(arg)`: the chain rule of an element-wise function.
pub(crate) struct Chain<'a, F>(pub(crate) &'a F);

impl<T: Element, F: Elementwise<T>> RealFn<T, 2> for Chain<'_, F> {
    #[inline(always)]
    fn eval<R: Real<T>>(&self, [g, arg]: [R; 2]) -> R {
        g * self.0.derivative(arg)
    }
}

impl<T: Element, F: Elementwise<T>> Op<T> for Unary<F> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        self.0.forward(x[0])
    }
    fn backward<V: Operand<T>>(&self, x: &[&V], y: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
        let arg = if F::OF_OUTPUT { y } else { x[0] };
        dx.set_with(0, || V::map_real(&Chain(&self.0), [dy, arg]));
    }
}

/// Declares the `Var` method that applies an element-wise function that cannot fail.
macro_rules! unary_method {
    ($(#[$doc:meta])* $name:ident => $f:expr) => {
        impl<'t, T: Element> Var<'t, T> {
            $(#[$doc])*
            pub fn $name(self) -> Var<'t, T> {
                unwrap_op(self.tape.apply(Unary($f), [self]))
            }
        }
    };
}

/// `e^x`; its derivative is its value.
pub struct Exp;

impl<T: Element> Elementwise<T> for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.exp())
    }
    const OF_OUTPUT: bool = true;
    fn derivative<R: Real<T>>(&self, y: R) -> R {
        y
    }
}
unary_method!(/// `e^x`, element-wise.
    exp => Exp);

/// `ln x`; derivative `1/x`.
pub struct Ln;

impl<T: Element> Elementwise<T> for Ln {
    fn name(&self) -> &'static str {
        "ln"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.ln())
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        x.cst(T::one()) / x
    }
}
unary_method!(/// The natural logarithm, element-wise.
    ln => Ln);

/// `sqrt x`; derivative `1 / (2 sqrt x)`.
pub struct Sqrt;

impl<T: Element> Elementwise<T> for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.sqrt())
    }
    const OF_OUTPUT: bool = true;
    fn derivative<R: Real<T>>(&self, y: R) -> R {
        y.cst(cst(0.5)) / y
    }
}
unary_method!(/// The square root, element-wise.
    sqrt => Sqrt);

/// `x^p` for a constant exponent `p`; derivative `p x^(p-1)`.
pub struct Powf<T>(pub T);

impl<T: Element> Elementwise<T> for Powf<T> {
    fn name(&self) -> &'static str {
        "powf"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.powf(self.0))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        x.powf(self.0 - T::one()) * self.0
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Each element raised to the constant power `p`.
    pub fn powf(self, p: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Powf(p)), [self]))
    }

    /// Each element squared (`self * self`).
    pub fn square(self) -> Var<'t, T> {
        self * self
    }
}

/// `|x|`; derivative `sign(x)` (0 at 0).
pub struct Abs;

impl<T: Element> Elementwise<T> for Abs {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.abs())
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        x.piecewise(|v| {
            if v > T::zero() {
                T::one()
            } else if v < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        })
    }
}
unary_method!(/// The absolute value, element-wise.
    abs => Abs);

/// `x` limited to `[min, max]`; derivative 1 inside the bounds (inclusive), 0 outside.
pub struct Clamp<T> {
    /// The lower bound.
    pub min: T,
    /// The upper bound.
    pub max: T,
}

impl<T: Element> Elementwise<T> for Clamp<T> {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        x.try_clamp(self.min, self.max)
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let (lo, hi) = (self.min, self.max);
        x.piecewise(|v| {
            if v >= lo && v <= hi {
                T::one()
            } else {
                T::zero()
            }
        })
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Limits every element to `[min, max]`.
    ///
    /// # Panics
    /// If `min > max`; see [`try_clamp`](Var::try_clamp).
    #[track_caller]
    pub fn clamp(self, min: T, max: T) -> Var<'t, T> {
        unwrap_op(self.try_clamp(min, max))
    }

    /// [`clamp`](Var::clamp) that returns an error for `min > max`.
    pub fn try_clamp(self, min: T, max: T) -> Result<Var<'t, T>> {
        self.tape.apply(Unary(Clamp { min, max }), [self])
    }
}

/// `max(x, 0)`; derivative 1 for `x > 0`, else 0 (read from the output: `y > 0` exactly
/// where `x > 0`).
pub struct Relu;

impl<T: Element> Elementwise<T> for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.relu())
    }
    const OF_OUTPUT: bool = true;
    fn derivative<R: Real<T>>(&self, y: R) -> R {
        y.piecewise(|v| if v > T::zero() { T::one() } else { T::zero() })
    }
}
unary_method!(/// `max(x, 0)`, element-wise.
    relu => Relu);

/// The logistic function; derivative `y (1 - y)`.
pub struct Sigmoid;

impl<T: Element> Elementwise<T> for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.sigmoid())
    }
    const OF_OUTPUT: bool = true;
    fn derivative<R: Real<T>>(&self, y: R) -> R {
        y * (y.cst(T::one()) - y)
    }
}
unary_method!(/// The logistic function `1 / (1 + e^-x)`, stable for any finite input.
    sigmoid => Sigmoid);

/// `ln(1 + e^x)`; derivative `sigmoid(x)`.
pub struct Softplus;

impl<T: Element> Elementwise<T> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.softplus())
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        x.sigmoid()
    }
}
unary_method!(/// `ln(1 + e^x)`, stable for any finite input.
    softplus => Softplus);

/// The hyperbolic tangent; derivative `1 - y^2`.
pub struct Tanh;

impl<T: Element> Elementwise<T> for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.tanh())
    }
    const OF_OUTPUT: bool = true;
    fn derivative<R: Real<T>>(&self, y: R) -> R {
        y.cst(T::one()) - y * y
    }
}
unary_method!(/// The hyperbolic tangent, element-wise.
    tanh => Tanh);

/// The Gauss error function; derivative `2/sqrt(pi) e^(-x^2)`. GELU's derivative is written
/// with it.
pub struct Erf;

impl<T: Element> Elementwise<T> for Erf {
    fn name(&self) -> &'static str {
        "erf"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.map(tensor::erf_scalar))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        (-(x * x)).exp() * cst::<T>(std::f64::consts::FRAC_2_SQRT_PI)
    }
}
unary_method!(/// The Gauss error function, element-wise.
    erf => Erf);

//! Element-wise functions of one variable, each with its derivative beside it.

use tensor::{Element, Result, Tensor, sigmoid_scalar};

use crate::op::{InputGrads, Op};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// Declares the `Var` method that applies a one-input op that cannot fail.
macro_rules! unary_method {
    ($(#[$doc:meta])* $name:ident => $op:expr) => {
        impl<'t, T: Element> Var<'t, T> {
            $(#[$doc])*
            pub fn $name(self) -> Var<'t, T> {
                unwrap_op(self.tape.apply($op, [self]))
            }
        }
    };
}

/// `e^x`; its derivative is its value.
pub struct ExpOp;

impl<T: Element> Op<T> for ExpOp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].exp())
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set(0, dy * y);
    }
}
unary_method!(/// `e^x`, element-wise.
    exp => ExpOp);

/// `ln x`; derivative `1/x`.
pub struct LnOp;

impl<T: Element> Op<T> for LnOp {
    fn name(&self) -> &'static str {
        "ln"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].ln())
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set(0, dy / x[0]);
    }
}
unary_method!(/// The natural logarithm, element-wise.
    ln => LnOp);

/// `sqrt x`; derivative `1 / (2 sqrt x)`.
pub struct SqrtOp;

impl<T: Element> Op<T> for SqrtOp {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sqrt())
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let two = T::one() + T::one();
        dx.set(0, dy / &(y * two));
    }
}
unary_method!(/// The square root, element-wise.
    sqrt => SqrtOp);

/// `x^p` for a constant exponent `p`; derivative `p x^(p-1)`.
pub struct PowfOp<T>(pub T);

impl<T: Element> Op<T> for PowfOp<T> {
    fn name(&self) -> &'static str {
        "powf"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].powf(self.0))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let p = self.0;
        dx.set(0, dy * &x[0].map(|v| p * v.powf(p - T::one())));
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Each element raised to the constant power `p`.
    pub fn powf(self, p: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(PowfOp(p), [self]))
    }

    /// Each element squared (`powf(2)`).
    pub fn square(self) -> Var<'t, T> {
        self * self
    }
}

/// `|x|`; derivative `sign(x)` (0 at 0).
pub struct AbsOp;

impl<T: Element> Op<T> for AbsOp {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].abs())
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set(0, dy * &x[0].signum());
    }
}
unary_method!(/// The absolute value, element-wise.
    abs => AbsOp);

/// `x` limited to `[min, max]`; derivative 1 inside the bounds (inclusive), 0 outside.
pub struct ClampOp<T> {
    pub min: T,
    pub max: T,
}

impl<T: Element> Op<T> for ClampOp<T> {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        x[0].try_clamp(self.min, self.max)
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let (lo, hi) = (self.min, self.max);
        let inside = x[0].map(|v| {
            if v >= lo && v <= hi {
                T::one()
            } else {
                T::zero()
            }
        });
        dx.set(0, dy * &inside);
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
        self.tape.apply(ClampOp { min, max }, [self])
    }
}

/// `max(x, 0)`; derivative 1 for `x > 0`, else 0.
pub struct ReluOp;

impl<T: Element> Op<T> for ReluOp {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].relu())
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        // y > 0 exactly where x > 0.
        dx.set_with(0, || {
            dy.try_zip_map(y, "relu_backward", |g, v| {
                if v > T::zero() { g } else { T::zero() }
            })
            .expect("same shape")
        });
    }
}
unary_method!(/// `max(x, 0)`, element-wise.
    relu => ReluOp);

/// The logistic function; derivative `y (1 - y)`.
pub struct SigmoidOp;

impl<T: Element> Op<T> for SigmoidOp {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].sigmoid())
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            dy.try_zip_map(y, "sigmoid_backward", |g, s| g * s * (T::one() - s))
                .expect("same shape")
        });
    }
}
unary_method!(/// The logistic function `1 / (1 + e^-x)`, stable for any finite input.
    sigmoid => SigmoidOp);

/// `ln(1 + e^x)`; derivative `sigmoid(x)`.
pub struct SoftplusOp;

impl<T: Element> Op<T> for SoftplusOp {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].softplus())
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            dy.try_zip_map(x[0], "softplus_backward", |g, v| g * sigmoid_scalar(v))
                .expect("same shape")
        });
    }
}
unary_method!(/// `ln(1 + e^x)`, stable for any finite input.
    softplus => SoftplusOp);

/// The hyperbolic tangent; derivative `1 - y^2`.
pub struct TanhOp;

impl<T: Element> Op<T> for TanhOp {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].tanh())
    }
    fn backward(
        &self,
        _: &[&Tensor<T>],
        y: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            dy.try_zip_map(y, "tanh_backward", |g, t| g * (T::one() - t * t))
                .expect("same shape")
        });
    }
}
unary_method!(/// The hyperbolic tangent, element-wise.
    tanh => TanhOp);

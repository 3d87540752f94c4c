//! Element-wise expressions written once, evaluated two ways.
//!
//! A derivative such as `tanh'(x) = 1 - tanh(x)^2` is written as a generic function over
//! [`Real`]. The fast first-order sweep evaluates it on plain numbers (`f32`, `f64`), fused
//! into one loop over the elements; the recorded sweep evaluates the same function on
//! [`Var`](crate::Var)s, so that each step of it is an op on the tape and the derivative can
//! be differentiated again. One definition serves both, so the two cannot disagree.

use std::ops::{Add, Div, Mul, Neg, Sub};

use tensor::{Element, erf_scalar, sigmoid_scalar, softplus_scalar};

/// A number an element-wise formula can compute with: a plain element (`f32`, `f64`) or a
/// variable on a tape (then each operation records itself).
///
/// Arithmetic works between two values and with a plain constant on the right (`x * 2.0`);
/// [`cst`](Real::cst) makes a constant for the left (`x.cst(1.0) - y * y`).
pub trait Real<T: Element>:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<T, Output = Self>
    + Sub<T, Output = Self>
    + Mul<T, Output = Self>
    + Div<T, Output = Self>
{
    /// The constant `c` (for a variable: a scalar constant on its tape).
    fn cst(self, c: T) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// The natural logarithm.
    fn ln(self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// `self^p`.
    fn powf(self, p: T) -> Self;
    /// The hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The logistic function, stable for any input.
    fn sigmoid(self) -> Self;
    /// `ln(1 + e^x)`, stable for any input.
    fn softplus(self) -> Self;
    /// The Gauss error function.
    fn erf(self) -> Self;
    /// `|self|`.
    fn abs(self) -> Self;
    /// `f` of each element, for a piecewise-constant `f` (a mask, a sign, a slope chosen by
    /// the side of a kink): its derivative is zero, so on a tape the result is a constant.
    fn piecewise(self, f: impl Fn(T) -> T) -> Self;
    /// `on_true` where `cond` is non-zero and `on_false` elsewhere; `cond` is piecewise
    /// constant (from [`piecewise`](Real::piecewise)), so only the chosen side is
    /// differentiated. Unlike `cond * a + (1 - cond) * b`, an infinite unchosen side does not
    /// turn the value into NaN; its derivative can still be NaN (a zero gradient times an
    /// infinite slope), so keep the unchosen side finite (`e^min(x, 0)`, not `e^x`).
    fn select(cond: Self, on_true: Self, on_false: Self) -> Self;
}

impl<T: Element> Real<T> for T {
    #[inline(always)]
    fn cst(self, c: T) -> T {
        c
    }
    #[inline(always)]
    fn exp(self) -> T {
        self.fast_exp()
    }
    #[inline(always)]
    fn ln(self) -> T {
        Self::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> T {
        Self::sqrt(self)
    }
    #[inline(always)]
    fn powf(self, p: T) -> T {
        Self::powf(self, p)
    }
    #[inline(always)]
    fn tanh(self) -> T {
        self.fast_tanh()
    }
    #[inline(always)]
    fn sigmoid(self) -> T {
        sigmoid_scalar(self)
    }
    #[inline(always)]
    fn softplus(self) -> T {
        softplus_scalar(self)
    }
    #[inline(always)]
    fn erf(self) -> T {
        erf_scalar(self)
    }
    #[inline(always)]
    fn abs(self) -> T {
        Self::abs(self)
    }
    #[inline(always)]
    fn piecewise(self, f: impl Fn(T) -> T) -> T {
        f(self)
    }
    #[inline(always)]
    fn select(cond: T, on_true: T, on_false: T) -> T {
        if cond != T::zero() { on_true } else { on_false }
    }
}

/// An element-wise function of `N` arguments written over [`Real`], such as the chain rule
/// `g * f'(x)` of an activation. [`Operand::map_real`](crate::Operand::map_real) evaluates it
/// over tensors (one fused loop) or variables (recorded, differentiable).
pub trait RealFn<T: Element, const N: usize>: Sync {
    /// The function of `args`, in any [`Real`]: values or recorded variables.
    fn eval<R: Real<T>>(&self, args: [R; N]) -> R;
}

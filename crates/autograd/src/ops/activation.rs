//! The activation functions of Keras beyond the basic ones in `unary`: each an
//! [`Elementwise`] function (one pass forward, one fused pass backward) whose derivative,
//! written once over [`Real`], also gives its second and higher derivatives.

use tensor::{Element, Result, Tensor, cst, gelu_scalar, sigmoid_scalar};

use crate::ops::unary::{Elementwise, Unary};
use crate::ops::unwrap_op;
use crate::real::Real;
use crate::tape::Var;

/// `x` for `x >= 0`, `alpha x` otherwise (Keras: gradient 1 at 0).
pub struct LeakyRelu<T>(pub T);

impl<T: Element> Elementwise<T> for LeakyRelu<T> {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let a = self.0;
        Ok(x.map(|v| if v >= T::zero() { v } else { a * v }))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let a = self.0;
        x.piecewise(|v| if v >= T::zero() { T::one() } else { a })
    }
}

/// `x` for `x > 0`, `alpha (e^x - 1)` otherwise.
pub struct Elu<T>(pub T);

impl<T: Element> Elementwise<T> for Elu<T> {
    fn name(&self) -> &'static str {
        "elu"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let a = self.0;
        Ok(x.map(|v| if v > T::zero() { v } else { a * v.exp_m1() }))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let positive = x.piecewise(|v| if v > T::zero() { T::one() } else { T::zero() });
        // e^min(x, 0): the unchosen side stays finite, so its zero gradient stays zero (e^x
        // overflows above 88 in f32, and 0 * inf would make the second derivative NaN).
        let negative_part = R::select(positive, x.cst(T::zero()), x);
        R::select(positive, x.cst(T::one()), negative_part.exp() * self.0)
    }
}

/// SELU's constants (Klambauer et al. 2017), as Keras uses them.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// See [`SELU_ALPHA`].
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// `scale * elu(x, alpha)` with the self-normalising constants.
pub struct Selu;

impl<T: Element> Elementwise<T> for Selu {
    fn name(&self) -> &'static str {
        "selu"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let (a, s) = (cst::<T>(SELU_ALPHA), cst::<T>(SELU_SCALE));
        Ok(x.map(|v| {
            if v > T::zero() {
                s * v
            } else {
                s * a * v.exp_m1()
            }
        }))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let (a, s) = (cst::<T>(SELU_ALPHA), cst::<T>(SELU_SCALE));
        let positive = x.piecewise(|v| if v > T::zero() { T::one() } else { T::zero() });
        // e^min(x, 0), as in Elu: finite on the unchosen side.
        let negative_part = R::select(positive, x.cst(T::zero()), x);
        R::select(positive, x.cst(s), negative_part.exp() * (s * a))
    }
}

/// The exact GELU `x Phi(x)`; derivative `Phi(x) + x phi(x)`.
pub struct Gelu;

impl<T: Element> Elementwise<T> for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.map(gelu_scalar))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let half = cst::<T>(0.5);
        let cdf = ((x * cst::<T>(std::f64::consts::FRAC_1_SQRT_2)).erf() + T::one()) * half;
        let pdf = (x * x * (-half)).exp() * cst::<T>(0.398_942_280_401_432_7);
        cdf + x * pdf
    }
}

/// `x / (1 + |x|)`; derivative `1 / (1 + |x|)^2`.
pub struct Softsign;

impl<T: Element> Elementwise<T> for Softsign {
    fn name(&self) -> &'static str {
        "softsign"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.map(|v| v / (T::one() + v.abs())))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let d = x.abs() + T::one();
        x.cst(T::one()) / (d * d)
    }
}

/// Swish (SiLU) `x sigmoid(x)`; derivative `s + x s (1 - s)`.
pub struct Swish;

impl<T: Element> Elementwise<T> for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.map(|v| v * sigmoid_scalar(v)))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let s = x.sigmoid();
        s + x * s * (x.cst(T::one()) - s)
    }
}

/// Keras 3's hard sigmoid `relu6(x + 3) / 6`, i.e. `clip(x / 6 + 1/2, 0, 1)`; derivative
/// `1/6` where `-3 < x < 3`, else 0.
pub struct HardSigmoid;

impl<T: Element> Elementwise<T> for HardSigmoid {
    fn name(&self) -> &'static str {
        "hard_sigmoid"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let (three, six) = (cst::<T>(3.0), cst::<T>(6.0));
        Ok(x.map(|v| (v + three).max(T::zero()).min(six) / six))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        let (three, sixth) = (cst::<T>(3.0), cst::<T>(1.0 / 6.0));
        x.piecewise(|v| {
            if v > -three && v < three {
                sixth
            } else {
                T::zero()
            }
        })
    }
}

/// The Heaviside step: 1 for `x >= 0`, else 0 (the perceptron's activation). Its derivative
/// is 0 wherever it exists, so no gradient flows through it.
pub struct Step;

impl<T: Element> Elementwise<T> for Step {
    fn name(&self) -> &'static str {
        "step"
    }
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.map(|v| if v >= T::zero() { T::one() } else { T::zero() }))
    }
    fn derivative<R: Real<T>>(&self, x: R) -> R {
        x.piecewise(|_| T::zero())
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// `x` for `x > 0`, `negative_slope * x` otherwise (Keras's default slope is 0.2).
    pub fn leaky_relu(self, negative_slope: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(LeakyRelu(negative_slope)), [self]))
    }

    /// `x` for `x > 0`, `alpha (e^x - 1)` otherwise (Keras's default alpha is 1).
    pub fn elu(self, alpha: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Elu(alpha)), [self]))
    }

    /// The scaled ELU with the self-normalising constants.
    pub fn selu(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Selu), [self]))
    }

    /// The exact (erf) GELU, Keras's default (`approximate=False`).
    pub fn gelu(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Gelu), [self]))
    }

    /// `x / (1 + |x|)`.
    pub fn softsign(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Softsign), [self]))
    }

    /// Swish, also called SiLU: `x * sigmoid(x)`.
    pub fn swish(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Swish), [self]))
    }

    /// Keras 3's hard sigmoid, `clip(x / 6 + 0.5, 0, 1)`.
    pub fn hard_sigmoid(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(HardSigmoid), [self]))
    }

    /// The Heaviside step function, 1 for `x >= 0` and 0 below (no gradient flows).
    pub fn step(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(Unary(Step), [self]))
    }
}

//! The activation functions of Keras beyond the basic ones in `unary`: each is one fused op
//! (one pass forward, one pass backward) with its derivative beside it.

use tensor::{Element, Result, Tensor, cst, erf_scalar, gelu_scalar, sigmoid_scalar};

use crate::op::{InputGrads, Op};
use crate::ops::unwrap_op;
use crate::tape::Var;

/// `dy * d(x)` element-wise: the backward of an element-wise function with derivative `d`.
fn chain<T: Element>(dy: &Tensor<T>, x: &Tensor<T>, d: impl Fn(T) -> T) -> Tensor<T> {
    dy.try_zip_map(x, "activation_backward", |g, v| g * d(v))
        .expect("gradient has the input's shape")
}

/// `x` for `x >= 0`, `alpha x` otherwise (Keras: gradient 1 at 0).
pub struct LeakyReluOp<T>(pub T);

impl<T: Element> Op<T> for LeakyReluOp<T> {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let a = self.0;
        Ok(x[0].map(|v| if v >= T::zero() { v } else { a * v }))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let a = self.0;
        dx.set_with(0, || {
            chain(dy, x[0], |v| if v >= T::zero() { T::one() } else { a })
        });
    }
}

/// `x` for `x > 0`, `alpha (e^x - 1)` otherwise.
pub struct EluOp<T>(pub T);

impl<T: Element> Op<T> for EluOp<T> {
    fn name(&self) -> &'static str {
        "elu"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let a = self.0;
        Ok(x[0].map(|v| if v > T::zero() { v } else { a * v.exp_m1() }))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let a = self.0;
        dx.set_with(0, || {
            chain(
                dy,
                x[0],
                |v| if v > T::zero() { T::one() } else { a * v.exp() },
            )
        });
    }
}

/// SELU's constants (Klambauer et al. 2017), as Keras uses them.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// See [`SELU_ALPHA`].
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// `scale * elu(x, alpha)` with the self-normalising constants.
pub struct SeluOp;

impl<T: Element> Op<T> for SeluOp {
    fn name(&self) -> &'static str {
        "selu"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let (a, s) = (cst::<T>(SELU_ALPHA), cst::<T>(SELU_SCALE));
        Ok(x[0].map(|v| {
            if v > T::zero() {
                s * v
            } else {
                s * a * v.exp_m1()
            }
        }))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let (a, s) = (cst::<T>(SELU_ALPHA), cst::<T>(SELU_SCALE));
        dx.set_with(0, || {
            chain(
                dy,
                x[0],
                |v| if v > T::zero() { s } else { s * a * v.exp() },
            )
        });
    }
}

/// The exact GELU `x Phi(x)`; derivative `Phi(x) + x phi(x)`.
pub struct GeluOp;

impl<T: Element> Op<T> for GeluOp {
    fn name(&self) -> &'static str {
        "gelu"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(gelu_scalar))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let half = cst::<T>(0.5);
        let inv_sqrt2 = cst::<T>(std::f64::consts::FRAC_1_SQRT_2);
        let inv_sqrt_2pi = cst::<T>(0.398_942_280_401_432_7);
        dx.set_with(0, || {
            chain(dy, x[0], |v| {
                let cdf = half * (T::one() + erf_scalar(v * inv_sqrt2));
                let pdf = inv_sqrt_2pi * (-half * v * v).exp();
                cdf + v * pdf
            })
        });
    }
}

/// `x / (1 + |x|)`; derivative `1 / (1 + |x|)^2`.
pub struct SoftsignOp;

impl<T: Element> Op<T> for SoftsignOp {
    fn name(&self) -> &'static str {
        "softsign"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| v / (T::one() + v.abs())))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            chain(dy, x[0], |v| {
                let d = T::one() + v.abs();
                T::one() / (d * d)
            })
        });
    }
}

/// Swish (SiLU) `x sigmoid(x)`; derivative `s + x s (1 - s)`.
pub struct SwishOp;

impl<T: Element> Op<T> for SwishOp {
    fn name(&self) -> &'static str {
        "swish"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| v * sigmoid_scalar(v)))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        dx.set_with(0, || {
            chain(dy, x[0], |v| {
                let s = sigmoid_scalar(v);
                s + v * s * (T::one() - s)
            })
        });
    }
}

/// Keras 3's hard sigmoid `relu6(x + 3) / 6`, i.e. `clip(x / 6 + 1/2, 0, 1)`; derivative
/// `1/6` where `-3 < x < 3`, else 0.
pub struct HardSigmoidOp;

impl<T: Element> Op<T> for HardSigmoidOp {
    fn name(&self) -> &'static str {
        "hard_sigmoid"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let (three, six) = (cst::<T>(3.0), cst::<T>(6.0));
        Ok(x[0].map(|v| (v + three).max(T::zero()).min(six) / six))
    }
    fn backward(
        &self,
        x: &[&Tensor<T>],
        _: &Tensor<T>,
        dy: &Tensor<T>,
        dx: &mut InputGrads<'_, T>,
    ) {
        let (three, sixth) = (cst::<T>(3.0), cst::<T>(1.0 / 6.0));
        dx.set_with(0, || {
            chain(dy, x[0], |v| {
                if v > -three && v < three {
                    sixth
                } else {
                    T::zero()
                }
            })
        });
    }
}

/// The Heaviside step: 1 for `x >= 0`, else 0 (the perceptron's activation). Its derivative
/// is 0 wherever it exists, so no gradient flows through it.
pub struct StepOp;

impl<T: Element> Op<T> for StepOp {
    fn name(&self) -> &'static str {
        "step"
    }
    fn forward(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(x[0].map(|v| if v >= T::zero() { T::one() } else { T::zero() }))
    }
    fn backward(&self, x: &[&Tensor<T>], _: &Tensor<T>, _: &Tensor<T>, dx: &mut InputGrads<'_, T>) {
        dx.set_with(0, || x[0].zeros_like());
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// `x` for `x > 0`, `negative_slope * x` otherwise (Keras's default slope is 0.2).
    pub fn leaky_relu(self, negative_slope: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(LeakyReluOp(negative_slope), [self]))
    }

    /// `x` for `x > 0`, `alpha (e^x - 1)` otherwise (Keras's default alpha is 1).
    pub fn elu(self, alpha: T) -> Var<'t, T> {
        unwrap_op(self.tape.apply(EluOp(alpha), [self]))
    }

    /// The scaled ELU with the self-normalising constants.
    pub fn selu(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(SeluOp, [self]))
    }

    /// The exact (erf) GELU, Keras's default (`approximate=False`).
    pub fn gelu(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(GeluOp, [self]))
    }

    /// `x / (1 + |x|)`.
    pub fn softsign(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(SoftsignOp, [self]))
    }

    /// Swish, also called SiLU: `x * sigmoid(x)`.
    pub fn swish(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(SwishOp, [self]))
    }

    /// Keras 3's hard sigmoid, `clip(x / 6 + 0.5, 0, 1)`.
    pub fn hard_sigmoid(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(HardSigmoidOp, [self]))
    }

    /// The Heaviside step function, 1 for `x >= 0` and 0 below (no gradient flows).
    pub fn step(self) -> Var<'t, T> {
        unwrap_op(self.tape.apply(StepOp, [self]))
    }
}

//! Element-wise functions of one tensor. The activation functions here are written in their
//! numerically stable forms: `sigmoid` and `softplus` stay finite and accurate for any finite
//! input (|x| up to 1e4 and beyond).

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// The logistic function `1 / (1 + e^-x)`, evaluated without overflow: for negative `x` it
/// uses the equal form `e^x / (1 + e^x)`. Both take `e^-|x|`, so the choice is a select and
/// a loop over it vectorizes.
#[inline]
pub fn sigmoid_scalar<T: Element>(x: T) -> T {
    let e = (-x.abs()).fast_exp();
    let numerator = if x >= T::zero() { T::one() } else { e };
    numerator / (T::one() + e)
}

/// `ln(1 + e^x)`, evaluated as `max(x, 0) + ln(1 + e^-|x|)` so it never overflows.
#[inline]
pub fn softplus_scalar<T: Element>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// The Gauss error function, accurate to about one ulp (from `libm`).
#[inline]
pub fn erf_scalar<T: Element>(x: T) -> T {
    T::from_f64_lossy(libm::erf(x.to_f64_exact()))
}

/// The exact GELU, `x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`.
#[inline]
pub fn gelu_scalar<T: Element>(x: T) -> T {
    let xf = x.to_f64_exact();
    T::from_f64_lossy(0.5 * xf * (1.0 + libm::erf(xf * std::f64::consts::FRAC_1_SQRT_2)))
}

impl<T: Element> Tensor<T> {
    /// `e^x`.
    pub fn exp(&self) -> Tensor<T> {
        self.map(T::exp)
    }

    /// The natural logarithm (`-inf` at 0, NaN below).
    pub fn ln(&self) -> Tensor<T> {
        self.map(T::ln)
    }

    /// The square root (NaN below 0).
    pub fn sqrt(&self) -> Tensor<T> {
        self.map(T::sqrt)
    }

    /// Each element raised to the power `p`.
    pub fn powf(&self, p: T) -> Tensor<T> {
        self.map(|x| x.powf(p))
    }

    /// The absolute value.
    pub fn abs(&self) -> Tensor<T> {
        self.map(T::abs)
    }

    /// `-1`, `0` or `1` by the sign of each element (0 for 0 and NaN).
    pub fn signum(&self) -> Tensor<T> {
        self.map(|x| {
            if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        })
    }

    /// Limits every element to `[min, max]`.
    ///
    /// # Panics
    /// If `min > max` or a bound is NaN; see [`try_clamp`](Self::try_clamp).
    pub fn clamp(&self, min: T, max: T) -> Tensor<T> {
        self.try_clamp(min, max).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`clamp`](Self::clamp) that returns an error for `min > max` or a NaN bound.
    pub fn try_clamp(&self, min: T, max: T) -> Result<Tensor<T>> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(TensorError::invalid(
                "clamp",
                format!("needs min <= max, got min {min}, max {max}"),
            ));
        }
        Ok(self.map(|x| x.max(min).min(max)))
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor<T> {
        self.map(|x| if x > T::zero() { x } else { T::zero() })
    }

    /// The logistic function `1 / (1 + e^-x)`, stable for any finite input.
    pub fn sigmoid(&self) -> Tensor<T> {
        self.map(sigmoid_scalar)
    }

    /// `ln(1 + e^x)`, stable for any finite input.
    pub fn softplus(&self) -> Tensor<T> {
        self.map(softplus_scalar)
    }

    /// The hyperbolic tangent (through [`Element::fast_tanh`], so it vectorizes).
    pub fn tanh(&self) -> Tensor<T> {
        self.map(T::fast_tanh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_and_softplus_stay_finite_and_accurate_at_large_magnitudes() {
        let x = Tensor::<f32>::from_vec(vec![-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], &[7])
            .unwrap();
        let s = x.sigmoid().to_vec();
        assert!(s.iter().all(|v| v.is_finite()));
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 0.5);
        assert_eq!(s[6], 1.0);
        assert!((s[2] - 2.0611537e-9).abs() < 1e-15);
        let sp = x.softplus().to_vec();
        assert!(sp.iter().all(|v| v.is_finite()));
        assert_eq!(sp[0], 0.0);
        assert_eq!(sp[6], 1e4);
        assert!((sp[3] - std::f32::consts::LN_2).abs() < 1e-7);
        assert!((sp[2] - 2.0611537e-9).abs() < 1e-15);
    }

    #[test]
    fn elementwise_functions_match_std() {
        let x = Tensor::<f64>::from_vec(vec![0.25, 1.0, 4.0], &[3]).unwrap();
        assert_eq!(x.sqrt().to_vec(), vec![0.5, 1.0, 2.0]);
        assert_eq!(x.powf(2.0).to_vec(), vec![0.0625, 1.0, 16.0]);
        assert_eq!(x.ln().to_vec()[1], 0.0);
        assert_eq!(x.exp().to_vec()[1], std::f64::consts::E);
        let y = Tensor::<f64>::from_vec(vec![-2.0, -0.5, 0.0, 3.0], &[4]).unwrap();
        assert_eq!(y.abs().to_vec(), vec![2.0, 0.5, 0.0, 3.0]);
        assert_eq!(y.relu().to_vec(), vec![0.0, 0.0, 0.0, 3.0]);
        assert_eq!(y.clamp(-1.0, 1.0).to_vec(), vec![-1.0, -0.5, 0.0, 1.0]);
        assert_eq!(y.signum().to_vec(), vec![-1.0, -1.0, 0.0, 1.0]);
        assert_eq!(y.tanh().to_vec()[3], 3.0f64.tanh());
    }

    #[test]
    fn clamp_rejects_inverted_bounds() {
        let y = Tensor::<f64>::zeros(&[2]);
        let e = y.try_clamp(1.0, -1.0).unwrap_err();
        assert_eq!(e.to_string(), "clamp: needs min <= max, got min 1, max -1");
    }
}

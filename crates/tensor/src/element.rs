//! The element types a [`Tensor`](crate::Tensor) can hold.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive};
use rand_distr::uniform::SampleUniform;

/// A floating-point element type: `f32` (the default everywhere) or `f64` (what gradient
/// checks use).
///
/// Everything in brick that is generic over the element type is generic over `Element`, so
/// a model or a tape can run in double precision by naming `f64` once.
pub trait Element:
    Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + SampleUniform
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The type's name as users write it (`"f32"` or `"f64"`), used in messages and files.
    const DTYPE: &'static str;

    /// Converts an `f64` constant to this type (rounding to nearest for `f32`).
    fn from_f64_lossy(x: f64) -> Self;

    /// Widens to `f64`, exactly.
    fn to_f64_exact(self) -> f64;

    /// `e^x` for the hot loops (softmax, cross-entropy, sigmoid).
    ///
    /// For `f32` it is straight-line arithmetic, no library call, so that a loop over it
    /// vectorizes: a range reduction `x = n ln 2 + r` and a degree-6 polynomial for `e^r`
    /// (Cephes's `expf`), within 2 ulp of the exact value. Results below `2^-126` (`x` below
    /// -87.34) flush to zero; above the largest `f32` they are infinity; NaN stays NaN. For
    /// `f64` it is the library's `exp` (double precision serves gradient checks, where
    /// accuracy comes first).
    ///
    /// ```
    /// use tensor::Element;
    /// assert!((1.0f32.fast_exp() - std::f32::consts::E).abs() <= 2.0 * f32::EPSILON);
    /// assert_eq!((-100.0f32).fast_exp(), 0.0);
    /// ```
    fn fast_exp(self) -> Self;

    /// `tanh(x)` for the hot loops, like [`fast_exp`](Element::fast_exp): for `f32` straight-line
    /// arithmetic (Cephes's `tanhf`: an odd polynomial below |x| = 0.625, `1 - 2 / (e^2|x| + 1)`
    /// above), within 2 ulp; for `f64` the library's `tanh`.
    ///
    /// ```
    /// use tensor::Element;
    /// assert!((0.5f32.fast_tanh() - 0.5f32.tanh()).abs() <= 2.0 * f32::EPSILON);
    /// assert_eq!(20.0f32.fast_tanh(), 1.0);
    /// ```
    fn fast_tanh(self) -> Self;

    /// Runs `f` with this thread's scratch buffer of this element type: a vector kept from
    /// one call to the next, so that a kernel's working space (a convolution's patches) is
    /// allocated once per thread, not once per step. Its length and contents are whatever
    /// the last user left. A nested call gets an empty vector of its own.
    ///
    /// ```
    /// use tensor::Element;
    /// let len = f32::with_scratch(|buf| {
    ///     buf.resize(4, 0.0);
    ///     buf.len()
    /// });
    /// assert_eq!(len, 4);
    /// ```
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
}

/// Lends `cell`'s vector to `f` and takes it back afterwards (a nested call finds the cell
/// empty and starts a vector of its own, which it leaves there).
fn lend<T, R>(cell: &std::cell::Cell<Vec<T>>, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
    let mut buf = cell.take();
    let result = f(&mut buf);
    cell.set(buf);
    result
}

impl Element for f32 {
    const DTYPE: &'static str = "f32";
    #[inline]
    fn from_f64_lossy(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64_exact(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn fast_exp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> f32 {
        tanh_f32(self)
    }
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
        thread_local!(static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) });
        SCRATCH.with(|cell| lend(cell, f))
    }
}

impl Element for f64 {
    const DTYPE: &'static str = "f64";
    #[inline]
    fn from_f64_lossy(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64_exact(self) -> f64 {
        self
    }
    #[inline]
    fn fast_exp(self) -> f64 {
        self.exp()
    }
    #[inline]
    fn fast_tanh(self) -> f64 {
        self.tanh()
    }
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<f64>) -> R) -> R {
        thread_local!(static SCRATCH: std::cell::Cell<Vec<f64>> = const { std::cell::Cell::new(Vec::new()) });
        SCRATCH.with(|cell| lend(cell, f))
    }
}

/// Cephes's `expf` without branches (see [`Element::fast_exp`]).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // Below this, e^x is not a normal f32; above the next, it overflows.
    const MIN: f32 = -87.336_55;
    const MAX: f32 = 88.722_83;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (|v| < 2^22) without a
    // library call.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(MIN, MAX);
    let rounded = xc * std::f32::consts::LOG2_E + ROUND;
    let n = rounded - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001e-1, which is 0.5 in f32
    let y = p * r * r + r + 1.0;
    // 2^n as two normal factors (n runs from -126 to 128). `rounded` lies in
    // [2^23, 2^24), where one unit is one step of the mantissa, so its bits less ROUND's are
    // n as an integer: `n as i32` would give the same, but its saturating conversion is not
    // vectorized (each lane went through a scalar conversion, a third of the time).
    let n = (rounded.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let half = n >> 1;
    let pow2 = |e: i32| f32::from_bits((e.wrapping_add(127) as u32) << 23);
    let e = y * pow2(half) * pow2(n.wrapping_sub(half));
    if x < MIN {
        0.0
    } else if x > MAX {
        f32::INFINITY
    } else {
        e
    }
}

/// Cephes's `tanhf` without branches (see [`Element::fast_tanh`]).
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: x + x^3 P(x^2), no cancellation near 0.
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    // Larger |x|: 1 - 2 / (e^2|x| + 1), which saturates to 1 (e^2|x| overflows to infinity
    // beyond |x| = 44, giving exactly 1).
    let large = (1.0 - 2.0 / ((2.0 * a).fast_exp() + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// Shorthand for a constant of element type `T`: `cst::<T>(0.5)`.
#[inline]
pub fn cst<T: Element>(x: f64) -> T {
    T::from_f64_lossy(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between an f32 and an exact value.
    fn ulps(got: f32, exact: f64) -> f64 {
        let e = exact as f32;
        let ulp = (f32::from_bits(e.to_bits() + 1) - e) as f64;
        (got as f64 - exact).abs() / ulp
    }

    #[test]
    fn fast_exp_is_within_two_ulp_over_the_normal_range() {
        let mut worst = (0.0, 0.0f32);
        let n = 2_000_000;
        for i in 0..=n {
            let x = -87.3f32 + (88.7 + 87.3) * i as f32 / n as f32;
            let d = ulps(x.fast_exp(), (x as f64).exp());
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn fast_tanh_is_within_two_ulp() {
        let mut worst = (0.0, 0.0f32);
        let n = 1_000_000;
        for i in 0..=n {
            // Dense near 0 (where cancellation would show) and out to saturation.
            let t = i as f32 / n as f32;
            for x in [t * t * 12.0, -t * t * 12.0, t * 1e-3] {
                let d = ulps(x.fast_tanh(), (x as f64).tanh());
                if d > worst.0 {
                    worst = (d, x);
                }
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
        assert_eq!(0.0f32.fast_tanh(), 0.0);
        assert_eq!(50.0f32.fast_tanh(), 1.0);
        assert_eq!(f32::NEG_INFINITY.fast_tanh(), -1.0);
        assert!(f32::NAN.fast_tanh().is_nan());
        assert_eq!(0.3f64.fast_tanh(), 0.3f64.tanh());
    }

    #[test]
    fn fast_exp_and_tanh_give_the_same_bits_vectorized_as_one_at_a_time() {
        use crate::simd::{Level, dispatch_at};
        // Every 97th f32 from -100 to 100 (all of the range where exp is not 0 or inf),
        // with the ends and NaN.
        let mut x: Vec<f32> = Vec::new();
        let mut v = -100.0f32;
        while v < 100.0 {
            x.push(v);
            v = f32::from_bits(if v < 0.0 {
                v.to_bits() - 97
            } else {
                v.to_bits() + 97
            });
            if v.to_bits() == 0x8000_0000 || v.is_nan() {
                v = 0.0;
            }
        }
        x.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN,
            f32::MAX,
            -0.0,
        ]);
        let run = |level: Level| {
            let mut out = vec![0.0f32; 2 * x.len()];
            dispatch_at(
                level,
                #[inline(always)]
                || {
                    let (e, t) = out.split_at_mut(x.len());
                    for ((e, t), &x) in e.iter_mut().zip(t.iter_mut()).zip(&x) {
                        *e = x.fast_exp();
                        *t = x.fast_tanh();
                    }
                },
            );
            out
        };
        let one_at_a_time = run(Level::Baseline);
        assert!(x.len() > 100_000);
        for level in [Level::Avx2, Level::Avx512] {
            let vectorized = run(level);
            for (i, (a, b)) in one_at_a_time.iter().zip(&vectorized).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{level:?}: {a} vs {b} at {}",
                    x[i % x.len()]
                );
            }
        }
    }

    #[test]
    fn fast_exp_ends_and_special_values() {
        assert_eq!(0.0f32.fast_exp(), 1.0);
        assert_eq!((-87.4f32).fast_exp(), 0.0);
        assert_eq!(f32::NEG_INFINITY.fast_exp(), 0.0);
        assert_eq!(88.8f32.fast_exp(), f32::INFINITY);
        assert_eq!(f32::INFINITY.fast_exp(), f32::INFINITY);
        assert!(f32::NAN.fast_exp().is_nan());
        // The top of the range is finite, not clamped: e^88.72 is about 3.4e38.
        let top = 88.72f32.fast_exp();
        let exact = (88.72f32 as f64).exp();
        assert!(
            top.is_finite() && ulps(top, exact) <= 2.0,
            "{top} vs {exact}"
        );
        assert_eq!(1.5f64.fast_exp(), 1.5f64.exp());
    }
}

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
}

/// Shorthand for a constant of element type `T`: `cst::<T>(0.5)`.
#[inline]
pub fn cst<T: Element>(x: f64) -> T {
    T::from_f64_lossy(x)
}

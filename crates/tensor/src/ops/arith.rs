//! Element-wise arithmetic with NumPy broadcasting: `+ - * /` between tensors (owned or
//! borrowed) and with scalars, `maximum`/`minimum`, and in-place updates.

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use ndarray::{IxDyn, Zip};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::shape::broadcast_shapes;
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Combines two tensors element by element with `f`, broadcasting their shapes; `op` names
    /// the operation in the error if the shapes do not broadcast.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 5.0], &[2, 1]).unwrap();
    /// let b = Tensor::from_vec(vec![2.0f32, 3.0, 4.0], &[3]).unwrap();
    /// let hyp = a.try_zip_map(&b, "hypot", |x, y| x.hypot(y)).unwrap();
    /// assert_eq!(hyp.shape(), &[2, 3]);
    /// ```
    pub fn try_zip_map(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T,
    ) -> Result<Tensor<T>> {
        if self.shape() == other.shape() {
            if let (Some(a), Some(b)) = (self.as_slice(), other.as_slice()) {
                // A zipped loop over equal-length slices, vectorized for the processor
                // (`simd::dispatch`), writing the output once (appending instead counts the
                // length up element by element, which can keep the loop scalar).
                // SAFETY: `a` and `b` have the same shape, so the zipped loop writes each of
                // the `a.len()` elements.
                let v = unsafe {
                    crate::memory::write_once(a.len(), |v| {
                        crate::simd::dispatch(
                            #[inline(always)]
                            || {
                                for ((v, &a), &b) in v.iter_mut().zip(a).zip(b) {
                                    v.write(f(a, b));
                                }
                            },
                        )
                    })
                };
                return Ok(Tensor::from_vec(v, self.shape()).expect("same length"));
            }
            let out = Zip::from(&self.data)
                .and(&other.data)
                .map_collect(|&x, &y| f(x, y));
            return Ok(Tensor::from_array(out));
        }
        let shape = broadcast_shapes(op, self.shape(), other.shape())?;
        let a = self.data.broadcast(IxDyn(&shape)).expect("shape checked");
        let b = other.data.broadcast(IxDyn(&shape)).expect("shape checked");
        Ok(Tensor::from_array(
            Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)),
        ))
    }

    /// Updates `self` in place with `f(self, other)`, broadcasting `other` to `self`'s shape.
    /// Copies first if the storage is shared.
    pub fn try_zip_map_inplace(
        &mut self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T,
    ) -> Result<()> {
        if self.shape() == other.shape() {
            if self.data.is_standard_layout()
                && let Some(b) = other.as_slice()
            {
                let a = self.as_slice_mut();
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
                    },
                );
                return Ok(());
            }
            Zip::from(&mut self.data)
                .and(&other.data)
                .for_each(|x, &y| *x = f(*x, y));
            return Ok(());
        }
        let target = self.shape().to_vec();
        let b = other
            .data
            .broadcast(IxDyn(&target))
            .ok_or_else(|| TensorError::ShapeMismatch {
                op,
                lhs: target.clone(),
                rhs: other.shape().to_vec(),
            })?;
        Zip::from(&mut self.data)
            .and(b)
            .for_each(|x, &y| *x = f(*x, y));
        Ok(())
    }

    /// `self + other` with broadcasting, or an error naming both shapes.
    pub fn try_add(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "add", |a, b| a + b)
    }

    /// `self - other` with broadcasting, or an error naming both shapes.
    pub fn try_sub(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "sub", |a, b| a - b)
    }

    /// `self * other` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_mul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "mul", |a, b| a * b)
    }

    /// `self / other` (element-wise) with broadcasting, or an error naming both shapes.
    pub fn try_div(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "div", |a, b| a / b)
    }

    /// The element-wise larger of two tensors (broadcasting).
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_maximum`](Self::try_maximum).
    pub fn maximum(&self, other: &Tensor<T>) -> Tensor<T> {
        self.try_maximum(other).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`maximum`](Self::maximum) that returns an error for shapes that do not broadcast.
    pub fn try_maximum(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "maximum", |a, b| if a >= b { a } else { b })
    }

    /// The element-wise smaller of two tensors (broadcasting).
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_minimum`](Self::try_minimum).
    pub fn minimum(&self, other: &Tensor<T>) -> Tensor<T> {
        self.try_minimum(other).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`minimum`](Self::minimum) that returns an error for shapes that do not broadcast.
    pub fn try_minimum(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.try_zip_map(other, "minimum", |a, b| if a <= b { a } else { b })
    }

    /// `self += alpha * other`, broadcasting `other` to `self`'s shape (the BLAS `axpy`).
    ///
    /// # Panics
    /// If `other` does not broadcast to `self`'s shape.
    pub fn scaled_add(&mut self, alpha: T, other: &Tensor<T>) {
        self.try_zip_map_inplace(other, "scaled_add", |a, b| a + alpha * b)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $try_method:ident, $Assign:ident, $assign:ident, $op:tt) => {
        impl<T: Element> $Trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                self.$try_method(rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl<T: Element> $Trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                self $op &rhs
            }
        }
        impl<T: Element> $Trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                self $op &rhs
            }
        }
        /// Reuses the left operand's storage when it is not shared and already has the
        /// result's shape.
        impl<T: Element> $Trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(mut self, rhs: &Tensor<T>) -> Tensor<T> {
                if self.data.is_unique() && self.shape() == rhs.shape() {
                    self.try_zip_map_inplace(rhs, stringify!($method), |a, b| a $op b)
                        .expect("same shape");
                    self
                } else {
                    &self $op rhs
                }
            }
        }
        impl<T: Element> $Trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                self.map(|a| a $op rhs)
            }
        }
        impl<T: Element> $Trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(mut self, rhs: T) -> Tensor<T> {
                self.map_inplace(|a| a $op rhs);
                self
            }
        }
        /// In place, broadcasting the right operand to the left one's shape.
        ///
        /// # Panics
        /// If the right operand does not broadcast to the left one's shape.
        impl<T: Element> $Assign<&Tensor<T>> for Tensor<T> {
            fn $assign(&mut self, rhs: &Tensor<T>) {
                self.try_zip_map_inplace(rhs, stringify!($assign), |a, b| a $op b)
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl<T: Element> $Assign<T> for Tensor<T> {
            fn $assign(&mut self, rhs: T) {
                self.map_inplace(|a| a $op rhs)
            }
        }
    };
}

binary_operator!(Add, add, try_add, AddAssign, add_assign, +);
binary_operator!(Sub, sub, try_sub, SubAssign, sub_assign, -);
binary_operator!(Mul, mul, try_mul, MulAssign, mul_assign, *);
binary_operator!(Div, div, try_div, DivAssign, div_assign, /);

macro_rules! scalar_lhs_operator {
    ($t:ty; $($Trait:ident, $method:ident, $op:tt);*) => {$(
        impl $Trait<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self $op b)
            }
        }
        impl $Trait<Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, mut rhs: Tensor<$t>) -> Tensor<$t> {
                rhs.map_inplace(|b| self $op b);
                rhs
            }
        }
    )*};
}

scalar_lhs_operator!(f32; Add, add, +; Sub, sub, -; Mul, mul, *; Div, div, /);
scalar_lhs_operator!(f64; Add, add, +; Sub, sub, -; Mul, mul, *; Div, div, /);

impl<T: Element> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        self.map(|a| -a)
    }
}

impl<T: Element> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(mut self) -> Tensor<T> {
        self.map_inplace(|a| -a);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let col = t(&[10., 20.], &[2, 1]);
        assert_eq!((&a + &col).to_vec(), vec![11., 12., 13., 24., 25., 26.]);
        let row = t(&[1., 2., 3.], &[3]);
        assert_eq!((&a * &row).to_vec(), vec![1., 4., 9., 4., 10., 18.]);
        // [2,1] with [3] gives [2,3]: both sides stretch.
        assert_eq!((&col - &row).shape(), &[2, 3]);
        assert_eq!((&col - &row).to_vec(), vec![9., 8., 7., 19., 18., 17.]);
        let s = Tensor::scalar(2.0);
        assert_eq!((&a / &s).to_vec(), vec![0.5, 1., 1.5, 2., 2.5, 3.]);
    }

    #[test]
    fn scalars_on_either_side_and_negation() {
        let a = t(&[1., 2.], &[2]);
        assert_eq!((&a + 1.0).to_vec(), vec![2., 3.]);
        assert_eq!((1.0 - &a).to_vec(), vec![0., -1.]);
        assert_eq!((2.0 / a.clone()).to_vec(), vec![2., 1.]);
        assert_eq!((-&a).to_vec(), vec![-1., -2.]);
        assert_eq!((a * 3.0).to_vec(), vec![3., 6.]);
    }

    #[test]
    fn owned_operands_do_not_change_shared_storage() {
        let a = t(&[1., 2.], &[2]);
        let shared = a.clone();
        let b = a + &t(&[1., 1.], &[2]);
        assert_eq!(b.to_vec(), vec![2., 3.]);
        assert_eq!(shared.to_vec(), vec![1., 2.]);
    }

    #[test]
    fn shape_mismatch_names_op_and_shapes() {
        let e = t(&[1., 2., 3., 4., 5., 6.], &[2, 3])
            .try_add(&t(&[1., 2., 3., 4.], &[4]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [4] cannot be broadcast together"
        );
    }

    #[test]
    #[should_panic(expected = "mul: shapes [2] and [3] cannot be broadcast together")]
    fn operators_panic_with_the_same_message() {
        let _ = t(&[1., 2.], &[2]) * t(&[1., 2., 3.], &[3]);
    }

    #[test]
    fn in_place_updates_broadcast_and_copy_on_write() {
        let mut a = t(&[1., 2., 3., 4.], &[2, 2]);
        let keep = a.clone();
        a += &t(&[10., 20.], &[2]);
        assert_eq!(a.to_vec(), vec![11., 22., 13., 24.]);
        assert_eq!(keep.to_vec(), vec![1., 2., 3., 4.]);
        a.scaled_add(-1.0, &keep);
        assert_eq!(a.to_vec(), vec![10., 20., 10., 20.]);
        let mut small = t(&[1.], &[1]);
        assert!(
            small
                .try_zip_map_inplace(&keep, "add_assign", |a, b| a + b)
                .is_err()
        );
        assert_eq!(small.to_vec(), vec![1.]);
    }

    #[test]
    fn maximum_and_minimum() {
        let a = t(&[1., 5., 3.], &[3]);
        let b = t(&[2.], &[1]);
        assert_eq!(a.maximum(&b).to_vec(), vec![2., 5., 3.]);
        assert_eq!(a.minimum(&b).to_vec(), vec![1., 2., 2.]);
    }

    #[test]
    fn strided_operands_give_row_major_results() {
        let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let at = a.transpose(); // [3, 2], not contiguous
        let b = t(&[1., 1., 1., 1., 1., 1.], &[3, 2]);
        assert_eq!((&at + &b).to_vec(), vec![2., 5., 3., 6., 4., 7.]);
    }
}

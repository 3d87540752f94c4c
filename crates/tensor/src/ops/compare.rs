//! Element-wise comparisons that give masks (1.0 where true, 0.0 where false), and
//! `where_cond`, which picks between two tensors by a mask.

use ndarray::{IxDyn, Zip};

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::shape::broadcast_shapes;
use crate::tensor::Tensor;

macro_rules! comparison {
    ($(#[$doc:meta] $name:ident, $try_name:ident, $op:tt;)*) => {$(
        #[$doc]
        ///
        /// The result is a mask of 1.0 (true) and 0.0 (false) in the broadcast shape.
        ///
        /// # Panics
        /// If the shapes do not broadcast; the `try_` form returns an error instead.
        pub fn $name(&self, other: &Tensor<T>) -> Tensor<T> {
            self.$try_name(other).unwrap_or_else(|e| panic!("{e}"))
        }

        #[$doc]
        /// Returns an error if the shapes do not broadcast.
        pub fn $try_name(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
            self.try_zip_map(other, stringify!($name), |a, b| {
                if a $op b { T::one() } else { T::zero() }
            })
        }
    )*};
}

impl<T: Element> Tensor<T> {
    comparison! {
        /// `self == other`, element-wise.
        eq_mask, try_eq_mask, ==;
        /// `self != other`, element-wise.
        ne_mask, try_ne_mask, !=;
        /// `self > other`, element-wise.
        gt_mask, try_gt_mask, >;
        /// `self >= other`, element-wise.
        ge_mask, try_ge_mask, >=;
        /// `self < other`, element-wise.
        lt_mask, try_lt_mask, <;
        /// `self <= other`, element-wise.
        le_mask, try_le_mask, <=;
    }

    /// Takes `on_true` where this mask is non-zero and `on_false` elsewhere; all three
    /// broadcast together (NumPy's `where`).
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f32, 2.0, -3.0], &[3]).unwrap();
    /// let zero = Tensor::scalar(0.0);
    /// let relu = x.gt_mask(&zero).where_cond(&x, &zero);
    /// assert_eq!(relu.to_vec(), vec![0.0, 2.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`try_where_cond`](Self::try_where_cond).
    pub fn where_cond(&self, on_true: &Tensor<T>, on_false: &Tensor<T>) -> Tensor<T> {
        self.try_where_cond(on_true, on_false)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`where_cond`](Self::where_cond) that returns an error if the shapes do not broadcast.
    pub fn try_where_cond(&self, on_true: &Tensor<T>, on_false: &Tensor<T>) -> Result<Tensor<T>> {
        let s = broadcast_shapes("where_cond", self.shape(), on_true.shape())?;
        let s = broadcast_shapes("where_cond", &s, on_false.shape()).map_err(|_| {
            TensorError::ShapeMismatch {
                op: "where_cond",
                lhs: s.clone(),
                rhs: on_false.shape().to_vec(),
            }
        })?;
        let d = IxDyn(&s);
        let out = Zip::from(self.data.broadcast(d.clone()).expect("checked"))
            .and(on_true.data.broadcast(d.clone()).expect("checked"))
            .and(on_false.data.broadcast(d).expect("checked"))
            .map_collect(|&m, &a, &b| if m != T::zero() { a } else { b });
        Ok(Tensor::from_array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_where() {
        let a = Tensor::<f64>::from_vec(vec![1., 2., 3.], &[3]).unwrap();
        let b = Tensor::<f64>::from_vec(vec![2.], &[1]).unwrap();
        assert_eq!(a.eq_mask(&b).to_vec(), vec![0., 1., 0.]);
        assert_eq!(a.ne_mask(&b).to_vec(), vec![1., 0., 1.]);
        assert_eq!(a.gt_mask(&b).to_vec(), vec![0., 0., 1.]);
        assert_eq!(a.ge_mask(&b).to_vec(), vec![0., 1., 1.]);
        assert_eq!(a.lt_mask(&b).to_vec(), vec![1., 0., 0.]);
        assert_eq!(a.le_mask(&b).to_vec(), vec![1., 1., 0.]);
        let m = a.gt_mask(&b);
        let col = Tensor::<f64>::from_vec(vec![10., 20.], &[2, 1]).unwrap();
        let w = m.where_cond(&col, &a);
        assert_eq!(w.shape(), &[2, 3]);
        assert_eq!(w.to_vec(), vec![1., 2., 10., 1., 2., 20.]);
        assert!(m.try_where_cond(&a, &Tensor::zeros(&[4])).is_err());
    }
}

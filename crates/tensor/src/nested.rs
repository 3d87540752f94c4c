//! Tensors from nested Rust data: arrays, vectors and slices of numbers, at any depth, as
//! candle's `Tensor::new(&[[1., 2.], [3., 4.]])` and ndarray's `array!` give them.

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::tensor::Tensor;

/// Data that [`Tensor::new`] can read: a number (`f32` or `f64`), or an array, `Vec` or
/// slice of such data, nested to any depth. Every row at one depth must have the same
/// length; a ragged `Vec` of `Vec`s is an error that names the row.
pub trait NestedData<T: Element> {
    /// The shape, read from the first element at each depth.
    fn nested_shape(&self) -> Vec<usize>;

    /// Appends the elements in row-major order into `out`, checking that each row has the
    /// length `shape[0]` says (`at` names the row in errors: `[1][0]`).
    fn flatten_into(&self, shape: &[usize], at: &str, out: &mut Vec<T>) -> Result<()>;
}

macro_rules! scalar_data {
    ($($t:ty),*) => {$(
        impl NestedData<$t> for $t {
            fn nested_shape(&self) -> Vec<usize> {
                Vec::new()
            }
            fn flatten_into(&self, _: &[usize], _: &str, out: &mut Vec<$t>) -> Result<()> {
                out.push(*self);
                Ok(())
            }
        }
    )*};
}
scalar_data!(f32, f64);

/// The shape of a list of items: its length, then the first item's shape (`[0]` for an
/// empty list, whose items have no shape to read).
fn list_shape<T: Element, U: NestedData<T>>(items: &[U]) -> Vec<usize> {
    let mut shape = vec![items.len()];
    if let Some(first) = items.first() {
        shape.extend(first.nested_shape());
    }
    shape
}

fn flatten_list<T: Element, U: NestedData<T>>(
    items: &[U],
    shape: &[usize],
    at: &str,
    out: &mut Vec<T>,
) -> Result<()> {
    let Some((&len, inner)) = shape.split_first() else {
        return Err(TensorError::invalid(
            "Tensor::new",
            format!("expected a number at {at}, got a list of {}", items.len()),
        ));
    };
    if items.len() != len {
        let at = if at.is_empty() { "the data" } else { at };
        return Err(TensorError::invalid(
            "Tensor::new",
            format!(
                "rows must all have the same length: {at} has {} elements, expected {len} (as the first row at its depth)",
                items.len()
            ),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        item.flatten_into(inner, &format!("{at}[{i}]"), out)?;
    }
    Ok(())
}

impl<T: Element, U: NestedData<T>, const N: usize> NestedData<T> for [U; N] {
    fn nested_shape(&self) -> Vec<usize> {
        list_shape(self)
    }
    fn flatten_into(&self, shape: &[usize], at: &str, out: &mut Vec<T>) -> Result<()> {
        flatten_list(self, shape, at, out)
    }
}

impl<T: Element, U: NestedData<T>> NestedData<T> for [U] {
    fn nested_shape(&self) -> Vec<usize> {
        list_shape(self)
    }
    fn flatten_into(&self, shape: &[usize], at: &str, out: &mut Vec<T>) -> Result<()> {
        flatten_list(self, shape, at, out)
    }
}

impl<T: Element, U: NestedData<T>> NestedData<T> for Vec<U> {
    fn nested_shape(&self) -> Vec<usize> {
        list_shape(self)
    }
    fn flatten_into(&self, shape: &[usize], at: &str, out: &mut Vec<T>) -> Result<()> {
        flatten_list(self, shape, at, out)
    }
}

impl<T: Element, U: NestedData<T> + ?Sized> NestedData<T> for &U {
    fn nested_shape(&self) -> Vec<usize> {
        (**self).nested_shape()
    }
    fn flatten_into(&self, shape: &[usize], at: &str, out: &mut Vec<T>) -> Result<()> {
        (**self).flatten_into(shape, at, out)
    }
}

impl<T: Element> Tensor<T> {
    /// A tensor from nested data: a number (a scalar, shape `[]`), or arrays, `Vec`s or
    /// slices of numbers nested to any depth, each depth one axis. Rows of `Vec`s must
    /// all have the same length.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let x = Tensor::<f32>::new([[1., 2., 3.], [4., 5., 6.]]).unwrap();
    /// assert_eq!(x.shape(), &[2, 3]);
    /// assert_eq!(x.to_vec(), vec![1., 2., 3., 4., 5., 6.]);
    /// // Rows read from a file, as vectors: the same tensor.
    /// let rows: Vec<Vec<f32>> = vec![vec![1., 2., 3.], vec![4., 5., 6.]];
    /// assert_eq!(Tensor::new(&rows).unwrap(), x);
    /// // A ragged row is an error that names it.
    /// let ragged = vec![vec![1.0f64, 2.0], vec![3.0]];
    /// let e = Tensor::new(&ragged).unwrap_err().to_string();
    /// assert!(e.contains("[1] has 1 elements, expected 2"), "{e}");
    /// ```
    ///
    /// # Errors
    /// If rows at one depth differ in length.
    pub fn new(data: impl NestedData<T>) -> Result<Tensor<T>> {
        let shape = data.nested_shape();
        let mut out = Vec::with_capacity(crate::shape::numel(&shape));
        data.flatten_into(&shape, "", &mut out)?;
        Tensor::from_vec(out, &shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_data_of_every_depth_and_kind_reads_row_major() {
        assert_eq!(Tensor::new(2.5f64).unwrap().shape(), &[] as &[usize]);
        let v = Tensor::<f64>::new(vec![1.0, 2.0]).unwrap();
        assert_eq!((v.shape(), v.to_vec()), (&[2][..], vec![1.0, 2.0]));
        let cube = Tensor::<f32>::new([[[1., 2.], [3., 4.]], [[5., 6.], [7., 8.]]]).unwrap();
        assert_eq!(cube.shape(), &[2, 2, 2]);
        assert_eq!(cube.to_vec(), (1..=8).map(|v| v as f32).collect::<Vec<_>>());
        let slices: Vec<&[f32]> = vec![&[1., 2.], &[3., 4.]];
        assert_eq!(Tensor::new(&slices).unwrap().shape(), &[2, 2]);
        let empty: Vec<Vec<f32>> = Vec::new();
        assert_eq!(Tensor::new(&empty).unwrap().shape(), &[0]);
    }

    #[test]
    fn ragged_rows_are_errors_at_any_depth() {
        let deep = vec![
            vec![vec![1.0f32, 2.0], vec![3.0, 4.0]],
            vec![vec![5.0], vec![6.0, 7.0]],
        ];
        let e = Tensor::new(&deep).unwrap_err().to_string();
        assert!(e.contains("[1][0] has 1 elements, expected 2"), "{e}");
        let short = vec![vec![1.0f32, 2.0], vec![]];
        let e = Tensor::new(&short).unwrap_err().to_string();
        assert!(e.contains("[1] has 0 elements, expected 2"), "{e}");
    }
}

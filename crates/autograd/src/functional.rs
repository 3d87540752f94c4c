//! Derivatives of whole functions for research code: Hessian-vector products ([`hvp`]) and
//! Jacobians of small functions ([`jacobian`]), built on the recorded sweep of
//! [`Var::grad`].

use tensor::{Element, Result, Tensor, TensorError, numel};

use crate::tape::{Tape, Var};

/// What [`hvp`] computes at a point: the function's value, its gradient and the product of
/// its Hessian with the direction, one tensor per input.
#[derive(Clone, Debug)]
pub struct Hvp<T: Element> {
    pub value: T,
    pub gradient: Vec<Tensor<T>>,
    pub product: Vec<Tensor<T>>,
}

fn invalid(op: &'static str, message: String) -> TensorError {
    TensorError::InvalidArgument { op, message }
}

/// The Hessian-vector product `H(x) v` of a scalar function `f` at `x` along `v` (one
/// direction tensor per input), by reverse over reverse: one recorded gradient, then one
/// fast sweep over it seeded with `v`. It costs about two gradients and never forms `H`, so
/// it serves Newton-CG and Hessian-free methods on models of any size.
///
/// ```
/// use autograd::hvp;
/// use tensor::Tensor;
///
/// // f(x) = sum(x^3): H = diag(6x), so H v = 6 x v.
/// let x = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap();
/// let v = Tensor::from_vec(vec![1.0, 0.5], &[2]).unwrap();
/// let r = hvp(|x| (x[0] * x[0] * x[0]).sum_all(), &[x], &[v]).unwrap();
/// assert_eq!(r.value, -7.0);
/// assert_eq!(r.gradient[0].to_vec(), vec![3.0, 12.0]);
/// assert_eq!(r.product[0].to_vec(), vec![6.0, -6.0]);
/// ```
///
/// # Errors
/// If `x` and `v` differ in number or a direction's shape is not its input's, if `f` does
/// not return a scalar, or if `f`'s value is not on the tape it was given.
pub fn hvp<T, F>(f: F, x: &[Tensor<T>], v: &[Tensor<T>]) -> Result<Hvp<T>>
where
    T: Element,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    if x.len() != v.len() {
        return Err(invalid(
            "hvp",
            format!(
                "needs one direction per input: {} inputs, {} directions",
                x.len(),
                v.len()
            ),
        ));
    }
    for (i, (x, v)) in x.iter().zip(v).enumerate() {
        if x.shape() != v.shape() {
            return Err(invalid(
                "hvp",
                format!(
                    "direction {i} has shape {:?}, but input {i} has shape {:?}",
                    v.shape(),
                    x.shape()
                ),
            ));
        }
    }
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = x.iter().map(|x| tape.param(x)).collect();
    let y = f(&xs);
    if !std::ptr::eq(y.tape(), &tape) {
        return Err(invalid(
            "hvp",
            "the function returned a variable of another tape than its inputs'".into(),
        ));
    }
    let shape = y.shape();
    if numel(&shape) != 1 {
        return Err(invalid(
            "hvp",
            format!("needs a scalar function, but it returned shape {shape:?}"),
        ));
    }
    let gradient = y.grad(&xs)?;
    // One fast sweep from every gradient at once, seeded with its direction: the gradient
    // of sum_i <g_i, v_i>, without forming the products.
    let seeds = gradient
        .iter()
        .zip(v)
        .map(|(g, v)| (*g, v.clone()))
        .collect();
    let product = tape.vjp_values(seeds, &xs)?;
    Ok(Hvp {
        value: y.item(),
        gradient: gradient.iter().map(Var::value).collect(),
        product,
    })
}

/// The Jacobian of `f` at `x`, of shape `f(x).shape ++ x.shape`: entry `[i.., j..]` is the
/// derivative of output element `i` with respect to input element `j`. One reverse sweep
/// per output element, so it is meant for small functions (a layer's input-output map, a
/// physics model's state update).
///
/// ```
/// use autograd::jacobian;
/// use tensor::Tensor;
///
/// // f(x) = [x0 x1, x0 + 3 x1]: J = [[x1, x0], [1, 3]].
/// let x = Tensor::from_vec(vec![2.0f64, 5.0], &[2]).unwrap();
/// let j = jacobian(|x| {
///     let (a, b) = (x.slice_axis(0, 0..1), x.slice_axis(0, 1..2));
///     autograd::Var::concat(&[a * b, a + b * 3.0], 0)
/// }, &x).unwrap();
/// assert_eq!(j.shape(), &[2, 2]);
/// assert_eq!(j.to_vec(), vec![5.0, 2.0, 1.0, 3.0]);
/// ```
///
/// # Errors
/// If the Jacobian has more elements than fit in memory (it says how many), or `f`'s value
/// is not on the tape it was given.
pub fn jacobian<T, F>(f: F, x: &Tensor<T>) -> Result<Tensor<T>>
where
    T: Element,
    F: for<'t> Fn(Var<'t, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xv = tape.param(x);
    let y = f(xv);
    if !std::ptr::eq(y.tape(), &tape) {
        return Err(invalid(
            "jacobian",
            "the function returned a variable of another tape than its input's".into(),
        ));
    }
    let out_shape = y.shape();
    let shape: Vec<usize> = out_shape.iter().chain(x.shape()).copied().collect();
    let (m, n) = (numel(&out_shape), x.len());
    let too_large = || {
        invalid(
            "jacobian",
            format!(
                "a Jacobian of shape {shape:?} ({m} outputs by {n} inputs) is too large to \
                 allocate; use vector-Jacobian products (Var::grad_with with a seed) instead"
            ),
        )
    };
    let total = m.checked_mul(n).ok_or_else(too_large)?;
    let bytes = total
        .checked_mul(std::mem::size_of::<T>())
        .ok_or_else(too_large)?;
    if bytes > isize::MAX as usize {
        return Err(too_large());
    }
    let mut out: Vec<T> = Vec::new();
    out.try_reserve_exact(total).map_err(|_| too_large())?;
    let mut seed = vec![T::zero(); m];
    for i in 0..m {
        seed[i] = T::one();
        let s = Tensor::from_vec(seed.clone(), &out_shape).expect("same size");
        seed[i] = T::zero();
        let row = tape.vjp_values(vec![(y, s)], &[xv])?;
        out.extend(row[0].to_contiguous().as_slice().expect("contiguous"));
    }
    Tensor::from_vec(out, &shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_shape_slice(v, s).unwrap()
    }

    #[test]
    fn hvp_of_a_quadratic_form_is_the_matrix_times_the_direction() {
        // f(x) = 1/2 x^T A x + sum(x) with A symmetric: H = A for every x.
        let a = t(&[2.0, -1.0, 0.5, -1.0, 3.0, 0.0, 0.5, 0.0, 1.0], &[3, 3]);
        let x = t(&[0.2, -0.4, 1.1], &[3, 1]);
        let v = t(&[1.0, 2.0, -1.0], &[3, 1]);
        let r = hvp(
            |p| {
                let ax = p[0].tape().constant(&a).matmul(p[0]);
                (p[0] * ax).sum_all() * 0.5 + p[0].sum_all()
            },
            std::slice::from_ref(&x),
            std::slice::from_ref(&v),
        )
        .unwrap();
        assert!(r.product[0].allclose(&a.matmul(&v), 1e-12, 1e-12));
        let grad = &a.matmul(&x) + 1.0;
        assert!(r.gradient[0].allclose(&grad, 1e-12, 1e-12));
        // A linear function has a zero Hessian (not an error).
        let r = hvp(
            |p| p[0].sum_all() * 3.0,
            std::slice::from_ref(&x),
            std::slice::from_ref(&v),
        )
        .unwrap();
        assert_eq!(r.product[0].to_vec(), vec![0.0; 3]);
    }

    #[test]
    fn hvp_refuses_directions_that_do_not_fit() {
        let x = t(&[1.0, 2.0], &[2]);
        let e = hvp(
            |p| p[0].sum_all(),
            std::slice::from_ref(&x),
            &[t(&[1.0; 3], &[3])],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "hvp: direction 0 has shape [3], but input 0 has shape [2]"
        );
        let e = hvp(|p| p[0].sum_all(), std::slice::from_ref(&x), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 inputs, 0 directions"), "{e}");
        let e = hvp(
            |p| p[0] * p[0],
            std::slice::from_ref(&x),
            std::slice::from_ref(&x),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs a scalar function") && e.contains("[2]"),
            "{e}"
        );
    }

    #[test]
    fn jacobian_of_an_elementwise_function_is_diagonal() {
        let x = t(&[0.5, -1.0, 2.0], &[3]);
        let j = jacobian(|x| x.exp(), &x).unwrap();
        assert_eq!(j.shape(), &[3, 3]);
        let e = x.exp().to_vec();
        let want = [e[0], 0.0, 0.0, 0.0, e[1], 0.0, 0.0, 0.0, e[2]];
        assert!(j.allclose(&t(&want, &[3, 3]), 1e-12, 1e-12));
    }

    #[test]
    fn a_jacobian_too_large_to_allocate_is_an_error() {
        // 10^7 outputs by 10^7 inputs: 10^14 elements, 400 TB of f32.
        let x = Tensor::<f32>::zeros(&[10_000_000]);
        let e = jacobian(|x| x * 2.0, &x).unwrap_err().to_string();
        assert!(
            e.starts_with("jacobian: a Jacobian of shape [10000000, 10000000]")
                && e.contains("too large to allocate"),
            "{e}"
        );
    }
}

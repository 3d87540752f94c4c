//! Derivatives of whole functions for research code: values and gradients
//! ([`value_and_grad`]), Hessian-vector products ([`hvp`]) and Jacobians of small functions
//! ([`jacobian`]), built on the recorded sweep of [`Var::grad`].

use tensor::{Element, Result, Tensor, TensorError, numel};

use crate::tape::{Tape, Var};

fn invalid(op: &'static str, message: String) -> TensorError {
    TensorError::InvalidArgument { op, message }
}

/// The value of a scalar function `f` at `x` and its gradient with respect to each input,
/// by one fast reverse sweep (JAX's `value_and_grad`).
///
/// ```
/// use autograd::value_and_grad;
/// use tensor::Tensor;
///
/// let x = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap();
/// let (value, grad) = value_and_grad(|x| (x[0] * x[0] * x[0]).sum_all(), &[x]).unwrap();
/// assert_eq!((value, grad[0].to_vec()), (-7.0, vec![3.0, 12.0]));
/// ```
///
/// # Errors
/// If `f` does not return a scalar, or returns a variable of another tape.
pub fn value_and_grad<T, F>(f: F, x: &[Tensor<T>]) -> Result<(T, Vec<Tensor<T>>)>
where
    T: Element,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = x.iter().map(|x| tape.param(x)).collect();
    let y = scalar_output("value_and_grad", &tape, f(&xs))?;
    let one = Tensor::ones(&y.shape());
    let gradient = tape.vjp_values(vec![(y, one)], &xs)?;
    Ok((y.item(), gradient))
}

/// Checks that `y` is a scalar on `tape`.
fn scalar_output<'t, T: Element>(
    op: &'static str,
    tape: &Tape<T>,
    y: Var<'t, T>,
) -> Result<Var<'t, T>> {
    if !std::ptr::eq(y.tape(), tape) {
        return Err(invalid(
            op,
            "the function returned a variable of another tape than its inputs'".into(),
        ));
    }
    let shape = y.shape();
    if numel(&shape) != 1 {
        return Err(invalid(
            op,
            format!("needs a scalar function, but it returned shape {shape:?}"),
        ));
    }
    Ok(y)
}

/// The Hessian-vector product `H(x) v` of a scalar function `f` at `x` along `v` (one
/// direction tensor per input), by reverse over reverse: one recorded gradient, then one
/// fast sweep over it seeded with `v`. It never forms `H`, so it serves Newton-CG and
/// Hessian-free methods on models of any size; and since it never reads the gradient's own
/// value, the matrix products that would compute it are recorded but never run (a
/// Hessian-vector product of an MLP costs three of its large products, a gradient two).
///
/// ```
/// use autograd::hvp;
/// use tensor::Tensor;
///
/// // f(x) = sum(x^3): H = diag(6x), so H v = 6 x v.
/// let x = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap();
/// let v = Tensor::from_vec(vec![1.0, 0.5], &[2]).unwrap();
/// let hv = hvp(|x| (x[0] * x[0] * x[0]).sum_all(), &[x], &[v]).unwrap();
/// assert_eq!(hv[0].to_vec(), vec![6.0, -6.0]);
/// ```
///
/// # Errors
/// If `x` and `v` differ in number or a direction's shape is not its input's, if `f` does
/// not return a scalar, or if `f`'s value is not on the tape it was given.
pub fn hvp<T, F>(f: F, x: &[Tensor<T>], v: &[Tensor<T>]) -> Result<Vec<Tensor<T>>>
where
    T: Element,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let shapes: Vec<Vec<usize>> = x.iter().map(|x| x.shape().to_vec()).collect();
    check_directions(&shapes, v)?;
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = x.iter().map(|x| tape.param(x)).collect();
    let y = scalar_output("hvp", &tape, f(&xs))?;
    let gradient = tape.grad_graph(y, &xs)?;
    // One fast sweep from every gradient at once, seeded with its direction: the gradient
    // of sum_i <g_i, v_i>, without forming the products.
    let seeds = gradient
        .iter()
        .zip(v)
        .map(|(g, v)| (*g, v.clone()))
        .collect();
    tape.vjp_values(seeds, &xs)
}

/// A function's value, gradient and Hessian at one point, recorded once: each
/// [`product`](HessianAt::product) is one fast sweep over the recorded gradient, so an inner
/// loop that needs many Hessian-vector products at one point (Newton-CG's conjugate
/// gradients) records the gradient only once. Made by [`with_hessian`].
pub struct HessianAt<'a, T: Element> {
    tape: &'a Tape<T>,
    inputs: Vec<Var<'a, T>>,
    gradient_vars: Vec<Var<'a, T>>,
    value: T,
    gradient: Vec<Tensor<T>>,
}

impl<T: Element> HessianAt<'_, T> {
    /// The function's value at the point.
    pub fn value(&self) -> T {
        self.value
    }

    /// The gradient at the point, one tensor per input.
    pub fn gradient(&self) -> &[Tensor<T>] {
        &self.gradient
    }

    /// `H v` at the point, one direction tensor per input.
    ///
    /// # Errors
    /// If `v` does not have one tensor of each input's shape.
    pub fn product(&self, v: &[Tensor<T>]) -> Result<Vec<Tensor<T>>> {
        let shapes: Vec<Vec<usize>> = self.inputs.iter().map(Var::shape).collect();
        check_directions(&shapes, v)?;
        let seeds = self
            .gradient_vars
            .iter()
            .zip(v)
            .map(|(g, v)| (*g, v.clone()))
            .collect();
        self.tape.vjp_values(seeds, &self.inputs)
    }
}

/// Records the gradient of the scalar function `f` at `x` once, and runs `body` with the
/// point's value, gradient and Hessian-vector products ([`HessianAt`]).
///
/// ```
/// use autograd::with_hessian;
/// use tensor::Tensor;
///
/// // f(x) = sum(x^3) at [1, -2]: gradient 3x^2, H = diag(6x).
/// let x = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap();
/// let e0 = Tensor::from_vec(vec![1.0, 0.0], &[2]).unwrap();
/// let e1 = Tensor::from_vec(vec![0.0, 1.0], &[2]).unwrap();
/// let rows = with_hessian(|p| (p[0] * p[0] * p[0]).sum_all(), &[x], |h| {
///     assert_eq!(h.gradient()[0].to_vec(), vec![3.0, 12.0]);
///     Ok([h.product(&[e0])?[0].to_vec(), h.product(&[e1])?[0].to_vec()])
/// })
/// .unwrap();
/// assert_eq!(rows, [vec![6.0, 0.0], vec![0.0, -12.0]]);
/// ```
///
/// # Errors
/// If `f` does not return a scalar or returns a variable of another tape, or what `body`
/// returns.
pub fn with_hessian<T, F, R>(
    f: F,
    x: &[Tensor<T>],
    body: impl FnOnce(&HessianAt<'_, T>) -> Result<R>,
) -> Result<R>
where
    T: Element,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let inputs: Vec<Var<'_, T>> = x.iter().map(|x| tape.param(x)).collect();
    let y = scalar_output("with_hessian", &tape, f(&inputs))?;
    let gradient_vars = y.grad(&inputs)?;
    let at = HessianAt {
        tape: &tape,
        value: y.item(),
        gradient: gradient_vars.iter().map(Var::value).collect(),
        inputs,
        gradient_vars,
    };
    body(&at)
}

/// Checks one direction per input, each of its input's shape.
fn check_directions<T: Element>(shapes: &[Vec<usize>], v: &[Tensor<T>]) -> Result<()> {
    if shapes.len() != v.len() {
        return Err(invalid(
            "hvp",
            format!(
                "needs one direction per input: {} inputs, {} directions",
                shapes.len(),
                v.len()
            ),
        ));
    }
    for (i, (shape, v)) in shapes.iter().zip(v).enumerate() {
        if shape.as_slice() != v.shape() {
            return Err(invalid(
                "hvp",
                format!(
                    "direction {i} has shape {:?}, but input {i} has shape {shape:?}",
                    v.shape()
                ),
            ));
        }
    }
    Ok(())
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
        fn f<'t>(p: &[Var<'t, f64>], a: &Tensor<f64>) -> Var<'t, f64> {
            let ax = p[0].tape().constant(a).matmul(p[0]);
            (p[0] * ax).sum_all() * 0.5 + p[0].sum_all()
        }
        let (x, v) = (std::slice::from_ref(&x), std::slice::from_ref(&v));
        let hv = hvp(|p| f(p, &a), x, v).unwrap();
        assert!(hv[0].allclose(&a.matmul(&v[0]), 1e-12, 1e-12));
        let (value, grad) = value_and_grad(|p| f(p, &a), x).unwrap();
        assert!(grad[0].allclose(&(&a.matmul(&x[0]) + 1.0), 1e-12, 1e-12));
        let want = 0.5 * (&x[0] * &a.matmul(&x[0])).sum_all() + x[0].sum_all();
        assert!((value - want).abs() < 1e-12);
        // A linear function has a zero Hessian (not an error).
        let hv = hvp(|p| p[0].sum_all() * 3.0, x, v).unwrap();
        assert_eq!(hv[0].to_vec(), vec![0.0; 3]);
    }

    #[test]
    fn hvp_with_deferred_products_equals_grad_of_grad() {
        // An MLP whose weight gradients are matrix products: hvp leaves them uncomputed
        // (deferred), the plain grad of grad computes them; both give the same product.
        fn mlp<'t>(p: &[Var<'t, f64>], x: &Tensor<f64>) -> Var<'t, f64> {
            let h = p[0].tape().constant(x).matmul(p[0]).tanh();
            (h.matmul(p[1]).sigmoid() * 3.0).sum_all()
        }
        let mut rng = tensor::random::seeded(5);
        let x = Tensor::<f64>::rand_normal(&[4, 3], 0.0, 1.0, &mut rng);
        let w = [
            Tensor::rand_normal(&[3, 5], 0.0, 1.0, &mut rng),
            Tensor::rand_normal(&[5, 2], 0.0, 1.0, &mut rng),
        ];
        let v = [
            Tensor::rand_normal(&[3, 5], 0.0, 1.0, &mut rng),
            Tensor::rand_normal(&[5, 2], 0.0, 1.0, &mut rng),
        ];
        let hv = hvp(|p| mlp(p, &x), &w, &v).unwrap();
        let tape = Tape::<f64>::new();
        let p: Vec<Var<'_, f64>> = w.iter().map(|w| tape.param(w)).collect();
        let g = mlp(&p, &x).grad(&p).unwrap();
        let dot = (g[0] * tape.constant(&v[0])).sum_all() + (g[1] * tape.constant(&v[1])).sum_all();
        let want = dot.grad(&p).unwrap();
        for (got, want) in hv.iter().zip(&want) {
            assert!(
                got.allclose(&want.value(), 1e-12, 1e-12),
                "{got:?} against {want:?}"
            );
        }
        // A deferred gradient is computed when read, and equals the fast sweep's.
        let tape = Tape::<f64>::new();
        let p: Vec<Var<'_, f64>> = w.iter().map(|w| tape.param(w)).collect();
        let y = mlp(&p, &x);
        let g = tape.grad_graph(y, &p).unwrap();
        // Both weight gradients are products nobody has read.
        assert_eq!(tape.pending(), 2);
        let fast = y.backward().unwrap();
        assert_eq!(g[0].shape(), vec![3, 5]);
        assert!(g[0].value().allclose(&fast[p[0]], 1e-12, 1e-12));
        assert!(g[1].value().allclose(&fast[p[1]], 1e-12, 1e-12));
        assert_eq!(tape.pending(), 0);
    }

    #[test]
    fn elu_and_selu_have_finite_second_derivatives_where_exp_overflows() {
        // Above 709 (f64) e^x is infinite; the second derivative there is 0, not NaN.
        let x = t(&[800.0, -1.0], &[2]);
        let v = t(&[1.0, 1.0], &[2]);
        let elu = hvp(
            |p| p[0].elu(1.0).sum_all(),
            std::slice::from_ref(&x),
            std::slice::from_ref(&v),
        )
        .unwrap();
        assert_eq!(elu[0].to_vec(), vec![0.0, (-1.0f64).exp()]);
        let selu = hvp(
            |p| p[0].selu().sum_all(),
            std::slice::from_ref(&x),
            std::slice::from_ref(&v),
        )
        .unwrap();
        let (a, s) = (
            crate::ops::activation::SELU_ALPHA,
            crate::ops::activation::SELU_SCALE,
        );
        assert_eq!(selu[0].to_vec()[0], 0.0);
        assert!((selu[0].to_vec()[1] - s * a * (-1.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn with_hessian_gives_products_at_one_recorded_point() {
        let a = t(&[2.0, -1.0, -1.0, 3.0], &[2, 2]);
        let x = t(&[0.5, -1.5], &[2, 1]);
        let products = with_hessian(
            |p| (p[0] * p[0].tape().constant(&a).matmul(p[0])).sum_all() * 0.5,
            std::slice::from_ref(&x),
            |h| {
                assert!(h.gradient()[0].allclose(&a.matmul(&x), 1e-12, 1e-12));
                let e = h.product(&[t(&[1.0; 3], &[3])]).unwrap_err().to_string();
                assert_eq!(
                    e,
                    "hvp: direction 0 has shape [3], but input 0 has shape [2, 1]"
                );
                // Many products from one recording: the columns of H = A.
                let cols: Result<Vec<_>> = [[1.0, 0.0], [0.0, 1.0]]
                    .iter()
                    .map(|e| h.product(&[t(e, &[2, 1])]).map(|v| v[0].to_vec()))
                    .collect();
                cols
            },
        )
        .unwrap();
        assert_eq!(products, vec![vec![2.0, -1.0], vec![-1.0, 3.0]]);
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

//! Checking a tape's gradients against central finite differences, in `f64`: first
//! derivatives ([`GradCheck::check`]) and higher ones ([`GradCheck::check_order`], the
//! recorded derivative of order k along random directions against central differences of
//! the derivative of order k - 1).
//!
//! The test suite uses this for every op; users can use it for ops they add.

use std::fmt;

use tensor::{Tensor, random::seeded};

use crate::tape::{Tape, Var};

/// Tolerances of a gradient check: the tape's value `a` and the finite difference `n` agree
/// when `|a - n| <= atol + rtol * |n|`.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// The step of the central difference `(f(x + eps) - f(x - eps)) / (2 eps)`.
    pub eps: f64,
    /// Relative tolerance between the tape's and the numeric derivative.
    pub rtol: f64,
    /// Absolute tolerance between them.
    pub atol: f64,
    /// Seed of the random output gradient the check differentiates `sum(f(x) * r)` with.
    pub seed: u64,
}

impl Default for GradCheck {
    /// `eps` 1e-6, `rtol` 1e-5, `atol` 1e-7: central differences in f64 are accurate to about
    /// 1e-9 at this step for smooth functions of values of order 1.
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            rtol: 1e-5,
            atol: 1e-7,
            seed: 0,
        }
    }
}

/// A gradient that disagrees with finite differences, with everything needed to find it.
#[derive(Clone, Debug)]
pub struct GradCheckFailure {
    /// Which derivative failed: 1 for the gradient, 2 for Hessian-vector products, ...
    pub order: usize,
    /// The ops the checked function recorded, in order.
    pub ops: Vec<&'static str>,
    /// The shapes of the inputs checked.
    pub input_shapes: Vec<Vec<usize>>,
    /// Which input, and the multi-index of the worst element in it.
    pub input: usize,
    /// The multi-index, within that input, of the element that disagreed most.
    pub index: Vec<usize>,
    /// The tape's derivative there.
    pub tape: f64,
    /// The numeric (central difference) derivative there.
    pub numeric: f64,
    /// The tolerance it exceeded.
    pub tolerance: f64,
}

impl fmt::Display for GradCheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradient check (derivative of order {}) failed for ops {:?} on input shapes {:?}: \
             input {} at {:?}: the tape gives {:e}, finite differences give {:e} \
             (|difference| {:e} > tolerance {:e})",
            self.order,
            self.ops,
            self.input_shapes,
            self.input,
            self.index,
            self.tape,
            self.numeric,
            (self.tape - self.numeric).abs(),
            self.tolerance
        )
    }
}

impl std::error::Error for GradCheckFailure {}

/// What a passing check saw: the recorded ops and the largest error relative to tolerance.
#[derive(Clone, Debug)]
pub struct GradCheckReport {
    /// The ops the checked function recorded, in order.
    pub ops: Vec<&'static str>,
    /// `max |a - n| / (atol + rtol |n|)` over all elements; below 1 passes.
    pub worst_ratio: f64,
}

impl GradCheck {
    /// Compares the tape's gradient of `sum(f(inputs) * r)` (for a fixed random `r`) with
    /// central finite differences, for every element of every input.
    ///
    /// ```
    /// use autograd::gradcheck::GradCheck;
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3]).unwrap();
    /// let report = GradCheck::default().check(&[x], |v| (v[0] * v[0]).tanh()).unwrap();
    /// assert_eq!(report.ops, vec!["mul", "tanh"]);
    /// ```
    pub fn check<F>(
        &self,
        inputs: &[Tensor<f64>],
        f: F,
    ) -> Result<GradCheckReport, GradCheckFailure>
    where
        F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
    {
        let tape = Tape::<f64>::new();
        let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.param(x)).collect();
        let out = f(&vars);
        let ops = tape.op_names();
        let r = Tensor::<f64>::rand_normal(&out.shape(), 0.0, 1.0, &mut seeded(self.seed));
        let grads = out.backward_with(&r).expect("seed has the output's shape");

        let objective = |xs: &[Tensor<f64>]| -> f64 {
            let t = Tape::<f64>::new();
            let vs: Vec<Var<'_, f64>> = xs.iter().map(|x| t.constant(x)).collect();
            (&f(&vs).value() * &r).sum_all()
        };

        let mut worst = Worst::new(1, &ops, inputs);
        let mut xs: Vec<Tensor<f64>> = inputs.iter().map(Tensor::to_contiguous).collect();
        for (i, var) in vars.iter().enumerate() {
            let analytic = grads[*var].to_contiguous();
            let analytic = analytic.as_slice().expect("contiguous");
            for (j, &tape_value) in analytic.iter().enumerate() {
                let orig = xs[i].as_slice().expect("contiguous")[j];
                xs[i].as_slice_mut()[j] = orig + self.eps;
                let plus = objective(&xs);
                xs[i].as_slice_mut()[j] = orig - self.eps;
                let minus = objective(&xs);
                xs[i].as_slice_mut()[j] = orig;
                let numeric = (plus - minus) / (2.0 * self.eps);
                worst.see(self, i, j, tape_value, numeric);
            }
        }
        worst.finish()
    }
}

impl GradCheck {
    /// Checks the derivative of order `order` (2: Hessian-vector products, 3: third
    /// derivatives) of `s(x) = sum(f(x)^2 * r)` for a fixed random `r`. The square makes the
    /// check bite on linear ops too (their own second derivative is zero, but a backward rule
    /// that was not differentiable would still give a wrong Hessian of `s`).
    ///
    /// With `D1 = grad s` and `Dk = grad <D(k-1), d(k-1)>` for random directions `d`, all
    /// taken by the recorded sweep ([`Var::grad`]), it compares `D(order)` with the central
    /// difference `(D(order-1)(x + eps d) - D(order-1)(x - eps d)) / (2 eps)` along the last
    /// direction, for every element of every input. A rule that silently gives zero second
    /// derivatives (a fused kernel outside the tape) fails it. It also requires the recorded
    /// first derivative to equal the fast sweep's.
    ///
    /// ```
    /// use autograd::gradcheck::GradCheck;
    /// use tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3]).unwrap();
    /// let report = GradCheck::default().check_order(2, &[x], |v| v[0].tanh()).unwrap();
    /// assert!(report.ops.contains(&"tanh"));
    /// ```
    ///
    /// # Panics
    /// If `order` is 0 or 1 (use [`check`](GradCheck::check)).
    pub fn check_order<F>(
        &self,
        order: usize,
        inputs: &[Tensor<f64>],
        f: F,
    ) -> Result<GradCheckReport, GradCheckFailure>
    where
        F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
    {
        assert!(
            order >= 2,
            "check_order is for derivatives of order 2 and above"
        );
        let mut rng = seeded(self.seed);
        // The output's cotangent, from the shape of one evaluation.
        let (ops, out_shape) = {
            let tape = Tape::<f64>::new();
            let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.param(x)).collect();
            let out = f(&vars);
            (tape.op_names(), out.shape())
        };
        let r = Tensor::<f64>::rand_normal(&out_shape, 0.0, 1.0, &mut rng);
        let directions: Vec<Vec<Tensor<f64>>> = (1..order)
            .map(|_| {
                inputs
                    .iter()
                    .map(|x| Tensor::rand_normal(x.shape(), 0.0, 1.0, &mut rng))
                    .collect()
            })
            .collect();
        // D(k) at xs, by k recorded sweeps.
        let derivative = |k: usize, xs: &[Tensor<f64>]| -> Vec<Tensor<f64>> {
            let tape = Tape::<f64>::new();
            let vars: Vec<Var<'_, f64>> = xs.iter().map(|x| tape.param(x)).collect();
            let out = f(&vars);
            let s = (out * out * tape.constant(&r)).sum_all();
            let mut g = s.grad(&vars).expect("recorded gradient");
            if k == 1 {
                // The recorded sweep and the fast one compute the same first derivative.
                let fast = s.backward().expect("fast gradient");
                for (var, recorded) in vars.iter().zip(&g) {
                    let (a, b) = (&fast[*var], recorded.value());
                    assert!(
                        a.allclose(&b, 1e-10, 1e-12),
                        "the recorded first derivative of {:?} differs from the fast one: \
                         {:?} against {:?}",
                        tape.op_names(),
                        b.to_vec(),
                        a.to_vec()
                    );
                }
            }
            for d in &directions[..k - 1] {
                let mut dot = tape.scalar(0.0);
                for (gi, di) in g.iter().zip(d) {
                    dot = dot + (*gi * tape.constant(di)).sum_all();
                }
                g = dot.grad(&vars).expect("recorded gradient");
            }
            g.iter().map(Var::value).collect()
        };
        let analytic = derivative(order, inputs);
        let d = &directions[order - 2];
        let shifted = |sign: f64| -> Vec<Tensor<f64>> {
            inputs
                .iter()
                .zip(d)
                .map(|(x, d)| x + &(d * (sign * self.eps)))
                .collect()
        };
        let plus = derivative(order - 1, &shifted(1.0));
        let minus = derivative(order - 1, &shifted(-1.0));
        let mut worst = Worst::new(order, &ops, inputs);
        for (i, a) in analytic.iter().enumerate() {
            let numeric = (&plus[i] - &minus[i]) / (2.0 * self.eps);
            let (a, numeric) = (a.to_contiguous(), numeric.to_contiguous());
            let (a, numeric) = (
                a.as_slice().expect("contiguous"),
                numeric.as_slice().expect("contiguous"),
            );
            for (j, (&tape_value, &numeric)) in a.iter().zip(numeric).enumerate() {
                worst.see(self, i, j, tape_value, numeric);
            }
        }
        worst.finish()
    }
}

/// The worst disagreement a check has seen so far, relative to its tolerance.
struct Worst<'a> {
    order: usize,
    ops: &'a [&'static str],
    inputs: &'a [Tensor<f64>],
    ratio: f64,
    failure: Option<GradCheckFailure>,
}

impl<'a> Worst<'a> {
    fn new(order: usize, ops: &'a [&'static str], inputs: &'a [Tensor<f64>]) -> Self {
        Worst {
            order,
            ops,
            inputs,
            ratio: 0.0,
            failure: None,
        }
    }

    /// Compares the tape's value of element `j` of input `i` with the finite difference.
    fn see(&mut self, check: &GradCheck, i: usize, j: usize, tape: f64, numeric: f64) {
        let tolerance = check.atol + check.rtol * numeric.abs();
        let ratio = (tape - numeric).abs() / tolerance;
        let ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
        if ratio > self.ratio {
            self.ratio = ratio;
            self.failure = Some(GradCheckFailure {
                order: self.order,
                ops: self.ops.to_vec(),
                input_shapes: self.inputs.iter().map(|x| x.shape().to_vec()).collect(),
                input: i,
                index: unravel(j, self.inputs[i].shape()),
                tape,
                numeric,
                tolerance,
            });
        }
    }

    fn finish(self) -> Result<GradCheckReport, GradCheckFailure> {
        match self.failure {
            Some(failure) if self.ratio > 1.0 => Err(failure),
            _ => Ok(GradCheckReport {
                ops: self.ops.to_vec(),
                worst_ratio: self.ratio,
            }),
        }
    }
}

/// The multi-index of flat (row-major) position `j` in `shape`.
fn unravel(mut j: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = j % n;
        j /= n;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InputGrads, Op, Operand};
    use tensor::Result;

    /// An op with a deliberately wrong gradient (2x instead of 3x^2 for x^3).
    struct BadCube;

    impl Op<f64> for BadCube {
        fn name(&self) -> &'static str {
            "bad_cube"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
            Ok(x[0].map(|v| v * v * v))
        }
        fn backward<V: Operand<f64>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
            dx.set(0, dy.mul(&x[0].scale(2.0)));
        }
    }

    #[test]
    fn a_wrong_gradient_is_caught_and_located() {
        let x = Tensor::from_vec(vec![0.5, 1.5, -2.0, 1.0], &[2, 2]).unwrap();
        let err = GradCheck::default()
            .check(&[x], |v| v[0].tape().apply(BadCube, [v[0]]).unwrap())
            .unwrap_err();
        assert_eq!(err.ops, vec!["bad_cube"]);
        assert_eq!(err.input, 0);
        // The worst element is -2.0 at [1, 0]: 3x^2 = 12 against 2x = -4.
        assert_eq!(err.index, vec![1, 0]);
        let msg = err.to_string();
        assert!(
            msg.contains("bad_cube") && msg.contains("[1, 0]") && msg.contains("[[2, 2]]"),
            "{msg}"
        );
    }

    /// `x^3` whose backward is right to first order but computes `3x^2` outside the tape (a
    /// constant): the pitfall of fused kernels, whose second derivative silently loses a term.
    struct OpaqueCube;

    impl Op<f64> for OpaqueCube {
        fn name(&self) -> &'static str {
            "opaque_cube"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
            Ok(x[0].map(|v| v * v * v))
        }
        fn backward<V: Operand<f64>>(&self, x: &[&V], _: &V, dy: &V, dx: &mut InputGrads<'_, V>) {
            let slope = x[0].value().map(|v| 3.0 * v * v);
            dx.set(0, dy.mul_const(&slope));
        }
    }

    #[test]
    fn a_backward_outside_the_tape_passes_first_order_and_fails_second() {
        let x = Tensor::from_vec(vec![0.5, 1.5, -2.0], &[3]).unwrap();
        fn cube<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
            v[0].tape().apply(OpaqueCube, [v[0]]).unwrap()
        }
        GradCheck::default()
            .check(std::slice::from_ref(&x), cube)
            .unwrap();
        let err = GradCheck::default().check_order(2, &[x], cube).unwrap_err();
        assert_eq!((err.order, err.ops.clone()), (2, vec!["opaque_cube"]));
        assert!(err.to_string().contains("derivative of order 2"), "{err}");
    }

    #[test]
    fn unravel_is_row_major() {
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(0, &[]), Vec::<usize>::new());
    }
}

//! Newton-CG with exact Hessian-vector products: the 5-dimensional Rosenbrock function
//! `f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`, minimised from the scipy.optimize
//! tutorial's start `[1.3, 0.7, 0.8, 1.9, 1.2]` in f64. Each Newton step solves `H p = -g`
//! by conjugate gradients, where every product `H v` is a Hessian-vector product (reverse
//! over reverse, `autograd::with_hessian`: the gradient recorded once per step, one fast
//! sweep per product); `H` itself is never formed. The minimum is `[1, 1, 1, 1, 1]`.
//!
//! Run with `cargo run --release --example newton`.

use brick::autograd::{Var, with_hessian};
use brick::prelude::*;

/// What the minimisation reached.
pub struct NewtonResult {
    /// Newton iterations (outer steps).
    pub iterations: usize,
    /// Hessian-vector products, over all iterations.
    pub hessian_products: usize,
    /// The point reached.
    pub x: Vec<f64>,
    /// The largest `|x_i - 1|`.
    pub largest_error: f64,
}

/// The Rosenbrock function of a vector `[n]`.
pub fn rosenbrock<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
    let n = x.shape()[0];
    let head = x.slice_axis(0, 0..n - 1);
    let tail = x.slice_axis(0, 1..n);
    let step = tail - head * head;
    (step * step * 100.0 + (1.0 - head).square()).sum_all()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn l1(a: &[f64]) -> f64 {
    a.iter().map(|v| v.abs()).sum()
}

/// The value, the gradient, the Newton step and the number of Hessian-vector products.
type Step = (f64, Vec<f64>, Vec<f64>, usize);

/// The Newton step at `x`: conjugate gradients on `H p = -g`, stopped at a residual of
/// `min(0.5, sqrt(|g|)) |g|` or at the first direction of non-positive curvature. The
/// gradient is recorded once; each `H d` is one fast sweep over it.
fn newton_step(x: &[f64]) -> Result<Step, TensorError> {
    let n = x.len();
    let point = Tensor::from_vec(x.to_vec(), &[n])?;
    with_hessian(
        |p| rosenbrock(p[0]),
        &[point],
        |h| {
            let g = h.gradient()[0].to_vec();
            let g_norm = l1(&g);
            let tolerance = g_norm.sqrt().min(0.5) * g_norm;
            let mut p = vec![0.0; n];
            let mut residual = g.clone();
            let mut direction: Vec<f64> = g.iter().map(|v| -v).collect();
            let mut rr = dot(&residual, &residual);
            let mut products = 0;
            for i in 0..20 * n {
                if l1(&residual) <= tolerance {
                    break;
                }
                let hd = h.product(&[Tensor::from_vec(direction.clone(), &[n])?])?[0].to_vec();
                products += 1;
                let curvature = dot(&direction, &hd);
                if curvature <= 0.0 {
                    // Negative curvature: the steepest descent step if nothing better is known.
                    if i == 0 {
                        p = direction
                            .iter()
                            .map(|d| d * rr / curvature.abs().max(f64::MIN_POSITIVE))
                            .collect();
                    }
                    break;
                }
                let alpha = rr / curvature;
                for k in 0..n {
                    p[k] += alpha * direction[k];
                    residual[k] += alpha * hd[k];
                }
                let rr_next = dot(&residual, &residual);
                let beta = rr_next / rr;
                for k in 0..n {
                    direction[k] = -residual[k] + beta * direction[k];
                }
                rr = rr_next;
            }
            Ok((h.value(), g, p, products))
        },
    )
}

/// Newton-CG as scipy's `minimize(method='Newton-CG')` does it: an inexact Newton step by
/// conjugate gradients (stopped at a residual of `min(0.5, sqrt(|g|)) |g|`, or at the first
/// direction of non-positive curvature), a backtracking line search, and a stop when the
/// step's L1 norm falls below `xtol`.
pub fn minimise(x0: &[f64], xtol: f64, max_iterations: usize) -> Result<NewtonResult, TensorError> {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut hessian_products = 0;
    let mut iterations = 0;
    while iterations < max_iterations {
        iterations += 1;
        let (f, g, p, products) = newton_step(&x)?;
        hessian_products += products;
        // Backtracking line search (Armijo's condition) from the full Newton step.
        let slope = dot(&g, &p);
        let mut step = 1.0;
        let value_at = |x: &[f64]| -> Result<f64, TensorError> {
            let tape = Tape::<f64>::new();
            Ok(rosenbrock(tape.constant(&Tensor::from_vec(x.to_vec(), &[n])?)).item())
        };
        loop {
            let trial: Vec<f64> = x.iter().zip(&p).map(|(x, p)| x + step * p).collect();
            if value_at(&trial)? <= f + 1e-4 * step * slope || step < 1e-10 {
                break;
            }
            step *= 0.5;
        }
        let update: Vec<f64> = p.iter().map(|p| step * p).collect();
        for (x, u) in x.iter_mut().zip(&update) {
            *x += u;
        }
        if l1(&update) <= xtol {
            break;
        }
    }
    let largest_error = x.iter().map(|v| (v - 1.0).abs()).fold(0.0, f64::max);
    Ok(NewtonResult {
        iterations,
        hessian_products,
        x,
        largest_error,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let x0 = [1.3, 0.7, 0.8, 1.9, 1.2];
    let r = minimise(&x0, 1e-8, 100)?;
    println!("Rosenbrock-5 from {x0:?} by Newton-CG with exact Hessian-vector products");
    println!("x = {:?}", r.x);
    println!(
        "{} Hessian-vector products, largest error {:.2e}",
        r.hessian_products, r.largest_error
    );
    println!("iterations: {}", r.iterations);
    Ok(())
}

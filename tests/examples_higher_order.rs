//! The higher-order examples' results, checked at fixed seeds: the PINN solves its equation,
//! Newton-CG with exact Hessian-vector products reaches the Rosenbrock minimum, and the
//! gradient-penalty loss has the gradient finite differences give.

#[path = "../examples/pinn.rs"]
#[allow(dead_code)]
mod pinn;

#[path = "../examples/newton.rs"]
#[allow(dead_code)]
mod newton;

#[path = "../examples/gradient_penalty.rs"]
#[allow(dead_code)]
mod gradient_penalty;

use brick::autograd::Var;
use brick::autograd::gradcheck::GradCheck;
use brick::prelude::*;

#[test]
fn the_pinn_solves_its_equation_to_1e_4() {
    let r = pinn::run(5000, 0).unwrap();
    assert!(
        r.largest_error <= 1e-4,
        "largest error {} (loss {})",
        r.largest_error,
        r.final_loss
    );
}

#[test]
fn the_pinn_has_not_solved_it_before_training() {
    // The accuracy above comes from training on the equation, not from the start.
    let r = pinn::run(10, 0).unwrap();
    assert!(r.largest_error > 0.1, "largest error {}", r.largest_error);
}

#[test]
fn newton_cg_reaches_the_rosenbrock_minimum_in_at_most_30_iterations() {
    let r = newton::minimise(&[1.3, 0.7, 0.8, 1.9, 1.2], 1e-8, 100).unwrap();
    assert!(r.iterations <= 30, "{} iterations", r.iterations);
    assert!(r.largest_error <= 1e-8, "x = {:?}", r.x);
    assert!(
        r.hessian_products > r.iterations,
        "CG used Hessian-vector products"
    );
}

#[test]
fn newton_cg_is_not_there_after_one_iteration() {
    let r = newton::minimise(&[1.3, 0.7, 0.8, 1.9, 1.2], 1e-8, 1).unwrap();
    assert_eq!(r.iterations, 1);
    assert!(r.largest_error > 1e-3, "x = {:?}", r.x);
}

/// The critic's loss at fixed samples, as a function of its weights.
fn penalty_loss<'t>(p: &[Var<'t, f64>]) -> Var<'t, f64> {
    let mut rng = seeded(7);
    let real = &Tensor::<f64>::rand_normal(&[6, 2], 0.0, 0.5, &mut rng) + 2.0;
    let fake = &Tensor::<f64>::rand_normal(&[6, 2], 0.0, 0.5, &mut rng) - 2.0;
    let eps = Tensor::<f64>::rand_uniform(&[6, 1], 0.0, 1.0, &mut rng);
    let x_hat = &(&eps * &real) + &(&(1.0 - &eps) * &fake);
    gradient_penalty::critic_loss(p, &real, &fake, &x_hat, 10.0)
}

#[test]
fn the_gradient_penalty_loss_has_the_gradient_finite_differences_give() {
    let weights = gradient_penalty::initial_weights(3).unwrap();
    let report = GradCheck::default().check(&weights, penalty_loss).unwrap();
    assert!(report.ops.contains(&"sqrt"), "{:?}", report.ops);
    // The penalty's gradient with respect to the weights goes through grad_x D: without the
    // recorded sweep it would be missing, and the check above would fail. The critic's own
    // second derivatives are checked too.
    GradCheck::default()
        .check_order(2, &weights, penalty_loss)
        .unwrap();
}

#[test]
fn the_critic_reaches_the_soft_penalty_optimum() {
    let r = gradient_penalty::run(500, 0).unwrap();
    let w = 4.0 * 2f64.sqrt();
    let k = 1.0 + w / 20.0;
    assert!(
        (r.mean_gradient_norm - k).abs() < 0.05,
        "gradient norm {}",
        r.mean_gradient_norm
    );
    assert!(
        (r.wasserstein_estimate - k * w).abs() < 0.3,
        "estimate {}",
        r.wasserstein_estimate
    );
}

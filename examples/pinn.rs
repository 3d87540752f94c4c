//! A physics-informed neural network: a small tanh MLP `u(x)` learns the solution of the
//! boundary value problem
//!
//! ```text
//! u''(x) = -pi^2 sin(pi x) on [0, 1],   u(0) = u(1) = 0        (solution: sin(pi x))
//! ```
//!
//! from the equation alone, with no samples of the solution. The loss holds the network's
//! own second derivative with respect to its input: `d2u/dx2` comes from two recorded
//! gradients (`Var::grad_with`), and training differentiates through them once more (a third
//! derivative of the network). 1 -> 32 -> 32 -> 1 tanh, 64 evenly spaced collocation points,
//! loss = mean squared residual + u(0)^2 + u(1)^2, Adam lr 1e-3, 5,000 full-batch steps.
//! Prints the largest error against sin(pi x) on 101 evenly spaced points.
//!
//! Run with `cargo run --release --example pinn` (or `-- <steps> <seed>`; 5000 and 0 by
//! default).

use std::f32::consts::PI;
use std::time::Instant;

use brick::autograd::{GradOptions, OutputActivation};
use brick::prelude::*;

/// What a run reached.
pub struct PinnResult {
    /// The loss at the last step.
    pub final_loss: f32,
    /// The largest `|u(x) - sin(pi x)|` on 101 evenly spaced points of [0, 1].
    pub largest_error: f32,
}

/// `n` evenly spaced points of [0, 1] as a column `[n, 1]`.
fn grid(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
    Tensor::from_vec(v, &[n, 1]).expect("n values")
}

/// `u(x)`: two tanh layers and a linear output, on a batch of points `[n, 1]`.
fn network<'t>(p: &[Var<'t>], x: Var<'t>) -> Var<'t> {
    let h = x.dense(p[0], Some(p[1]), OutputActivation::Tanh);
    let h = h.dense(p[2], Some(p[3]), OutputActivation::Tanh);
    h.dense(p[4], Some(p[5]), OutputActivation::Linear)
}

/// Trains for `steps` Adam steps from Glorot-uniform weights drawn with `seed`.
pub fn run(steps: usize, seed: u64) -> Result<PinnResult, Box<dyn std::error::Error>> {
    let mut rng = seeded(seed);
    let init = Initializer::GLOROT_UNIFORM;
    let mut params: Vec<Tensor> = Vec::new();
    for (fan_in, fan_out) in [(1, 32), (32, 32), (32, 1)] {
        params.push(init.sample(&[fan_in, fan_out], &mut rng)?);
        params.push(Tensor::zeros(&[fan_out]));
    }
    let xs = grid(64);
    // The equation's right-hand side moved to the left: u'' + pi^2 sin(pi x) = 0.
    let forcing = xs.map(|x| PI * PI * (PI * x).sin());
    let ones = Tensor::ones(&[64, 1]);
    let boundary = Tensor::from_vec(vec![0.0f32, 1.0], &[2, 1])?;
    let mut optimizer = Adam::new(1e-3);
    let mut final_loss = f32::NAN;
    for _ in 0..steps {
        let grads = {
            let tape = Tape::new();
            let p: Vec<Var<'_>> = params.iter().map(|w| tape.param(w)).collect();
            // The collocation points are an input we differentiate with respect to.
            let x = tape.param(&xs);
            let u = network(&p, x);
            // Each u_i depends on x_i alone, so the gradient of sum(u) is du_i/dx_i.
            let each = GradOptions {
                seed: Some(tape.constant(&ones)),
                create_graph: true,
            };
            let du = u.grad_with(&[x], each)?[0];
            let d2u = du.grad_with(&[x], each)?[0];
            let residual = d2u + tape.constant(&forcing);
            let ub = network(&p, tape.constant(&boundary));
            let loss = residual.square().mean_all() + ub.square().sum_all();
            final_loss = loss.item();
            let mut g = loss.backward()?;
            p.iter()
                .map(|&v| g.take(v).ok_or("a weight has no gradient"))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut refs: Vec<&mut Tensor> = params.iter_mut().collect();
        let grad_refs: Vec<&Tensor> = grads.iter().collect();
        optimizer.step(&mut refs, &grad_refs)?;
    }
    // The solution on a finer grid, without recording.
    let tape = Tape::new();
    let p: Vec<Var<'_>> = params.iter().map(|w| tape.constant(w)).collect();
    let test = grid(101);
    let u = network(&p, tape.constant(&test)).value();
    let largest_error = u
        .to_vec()
        .iter()
        .zip(test.to_vec())
        .map(|(u, x)| (u - (PI * x).sin()).abs())
        .fold(0.0f32, f32::max);
    Ok(PinnResult {
        final_loss,
        largest_error,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    // Optional: `-- <steps> <seed>`.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps = args.first().map(|s| s.parse()).transpose()?.unwrap_or(5000);
    let seed = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let start = Instant::now();
    let result = run(steps, seed)?;
    let seconds = start.elapsed().as_secs_f64();
    println!("u''(x) = -pi^2 sin(pi x), u(0) = u(1) = 0: 1 -> 32 -> 32 -> 1 tanh, Adam 1e-3");
    println!(
        "{steps} steps in {seconds:.2} s, final loss {:.3e}",
        result.final_loss
    );
    println!("largest error: {:.3e}", result.largest_error);
    Ok(())
}

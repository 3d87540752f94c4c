//! A WGAN-GP critic (Gulrajani et al. 2017) trained with a gradient penalty: the loss holds
//! the norm of the critic's gradient with respect to its input,
//!
//! ```text
//! loss = mean D(fake) - mean D(real) + lambda * mean_i (||grad_x D(x_i)||_2 - 1)^2
//! ```
//!
//! at points `x_i` drawn between real and fake samples. `grad_x D` is a recorded gradient
//! (`Var::grad_with`), so training the critic differentiates through it: a second derivative
//! of the network. The critic is 2 -> 32 tanh -> 32 tanh -> 1; real samples are a Gaussian
//! blob at (2, 2), fake ones a blob at (-2, -2); Adam lr 1e-3 (beta_1 0.5, beta_2 0.9, as in
//! the paper), lambda 10, 500 steps of batch 64.
//!
//! For two blobs of one shape the best 1-Lipschitz critic is linear with slope 1 along the
//! line between the means, and its estimate is their distance `W = 4 sqrt 2 = 5.657`. The
//! penalty is soft: a critic of slope `k` scores `k W - lambda (k - 1)^2`, best at
//! `k = 1 + W / (2 lambda) = 1.283`, so the trained critic's gradient norm should be near
//! 1.283 and its estimate near `k W = 7.26`. The example prints both.
//!
//! Run with `cargo run --release --example gradient_penalty`.

use brick::autograd::{GradOptions, OutputActivation};
use brick::prelude::*;
use brick::tensor::random::StdRng;

/// What the critic learned.
pub struct PenaltyResult {
    /// `mean D(real) - mean D(fake)` on fresh samples after training.
    pub wasserstein_estimate: f64,
    /// The mean of `||grad_x D||_2` at fresh interpolated points after training.
    pub mean_gradient_norm: f64,
}

/// The critic `D(x)` on a batch `[n, 2]`.
pub fn critic<'t, T: Element>(p: &[Var<'t, T>], x: Var<'t, T>) -> Var<'t, T> {
    let h = x.dense(p[0], Some(p[1]), OutputActivation::Tanh);
    let h = h.dense(p[2], Some(p[3]), OutputActivation::Tanh);
    h.dense(p[4], Some(p[5]), OutputActivation::Linear)
}

/// `||grad_x D(x)||_2` for each row of `x` (a parameter of the tape), recorded so that it
/// can be differentiated again.
pub fn gradient_norms<'t, T: Element>(p: &[Var<'t, T>], x: Var<'t, T>) -> Var<'t, T> {
    let tape = x.tape();
    let d = critic(p, x);
    // Each D(x_i) depends on x_i alone: the gradient of sum(D) holds every grad D(x_i).
    let each = GradOptions {
        seed: Some(tape.constant(&Tensor::ones(&d.shape()))),
        create_graph: true,
    };
    let g = d
        .grad_with(&[x], each)
        .expect("the critic depends on its input")[0];
    g.square().sum(-1, false).sqrt()
}

/// The critic's loss with the gradient penalty, at interpolates `x_hat` (rows between the
/// real and fake rows).
pub fn critic_loss<'t, T: Element>(
    p: &[Var<'t, T>],
    real: &Tensor<T>,
    fake: &Tensor<T>,
    x_hat: &Tensor<T>,
    lambda: T,
) -> Var<'t, T> {
    let tape = p[0].tape();
    let d_real = critic(p, tape.constant(real)).mean_all();
    let d_fake = critic(p, tape.constant(fake)).mean_all();
    let norms = gradient_norms(p, tape.param(x_hat));
    let penalty = (norms - T::one()).square().mean_all();
    d_fake - d_real + penalty * lambda
}

/// `n` samples of a Gaussian blob at `(c, c)` with standard deviation 0.5.
fn blob(n: usize, c: f64, rng: &mut StdRng) -> Tensor<f64> {
    &Tensor::rand_normal(&[n, 2], 0.0, 0.5, rng) + c
}

/// Rows `eps_i real_i + (1 - eps_i) fake_i` for uniform `eps_i`.
fn interpolate(real: &Tensor<f64>, fake: &Tensor<f64>, rng: &mut StdRng) -> Tensor<f64> {
    let eps = Tensor::rand_uniform(&[real.shape()[0], 1], 0.0, 1.0, rng);
    &(&eps * real) + &(&(1.0 - &eps) * fake)
}

/// Fresh critic weights (Glorot uniform, zero biases) from `seed`.
pub fn initial_weights(seed: u64) -> Result<Vec<Tensor<f64>>, Box<dyn std::error::Error>> {
    let mut rng = seeded(seed);
    let mut params = Vec::new();
    for (fan_in, fan_out) in [(2, 32), (32, 32), (32, 1)] {
        params.push(Initializer::GLOROT_UNIFORM.sample(&[fan_in, fan_out], &mut rng)?);
        params.push(Tensor::zeros(&[fan_out]));
    }
    Ok(params)
}

/// Trains the critic for `steps` steps of batch 64.
pub fn run(steps: usize, seed: u64) -> Result<PenaltyResult, Box<dyn std::error::Error>> {
    let mut params = initial_weights(seed)?;
    let mut rng = seeded(seed + 1);
    let mut optimizer = Adam::new(1e-3).beta_1(0.5).beta_2(0.9);
    for _ in 0..steps {
        let real = blob(64, 2.0, &mut rng);
        let fake = blob(64, -2.0, &mut rng);
        let x_hat = interpolate(&real, &fake, &mut rng);
        let grads = {
            let tape = Tape::<f64>::new();
            let p: Vec<Var<'_, f64>> = params.iter().map(|w| tape.param(w)).collect();
            let mut g = critic_loss(&p, &real, &fake, &x_hat, 10.0).backward()?;
            p.iter()
                .map(|&v| g.take(v).ok_or("a weight has no gradient"))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut refs: Vec<&mut Tensor<f64>> = params.iter_mut().collect();
        let grad_refs: Vec<&Tensor<f64>> = grads.iter().collect();
        optimizer.step(&mut refs, &grad_refs)?;
    }
    let (real, fake) = (blob(1000, 2.0, &mut rng), blob(1000, -2.0, &mut rng));
    let x_hat = interpolate(&real, &fake, &mut rng);
    let tape = Tape::<f64>::new();
    let p: Vec<Var<'_, f64>> = params.iter().map(|w| tape.param(w)).collect();
    let wasserstein_estimate = critic(&p, tape.constant(&real)).mean_all().item()
        - critic(&p, tape.constant(&fake)).mean_all().item();
    let mean_gradient_norm = gradient_norms(&p, tape.param(&x_hat)).mean_all().item();
    Ok(PenaltyResult {
        wasserstein_estimate,
        mean_gradient_norm,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    // Optional: `-- <steps>` (500 by default).
    let steps = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(500);
    let r = run(steps, 0)?;
    let (w, lambda) = (4.0 * 2f64.sqrt(), 10.0);
    let k = 1.0 + w / (2.0 * lambda);
    println!("WGAN-GP critic, blobs at (2, 2) and (-2, -2), {steps} steps:");
    println!(
        "mean gradient norm at interpolates: {:.3} (the soft penalty's optimum: {k:.3})",
        r.mean_gradient_norm
    );
    println!(
        "Wasserstein estimate: {:.3} (its optimum: {:.3}; the distance of the means: {w:.3})",
        r.wasserstein_estimate,
        k * w
    );
    Ok(())
}

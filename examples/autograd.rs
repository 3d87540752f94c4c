//! A first look at the tape: a small computation and its gradients, then a hand-written
//! training loop that fits y = 3x + 2 with plain gradient descent.
//!
//! Run with `cargo run --release --example autograd`.

use brick::prelude::*;

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), TensorError> {
    // 1. A small computation: f(x, w) = sum(tanh(x @ w)), and its gradient with respect to w.
    let tape = Tape::<f32>::new();
    let x = tape.constant(&Tensor::from_vec(vec![1.0, 2.0, -1.0, 0.5], &[2, 2])?);
    let w = tape.param(&Tensor::from_vec(vec![0.3, -0.2, 0.1, 0.4], &[2, 2])?);
    let f = x.matmul(w).tanh().sum_all();
    let grads = f.backward()?;
    println!("f(x, w) = sum(tanh(x @ w)) = {:.6}", f.item());
    println!("recorded ops: {:?}", tape.op_names());
    println!("df/dw =\n{}", grads[w]);

    // 2. Fit y = 3x + 2 from 64 noisy samples, with a tape per step and plain SGD.
    let mut rng = seeded(0);
    let xs = Tensor::<f32>::rand_uniform(&[64, 1], -1.0, 1.0, &mut rng);
    let noise = Tensor::<f32>::rand_normal(&[64, 1], 0.0, 0.01, &mut rng);
    let ys = &(&xs * 3.0 + 2.0) + &noise;

    let mut weight = Tensor::<f32>::zeros(&[1, 1]);
    let mut bias = Tensor::<f32>::zeros(&[1]);
    let learning_rate = 0.5;
    for step in 0..=100 {
        let (loss, dw, db) = {
            let tape = Tape::new();
            let (w, b) = (tape.param(&weight), tape.param(&bias));
            let prediction = tape.constant(&xs).matmul(w) + b;
            let loss = (prediction - tape.constant(&ys)).square().mean_all();
            let mut grads = loss.backward()?;
            (loss.item(), grads.take(w).unwrap(), grads.take(b).unwrap())
        }; // the tape is dropped here, so the update below writes in place without a copy
        weight.scaled_add(-learning_rate, &dw);
        bias.scaled_add(-learning_rate, &db);
        if step % 20 == 0 {
            println!(
                "step {step:3}: loss {loss:.6}  w {:.4}  b {:.4}",
                weight.item(),
                bias.item()
            );
        }
    }
    println!(
        "fitted y = {:.3}x + {:.3} (true: y = 3x + 2)",
        weight.item(),
        bias.item()
    );
    Ok(())
}

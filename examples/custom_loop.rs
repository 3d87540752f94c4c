//! The MNIST network of `examples/mnist.rs` (784 -> 512 relu -> 10 softmax, RMSprop,
//! categorical cross-entropy, batch 128) trained without `Sequential`: the weights are plain
//! tensors, and each step is written out by hand on the autograd tape. Per batch: a new
//! tape, the weights on it as parameters, the forward pass, the loss on the logits,
//! `backward`, the gradients taken out, the tape dropped, one optimizer step. Prints the
//! mean training loss of each epoch and the test accuracy.
//!
//! It trains on the bundled 10,000-digit sample (first 8,000 for training, last 2,000 for
//! testing).
//!
//! Run with `cargo run --release --example custom_loop`.

use std::collections::BTreeMap;
use std::time::Instant;

use brick::prelude::*;
use rand::seq::SliceRandom;

/// What a run measured.
pub struct CustomLoopResult {
    /// Training images used.
    pub train_rows: usize,
    /// Test images.
    pub test_rows: usize,
    /// The mean training loss of each epoch (over its batches, weighted by batch size).
    pub epoch_losses: Vec<f64>,
    /// The fraction of test images whose largest logit is their label.
    pub test_accuracy: f64,
}

/// Trains for `epochs` epochs of `batch_size` images on the first `train_rows` of the 8,000
/// training images (all of them if `None`), with weights and shuffles drawn from `seed`,
/// then measures the accuracy on the 2,000 test images.
pub fn run(
    epochs: usize,
    batch_size: usize,
    train_rows: Option<usize>,
    seed: u64,
) -> Result<CustomLoopResult, Box<dyn std::error::Error + Send + Sync>> {
    // The bundled sample: first 8,000 digits for training, last 2,000 for testing.
    let images = load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
    let n = labels.len();
    let split = n * 4 / 5;
    let n_train = train_rows.unwrap_or(split).min(split);
    let x_train = images.rows(0..n_train);
    let y_train = to_categorical::<f32>(&labels[..n_train], Some(10))?;
    let x_test = images.rows(split..n);
    let test_labels = &labels[split..];

    // Keras's defaults for Dense: glorot_uniform kernels, zero biases. The weights are one
    // list, by name: the tape, the gradients and the optimizer all take it in this form.
    let mut rng = seeded(seed);
    let init = Initializer::GLOROT_UNIFORM;
    let mut weights: BTreeMap<String, Tensor> = BTreeMap::new();
    weights.insert("w1".into(), init.sample(&[784, 512], &mut rng)?);
    weights.insert("b1".into(), Tensor::zeros(&[512]));
    weights.insert("w2".into(), init.sample(&[512, 10], &mut rng)?);
    weights.insert("b2".into(), Tensor::zeros(&[10]));

    // Softmax and cross-entropy together, on the logits.
    let loss_fn: Loss = CategoricalCrossentropy::new().from_logits(true).into();
    let mut optimizer = RMSprop::default();

    let mut order: Vec<usize> = (0..n_train).collect();
    let mut epoch_losses = Vec::new();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for batch in order.chunks(batch_size) {
            let xb = x_train.gather(0, batch);
            let yb = y_train.gather(0, batch);
            let (loss, grads) = {
                let tape = Tape::new();
                let w = tape.params_named(&weights);
                let hidden = (tape.constant(&xb).matmul(w["w1"]) + w["b1"]).relu();
                let logits = hidden.matmul(w["w2"]) + w["b2"];
                let loss = loss_fn.compute(tape.constant(&yb), logits)?;
                (loss.item(), loss.backward()?.take_named(&w)?)
            }; // the tape is dropped here, so the step below updates the weights in place
            optimizer.step_map(&mut weights, &grads)?;
            loss_sum += f64::from(loss) * batch.len() as f64;
        }
        epoch_losses.push(loss_sum / n_train as f64);
    }

    // Test accuracy: the class of the largest logit (softmax would not change it). No
    // gradients are needed, so the forward pass runs on the tensors, without a tape.
    let hidden = (&x_test.matmul(&weights["w1"]) + &weights["b1"]).relu();
    let logits = &hidden.matmul(&weights["w2"]) + &weights["b2"];
    let correct = logits
        .argmax(-1)
        .iter()
        .zip(test_labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(CustomLoopResult {
        train_rows: n_train,
        test_rows: test_labels.len(),
        epoch_losses,
        test_accuracy: correct as f64 / test_labels.len() as f64,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let start = Instant::now();
    // Inside `install`, the thread pool stays awake between the matrix products, so each
    // one starts on every core at once (as `fit` does for `Sequential`).
    let result = brick::tensor::parallel::install(|| run(3, 128, None, 42))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "784 -> 512 relu -> 10, RMSprop, hand-written loop on {} training images:",
        result.train_rows
    );
    for (epoch, loss) in result.epoch_losses.iter().enumerate() {
        println!("epoch {}: loss {loss:.4}", epoch + 1);
    }
    println!(
        "test accuracy on {} images: {:.2}% ({seconds:.2} s in all)",
        result.test_rows,
        100.0 * result.test_accuracy
    );
    Ok(())
}

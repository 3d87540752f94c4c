//! The keras.io "Simple MNIST convnet", layer for layer:
//!
//! ```text
//! Input(28, 28, 1) -> Conv2D(32, 3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3, relu)
//!   -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) -> Dense(10, softmax)
//! ```
//!
//! Adam, categorical cross-entropy, accuracy, batch 128, 34,826 parameters. It trains on the
//! bundled 10,000 digits (the first 8,000; the last 2,000 are the test set) for 12 epochs
//! (`--epochs N` for another count) and prints the summary, a progress bar per epoch and
//! the test accuracy. keras.io trains on the full 60,000 with `validation_split=0.1`; on
//! this split Keras 3 on JAX reaches 97.25-97.55% (three seeds).
//!
//! Run with `cargo run --release --example mnist_convnet [-- --epochs N] [-- --seed S]`.

use std::time::Instant;

use brick::prelude::*;

/// What a run gives: the test accuracy and loss, and the training time.
pub struct Outcome {
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub train_seconds: f64,
    pub params: usize,
}

/// The keras.io convnet, untrained.
pub fn convnet(seed: u64) -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::with_seed(seed);
    model.add(Input::new([28, 28, 1]))?;
    model.add(Conv2D::new(32, 3).activation("relu"))?;
    model.add(MaxPooling2D::new(2))?;
    model.add(Conv2D::new(64, 3).activation("relu"))?;
    model.add(MaxPooling2D::new(2))?;
    model.add(Flatten::new())?;
    model.add(Dropout::new(0.5))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile("adam", "categorical_crossentropy", ["accuracy"])?;
    Ok(model)
}

/// Trains for `epochs` on the first `train_rows` of the bundled digits' first 8,000 (all
/// of them with `None`) and tests on the last 2,000; `verbose` as `fit`'s (1: progress bar).
pub fn run(
    epochs: usize,
    seed: u64,
    train_rows: Option<usize>,
    verbose: u8,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    // Pixels scaled to [0, 1], as images of one channel.
    let images = load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
    let n = labels.len();
    let images = images.reshape(&[n, 28, 28, 1]);
    let split = n * 4 / 5;
    let rows = train_rows.unwrap_or(split).min(split);
    let x_train = images.rows(0..rows);
    let x_test = images.rows(split..n);
    let y_train = to_categorical::<f32>(&labels[..rows], Some(10))?;
    let y_test = to_categorical::<f32>(&labels[split..], Some(10))?;
    if verbose > 0 {
        println!("{rows} training and {} test images of 28x28x1", n - split);
    }

    let mut model = convnet(seed)?;
    if verbose > 0 {
        print!("{}", model.summary());
    }
    let start = Instant::now();
    model.fit(
        &x_train,
        &y_train,
        FitOptions {
            epochs,
            batch_size: 128,
            verbose,
            ..Default::default()
        },
    )?;
    let train_seconds = start.elapsed().as_secs_f64();
    let test = model.evaluate_batched(&x_test, &y_test, 128)?;
    Ok(Outcome {
        test_accuracy: test.get("accuracy").unwrap_or(f64::NAN),
        test_loss: test.loss(),
        train_seconds,
        params: model.count_params(),
    })
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(12);
    let seed: u64 = brick::flag(&args, "--seed")?.unwrap_or(42);
    let outcome = run(epochs, seed, None, 1)?;
    println!(
        "test loss {:.4}, test accuracy {:.2}% (training took {:.1} s)",
        outcome.test_loss,
        100.0 * outcome.test_accuracy,
        outcome.train_seconds
    );
    Ok(())
}

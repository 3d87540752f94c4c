//! XOR, the problem a single perceptron cannot solve, learned by a small Keras-style network:
//! 2 inputs -> Dense 8 tanh -> Dense 1 sigmoid, binary cross-entropy, plain SGD, one batch of
//! all four points per step. Prints the four predictions and the accuracy (100%).
//!
//! Run with `cargo run --release --example xor`.

use brick::prelude::*;

/// What a run learned.
pub struct XorResult {
    /// The four inputs, one `[a, b]` pair per row.
    pub inputs: Vec<[f32; 2]>,
    /// The XOR of each input (0 or 1).
    pub targets: Vec<f32>,
    /// The network's output (a probability) for each input.
    pub predictions: Vec<f32>,
    /// The fraction of inputs whose prediction, thresholded at 0.5, equals the target.
    pub accuracy: f64,
}

/// Trains the network for `epochs` passes over the four points, with initial weights from
/// `seed`, and returns its predictions.
pub fn run(epochs: usize, seed: u64) -> Result<XorResult, Box<dyn std::error::Error>> {
    let inputs = vec![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let targets = vec![0.0f32, 1.0, 1.0, 0.0];
    let x = Tensor::new(&inputs)?;
    let y = Tensor::new(&targets)?.reshape(&[4, 1]);

    // model = Sequential()
    // model.add(Dense(8, input_dim=2, activation='tanh'))
    // model.add(Dense(1, activation='sigmoid'))
    // model.compile(optimizer=SGD(0.5), loss='binary_crossentropy', metrics=['accuracy'])
    // model.fit(x, y, epochs=epochs, batch_size=4, verbose=0)
    let mut model = Sequential::with_seed(seed);
    model.add(Dense::new(8).input_dim(2).activation("tanh"))?;
    model.add(Dense::new(1).activation("sigmoid"))?;
    model.compile(SGD::new(0.5), "binary_crossentropy", ["accuracy"])?;
    model.fit(
        &x,
        &y,
        FitOptions {
            epochs,
            batch_size: 4,
            verbose: 0,
            ..Default::default()
        },
    )?;

    let predictions = model.predict(&x)?.to_vec();
    let correct = predictions
        .iter()
        .zip(&targets)
        .filter(|&(&p, &t)| (p >= 0.5) == (t == 1.0))
        .count();
    Ok(XorResult {
        inputs,
        targets,
        accuracy: correct as f64 / predictions.len() as f64,
        predictions,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs = 1000;
    let result = run(epochs, 1)?;
    println!("XOR after {epochs} epochs of SGD:");
    for ((input, target), p) in result
        .inputs
        .iter()
        .zip(&result.targets)
        .zip(&result.predictions)
    {
        println!(
            "  {} xor {} = {target}   predicted {p:.4} -> {}",
            input[0],
            input[1],
            u8::from(*p >= 0.5)
        );
    }
    println!("accuracy: {:.0}%", 100.0 * result.accuracy);
    Ok(())
}

//! Rosenblatt's perceptron on Iris: is a flower setosa (1) or not (0), from its petal length
//! and width? The model is one `Dense` unit with the Heaviside step activation; it is trained
//! not by gradient descent (the step has no useful gradient) but by the perceptron learning
//! rule, written out by hand on the weights from `get_weights`/`set_weights`:
//!
//! ```text
//! w += lr * (target - prediction) * x
//! b += lr * (target - prediction)
//! ```
//!
//! one sample at a time, epoch after epoch, until an epoch makes no error. Setosa is
//! linearly separable from the other two species, so the rule converges. Prints the errors
//! of each epoch, the learned weights, the training accuracy and the prediction for a petal
//! 2 cm long and 0.5 cm wide.
//!
//! Run with `cargo run --release --example perceptron`.

use brick::prelude::*;

/// What a run learned.
pub struct PerceptronResult {
    /// The trained model (one step unit on `[petal_length, petal_width]`).
    pub model: Sequential,
    /// The number of misclassified samples in each epoch (before each one's update).
    pub errors_per_epoch: Vec<usize>,
    /// The kernel: one weight for petal length, one for petal width.
    pub weights: [f32; 2],
    /// The bias.
    pub bias: f32,
    /// The fraction of the 150 flowers the trained model classifies correctly.
    pub train_accuracy: f64,
    /// The model's output (0 or 1) for a petal of length 2 and width 0.5.
    pub prediction: f32,
}

/// Trains with learning rate `learning_rate` for at most `max_epochs` epochs, starting from
/// the layer's initial weights drawn from `seed`.
pub fn run(
    max_epochs: usize,
    learning_rate: f32,
    seed: u64,
) -> Result<PerceptronResult, Box<dyn std::error::Error>> {
    let iris = read_csv::<f32>(brick::data_path("iris.csv"), "species")?;
    let column = |name: &str| {
        iris.feature_names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("iris.csv has no column '{name}'"))
    };
    let x = iris
        .features
        .gather(1, &[column("petal_length")?, column("petal_width")?]);
    let targets: Vec<f32> = iris
        .labels
        .iter()
        .map(|l| if l == "setosa" { 1.0 } else { 0.0 })
        .collect();

    let mut model = Sequential::with_seed(seed);
    model.add(Dense::new(1).input_dim(2).activation("step"))?;

    let mut errors_per_epoch = Vec::new();
    for _ in 0..max_epochs {
        let mut errors = 0;
        for (i, &target) in targets.iter().enumerate() {
            let sample = x.rows(i..i + 1);
            let prediction = model.predict(&sample)?.item();
            let delta = learning_rate * (target - prediction);
            if delta == 0.0 {
                continue;
            }
            errors += 1;
            let [kernel, bias] = <[Tensor; 2]>::try_from(model.get_weights())
                .map_err(|w| format!("expected a kernel and a bias, got {} tensors", w.len()))?;
            let mut w = kernel.to_vec();
            for (wj, xj) in w.iter_mut().zip(sample.to_vec()) {
                *wj += delta * xj;
            }
            let b = bias.item() + delta;
            model.set_weights(&[
                Tensor::from_vec(w, kernel.shape())?,
                Tensor::from_vec(vec![b], bias.shape())?,
            ])?;
        }
        errors_per_epoch.push(errors);
        if errors == 0 {
            break;
        }
    }

    let predictions = model.predict(&x)?.to_vec();
    let correct = predictions
        .iter()
        .zip(&targets)
        .filter(|(p, t)| p == t)
        .count();
    let prediction = model
        .predict(&Tensor::from_vec(vec![2.0, 0.5], &[1, 2])?)?
        .item();
    let weights = model.get_weights();
    let kernel = weights[0].to_vec();
    Ok(PerceptronResult {
        weights: [kernel[0], kernel[1]],
        bias: weights[1].item(),
        model,
        errors_per_epoch,
        train_accuracy: correct as f64 / targets.len() as f64,
        prediction,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let result = run(100, 0.1, 0)?;
    println!("Perceptron on Iris petals: setosa (1) versus the rest (0)");
    for (epoch, errors) in result.errors_per_epoch.iter().enumerate() {
        println!("epoch {:2}: {errors:3} errors", epoch + 1);
    }
    println!(
        "weights: petal_length {:.3}, petal_width {:.3}; bias {:.3}",
        result.weights[0], result.weights[1], result.bias
    );
    println!(
        "decision: setosa if {:.3} * length + {:.3} * width + {:.3} >= 0",
        result.weights[0], result.weights[1], result.bias
    );
    println!("training accuracy: {:.2}%", 100.0 * result.train_accuracy);
    println!(
        "petal [2, 0.5] -> {} ({})",
        result.prediction,
        if result.prediction == 1.0 {
            "setosa"
        } else {
            "not setosa"
        }
    );
    Ok(())
}

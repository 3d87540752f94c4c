//! Diabetes progression one year on, from ten baseline measurements (age, sex, BMI, blood
//! pressure, six blood serum values): regression with an MLP (10 -> Dense 32 relu -> Dense 16
//! relu -> Dense 1 linear), mean squared error loss, mean absolute error metric, Adam.
//!
//! A fifth of the 442 patients is held out. The features are standardized with a
//! `StandardScaler` fitted on the training rows, and so is the target (its mean is about 150
//! and its spread about 77, far from the unit scale the initial weights suit); the MAE is
//! reported back in the target's original units. It is printed next to the MAE of a mean
//! predictor, which predicts the training mean for every patient.
//!
//! Run with `cargo run --release --example diabetes [-- --epochs N] [-- --seed S]`.

use brick::prelude::*;

/// The number of training epochs `main` uses unless `--epochs` says otherwise.
pub const EPOCHS: usize = 50;

/// The seed `main` uses unless `--seed` says otherwise.
pub const SEED: u64 = 42;

/// What the held-out fifth says about the trained model.
pub struct Outcome {
    /// Training and held-out rows.
    pub train_rows: usize,
    pub test_rows: usize,
    /// Held-out mean absolute error of the model, in the target's units.
    pub mae: f64,
    /// Held-out mean absolute error of predicting the training mean for everyone.
    pub baseline_mae: f64,
    /// The training mean of the target (the baseline's prediction).
    pub train_mean: f64,
    /// `(true, predicted)` progression of every held-out patient, in the target's units.
    pub predictions: Vec<(f64, f64)>,
}

/// Splits off a fifth with `seed`, trains a model seeded with `seed` for `epochs` epochs of
/// batch 32, and evaluates it and the mean predictor on the held-out rows.
pub fn run(epochs: usize, seed: u64) -> Result<Outcome, Box<dyn std::error::Error>> {
    let data = read_csv::<f32>(brick::data_path("diabetes.csv"), "progression")?;
    let target = data.numeric_labels()?;
    let n = target.len();
    let y = Tensor::from_vec(target.iter().map(|&v| v as f32).collect(), &[n, 1])?;

    let (train, test) = train_test_split(n, 0.2, seed, None)?;
    let (x_scaler, x_train) = StandardScaler::fit_transform(&data.features.gather(0, &train))?;
    let x_test = x_scaler.transform(&data.features.gather(0, &test))?;
    // The target is standardized too (its own scaler, fitted on the training rows).
    let (y_scaler, y_train) = StandardScaler::fit_transform(&y.gather(0, &train))?;
    let y_test = y_scaler.transform(&y.gather(0, &test))?;
    let y_scale = f64::from(y_scaler.scale.to_vec()[0]);

    let mut model = Sequential::with_seed(seed);
    model.add(Dense::new(32).input_dim(10).activation("relu"))?;
    model.add(Dense::new(16).activation("relu"))?;
    model.add(Dense::new(1))?;
    model.compile(Adam::new(0.001), "mse", ["mae"])?;
    model.fit(
        &x_train,
        &y_train,
        FitOptions {
            epochs,
            batch_size: 32,
            verbose: 0,
            ..Default::default()
        },
    )?;

    // MAE is linear in the target's scale: standardized MAE times the standard deviation is
    // the MAE in the original units.
    let logs = model.evaluate(&x_test, &y_test)?;
    let mae = logs.get("mae").ok_or("evaluate gave no mae")? * y_scale;

    let train_mean = train.iter().map(|&i| target[i]).sum::<f64>() / train.len() as f64;
    let baseline_mae = test
        .iter()
        .map(|&i| (target[i] - train_mean).abs())
        .sum::<f64>()
        / test.len() as f64;

    // Predictions back in the original units.
    let predicted = y_scaler.inverse_transform(&model.predict(&x_test)?)?;
    let predictions = test
        .iter()
        .zip(predicted.to_vec())
        .map(|(&i, p)| (target[i], f64::from(p)))
        .collect();

    Ok(Outcome {
        train_rows: train.len(),
        test_rows: test.len(),
        mae,
        baseline_mae,
        train_mean,
        predictions,
    })
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(EPOCHS);
    let seed: u64 = arg("--seed")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(SEED);

    println!(
        "Diabetes: 442 patients, 10 features; 10 -> 32 relu -> 16 relu -> 1, MSE loss, Adam \
         0.001, batch 32, {epochs} epochs (seed {seed})"
    );
    let out = run(epochs, seed)?;
    println!(
        "{} training rows, {} held-out rows",
        out.train_rows, out.test_rows
    );
    println!("First held-out patients:");
    for (truth, predicted) in out.predictions.iter().take(5) {
        println!("  progression {truth:>5.0}, predicted {predicted:>6.1}");
    }
    println!("Held-out MAE: model {:.2}", out.mae);
    println!(
        "Held-out MAE: mean predictor {:.2} (always {:.1}, the training mean)",
        out.baseline_mae, out.train_mean
    );
    println!(
        "The model's error is {:.1}% below the mean predictor's",
        100.0 * (1.0 - out.mae / out.baseline_mae)
    );
    Ok(())
}

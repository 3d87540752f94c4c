//! Iris species from four flower measurements: a small MLP (4 -> Dense 16 relu -> Dense 3
//! softmax) trained with categorical cross-entropy and Adam (learning rate 0.01), 100 epochs
//! of batch 16, scored by stratified 5-fold cross-validation.
//!
//! Each fold fits its own `StandardScaler` on its training rows only and standardizes its
//! test rows with those statistics, so nothing about a test fold leaks into its training. The
//! example prints every fold's test accuracy and their mean.
//!
//! Run with `cargo run --release --example iris [-- --epochs N] [-- --seed S]`.

use brick::prelude::*;

/// The number of training epochs `main` uses unless `--epochs` says otherwise.
pub const EPOCHS: usize = 100;

/// The seed `main` uses unless `--seed` says otherwise.
pub const SEED: u64 = 42;

/// The number of cross-validation folds.
pub const FOLDS: usize = 5;

/// The outcome of one cross-validation fold.
pub struct Fold {
    /// Training and test rows.
    pub train_rows: usize,
    pub test_rows: usize,
    /// The test loss (categorical cross-entropy) and accuracy.
    pub loss: f64,
    pub accuracy: f64,
}

/// The outcome of the whole cross-validation.
pub struct CrossValidation {
    /// The class names, in label order.
    pub classes: Vec<String>,
    pub folds: Vec<Fold>,
}

impl CrossValidation {
    /// The mean test accuracy over the folds.
    pub fn mean_accuracy(&self) -> f64 {
        self.folds.iter().map(|f| f.accuracy).sum::<f64>() / self.folds.len() as f64
    }

    /// The population standard deviation of the folds' test accuracies.
    pub fn std_accuracy(&self) -> f64 {
        let mean = self.mean_accuracy();
        let var = self
            .folds
            .iter()
            .map(|f| (f.accuracy - mean).powi(2))
            .sum::<f64>()
            / self.folds.len() as f64;
        var.sqrt()
    }
}

/// Runs the stratified 5-fold cross-validation: `seed` shuffles the folds, and fold `k`'s
/// model is seeded with `seed + k` (its initial weights and batch order).
pub fn run(epochs: usize, seed: u64) -> Result<CrossValidation, Box<dyn std::error::Error>> {
    let iris = read_csv::<f32>(brick::data_path("iris.csv"), "species")?;
    let (classes, labels) = iris.class_labels();
    let y = to_categorical::<f32>(&labels, Some(classes.len()))?;

    let mut folds = Vec::with_capacity(FOLDS);
    for (k, (train, test)) in stratified_k_fold(&labels, FOLDS, seed)?
        .into_iter()
        .enumerate()
    {
        let (scaler, x_train) = StandardScaler::fit_transform(&iris.features.gather(0, &train))?;
        let x_test = scaler.transform(&iris.features.gather(0, &test))?;
        let (y_train, y_test) = (y.gather(0, &train), y.gather(0, &test));

        let mut model = Sequential::with_seed(seed.wrapping_add(k as u64));
        model.add(Dense::new(16).input_dim(4).activation("relu"))?;
        model.add(Dense::new(classes.len()).activation("softmax"))?;
        model.compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"])?;
        model.fit(
            &x_train,
            &y_train,
            FitOptions {
                epochs,
                batch_size: 16,
                verbose: 0,
                ..Default::default()
            },
        )?;

        let logs = model.evaluate_batched(&x_test, &y_test, 16)?;
        folds.push(Fold {
            train_rows: train.len(),
            test_rows: test.len(),
            loss: logs.loss(),
            accuracy: logs.get("accuracy").ok_or("evaluate gave no accuracy")?,
        });
    }
    Ok(CrossValidation { classes, folds })
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
        "Iris: 150 flowers, 4 features; 4 -> 16 relu -> 3 softmax, Adam 0.01, batch 16, \
         {epochs} epochs"
    );
    println!("Stratified {FOLDS}-fold cross-validation (seed {seed}):");
    let cv = run(epochs, seed)?;
    for (k, fold) in cv.folds.iter().enumerate() {
        println!(
            "  fold {}: {} train / {} test rows, test loss {:.4}, test accuracy {:.2}%",
            k + 1,
            fold.train_rows,
            fold.test_rows,
            fold.loss,
            100.0 * fold.accuracy
        );
    }
    println!(
        "Mean accuracy over {} folds: {:.2}% (std {:.2}%), classes: {}",
        cv.folds.len(),
        100.0 * cv.mean_accuracy(),
        100.0 * cv.std_accuracy(),
        cv.classes.join(", ")
    );
    Ok(())
}

//! Breast cancer diagnosis (malignant or benign) from 30 measurements of cell nuclei: binary
//! classification with a sigmoid output (30 -> Dense 16 relu -> Dense 1 sigmoid), binary
//! cross-entropy and Adam, tested on a stratified held-out fifth of the 569 samples.
//!
//! The `StandardScaler` is fitted on the training rows only; the held-out rows are
//! standardized with the training statistics. The example prints the held-out loss and
//! accuracy, and the confusion counts at the 0.5 threshold.
//!
//! Run with `cargo run --release --example breast_cancer [-- --epochs N] [-- --seed S]`.

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
    /// Held-out binary cross-entropy and accuracy (threshold 0.5).
    pub loss: f64,
    pub accuracy: f64,
    /// Held-out counts indexed `[true label][predicted label]` (0 malignant, 1 benign,
    /// predicted benign when the output is above 0.5).
    pub confusion: [[usize; 2]; 2],
}

/// Splits off a stratified fifth with `seed`, trains a model seeded with `seed` for `epochs`
/// epochs of batch 32, and evaluates it on the held-out rows.
pub fn run(epochs: usize, seed: u64) -> Result<Outcome, Box<dyn std::error::Error>> {
    let data = read_csv::<f32>(brick::data_path("breast_cancer.csv"), "benign")?;
    // The labels are 0 (malignant) or 1 (benign): class indices for the stratified split, and
    // a `[rows, 1]` target for the sigmoid output.
    let labels: Vec<usize> = data.numeric_labels()?.iter().map(|&v| v as usize).collect();
    let y = Tensor::from_vec(
        labels.iter().map(|&l| l as f32).collect(),
        &[labels.len(), 1],
    )?;

    let (train, test) = train_test_split(labels.len(), 0.2, seed, Some(&labels))?;
    let (scaler, x_train) = StandardScaler::fit_transform(&data.features.gather(0, &train))?;
    let x_test = scaler.transform(&data.features.gather(0, &test))?;
    let (y_train, y_test) = (y.gather(0, &train), y.gather(0, &test));

    let mut model = Sequential::with_seed(seed);
    model.add(Dense::new(16).input_dim(30).activation("relu"))?;
    model.add(Dense::new(1).activation("sigmoid"))?;
    model.compile(Adam::new(0.001), "binary_crossentropy", ["accuracy"])?;
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

    let logs = model.evaluate(&x_test, &y_test)?;
    let probabilities = model.predict(&x_test)?.to_vec();
    let mut confusion = [[0usize; 2]; 2];
    for (&row, &p) in test.iter().zip(&probabilities) {
        confusion[labels[row]][usize::from(p > 0.5)] += 1;
    }
    Ok(Outcome {
        train_rows: train.len(),
        test_rows: test.len(),
        loss: logs.loss(),
        accuracy: logs.get("accuracy").ok_or("evaluate gave no accuracy")?,
        confusion,
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
        "Breast cancer: 569 samples, 30 features; 30 -> 16 relu -> 1 sigmoid, \
         binary cross-entropy, Adam 0.001, batch 32, {epochs} epochs (seed {seed})"
    );
    let out = run(epochs, seed)?;
    println!(
        "{} training rows, {} held-out rows (stratified)",
        out.train_rows, out.test_rows
    );
    println!(
        "Held-out loss {:.4}, held-out accuracy {:.2}%",
        out.loss,
        100.0 * out.accuracy
    );
    let [[mm, mb], [bm, bb]] = out.confusion;
    println!("Held-out confusion (rows: true class, columns: predicted):");
    println!("               malignant  benign");
    println!("    malignant  {mm:>9}  {mb:>6}");
    println!("    benign     {bm:>9}  {bb:>6}");
    Ok(())
}

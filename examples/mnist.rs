//! The classic Keras MNIST tutorial network, exactly: 784 -> Dense 512 relu -> Dense 10
//! softmax, RMSprop, categorical cross-entropy, accuracy, 5 epochs of batch 128.
//!
//! By default it trains on the bundled 10,000-digit sample (first 8,000 for training, last
//! 2,000 for testing). With `--data DIR` it reads the full MNIST files from DIR
//! (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
//! `t10k-labels-idx1-ubyte[.gz]`).
//!
//! Each epoch is also evaluated on the test images (`validation_data`), and the training
//! history is saved as CSV and drawn as an SVG chart (loss and accuracy per epoch, training
//! and test) in cargo's target directory (`CARGO_TARGET_DIR` if set; or `--out DIR`): open `mnist_history.svg` in a browser.
//!
//! Run with `cargo run --release --example mnist [-- --data DIR] [-- --epochs N] [-- --out DIR]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use brick::prelude::*;

type Split = (Tensor, Vec<usize>, Tensor, Vec<usize>);

/// A file in `dir`, gzipped or not.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, String> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| format!("{}: neither {stem} nor {stem}.gz exists", dir.display()))
}

fn load(data_dir: Option<&Path>) -> Result<Split, Box<dyn std::error::Error>> {
    Ok(match data_dir {
        None => {
            let images =
                load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
            let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
            let n = labels.len();
            let split = n * 4 / 5;
            (
                images.rows(0..split),
                labels[..split].to_vec(),
                images.rows(split..n),
                labels[split..].to_vec(),
            )
        }
        Some(dir) => (
            load_mnist_images(find(dir, "train-images-idx3-ubyte")?)?,
            load_mnist_labels(find(dir, "train-labels-idx1-ubyte")?)?,
            load_mnist_images(find(dir, "t10k-images-idx3-ubyte")?)?,
            load_mnist_labels(find(dir, "t10k-labels-idx1-ubyte")?)?,
        ),
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
    let data_dir = arg("--data").map(PathBuf::from);
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(5);
    let out = arg("--out")
        .map(PathBuf::from)
        .unwrap_or_else(brick::target_dir);

    let (x_train, train_labels, x_test, test_labels) = load(data_dir.as_deref())?;
    let y_train = to_categorical::<f32>(&train_labels, Some(10))?;
    let y_test = to_categorical::<f32>(&test_labels, Some(10))?;
    println!(
        "{} training and {} test images of {} pixels",
        x_train.shape()[0],
        x_test.shape()[0],
        x_train.shape()[1]
    );

    let mut model = Sequential::with_seed(42);
    model.add(Dense::new(512).input_dim(784).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile("rmsprop", "categorical_crossentropy", ["accuracy"])?;
    print!("{}", model.summary());
    println!(
        "each epoch's val_loss and val_accuracy are on the {} test images",
        x_test.shape()[0]
    );

    let start = Instant::now();
    let history = model.fit(
        &x_train,
        &y_train,
        FitOptions {
            epochs,
            batch_size: 128,
            validation_data: Some((x_test.clone(), y_test.clone())),
            ..Default::default()
        },
    )?;
    let train_time = start.elapsed().as_secs_f64();

    let test = model.evaluate_batched(&x_test, &y_test, 128)?;
    println!(
        "test loss {:.4}, test accuracy {:.2}% (training took {train_time:.2} s)",
        test.loss(),
        100.0 * test.get("accuracy").unwrap_or(f64::NAN)
    );
    std::fs::create_dir_all(&out)?;
    history.save_csv(out.join("mnist_history.csv"))?;
    history.save_svg(out.join("mnist_history.svg"))?;
    println!(
        "history: {} (chart: {})",
        out.join("mnist_history.csv").display(),
        out.join("mnist_history.svg").display()
    );
    Ok(())
}

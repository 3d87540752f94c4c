//! # brick
//!
//! A deep-learning framework for Rust with a define-by-run autodiff tape underneath and a
//! Keras-style API on top. This crate re-exports the five crates it is made of:
//!
//! - [`tensor`]: n-dimensional arrays on ndarray, with broadcasting, matmul and reductions;
//! - [`autograd`]: the reverse-mode tape that differentiates what you compute;
//! - [`nn`]: layers, losses, initializers, metrics and the `Sequential` model;
//! - [`optim`]: optimizers with Keras's update rules;
//! - [`data`]: the CSV and IDX (MNIST) readers, splits, one-hot targets and scaling.
//!
//! ```
//! use brick::prelude::*;
//!
//! let tape = Tape::new();
//! let w = tape.param(&Tensor::from_vec(vec![2.0f32], &[1]).unwrap());
//! let x = tape.constant(&Tensor::from_vec(vec![3.0f32], &[1]).unwrap());
//! let loss = (w * x).square().sum_all(); // (w x)^2
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads[w].to_vec(), vec![36.0]); // 2 w x^2
//! ```

#![deny(missing_docs)]

pub use autograd;
pub use data;
pub use nn;
pub use optim;
pub use tensor;

/// The names most programs need, in one `use brick::prelude::*`.
pub mod prelude {
    pub use autograd::{GradOptions, Gradients, Op, Tape, Var};
    pub use data::{
        CsvData, StandardScaler, load_mnist_images, load_mnist_labels, read_csv, stratified_k_fold,
        to_categorical, train_test_split,
    };
    pub use nn::callbacks::{
        Callback, CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN,
    };
    pub use nn::losses::{
        BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
    };
    pub use nn::{
        Activation, ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
        FitOptions, Flatten, GlobalAveragePooling2D, History, Initializer, Input, Layer,
        LayerNormalization, Logs, Loss, MaxPooling2D, Metric, NO_METRICS, Reshape, Sequential,
    };
    pub use optim::schedule::{CosineDecay, ExponentialDecay, PiecewiseConstantDecay};
    pub use optim::{Adagrad, Adam, AdamW, Optimizer, RMSprop, SGD};
    pub use tensor::random::{SeedableRng, StdRng, seeded};
    pub use tensor::{Element, Tensor, TensorError};
}

/// The data files bundled with brick (`data/` at the repository root), so that examples and
/// tests run offline.
pub fn data_path(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(file)
}

/// The directory an example writes its outputs to when not told otherwise: cargo's target
/// directory (`CARGO_TARGET_DIR` when set, as cargo itself reads it; `target/` at the
/// repository root otherwise).
pub fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// The value after the flag `name` (`--epochs`) in a program's arguments `args`, parsed:
/// `None` when the flag is absent, and an error that names the flag and the value when the
/// value is missing or does not parse.
///
/// ```
/// let args: Vec<String> = ["prog", "--epochs", "3", "--rate", "fast"].map(String::from).into();
/// assert_eq!(brick::flag::<usize>(&args, "--epochs"), Ok(Some(3)));
/// assert_eq!(brick::flag::<usize>(&args, "--seed"), Ok(None));
/// let e = brick::flag::<f64>(&args, "--rate").unwrap_err();
/// assert!(e.starts_with("--rate: expected a f64, got 'fast'"), "{e}");
/// ```
///
/// # Errors
/// A flag without a value, or a value that is not a `T`.
pub fn flag<T>(args: &[String], name: &str) -> Result<Option<T>, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let kind = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("value");
    let value = args
        .get(i + 1)
        .ok_or_else(|| format!("{name}: expected a {kind} after it, got nothing"))?;
    value
        .parse()
        .map(Some)
        .map_err(|e| format!("{name}: expected a {kind}, got '{value}' ({e})"))
}

/// Runs a program's body and reports its error as a command-line tool does: one line,
/// `error: ...`, on stderr (the error's message, not its debug form) and a failing exit
/// code. The examples' `main` is `brick::run_main(run)`.
///
/// ```
/// use std::process::ExitCode;
/// let ok = brick::run_main(|| Ok::<(), String>(()));
/// assert_eq!(ok, ExitCode::SUCCESS);
/// let failed = brick::run_main(|| Err::<(), _>("label 12 is not a class in 0..10"));
/// assert_eq!(failed, ExitCode::FAILURE); // and stderr reads: error: label 12 is not ...
/// ```
pub fn run_main<E: std::fmt::Display>(
    body: impl FnOnce() -> Result<(), E>,
) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The README's code blocks, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

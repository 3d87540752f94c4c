//! # brick
//!
//! A deep-learning framework for Rust with a define-by-run autodiff tape underneath and a
//! Keras-style API on top. This crate re-exports the four crates it is made of:
//!
//! - [`tensor`]: n-dimensional arrays on ndarray, with broadcasting, matmul and reductions;
//! - [`autograd`]: the reverse-mode tape that differentiates what you compute;
//! - [`nn`]: layers, losses, initializers, metrics and the `Sequential` model;
//! - [`optim`]: optimizers with Keras's update rules.
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

pub use autograd;
pub use nn;
pub use optim;
pub use tensor;

/// The names most programs need, in one `use brick::prelude::*`.
pub mod prelude {
    pub use autograd::{GradOptions, Gradients, Op, Tape, Var};
    pub use nn::callbacks::{
        Callback, CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN,
    };
    pub use nn::data::{
        CsvData, StandardScaler, load_mnist_images, load_mnist_labels, read_csv, stratified_k_fold,
        to_categorical, train_test_split,
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

/// The README's code blocks, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

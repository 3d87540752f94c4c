//! # nn
//!
//! Keras-style building blocks on the [`autograd`] tape: layers, activations, losses,
//! initializers, metrics, data utilities and the [`Sequential`] model, with Keras's names,
//! defaults and numbers.
//!
//! ```
//! use nn::{CategoricalCrossentropy, Dense, FitOptions, Sequential};
//! use tensor::Tensor;
//!
//! // Two classes of points, one-hot: the class is whether x0 > x1.
//! let x = Tensor::new([[0.9f32, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.6]]).unwrap();
//! let y = Tensor::new([[1.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]).unwrap();
//!
//! let mut model = Sequential::with_seed(1);
//! model.add(Dense::new(8).input_dim(2).activation("relu")).unwrap();
//! model.add(Dense::new(2)).unwrap(); // logits
//! let loss = CategoricalCrossentropy::new().from_logits(true);
//! model.compile("adam", loss, ["accuracy"]).unwrap();
//! let options = FitOptions { epochs: 200, batch_size: 4, verbose: 0, ..Default::default() };
//! let history = model.fit(&x, &y, options).unwrap();
//! let losses = history.get("loss").unwrap();
//! assert!(losses[199] < losses[0]);
//! let logs = model.evaluate(&x, &y).unwrap();
//! assert_eq!(logs.get("accuracy"), Some(1.0));
//! ```
//!
//! Layers take shaped data (`Conv2D`, pooling, normalization, `Dropout`), a model saves
//! and loads as Keras-style JSON and safetensors ([`save`]), and [`callbacks`] hook into
//! training. For loops written by hand, the tape and the `optim` crate work without
//! `Sequential`: see `autograd`'s crate docs.

#![deny(missing_docs)]

mod config;
mod erased;
mod error;

pub use erased::CustomComponent;
pub use error::{Error, Result};
pub mod activations;
pub mod callbacks;
pub mod distributed;
pub mod initializers;
pub mod io;
pub mod save;
#[cfg(test)]
mod testing;

pub use activations::{Activation, IntoActivation};
pub use initializers::{Initializer, IntoInitializer};
pub mod losses;
pub use losses::{
    BinaryCrossentropy, CategoricalCrossentropy, IntoLoss, Loss, SparseCategoricalCrossentropy,
};
pub mod metrics;
pub use metrics::{IntoMetric, IntoMetrics, Metric, MetricKind};
pub mod layers;
pub use layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, Input, Layer, LayerNormalization, MaxPooling2D, Reshape,
    register_layer,
};
mod model;
pub use model::{
    DEFAULT_BATCH_SIZE, FitOptions, History, Logs, NO_METRICS, Sequential, format_metric,
};

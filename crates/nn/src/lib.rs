//! # nn
//!
//! Keras-style building blocks on the [`autograd`] tape: layers, activations, losses,
//! initializers, metrics, data utilities and the `Sequential` model.

mod config;
pub mod data;
mod error;

pub use error::{Error, Result};
pub mod activations;
pub mod callbacks;
pub mod initializers;
pub mod io;
pub mod save;
#[cfg(test)]
mod testing;

pub use activations::{Activation, IntoActivation};
pub use initializers::{Initializer, IntoInitializer};
pub mod losses;
pub use losses::{IntoLoss, Loss};
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

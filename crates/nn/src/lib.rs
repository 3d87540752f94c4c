//! # nn
//!
//! Keras-style building blocks on the [`autograd`] tape: layers, activations, losses,
//! initializers, metrics, data utilities and the `Sequential` model.

pub mod data;
mod error;

pub use error::{Error, Result};

//! # nn
//!
//! Keras-style building blocks on the [`autograd`] tape: layers, activations, losses,
//! initializers, metrics and the `Sequential` model.

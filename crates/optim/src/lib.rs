//! # optim
//!
//! Optimizers that update parameters from their gradients, with Keras 3's update rules.

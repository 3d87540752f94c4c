//! # tensor
//!
//! The n-dimensional arrays under brick: storage on [`ndarray`], NumPy broadcasting,
//! matrix products, reductions, and the numerically stable activation functions.
//!
//! ```
//! use tensor::Tensor;
//! let x = Tensor::from_vec(vec![1.0, -2.0, 3.0, -4.0], &[2, 2]).unwrap();
//! let w = Tensor::eye(2) * 2.0;
//! let y = x.matmul(&w).relu();
//! assert_eq!(y.to_vec(), vec![2.0, 0.0, 6.0, 0.0]);
//! ```
//!
//! ## Panics or `Result`
//! The rule follows ndarray and dfdx:
//! - operators (`+ - * /`, unary `-`) and the plain methods (`matmul`, `sum`, `reshape`, ...)
//!   panic on shapes that do not fit, with the same message the error would carry;
//! - every such method has a `try_` twin (`try_matmul`, `try_sum`, ...) returning
//!   [`Result<Tensor, TensorError>`](TensorError);
//! - everything that takes external data (`from_vec`, `from_shape_slice`, `one_hot`) returns a
//!   `Result` only, because bad data is an input error, not a programming error.
//!
//! Every error names the operation and what it was given, e.g.
//! `matmul: cannot multiply [128, 784] by [512, 10] (inner dimensions 784 and 512 differ)`.
//!
//! ## Element types
//! `Tensor` is `Tensor<f32>` unless you name another [`Element`]; `f64` works everywhere.

#![deny(missing_docs)]

mod element;
mod error;
pub mod memory;
mod nested;
pub mod ops;
pub mod parallel;
pub mod random;
mod shape;
pub mod simd;
mod tensor;

pub use element::{Element, cst};
pub use error::{Result, TensorError};
pub use nested::NestedData;
pub use ops::unary::{erf_scalar, gelu_scalar, sigmoid_scalar, softplus_scalar};
pub use shape::{broadcast_shapes, normalize_axis, numel};
pub use tensor::Tensor;

/// The ndarray version brick is built on, for users who convert to and from ndarray arrays.
pub use ndarray;

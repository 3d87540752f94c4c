//! # autograd
//!
//! A define-by-run, reverse-mode tape. Operations on [`Var`]s run immediately and record
//! themselves on a [`Tape`]; [`Var::backward`] applies the chain rule in one reverse sweep
//! over the records and returns the [`Gradients`] of every parameter.
//!
//! ```
//! use autograd::Tape;
//! use tensor::Tensor;
//!
//! // f(x) = sum(x^2 + 3x), so df/dx = 2x + 3.
//! let tape = Tape::<f64>::new();
//! let x = tape.param(&Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap());
//! let f = (x * x + x * 3.0).sum_all();
//! let grads = f.backward().unwrap();
//! assert_eq!(grads[x].to_vec(), vec![5.0, -1.0]);
//! ```
//!
//! - Parameters ([`Tape::param`]) get gradients; constants ([`Tape::constant`]) cost no
//!   gradient work, and neither does anything computed only from constants.
//! - Broadcasting works as in [`tensor`]; gradients are summed back to each input's shape,
//!   and a variable used several times accumulates its gradients.
//! - [`Tape::no_grad`] runs code without recording; [`Var::detach`] stops gradients.
//! - Gradients of gradients, to any order: [`Var::grad`] records its sweep on the tape
//!   (PyTorch's `create_graph`), so its gradients are variables that can enter a loss (a
//!   physics residual, a gradient penalty) and be differentiated again. [`hvp`] gives
//!   Hessian-vector products, [`jacobian`] the Jacobians of small functions,
//!   [`value_and_grad`] both at once of a function of tensors.
//! - Every op is an [`Op`]: forward and backward written together (see [`ops`]), the
//!   backward once, over [`Operand`], for both sweeps. Users add their own through
//!   [`Tape::apply`].
//!
//! Panics or `Result`: as in [`tensor`], operators and plain methods panic on shapes that
//! do not fit, and each method has a `try_` twin that returns a [`TensorError`].

#![deny(missing_docs)]

mod functional;
pub mod gradcheck;
mod op;
pub mod ops;
mod real;
mod tape;
mod var_impls;

pub use functional::{HessianAt, hvp, jacobian, value_and_grad, with_hessian};
pub use op::{InputGrads, Op, Operand};
pub use ops::dense::OutputActivation;
pub use ops::unary::{Elementwise, Unary};
pub use real::{Real, RealFn};
pub use tape::{GradOptions, Gradients, Tape, Var};
pub use tensor::{Element, Result, Tensor, TensorError};

//! Every differentiable operation the tape knows, each with its gradient in the same place.
//!
//! One file per family; in each, an op is a struct implementing [`Op`](crate::Op) (forward
//! and backward side by side) followed by the [`Var`](crate::Var) methods that apply it.
//! Adding an op is one such block plus one entry in the gradient-check suite
//! (`tests/gradcheck.rs`), whose listing test fails until the entry exists.

pub mod activation;
pub mod arith;
pub mod conv;
pub mod dense;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod unary;

use tensor::Result;

/// Unwraps an op's result for the panicking method forms, with the error's message.
#[track_caller]
pub(crate) fn unwrap_op<V>(r: Result<V>) -> V {
    r.unwrap_or_else(|e| panic!("{e}"))
}

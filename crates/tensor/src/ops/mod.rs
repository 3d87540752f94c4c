//! Every tensor operation, by family.

pub mod arith;
pub mod compare;
pub mod conv;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod unary;

//! Errors of tensor operations: each names the operation and what it was given.

use std::fmt;

/// The result type of every fallible tensor operation.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// What went wrong in a tensor operation. Every variant names the operation (`op`) and the
/// shapes or values involved, so that the message alone tells the user what to fix.
///
/// ```
/// use tensor::{Tensor, TensorError};
/// let a = Tensor::<f32>::zeros(&[128, 784]);
/// let b = Tensor::<f32>::zeros(&[512, 10]);
/// let err = a.try_matmul(&b).unwrap_err();
/// assert!(matches!(err, TensorError::MatmulMismatch { .. }));
/// assert_eq!(
///     err.to_string(),
///     "matmul: cannot multiply [128, 784] by [512, 10] (inner dimensions 784 and 512 differ)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TensorError {
    /// Two shapes that the operation needs to broadcast together do not fit.
    ShapeMismatch {
        /// The operation that refused (`"add"`).
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
    },
    /// The inner dimensions (or batch dimensions) of a matrix product differ.
    MatmulMismatch {
        /// The operation that refused (`"matmul"`).
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
    },
    /// The operation needs a tensor of another rank (number of dimensions).
    RankMismatch {
        /// The operation that refused (`"conv2d"`).
        op: &'static str,
        /// The rank it needs, in words (`"a matrix"`).
        expected: String,
        /// The shape it got.
        shape: Vec<usize>,
    },
    /// The number of elements given does not match the number the shape needs.
    ElementCount {
        /// The operation that refused (`"from_vec"`).
        op: &'static str,
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of elements the shape needs.
        expected: usize,
        /// The number of elements given.
        got: usize,
    },
    /// An axis outside `-ndim..ndim`.
    AxisOutOfRange {
        /// The operation that refused (`"sum"`).
        op: &'static str,
        /// The axis asked for.
        axis: isize,
        /// The tensor's number of dimensions.
        ndim: usize,
    },
    /// An index outside `0..len` along an axis.
    IndexOutOfRange {
        /// The operation that refused (`"gather"`).
        op: &'static str,
        /// The index asked for.
        index: usize,
        /// The length of the axis.
        len: usize,
    },
    /// Any other argument the operation cannot accept; `message` says what was expected and what came.
    InvalidArgument {
        /// The operation that refused (`"conv2d"`).
        op: &'static str,
        /// What was expected and what came.
        message: String,
    },
}

fn fmt_shape(s: &[usize]) -> String {
    format!("{s:?}")
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::ShapeMismatch { op, lhs, rhs } => write!(
                f,
                "{op}: shapes {} and {} cannot be broadcast together",
                fmt_shape(lhs),
                fmt_shape(rhs)
            ),
            TensorError::MatmulMismatch { op, lhs, rhs } => {
                let k1 = lhs.last().copied().unwrap_or(0);
                let k2 = if rhs.len() >= 2 {
                    rhs[rhs.len() - 2]
                } else {
                    0
                };
                if k1 != k2 {
                    write!(
                        f,
                        "{op}: cannot multiply {} by {} (inner dimensions {k1} and {k2} differ)",
                        fmt_shape(lhs),
                        fmt_shape(rhs)
                    )
                } else {
                    write!(
                        f,
                        "{op}: cannot multiply {} by {} (batch dimensions {} and {} differ)",
                        fmt_shape(lhs),
                        fmt_shape(rhs),
                        fmt_shape(&lhs[..lhs.len() - 2]),
                        fmt_shape(&rhs[..rhs.len() - 2])
                    )
                }
            }
            TensorError::RankMismatch {
                op,
                expected,
                shape,
            } => write!(
                f,
                "{op}: expected {expected}, got a tensor of shape {} ({}-D)",
                fmt_shape(shape),
                shape.len()
            ),
            TensorError::ElementCount {
                op,
                shape,
                expected,
                got,
            } => write!(
                f,
                "{op}: shape {} needs {expected} elements, got {got}",
                fmt_shape(shape)
            ),
            TensorError::AxisOutOfRange { op, axis, ndim } => write!(
                f,
                "{op}: axis {axis} is out of range for a {ndim}-D tensor (valid: {}..{ndim})",
                -(*ndim as isize)
            ),
            TensorError::IndexOutOfRange { op, index, len } => {
                write!(f, "{op}: index {index} is out of range for length {len}")
            }
            TensorError::InvalidArgument { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for TensorError {}

impl TensorError {
    /// The name of the operation that failed.
    pub fn op(&self) -> &'static str {
        match self {
            TensorError::ShapeMismatch { op, .. }
            | TensorError::MatmulMismatch { op, .. }
            | TensorError::RankMismatch { op, .. }
            | TensorError::ElementCount { op, .. }
            | TensorError::AxisOutOfRange { op, .. }
            | TensorError::IndexOutOfRange { op, .. }
            | TensorError::InvalidArgument { op, .. } => op,
        }
    }

    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        TensorError::InvalidArgument {
            op,
            message: message.into(),
        }
    }
}

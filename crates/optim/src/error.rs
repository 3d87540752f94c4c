//! The error type of optimizers.

use std::fmt;

/// What an optimizer could not do; the message says what was expected and what came.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OptimError {
    /// An optimizer name that is not known.
    UnknownName {
        name: String,
        valid: &'static [&'static str],
    },
    /// A hyperparameter outside its valid range.
    InvalidHyperparameter {
        optimizer: &'static str,
        name: &'static str,
        message: String,
    },
    /// Parameters and gradients that do not fit each other or the optimizer's state.
    Mismatch {
        optimizer: &'static str,
        message: String,
    },
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::UnknownName { name, valid } => {
                write!(
                    f,
                    "unknown optimizer '{name}'; valid names are: {}",
                    valid.join(", ")
                )
            }
            OptimError::InvalidHyperparameter {
                optimizer,
                name,
                message,
            } => {
                write!(f, "{optimizer}: {name} {message}")
            }
            OptimError::Mismatch { optimizer, message } => write!(f, "{optimizer}.step: {message}"),
        }
    }
}

impl std::error::Error for OptimError {}

/// Checks `lo <= value <= hi` (and finiteness) for a hyperparameter.
pub(crate) fn check_range(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
) -> Result<(), OptimError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperparameter {
            optimizer,
            name,
            message: format!("must be in [{lo}, {hi}], got {value}"),
        })
    }
}

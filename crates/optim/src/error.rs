//! The error type of optimizers.

use std::fmt;

/// What an optimizer could not do; the message says what was expected and what came.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OptimError {
    /// An optimizer name that is not known.
    UnknownName {
        /// The name given.
        name: String,
        /// The names that are known.
        valid: &'static [&'static str],
    },
    /// A hyperparameter outside its valid range.
    InvalidHyperparameter {
        /// The optimizer's name (`"adam"`).
        optimizer: &'static str,
        /// The hyperparameter's name (`"beta_1"`).
        name: &'static str,
        /// The valid range and the value given.
        message: String,
    },
    /// Parameters and gradients that do not fit each other or the optimizer's state.
    Mismatch {
        /// The optimizer's name.
        optimizer: &'static str,
        /// What was expected and what came.
        message: String,
    },
    /// A hyperparameter name the optimizer does not have (from a config file, say).
    UnknownHyperparameter {
        /// The optimizer's name.
        optimizer: &'static str,
        /// The name given.
        name: String,
        /// The hyperparameters the optimizer has.
        valid: Vec<&'static str>,
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
            OptimError::UnknownHyperparameter {
                optimizer,
                name,
                valid,
            } => write!(
                f,
                "{optimizer} has no hyperparameter '{name}'; valid names are: {}",
                valid.join(", ")
            ),
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

/// A boolean hyperparameter given as a number (configs store them as 0 or 1).
pub(crate) fn flag(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
) -> Result<bool, OptimError> {
    if value == 0.0 || value == 1.0 {
        Ok(value == 1.0)
    } else {
        Err(OptimError::InvalidHyperparameter {
            optimizer,
            name,
            message: format!("must be 0 (false) or 1 (true), got {value}"),
        })
    }
}

/// The error for a hyperparameter `name` that `optimizer` does not have.
pub(crate) fn unknown(
    optimizer: &'static str,
    name: &str,
    valid: &[(&'static str, f64)],
) -> OptimError {
    OptimError::UnknownHyperparameter {
        optimizer,
        name: name.to_string(),
        valid: valid.iter().map(|(k, _)| *k).collect(),
    }
}

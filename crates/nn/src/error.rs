//! The error type of `nn`: everything a user can get wrong from outside (data, names,
//! configuration, files) is one of these, and the message says what was expected and what came.

use std::fmt;
use std::path::PathBuf;

use optim::OptimError;
use tensor::TensorError;

/// The result type of `nn`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Every variant carries what was expected and what was found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed (shapes that do not fit, an index out of range).
    Tensor(TensorError),
    /// An optimizer could not be created or could not step.
    Optim(OptimError),
    /// A name (activation, initializer, loss, metric, optimizer) that is not known; lists
    /// the valid ones.
    UnknownName {
        /// What kind of thing was named (`"activation"`).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names that are known.
        valid: Vec<&'static str>,
    },
    /// Data or a value that does not have the shape or content that is needed.
    InvalidData {
        /// What was being checked (`"fit: x"`).
        context: String,
        /// What was expected and what came.
        message: String,
    },
    /// A configuration value out of its range (batch_size 0, a negative learning rate, ...).
    InvalidConfig {
        /// The setting (`"fit: batch_size"`).
        context: String,
        /// The valid range and the value given.
        message: String,
    },
    /// The model is used in a way its state does not allow yet (fit before compile, ...).
    NotReady {
        /// What to call first.
        message: String,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A file was read but its content is not in the expected format.
    Format {
        /// The file.
        path: PathBuf,
        /// The line (from 1), where there is one.
        line: Option<usize>,
        /// What was expected and what came.
        message: String,
    },
    /// [`TerminateOnNaN`](crate::callbacks::TerminateOnNaN) stopped training: the loss of
    /// batch `step` of epoch `epoch` (both from 0) was NaN or infinite.
    NonFiniteLoss {
        /// The epoch, from 0.
        epoch: usize,
        /// The batch within it, from 0.
        step: usize,
        /// The loss that was not finite.
        loss: f64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(e) => write!(f, "{e}"),
            Error::Optim(e) => write!(f, "{e}"),
            Error::UnknownName { kind, name, valid } => write!(
                f,
                "unknown {kind} '{name}'; valid names are: {}",
                valid.join(", ")
            ),
            Error::InvalidData { context, message } | Error::InvalidConfig { context, message } => {
                write!(f, "{context}: {message}")
            }
            Error::NotReady { message } => write!(f, "{message}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format {
                path,
                line: Some(line),
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            Error::Format {
                path,
                line: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            Error::NonFiniteLoss { epoch, step, loss } => write!(
                f,
                "TerminateOnNaN: the loss is {loss} in epoch {} at batch {} (counting from 1, as the progress bar does); training stopped",
                epoch + 1,
                step + 1
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(e) => Some(e),
            Error::Optim(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A data-loading error as `nn`'s, variant for variant (same message), so that code
/// returning [`Result`] can read its data with `?`.
impl From<data::DataError> for Error {
    fn from(e: data::DataError) -> Self {
        use data::DataError as D;
        match e {
            D::Tensor(e) => Error::Tensor(e),
            D::InvalidData { context, message } => Error::InvalidData { context, message },
            D::InvalidConfig { context, message } => Error::InvalidConfig { context, message },
            D::Io { path, source } => Error::Io { path, source },
            D::Format {
                path,
                line,
                message,
            } => Error::Format {
                path,
                line,
                message,
            },
            other => Error::InvalidData {
                context: "data".into(),
                message: other.to_string(),
            },
        }
    }
}

impl From<TensorError> for Error {
    fn from(e: TensorError) -> Self {
        Error::Tensor(e)
    }
}

impl From<OptimError> for Error {
    fn from(e: OptimError) -> Self {
        Error::Optim(e)
    }
}

impl Error {
    /// Bad data passed in by the user.
    pub fn data(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidData {
            context: context.into(),
            message: message.into(),
        }
    }

    /// A configuration value out of range.
    pub fn config(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            context: context.into(),
            message: message.into(),
        }
    }

    /// A file that could not be read or written.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A file whose content is not in the expected format.
    pub fn format(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_error_reads_with_question_mark_as_the_same_nn_error() {
        fn load() -> Result<()> {
            data::read_csv::<f32>("/nonexistent/brick.csv", "y")?;
            Ok(())
        }
        let e = load().unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with("/nonexistent/brick.csv: "), "{e}");
        let bad = data::to_categorical::<f32>(&[3], Some(2)).unwrap_err();
        let message = bad.to_string();
        let e = Error::from(bad);
        assert!(matches!(e, Error::InvalidData { .. }), "{e:?}");
        assert_eq!(e.to_string(), message);
    }
}

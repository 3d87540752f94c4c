//! The error type of `data`: every problem with a file or an argument, saying what was
//! expected and what came, with the file and line where there is one.

use std::fmt;
use std::path::PathBuf;

use tensor::TensorError;

/// The result type of `data`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// What went wrong reading or preparing data.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// A tensor could not be made from what was read.
    Tensor(TensorError),
    /// Data or a value that does not have the shape or content that is needed.
    InvalidData {
        /// What was being read or checked (`"to_categorical"`).
        context: String,
        /// What was expected and what came.
        message: String,
    },
    /// An argument out of its range (a test fraction above 1, 0 folds, ...).
    InvalidConfig {
        /// The function and argument (`"train_test_split: test_size"`).
        context: String,
        /// The valid range and the value given.
        message: String,
    },
    /// Reading a file failed.
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
        /// The line (from 1) where there is one.
        line: Option<usize>,
        /// What was expected and what came.
        message: String,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Tensor(e) => write!(f, "{e}"),
            DataError::InvalidData { context, message }
            | DataError::InvalidConfig { context, message } => write!(f, "{context}: {message}"),
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Format {
                path,
                line: Some(line),
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            DataError::Format {
                path,
                line: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::Tensor(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TensorError> for DataError {
    fn from(e: TensorError) -> Self {
        DataError::Tensor(e)
    }
}

impl DataError {
    /// Bad data passed in.
    pub fn data(context: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::InvalidData {
            context: context.into(),
            message: message.into(),
        }
    }

    /// An argument out of range.
    pub fn config(context: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::InvalidConfig {
            context: context.into(),
            message: message.into(),
        }
    }

    /// A file that could not be read.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
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
        DataError::Format {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

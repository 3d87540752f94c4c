//! # data
//!
//! brick's data utilities, apart from its layers: loading the bundled data sets (and files of the same formats), splitting
//! them into training and test rows, one-hot targets, and feature standardization.
//!
//! - [`read_csv`] / [`parse_csv`]: a numeric CSV table with one label column, as
//!   [`CsvData`] (features tensor plus raw labels, turned into class indices by
//!   [`CsvData::class_labels`] or numbers by [`CsvData::numeric_labels`]);
//! - [`read_idx`] / [`parse_idx`], [`load_mnist_images`], [`load_mnist_labels`]: the IDX
//!   format of MNIST, gzip-compressed or not;
//! - [`train_test_split`] (optionally stratified) and [`stratified_k_fold`]: seeded, sorted
//!   row-index lists to [`gather`](tensor::Tensor::gather) with;
//! - [`to_categorical`]: one-hot rows from class indices;
//! - [`StandardScaler`]: z-scores fitted on the training rows.
//!
//! Nothing here panics on bad input: every problem with a file or an argument is an
//! [`DataError`] saying what was expected and what came, with the file and line
//! where there is one.
//!
//! ```
//! use data::{StandardScaler, read_csv, stratified_k_fold, to_categorical, train_test_split};
//!
//! let iris = read_csv::<f32>(
//!     concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv"),
//!     "species",
//! )
//! .unwrap();
//! let (classes, y) = iris.class_labels();
//! let (train, test) = train_test_split(y.len(), 0.2, 0, Some(&y)).unwrap();
//! let (scaler, x_train) = StandardScaler::fit_transform(&iris.features.gather(0, &train)).unwrap();
//! let x_test = scaler.transform(&iris.features.gather(0, &test)).unwrap();
//! let train_labels: Vec<usize> = train.iter().map(|&i| y[i]).collect();
//! let y_train = to_categorical::<f32>(&train_labels, Some(classes.len())).unwrap();
//! assert_eq!(x_train.shape(), &[120, 4]);
//! assert_eq!(x_test.shape(), &[30, 4]);
//! assert_eq!(y_train.shape(), &[120, 3]);
//!
//! // Five folds for cross-validation, each with 10 rows of every species in its test part.
//! let folds = stratified_k_fold(&y, 5, 0).unwrap();
//! assert!(folds.iter().all(|(_, test)| test.len() == 30));
//! ```

#![deny(missing_docs)]

mod csv;
mod error;
mod idx;
mod scale;
mod split;

pub use csv::{CsvData, parse_csv, read_csv};
pub use error::{DataError, Result};
pub use idx::{
    Idx, MAX_IDX_BYTES, decode_idx, load_mnist_images, load_mnist_labels, parse_idx, read_idx,
};
pub use scale::StandardScaler;
pub use split::{stratified_k_fold, to_categorical, train_test_split};

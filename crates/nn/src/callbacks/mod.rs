//! Callbacks: code that [`fit`](crate::Sequential::fit) runs at the start and end of training,
//! of each epoch and of each batch, as Keras's callbacks do. Pass them in
//! [`FitOptions::callbacks`](crate::FitOptions::callbacks); write your own by implementing
//! [`Callback`].
//!
//! ```
//! use nn::callbacks::{EarlyStopping, TerminateOnNaN};
//! use nn::{Dense, FitOptions, Sequential};
//! use tensor::Tensor;
//!
//! let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], &[6, 1]).unwrap();
//! let y = x.map(|v| 2.0 * v + 1.0);
//! let mut model = Sequential::with_seed(0);
//! model.add(Dense::new(1).input_dim(1)).unwrap();
//! model.compile("sgd", "mse", []).unwrap();
//! let history = model
//!     .fit(&x, &y, FitOptions {
//!         epochs: 500,
//!         verbose: 0,
//!         callbacks: vec![
//!             Box::new(EarlyStopping::new("loss").min_delta(1e-4).patience(3)),
//!             Box::new(TerminateOnNaN),
//!         ],
//!         ..Default::default()
//!     })
//!     .unwrap();
//! assert!(history.epochs().len() < 500); // stopped once the loss stopped falling
//! ```

mod checkpoint;
mod csv_logger;
mod early_stopping;
mod lr_scheduler;
mod monitor;
mod terminate_on_nan;
#[cfg(test)]
mod tests;

pub use crate::model::{CONTINUE, Callback, Flow, STOP};
pub use checkpoint::ModelCheckpoint;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use lr_scheduler::LearningRateScheduler;
pub use monitor::Mode;
pub use terminate_on_nan::TerminateOnNaN;

//! `TerminateOnNaN`: stops `fit` with an error at the first non-finite loss.

use tensor::Element;

use crate::error::{Error, Result};
use crate::model::{CONTINUE, Callback, Flow, Sequential};

/// Stops training with an error as soon as a batch's loss is NaN or infinite, naming the
/// epoch and the batch (Keras's `TerminateOnNaN`). Without it, `fit` carries on and the
/// history shows the NaN.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNaN;

impl<T: Element> Callback<T> for TerminateOnNaN {
    fn name(&self) -> &str {
        "TerminateOnNaN"
    }
    fn on_batch_end(
        &mut self,
        epoch: usize,
        step: usize,
        loss: f64,
        _model: &mut Sequential<T>,
    ) -> Result<Flow> {
        if loss.is_finite() {
            Ok(CONTINUE)
        } else {
            Err(Error::NonFiniteLoss { epoch, step, loss })
        }
    }
}

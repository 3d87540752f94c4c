//! The [`Callback`] trait, beside the training loop that calls it: what `fit` runs at the
//! start and end of training, of each epoch and of each batch. The callbacks brick brings
//! are in [`crate::callbacks`].

use std::ops::ControlFlow;

use tensor::Element;

use crate::error::Result;
use crate::model::{History, Logs, Sequential};

/// Whether training goes on after a callback ran (Keras's `model.stop_training = True` is
/// `Stop`).
pub type Flow = ControlFlow<()>;

/// Go on training.
pub const CONTINUE: Flow = ControlFlow::Continue(());
/// Stop training (after the current batch, or at the end of the current epoch).
pub const STOP: Flow = ControlFlow::Break(());

/// Code run by [`fit`](crate::Sequential::fit) around training. Every method has a default
/// that does nothing; epochs and steps are counted from 0.
///
/// ```
/// use nn::callbacks::{Callback, Flow, CONTINUE};
/// use nn::{Logs, Sequential};
///
/// /// Records each epoch's loss.
/// struct LossLog(Vec<f64>);
///
/// impl Callback<f32> for LossLog {
///     fn name(&self) -> &str {
///         "LossLog"
///     }
///     fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, _model: &mut Sequential<f32>) -> nn::Result<Flow> {
///         self.0.push(logs.loss());
///         Ok(CONTINUE)
///     }
/// }
/// ```
pub trait Callback<T: Element = f32>: Send {
    /// A short name for messages (`"EarlyStopping"`).
    fn name(&self) -> &str;

    /// Whether, when training is distributed, only rank 0 runs it: true for callbacks that
    /// write files or print (checkpoints, CSV logs); false (the default) for those that
    /// decide (early stopping, schedules), which every rank runs on the same global
    /// figures, so that all decide alike.
    fn chief_only(&self) -> bool {
        false
    }

    /// Before the first epoch.
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        Ok(())
    }

    /// Before epoch `epoch`'s first batch.
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Sequential<T>) -> Result<()> {
        Ok(())
    }

    /// After batch `step` of epoch `epoch`, whose loss (before the update) was `loss`.
    /// Runs at every step, so keep it cheap.
    fn on_batch_end(
        &mut self,
        _epoch: usize,
        _step: usize,
        _loss: f64,
        _model: &mut Sequential<T>,
    ) -> Result<Flow> {
        Ok(CONTINUE)
    }

    /// After epoch `epoch`, with its logs (loss, metrics, `val_` entries); a callback may add
    /// entries, which later callbacks, the progress bar and the history see.
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        _model: &mut Sequential<T>,
    ) -> Result<Flow> {
        Ok(CONTINUE)
    }

    /// After the last epoch (also when a callback stopped training early).
    fn on_train_end(&mut self, _model: &mut Sequential<T>, _history: &History) -> Result<()> {
        Ok(())
    }
}

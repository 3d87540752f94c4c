//! `LearningRateScheduler`: sets the optimizer's learning rate at the start of each epoch.

use tensor::Element;

use crate::error::{Error, Result};
use crate::model::{CONTINUE, Callback, Flow, Logs, Sequential};

/// Sets the learning rate at the start of each epoch from `schedule(epoch, current_rate)`,
/// as Keras's `LearningRateScheduler`, and records it as `learning_rate` in the epoch's logs.
/// The optimizer must have a constant learning rate (not a schedule of its own).
pub struct LearningRateScheduler {
    schedule: Box<dyn Fn(usize, f64) -> f64 + Send>,
}

impl LearningRateScheduler {
    /// Uses `schedule(epoch, current_rate) -> new_rate`.
    ///
    /// ```
    /// // Halve the rate every 10 epochs.
    /// let s = nn::callbacks::LearningRateScheduler::new(|epoch, lr| if epoch > 0 && epoch % 10 == 0 { lr / 2.0 } else { lr });
    /// ```
    pub fn new(schedule: impl Fn(usize, f64) -> f64 + Send + 'static) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearningRateScheduler")
    }
}

impl<T: Element> Callback<T> for LearningRateScheduler {
    fn name(&self) -> &str {
        "LearningRateScheduler"
    }
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential<T>) -> Result<()> {
        let opt = model.optimizer_mut().ok_or_else(|| Error::NotReady {
            message: "LearningRateScheduler: the model is not compiled".into(),
        })?;
        let rate = (self.schedule)(epoch, opt.learning_rate());
        opt.set_learning_rate(rate)
            .map_err(|e| Error::config("LearningRateScheduler", e.to_string()))?;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &mut Logs,
        model: &mut Sequential<T>,
    ) -> Result<Flow> {
        if let Some(opt) = model.optimizer() {
            logs.insert("learning_rate", opt.learning_rate());
        }
        Ok(CONTINUE)
    }
}

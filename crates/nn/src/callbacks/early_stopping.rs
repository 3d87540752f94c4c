//! `EarlyStopping`: stops training when a monitored quantity stops improving.

use tensor::Element;

use crate::callbacks::monitor::{Mode, improves, monitored, resolve};
use crate::error::Result;
use crate::model::{CONTINUE, Callback, Flow, History, Logs, STOP, Sequential};

/// Stops training when a monitored quantity has stopped improving, as Keras's
/// `EarlyStopping` does (defaults: monitor `val_loss`, `min_delta` 0, `patience` 0).
#[derive(Clone, Debug)]
pub struct EarlyStopping<T: Element = f32> {
    monitor: String,
    min_delta: f64,
    patience: usize,
    mode: Mode,
    restore_best_weights: bool,
    baseline: Option<f64>,
    start_from_epoch: usize,
    wait: usize,
    /// The best value so far (`None` before the first watched epoch).
    best: Option<f64>,
    best_weights: Option<Vec<tensor::Tensor<T>>>,
    best_epoch: Option<usize>,
    stopped_epoch: Option<usize>,
}

impl<T: Element> EarlyStopping<T> {
    /// Watches `monitor` (`"val_loss"`, `"loss"`, `"val_accuracy"`, ...).
    pub fn new(monitor: impl Into<String>) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            restore_best_weights: false,
            baseline: None,
            start_from_epoch: 0,
            wait: 0,
            best: None,
            best_weights: None,
            best_epoch: None,
            stopped_epoch: None,
        }
    }

    /// Changes smaller than this (in absolute value) do not count as improvements.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// Epochs without improvement after which training stops.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether larger or smaller is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// On stopping, put back the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Keep counting patience until the quantity beats this value.
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Epochs to train before watching (a warm-up).
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// The epoch at which it stopped training, if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    /// The epoch with the best value so far.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
}

impl<T: Element> Callback<T> for EarlyStopping<T> {
    fn name(&self) -> &str {
        "EarlyStopping"
    }
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        // Instances can be reused across fits, as in Keras.
        self.wait = 0;
        self.best = None;
        self.best_weights = None;
        self.best_epoch = None;
        self.stopped_epoch = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut Sequential<T>,
    ) -> Result<Flow> {
        let current = monitored("EarlyStopping", &self.monitor, logs)?;
        let mode = resolve("EarlyStopping", self.mode, &self.monitor, model)?;
        if epoch < self.start_from_epoch {
            return Ok(CONTINUE);
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights());
            self.best_epoch = Some(epoch);
        }
        // As Keras: counted before the comparison, reset on an improvement that also beats
        // the baseline, never stopping at epoch 0.
        self.wait += 1;
        if self
            .best
            .is_none_or(|best| improves(mode, current, best, self.min_delta))
        {
            self.best = Some(current);
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
            if self
                .baseline
                .is_none_or(|b| improves(mode, current, b, self.min_delta))
            {
                self.wait = 0;
            }
            return Ok(CONTINUE);
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return Ok(STOP);
        }
        Ok(CONTINUE)
    }
    /// With `restore_best_weights`, the best epoch's weights come back at the end of
    /// training, whether or not it stopped early (as in Keras 3).
    fn on_train_end(&mut self, model: &mut Sequential<T>, _history: &History) -> Result<()> {
        if let (true, Some(best)) = (self.restore_best_weights, &self.best_weights) {
            model.set_weights(best)?;
        }
        Ok(())
    }
}

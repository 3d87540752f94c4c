//! What `EarlyStopping` and `ModelCheckpoint(save_best_only)` share: the quantity they
//! watch, and which direction is better.

use tensor::Element;

use crate::error::{Error, Result};
use crate::model::{Logs, Sequential};

/// Whether larger or smaller values of a monitored quantity are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As Keras decides: the loss is minimized; a metric in the direction of its kind
    /// (accuracies up, mean squared and absolute errors down); any other key is an error
    /// asking for `Min` or `Max`.
    Auto,
    /// Smaller is better (a loss, an error).
    Min,
    /// Larger is better (an accuracy).
    Max,
}

/// `Min` or `Max` for `monitor` on this model, resolving `Auto` as Keras does.
pub(super) fn resolve<T: Element>(
    callback: &str,
    mode: Mode,
    monitor: &str,
    model: &Sequential<T>,
) -> Result<Mode> {
    if mode != Mode::Auto {
        return Ok(mode);
    }
    let name = monitor.strip_prefix("val_").unwrap_or(monitor);
    if name == "loss" {
        return Ok(Mode::Min);
    }
    use crate::metrics::MetricKind as K;
    match model
        .metrics()
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.kind.clone())
    {
        Some(K::MeanSquaredError | K::MeanAbsoluteError) => Ok(Mode::Min),
        Some(_) => Ok(Mode::Max),
        None => Err(Error::config(
            callback,
            format!(
                "cannot tell whether '{monitor}' should go up or down (it is neither the loss nor a compiled metric); give .mode(Mode::Min) or .mode(Mode::Max)"
            ),
        )),
    }
}

/// Whether `current` improves on `best` by more than `min_delta`.
pub(super) fn improves(mode: Mode, current: f64, best: f64, min_delta: f64) -> bool {
    match mode {
        Mode::Max => current > best + min_delta,
        _ => current < best - min_delta,
    }
}

/// The value of `monitor` in `logs`, or an error that lists what the logs hold.
pub(super) fn monitored(callback: &str, monitor: &str, logs: &Logs) -> Result<f64> {
    logs.get(monitor).ok_or_else(|| {
        let keys: Vec<&str> = logs.sorted().into_iter().map(|(k, _)| k).collect();
        Error::config(
            callback,
            format!(
                "monitor '{monitor}' is not among the epoch's logs ({}); `val_` entries need validation data",
                keys.join(", ")
            ),
        )
    })
}

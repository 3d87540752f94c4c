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

use std::ops::ControlFlow;
use std::path::PathBuf;

use tensor::Element;

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::model::logs::{csv_field, csv_number};
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

/// Whether larger or smaller values of a monitored quantity are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As Keras decides: the loss is minimized; a metric in the direction of its kind
    /// (accuracies up, mean squared and absolute errors down); any other key is an error
    /// asking for `Min` or `Max`.
    Auto,
    Min,
    Max,
}

/// `Min` or `Max` for `monitor` on this model, resolving `Auto` as Keras does.
fn resolve<T: Element>(
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
fn improves(mode: Mode, current: f64, best: f64, min_delta: f64) -> bool {
    match mode {
        Mode::Max => current > best + min_delta,
        _ => current < best - min_delta,
    }
}

/// The value of `monitor` in `logs`, or an error that lists what the logs hold.
fn monitored(callback: &str, monitor: &str, logs: &Logs) -> Result<f64> {
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

/// Saves the model (or its weights) during training, as Keras's `ModelCheckpoint`: after every
/// epoch, or only when a monitored quantity improved. Every save is atomic, so a crash
/// leaves the previous checkpoint whole.
///
/// The path may hold `{epoch}` (numbered from 1, as Keras's; `{epoch:03}` pads with zeros)
/// and log keys (`{val_loss}`, `{val_loss:.4}` for 4 decimals).
///
/// A full checkpoint (the default) holds the weights, the optimizer's state and the epochs
/// completed: [`Sequential::load`] it and fit with `initial_epoch:
/// model.completed_epochs()` to resume exactly where it was.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: String,
    mode: Mode,
    save_best_only: bool,
    save_weights_only: bool,
    pieces: Vec<Piece>,
    best: Option<f64>,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves the whole model to `filepath` after every epoch.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            mode: Mode::Auto,
            save_best_only: false,
            save_weights_only: false,
            pieces: Vec::new(),
            best: None,
            saved: Vec::new(),
        }
    }

    /// The quantity that `save_best_only` compares (default `val_loss`).
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self
    }

    /// Whether larger or smaller is better for `monitor`.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Save only when `monitor` is the best so far.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }

    /// Save only the weights (`save_weights`), not the optimizer state and config.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }

    /// The files written so far, in order.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }
}

/// One piece of a checkpoint path template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    /// `{epoch}` or `{epoch:03}`: the 1-based epoch, zero-padded to `width`.
    Epoch {
        width: usize,
    },
    /// `{key}` or `{key:.4}`: a log value, with `digits` decimals if given.
    Key {
        key: String,
        digits: Option<usize>,
    },
}

/// Splits a path template into text and placeholders, or explains what is wrong with it.
fn parse_template(template: &str) -> Result<Vec<Piece>> {
    let bad = |what: String| {
        Error::config(
            "ModelCheckpoint",
            format!(
                "filepath '{template}': {what}; use {{epoch}}, {{epoch:03}}, {{key}} or {{key:.4}}"
            ),
        )
    };
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| bad("a '{' is not closed".into()))?;
        let field = &rest[open + 1..close];
        let (key, spec) = field.split_once(':').unwrap_or((field, ""));
        if key.is_empty() {
            return Err(bad(format!("'{{{field}}}' names nothing")));
        }
        let number = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("'{{{field}}}' has an unknown format")))
        };
        pieces.push(if key == "epoch" {
            Piece::Epoch {
                width: if spec.is_empty() {
                    0
                } else {
                    number(spec.trim_end_matches('d'))?
                },
            }
        } else {
            Piece::Key {
                key: key.to_string(),
                digits: match spec {
                    "" => None,
                    s => Some(number(
                        s.strip_prefix('.').unwrap_or("x").trim_end_matches('f'),
                    )?),
                },
            }
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// The path for `epoch` with these logs.
fn fill(pieces: &[Piece], epoch: usize, logs: &Logs) -> Result<String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Epoch { width } => out.push_str(&format!("{:0width$}", epoch + 1)),
            Piece::Key { key, digits } => {
                let value = monitored("ModelCheckpoint", key, logs)?;
                match digits {
                    Some(d) => out.push_str(&format!("{value:.d$}")),
                    None => out.push_str(&value.to_string()),
                }
            }
        }
    }
    Ok(out)
}

impl<T: Element> Callback<T> for ModelCheckpoint {
    fn name(&self) -> &str {
        "ModelCheckpoint"
    }
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        // A bad template is an error before the first epoch's work, not after it.
        self.pieces = parse_template(&self.filepath)?;
        self.best = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut Sequential<T>,
    ) -> Result<Flow> {
        if self.save_best_only {
            let current = monitored("ModelCheckpoint", &self.monitor, logs)?;
            let mode = resolve("ModelCheckpoint", self.mode, &self.monitor, model)?;
            if self
                .best
                .is_some_and(|best| !improves(mode, current, best, 0.0))
            {
                return Ok(CONTINUE);
            }
            self.best = Some(current);
        }
        let path = PathBuf::from(fill(&self.pieces, epoch, logs)?);
        if self.save_weights_only {
            model.save_weights(&path)?;
        } else {
            model.save(&path)?;
        }
        self.saved.push(path);
        Ok(CONTINUE)
    }
}

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

/// Writes each epoch's logs as a row of a CSV file (`epoch,` then the keys in alphabetical
/// order, as Keras's `CSVLogger`). The whole file is rewritten atomically every epoch, so a
/// crash never leaves half a row; with `append`, rows already in the file are kept.
#[derive(Clone, Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    keys: Vec<String>,
    text: String,
}

impl CsvLogger {
    /// Logs to `path` (replacing the file at the start of training).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            separator: ',',
            append: false,
            keys: Vec::new(),
            text: String::new(),
        }
    }

    /// The column separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Keep the file's rows and add to them (for a resumed run).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }
}

impl<T: Element> Callback<T> for CsvLogger {
    fn name(&self) -> &str {
        "CSVLogger"
    }
    fn on_train_begin(&mut self, _model: &mut Sequential<T>) -> Result<()> {
        self.keys.clear();
        self.text.clear();
        if self.append && self.path.exists() {
            self.text = std::fs::read_to_string(&self.path).map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?;
            if let Some(header) = self.text.lines().next() {
                self.keys = header
                    .split(self.separator)
                    .skip(1)
                    .map(str::to_string)
                    .collect();
            }
        }
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _model: &mut Sequential<T>,
    ) -> Result<Flow> {
        let sep = self.separator.to_string();
        if self.keys.is_empty() {
            self.keys = logs.sorted().iter().map(|(k, _)| k.to_string()).collect();
            let header: Vec<String> = self.keys.iter().map(|k| csv_field(k)).collect();
            self.text = format!("epoch{sep}{}\n", header.join(&sep));
        }
        // As History::to_csv writes values: in full, NaN as `nan` (what pandas reads).
        let cells: Vec<String> = self
            .keys
            .iter()
            .map(|k| logs.get(k).map_or_else(String::new, csv_number))
            .collect();
        self.text
            .push_str(&format!("{epoch}{sep}{}\n", cells.join(&sep)));
        write_atomic(&self.path, self.text.as_bytes())?;
        Ok(CONTINUE)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{scratch, xor};
    use crate::{Dense, FitOptions};
    use tensor::Tensor;

    fn model() -> Sequential {
        let mut m = Sequential::with_seed(4);
        m.add(Dense::new(3).input_dim(2).activation("tanh"))
            .unwrap();
        m.add(Dense::new(1).activation("sigmoid")).unwrap();
        m.compile("sgd", "binary_crossentropy", ["accuracy"])
            .unwrap();
        m
    }

    fn logs(pairs: &[(&str, f64)]) -> Logs {
        let mut l = Logs::default();
        for (k, v) in pairs {
            l.insert(*k, *v);
        }
        l
    }

    /// Feeds `values` of `monitor` epoch by epoch; returns the epoch it stopped at. Before
    /// each epoch the model's weights are set to that epoch's number, to see which come back.
    fn run(mut es: EarlyStopping, monitor: &str, values: &[f64]) -> (Option<usize>, Sequential) {
        let mut m = model();
        es.on_train_begin(&mut m).unwrap();
        for (epoch, &v) in values.iter().enumerate() {
            let w: Vec<Tensor> = m
                .get_weights()
                .iter()
                .map(|t| t.map(|_| epoch as f32))
                .collect();
            m.set_weights(&w).unwrap();
            if es
                .on_epoch_end(epoch, &mut logs(&[(monitor, v)]), &mut m)
                .unwrap()
                .is_break()
            {
                es.on_train_end(&mut m, &History::default()).unwrap();
                return (Some(epoch), m);
            }
        }
        es.on_train_end(&mut m, &History::default()).unwrap();
        (None, m)
    }

    #[test]
    fn early_stopping_follows_keras() {
        // Patience 2: improvements at epochs 0 and 1, then three worse ones; stops at 3.
        let es = EarlyStopping::new("val_loss")
            .patience(2)
            .restore_best_weights(true);
        let (stopped, m) = run(es, "val_loss", &[1.0, 0.9, 0.95, 0.96, 0.97]);
        assert_eq!(stopped, Some(3));
        // Restored: the weights of epoch 1, the best.
        assert!(
            m.get_weights()
                .iter()
                .all(|t| t.to_vec().iter().all(|&v| v == 1.0))
        );
        // Patience 0 stops at the first epoch without improvement (never at epoch 0).
        assert_eq!(
            run(EarlyStopping::new("loss"), "loss", &[1.0, 1.1]).0,
            Some(1)
        );
        // min_delta: a smaller gain is not an improvement.
        let es = EarlyStopping::new("loss").min_delta(1e-3).patience(1);
        assert_eq!(run(es, "loss", &[1.0, 0.9995, 0.9991]).0, Some(1));
        // Accuracy-like keys are maximized.
        let es = EarlyStopping::new("val_accuracy").patience(1);
        assert_eq!(
            run(es, "val_accuracy", &[0.5, 0.6, 0.7, 0.65, 0.9]).0,
            Some(3)
        );
        // A baseline keeps patience counting through improvements until it is beaten: the
        // same values stop one epoch earlier with it.
        let values = [0.9, 0.8, 0.85, 0.86, 0.87];
        assert_eq!(
            run(EarlyStopping::new("loss").patience(2), "loss", &values).0,
            Some(3)
        );
        let es = EarlyStopping::new("loss").patience(2).baseline(0.5);
        assert_eq!(run(es, "loss", &values).0, Some(2));
        // Restored at the end of training even without stopping early.
        let es = EarlyStopping::new("loss")
            .patience(9)
            .restore_best_weights(true);
        let (stopped, m) = run(es, "loss", &[0.5, 0.4, 0.6]);
        assert_eq!(stopped, None);
        assert!(
            m.get_weights()
                .iter()
                .all(|t| t.to_vec().iter().all(|&v| v == 1.0))
        );
        // A key that is neither the loss nor a metric needs a mode.
        let mut m = model();
        let mut es = EarlyStopping::new("learning_rate");
        es.on_train_begin(&mut m).unwrap();
        let e = es
            .on_epoch_end(0, &mut logs(&[("learning_rate", 0.1)]), &mut m)
            .unwrap_err();
        assert!(e.to_string().contains("Mode::Min"), "{e}");
        let mut es = EarlyStopping::new("learning_rate").mode(Mode::Max);
        es.on_train_begin(&mut m).unwrap();
        assert!(
            es.on_epoch_end(0, &mut logs(&[("learning_rate", 0.1)]), &mut m)
                .is_ok()
        );
        // Without restore, the last weights stay.
        let (_, m) = run(EarlyStopping::new("loss"), "loss", &[1.0, 2.0]);
        assert!(
            m.get_weights()
                .iter()
                .all(|t| t.to_vec().iter().all(|&v| v == 1.0))
        );
    }

    #[test]
    fn a_monitor_missing_from_the_logs_is_an_error_naming_what_is_there() {
        let (x, y) = xor();
        let mut m = model();
        let e = m
            .fit(
                &x,
                &y,
                FitOptions {
                    epochs: 2,
                    verbose: 0,
                    callbacks: vec![Box::new(EarlyStopping::new("val_loss"))],
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("monitor 'val_loss'") && e.contains("accuracy, loss"),
            "{e}"
        );
    }

    #[test]
    fn checkpoint_paths_fill_epochs_and_log_values() {
        let l = logs(&[("val_loss", 0.123456), ("loss", 2.0)]);
        let pieces = parse_template("ckpt-{epoch:03}-{val_loss:.2}-{loss}.safetensors").unwrap();
        assert_eq!(fill(&pieces, 4, &l).unwrap(), "ckpt-005-0.12-2.safetensors");
        assert_eq!(
            fill(&parse_template("e{epoch}").unwrap(), 9, &l).unwrap(),
            "e10"
        );
        for bad in ["ckpt-{epoch", "ckpt-{}", "ckpt-{epoch:x}", "ckpt-{loss:4}"] {
            let e = parse_template(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("{epoch:03}"), "{e}");
        }
        let e = fill(&parse_template("{val_acc}").unwrap(), 0, &l)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'val_acc'") && e.contains("loss, val_loss"),
            "{e}"
        );
    }

    #[test]
    fn checkpoints_every_epoch_or_only_the_best() {
        let dir = scratch("checkpoint");
        let mut m = model();
        let template = dir.join("m-{epoch}.safetensors").display().to_string();
        let mut every = ModelCheckpoint::new(template.clone());
        let mut best = ModelCheckpoint::new(dir.join("best.safetensors").display().to_string())
            .save_best_only(true)
            .save_weights_only(true);
        Callback::<f32>::on_train_begin(&mut every, &mut m).unwrap();
        Callback::<f32>::on_train_begin(&mut best, &mut m).unwrap();
        let mut best_saves = 0;
        for (epoch, v) in [0.9, 0.8, 0.85, 0.7].into_iter().enumerate() {
            let _ = every
                .on_epoch_end(epoch, &mut logs(&[("val_loss", v)]), &mut m)
                .unwrap();
            let before = best.saved().len();
            let _ = best
                .on_epoch_end(epoch, &mut logs(&[("val_loss", v)]), &mut m)
                .unwrap();
            best_saves += best.saved().len() - before;
        }
        assert_eq!(every.saved().len(), 4);
        assert!(dir.join("m-4.safetensors").exists());
        assert_eq!(best_saves, 3); // not after 0.85
        let loaded = Sequential::<f32>::load(dir.join("m-2.safetensors")).unwrap();
        assert_eq!(loaded.get_weights(), m.get_weights());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn terminate_on_nan_stops_with_an_error_naming_epoch_and_batch() {
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4, 1]).unwrap();
        let y = Tensor::from_vec(vec![1e30f32, -1e30, 1e30, -1e30], &[4, 1]).unwrap();
        let fresh = || {
            let mut m = Sequential::with_seed(0);
            m.add(Dense::new(1).input_dim(1)).unwrap();
            m.compile(optim::SGD::new(1e10), "mse", []).unwrap();
            m
        };
        let options = |callbacks: Vec<Box<dyn Callback>>| FitOptions {
            epochs: 3,
            batch_size: 2,
            shuffle: false,
            verbose: 0,
            callbacks,
            ..Default::default()
        };
        // Without the callback, the history shows the non-finite loss.
        let h = fresh().fit(&x, &y, options(vec![])).unwrap();
        assert!(h.loss().iter().any(|l| !l.is_finite()), "{:?}", h.loss());
        let e = fresh()
            .fit(&x, &y, options(vec![Box::new(TerminateOnNaN)]))
            .unwrap_err();
        let Error::NonFiniteLoss { epoch, step, .. } = e else {
            panic!("{e}")
        };
        let message = e.to_string();
        assert!(
            message.contains(&format!("epoch {} at batch {}", epoch + 1, step + 1)),
            "{message}"
        );
    }

    #[test]
    fn csv_logger_writes_keras_rows_and_appends() {
        let dir = scratch("csv");
        let path = dir.join("log.csv");
        let (x, y) = xor();
        let mut m = model();
        let fit = |m: &mut Sequential, epochs: usize, initial: usize, logger: CsvLogger| {
            m.fit(
                &x,
                &y,
                FitOptions {
                    epochs,
                    initial_epoch: initial,
                    verbose: 0,
                    validation_data: Some((x.clone(), y.clone())),
                    callbacks: vec![Box::new(logger)],
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let h = fit(&mut m, 2, 0, CsvLogger::new(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "epoch,accuracy,loss,val_accuracy,val_loss");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].split(',').nth(2).unwrap(), h.loss()[1].to_string());
        fit(&mut m, 3, 2, CsvLogger::new(&path).append(true));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(3).unwrap().starts_with("2,"));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn learning_rate_scheduler_sets_and_records_the_rate() {
        let (x, y) = xor();
        let mut m = model();
        let h = m
            .fit(
                &x,
                &y,
                FitOptions {
                    epochs: 4,
                    verbose: 0,
                    callbacks: vec![Box::new(LearningRateScheduler::new(|epoch, _| {
                        0.1 / (epoch + 1) as f64
                    }))],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            h.get("learning_rate").unwrap(),
            &[0.1, 0.05, 0.1 / 3.0, 0.025][..]
        );
        let mut scheduled = model();
        let schedule = optim::schedule::ExponentialDecay::new(0.1, 10, 0.5);
        scheduled
            .compile(optim::SGD::new(schedule), "binary_crossentropy", [])
            .unwrap();
        let e = scheduled
            .fit(
                &x,
                &y,
                FitOptions {
                    verbose: 0,
                    callbacks: vec![Box::new(LearningRateScheduler::new(|_, lr| lr))],
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LearningRateScheduler") && e.contains("schedule"),
            "{e}"
        );
    }

    /// A user's callback: counts batches and stops in the middle of the second epoch.
    struct StopAt {
        batches: usize,
        ended: bool,
    }

    impl Callback for StopAt {
        fn name(&self) -> &str {
            "StopAt"
        }
        fn on_batch_end(
            &mut self,
            epoch: usize,
            step: usize,
            _loss: f64,
            _m: &mut Sequential,
        ) -> Result<Flow> {
            self.batches += 1;
            Ok(if epoch == 1 && step == 1 {
                STOP
            } else {
                CONTINUE
            })
        }
        fn on_train_end(&mut self, _m: &mut Sequential, history: &History) -> Result<()> {
            assert_eq!(history.epochs(), &[0, 1]); // the stopped epoch is still recorded
            self.ended = true;
            Ok(())
        }
    }

    #[test]
    fn user_callbacks_see_every_batch_and_can_stop_mid_epoch() {
        let (x, y) = xor();
        let mut m = model();
        let h = m
            .fit(
                &x,
                &y,
                FitOptions {
                    epochs: 5,
                    batch_size: 1,
                    verbose: 0,
                    callbacks: vec![Box::new(StopAt {
                        batches: 0,
                        ended: false,
                    })],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(h.epochs(), &[0, 1]);
        assert_eq!(m.completed_epochs(), 2);
    }
}

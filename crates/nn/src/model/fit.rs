//! `fit`: the training loop, with Keras's batching, shuffling, validation split and
//! per-epoch logs.

use tensor::random::seeded;
use tensor::{Element, Tensor};

use crate::distributed::{Communicator, Fingerprint, shard};
use crate::error::{Error, Result};
use crate::metrics::Metric;
use crate::model::callback::Callback;
use crate::model::progress::Progress;
use crate::model::{History, Logs, Sequential, Share, check_batch_size};

/// How [`Sequential::fit`] trains; `..Default::default()` gives Keras's defaults.
///
/// ```
/// let options = nn::FitOptions::<f32> { epochs: 5, batch_size: 128, ..Default::default() };
/// assert!(options.shuffle);
/// ```
pub struct FitOptions<T: Element = f32> {
    /// Passes over the training data (Keras's default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Visit the training samples in a new random order each epoch (default true).
    pub shuffle: bool,
    /// The fraction of samples, taken from the end before any shuffling, held out for
    /// validation (default 0).
    pub validation_split: f64,
    /// Held-out data evaluated after each epoch (instead of `validation_split`).
    pub validation_data: Option<(Tensor<T>, Tensor<T>)>,
    /// 0: silent; 1: a live progress bar per epoch; 2: one line per epoch (default 1).
    pub verbose: u8,
    /// The epoch to start from, for resuming (default 0).
    pub initial_epoch: usize,
    /// Seed of the per-epoch shuffles; `None` uses the model's seed.
    pub seed: Option<u64>,
    /// Code run around training, epochs and batches ([`crate::callbacks`]): checkpoints,
    /// early stopping, logging, learning-rate schedules, your own.
    pub callbacks: Vec<Box<dyn Callback<T>>>,
}

impl<T: Element> std::fmt::Debug for FitOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let callbacks: Vec<&str> = self.callbacks.iter().map(|c| c.name()).collect();
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("validation_split", &self.validation_split)
            .field(
                "validation_data",
                &self
                    .validation_data
                    .as_ref()
                    .map(|(x, _)| x.shape().to_vec()),
            )
            .field("verbose", &self.verbose)
            .field("initial_epoch", &self.initial_epoch)
            .field("seed", &self.seed)
            .field("callbacks", &callbacks)
            .finish()
    }
}

impl<T: Element> Default for FitOptions<T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            verbose: 1,
            initial_epoch: 0,
            seed: None,
            callbacks: Vec::new(),
        }
    }
}

/// Sample-weighted sums of the loss and metrics over the batches of an epoch or an
/// evaluation, as Keras's loss tracker and metric objects keep them.
pub(crate) struct Accumulator {
    metrics: Vec<Metric>,
    loss_sum: f64,
    samples: usize,
    metric_sums: Vec<f64>,
    metric_counts: Vec<usize>,
}

impl Accumulator {
    pub fn new(metrics: &[Metric]) -> Self {
        Accumulator {
            metrics: metrics.to_vec(),
            loss_sum: 0.0,
            samples: 0,
            metric_sums: vec![0.0; metrics.len()],
            metric_counts: vec![0; metrics.len()],
        }
    }

    /// Adds a batch: its mean loss, its targets, and its predictions (which only metrics
    /// read; `None` when there are none).
    pub fn add<T: Element>(
        &mut self,
        loss: f64,
        y_true: &Tensor<T>,
        y_pred: Option<&Tensor<T>>,
    ) -> Result<()> {
        let n = y_true.shape()[0];
        self.loss_sum += loss * n as f64;
        self.samples += n;
        for (i, m) in self.metrics.iter().enumerate() {
            let y_pred = y_pred.expect("predictions are computed whenever there are metrics");
            let (s, c) = m.batch_sum(y_true, y_pred)?;
            self.metric_sums[i] += s;
            self.metric_counts[i] += c;
        }
        Ok(())
    }

    /// Adds another accumulator's sums (of the same metrics).
    pub fn merge(&mut self, other: &Accumulator) {
        self.loss_sum += other.loss_sum;
        self.samples += other.samples;
        for i in 0..self.metrics.len() {
            self.metric_sums[i] += other.metric_sums[i];
            self.metric_counts[i] += other.metric_counts[i];
        }
    }

    /// Replaces the sums by their sums over the ranks.
    pub fn all_sum(&mut self, comm: &dyn Communicator) -> Result<()> {
        let mut v = Vec::with_capacity(2 + 2 * self.metrics.len());
        v.push(self.loss_sum);
        v.push(self.samples as f64);
        v.extend(&self.metric_sums);
        v.extend(self.metric_counts.iter().map(|&c| c as f64));
        comm.all_sum_f64(&mut v)?;
        let k = self.metrics.len();
        self.loss_sum = v[0];
        self.samples = v[1] as usize;
        self.metric_sums.copy_from_slice(&v[2..2 + k]);
        for (c, &v) in self.metric_counts.iter_mut().zip(&v[2 + k..]) {
            *c = v as usize;
        }
        Ok(())
    }

    /// The mean loss so far.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }

    /// The means so far, keys prefixed with `prefix` (`"val_"`).
    pub fn logs(&self, prefix: &str) -> Logs {
        let mut logs = Logs::default();
        for (i, m) in self.metrics.iter().enumerate() {
            logs.insert(
                [prefix, &m.name].concat(),
                self.metric_sums[i] / self.metric_counts[i].max(1) as f64,
            );
        }
        logs.insert(
            [prefix, "loss"].concat(),
            self.loss_sum / self.samples.max(1) as f64,
        );
        logs
    }
}

/// A seed for epoch `epoch`'s shuffle, so that each epoch's order depends only on the base
/// seed and the epoch (a resumed run shuffles as an uninterrupted one).
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    // SplitMix64 of the pair.
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<T: Element> Sequential<T> {
    /// Trains the model on `x` (`[samples, features]`) and `y` (`[samples, outputs]`, or
    /// `[samples]` class labels for sparse categorical cross-entropy), as Keras's `fit`.
    ///
    /// Every input is checked before anything changes: shapes, sample counts, NaN or
    /// infinity, labels out of range, batch size, epochs, the validation split.
    ///
    /// # Errors
    /// Before `compile`, or for data or options that do not fit (the message says what was
    /// expected and what came); the model is unchanged then.
    pub fn fit(&mut self, x: &Tensor<T>, y: &Tensor<T>, options: FitOptions<T>) -> Result<History> {
        // On a pool thread, the matrix products split across cores without waking threads.
        // Not so when ranks train together: a rank waiting in a collective must not hold a
        // pool thread that another rank of this process (a thread group) needs, and MPI
        // is then called from the thread that started it.
        if self.group().is_some() {
            return self.fit_on_pool(x, y, options);
        }
        tensor::parallel::install(|| self.fit_on_pool(x, y, options))
    }

    fn fit_on_pool(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        options: FitOptions<T>,
    ) -> Result<History> {
        // Ranks training together agree before anything else can fail on one and not the
        // others (which would leave them waiting for each other).
        self.agree_to_fit(x, y, &options)?;
        self.compiled("fit")?;
        check_batch_size("fit", options.batch_size)?;
        if options.epochs == 0 {
            return Err(Error::config("fit", "epochs must be at least 1, got 0"));
        }
        if options.initial_epoch >= options.epochs {
            return Err(Error::config(
                "fit",
                format!(
                    "initial_epoch ({}) must be below epochs ({})",
                    options.initial_epoch, options.epochs
                ),
            ));
        }
        let vs = options.validation_split;
        if !(0.0..1.0).contains(&vs) {
            return Err(Error::config(
                "fit",
                format!("validation_split must be in [0, 1), got {vs}"),
            ));
        }
        if vs > 0.0 && options.validation_data.is_some() {
            return Err(Error::config(
                "fit",
                "give validation_split or validation_data, not both",
            ));
        }
        self.check_x("fit", x)?;
        let y = self.check_targets("fit", x, y)?;
        let n = x.shape()[0];
        let (x_train, y_train, validation) = if vs > 0.0 {
            // Keras: the last fraction, before shuffling.
            let split_at = (n as f64 * (1.0 - vs)).floor() as usize;
            if split_at == 0 || split_at == n {
                return Err(Error::config(
                    "fit",
                    format!(
                        "validation_split {vs} of {n} samples leaves {split_at} for training and {} for validation; both need at least one",
                        n - split_at
                    ),
                ));
            }
            (
                x.rows(0..split_at),
                y.rows(0..split_at),
                Some((x.rows(split_at..n), y.rows(split_at..n))),
            )
        } else {
            let validation = match &options.validation_data {
                Some((xv, yv)) => {
                    self.check_x("fit: validation_data", xv)?;
                    let yv = self.check_targets("fit: validation_data", xv, yv)?;
                    Some((xv.clone(), yv))
                }
                None => None,
            };
            (x.clone(), y, validation)
        };
        // Everything is checked: create the weights if this is the first data seen.
        self.build_for(x)?;
        // Ranks start from rank 0's weights and optimizer state; only rank 0 prints and
        // runs the callbacks that write.
        let group = self.group();
        self.broadcast_state()?;
        let chief = self.is_chief();
        let verbose = if chief { options.verbose } else { 0 };
        // Whether the ranks settle after each batch's callbacks (the list is agreed, so
        // this is the same on every rank, whatever `retain` leaves on each).
        let sync = group.is_some() && !options.callbacks.is_empty();
        let epoch_sync = group.is_some();
        let mut callbacks = options.callbacks;
        callbacks.retain(|c| chief || !c.chief_only());
        let group_ref = group.as_deref();

        let n_train = x_train.shape()[0];
        let batch_size = options.batch_size;
        let steps = n_train.div_ceil(batch_size);
        let seed = options.seed.unwrap_or(self.seed());
        let mut history = History::default();
        let mut order: Vec<usize> = (0..n_train).collect();
        let begun = hooks(&mut callbacks, |c| c.on_train_begin(self).map(|()| false));
        settle(group_ref, sync, begun)?;
        for epoch in options.initial_epoch..options.epochs {
            let begun = hooks(&mut callbacks, |c| {
                c.on_epoch_begin(epoch, self).map(|()| false)
            });
            settle(group_ref, sync, begun)?;
            let mut stop = false;
            let mut progress = Progress::new(verbose, epoch, options.epochs, steps);
            if options.shuffle {
                use rand::seq::SliceRandom;
                order.sort_unstable();
                order.shuffle(&mut seeded(epoch_seed(seed, epoch)));
            }
            let mut acc = Accumulator::new(self.metrics());
            for step in 0..steps {
                let (start, end) = (step * batch_size, ((step + 1) * batch_size).min(n_train));
                // With ranks, this rank's share of the global batch.
                let share = match &group {
                    Some(c) => {
                        let (from, to) = shard(start, end, c.rank(), c.size());
                        Share::of(start, end, from, to)
                    }
                    None => Share::whole(start, end),
                };
                let (from, to) = share.rows;
                let (xb, yb) = if options.shuffle {
                    let idx = &order[from..to];
                    (x_train.gather(0, idx), y_train.gather(0, idx))
                } else {
                    (x_train.rows(from..to), y_train.rows(from..to))
                };
                let (loss, y_pred) = self.train_step(&xb, &yb, share)?;
                let loss = match &group {
                    Some(c) => {
                        let mut batch = Accumulator::new(self.metrics());
                        if share.fraction > 0.0 {
                            batch.add(loss, &yb, y_pred.as_ref())?;
                        }
                        batch.all_sum(c.as_ref())?;
                        acc.merge(&batch);
                        batch.loss()
                    }
                    None => {
                        acc.add(loss, &yb, y_pred.as_ref())?;
                        loss
                    }
                };
                progress.update(step + 1, || acc.logs(""));
                let ended = hooks(&mut callbacks, |c| {
                    Ok(c.on_batch_end(epoch, step, loss, self)?.is_break())
                });
                stop |= settle(group_ref, sync, ended)?;
                if stop {
                    break;
                }
            }
            let mut logs = acc.logs("");
            if let Some((xv, yv)) = &validation {
                // Checked before the first epoch; not scanned again every epoch.
                let val = self.evaluate_checked(xv, yv, batch_size)?;
                for (k, v) in val.iter() {
                    logs.insert(format!("val_{k}"), v);
                }
            }
            self.set_completed_epochs(epoch + 1);
            // Callbacks first (they may add entries, such as the learning rate), then the
            // progress line and the history, as Keras orders them.
            let ended = hooks(&mut callbacks, |c| {
                Ok(c.on_epoch_end(epoch, &mut logs, self)?.is_break())
            });
            stop |= settle(group_ref, epoch_sync, ended)?;
            self.check_in_step("fit")?;
            progress.finish(&logs);
            history.push(epoch, &logs);
            if stop {
                break;
            }
        }
        let ended = hooks(&mut callbacks, |c| {
            c.on_train_end(self, &history).map(|()| false)
        });
        settle(group_ref, sync, ended)?;
        Ok(history)
    }
}

/// Runs one hook of every callback in order; whether any asked to stop.
fn hooks<T: Element>(
    callbacks: &mut [Box<dyn Callback<T>>],
    mut hook: impl FnMut(&mut Box<dyn Callback<T>>) -> Result<bool>,
) -> Result<bool> {
    let mut stop = false;
    for c in callbacks {
        stop |= hook(c)?;
    }
    Ok(stop)
}

/// After one hook's callbacks: with ranks (and `sync`), every rank learns whether any
/// asked to stop or failed, so that all stop together and an error on one rank (rank 0's
/// checkpoint failing to write) ends `fit` on every rank instead of leaving the others
/// waiting in the next collective.
fn settle(group: Option<&dyn Communicator>, sync: bool, outcome: Result<bool>) -> Result<bool> {
    let Some(c) = group.filter(|_| sync) else {
        return outcome;
    };
    let (stop, failed) = match &outcome {
        Ok(stop) => (*stop, false),
        Err(_) => (false, true),
    };
    let mut v = [f64::from(u8::from(stop)), f64::from(u8::from(failed))];
    c.all_sum_f64(&mut v)?;
    match outcome {
        Err(e) => Err(e),
        Ok(_) if v[1] > 0.0 => Err(Error::config(
            "fit",
            format!(
                "rank {} stops: a callback failed on another rank (whose error says why)",
                c.rank()
            ),
        )),
        Ok(_) => Ok(v[0] > 0.0),
    }
}

impl<T: Element> Sequential<T> {
    /// With ranks: checks that all of them fit the same model to the same data with the
    /// same options.
    fn agree_to_fit(&self, x: &Tensor<T>, y: &Tensor<T>, o: &FitOptions<T>) -> Result<()> {
        if self.group().is_none() {
            return Ok(());
        }
        if let Some(c) = &self.compiled
            && let crate::losses::Loss::SparseCategoricalCrossentropy(o) = &c.loss
            && o.ignore_class.is_some()
        {
            // Each rank's loss is a mean over its kept rows, so row shares would weight them
            // wrongly; refused (on every rank alike) rather than computed wrong.
            return Err(Error::config(
                "fit",
                "ignore_class is not supported in distributed training yet",
            ));
        }
        let (arch, compiled) = self.model_fingerprint();
        let mut options = Fingerprint::default()
            .word(o.epochs as u64)
            .word(o.batch_size as u64)
            .word(u64::from(o.shuffle))
            .word(o.validation_split.to_bits())
            .word(o.initial_epoch as u64)
            .word(o.seed.unwrap_or(self.seed()))
            .word(self.completed_epochs() as u64);
        if let Some((xv, yv)) = &o.validation_data {
            options = options.tensor(xv).tensor(yv);
        }
        let callbacks = o.callbacks.iter().map(|c| c.name()).collect::<Vec<_>>();
        options = options.str(&callbacks.join(","));
        self.agree(
            "fit",
            &[
                ("the architecture", arch),
                ("the loss, metrics or optimizer", compiled),
                ("x", Fingerprint::default().tensor(x).value()),
                ("y", Fingerprint::default().tensor(y).value()),
                ("the fit options or callbacks", options.value()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seeds_differ_by_epoch_and_seed() {
        assert_ne!(epoch_seed(1, 0), epoch_seed(1, 1));
        assert_ne!(epoch_seed(1, 0), epoch_seed(2, 0));
        assert_eq!(epoch_seed(7, 3), epoch_seed(7, 3));
    }
}

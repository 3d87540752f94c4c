//! The callbacks in training, end to end.

use super::*;
use crate::error::{Error, Result};
use crate::model::{History, Logs, Sequential};
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

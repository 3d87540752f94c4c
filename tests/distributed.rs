//! Data-parallel `fit` over ranks of one process (`nn::distributed::thread_group`): the
//! same numbers as one process, ranks that disagree stopped at the start, and rank 0 alone
//! writing. The MPI transport runs the same code (`crates/mpi`, in `.ci/run`).

mod common;

use std::sync::Arc;

use brick::prelude::*;
use nn::callbacks::{CONTINUE, Flow, STOP};
use nn::distributed::{Communicator, thread_group};

/// The first `n` bundled digits, flattened and scaled, with one-hot labels.
fn digits(n: usize) -> (Tensor<f32>, Tensor<f32>) {
    let images =
        load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz")).unwrap();
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz")).unwrap();
    let x = images.rows(0..n).reshape(&[n, 784]);
    let y = to_categorical::<f32>(&labels[..n], Some(10)).unwrap();
    (x, y)
}

/// The MNIST MLP, smaller: 784 -> 64 relu -> 10 softmax, Adam.
fn mlp() -> Sequential<f32> {
    let mut m = Sequential::with_seed(11);
    m.add(Dense::new(64).input_dim(784).activation("relu"))
        .unwrap();
    m.add(Dense::new(10).activation("softmax")).unwrap();
    m.compile(Adam::new(0.002), "categorical_crossentropy", ["accuracy"])
        .unwrap();
    m
}

/// Runs `f` on each rank of a thread group of `n`, each on its own thread.
fn on_ranks<R: Send + 'static>(
    n: usize,
    f: impl Fn(Arc<dyn Communicator>) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let handles: Vec<_> = thread_group(n)
        .unwrap()
        .into_iter()
        .map(|c| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f(c))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
        "{what}: {a} against {b}"
    );
}

/// Trains on `rows` digits with batch 64 (so the last batch is uneven), a validation
/// split and one rank count; returns each rank's history and weights.
fn train(comm: Option<Arc<dyn Communicator>>, rows: usize) -> (History, Vec<Tensor<f32>>) {
    let (x, y) = digits(rows);
    let mut m = mlp();
    if let Some(c) = comm {
        m.distribute(c);
    }
    let h = m
        .fit(
            &x,
            &y,
            FitOptions {
                epochs: 3,
                batch_size: 64,
                validation_split: 0.2,
                verbose: 0,
                ..Default::default()
            },
        )
        .unwrap();
    (h, m.get_weights())
}

fn assert_same(a: &(History, Vec<Tensor<f32>>), b: &(History, Vec<Tensor<f32>>)) {
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        let (x, y) = (a.0.get(key).unwrap(), b.0.get(key).unwrap());
        for (u, v) in x.iter().zip(y) {
            close(*u, *v, key);
        }
    }
    for (u, v) in a.1.iter().zip(&b.1) {
        assert!(u.allclose(v, 1e-5, 1e-6), "weights differ");
    }
}

#[test]
fn ranks_train_as_one_process_does() {
    // 1,001 rows: 800 for training (12 full batches and one of 32) and 201 for validation.
    let alone = train(None, 1001);
    for n in [2, 3] {
        let ranks = on_ranks(n, |c| train(Some(c), 1001));
        for r in &ranks {
            assert_same(r, &alone);
        }
        // Every rank ends bit-identical.
        for r in &ranks[1..] {
            assert_eq!(r.1, ranks[0].1);
        }
    }
}

#[test]
fn a_last_batch_smaller_than_the_ranks_is_right() {
    // 641 training rows give a last batch of 1, so rank 1 of 2 has nothing in it.
    let alone = train(None, 802);
    let ranks = on_ranks(2, |c| train(Some(c), 802));
    for r in &ranks {
        assert_same(r, &alone);
    }
}

/// A small convnet with Dropout, trained on `rows` digits as images, batch 64: each rank's
/// history and weights.
fn train_convnet(comm: Option<Arc<dyn Communicator>>, rows: usize) -> (History, Vec<Tensor<f32>>) {
    let (x, y) = digits(rows);
    let x = x.reshape(&[rows, 28, 28, 1]);
    let mut m = Sequential::with_seed(5);
    m.add(Input::new([28, 28, 1])).unwrap();
    m.add(Conv2D::new(4, 3).activation("relu")).unwrap();
    m.add(MaxPooling2D::new(2)).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(Dense::new(10).activation("softmax")).unwrap();
    m.compile("adam", "categorical_crossentropy", ["accuracy"])
        .unwrap();
    if let Some(c) = comm {
        m.distribute(c);
    }
    let fit = FitOptions {
        epochs: 2,
        batch_size: 64,
        validation_split: 0.2,
        verbose: 0,
        ..Default::default()
    };
    let h = m.fit(&x, &y, fit).unwrap();
    (h, m.get_weights())
}

#[test]
fn a_convnet_with_dropout_trains_on_ranks_as_in_one_process() {
    // Dropout's masks are keyed by each row's place in the global batch, so the ranks drop
    // for their rows what one process drops: the same numbers, not merely a model that
    // trains. 250 rows: 200 for training (3 batches and one of 8), 50 for validation.
    let alone = train_convnet(None, 250);
    for n in [2, 3] {
        let ranks = on_ranks(n, |c| train_convnet(Some(c), 250));
        for r in &ranks {
            assert_same(r, &alone);
        }
    }
}

#[test]
fn ranks_that_disagree_stop_at_the_start_with_what_differs() {
    let (x, y) = digits(200);
    let errors = on_ranks(2, move |c| {
        let rank = c.rank();
        let again = Arc::clone(&c);
        let mut m = Sequential::with_seed(11);
        let units = if rank == 1 { 16 } else { 32 };
        m.add(Dense::new(units).input_dim(784).activation("relu"))
            .unwrap();
        m.add(Dense::new(10).activation("softmax")).unwrap();
        m.compile("adam", "categorical_crossentropy", []).unwrap();
        m.distribute(c);
        let arch = m
            .fit(
                &x,
                &y,
                FitOptions {
                    verbose: 0,
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        // The same model, but rank 1 has other data.
        let mut m = Sequential::with_seed(11);
        m.add(Dense::new(10).input_dim(784).activation("softmax"))
            .unwrap();
        m.compile("adam", "categorical_crossentropy", []).unwrap();
        let before = m.get_weights();
        let xr = if rank == 1 {
            x.map(|v| v * 0.5)
        } else {
            x.clone()
        };
        m.distribute(again);
        let data = m
            .fit(
                &xr,
                &y,
                FitOptions {
                    verbose: 0,
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        (arch, data, before == m.get_weights())
    });
    for (arch, data, unchanged) in errors {
        assert!(
            arch.contains("the architecture") && arch.contains("[1]"),
            "{arch}"
        );
        assert!(data.contains("x of rank(s) [1]"), "{data}");
        assert!(unchanged);
    }
}

#[test]
fn only_rank_0_writes_and_all_ranks_stop_together() {
    let dir = common::scratch("distributed_chief");
    let d = dir.clone();
    let out = on_ranks(2, move |c| {
        let rank = c.rank();
        let (x, y) = digits(300);
        let mut m = mlp();
        m.distribute(c);
        let path = d.join(format!("rank{rank}.safetensors"));
        let h = m
            .fit(
                &x,
                &y,
                FitOptions {
                    epochs: 50,
                    batch_size: 32,
                    verbose: 0,
                    callbacks: vec![
                        Box::new(ModelCheckpoint::new(path.display().to_string())),
                        // Stops when the training loss no longer falls by 1e9: after the
                        // second epoch, on every rank at once.
                        Box::new(EarlyStopping::new("loss").min_delta(1e9)),
                    ],
                    ..Default::default()
                },
            )
            .unwrap();
        (rank, path.exists(), h.epochs().len())
    });
    for (rank, wrote, epochs) in out {
        assert_eq!(wrote, rank == 0, "rank {rank}");
        assert_eq!(epochs, 2, "rank {rank}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batch_normalization_s_moving_statistics_stay_the_same_on_every_rank() {
    // Each rank normalizes with its own share's statistics (as PyTorch's DDP without
    // SyncBatchNorm, and Keras's replicas); the moving statistics are averaged by rows, so
    // the ranks never drift apart.
    let out = on_ranks(2, |c| {
        let (x, y) = digits(500);
        let mut m = Sequential::with_seed(3);
        m.add(Dense::new(16).input_dim(784).activation("relu"))
            .unwrap();
        m.add(BatchNormalization::new()).unwrap();
        m.add(Dense::new(10).activation("softmax")).unwrap();
        m.compile("adam", "categorical_crossentropy", []).unwrap();
        m.distribute(c);
        let fit = FitOptions {
            epochs: 2,
            batch_size: 64,
            verbose: 0,
            ..Default::default()
        };
        m.fit(&x, &y, fit).unwrap();
        m.get_weights()
    });
    assert_eq!(out[0], out[1]);
    // The moving mean moved from its initial zeros.
    assert!(out[0][4].to_vec().iter().any(|v| *v != 0.0));
}

/// Fits the small MLP on 300 digits with these callbacks, on ranks of a thread group.
fn fit_with(
    c: Arc<dyn Communicator>,
    epochs: usize,
    callbacks: Vec<Box<dyn Callback>>,
) -> nn::Result<History> {
    let (x, y) = digits(300);
    let mut m = mlp();
    m.distribute(c);
    m.fit(
        &x,
        &y,
        FitOptions {
            epochs,
            batch_size: 64,
            verbose: 0,
            callbacks,
            ..Default::default()
        },
    )
}

#[test]
fn callbacks_for_rank_0_alone_leave_the_ranks_in_step() {
    // Only a checkpoint: rank 1 runs no callback at all, and still settles with rank 0.
    let dir = common::scratch("distributed_checkpoint_only");
    let d = dir.clone();
    let out = on_ranks(2, move |c| {
        let path = d.join("model.safetensors").display().to_string();
        fit_with(c, 3, vec![Box::new(ModelCheckpoint::new(path))]).map(|h| h.len())
    });
    for r in out {
        assert_eq!(r.unwrap(), 3);
    }
    assert!(dir.join("model.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Asks to stop after epoch `at`, on rank `rank` only.
struct StopOn {
    rank: usize,
    me: usize,
    at: usize,
}

impl Callback for StopOn {
    fn name(&self) -> &str {
        "stop_on"
    }
    fn on_epoch_end(&mut self, epoch: usize, _: &mut Logs, _: &mut Sequential) -> nn::Result<Flow> {
        Ok(if self.me == self.rank && epoch == self.at {
            STOP
        } else {
            CONTINUE
        })
    }
}

#[test]
fn one_rank_asking_to_stop_stops_all() {
    let out = on_ranks(2, |c| {
        let me = c.rank();
        fit_with(c, 10, vec![Box::new(StopOn { rank: 1, me, at: 1 })]).map(|h| h.len())
    });
    for r in out {
        assert_eq!(r.unwrap(), 2);
    }
}

#[test]
fn a_callback_failing_on_rank_0_is_an_error_on_every_rank_not_a_hang() {
    // save_best_only watching val_loss without validation data: rank 0's checkpoint fails
    // at the first epoch's end; rank 1 runs no checkpoint and must not wait for rank 0.
    let dir = common::scratch("distributed_failing_callback");
    let d = dir.clone();
    let out = on_ranks(2, move |c| {
        let path = d.join("best.safetensors").display().to_string();
        let cb = ModelCheckpoint::new(path)
            .monitor("val_loss")
            .save_best_only(true);
        fit_with(c, 3, vec![Box::new(cb)]).map(|h| h.len())
    });
    let errors: Vec<String> = out
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    assert!(errors[0].contains("val_loss"), "{}", errors[0]);
    assert!(errors[1].contains("another rank"), "{}", errors[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_on_batch_takes_the_global_batch_as_fit_does() {
    let (x, y) = digits(96);
    let mut alone = mlp();
    let want = alone.train_on_batch(&x, &y).unwrap();
    let out = on_ranks(3, move |c| {
        let mut m = mlp();
        m.distribute(c);
        (m.train_on_batch(&x, &y).unwrap(), m.get_weights())
    });
    for (logs, weights) in out {
        close(logs.loss(), want.loss(), "loss");
        for (u, v) in weights.iter().zip(alone.get_weights()) {
            assert!(u.allclose(&v, 1e-5, 1e-6), "weights differ");
        }
    }
}

/// A hand-written loop (as `examples/custom_loop.rs`): 784 -> 32 relu -> 10 on `rows`
/// digits, Adam, batch 64 without shuffling. With a communicator, each rank makes its own
/// initial weights (seeded by its rank) and `DataParallel` gives all rank 0's.
fn custom_loop(comm: Option<Arc<dyn Communicator>>, rows: usize) -> Vec<(String, Tensor<f32>)> {
    use nn::distributed::DataParallel;
    use std::collections::BTreeMap;
    let (x, y) = digits(rows);
    let rank = comm.as_ref().map_or(0, |c| c.rank() as u64);
    let mut dp = comm.map(DataParallel::new);
    let mut rng = seeded(7 + rank);
    let init = Initializer::GLOROT_UNIFORM;
    let mut weights: BTreeMap<String, Tensor> = BTreeMap::new();
    weights.insert("w1".into(), init.sample(&[784, 32], &mut rng).unwrap());
    weights.insert("b1".into(), Tensor::zeros(&[32]));
    weights.insert("w2".into(), init.sample(&[32, 10], &mut rng).unwrap());
    weights.insert("b2".into(), Tensor::zeros(&[10]));
    if let Some(dp) = dp.as_mut() {
        dp.broadcast_weights(&mut weights).unwrap();
    }
    let loss_fn: Loss = CategoricalCrossentropy::new().from_logits(true).into();
    let mut optimizer = Adam::new(0.003);
    for _ in 0..2 {
        for start in (0..rows).step_by(64) {
            let end = (start + 64).min(rows);
            let (rows, share) = match &dp {
                Some(dp) => {
                    let (r, share) = dp.shard(end - start);
                    (start + r.start..start + r.end, share)
                }
                None => (start..end, 1.0),
            };
            let (xb, yb) = (x.rows(rows.clone()), y.rows(rows));
            let mut grads = {
                let tape = Tape::new();
                let w = tape.params_named(&weights);
                let hidden = (tape.constant(&xb).matmul(w["w1"]) + w["b1"]).relu();
                let logits = hidden.matmul(w["w2"]) + w["b2"];
                let loss = loss_fn.compute(tape.constant(&yb), logits).unwrap();
                loss.backward().unwrap().take_named(&w).unwrap()
            };
            if let Some(dp) = dp.as_mut() {
                dp.all_reduce_gradients(&mut grads, share).unwrap();
            }
            optimizer.step_map(&mut weights, &grads).unwrap();
        }
    }
    weights.into_iter().collect()
}

#[test]
fn a_hand_written_loop_trains_on_ranks_as_in_one_process() {
    // 450 rows: 7 batches of 64 and one of 2, which rank 2 of 3 has no share of.
    let alone = custom_loop(None, 450);
    for n in [2, 3] {
        let ranks = on_ranks(n, |c| custom_loop(Some(c), 450));
        for r in &ranks {
            for ((name, a), (_, b)) in r.iter().zip(&alone) {
                assert!(a.allclose(b, 1e-5, 1e-6), "{name} on {n} ranks");
            }
        }
        for r in &ranks[1..] {
            assert_eq!(r, &ranks[0]);
        }
    }
}

#[test]
fn a_hand_written_loop_s_ranks_that_disagree_get_an_error_not_a_hang() {
    use nn::distributed::DataParallel;
    use std::collections::BTreeMap;
    let errors = on_ranks(2, |c| {
        let width = 3 + c.rank();
        let mut dp = DataParallel::<f32>::new(c);
        let mut w = BTreeMap::from([("w".to_string(), Tensor::zeros(&[2, width]))]);
        let e = dp.broadcast_weights(&mut w).unwrap_err().to_string();
        let mut g = BTreeMap::from([("w".to_string(), Tensor::zeros(&[2, width]))]);
        let f = dp
            .all_reduce_gradients(&mut g, 0.5)
            .unwrap_err()
            .to_string();
        (e, f)
    });
    for (e, f) in errors {
        assert!(e.contains("rank(s) [1] differ from rank 0's"), "{e}");
        assert!(e.contains("w [2, "), "{e}");
        assert!(
            f.contains("all_reduce_gradients: the ranks disagree"),
            "{f}"
        );
    }
}

//! The MNIST MLP (784 -> Dense 512 relu -> Dense 10 softmax, RMSprop, batch 128), or with
//! `--model convnet` the keras.io convnet (Conv2D 32, MaxPooling2D, Conv2D 64, MaxPooling2D,
//! Flatten, Dropout 0.5, Dense 10 softmax, Adam, batch 128), trained data-parallel over MPI
//! on the bundled digits (first 8,000 for training, last 2,000 for testing): each rank takes
//! its share of every batch, and the run ends with the weights one process reaches.
//!
//! ```sh
//! cargo build --release --manifest-path crates/mpi/Cargo.toml
//! mpirun -np 2 --bind-to none crates/mpi/target/release/mnist_mpi --epochs 5
//! ```
//!
//! Options: `--model mlp|convnet` (default mlp), `--epochs N` (default 5), `--rows N`
//! training rows (default all 8,000), `--tile N`: those rows repeated to `N` (how the
//! benchmarks time a 60,000-row epoch), printing each epoch's seconds at the end,
//! `--hidden N` units (default 512), `--record FILE`: rank 0 writes every step's loss and
//! the final weights there as JSON (what the tests compare with one process);
//! `--fail-on-rank R`: rank R returns an error after its first epoch (what the tests use
//! to show that one rank's error ends the whole job);
//! `--checkpoint FILE`: rank 0 saves the whole model there after every epoch (atomically),
//! and a run that finds the file resumes from it on every rank (the file must be where
//! every rank can read it: one machine, or a shared file system), ending with the weights
//! an uninterrupted run reaches; `--kill-at-epoch E`: rank 1 kills itself with SIGKILL as
//! epoch `E` begins, after the checkpoint of epoch `E - 1` is written (what the resume test
//! interrupts a run with).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use brick::nn::callbacks::{CONTINUE, Flow};
use brick::nn::distributed::Communicator;
use brick::prelude::*;

/// Records every step's global loss.
struct StepLosses(Arc<Mutex<Vec<f64>>>);

impl Callback for StepLosses {
    fn name(&self) -> &str {
        "step_losses"
    }
    fn on_batch_end(
        &mut self,
        _epoch: usize,
        _step: usize,
        loss: f64,
        _model: &mut Sequential,
    ) -> brick::nn::Result<Flow> {
        self.0.lock().unwrap().push(loss);
        Ok(CONTINUE)
    }
}

/// Records every epoch's wall time, validation included.
struct EpochSeconds(Arc<Mutex<Vec<f64>>>, Option<Instant>);

impl Callback for EpochSeconds {
    fn name(&self) -> &str {
        "epoch_seconds"
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Sequential) -> brick::nn::Result<()> {
        self.1 = Some(Instant::now());
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut brick::nn::Logs,
        _model: &mut Sequential,
    ) -> brick::nn::Result<Flow> {
        if let Some(start) = self.1.take() {
            self.0.lock().unwrap().push(start.elapsed().as_secs_f64());
        }
        Ok(CONTINUE)
    }
}

/// Rank `rank` sends itself SIGKILL as epoch `at` begins: a crash that no code of brick's
/// sees coming.
struct KillAtEpoch {
    at: usize,
    rank: usize,
}

impl Callback for KillAtEpoch {
    fn name(&self) -> &str {
        "kill_at_epoch"
    }
    fn on_epoch_begin(&mut self, epoch: usize, _model: &mut Sequential) -> brick::nn::Result<()> {
        if epoch == self.at && self.rank == 1 {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    brick_mpi::run(train)
}

fn train(comm: Arc<dyn Communicator>) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(5);
    let hidden: usize = brick::flag(&args, "--hidden")?.unwrap_or(512);
    let kind: String = brick::flag(&args, "--model")?.unwrap_or_else(|| "mlp".into());
    if kind != "mlp" && kind != "convnet" {
        return Err(format!("--model: expected mlp or convnet, got '{kind}'").into());
    }
    let rows: Option<usize> = brick::flag(&args, "--rows")?;
    let tile: Option<usize> = brick::flag(&args, "--tile")?;
    let record: Option<String> = brick::flag(&args, "--record")?;
    let fail_on: Option<usize> = brick::flag(&args, "--fail-on-rank")?;
    let checkpoint: Option<String> = brick::flag(&args, "--checkpoint")?;
    let kill_at: Option<usize> = brick::flag(&args, "--kill-at-epoch")?;
    let (rank, size) = (comm.rank(), comm.size());

    let images = load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
    let split = labels.len() * 4 / 5;
    let n = rows.unwrap_or(split).min(split);
    let image = |rows: usize| match kind.as_str() {
        "convnet" => vec![rows, 28, 28, 1],
        _ => vec![rows, 784],
    };
    // The training rows, repeated to `--tile` rows as the benchmarks build their 60,000.
    let order: Vec<usize> = (0..tile.unwrap_or(n)).map(|i| i % n).collect();
    let pixels = images.rows(0..n).to_vec();
    let tiled: Vec<f32> = order
        .iter()
        .flat_map(|&i| pixels[i * 784..(i + 1) * 784].iter().copied())
        .collect();
    let tiled_labels: Vec<usize> = order.iter().map(|&i| labels[i]).collect();
    let (x, y) = (
        Tensor::from_vec(tiled, &image(order.len()))?,
        to_categorical::<f32>(&tiled_labels, Some(10))?,
    );
    let n = order.len();
    let (x_test, y_test) = (
        images
            .rows(split..labels.len())
            .reshape(&image(labels.len() - split)),
        to_categorical::<f32>(&labels[split..], Some(10))?,
    );

    // Every rank resumes from the same file; fit checks that they agree (a rank that found
    // no file, or another one, would differ in its epochs or weights' shapes).
    let resume = checkpoint
        .as_ref()
        .filter(|p| std::path::Path::new(p).exists());
    let mut model = match resume {
        Some(path) => Sequential::<f32>::load(path)?,
        None if kind == "convnet" => {
            let mut model = Sequential::with_seed(42);
            model.add(Input::new([28, 28, 1]))?;
            model.add(Conv2D::new(32, 3).activation("relu"))?;
            model.add(MaxPooling2D::new(2))?;
            model.add(Conv2D::new(64, 3).activation("relu"))?;
            model.add(MaxPooling2D::new(2))?;
            model.add(Flatten::new())?;
            model.add(Dropout::new(0.5))?;
            model.add(Dense::new(10).activation("softmax"))?;
            model.compile("adam", "categorical_crossentropy", ["accuracy"])?;
            model
        }
        None => {
            let mut model = Sequential::with_seed(42);
            model.add(Dense::new(hidden).input_dim(784).activation("relu"))?;
            model.add(Dense::new(10).activation("softmax"))?;
            model.compile("rmsprop", "categorical_crossentropy", ["accuracy"])?;
            model
        }
    };
    let initial_epoch = model.completed_epochs();
    // Checked here, before the ranks take different paths (train or not).
    let found = comm.all_gather_u64(&[initial_epoch as u64])?;
    if found.iter().any(|&e| e != found[0]) {
        return Err(format!(
            "the ranks found checkpoints of different epochs ({found:?} by rank); every rank \
             must read the same file"
        )
        .into());
    }
    model.distribute(comm);
    if rank == 0 {
        println!("{kind}: {n} training images on {size} rank(s), batch 128");
        if initial_epoch > 0 {
            println!("resuming after epoch {initial_epoch}");
        }
    }
    let losses = Arc::new(Mutex::new(Vec::new()));
    let epoch_seconds = Arc::new(Mutex::new(Vec::new()));
    let mut callbacks: Vec<Box<dyn Callback>> = vec![
        Box::new(StepLosses(Arc::clone(&losses))),
        Box::new(EpochSeconds(Arc::clone(&epoch_seconds), None)),
    ];
    if let Some(path) = &checkpoint {
        callbacks.push(Box::new(ModelCheckpoint::new(path.clone())));
    }
    if let Some(at) = kill_at {
        callbacks.push(Box::new(KillAtEpoch { at, rank }));
    }
    let start = Instant::now();
    // A checkpoint of a finished run has nothing left to train.
    let trained = if initial_epoch < epochs {
        let history = model.fit(
            &x,
            &y,
            FitOptions {
                epochs,
                batch_size: 128,
                validation_data: Some((x_test.clone(), y_test.clone())),
                verbose: 2,
                initial_epoch,
                callbacks,
                ..Default::default()
            },
        )?;
        history.len()
    } else {
        0
    };
    let seconds = start.elapsed().as_secs_f64();
    if fail_on == Some(rank) {
        // The other ranks go on into the next fit's collectives, which never complete.
        return Err(format!("rank {rank} fails on purpose (--fail-on-rank)").into());
    }
    // Every rank evaluates its share of the test images; the figures are the global ones.
    let test = model.evaluate_batched(&x_test, &y_test, 128)?;
    if rank == 0 {
        println!(
            "trained {trained} epochs in {seconds:.2} s; test accuracy {:.4}",
            test.get("accuracy").unwrap_or(f64::NAN)
        );
        let times: Vec<String> = epoch_seconds
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{s:.3}"))
            .collect();
        println!(
            "epoch seconds (training and validation): {}",
            times.join(" ")
        );
        if let Some(path) = record {
            let weights: Vec<Vec<f32>> = model.get_weights().iter().map(|w| w.to_vec()).collect();
            let json = serde_json::json!({
                "losses": *losses.lock().unwrap(),
                "weights": weights,
            });
            std::fs::write(&path, json.to_string())?;
        }
    }
    Ok(())
}

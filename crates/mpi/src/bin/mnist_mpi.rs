//! The MNIST MLP (784 -> Dense 512 relu -> Dense 10 softmax, RMSprop, batch 128) trained
//! data-parallel over MPI on the bundled digits (first 8,000 for training, last 2,000 for
//! testing): each rank takes its share of every batch, and the run ends with the weights one
//! process reaches.
//!
//! ```sh
//! cargo build --release --manifest-path crates/mpi/Cargo.toml
//! mpirun -np 2 --bind-to none crates/mpi/target/release/mnist_mpi --epochs 5
//! ```
//!
//! Options: `--epochs N` (default 5), `--rows N` training rows (default all 8,000),
//! `--hidden N` units (default 512), `--record FILE`: rank 0 writes every step's loss and
//! the final weights there as JSON (what the tests compare with one process);
//! `--fail-on-rank R`: rank R returns an error after its first epoch (what the tests use
//! to show that one rank's error ends the whole job).

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

fn main() -> std::process::ExitCode {
    brick_mpi::run(train)
}

fn train(comm: Arc<dyn Communicator>) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(5);
    let hidden: usize = brick::flag(&args, "--hidden")?.unwrap_or(512);
    let rows: Option<usize> = brick::flag(&args, "--rows")?;
    let record: Option<String> = brick::flag(&args, "--record")?;
    let fail_on: Option<usize> = brick::flag(&args, "--fail-on-rank")?;
    let (rank, size) = (comm.rank(), comm.size());

    let images = load_mnist_images::<f32>(brick::data_path("mnist-10k-images-idx3-ubyte.gz"))?;
    let labels = load_mnist_labels(brick::data_path("mnist-10k-labels-idx1-ubyte.gz"))?;
    let split = labels.len() * 4 / 5;
    let n = rows.unwrap_or(split).min(split);
    let (x, y) = (
        images.rows(0..n),
        to_categorical::<f32>(&labels[..n], Some(10))?,
    );
    let (x_test, y_test) = (
        images.rows(split..labels.len()),
        to_categorical::<f32>(&labels[split..], Some(10))?,
    );

    let mut model = Sequential::with_seed(42);
    model.add(Dense::new(hidden).input_dim(784).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile("rmsprop", "categorical_crossentropy", ["accuracy"])?;
    model.distribute(comm);
    if rank == 0 {
        println!("{n} training images on {size} rank(s), batch 128");
    }
    let losses = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let history = model.fit(
        &x,
        &y,
        FitOptions {
            epochs,
            batch_size: 128,
            validation_data: Some((x_test.clone(), y_test.clone())),
            verbose: 2,
            callbacks: vec![Box::new(StepLosses(Arc::clone(&losses)))],
            ..Default::default()
        },
    )?;
    let seconds = start.elapsed().as_secs_f64();
    if fail_on == Some(rank) {
        // The other ranks go on into the next fit's collectives, which never complete.
        return Err(format!("rank {rank} fails on purpose (--fail-on-rank)").into());
    }
    // Every rank evaluates its share of the test images; the figures are the global ones.
    let test = model.evaluate_batched(&x_test, &y_test, 128)?;
    if rank == 0 {
        println!(
            "trained {} epochs in {seconds:.2} s; test accuracy {:.4}",
            history.len(),
            test.get("accuracy").unwrap_or(f64::NAN)
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

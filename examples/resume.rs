//! Training that survives being killed: a checkpoint after every epoch, and on restart the
//! run picks up from the last one and ends with exactly the weights an uninterrupted run
//! reaches (same seed, same shuffles, the optimizer's state restored).
//!
//! The model is the Iris classifier (4 -> Dense relu -> Dense 3 softmax, Adam, batch 8).
//! Each epoch saves `DIR/checkpoint.safetensors` (atomically: a kill at any moment leaves the
//! previous checkpoint whole); at the end the final weights go to `DIR/final.safetensors`.
//!
//! ```sh
//! cargo run --release --example resume -- --dir /tmp/run --epochs 3000  # Ctrl-C it midway...
//! cargo run --release --example resume -- --dir /tmp/run --epochs 3000  # ...it goes on from there
//! ```
//!
//! Options: `--epochs N` (default 60), `--hidden N` units (default 16).

use std::path::{Path, PathBuf};

use brick::prelude::*;

/// The checkpoint written after every epoch.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

/// The weights written when training is complete.
pub fn final_path(dir: &Path) -> PathBuf {
    dir.join("final.safetensors")
}

/// What one call of [`run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ran {
    /// Epochs the directory's checkpoint already held (0 for a fresh directory).
    pub found: usize,
    /// Epochs this call trained.
    pub trained: usize,
}

/// Trains for `epochs` epochs in `dir`, resuming from its checkpoint if there is one.
pub fn run(dir: &Path, epochs: usize, hidden: usize) -> Result<Ran, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let iris = read_csv::<f32>(brick::data_path("iris.csv"), "species")?;
    let (classes, labels) = iris.class_labels();
    let y = to_categorical::<f32>(&labels, Some(classes.len()))?;
    let (_, x) = StandardScaler::fit_transform(&iris.features)?;

    let checkpoint = checkpoint_path(dir);
    let mut model = if checkpoint.exists() {
        Sequential::<f32>::load(&checkpoint)?
    } else {
        let mut model = Sequential::with_seed(42);
        model.add(Dense::new(hidden).input_dim(4).activation("relu"))?;
        model.add(Dense::new(classes.len()).activation("softmax"))?;
        model.compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"])?;
        model
    };
    let start = model.completed_epochs();
    if start < epochs {
        model.fit(
            &x,
            &y,
            FitOptions {
                epochs,
                initial_epoch: start,
                batch_size: 8,
                verbose: 0,
                callbacks: vec![Box::new(ModelCheckpoint::new(
                    checkpoint.display().to_string(),
                ))],
                ..Default::default()
            },
        )?;
    }
    model.save_weights(final_path(dir))?;
    Ok(Ran {
        found: start,
        trained: epochs - start.min(epochs),
    })
}

/// What a run prints: the epochs it trained and where the weights are, or, when the
/// directory already held a finished run, that nothing was left to do and what to change.
pub fn report(dir: &Path, ran: Ran, epochs: usize) -> String {
    let Ran { found, trained } = ran;
    if trained == 0 {
        let held = if found == epochs {
            format!("a finished run of {epochs} epochs")
        } else {
            format!("a run of {found} epochs, more than the {epochs} asked for")
        };
        return format!(
            "already done: {} holds {held}, so nothing was trained; give --epochs above \
             {found} to train on, or a new --dir to start again",
            dir.display()
        );
    }
    format!(
        "trained {trained} epochs (epochs {} to {epochs}); final weights in {}",
        found + 1,
        final_path(dir).display()
    )
}

fn main() -> std::process::ExitCode {
    brick::run_main(try_main)
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let dir = PathBuf::from(arg("--dir").ok_or("give --dir DIR for the checkpoints")?);
    let epochs: usize = brick::flag(&args, "--epochs")?.unwrap_or(60);
    let hidden: usize = brick::flag(&args, "--hidden")?.unwrap_or(16);
    let ran = run(&dir, epochs, hidden)?;
    println!("{}", report(&dir, ran, epochs));
    Ok(())
}

//! Crash safety, end to end: a training process (the `resume` example's `run`, in a child
//! process) is killed with SIGKILL again and again while it trains and writes checkpoints;
//! after every kill its checkpoint loads whole, each restart resumes from it, and the run
//! ends with exactly (bit for bit) the weights of a run that was never interrupted.
//!
//! The child is this test binary itself, running the ignored `training_process` entry: it
//! needs no other build step, whatever `cargo test` filter runs this file.

#[path = "../examples/resume.rs"]
#[allow(dead_code)]
mod resume;

mod common;
use common::scratch;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brick::prelude::*;

const EPOCHS: usize = 40;
/// Wide enough that a checkpoint (weights and Adam's two moments) takes a while to write.
const HIDDEN: usize = 1024;
/// Kills before the last restart is left to finish.
const KILLS: usize = 24;

/// Variable naming the checkpoint directory of the child process.
const CHILD_DIR: &str = "BRICK_RESUME_TEST_DIR";

/// Not a test on its own: the training process that the test below starts and kills (this
/// binary, run with `--ignored --exact training_process`).
#[test]
#[ignore = "the child process of killed_runs_resume_to_the_weights_of_an_uninterrupted_run"]
fn training_process() {
    let dir = std::env::var(CHILD_DIR).expect("run by the resume test, which sets the directory");
    resume::run(Path::new(&dir), EPOCHS, HIDDEN).unwrap();
}

/// Starts the training process on `dir`.
fn spawn_training(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "training_process",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The temporary files (of interrupted writes) in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// The final weights saved in `dir`.
fn final_weights(dir: &Path) -> Vec<Tensor> {
    let mut m = Sequential::<f32>::default();
    m.add(Dense::new(HIDDEN).input_dim(4)).unwrap();
    m.add(Dense::new(3)).unwrap();
    m.load_weights(resume::final_path(dir)).unwrap();
    m.get_weights()
}

#[test]
fn killed_runs_resume_to_the_weights_of_an_uninterrupted_run() {
    let whole = scratch("whole");
    let clock = Instant::now();
    assert_eq!(resume::run(&whole, EPOCHS, HIDDEN).unwrap().trained, EPOCHS);
    let run_time = clock.elapsed();
    let expected = final_weights(&whole);

    let dir = scratch("killed");
    let (mut kills, mut mid_write, mut resumed_from) = (0, 0, Vec::new());
    // Kill after delays that vary (fractions of an uninterrupted run, a fixed sequence), so
    // that the kills land in every phase: starting up, training, writing a checkpoint.
    let fractions = [
        0.02, 0.08, 0.05, 0.11, 0.03, 0.09, 0.06, 0.12, 0.04, 0.07, 0.10, 0.01,
    ];
    let started = Instant::now();
    let mut finished = false;
    for round in 0..KILLS * 4 {
        let before = if resume::checkpoint_path(&dir).exists() {
            // Whatever moment the last kill hit, the checkpoint on disk is whole.
            let m = Sequential::<f32>::load(resume::checkpoint_path(&dir)).unwrap_or_else(|e| {
                panic!("after kill {kills}, the checkpoint does not load: {e}")
            });
            m.completed_epochs()
        } else {
            0
        };
        resumed_from.push(before);
        let mut child = spawn_training(&dir);
        if kills < KILLS {
            std::thread::sleep(run_time.mul_f64(fractions[round % fractions.len()]));
        } else {
            // Enough kills: let this run finish.
            let status = child.wait().unwrap();
            assert!(status.success(), "the last run failed: {status}");
            finished = true;
            break;
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "the example failed: {status}");
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                // A temporary file now means the kill landed inside a checkpoint write.
                mid_write += temporaries(&dir).len();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run does not finish"
        );
    }
    eprintln!(
        "{kills} kills, {mid_write} of them inside a checkpoint write; restarts resumed from epochs {resumed_from:?}"
    );
    assert!(
        finished,
        "not finished after {kills} kills (resumed from {resumed_from:?})"
    );
    assert!(
        kills >= 3,
        "only {kills} kills: the test did not interrupt training"
    );
    assert!(
        resumed_from.iter().any(|&e| e > 0 && e < EPOCHS),
        "never resumed from a mid-run checkpoint: {resumed_from:?}"
    );
    assert_eq!(
        final_weights(&dir),
        expected,
        "after {kills} kills, resumed from {resumed_from:?}"
    );
    // Temporary files of the killed writers were cleared by later saves (on Linux, where
    // /proc tells which writers are gone).
    let leftovers = temporaries(&dir);
    assert!(
        leftovers.is_empty() || !cfg!(target_os = "linux"),
        "{leftovers:?}"
    );
    std::fs::remove_dir_all(&whole).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_finished_run_restarted_trains_nothing_more() {
    let dir = scratch("again");
    let first = resume::run(&dir, 3, 8).unwrap();
    assert_eq!(
        first,
        resume::Ran {
            found: 0,
            trained: 3
        }
    );
    let said = resume::report(&dir, first, 3);
    assert!(
        said.starts_with("trained 3 epochs (epochs 1 to 3)"),
        "{said}"
    );
    let again = resume::run(&dir, 3, 8).unwrap();
    assert_eq!(
        again,
        resume::Ran {
            found: 3,
            trained: 0
        }
    );
    // The second run says the directory was already done, rather than "trained 0 epochs".
    let said = resume::report(&dir, again, 3);
    assert!(
        said.starts_with("already done:")
            && said.contains("a finished run of 3 epochs")
            && said.contains("--epochs above 3"),
        "{said}"
    );
    // Asked for fewer epochs than the directory holds, it says how many it holds.
    let fewer = resume::run(&dir, 2, 8).unwrap();
    assert_eq!(
        fewer,
        resume::Ran {
            found: 3,
            trained: 0
        }
    );
    let said = resume::report(&dir, fewer, 2);
    assert!(
        said.contains("a run of 3 epochs, more than the 2 asked for"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

//! `mpirun -np 2` against one process: the same step losses and final weights; a rank
//! killed with SIGKILL ends the whole job quickly with a non-zero exit, and the job resumes
//! from its last checkpoint to the weights of an uninterrupted run.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mnist_mpi");

/// `mpirun -np N` with what Open MPI needs here: as root, in a container (no
/// single-copy shared memory), and with each rank free to use every core.
fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "-np",
        &np.to_string(),
        "--bind-to",
        "none",
        "--oversubscribe",
    ])
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    .arg(BIN);
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("brick-mpi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(path: &PathBuf) -> (Vec<f64>, Vec<Vec<f64>>) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let weights = v["weights"].as_array().unwrap().iter().map(nums).collect();
    (nums(&v["losses"]), weights)
}

/// Trains with `args` as one process and with `mpirun -np 2`; both runs' step losses and
/// final weights.
type Run = (Vec<f64>, Vec<Vec<f64>>);
fn alone_and_on_two_ranks(name: &str, args: &[&str]) -> (Run, Run) {
    let dir = scratch(name);
    let (one, two) = (dir.join("one.json"), dir.join("two.json"));
    let alone = Command::new(BIN)
        .args(args)
        .arg("--record")
        .arg(&one)
        .output()
        .unwrap();
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let ranks = mpirun(2)
        .args(args)
        .arg("--record")
        .arg(&two)
        .output()
        .unwrap();
    assert!(
        ranks.status.success(),
        "{}",
        String::from_utf8_lossy(&ranks.stderr)
    );
    assert!(String::from_utf8_lossy(&ranks.stdout).contains("on 2 rank(s)"));
    let out = (read(&one), read(&two));
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

fn assert_close(((la, wa), (lb, wb)): &(Run, Run), steps: usize) {
    assert_eq!(la.len(), steps);
    assert_eq!(la.len(), lb.len());
    for (a, b) in la.iter().zip(lb) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "step loss {b} against {a}");
    }
    // Weights agree to 1e-5 relative to each tensor's largest weight (the norm-wise
    // relative error in the max norm): a weight that happens to sit near zero carries the
    // rounding of its tensor's scale, not of its own.
    assert_eq!(wa.len(), wb.len());
    for (i, (a, b)) in wa.iter().zip(wb).enumerate() {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-5 * scale,
                "weight {y} against {x} in tensor {i} (largest {scale})"
            );
        }
    }
}

#[test]
fn two_ranks_reach_the_numbers_of_one_process() {
    // 1,000 rows in batches of 128: 7 full batches and one of 104, over 2 epochs.
    let runs = alone_and_on_two_ranks(
        "equal",
        &["--epochs", "2", "--rows", "1000", "--hidden", "64"],
    );
    assert_close(&runs, 16);
}

#[test]
fn the_convnet_with_dropout_on_two_ranks_reaches_the_numbers_of_one_process() {
    // Dropout's masks are keyed by each row's place in the global batch. 300 rows: 2 full
    // batches and one of 44.
    let runs = alone_and_on_two_ranks(
        "convnet",
        &["--model", "convnet", "--epochs", "1", "--rows", "300"],
    );
    assert_close(&runs, 3);
}

#[test]
fn a_killed_rank_ends_the_job_within_seconds() {
    let mut job = mpirun(2)
        .args(["--epochs", "1000", "--hidden", "64"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for both ranks to be running (children of mpirun), then kill one.
    let started = Instant::now();
    let ranks = loop {
        let out = Command::new("pgrep")
            .args(["-P", &job.id().to_string()])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if pids.len() >= 2 {
            break pids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ranks never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    Command::new("kill")
        .args(["-KILL", &ranks[1]])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(20) {
            job.kill().unwrap();
            panic!("the job still ran 20 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    eprintln!(
        "the job ended {:.2} s after the kill ({status:?})",
        killed.elapsed().as_secs_f64()
    );
}

#[test]
fn an_error_on_one_rank_ends_the_job_at_once() {
    // Rank 1 returns an error after training while rank 0 waits in the evaluation's sum:
    // `brick_mpi::run` aborts the job rather than leave rank 0 waiting.
    let started = Instant::now();
    let out = mpirun(2)
        .args([
            "--epochs",
            "1",
            "--rows",
            "500",
            "--hidden",
            "16",
            "--fail-on-rank",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rank 1: error: rank 1 fails on purpose"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_job_killed_midway_resumes_from_its_checkpoint_to_the_uninterrupted_weights() {
    let dir = scratch("resume");
    let (whole, resumed) = (dir.join("whole.json"), dir.join("resumed.json"));
    let (ckpt_a, ckpt_b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let args = ["--epochs", "4", "--rows", "1000", "--hidden", "32"];
    let run = |extra: &[&std::ffi::OsStr]| mpirun(2).args(args).args(extra).output().unwrap();
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Uninterrupted: 4 epochs.
    ok(&run(&[
        "--checkpoint".as_ref(),
        ckpt_a.as_os_str(),
        "--record".as_ref(),
        whole.as_os_str(),
    ]));
    // Killed: rank 1 sends itself SIGKILL as epoch 3 (index 2) begins.
    let killed = run(&[
        "--checkpoint".as_ref(),
        ckpt_b.as_os_str(),
        "--kill-at-epoch".as_ref(),
        "2".as_ref(),
    ]);
    assert!(!killed.status.success(), "{:?}", killed.status);
    assert!(
        !String::from_utf8_lossy(&killed.stdout).contains("trained "),
        "the job went on after the kill"
    );
    // The checkpoint is whole and holds the 2 epochs completed before the kill.
    let model = brick::nn::Sequential::<f32>::load(&ckpt_b).unwrap();
    assert_eq!(model.completed_epochs(), 2);
    // Resumed: epochs 3 and 4, from the checkpoint.
    let out = run(&[
        "--checkpoint".as_ref(),
        ckpt_b.as_os_str(),
        "--record".as_ref(),
        resumed.as_os_str(),
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch 2"));
    let ((la, wa), (lb, wb)) = (read(&whole), read(&resumed));
    // 8 steps per epoch: the resumed run's 16 steps are the last 16 of the whole run's 32.
    assert_eq!((la.len(), lb.len()), (32, 16));
    assert_eq!(lb, la[16..], "the resumed step losses");
    assert_eq!(wb, wa, "the final weights");
    std::fs::remove_dir_all(&dir).unwrap();
}

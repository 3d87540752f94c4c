//! Atomic saving under SIGKILL: a process rewrites a 4 MB file over and over with
//! `nn::io::write_atomic`, alternating two contents, and is killed at many different moments;
//! after every kill the file is exactly one of the two, never a mix or a truncation.
//!
//! The writer is this test binary itself, running the ignored `writer_process` entry.

mod common;
use common::scratch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SIZE: usize = 4 << 20;
const CHILD_FILE: &str = "BRICK_ATOMIC_TEST_FILE";

/// Content `i`: every byte is `i`.
fn content(i: u8) -> Vec<u8> {
    vec![i; SIZE]
}

/// Not a test on its own: the writer that the test below starts and kills.
#[test]
#[ignore = "the child process of kills_during_writes_leave_the_old_or_the_new_file_whole"]
fn writer_process() {
    let path = PathBuf::from(std::env::var(CHILD_FILE).expect("run by the atomic-writes test"));
    let (a, b) = (content(b'a'), content(b'b'));
    for i in 0.. {
        nn::io::write_atomic(&path, if i % 2 == 0 { &a } else { &b }).unwrap();
    }
}

fn check_whole(path: &Path, kill: usize) -> u8 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len(), SIZE, "after kill {kill}: a truncated file");
    let first = bytes[0];
    assert!(
        first == b'a' || first == b'b',
        "after kill {kill}: unknown content"
    );
    assert!(
        bytes.iter().all(|&v| v == first),
        "after kill {kill}: a mix of two writes"
    );
    first
}

#[test]
fn kills_during_writes_leave_the_old_or_the_new_file_whole() {
    let dir = scratch("atomic");
    let path = dir.join("weights.bin");
    nn::io::write_atomic(&path, &content(b'a')).unwrap();
    let mut seen = Vec::new();
    for kill in 0..20 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "writer_process", "--test-threads=1"])
            .env(CHILD_FILE, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + (kill as u64 * 37) % 90));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        seen.push(check_whole(&path, kill));
    }
    // The writer made progress between kills (both contents were seen on disk).
    assert!(seen.contains(&b'a') && seen.contains(&b'b'), "{seen:?}");
    // The next write clears what killed writers left behind (on Linux, where /proc tells
    // which writers are gone).
    nn::io::write_atomic(&path, &content(b'a')).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if cfg!(target_os = "linux") {
        assert_eq!(names, vec![std::ffi::OsString::from("weights.bin")]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

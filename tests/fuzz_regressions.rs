//! Inputs from fuzzing (`fuzz/`), replayed on every test run: each file under
//! `tests/fuzz/<target>/` goes through the same entry point as the fuzz target of that name
//! and must give a result or an error, not a panic. Any input that ever crashed a target is
//! kept here, with small inputs from the fuzzers' corpora that reach the readers' edge cases.

use std::path::{Path, PathBuf};

use brick::prelude::*;

/// The committed inputs for `target`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Runs `f` on every input of `target`; returns how many were accepted.
fn replay(target: &str, f: impl Fn(&[u8]) -> bool) -> usize {
    let mut accepted = 0;
    for path in inputs(target) {
        let bytes = std::fs::read(&path).unwrap();
        // Nothing is reused after a panic: the test fails at once.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&bytes)));
        match outcome {
            Ok(ok) => accepted += ok as usize,
            Err(_) => panic!("{} panics", path.display()),
        }
    }
    accepted
}

#[test]
fn idx_inputs() {
    replay("idx", |b| {
        brick::data::decode_idx(b, Path::new("fuzz.idx")).is_ok()
    });
}

#[test]
fn csv_inputs() {
    replay("csv", |b| {
        let text = String::from_utf8_lossy(b);
        let source = Path::new("fuzz.csv");
        let a = brick::data::parse_csv::<f32>(&text, "y", source).is_ok();
        let b = brick::data::parse_csv::<f64>(&text, "species", source).is_ok();
        a || b
    });
}

#[test]
fn weights_inputs() {
    replay("weights", |b| {
        let mut model = Sequential::<f32>::with_seed(0);
        model.add(Dense::new(3).input_dim(2)).unwrap();
        model.add(Dense::new(1)).unwrap();
        let before = model.get_weights();
        let ok = model.load_weights_from_bytes(b).is_ok();
        if !ok {
            assert_eq!(
                model.get_weights(),
                before,
                "a rejected file changed the model"
            );
        }
        ok
    });
}

#[test]
fn model_file_inputs() {
    replay("model_file", |b| {
        Sequential::<f32>::load_from_bytes(b).is_ok()
    });
}

#[test]
fn config_inputs() {
    replay("config", |b| {
        Sequential::<f32>::from_json(&String::from_utf8_lossy(b)).is_ok()
    });
}

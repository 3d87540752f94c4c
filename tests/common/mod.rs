//! Helpers shared by the cross-crate tests.

// Each test file uses only some of them.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh, empty directory for one test's files (unique per process, test and call).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "brick-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("a writable temporary directory");
    dir
}

/// A Keras reference file from `tests/fixtures/` (made by the scripts in `tools/`).
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture exists"))
        .expect("the fixture is JSON")
}

/// A tensor as the fixtures write one: `{"shape": [...], "data": [...]}`.
pub fn tensor(v: &serde_json::Value) -> brick::tensor::Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    brick::tensor::Tensor::from_vec(data, &shape).unwrap()
}

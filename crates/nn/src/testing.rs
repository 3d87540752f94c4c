//! Helpers shared by `nn`'s unit tests.

use std::path::PathBuf;

use tensor::Tensor;

/// A fresh, empty directory for one test's files (unique per process, test and call).
pub(crate) fn scratch(name: &str) -> PathBuf {
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

/// The four XOR points and their targets, `[4, 2]` and `[4, 1]`.
pub(crate) fn xor() -> (Tensor, Tensor) {
    (
        Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap(),
        Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[4, 1]).unwrap(),
    )
}

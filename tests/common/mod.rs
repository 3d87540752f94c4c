//! Helpers shared by the cross-crate tests.

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

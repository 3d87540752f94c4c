//! Writing files so that a crash never leaves a half-written one: [`write_atomic`].

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory, flushed
/// and synced to disk, then renamed over `path` (and the directory synced, so that the rename
/// itself survives a power cut). A process killed at any moment leaves either the old file
/// or the new one, whole; never a mix, never a truncated file. On an error the temporary file
/// is removed and `path` is untouched.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("brick-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.txt");
/// nn::io::write_atomic(&path, b"first").unwrap();
/// nn::io::write_atomic(&path, b"second").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"second");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// [`Error::Io`] naming the path, if the directory does not exist or is not writable, or the
/// disk is full.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory, not a file",
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temporaries(path, &dir);
    let temp = temp_path(path, &dir);
    let written = (|| {
        // `create_new`: never follow or reuse a file someone else left at that name.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        // The rename is an entry in the directory: sync that too.
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io(e));
    }
    Ok(())
}

/// Removes the temporary files of `path` left by processes that were killed mid-write (their
/// pid no longer runs). Only on Linux, where `/proc` tells which processes run; elsewhere
/// such files stay (they are hidden, and never mistaken for the target).
fn remove_stale_temporaries(path: &Path, dir: &Path) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('.').next().map(str::parse::<u32>) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A fresh name next to `path`: `.{name}.{pid}.{n}.tmp`, hidden, and unique per process and
/// call, so that concurrent writers never share a temporary file.
fn temp_path(path: &Path, dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::scratch;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = scratch("replace");
        let path = dir.join("w.bin");
        write_atomic(&path, b"old contents").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("w.bin")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn temporaries_of_killed_writers_are_cleared_and_others_kept() {
        let dir = scratch("stale");
        let path = dir.join("m.bin");
        // A pid that cannot run (above the kernel's maximum), one that does (ours), and a
        // file of another target.
        let dead = dir.join(".m.bin.4294967294.0.tmp");
        let ours = dir.join(format!(".m.bin.{}.99.tmp", std::process::id()));
        let other = dir.join(".n.bin.4294967294.0.tmp");
        for f in [&dead, &ours, &other] {
            fs::write(f, b"partial").unwrap();
        }
        write_atomic(&path, b"whole").unwrap();
        assert!(!dead.exists());
        assert!(ours.exists() && other.exists());
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_path_and_change_nothing() {
        let dir = scratch("errors");
        let missing = dir.join("no-such-dir").join("w.bin");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains("no-such-dir"), "{e}");
        assert!(!missing.exists());
        // A directory is not overwritten.
        let e = write_atomic(&dir, b"x").unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        assert!(dir.is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_directory_is_an_error_and_the_old_file_stays() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("readonly");
        let path = dir.join("w.bin");
        write_atomic(&path, b"old").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        let result = write_atomic(&path, b"new");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        match result {
            Err(e) => {
                assert!(e.to_string().contains("w.bin"), "{e}");
                assert_eq!(fs::read(&path).unwrap(), b"old");
            }
            // Root ignores directory permissions; sysfs refuses new files even to root.
            Ok(()) if Path::new("/sys/kernel").is_dir() => {
                let e = write_atomic("/sys/kernel/brick-test.bin", b"x").unwrap_err();
                assert!(e.to_string().contains("brick-test.bin"), "{e}");
            }
            Ok(()) => {}
        }
        // A parent that is a file, not a directory.
        let e = write_atomic(path.join("inner.bin"), b"x").unwrap_err();
        assert!(e.to_string().contains("inner.bin"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

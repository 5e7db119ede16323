//! Atomic file writes: the new content goes to a temporary file beside the target (`<file>.tmp`),
//! is synced, and is renamed over the target, so a crash leaves the old or the new version, never
//! half of one. The one place the crate replaces a file it owns.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Suffix of the temporary file (a leftover of a crash mid-write carries it).
pub const TEMP_SUFFIX: &str = ".tmp";
/// Mode of a file anyone may read (before the umask, as `std::fs::write`).
pub const SHARED_MODE: u32 = 0o666;
/// Mode of a file only its owner may read (secrets, worker properties).
pub const PRIVATE_MODE: u32 = 0o600;

/// The temporary file `path`'s new content is written to.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut temp = path.as_os_str().to_owned();
    temp.push(TEMP_SUFFIX);
    PathBuf::from(temp)
}

/// Replaces `path` with `bytes` atomically; a new file gets `mode`. On failure the temporary
/// file is removed and `path` is as it was.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let temp = temp_path(path);
    let write = || -> std::io::Result<()> {
        // A leftover from a crash may have other permissions: start afresh.
        match std::fs::remove_file(&temp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_with_the_mode_asked_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(temp_path(&path), "leftover of a crash").unwrap();
        write_atomic(&path, b"one", PRIVATE_MODE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write_atomic(&path, b"two", PRIVATE_MODE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert!(!temp_path(&path).exists());
        assert_eq!(temp_path(&path), dir.path().join("a.json.tmp"));
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty folder: the rename fails after the temp was written.
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        assert!(write_atomic(&path, b"new", SHARED_MODE).is_err());
        assert!(path.join("inside").exists());
        assert!(!temp_path(&path).exists());
        let missing = dir.path().join("no/such/folder/file");
        assert!(write_atomic(&missing, b"new", SHARED_MODE).is_err());
    }
}

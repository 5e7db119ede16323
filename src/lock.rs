//! Exclusive department locks: one supervisor per department on a host.
//!
//! A supervisor kills leftovers of its department at start (processes in its cgroup folder,
//! workers recorded in its state folder). Without a lock, a second supervisor of the same
//! department would take the live workers of the first for leftovers and kill them. So each
//! supervisor holds an exclusive `flock(2)` on its state folder's [`STATE_LOCK_FILE`] and on its
//! department's cgroup folder(s) for its whole life, taken before any cleanup. The kernel drops a
//! `flock` when its holder dies, SIGKILL included, so a lock can never be stale, and whatever is
//! found under a lock just taken was left by a dead owner.
//!
//! The holder of a lock is named by its pid, read from `/proc/locks` (which lists the pid of
//! every `flock` by device and inode), so the refusal says whom to stop.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The lock file in a supervisor's state folder (it also holds the holder's pid, for humans).
pub const STATE_LOCK_FILE: &str = "supervisor.lock";
/// Where the kernel lists the file locks of the host.
pub const PROC_LOCKS: &str = "/proc/locks";

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "department \"{department}\" is already supervised on this host by {} (it holds the lock \
         on {path}); stop that supervisor first, or run this one for another department",
        holder.map(|p| format!("pid {p}")).unwrap_or_else(|| "another process (pid not found in /proc/locks)".into())
    )]
    Held {
        /// The department.
        department: String,
        /// The locked file or folder.
        path: PathBuf,
        /// The holder's pid, when `/proc/locks` names it.
        holder: Option<u32>,
    },
    /// The file or folder could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl LockError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Held { .. } => "department_locked",
            Self::Io { .. } => "lock_io",
        }
    }
}

/// Exclusive locks held until dropped (or until the process dies).
#[derive(Debug, Default)]
pub struct DepartmentLock {
    held: Vec<(PathBuf, Flock<File>)>,
}

impl DepartmentLock {
    /// Locks the state folder `dir` of `department` (created if needed) through its
    /// [`STATE_LOCK_FILE`], and records this process's pid in it.
    pub fn state_dir(department: &str, dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(STATE_LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
        let mut lock = Self::default();
        lock.take(department, &path, file)?;
        // For humans reading the folder; the kernel's lock is what counts.
        if let Some((_, held)) = lock.held.last() {
            use std::io::{Seek, Write};
            let mut f: &File = held;
            let _ = f.set_len(0);
            let _ = f.seek(io::SeekFrom::Start(0));
            let _ = writeln!(f, "{}", std::process::id());
        }
        Ok(lock)
    }

    /// Locks each folder of `dirs` (they must exist), e.g. the department's cgroup folders.
    pub fn folders(department: &str, dirs: &[PathBuf]) -> Result<Self, LockError> {
        let mut lock = Self::default();
        for dir in dirs {
            let file = File::open(dir).map_err(|source| LockError::Io {
                path: dir.clone(),
                source,
            })?;
            lock.take(department, dir, file)?;
        }
        Ok(lock)
    }

    /// The locked paths.
    pub fn paths(&self) -> Vec<&Path> {
        self.held.iter().map(|(p, _)| p.as_path()).collect()
    }

    fn take(&mut self, department: &str, path: &Path, file: File) -> Result<(), LockError> {
        let meta = file.metadata().map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => {
                self.held.push((path.to_path_buf(), held));
                Ok(())
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(LockError::Held {
                department: department.to_string(),
                path: path.to_path_buf(),
                holder: std::fs::read_to_string(PROC_LOCKS)
                    .ok()
                    .and_then(|text| flock_holder(&text, meta.dev(), meta.ino())),
            }),
            Err((_, errno)) => Err(LockError::Io {
                path: path.to_path_buf(),
                source: io::Error::from(errno),
            }),
        }
    }
}

/// The pid holding a `FLOCK` on the file with device `dev` and inode `ino`, from the text of
/// `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 4242 fe:00:5308635 0 EOF`; waiters, marked `->`,
/// are skipped).
pub fn flock_holder(proc_locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let id: Vec<&str> = fields.get(5)?.split(':').collect();
        let [ma, mi, inode] = id.as_slice() else {
            return None;
        };
        let same = u32::from_str_radix(ma, 16).ok()? == major
            && u32::from_str_radix(mi, 16).ok()? == minor
            && inode.parse::<u64>().ok()? == ino;
        same.then(|| fields.get(4)?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_the_same_state_folder_is_refused_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DepartmentLock::state_dir("dept1", tmp.path()).unwrap();
        let err = DepartmentLock::state_dir("dept1", tmp.path()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.code(), "department_locked");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(
            text.contains("dept1") && text.contains(STATE_LOCK_FILE),
            "{text}"
        );
        let recorded = std::fs::read_to_string(tmp.path().join(STATE_LOCK_FILE)).unwrap();
        assert_eq!(recorded.trim(), std::process::id().to_string());
        drop(first);
        DepartmentLock::state_dir("dept1", tmp.path()).expect("free again once dropped");
    }

    #[test]
    fn folders_are_locked_one_by_one_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let held = DepartmentLock::folders("d", &[a.clone(), b.clone()]).unwrap();
        assert_eq!(held.paths(), [a.as_path(), b.as_path()]);
        let err = DepartmentLock::folders("d", std::slice::from_ref(&b)).unwrap_err();
        assert!(
            matches!(err, LockError::Held { ref path, .. } if *path == b),
            "{err}"
        );
        drop(held);
        assert!(DepartmentLock::folders("d", &[a, b]).is_ok());
    }

    #[test]
    fn the_holder_is_read_from_proc_locks_by_device_and_inode() {
        let dev = libc::makedev(0xfe, 0);
        let text = "1: FLOCK  ADVISORY  WRITE 4242 fe:00:5308635 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 999 fe:00:5308635 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 77 fe:00:10 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 88 00:1d:17 0 EOF\n";
        assert_eq!(flock_holder(text, dev, 5_308_635), Some(4242));
        assert_eq!(flock_holder(text, libc::makedev(0, 0x1d), 17), Some(88));
        assert_eq!(
            flock_holder(text, dev, 10),
            None,
            "POSIX locks are not ours"
        );
        assert_eq!(flock_holder(text, dev, 1), None);
    }
}

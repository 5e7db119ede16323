//! cgroup enforcement of worker limits: a small driver trait with a v1 driver, a v2 driver (its
//! root injectable, so its file protocol is tested on a temporary tree) and a no-op driver that
//! reports `enforcement: none`.
//!
//! Layout: every worker gets its own leaf `<own>/connect-supervisor/<department>/<worker>`, where
//! `<own>` is the supervisor's own cgroup read from `/proc/self/cgroup` (per hierarchy on v1: the
//! memory cgroup may be nested while cpu is at the root). The driver never writes outside
//! `<own>`: names are validated and every path is checked to lie inside it. A per-department
//! parent means two departments (or two tests) never touch each other's cgroups, and a restarted
//! supervisor can find and clean its own leftovers.
//!
//! This module owns cgroupfs files and nothing else: it does not decide when workers start or
//! stop, and it does not spawn (the child joins its leaf between fork and exec, see
//! [`crate::process::SpawnSpec::cgroup_procs`]).
//!
//! Own driver rather than `cgroups-rs`: that crate hard-codes `/sys/fs/cgroup` as the v2 root
//! (no injectable root for tests) and its OOM notification reads v1-only files even on v2.

pub mod noop;
pub mod proc;
pub mod v1;
pub mod v2;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

pub use crate::model::{CgroupMode, CgroupStats, Enforcement};

/// Folder under the supervisor's own cgroup that holds one folder per department.
pub(crate) const BASE_DIR: &str = "connect-supervisor";
/// v2 leaf the supervisor moves itself (and every process of its cgroup) into, so its own cgroup
/// has no processes and may delegate controllers ("no internal processes" rule).
pub(crate) const SUPERVISOR_LEAF: &str = "connect-supervisor.daemon";
/// Processes of a cgroup.
pub(crate) const CGROUP_PROCS: &str = "cgroup.procs";
/// `/proc` file listing this process's cgroups.
pub(crate) const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";
/// `/proc` file listing this process's mounts.
pub(crate) const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";
/// CFS period used for every CPU quota (the kernel default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Limits of one worker's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// CPU quota in millicores (1000 = one core).
    pub cpu_millis: u32,
    /// Memory limit in bytes (no swap on top).
    pub memory_bytes: u64,
    /// Maximum processes and threads.
    pub pids: u32,
}

impl Limits {
    /// v1 `cpu.shares` for this CPU amount (1024 per core, like Kubernetes CPU requests), so
    /// under contention workers get CPU in proportion to their quotas.
    pub fn cpu_shares(&self) -> u64 {
        (u64::from(self.cpu_millis) * 1024 / 1000).clamp(2, 262_144)
    }

    /// v2 `cpu.weight` equivalent of [`Limits::cpu_shares`] (the runc/Kubernetes conversion).
    pub fn cpu_weight(&self) -> u64 {
        1 + (self.cpu_shares() - 2) * 9999 / 262_142
    }

    /// CFS quota per [`CPU_PERIOD_US`] for this CPU amount.
    pub fn cpu_quota_us(&self) -> u64 {
        (u64::from(self.cpu_millis) * CPU_PERIOD_US / 1000).max(1000)
    }
}

/// What the start-up cleanup found: leaves of an earlier supervisor of the same department.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Leaves removed.
    pub cgroups: Vec<String>,
    /// Processes killed in them.
    pub processes: usize,
}

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file or folder operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`write`, `read`, `create`, `remove`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file did not have the expected content.
    #[error("unexpected content in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// No usable cgroup hierarchy was found.
    #[error("no usable cgroup hierarchy: {0}")]
    Unavailable(String),
    /// A path would lie outside the supervisor's own cgroup.
    #[error("refusing to touch {path}: it is outside the supervisor's own cgroup {own}")]
    OutsideOwn {
        /// The path.
        path: PathBuf,
        /// The supervisor's own cgroup folder.
        own: PathBuf,
    },
    /// A department or worker name is not a safe folder name.
    #[error("\"{0}\" is not a valid cgroup name (lowercase letters, digits and dashes)")]
    InvalidName(String),
    /// A leaf still holds processes after they were killed.
    #[error("cgroup {path} still holds processes {pids:?}")]
    Busy {
        /// The leaf.
        path: PathBuf,
        /// The processes left.
        pids: Vec<u32>,
    },
    /// Another live supervisor of the department holds its cgroup folder: nothing was cleaned.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
}

impl CgroupError {
    /// Short, bounded code for metrics and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "cgroup_io",
            Self::Parse { .. } => "cgroup_parse",
            Self::Unavailable(_) => "cgroup_unavailable",
            Self::OutsideOwn { .. } => "cgroup_outside_own",
            Self::InvalidName(_) => "cgroup_invalid_name",
            Self::Busy { .. } => "cgroup_busy",
            Self::Locked(e) => e.code(),
        }
    }

    /// Whether the error means "cgroups are not ours to write" (read-only mount, no privilege):
    /// the reason to fall back to degraded mode instead of failing.
    pub fn is_not_writable(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EROFS | libc::EACCES | libc::EPERM)
            ),
            Self::Unavailable(_) => true,
            _ => false,
        }
    }
}

/// The operations the supervisor needs from a cgroup implementation, for one department.
///
/// Worker names are worker ids (`<pool>-<n>`). Every method is cheap (a few small cgroupfs
/// reads or writes) and may be called from async code.
pub trait CgroupDriver: Send + Sync + fmt::Debug {
    /// Which enforcement this driver gives.
    fn enforcement(&self) -> Enforcement;
    /// The controllers that are enforced (`cpu`, `memory`, `pids`).
    fn controllers(&self) -> Vec<&'static str>;
    /// Creates the department's parent (on v2: moves the supervisor into its own leaf and
    /// delegates the controllers first), takes the exclusive lock on it (held for the driver's
    /// life; [`CgroupError::Locked`] when another live supervisor holds it, before anything is
    /// touched), then kills and removes leftover worker leaves of an earlier, dead run of this
    /// department.
    fn prepare(&self) -> Result<Leftovers, CgroupError>;
    /// Creates (or reuses) a worker's leaf and writes its limits.
    fn create(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError>;
    /// Rewrites only the CPU quota of an existing leaf (`limits.cpu_millis`): the start-up boost
    /// raises it and drops it back. The CPU weight stays that of the worker's own limit.
    fn set_cpu_quota(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError>;
    /// Whether [`CgroupDriver::set_cpu_quota`] changes what the kernel enforces (false where
    /// someone else owns the cgroup, such as the kubelet for a pod): no start-up boost is
    /// granted, or reported, where it cannot apply.
    fn sets_cpu_quota(&self) -> bool {
        true
    }
    /// The `cgroup.procs` files a worker's process writes itself into before exec.
    fn procs_files(&self, worker: &str) -> Vec<PathBuf>;
    /// Folders of a worker's leaf (one per v1 hierarchy, one on v2).
    fn leaf_dirs(&self, worker: &str) -> Vec<PathBuf>;
    /// Usage figures of a worker's leaf.
    fn stats(&self, worker: &str) -> Result<CgroupStats, CgroupError>;
    /// Processes in a worker's leaf.
    fn pids(&self, worker: &str) -> Result<Vec<u32>, CgroupError>;
    /// Kills every process in a worker's leaf (grandchildren included).
    fn kill(&self, worker: &str) -> Result<(), CgroupError>;
    /// Removes a worker's (empty) leaf.
    fn remove(&self, worker: &str) -> Result<(), CgroupError>;
    /// Removes the department's parent once it is empty (at shutdown).
    fn remove_department(&self) -> Result<(), CgroupError>;
}

/// The driver chosen at start, and why enforcement is degraded when it is.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The driver.
    pub driver: Arc<dyn CgroupDriver>,
    /// Why the limits are not enforced (`None` when they are).
    pub degraded: Option<String>,
    /// Leaves of an earlier run found and cleaned.
    pub leftovers: Leftovers,
}

/// Picks and prepares the driver for `department` on this machine, from `/proc/self/cgroup` and
/// `/proc/self/mountinfo`.
///
/// `Auto` falls back to the no-op driver (with the reason) when cgroups are missing or not
/// writable; `Required` fails instead; `Off` never touches cgroups.
pub fn select(mode: CgroupMode, department: &str) -> Result<Selected, CgroupError> {
    if mode == CgroupMode::Off {
        return Ok(Selected {
            driver: Arc::new(noop::NoopDriver),
            degraded: Some("cgroups are off in the department file (supervision.cgroups)".into()),
            leftovers: Leftovers::default(),
        });
    }
    let attempt = detect(department).and_then(|driver| {
        let leftovers = driver.prepare()?;
        Ok((driver, leftovers))
    });
    match attempt {
        Ok((driver, leftovers)) => Ok(Selected {
            driver,
            degraded: None,
            leftovers,
        }),
        Err(e) if mode == CgroupMode::Auto && e.is_not_writable() => Ok(Selected {
            driver: Arc::new(noop::NoopDriver),
            degraded: Some(e.to_string()),
            leftovers: Leftovers::default(),
        }),
        Err(e) => Err(e),
    }
}

/// Builds the driver matching this machine's hierarchies (not prepared yet).
pub fn detect(department: &str) -> Result<Arc<dyn CgroupDriver>, CgroupError> {
    let memberships = proc::parse_memberships(&read(Path::new(PROC_SELF_CGROUP))?);
    let mounts = proc::parse_cgroup_mounts(&read(Path::new(PROC_SELF_MOUNTINFO))?);
    detect_from(&memberships, &mounts, department)
}

/// [`detect`] on parsed inputs: v1 when a v1 memory or cpu hierarchy is mounted (legacy and
/// hybrid systems), else v2.
fn detect_from(
    memberships: &[proc::Membership],
    mounts: &[proc::CgroupMount],
    department: &str,
) -> Result<Arc<dyn CgroupDriver>, CgroupError> {
    let v1_mounts: Vec<&proc::CgroupMount> = mounts
        .iter()
        .filter(|m| {
            !m.v2
                && m.controllers
                    .iter()
                    .any(|c| v1::CONTROLLERS.contains(&c.as_str()))
        })
        .collect();
    if !v1_mounts.is_empty() {
        let mut hierarchies = Vec::new();
        for mount in v1_mounts {
            let Some(member) = memberships
                .iter()
                .find(|m| m.hierarchy != 0 && m.controllers == mount.controllers)
            else {
                continue;
            };
            if mount.read_only {
                return Err(CgroupError::Io {
                    action: "write",
                    path: mount.mount_point.clone(),
                    source: io::Error::from_raw_os_error(libc::EROFS),
                });
            }
            if let Some(own) = proc::own_dir(mount, &member.path) {
                hierarchies.push(v1::Hierarchy {
                    controllers: mount.controllers.clone(),
                    own,
                });
            }
        }
        if hierarchies.is_empty() {
            return Err(CgroupError::Unavailable(
                "v1 hierarchies are mounted but this process's cgroups are not visible in them"
                    .into(),
            ));
        }
        return Ok(Arc::new(v1::V1Driver::new(hierarchies, department)?));
    }
    let mount = mounts
        .iter()
        .find(|m| m.v2)
        .ok_or_else(|| CgroupError::Unavailable("no cgroup filesystem is mounted".into()))?;
    if mount.read_only {
        return Err(CgroupError::Io {
            action: "write",
            path: mount.mount_point.clone(),
            source: io::Error::from_raw_os_error(libc::EROFS),
        });
    }
    let member = memberships
        .iter()
        .find(|m| m.hierarchy == 0)
        .ok_or_else(|| CgroupError::Unavailable("no v2 entry in /proc/self/cgroup".into()))?;
    let own = proc::own_dir(mount, &member.path).ok_or_else(|| {
        CgroupError::Unavailable(format!(
            "this process's cgroup {} is not visible under {}",
            member.path,
            mount.mount_point.display()
        ))
    })?;
    Ok(Arc::new(v2::V2Driver::new(own, department)?))
}

/// Checks that a department or worker name is a safe single folder name.
pub fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName(name.to_string()))
    }
}

// === file helpers shared by the drivers ===

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file that may be absent (a controller not enabled): `None` then.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            message: format!("expected a number, found {text:?}"),
        })
}

/// Writes `value` to a cgroup interface file. Created when missing, which only happens on the
/// temporary trees of the tests: the kernel's cgroupfs has every interface file already.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Appends one pid to a `cgroup.procs` file (a move on the kernel's cgroupfs).
pub(crate) fn write_pid(procs: &Path, pid: u32) -> Result<(), CgroupError> {
    use std::io::Write;
    let result = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(procs)
        .and_then(|mut f| f.write_all(format!("{pid}\n").as_bytes()));
    match result {
        Ok(()) => Ok(()),
        // The process exited meanwhile: nothing to move.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(source) => Err(CgroupError::Io {
            action: "write",
            path: procs.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn create_dir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Io {
        action: "create",
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a cgroup folder. On the kernel's cgroupfs `rmdir` removes the interface files with
/// it; on a plain folder (the tests' temporary trees) the files the driver wrote are removed
/// first. A folder with sub-folders is never emptied this way.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let wrap = |source| CgroupError::Io {
        action: "remove",
        path: path.to_path_buf(),
        source,
    };
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
            let entries: Vec<_> = std::fs::read_dir(path).map_err(wrap)?.flatten().collect();
            if entries.iter().any(|e| e.path().is_dir()) {
                return Err(wrap(e));
            }
            for entry in entries {
                std::fs::remove_file(entry.path()).map_err(wrap)?;
            }
            std::fs::remove_dir(path).map_err(wrap)
        }
        Err(e) => Err(wrap(e)),
    }
}

/// Whether `dir` is on a cgroup filesystem (as opposed to a test's temporary tree, where
/// `cgroup.procs` is a plain file that never empties).
pub(crate) fn on_cgroupfs(dir: &Path) -> bool {
    use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
    statfs(dir)
        .map(|s| {
            let t = s.filesystem_type();
            t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
        })
        .unwrap_or(false)
}

/// Pids listed in a `cgroup.procs` file (absent file: none).
pub(crate) fn read_pids(procs: &Path) -> Result<Vec<u32>, CgroupError> {
    Ok(read_optional(procs)?
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Sub-folders (child cgroups) of `dir`, by name.
pub(crate) fn child_cgroups(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Io {
                action: "read",
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// Parses `key value` lines (`cpu.stat`, `memory.events`, `memory.oom_control`) for `key`.
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// SIGKILLs every pid listed in `procs` until the file is empty (processes may fork while being
/// killed), at most `rounds` times. Returns how many kills were sent.
pub(crate) fn kill_listed(procs: &[PathBuf], rounds: usize) -> Result<usize, CgroupError> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut sent = 0;
    for _ in 0..rounds {
        let mut pids = Vec::new();
        for file in procs {
            pids.extend(read_pids(file)?);
        }
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|p| *p != std::process::id());
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_is_per_100ms_period() {
        let l = |m| Limits {
            cpu_millis: m,
            memory_bytes: 1,
            pids: 64,
        };
        assert_eq!(l(500).cpu_quota_us(), 50_000);
        assert_eq!(l(1500).cpu_quota_us(), 150_000);
        assert_eq!(
            l(1).cpu_quota_us(),
            1000,
            "the kernel refuses quotas under 1 ms"
        );
    }

    #[test]
    fn names_are_single_safe_components() {
        for good in ["dept1", "shared-0", "heavy-12"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "..", "a/b", "Upper", "-x", "a b", "a.b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keyed_values_are_found_by_exact_key() {
        let text = "oom 3\noom_kill 2\noom_group_kill 1\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(2));
        assert_eq!(keyed_value(text, "oom"), Some(3));
        assert_eq!(keyed_value(text, "max"), None);
    }

    #[test]
    fn selection_prefers_v1_controllers_on_hybrid_machines() {
        let memberships = proc::parse_memberships("4:memory:/s1\n1:cpu:/\n0::/\n");
        let mounts = proc::parse_cgroup_mounts(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let driver = detect_from(&memberships, &mounts, "dept1").unwrap();
        assert_eq!(driver.enforcement(), Enforcement::CgroupV1);
        let dirs = driver.leaf_dirs("shared-0");
        assert!(dirs.contains(&PathBuf::from(
            "/sys/fs/cgroup/memory/s1/connect-supervisor/dept1/shared-0"
        )));
        assert!(dirs.contains(&PathBuf::from(
            "/sys/fs/cgroup/cpu/connect-supervisor/dept1/shared-0"
        )));
    }

    #[test]
    fn a_read_only_cgroup_mount_is_reported_as_not_writable() {
        let memberships = proc::parse_memberships("0::/\n");
        let mounts = proc::parse_cgroup_mounts(
            "41 31 0:38 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n",
        );
        let err = detect_from(&memberships, &mounts, "dept1").unwrap_err();
        assert!(err.is_not_writable(), "{err}");
        let v2 = proc::parse_cgroup_mounts("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let driver = detect_from(&proc::parse_memberships("0::/pod/c\n"), &v2, "d").unwrap();
        assert_eq!(driver.enforcement(), Enforcement::CgroupV2);
        assert_eq!(
            driver.leaf_dirs("p-0"),
            [PathBuf::from(
                "/sys/fs/cgroup/pod/c/connect-supervisor/d/p-0"
            )]
        );
    }
}

//! cgroup v1: one hierarchy per controller (or a few co-mounted), each with its own path for
//! this process. CPU quota in `cpu.cfs_quota_us`, memory in `memory.limit_in_bytes` (and
//! `memory.memsw.limit_in_bytes` when swap accounting exists, so a worker cannot swap past its
//! limit), processes in `pids.max`; OOM kills counted by `memory.oom_control`'s `oom_kill`; a
//! leaf is killed by signalling every pid in its `cgroup.procs` (v1 has no `cgroup.kill`).

use std::path::{Path, PathBuf};

use super::{
    BASE_DIR, CGROUP_PROCS, CPU_PERIOD_US, CgroupDriver, CgroupError, CgroupStats, Enforcement,
    Leftovers, Limits, check_name, child_cgroups, create_dir, keyed_value, kill_listed,
    on_cgroupfs, read_optional, read_pids, read_u64, remove_dir, write,
};

/// v1 controllers the driver uses.
pub const CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids"];

const CPU_CFS_QUOTA: &str = "cpu.cfs_quota_us";
const CPU_CFS_PERIOD: &str = "cpu.cfs_period_us";
/// CPU weight under contention.
const CPU_SHARES: &str = "cpu.shares";
/// CPU statistics (throttling).
pub const CPU_STAT: &str = "cpu.stat";
/// CPU time used, in nanoseconds.
const CPUACCT_USAGE: &str = "cpuacct.usage";
const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
/// Memory + swap limit file (only with swap accounting).
const MEMORY_MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const MEMORY_USAGE: &str = "memory.usage_in_bytes";
const MEMORY_MAX_USAGE: &str = "memory.max_usage_in_bytes";
/// OOM state and kill counter.
const MEMORY_OOM_CONTROL: &str = "memory.oom_control";
/// Process limit file.
pub const PIDS_MAX: &str = "pids.max";
/// Processes in use.
pub const PIDS_CURRENT: &str = "pids.current";

/// Limits above this are "unlimited" on v1 (the kernel shows `PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// One v1 hierarchy and this process's cgroup folder in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers of the hierarchy (`["cpu"]`, or `["cpu", "cpuacct"]` when co-mounted).
    pub controllers: Vec<String>,
    /// This process's own cgroup folder in it.
    pub own: PathBuf,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The v1 driver of one department.
#[derive(Debug, Clone)]
pub struct V1Driver {
    hierarchies: Vec<Hierarchy>,
    department: String,
    lock: std::sync::Arc<std::sync::OnceLock<crate::lock::DepartmentLock>>,
}

impl V1Driver {
    /// A driver over `hierarchies` (only those holding a controller of [`CONTROLLERS`] are
    /// kept) for `department`.
    pub fn new(hierarchies: Vec<Hierarchy>, department: &str) -> Result<Self, CgroupError> {
        check_name(department)?;
        let hierarchies = hierarchies
            .into_iter()
            .filter(|h| {
                h.controllers
                    .iter()
                    .any(|c| CONTROLLERS.contains(&c.as_str()))
            })
            .collect();
        Ok(Self {
            hierarchies,
            department: department.to_string(),
            lock: Default::default(),
        })
    }

    fn department_dir(&self, h: &Hierarchy) -> PathBuf {
        h.own.join(BASE_DIR).join(&self.department)
    }

    fn leaf(&self, h: &Hierarchy, worker: &str) -> Result<PathBuf, CgroupError> {
        check_name(worker)?;
        let path = self.department_dir(h).join(worker);
        if !super::proc::is_within(&h.own, &path) {
            return Err(CgroupError::OutsideOwn {
                path,
                own: h.own.clone(),
            });
        }
        Ok(path)
    }

    fn with(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    fn all_procs(&self, worker: &str) -> Result<Vec<PathBuf>, CgroupError> {
        self.hierarchies
            .iter()
            .map(|h| Ok(self.leaf(h, worker)?.join(CGROUP_PROCS)))
            .collect()
    }
}

/// Writes memory and memory+swap limits in the order the kernel accepts (memsw >= memory).
fn write_memory_limits(leaf: &Path, bytes: u64) -> Result<(), CgroupError> {
    let memsw = leaf.join(MEMORY_MEMSW_LIMIT);
    let value = bytes.to_string();
    if !memsw.exists() {
        return write(&leaf.join(MEMORY_LIMIT), &value);
    }
    match write(&leaf.join(MEMORY_LIMIT), &value) {
        Ok(()) => write(&memsw, &value),
        // Raising the limit: memsw must go up first.
        Err(_) => {
            write(&memsw, &value)?;
            write(&leaf.join(MEMORY_LIMIT), &value)
        }
    }
}

impl CgroupDriver for V1Driver {
    fn enforcement(&self) -> Enforcement {
        Enforcement::CgroupV1
    }

    fn controllers(&self) -> Vec<&'static str> {
        ["cpu", "memory", "pids"]
            .into_iter()
            .filter(|c| self.with(c).is_some())
            .collect()
    }

    fn prepare(&self) -> Result<Leftovers, CgroupError> {
        if self.with("memory").is_none() && self.with("cpu").is_none() {
            return Err(CgroupError::Unavailable(
                "neither the v1 memory nor the cpu controller is mounted".into(),
            ));
        }
        let mut leftovers = Leftovers::default();
        let mut names = Vec::new();
        let dirs: Vec<PathBuf> = self
            .hierarchies
            .iter()
            .map(|h| self.department_dir(h))
            .collect();
        for dir in &dirs {
            create_dir(dir)?;
        }
        if self.lock.get().is_none() {
            let lock = crate::lock::DepartmentLock::folders(&self.department, &dirs)?;
            let _ = self.lock.set(lock);
        }
        for dir in &dirs {
            for name in child_cgroups(dir)? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        for name in names {
            if check_name(&name).is_err() {
                continue;
            }
            leftovers.processes += kill_listed(&self.all_procs(&name)?, 50)?;
            self.remove(&name)?;
            leftovers.cgroups.push(name);
        }
        Ok(leftovers)
    }

    fn create(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let leaf = self.leaf(h, worker)?;
            create_dir(&leaf)?;
            if h.has("cpu") {
                write(&leaf.join(CPU_CFS_PERIOD), &CPU_PERIOD_US.to_string())?;
                write(
                    &leaf.join(CPU_CFS_QUOTA),
                    &limits.cpu_quota_us().to_string(),
                )?;
                write(&leaf.join(CPU_SHARES), &limits.cpu_shares().to_string())?;
            }
            if h.has("memory") {
                write_memory_limits(&leaf, limits.memory_bytes)?;
            }
            if h.has("pids") {
                write(&leaf.join(PIDS_MAX), &limits.pids.to_string())?;
            }
        }
        Ok(())
    }

    fn set_cpu_quota(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError> {
        if let Some(h) = self.with("cpu") {
            let leaf = self.leaf(h, worker)?;
            write(
                &leaf.join(CPU_CFS_QUOTA),
                &limits.cpu_quota_us().to_string(),
            )?;
        }
        Ok(())
    }

    fn procs_files(&self, worker: &str) -> Vec<PathBuf> {
        self.all_procs(worker).unwrap_or_default()
    }

    fn leaf_dirs(&self, worker: &str) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .filter_map(|h| self.leaf(h, worker).ok())
            .collect()
    }

    fn stats(&self, worker: &str) -> Result<CgroupStats, CgroupError> {
        let mut stats = CgroupStats::default();
        if let Some(h) = self.with("cpuacct") {
            let leaf = self.leaf(h, worker)?;
            stats.cpu_usage_usec = read_u64(&leaf.join(CPUACCT_USAGE))?.map(|ns| ns / 1000);
        }
        if let Some(h) = self.with("cpu") {
            let leaf = self.leaf(h, worker)?;
            if let Some(text) = read_optional(&leaf.join(CPU_STAT))? {
                stats.cpu_throttled_usec = keyed_value(&text, "throttled_time").map(|ns| ns / 1000);
                stats.cpu_nr_throttled = keyed_value(&text, "nr_throttled");
                stats.cpu_nr_periods = keyed_value(&text, "nr_periods");
            }
        }
        if let Some(h) = self.with("memory") {
            let leaf = self.leaf(h, worker)?;
            stats.memory_bytes = read_u64(&leaf.join(MEMORY_USAGE))?;
            stats.memory_peak_bytes = read_u64(&leaf.join(MEMORY_MAX_USAGE))?;
            stats.memory_limit_bytes =
                read_u64(&leaf.join(MEMORY_LIMIT))?.filter(|l| *l < V1_UNLIMITED);
            stats.oom_kills = read_optional(&leaf.join(MEMORY_OOM_CONTROL))?
                .and_then(|t| keyed_value(&t, "oom_kill"));
        }
        if let Some(h) = self.with("pids") {
            stats.pids = read_u64(&self.leaf(h, worker)?.join(PIDS_CURRENT))?;
        }
        Ok(stats)
    }

    fn pids(&self, worker: &str) -> Result<Vec<u32>, CgroupError> {
        let mut pids = Vec::new();
        for procs in self.all_procs(worker)? {
            pids.extend(read_pids(&procs)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill(&self, worker: &str) -> Result<(), CgroupError> {
        kill_listed(&self.all_procs(worker)?, 50).map(|_| ())
    }

    fn remove(&self, worker: &str) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let leaf = self.leaf(h, worker)?;
            let pids = read_pids(&leaf.join(CGROUP_PROCS))?;
            if !pids.is_empty() && leaf.join(CGROUP_PROCS).exists() && on_cgroupfs(&leaf) {
                return Err(CgroupError::Busy { path: leaf, pids });
            }
            remove_dir(&leaf)?;
        }
        Ok(())
    }

    fn remove_department(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let dir = self.department_dir(h);
            if child_cgroups(&dir)?.is_empty() {
                remove_dir(&dir)?;
                // Other departments may share the base folder: only an empty one goes.
                let _ = std::fs::remove_dir(h.own.join(BASE_DIR));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(root: &Path) -> V1Driver {
        V1Driver::new(
            vec![
                Hierarchy {
                    controllers: vec!["cpu".into()],
                    own: root.join("cpu"),
                },
                Hierarchy {
                    controllers: vec!["cpuacct".into()],
                    own: root.join("cpuacct"),
                },
                Hierarchy {
                    controllers: vec!["memory".into()],
                    own: root.join("memory/session/1"),
                },
                Hierarchy {
                    controllers: vec!["pids".into()],
                    own: root.join("pids"),
                },
                Hierarchy {
                    controllers: vec!["name=systemd".into()],
                    own: root.join("systemd"),
                },
            ],
            "dept1",
        )
        .unwrap()
    }

    #[test]
    fn limits_go_to_each_controller_in_its_own_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let d = driver(tmp.path());
        d.prepare().unwrap();
        let leaf = |h: &str| tmp.path().join(h).join("connect-supervisor/dept1/shared-0");
        std::fs::create_dir_all(leaf("memory/session/1")).unwrap();
        std::fs::write(leaf("memory/session/1").join(MEMORY_MEMSW_LIMIT), "max").unwrap();
        d.create(
            "shared-0",
            &Limits {
                cpu_millis: 500,
                memory_bytes: 96 << 20,
                pids: 256,
            },
        )
        .unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(leaf("cpu").join(CPU_CFS_QUOTA)), "50000");
        assert_eq!(read(leaf("cpu").join(CPU_CFS_PERIOD)), "100000");
        assert_eq!(read(leaf("cpu").join(CPU_SHARES)), "512");
        assert_eq!(
            read(leaf("memory/session/1").join(MEMORY_LIMIT)),
            "100663296"
        );
        assert_eq!(
            read(leaf("memory/session/1").join(MEMORY_MEMSW_LIMIT)),
            "100663296"
        );
        assert_eq!(read(leaf("pids").join(PIDS_MAX)), "256");
        assert!(
            !tmp.path().join("systemd/connect-supervisor").exists(),
            "named hierarchies untouched"
        );
        assert_eq!(d.controllers(), ["cpu", "memory", "pids"]);
        assert_eq!(d.procs_files("shared-0").len(), 4);
    }

    #[test]
    fn stats_read_cpuacct_throttling_memory_and_oom_kills() {
        let tmp = tempfile::tempdir().unwrap();
        let d = driver(tmp.path());
        let leaf = |h: &str| tmp.path().join(h).join("connect-supervisor/dept1/w-0");
        for h in ["cpu", "cpuacct", "memory/session/1", "pids"] {
            std::fs::create_dir_all(leaf(h)).unwrap();
        }
        std::fs::write(leaf("cpuacct").join(CPUACCT_USAGE), "2500000000\n").unwrap();
        std::fs::write(
            leaf("cpu").join(CPU_STAT),
            "nr_periods 40\nnr_throttled 12\nthrottled_time 900000000\n",
        )
        .unwrap();
        std::fs::write(leaf("memory/session/1").join(MEMORY_USAGE), "1048576\n").unwrap();
        std::fs::write(
            leaf("memory/session/1").join(MEMORY_LIMIT),
            "9223372036854771712\n",
        )
        .unwrap();
        std::fs::write(
            leaf("memory/session/1").join(MEMORY_OOM_CONTROL),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        let s = d.stats("w-0").unwrap();
        assert_eq!(s.cpu_usage_usec, Some(2_500_000));
        assert_eq!(s.cpu_throttled_usec, Some(900_000));
        assert_eq!(s.cpu_nr_throttled, Some(12));
        assert_eq!(s.memory_bytes, Some(1_048_576));
        assert_eq!(s.memory_limit_bytes, None, "unlimited");
        assert_eq!(s.oom_kills, Some(3));
        assert_eq!(s.pids, None, "no pids.current file");
    }

    #[test]
    fn prepare_removes_leftover_leaves_of_the_department_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = driver(tmp.path());
        let old = tmp.path().join("cpu/connect-supervisor/dept1/shared-1");
        let other = tmp.path().join("cpu/connect-supervisor/dept2/shared-1");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(old.join(CPU_CFS_QUOTA), "50000").unwrap();
        let leftovers = d.prepare().unwrap();
        assert_eq!(leftovers.cgroups, ["shared-1"]);
        assert!(!old.exists());
        assert!(other.exists(), "another department's leaf is not ours");
        d.remove_department().unwrap();
        assert!(!tmp.path().join("cpu/connect-supervisor/dept1").exists());
        assert!(tmp.path().join("cpu/connect-supervisor/dept2").exists());
    }

    #[test]
    fn worker_names_cannot_escape_the_department() {
        let tmp = tempfile::tempdir().unwrap();
        let d = driver(tmp.path());
        let limits = Limits {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            pids: 100,
        };
        for bad in ["../x", "..", "a/b"] {
            let err = d.create(bad, &limits).unwrap_err();
            assert_eq!(err.code(), "cgroup_invalid_name", "{bad}");
        }
        assert!(V1Driver::new(vec![], "../etc").is_err());
    }
}

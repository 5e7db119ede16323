//! cgroup v2 (unified hierarchy), rooted at an injectable folder so the whole file protocol is
//! tested on a temporary tree.
//!
//! The protocol: a cgroup may only delegate controllers to children (`cgroup.subtree_control`)
//! when it holds no processes itself, so [`CgroupDriver::prepare`] first moves the supervisor
//! (and every other process of its cgroup) into the leaf `connect-supervisor.daemon`, then enables
//! `+cpu +memory +pids` down to the department's parent. Each worker leaf gets `cpu.max`,
//! `memory.max`, `memory.swap.max = 0`, `memory.oom.group = 1` (an OOM kill takes the whole
//! worker, helpers included) and `pids.max`. OOM kills are read from `memory.events` `oom_kill`
//! (not `oom`, which counts limit hits), and a leaf is killed at once with `cgroup.kill`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{
    BASE_DIR, CGROUP_PROCS, CPU_PERIOD_US, CgroupDriver, CgroupError, CgroupStats, Enforcement,
    Leftovers, Limits, SUPERVISOR_LEAF, check_name, child_cgroups, create_dir, keyed_value,
    kill_listed, on_cgroupfs, read_optional, read_pids, read_u64, remove_dir, write, write_pid,
};

/// Controllers available to a cgroup.
const CGROUP_CONTROLLERS: &str = "cgroup.controllers";
/// Controllers delegated to a cgroup's children.
const CGROUP_SUBTREE_CONTROL: &str = "cgroup.subtree_control";
/// Writing `1` kills every process of the cgroup (kernel 5.14+).
const CGROUP_KILL: &str = "cgroup.kill";
const CPU_MAX: &str = "cpu.max";
/// CPU weight under contention.
const CPU_WEIGHT: &str = "cpu.weight";
/// CPU usage and throttling.
pub const CPU_STAT: &str = "cpu.stat";
const MEMORY_MAX: &str = "memory.max";
const MEMORY_SWAP_MAX: &str = "memory.swap.max";
/// `1`: the OOM killer takes the whole cgroup.
const MEMORY_OOM_GROUP: &str = "memory.oom.group";
/// Memory events (`oom_kill`).
const MEMORY_EVENTS: &str = "memory.events";
const MEMORY_CURRENT: &str = "memory.current";
const MEMORY_PEAK: &str = "memory.peak";
/// Process limit.
pub const PIDS_MAX: &str = "pids.max";
/// Processes in use.
pub const PIDS_CURRENT: &str = "pids.current";

/// Controllers the driver delegates and uses.
pub const CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

/// The v2 driver of one department.
#[derive(Debug)]
pub struct V2Driver {
    own: PathBuf,
    department: String,
    enabled: OnceLock<Vec<&'static str>>,
    lock: OnceLock<crate::lock::DepartmentLock>,
}

impl V2Driver {
    /// A driver whose own cgroup folder is `own` (e.g. `/sys/fs/cgroup/kubepods/pod1/c1`, or a
    /// temporary folder in tests).
    pub fn new(own: impl Into<PathBuf>, department: &str) -> Result<Self, CgroupError> {
        check_name(department)?;
        Ok(Self {
            own: own.into(),
            department: department.to_string(),
            enabled: OnceLock::new(),
            lock: OnceLock::new(),
        })
    }

    fn department_dir(&self) -> PathBuf {
        self.own.join(BASE_DIR).join(&self.department)
    }

    fn leaf(&self, worker: &str) -> Result<PathBuf, CgroupError> {
        check_name(worker)?;
        let path = self.department_dir().join(worker);
        if !super::proc::is_within(&self.own, &path) {
            return Err(CgroupError::OutsideOwn {
                path,
                own: self.own.clone(),
            });
        }
        Ok(path)
    }

    fn enabled(&self) -> &[&'static str] {
        self.enabled.get().map(Vec::as_slice).unwrap_or(CONTROLLERS)
    }

    fn has(&self, controller: &str) -> bool {
        self.enabled().contains(&controller)
    }

    /// Moves every process of the supervisor's own cgroup into [`SUPERVISOR_LEAF`], so the own
    /// cgroup may delegate controllers. Returns how many were moved.
    fn move_into_leaf(&self) -> Result<usize, CgroupError> {
        let pids = read_pids(&self.own.join(CGROUP_PROCS))?;
        if pids.is_empty() {
            return Ok(0);
        }
        let leaf = self.own.join(SUPERVISOR_LEAF);
        create_dir(&leaf)?;
        for pid in &pids {
            write_pid(&leaf.join(CGROUP_PROCS), *pid)?;
        }
        Ok(pids.len())
    }

    fn delegate(&self, dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
        let current = read_optional(&dir.join(CGROUP_SUBTREE_CONTROL))?.unwrap_or_default();
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !current.split_whitespace().any(|e| e == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        write(&dir.join(CGROUP_SUBTREE_CONTROL), &missing.join(" "))
    }
}

impl CgroupDriver for V2Driver {
    fn enforcement(&self) -> Enforcement {
        Enforcement::CgroupV2
    }

    fn controllers(&self) -> Vec<&'static str> {
        self.enabled().to_vec()
    }

    fn prepare(&self) -> Result<Leftovers, CgroupError> {
        let available = read_optional(&self.own.join(CGROUP_CONTROLLERS))?.ok_or_else(|| {
            CgroupError::Unavailable(format!(
                "{} has no {CGROUP_CONTROLLERS}: not a cgroup v2 folder",
                self.own.display()
            ))
        })?;
        let usable: Vec<&'static str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        if !usable.contains(&"memory") && !usable.contains(&"cpu") {
            return Err(CgroupError::Unavailable(format!(
                "neither the cpu nor the memory controller is delegated to {} (it has: {})",
                self.own.display(),
                available.trim()
            )));
        }
        let subtree = read_optional(&self.own.join(CGROUP_SUBTREE_CONTROL))?.unwrap_or_default();
        if usable
            .iter()
            .any(|c| !subtree.split_whitespace().any(|e| e == *c))
        {
            self.move_into_leaf()?;
        }
        self.delegate(&self.own, &usable)?;
        let base = self.own.join(BASE_DIR);
        create_dir(&base)?;
        self.delegate(&base, &usable)?;
        let dept = self.department_dir();
        create_dir(&dept)?;
        // Before anything of the department is touched: a live supervisor of it keeps its own.
        if self.lock.get().is_none() {
            let lock = crate::lock::DepartmentLock::folders(
                &self.department,
                std::slice::from_ref(&dept),
            )?;
            let _ = self.lock.set(lock);
        }
        self.delegate(&dept, &usable)?;
        let _ = self.enabled.set(usable);

        let mut leftovers = Leftovers::default();
        for name in child_cgroups(&dept)? {
            if check_name(&name).is_err() {
                continue;
            }
            leftovers.processes += self.pids(&name)?.len();
            self.kill(&name)?;
            self.remove(&name)?;
            leftovers.cgroups.push(name);
        }
        Ok(leftovers)
    }

    fn create(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError> {
        let leaf = self.leaf(worker)?;
        create_dir(&leaf)?;
        if self.has("cpu") {
            write(
                &leaf.join(CPU_MAX),
                &format!("{} {CPU_PERIOD_US}", limits.cpu_quota_us()),
            )?;
            write(&leaf.join(CPU_WEIGHT), &limits.cpu_weight().to_string())?;
        }
        if self.has("memory") {
            write(&leaf.join(MEMORY_MAX), &limits.memory_bytes.to_string())?;
            // Only present with swap accounting; the worker's limit then includes no swap.
            if leaf.join(MEMORY_SWAP_MAX).exists() {
                write(&leaf.join(MEMORY_SWAP_MAX), "0")?;
            }
            write(&leaf.join(MEMORY_OOM_GROUP), "1")?;
        }
        if self.has("pids") {
            write(&leaf.join(PIDS_MAX), &limits.pids.to_string())?;
        }
        Ok(())
    }

    fn set_cpu_quota(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError> {
        if self.has("cpu") {
            write(
                &self.leaf(worker)?.join(CPU_MAX),
                &format!("{} {CPU_PERIOD_US}", limits.cpu_quota_us()),
            )?;
        }
        Ok(())
    }

    fn procs_files(&self, worker: &str) -> Vec<PathBuf> {
        self.leaf(worker)
            .map(|l| vec![l.join(CGROUP_PROCS)])
            .unwrap_or_default()
    }

    fn leaf_dirs(&self, worker: &str) -> Vec<PathBuf> {
        self.leaf(worker).map(|l| vec![l]).unwrap_or_default()
    }

    fn stats(&self, worker: &str) -> Result<CgroupStats, CgroupError> {
        let leaf = self.leaf(worker)?;
        let mut stats = CgroupStats::default();
        if let Some(text) = read_optional(&leaf.join(CPU_STAT))? {
            stats.cpu_usage_usec = keyed_value(&text, "usage_usec");
            stats.cpu_throttled_usec = keyed_value(&text, "throttled_usec");
            stats.cpu_nr_throttled = keyed_value(&text, "nr_throttled");
            stats.cpu_nr_periods = keyed_value(&text, "nr_periods");
        }
        stats.memory_bytes = read_u64(&leaf.join(MEMORY_CURRENT))?;
        stats.memory_peak_bytes = read_u64(&leaf.join(MEMORY_PEAK))?;
        stats.memory_limit_bytes = read_u64(&leaf.join(MEMORY_MAX))?;
        stats.oom_kills =
            read_optional(&leaf.join(MEMORY_EVENTS))?.and_then(|t| keyed_value(&t, "oom_kill"));
        stats.pids = read_u64(&leaf.join(PIDS_CURRENT))?;
        Ok(stats)
    }

    fn pids(&self, worker: &str) -> Result<Vec<u32>, CgroupError> {
        read_pids(&self.leaf(worker)?.join(CGROUP_PROCS))
    }

    fn kill(&self, worker: &str) -> Result<(), CgroupError> {
        let leaf = self.leaf(worker)?;
        let kill_file = leaf.join(CGROUP_KILL);
        if kill_file.exists() {
            return write(&kill_file, "1");
        }
        // Kernels before 5.14: signal each process until the leaf is empty.
        kill_listed(&[leaf.join(CGROUP_PROCS)], 50).map(|_| ())
    }

    fn remove(&self, worker: &str) -> Result<(), CgroupError> {
        let leaf = self.leaf(worker)?;
        if on_cgroupfs(&leaf) {
            let pids = read_pids(&leaf.join(CGROUP_PROCS))?;
            if !pids.is_empty() {
                return Err(CgroupError::Busy { path: leaf, pids });
            }
        }
        remove_dir(&leaf)
    }

    fn remove_department(&self) -> Result<(), CgroupError> {
        let dir = self.department_dir();
        if child_cgroups(&dir)?.is_empty() {
            remove_dir(&dir)?;
            let _ = remove_dir_if_no_children(&self.own.join(BASE_DIR));
        }
        Ok(())
    }
}

fn remove_dir_if_no_children(dir: &Path) -> Result<(), CgroupError> {
    if child_cgroups(dir)?.is_empty() {
        remove_dir(dir)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary v2 tree: the supervisor's own cgroup with the controllers the kernel offers
    /// and the processes in it.
    fn tree(controllers: &str, procs: &str) -> (tempfile::TempDir, V2Driver) {
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("kubepods/pod1/c1");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join(CGROUP_CONTROLLERS), controllers).unwrap();
        std::fs::write(own.join(CGROUP_SUBTREE_CONTROL), "").unwrap();
        std::fs::write(own.join(CGROUP_PROCS), procs).unwrap();
        let driver = V2Driver::new(&own, "dept1").unwrap();
        (tmp, driver)
    }

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn prepare_moves_the_supervisor_into_its_leaf_then_delegates_controllers() {
        let (_tmp, d) = tree("cpuset cpu io memory hugetlb pids rdma\n", "1\n42\n");
        let leftovers = d.prepare().unwrap();
        assert!(leftovers.cgroups.is_empty());
        assert_eq!(
            read(d.own.join(SUPERVISOR_LEAF).join(CGROUP_PROCS)),
            "1\n42\n",
            "every process of the own cgroup moved into the supervisor's leaf"
        );
        assert_eq!(
            read(d.own.join(CGROUP_SUBTREE_CONTROL)),
            "+cpu +memory +pids"
        );
        assert_eq!(
            read(d.own.join(BASE_DIR).join(CGROUP_SUBTREE_CONTROL)),
            "+cpu +memory +pids"
        );
        assert_eq!(
            read(d.department_dir().join(CGROUP_SUBTREE_CONTROL)),
            "+cpu +memory +pids"
        );
        assert_eq!(d.controllers(), ["cpu", "memory", "pids"]);
    }

    #[test]
    fn already_delegated_controllers_need_no_move() {
        let (_tmp, d) = tree("cpu memory pids\n", "7\n");
        std::fs::write(d.own.join(CGROUP_SUBTREE_CONTROL), "cpu memory pids\n").unwrap();
        d.prepare().unwrap();
        assert!(!d.own.join(SUPERVISOR_LEAF).exists());
        assert_eq!(
            read(d.own.join(CGROUP_SUBTREE_CONTROL)),
            "cpu memory pids\n"
        );
    }

    #[test]
    fn only_controllers_offered_are_used_and_none_useful_is_unavailable() {
        let (_tmp, d) = tree("memory pids\n", "");
        d.prepare().unwrap();
        assert_eq!(d.controllers(), ["memory", "pids"]);
        d.create(
            "shared-0",
            &Limits {
                cpu_millis: 500,
                memory_bytes: 1 << 30,
                pids: 100,
            },
        )
        .unwrap();
        let leaf = d.leaf("shared-0").unwrap();
        assert!(!leaf.join(CPU_MAX).exists(), "cpu is not delegated");
        assert_eq!(read(leaf.join(MEMORY_MAX)), "1073741824");

        let (_tmp, d) = tree("io hugetlb\n", "");
        let err = d.prepare().unwrap_err();
        assert!(err.is_not_writable(), "degrades instead of failing: {err}");
        assert!(err.to_string().contains("io hugetlb"), "{err}");
    }

    #[test]
    fn create_writes_limits_oom_group_and_no_swap() {
        let (_tmp, d) = tree("cpu memory pids\n", "");
        d.prepare().unwrap();
        let leaf = d.leaf("heavy-0").unwrap();
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(leaf.join(MEMORY_SWAP_MAX), "max\n").unwrap();
        d.create(
            "heavy-0",
            &Limits {
                cpu_millis: 1500,
                memory_bytes: 96 << 20,
                pids: 512,
            },
        )
        .unwrap();
        assert_eq!(read(leaf.join(CPU_MAX)), "150000 100000");
        assert_eq!(read(leaf.join(CPU_WEIGHT)), "59");
        assert_eq!(read(leaf.join(MEMORY_MAX)), "100663296");
        assert_eq!(read(leaf.join(MEMORY_SWAP_MAX)), "0");
        assert_eq!(read(leaf.join(MEMORY_OOM_GROUP)), "1");
        assert_eq!(read(leaf.join(PIDS_MAX)), "512");
        assert_eq!(d.procs_files("heavy-0"), [leaf.join(CGROUP_PROCS)]);
    }

    #[test]
    fn stats_parse_cpu_stat_memory_and_oom_kill_not_oom() {
        let (_tmp, d) = tree("cpu memory pids\n", "");
        let leaf = d.leaf("w-0").unwrap();
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(
            leaf.join(CPU_STAT),
            "usage_usec 7000\nuser_usec 5000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 1234\n",
        )
        .unwrap();
        std::fs::write(
            leaf.join(MEMORY_EVENTS),
            "low 0\nhigh 0\nmax 17\noom 5\noom_kill 2\noom_group_kill 1\n",
        )
        .unwrap();
        std::fs::write(leaf.join(MEMORY_CURRENT), "4096\n").unwrap();
        std::fs::write(leaf.join(MEMORY_MAX), "max\n").unwrap();
        std::fs::write(leaf.join(PIDS_CURRENT), "31\n").unwrap();
        let s = d.stats("w-0").unwrap();
        assert_eq!(s.cpu_usage_usec, Some(7000));
        assert_eq!(s.cpu_throttled_usec, Some(1234));
        assert_eq!(s.cpu_nr_throttled, Some(4));
        assert_eq!(s.cpu_nr_periods, Some(10));
        assert_eq!(
            s.oom_kills,
            Some(2),
            "oom_kill counts kills; oom counts limit hits"
        );
        assert_eq!(s.memory_bytes, Some(4096));
        assert_eq!(s.memory_limit_bytes, None);
        assert_eq!(s.memory_peak_bytes, None, "no memory.peak on older kernels");
        assert_eq!(s.pids, Some(31));
        std::fs::write(leaf.join(MEMORY_CURRENT), "lots\n").unwrap();
        assert_eq!(d.stats("w-0").unwrap_err().code(), "cgroup_parse");
    }

    #[test]
    fn kill_uses_cgroup_kill_and_remove_deletes_the_leaf() {
        let (_tmp, d) = tree("cpu memory pids\n", "");
        d.prepare().unwrap();
        let limits = Limits {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            pids: 100,
        };
        d.create("shared-0", &limits).unwrap();
        let leaf = d.leaf("shared-0").unwrap();
        std::fs::write(leaf.join(CGROUP_KILL), "").unwrap();
        d.kill("shared-0").unwrap();
        assert_eq!(read(leaf.join(CGROUP_KILL)), "1");
        d.remove("shared-0").unwrap();
        assert!(!leaf.exists());
        d.remove_department().unwrap();
        assert!(!d.department_dir().exists());
        assert!(
            !d.own.join(BASE_DIR).exists(),
            "an empty base folder goes too"
        );
        assert!(d.own.exists(), "never the supervisor's own cgroup");
    }

    #[test]
    fn prepare_kills_and_removes_leftover_leaves_of_an_earlier_run() {
        let (_tmp, d) = tree("cpu memory pids\n", "");
        let old = d.department_dir().join("shared-3");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join(CGROUP_KILL), "").unwrap();
        std::fs::write(old.join(CGROUP_PROCS), "").unwrap();
        let other = d.own.join(BASE_DIR).join("dept2/shared-3");
        std::fs::create_dir_all(&other).unwrap();
        let leftovers = d.prepare().unwrap();
        assert_eq!(leftovers.cgroups, ["shared-3"]);
        assert!(!old.exists());
        assert!(other.exists(), "another department's leaf is left alone");
    }

    #[test]
    fn a_second_driver_of_a_live_department_refuses_and_kills_nothing() {
        let (_tmp, first) = tree("cpu memory pids\n", "");
        first.prepare().unwrap();
        first
            .create(
                "shared-0",
                &Limits {
                    cpu_millis: 500,
                    memory_bytes: 64 << 20,
                    pids: 64,
                },
            )
            .unwrap();
        let leaf = first.leaf("shared-0").unwrap();
        std::fs::write(leaf.join(CGROUP_PROCS), "4242\n").unwrap();
        let second = V2Driver::new(&first.own, "dept1").unwrap();
        let err = second.prepare().unwrap_err();
        assert_eq!(err.code(), "department_locked", "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(!err.is_not_writable(), "no fallback to degraded mode");
        assert!(leaf.is_dir(), "the live worker's leaf is still there");
        assert!(!leaf.join(CGROUP_KILL).exists(), "and was not killed");
        assert_eq!(read(leaf.join(CGROUP_PROCS)), "4242\n");
        // Once the first is gone (its lock with it), the same department starts and cleans.
        drop(first);
        let leftovers = second.prepare().unwrap();
        assert_eq!(leftovers.cgroups, ["shared-0"]);
    }

    #[test]
    fn the_cpu_quota_alone_can_be_raised_and_dropped_back() {
        let (_tmp, d) = tree("cpu memory pids\n", "");
        d.prepare().unwrap();
        let limits = Limits {
            cpu_millis: 1000,
            memory_bytes: 256 << 20,
            pids: 64,
        };
        d.create("w-0", &limits).unwrap();
        let leaf = d.leaf("w-0").unwrap();
        let boosted = Limits {
            cpu_millis: 2500,
            ..limits
        };
        d.set_cpu_quota("w-0", &boosted).unwrap();
        assert_eq!(read(leaf.join(CPU_MAX)), "250000 100000");
        assert_eq!(read(leaf.join(CPU_WEIGHT)), limits.cpu_weight().to_string());
        assert_eq!(read(leaf.join(MEMORY_MAX)), (256u64 << 20).to_string());
        d.set_cpu_quota("w-0", &limits).unwrap();
        assert_eq!(read(leaf.join(CPU_MAX)), "100000 100000");
    }

    #[test]
    fn nothing_is_written_outside_the_own_cgroup() {
        let (tmp, d) = tree("cpu memory pids\n", "1\n");
        d.prepare().unwrap();
        d.create(
            "shared-0",
            &Limits {
                cpu_millis: 1000,
                memory_bytes: 1 << 30,
                pids: 100,
            },
        )
        .unwrap();
        // Only the own cgroup's subtree changed: its parents hold nothing but the path to it.
        let parent = tmp.path().join("kubepods/pod1");
        let entries: Vec<_> = std::fs::read_dir(&parent).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1);
        assert!(
            d.create(
                "../../escape",
                &Limits {
                    cpu_millis: 1,
                    memory_bytes: 1,
                    pids: 1
                }
            )
            .is_err()
        );
        assert!(!tmp.path().join("kubepods/escape").exists());
    }
}

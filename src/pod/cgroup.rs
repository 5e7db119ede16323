//! The worker pod's own cgroup, read-only: the limits the kubelet gave the pod (which are the
//! worker's limits, one worker JVM per pod) and its usage and OOM-kill counters.
//!
//! An unprivileged container on AKS/EKS sees `/sys/fs/cgroup` read-only (see the peers notes,
//! §4.5): nothing here writes. The kernel enforces the pod's limits; this module only reads them
//! so the JVM is sized to them, and reads `memory.events` (v2) or `memory.oom_control` (v1) so an
//! OOM kill of the JVM is told apart from a crash. [`PodCgroupDriver`] gives the supervisor's
//! worker machinery this view through the ordinary [`CgroupDriver`] trait: "creating" a worker's
//! cgroup checks the limits, and killing it kills this process's descendants in the cgroup,
//! never the entrypoint itself and never a process it did not start.

use std::path::{Path, PathBuf};

use crate::cgroup::proc::{self, CgroupMount, Membership};
use crate::cgroup::{
    CgroupDriver, CgroupError, CgroupStats, Enforcement, Leftovers, Limits, PROC_SELF_CGROUP,
    PROC_SELF_MOUNTINFO,
};

/// v1 memory limit; values at or above this mean "unlimited" (the kernel's page-rounded max).
const V1_MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const V1_MEMORY_USAGE: &str = "memory.usage_in_bytes";
const V1_MEMORY_MAX_USAGE: &str = "memory.max_usage_in_bytes";
const V1_OOM_CONTROL: &str = "memory.oom_control";
const V1_CFS_QUOTA: &str = "cpu.cfs_quota_us";
const V1_CFS_PERIOD: &str = "cpu.cfs_period_us";
const V1_CPUACCT_USAGE: &str = "cpuacct.usage";
const V1_UNLIMITED: u64 = 1 << 62;
const V2_MEMORY_MAX: &str = "memory.max";
const V2_MEMORY_CURRENT: &str = "memory.current";
const V2_MEMORY_PEAK: &str = "memory.peak";
const V2_MEMORY_EVENTS: &str = "memory.events";
const V2_CPU_MAX: &str = "cpu.max";
/// Shared by both versions.
const CPU_STAT: &str = "cpu.stat";
const PIDS_MAX: &str = "pids.max";
const PIDS_CURRENT: &str = "pids.current";
const CGROUP_PROCS: &str = "cgroup.procs";

/// Where this process's cgroup is, per controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnCgroup {
    /// cgroup v1: one folder per hierarchy (each may be absent).
    V1 {
        /// The memory controller's folder.
        memory: Option<PathBuf>,
        /// The cpu controller's folder (often shared with cpuacct).
        cpu: Option<PathBuf>,
        /// The cpuacct controller's folder.
        cpuacct: Option<PathBuf>,
        /// The pids controller's folder.
        pids: Option<PathBuf>,
    },
    /// cgroup v2: one folder.
    V2 {
        /// The folder.
        dir: PathBuf,
    },
}

/// The limits of the pod's cgroup; `None` where the cgroup has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodLimits {
    /// CPU quota, in millicores.
    pub cpu_millis: Option<u32>,
    /// Memory limit, in bytes.
    pub memory_bytes: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u32>,
}

impl OwnCgroup {
    /// This process's cgroup, from `/proc/self/cgroup` and `/proc/self/mountinfo`.
    pub fn detect() -> Result<Self, CgroupError> {
        let memberships =
            proc::parse_memberships(&crate::cgroup::read(Path::new(PROC_SELF_CGROUP))?);
        let mounts =
            proc::parse_cgroup_mounts(&crate::cgroup::read(Path::new(PROC_SELF_MOUNTINFO))?);
        Self::from_parts(&memberships, &mounts)
    }

    /// [`OwnCgroup::detect`] on parsed inputs: v1 when a v1 memory or cpu hierarchy is mounted,
    /// else v2. Read-only mounts are fine: nothing is written.
    pub fn from_parts(
        memberships: &[Membership],
        mounts: &[CgroupMount],
    ) -> Result<Self, CgroupError> {
        let v1_dir = |controller: &str| -> Option<PathBuf> {
            let mount = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
            let member = memberships
                .iter()
                .find(|m| m.hierarchy != 0 && m.controllers == mount.controllers)?;
            proc::own_dir(mount, &member.path)
        };
        let (memory, cpu) = (v1_dir("memory"), v1_dir("cpu"));
        if memory.is_some() || cpu.is_some() {
            return Ok(Self::V1 {
                memory,
                cpu,
                cpuacct: v1_dir("cpuacct"),
                pids: v1_dir("pids"),
            });
        }
        let mount = mounts
            .iter()
            .find(|m| m.v2)
            .ok_or_else(|| CgroupError::Unavailable("no cgroup filesystem is mounted".into()))?;
        let member = memberships
            .iter()
            .find(|m| m.hierarchy == 0)
            .ok_or_else(|| CgroupError::Unavailable("no v2 entry in /proc/self/cgroup".into()))?;
        let dir = proc::own_dir(mount, &member.path).ok_or_else(|| {
            CgroupError::Unavailable(format!(
                "this process's cgroup {} is not visible under {}",
                member.path,
                mount.mount_point.display()
            ))
        })?;
        Ok(Self::V2 { dir })
    }

    /// Which kernel interface enforces the limits.
    pub fn enforcement(&self) -> Enforcement {
        match self {
            Self::V1 { .. } => Enforcement::CgroupV1,
            Self::V2 { .. } => Enforcement::CgroupV2,
        }
    }

    /// Every folder of the cgroup.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = match self {
            Self::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => [memory, cpu, cpuacct, pids]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            Self::V2 { dir } => vec![dir.clone()],
        };
        dirs.dedup();
        dirs
    }

    /// The limits the cgroup has (what the kernel enforces on this pod).
    pub fn limits(&self) -> Result<PodLimits, CgroupError> {
        let mut limits = PodLimits::default();
        match self {
            Self::V1 {
                memory, cpu, pids, ..
            } => {
                if let Some(dir) = memory {
                    limits.memory_bytes = crate::cgroup::read_u64(&dir.join(V1_MEMORY_LIMIT))?
                        .filter(|b| *b < V1_UNLIMITED);
                }
                if let Some(dir) = cpu {
                    let quota = crate::cgroup::read_optional(&dir.join(V1_CFS_QUOTA))?;
                    let period = crate::cgroup::read_u64(&dir.join(V1_CFS_PERIOD))?;
                    if let (Some(quota), Some(period)) = (quota, period) {
                        let quota: i64 = quota.trim().parse().map_err(|_| CgroupError::Parse {
                            path: dir.join(V1_CFS_QUOTA),
                            message: format!("expected a number, found {:?}", quota.trim()),
                        })?;
                        limits.cpu_millis = millicores(quota, period);
                    }
                }
                if let Some(dir) = pids {
                    limits.pids = read_pids_max(&dir.join(PIDS_MAX))?;
                }
            }
            Self::V2 { dir } => {
                limits.memory_bytes = crate::cgroup::read_u64(&dir.join(V2_MEMORY_MAX))?;
                if let Some(text) = crate::cgroup::read_optional(&dir.join(V2_CPU_MAX))? {
                    limits.cpu_millis =
                        parse_cpu_max(&text).map_err(|message| CgroupError::Parse {
                            path: dir.join(V2_CPU_MAX),
                            message,
                        })?;
                }
                limits.pids = read_pids_max(&dir.join(PIDS_MAX))?;
            }
        }
        Ok(limits)
    }

    /// Usage and OOM kills of the cgroup (the whole pod: the JVM and the entrypoint).
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        use crate::cgroup::{keyed_value, read_optional, read_u64};
        let mut stats = CgroupStats::default();
        match self {
            Self::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => {
                if let Some(dir) = cpuacct {
                    stats.cpu_usage_usec = read_u64(&dir.join(V1_CPUACCT_USAGE))?.map(|n| n / 1000);
                }
                if let Some(dir) = cpu
                    && let Some(text) = read_optional(&dir.join(CPU_STAT))?
                {
                    stats.cpu_throttled_usec =
                        keyed_value(&text, "throttled_time").map(|n| n / 1000);
                    stats.cpu_nr_throttled = keyed_value(&text, "nr_throttled");
                    stats.cpu_nr_periods = keyed_value(&text, "nr_periods");
                }
                if let Some(dir) = memory {
                    stats.memory_bytes = read_u64(&dir.join(V1_MEMORY_USAGE))?;
                    stats.memory_peak_bytes = read_u64(&dir.join(V1_MEMORY_MAX_USAGE))?;
                    stats.memory_limit_bytes =
                        read_u64(&dir.join(V1_MEMORY_LIMIT))?.filter(|b| *b < V1_UNLIMITED);
                    stats.oom_kills = read_optional(&dir.join(V1_OOM_CONTROL))?
                        .and_then(|t| keyed_value(&t, "oom_kill"));
                }
                if let Some(dir) = pids {
                    stats.pids = read_u64(&dir.join(PIDS_CURRENT))?;
                }
            }
            Self::V2 { dir } => {
                if let Some(text) = read_optional(&dir.join(CPU_STAT))? {
                    stats.cpu_usage_usec = keyed_value(&text, "usage_usec");
                    stats.cpu_throttled_usec = keyed_value(&text, "throttled_usec");
                    stats.cpu_nr_throttled = keyed_value(&text, "nr_throttled");
                    stats.cpu_nr_periods = keyed_value(&text, "nr_periods");
                }
                stats.memory_bytes = read_u64(&dir.join(V2_MEMORY_CURRENT))?;
                stats.memory_peak_bytes = read_u64(&dir.join(V2_MEMORY_PEAK))?;
                stats.memory_limit_bytes = read_u64(&dir.join(V2_MEMORY_MAX))?;
                stats.oom_kills = read_optional(&dir.join(V2_MEMORY_EVENTS))?
                    .and_then(|t| keyed_value(&t, "oom_kill"));
                stats.pids = read_u64(&dir.join(PIDS_CURRENT))?;
            }
        }
        Ok(stats)
    }

    /// Processes in the cgroup (from the first folder that lists them).
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        for dir in self.dirs() {
            let file = dir.join(CGROUP_PROCS);
            if file.is_file() {
                return crate::cgroup::read_pids(&file);
            }
        }
        Ok(Vec::new())
    }
}

/// Millicores of a CFS quota per period; `None` for no quota (-1 on v1).
fn millicores(quota_us: i64, period_us: u64) -> Option<u32> {
    if quota_us <= 0 || period_us == 0 {
        return None;
    }
    let millis = (quota_us as u64).saturating_mul(1000) / period_us;
    Some(u32::try_from(millis).unwrap_or(u32::MAX).max(1))
}

/// v2 `cpu.max`: `max 100000` (no quota) or `<quota> <period>`.
fn parse_cpu_max(text: &str) -> Result<Option<u32>, String> {
    let mut parts = text.split_whitespace();
    let quota = parts.next().ok_or("empty")?;
    let period: u64 = match parts.next() {
        Some(p) => p.parse().map_err(|_| format!("bad period {p:?}"))?,
        None => 100_000,
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota: i64 = quota.parse().map_err(|_| format!("bad quota {quota:?}"))?;
    Ok(millicores(quota, period))
}

fn read_pids_max(path: &Path) -> Result<Option<u32>, CgroupError> {
    Ok(crate::cgroup::read_u64(path)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

/// Whether `pid` descends from `ancestor` (walking parent pids through `/proc`).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        let Some(parent) = parent_of(current) else {
            return false;
        };
        if parent == 0 || parent == current {
            return false;
        }
        current = parent;
    }
    false
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The supervisor's cgroup driver inside a worker pod: the pod's own cgroup, read-only. The one
/// worker of the pod runs in it; its limits are the pod's.
#[derive(Debug, Clone)]
pub struct PodCgroupDriver {
    own: OwnCgroup,
}

impl PodCgroupDriver {
    /// A driver over `own`.
    pub fn new(own: OwnCgroup) -> Self {
        Self { own }
    }

    /// The cgroup.
    pub fn own(&self) -> &OwnCgroup {
        &self.own
    }

    /// This process's descendants among the cgroup's processes (never itself).
    fn descendants(&self) -> Result<Vec<u32>, CgroupError> {
        let me = std::process::id();
        let mut pids = self.own.pids()?;
        pids.retain(|p| *p != me && descends_from(*p, me));
        Ok(pids)
    }
}

impl CgroupDriver for PodCgroupDriver {
    fn enforcement(&self) -> Enforcement {
        self.own.enforcement()
    }

    fn controllers(&self) -> Vec<&'static str> {
        let limits = self.own.limits().unwrap_or_default();
        let mut out = Vec::new();
        if limits.cpu_millis.is_some() {
            out.push("cpu");
        }
        if limits.memory_bytes.is_some() {
            out.push("memory");
        }
        if limits.pids.is_some() {
            out.push("pids");
        }
        out
    }

    fn prepare(&self) -> Result<Leftovers, CgroupError> {
        // Nothing to create: the kubelet made the cgroup. Reading it proves it is there.
        self.own.limits()?;
        Ok(Leftovers::default())
    }

    fn create(&self, worker: &str, limits: &Limits) -> Result<(), CgroupError> {
        let pod = self.own.limits()?;
        if let Some(memory) = pod.memory_bytes
            && memory < limits.memory_bytes
        {
            tracing::warn!(
                worker,
                pod_memory = memory,
                planned = limits.memory_bytes,
                "The pod's memory limit is lower than the worker's; the kernel enforces the pod's."
            );
        }
        Ok(())
    }

    fn set_cpu_quota(&self, _worker: &str, _limits: &Limits) -> Result<(), CgroupError> {
        // The kubelet owns the pod's quota; `sets_cpu_quota` keeps boosts from being granted.
        Ok(())
    }

    fn sets_cpu_quota(&self) -> bool {
        false
    }

    fn procs_files(&self, _worker: &str) -> Vec<PathBuf> {
        // The JVM is born in the pod's cgroup already.
        Vec::new()
    }

    fn leaf_dirs(&self, _worker: &str) -> Vec<PathBuf> {
        self.own.dirs()
    }

    fn stats(&self, _worker: &str) -> Result<CgroupStats, CgroupError> {
        self.own.stats()
    }

    fn pids(&self, _worker: &str) -> Result<Vec<u32>, CgroupError> {
        self.descendants()
    }

    fn kill(&self, _worker: &str) -> Result<(), CgroupError> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        for _ in 0..50 {
            let pids = self.descendants()?;
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    fn remove(&self, _worker: &str) -> Result<(), CgroupError> {
        Ok(())
    }

    fn remove_department(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(text: &str) -> Vec<CgroupMount> {
        proc::parse_cgroup_mounts(text)
    }

    #[test]
    fn v1_folders_come_from_each_hierarchy_and_v2_from_the_namespace_root() {
        // A v1 pod without a cgroup namespace: the mount shows the pod's cgroup as its root.
        let members = proc::parse_memberships(
            "4:memory:/kubepods/burstable/pod1/c1\n2:cpu,cpuacct:/kubepods/burstable/pod1/c1\n",
        );
        let m = mounts(
            "35 31 0:32 /kubepods/burstable/pod1/c1 /sys/fs/cgroup/memory ro,relatime - cgroup cgroup ro,memory\n\
             32 31 0:29 /kubepods/burstable/pod1/c1 /sys/fs/cgroup/cpu,cpuacct ro,relatime - cgroup cgroup ro,cpu,cpuacct\n",
        );
        let own = OwnCgroup::from_parts(&members, &m).unwrap();
        assert_eq!(
            own,
            OwnCgroup::V1 {
                memory: Some("/sys/fs/cgroup/memory".into()),
                cpu: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
                pids: None,
            }
        );
        // v2 with a private cgroup namespace (unprivileged pods): `0::/`, read-only mount.
        let members = proc::parse_memberships("0::/\n");
        let m = mounts("30 25 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 ro\n");
        let own = OwnCgroup::from_parts(&members, &m).unwrap();
        assert_eq!(
            own,
            OwnCgroup::V2 {
                dir: "/sys/fs/cgroup".into()
            }
        );
        assert_eq!(own.enforcement(), Enforcement::CgroupV2);
        assert!(OwnCgroup::from_parts(&[], &[]).is_err());
    }

    #[test]
    fn v2_limits_stats_and_oom_kills_are_read_from_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let own = OwnCgroup::V2 { dir: dir.into() };
        std::fs::write(dir.join(V2_MEMORY_MAX), "1073741824\n").unwrap();
        std::fs::write(dir.join(V2_CPU_MAX), "150000 100000\n").unwrap();
        std::fs::write(dir.join(PIDS_MAX), "max\n").unwrap();
        std::fs::write(
            dir.join(V2_MEMORY_EVENTS),
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        std::fs::write(dir.join(V2_MEMORY_CURRENT), "52428800\n").unwrap();
        std::fs::write(
            dir.join(CPU_STAT),
            "usage_usec 900\nnr_periods 10\nnr_throttled 4\nthrottled_usec 70\n",
        )
        .unwrap();
        assert_eq!(
            own.limits().unwrap(),
            PodLimits {
                cpu_millis: Some(1500),
                memory_bytes: Some(1 << 30),
                pids: None
            }
        );
        let stats = own.stats().unwrap();
        // oom_kill, not oom: the kernel killed two processes.
        assert_eq!(stats.oom_kills, Some(2));
        assert_eq!(stats.memory_bytes, Some(52_428_800));
        assert_eq!(stats.cpu_nr_throttled, Some(4));
        std::fs::write(dir.join(V2_CPU_MAX), "max 100000\n").unwrap();
        std::fs::write(dir.join(V2_MEMORY_MAX), "max\n").unwrap();
        assert_eq!(own.limits().unwrap(), PodLimits::default());
        std::fs::write(dir.join(V2_CPU_MAX), "lots\n").unwrap();
        let err = own.limits().unwrap_err();
        assert!(err.to_string().contains("cpu.max"), "{err}");
    }

    #[test]
    fn v1_limits_and_the_oom_counter_are_read_from_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (mem, cpu) = (tmp.path().join("memory"), tmp.path().join("cpu"));
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::create_dir_all(&cpu).unwrap();
        let own = OwnCgroup::V1 {
            memory: Some(mem.clone()),
            cpu: Some(cpu.clone()),
            cpuacct: None,
            pids: None,
        };
        std::fs::write(mem.join(V1_MEMORY_LIMIT), "805306368\n").unwrap();
        std::fs::write(
            mem.join(V1_OOM_CONTROL),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(cpu.join(V1_CFS_QUOTA), "50000\n").unwrap();
        std::fs::write(cpu.join(V1_CFS_PERIOD), "100000\n").unwrap();
        let limits = own.limits().unwrap();
        assert_eq!(limits.cpu_millis, Some(500));
        assert_eq!(limits.memory_bytes, Some(768 << 20));
        assert_eq!(own.stats().unwrap().oom_kills, Some(1));
        // Unlimited: -1 quota and the page-rounded maximum.
        std::fs::write(cpu.join(V1_CFS_QUOTA), "-1\n").unwrap();
        std::fs::write(mem.join(V1_MEMORY_LIMIT), "9223372036854771712\n").unwrap();
        assert_eq!(own.limits().unwrap(), PodLimits::default());
    }

    #[test]
    fn the_driver_kills_only_its_own_descendants() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // The parent of this test process is in the list too: it must survive.
        let parent = parent_of(std::process::id()).unwrap();
        std::fs::write(
            dir.join(CGROUP_PROCS),
            format!("{parent}\n{}\n{}\n", std::process::id(), child.id()),
        )
        .unwrap();
        std::fs::write(dir.join(V2_MEMORY_MAX), "max\n").unwrap();
        let driver = PodCgroupDriver::new(OwnCgroup::V2 { dir });
        assert_eq!(driver.pids("w").unwrap(), vec![child.id()]);
        driver.kill("w").unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        assert!(std::path::Path::new(&format!("/proc/{parent}")).exists());
    }
}

//! Resource sampling: every `supervision.sample_interval`, each worker's usage is read from its
//! cgroup (CPU, throttling, memory, OOM kills) into status and metrics. Where memory is not
//! enforced by the kernel (degraded mode), the worker's memory is measured from outside (RSS of
//! its process tree via sysinfo) and a worker over its limit is restarted with reason
//! `MemoryBudgetExceeded`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::time::Instant;

use super::{Command, Supervisor};
use crate::cgroup::{CgroupStats, Limits};
use crate::model::WorkerId;

/// A worker's live usage, from the last sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkerUsage {
    /// CPU used over the last sample interval, in cores.
    pub cpu_cores: Option<f64>,
    /// CPU time used by the worker's cgroup, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Time throttled by the CPU quota, in seconds.
    pub cpu_throttled_seconds: Option<f64>,
    /// CFS periods in which the worker was throttled.
    pub cpu_throttled_periods: Option<u64>,
    /// CFS periods elapsed.
    pub cpu_periods: Option<u64>,
    /// Memory in use, in bytes (cgroup usage, or RSS when not enforced).
    pub memory_bytes: Option<u64>,
    /// Highest memory use seen, in bytes.
    pub memory_peak_bytes: Option<u64>,
    /// Processes killed by the kernel's OOM killer in the worker's cgroup.
    pub oom_kills: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
}

struct Sample {
    id: WorkerId,
    pid: Option<u32>,
    limits: Limits,
    stats: CgroupStats,
}

fn delta(now: &CgroupStats, before: Option<&CgroupStats>) -> CgroupStats {
    // A counter that went down belongs to a new cgroup: count it from zero.
    let d = |n: Option<u64>, b: Option<u64>| match (n, b) {
        (Some(n), Some(b)) if n >= b => Some(n - b),
        (Some(n), _) => Some(n),
        _ => None,
    };
    CgroupStats {
        cpu_usage_usec: d(now.cpu_usage_usec, before.and_then(|b| b.cpu_usage_usec)),
        cpu_throttled_usec: d(
            now.cpu_throttled_usec,
            before.and_then(|b| b.cpu_throttled_usec),
        ),
        cpu_nr_throttled: d(
            now.cpu_nr_throttled,
            before.and_then(|b| b.cpu_nr_throttled),
        ),
        cpu_nr_periods: d(now.cpu_nr_periods, before.and_then(|b| b.cpu_nr_periods)),
        ..CgroupStats::default()
    }
}

/// RSS (bytes) and CPU time (ms) of `root` and all its descendants.
fn tree_usage(system: &System, root: u32) -> (u64, u64) {
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for (pid, process) in system.processes() {
        if let Some(parent) = process.parent() {
            children.entry(parent).or_default().push(*pid);
        }
    }
    let (mut rss, mut cpu_ms) = (0, 0);
    let mut stack = vec![Pid::from_u32(root)];
    while let Some(pid) = stack.pop() {
        if let Some(process) = system.process(pid) {
            rss += process.memory();
            cpu_ms += process.accumulated_cpu_time();
        }
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    (rss, cpu_ms)
}

pub(super) async fn run(sup: Arc<Supervisor>) {
    let interval = sup.department.supervision.sample_interval;
    let mut shutdown = sup.shutdown.subscribe();
    let mut previous: HashMap<WorkerId, (Instant, CgroupStats)> = HashMap::new();
    let mut system: Option<System> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let workers: Vec<(WorkerId, Option<u32>, Limits)> = sup
            .lock()
            .workers
            .iter()
            .map(|(id, w)| (id.clone(), w.snapshot.pid, w.limits))
            .collect();
        let memory_enforced = sup.cgroups.controllers().contains(&"memory");
        let cpu_accounted = sup.cgroups.controllers().contains(&"cpu");
        let driver = Arc::clone(&sup.cgroups);
        let mut sys = system.take();
        let joined = tokio::task::spawn_blocking(move || {
            let outside = !(memory_enforced && cpu_accounted);
            if outside {
                let s = sys.get_or_insert_with(|| System::new().expect("sysinfo supports Linux"));
                s.refresh_processes_specifics(
                    ProcessesToUpdate::All,
                    true,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
            }
            let samples: Vec<Sample> = workers
                .into_iter()
                .map(|(id, pid, limits)| {
                    let mut stats = driver.stats(&id.to_string()).unwrap_or_default();
                    if let (Some(s), Some(pid)) = (sys.as_ref().filter(|_| outside), pid) {
                        let (rss, cpu_ms) = tree_usage(s, pid);
                        if !memory_enforced {
                            stats.memory_bytes = Some(rss);
                        }
                        if !cpu_accounted {
                            stats.cpu_usage_usec = Some(cpu_ms * 1000);
                        }
                    }
                    Sample {
                        id,
                        pid,
                        limits,
                        stats,
                    }
                })
                .collect();
            (samples, sys)
        })
        .await;
        let Ok((samples, sys)) = joined else {
            continue;
        };
        system = sys;
        let now = Instant::now();
        for sample in samples {
            let name = sample.id.to_string();
            let before = previous.get(&sample.id);
            let d = delta(&sample.stats, before.map(|(_, s)| s));
            let elapsed = before.map(|(t, _)| now - *t);
            let cpu_cores = match (d.cpu_usage_usec, elapsed) {
                (Some(us), Some(e)) if before.is_some() && !e.is_zero() => {
                    Some(us as f64 / 1e6 / e.as_secs_f64())
                }
                _ => None,
            };
            sup.observer.metrics().worker_usage(
                &sample.id.pool,
                &name,
                &d,
                sample.stats.memory_bytes,
            );
            let s = &sample.stats;
            let usage = WorkerUsage {
                cpu_cores,
                cpu_seconds: s.cpu_usage_usec.map(|u| u as f64 / 1e6),
                cpu_throttled_seconds: s.cpu_throttled_usec.map(|u| u as f64 / 1e6),
                cpu_throttled_periods: s.cpu_nr_throttled,
                cpu_periods: s.cpu_nr_periods,
                memory_bytes: s.memory_bytes,
                memory_peak_bytes: s.memory_peak_bytes,
                oom_kills: s.oom_kills,
                pids: s.pids,
            };
            let over = !memory_enforced
                && sample.pid.is_some()
                && s.memory_bytes
                    .is_some_and(|m| m > sample.limits.memory_bytes);
            if let Some(entry) = sup.lock().workers.get_mut(&sample.id) {
                entry.usage = usage;
                if over {
                    let _ = entry.commands.send(Command::MemoryOverLimit);
                }
            }
            if over {
                tracing::warn!(
                    worker = %name,
                    memory = s.memory_bytes.unwrap_or(0),
                    limit = sample.limits.memory_bytes,
                    "Worker memory is over its limit (measured from outside); restarting it."
                );
            }
            previous.insert(sample.id, (now, sample.stats));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_restart_from_zero_when_a_counter_goes_down() {
        let before = CgroupStats {
            cpu_usage_usec: Some(5_000),
            cpu_nr_throttled: Some(10),
            ..Default::default()
        };
        let now = CgroupStats {
            cpu_usage_usec: Some(7_500),
            cpu_nr_throttled: Some(3),
            ..Default::default()
        };
        let d = delta(&now, Some(&before));
        assert_eq!(d.cpu_usage_usec, Some(2_500));
        assert_eq!(d.cpu_nr_throttled, Some(3));
        assert_eq!(delta(&now, None).cpu_usage_usec, Some(7_500));
    }

    #[test]
    fn tree_usage_sums_a_process_and_its_descendants() {
        let mut system = System::new().unwrap();
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let me = std::process::id();
        let (rss, _) = tree_usage(&system, me);
        assert!(
            rss > 1 << 20,
            "the test process uses more than 1 MiB: {rss}"
        );
        assert_eq!(tree_usage(&system, u32::MAX - 1).0, 0);
    }
}

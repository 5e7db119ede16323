//! What the supervisor shows of its pools and workers (the admin API's and the dashboard's
//! view), and the queries over them: status, one worker, ready URLs, metrics targets, readiness.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::lifecycle::Snapshot;
use super::registry::WorkerEntry;
use super::{Supervisor, SupervisorError, WorkerUsage, masked_command_line};
use crate::model::{Enforcement, ExitReason, Pool, WorkerId, WorkerPhase};

/// Limits of one worker as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerLimits {
    /// CPU quota, in cores.
    pub cpu: f64,
    /// Memory limit, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads.
    pub pids: u32,
    /// JVM heap (`-Xmx`), in bytes.
    pub heap_bytes: u64,
    /// `-XX:ActiveProcessorCount`.
    pub active_processor_count: u32,
}

/// One worker as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Stable id.
    pub id: String,
    /// Pool.
    pub pool: String,
    /// REST base URL.
    pub rest_url: String,
    /// Lifecycle state.
    pub state: WorkerPhase,
    /// Process id, while running.
    pub pid: Option<u32>,
    /// Launches so far (1 = never restarted).
    pub launches: u32,
    /// Restarts so far.
    pub restarts: u32,
    /// Seconds since the current process started.
    pub uptime_seconds: Option<u64>,
    /// Why the last process ended.
    pub last_exit: Option<ExitReason>,
    /// The same, as a sentence.
    pub last_exit_message: Option<String>,
    /// The last lines the last failed process wrote to stderr (redacted, at most
    /// [`crate::observe::logs::STDERR_TAIL_LINES`]).
    pub last_exit_stderr: Vec<String>,
    /// Failures within the current failure window.
    pub failures_in_window: u32,
    /// Seconds until the scheduled restart (in backoff).
    pub restart_in_seconds: Option<f64>,
    /// How the limits are enforced.
    pub enforcement: Enforcement,
    /// The limits.
    pub limits: WorkerLimits,
    /// CPU added to the quota while the worker starts (the start-up boost), in cores; 0 once
    /// it is ready.
    pub cpu_boost_cores: f64,
    /// Live usage (last sample).
    pub usage: WorkerUsage,
    /// The worker's cgroup folders.
    pub cgroup: Vec<String>,
    /// The command line, secrets masked.
    pub command: String,
}

/// Progress of a rolling restart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rollout {
    /// `in_progress`, `completed` or `failed`.
    pub state: &'static str,
    /// Workers to restart, in order.
    pub workers: Vec<String>,
    /// Workers restarted and ready again.
    pub done: Vec<String>,
    /// The worker being restarted.
    pub current: Option<String>,
    /// Why it failed.
    pub message: Option<String>,
}

/// One pool as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Connect `group.id` of the pool.
    pub group_id: String,
    /// Workers the pool should have (after scaling).
    pub desired_workers: u32,
    /// Workers ready or running.
    pub ready_workers: usize,
    /// The last rolling restart.
    pub rollout: Option<Rollout>,
    /// Workers.
    pub workers: Vec<WorkerStatus>,
}

impl Supervisor {
    /// Metrics exporters of the workers that are up: (worker, pool, URL).
    pub fn metrics_targets(&self) -> Vec<(String, String, String)> {
        self.lock()
            .workers
            .iter()
            .filter(|(_, w)| w.snapshot.phase.is_up())
            .filter_map(|(id, w)| {
                Some((id.to_string(), id.pool.to_string(), w.plan.metrics_url()?))
            })
            .collect()
    }

    /// Every pool with its workers.
    pub fn status(&self) -> Vec<PoolStatus> {
        let inner = self.lock();
        let now = Instant::now();
        self.department
            .pools
            .iter()
            .map(|pool| {
                let workers: Vec<WorkerStatus> = inner
                    .workers
                    .iter()
                    .filter(|(id, _)| id.pool == pool.name)
                    .map(|(id, w)| self.worker_status(pool, id, w, now))
                    .collect();
                PoolStatus {
                    name: pool.name.clone(),
                    group_id: self.department.cluster_identity(&pool.name).group_id,
                    desired_workers: inner.pool_sizes.get(&pool.name).copied().unwrap_or(0),
                    ready_workers: workers.iter().filter(|w| w.state.is_up()).count(),
                    rollout: inner.rollouts.get(&pool.name).cloned(),
                    workers,
                }
            })
            .collect()
    }

    pub(super) fn worker_status(
        &self,
        pool: &Pool,
        id: &WorkerId,
        w: &WorkerEntry,
        now: Instant,
    ) -> WorkerStatus {
        let s = &w.snapshot;
        let name = id.to_string();
        WorkerStatus {
            id: name.clone(),
            pool: id.pool.to_string(),
            rest_url: w.plan.rest_url.clone(),
            state: s.phase,
            pid: s.pid,
            launches: s.launches,
            restarts: s.restarts,
            uptime_seconds: w
                .started_wall
                .and_then(|t| t.elapsed().ok())
                .map(|d| d.as_secs()),
            last_exit_message: s.last_exit.as_ref().map(ToString::to_string),
            last_exit: s.last_exit.clone(),
            last_exit_stderr: w.last_stderr.clone(),
            failures_in_window: s.failures_in_window,
            restart_in_seconds: s
                .restart_at
                .map(|at| at.saturating_duration_since(now).as_secs_f64()),
            enforcement: self.cgroups.enforcement(),
            cpu_boost_cores: f64::from(w.boost.map_or(0, |(m, _)| m)) / 1000.0,
            limits: WorkerLimits {
                cpu: f64::from(w.limits.cpu_millis) / 1000.0,
                memory_bytes: w.limits.memory_bytes,
                pids: w.limits.pids,
                heap_bytes: pool.worker.heap_bytes(),
                active_processor_count: pool.worker.active_processor_count(),
            },
            usage: w.usage.clone(),
            cgroup: self
                .cgroups
                .leaf_dirs(&name)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            command: masked_command_line(&self.command_for(w), &self.department.secrets),
        }
    }

    /// One worker's status.
    pub fn worker(&self, id: &str) -> Option<WorkerStatus> {
        let worker_id = WorkerId::parse(id)?;
        let inner = self.lock();
        let entry = inner.workers.get(&worker_id)?;
        let pool = self.department.pool(&worker_id.pool)?;
        Some(self.worker_status(pool, &worker_id, entry, Instant::now()))
    }

    /// REST URLs of the ready workers of `pool`.
    pub fn ready_worker_urls(&self, pool: &str) -> Vec<String> {
        self.lock()
            .workers
            .iter()
            .filter(|(id, w)| id.pool == pool && w.snapshot.phase.is_up())
            .map(|(_, w)| w.plan.rest_url.clone())
            .collect()
    }

    /// Waits until every worker is ready, or fails after `timeout` naming the ones that are not.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), SupervisorError> {
        self.wait_while_pending(timeout, |w| !w.phase.is_up())
            .await
            .map_err(|workers| SupervisorError::NotReady {
                waited: timeout,
                workers,
            })
    }

    /// Waits until the workers' first start is over: each one has been ready once, or its first
    /// launch ended (it exited, was held or stopped), at most `timeout`; returns the workers still
    /// starting when the wait gave up.
    pub async fn wait_first_start_over(&self, timeout: Duration) -> Result<(), String> {
        // A process that ended left its `last_exit` (never cleared): no first start pends then.
        self.wait_while_pending(timeout, |w| {
            w.phase == WorkerPhase::Starting && w.last_exit.is_none()
        })
        .await
    }

    /// Waits, waking on every published phase change, until no worker's snapshot is `pending`;
    /// after `timeout`, the pending ones, named with their phase and last exit.
    async fn wait_while_pending(
        &self,
        timeout: Duration,
        pending: impl Fn(&Snapshot) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            // Registered before the check, so a change between the check and the wait wakes it.
            let changed = self.phases.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let waiting: Vec<String> = self
                .lock()
                .workers
                .iter()
                .filter(|(_, w)| pending(&w.snapshot))
                .map(|(id, w)| {
                    let last = w
                        .snapshot
                        .last_exit
                        .as_ref()
                        .map(|e| format!(", last exit: {e}"))
                        .unwrap_or_default();
                    format!("{id} ({}{last})", w.snapshot.phase.as_str())
                })
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(waiting.join(", "));
            }
            // Every published phase change wakes it; the timer only bounds the wait.
            let wake = deadline.min(Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

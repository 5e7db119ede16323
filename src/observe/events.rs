//! The typed events of the supervisor and the bounded list that keeps the recent ones.
//!
//! Each event has a bounded [`Event::code`] (a metric label and the `event` field of logs and
//! of the list) and a human sentence. Events carry no secrets: reasons and codes only.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::cgroup::Enforcement;
use crate::model::WorkerId;
use crate::supervisor::lifecycle::ExitReason;

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something needs attention (a restart, degraded enforcement).
    Warn,
    /// Something needs a human (a worker held).
    Error,
}

/// Something that happened to a worker, a pool or the department.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A worker process was spawned.
    WorkerStarted {
        /// The worker.
        worker: WorkerId,
        /// Its pid.
        pid: u32,
        /// Launch number (1 = first).
        launch: u32,
    },
    /// A worker answers `GET /health` with 200.
    WorkerReady {
        /// The worker.
        worker: WorkerId,
        /// Time from spawn to ready.
        after: Duration,
    },
    /// A worker has been ready for the stable period; its backoff is reset.
    WorkerStable {
        /// The worker.
        worker: WorkerId,
    },
    /// A worker's process ended.
    WorkerExited {
        /// The worker.
        worker: WorkerId,
        /// Why.
        reason: ExitReason,
    },
    /// The kernel's OOM killer killed a worker at its cgroup memory limit.
    WorkerOomKilled {
        /// The worker.
        worker: WorkerId,
        /// OOM kills counted by its cgroup so far.
        oom_kills: u64,
    },
    /// A worker could not be spawned.
    WorkerSpawnFailed {
        /// The worker.
        worker: WorkerId,
        /// Bounded error code.
        code: &'static str,
        /// What failed (paths, no secrets).
        message: String,
    },
    /// A liveness check of a ready worker failed.
    WorkerUnresponsive {
        /// The worker.
        worker: WorkerId,
        /// Failed checks in a row.
        misses: u32,
    },
    /// A restart was scheduled after a failure.
    RestartScheduled {
        /// The worker.
        worker: WorkerId,
        /// The delay.
        delay: Duration,
        /// Failures in a row.
        attempt: u32,
    },
    /// A worker is held after too many failures in the window.
    WorkerHeld {
        /// The worker.
        worker: WorkerId,
        /// Failures in the window.
        failures: u32,
        /// The window.
        window: Duration,
    },
    /// An admin asked for a worker restart.
    WorkerRestartRequested {
        /// The worker.
        worker: WorkerId,
    },
    /// An admin cleared a held worker.
    WorkerCleared {
        /// The worker.
        worker: WorkerId,
    },
    /// A worker was stopped for good (shutdown or scale down).
    WorkerStopped {
        /// The worker.
        worker: WorkerId,
    },
    /// A pool's worker count changed.
    PoolScaled {
        /// The pool.
        pool: String,
        /// Workers before.
        from: u32,
        /// Workers after.
        to: u32,
    },
    /// A scale was refused (budget).
    ScaleRefused {
        /// The pool.
        pool: String,
        /// Workers asked for.
        workers: u32,
        /// Why.
        message: String,
    },
    /// A rolling restart of a pool began.
    RolloutStarted {
        /// The pool.
        pool: String,
        /// Workers to restart.
        workers: u32,
    },
    /// A rolling restart ended.
    RolloutFinished {
        /// The pool.
        pool: String,
        /// Whether every worker came back ready.
        ok: bool,
        /// Summary.
        message: String,
    },
    /// How limits are enforced, chosen at start.
    EnforcementSelected {
        /// The mode.
        mode: Enforcement,
        /// Controllers enforced.
        controllers: Vec<&'static str>,
    },
    /// Limits are not enforced by the kernel (degraded mode).
    EnforcementDegraded {
        /// Why.
        reason: String,
    },
    /// Leftovers of an earlier run (cgroups, processes) were cleaned at start.
    LeftoversCleaned {
        /// Cgroup leaves removed.
        cgroups: usize,
        /// Processes killed.
        processes: usize,
    },
    /// The guardrails refused a connector create or update (rule ids only: messages may quote
    /// config values).
    PolicyRejected {
        /// The connector.
        connector: String,
        /// `create` or `update`.
        operation: &'static str,
        /// Who asked (key id or token name).
        principal: String,
        /// The broken rules' ids (built-in ids, or Rego policy names).
        rules: Vec<String>,
    },
    /// The platform added defaults to a connector's config (audit trail).
    DefaultsApplied {
        /// The connector.
        connector: String,
        /// `create` or `update`.
        operation: &'static str,
        /// Who asked.
        principal: String,
        /// Keys and values added (never secrets: defaults are platform settings).
        defaults: Vec<(String, String)>,
    },
    /// Literal secrets of a connector were moved to its secret file (keys only).
    SecretsExternalized {
        /// The connector.
        connector: String,
        /// `create` or `update`.
        operation: &'static str,
        /// Who asked.
        principal: String,
        /// The config keys whose values moved.
        keys: Vec<String>,
    },
}

impl Event {
    /// Short, bounded code: metric label and `event` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WorkerStarted { .. } => "worker_started",
            Self::WorkerReady { .. } => "worker_ready",
            Self::WorkerStable { .. } => "worker_stable",
            Self::WorkerExited { .. } => "worker_exited",
            Self::WorkerOomKilled { .. } => "worker_oom_killed",
            Self::WorkerSpawnFailed { .. } => "worker_spawn_failed",
            Self::WorkerUnresponsive { .. } => "worker_unresponsive",
            Self::RestartScheduled { .. } => "restart_scheduled",
            Self::WorkerHeld { .. } => "worker_held",
            Self::WorkerRestartRequested { .. } => "worker_restart_requested",
            Self::WorkerCleared { .. } => "worker_cleared",
            Self::WorkerStopped { .. } => "worker_stopped",
            Self::PoolScaled { .. } => "pool_scaled",
            Self::ScaleRefused { .. } => "scale_refused",
            Self::RolloutStarted { .. } => "rollout_started",
            Self::RolloutFinished { .. } => "rollout_finished",
            Self::EnforcementSelected { .. } => "enforcement_selected",
            Self::EnforcementDegraded { .. } => "enforcement_degraded",
            Self::LeftoversCleaned { .. } => "leftovers_cleaned",
            Self::PolicyRejected { .. } => "policy_rejected",
            Self::DefaultsApplied { .. } => "policy_defaults_applied",
            Self::SecretsExternalized { .. } => "secrets_externalized",
        }
    }

    /// Severity.
    pub fn level(&self) -> Level {
        match self {
            Self::WorkerExited { reason, .. } if reason.is_failure() => Level::Warn,
            Self::WorkerOomKilled { .. }
            | Self::WorkerSpawnFailed { .. }
            | Self::WorkerUnresponsive { .. }
            | Self::RestartScheduled { .. }
            | Self::ScaleRefused { .. }
            | Self::EnforcementDegraded { .. }
            | Self::LeftoversCleaned { .. }
            | Self::PolicyRejected { .. } => Level::Warn,
            Self::RolloutFinished { ok: false, .. } | Self::WorkerHeld { .. } => Level::Error,
            _ => Level::Info,
        }
    }

    /// The worker concerned, if any.
    pub fn worker(&self) -> Option<String> {
        match self {
            Self::WorkerStarted { worker, .. }
            | Self::WorkerReady { worker, .. }
            | Self::WorkerStable { worker }
            | Self::WorkerExited { worker, .. }
            | Self::WorkerOomKilled { worker, .. }
            | Self::WorkerSpawnFailed { worker, .. }
            | Self::WorkerUnresponsive { worker, .. }
            | Self::RestartScheduled { worker, .. }
            | Self::WorkerHeld { worker, .. }
            | Self::WorkerRestartRequested { worker }
            | Self::WorkerCleared { worker }
            | Self::WorkerStopped { worker } => Some(worker.to_string()),
            _ => None,
        }
    }

    /// The pool concerned, if any.
    pub fn pool(&self) -> Option<String> {
        match self {
            Self::PoolScaled { pool, .. }
            | Self::ScaleRefused { pool, .. }
            | Self::RolloutStarted { pool, .. }
            | Self::RolloutFinished { pool, .. } => Some(pool.clone()),
            other => other.worker_id().map(|w| w.pool.clone()),
        }
    }

    fn worker_id(&self) -> Option<&WorkerId> {
        match self {
            Self::WorkerStarted { worker, .. }
            | Self::WorkerReady { worker, .. }
            | Self::WorkerStable { worker }
            | Self::WorkerExited { worker, .. }
            | Self::WorkerOomKilled { worker, .. }
            | Self::WorkerSpawnFailed { worker, .. }
            | Self::WorkerUnresponsive { worker, .. }
            | Self::RestartScheduled { worker, .. }
            | Self::WorkerHeld { worker, .. }
            | Self::WorkerRestartRequested { worker }
            | Self::WorkerCleared { worker }
            | Self::WorkerStopped { worker } => Some(worker),
            _ => None,
        }
    }

    /// A sentence for logs and the event list.
    pub fn message(&self) -> String {
        match self {
            Self::WorkerStarted {
                worker,
                pid,
                launch,
            } => {
                format!("Worker {worker} started (pid {pid}, launch {launch}).")
            }
            Self::WorkerReady { worker, after } => {
                format!(
                    "Worker {worker} is ready ({:.1}s after start).",
                    after.as_secs_f64()
                )
            }
            Self::WorkerStable { worker } => {
                format!("Worker {worker} is stable; its restart backoff is reset.")
            }
            Self::WorkerExited { worker, reason } => format!("Worker {worker} {reason}."),
            Self::WorkerOomKilled { worker, oom_kills } => format!(
                "Worker {worker} was OOM-killed by the kernel at its memory limit ({oom_kills} OOM kills so far)."
            ),
            Self::WorkerSpawnFailed {
                worker, message, ..
            } => format!("Worker {worker} could not be started: {message}."),
            Self::WorkerUnresponsive { worker, misses } => {
                format!("Worker {worker} failed {misses} liveness check(s) in a row.")
            }
            Self::RestartScheduled {
                worker,
                delay,
                attempt,
            } => format!(
                "Worker {worker} restarts in {:.1}s (failure {attempt} in a row).",
                delay.as_secs_f64()
            ),
            Self::WorkerHeld {
                worker,
                failures,
                window,
            } => format!(
                "Worker {worker} is held after {failures} failures within {}s; fix the cause, then clear it (POST /v1/workers/{worker}/clear).",
                window.as_secs()
            ),
            Self::WorkerRestartRequested { worker } => {
                format!("Restart of worker {worker} requested.")
            }
            Self::WorkerCleared { worker } => {
                format!("Worker {worker} was cleared and starts again.")
            }
            Self::WorkerStopped { worker } => format!("Worker {worker} stopped."),
            Self::PoolScaled { pool, from, to } => {
                format!("Pool {pool} scaled from {from} to {to} workers.")
            }
            Self::ScaleRefused {
                pool,
                workers,
                message,
            } => format!("Scaling pool {pool} to {workers} workers was refused: {message}."),
            Self::RolloutStarted { pool, workers } => {
                format!("Rolling restart of pool {pool} ({workers} workers) started.")
            }
            Self::RolloutFinished { pool, message, .. } => {
                format!("Rolling restart of pool {pool}: {message}.")
            }
            Self::EnforcementSelected { mode, controllers } => format!(
                "Worker limits are enforced with {mode} (controllers: {}).",
                controllers.join(", ")
            ),
            Self::EnforcementDegraded { reason } => format!(
                "Worker limits are NOT enforced by the kernel (enforcement: none): {reason}. Memory is watched from outside instead."
            ),
            Self::LeftoversCleaned { cgroups, processes } => format!(
                "Cleaned leftovers of an earlier run: {cgroups} cgroup(s), {processes} process(es)."
            ),
            Self::PolicyRejected {
                connector,
                operation,
                principal,
                rules,
            } => format!(
                "The {operation} of connector {connector} by {principal} was refused by the guardrails: {}.",
                rules.join(", ")
            ),
            Self::DefaultsApplied {
                connector,
                operation,
                principal,
                defaults,
            } => format!(
                "Platform defaults added to connector {connector} ({operation} by {principal}): {}.",
                defaults
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::SecretsExternalized {
                connector,
                operation,
                principal,
                keys,
            } => format!(
                "Secrets of connector {connector} ({operation} by {principal}) moved to its secret file: {}.",
                keys.join(", ")
            ),
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Sequence number, increasing from 1 per department.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    /// The department.
    pub department: String,
    /// [`Event::code`].
    pub event: &'static str,
    /// Severity.
    pub level: Level,
    /// The pool concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The worker concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The sentence.
    pub message: String,
}

/// The recent events, bounded.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<EventRecord>)>,
}

impl EventLog {
    /// A list keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    /// Appends `record`, numbering it.
    pub fn push(&self, mut record: EventRecord) {
        let mut inner = self.inner.lock().expect("event log lock");
        inner.0 += 1;
        record.seq = inner.0;
        if inner.1.len() == self.capacity {
            inner.1.pop_front();
        }
        inner.1.push_back(record);
    }

    /// Events with a sequence number above `after`, oldest first, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<EventRecord> {
        let inner = self.inner.lock().expect("event log lock");
        inner
            .1
            .iter()
            .filter(|r| r.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The last `limit` events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<EventRecord> {
        let inner = self.inner.lock().expect("event log lock");
        let skip = inner.1.len().saturating_sub(limit);
        inner.1.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str) -> EventRecord {
        EventRecord {
            seq: 0,
            time: time::OffsetDateTime::now_utc(),
            department: "d".into(),
            event: "worker_started",
            level: Level::Info,
            pool: None,
            worker: None,
            message: message.into(),
        }
    }

    #[test]
    fn the_log_is_bounded_and_numbered() {
        let log = EventLog::new(3);
        for i in 0..5 {
            log.push(record(&i.to_string()));
        }
        let all = log.recent(10);
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(log.since(4, 10).len(), 1);
        assert_eq!(log.recent(1)[0].message, "4");
    }

    #[test]
    fn guardrail_events_carry_rule_ids_and_keys_only() {
        let rejected = Event::PolicyRejected {
            connector: "dept1-a".into(),
            operation: "create",
            principal: "OPERATOR".into(),
            rules: vec!["naming.prefix".into(), "prod-tasks-max".into()],
        };
        assert_eq!(rejected.code(), "policy_rejected");
        assert_eq!(rejected.level(), Level::Warn);
        assert_eq!(rejected.pool(), None);
        assert_eq!(
            rejected.message(),
            "The create of connector dept1-a by OPERATOR was refused by the guardrails: naming.prefix, prod-tasks-max."
        );
        let applied = Event::DefaultsApplied {
            connector: "dept1-a".into(),
            operation: "update",
            principal: "ci".into(),
            defaults: vec![("errors.tolerance".into(), "all".into())],
        };
        assert_eq!(applied.level(), Level::Info);
        assert!(applied.message().contains("errors.tolerance=all"));
        let moved = Event::SecretsExternalized {
            connector: "dept1-a".into(),
            operation: "create",
            principal: "ci".into(),
            keys: vec!["connection.password".into()],
        };
        assert_eq!(moved.code(), "secrets_externalized");
        assert!(moved.message().ends_with("connection.password."));
    }

    #[test]
    fn events_name_their_worker_pool_and_level() {
        let held = Event::WorkerHeld {
            worker: WorkerId::new("heavy", 0),
            failures: 3,
            window: Duration::from_secs(600),
        };
        assert_eq!(held.code(), "worker_held");
        assert_eq!(held.level(), Level::Error);
        assert_eq!(held.pool().as_deref(), Some("heavy"));
        assert!(
            held.message().contains("/v1/workers/heavy-0/clear"),
            "{}",
            held.message()
        );
        let exit = Event::WorkerExited {
            worker: WorkerId::new("p", 1),
            reason: ExitReason::Shutdown,
        };
        assert_eq!(exit.level(), Level::Info, "a requested stop is no warning");
    }
}

//! The typed events of the supervisor and the bounded list that keeps the recent ones.
//!
//! Each event has a bounded [`Event::code`] (a metric label and the `event` field of logs and
//! of the list) and a human sentence. Events carry no secrets: reasons and codes only.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Enforcement, ExitReason, WorkerId};

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

/// A change made to a connector through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorChange {
    /// Created (POST, or PUT of a new config).
    Created,
    /// Config replaced or patched.
    Updated,
    /// Deleted.
    Deleted,
    /// Paused.
    Paused,
    /// Resumed.
    Resumed,
    /// Stopped (Apache API).
    Stopped,
    /// Restarted by hand (the connector, its tasks, or one task).
    Restarted,
    /// Offsets read/alter/reset requested.
    OffsetsRequested,
    /// Active topics reset (Apache API).
    TopicsReset,
}

impl ConnectorChange {
    /// The event code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Created => "connector_created",
            Self::Updated => "connector_updated",
            Self::Deleted => "connector_deleted",
            Self::Paused => "connector_paused",
            Self::Resumed => "connector_resumed",
            Self::Stopped => "connector_stopped",
            Self::Restarted => "connector_restarted",
            Self::OffsetsRequested => "offsets_requested",
            Self::TopicsReset => "connector_topics_reset",
        }
    }

    /// A verb for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Stopped => "stopped",
            Self::Restarted => "restarted",
            Self::OffsetsRequested => "given an offsets request",
            Self::TopicsReset => "given a topics reset",
        }
    }
}

/// Something that happened to a worker, a pool, a connector or the department.
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
    /// A starting worker's CPU quota was raised out of the department's unused CPU budget, until
    /// it is ready.
    StartupBoostApplied {
        /// The worker.
        worker: WorkerId,
        /// CPU added on top of its limit, in millicores.
        boost_millis: u32,
        /// Its own CPU limit, in millicores.
        limit_millis: u32,
    },
    /// A worker's start-up boost ended (it is ready, or its process ended): back to its limit.
    StartupBoostEnded {
        /// The worker.
        worker: WorkerId,
        /// How long the boost lasted.
        after: Duration,
    },
    /// A worker's process ended.
    WorkerExited {
        /// The worker.
        worker: WorkerId,
        /// Why.
        reason: ExitReason,
        /// The last lines the process wrote to stderr, redacted and bounded (failures only:
        /// the cause of an early exit, without opening files).
        stderr_tail: Vec<String>,
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
    /// A connector was changed through the API.
    ConnectorChanged {
        /// The connector.
        connector: String,
        /// What was done.
        change: ConnectorChange,
        /// Who did it (key id or token name).
        principal: String,
    },
    /// A connector or one of its tasks was seen FAILED.
    ConnectorFailed {
        /// The connector.
        connector: String,
        /// Its pool.
        pool: String,
        /// The failed task (`None`: the connector itself).
        task: Option<u32>,
        /// First line of the error, secrets masked.
        error: String,
    },
    /// The supervisor restarted a failed connector's failed parts.
    ConnectorAutoRestarted {
        /// The connector.
        connector: String,
        /// Its pool.
        pool: String,
        /// Restarts in its budget so far, this one included.
        attempt: u32,
        /// The budget.
        max: u32,
    },
    /// An automatic restart call was refused or failed.
    AutoRestartFailed {
        /// The connector.
        connector: String,
        /// Its pool.
        pool: String,
        /// Bounded error code.
        code: &'static str,
        /// What failed (scrubbed).
        message: String,
    },
    /// The restart of the worker a connector ran on was counted in the connector's budget.
    RestartBudgetCharged {
        /// The connector.
        connector: String,
        /// The worker that restarted.
        worker: String,
        /// Restarts in its budget so far.
        attempt: u32,
        /// The budget.
        max: u32,
    },
    /// A failed connector runs again (after automatic restarts).
    ConnectorRecovered {
        /// The connector.
        connector: String,
        /// Its pool.
        pool: String,
        /// Restarts it took.
        attempts: u32,
    },
    /// A connector used up its restart budget: no more automatic restarts until an operator
    /// restarts it.
    ConnectorHeld {
        /// The connector.
        connector: String,
        /// Its pool.
        pool: String,
        /// Restarts spent.
        attempts: u32,
    },
    /// An operator's restart released a held connector.
    ConnectorReleased {
        /// The connector.
        connector: String,
        /// Who restarted it.
        principal: String,
    },
    /// Kafka stopped answering the supervisor's check.
    KafkaUnreachable {
        /// What failed.
        message: String,
    },
    /// Kafka answers the supervisor's check again.
    KafkaReachable,
    /// The continuous GitOps mode saw a connector differ from its folder (or healed it).
    GitopsDrift {
        /// The connector.
        connector: String,
        /// Bounded kind: `missing`, `config`, `state`, `renamed`, `extra`, `unowned`.
        kind: &'static str,
        /// Whether heal mode put it back.
        healed: bool,
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
            Self::StartupBoostApplied { .. } => "startup_boost_applied",
            Self::StartupBoostEnded { .. } => "startup_boost_ended",
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
            Self::ConnectorChanged { change, .. } => change.code(),
            Self::ConnectorFailed { .. } => "connector_failed",
            Self::ConnectorAutoRestarted { .. } => "connector_auto_restarted",
            Self::AutoRestartFailed { .. } => "auto_restart_failed",
            Self::RestartBudgetCharged { .. } => "restart_budget_charged",
            Self::ConnectorRecovered { .. } => "connector_recovered",
            Self::ConnectorHeld { .. } => "connector_held",
            Self::ConnectorReleased { .. } => "connector_released",
            Self::KafkaUnreachable { .. } => "kafka_unreachable",
            Self::KafkaReachable => "kafka_reachable",
            Self::GitopsDrift { healed: false, .. } => "gitops_drift",
            Self::GitopsDrift { healed: true, .. } => "gitops_healed",
        }
    }

    /// Every code [`Event::code`] can return, for documentation and the events API.
    pub const CODES: &'static [&'static str] = &[
        "worker_started",
        "worker_ready",
        "worker_stable",
        "worker_exited",
        "startup_boost_applied",
        "startup_boost_ended",
        "worker_oom_killed",
        "worker_spawn_failed",
        "worker_unresponsive",
        "restart_scheduled",
        "worker_held",
        "worker_restart_requested",
        "worker_cleared",
        "worker_stopped",
        "pool_scaled",
        "scale_refused",
        "rollout_started",
        "rollout_finished",
        "enforcement_selected",
        "enforcement_degraded",
        "leftovers_cleaned",
        "connector_created",
        "connector_updated",
        "connector_deleted",
        "connector_paused",
        "connector_resumed",
        "connector_stopped",
        "connector_restarted",
        "offsets_requested",
        "connector_topics_reset",
        "connector_failed",
        "connector_auto_restarted",
        "auto_restart_failed",
        "restart_budget_charged",
        "connector_recovered",
        "connector_held",
        "connector_released",
        "kafka_unreachable",
        "kafka_reachable",
        "policy_rejected",
        "policy_defaults_applied",
        "secrets_externalized",
        "gitops_drift",
        "gitops_healed",
    ];

    /// The connector concerned, if any.
    pub fn connector(&self) -> Option<&str> {
        match self {
            Self::ConnectorChanged { connector, .. }
            | Self::ConnectorFailed { connector, .. }
            | Self::ConnectorAutoRestarted { connector, .. }
            | Self::AutoRestartFailed { connector, .. }
            | Self::RestartBudgetCharged { connector, .. }
            | Self::ConnectorRecovered { connector, .. }
            | Self::ConnectorHeld { connector, .. }
            | Self::ConnectorReleased { connector, .. }
            | Self::PolicyRejected { connector, .. }
            | Self::DefaultsApplied { connector, .. }
            | Self::SecretsExternalized { connector, .. }
            | Self::GitopsDrift { connector, .. } => Some(connector),
            _ => None,
        }
    }

    /// Who caused it (a key id or token name; never a secret), for changes made through the API.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Self::ConnectorChanged { principal, .. }
            | Self::ConnectorReleased { principal, .. }
            | Self::PolicyRejected { principal, .. }
            | Self::DefaultsApplied { principal, .. }
            | Self::SecretsExternalized { principal, .. } => Some(principal),
            _ => None,
        }
    }

    /// A bounded outcome: the exit reason of a worker, `ok` for a change, `failed`, `held`.
    pub fn outcome(&self) -> Option<&'static str> {
        match self {
            Self::WorkerExited { reason, .. } => Some(reason.code()),
            Self::ConnectorChanged { .. }
            | Self::ConnectorAutoRestarted { .. }
            | Self::ConnectorRecovered { .. }
            | Self::ConnectorReleased { .. }
            | Self::DefaultsApplied { .. }
            | Self::SecretsExternalized { .. } => Some("ok"),
            Self::PolicyRejected { .. } => Some("refused"),
            Self::AutoRestartFailed { code, .. } => Some(code),
            Self::ConnectorHeld { .. } | Self::WorkerHeld { .. } => Some("held"),
            Self::ConnectorFailed { .. } | Self::WorkerSpawnFailed { .. } => Some("failed"),
            _ => None,
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
            | Self::PolicyRejected { .. }
            | Self::ConnectorFailed { .. }
            | Self::ConnectorAutoRestarted { .. }
            | Self::AutoRestartFailed { .. }
            | Self::RestartBudgetCharged { .. }
            | Self::KafkaUnreachable { .. }
            | Self::GitopsDrift { healed: false, .. } => Level::Warn,
            Self::RolloutFinished { ok: false, .. }
            | Self::WorkerHeld { .. }
            | Self::ConnectorHeld { .. } => Level::Error,
            _ => Level::Info,
        }
    }

    /// The worker concerned, if any.
    pub fn worker(&self) -> Option<String> {
        match self {
            Self::RestartBudgetCharged { worker, .. } => Some(worker.clone()),
            other => other.worker_id().map(ToString::to_string),
        }
    }

    /// The pool concerned, if any.
    pub fn pool(&self) -> Option<String> {
        match self {
            Self::PoolScaled { pool, .. }
            | Self::ScaleRefused { pool, .. }
            | Self::RolloutStarted { pool, .. }
            | Self::RolloutFinished { pool, .. }
            | Self::ConnectorFailed { pool, .. }
            | Self::ConnectorAutoRestarted { pool, .. }
            | Self::AutoRestartFailed { pool, .. }
            | Self::ConnectorRecovered { pool, .. }
            | Self::ConnectorHeld { pool, .. } => Some(pool.clone()),
            other => other.worker_id().map(|w| w.pool.to_string()),
        }
    }

    fn worker_id(&self) -> Option<&WorkerId> {
        match self {
            Self::WorkerStarted { worker, .. }
            | Self::WorkerReady { worker, .. }
            | Self::WorkerStable { worker }
            | Self::WorkerExited { worker, .. }
            | Self::StartupBoostApplied { worker, .. }
            | Self::StartupBoostEnded { worker, .. }
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
            Self::WorkerExited {
                worker,
                reason,
                stderr_tail,
            } if !stderr_tail.is_empty() => format!(
                "Worker {worker} {reason}. Last lines of its stderr: {}",
                stderr_tail.join(" | ")
            ),
            Self::WorkerExited { worker, reason, .. } => format!("Worker {worker} {reason}."),
            Self::StartupBoostApplied {
                worker,
                boost_millis,
                limit_millis,
            } => format!(
                "Worker {worker} starts with a CPU boost: {} CPU (its limit {} plus {} of the \
                 department's unused budget) until it is ready.",
                crate::model::Cpu::from_millis(limit_millis + boost_millis),
                crate::model::Cpu::from_millis(*limit_millis),
                crate::model::Cpu::from_millis(*boost_millis),
            ),
            Self::StartupBoostEnded { worker, after } => format!(
                "Worker {worker}'s start-up CPU boost ended after {:.1}s; it is back to its limit.",
                after.as_secs_f64()
            ),
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
            Self::ConnectorChanged {
                connector,
                change,
                principal,
            } => format!(
                "Connector {connector} was {} by {principal}.",
                change.verb()
            ),
            Self::ConnectorFailed {
                connector,
                task,
                error,
                ..
            } => match task {
                Some(t) => format!("Task {t} of connector {connector} failed: {error}"),
                None => format!("Connector {connector} failed: {error}"),
            },
            Self::ConnectorAutoRestarted {
                connector,
                attempt,
                max,
                ..
            } => format!(
                "Connector {connector}: failed parts restarted automatically (restart {attempt} of {max})."
            ),
            Self::AutoRestartFailed {
                connector, message, ..
            } => format!("Automatic restart of connector {connector} failed: {message}"),
            Self::RestartBudgetCharged {
                connector,
                worker,
                attempt,
                max,
            } => format!(
                "Connector {connector} ran on worker {worker}, which restarted after a failure; that counts as restart {attempt} of {max} of the connector."
            ),
            Self::ConnectorRecovered {
                connector,
                attempts,
                ..
            } => format!("Connector {connector} runs again after {attempts} automatic restart(s)."),
            Self::ConnectorHeld {
                connector,
                attempts,
                ..
            } => format!(
                "Connector {connector} is held after {attempts} restarts: no more automatic restarts; fix the cause, then restart it (POST .../connectors/{connector}/restart)."
            ),
            Self::ConnectorReleased {
                connector,
                principal,
            } => format!(
                "Connector {connector} was restarted by {principal}; its hold is released and its restart budget is full again."
            ),
            Self::KafkaUnreachable { message } => {
                format!("Kafka does not answer the supervisor: {message}")
            }
            Self::KafkaReachable => "Kafka answers the supervisor again.".to_string(),
            Self::GitopsDrift {
                connector,
                kind,
                healed: false,
            } => format!("Connector {connector} differs from its GitOps folder ({kind} drift)."),
            Self::GitopsDrift {
                connector, kind, ..
            } => format!(
                "Connector {connector} was put back as its GitOps folder defines it ({kind} drift healed)."
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
    /// The connector concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Who caused it (key id or token name, never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Bounded outcome ([`Event::outcome`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
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
            connector: None,
            principal: None,
            outcome: None,
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

    fn one_of_each() -> Vec<Event> {
        let w = || WorkerId::new("p", 0);
        let c = || "d-c".to_string();
        let mut all = vec![
            Event::WorkerStarted {
                worker: w(),
                pid: 1,
                launch: 1,
            },
            Event::WorkerReady {
                worker: w(),
                after: Duration::ZERO,
            },
            Event::WorkerStable { worker: w() },
            Event::WorkerExited {
                worker: w(),
                reason: ExitReason::OomKilled,
                stderr_tail: vec!["Killed".into()],
            },
            Event::WorkerOomKilled {
                worker: w(),
                oom_kills: 1,
            },
            Event::StartupBoostApplied {
                worker: w(),
                boost_millis: 1000,
                limit_millis: 1000,
            },
            Event::StartupBoostEnded {
                worker: w(),
                after: Duration::ZERO,
            },
            Event::WorkerSpawnFailed {
                worker: w(),
                code: "exec_failed",
                message: "m".into(),
            },
            Event::WorkerUnresponsive {
                worker: w(),
                misses: 3,
            },
            Event::RestartScheduled {
                worker: w(),
                delay: Duration::ZERO,
                attempt: 1,
            },
            Event::WorkerHeld {
                worker: w(),
                failures: 5,
                window: Duration::ZERO,
            },
            Event::WorkerRestartRequested { worker: w() },
            Event::WorkerCleared { worker: w() },
            Event::WorkerStopped { worker: w() },
            Event::PoolScaled {
                pool: "p".into(),
                from: 1,
                to: 2,
            },
            Event::ScaleRefused {
                pool: "p".into(),
                workers: 9,
                message: "m".into(),
            },
            Event::RolloutStarted {
                pool: "p".into(),
                workers: 1,
            },
            Event::RolloutFinished {
                pool: "p".into(),
                ok: true,
                message: "m".into(),
            },
            Event::EnforcementSelected {
                mode: Enforcement::CgroupV2,
                controllers: vec![],
            },
            Event::EnforcementDegraded { reason: "r".into() },
            Event::LeftoversCleaned {
                cgroups: 0,
                processes: 0,
            },
            Event::ConnectorFailed {
                connector: c(),
                pool: "p".into(),
                task: Some(0),
                error: "e".into(),
            },
            Event::ConnectorAutoRestarted {
                connector: c(),
                pool: "p".into(),
                attempt: 1,
                max: 3,
            },
            Event::AutoRestartFailed {
                connector: c(),
                pool: "p".into(),
                code: "x",
                message: "m".into(),
            },
            Event::RestartBudgetCharged {
                connector: c(),
                worker: "p-0".into(),
                attempt: 1,
                max: 3,
            },
            Event::ConnectorRecovered {
                connector: c(),
                pool: "p".into(),
                attempts: 1,
            },
            Event::ConnectorHeld {
                connector: c(),
                pool: "p".into(),
                attempts: 3,
            },
            Event::ConnectorReleased {
                connector: c(),
                principal: "OP".into(),
            },
            Event::KafkaUnreachable {
                message: "m".into(),
            },
            Event::KafkaReachable,
            Event::PolicyRejected {
                connector: c(),
                operation: "create",
                principal: "OP".into(),
                rules: vec!["naming.prefix".into()],
            },
            Event::DefaultsApplied {
                connector: c(),
                operation: "create",
                principal: "OP".into(),
                defaults: vec![("errors.tolerance".into(), "all".into())],
            },
            Event::SecretsExternalized {
                connector: c(),
                operation: "create",
                principal: "OP".into(),
                keys: vec!["db.password".into()],
            },
            Event::GitopsDrift {
                connector: c(),
                kind: "config",
                healed: false,
            },
            Event::GitopsDrift {
                connector: c(),
                kind: "config",
                healed: true,
            },
        ];
        for change in [
            ConnectorChange::Created,
            ConnectorChange::Updated,
            ConnectorChange::Deleted,
            ConnectorChange::Paused,
            ConnectorChange::Resumed,
            ConnectorChange::Stopped,
            ConnectorChange::Restarted,
            ConnectorChange::OffsetsRequested,
            ConnectorChange::TopicsReset,
        ] {
            all.push(Event::ConnectorChanged {
                connector: c(),
                change,
                principal: "OP".into(),
            });
        }
        all
    }

    #[test]
    fn every_code_is_listed_once_and_connector_events_name_their_connector() {
        let all = one_of_each();
        let mut codes: Vec<&str> = all.iter().map(Event::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Event::CODES.len(), "{codes:?}");
        for e in &all {
            assert!(
                Event::CODES.contains(&e.code()),
                "{} is not in CODES",
                e.code()
            );
            assert!(!e.message().is_empty());
            if e.code().starts_with("connector_") {
                assert_eq!(e.connector(), Some("d-c"), "{}", e.code());
            }
        }
        let change = Event::ConnectorChanged {
            connector: "d-c".into(),
            change: ConnectorChange::Deleted,
            principal: "OP".into(),
        };
        assert_eq!(
            (change.principal(), change.outcome()),
            (Some("OP"), Some("ok"))
        );
        assert_eq!(change.message(), "Connector d-c was deleted by OP.");
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
            stderr_tail: Vec::new(),
        };
        assert_eq!(exit.level(), Level::Info, "a requested stop is no warning");
    }
}

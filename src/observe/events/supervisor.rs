//! Events of the supervisor: its workers' lives, its pools, and how limits are enforced.

use std::time::Duration;

use super::{Code, Level, TypedEvent};
use crate::model::Enforcement;
use crate::model::{Cpu, WorkerId};
use crate::model::{ExitReason, WorkerPhase};
use crate::observe::Metrics;

/// A worker process was spawned.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStarted {
    /// The worker.
    pub worker: WorkerId,
    /// Its pid.
    pub pid: u32,
    /// Launch number (1 = first).
    pub launch: u32,
}

impl TypedEvent for WorkerStarted {
    fn code(&self) -> Code {
        Code::WorkerStarted
    }

    fn message(&self) -> String {
        let Self {
            worker,
            pid,
            launch,
        } = self;
        format!("Worker {worker} started (pid {pid}, launch {launch}).")
    }

    concerns!(worker);
}

/// A worker answers `GET /health` with 200.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerReady {
    /// The worker.
    pub worker: WorkerId,
    /// Time from spawn to ready.
    pub after: Duration,
}

impl TypedEvent for WorkerReady {
    fn code(&self) -> Code {
        Code::WorkerReady
    }

    fn message(&self) -> String {
        format!(
            "Worker {} is ready ({:.1}s after start).",
            self.worker,
            self.after.as_secs_f64()
        )
    }

    concerns!(worker);
}

/// A worker has been ready for the stable period; its backoff is reset.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStable {
    /// The worker.
    pub worker: WorkerId,
}

impl TypedEvent for WorkerStable {
    fn code(&self) -> Code {
        Code::WorkerStable
    }

    fn message(&self) -> String {
        format!(
            "Worker {} is stable; its restart backoff is reset.",
            self.worker
        )
    }

    concerns!(worker);
}

/// A starting worker's CPU quota was raised out of the department's unused CPU budget, until it
/// is ready.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupBoostApplied {
    /// The worker.
    pub worker: WorkerId,
    /// CPU added on top of its limit, in millicores.
    pub boost_millis: u32,
    /// Its own CPU limit, in millicores.
    pub limit_millis: u32,
}

impl TypedEvent for StartupBoostApplied {
    fn code(&self) -> Code {
        Code::StartupBoostApplied
    }

    fn message(&self) -> String {
        format!(
            "Worker {} starts with a CPU boost: {} CPU (its limit {} plus {} of the \
             department's unused budget) until it is ready.",
            self.worker,
            Cpu::from_millis(self.limit_millis + self.boost_millis),
            Cpu::from_millis(self.limit_millis),
            Cpu::from_millis(self.boost_millis),
        )
    }

    fn record(&self, metrics: &Metrics) {
        metrics.cpu_boost(&self.worker, f64::from(self.boost_millis) / 1000.0);
    }

    concerns!(worker);
}

/// A worker's start-up boost ended (it is ready, or its process ended): back to its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupBoostEnded {
    /// The worker.
    pub worker: WorkerId,
    /// How long the boost lasted.
    pub after: Duration,
}

impl TypedEvent for StartupBoostEnded {
    fn code(&self) -> Code {
        Code::StartupBoostEnded
    }

    fn message(&self) -> String {
        format!(
            "Worker {}'s start-up CPU boost ended after {:.1}s; it is back to its limit.",
            self.worker,
            self.after.as_secs_f64()
        )
    }

    fn record(&self, metrics: &Metrics) {
        metrics.cpu_boost(&self.worker, 0.0);
    }

    concerns!(worker);
}

/// A worker's process ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerExited {
    /// The worker.
    pub worker: WorkerId,
    /// Why.
    pub reason: ExitReason,
    /// The last lines the process wrote to stderr, redacted and bounded (failures only: the
    /// cause of an early exit, without opening files).
    pub stderr_tail: Vec<String>,
}

impl TypedEvent for WorkerExited {
    fn code(&self) -> Code {
        Code::WorkerExited
    }

    fn message(&self) -> String {
        let Self {
            worker,
            reason,
            stderr_tail,
        } = self;
        if stderr_tail.is_empty() {
            format!("Worker {worker} {reason}.")
        } else {
            format!(
                "Worker {worker} {reason}. Last lines of its stderr: {}",
                stderr_tail.join(" | ")
            )
        }
    }

    fn level(&self) -> Level {
        if self.reason.is_failure() {
            Level::Warn
        } else {
            Level::Info
        }
    }

    fn outcome(&self) -> Option<&'static str> {
        Some(self.reason.code())
    }

    fn record(&self, metrics: &Metrics) {
        if self.reason.is_failure() || self.reason == ExitReason::AdminRestart {
            metrics.worker_restarted(&self.worker, &self.reason);
        }
    }

    concerns!(worker);
}

/// The kernel's OOM killer killed a worker at its cgroup memory limit.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOomKilled {
    /// The worker.
    pub worker: WorkerId,
    /// OOM kills counted by its cgroup so far.
    pub oom_kills: u64,
}

impl TypedEvent for WorkerOomKilled {
    fn code(&self) -> Code {
        Code::WorkerOomKilled
    }

    fn message(&self) -> String {
        format!(
            "Worker {} was OOM-killed by the kernel at its memory limit ({} OOM kills so far).",
            self.worker, self.oom_kills
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn record(&self, metrics: &Metrics) {
        metrics.worker_oom_killed(&self.worker);
    }

    concerns!(worker);
}

/// A worker could not be spawned.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpawnFailed {
    /// The worker.
    pub worker: WorkerId,
    /// Bounded error code.
    pub code: &'static str,
    /// What failed (paths, no secrets).
    pub message: String,
}

impl TypedEvent for WorkerSpawnFailed {
    fn code(&self) -> Code {
        Code::WorkerSpawnFailed
    }

    fn message(&self) -> String {
        format!(
            "Worker {} could not be started: {}.",
            self.worker, self.message
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("failed")
    }

    concerns!(worker);
}

/// A liveness check of a ready worker failed.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerUnresponsive {
    /// The worker.
    pub worker: WorkerId,
    /// Failed checks in a row.
    pub misses: u32,
}

impl TypedEvent for WorkerUnresponsive {
    fn code(&self) -> Code {
        Code::WorkerUnresponsive
    }

    fn message(&self) -> String {
        format!(
            "Worker {} failed {} liveness check(s) in a row.",
            self.worker, self.misses
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    concerns!(worker);
}

/// A restart was scheduled after a failure.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartScheduled {
    /// The worker.
    pub worker: WorkerId,
    /// The delay.
    pub delay: Duration,
    /// Failures in a row.
    pub attempt: u32,
}

impl TypedEvent for RestartScheduled {
    fn code(&self) -> Code {
        Code::RestartScheduled
    }

    fn message(&self) -> String {
        format!(
            "Worker {} restarts in {:.1}s (failure {} in a row).",
            self.worker,
            self.delay.as_secs_f64(),
            self.attempt
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    concerns!(worker);
}

/// A worker is held after too many failures in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerHeld {
    /// The worker.
    pub worker: WorkerId,
    /// Failures in the window.
    pub failures: u32,
    /// The window.
    pub window: Duration,
}

impl TypedEvent for WorkerHeld {
    fn code(&self) -> Code {
        Code::WorkerHeld
    }

    fn message(&self) -> String {
        let Self {
            worker, failures, ..
        } = self;
        format!(
            "Worker {worker} is held after {failures} failures within {}s; fix the cause, then clear it (POST /v1/workers/{worker}/clear).",
            self.window.as_secs()
        )
    }

    fn level(&self) -> Level {
        Level::Error
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("held")
    }

    concerns!(worker);
}

/// An admin asked for a worker restart.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRestartRequested {
    /// The worker.
    pub worker: WorkerId,
}

impl TypedEvent for WorkerRestartRequested {
    fn code(&self) -> Code {
        Code::WorkerRestartRequested
    }

    fn message(&self) -> String {
        format!("Restart of worker {} requested.", self.worker)
    }

    concerns!(worker);
}

/// An admin cleared a held worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCleared {
    /// The worker.
    pub worker: WorkerId,
}

impl TypedEvent for WorkerCleared {
    fn code(&self) -> Code {
        Code::WorkerCleared
    }

    fn message(&self) -> String {
        format!("Worker {} was cleared and starts again.", self.worker)
    }

    concerns!(worker);
}

/// A worker was stopped for good (shutdown or scale down).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStopped {
    /// The worker.
    pub worker: WorkerId,
}

impl TypedEvent for WorkerStopped {
    fn code(&self) -> Code {
        Code::WorkerStopped
    }

    fn message(&self) -> String {
        format!("Worker {} stopped.", self.worker)
    }

    concerns!(worker);
}

/// A worker's lifecycle moved to another phase. Routine: it sets the phase metric and is
/// counted and logged at debug level, but stays out of the event list (the phases that need a
/// person have events of their own: ready, held, stopped).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPhaseChanged {
    /// The worker.
    pub worker: WorkerId,
    /// The phase it is in now.
    pub to: WorkerPhase,
}

impl TypedEvent for WorkerPhaseChanged {
    fn code(&self) -> Code {
        Code::WorkerPhaseChanged
    }

    fn message(&self) -> String {
        format!("Worker {} is {}.", self.worker, self.to.as_str())
    }

    fn record(&self, metrics: &Metrics) {
        metrics.worker_phase(&self.worker.pool, &self.worker.to_string(), self.to);
    }

    fn routine(&self) -> bool {
        true
    }

    concerns!(worker);
}

/// A pool's worker count changed.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolScaled {
    /// The pool.
    pub pool: String,
    /// Workers before.
    pub from: u32,
    /// Workers after.
    pub to: u32,
}

impl TypedEvent for PoolScaled {
    fn code(&self) -> Code {
        Code::PoolScaled
    }

    fn message(&self) -> String {
        let Self { pool, from, to } = self;
        format!("Pool {pool} scaled from {from} to {to} workers.")
    }

    concerns!(pool);
}

/// A scale was refused (budget).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRefused {
    /// The pool.
    pub pool: String,
    /// Workers asked for.
    pub workers: u32,
    /// Why.
    pub message: String,
}

impl TypedEvent for ScaleRefused {
    fn code(&self) -> Code {
        Code::ScaleRefused
    }

    fn message(&self) -> String {
        let Self {
            pool,
            workers,
            message,
        } = self;
        format!("Scaling pool {pool} to {workers} workers was refused: {message}.")
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    concerns!(pool);
}

/// A rolling restart of a pool began.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutStarted {
    /// The pool.
    pub pool: String,
    /// Workers to restart.
    pub workers: u32,
}

impl TypedEvent for RolloutStarted {
    fn code(&self) -> Code {
        Code::RolloutStarted
    }

    fn message(&self) -> String {
        let Self { pool, workers } = self;
        format!("Rolling restart of pool {pool} ({workers} workers) started.")
    }

    concerns!(pool);
}

/// A rolling restart ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutFinished {
    /// The pool.
    pub pool: String,
    /// Whether every worker came back ready.
    pub ok: bool,
    /// Summary.
    pub message: String,
}

impl TypedEvent for RolloutFinished {
    fn code(&self) -> Code {
        Code::RolloutFinished
    }

    fn message(&self) -> String {
        format!("Rolling restart of pool {}: {}.", self.pool, self.message)
    }

    fn level(&self) -> Level {
        if self.ok { Level::Info } else { Level::Error }
    }

    concerns!(pool);
}

/// How limits are enforced, chosen at start.
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementSelected {
    /// The mode.
    pub mode: Enforcement,
    /// Controllers enforced.
    pub controllers: Vec<&'static str>,
}

impl TypedEvent for EnforcementSelected {
    fn code(&self) -> Code {
        Code::EnforcementSelected
    }

    fn message(&self) -> String {
        format!(
            "Worker limits are enforced with {} (controllers: {}).",
            self.mode,
            self.controllers.join(", ")
        )
    }

    fn record(&self, metrics: &Metrics) {
        metrics.set_enforcement(self.mode);
    }
}

/// Limits are not enforced by the kernel (degraded mode).
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementDegraded {
    /// Why.
    pub reason: String,
}

impl TypedEvent for EnforcementDegraded {
    fn code(&self) -> Code {
        Code::EnforcementDegraded
    }

    fn message(&self) -> String {
        format!(
            "Worker limits are NOT enforced by the kernel (enforcement: none): {}. Memory is watched from outside instead.",
            self.reason
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn record(&self, metrics: &Metrics) {
        metrics.set_enforcement(Enforcement::None);
    }
}

/// Leftovers of an earlier run (cgroups, processes) were cleaned at start.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftoversCleaned {
    /// Cgroup leaves removed.
    pub cgroups: usize,
    /// Processes killed.
    pub processes: usize,
}

impl TypedEvent for LeftoversCleaned {
    fn code(&self) -> Code {
        Code::LeftoversCleaned
    }

    fn message(&self) -> String {
        let Self { cgroups, processes } = self;
        format!(
            "Cleaned leftovers of an earlier run: {cgroups} cgroup(s), {processes} process(es)."
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }
}

//! How workers are supervised (`[supervision]`): cgroup mode, restart policy, start-up boost.

use std::fmt;

use serde::Serialize;

use super::units::Cpu;

/// What the department asks of cgroups (`supervision.cgroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupMode {
    /// Enforce the limits when cgroups are writable; otherwise start degraded, with a warning.
    Auto,
    /// Refuse to start when the limits cannot be enforced by the kernel.
    Required,
    /// Never touch cgroups (degraded mode on purpose).
    Off,
}

/// Department-wide supervision settings (`[supervision]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Supervision {
    /// Whether worker limits are enforced with cgroups.
    pub cgroups: CgroupMode,
    /// How often every worker's usage (CPU, memory, throttling, OOM kills) is sampled; in
    /// degraded mode this is also how often memory is checked against the limit.
    pub sample_interval: std::time::Duration,
    /// The policy of every pool, unless a pool overrides part of it.
    pub defaults: SupervisionPolicy,
    /// The CPU boost of starting workers (`startup_cpu_boost`, `startup_cpu_max`).
    pub startup_boost: StartupBoost,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            cgroups: CgroupMode::Auto,
            sample_interval: std::time::Duration::from_secs(5),
            defaults: SupervisionPolicy::default(),
            startup_boost: StartupBoost::default(),
        }
    }
}

/// A starting worker's CPU quota is raised out of the department's unused CPU budget until it is
/// ready, then dropped to its limit: the JVM's start (class loading, JIT) is CPU-bound and a
/// 1-CPU quota roughly doubles it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartupBoost {
    /// Whether starting workers are boosted at all.
    pub enabled: bool,
    /// Most CPU a starting worker gets, its own limit included (`None`: its limit plus all of
    /// the unused budget).
    pub max: Option<Cpu>,
}

impl Default for StartupBoost {
    fn default() -> Self {
        Self {
            enabled: true,
            max: None,
        }
    }
}

/// How the workers of one pool are kept alive and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisionPolicy {
    /// Time a worker gets between SIGTERM and SIGKILL of its whole cgroup.
    pub stop_grace: std::time::Duration,
    /// First restart delay after a failure; doubles with each failure in a row.
    pub backoff_min: std::time::Duration,
    /// Cap of the restart delay.
    pub backoff_max: std::time::Duration,
    /// A worker ready for this long is stable: its backoff starts again from `backoff_min`.
    pub stable_after: std::time::Duration,
    /// Failures within `failure_window` after which the worker is held (crash loop) until an
    /// admin restarts or clears it.
    pub max_failures: u32,
    /// The window of `max_failures`.
    pub failure_window: std::time::Duration,
    /// A worker not ready this long after its start is restarted (and it counts as a failure).
    pub start_timeout: std::time::Duration,
    /// Interval of the liveness checks (`GET /health`) of a ready worker.
    pub health_interval: std::time::Duration,
    /// Consecutive failed liveness checks after which a ready worker is restarted.
    pub health_failures: u32,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            stop_grace: Duration::from_secs(20),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            max_failures: 5,
            failure_window: Duration::from_secs(600),
            start_timeout: Duration::from_secs(300),
            health_interval: Duration::from_secs(10),
            health_failures: 3,
        }
    }
}

/// A pool's overrides of the department's [`SupervisionPolicy`]: `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    /// Overrides [`SupervisionPolicy::stop_grace`].
    pub stop_grace: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::backoff_min`].
    pub backoff_min: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::backoff_max`].
    pub backoff_max: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::stable_after`].
    pub stable_after: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::max_failures`].
    pub max_failures: Option<u32>,
    /// Overrides [`SupervisionPolicy::failure_window`].
    pub failure_window: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::start_timeout`].
    pub start_timeout: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::health_interval`].
    pub health_interval: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::health_failures`].
    pub health_failures: Option<u32>,
}

impl PolicyOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: SupervisionPolicy) -> SupervisionPolicy {
        SupervisionPolicy {
            stop_grace: self.stop_grace.unwrap_or(base.stop_grace),
            backoff_min: self.backoff_min.unwrap_or(base.backoff_min),
            backoff_max: self.backoff_max.unwrap_or(base.backoff_max),
            stable_after: self.stable_after.unwrap_or(base.stable_after),
            max_failures: self.max_failures.unwrap_or(base.max_failures),
            failure_window: self.failure_window.unwrap_or(base.failure_window),
            start_timeout: self.start_timeout.unwrap_or(base.start_timeout),
            health_interval: self.health_interval.unwrap_or(base.health_interval),
            health_failures: self.health_failures.unwrap_or(base.health_failures),
        }
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerPhase {
    /// Spawned (or about to be), not answering `GET /health` with 200 yet.
    Starting,
    /// Answering `GET /health` with 200.
    Ready,
    /// Ready for longer than `stable_after`: its backoff has been reset.
    Running,
    /// Being stopped by the supervisor (SIGTERM, grace, SIGKILL of its cgroup).
    Stopping,
    /// Exited; waiting for its restart delay.
    Backoff,
    /// Too many failures in the window (crash loop): not restarted until an admin says so.
    Held,
    /// Stopped for good (shutdown or scale down).
    Stopped,
}

impl WorkerPhase {
    /// Stable text for logs, events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Backoff => "backoff",
            Self::Held => "held",
            Self::Stopped => "stopped",
        }
    }

    /// Whether the worker serves requests (ready or running).
    pub fn is_up(self) -> bool {
        matches!(self, Self::Ready | Self::Running)
    }

    /// Whether a process is (supposed to be) alive.
    pub fn has_process(self) -> bool {
        matches!(
            self,
            Self::Starting | Self::Ready | Self::Running | Self::Stopping
        )
    }
}

/// Why a worker's process ended (or could not start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ExitReason {
    /// Exited on its own with this code.
    ExitCode {
        /// The exit code.
        code: i32,
    },
    /// Killed by a signal nobody in the supervisor sent.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// Killed by the kernel's OOM killer (the cgroup's `oom_kill` counter went up).
    #[serde(rename = "OOMKilled")]
    OomKilled,
    /// Stopped by the liveness watchdog.
    LivenessFailed,
    /// Stopped because it was not ready within the start timeout.
    StartTimeout,
    /// Stopped because its memory (RSS) went over its limit in degraded mode.
    MemoryBudgetExceeded,
    /// Could not be spawned.
    SpawnFailed {
        /// Bounded error code.
        code: String,
    },
    /// Stopped at an admin's request.
    AdminRestart,
    /// Stopped for shutdown or scale down.
    Shutdown,
}

impl ExitReason {
    /// Short, bounded code for metric labels and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ExitCode { .. } => "exit_code",
            Self::Signal { .. } => "signal",
            Self::OomKilled => "oom_killed",
            Self::LivenessFailed => "liveness_failed",
            Self::StartTimeout => "start_timeout",
            Self::MemoryBudgetExceeded => "memory_budget_exceeded",
            Self::SpawnFailed { .. } => "spawn_failed",
            Self::AdminRestart => "admin_restart",
            Self::Shutdown => "shutdown",
        }
    }

    /// Every code [`ExitReason::code`] can return (for pre-registered metric series).
    pub const CODES: [&'static str; 9] = [
        "exit_code",
        "signal",
        "oom_killed",
        "liveness_failed",
        "start_timeout",
        "memory_budget_exceeded",
        "spawn_failed",
        "admin_restart",
        "shutdown",
    ];

    /// Whether the exit counts against the restart budget.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::AdminRestart | Self::Shutdown)
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ExitCode { code } => write!(f, "exited with code {code}"),
            Self::Signal { signal } => write!(f, "killed by signal {signal}"),
            Self::OomKilled => f.write_str("OOMKilled: killed by the kernel at its memory limit"),
            Self::LivenessFailed => f.write_str("stopped: liveness checks failed"),
            Self::StartTimeout => f.write_str("stopped: not ready within the start timeout"),
            Self::MemoryBudgetExceeded => f.write_str("stopped: memory over its limit"),
            Self::SpawnFailed { code } => write!(f, "could not be started ({code})"),
            Self::AdminRestart => f.write_str("stopped for an admin restart"),
            Self::Shutdown => f.write_str("stopped by the supervisor"),
        }
    }
}

/// How the worker limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// cgroup v1 hierarchies (one per controller).
    CgroupV1,
    /// The cgroup v2 unified hierarchy.
    CgroupV2,
    /// Not enforced by the kernel (degraded mode): memory is watched from outside.
    None,
}

impl Enforcement {
    /// Every mode, for metrics that show one of them as active.
    pub const ALL: [Enforcement; 3] = [Self::CgroupV1, Self::CgroupV2, Self::None];

    /// Stable text for status and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV1 => "cgroup_v1",
            Self::CgroupV2 => "cgroup_v2",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Usage figures read from one worker's cgroup. `None` where the controller is not there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CgroupStats {
    /// CPU time used, in microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// Time throttled by the CPU quota, in microseconds.
    pub cpu_throttled_usec: Option<u64>,
    /// Enforcement periods in which the cgroup was throttled.
    pub cpu_nr_throttled: Option<u64>,
    /// Enforcement periods elapsed.
    pub cpu_nr_periods: Option<u64>,
    /// Memory in use, in bytes.
    pub memory_bytes: Option<u64>,
    /// Highest memory use seen, in bytes.
    pub memory_peak_bytes: Option<u64>,
    /// Memory limit read back, in bytes (`None` when unlimited).
    pub memory_limit_bytes: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup, since it was created.
    pub oom_kills: Option<u64>,
    /// Processes and threads in the cgroup.
    pub pids: Option<u64>,
}

//! The department's pools of Connect workers: start them in their cgroups, keep them alive,
//! scale and roll-restart pools, stop everything on shutdown.
//!
//! This is the async shell around the pure [`lifecycle`] state machine: one task per worker
//! feeds it what happens (spawned, probe results, exits with the cgroup's OOM counter, admin
//! commands, time) and carries out what it decides (spawn, stop, wait). The supervisor owns the
//! shared view that the API reads (state, pid, limits, usage of every worker), the department's
//! [`Observer`] (events and metrics), and the cgroup driver. It never holds its lock across an
//! `await`.

pub mod boost;
pub mod lifecycle;
mod remote;
mod sampler;
mod scraper;
mod stale;

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cgroup::{self, CgroupDriver, CgroupError, Enforcement, Limits};
use crate::model::{Department, Pool, ResourceUsage, SecretRules, WorkerId};
use crate::observe::Observer;
use crate::observe::events::{
    EnforcementDegraded, EnforcementSelected, LeftoversCleaned, PoolScaled, RestartScheduled,
    RolloutFinished, RolloutStarted, ScaleRefused, StartupBoostApplied, StartupBoostEnded,
    WorkerCleared, WorkerExited, WorkerHeld, WorkerOomKilled, WorkerPhaseChanged, WorkerReady,
    WorkerRestartRequested, WorkerSpawnFailed, WorkerStable, WorkerStarted, WorkerStopped,
    WorkerUnresponsive,
};
use crate::observe::logs::StderrTail;
use crate::process::{Output, SpawnSpec, Spawner, signal_group};
use crate::runtime::{RuntimeError, RuntimeLayout};
use crate::worker::{Health, WorkerPlan, probe};
use lifecycle::{Effect, ExitReason, Input, Lifecycle, Phase, Probe, ProcessExit, Snapshot};

pub use remote::{RemotePools, RemoteWorker, statefulset_urls};
pub use sampler::Usage;

/// Default time a worker gets to stop after SIGTERM (see `supervision.stop_grace`).
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// Interval between readiness probes of a starting worker.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Timeout of one probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Time on top of the longest stop grace that [`Supervisor::shutdown`] allows before it kills
/// what is left.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(3);
/// Most workers one pool may have.
pub const MAX_POOL_WORKERS: u32 = 64;
/// File, in a worker's folder, with the pid and start time of its current process (how a
/// restarted supervisor finds stale workers when there are no cgroups).
pub const PID_FILE: &str = "worker.pid";
/// Env var giving a script launcher its worker id.
pub const ENV_WORKER_ID: &str = "CS_WORKER_ID";
/// Env var giving a script launcher its worker folder.
pub const ENV_WORKER_DIR: &str = "CS_WORKER_DIR";
/// Env var naming the file a script launcher creates when ready (and removes to fail liveness).
pub const ENV_READY_FILE: &str = "CS_READY_FILE";
/// The readiness file of a script launcher, in its worker folder.
pub const READY_FILE: &str = "ready";
/// What replaces a secret value in a shown command line.
pub const MASK: &str = "********";
/// How long an exited worker's stderr may stay open (held by a grandchild) before its tail is
/// taken as it is.
pub const STDERR_TAIL_WAIT: Duration = Duration::from_secs(1);

/// Why the department could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The Connect runtime is missing or incomplete.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A worker's REST port is taken.
    #[error(
        "port {port} for worker {worker} is in use; free it or change supervisor.rest_port_base"
    )]
    PortInUse {
        /// The worker.
        worker: WorkerId,
        /// The port.
        port: u16,
    },
    /// A file in the state folder could not be written.
    #[error("cannot prepare {path}: {source}")]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Workers did not become ready in time.
    #[error("workers not ready after {waited:?}: {workers}")]
    NotReady {
        /// How long was waited.
        waited: Duration,
        /// The workers and their states.
        workers: String,
    },
    /// cgroups are required (`supervision.cgroups = "required"`) and could not be set up.
    #[error(
        "worker limits cannot be enforced with cgroups: {0}; run privileged with a writable cgroup \
         filesystem, or set supervision.cgroups = \"auto\" to start degraded"
    )]
    Cgroup(CgroupError),
    /// Another live supervisor of the department holds its lock; nothing was touched.
    #[error(transparent)]
    Locked(#[from] crate::lock::LockError),
}

impl From<CgroupError> for SupervisorError {
    fn from(e: CgroupError) -> Self {
        match e {
            CgroupError::Locked(lock) => Self::Locked(lock),
            other => Self::Cgroup(other),
        }
    }
}

impl SupervisorError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Runtime(e) => e.code(),
            Self::PortInUse { .. } => "port_in_use",
            Self::StateDir { .. } => "state_dir",
            Self::NotReady { .. } => "workers_not_ready",
            Self::Cgroup(_) => "cgroups_unavailable",
            Self::Locked(e) => e.code(),
        }
    }
}

/// Why an admin operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No pool of that name.
    #[error("pool \"{0}\" does not exist in this department")]
    UnknownPool(String),
    /// No worker of that id.
    #[error("worker \"{0}\" does not exist in this department")]
    UnknownWorker(String),
    /// The worker count is out of range.
    #[error("{workers} workers is out of range for a pool; use 0 to {max}")]
    InvalidCount {
        /// Asked for.
        workers: u32,
        /// Most allowed.
        max: u32,
    },
    /// The department budget would be exceeded.
    #[error("scaling pool \"{pool}\" to {workers} workers is refused: {}", problems.join("; "))]
    OverBudget {
        /// The pool.
        pool: String,
        /// Asked for.
        workers: u32,
        /// Each budget exceeded, naming the budget and the figure.
        problems: Vec<String>,
    },
    /// Clear applies to held workers only.
    #[error(
        "worker \"{worker}\" is not held (it is {state}); clear applies to held workers only, use restart instead"
    )]
    NotHeld {
        /// The worker.
        worker: String,
        /// Its state.
        state: &'static str,
    },
    /// A rolling restart of the pool is under way.
    #[error("a rolling restart of pool \"{0}\" is under way; wait for it to finish")]
    RolloutInProgress(String),
    /// The supervisor is stopping.
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    /// A new worker's files could not be written.
    #[error("cannot prepare {path}: {source}")]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No port for a new worker.
    #[error("no free REST port for worker {0}")]
    NoPort(String),
    /// In the kubernetes topology the pods of a pool are Kubernetes' to scale and restart.
    #[error(
        "{action} pool \"{pool}\" is done by Kubernetes in the kubernetes topology: to scale, set \
         the chart value worker.pools.{pool}.replicas (or the pool's workers in the department \
         file) and upgrade the release; to restart, run `kubectl rollout restart statefulset` on \
         the pool's StatefulSet (<release>-pool-{pool}); a crashed worker is restarted in place \
         by its pod's entrypoint"
    )]
    OwnedByKubernetes {
        /// What was asked (`scaling`, `restarting a worker of`).
        action: &'static str,
        /// The pool.
        pool: String,
    },
}

impl AdminError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPool(_) => "unknown_pool",
            Self::UnknownWorker(_) => "unknown_worker",
            Self::InvalidCount { .. } => "invalid_worker_count",
            Self::OverBudget { .. } => "over_budget",
            Self::NotHeld { .. } => "not_held",
            Self::RolloutInProgress(_) => "rollout_in_progress",
            Self::ShuttingDown => "shutting_down",
            Self::StateDir { .. } => "state_dir",
            Self::NoPort(_) => "no_port",
            Self::OwnedByKubernetes { .. } => "owned_by_kubernetes",
        }
    }

    /// The HTTP status the admin API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownPool(_) | Self::UnknownWorker(_) => 404,
            Self::InvalidCount { .. } | Self::OverBudget { .. } => 400,
            Self::NotHeld { .. } | Self::RolloutInProgress(_) | Self::OwnedByKubernetes { .. } => {
                409
            }
            Self::ShuttingDown => 503,
            Self::StateDir { .. } | Self::NoPort(_) => 500,
        }
    }
}

/// What runs as a worker.
#[derive(Debug, Clone, Default)]
pub enum Launcher {
    /// The Connect worker JVM of the plan; ready when `GET /health` answers 200.
    #[default]
    Jvm,
    /// A program instead of the JVM, ready once it creates the file named by `$CS_READY_FILE`
    /// (and failing liveness once it removes it). For tests of supervision mechanics (signals,
    /// forks, crash loops, memory) without a JVM.
    Script {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// How a supervisor is built; the defaults are what the daemon uses.
#[derive(Debug, Clone, Default)]
pub struct SupervisorOptions {
    /// What runs as a worker.
    pub launcher: Launcher,
    /// A cgroup driver to use instead of detecting one (it is prepared at start).
    pub cgroups: Option<Arc<dyn CgroupDriver>>,
    /// The kubernetes topology: the workers run elsewhere (one per pod) and are only reached
    /// at these URLs; nothing is spawned.
    pub remote: Option<RemotePools>,
}

/// Commands an admin (or the sampler) sends to a worker's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Restart,
    Clear,
    Stop,
    MemoryOverLimit,
}

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
    pub state: Phase,
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
    pub usage: Usage,
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

struct WorkerEntry {
    plan: WorkerPlan,
    limits: Limits,
    snapshot: Snapshot,
    started_wall: Option<SystemTime>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    usage: Usage,
    last_stderr: Vec<String>,
    /// The start-up boost out: millicores on top of the limit, and since when.
    boost: Option<(u32, Instant)>,
}

#[derive(Default)]
struct Inner {
    workers: BTreeMap<WorkerId, WorkerEntry>,
    pool_sizes: BTreeMap<String, u32>,
    rollouts: BTreeMap<String, Rollout>,
    ports_in_use: Vec<u16>,
}

/// The running department: its workers and their shared view.
pub struct Supervisor {
    department: Arc<Department>,
    runtime: RuntimeLayout,
    launcher: Launcher,
    cgroups: Arc<dyn CgroupDriver>,
    degraded: Option<String>,
    /// Whether the workers are remote (kubernetes topology): reached, not run.
    remote: bool,
    observer: Arc<Observer>,
    inner: Mutex<Inner>,
    admin: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
    background: Mutex<Vec<JoinHandle<()>>>,
    http: reqwest::Client,
    connector_watch: std::sync::OnceLock<Arc<crate::healing::ConnectorWatch>>,
    /// The state folder's lock, held for the supervisor's life (the cgroup folder's is held by
    /// the driver).
    _state_lock: crate::lock::DepartmentLock,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("department", &self.department.id)
            .field("enforcement", &self.cgroups.enforcement())
            .finish()
    }
}

impl Supervisor {
    /// Starts every pool of `department` from `runtime`. Returns once every worker is spawned (not
    /// ready: see [`Supervisor::wait_until_ready`]).
    pub async fn start(
        department: Department,
        runtime: RuntimeLayout,
    ) -> Result<Arc<Self>, SupervisorError> {
        Self::start_with(department, runtime, SupervisorOptions::default()).await
    }

    /// [`Supervisor::start`] with explicit options (a script launcher or an injected cgroup
    /// driver, for tests).
    pub async fn start_with(
        department: Department,
        runtime: RuntimeLayout,
        options: SupervisorOptions,
    ) -> Result<Arc<Self>, SupervisorError> {
        if matches!(options.launcher, Launcher::Jvm) && options.remote.is_none() {
            runtime.check()?;
        }
        // First of all: a live supervisor of this department keeps its workers, its state and
        // its cgroups; this one refuses before it cleans anything.
        let state_lock = crate::lock::DepartmentLock::state_dir(
            &department.id,
            &department.supervisor.state_dir,
        )?;
        let observer = Observer::for_department(&department);
        let selected = match options.cgroups {
            // Remote workers are limited by their pods' cgroups, not by this process.
            None if options.remote.is_some() => cgroup::Selected {
                driver: Arc::new(cgroup::noop::NoopDriver),
                degraded: None,
                leftovers: Default::default(),
            },
            Some(driver) => {
                let leftovers = driver.prepare()?;
                let degraded = (driver.enforcement() == Enforcement::None)
                    .then(|| "no cgroup driver was given".to_string());
                cgroup::Selected {
                    driver,
                    degraded,
                    leftovers,
                }
            }
            None => {
                let (mode, id) = (department.supervision.cgroups, department.id.clone());
                tokio::task::spawn_blocking(move || cgroup::select(mode, &id))
                    .await
                    .expect("cgroup selection does not panic")?
            }
        };
        match &selected.degraded {
            _ if options.remote.is_some() => {}
            Some(reason) => observer.emit(EnforcementDegraded {
                reason: reason.clone(),
            }),
            None => observer.emit(EnforcementSelected {
                mode: selected.driver.enforcement(),
                controllers: selected.driver.controllers(),
            }),
        }
        let workers_dir = department
            .supervisor
            .state_dir
            .join(crate::worker::WORKERS_DIR);
        let stale_processes = if options.remote.is_some() {
            0
        } else {
            stale::kill_stale_workers(&workers_dir)
        };
        if !selected.leftovers.cgroups.is_empty() || stale_processes > 0 {
            observer.emit(LeftoversCleaned {
                cgroups: selected.leftovers.cgroups.len(),
                processes: selected.leftovers.processes.max(stale_processes),
            });
        }
        let ports = if options.remote.is_some() {
            BTreeMap::new()
        } else {
            allocate_ports(&department)?
        };
        let (shutdown, _) = watch::channel(false);
        let supervisor = Arc::new(Self {
            department: Arc::new(department),
            runtime,
            launcher: options.launcher,
            cgroups: selected.driver,
            degraded: selected.degraded,
            remote: options.remote.is_some(),
            observer,
            inner: Mutex::new(Inner::default()),
            admin: tokio::sync::Mutex::new(()),
            shutdown,
            background: Mutex::new(Vec::new()),
            http: crate::connect::ConnectClient::default_http(),
            connector_watch: std::sync::OnceLock::new(),
            _state_lock: state_lock,
        });
        {
            let mut inner = supervisor.lock();
            // Every REST port is taken before any exporter port is picked.
            inner.ports_in_use.extend(ports.values().copied());
            if let Some(remote) = &options.remote {
                for pool in &supervisor.department.pools {
                    let urls = remote.get(&pool.name).cloned().unwrap_or_default();
                    inner
                        .pool_sizes
                        .insert(pool.name.clone(), urls.len() as u32);
                    for (index, url) in urls.iter().enumerate() {
                        let id = WorkerId::new(&pool.name, index as u32);
                        supervisor.add_remote_worker(&mut inner, pool, id, url);
                    }
                }
            }
            let local = if supervisor.remote {
                &[][..]
            } else {
                &supervisor.department.pools[..]
            };
            for pool in local {
                inner.pool_sizes.insert(pool.name.clone(), pool.workers);
                for index in 0..pool.workers {
                    let id = WorkerId::new(&pool.name, index);
                    let port = ports[&id];
                    supervisor
                        .add_worker(&mut inner, pool, id, port)
                        .map_err(|(path, source)| SupervisorError::StateDir { path, source })?;
                }
            }
        }
        let sampler = tokio::spawn(sampler::run(Arc::clone(&supervisor)));
        supervisor.lock_background().push(sampler);
        let scraper = tokio::spawn(scraper::run(Arc::clone(&supervisor)));
        supervisor.lock_background().push(scraper);
        Ok(supervisor)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("worker table lock poisoned")
    }

    fn lock_background(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.background.lock().expect("background lock poisoned")
    }

    /// Plans worker `id`, writes its files and starts its task.
    fn add_worker(
        self: &Arc<Self>,
        inner: &mut Inner,
        pool: &Pool,
        id: WorkerId,
        port: u16,
    ) -> Result<(), (PathBuf, std::io::Error)> {
        let plan = self.with_exporter(
            WorkerPlan::new(&self.department, pool, id.clone(), port, &self.runtime),
            &inner.ports_in_use,
        );
        if let Some(metrics_port) = plan.metrics_port {
            inner.ports_in_use.push(metrics_port);
        }
        plan.write_files().map_err(|e| (plan.dir.clone(), e))?;
        let limits = Limits {
            cpu_millis: pool.worker.cpu.millis(),
            memory_bytes: pool.worker.memory.bytes(),
            pids: pool.worker.pids,
        };
        self.observer.metrics().worker_added(
            &pool.name,
            &id.to_string(),
            f64::from(limits.cpu_millis) / 1000.0,
            limits.memory_bytes,
        );
        let policy = self.department.policy(pool);
        let (lifecycle, effects) = Lifecycle::new(policy);
        let (commands, receiver) = mpsc::unbounded_channel();
        inner.ports_in_use.push(port);
        inner.workers.insert(
            id.clone(),
            WorkerEntry {
                plan,
                limits,
                snapshot: lifecycle.snapshot(),
                started_wall: None,
                commands,
                task: None,
                usage: Usage::default(),
                last_stderr: Vec::new(),
                boost: None,
            },
        );
        let sup = Arc::clone(self);
        let task_id = id.clone();
        let task =
            tokio::spawn(
                async move { sup.run_worker(task_id, lifecycle, effects, receiver).await },
            );
        if let Some(entry) = inner.workers.get_mut(&id) {
            entry.task = Some(task);
        }
        Ok(())
    }

    /// `plan` with the JMX exporter agent when `[metrics] jmx_exporter` is on and the runtime has
    /// the agent and its rules (a JVM launcher only).
    fn with_exporter(&self, plan: WorkerPlan, in_use: &[u16]) -> WorkerPlan {
        if !self.department.observe.metrics.jmx_exporter || !matches!(self.launcher, Launcher::Jvm)
        {
            return plan;
        }
        let rules = self.runtime.jmx_exporter_config();
        let (Some(agent), true) = (self.runtime.jmx_exporter_agent(), rules.is_file()) else {
            tracing::warn!(runtime = %self.runtime.root().display(), "The runtime has no JMX exporter agent or rules; Connect's own metrics are not collected. Run `connect-supervisor runtime fetch`.");
            return plan;
        };
        // A free port that no worker's REST listener (bound later) will take.
        let host = &self.department.supervisor.worker_host;
        let port = (0..50)
            .filter_map(|_| free_port(host).ok())
            .find(|p| *p != plan.rest_port && !in_use.contains(p));
        match port {
            Some(port) => plan.with_metrics_exporter(port, &agent, &rules),
            None => {
                tracing::warn!(worker = %plan.id, "No free port for the worker's metrics exporter; its Connect metrics are not collected.");
                plan
            }
        }
    }

    /// Metrics exporters of the workers that are up: (worker, pool, URL).
    pub fn metrics_targets(&self) -> Vec<(String, String, String)> {
        self.lock()
            .workers
            .iter()
            .filter(|(_, w)| w.snapshot.phase.is_up())
            .filter_map(|(id, w)| Some((id.to_string(), id.pool.clone(), w.plan.metrics_url()?)))
            .collect()
    }

    /// The department's connector watch, started by the first caller (one per supervisor, however
    /// many API states are built over it).
    pub fn connector_watch(
        &self,
        start: impl FnOnce() -> Arc<crate::healing::ConnectorWatch>,
    ) -> Arc<crate::healing::ConnectorWatch> {
        Arc::clone(self.connector_watch.get_or_init(start))
    }

    /// Turns `true` when the supervisor starts shutting down.
    pub fn shutting_down(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The department this supervisor runs, as loaded (pool sizes changed by scaling are in
    /// [`Supervisor::status`]).
    pub fn department(&self) -> &Arc<Department> {
        &self.department
    }

    /// The department's events and metrics.
    pub fn observer(&self) -> &Arc<Observer> {
        &self.observer
    }

    /// How worker limits are enforced.
    pub fn enforcement(&self) -> Enforcement {
        self.cgroups.enforcement()
    }

    /// Why limits are not enforced by the kernel, in degraded mode.
    pub fn degraded_reason(&self) -> Option<&str> {
        self.degraded.as_deref()
    }

    /// The cgroup driver in use.
    pub fn cgroups(&self) -> &Arc<dyn CgroupDriver> {
        &self.cgroups
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

    fn worker_status(
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
            pool: id.pool.clone(),
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
        let worker_id = parse_worker_id(id)?;
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
        let deadline = Instant::now() + timeout;
        loop {
            let pending: Vec<String> = self
                .lock()
                .workers
                .iter()
                .filter(|(_, w)| !w.snapshot.phase.is_up())
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
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SupervisorError::NotReady {
                    waited: timeout,
                    workers: pending.join(", "),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every worker (SIGTERM, grace, SIGKILL of its cgroup) and waits for their tasks,
    /// at most the longest stop grace plus [`SHUTDOWN_MARGIN`]; then removes the department's
    /// cgroups.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let _admin = self.admin.lock().await;
        let (tasks, ids): (Vec<JoinHandle<()>>, Vec<WorkerId>) = {
            let mut inner = self.lock();
            let mut tasks = Vec::new();
            let mut ids = Vec::new();
            for (id, w) in inner.workers.iter_mut() {
                let _ = w.commands.send(Command::Stop);
                if let Some(task) = w.task.take() {
                    tasks.push(task);
                }
                ids.push(id.clone());
            }
            (tasks, ids)
        };
        let grace = self
            .department
            .pools
            .iter()
            .map(|p| self.department.policy(p).stop_grace)
            .max()
            .unwrap_or(STOP_GRACE);
        let deadline = Instant::now() + grace + SHUTDOWN_MARGIN;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        for task in self.lock_background().drain(..) {
            task.abort();
        }
        // Whatever is left (a task that overran the bound): kill it and remove the leaves.
        let driver = Arc::clone(&self.cgroups);
        let _ = tokio::task::spawn_blocking(move || {
            for id in ids {
                let name = id.to_string();
                let _ = driver.kill(&name);
                let _ = driver.remove(&name);
            }
            if let Err(e) = driver.remove_department() {
                tracing::warn!(error = %e, "The department's cgroup could not be removed.");
            }
        })
        .await;
        // The workers' last lines (and the audit records) get a few seconds to reach Kafka.
        let observer = Arc::clone(&self.observer);
        let _ = tokio::task::spawn_blocking(move || observer.close()).await;
    }

    /// Scales `pool` to `workers`, checking the department budget first. New workers start
    /// (not ready yet when this returns); removed workers (highest index first) are stopped.
    pub async fn scale(
        self: &Arc<Self>,
        pool_name: &str,
        workers: u32,
    ) -> Result<(u32, u32), AdminError> {
        let pool = self
            .department
            .pool(pool_name)
            .ok_or_else(|| AdminError::UnknownPool(pool_name.to_string()))?
            .clone();
        self.refuse_remote(pool_name, "scaling")?;
        if workers > MAX_POOL_WORKERS {
            return Err(AdminError::InvalidCount {
                workers,
                max: MAX_POOL_WORKERS,
            });
        }
        let _admin = self.admin.lock().await;
        if *self.shutdown.borrow() {
            return Err(AdminError::ShuttingDown);
        }
        let (from, problems) = {
            let inner = self.lock();
            if inner
                .rollouts
                .get(pool_name)
                .is_some_and(|r| r.state == "in_progress")
            {
                return Err(AdminError::RolloutInProgress(pool_name.to_string()));
            }
            let from = inner.pool_sizes.get(pool_name).copied().unwrap_or(0);
            let usage = ResourceUsage::of(self.department.pools.iter().map(|p| {
                let count = if p.name == pool_name {
                    workers
                } else {
                    inner.pool_sizes.get(&p.name).copied().unwrap_or(0)
                };
                (count, p.worker)
            }));
            (from, usage.exceeds(&self.department.budget))
        };
        if !problems.is_empty() && workers > from {
            let error = AdminError::OverBudget {
                pool: pool_name.to_string(),
                workers,
                problems,
            };
            self.observer.emit(ScaleRefused {
                pool: pool_name.to_string(),
                workers,
                message: error.to_string(),
            });
            return Err(error);
        }
        if workers > from {
            // The new workers' limits take budget that start-up boosts may be borrowing.
            self.end_all_boosts();
            let mut inner = self.lock();
            for index in from..workers {
                let id = WorkerId::new(pool_name, index);
                let port = next_port(&self.department, &inner.ports_in_use)
                    .ok_or_else(|| AdminError::NoPort(id.to_string()))?;
                self.add_worker(&mut inner, &pool, id, port)
                    .map_err(|(path, source)| AdminError::StateDir { path, source })?;
                inner.pool_sizes.insert(pool_name.to_string(), index + 1);
            }
        } else {
            for index in (workers..from).rev() {
                let id = WorkerId::new(pool_name, index);
                let task = {
                    let mut inner = self.lock();
                    inner.pool_sizes.insert(pool_name.to_string(), index);
                    inner.workers.get_mut(&id).and_then(|w| {
                        let _ = w.commands.send(Command::Stop);
                        w.task.take()
                    })
                };
                if let Some(task) = task {
                    let _ = task.await;
                }
                let mut inner = self.lock();
                if let Some(entry) = inner.workers.remove(&id) {
                    inner.ports_in_use.retain(|p| {
                        *p != entry.plan.rest_port && Some(*p) != entry.plan.metrics_port
                    });
                }
                self.observer
                    .metrics()
                    .worker_removed(pool_name, &id.to_string());
            }
        }
        self.observer.emit(PoolScaled {
            pool: pool_name.to_string(),
            from,
            to: workers,
        });
        Ok((from, workers))
    }

    fn send(&self, id: &str, command: Command) -> Result<WorkerId, AdminError> {
        let unknown = || AdminError::UnknownWorker(id.to_string());
        let worker_id = parse_worker_id(id).ok_or_else(unknown)?;
        let inner = self.lock();
        let entry = inner.workers.get(&worker_id).ok_or_else(unknown)?;
        if command == Command::Clear && entry.snapshot.phase != Phase::Held {
            return Err(AdminError::NotHeld {
                worker: id.to_string(),
                state: entry.snapshot.phase.as_str(),
            });
        }
        entry
            .commands
            .send(command)
            .map_err(|_| AdminError::ShuttingDown)?;
        Ok(worker_id)
    }

    /// Restarts one worker now (stop, then start without backoff) and resets its restart budget;
    /// also starts a held worker.
    pub fn restart_worker(&self, id: &str) -> Result<(), AdminError> {
        if *self.shutdown.borrow() {
            return Err(AdminError::ShuttingDown);
        }
        self.refuse_remote_worker(id, "restarting a worker of")?;
        let worker = self.send(id, Command::Restart)?;
        self.observer.emit(WorkerRestartRequested { worker });
        Ok(())
    }

    /// Clears a held worker: resets its restart budget and starts it.
    pub fn clear_worker(&self, id: &str) -> Result<(), AdminError> {
        if *self.shutdown.borrow() {
            return Err(AdminError::ShuttingDown);
        }
        self.refuse_remote_worker(id, "clearing a worker of")?;
        let worker = self.send(id, Command::Clear)?;
        self.observer.emit(WorkerCleared { worker });
        Ok(())
    }

    /// Starts a rolling restart of `pool`: one worker at a time, each back to ready before the
    /// next. Returns at once; progress is in [`PoolStatus::rollout`].
    pub fn restart_pool(self: &Arc<Self>, pool: &str) -> Result<Rollout, AdminError> {
        if self.department.pool(pool).is_none() {
            return Err(AdminError::UnknownPool(pool.to_string()));
        }
        self.refuse_remote(pool, "a rolling restart of")?;
        if *self.shutdown.borrow() {
            return Err(AdminError::ShuttingDown);
        }
        let rollout = {
            let mut inner = self.lock();
            if inner
                .rollouts
                .get(pool)
                .is_some_and(|r| r.state == "in_progress")
            {
                return Err(AdminError::RolloutInProgress(pool.to_string()));
            }
            let workers: Vec<String> = inner
                .workers
                .keys()
                .filter(|id| id.pool == pool)
                .map(ToString::to_string)
                .collect();
            let rollout = Rollout {
                state: "in_progress",
                workers,
                done: Vec::new(),
                current: None,
                message: None,
            };
            inner.rollouts.insert(pool.to_string(), rollout.clone());
            rollout
        };
        self.observer.emit(RolloutStarted {
            pool: pool.to_string(),
            workers: rollout.workers.len() as u32,
        });
        let sup = Arc::clone(self);
        let pool_name = pool.to_string();
        let task = tokio::spawn(async move { sup.run_rollout(pool_name).await });
        self.lock_background().push(task);
        Ok(rollout)
    }

    async fn run_rollout(self: Arc<Self>, pool: String) {
        let workers = self
            .lock()
            .rollouts
            .get(&pool)
            .map(|r| r.workers.clone())
            .unwrap_or_default();
        let policy = self
            .department
            .pool(&pool)
            .map(|p| self.department.policy(p))
            .unwrap_or_default();
        let update = |f: &dyn Fn(&mut Rollout)| {
            if let Some(r) = self.lock().rollouts.get_mut(&pool) {
                f(r);
            }
        };
        for worker in &workers {
            update(&|r| r.current = Some(worker.clone()));
            let result = self
                .restart_and_wait(worker, policy.stop_grace + policy.start_timeout)
                .await;
            if let Err(message) = result {
                update(&|r| {
                    r.state = "failed";
                    r.current = None;
                    r.message = Some(message.clone());
                });
                self.observer.emit(RolloutFinished {
                    pool: pool.clone(),
                    ok: false,
                    message: format!("stopped at worker {worker}: {message}"),
                });
                return;
            }
            update(&|r| r.done.push(worker.clone()));
        }
        update(&|r| {
            r.state = "completed";
            r.current = None;
        });
        self.observer.emit(RolloutFinished {
            pool,
            ok: true,
            message: format!("{} worker(s) restarted, each ready again", workers.len()),
        });
    }

    async fn restart_and_wait(&self, worker: &str, timeout: Duration) -> Result<(), String> {
        let id = parse_worker_id(worker).ok_or("unknown worker")?;
        let before = self
            .lock()
            .workers
            .get(&id)
            .map(|w| w.snapshot.launches)
            .ok_or("the worker was removed")?;
        self.restart_worker(worker).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (phase, launches) = self
                .lock()
                .workers
                .get(&id)
                .map(|w| (w.snapshot.phase, w.snapshot.launches))
                .ok_or("the worker was removed")?;
            if launches > before && phase.is_up() {
                return Ok(());
            }
            if phase == Phase::Held || phase == Phase::Stopped {
                return Err(format!("worker {worker} is {}", phase.as_str()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "worker {worker} was not ready again within {}s",
                    timeout.as_secs()
                ));
            }
        }
    }

    // === the worker task ===

    async fn run_worker(
        self: Arc<Self>,
        id: WorkerId,
        mut life: Lifecycle,
        mut effects: Vec<Effect>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let name = id.to_string();
        let mut child: Option<Child> = None;
        let mut tail: Option<StderrTail> = None;
        let mut exit_stderr: Vec<String> = Vec::new();
        let mut oom_base = 0;
        let mut pending: VecDeque<Input> = VecDeque::new();
        let mut next_probe = Instant::now();
        loop {
            for effect in std::mem::take(&mut effects) {
                match effect {
                    Effect::Spawn => match self.spawn_worker(&id, &life).await {
                        Ok((c, base, t)) => {
                            pending.push_back(Input::Spawned {
                                pid: c.id().unwrap_or(0),
                            });
                            child = Some(c);
                            tail = Some(t);
                            oom_base = base;
                            next_probe = Instant::now() + PROBE_INTERVAL;
                        }
                        Err((code, message)) => {
                            self.observer.emit(WorkerSpawnFailed {
                                worker: id.clone(),
                                code,
                                message,
                            });
                            pending.push_back(Input::SpawnFailed { code: code.into() });
                        }
                    },
                    Effect::StopProcess(_) => {
                        if let Some(mut c) = child.take() {
                            let exit = self
                                .stop_process(&name, &mut c, life.policy().stop_grace, oom_base)
                                .await;
                            self.end_boost(&id, false);
                            exit_stderr = collect_tail(tail.take()).await;
                            pending.push_back(Input::Exited(exit));
                        }
                    }
                    Effect::Transition { to, .. } => {
                        if to == Phase::Ready {
                            self.end_boost(&id, true);
                        }
                        self.on_transition(&id, to, &life)
                    }
                    Effect::Exited(reason) => {
                        if reason == ExitReason::OomKilled {
                            let kills = self
                                .cgroups
                                .stats(&name)
                                .ok()
                                .and_then(|s| s.oom_kills)
                                .unwrap_or(0);
                            self.observer.emit(WorkerOomKilled {
                                worker: id.clone(),
                                oom_kills: kills,
                            });
                        }
                        let stderr_tail = if reason.is_failure() {
                            std::mem::take(&mut exit_stderr)
                        } else {
                            Vec::new()
                        };
                        if reason.is_failure()
                            && let Some(entry) = self.lock().workers.get_mut(&id)
                        {
                            entry.last_stderr = stderr_tail.clone();
                        }
                        self.observer.emit(WorkerExited {
                            worker: id.clone(),
                            reason,
                            stderr_tail,
                        });
                    }
                    Effect::RestartScheduled { delay, attempt } => {
                        self.observer.emit(RestartScheduled {
                            worker: id.clone(),
                            delay,
                            attempt,
                        })
                    }
                    Effect::Held { failures } => self.observer.emit(WorkerHeld {
                        worker: id.clone(),
                        failures,
                        window: life.policy().failure_window,
                    }),
                    Effect::Unresponsive { misses } => self.observer.emit(WorkerUnresponsive {
                        worker: id.clone(),
                        misses,
                    }),
                    Effect::BudgetReset => {}
                }
            }
            self.publish(&id, &life);
            if let Some(input) = pending.pop_front() {
                effects = life.handle(input, Instant::now(), rand::random());
                continue;
            }
            if life.phase() == Phase::Stopped {
                break;
            }
            let phase = life.phase();
            let probing =
                child.is_some() && matches!(phase, Phase::Starting | Phase::Ready | Phase::Running);
            let deadline = life.next_deadline();
            enum Woke {
                Exit(std::io::Result<ExitStatus>),
                Command(Option<Command>),
                Deadline,
                Probe,
            }
            let woke = tokio::select! {
                status = wait_for(&mut child) => Woke::Exit(status),
                command = commands.recv() => Woke::Command(command),
                _ = sleep_until_opt(deadline) => Woke::Deadline,
                _ = tokio::time::sleep_until(next_probe), if probing => Woke::Probe,
            };
            let input = match woke {
                Woke::Exit(status) => {
                    let pid = child.take().and_then(|c| c.id());
                    let exit = self.exit_of(&name, status, oom_base);
                    self.kill_leftovers(&name, pid).await;
                    self.end_boost(&id, false);
                    exit_stderr = collect_tail(tail.take()).await;
                    Input::Exited(exit)
                }
                Woke::Command(Some(Command::Restart)) => Input::Restart,
                Woke::Command(Some(Command::Clear)) => Input::Clear,
                Woke::Command(Some(Command::MemoryOverLimit)) => Input::MemoryOverLimit,
                Woke::Command(Some(Command::Stop) | None) => Input::Stop,
                Woke::Deadline => Input::Tick,
                Woke::Probe => {
                    let result = self.probe(&id, phase).await;
                    let interval = if phase == Phase::Starting {
                        PROBE_INTERVAL
                    } else {
                        life.policy().health_interval
                    };
                    next_probe = Instant::now() + interval;
                    Input::Probe(result)
                }
            };
            effects = life.handle(input, Instant::now(), rand::random());
        }
        let driver = Arc::clone(&self.cgroups);
        let leaf = name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = driver.kill(&leaf);
            for _ in 0..20 {
                match driver.remove(&leaf) {
                    Err(CgroupError::Busy { .. }) => std::thread::sleep(Duration::from_millis(50)),
                    _ => break,
                }
            }
        })
        .await;
        self.observer.emit(WorkerStopped { worker: id });
    }

    /// Grants worker `id` its start-up boost out of the unused CPU budget (recorded in its
    /// entry); 0 when boosts are off, not enforced, or there is no headroom.
    fn grant_boost(&self, inner: &mut Inner, id: &WorkerId) -> u32 {
        let settings = self.department.supervision.startup_boost;
        if !settings.enabled
            || !self.cgroups.sets_cpu_quota()
            || !self.cgroups.controllers().contains(&"cpu")
        {
            return 0;
        }
        let limits_millis = inner
            .workers
            .values()
            .map(|w| u64::from(w.limits.cpu_millis))
            .sum();
        let granted_millis = inner
            .workers
            .iter()
            .filter(|(other, _)| *other != id)
            .filter_map(|(_, w)| w.boost.map(|(m, _)| u64::from(m)))
            .sum();
        let Some(entry) = inner.workers.get_mut(id) else {
            return 0;
        };
        let grant = boost::grant(&boost::BoostRequest {
            budget_millis: self.department.budget.cpu.millis(),
            limits_millis,
            granted_millis,
            limit_millis: entry.limits.cpu_millis,
            max_millis: settings.max.map(|c| c.millis()),
            host_millis: boost::host_millis(),
        });
        entry.boost = (grant > 0).then(|| (grant, Instant::now()));
        grant
    }

    /// Ends worker `id`'s start-up boost, if it has one: back to its own quota (`requota`: the
    /// process lives on; a leaf without a process is rewritten at its next launch anyway).
    fn end_boost(&self, id: &WorkerId, requota: bool) {
        let (boost, limits) = {
            let mut inner = self.lock();
            let Some(entry) = inner.workers.get_mut(id) else {
                return;
            };
            (entry.boost.take(), entry.limits)
        };
        let Some((_, since)) = boost else {
            return;
        };
        if requota && let Err(e) = self.cgroups.set_cpu_quota(&id.to_string(), &limits) {
            tracing::warn!(worker = %id, error = %e, "Cannot drop the worker's CPU quota back to its limit.");
        }
        self.observer.emit(StartupBoostEnded {
            worker: id.clone(),
            after: since.elapsed(),
        });
    }

    /// Takes back a grant whose launch failed (no boost was applied, so no event).
    fn forget_boost(&self, id: &WorkerId) {
        if let Some(entry) = self.lock().workers.get_mut(id) {
            entry.boost = None;
        }
    }

    /// Ends every start-up boost (the budget is about to be taken by new workers).
    fn end_all_boosts(&self) {
        let boosted: Vec<WorkerId> = self
            .lock()
            .workers
            .iter()
            .filter(|(_, w)| w.boost.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in boosted {
            self.end_boost(&id, true);
        }
    }

    fn command_for(&self, entry: &WorkerEntry) -> SpawnSpec {
        match &self.launcher {
            Launcher::Jvm => entry.plan.command.clone(),
            Launcher::Script { program, args } => {
                let mut spec = SpawnSpec::new(program, args.clone());
                spec.current_dir = Some(entry.plan.dir.clone());
                spec.output = Output::Piped;
                spec.env = vec![
                    (ENV_WORKER_ID.into(), entry.plan.id.to_string().into()),
                    (ENV_WORKER_DIR.into(), entry.plan.dir.clone().into()),
                    (
                        ENV_READY_FILE.into(),
                        entry.plan.dir.join(READY_FILE).into(),
                    ),
                ];
                spec
            }
        }
    }

    /// Creates the worker's cgroup (limits re-applied at every launch) and spawns its process
    /// inside it. Returns the child and the cgroup's OOM-kill count before the launch.
    async fn spawn_worker(
        &self,
        id: &WorkerId,
        life: &Lifecycle,
    ) -> Result<(Child, u64, StderrTail), (&'static str, String)> {
        let name = id.to_string();
        let (mut spec, limits, dir, boost) = {
            let mut inner = self.lock();
            let entry = inner
                .workers
                .get(id)
                .ok_or(("worker_removed", "the worker was removed".to_string()))?;
            let found = (
                self.command_for(entry),
                entry.limits,
                entry.plan.dir.clone(),
            );
            let boost = self.grant_boost(&mut inner, id);
            (found.0, found.1, found.2, boost)
        };
        // The start runs with its boost; the quota drops to the limit once it is ready.
        let launch = Limits {
            cpu_millis: limits.cpu_millis + boost,
            ..limits
        };
        let driver = Arc::clone(&self.cgroups);
        let leaf = name.clone();
        let created = tokio::task::spawn_blocking(move || {
            // Leftovers of the previous launch (helpers of a crashed JVM) must not share it.
            let _ = driver.kill(&leaf);
            driver.create(&leaf, &launch)?;
            Ok::<_, CgroupError>(
                driver
                    .stats(&leaf)
                    .ok()
                    .and_then(|s| s.oom_kills)
                    .unwrap_or(0),
            )
        })
        .await
        .expect("cgroup setup does not panic");
        let oom_base = match created {
            Ok(base) => base,
            Err(e) => {
                self.forget_boost(id);
                return Err((e.code(), e.to_string()));
            }
        };
        if matches!(self.launcher, Launcher::Script { .. }) {
            let _ = std::fs::remove_file(dir.join(READY_FILE));
        }
        spec.cgroup_procs = self.cgroups.procs_files(&name);
        let mut child = match Spawner::global().spawn(spec).await {
            Ok(child) => child,
            Err(e) => {
                self.forget_boost(id);
                return Err((e.code(), e.to_string()));
            }
        };
        // The output is read for the whole life of the process: parsed, buffered per connector
        // and worker, forwarded; the pipes are always drained, so a worker never blocks on them.
        let tail = self.observer.logs().attach(
            &id.pool,
            &name,
            &dir,
            child.stdout.take(),
            child.stderr.take(),
        );
        let pid = child.id().unwrap_or(0);
        stale::write_pid_file(&dir, pid);
        if let Some(entry) = self.lock().workers.get_mut(id) {
            entry.started_wall = Some(SystemTime::now());
        }
        self.observer.emit(WorkerStarted {
            worker: id.clone(),
            pid,
            launch: life.snapshot().launches + 1,
        });
        if boost > 0 {
            self.observer.emit(StartupBoostApplied {
                worker: id.clone(),
                boost_millis: boost,
                limit_millis: limits.cpu_millis,
            });
        }
        Ok((child, oom_base, tail))
    }

    /// SIGTERM to the worker's process group, `grace` to exit, then SIGKILL of its whole cgroup
    /// and group; grandchildren are killed in every case.
    async fn stop_process(
        &self,
        name: &str,
        child: &mut Child,
        grace: Duration,
        oom_base: u64,
    ) -> ProcessExit {
        let pid = child.id();
        if let Some(pid) = pid {
            let _ = signal_group(pid, Signal::SIGTERM);
        }
        let status = match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                self.kill_leftovers(name, pid).await;
                child.wait().await
            }
        };
        self.kill_leftovers(name, pid).await;
        self.exit_of(name, status, oom_base)
    }

    async fn kill_leftovers(&self, name: &str, pid: Option<u32>) {
        if let Some(pid) = pid {
            let _ = signal_group(pid, Signal::SIGKILL);
        }
        let driver = Arc::clone(&self.cgroups);
        let leaf = name.to_string();
        let _ = tokio::task::spawn_blocking(move || driver.kill(&leaf)).await;
    }

    fn exit_of(
        &self,
        name: &str,
        status: std::io::Result<ExitStatus>,
        oom_base: u64,
    ) -> ProcessExit {
        use std::os::unix::process::ExitStatusExt;
        let oom_now = self
            .cgroups
            .stats(name)
            .ok()
            .and_then(|s| s.oom_kills)
            .unwrap_or(0);
        let (code, signal) = match status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        ProcessExit {
            code,
            signal,
            oom_killed: oom_now > oom_base,
        }
    }

    async fn probe(&self, id: &WorkerId, phase: Phase) -> Probe {
        match &self.launcher {
            Launcher::Jvm => {
                let url = match self.lock().workers.get(id) {
                    Some(w) => w.plan.rest_url.clone(),
                    None => return Probe::Failed,
                };
                match probe(&self.http, &url, PROBE_TIMEOUT).await {
                    Health::Ready => Probe::Ready,
                    Health::Starting => Probe::Starting,
                    Health::Unhealthy(_) | Health::Unreachable(_) => Probe::Failed,
                }
            }
            Launcher::Script { .. } => {
                let file = self
                    .lock()
                    .workers
                    .get(id)
                    .map(|w| w.plan.dir.join(READY_FILE));
                match file {
                    Some(f) if f.exists() => Probe::Ready,
                    _ if phase == Phase::Starting => Probe::Starting,
                    _ => Probe::Failed,
                }
            }
        }
    }

    fn on_transition(&self, id: &WorkerId, to: Phase, life: &Lifecycle) {
        self.observer.emit(WorkerPhaseChanged {
            worker: id.clone(),
            to,
        });
        let snapshot = life.snapshot();
        match to {
            Phase::Ready => self.observer.emit(WorkerReady {
                worker: id.clone(),
                after: snapshot.started_at.map(|t| t.elapsed()).unwrap_or_default(),
            }),
            Phase::Running => self.observer.emit(WorkerStable { worker: id.clone() }),
            _ => {}
        }
    }

    fn publish(&self, id: &WorkerId, life: &Lifecycle) {
        if let Some(entry) = self.lock().workers.get_mut(id) {
            entry.snapshot = life.snapshot();
            if entry.snapshot.pid.is_none() {
                entry.started_wall = None;
            }
        }
    }
}

async fn collect_tail(tail: Option<StderrTail>) -> Vec<String> {
    match tail {
        Some(t) => t.collect(STDERR_TAIL_WAIT).await,
        None => Vec::new(),
    }
}

async fn wait_for(child: &mut Option<Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Parses `<pool>-<n>`.
pub fn parse_worker_id(text: &str) -> Option<WorkerId> {
    let (pool, index) = text.rsplit_once('-')?;
    let index: u32 = index.parse().ok()?;
    (!pool.is_empty() && index.to_string() == index_text(text)).then(|| WorkerId::new(pool, index))
}

fn index_text(text: &str) -> &str {
    text.rsplit_once('-').map(|(_, i)| i).unwrap_or("")
}

/// The command line with secret values masked: `-D<key>=<value>` and `--<key>=<value>`
/// arguments whose key is sensitive by the department's rules.
pub fn masked_command_line(spec: &SpawnSpec, rules: &SecretRules) -> String {
    std::iter::once(spec.program.display().to_string())
        .chain(spec.args.iter().map(|a| {
            let arg = a.to_string_lossy();
            let body = arg.strip_prefix("-D").or_else(|| arg.strip_prefix("--"));
            match body.and_then(|b| b.split_once('=')) {
                Some((key, _)) if rules.is_sensitive(key) => {
                    format!(
                        "{}{key}={MASK}",
                        if arg.starts_with("-D") { "-D" } else { "--" }
                    )
                }
                _ => arg.into_owned(),
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Picks the REST port of every worker: `rest_port_base + k` in pool order when a base is set
/// (refusing a port that is taken), else a free port from the OS.
pub fn allocate_ports(department: &Department) -> Result<BTreeMap<WorkerId, u16>, SupervisorError> {
    let host = &department.supervisor.worker_host;
    let mut ports = BTreeMap::new();
    let mut k: u16 = 0;
    for pool in &department.pools {
        for index in 0..pool.workers {
            let id = WorkerId::new(&pool.name, index);
            let port = match department.supervisor.rest_port_base {
                Some(base) => {
                    let port = base.saturating_add(k);
                    if TcpListener::bind((host.as_str(), port)).is_err() {
                        return Err(SupervisorError::PortInUse { worker: id, port });
                    }
                    port
                }
                None => free_port(host).map_err(|_| SupervisorError::PortInUse {
                    worker: id.clone(),
                    port: 0,
                })?,
            };
            ports.insert(id, port);
            k += 1;
        }
    }
    Ok(ports)
}

/// A port for a worker added by scaling: the next free one above `rest_port_base` not used by
/// another worker, or any free port.
fn next_port(department: &Department, in_use: &[u16]) -> Option<u16> {
    let host = &department.supervisor.worker_host;
    match department.supervisor.rest_port_base {
        Some(base) => (base..=u16::MAX)
            .filter(|p| !in_use.contains(p))
            .find(|p| TcpListener::bind((host.as_str(), *p)).is_ok()),
        None => free_port(host).ok(),
    }
}

/// How many ports [`free_port`] remembers having handed out.
const RECENT_PORTS: usize = 4096;

/// A port that is free on `host` right now and that this process has not handed out among its
/// last [`RECENT_PORTS`]. The port is released before the caller's process binds it, so without
/// the memory two workers picked a moment apart (one department, or departments in one process)
/// could be given the same port and one of them would fail to listen on every restart.
pub fn free_port(host: &str) -> std::io::Result<u16> {
    static RECENT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    for _ in 0..64 {
        let port = TcpListener::bind((host, 0))?.local_addr()?.port();
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        if !recent.contains(&port) {
            if recent.len() == RECENT_PORTS {
                recent.pop_front();
            }
            recent.push_back(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("the OS offered only ports already handed out on {host}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        // About 14,000 ports are candidates for bind(0); 2,000 draws without the memory repeat
        // one with near certainty (birthday bound: about 140 expected repeats).
        let ports: Vec<u16> = (0..2000)
            .map(|_| free_port("127.0.0.1").expect("free port"))
            .collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }

    #[test]
    fn worker_ids_parse_back() {
        assert_eq!(
            parse_worker_id("shared-0"),
            Some(WorkerId::new("shared", 0))
        );
        assert_eq!(
            parse_worker_id("my-pool-12"),
            Some(WorkerId::new("my-pool", 12))
        );
        for bad in ["shared", "shared-", "-1", "shared-01", "shared-x"] {
            assert_eq!(parse_worker_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn secret_jvm_options_are_masked_in_the_shown_command_line() {
        let spec = SpawnSpec::new(
            "java",
            [
                "-Xmx384m",
                "-Djavax.net.ssl.keyStorePassword=hunter2",
                "--api.key=abc",
                "-Dlog4j2.configurationFile=/x.yaml",
            ],
        );
        let line = masked_command_line(&spec, &SecretRules::default());
        assert!(!line.contains("hunter2") && !line.contains("abc"), "{line}");
        assert!(
            line.contains("-Djavax.net.ssl.keyStorePassword=********"),
            "{line}"
        );
        assert!(
            line.contains("-Dlog4j2.configurationFile=/x.yaml"),
            "{line}"
        );
    }
}

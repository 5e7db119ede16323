//! The department's pools of Connect workers: start them in their cgroups, keep them alive,
//! scale and roll-restart pools, stop everything on shutdown.
//!
//! This is the async shell around the pure [`lifecycle`] state machine: one task per worker
//! feeds it what happens (spawned, probe results, exits with the cgroup's OOM counter, admin
//! commands, time) and carries out what it decides (spawn, stop, wait). The supervisor owns the
//! shared view that the API reads (state, pid, limits, usage of every worker), the department's
//! [`Observer`] (events and metrics), and the cgroup driver. It never holds its lock across an
//! `await`.
//!
//! * this file: the [`Supervisor`], its errors and options, start and shutdown;
//! * `registry`: the table of pools and workers, adding workers, scaling, REST ports;
//! * `worker_task`: one worker's task (spawn into its cgroup, probe, stop, start-up boost);
//! * `rollout`: admin commands to workers and rolling restarts of pools;
//! * `status`: what the API and the dashboard see, and the department-level queries;
//! * [`lifecycle`] (the pure state machine), [`boost`] (the pure start-up boost grant),
//!   `sampler` (usage sampling), `scraper` (Connect metrics), `remote` (the kubernetes
//!   topology's workers), `stale` (workers left by an earlier supervisor).

pub mod boost;
pub mod lifecycle;
mod registry;
mod remote;
mod rollout;
mod sampler;
mod scraper;
mod stale;
mod status;
mod worker_task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cgroup::{self, CgroupDriver, CgroupError, Enforcement};
use crate::model::{Department, WorkerId};
use crate::observe::Observer;
use crate::observe::events::{EnforcementDegraded, EnforcementSelected, LeftoversCleaned};
use crate::runtime::{RuntimeError, RuntimeLayout};
use crate::worker::WorkerPlan;

pub use crate::util::net::free_port;
pub use registry::allocate_ports;
use registry::{Inner, WorkerEntry};
pub use remote::{RemotePools, RemoteWorker, statefulset_urls};
pub use sampler::WorkerUsage;
pub use status::{PoolStatus, Rollout, WorkerLimits, WorkerStatus};
pub use worker_task::masked_command_line;

/// How long past the longest start timeout the supervisor's own Kafka clients wait for the
/// workers' first start (by then each first launch has ended; this only bounds the wait).
const FIRST_START_GRACE: Duration = Duration::from_secs(10);

/// Default time a worker gets to stop after SIGTERM (see `supervision.stop_grace`).
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// Interval between readiness probes of a starting worker. Short: a probe of a worker that is
/// not listening yet is a refused loopback connection (microseconds), and every interval adds
/// half of itself on average to each (re)start the supervisor reports.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);
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
    /// Woken whenever a worker's published phase changes ([`Supervisor::wait_until_ready`]
    /// waits on it instead of polling).
    phases: tokio::sync::Notify,
    background: Mutex<Vec<JoinHandle<()>>>,
    http: reqwest::Client,
    /// The department's connector watch: built above the supervisor (it reads connectors through
    /// the API layer), so it is kept here by type only, and the supervisor never depends on it.
    connector_watch: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
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
            phases: tokio::sync::Notify::new(),
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
        // The supervisor's own Kafka clients wait until the first start is over (they would
        // compete with the starting JVMs for CPU); a start that outlasts the start timeout by
        // far no longer holds them. Workers in pods of their own share no CPU with it.
        if supervisor.remote {
            supervisor.observer.first_start_over();
        } else {
            let d = &supervisor.department;
            let cap = d
                .pools
                .iter()
                .map(|p| d.supervision(p).start_timeout)
                .max()
                .unwrap_or_default()
                + FIRST_START_GRACE;
            let sup = Arc::clone(&supervisor);
            let gate = tokio::spawn(async move {
                if let Err(starting) = sup.wait_first_start_over(cap).await {
                    tracing::warn!(%starting, "The workers' first start is not over after {cap:?}: log forwarding and the Kafka check connect anyway.");
                }
                sup.observer.first_start_over();
            });
            supervisor.lock_background().push(gate);
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

    /// The department's connector watch, started by the first caller (one per supervisor, however
    /// many API states are built over it).
    pub fn connector_watch<W: Send + Sync + 'static>(
        &self,
        start: impl FnOnce() -> Arc<W>,
    ) -> Arc<W> {
        let watch = self
            .connector_watch
            .get_or_init(|| -> Arc<dyn std::any::Any + Send + Sync> { start() });
        Arc::clone(watch)
            .downcast::<W>()
            .expect("the connector watch is always started with the same type")
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
            .map(|p| self.department.supervision(p).stop_grace)
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
}

//! The department's pools of Connect workers: start them, watch them, stop them.
//!
//! Each worker is driven by its own task. The supervisor owns the shared view (state, pid, REST
//! URL of every worker) that the API reads, and the shutdown signal that stops every task.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod lifecycle;

use crate::model::{Department, WorkerId};
use crate::process::{Spawner, stop_child};
use crate::runtime::{RuntimeError, RuntimeLayout};
use crate::worker::{Health, WorkerPlan, probe};

/// How long a worker gets to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// Interval between readiness probes of a starting worker.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Delay before a worker that exited is started again.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);

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
        path: std::path::PathBuf,
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
}

impl SupervisorError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Runtime(e) => e.code(),
            Self::PortInUse { .. } => "port_in_use",
            Self::StateDir { .. } => "state_dir",
            Self::NotReady { .. } => "workers_not_ready",
        }
    }
}

/// Lifecycle state of one worker, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WorkerState {
    /// Spawned, not answering `GET /health` with 200 yet.
    Starting,
    /// Answering `GET /health` with 200.
    Ready,
    /// The process exited; it will be started again.
    Exited {
        /// How it exited.
        reason: String,
    },
    /// Could not be spawned.
    SpawnFailed {
        /// Why.
        reason: String,
    },
    /// Being stopped.
    Stopping,
    /// Stopped by the supervisor.
    Stopped,
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
    /// State.
    #[serde(flatten)]
    pub state: WorkerState,
    /// Process id, while running.
    pub pid: Option<u32>,
    /// Launches so far (1 = never restarted).
    pub launches: u32,
    /// Seconds since the current process started.
    pub uptime_seconds: Option<u64>,
    /// The JVM command line (no secrets: those live in the properties file).
    pub command: String,
}

/// One pool as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Connect `group.id` of the pool.
    pub group_id: String,
    /// Workers.
    pub workers: Vec<WorkerStatus>,
}

struct WorkerEntry {
    plan: WorkerPlan,
    state: WorkerState,
    pid: Option<u32>,
    launches: u32,
    started_at: Option<SystemTime>,
}

/// The running department: its workers and their shared view.
pub struct Supervisor {
    department: Arc<Department>,
    workers: Mutex<BTreeMap<WorkerId, WorkerEntry>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("department", &self.department.id)
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
        runtime.check()?;
        let ports = allocate_ports(&department)?;
        let mut workers = BTreeMap::new();
        for pool in &department.pools {
            for index in 0..pool.workers {
                let id = WorkerId::new(&pool.name, index);
                let plan = WorkerPlan::new(&department, pool, id.clone(), ports[&id], &runtime);
                plan.write_files()
                    .map_err(|source| SupervisorError::StateDir {
                        path: plan.dir.clone(),
                        source,
                    })?;
                workers.insert(
                    id,
                    WorkerEntry {
                        plan,
                        state: WorkerState::Starting,
                        pid: None,
                        launches: 0,
                        started_at: None,
                    },
                );
            }
        }
        let (shutdown, _) = watch::channel(false);
        let supervisor = Arc::new(Self {
            department: Arc::new(department),
            workers: Mutex::new(workers),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            http: crate::connect::ConnectClient::default_http(),
        });
        let ids: Vec<WorkerId> = supervisor.lock_workers().keys().cloned().collect();
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let sup = Arc::clone(&supervisor);
            tasks.push(tokio::spawn(async move { sup.run_worker(id).await }));
        }
        *supervisor.tasks.lock().expect("tasks lock") = tasks;
        Ok(supervisor)
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, BTreeMap<WorkerId, WorkerEntry>> {
        self.workers.lock().expect("worker table lock poisoned")
    }

    /// The department this supervisor runs.
    pub fn department(&self) -> &Arc<Department> {
        &self.department
    }

    /// Every pool with its workers.
    pub fn status(&self) -> Vec<PoolStatus> {
        let workers = self.lock_workers();
        self.department
            .pools
            .iter()
            .map(|pool| PoolStatus {
                name: pool.name.clone(),
                group_id: self.department.cluster_identity(&pool.name).group_id,
                workers: workers
                    .iter()
                    .filter(|(id, _)| id.pool == pool.name)
                    .map(|(id, w)| WorkerStatus {
                        id: id.to_string(),
                        pool: id.pool.clone(),
                        rest_url: w.plan.rest_url.clone(),
                        state: w.state.clone(),
                        pid: w.pid,
                        launches: w.launches,
                        uptime_seconds: w
                            .started_at
                            .and_then(|t| t.elapsed().ok())
                            .map(|d| d.as_secs()),
                        command: w.plan.command.command_line(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// REST URLs of the ready workers of `pool`.
    pub fn ready_worker_urls(&self, pool: &str) -> Vec<String> {
        self.lock_workers()
            .iter()
            .filter(|(id, w)| id.pool == pool && w.state == WorkerState::Ready)
            .map(|(_, w)| w.plan.rest_url.clone())
            .collect()
    }

    /// Waits until every worker is ready, or fails after `timeout` naming the ones that are not.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), SupervisorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending: Vec<String> = self
                .lock_workers()
                .iter()
                .filter(|(_, w)| w.state != WorkerState::Ready)
                .map(|(id, w)| format!("{id} ({:?})", w.state))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SupervisorError::NotReady {
                    waited: timeout,
                    workers: pending.join(", "),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every worker (SIGTERM, grace, SIGKILL) and waits for their tasks to end.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn set_state(&self, id: &WorkerId, state: WorkerState) {
        if let Some(w) = self.lock_workers().get_mut(id) {
            w.state = state;
            if matches!(w.state, WorkerState::Exited { .. } | WorkerState::Stopped) {
                w.pid = None;
                w.started_at = None;
            }
        }
    }

    async fn run_worker(self: Arc<Self>, id: WorkerId) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if *shutdown.borrow() {
                self.set_state(&id, WorkerState::Stopped);
                return;
            }
            let (command, rest_url) = {
                let workers = self.lock_workers();
                let w = &workers[&id];
                (w.plan.command.clone(), w.plan.rest_url.clone())
            };
            let mut child = match Spawner::global().spawn(command).await {
                Ok(child) => child,
                Err(e) => {
                    tracing::error!(worker = %id, error = %e, code = e.code(), "Worker could not be started.");
                    self.set_state(
                        &id,
                        WorkerState::SpawnFailed {
                            reason: e.to_string(),
                        },
                    );
                    if wait_or_shutdown(&mut shutdown, RESTART_DELAY).await {
                        self.set_state(&id, WorkerState::Stopped);
                        return;
                    }
                    continue;
                }
            };
            {
                let mut workers = self.lock_workers();
                let w = workers.get_mut(&id).expect("worker exists");
                w.pid = child.id();
                w.launches += 1;
                w.started_at = Some(SystemTime::now());
                w.state = WorkerState::Starting;
            }
            tracing::info!(worker = %id, pid = child.id(), url = %rest_url, "Worker started.");
            let mut probe_timer = tokio::time::interval(PROBE_INTERVAL);
            let mut ready = false;
            let exit = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    _ = shutdown.changed() => {
                        self.set_state(&id, WorkerState::Stopping);
                        match stop_child(&mut child, STOP_GRACE).await {
                            Ok(outcome) => tracing::info!(worker = %id, ?outcome, "Worker stopped."),
                            Err(e) => tracing::warn!(worker = %id, error = %e, "Stopping worker failed."),
                        }
                        self.set_state(&id, WorkerState::Stopped);
                        return;
                    }
                    _ = probe_timer.tick(), if !ready => {
                        if probe(&self.http, &rest_url, Duration::from_secs(2)).await == Health::Ready {
                            ready = true;
                            self.set_state(&id, WorkerState::Ready);
                            tracing::info!(worker = %id, url = %rest_url, "Worker ready.");
                        }
                    }
                }
            };
            let reason = match exit {
                Ok(status) => status.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            tracing::warn!(worker = %id, %reason, "Worker exited; starting it again.");
            self.set_state(&id, WorkerState::Exited { reason });
            if wait_or_shutdown(&mut shutdown, RESTART_DELAY).await {
                self.set_state(&id, WorkerState::Stopped);
                return;
            }
        }
    }
}

/// Sleeps for `delay`; returns true if shutdown was requested meanwhile.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
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

/// A port that is free on `host` right now.
pub fn free_port(host: &str) -> std::io::Result<u16> {
    Ok(TcpListener::bind((host, 0))?.local_addr()?.port())
}

//! The table of pools and workers: adding a worker (plan, files, ports, its task), scaling a
//! pool, the REST ports of the workers, and worker ids.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::lifecycle::{Lifecycle, Snapshot};
use super::status::Rollout;
use super::{
    AdminError, Command, Launcher, MAX_POOL_WORKERS, Supervisor, SupervisorError, WorkerUsage,
};
use crate::cgroup::Limits;
use crate::model::{Department, Pool, ResourceUsage, WorkerId};
use crate::observe::events::{PoolScaled, ScaleRefused};
use crate::util::net::{free_port, free_port_except, is_free};
use crate::worker::WorkerPlan;

pub(super) struct WorkerEntry {
    pub(super) plan: WorkerPlan,
    pub(super) limits: Limits,
    pub(super) snapshot: Snapshot,
    pub(super) started_wall: Option<SystemTime>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) task: Option<JoinHandle<()>>,
    pub(super) usage: WorkerUsage,
    pub(super) last_stderr: Vec<String>,
    /// The start-up boost out: millicores on top of the limit, and since when.
    pub(super) boost: Option<(u32, Instant)>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) workers: BTreeMap<WorkerId, WorkerEntry>,
    pub(super) pool_sizes: BTreeMap<String, u32>,
    pub(super) rollouts: BTreeMap<String, Rollout>,
    pub(super) ports_in_use: Vec<u16>,
}

impl WorkerEntry {
    /// A worker's entry before its task runs.
    pub(super) fn new(
        plan: WorkerPlan,
        limits: Limits,
        snapshot: Snapshot,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Self {
            plan,
            limits,
            snapshot,
            started_wall: None,
            commands,
            task: None,
            usage: WorkerUsage::default(),
            last_stderr: Vec::new(),
            boost: None,
        }
    }
}

impl Supervisor {
    /// The cgroup limits of a worker of `pool`, now counted in the worker metrics.
    pub(super) fn count_worker(&self, pool: &Pool, id: &WorkerId) -> Limits {
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
        limits
    }

    /// Plans worker `id`, writes its files and starts its task.
    pub(super) fn add_worker(
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
        let limits = self.count_worker(pool, &id);
        let policy = self.department.supervision(pool);
        let (lifecycle, effects) = Lifecycle::new(policy);
        let (commands, receiver) = mpsc::unbounded_channel();
        inner.ports_in_use.push(port);
        inner.workers.insert(
            id.clone(),
            WorkerEntry::new(plan, limits, lifecycle.snapshot(), commands),
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
    pub(super) fn with_exporter(&self, plan: WorkerPlan, in_use: &[u16]) -> WorkerPlan {
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
        let taken: Vec<u16> = in_use.iter().copied().chain([plan.rest_port]).collect();
        let port = free_port_except(host, &taken);
        match port {
            Some(port) => plan.with_metrics_exporter(port, &agent, &rules),
            None => {
                tracing::warn!(worker = %plan.id, "No free port for the worker's metrics exporter; its Connect metrics are not collected.");
                plan
            }
        }
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
                    if !is_free(host, port) {
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
            .find(|p| is_free(host, *p)),
        None => free_port(host).ok(),
    }
}

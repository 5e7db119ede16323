//! Workers the department API does not run itself: the kubernetes topology, where each worker is
//! its own pod (`connect-supervisor worker`, which owns the process, its restarts and its
//! limits) and the API only reaches it.
//!
//! A remote worker has the same entry in the worker table as a local one (id, pool, REST URL,
//! limits, phase), so everything that reads the table — the gateway, the managed API, readiness,
//! the connector watch — works unchanged. Its phase comes from probing `GET /health` instead of
//! from a process: ready while it answers 200, starting otherwise. The admin operations that
//! act on processes (scale, restart, clear) are refused with what to do instead: Kubernetes
//! owns those pods.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    AdminError, Command, PROBE_INTERVAL, PROBE_TIMEOUT, Supervisor, WorkerEntry, WorkerPlan,
};
use crate::model::{Pool, WorkerId};
use crate::observe::events::{WorkerPhaseChanged, WorkerReady, WorkerStopped};
use crate::supervisor::lifecycle::{Snapshot, WorkerPhase};
use crate::worker::{WorkerHealth, probe};

/// One worker pod as the API reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWorker {
    /// Connect's REST base URL.
    pub rest_url: String,
    /// Port of the pod entrypoint's `/metrics` on the same host, whose Connect metrics the API
    /// re-exposes like a local worker's JMX exporter.
    pub metrics_port: Option<u16>,
}

/// Where the workers of each pool are: pool name → workers, in worker order.
pub type RemotePools = std::collections::BTreeMap<String, Vec<RemoteWorker>>;

fn initial_snapshot() -> Snapshot {
    Snapshot {
        phase: WorkerPhase::Starting,
        pid: None,
        launches: 0,
        restarts: 0,
        last_exit: None,
        failures_in_window: 0,
        attempt: 0,
        started_at: Some(Instant::now()),
        ready_at: None,
        restart_at: None,
    }
}

impl Supervisor {
    /// Whether the workers are remote (kubernetes topology).
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Adds the remote worker `id` of `pool` at `url` and starts watching it.
    pub(super) fn add_remote_worker(
        self: &Arc<Self>,
        inner: &mut super::Inner,
        pool: &Pool,
        id: WorkerId,
        remote: &RemoteWorker,
    ) {
        let url = remote.rest_url.as_str();
        let port = url
            .rsplit_once(':')
            .and_then(|(_, p)| p.trim_end_matches('/').parse().ok())
            .unwrap_or(0);
        let mut plan = WorkerPlan::new(&self.department, pool, id.clone(), port, &self.runtime);
        plan.rest_url = url.trim_end_matches('/').to_string();
        plan.metrics_port = remote.metrics_port;
        // Nothing runs here: status shows where the worker is, not a command line of ours.
        plan.command = crate::process::SpawnSpec::new(
            format!("(pod at {})", plan.rest_url),
            Vec::<String>::new(),
        );
        let limits = self.count_worker(pool, &id);
        let (commands, receiver) = mpsc::unbounded_channel();
        let sup = Arc::clone(self);
        let task_id = id.clone();
        let task = tokio::spawn(async move { sup.watch_remote(task_id, receiver).await });
        inner.workers.insert(
            id,
            WorkerEntry {
                task: Some(task),
                ..WorkerEntry::new(plan, limits, initial_snapshot(), commands)
            },
        );
    }

    /// Probes a remote worker until told to stop, publishing its phase.
    async fn watch_remote(
        self: Arc<Self>,
        id: WorkerId,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let Some(pool) = self.department.pool(&id.pool).cloned() else {
            return;
        };
        let interval = self.department.supervision(&pool).health_interval;
        let mut phase = WorkerPhase::Starting;
        let mut next = Instant::now();
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Stop) | None => break,
                    // Refused before they are sent (see `refuse_remote`).
                    Some(_) => continue,
                },
                _ = tokio::time::sleep_until(next) => {}
            }
            let url = match self.lock().workers.get(&id) {
                Some(w) => w.plan.rest_url.clone(),
                None => break,
            };
            let health = probe(&self.http, &url, PROBE_TIMEOUT).await;
            let now_up = matches!(health, WorkerHealth::Ready);
            let to = if now_up {
                WorkerPhase::Ready
            } else {
                WorkerPhase::Starting
            };
            if to != phase {
                if let Some(entry) = self.lock().workers.get_mut(&id) {
                    entry.snapshot.phase = to;
                    if now_up {
                        entry.snapshot.ready_at = Some(Instant::now());
                    } else {
                        entry.snapshot.started_at = Some(Instant::now());
                        entry.snapshot.ready_at = None;
                    }
                }
                self.phases.notify_waiters();
                self.observer.emit(WorkerPhaseChanged {
                    worker: id.clone(),
                    to,
                });
                if now_up {
                    self.observer.emit(WorkerReady {
                        worker: id.clone(),
                        after: std::time::Duration::ZERO,
                    });
                } else {
                    tracing::warn!(worker = %id, url, ?health, "A worker pod stopped answering; its entrypoint restarts it in place.");
                }
                phase = to;
            }
            next = Instant::now() + if now_up { interval } else { PROBE_INTERVAL };
        }
        if let Some(entry) = self.lock().workers.get_mut(&id) {
            entry.snapshot.phase = WorkerPhase::Stopped;
        }
        self.phases.notify_waiters();
        self.observer.emit(WorkerStopped { worker: id });
    }

    /// [`Supervisor::refuse_remote`] for a worker id (unknown ids are left to the caller).
    pub(super) fn refuse_remote_worker(
        &self,
        id: &str,
        action: &'static str,
    ) -> Result<(), AdminError> {
        match WorkerId::parse(id) {
            Some(worker) => self.refuse_remote(&worker.pool, action),
            None => Ok(()),
        }
    }

    /// The error for an admin operation on processes that Kubernetes owns.
    pub(super) fn refuse_remote(&self, pool: &str, action: &'static str) -> Result<(), AdminError> {
        if !self.remote {
            return Ok(());
        }
        Err(AdminError::OwnedByKubernetes {
            action,
            pool: pool.to_string(),
        })
    }
}

/// Pod DNS names of a StatefulSet's workers behind its headless Service `service` (`host:port`,
/// e.g. `d1-pool-shared.dept1.svc:8083`): `d1-pool-shared-<k>.d1-pool-shared.dept1.svc:8083` for
/// each of the pool's `workers`, as REST base URLs. These are the names the workers advertise
/// to Connect, so Connect's `worker_id`s match the API's view.
pub fn statefulset_urls(service: &str, workers: u32) -> Result<Vec<String>, String> {
    let (host, port) = service
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{service}\" has no port; write <service>:<port>"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{port}\" in \"{service}\" is not a port"))?;
    let first = host.split('.').next().unwrap_or_default();
    if first.is_empty() {
        return Err(format!("\"{service}\" has no host name"));
    }
    Ok((0..workers)
        .map(|k| format!("http://{first}-{k}.{host}:{port}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_pods_are_named_after_their_headless_service() {
        assert_eq!(
            statefulset_urls("d1-pool-shared.dept1.svc:8083", 2).unwrap(),
            vec![
                "http://d1-pool-shared-0.d1-pool-shared.dept1.svc:8083",
                "http://d1-pool-shared-1.d1-pool-shared.dept1.svc:8083",
            ]
        );
        assert_eq!(
            statefulset_urls("d1-pool-etl:8083", 1).unwrap(),
            vec!["http://d1-pool-etl-0.d1-pool-etl:8083"]
        );
        assert!(
            statefulset_urls("d1-pool-etl", 1)
                .unwrap_err()
                .contains("port")
        );
        assert!(statefulset_urls("d1:http", 1).unwrap_err().contains("port"));
    }
}

//! Admin commands to single workers (restart, clear) and rolling restarts of a pool: one worker
//! at a time, each ready again before the next.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::status::Rollout;
use super::{AdminError, Command, Supervisor};
use crate::model::{WorkerId, WorkerPhase};
use crate::observe::events::{
    RolloutFinished, RolloutStarted, WorkerCleared, WorkerRestartRequested,
};

impl Supervisor {
    pub(super) fn send(&self, id: &str, command: Command) -> Result<WorkerId, AdminError> {
        let unknown = || AdminError::UnknownWorker(id.to_string());
        let worker_id = WorkerId::parse(id).ok_or_else(unknown)?;
        let inner = self.lock();
        let entry = inner.workers.get(&worker_id).ok_or_else(unknown)?;
        if command == Command::Clear && entry.snapshot.phase != WorkerPhase::Held {
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
    /// next. Returns at once; progress is in [`super::PoolStatus::rollout`].
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

    pub(super) async fn run_rollout(self: Arc<Self>, pool: String) {
        let workers = self
            .lock()
            .rollouts
            .get(&pool)
            .map(|r| r.workers.clone())
            .unwrap_or_default();
        let policy = self
            .department
            .pool(&pool)
            .map(|p| self.department.supervision(p))
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

    pub(super) async fn restart_and_wait(
        &self,
        worker: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let id = WorkerId::parse(worker).ok_or("unknown worker")?;
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
            if phase == WorkerPhase::Held || phase == WorkerPhase::Stopped {
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
}

//! The task of one worker: it feeds the pure [`super::lifecycle`] state machine what happens
//! (spawned, probes, exits with the cgroup's OOM counter, commands, time) and carries out what it
//! decides: spawn the process in its cgroup (with the start-up CPU boost), probe it, stop it,
//! publish its state.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::lifecycle::{Effect, Input, Lifecycle, Probe, ProcessExit};
use super::registry::{Inner, WorkerEntry};
use super::{
    Command, ENV_READY_FILE, ENV_WORKER_DIR, ENV_WORKER_ID, Launcher, PROBE_INTERVAL,
    PROBE_TIMEOUT, READY_FILE, STDERR_TAIL_WAIT, Supervisor, boost, stale,
};
use crate::cgroup::{CgroupError, Limits};
use crate::model::secrets::COMMAND_LINE_MASK;
use crate::model::{ExitReason, SecretRules, WorkerId, WorkerPhase};
use crate::observe::events::{
    RestartScheduled, StartupBoostApplied, StartupBoostEnded, WorkerExited, WorkerHeld,
    WorkerOomKilled, WorkerPhaseChanged, WorkerReady, WorkerSpawnFailed, WorkerStable,
    WorkerStarted, WorkerStopped, WorkerUnresponsive,
};
use crate::observe::logs::StderrTail;
use crate::process::{Output, SpawnSpec, Spawner, signal_group};
use crate::worker::{WorkerHealth, probe};

impl Supervisor {
    pub(super) async fn run_worker(
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
                        if to == WorkerPhase::Ready {
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
            if life.phase() == WorkerPhase::Stopped {
                break;
            }
            let phase = life.phase();
            let probing = child.is_some()
                && matches!(
                    phase,
                    WorkerPhase::Starting | WorkerPhase::Ready | WorkerPhase::Running
                );
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
                    let interval = if phase == WorkerPhase::Starting {
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
    pub(super) fn grant_boost(&self, inner: &mut Inner, id: &WorkerId) -> u32 {
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
    pub(super) fn end_boost(&self, id: &WorkerId, requota: bool) {
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
    pub(super) fn forget_boost(&self, id: &WorkerId) {
        if let Some(entry) = self.lock().workers.get_mut(id) {
            entry.boost = None;
        }
    }

    /// Ends every start-up boost (the budget is about to be taken by new workers).
    pub(super) fn end_all_boosts(&self) {
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

    pub(super) fn command_for(&self, entry: &WorkerEntry) -> SpawnSpec {
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
    pub(super) async fn spawn_worker(
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
        // The start runs with its boost (quota only: the weight under contention stays that of
        // the limit); the quota drops to the limit once it is ready.
        let launch = Limits {
            cpu_millis: limits.cpu_millis + boost,
            ..limits
        };
        let driver = Arc::clone(&self.cgroups);
        let leaf = name.clone();
        let created = tokio::task::spawn_blocking(move || {
            // Leftovers of the previous launch (helpers of a crashed JVM) must not share it.
            let _ = driver.kill(&leaf);
            driver.create(&leaf, &limits)?;
            if boost > 0 {
                driver.set_cpu_quota(&leaf, &launch)?;
            }
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
    pub(super) async fn stop_process(
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

    pub(super) async fn kill_leftovers(&self, name: &str, pid: Option<u32>) {
        if let Some(pid) = pid {
            let _ = signal_group(pid, Signal::SIGKILL);
        }
        let driver = Arc::clone(&self.cgroups);
        let leaf = name.to_string();
        let _ = tokio::task::spawn_blocking(move || driver.kill(&leaf)).await;
    }

    pub(super) fn exit_of(
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

    pub(super) async fn probe(&self, id: &WorkerId, phase: WorkerPhase) -> Probe {
        match &self.launcher {
            Launcher::Jvm => {
                let url = match self.lock().workers.get(id) {
                    Some(w) => w.plan.rest_url.clone(),
                    None => return Probe::Failed,
                };
                match probe(&self.http, &url, PROBE_TIMEOUT).await {
                    WorkerHealth::Ready => Probe::Ready,
                    WorkerHealth::Starting => Probe::Starting,
                    WorkerHealth::Unhealthy(_) | WorkerHealth::Unreachable(_) => Probe::Failed,
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
                    _ if phase == WorkerPhase::Starting => Probe::Starting,
                    _ => Probe::Failed,
                }
            }
        }
    }

    pub(super) fn on_transition(&self, id: &WorkerId, to: WorkerPhase, life: &Lifecycle) {
        self.observer.emit(WorkerPhaseChanged {
            worker: id.clone(),
            to,
        });
        let snapshot = life.snapshot();
        match to {
            WorkerPhase::Ready => self.observer.emit(WorkerReady {
                worker: id.clone(),
                after: snapshot.started_at.map(|t| t.elapsed()).unwrap_or_default(),
            }),
            WorkerPhase::Running => self.observer.emit(WorkerStable { worker: id.clone() }),
            _ => {}
        }
    }

    pub(super) fn publish(&self, id: &WorkerId, life: &Lifecycle) {
        let changed = match self.lock().workers.get_mut(id) {
            Some(entry) => {
                let before = entry.snapshot.phase;
                entry.snapshot = life.snapshot();
                if entry.snapshot.pid.is_none() {
                    entry.started_wall = None;
                }
                before != entry.snapshot.phase
            }
            None => false,
        };
        if changed {
            self.phases.notify_waiters();
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
                        "{}{key}={COMMAND_LINE_MASK}",
                        if arg.starts_with("-D") { "-D" } else { "--" }
                    )
                }
                _ => arg.into_owned(),
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

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

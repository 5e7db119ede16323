//! Self-healing of connectors (the module was `watch`; renamed so it does not read like
//! `tokio::sync::watch`). The connector watch: every `auto_restart.interval` it reads the status
//! (and config) of every connector of every pool in one call per pool, and from that
//!
//! * keeps the connector metrics (state, tasks, failed tasks, uptime, quota usage),
//! * restarts the failed parts of failed connectors within each one's restart budget
//!   ([`restart`]), charging the budget for restarts of the worker a connector ran on, and holds
//!   a connector whose budget is spent,
//! * keeps each failure's error trace (scrubbed) to show with the status after a restart,
//! * teaches the log redactor the connectors' secret values,
//! * answers the department health summary.
//!
//! It calls Connect through the [`Connectors`] and never holds its lock across a call.

pub mod restart;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::Instant;

use crate::auth::Role;
use crate::connect::{ConnectorStatus, Expanded};
use crate::connectors::Connectors;
use crate::model::AutoRestartSettings;
use crate::observe::connectors::ConnectorSample;
use crate::observe::events::{
    AutoRestartFailed, ConnectorAutoRestarted, ConnectorFailed, ConnectorHeld, ConnectorRecovered,
    ConnectorReleased, RestartBudgetCharged, WorkerExited,
};
use crate::observe::health::KafkaState;
use crate::observe::logs::{ForwardStats, Redactor};
use crate::observe::{Event, Observer};
use crate::supervisor::Supervisor;
use crate::translate;
use restart::{Decision, PolledHealth, Tracker};

/// Longest stack trace kept per failure.
pub const MAX_TRACE_BYTES: usize = 16 * 1024;
/// How long a connector created through the API counts as known before the poll sees it.
const RECENT: Duration = Duration::from_secs(60);
/// How often the watch looks whether a worker went down or came back between polls.
const WORKER_CHECK: Duration = Duration::from_millis(500);

/// A failure the watch saw, kept to show after the connector was restarted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// When it was first seen.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The failed task (`None`: the connector instance).
    pub task: Option<u32>,
    /// First line of the error, secrets masked.
    pub error: String,
    /// The stack trace, secrets masked (bounded).
    pub trace: String,
}

#[derive(Debug, Clone)]
struct Watched {
    pool: String,
    status: ConnectorStatus,
    tasks_max: u32,
    tracker: Tracker,
    running_since: Option<OffsetDateTime>,
    last_failure: Option<Failure>,
}

#[derive(Debug, Default)]
struct WatchState {
    connectors: BTreeMap<String, Watched>,
    recent: HashMap<String, Instant>,
    polled_at: Option<OffsetDateTime>,
}

/// The auto-restart state of a connector as the status shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoRestartView {
    /// Whether the department restarts failed connectors.
    pub enabled: bool,
    /// Restarts in its budget now.
    pub restarts: u32,
    /// The budget.
    pub max_restarts: u32,
    /// No more automatic restarts until an operator restarts it.
    pub held: bool,
    /// Seconds until the next automatic restart, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_restart_in_seconds: Option<f64>,
    /// The last failure seen, kept after the restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
}

/// One connector in the health summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorHealth {
    /// Name.
    pub name: String,
    /// Pool.
    pub pool: String,
    /// Managed state (PROVISIONING, RUNNING, DEGRADED, FAILED, PAUSED).
    pub state: &'static str,
    /// Connect's state.
    pub connect_state: String,
    /// Tasks.
    pub tasks: usize,
    /// Failed tasks.
    pub failed_tasks: usize,
    /// The last error: of the last failure, else the last ERROR log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it happened.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_error_at: Option<OffsetDateTime>,
    /// ERROR log lines in the last hour.
    pub errors_last_hour: u32,
    /// When it last moved records (Connect's record counters rose).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_activity: Option<OffsetDateTime>,
    /// Seconds since it reached RUNNING.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<i64>,
    /// Automatic restarts.
    pub auto_restart: AutoRestartView,
}

/// Worker counts of the health summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerCounts {
    /// Workers.
    pub total: usize,
    /// Ready or running.
    pub ready: usize,
    /// By lifecycle state.
    pub by_state: BTreeMap<&'static str, usize>,
}

/// The department's health for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSummary {
    /// The department.
    pub department: String,
    /// `ok`, `degraded` (something failed or is held) or `unavailable` (a pool has no ready
    /// worker or Kafka does not answer).
    pub status: &'static str,
    /// When this was put together.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// When Connect's states were last read.
    #[serde(with = "time::serde::rfc3339::option")]
    pub status_read_at: Option<OffsetDateTime>,
    /// Connectors by managed state.
    pub connectors_by_state: BTreeMap<&'static str, usize>,
    /// Connectors.
    pub connectors_total: usize,
    /// Tasks.
    pub tasks_total: usize,
    /// Failed tasks.
    pub tasks_failed: usize,
    /// Held connectors.
    pub connectors_held: usize,
    /// ERROR log lines of every worker in the last hour.
    pub errors_last_hour: u32,
    /// Workers.
    pub workers: WorkerCounts,
    /// The Kafka check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaState>,
    /// Log forwarding.
    pub log_forwarding: ForwardStats,
    /// Whether the caller may restart connectors (the dashboard's restart button).
    pub can_restart: bool,
    /// Failed, degraded and held connectors with their last error.
    pub failing: Vec<ConnectorHealth>,
    /// Every connector.
    pub connectors: Vec<ConnectorHealth>,
}

/// Watches the department's connectors.
pub struct ConnectorWatch {
    supervisor: Arc<Supervisor>,
    gateway: Arc<Connectors>,
    settings: AutoRestartSettings,
    state: Mutex<WatchState>,
    poke: Notify,
    exits: ExitFeed,
    running: AtomicBool,
}

impl std::fmt::Debug for ConnectorWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorWatch")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The worker exits the watch has not looked at yet, from the supervisor's exit channel.
#[derive(Debug)]
struct ExitFeed(Mutex<broadcast::Receiver<WorkerExited>>);

impl ExitFeed {
    fn new(observer: &Observer) -> Self {
        Self(Mutex::new(observer.subscribe_exits()))
    }

    /// The workers whose process failed since the last call, oldest first.
    fn failed(&self) -> Vec<String> {
        let mut exits = self.0.lock().expect("exit feed lock");
        let mut failed = Vec::new();
        loop {
            match exits.try_recv() {
                Ok(exit) if exit.reason.is_failure() => failed.push(exit.worker.to_string()),
                Ok(_) => {}
                Err(TryRecvError::Lagged(missed)) => tracing::warn!(
                    missed,
                    "The connector watch missed worker exits; their restarts are not charged to the connectors' budgets."
                ),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return failed,
            }
        }
    }
}

fn health_of(status: &ConnectorStatus) -> PolledHealth {
    let states =
        std::iter::once(&status.connector.state).chain(status.tasks.iter().map(|t| &t.state.state));
    let mut all_running = true;
    for s in states {
        match s.as_str() {
            "FAILED" => return PolledHealth::Failed,
            "RUNNING" => {}
            _ => all_running = false,
        }
    }
    if all_running {
        PolledHealth::Healthy
    } else {
        PolledHealth::Other
    }
}

fn first_failure(status: &ConnectorStatus, now: OffsetDateTime) -> Option<Failure> {
    let (task, trace) = if status.connector.state == "FAILED" {
        (None, status.connector.trace.clone().unwrap_or_default())
    } else {
        let t = status.tasks.iter().find(|t| t.state.state == "FAILED")?;
        (Some(t.id), t.state.trace.clone().unwrap_or_default())
    };
    let mut trace = trace;
    if trace.len() > MAX_TRACE_BYTES {
        let mut end = MAX_TRACE_BYTES;
        while !trace.is_char_boundary(end) {
            end -= 1;
        }
        trace.truncate(end);
    }
    Some(Failure {
        time: now,
        task,
        error: translate::first_line(&trace),
        trace,
    })
}

/// Masks the connector's own secret values, then whatever the log redactor knows (other secret
/// values, `password=...` in text).
fn scrub_status(status: &mut ConnectorStatus, secrets: &[String], redactor: &Redactor) {
    let clean = |t: &mut String| *t = redactor.redact(&translate::scrub(t, secrets)).into_owned();
    if let Some(t) = &mut status.connector.trace {
        clean(t);
    }
    for task in &mut status.tasks {
        if let Some(t) = &mut task.state.trace {
            clean(t);
        }
    }
}

impl ConnectorWatch {
    /// The watch of the connectors of `gateway`'s department. It subscribes to the worker exits
    /// at once (an exit before its first poll concerns no connector it knows yet); nothing runs
    /// until [`ConnectorWatch::run`] is spawned by its owner (`app.rs`).
    pub fn new(supervisor: Arc<Supervisor>, gateway: Arc<Connectors>) -> Arc<Self> {
        let settings = supervisor.department().observe.auto_restart;
        let exits = ExitFeed::new(supervisor.observer());
        Arc::new(Self {
            supervisor,
            gateway,
            settings,
            state: Mutex::new(WatchState::default()),
            poke: Notify::new(),
            exits,
            running: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().expect("watch lock")
    }

    fn observer(&self) -> &Arc<Observer> {
        self.supervisor.observer()
    }

    /// Polls every `auto_restart.interval` (sooner when poked or when a worker goes down or
    /// comes back) until the supervisor shuts down. The watch runs once: a second call returns
    /// at once.
    pub async fn run(self: Arc<Self>) {
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut shutdown = self.supervisor.shutting_down();
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.poll().await;
            let up = self.up_workers();
            tokio::select! {
                _ = tokio::time::sleep(self.settings.interval) => {}
                _ = self.poke.notified() => {}
                // A worker that goes down (or comes back) changes what its connectors run:
                // the health summary and metrics follow within a moment, not an interval.
                _ = self.workers_change_from(up) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The workers up now.
    fn up_workers(&self) -> BTreeSet<String> {
        self.supervisor
            .status()
            .into_iter()
            .flat_map(|p| p.workers)
            .filter(|w| w.state.is_up())
            .map(|w| w.id)
            .collect()
    }

    /// Returns once the workers up differ from `up`.
    async fn workers_change_from(&self, up: BTreeSet<String>) {
        loop {
            tokio::time::sleep(WORKER_CHECK).await;
            if self.up_workers() != up {
                return;
            }
        }
    }

    /// Asks for a poll now (after a change made through the API).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Reads every pool once and acts on what it sees.
    pub async fn poll(&self) {
        let now = Instant::now();
        let wall = OffsetDateTime::now_utc();
        let mut seen: BTreeMap<String, (String, Expanded)> = BTreeMap::new();
        let mut pools_read = Vec::new();
        for pool in self.gateway.pools() {
            if self.supervisor.ready_worker_urls(&pool).is_empty() {
                continue;
            }
            match self
                .gateway
                .on_pool(
                    &pool,
                    |c| async move { c.connectors_expanded(true, true).await },
                )
                .await
            {
                Ok(mut map) => {
                    self.gateway.remember_listing(&pool, &map);
                    // What Connect still places on a worker that is down runs nowhere.
                    let down = self.gateway.down_workers(&pool);
                    for e in map.values_mut() {
                        if let Some(s) = &mut e.status {
                            translate::mark_down_workers(s, &down);
                        }
                    }
                    for (name, e) in map {
                        seen.insert(name, (pool.clone(), e));
                    }
                    pools_read.push(pool);
                }
                Err(e) => tracing::debug!(pool, error = %e.code(), "Connector status poll failed."),
            }
        }
        // A worker that has not read a delete made through the supervisor yet still lists it.
        seen.retain(|name, _| !self.gateway.was_deleted(name));
        // Secrets: what the redactor must mask in logs, and what traces must not show.
        let logs = self.observer().logs();
        let mut statuses: BTreeMap<String, (String, ConnectorStatus, u32)> = BTreeMap::new();
        for (name, (pool, e)) in seen {
            let Some(mut status) = e.status else { continue };
            let mut tasks_max = 1;
            let mut secrets = Vec::new();
            if let Some(info) = &e.info {
                let sensitivity = self.gateway.sensitivity(&pool, &info.config).await;
                secrets = sensitivity.masker().secrets(&info.config);
                logs.redactor().add_secrets(&secrets);
                tasks_max = crate::model::policy::counted_tasks(&info.config);
            }
            scrub_status(&mut status, &secrets, logs.redactor());
            statuses.insert(name, (pool, status, tasks_max));
        }
        logs.learn_secret_files(&crate::policy::secrets::secrets_dir(
            self.supervisor.department(),
        ));
        // Worker restarts since the last poll, as Connect's worker ids (host:port).
        let restarted = self.worker_restarts();
        let mut events: Vec<Event> = Vec::new();
        let mut restarts = Vec::new();
        let samples = {
            let mut state = self.lock();
            state.polled_at = Some(wall);
            state.recent.retain(|_, t| t.elapsed() < RECENT);
            for pool in &pools_read {
                let gone: Vec<String> = state
                    .connectors
                    .iter()
                    .filter(|(n, w)| &w.pool == pool && !statuses.contains_key(*n))
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in gone {
                    state.connectors.remove(&n);
                }
            }
            for (worker, connect_id) in &restarted {
                for (name, w) in state.connectors.iter_mut() {
                    let ran_there = w.status.connector.worker_id == *connect_id
                        || w.status
                            .tasks
                            .iter()
                            .any(|t| t.state.worker_id == *connect_id);
                    if ran_there
                        && let Some(attempt) = w.tracker.charge(now, &self.settings, rand::random())
                    {
                        events.push(Event::from(RestartBudgetCharged {
                            connector: name.clone(),
                            worker: worker.clone(),
                            attempt,
                            max: self.settings.max_restarts,
                        }));
                    }
                }
            }
            for (name, (pool, status, tasks_max)) in statuses {
                let entry = state
                    .connectors
                    .entry(name.clone())
                    .or_insert_with(|| Watched {
                        pool: pool.clone(),
                        status: status.clone(),
                        tasks_max,
                        tracker: Tracker::default(),
                        running_since: None,
                        last_failure: None,
                    });
                entry.pool = pool.clone();
                entry.tasks_max = tasks_max;
                let health = health_of(&status);
                if status.connector.state == "RUNNING" {
                    entry.running_since.get_or_insert(wall);
                } else {
                    entry.running_since = None;
                }
                let decisions = entry
                    .tracker
                    .observe(health, now, &self.settings, rand::random());
                for d in decisions {
                    match d {
                        Decision::NewFailure => {
                            if let Some(f) = first_failure(&status, wall) {
                                events.push(Event::from(ConnectorFailed {
                                    connector: name.clone(),
                                    pool: pool.clone(),
                                    task: f.task,
                                    error: f.error.clone(),
                                }));
                                entry.last_failure = Some(f);
                            }
                        }
                        Decision::Restart { attempt } => {
                            restarts.push((name.clone(), pool.clone(), attempt));
                        }
                        Decision::Hold { attempts } => events.push(Event::from(ConnectorHeld {
                            connector: name.clone(),
                            pool: pool.clone(),
                            attempts,
                        })),
                        Decision::Recovered { attempts } => {
                            events.push(Event::from(ConnectorRecovered {
                                connector: name.clone(),
                                pool: pool.clone(),
                                attempts,
                            }))
                        }
                        Decision::Reset => {}
                    }
                }
                // A failure's trace is refreshed while it fails (a task may fail differently).
                if health == PolledHealth::Failed
                    && let Some(f) = first_failure(&status, wall)
                    && let Some(last) = &mut entry.last_failure
                    && last.trace != f.trace
                {
                    last.trace = f.trace;
                    last.error = f.error;
                    last.task = f.task;
                }
                entry.status = status;
            }
            state
                .connectors
                .iter()
                .map(|(name, w)| (name.clone(), self.sample(w, wall)))
                .collect::<BTreeMap<_, _>>()
        };
        self.observer().connectors().update(&samples, &pools_read);
        for e in events {
            self.observer().emit(e);
        }
        for (name, pool, attempt) in restarts {
            self.restart(&name, &pool, attempt).await;
        }
    }

    fn sample(&self, w: &Watched, wall: OffsetDateTime) -> ConnectorSample {
        ConnectorSample {
            pool: w.pool.clone(),
            state: w.status.connector.state.clone(),
            tasks: w
                .status
                .tasks
                .iter()
                .map(|t| (t.id, t.state.state.clone()))
                .collect(),
            uptime_seconds: w
                .running_since
                .map_or(0.0, |t| (wall - t).as_seconds_f64().max(0.0)),
            held: w.tracker.held,
            restart_budget_used: w.tracker.attempts,
            tasks_max: w.tasks_max,
        }
    }

    async fn restart(&self, name: &str, pool: &str, attempt: u32) {
        let result = self
            .gateway
            .on_pool(pool, |c| async move { c.restart(name, true, true).await })
            .await;
        match result {
            Ok(()) => {
                self.observer().connectors().auto_restarted(pool, name);
                self.observer().emit(ConnectorAutoRestarted {
                    connector: name.to_string(),
                    pool: pool.to_string(),
                    attempt,
                    max: self.settings.max_restarts,
                });
            }
            Err(e) => self.observer().emit(AutoRestartFailed {
                connector: name.to_string(),
                pool: pool.to_string(),
                code: e.code(),
                message: e.into_error(&[]).to_string(),
            }),
        }
    }

    /// Workers that exited with a failure since the last call, with their Connect worker id,
    /// from the supervisor's exit channel (not the bounded event list: a burst of other events
    /// cannot push an exit out of sight).
    fn worker_restarts(&self) -> Vec<(String, String)> {
        let failed = self.exits.failed();
        if failed.is_empty() {
            return Vec::new();
        }
        let ids: HashMap<String, String> = self
            .supervisor
            .status()
            .into_iter()
            .flat_map(|p| p.workers)
            .map(|w| (w.id, w.rest_url.trim_start_matches("http://").to_string()))
            .collect();
        let mut out: Vec<(String, String)> = failed
            .into_iter()
            .filter_map(|worker| {
                let id = ids.get(&worker)?.clone();
                Some((worker, id))
            })
            .collect();
        out.dedup();
        out
    }

    /// An operator restarted `name` (or one of its tasks) by hand: release its hold.
    pub fn operator_restarted(&self, name: &str, principal: &str) {
        let was_held = self
            .lock()
            .connectors
            .get_mut(name)
            .is_some_and(|w| w.tracker.release());
        if was_held {
            self.observer().emit(ConnectorReleased {
                connector: name.to_string(),
                principal: principal.to_string(),
            });
        }
        self.poke();
    }

    /// A connector was created through the API.
    pub fn created(&self, name: &str) {
        self.lock().recent.insert(name.to_string(), Instant::now());
        self.poke();
    }

    /// A connector's config was replaced: a fresh start gets a full budget.
    pub fn updated(&self, name: &str) {
        if let Some(w) = self.lock().connectors.get_mut(name) {
            w.tracker.release();
        }
        self.poke();
    }

    /// A connector was deleted.
    pub fn deleted(&self, name: &str) {
        {
            let mut state = self.lock();
            state.connectors.remove(name);
            state.recent.remove(name);
        }
        self.observer().logs().connector_deleted(name);
        self.poke();
    }

    /// Whether `name` exists as far as the watch knows (seen by the last poll or just created).
    pub fn knows(&self, name: &str) -> bool {
        let state = self.lock();
        state.connectors.contains_key(name) || state.recent.contains_key(name)
    }

    fn view(&self, w: &Watched) -> AutoRestartView {
        let now = Instant::now();
        AutoRestartView {
            enabled: self.settings.enabled,
            restarts: w.tracker.attempts,
            max_restarts: self.settings.max_restarts,
            held: w.tracker.held,
            next_restart_in_seconds: (w.tracker.failing
                && !w.tracker.held
                && self.settings.enabled)
                .then(|| {
                    w.tracker
                        .next_at
                        .map_or(0.0, |t| t.saturating_duration_since(now).as_secs_f64())
                }),
            last_failure: w.last_failure.clone(),
        }
    }

    /// The auto-restart state of `name`, if the watch has seen it.
    pub fn auto_restart(&self, name: &str) -> Option<AutoRestartView> {
        self.lock().connectors.get(name).map(|w| self.view(w))
    }

    /// The health summary; `role` decides `can_restart`.
    pub fn summary(&self, role: Role) -> HealthSummary {
        let wall = OffsetDateTime::now_utc();
        let observer = self.observer();
        let logs = observer.logs();
        let (connectors, polled_at) = {
            let state = self.lock();
            let list: Vec<(String, Watched)> = state
                .connectors
                .iter()
                .map(|(n, w)| (n.clone(), w.clone()))
                .collect();
            (list, state.polled_at)
        };
        let mut items = Vec::new();
        for (name, w) in &connectors {
            let managed = translate::connector_state(&w.status);
            let log_error = logs.connector_last_error(name);
            let (last_error, last_error_at) = match (&w.last_failure, &log_error) {
                (Some(f), Some(l)) if l.time > f.time => (Some(l.message.clone()), Some(l.time)),
                (Some(f), _) => (Some(f.error.clone()), Some(f.time)),
                (None, Some(l)) => (Some(l.message.clone()), Some(l.time)),
                (None, None) => (None, None),
            };
            items.push(ConnectorHealth {
                name: name.clone(),
                pool: w.pool.clone(),
                state: managed.as_str(),
                connect_state: w.status.connector.state.clone(),
                tasks: w.status.tasks.len(),
                failed_tasks: w
                    .status
                    .tasks
                    .iter()
                    .filter(|t| t.state.state == "FAILED")
                    .count(),
                last_error,
                last_error_at,
                errors_last_hour: logs.connector_errors_last_hour(name, wall),
                last_activity: observer.connectors().last_activity(name),
                uptime_seconds: w.running_since.map(|t| (wall - t).whole_seconds()),
                auto_restart: self.view(w),
            });
        }
        let mut by_state = BTreeMap::new();
        for i in &items {
            *by_state.entry(i.state).or_insert(0) += 1;
        }
        let pools = self.supervisor.status();
        let mut workers = WorkerCounts {
            total: 0,
            ready: 0,
            by_state: BTreeMap::new(),
        };
        let mut pool_down = false;
        for p in &pools {
            workers.total += p.workers.len();
            workers.ready += p.ready_workers;
            pool_down |= p.desired_workers > 0 && p.ready_workers == 0;
            for w in &p.workers {
                *workers.by_state.entry(w.state.as_str()).or_insert(0) += 1;
            }
        }
        let kafka = observer.kafka().map(|k| k.state());
        let failing: Vec<ConnectorHealth> = items
            .iter()
            .filter(|i| matches!(i.state, "FAILED" | "DEGRADED") || i.auto_restart.held)
            .cloned()
            .collect();
        let status = if pool_down || kafka.as_ref().is_some_and(|k| k.reachable == Some(false)) {
            "unavailable"
        } else if !failing.is_empty() {
            "degraded"
        } else {
            "ok"
        };
        HealthSummary {
            department: self.supervisor.department().id.clone(),
            status,
            generated_at: wall,
            status_read_at: polled_at,
            connectors_total: items.len(),
            tasks_total: items.iter().map(|i| i.tasks).sum(),
            tasks_failed: items.iter().map(|i| i.failed_tasks).sum(),
            connectors_held: items.iter().filter(|i| i.auto_restart.held).count(),
            connectors_by_state: by_state,
            errors_last_hour: logs.errors_last_hour(wall),
            workers,
            kafka,
            log_forwarding: logs.forward_stats(),
            can_restart: role >= Role::Operator,
            failing,
            connectors: items,
        }
    }

    /// Names of the connectors the last poll saw.
    pub fn names(&self) -> BTreeSet<String> {
        self.lock().connectors.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkerId;
    use crate::observe::EVENT_CAPACITY;
    use crate::observe::events::{ConnectorChange, ConnectorChanged};
    use crate::supervisor::lifecycle::ExitReason;

    fn exit(worker: WorkerId, reason: ExitReason) -> WorkerExited {
        WorkerExited {
            worker,
            reason,
            stderr_tail: Vec::new(),
        }
    }

    #[test]
    fn a_failed_exit_is_seen_after_a_burst_of_2000_other_events() {
        let observer = Observer::new("dept1");
        let feed = ExitFeed::new(&observer);
        observer.emit(exit(WorkerId::new("shared", 0), ExitReason::OomKilled));
        for i in 0..2000 {
            observer.emit(ConnectorChanged {
                connector: format!("dept1-c{i}"),
                change: ConnectorChange::Updated,
                principal: "ci".into(),
            });
        }
        // The bounded event list no longer has the exit (what the watch used to scan)...
        assert_eq!(EVENT_CAPACITY, 2000);
        let listed = observer.events().since(0, usize::MAX);
        assert!(listed.iter().all(|e| e.event != "worker_exited"));
        // ...the exit channel still does, once.
        assert_eq!(feed.failed(), ["shared-0"]);
        assert!(feed.failed().is_empty());
    }

    #[test]
    fn only_failed_exits_count_and_they_come_in_order() {
        let observer = Observer::new("dept1");
        let feed = ExitFeed::new(&observer);
        observer.emit(exit(WorkerId::new("shared", 1), ExitReason::Shutdown));
        observer.emit(exit(
            WorkerId::new("shared", 0),
            ExitReason::ExitCode { code: 1 },
        ));
        observer.emit(exit(WorkerId::new("heavy", 0), ExitReason::OomKilled));
        assert_eq!(feed.failed(), ["shared-0", "heavy-0"]);
    }
}

//! Offsets requests (KIP-875 through the managed API): submitted, then applied in the
//! background. Applying one is a pure state machine ([`OffsetsChange`]: stop the connector,
//! wait until Connect reports it stopped, alter or reset its offsets, return it to its state),
//! shaped like [`crate::supervisor::lifecycle`], under a thin async shell ([`drive`]) on tokio
//! time, so its timing is tested with a paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value;

use crate::observe::events::{OffsetsRequestApplied, OffsetsRequestFailed, OffsetsRestoreFailed};
use crate::offsets::{OffsetRequest, Phase, RequestKind};
use crate::translate;

use super::{Connectors, ConnectorsError, POLL, RECOVERY_TIMEOUT, SETTLE_TIMEOUT, STOP_TIMEOUT};

impl Connectors {
    /// Refuses a change to `name` while an offsets request is applied to it.
    pub fn ensure_not_busy(&self, name: &str) -> Result<(), ConnectorsError> {
        match self.offsets.in_flight(name) {
            Some(r) => Err(ConnectorsError::Busy(format!(
                "connector {name} is being stopped for an offsets {} request (requested at {}); \
                 wait until .../offsets/request/status is APPLIED or FAILED, then retry",
                r.kind.as_str(),
                r.requested_at
            ))),
            None => Ok(()),
        }
    }

    /// The last offsets request of `name`.
    pub async fn offsets_request(
        &self,
        name: &str,
    ) -> Result<Option<OffsetRequest>, ConnectorsError> {
        self.locate(name).await?;
        // A connector deleted behind the supervisor's back has no request to show.
        if self.department.pools.len() == 1 {
            self.info(name).await?;
        }
        Ok(self.offsets.get(name))
    }

    /// Records an offsets request and starts applying it in the background. The connector's
    /// state and offsets before the change are captured first, so the connector goes back to
    /// that state and the request status shows the previous offsets.
    pub async fn submit_offsets(
        self: &Arc<Self>,
        name: &str,
        kind: RequestKind,
        requested: Vec<Value>,
        principal: &str,
    ) -> Result<OffsetRequest, ConnectorsError> {
        if kind == RequestKind::Patch && requested.is_empty() {
            return Err(ConnectorsError::Invalid(vec![
                "offsets: a PATCH request needs at least one {partition, offset}; use type DELETE to reset all offsets".into(),
            ]));
        }
        self.ensure_not_busy(name)?;
        // A connector restarted by a config update shows UNASSIGNED for a moment, whatever its
        // target state: wait for it to settle, or a paused connector would be resumed.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let (pool, status) = loop {
            let (pool, status) = self.status(name).await?;
            let settled = status.as_ref().is_some_and(|s| {
                matches!(
                    s.connector.state.as_str(),
                    "RUNNING" | "PAUSED" | "STOPPED" | "FAILED"
                )
            });
            if settled || Instant::now() >= deadline {
                break (pool, status);
            }
            tracing::debug!(
                connector = name,
                state = status.as_ref().map(|s| s.connector.state.as_str()),
                "Offsets request: waiting for the connector to settle."
            );
            tokio::time::sleep(POLL).await;
        };
        let restore_state = match status.as_ref().map(|s| s.connector.state.as_str()) {
            Some("PAUSED") => "PAUSED",
            Some("STOPPED") => "STOPPED",
            _ => "RUNNING",
        };
        let previous = self
            .call(&pool, &[], |c| async move { c.offsets(name).await })
            .await?;
        let record = OffsetRequest {
            connector: name.to_string(),
            id: self.connector_id(name),
            pool,
            kind,
            offsets: requested,
            requested_at: translate::rfc3339(time::OffsetDateTime::now_utc()),
            phase: Phase::Pending,
            message: String::new(),
            previous_offsets: previous,
            applied_at: None,
            restore_state: restore_state.to_string(),
            requested_by: principal.to_string(),
        };
        self.offsets.begin(record.clone())?;
        tracing::info!(
            connector = name,
            kind = kind.as_str(),
            principal,
            "Offsets request accepted."
        );
        // Applied by the task of `run_offsets_requests`; it takes this up even if it starts later.
        let _ = self.offsets_jobs.send(name.to_string());
        Ok(record)
    }

    /// Applies the offsets requests, until stopped: first those left pending by the previous
    /// supervisor run (each waits for a ready worker of its pool), then each one submitted, all
    /// concurrently. A background task the composition root (`app`) spawns and stops; stopping
    /// it stops the requests being applied (their records stay PENDING and are taken up again
    /// by the next run). Runs once per component: a second call returns at once.
    pub async fn run_offsets_requests(self: Arc<Self>) {
        let Some(mut inbox) = self
            .offsets_inbox
            .lock()
            .expect("offsets inbox lock")
            .take()
        else {
            tracing::warn!("The offsets requests are applied by another task already.");
            return;
        };
        let mut applying = tokio::task::JoinSet::new();
        for record in self.offsets.pending() {
            tracing::warn!(connector = %record.connector, kind = record.kind.as_str(),
                "Taking up an offsets request left pending by the previous supervisor run.");
            applying.spawn(Arc::clone(&self).apply_offsets(record.connector, true));
        }
        loop {
            tokio::select! {
                job = inbox.recv() => match job {
                    Some(connector) => {
                        applying.spawn(Arc::clone(&self).apply_offsets(connector, false));
                    }
                    None => break,
                },
                Some(_) = applying.join_next(), if !applying.is_empty() => {}
            }
        }
        while applying.join_next().await.is_some() {}
    }

    pub(super) async fn apply_offsets(self: Arc<Self>, connector: String, recovering: bool) {
        let Some(mut record) = self.offsets.in_flight(&connector) else {
            return;
        };
        let name = connector.as_str();
        let (machine, first) = OffsetsChange::request(
            name,
            Restore::from_state(&record.restore_state),
            recovering,
            Instant::now(),
        );
        let mut shell = Shell::new(&self, &record.pool, name, record.kind, &record.offsets, &[]);
        let outcome = drive(&mut shell, machine, first).await;
        let (phase, message) = outcome.recorded(&record);
        match &outcome {
            Outcome::Applied => self.supervisor.observer().emit(OffsetsRequestApplied {
                connector: name.to_string(),
                kind: record.kind.as_str(),
            }),
            Outcome::Failed { error, .. } | Outcome::Patched(Err(error)) => {
                self.supervisor.observer().emit(OffsetsRequestFailed {
                    connector: name.to_string(),
                    kind: record.kind.as_str(),
                    code: error.code(),
                })
            }
            Outcome::NotRestored(r) => self.supervisor.observer().emit(OffsetsRestoreFailed {
                connector: name.to_string(),
                state: record.restore_state.clone(),
                code: r.code(),
            }),
            Outcome::Patched(Ok(())) => {}
        }
        if phase == Phase::Applied {
            record.applied_at = Some(translate::rfc3339(time::OffsetDateTime::now_utc()));
        }
        record.phase = phase;
        record.message = message;
        if let Err(e) = self.offsets.update(record) {
            tracing::error!(connector = name, error = %e, code = e.code(), "Offsets request outcome could not be recorded.");
        }
    }

    /// Waits until `name` is STOPPED with no tasks, then alters or resets its offsets, retrying
    /// while Connect still says the connector is not stopped (the patch part of
    /// [`OffsetsChange`], for a create with offsets and a delete with `recreate = "fresh"`).
    pub(super) async fn patch_when_stopped(
        &self,
        pool: &str,
        name: &str,
        kind: RequestKind,
        offsets: &[Value],
        secrets: &[String],
    ) -> Result<(), ConnectorsError> {
        let (machine, first) = OffsetsChange::patch(name, Instant::now());
        let mut shell = Shell::new(self, pool, name, kind, offsets, secrets);
        match drive(&mut shell, machine, first).await {
            Outcome::Patched(result) => result,
            Outcome::Applied => Ok(()),
            Outcome::Failed { error, .. } | Outcome::NotRestored(error) => Err(error),
        }
    }
}

// ----- the state machine (pure) -----

/// How often the connector's state is read while waiting for it to stop, and how long before a
/// change Connect refused as "not stopped yet" is sent again.
pub const POLL_STOPPED: Duration = POLL;
/// How often a request taken up after a restart looks for a ready worker of its pool.
pub const POLL_WORKERS: Duration = Duration::from_secs(1);

/// The state a connector goes back to after its offsets changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// Resumed.
    Running,
    /// Paused.
    Paused,
    /// Left stopped.
    Stopped,
}

impl Restore {
    /// From a request's recorded `restore_state` (anything but PAUSED and STOPPED resumes).
    pub fn from_state(state: &str) -> Self {
        match state {
            "PAUSED" => Self::Paused,
            "STOPPED" => Self::Stopped,
            _ => Self::Running,
        }
    }
}

/// Where an offsets change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Taken up after a supervisor restart: waiting (until then) for a ready worker.
    WaitingForWorkers {
        /// When it goes ahead anyway.
        until: Instant,
    },
    /// Reading the connector's config (for the secrets to scrub Connect's messages of).
    ReadingConfig,
    /// Asking Connect to stop the connector.
    Stopping,
    /// Waiting for Connect to report it STOPPED with no tasks.
    WaitingUntilStopped {
        /// When waiting fails.
        deadline: Instant,
    },
    /// Altering or resetting the offsets (sent again while Connect says "not stopped").
    Changing {
        /// When a "not stopped" refusal is final.
        deadline: Instant,
    },
    /// Returning the connector to its state.
    Restoring,
    /// Finished.
    Done,
}

/// What the shell reports back: the answer to the last [`Effect`].
#[derive(Debug)]
pub enum Input {
    /// Whether the pool has a ready worker ([`Effect::CheckWorkers`]).
    WorkersReady(bool),
    /// The config was read ([`Effect::ReadConfig`]).
    ConfigRead(Result<(), ConnectorsError>),
    /// Connect's answer to the stop ([`Effect::Stop`]).
    Stopped(Result<(), ConnectorsError>),
    /// Whether Connect reports the connector STOPPED with no tasks ([`Effect::ReadStatus`]).
    Status {
        /// STOPPED, no tasks.
        stopped: bool,
    },
    /// Connect's answer to the alter or reset ([`Effect::Change`]).
    Changed(Result<(), ConnectorsError>),
    /// Connect's answer to the pause or resume ([`Effect::Restore`]).
    Restored(Result<(), ConnectorsError>),
    /// The pause asked for is over ([`Effect::Sleep`]).
    Woke,
}

/// What the shell does next.
#[derive(Debug)]
pub enum Effect {
    /// Look whether the pool has a ready worker.
    CheckWorkers,
    /// Read the connector's config and the secrets in it.
    ReadConfig,
    /// `PUT .../stop`.
    Stop,
    /// `GET .../status`.
    ReadStatus,
    /// `PATCH .../offsets` or `DELETE .../offsets`, per the request's kind.
    Change,
    /// Pause or resume the connector.
    Restore(Restore),
    /// Wait (tokio time), then report [`Input::Woke`].
    Sleep(Duration),
    /// Done, with this outcome.
    Finish(Outcome),
}

/// How an offsets change ended.
#[derive(Debug)]
pub enum Outcome {
    /// A plain patch (no state to return to): its result.
    Patched(Result<(), ConnectorsError>),
    /// Changed, and the connector is back in its state.
    Applied,
    /// Not changed; `restore` says whether returning the connector to its state failed too.
    Failed {
        /// Why the change failed.
        error: ConnectorsError,
        /// Why returning to the state failed, if it did.
        restore: Option<ConnectorsError>,
    },
    /// Changed, but the connector could not be returned to its state.
    NotRestored(ConnectorsError),
}

impl Outcome {
    /// The phase and message a request record gets for this outcome.
    pub fn recorded(&self, request: &OffsetRequest) -> (Phase, String) {
        match self {
            Self::Applied | Self::Patched(Ok(())) => {
                (Phase::Applied, request.applied_message().to_string())
            }
            Self::Failed { error, restore } => (
                Phase::Failed,
                format!(
                    "the offsets could not be {}: {error}{}",
                    if request.kind == RequestKind::Patch {
                        "altered"
                    } else {
                        "reset"
                    },
                    match restore {
                        None => String::new(),
                        Some(r) => format!(
                            "; returning the connector to {} also failed: {r}",
                            request.restore_state
                        ),
                    }
                ),
            ),
            Self::Patched(Err(error)) => (
                Phase::Failed,
                format!("the offsets could not be changed: {error}"),
            ),
            Self::NotRestored(r) => (
                Phase::Failed,
                format!(
                    "the offsets were changed, but returning the connector to {} failed: {r}; resume or pause it yourself",
                    request.restore_state
                ),
            ),
        }
    }
}

/// Whether Connect refused a change only because the connector is not STOPPED yet (it may
/// still be stopping its tasks), so it is sent again.
pub fn not_stopped_yet(e: &ConnectorsError) -> bool {
    matches!(e, ConnectorsError::Connect { status: 400, message } if message.contains("STOPPED"))
}

/// One offsets change as a state machine: stop the connector, wait until Connect reports it
/// STOPPED, alter or reset its offsets, and (for a request) return it to its state whatever
/// happened, so a failed request never leaves it stopped behind the user's back. No I/O and no
/// clock of its own: the shell ([`drive`]) carries out each [`Effect`] and reports the answer
/// with the current tokio time.
#[derive(Debug)]
pub struct OffsetsChange {
    connector: String,
    restore: Option<Restore>,
    step: Step,
    changed: Option<Result<(), ConnectorsError>>,
}

impl OffsetsChange {
    /// A request's change (stop, change, restore); `recovering`: taken up after a supervisor
    /// restart, so it first waits (up to [`RECOVERY_TIMEOUT`]) for a ready worker.
    pub fn request(
        connector: &str,
        restore: Restore,
        recovering: bool,
        now: Instant,
    ) -> (Self, Effect) {
        let step = if recovering {
            Step::WaitingForWorkers {
                until: now + RECOVERY_TIMEOUT,
            }
        } else {
            Step::ReadingConfig
        };
        let machine = Self {
            connector: connector.to_string(),
            restore: Some(restore),
            step,
            changed: None,
        };
        let first = machine.pending();
        (machine, first)
    }

    /// A plain patch of a connector already asked to stop: wait until stopped, change, done.
    pub fn patch(connector: &str, now: Instant) -> (Self, Effect) {
        let machine = Self {
            connector: connector.to_string(),
            restore: None,
            step: Step::WaitingUntilStopped {
                deadline: now + STOP_TIMEOUT,
            },
            changed: None,
        };
        (machine, Effect::ReadStatus)
    }

    /// Where the change is.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The effect the current step waits on (what an input the step does not expect repeats).
    fn pending(&self) -> Effect {
        match self.step {
            Step::WaitingForWorkers { .. } => Effect::CheckWorkers,
            Step::ReadingConfig => Effect::ReadConfig,
            Step::Stopping => Effect::Stop,
            Step::WaitingUntilStopped { .. } => Effect::ReadStatus,
            Step::Changing { .. } => Effect::Change,
            Step::Restoring => Effect::Restore(self.restore.unwrap_or(Restore::Running)),
            Step::Done => Effect::Sleep(Duration::ZERO),
        }
    }

    /// The next effect, given the answer to the last one at `now`.
    pub fn handle(&mut self, input: Input, now: Instant) -> Effect {
        match (self.step, input) {
            (Step::WaitingForWorkers { until }, Input::WorkersReady(ready)) => {
                if ready || now >= until {
                    self.step = Step::ReadingConfig;
                    Effect::ReadConfig
                } else {
                    Effect::Sleep(POLL_WORKERS)
                }
            }
            (Step::ReadingConfig, Input::ConfigRead(Ok(()))) => {
                self.step = Step::Stopping;
                Effect::Stop
            }
            (Step::ReadingConfig, Input::ConfigRead(Err(e)))
            | (Step::Stopping, Input::Stopped(Err(e))) => self.changed(Err(e)),
            (Step::Stopping, Input::Stopped(Ok(()))) => {
                self.step = Step::WaitingUntilStopped {
                    deadline: now + STOP_TIMEOUT,
                };
                Effect::ReadStatus
            }
            (Step::WaitingUntilStopped { deadline }, Input::Status { stopped: true }) => {
                self.step = Step::Changing { deadline };
                Effect::Change
            }
            (Step::WaitingUntilStopped { deadline }, Input::Status { stopped: false }) => {
                if now >= deadline {
                    let message = format!(
                        "connector {} did not stop within {}s",
                        self.connector,
                        STOP_TIMEOUT.as_secs()
                    );
                    self.changed(Err(ConnectorsError::Connect {
                        status: 500,
                        message,
                    }))
                } else {
                    Effect::Sleep(POLL_STOPPED)
                }
            }
            (Step::Changing { deadline }, Input::Changed(Err(e)))
                if not_stopped_yet(&e) && now < deadline =>
            {
                Effect::Sleep(POLL_STOPPED)
            }
            (Step::Changing { .. }, Input::Changed(result)) => self.changed(result),
            (Step::Restoring, Input::Restored(restored)) => self.finish(restored),
            (
                Step::WaitingForWorkers { .. }
                | Step::WaitingUntilStopped { .. }
                | Step::Changing { .. },
                Input::Woke,
            ) => self.pending(),
            (_, _) => self.pending(),
        }
    }

    /// The change is over (`result`): a plain patch is done; a request returns the connector to
    /// its state (nothing to do for STOPPED).
    fn changed(&mut self, result: Result<(), ConnectorsError>) -> Effect {
        match self.restore {
            None => {
                self.step = Step::Done;
                Effect::Finish(Outcome::Patched(result))
            }
            Some(Restore::Stopped) => {
                self.changed = Some(result);
                self.finish(Ok(()))
            }
            Some(restore) => {
                self.changed = Some(result);
                self.step = Step::Restoring;
                Effect::Restore(restore)
            }
        }
    }

    fn finish(&mut self, restored: Result<(), ConnectorsError>) -> Effect {
        self.step = Step::Done;
        let changed = self.changed.take().unwrap_or(Ok(()));
        Effect::Finish(match (changed, restored) {
            (Ok(()), Ok(())) => Outcome::Applied,
            (Err(error), restored) => Outcome::Failed {
                error,
                restore: restored.err(),
            },
            (Ok(()), Err(r)) => Outcome::NotRestored(r),
        })
    }
}

// ----- the shell -----

/// What [`drive`] needs of the world: the calls behind each [`Effect`].
pub(crate) trait OffsetsPort {
    /// Whether the pool has a ready worker.
    async fn workers_ready(&mut self) -> bool;
    /// Reads the connector's config (keeping its secrets for the calls after).
    async fn read_config(&mut self) -> Result<(), ConnectorsError>;
    /// Asks Connect to stop the connector.
    async fn stop(&mut self) -> Result<(), ConnectorsError>;
    /// Whether Connect reports the connector STOPPED with no tasks (an error reads as no).
    async fn stopped(&mut self) -> bool;
    /// Alters or resets the offsets.
    async fn change(&mut self) -> Result<(), ConnectorsError>;
    /// Pauses or resumes the connector.
    async fn restore(&mut self, restore: Restore) -> Result<(), ConnectorsError>;
}

/// Runs `machine` from its `first` effect to its outcome against `port`, sleeping on tokio time.
pub(crate) async fn drive(
    port: &mut impl OffsetsPort,
    mut machine: OffsetsChange,
    first: Effect,
) -> Outcome {
    let mut effect = first;
    loop {
        let input = match effect {
            Effect::CheckWorkers => Input::WorkersReady(port.workers_ready().await),
            Effect::ReadConfig => Input::ConfigRead(port.read_config().await),
            Effect::Stop => Input::Stopped(port.stop().await),
            Effect::ReadStatus => Input::Status {
                stopped: port.stopped().await,
            },
            Effect::Change => Input::Changed(port.change().await),
            Effect::Restore(restore) => Input::Restored(port.restore(restore).await),
            Effect::Sleep(pause) => {
                tokio::time::sleep(pause).await;
                Input::Woke
            }
            Effect::Finish(outcome) => return outcome,
        };
        effect = machine.handle(input, Instant::now());
    }
}

/// The port of a real connector: calls to its pool through [`Connectors`].
struct Shell<'a> {
    connectors: &'a Connectors,
    pool: &'a str,
    name: &'a str,
    kind: RequestKind,
    offsets: &'a [Value],
    secrets: Vec<String>,
}

impl<'a> Shell<'a> {
    fn new(
        connectors: &'a Connectors,
        pool: &'a str,
        name: &'a str,
        kind: RequestKind,
        offsets: &'a [Value],
        secrets: &[String],
    ) -> Self {
        Self {
            connectors,
            pool,
            name,
            kind,
            offsets,
            secrets: secrets.to_vec(),
        }
    }
}

impl OffsetsPort for Shell<'_> {
    async fn workers_ready(&mut self) -> bool {
        !self
            .connectors
            .supervisor
            .ready_worker_urls(self.pool)
            .is_empty()
    }

    async fn read_config(&mut self) -> Result<(), ConnectorsError> {
        self.connectors.tasks_may_change(self.name);
        let (_, secrets) = self
            .connectors
            .config_and_secrets(self.pool, self.name)
            .await?;
        self.secrets = secrets;
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), ConnectorsError> {
        let name = self.name;
        self.connectors
            .call(
                self.pool,
                &self.secrets,
                |c| async move { c.stop(name).await },
            )
            .await
    }

    async fn stopped(&mut self) -> bool {
        let name = self.name;
        let status = self
            .connectors
            .call(self.pool, &self.secrets, |c| async move {
                c.connector_status(name).await
            })
            .await;
        matches!(&status, Ok(s) if s.connector.state == "STOPPED" && s.tasks.is_empty())
    }

    async fn change(&mut self) -> Result<(), ConnectorsError> {
        let (name, offsets) = (self.name, self.offsets);
        match self.kind {
            RequestKind::Patch => self
                .connectors
                .call(self.pool, &self.secrets, |c| async move {
                    c.alter_offsets(name, offsets).await
                })
                .await
                .map(drop),
            RequestKind::Delete => self
                .connectors
                .call(self.pool, &self.secrets, |c| async move {
                    c.reset_offsets(name).await
                })
                .await
                .map(drop),
        }
    }

    async fn restore(&mut self, restore: Restore) -> Result<(), ConnectorsError> {
        let name = self.name;
        // Connect's answer to a pause or resume quotes no config value.
        match restore {
            Restore::Stopped => Ok(()),
            Restore::Paused => {
                self.connectors
                    .call(self.pool, &[], |c| async move { c.pause(name).await })
                    .await
            }
            Restore::Running => {
                self.connectors
                    .call(self.pool, &[], |c| async move { c.resume(name).await })
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted connector on a scripted pool, recording the calls made, on tokio time.
    struct Script {
        start: Instant,
        workers_after: Option<Duration>,
        stopped_after: Option<Duration>,
        not_stopped_refusals: u32,
        change_error: Option<u16>,
        restore_fails: bool,
        calls: Vec<(String, Duration)>,
    }

    impl Script {
        fn new() -> Self {
            Self {
                start: Instant::now(),
                workers_after: Some(Duration::ZERO),
                stopped_after: Some(Duration::from_secs(1)),
                not_stopped_refusals: 0,
                change_error: None,
                restore_fails: false,
                calls: Vec::new(),
            }
        }

        fn record(&mut self, call: &str) -> Duration {
            let at = self.start.elapsed();
            self.calls.push((call.to_string(), at));
            at
        }

        fn names(&self) -> Vec<&str> {
            let mut names: Vec<&str> = self.calls.iter().map(|(c, _)| c.as_str()).collect();
            names.dedup();
            names
        }

        fn count(&self, call: &str) -> usize {
            self.calls.iter().filter(|(c, _)| c == call).count()
        }

        fn first(&self, call: &str) -> Duration {
            self.calls.iter().find(|(c, _)| c == call).unwrap().1
        }
    }

    impl OffsetsPort for Script {
        async fn workers_ready(&mut self) -> bool {
            let at = self.record("workers");
            self.workers_after.is_some_and(|after| at >= after)
        }
        async fn read_config(&mut self) -> Result<(), ConnectorsError> {
            self.record("config");
            Ok(())
        }
        async fn stop(&mut self) -> Result<(), ConnectorsError> {
            self.record("stop");
            Ok(())
        }
        async fn stopped(&mut self) -> bool {
            let at = self.record("status");
            self.stopped_after.is_some_and(|after| at >= after)
        }
        async fn change(&mut self) -> Result<(), ConnectorsError> {
            self.record("change");
            if self.not_stopped_refusals > 0 {
                self.not_stopped_refusals -= 1;
                return Err(ConnectorsError::Connect {
                    status: 400,
                    message: "Connectors must be in the STOPPED state before their offsets can be modified".into(),
                });
            }
            match self.change_error {
                Some(status) => Err(ConnectorsError::Connect {
                    status,
                    message: "no such partition".into(),
                }),
                None => Ok(()),
            }
        }
        async fn restore(&mut self, restore: Restore) -> Result<(), ConnectorsError> {
            self.record(match restore {
                Restore::Running => "resume",
                Restore::Paused => "pause",
                Restore::Stopped => "stay-stopped",
            });
            if self.restore_fails {
                return Err(ConnectorsError::NoWorker {
                    pool: "shared".into(),
                });
            }
            Ok(())
        }
    }

    async fn run(script: &mut Script, restore: Restore, recovering: bool) -> Outcome {
        let (machine, first) =
            OffsetsChange::request("dept1-a", restore, recovering, Instant::now());
        drive(script, machine, first).await
    }

    fn request(kind: RequestKind, restore_state: &str) -> OffsetRequest {
        OffsetRequest {
            connector: "dept1-a".into(),
            id: "lcc-1".into(),
            pool: "shared".into(),
            kind,
            offsets: vec![],
            requested_at: "2025-01-01T00:00:00Z".into(),
            phase: Phase::Pending,
            message: String::new(),
            previous_offsets: vec![],
            applied_at: None,
            restore_state: restore_state.into(),
            requested_by: "ADMIN".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_stops_waits_changes_and_returns_the_connector_to_its_state() {
        let mut script = Script::new();
        let outcome = run(&mut script, Restore::Paused, false).await;
        assert!(matches!(outcome, Outcome::Applied), "{outcome:?}");
        assert_eq!(
            script.names(),
            ["config", "stop", "status", "change", "pause"]
        );
        // Polled every POLL_STOPPED until Connect said STOPPED, a second in.
        assert_eq!(script.count("status"), 6);
        assert_eq!(script.first("change"), Duration::from_secs(1));
        let (phase, message) = outcome.recorded(&request(RequestKind::Patch, "PAUSED"));
        assert_eq!(phase, Phase::Applied);
        assert_eq!(message, crate::offsets::PATCH_APPLIED);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connector_that_never_stops_fails_after_the_stop_timeout_and_is_resumed() {
        let mut script = Script {
            stopped_after: None,
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Running, false).await;
        assert_eq!(script.count("change"), 0);
        assert_eq!(script.names().last(), Some(&"resume"));
        let waited = script.first("resume");
        assert!(
            waited >= STOP_TIMEOUT && waited < STOP_TIMEOUT + POLL_STOPPED * 2,
            "{waited:?}"
        );
        let (phase, message) = outcome.recorded(&request(RequestKind::Delete, "RUNNING"));
        assert_eq!(phase, Phase::Failed);
        assert_eq!(
            message,
            "the offsets could not be reset: connector dept1-a did not stop within 90s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_refused_as_not_stopped_yet_is_sent_again_and_other_refusals_are_final() {
        let mut script = Script {
            not_stopped_refusals: 3,
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Running, false).await;
        assert!(matches!(outcome, Outcome::Applied), "{outcome:?}");
        assert_eq!(script.count("change"), 4);
        let refused = script.first("change");
        let last = script.calls.iter().rfind(|(c, _)| c == "change").unwrap().1;
        assert_eq!(last - refused, POLL_STOPPED * 3);

        let mut script = Script {
            change_error: Some(400),
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Running, false).await;
        assert_eq!(script.count("change"), 1);
        let (_, message) = outcome.recorded(&request(RequestKind::Patch, "RUNNING"));
        assert_eq!(
            message,
            "the offsets could not be altered: no such partition"
        );
        // Refused as not stopped for longer than the stop timeout: final too.
        let mut script = Script {
            not_stopped_refusals: u32::MAX,
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Running, false).await;
        assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
        assert!(
            script.first("resume") >= STOP_TIMEOUT,
            "{:?}",
            script.calls.last()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_taken_up_after_a_restart_waits_for_a_ready_worker_but_not_forever() {
        let mut script = Script {
            workers_after: Some(Duration::from_secs(10)),
            ..Script::new()
        };
        assert!(matches!(
            run(&mut script, Restore::Running, true).await,
            Outcome::Applied
        ));
        assert_eq!(script.first("config"), Duration::from_secs(10));
        assert_eq!(script.count("workers"), 11, "one look a second");

        let mut script = Script {
            workers_after: None,
            ..Script::new()
        };
        run(&mut script, Restore::Running, true).await;
        assert_eq!(script.first("config"), RECOVERY_TIMEOUT);
        // Not recovering: no wait at all.
        let mut script = Script::new();
        run(&mut script, Restore::Running, false).await;
        assert_eq!(script.count("workers"), 0);
        assert_eq!(script.first("config"), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_connector_stays_stopped_and_a_failed_return_is_reported() {
        let mut script = Script::new();
        assert!(matches!(
            run(&mut script, Restore::Stopped, false).await,
            Outcome::Applied
        ));
        assert!(
            !script
                .names()
                .iter()
                .any(|c| ["resume", "pause", "stay-stopped"].contains(c))
        );

        let mut script = Script {
            restore_fails: true,
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Running, false).await;
        let (phase, message) = outcome.recorded(&request(RequestKind::Patch, "RUNNING"));
        assert_eq!(phase, Phase::Failed);
        assert!(
            message.starts_with("the offsets were changed, but returning the connector to RUNNING failed: pool shared has no ready Connect worker"),
            "{message}"
        );
        // Both failed: both are said.
        let mut script = Script {
            restore_fails: true,
            change_error: Some(500),
            ..Script::new()
        };
        let outcome = run(&mut script, Restore::Paused, false).await;
        let (_, message) = outcome.recorded(&request(RequestKind::Patch, "PAUSED"));
        assert!(
            message.contains("no such partition; returning the connector to PAUSED also failed"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_plain_patch_waits_for_the_stop_and_returns_the_result() {
        let mut script = Script::new();
        let (machine, first) = OffsetsChange::patch("dept1-a", Instant::now());
        let outcome = drive(&mut script, machine, first).await;
        assert!(matches!(outcome, Outcome::Patched(Ok(()))), "{outcome:?}");
        assert_eq!(script.names(), ["status", "change"]);
    }

    #[test]
    fn the_machine_ignores_answers_it_did_not_ask_for() {
        let now = Instant::now();
        let (mut machine, first) = OffsetsChange::request("dept1-a", Restore::Running, false, now);
        assert!(matches!(first, Effect::ReadConfig));
        // A stray answer repeats what the step waits on, without moving.
        assert!(matches!(
            machine.handle(Input::Woke, now),
            Effect::ReadConfig
        ));
        assert!(matches!(
            machine.handle(Input::Status { stopped: true }, now),
            Effect::ReadConfig
        ));
        assert_eq!(machine.step(), Step::ReadingConfig);
        assert!(matches!(
            machine.handle(Input::ConfigRead(Ok(())), now),
            Effect::Stop
        ));
        assert!(matches!(
            machine.handle(Input::Stopped(Ok(())), now),
            Effect::ReadStatus
        ));
        assert_eq!(
            machine.step(),
            Step::WaitingUntilStopped {
                deadline: now + STOP_TIMEOUT
            }
        );
        let failed = machine.handle(Input::Status { stopped: false }, now + STOP_TIMEOUT);
        assert!(
            matches!(failed, Effect::Restore(Restore::Running)),
            "{failed:?}"
        );
        assert_eq!(Restore::from_state("PAUSED"), Restore::Paused);
        assert_eq!(Restore::from_state("STOPPED"), Restore::Stopped);
        assert_eq!(Restore::from_state("RUNNING"), Restore::Running);
        assert_eq!(Restore::from_state("anything"), Restore::Running);
    }
}

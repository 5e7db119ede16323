//! The cut-over of one connector from a source (a supervisor, or a plain Connect worker for
//! `adopt`) to a target's managed API, as a resumable state machine.
//!
//! The order of steps per [`Mode`] is pure data ([`steps`]), and which step comes next is a pure
//! function of the state ([`CutoverState::next`]), so the order is unit-tested without any end.
//! [`run`] carries the steps out one by one and writes the state file after each, so a failure
//! leaves a file that `migrate cutover` resumes from and `migrate rollback` undoes.
//!
//! In stop-then-create and no-offsets modes the target is created only after the source is seen
//! STOPPED with no task (and that is checked again when a run resumes), so two connectors never
//! write the same data. The source is stopped with KIP-875 `PUT /connectors/{name}/stop`, which
//! commits the tasks' offsets as they shut down: the offsets read then are the last ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::MigrateError;
use super::client::Endpoint;
use crate::translate::MASK;

/// Suffix of a cut-over's state file in `--out`.
pub const STATE_SUFFIX: &str = ".cutover.json";
/// How often the ends are polled.
pub const POLL: Duration = Duration::from_millis(500);
/// How long a stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time for the target to run and move past the carried offsets.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(180);

/// How the cut-over goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Stop the source, carry its last offsets, create the target: no loss, no duplicates,
    /// some seconds without data.
    StopThenCreate,
    /// Create the target at the source's latest committed offsets while the source still
    /// runs, then stop the source: no gap, duplicates of what was not yet committed.
    Parallel,
    /// Stop the source and create the target without offsets (it starts where its own
    /// settings say).
    NoOffsets,
}

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// KIP-875 stop of the source, until STOPPED with no task.
    StopSource,
    /// Read the source's offsets.
    ReadOffsets,
    /// Create the target (with the offsets, unless no-offsets).
    CreateTarget,
    /// Wait until the target runs and has moved past the carried offsets.
    VerifyTarget,
    /// Delete the source, or keep it stopped (`--keep-source`).
    RetireSource,
}

impl Step {
    /// For journals and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StopSource => "stop_source",
            Self::ReadOffsets => "read_offsets",
            Self::CreateTarget => "create_target",
            Self::VerifyTarget => "verify_target",
            Self::RetireSource => "retire_source",
        }
    }
}

/// The steps of `mode`, in order.
pub fn steps(mode: Mode) -> &'static [Step] {
    match mode {
        Mode::StopThenCreate => &[
            Step::StopSource,
            Step::ReadOffsets,
            Step::CreateTarget,
            Step::VerifyTarget,
            Step::RetireSource,
        ],
        Mode::NoOffsets => &[
            Step::StopSource,
            Step::CreateTarget,
            Step::VerifyTarget,
            Step::RetireSource,
        ],
        Mode::Parallel => &[
            Step::ReadOffsets,
            Step::CreateTarget,
            Step::VerifyTarget,
            Step::StopSource,
            Step::RetireSource,
        ],
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When (RFC 3339).
    pub at: String,
    /// What.
    pub event: String,
    /// Details (never a secret).
    pub message: String,
}

/// Where a cut-over stands; written to `<out>/<connector>.cutover.json` after every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoverState {
    /// The source connector.
    pub connector: String,
    /// Its name on the target.
    pub target_name: String,
    /// The mode.
    pub mode: Mode,
    /// Keep the source stopped instead of deleting it.
    pub keep_source: bool,
    /// The source's URL (supervisor base URL or plain worker).
    pub source: String,
    /// The target's URL.
    pub target: String,
    /// The config created on the target (secrets masked; the source supervisor fills them).
    pub config: BTreeMap<String, String>,
    /// Source key → target key of each secret.
    pub secret_sources: BTreeMap<String, String>,
    /// The source's config as read (masked), to recreate it on a rollback.
    pub source_config: BTreeMap<String, String>,
    /// Offsets carried to the target.
    pub carried_offsets: Vec<Value>,
    /// Steps done.
    pub done: Vec<Step>,
    /// Whether the cut-over was rolled back.
    pub rolled_back: bool,
    /// Seconds from the source's stop to the target verified running (stop-then-create and
    /// no-offsets), as the tool saw it.
    pub seconds_stopped: Option<f64>,
    /// What happened, step by step.
    pub journal: Vec<JournalEntry>,
}

impl CutoverState {
    /// The next step, or `None` when the cut-over is complete (or rolled back).
    pub fn next(&self) -> Option<Step> {
        if self.rolled_back {
            return None;
        }
        steps(self.mode)
            .iter()
            .copied()
            .find(|s| !self.done.contains(s))
    }

    /// Whether the target may be created now without two connectors writing: in
    /// stop-then-create and no-offsets the source must have been stopped first.
    pub fn may_create(&self) -> bool {
        self.mode == Mode::Parallel || self.done.contains(&Step::StopSource)
    }

    /// Adds a journal line and logs it (the audit of the migration's own steps; each change is
    /// also an API call the ends audit with the caller's principal).
    pub fn record(&mut self, event: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(
            connector = %self.connector,
            target_name = %self.target_name,
            event,
            message = %message,
            "Migration step."
        );
        self.journal.push(JournalEntry {
            at: crate::translate::rfc3339(time::OffsetDateTime::now_utc()),
            event: event.to_string(),
            message,
        });
    }

    /// The state file of this cut-over in `out`.
    pub fn path(&self, out: &Path) -> PathBuf {
        state_path(out, &self.connector)
    }

    /// Writes the state file.
    pub fn save(&self, out: &Path) -> Result<(), MigrateError> {
        let text = serde_json::to_string_pretty(self).expect("serialisable");
        super::write_file(&self.path(out), &(text + "\n"))
    }

    /// Reads the state file of `connector` in `out`, if any.
    pub fn load(out: &Path, connector: &str) -> Result<Option<Self>, MigrateError> {
        let path = state_path(out, connector);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| MigrateError::Io {
                    path,
                    message: format!("not a cut-over state file: {e}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MigrateError::Io {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }
}

/// `<out>/<connector>.cutover.json`.
pub fn state_path(out: &Path, connector: &str) -> PathBuf {
    out.join(format!("{connector}{STATE_SUFFIX}"))
}

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long the target may take to run and move past the carried offsets.
    pub verify_timeout: Duration,
    /// Accept a target that runs at the carried offsets without moving past them (no new data
    /// came in during the wait).
    pub accept_idle: bool,
    /// The source supervisor pushes the config with its secrets (admin key of the source);
    /// needed when the config holds masked secrets.
    pub push: bool,
    /// Real values of masked keys, held in memory only (an adopted connector's secrets, read
    /// from its plain worker): they are never written to the state file.
    pub secret_values: BTreeMap<String, String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            verify_timeout: VERIFY_TIMEOUT,
            accept_idle: false,
            push: false,
            secret_values: BTreeMap::new(),
        }
    }
}

/// Whether every offset field of `now` is at least the carried one's, and whether some is
/// past it. Numbers (and numeric strings) compare as numbers; a partition the target has no
/// offset for is behind.
pub fn progress(carried: &[Value], now: &[Value]) -> (bool, bool) {
    let mut at_least = true;
    let mut past = false;
    for c in carried {
        let Some(n) = now.iter().find(|n| n["partition"] == c["partition"]) else {
            at_least = false;
            continue;
        };
        let Some(fields) = c["offset"].as_object() else {
            continue;
        };
        for (k, v) in fields {
            match (number(v), number(&n["offset"][k])) {
                (Some(a), Some(b)) => {
                    if b < a {
                        at_least = false;
                    }
                    if b > a {
                        past = true;
                    }
                }
                _ => {
                    if n["offset"][k] != *v {
                        past = true;
                    }
                }
            }
        }
    }
    (at_least, past)
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Waits until the Connect state of `name` at `end` is STOPPED with no task.
pub async fn wait_stopped(end: &Endpoint, name: &str) -> Result<(), MigrateError> {
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    loop {
        let (state, tasks) = end.connect_state(name).await?;
        if state == "STOPPED" && tasks == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(MigrateError::Step {
                step: Step::StopSource.as_str(),
                message: format!(
                    "{name} is {state} with {tasks} task(s) after {}s, not STOPPED; run the command again to resume",
                    STOP_TIMEOUT.as_secs()
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Carries out the remaining steps of `state`, saving it in `out` after each.
pub async fn run(
    state: &mut CutoverState,
    source: &Endpoint,
    target: &Endpoint,
    out: &Path,
    options: &RunOptions,
) -> Result<(), MigrateError> {
    let mut stopped_at: Option<tokio::time::Instant> = None;
    while let Some(step) = state.next() {
        let result = execute(step, state, source, target, options, &mut stopped_at).await;
        match result {
            Ok(message) => {
                state.done.push(step);
                state.record(step.as_str(), message);
                state.save(out)?;
            }
            Err(e) => {
                state.record(
                    &format!("{}_failed", step.as_str()),
                    format!(
                        "{e} (run `migrate cutover {}` again to resume, or `migrate rollback {}`)",
                        state.connector, state.connector
                    ),
                );
                state.save(out)?;
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn execute(
    step: Step,
    state: &mut CutoverState,
    source: &Endpoint,
    target: &Endpoint,
    options: &RunOptions,
    stopped_at: &mut Option<tokio::time::Instant>,
) -> Result<String, MigrateError> {
    let name = state.connector.clone();
    match step {
        Step::StopSource => {
            source.stop(&name).await?;
            wait_stopped(source, &name).await?;
            *stopped_at = Some(tokio::time::Instant::now());
            Ok(format!("{name} is STOPPED on {}", source.base))
        }
        Step::ReadOffsets => {
            state.carried_offsets = source.connect_offsets(&name).await?;
            Ok(format!(
                "read {} offset(s) of {name}",
                state.carried_offsets.len()
            ))
        }
        Step::CreateTarget => {
            if !state.may_create() {
                return Err(MigrateError::Step {
                    step: step.as_str(),
                    message: "the source is not stopped; refusing to create a second writer".into(),
                });
            }
            if state.mode != Mode::Parallel {
                // A resumed run checks again: someone may have resumed the source meanwhile.
                wait_stopped(source, &name).await?;
            }
            if target.state(&state.target_name).await?.is_some() {
                return Ok(format!(
                    "{} exists on the target already (created by an earlier run)",
                    state.target_name
                ));
            }
            let offsets: &[Value] = if state.mode == Mode::NoOffsets {
                &[]
            } else {
                &state.carried_offsets
            };
            let masked: Vec<&String> = state
                .config
                .iter()
                .filter(|(_, v)| v.as_str() == MASK)
                .map(|(k, _)| k)
                .collect();
            let known = !masked.is_empty()
                && masked
                    .iter()
                    .all(|k| options.secret_values.contains_key(*k));
            if known && !options.push {
                let mut config = state.config.clone();
                config.extend(options.secret_values.clone());
                target.create(&state.target_name, &config, offsets).await?;
                Ok(format!(
                    "{} created on {} with {} offset(s) and its {} secret(s)",
                    state.target_name,
                    target.base,
                    offsets.len(),
                    masked.len()
                ))
            } else if !masked.is_empty() || options.push {
                push(source, target, state, offsets).await?;
                Ok(format!(
                    "{} created on {} with {} offset(s), secrets pushed by the source supervisor",
                    state.target_name,
                    target.base,
                    offsets.len()
                ))
            } else {
                target
                    .create(&state.target_name, &state.config, offsets)
                    .await?;
                Ok(format!(
                    "{} created on {} with {} offset(s)",
                    state.target_name,
                    target.base,
                    offsets.len()
                ))
            }
        }
        Step::VerifyTarget => {
            let message = verify(state, target, options).await?;
            if let Some(at) = stopped_at {
                state.seconds_stopped = Some(at.elapsed().as_secs_f64());
            }
            Ok(message)
        }
        Step::RetireSource => {
            if state.keep_source {
                if !source.connect_exists(&name).await? {
                    return Ok(format!("{name} is gone from the source already"));
                }
                wait_stopped(source, &name).await?;
                Ok(format!(
                    "{name} kept STOPPED on the source (rollback window)"
                ))
            } else {
                source.connect_delete(&name).await?;
                Ok(format!("{name} deleted from the source"))
            }
        }
    }
}

/// Waits until the target runs with every task running and (unless no-offsets) its offsets are
/// at least the carried ones and past them somewhere.
async fn verify(
    state: &CutoverState,
    target: &Endpoint,
    options: &RunOptions,
) -> Result<String, MigrateError> {
    let deadline = tokio::time::Instant::now() + options.verify_timeout;
    let name = &state.target_name;
    let mut last = String::from("no status yet");
    loop {
        if let Some((s, tasks)) = target.state(name).await? {
            last = format!("{s} with tasks {tasks:?}");
            if s == "FAILED" {
                return Err(MigrateError::Step {
                    step: Step::VerifyTarget.as_str(),
                    message: format!(
                        "{name} FAILED on the target; see its status there, then `migrate rollback {}`",
                        state.connector
                    ),
                });
            }
            let running =
                s == "RUNNING" && !tasks.is_empty() && tasks.iter().all(|t| t == "RUNNING");
            if running {
                if state.mode == Mode::NoOffsets || state.carried_offsets.is_empty() {
                    return Ok(format!("{name} is RUNNING on the target"));
                }
                let now = target.offsets(name).await?;
                let (at_least, past) = progress(&state.carried_offsets, &now);
                last = format!("RUNNING, offsets {now:?}");
                if at_least && past {
                    return Ok(format!(
                        "{name} is RUNNING on the target and past the carried offsets"
                    ));
                }
                if at_least && options.accept_idle {
                    return Ok(format!(
                        "{name} is RUNNING on the target at the carried offsets (--accept-idle)"
                    ));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(MigrateError::Step {
                step: Step::VerifyTarget.as_str(),
                message: format!(
                    "{name} did not run past the carried offsets within {}s (last seen: {last}); \
                     with no new data use --accept-idle, else `migrate rollback {}`",
                    options.verify_timeout.as_secs(),
                    state.connector
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Asks the source supervisor to create the target connector with the secrets it holds
/// (`POST /v1/migrate/connectors/{name}/push`): the secret values go from one server to the
/// other, never through this process.
async fn push(
    source: &Endpoint,
    target: &Endpoint,
    state: &CutoverState,
    offsets: &[Value],
) -> Result<(), MigrateError> {
    if !source.supervisor {
        return Err(MigrateError::Usage(format!(
            "the config of {} holds masked secrets and {} is not a connect-supervisor that could push them",
            state.connector, source.base
        )));
    }
    let (api_key, api_secret, token) = match target.credentials() {
        crate::remote::Credentials::ApiKey { id, secret } => {
            (Some(id.clone()), Some(secret.clone()), None)
        }
        crate::remote::Credentials::Token(t) => (None, None, Some(t.clone())),
        crate::remote::Credentials::None => (None, None, None),
    };
    let body = json!({
        "target_url": target.managed(""),
        "api_key": api_key,
        "api_secret": api_secret,
        "token": token,
        "name": state.target_name,
        "config": state.config,
        "secret_sources": state.secret_sources,
        "offsets": offsets,
    });
    let url = format!(
        "{}/v1/migrate/connectors/{}/push",
        source.base, state.connector
    );
    source
        .expect(reqwest::Method::POST, &url, Some(&body), &[200, 201])
        .await
        .map(|_| ())
}

/// Undoes a cut-over: the target is stopped (paused where the target has no stop route) and
/// its offsets read, the target deleted, and the source started again at those offsets
/// (recreated from the saved config when it was deleted and holds no secret).
pub async fn rollback(
    state: &mut CutoverState,
    source: &Endpoint,
    target: &Endpoint,
    out: &Path,
) -> Result<(), MigrateError> {
    let name = state.connector.clone();
    let target_name = state.target_name.clone();
    let mut reached: Vec<Value> = Vec::new();
    if target.state(&target_name).await?.is_some() {
        if target.supervisor {
            target.stop(&target_name).await?;
            wait_stopped(target, &target_name).await?;
        } else {
            target.pause(&target_name).await?;
        }
        reached = target.offsets(&target_name).await?;
        state.record(
            "rollback_target_stopped",
            format!(
                "{target_name} stopped on the target at {} offset(s)",
                reached.len()
            ),
        );
        target.delete(&target_name).await?;
        state.record(
            "rollback_target_deleted",
            format!("{target_name} deleted from the target"),
        );
        state.save(out)?;
    }
    if reached.is_empty() {
        reached = state.carried_offsets.clone();
    }
    let carry = state.mode != Mode::NoOffsets && !reached.is_empty();
    if source.connect_exists(&name).await? {
        if carry {
            if !matches!(source.connect_state(&name).await?.0.as_str(), "STOPPED") {
                source.stop(&name).await?;
            }
            wait_stopped(source, &name).await?;
            source.connect_alter_offsets(&name, &reached).await?;
            state.record(
                "rollback_source_offsets",
                format!(
                    "{name} set to the {} offset(s) the target reached",
                    reached.len()
                ),
            );
        }
        source.connect_resume(&name).await?;
    } else {
        if state.source_config.values().any(|v| v == MASK) {
            return Err(MigrateError::Step {
                step: "rollback",
                message: format!(
                    "{name} was deleted from the source and its config held secrets this tool never sees; \
                     recreate it by hand at these offsets: {}",
                    Value::Array(reached)
                ),
            });
        }
        let offsets: &[Value] = if carry { &reached } else { &[] };
        source.create(&name, &state.source_config, offsets).await?;
        state.record(
            "rollback_source_recreated",
            format!("{name} recreated on the source"),
        );
    }
    state.rolled_back = true;
    state.record("rolled_back", format!("{name} runs on the source again"));
    state.save(out)
}

/// The library entry point of a rename that carries the offsets (for `migrate rename` and for
/// GitOps when a rename is allowed): `old` is stopped, its offsets read, `new` created with
/// them on the same department, verified, and `old` deleted. The state file goes to `out`.
pub async fn rename(
    end: &Endpoint,
    old: &str,
    new: &str,
    out: &Path,
    options: &RunOptions,
) -> Result<CutoverState, MigrateError> {
    if old == new {
        return Err(MigrateError::Usage(format!(
            "{old} and {new} are the same name"
        )));
    }
    let mut state = match CutoverState::load(out, old)? {
        Some(s) if s.target_name == new && !s.rolled_back => s,
        Some(s) if s.next().is_some() && !s.rolled_back => {
            return Err(MigrateError::Usage(format!(
                "{} holds an unfinished move of {old} to {}; finish or roll it back first",
                s.path(out).display(),
                s.target_name
            )));
        }
        _ => {
            let running = end.connectors().await?;
            let Some(c) = running.get(old) else {
                return Err(MigrateError::Usage(format!(
                    "no connector {old} on {}",
                    end.base
                )));
            };
            if running.contains_key(new) {
                return Err(MigrateError::Usage(format!(
                    "a connector {new} exists on {} already",
                    end.base
                )));
            }
            let t = super::mapping::identity(&super::mapping::TABLE, &c.config);
            let mut config = t.config;
            if config.contains_key("name") {
                config.insert("name".into(), new.to_string());
            }
            let mut s = new_state(old, new, Mode::StopThenCreate, false, end, end, config);
            s.secret_sources = t.secret_sources;
            s.source_config = c.config.clone();
            s.record("rename_planned", format!("{old} -> {new}"));
            s.save(out)?;
            s
        }
    };
    run(&mut state, end, end, out, options).await?;
    Ok(state)
}

/// A fresh state.
pub fn new_state(
    connector: &str,
    target_name: &str,
    mode: Mode,
    keep_source: bool,
    source: &Endpoint,
    target: &Endpoint,
    config: BTreeMap<String, String>,
) -> CutoverState {
    CutoverState {
        connector: connector.to_string(),
        target_name: target_name.to_string(),
        mode,
        keep_source,
        source: source.base.clone(),
        target: target.managed(""),
        config,
        secret_sources: BTreeMap::new(),
        source_config: BTreeMap::new(),
        carried_offsets: Vec::new(),
        done: Vec::new(),
        rolled_back: false,
        seconds_stopped: None,
        journal: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(mode: Mode) -> CutoverState {
        CutoverState {
            connector: "a".into(),
            target_name: "a".into(),
            mode,
            keep_source: false,
            source: "s".into(),
            target: "t".into(),
            config: BTreeMap::new(),
            secret_sources: BTreeMap::new(),
            source_config: BTreeMap::new(),
            carried_offsets: Vec::new(),
            done: Vec::new(),
            rolled_back: false,
            seconds_stopped: None,
            journal: Vec::new(),
        }
    }

    #[test]
    fn stop_then_create_never_creates_before_the_source_is_stopped() {
        let mut s = state(Mode::StopThenCreate);
        assert_eq!(s.next(), Some(Step::StopSource));
        assert!(!s.may_create());
        s.done.push(Step::StopSource);
        assert_eq!(s.next(), Some(Step::ReadOffsets));
        s.done.push(Step::ReadOffsets);
        assert!(s.may_create());
        assert_eq!(s.next(), Some(Step::CreateTarget));
        s.done.extend([Step::CreateTarget, Step::VerifyTarget]);
        assert_eq!(s.next(), Some(Step::RetireSource));
        s.done.push(Step::RetireSource);
        assert_eq!(s.next(), None);
    }

    #[test]
    fn parallel_creates_first_and_no_offsets_reads_none() {
        let s = state(Mode::Parallel);
        assert_eq!(s.next(), Some(Step::ReadOffsets));
        assert!(s.may_create());
        assert_eq!(
            steps(Mode::Parallel)[3],
            Step::StopSource,
            "the source stops once the target runs"
        );
        assert!(!steps(Mode::NoOffsets).contains(&Step::ReadOffsets));
        let mut r = state(Mode::NoOffsets);
        r.rolled_back = true;
        assert_eq!(r.next(), None, "a rolled back cut-over does not go on");
    }

    #[test]
    fn a_state_file_round_trips_and_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(Mode::StopThenCreate);
        s.done.push(Step::StopSource);
        s.carried_offsets =
            vec![json!({"partition": {"filename": "/x"}, "offset": {"position": 10}})];
        s.record("stop_source", "stopped");
        s.save(dir.path()).unwrap();
        let back = CutoverState::load(dir.path(), "a").unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.next(), Some(Step::ReadOffsets));
        assert!(CutoverState::load(dir.path(), "b").unwrap().is_none());
        std::fs::write(state_path(dir.path(), "c"), "{").unwrap();
        let e = CutoverState::load(dir.path(), "c").unwrap_err();
        assert!(e.to_string().contains("c.cutover.json"), "{e}");
    }

    #[test]
    fn progress_compares_offsets_per_partition() {
        let p =
            |pos: Value| json!([{"partition": {"filename": "/x"}, "offset": {"position": pos}}]);
        let carried = p(json!(10));
        let c = carried.as_array().unwrap();
        assert_eq!(progress(c, p(json!(10)).as_array().unwrap()), (true, false));
        assert_eq!(progress(c, p(json!(12)).as_array().unwrap()), (true, true));
        assert_eq!(
            progress(c, p(json!("12")).as_array().unwrap()),
            (true, true)
        );
        assert!(!progress(c, p(json!(3)).as_array().unwrap()).0);
        assert!(!progress(c, &[]).0, "a missing partition is behind");
        let sink = |o: i64| json!([{"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": o}}]);
        assert_eq!(
            progress(sink(5).as_array().unwrap(), sink(9).as_array().unwrap()),
            (true, true)
        );
    }
}

//! Connect's connector states and statuses in the managed vocabulary, and the marks for
//! workers that are down or pools that are unavailable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::scrub;
use crate::connect::{ConnectorStatus, TaskId};

/// Connector state in the managed vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManagedState {
    /// Created, not every task running yet.
    Provisioning,
    /// The connector and every task run.
    Running,
    /// Some tasks failed, others run.
    Degraded,
    /// The connector failed, or every task did.
    Failed,
    /// Paused, or stopped (KIP-875): the managed API has no STOPPED.
    Paused,
}

impl ManagedState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Running => "RUNNING",
            Self::Degraded => "DEGRADED",
            Self::Failed => "FAILED",
            Self::Paused => "PAUSED",
        }
    }
}

/// The managed state of a connector from Connect's status and, when known, the number of tasks
/// its task configs hold (`GET /connectors/{name}`): tasks Connect has generated but not started
/// yet have no status entry, and until they run the connector is still provisioning.
pub fn connector_state_expecting(
    status: &ConnectorStatus,
    expected_tasks: Option<usize>,
) -> ManagedState {
    match connector_state(status) {
        ManagedState::Running if expected_tasks.is_some_and(|n| status.tasks.len() < n) => {
            ManagedState::Provisioning
        }
        state => state,
    }
}

/// The managed state of a connector from Connect's status.
pub fn connector_state(status: &ConnectorStatus) -> ManagedState {
    match status.connector.state.as_str() {
        "FAILED" => return ManagedState::Failed,
        "PAUSED" | "STOPPED" => return ManagedState::Paused,
        "RUNNING" => {}
        // UNASSIGNED, RESTARTING, or anything newer Connect may add: not running yet.
        _ => return ManagedState::Provisioning,
    }
    // No tasks yet means the connector has not generated its task configs: still provisioning.
    if status.tasks.is_empty() {
        return ManagedState::Provisioning;
    }
    let failed = status
        .tasks
        .iter()
        .filter(|t| t.state.state == "FAILED")
        .count();
    let running = status
        .tasks
        .iter()
        .filter(|t| t.state.state == "RUNNING")
        .count();
    if failed == status.tasks.len() {
        ManagedState::Failed
    } else if failed > 0 {
        ManagedState::Degraded
    } else if running == status.tasks.len() {
        ManagedState::Running
    } else {
        ManagedState::Provisioning
    }
}

/// `connect.v1.Connector`: `GET .../connectors/{name}` and `PUT .../config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedConnector {
    /// Name.
    pub name: String,
    /// Config, masked, with the extras.
    pub config: BTreeMap<String, String>,
    /// Tasks.
    pub tasks: Vec<TaskId>,
    /// `source`, `sink` (or `unknown` when even the plugin list cannot tell).
    #[serde(rename = "type")]
    pub connector_type: String,
}

/// Connector part of a managed status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedInstance {
    /// Managed state.
    pub state: String,
    /// Worker running it (`host:port`), empty when not assigned.
    pub worker_id: String,
    /// The failure, empty when there is none.
    pub trace: String,
}

/// Task part of a managed status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedTask {
    /// Task number.
    pub id: u32,
    /// Connect's task state (the managed API's task state is free text).
    pub state: String,
    /// Worker running it.
    pub worker_id: String,
    /// First line of the failure, empty when there is none.
    pub msg: String,
    /// The full stack trace of a failed task (Confluent Cloud sends it on failed payloads too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `GET .../status` in the managed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedStatus {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub connector_type: String,
    /// The connector.
    pub connector: ManagedInstance,
    /// Its tasks.
    pub tasks: Vec<ManagedTask>,
}

/// The first line of a stack trace (the exception and its message).
pub fn first_line(trace: &str) -> String {
    trace.lines().next().unwrap_or("").trim().to_string()
}

/// The managed status of a connector; traces scrubbed of `secrets`.
pub fn managed_status(
    status: &ConnectorStatus,
    expected_tasks: Option<usize>,
    connector_type: &str,
    secrets: &[String],
) -> ManagedStatus {
    let state = connector_state_expecting(status, expected_tasks);
    let mut trace = status
        .connector
        .trace
        .as_deref()
        .map(|t| scrub(t, secrets))
        .unwrap_or_default();
    let tasks: Vec<ManagedTask> = status
        .tasks
        .iter()
        .map(|t| {
            let full = t.state.trace.as_deref().map(|tr| scrub(tr, secrets));
            ManagedTask {
                id: t.id,
                state: t.state.state.clone(),
                worker_id: t.state.worker_id.clone(),
                msg: full.as_deref().map(first_line).unwrap_or_default(),
                trace: full,
            }
        })
        .collect();
    if trace.is_empty()
        && let Some(failed) = tasks.iter().find(|t| t.state == "FAILED")
    {
        // Terraform shows only the connector's trace when a create fails: say which task broke.
        trace = format!("task {} failed: {}", failed.id, failed.msg);
    }
    ManagedStatus {
        name: status.name.clone(),
        connector_type: connector_type.to_string(),
        connector: ManagedInstance {
            state: state.as_str().to_string(),
            worker_id: status.connector.worker_id.clone(),
            trace,
        },
        tasks,
    }
}

/// What departments see of a worker that Connect names by its `host:port` (`worker_id`): the
/// supervisor's name for it (`shared-0`) from `names`, or an opaque `worker-<hash>` for an
/// address it does not know. They see which worker runs what, as the managed service's opaque
/// ids let them, never an internal address (admins find those in `/v1/pools`). Empty stays
/// empty (not assigned).
pub fn worker_name(id: &str, names: &WorkerNames) -> String {
    if id.is_empty() {
        return String::new();
    }
    match names.get(id) {
        Some(name) => name.clone(),
        None => {
            let digest = Sha256::digest(id.as_bytes());
            format!("worker-{}", hex::encode(&digest[..4]))
        }
    }
}

/// Each worker's `host:port` (Connect's `worker_id`) to the supervisor's name for it.
pub type WorkerNames = std::collections::HashMap<String, String>;

/// `status` with every `worker_id` shown as [`worker_name`].
pub fn name_workers(status: &mut ManagedStatus, names: &WorkerNames) {
    let rename = |id: &mut String| *id = worker_name(id, names);
    rename(&mut status.connector.worker_id);
    for task in &mut status.tasks {
        rename(&mut task.worker_id);
    }
}

/// [`name_workers`] on Connect's JSON `ConnectorStateInfo` (or one task's state), for the
/// Apache-compatible routes, which otherwise pass Connect's body through.
pub fn name_workers_json(status: &mut Value, names: &WorkerNames) {
    let rename = |v: &mut Value| {
        if let Some(Value::String(id)) = v.get_mut("worker_id") {
            *id = worker_name(id, names);
        }
    };
    if let Some(c) = status.get_mut("connector") {
        rename(c);
    }
    if let Some(Value::Array(tasks)) = status.get_mut("tasks") {
        tasks.iter_mut().for_each(rename);
    }
    rename(status);
}

/// The status of a connector that exists but has no status yet (just created).
pub fn provisioning_status(name: &str, connector_type: &str) -> ManagedStatus {
    ManagedStatus {
        name: name.to_string(),
        connector_type: connector_type.to_string(),
        connector: ManagedInstance {
            state: ManagedState::Provisioning.as_str().to_string(),
            worker_id: String::new(),
            trace: String::new(),
        },
        tasks: Vec::new(),
    }
}

/// Connect worker ids (`host:port`) of the workers of a pool that do not run their tasks right
/// now, with the reason shown in the status of what Connect still places on them.
pub type DownWorkers = BTreeMap<String, String>;

/// Marks the RUNNING instances (connector and tasks) that Connect places on a down worker as
/// UNASSIGNED, their trace saying why: Connect keeps showing a killed worker's tasks RUNNING
/// until its group notices and reassigns them. Returns the first reason when something was
/// marked.
pub fn mark_down_workers(status: &mut ConnectorStatus, down: &DownWorkers) -> Option<String> {
    if down.is_empty() {
        return None;
    }
    let mut first = None;
    let instances =
        std::iter::once(&mut status.connector).chain(status.tasks.iter_mut().map(|t| &mut t.state));
    for instance in instances {
        if instance.state == "RUNNING"
            && let Some(reason) = down.get(&instance.worker_id)
        {
            instance.state = "UNASSIGNED".into();
            instance.trace = Some(reason.clone());
            first.get_or_insert_with(|| reason.clone());
        }
    }
    first
}

/// [`mark_down_workers`] on Connect's JSON `ConnectorStateInfo` (or one task's state), for the
/// Apache-compatible routes, which pass Connect's body through.
pub fn mark_down_workers_json(status: &mut Value, down: &DownWorkers) -> bool {
    if down.is_empty() {
        return false;
    }
    let mut marked = false;
    let mut mark = |v: &mut Value| {
        let on_down = v.get("state").and_then(Value::as_str) == Some("RUNNING")
            && v.get("worker_id")
                .and_then(Value::as_str)
                .and_then(|w| down.get(w))
                .is_some();
        if on_down {
            let reason = down[v["worker_id"].as_str().unwrap_or_default()].clone();
            v["state"] = Value::String("UNASSIGNED".into());
            v["trace"] = Value::String(reason);
            marked = true;
        }
    };
    if let Some(c) = status.get_mut("connector") {
        mark(c);
    }
    if let Some(Value::Array(tasks)) = status.get_mut("tasks") {
        tasks.iter_mut().for_each(&mut mark);
    }
    if status.get("id").is_some() {
        mark(status);
    }
    marked
}

/// The managed state of a connector some of whose instances [`mark_down_workers`] marked:
/// DEGRADED while other tasks still run, PROVISIONING while none does (it comes back by
/// itself), with `reason` as the connector's trace when it has none.
pub fn degrade_for_down_workers(status: &mut ManagedStatus, reason: &str) {
    let running = ManagedState::Running.as_str();
    let provisioning = ManagedState::Provisioning.as_str();
    if status.connector.state != running && status.connector.state != provisioning {
        return;
    }
    status.connector.state = if status.tasks.iter().any(|t| t.state == "RUNNING") {
        ManagedState::Degraded.as_str().to_string()
    } else {
        provisioning.to_string()
    };
    if status.connector.trace.is_empty() {
        status.connector.trace = reason.to_string();
    }
}

/// The managed state the contract has for "not known": a connector whose pool has no ready
/// worker is listed with its last known state in the trace.
pub const UNKNOWN_MANAGED_STATE: &str = "NONE";
/// The Connect state a connector of a pool without a ready worker is listed with.
pub const UNKNOWN_CONNECT_STATE: &str = "UNASSIGNED";

/// The last known status of a connector of an unavailable pool, marked as unknown: every
/// instance UNASSIGNED with `reason` (and its last known state) as trace.
pub fn unknown_status(last: &ConnectorStatus, reason: &str) -> ConnectorStatus {
    let mark = |i: &crate::connect::InstanceState| crate::connect::InstanceState {
        state: UNKNOWN_CONNECT_STATE.into(),
        worker_id: i.worker_id.clone(),
        trace: Some(format!("{reason}; last known state {}", i.state)),
        version: i.version.clone(),
    };
    ConnectorStatus {
        name: last.name.clone(),
        connector: mark(&last.connector),
        tasks: last
            .tasks
            .iter()
            .map(|t| crate::connect::TaskState {
                id: t.id,
                state: mark(&t.state),
            })
            .collect(),
        connector_type: last.connector_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::MASK;
    use super::*;
    use crate::connect::{InstanceState, TaskState};
    use proptest::prelude::*;

    fn status(connector: &str, tasks: &[&str]) -> ConnectorStatus {
        ConnectorStatus {
            name: "c".into(),
            connector: InstanceState {
                state: connector.into(),
                worker_id: "127.0.0.1:8083".into(),
                trace: None,
                version: None,
            },
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, s)| TaskState {
                    id: i as u32,
                    state: InstanceState {
                        state: (*s).into(),
                        worker_id: "127.0.0.1:8084".into(),
                        trace: (*s == "FAILED").then(|| {
                            format!("java.lang.RuntimeException: boom {i}\n\tat x.y(Z.java:1)")
                        }),
                        version: None,
                    },
                })
                .collect(),
            connector_type: Some("source".into()),
        }
    }

    #[test]
    fn connect_states_map_to_the_managed_vocabulary() {
        use ManagedState::*;
        let cases: &[(&str, &[&str], ManagedState)] = &[
            ("UNASSIGNED", &[], Provisioning),
            ("RESTARTING", &["RUNNING"], Provisioning),
            ("RUNNING", &[], Provisioning),
            ("RUNNING", &["RUNNING", "UNASSIGNED"], Provisioning),
            ("RUNNING", &["RUNNING", "RESTARTING"], Provisioning),
            ("RUNNING", &["RUNNING", "RUNNING"], Running),
            ("RUNNING", &["RUNNING", "FAILED"], Degraded),
            ("RUNNING", &["UNASSIGNED", "FAILED"], Degraded),
            ("RUNNING", &["FAILED", "FAILED"], Failed),
            ("FAILED", &["RUNNING"], Failed),
            ("PAUSED", &["PAUSED"], Paused),
            ("PAUSED", &["RUNNING"], Paused),
            ("STOPPED", &[], Paused),
            ("SOMETHING_NEW", &["RUNNING"], Provisioning),
        ];
        for (c, t, expected) in cases {
            assert_eq!(connector_state(&status(c, t)), *expected, "{c} {t:?}");
        }
    }

    #[test]
    fn managed_status_carries_task_messages_and_a_connector_trace_for_task_failures() {
        let s = managed_status(
            &status("RUNNING", &["RUNNING", "FAILED"]),
            None,
            "source",
            &[],
        );
        assert_eq!(s.connector.state, "DEGRADED");
        assert_eq!(
            s.connector.trace,
            "task 1 failed: java.lang.RuntimeException: boom 1"
        );
        assert_eq!(s.tasks[0].msg, "");
        assert_eq!(s.tasks[0].trace, None);
        assert_eq!(s.tasks[1].msg, "java.lang.RuntimeException: boom 1");
        assert!(s.tasks[1].trace.as_deref().unwrap().contains("at x.y"));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["tasks"][0].get("trace").is_none());
        assert_eq!(json["type"], "source");
    }

    #[test]
    fn worker_addresses_become_worker_names_or_opaque_ids() {
        let mut s = managed_status(&status("c", &["RUNNING", "RUNNING"]), None, "source", &[]);
        let names = std::collections::HashMap::from([(
            "127.0.0.1:8083".to_string(),
            "shared-0".to_string(),
        )]);
        name_workers(&mut s, &names);
        assert_eq!(s.connector.worker_id, "shared-0");
        // The tasks run on 127.0.0.1:8084, which the map does not know: one opaque id for it.
        assert!(
            s.tasks[0].worker_id.starts_with("worker-"),
            "{:?}",
            s.tasks[0]
        );
        assert_eq!(s.tasks[0].worker_id, s.tasks[1].worker_id);
        assert!(!serde_json::to_string(&s).unwrap().contains("127.0.0.1"));
    }

    #[test]
    fn connects_own_statuses_get_the_same_worker_names() {
        let names = WorkerNames::from([("127.0.0.1:8083".to_string(), "shared-0".to_string())]);
        let mut json = serde_json::to_value(status("RUNNING", &["RUNNING"])).unwrap();
        let mut managed = managed_status(&status("RUNNING", &["RUNNING"]), None, "source", &[]);
        name_workers_json(&mut json, &names);
        name_workers(&mut managed, &names);
        assert_eq!(json["connector"]["worker_id"], "shared-0");
        assert_eq!(
            json["tasks"][0]["worker_id"],
            managed.tasks[0].worker_id.as_str()
        );
        assert!(!json.to_string().contains("127.0.0.1"), "{json}");
        // One task's own state (`GET .../tasks/{task}/status`), and an unassigned instance.
        let mut task =
            serde_json::json!({"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083"});
        name_workers_json(&mut task, &names);
        assert_eq!(task["worker_id"], "shared-0");
        let mut unassigned =
            serde_json::json!({"connector": {"state": "UNASSIGNED", "worker_id": ""}});
        name_workers_json(&mut unassigned, &names);
        assert_eq!(unassigned["connector"]["worker_id"], "");
    }

    #[test]
    fn traces_are_scrubbed_of_secrets() {
        let mut st = status("FAILED", &[]);
        st.connector.trace = Some("login failed for password hunter22 at db".into());
        let s = managed_status(&st, None, "source", &["hunter22".into()]);
        assert_eq!(
            s.connector.trace,
            format!("login failed for password {MASK} at db")
        );
    }

    #[test]
    fn instances_on_a_down_worker_no_longer_read_running() {
        let mut s = status("RUNNING", &["RUNNING", "RUNNING"]);
        s.connector.worker_id = "h:1".into();
        s.tasks[0].state.worker_id = "h:1".into();
        s.tasks[1].state.worker_id = "h:2".into();
        let down: DownWorkers =
            [("h:1".to_string(), "worker shared-0 restarting".to_string())].into();
        let mut json = serde_json::to_value(&s).unwrap();
        assert_eq!(mark_down_workers(&mut s, &DownWorkers::new()), None);
        let reason = mark_down_workers(&mut s, &down).unwrap();
        assert_eq!(reason, "worker shared-0 restarting");
        assert_eq!(s.connector.state, "UNASSIGNED");
        assert_eq!(s.tasks[0].state.state, "UNASSIGNED");
        assert_eq!(s.tasks[1].state.state, "RUNNING");
        let mut managed = managed_status(&s, None, "source", &[]);
        degrade_for_down_workers(&mut managed, &reason);
        assert_eq!(managed.connector.state, "DEGRADED");
        assert_eq!(managed.tasks[0].msg, "worker shared-0 restarting");
        assert!(mark_down_workers_json(&mut json, &down));
        assert_eq!(json["connector"]["state"], "UNASSIGNED");
        assert_eq!(json["tasks"][0]["trace"], "worker shared-0 restarting");
        assert_eq!(json["tasks"][1]["state"], "RUNNING");
        // Nothing running anywhere: provisioning, it comes back by itself.
        let mut all = status("RUNNING", &["RUNNING"]);
        all.connector.worker_id = "h:1".into();
        all.tasks[0].state.worker_id = "h:1".into();
        let reason = mark_down_workers(&mut all, &down).unwrap();
        let mut managed = managed_status(&all, None, "source", &[]);
        degrade_for_down_workers(&mut managed, &reason);
        assert_eq!(managed.connector.state, "PROVISIONING");
        assert_eq!(managed.connector.trace, "worker shared-0 restarting");
    }

    proptest! {
        #[test]
        fn a_connector_with_tasks_not_started_yet_is_provisioning(
            started in 0usize..4,
            generated in 0usize..6,
        ) {
            let tasks = vec!["RUNNING"; started];
            let state = connector_state_expecting(&status("RUNNING", &tasks), Some(generated));
            let running = started > 0 && started >= generated;
            prop_assert_eq!(state == ManagedState::Running, running);
            prop_assert_eq!(
                connector_state_expecting(&status("RUNNING", &tasks), None),
                connector_state(&status("RUNNING", &tasks))
            );
        }

        #[test]
        fn the_state_is_running_only_when_connector_and_every_task_run(
            connector in prop_oneof!["RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "STOPPED", "RESTARTING"],
            tasks in proptest::collection::vec(prop_oneof!["RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "RESTARTING"], 0..5)
        ) {
            let refs: Vec<&str> = tasks.iter().map(String::as_str).collect();
            let state = connector_state(&status(&connector, &refs));
            let all_running = !tasks.is_empty() && tasks.iter().all(|t| t == "RUNNING");
            prop_assert_eq!(state == ManagedState::Running, connector == "RUNNING" && all_running);
            if connector == "RUNNING" && tasks.iter().any(|t| t == "FAILED") {
                prop_assert!(matches!(state, ManagedState::Degraded | ManagedState::Failed));
            }
        }
    }
}

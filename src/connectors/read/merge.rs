//! The status merge (pure): what the supervisor knows of its workers laid over what Connect
//! says of a connector. Connect keeps showing a killed worker's tasks RUNNING until its group
//! notices; a pool without a ready worker cannot answer at all. Both reads of a managed status
//! (one connector, and the expanded list) go through [`merge_status`], so they agree.

use std::time::Duration;

use crate::connect::ConnectorStatus;
use crate::supervisor::WorkerStatus;
use crate::supervisor::lifecycle::WorkerPhase;

/// What the merge needs of one worker's supervision status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerView<'a> {
    /// The supervisor's name of the worker (`shared-0`).
    pub id: &'a str,
    /// Its REST base URL (`http://host:port`).
    pub rest_url: &'a str,
    /// Where it is in its life.
    pub state: WorkerPhase,
    /// Restarts so far.
    pub restarts: u32,
    /// Seconds since its current process started.
    pub uptime_seconds: Option<u64>,
}

impl<'a> From<&'a WorkerStatus> for WorkerView<'a> {
    fn from(w: &'a WorkerStatus) -> Self {
        Self {
            id: &w.id,
            rest_url: &w.rest_url,
            state: w.state,
            restarts: w.restarts,
            uptime_seconds: w.uptime_seconds,
        }
    }
}
use crate::translate::{self, DownWorkers, ManagedStatus};

/// The workers (of one pool) whose tasks nothing runs right now, by Connect worker id
/// (`host:port`), each with the reason shown: those not up (exited, restarting, held), and
/// those restarted less than `window` ago, whose previous process's tasks Connect may still
/// show (see [`crate::worker::reassignment_window`]).
pub fn down_workers<'a>(
    workers: impl IntoIterator<Item = WorkerView<'a>>,
    window: Duration,
) -> DownWorkers {
    let mut down = DownWorkers::new();
    for w in workers {
        let reason = match w.state {
            WorkerPhase::Ready | WorkerPhase::Running
                if w.restarts > 0 && w.uptime_seconds.is_some_and(|s| s < window.as_secs()) =>
            {
                format!(
                    "worker {} restarted; Connect hands its tasks out again within {}s of the restart",
                    w.id,
                    window.as_secs()
                )
            }
            WorkerPhase::Ready | WorkerPhase::Running => continue,
            WorkerPhase::Held => format!(
                "worker {} is held after repeated failures; an admin restarts it with POST /v1/workers/{}/restart",
                w.id, w.id
            ),
            WorkerPhase::Stopped => format!("worker {} stopped", w.id),
            WorkerPhase::Starting | WorkerPhase::Backoff | WorkerPhase::Stopping => {
                format!("worker {} restarting", w.id)
            }
        };
        down.insert(w.rest_url.trim_start_matches("http://").to_string(), reason);
    }
    down
}

/// What the supervisor knows of the pool of a connector, for [`merge_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolView<'a> {
    /// The pool answered; the reason [`translate::mark_down_workers`] gave when it marked
    /// instances on down workers, if it did.
    Answered {
        /// The first reason of a marked instance.
        marked: Option<&'a str>,
    },
    /// The pool has no ready worker: the status is the last one seen, and this is why.
    Unavailable(&'a str),
}

/// The managed status of connector `name` from Connect's `status` (already marked with
/// [`translate::mark_down_workers`]; `None`: Connect has none yet, so it is provisioning):
/// UNKNOWN (the contract's `NONE`) with the reason as trace when the pool cannot answer,
/// degraded when instances sit on down workers.
pub fn merge_status(
    name: &str,
    status: Option<&ConnectorStatus>,
    pool: PoolView<'_>,
    expected_tasks: Option<usize>,
    connector_type: &str,
    secrets: &[String],
) -> ManagedStatus {
    let Some(status) = status else {
        return translate::provisioning_status(name, connector_type);
    };
    let mut managed = translate::managed_status(status, expected_tasks, connector_type, secrets);
    match pool {
        PoolView::Unavailable(reason) => {
            managed.connector.state = translate::UNKNOWN_MANAGED_STATE.into();
            if managed.connector.trace.is_empty() || managed.connector.trace.starts_with("task ") {
                managed.connector.trace = reason.to_string();
            }
        }
        PoolView::Answered {
            marked: Some(reason),
        } => translate::degrade_for_down_workers(&mut managed, reason),
        PoolView::Answered { marked: None } => {}
    }
    managed
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::connect::{InstanceState, TaskState};

    fn worker(
        id: &'static str,
        state: WorkerPhase,
        restarts: u32,
        uptime_seconds: Option<u64>,
    ) -> WorkerView<'static> {
        let port = 18000 + id.len();
        WorkerView {
            id,
            rest_url: Box::leak(format!("http://127.0.0.1:{port}").into_boxed_str()),
            state,
            restarts,
            uptime_seconds,
        }
    }

    fn instance(state: &str, worker: &str) -> InstanceState {
        InstanceState {
            state: state.into(),
            worker_id: worker.into(),
            trace: None,
            version: None,
        }
    }

    fn status(connector: &str, tasks: &[(&str, &str)]) -> ConnectorStatus {
        ConnectorStatus {
            name: "dept1-a".into(),
            connector: instance(connector, "127.0.0.1:1"),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(id, (state, worker))| TaskState {
                    id: id as u32,
                    state: instance(state, worker),
                })
                .collect(),
            connector_type: Some("sink".into()),
        }
    }

    #[test]
    fn workers_not_up_or_restarted_lately_are_down_with_why() {
        let window = Duration::from_secs(60);
        let workers = [
            worker("shared-0", WorkerPhase::Running, 0, Some(5)),
            worker("shared-1", WorkerPhase::Ready, 2, Some(10)),
            worker("shared-22", WorkerPhase::Running, 2, Some(600)),
            worker("shared-333", WorkerPhase::Held, 5, None),
            worker("shared-4444", WorkerPhase::Backoff, 1, None),
        ];
        let down = down_workers(workers, window);
        let reasons: Vec<&str> = down.values().map(String::as_str).collect();
        assert_eq!(down.len(), 3, "{down:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("worker shared-1 restarted"))
        );
        assert!(reasons.iter().any(|r| r.contains("shared-333 is held")));
        assert!(reasons.contains(&"worker shared-4444 restarting"));
        // Keyed by Connect's worker id: the address without the scheme.
        assert!(down.keys().all(|k| k.starts_with("127.0.0.1:")), "{down:?}");
    }

    #[test]
    fn a_connector_without_a_status_is_provisioning() {
        let m = merge_status(
            "dept1-a",
            None,
            PoolView::Answered { marked: None },
            None,
            "sink",
            &[],
        );
        assert_eq!(m, translate::provisioning_status("dept1-a", "sink"));
    }

    #[test]
    fn instances_on_down_workers_degrade_the_connector() {
        let mut s = status(
            "RUNNING",
            &[("RUNNING", "127.0.0.1:1"), ("RUNNING", "127.0.0.1:2")],
        );
        let down = DownWorkers::from([(
            "127.0.0.1:2".to_string(),
            "worker shared-1 restarting".to_string(),
        )]);
        let marked = translate::mark_down_workers(&mut s, &down);
        assert_eq!(marked.as_deref(), Some("worker shared-1 restarting"));
        let m = merge_status(
            "dept1-a",
            Some(&s),
            PoolView::Answered {
                marked: marked.as_deref(),
            },
            Some(2),
            "sink",
            &[],
        );
        assert_eq!(m.connector.state, "DEGRADED");
        assert_eq!(m.connector.trace, "worker shared-1 restarting");
        let unmarked = merge_status(
            "dept1-a",
            Some(&status("RUNNING", &[("RUNNING", "127.0.0.1:1")])),
            PoolView::Answered { marked: None },
            Some(1),
            "sink",
            &[],
        );
        assert_eq!(unmarked.connector.state, "RUNNING");
    }

    fn state() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("RUNNING"),
            Just("PAUSED"),
            Just("FAILED"),
            Just("UNASSIGNED"),
            Just("STOPPED"),
            Just("RESTARTING"),
        ]
    }

    proptest! {
        #[test]
        fn an_unavailable_pool_always_reads_unknown(
            connector in state(),
            tasks in proptest::collection::vec(state(), 0..4),
            trace in proptest::option::of("[a-z ]{1,12}"),
        ) {
            let pairs: Vec<(&str, &str)> = tasks.iter().map(|t| (*t, "127.0.0.1:1")).collect();
            let mut s = status(connector, &pairs);
            s.connector.trace = trace.clone();
            let reason = "unknown: pool shared has no ready Connect worker (shown as last seen)";
            let m = merge_status("dept1-a", Some(&s), PoolView::Unavailable(reason), None, "sink", &[]);
            prop_assert_eq!(m.connector.state.as_str(), translate::UNKNOWN_MANAGED_STATE);
            match trace {
                Some(t) if !t.starts_with("task ") => prop_assert_eq!(m.connector.trace, t),
                _ => prop_assert_eq!(m.connector.trace.as_str(), reason),
            }
        }

        #[test]
        fn marking_never_raises_a_state_and_touches_only_down_workers(
            connector in state(),
            tasks in proptest::collection::vec((state(), 1u8..4), 0..5),
            down_port in 1u8..4,
        ) {
            let workers: Vec<String> = tasks.iter().map(|(_, w)| format!("127.0.0.1:{w}")).collect();
            let pairs: Vec<(&str, &str)> = tasks.iter().zip(&workers).map(|((s, _), w)| (*s, w.as_str())).collect();
            let before = status(connector, &pairs);
            let mut after = before.clone();
            let down = DownWorkers::from([(format!("127.0.0.1:{down_port}"), "down".to_string())]);
            let marked = translate::mark_down_workers(&mut after, &down);
            for (b, a) in before.tasks.iter().zip(&after.tasks) {
                let on_down = b.state.worker_id == format!("127.0.0.1:{down_port}");
                if on_down && b.state.state == "RUNNING" {
                    prop_assert_eq!(a.state.state.as_str(), "UNASSIGNED");
                } else {
                    prop_assert_eq!(&a.state.state, &b.state.state);
                }
            }
            let m = merge_status("dept1-a", Some(&after), PoolView::Answered { marked: marked.as_deref() }, Some(tasks.len()), "sink", &[]);
            if marked.is_none() {
                let plain = translate::managed_status(&before, Some(tasks.len()), "sink", &[]);
                prop_assert_eq!(m, plain);
            } else {
                prop_assert_ne!(m.connector.state.as_str(), "RUNNING");
            }
        }
    }
}

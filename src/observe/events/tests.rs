//! Unit tests of the events: every code listed once, sentences, levels, what each names.

use std::time::Duration;

use super::*;
use crate::model::Enforcement;
use crate::model::ExitReason;
use crate::model::WorkerId;

fn record(message: &str) -> EventRecord {
    EventRecord {
        seq: 0,
        time: time::OffsetDateTime::now_utc(),
        department: "d".into(),
        event: "worker_started",
        level: Level::Info,
        pool: None,
        worker: None,
        connector: None,
        principal: None,
        outcome: None,
        message: message.into(),
    }
}

#[test]
fn the_log_is_bounded_and_numbered() {
    let log = EventLog::new(3);
    for i in 0..5 {
        log.push(record(&i.to_string()));
    }
    let all = log.recent(10);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(log.since(4, 10).len(), 1);
    assert_eq!(log.recent(1)[0].message, "4");
}

fn one_of_each() -> Vec<Event> {
    let w = || WorkerId::new("p", 0);
    let c = || "d-c".to_string();
    let mut all = vec![
        Event::from(WorkerStarted {
            worker: w(),
            pid: 1,
            launch: 1,
        }),
        Event::from(WorkerReady {
            worker: w(),
            after: Duration::ZERO,
        }),
        Event::from(WorkerStable { worker: w() }),
        Event::from(WorkerExited {
            worker: w(),
            reason: ExitReason::OomKilled,
            stderr_tail: vec!["Killed".into()],
        }),
        Event::from(WorkerOomKilled {
            worker: w(),
            oom_kills: 1,
        }),
        Event::from(StartupBoostApplied {
            worker: w(),
            boost_millis: 1000,
            limit_millis: 1000,
        }),
        Event::from(StartupBoostEnded {
            worker: w(),
            after: Duration::ZERO,
        }),
        Event::from(WorkerSpawnFailed {
            worker: w(),
            code: "exec_failed",
            message: "m".into(),
        }),
        Event::from(WorkerUnresponsive {
            worker: w(),
            misses: 3,
        }),
        Event::from(RestartScheduled {
            worker: w(),
            delay: Duration::ZERO,
            attempt: 1,
        }),
        Event::from(WorkerHeld {
            worker: w(),
            failures: 5,
            window: Duration::ZERO,
        }),
        Event::from(WorkerRestartRequested { worker: w() }),
        Event::from(WorkerCleared { worker: w() }),
        Event::from(WorkerStopped { worker: w() }),
        Event::from(PoolScaled {
            pool: "p".into(),
            from: 1,
            to: 2,
        }),
        Event::from(ScaleRefused {
            pool: "p".into(),
            workers: 9,
            message: "m".into(),
        }),
        Event::from(RolloutStarted {
            pool: "p".into(),
            workers: 1,
        }),
        Event::from(RolloutFinished {
            pool: "p".into(),
            ok: true,
            message: "m".into(),
        }),
        Event::from(EnforcementSelected {
            mode: Enforcement::CgroupV2,
            controllers: vec![],
        }),
        Event::from(EnforcementDegraded { reason: "r".into() }),
        Event::from(LeftoversCleaned {
            cgroups: 0,
            processes: 0,
        }),
        Event::from(ConnectorFailed {
            connector: c(),
            pool: "p".into(),
            task: Some(0),
            error: "e".into(),
        }),
        Event::from(ConnectorAutoRestarted {
            connector: c(),
            pool: "p".into(),
            attempt: 1,
            max: 3,
        }),
        Event::from(AutoRestartFailed {
            connector: c(),
            pool: "p".into(),
            code: "x",
            message: "m".into(),
        }),
        Event::from(RestartBudgetCharged {
            connector: c(),
            worker: "p-0".into(),
            attempt: 1,
            max: 3,
        }),
        Event::from(ConnectorRecovered {
            connector: c(),
            pool: "p".into(),
            attempts: 1,
        }),
        Event::from(ConnectorHeld {
            connector: c(),
            pool: "p".into(),
            attempts: 3,
        }),
        Event::from(ConnectorReleased {
            connector: c(),
            principal: "OP".into(),
        }),
        Event::from(KafkaUnreachable {
            message: "m".into(),
        }),
        Event::from(KafkaReachable),
        Event::from(PolicyRejected {
            connector: c(),
            operation: "create",
            principal: "OP".into(),
            rules: vec!["naming.prefix".into()],
        }),
        Event::from(DefaultsApplied {
            connector: c(),
            operation: "create",
            principal: "OP".into(),
            defaults: vec![("errors.tolerance".into(), "all".into())],
        }),
        Event::from(SecretsExternalized {
            connector: c(),
            operation: "create",
            principal: "OP".into(),
            keys: vec!["db.password".into()],
        }),
        Event::from(GitopsDrift {
            connector: c(),
            kind: "config",
            healed: false,
        }),
        Event::from(GitopsDrift {
            connector: c(),
            kind: "config",
            healed: true,
        }),
        Event::from(WorkerPhaseChanged {
            worker: w(),
            to: crate::model::WorkerPhase::Backoff,
        }),
        Event::from(OffsetsRequestApplied {
            connector: c(),
            kind: "PATCH",
        }),
        Event::from(OffsetsRequestFailed {
            connector: c(),
            kind: "DELETE",
            code: "connect_unreachable",
        }),
        Event::from(OffsetsRestoreFailed {
            connector: c(),
            state: "RUNNING".into(),
            code: "connect_unreachable",
        }),
        Event::from(SecretFileRemoved {
            file: "/var/lib/cs/secrets/d-c.properties".into(),
        }),
        Event::from(SecretSweepSkipped { error: None }),
    ];
    for change in [
        ConnectorChange::Created,
        ConnectorChange::Updated,
        ConnectorChange::Deleted,
        ConnectorChange::Paused,
        ConnectorChange::Resumed,
        ConnectorChange::Stopped,
        ConnectorChange::Restarted,
        ConnectorChange::OffsetsRequested,
        ConnectorChange::TopicsReset,
    ] {
        all.push(Event::from(ConnectorChanged {
            connector: c(),
            change,
            principal: "OP".into(),
        }));
    }
    all
}

#[test]
fn every_code_is_listed_once_and_connector_events_name_their_connector() {
    let all = one_of_each();
    let mut codes: Vec<&str> = all.iter().map(Event::code).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), Event::CODES.len(), "{codes:?}");
    for e in &all {
        assert!(
            Event::CODES.contains(&e.code()),
            "{} is not in CODES",
            e.code()
        );
        assert!(!e.message().is_empty());
        if e.code().starts_with("connector_") {
            assert_eq!(e.connector(), Some("d-c"), "{}", e.code());
        }
    }
    let change = Event::from(ConnectorChanged {
        connector: "d-c".into(),
        change: ConnectorChange::Deleted,
        principal: "OP".into(),
    });
    assert_eq!(
        (change.principal(), change.outcome()),
        (Some("OP"), Some("ok"))
    );
    assert_eq!(change.message(), "Connector d-c was deleted by OP.");
}

#[test]
fn guardrail_events_carry_rule_ids_and_keys_only() {
    let rejected = Event::from(PolicyRejected {
        connector: "dept1-a".into(),
        operation: "create",
        principal: "OPERATOR".into(),
        rules: vec!["naming.prefix".into(), "prod-tasks-max".into()],
    });
    assert_eq!(rejected.code(), "policy_rejected");
    assert_eq!(rejected.level(), Level::Warn);
    assert_eq!(rejected.pool(), None);
    assert_eq!(
        rejected.message(),
        "The create of connector dept1-a by OPERATOR was refused by the guardrails: naming.prefix, prod-tasks-max."
    );
    let applied = Event::from(DefaultsApplied {
        connector: "dept1-a".into(),
        operation: "update",
        principal: "ci".into(),
        defaults: vec![("errors.tolerance".into(), "all".into())],
    });
    assert_eq!(applied.level(), Level::Info);
    assert!(applied.message().contains("errors.tolerance=all"));
    let moved = Event::from(SecretsExternalized {
        connector: "dept1-a".into(),
        operation: "create",
        principal: "ci".into(),
        keys: vec!["connection.password".into()],
    });
    assert_eq!(moved.code(), "secrets_externalized");
    assert!(moved.message().ends_with("connection.password."));
}

#[test]
fn events_name_their_worker_pool_and_level() {
    let held = Event::from(WorkerHeld {
        worker: WorkerId::new("heavy", 0),
        failures: 3,
        window: Duration::from_secs(600),
    });
    assert_eq!(held.code(), "worker_held");
    assert_eq!(held.level(), Level::Error);
    assert_eq!(held.pool().as_deref(), Some("heavy"));
    assert!(
        held.message().contains("/v1/workers/heavy-0/clear"),
        "{}",
        held.message()
    );
    let exit = Event::from(WorkerExited {
        worker: WorkerId::new("p", 1),
        reason: ExitReason::Shutdown,
        stderr_tail: Vec::new(),
    });
    assert_eq!(exit.level(), Level::Info, "a requested stop is no warning");
}

#[test]
fn every_code_has_one_text_and_the_list_is_derived_from_the_codes() {
    assert_eq!(Code::ALL.len(), Code::TEXTS.len());
    for (code, text) in Code::ALL.iter().zip(Code::TEXTS) {
        assert_eq!(code.as_str(), *text);
    }
    let mut texts = Code::TEXTS.to_vec();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), Code::TEXTS.len(), "a code text is used twice");
    assert_eq!(Event::CODES, Code::TEXTS);
}

#[test]
fn phase_changes_are_routine_and_outcomes_of_connector_bookkeeping_name_their_connector() {
    let phase = Event::from(WorkerPhaseChanged {
        worker: WorkerId::new("p", 0),
        to: crate::model::WorkerPhase::Ready,
    });
    assert!(phase.typed().routine());
    assert_eq!(phase.pool().as_deref(), Some("p"));
    assert_eq!(phase.message(), "Worker p-0 is ready.");
    let failed = Event::from(OffsetsRequestFailed {
        connector: "d-c".into(),
        kind: "PATCH",
        code: "connect_unreachable",
    });
    assert!(!failed.typed().routine());
    assert_eq!(
        (failed.connector(), failed.outcome(), failed.level()),
        (Some("d-c"), Some("connect_unreachable"), Level::Warn)
    );
    let swept = Event::from(SecretSweepSkipped {
        error: Some("pool shared does not answer".into()),
    });
    assert_eq!(
        swept.message(),
        "Secret files not swept: pool shared does not answer"
    );
}

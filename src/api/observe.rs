//! What the department can see of itself: readiness (`/readyz`), the health summary
//! (`/v1/health`), events (`/v1/events`), the audit trail (`/v1/audit`, admin), a connector's log
//! on the managed path (`.../connectors/{name}/logs`, operators) and a worker's full log
//! (`/v1/workers/{id}/logs`, admin). Who may call which is decided in [`crate::auth`].
//!
//! Handlers only parse queries and shape answers; the data comes from the supervisor's
//! [`crate::observe::Observer`] and the [`crate::healing::ConnectorWatch`].

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiError;
use super::managed::{API_PREFIX, PREFIX};
use crate::auth::Principal;
use crate::model::LogLevel;
use crate::observe::audit::AuditQuery;
use crate::observe::health::{PoolReadiness, ReadyCheck, readiness};
use crate::observe::logs::{LogRecord, Query, format_record, ring};
use crate::observe::{EVENT_CAPACITY, Event};
use crate::translate::{query_param, query_params};

/// Path of the readiness probe.
pub const READY_PATH: &str = "/readyz";
/// Path of the health summary.
pub const HEALTH_SUMMARY_PATH: &str = "/v1/health";
/// Path of the events.
pub const EVENTS_PATH: &str = "/v1/events";
/// Path of the audit trail.
pub const AUDIT_PATH: &str = "/v1/audit";
/// Events a query returns when it does not say.
pub const DEFAULT_EVENTS: usize = 100;

type Result<T> = std::result::Result<T, ApiError>;

/// The routes outside the route table (their roles come from the rules by prefix).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(READY_PATH, get(readyz))
        .route(HEALTH_SUMMARY_PATH, get(health_summary))
        .route(EVENTS_PATH, get(events))
        .route(AUDIT_PATH, get(audit))
        .route("/v1/workers/{id}/logs", get(worker_logs))
}

/// A connector's log under both managed prefixes, for the route table: the operators' view
/// (requirement 7: viewers see status only).
pub fn connector_routes() -> Vec<super::routes::Entry> {
    let logs = "/connectors/{connector_name}/logs";
    [PREFIX.to_string(), format!("{API_PREFIX}{PREFIX}")]
        .into_iter()
        .map(|prefix| {
            super::routes::entry(
                axum::http::Method::GET,
                format!("{prefix}{logs}"),
                super::routes::Need::Operator,
                None,
                connector_logs,
            )
        })
        .collect()
}

/// `GET /readyz?exclude=`: 200 when every pool has a ready worker and Kafka answers, else 503
/// saying why. `exclude` (comma-separated or repeated: `pools`, `kafka`) leaves checks out, as
/// the Kubernetes API server's does: the API pod's readiness probe excludes `pools`, so one pool
/// that restarts does not take the whole department API out of its Service.
async fn readyz(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response> {
    let exclude = ready_exclusions(query.as_deref())?;
    let pools = state
        .supervisor
        .status()
        .into_iter()
        .map(|p| PoolReadiness {
            held_connectors: if p.desired_workers == 0 && p.ready_workers == 0 {
                state.connectors.last_known_names(&p.name)
            } else {
                Vec::new()
            },
            pool: p.name,
            desired_workers: p.desired_workers,
            ready_workers: p.ready_workers,
        })
        .collect();
    let kafka = state.supervisor.observer().kafka().map(|k| k.state());
    let verdict = readiness(pools, kafka, &exclude);
    let status = if verdict.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(verdict)).into_response())
}

/// The checks `exclude` names (every value of the parameter, each comma-separated).
fn ready_exclusions(query: Option<&str>) -> Result<Vec<ReadyCheck>> {
    let (mut checks, mut problems) = (Vec::new(), Vec::new());
    let values = query_params(query, "exclude");
    for name in values.iter().flat_map(|v| v.split(',').map(str::trim)) {
        match ReadyCheck::parse(name) {
            Some(c) => checks.push(c),
            None if name.is_empty() => {}
            None => problems.push(format!(
                "exclude: \"{name}\" is not a readiness check; use {}",
                ReadyCheck::ALL.map(|(n, _)| n).join(" or ")
            )),
        }
    }
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err(ApiError::bad_request(&problems))
    }
}

/// `GET /v1/health`: the department's health for the dashboard.
async fn health_summary(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    Json(state.watch.summary(principal.role)).into_response()
}

/// A `since` value: an RFC 3339 time, or a duration back from now (`90s`, `15m`, `2h`, `1d`).
pub fn parse_since(text: &str, now: OffsetDateTime) -> std::result::Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match (number.parse::<i64>(), unit) {
        (Ok(n), "s") => Some(n),
        (Ok(n), "m") => Some(n * 60),
        (Ok(n), "h") => Some(n * 3600),
        (Ok(n), "d") => Some(n * 86_400),
        _ => None,
    };
    seconds
        .map(|s| now - time::Duration::seconds(s))
        .ok_or_else(|| {
            format!(
                "since: \"{text}\" is neither an RFC 3339 time (2026-11-21T10:00:00Z) nor a duration back from now (90s, 15m, 2h, 1d)"
            )
        })
}

fn limit(query: Option<&str>, default: usize, max: usize, problems: &mut Vec<String>) -> usize {
    match query_param(query, "limit") {
        None => default,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                problems.push(format!("limit: \"{text}\" is not a number from 1 to {max}"));
                default
            }
        },
    }
}

/// The log query of `query`: `level`, `since`, `after`, `limit`, `task`, `connector`.
fn log_query(query: Option<&str>, worker_view: bool) -> Result<(Query, bool)> {
    let mut problems = Vec::new();
    let mut q = Query {
        limit: limit(query, ring::DEFAULT_LIMIT, ring::MAX_LIMIT, &mut problems),
        ..Query::default()
    };
    if let Some(level) = query_param(query, "level") {
        match LogLevel::parse(&level) {
            Some(l) => q.min_level = l,
            None => problems.push(format!(
                "level: \"{level}\" is not a log level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL (lines at that level and above are returned)"
            )),
        }
    }
    if let Some(since) = query_param(query, "since") {
        match parse_since(&since, OffsetDateTime::now_utc()) {
            Ok(t) => q.since = Some(t),
            Err(p) => problems.push(p),
        }
    }
    if let Some(after) = query_param(query, "after") {
        match after.parse() {
            Ok(s) => q.after = Some(s),
            Err(_) => problems.push(format!(
                "after: \"{after}\" is not a sequence number; pass the next_after of the previous answer"
            )),
        }
    }
    if let Some(task) = query_param(query, "task") {
        match task.parse() {
            Ok(t) => q.task = Some(t),
            Err(_) => problems.push(format!("task: \"{task}\" is not a task number")),
        }
    }
    if worker_view {
        q.connector = query_param(query, "connector");
    }
    let text = match query_param(query, "format").as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            problems.push(format!(
                "format: \"{other}\" is not a format; use json or text"
            ));
            false
        }
    };
    if problems.is_empty() {
        Ok((q, text))
    } else {
        Err(ApiError::bad_request(&problems))
    }
}

fn log_answer(
    lines: Vec<std::sync::Arc<LogRecord>>,
    after: Option<u64>,
    text: bool,
    extra: Value,
) -> Response {
    if text {
        let mut body = String::new();
        for l in &lines {
            body.push_str(&format_record(l));
            body.push('\n');
        }
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    let next = lines.last().map(|l| l.seq).or(after).unwrap_or(0);
    let mut body = extra;
    body["lines"] = serde_json::to_value(&lines).expect("log records serialise");
    body["next_after"] = json!(next);
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
struct ConnectorPath {
    environment_id: String,
    kafka_cluster_id: String,
    connector_name: String,
}

/// `GET .../connectors/{name}/logs?level=&since=&after=&limit=&task=&format=`: that connector's
/// lines only, secrets masked.
async fn connector_logs(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let d = state.connectors.department();
    if p.environment_id != d.environment_id || p.kafka_cluster_id != d.kafka_cluster_id {
        return Err(ApiError::not_found(format!(
            "environment {} with cluster {} is not served here; this supervisor serves environment {} with cluster {}",
            p.environment_id, p.kafka_cluster_id, d.environment_id, d.kafka_cluster_id
        )));
    }
    let (q, text) = log_query(query.as_deref(), false)?;
    let name = p.connector_name;
    let lines = match state
        .supervisor
        .observer()
        .logs()
        .connector_lines(&name, &q)
    {
        Some(lines) => lines,
        None => {
            // No line yet: an existing connector has an empty log, an unknown one is a 404.
            state
                .connectors
                .info(&name)
                .await
                .map_err(|e| ApiError::from_connectors(e, super::error::Shape::Managed))?;
            Vec::new()
        }
    };
    Ok(log_answer(
        lines,
        q.after,
        text,
        json!({ "connector": name }),
    ))
}

/// `GET /v1/workers/{id}/logs?level=&since=&after=&limit=&connector=&format=` (admin): every
/// line of the worker.
async fn worker_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if state.supervisor.worker(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "worker \"{id}\" does not exist in this department"
        )));
    }
    let (q, text) = log_query(query.as_deref(), true)?;
    let lines = state
        .supervisor
        .observer()
        .logs()
        .worker_lines(&id, &q)
        .unwrap_or_default();
    Ok(log_answer(lines, q.after, text, json!({ "worker": id })))
}

/// `GET /v1/events?connector=&kind=&worker=&since=&limit=`: the recent events, oldest first.
/// `since` is a sequence number (the `next_since` of the previous answer), an RFC 3339 time or a
/// duration back from now; `kind` is one event code or several separated by commas.
async fn events(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response> {
    let q = query.as_deref();
    let mut problems = Vec::new();
    let limit = limit(q, DEFAULT_EVENTS, EVENT_CAPACITY, &mut problems);
    let kinds: Vec<String> = query_param(q, "kind")
        .map(|k| {
            k.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for k in &kinds {
        if !Event::CODES.contains(&k.as_str()) {
            problems.push(format!(
                "kind: \"{k}\" is not an event kind; use one of {}",
                Event::CODES.join(", ")
            ));
        }
    }
    let (mut after, mut since_time) = (0u64, None);
    if let Some(since) = query_param(q, "since") {
        match since.parse::<u64>() {
            Ok(seq) => after = seq,
            Err(_) => match parse_since(&since, OffsetDateTime::now_utc()) {
                Ok(t) => since_time = Some(t),
                Err(p) => problems.push(p),
            },
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::bad_request(&problems));
    }
    let connector = query_param(q, "connector");
    let worker = query_param(q, "worker");
    let all = state
        .supervisor
        .observer()
        .events()
        .since(after, usize::MAX);
    let mut matching: Vec<_> = all
        .into_iter()
        .filter(|e| since_time.is_none_or(|t| e.time >= t))
        .filter(|e| kinds.is_empty() || kinds.iter().any(|k| k == e.event))
        .filter(|e| connector.is_none() || e.connector == connector)
        .filter(|e| worker.is_none() || e.worker == worker)
        .collect();
    // The oldest `limit` after the cursor, so following with next_since misses nothing.
    matching.truncate(limit);
    let next = matching.last().map(|e| e.seq).unwrap_or(after);
    Ok(Json(json!({ "events": matching, "next_since": next })).into_response())
}

/// `GET /v1/audit?connector=&principal=&action=&since=&limit=` (admin): the audit trail.
async fn audit(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response> {
    let q = query.as_deref();
    let mut problems = Vec::new();
    let limit = limit(q, DEFAULT_EVENTS, 10_000, &mut problems);
    let since = match query_param(q, "since") {
        None => None,
        Some(s) => match parse_since(&s, OffsetDateTime::now_utc()) {
            Ok(t) => Some(crate::translate::rfc3339(t)),
            Err(p) => {
                problems.push(p);
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::bad_request(&problems));
    }
    let Some(log) = state.supervisor.observer().audit() else {
        return Ok(Json(json!({ "records": [] })).into_response());
    };
    let records = log
        .query(&AuditQuery {
            connector: query_param(q, "connector"),
            principal: query_param(q, "principal"),
            actions: query_param(q, "action")
                .map(|a| a.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
            since,
            limit,
        })
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.to_string()))?;
    Ok(
        Json(json!({ "file": log.path().display().to_string(), "records": records }))
            .into_response(),
    )
}

/// Prefix of the note a held connector's trace gets.
pub const HELD_NOTE: &str = "connect-supervisor: automatic restarts are held";

/// A managed status with the connector's auto-restart state (`auto_restart`: restarts in its
/// budget, held, the last failure's trace kept after a restart). A held connector's trace also
/// says so, since that is the field every client shows.
pub fn with_auto_restart(
    state: &AppState,
    name: &str,
    status: crate::translate::ManagedStatus,
) -> Value {
    let mut body = serde_json::to_value(&status).expect("a status serialises");
    if let Some(view) = state.watch.auto_restart(name) {
        if view.held {
            let note = format!(
                "{HELD_NOTE} after {} restarts; fix the cause, then restart the connector (POST .../connectors/{name}/restart)",
                view.restarts
            );
            let trace = status.connector.trace.clone();
            body["connector"]["trace"] = Value::String(if trace.is_empty() {
                note
            } else {
                format!("{note}. {trace}")
            });
        }
        body["auto_restart"] = serde_json::to_value(view).expect("a view serialises");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_back() {
        let now = time::macros::datetime!(2030-01-01 12:00 UTC);
        assert_eq!(
            parse_since("15m", now).unwrap(),
            time::macros::datetime!(2030-01-01 11:45 UTC)
        );
        assert_eq!(
            parse_since("2029-12-31T00:00:00Z", now).unwrap(),
            time::macros::datetime!(2029-12-31 00:00 UTC)
        );
        let e = parse_since("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("15m"), "{e}");
    }

    #[test]
    fn bad_log_queries_name_every_problem() {
        let e = log_query(Some("level=LOUD&limit=0&after=x&task=y&format=xml"), false).unwrap_err();
        let body = e.body().to_string();
        for field in ["level", "limit", "after", "task", "format"] {
            assert!(body.contains(&format!("{field}:")), "{body}");
        }
        let (q, text) = log_query(Some("level=warn&limit=5&task=2&format=text"), false).unwrap();
        assert_eq!(
            (q.min_level, q.limit, q.task, text),
            (LogLevel::Warn, 5, Some(2), true)
        );
    }
}

//! The outermost layer of the API: every request is counted and timed (by route template), and
//! every change (connector create/update/delete/pause/resume/stop/restart/offsets, admin scale,
//! restarts, clears) is written to the audit trail with who, what, when and the result, refused
//! and failed attempts included. Successful connector changes also become events and tell the
//! connector watch (an operator's restart releases a held connector).
//!
//! The principal comes from [`super::access`], which attaches it to the response; this layer
//! never sees a secret (it reads only the `name` of a create's body, and error messages the API
//! already scrubbed).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, MAX_BODY_BYTES};
use crate::auth::Principal;
use crate::observe::ConnectorChange;
use crate::observe::audit::{AuditRecord, Outcome, short_message};
use crate::observe::events::ConnectorChanged;
use crate::observe::http::UNMATCHED_ROUTE;
use crate::translate::{percent_decode, rfc3339};

/// Largest error body read back for the audit record's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a change request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A change to a connector.
    Connector(ConnectorChange),
    /// A change to a connector whose kind depends on whether it existed (PUT config).
    CreateOrUpdate,
    /// A worker admin change: action code.
    Admin(&'static str),
}

impl Change {
    fn action(&self, created: bool) -> &'static str {
        match self {
            Self::Connector(c) => c.code(),
            Self::CreateOrUpdate if created => ConnectorChange::Created.code(),
            Self::CreateOrUpdate => ConnectorChange::Updated.code(),
            Self::Admin(a) => a,
        }
    }
}

/// The change a request to route template `route` makes, if any (pure, tested per route).
pub fn classify(method: &str, route: &str) -> Option<Change> {
    use ConnectorChange as C;
    let rest = route
        .strip_prefix(super::managed::API_PREFIX)
        .unwrap_or(route);
    let rest = rest.strip_prefix(super::managed::PREFIX).unwrap_or(rest);
    let rest = rest.replace("{connector_name}", "{name}");
    let change = match (method, rest.as_str()) {
        ("POST", "/connectors") => Change::Connector(C::Created),
        ("DELETE", "/connectors/{name}") => Change::Connector(C::Deleted),
        ("PUT", "/connectors/{name}/config") => Change::CreateOrUpdate,
        ("PATCH", "/connectors/{name}/config") => Change::Connector(C::Updated),
        ("PUT", "/connectors/{name}/pause") => Change::Connector(C::Paused),
        ("PUT", "/connectors/{name}/resume") => Change::Connector(C::Resumed),
        ("PUT", "/connectors/{name}/stop") => Change::Connector(C::Stopped),
        ("POST", "/connectors/{name}/restart" | "/connectors/{name}/tasks/{task}/restart") => {
            Change::Connector(C::Restarted)
        }
        ("POST", "/connectors/{name}/offsets/request")
        | ("PATCH" | "DELETE", "/connectors/{name}/offsets") => {
            Change::Connector(C::OffsetsRequested)
        }
        ("PUT", "/connectors/{name}/topics/reset") => Change::Connector(C::TopicsReset),
        // The dashboard's actions, audited like the API calls they stand for.
        ("POST", "/ui/connectors/{name}/restart" | "/ui/connectors/{name}/restart-failed") => {
            Change::Connector(C::Restarted)
        }
        ("POST", "/ui/connectors/{name}/pause") => Change::Connector(C::Paused),
        ("POST", "/ui/connectors/{name}/resume") => Change::Connector(C::Resumed),
        ("POST", "/ui/pools/{pool}/restart") => Change::Admin("pool_restarted"),
        ("POST", "/ui/workers/{id}/clear") => Change::Admin("worker_cleared"),
        ("POST", "/v1/pools/{pool}/scale") => Change::Admin("pool_scaled"),
        ("POST", "/v1/pools/{pool}/restart") => Change::Admin("pool_restarted"),
        ("POST", "/v1/workers/{id}/restart") => Change::Admin("worker_restarted"),
        ("POST", "/v1/workers/{id}/clear") => Change::Admin("worker_cleared"),
        _ => return None,
    };
    Some(change)
}

/// The value of path parameter `param` (e.g. `{name}`) of `route` in `path`.
pub fn path_param(route: &str, path: &str, params: &[&str]) -> Option<String> {
    let route_segments: Vec<&str> = route.split('/').collect();
    let path_segments: Vec<&str> = path.split('/').collect();
    if route_segments.len() != path_segments.len() {
        return None;
    }
    route_segments
        .iter()
        .zip(path_segments)
        .find(|(r, _)| params.contains(r))
        .map(|(_, p)| percent_decode(p))
}

fn name_of_create(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("name")
        .and_then(Value::as_str)
        .or_else(|| v.pointer("/config/name").and_then(Value::as_str))
        .map(str::to_string)
}

/// Longest commit recorded (a SHA-256 commit id is 64 hex digits).
const MAX_COMMIT_LEN: usize = 64;

/// The Git commit `apply` names in its header: a bounded token of letters, digits and `-._:/`
/// (anything else is dropped, so the audit trail holds no free text from it).
fn commit_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(crate::gitops::client::COMMIT_HEADER)?
        .to_str()
        .ok()?
        .trim();
    let ok = !value.is_empty()
        && value.len() <= MAX_COMMIT_LEN
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:/".contains(c));
    ok.then(|| value.to_string())
}

fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer("/error/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .map(short_message)
}

/// Counts and times every request; audits every change.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let commit = commit_of(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let change = route.as_deref().and_then(|r| classify(method.as_str(), r));
    let Some(change) = change else {
        let response = next.run(request).await;
        record_metrics(&state, route.as_deref(), &method, &response, started);
        return response;
    };
    // A change runs to its end, audited and evented, even when the client goes away meanwhile
    // (hyper drops the handler's future when the connection closes: a delete that Connect had
    // applied left no audit record, no event, and its secret file). The request's own task
    // only waits for it.
    let route = route.unwrap_or_default();
    let task = tokio::spawn(change_request(
        state, request, next, started, method, path, route, change, commit,
    ));
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "An API change request failed inside the supervisor.");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the request failed inside the supervisor; see its log",
            )
            .into_response()
        }
    }
}

/// The rest of [`observe`] for a change request, on a task of its own.
#[allow(clippy::too_many_arguments)]
async fn change_request(
    state: AppState,
    request: Request,
    next: Next,
    started: Instant,
    method: Method,
    path: String,
    route: String,
    change: Change,
    commit: Option<String>,
) -> Response {
    let mut connector = path_param(&route, &path, &["{name}", "{connector_name}"]);
    let target = path_param(&route, &path, &["{pool}", "{id}"]);
    let mut request = request;
    // Only an authenticated body is read here: without credentials the access layer answers
    // 401 without reading it (a 10 MiB body without credentials got 413, not 401).
    let authenticated = state
        .auth
        .authenticate(
            request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .is_ok();
    if authenticated
        && connector.is_none()
        && matches!(change, Change::Connector(ConnectorChange::Created))
    {
        let timeout = super::serve::BodyReadTimeout::of(&request);
        let (parts, body) = request.into_parts();
        let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await;
        let bytes = match read {
            Ok(Ok(b)) => b,
            Err(_) => {
                return ApiError::body_timeout(timeout)
                    .shaped(super::error::shape_for_path(&path))
                    .into_response();
            }
            Ok(Err(_)) => {
                let e = ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                )
                .shaped(super::error::shape_for_path(&path));
                return e.into_response();
            }
        };
        connector = name_of_create(&bytes);
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let existed = connector.as_deref().is_some_and(|c| state.watch.knows(c));
    let response = next.run(request).await;
    record_metrics(&state, Some(&route), &method, &response, started);
    let status = response.status().as_u16();
    let principal = response.extensions().get::<Principal>().cloned();
    let (response, message) = if status >= 400 {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
            .await
            .unwrap_or_else(|_| Bytes::new());
        let message = error_message(&bytes);
        (Response::from_parts(parts, Body::from(bytes)), message)
    } else {
        (response, None)
    };
    let created = match change {
        Change::CreateOrUpdate => status == 201 || (status < 300 && !existed),
        _ => false,
    };
    let action = change.action(created);
    let who = principal
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "unauthenticated".into());
    let observer = state.supervisor.observer();
    if let Some(audit) = observer.audit() {
        let record = AuditRecord {
            time: rfc3339(time::OffsetDateTime::now_utc()),
            department: observer.department().to_string(),
            principal: who.clone(),
            role: principal.as_ref().map(|p| p.role.as_str().to_string()),
            action: action.to_string(),
            connector: connector.clone(),
            target: target.clone(),
            method: method.to_string(),
            path: path.clone(),
            status,
            outcome: Outcome::of_status(status),
            message: message.map(|m| observer.logs().redactor().redact(&m).into_owned()),
            duration_ms: started.elapsed().as_millis() as u64,
            commit,
        };
        if let Err(e) = audit.append(&record) {
            tracing::error!(error = %e, code = e.code(), "An API change could not be written to the audit trail.");
        }
    }
    if (200..300).contains(&status)
        && let Some(name) = connector
    {
        let kind = match change {
            Change::Connector(c) => Some(c),
            Change::CreateOrUpdate if created => Some(ConnectorChange::Created),
            Change::CreateOrUpdate => Some(ConnectorChange::Updated),
            Change::Admin(_) => None,
        };
        if let Some(kind) = kind {
            observer.emit(ConnectorChanged {
                connector: name.clone(),
                change: kind,
                principal: who.clone(),
            });
            match kind {
                ConnectorChange::Created => state.watch.created(&name),
                ConnectorChange::Updated => state.watch.updated(&name),
                ConnectorChange::Deleted => state.watch.deleted(&name),
                ConnectorChange::Restarted => state.watch.operator_restarted(&name, &who),
                _ => state.watch.poke(),
            }
        }
    }
    response
}

fn record_metrics(
    state: &AppState,
    route: Option<&str>,
    method: &Method,
    response: &Response,
    started: Instant,
) {
    state.supervisor.observer().api().observe(
        route.unwrap_or(UNMATCHED_ROUTE),
        method.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_route_is_classified_and_reads_are_not() {
        let m = "/connect/v1/environments/{environment_id}/clusters/{kafka_cluster_id}";
        let cases = [
            ("POST", format!("{m}/connectors"), Some("connector_created")),
            (
                "POST",
                format!("/api{m}/connectors"),
                Some("connector_created"),
            ),
            ("POST", "/connectors".into(), Some("connector_created")),
            (
                "DELETE",
                format!("{m}/connectors/{{connector_name}}"),
                Some("connector_deleted"),
            ),
            (
                "PATCH",
                "/connectors/{name}/config".into(),
                Some("connector_updated"),
            ),
            (
                "PUT",
                format!("{m}/connectors/{{connector_name}}/pause"),
                Some("connector_paused"),
            ),
            (
                "PUT",
                "/connectors/{name}/stop".into(),
                Some("connector_stopped"),
            ),
            (
                "POST",
                "/connectors/{name}/tasks/{task}/restart".into(),
                Some("connector_restarted"),
            ),
            (
                "POST",
                format!("{m}/connectors/{{connector_name}}/offsets/request"),
                Some("offsets_requested"),
            ),
            (
                "DELETE",
                "/connectors/{name}/offsets".into(),
                Some("offsets_requested"),
            ),
            ("POST", "/v1/pools/{pool}/scale".into(), Some("pool_scaled")),
            (
                "POST",
                "/v1/workers/{id}/clear".into(),
                Some("worker_cleared"),
            ),
            ("GET", format!("{m}/connectors"), None),
            (
                "PUT",
                format!("{m}/connector-plugins/{{plugin_name}}/config/validate"),
                None,
            ),
            ("GET", "/v1/workers/{id}/logs".into(), None),
            (
                "POST",
                "/ui/connectors/{name}/restart".into(),
                Some("connector_restarted"),
            ),
            (
                "POST",
                "/ui/connectors/{name}/restart-failed".into(),
                Some("connector_restarted"),
            ),
            (
                "POST",
                "/ui/connectors/{name}/pause".into(),
                Some("connector_paused"),
            ),
            (
                "POST",
                "/ui/connectors/{name}/resume".into(),
                Some("connector_resumed"),
            ),
            (
                "POST",
                "/ui/pools/{pool}/restart".into(),
                Some("pool_restarted"),
            ),
            (
                "POST",
                "/ui/workers/{id}/clear".into(),
                Some("worker_cleared"),
            ),
            ("GET", "/ui/connectors/{name}/restart".into(), None),
            ("POST", "/ui/login".into(), None),
        ];
        for (method, route, expected) in cases {
            let got = classify(method, &route).map(|c| c.action(true));
            assert_eq!(got, expected, "{method} {route}");
        }
        assert_eq!(
            classify("PUT", "/connectors/{name}/config").map(|c| c.action(false)),
            Some("connector_updated")
        );
    }

    #[test]
    fn path_parameters_are_read_by_template() {
        assert_eq!(
            path_param(
                "/connectors/{name}/tasks/{task}/restart",
                "/connectors/dept1-a%20b/tasks/0/restart",
                &["{name}"]
            )
            .as_deref(),
            Some("dept1-a b")
        );
        assert_eq!(
            path_param("/connectors/{name}", "/connectors", &["{name}"]),
            None
        );
        assert_eq!(
            name_of_create(br#"{"name":"x","config":{}}"#).as_deref(),
            Some("x")
        );
        assert_eq!(
            name_of_create(br#"{"config":{"name":"y"}}"#).as_deref(),
            Some("y")
        );
        assert_eq!(
            error_message(br#"{"error":{"code":400,"message":"bad"}}"#).as_deref(),
            Some("bad")
        );
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(commit_of(&headers), None);
        headers.insert("X-Gitops-Commit", "0123abcd".parse().unwrap());
        assert_eq!(commit_of(&headers).as_deref(), Some("0123abcd"));
        headers.insert("X-Gitops-Commit", "a b".parse().unwrap());
        assert_eq!(commit_of(&headers), None, "free text is not recorded");
    }
}

//! The outermost layer of the API: every request is counted and timed (by route template), and
//! every change (connector create/update/delete/pause/resume/stop/restart/offsets, admin scale,
//! restarts, clears) is written to the audit trail with who, what, when and the result, refused
//! and failed attempts included. Successful connector changes also become events and tell the
//! connector watch (an operator's restart releases a held connector).
//!
//! Which requests are changes, and which action each is, comes from the route table
//! ([`super::routes`]) by the route axum matched; the connector and whether a PUT config created
//! it come from the handler's [`super::routes::Done`] report.
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
use super::routes::{Action, Done};
use crate::auth::Principal;
use crate::observe::ConnectorChange;
use crate::observe::audit::{AuditRecord, Outcome, short_message};
use crate::observe::events::ConnectorChanged;
use crate::observe::http::UNMATCHED_ROUTE;
use crate::translate::{percent_decode, rfc3339};

/// Largest error body read back for the audit record's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
        .get(crate::remote::COMMIT_HEADER)?
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
    // The route table says what the route axum matched does; nothing is matched again here.
    let change = route
        .as_deref()
        .and_then(|r| super::routes::find(&method, r))
        .and_then(|r| r.action);
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
    change: Action,
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
    // A create names its connector in its body. The handler reports it ([`Done`]); the body is
    // read here only so that an attempt refused before the handler (403) names it too.
    if authenticated && connector.is_none() && change == Action::Connector(ConnectorChange::Created)
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
    let response = next.run(request).await;
    record_metrics(&state, Some(&route), &method, &response, started);
    let status = response.status().as_u16();
    let principal = response.extensions().get::<Principal>().cloned();
    // What the handler did, as it reports it: the connector, and whether it created it.
    let done = response.extensions().get::<Done>().cloned();
    if let Some(done) = &done {
        connector = Some(done.connector.clone());
    }
    let created = done.is_some_and(|d| d.created);
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
    let action = change.code(created);
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
        && let Some(kind) = change.change(created)
    {
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

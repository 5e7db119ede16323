//! `POST /v1/migrate/connectors/{name}/push` (admin only): the source side of a cut-over whose
//! config holds secrets. The caller sends the translated config with the secrets masked; the
//! supervisor puts the real values back (read from Connect's config, `${file:...}` references
//! into its own secret store resolved) and creates the connector on the target's managed API
//! itself, so the values go from server to server and never through the operator's terminal.
//! The answer names the keys filled, never their values; the target's answer is scrubbed of
//! them too.

use std::collections::BTreeMap;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, JsonBody, Shape};
use crate::auth::{Principal, Role};
use crate::policy::secrets::own_reference;
use crate::secret_store::{SecretStore, read_file};
use crate::translate::{self, MASK};

/// The route.
pub const PUSH_PATH: &str = "/v1/migrate/connectors/{name}/push";
/// How long the call to the target may take (its create applies offsets, which waits for the
/// connector to stop).
pub const TARGET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// The migration routes.
pub fn router() -> Router<AppState> {
    Router::new().route(PUSH_PATH, post(push))
}

fn string(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

async fn push(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if principal.role < Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} ({}) may not push a connector with its secrets; it needs an admin key",
                principal.name, principal.role
            ),
        ));
    }
    let mut problems = Vec::new();
    let target_url = string(&body, "target_url").unwrap_or_default();
    if !target_url.starts_with("http://") && !target_url.starts_with("https://") {
        problems.push(
            "target_url: give the target's managed prefix, http(s)://.../connect/v1/environments/<env>/clusters/<cluster>".into(),
        );
    }
    let target_name = string(&body, "name").unwrap_or_else(|| name.clone());
    let config = match body.get("config") {
        Some(v) => translate::config_from_json(v, "config").unwrap_or_else(|p| {
            problems.extend(p);
            BTreeMap::new()
        }),
        None => {
            problems.push("config: is required (the translated config, secrets masked)".into());
            BTreeMap::new()
        }
    };
    let sources: BTreeMap<String, String> = body
        .get("secret_sources")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (v.to_string(), k.clone())))
                .collect()
        })
        .unwrap_or_default();
    let offsets = translate::normalize_offsets(body.get("offsets")).unwrap_or_else(|p| {
        problems.extend(p);
        Vec::new()
    });
    if !problems.is_empty() {
        return Err(ApiError::bad_request(&problems));
    }
    let (_, raw) = state
        .connectors
        .config(&name)
        .await
        .map_err(|e| ApiError::from_connectors(e, Shape::Managed))?;
    let store = SecretStore::for_department(state.connectors.department());
    let own_file = store.path(&name);
    let stored = read_file(&own_file).ok().flatten().unwrap_or_default();
    let resolve = |value: &String| -> String {
        match own_reference(value, &own_file) {
            Some(key) => stored.get(key).cloned().unwrap_or_else(|| value.clone()),
            None => value.clone(),
        }
    };
    let mut filled = Vec::new();
    let mut missing = Vec::new();
    let mut out = BTreeMap::new();
    let mut secrets = Vec::new();
    for (k, v) in &config {
        if v != MASK {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let from = sources.get(k).unwrap_or(k);
        match raw.get(from) {
            Some(real) => {
                let real = resolve(real);
                secrets.push(real.clone());
                out.insert(k.clone(), real);
                filled.push(k.clone());
            }
            None => missing.push(format!(
                "config.\"{k}\": masked, and {name} has no \"{from}\" to take its value from"
            )),
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::bad_request(&missing));
    }
    let client = reqwest::Client::builder()
        .timeout(TARGET_TIMEOUT)
        .build()
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "migrate_client",
                e.to_string(),
            )
        })?;
    let mut request = client
        .post(format!("{}/connectors", target_url.trim_end_matches('/')))
        .json(&json!({ "name": target_name, "config": out, "offsets": offsets }));
    request = match (
        string(&body, "api_key"),
        string(&body, "api_secret"),
        string(&body, "token"),
    ) {
        (Some(id), Some(secret), _) => request.basic_auth(id, Some(secret)),
        (_, _, Some(token)) => request.bearer_auth(token),
        _ => request,
    };
    let answer = request.send().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "migrate_target_unreachable",
            format!("cannot reach the target {target_url}: {}", e.without_url()),
        )
    })?;
    let status = answer.status().as_u16();
    let text = translate::scrub(&answer.text().await.unwrap_or_default(), &secrets);
    let target_body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    tracing::info!(
        connector = %name,
        target_name = %target_name,
        target = %target_url,
        principal = %principal.name,
        status,
        secrets = filled.len(),
        "Connector pushed to a migration target."
    );
    if !(200..300).contains(&status) {
        let said = target_body
            .get("error")
            .and_then(|e| e.get("message"))
            .or_else(|| target_body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "migrate_target_refused",
            format!("the target {target_url} answered {status}: {said}"),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": target_name,
            "target": target_url,
            "secrets_filled": filled,
            "offsets": offsets.len(),
            "target_answer": target_body,
        })),
    )
        .into_response())
}

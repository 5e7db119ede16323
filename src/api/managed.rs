//! The managed API (`connect/v1`), served under
//! `/connect/v1/environments/{environment_id}/clusters/{kafka_cluster_id}` and the same path with
//! an `/api` prefix (where the Confluent CLI sends it for a host that is not Confluent Cloud).
//!
//! Status codes follow what clients check, not only what the contract lists: PUT config answers
//! exactly 200 (Terraform fails on anything else), delete answers 200 with `{"error":null}`,
//! pause/resume/restart and offsets requests 202 with an empty body. Only the department's own
//! environment and cluster ids are served; others are 404.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, JsonBody, Shape};
use super::routes::{Action, Done, Entry, Need, entry};
use crate::auth::Principal;
use crate::connectors::admission;
use crate::connectors::{ConnectorsError, LifecycleAction};
use crate::observe::ConnectorChange;
use crate::offsets::RequestKind;
use crate::translate::{self, parse_expand, query_param};

/// The managed API's prefix, with its two path parameters.
pub const PREFIX: &str = "/connect/v1/environments/{environment_id}/clusters/{kafka_cluster_id}";
/// The second prefix the CLI uses for hosts other than Confluent Cloud.
pub const API_PREFIX: &str = "/api";

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Deserialize)]
struct Scope {
    environment_id: String,
    kafka_cluster_id: String,
}

#[derive(Debug, Deserialize)]
struct ConnectorPath {
    environment_id: String,
    kafka_cluster_id: String,
    connector_name: String,
}

#[derive(Debug, Deserialize)]
struct PluginPath {
    environment_id: String,
    kafka_cluster_id: String,
    plugin_name: String,
}

/// The managed routes under both prefixes, for the route table ([`super::routes`]).
pub fn routes() -> Vec<Entry> {
    use ConnectorChange as C;
    use Method as M;
    use Need::{Delete, Operator, Viewer};
    let change = |c| Some(Action::Connector(c));
    let mut all = Vec::new();
    for prefix in [PREFIX.to_string(), format!("{API_PREFIX}{PREFIX}")] {
        let p = |path: &str| format!("{prefix}{path}");
        let c = |path: &str| format!("{prefix}/connectors/{{connector_name}}{path}");
        all.extend([
            entry(M::GET, p("/connectors"), Viewer, None, list),
            entry(
                M::POST,
                p("/connectors"),
                Operator,
                change(C::Created),
                create,
            ),
            entry(M::GET, c(""), Viewer, None, read),
            entry(M::DELETE, c(""), Delete, change(C::Deleted), delete),
            entry(M::GET, c("/config"), Viewer, None, read_config),
            entry(
                M::PUT,
                c("/config"),
                Operator,
                Some(Action::CreateOrUpdate),
                put_config,
            ),
            entry(M::PUT, c("/pause"), Operator, change(C::Paused), pause),
            entry(M::PUT, c("/resume"), Operator, change(C::Resumed), resume),
            entry(
                M::POST,
                c("/restart"),
                Operator,
                change(C::Restarted),
                restart,
            ),
            entry(M::GET, c("/status"), Viewer, None, status),
            entry(M::GET, c("/tasks"), Viewer, None, tasks),
            entry(M::GET, c("/offsets"), Viewer, None, offsets),
            entry(
                M::POST,
                c("/offsets/request"),
                Operator,
                change(C::OffsetsRequested),
                offsets_request,
            ),
            entry(
                M::GET,
                c("/offsets/request/status"),
                Viewer,
                None,
                offsets_request_status,
            ),
            entry(M::GET, p("/connector-plugins"), Viewer, None, plugins),
            // A validation is a dry run: it changes nothing, so a viewer (or CI) may do it.
            entry(
                M::PUT,
                p("/connector-plugins/{plugin_name}/config/validate"),
                Viewer,
                None,
                validate,
            ),
        ]);
    }
    all
}

fn check_scope(state: &AppState, environment_id: &str, kafka_cluster_id: &str) -> Result<()> {
    let department = state.connectors.department();
    if environment_id == department.environment_id
        && kafka_cluster_id == department.kafka_cluster_id
    {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "environment {environment_id} with cluster {kafka_cluster_id} is not served here; this \
         supervisor serves environment {} with cluster {}",
        department.environment_id, department.kafka_cluster_id
    )))
}

fn connectors_error(e: ConnectorsError) -> ApiError {
    ApiError::from_connectors(e, Shape::Managed)
}

/// `GET .../connectors`: names, or with `?expand=` the expansion map.
async fn list(
    State(state): State<AppState>,
    Path(scope): Path<Scope>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_scope(&state, &scope.environment_id, &scope.kafka_cluster_id)?;
    match parse_expand(query.as_deref()) {
        None => Ok(Json(state.connectors.names().await.map_err(connectors_error)?).into_response()),
        Some(expand) => Ok(Json(
            state
                .connectors
                .managed_expansions(expand)
                .await
                .map_err(connectors_error)?,
        )
        .into_response()),
    }
}

/// `POST .../connectors`: create, with optional initial offsets. 201 with the connector.
async fn create(
    State(state): State<AppState>,
    Path(scope): Path<Scope>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    check_scope(&state, &scope.environment_id, &scope.kafka_cluster_id)?;
    let Value::Object(fields) = &body else {
        return Err(ApiError::bad_request(&[
            "the body must be a JSON object {\"name\", \"config\", \"offsets\"}".into(),
        ]));
    };
    let mut problems = Vec::new();
    let config = match fields.get("config") {
        None => {
            problems.push(
                "config: is required; give the connector's config as an object of strings".into(),
            );
            None
        }
        Some(v) => match translate::config_from_json(v, "config") {
            Ok(c) => Some(c),
            Err(p) => {
                problems.extend(p);
                None
            }
        },
    };
    let name = match fields.get("name") {
        Some(Value::String(n)) => Some(n.clone()),
        None | Some(Value::Null) => config.as_ref().and_then(|c| c.get("name").cloned()),
        Some(_) => {
            problems.push("name: must be a string".into());
            None
        }
    };
    if name.is_none() && config.is_some() {
        problems.push("name: is required; give the connector a name (or set config.name)".into());
    }
    // The CLI sends "offsets": null when its file has none.
    let offsets = match translate::normalize_offsets(fields.get("offsets")) {
        Ok(o) => {
            problems.extend(translate::check_create_offsets(&o));
            o
        }
        Err(p) => {
            problems.extend(p);
            Vec::new()
        }
    };
    for key in fields.keys() {
        if !matches!(key.as_str(), "name" | "config" | "offsets") {
            problems.push(format!(
                "{key}: unknown field; use name, config and offsets"
            ));
        }
    }
    let (Some(name), Some(config), true) = (name, config, problems.is_empty()) else {
        return Err(ApiError::bad_request(&problems));
    };
    let config = state.connectors.extras().strip(config);
    let created = state
        .connectors
        .create(&name, config, None, &offsets, &principal.name)
        .await
        .map_err(|e| match e {
            // The contract declares Connect's own shape for a 500 on create.
            e if super::error::connectors_status(&e) >= 500 => {
                ApiError::from_connectors(e, Shape::Connect)
            }
            e => connectors_error(e),
        })?;
    let sensitivity = state
        .connectors
        .sensitivity(&created.pool, &created.info.config)
        .await;
    let connector_type = state
        .connectors
        .connector_type(
            created.info.connector_type.as_deref(),
            created
                .info
                .config
                .get("connector.class")
                .map(String::as_str),
        )
        .await;
    let connector =
        state
            .connectors
            .managed_connector(&created.info, &sensitivity.masker(), &connector_type);
    let mut body = serde_json::to_value(connector).expect("serialisable");
    body["offsets"] = Value::Array(offsets);
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.extensions_mut().insert(Done::new(&name, true));
    Ok(response)
}

/// `GET .../connectors/{name}`. A missing connector is answered in Connect's shape, as the
/// managed service does (recorded by Terraform's tests).
async fn read(State(state): State<AppState>, Path(p): Path<ConnectorPath>) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let connector = state
        .connectors
        .managed_info(&p.connector_name)
        .await
        .map_err(|e| match e {
            e @ ConnectorsError::NotFound { .. } => ApiError::from_connectors(e, Shape::Connect),
            e => connectors_error(e),
        })?;
    Ok(Json(connector).into_response())
}

/// `DELETE .../connectors/{name}`: 200 with `{"error": null}` (Terraform fails on a non-null
/// `error`, even `{}`).
async fn delete(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    state
        .connectors
        .delete(&p.connector_name, &principal.name)
        .await
        .map_err(connectors_error)?;
    Ok(Json(json!({ "error": null })).into_response())
}

/// `GET .../config`: masked, with the keys the managed API adds, without the platform's
/// defaults (`?include_defaults=true` shows the config as it runs).
async fn read_config(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let (pool, config) = state
        .connectors
        .config(&p.connector_name)
        .await
        .map_err(connectors_error)?;
    let sensitivity = state.connectors.sensitivity(&pool, &config).await;
    let config = admission::shown_config(&config, admission::wants_defaults(query.as_deref()));
    let shown: BTreeMap<String, String> = state
        .connectors
        .extras()
        .add(sensitivity.masker().mask(&config));
    Ok(Json(shown).into_response())
}

/// `PUT .../config`: create or replace; exactly 200 either way (Terraform requires 200).
async fn put_config(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let config =
        translate::config_from_json(&body, "config").map_err(|p| ApiError::bad_request(&p))?;
    let (created, pool, info) = state
        .connectors
        .put_config(&p.connector_name, config, true, &principal.name)
        .await
        .map_err(|e| match e {
            e if super::error::connectors_status(&e) >= 500 => {
                ApiError::from_connectors(e, Shape::Connect)
            }
            e => connectors_error(e),
        })?;
    let sensitivity = state.connectors.sensitivity(&pool, &info.config).await;
    let connector_type = state
        .connectors
        .connector_type(
            info.connector_type.as_deref(),
            info.config.get("connector.class").map(String::as_str),
        )
        .await;
    let connector =
        state
            .connectors
            .managed_connector(&info, &sensitivity.masker(), &connector_type);
    // Always 200 (Terraform fails on anything else); the audit learns whether it created.
    let mut response = (StatusCode::OK, Json(connector)).into_response();
    response
        .extensions_mut()
        .insert(Done::new(&p.connector_name, created));
    Ok(response)
}

async fn lifecycle(
    state: &AppState,
    p: &ConnectorPath,
    action: LifecycleAction,
    principal: &Principal,
) -> Result<Response> {
    check_scope(state, &p.environment_id, &p.kafka_cluster_id)?;
    state
        .connectors
        .lifecycle(&p.connector_name, action, &principal.name)
        .await
        .map_err(connectors_error)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT .../pause`: 202, asynchronous.
async fn pause(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    lifecycle(&state, &p, LifecycleAction::Pause, &principal).await
}

/// `PUT .../resume`: 202, asynchronous (also starts a stopped connector).
async fn resume(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    lifecycle(&state, &p, LifecycleAction::Resume, &principal).await
}

/// `POST .../restart`: the connector and its tasks; `?only_failed=true` (or Connect's
/// `onlyFailed=true`) restarts only the failed ones. 202.
async fn restart(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    RawQuery(query): RawQuery,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    let only_failed = ["only_failed", "onlyFailed"]
        .iter()
        .filter_map(|k| query_param(query.as_deref(), k))
        .any(|v| v.eq_ignore_ascii_case("true"));
    lifecycle(
        &state,
        &p,
        LifecycleAction::Restart { only_failed },
        &principal,
    )
    .await
}

/// `GET .../status` in the managed vocabulary.
async fn status(State(state): State<AppState>, Path(p): Path<ConnectorPath>) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let status = state
        .connectors
        .managed_status(&p.connector_name)
        .await
        .map_err(connectors_error)?;
    // Auto-restart state and the last failure's trace, in a field clients ignore.
    Ok(Json(super::observe::with_auto_restart(
        &state,
        &p.connector_name,
        status,
    ))
    .into_response())
}

/// `GET .../tasks`: task ids and configs, masked, with the managed keys.
async fn tasks(State(state): State<AppState>, Path(p): Path<ConnectorPath>) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let mut tasks = state
        .connectors
        .tasks(&p.connector_name)
        .await
        .map_err(connectors_error)?;
    if let Value::Array(items) = &mut tasks {
        for item in items {
            if let Some(Value::Object(config)) = item.get_mut("config") {
                let as_strings: BTreeMap<String, String> = config
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
                let added = state.connectors.extras().add(as_strings);
                *config = added
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
            }
        }
    }
    Ok(Json(tasks).into_response())
}

/// `GET .../offsets`: Connect's offsets, observed now.
async fn offsets(State(state): State<AppState>, Path(p): Path<ConnectorPath>) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let offsets = state
        .connectors
        .offsets(&p.connector_name)
        .await
        .map_err(connectors_error)?;
    Ok(Json(json!({
        "id": state.connectors.connector_id(&p.connector_name),
        "name": p.connector_name,
        "offsets": offsets,
        "metadata": { "observed_at": translate::rfc3339(time::OffsetDateTime::now_utc()) },
    }))
    .into_response())
}

/// `POST .../offsets/request`: `{"type":"PATCH","offsets":[...]}` or `{"type":"DELETE"}`. 202
/// with the request; applied in the background.
async fn offsets_request(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let mut problems = Vec::new();
    let kind = match body.get("type") {
        Some(Value::String(t)) => match RequestKind::parse(t) {
            Some(kind) => Some(kind),
            None => {
                problems.push(format!(
                    "type: \"{t}\" is not a request type; use PATCH or DELETE"
                ));
                None
            }
        },
        _ => {
            problems.push("type: is required; use PATCH (with offsets) or DELETE".into());
            None
        }
    };
    let offsets = match translate::normalize_offsets(body.get("offsets")) {
        Ok(o) => o,
        Err(p) => {
            problems.extend(p);
            Vec::new()
        }
    };
    if let Value::Object(fields) = &body {
        for key in fields.keys() {
            if !matches!(key.as_str(), "type" | "offsets") {
                problems.push(format!("{key}: unknown field; use type and offsets"));
            }
        }
    }
    let (Some(kind), true) = (kind, problems.is_empty()) else {
        return Err(ApiError::bad_request(&problems));
    };
    let offsets = if kind == RequestKind::Delete {
        Vec::new()
    } else {
        offsets
    };
    let record = state
        .connectors
        .submit_offsets(&p.connector_name, kind, offsets, &principal.name)
        .await
        .map_err(connectors_error)?;
    Ok((StatusCode::ACCEPTED, Json(record.info_json())).into_response())
}

/// `GET .../offsets/request/status`: the last request and its phase.
async fn offsets_request_status(
    State(state): State<AppState>,
    Path(p): Path<ConnectorPath>,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    match state
        .connectors
        .offsets_request(&p.connector_name)
        .await
        .map_err(connectors_error)?
    {
        Some(record) => Ok(Json(record.status_json()).into_response()),
        None => Err(ApiError::not_found(format!(
            "no offsets request was made for connector {}; POST one to .../offsets/request",
            p.connector_name
        ))),
    }
}

/// `GET .../connector-plugins`: the installed source and sink plugins, by the short names the
/// managed service lists (creates and validates accept those and full class names alike).
async fn plugins(State(state): State<AppState>, Path(scope): Path<Scope>) -> Result<Response> {
    check_scope(&state, &scope.environment_id, &scope.kafka_cluster_id)?;
    let plugins = state.connectors.plugins().await.map_err(connectors_error)?;
    Ok(Json(translate::managed_plugins(&plugins)).into_response())
}

/// `PUT .../connector-plugins/{plugin}/config/validate`: Connect's answer, masked, with the
/// guardrails' violations in the keys they concern (`error_count` counts them: Terraform
/// aborts a create on it).
async fn validate(
    State(state): State<AppState>,
    Path(p): Path<PluginPath>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    check_scope(&state, &p.environment_id, &p.kafka_cluster_id)?;
    let config =
        translate::config_from_json(&body, "config").map_err(|p| ApiError::bad_request(&p))?;
    let mut infos = state
        .connectors
        .validate(&p.plugin_name, &config)
        .await
        .map_err(connectors_error)?;
    let warnings = crate::policy::lookalike::validation_warnings(
        &config,
        &infos,
        &state.connectors.department().secrets,
    );
    translate::managed_validation(&mut infos);
    if !warnings.is_empty() {
        // Beside Connect's fields, which clients read; a warning is no error (error_count stays).
        infos["warnings"] = json!(warnings);
    }
    Ok(Json(infos).into_response())
}

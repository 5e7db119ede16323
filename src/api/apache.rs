//! The Apache Kafka Connect-compatible routes (`/connectors...`, `/connector-plugins...`) for the
//! tools people already point at Connect (kcctl, kafka-ui, AKHQ): Connect's own shapes and status
//! codes, but across the department's pools, behind the same auth, with secrets masked and the
//! same placement and offsets guard as the managed API.
//!
//! Worker-internal routes (task config writes, fencing, `tasks-config`, logger admin) are never
//! proxied: they carry inter-worker signatures or change every connector at once.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, JsonBody, Shape};
use super::routes::{Action, Done, Entry, Need, entry};
use crate::auth::{Principal, Role};
use crate::connect::encode;
use crate::connectors::admission;
use crate::connectors::{ConnectorsError, LifecycleAction};
use crate::observe::ConnectorChange;
use crate::translate::{self, query_param};

type Result<T> = std::result::Result<T, ApiError>;

/// The Apache-compatible routes, for the route table ([`super::routes`]).
pub fn routes() -> Vec<Entry> {
    use ConnectorChange as C;
    use Method as M;
    use Need::{Delete, Operator, Viewer};
    let change = |c| Some(Action::Connector(c));
    let c = |path: &str| format!("/connectors/{{name}}{path}");
    vec![
        entry(M::GET, "/connectors", Viewer, None, list),
        entry(M::POST, "/connectors", Operator, change(C::Created), create),
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
        entry(
            M::PATCH,
            c("/config"),
            Operator,
            change(C::Updated),
            patch_config,
        ),
        entry(M::GET, c("/status"), Viewer, None, status),
        entry(
            M::POST,
            c("/restart"),
            Operator,
            change(C::Restarted),
            restart,
        ),
        entry(M::PUT, c("/pause"), Operator, change(C::Paused), pause),
        entry(M::PUT, c("/resume"), Operator, change(C::Resumed), resume),
        entry(M::PUT, c("/stop"), Operator, change(C::Stopped), stop),
        entry(M::GET, c("/tasks"), Viewer, None, tasks),
        entry(M::GET, c("/tasks/{task}/status"), Viewer, None, task_status),
        entry(
            M::POST,
            c("/tasks/{task}/restart"),
            Operator,
            change(C::Restarted),
            task_restart,
        ),
        entry(M::GET, c("/offsets"), Viewer, None, offsets),
        entry(
            M::PATCH,
            c("/offsets"),
            Operator,
            change(C::OffsetsRequested),
            alter_offsets,
        ),
        // An offsets reset is an operator's action even where deletes are admin-only.
        entry(
            M::DELETE,
            c("/offsets"),
            Operator,
            change(C::OffsetsRequested),
            reset_offsets,
        ),
        entry(M::GET, c("/topics"), Viewer, None, topics),
        entry(
            M::PUT,
            c("/topics/reset"),
            Operator,
            change(C::TopicsReset),
            topics_reset,
        ),
        entry(M::GET, "/connector-plugins", Viewer, None, plugins),
        entry(
            M::GET,
            "/connector-plugins/{plugin}/config",
            Viewer,
            None,
            plugin_config,
        ),
        // A validation is a dry run: it changes nothing, so a viewer (or CI) may do it.
        entry(
            M::PUT,
            "/connector-plugins/{plugin}/config/validate",
            Viewer,
            None,
            validate,
        ),
    ]
}

/// Connect's worker-internal and worker-wide routes, answered 404 on every method (not in the
/// route table: they are never served, so they need no role of their own).
pub fn internal_router() -> Router<AppState> {
    Router::new()
        .route("/connectors/{name}/tasks", post(internal))
        .route("/connectors/{name}/fence", any(internal))
        .route("/connectors/{name}/tasks-config", any(internal))
        .route("/admin/loggers", any(internal))
        .route("/admin/loggers/{logger}", any(internal))
}

fn err(e: ConnectorsError) -> ApiError {
    ApiError::from_connectors(e, Shape::Connect)
}

fn bad(problems: &[String]) -> ApiError {
    ApiError::bad_request(problems).shaped(Shape::Connect)
}

fn reply(status: u16, body: Option<Value>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    }
}

/// `/connectors/{name}/tasks` POST, `/fence`, `/tasks-config`, `/admin/loggers`.
async fn internal(request: Request) -> Response {
    ApiError::not_found(format!(
        "{} {} is a Connect worker-internal or worker-wide route; the supervisor does not proxy it \
         (worker administration is under /v1/pools and /v1/workers, admin role)",
        request.method(),
        request.uri().path()
    ))
    .shaped(Shape::Connect)
    .into_response()
}

/// Forwards a call about connector `name` to its pool, unchanged.
async fn forward(
    state: &AppState,
    name: &str,
    method: Method,
    path: String,
    body: Option<Value>,
) -> Result<(String, crate::connect::Reply)> {
    state
        .connectors
        .on_connector(name, &[], |c| {
            let (method, path, body) = (method.clone(), path.clone(), body.clone());
            async move { c.send(method, &path, body.as_ref()).await }
        })
        .await
        .map_err(err)
}

/// Masks the config inside a `ConnectorInfo`-shaped value and leaves out the platform's
/// defaults (as the managed API does: a tool that compares what it sent sees no drift).
async fn mask_info(state: &AppState, pool: &str, info: &mut Value) {
    let config = config_of(info.get("config"));
    let sensitivity = state.connectors.sensitivity(pool, &config).await;
    if let Some(c) = info.get_mut("config") {
        strip_defaults(c, &config);
        sensitivity.masker().mask_json(c);
    }
}

/// Removes the keys the platform added (recorded in `config`) from a JSON config object.
fn strip_defaults(json_config: &mut Value, config: &std::collections::BTreeMap<String, String>) {
    let shown = admission::shown_config(config, false);
    if let Value::Object(map) = json_config {
        map.retain(|k, _| shown.contains_key(k) || !config.contains_key(k));
    }
}

fn config_of(value: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Scrubs the traces of a `ConnectorStateInfo`-shaped value with `secrets`.
fn scrub_status(status: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let scrub = |v: &mut Value| {
        if let Some(Value::String(t)) = v.get_mut("trace") {
            *t = translate::scrub(t, secrets);
        }
    };
    if let Some(c) = status.get_mut("connector") {
        scrub(c);
    }
    if let Some(Value::Array(tasks)) = status.get_mut("tasks") {
        tasks.iter_mut().for_each(scrub);
    }
    scrub(status);
}

/// Connect's `worker_id`s in a status as `principal` may see them: admins keep the workers'
/// addresses (they run the workers), everyone else sees the workers' names (`shared-0`), as on
/// the managed routes: no internal host:port reaches a department.
fn show_workers(state: &AppState, principal: &Principal, status: &mut Value) {
    if principal.role < Role::Admin {
        translate::name_workers_json(status, &state.connectors.worker_names());
    }
}

async fn secrets_of(state: &AppState, pool: &str, name: &str) -> Vec<String> {
    match state
        .connectors
        .call(pool, &[], |c| async move { c.connector_config(name).await })
        .await
    {
        Ok(config) => state
            .connectors
            .sensitivity(pool, &config)
            .await
            .masker()
            .secrets(&config),
        Err(_) => Vec::new(),
    }
}

/// `GET /connectors` with Connect's `?expand=status` / `?expand=info`, over all pools.
async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let Some(expand) = translate::parse_expand(query.as_deref()) else {
        return Ok(Json(state.connectors.names().await.map_err(err)?).into_response());
    };
    let mut out = serde_json::Map::new();
    if !expand.status && !expand.info {
        for name in state.connectors.names().await.map_err(err)? {
            out.insert(name, Value::Object(Default::default()));
        }
        return Ok(Json(out).into_response());
    }
    for (name, (pool, e)) in state
        .connectors
        .expanded(expand.status, true)
        .await
        .map_err(err)?
    {
        let config = e
            .info
            .as_ref()
            .map(|i| i.config.clone())
            .unwrap_or_default();
        let sensitivity = state.connectors.sensitivity(&pool, &config).await;
        let masker = sensitivity.masker();
        let mut entry = serde_json::Map::new();
        if expand.status
            && let Some(s) = &e.status
        {
            let mut s = serde_json::to_value(s).expect("serialisable");
            scrub_status(&mut s, &masker.secrets(&config));
            show_workers(&state, &principal, &mut s);
            entry.insert("status".into(), s);
        }
        if expand.info
            && let Some(info) = &e.info
        {
            let mut info = serde_json::to_value(info).expect("serialisable");
            if let Some(c) = info.get_mut("config") {
                strip_defaults(c, &config);
                masker.mask_json(c);
            }
            entry.insert("info".into(), info);
        }
        if expand.status && !entry.contains_key("status") {
            // Connect itself leaves a connector without a status out of the list.
            continue;
        }
        out.insert(name, Value::Object(entry));
    }
    Ok(Json(out).into_response())
}

/// `POST /connectors` (`{name, config, initial_state?}`): placed on its pool. 201 + Location.
async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let mut problems = Vec::new();
    let name = match body.get("name") {
        Some(Value::String(n)) => Some(n.trim().to_string()),
        _ => {
            problems.push("name: is required and must be a string".to_string());
            None
        }
    };
    let config = match body.get("config") {
        Some(c) => translate::config_from_json(c, "config")
            .map_err(|p| problems.extend(p))
            .ok(),
        None => {
            problems.push("config: is required".to_string());
            None
        }
    };
    let initial_state = match body.get("initial_state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if matches!(s.as_str(), "RUNNING" | "PAUSED" | "STOPPED") => {
            Some(s.clone())
        }
        Some(_) => {
            problems.push("initial_state: use RUNNING, PAUSED or STOPPED".to_string());
            None
        }
    };
    let (Some(name), Some(config), true) = (name, config, problems.is_empty()) else {
        return Err(bad(&problems));
    };
    let created = state
        .connectors
        .create(
            &name,
            config,
            initial_state.as_deref(),
            &[],
            &principal.name,
        )
        .await
        .map_err(err)?;
    let mut info = serde_json::to_value(&created.info).expect("serialisable");
    mask_info(&state, &created.pool, &mut info).await;
    let mut response = (StatusCode::CREATED, Json(info)).into_response();
    response.extensions_mut().insert(Done::new(&name, true));
    if let Ok(location) = HeaderValue::from_str(&format!("/connectors/{}", encode(&name))) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /connectors/{name}`, config masked.
async fn read(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let (pool, info) = state.connectors.info(&name).await.map_err(err)?;
    let mut info = serde_json::to_value(info).expect("serialisable");
    mask_info(&state, &pool, &mut info).await;
    Ok(Json(info).into_response())
}

/// `DELETE /connectors/{name}`: 204.
async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    state
        .connectors
        .delete(&name, &principal.name)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connectors/{name}/config`, masked, without the platform's defaults
/// (`?include_defaults=true` shows the config as it runs).
async fn read_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let (pool, config) = state.connectors.config(&name).await.map_err(err)?;
    let sensitivity = state.connectors.sensitivity(&pool, &config).await;
    let shown = admission::shown_config(&config, admission::wants_defaults(query.as_deref()));
    Ok(Json(sensitivity.masker().mask(&shown)).into_response())
}

async fn shown_info(state: &AppState, pool: &str, info: &crate::connect::ConnectorInfo) -> Value {
    let mut value = serde_json::to_value(info).expect("serialisable");
    mask_info(state, pool, &mut value).await;
    value
}

/// `PUT /connectors/{name}/config`: 201 when created, 200 when updated (Connect's codes).
async fn put_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let config = translate::config_from_json(&body, "config").map_err(|p| bad(&p))?;
    let (created, pool, info) = state
        .connectors
        .put_config(&name, config, false, &principal.name)
        .await
        .map_err(err)?;
    let body = shown_info(&state, &pool, &info).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(Done::new(&name, created));
    Ok(response)
}

/// `PATCH /connectors/{name}/config` (KIP-477): `null` removes a key.
async fn patch_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let Value::Object(patch) = &body else {
        return Err(bad(&[
            "the body must be a JSON object of config values".into()
        ]));
    };
    let (pool, info) = state
        .connectors
        .patch_config(&name, patch, &principal.name)
        .await
        .map_err(err)?;
    Ok(Json(shown_info(&state, &pool, &info).await).into_response())
}

/// `GET /connectors/{name}/status`: Connect's own states, traces scrubbed, workers shown as
/// the principal may see them.
async fn status(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response> {
    let (pool, reply) = forward(
        &state,
        &name,
        Method::GET,
        format!("/connectors/{}/status", encode(&name)),
        None,
    )
    .await?;
    let mut body = reply.body.unwrap_or(Value::Null);
    if body.to_string().contains("\"trace\"") {
        let secrets = secrets_of(&state, &pool, &name).await;
        scrub_status(&mut body, &secrets);
    }
    translate::mark_down_workers_json(&mut body, &state.connectors.down_workers(&pool));
    show_workers(&state, &principal, &mut body);
    Ok(Json(body).into_response())
}

/// `POST /connectors/{name}/restart?includeTasks=&onlyFailed=`: Connect's answer (a status
/// when Connect sends one, its workers shown as the principal may see them).
async fn restart(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    state.connectors.ensure_not_busy(&name).map_err(err)?;
    let flag =
        |k: &str| query_param(query.as_deref(), k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let path = format!(
        "/connectors/{}/restart?includeTasks={}&onlyFailed={}",
        encode(&name),
        flag("includeTasks"),
        flag("onlyFailed")
    );
    let (_, mut reply) = forward(&state, &name, Method::POST, path, None).await?;
    if let Some(body) = reply.body.as_mut() {
        show_workers(&state, &principal, body);
    }
    Ok(reply_of(reply))
}

fn reply_of(answer: crate::connect::Reply) -> Response {
    reply(answer.status, answer.body)
}

async fn lifecycle(
    state: &AppState,
    name: &str,
    action: LifecycleAction,
    principal: &Principal,
    status: StatusCode,
) -> Result<Response> {
    state
        .connectors
        .lifecycle(name, action, &principal.name)
        .await
        .map_err(err)?;
    Ok(status.into_response())
}

/// `PUT /connectors/{name}/pause`: 202.
async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    lifecycle(
        &state,
        &name,
        LifecycleAction::Pause,
        &principal,
        StatusCode::ACCEPTED,
    )
    .await
}

/// `PUT /connectors/{name}/resume`: 202.
async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    lifecycle(
        &state,
        &name,
        LifecycleAction::Resume,
        &principal,
        StatusCode::ACCEPTED,
    )
    .await
}

/// `PUT /connectors/{name}/stop` (KIP-875): 204.
async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
) -> Result<Response> {
    lifecycle(
        &state,
        &name,
        LifecycleAction::Stop,
        &principal,
        StatusCode::NO_CONTENT,
    )
    .await
}

/// `GET /connectors/{name}/tasks`: configs masked.
async fn tasks(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(state.connectors.tasks(&name).await.map_err(err)?).into_response())
}

/// `GET /connectors/{name}/tasks/{task}/status`, trace scrubbed, worker shown as the principal
/// may see it.
async fn task_status(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, task)): Path<(String, u32)>,
) -> Result<Response> {
    let (pool, reply) = forward(
        &state,
        &name,
        Method::GET,
        format!("/connectors/{}/tasks/{task}/status", encode(&name)),
        None,
    )
    .await?;
    let mut body = reply.body.unwrap_or(Value::Null);
    if body.get("trace").is_some() {
        let secrets = secrets_of(&state, &pool, &name).await;
        scrub_status(&mut body, &secrets);
    }
    translate::mark_down_workers_json(&mut body, &state.connectors.down_workers(&pool));
    show_workers(&state, &principal, &mut body);
    Ok(Json(body).into_response())
}

/// `POST /connectors/{name}/tasks/{task}/restart`.
async fn task_restart(
    State(state): State<AppState>,
    Path((name, task)): Path<(String, u32)>,
) -> Result<Response> {
    state.connectors.ensure_not_busy(&name).map_err(err)?;
    let (_, reply) = forward(
        &state,
        &name,
        Method::POST,
        format!("/connectors/{}/tasks/{task}/restart", encode(&name)),
        None,
    )
    .await?;
    Ok(reply_of(reply))
}

/// `GET /connectors/{name}/offsets`.
async fn offsets(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let (_, reply) = forward(
        &state,
        &name,
        Method::GET,
        format!("/connectors/{}/offsets", encode(&name)),
        None,
    )
    .await?;
    Ok(reply_of(reply))
}

/// `PATCH /connectors/{name}/offsets` (the connector must be stopped, as in Connect).
async fn alter_offsets(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    state.connectors.ensure_not_busy(&name).map_err(err)?;
    let (_, reply) = forward(
        &state,
        &name,
        Method::PATCH,
        format!("/connectors/{}/offsets", encode(&name)),
        Some(body),
    )
    .await?;
    Ok(reply_of(reply))
}

/// `DELETE /connectors/{name}/offsets` (the connector must be stopped, as in Connect).
async fn reset_offsets(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response> {
    state.connectors.ensure_not_busy(&name).map_err(err)?;
    let (_, reply) = forward(
        &state,
        &name,
        Method::DELETE,
        format!("/connectors/{}/offsets", encode(&name)),
        None,
    )
    .await?;
    Ok(reply_of(reply))
}

/// `GET /connectors/{name}/topics`.
async fn topics(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let (_, reply) = forward(
        &state,
        &name,
        Method::GET,
        format!("/connectors/{}/topics", encode(&name)),
        None,
    )
    .await?;
    Ok(reply_of(reply))
}

/// `PUT /connectors/{name}/topics/reset`.
async fn topics_reset(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    let (_, reply) = forward(
        &state,
        &name,
        Method::PUT,
        format!("/connectors/{}/topics/reset", encode(&name)),
        None,
    )
    .await?;
    Ok(reply_of(reply))
}

/// `GET /connector-plugins[?connectorsOnly=false]`.
async fn plugins(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response> {
    let connectors_only = query_param(query.as_deref(), "connectorsOnly")
        .map(|v| !v.eq_ignore_ascii_case("false"))
        .unwrap_or(true);
    let pool = state.connectors.department().default_pool.clone();
    let path = format!("/connector-plugins?connectorsOnly={connectors_only}");
    let reply = state
        .connectors
        .call(&pool, &[], |c| {
            let path = path.clone();
            async move { c.send(Method::GET, &path, None).await }
        })
        .await
        .map_err(err)?;
    Ok(reply_of(reply))
}

/// `GET /connector-plugins/{plugin}/config`.
async fn plugin_config(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let pool = state.connectors.department().default_pool.clone();
    let mut path = format!("/connector-plugins/{}/config", encode(&plugin));
    if let Some(version) = query_param(query.as_deref(), "version") {
        path.push_str(&format!("?version={}", encode(&version)));
    }
    let reply = state
        .connectors
        .call(&pool, &[], |c| {
            let path = path.clone();
            async move { c.send(Method::GET, &path, None).await }
        })
        .await
        .map_err(err)?;
    Ok(reply_of(reply))
}

/// `PUT /connector-plugins/{plugin}/config/validate`, masked, with the guardrails' violations
/// in the keys they concern.
async fn validate(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let config = translate::config_from_json(&body, "config").map_err(|p| bad(&p))?;
    Ok(Json(
        state
            .connectors
            .validate(&plugin, &config)
            .await
            .map_err(err)?,
    )
    .into_response())
}

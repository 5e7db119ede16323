//! Admin routes over the department's pools and workers: list them with state, limits and live
//! usage; scale a pool; restart one worker; roll-restart a pool; clear a held worker.
//!
//! Errors use the managed API's shape, `{"error":{"code":<http status>,"message":"..."}}`.
//! Authorization (admin role only) comes from the route table and is applied around these
//! routes by the access layer, not here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::routes::{Action, AdminAction, Entry, Need, entry};
use crate::supervisor::AdminError;

/// The admin routes, for the route table ([`super::routes`]): admins only.
pub fn routes() -> Vec<Entry> {
    use AdminAction as A;
    use Method as M;
    let admin = Need::Admin;
    vec![
        entry(M::GET, "/v1/pools", admin, None, list_pools),
        entry(M::GET, "/v1/pools/{pool}", admin, None, get_pool),
        entry(
            M::POST,
            "/v1/pools/{pool}/scale",
            admin,
            Some(Action::Admin(A::PoolScaled)),
            scale_pool,
        ),
        entry(
            M::POST,
            "/v1/pools/{pool}/restart",
            admin,
            Some(Action::Admin(A::PoolRestarted)),
            restart_pool,
        ),
        entry(M::GET, "/v1/workers/{id}", admin, None, get_worker),
        entry(
            M::POST,
            "/v1/workers/{id}/restart",
            admin,
            Some(Action::Admin(A::WorkerRestarted)),
            restart_worker,
        ),
        entry(
            M::POST,
            "/v1/workers/{id}/clear",
            admin,
            Some(Action::Admin(A::WorkerCleared)),
            clear_worker,
        ),
    ]
}

/// An error in the managed API's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with `status` and a message the user can act on.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = StatusCode::from_u16(crate::api::error::admin_status(&e))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.status.as_u16(), "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

/// `GET /v1/pools`: every pool and worker, with the department's enforcement mode.
async fn list_pools(State(state): State<AppState>) -> Json<serde_json::Value> {
    let sup = &state.supervisor;
    Json(json!({
        "department": sup.department().id,
        "enforcement": sup.enforcement(),
        "enforced_controllers": sup.cgroups().controllers(),
        "degraded_reason": sup.degraded_reason(),
        "budget": {
            "max_workers": sup.department().budget.max_workers,
            "cpu": f64::from(sup.department().budget.cpu.millis()) / 1000.0,
            "memory_bytes": sup.department().budget.memory.bytes(),
        },
        "pools": sup.status(),
    }))
}

/// `GET /v1/pools/{pool}`.
async fn get_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .supervisor
        .status()
        .into_iter()
        .find(|p| p.name == pool)
        .map(|p| Json(json!(p)))
        .ok_or_else(|| AdminError::UnknownPool(pool).into())
}

/// Body of `POST /v1/pools/{pool}/scale`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleRequest {
    workers: u32,
}

/// `POST /v1/pools/{pool}/scale` with `{"workers": n}`.
async fn scale_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    body: Result<Json<ScaleRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(request) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the body must be {{\"workers\": <number of workers>}}: {}",
                e.body_text()
            ),
        )
    })?;
    let (from, to) = state.supervisor.scale(&pool, request.workers).await?;
    Ok(Json(json!({ "pool": pool, "from": from, "workers": to })))
}

/// `POST /v1/pools/{pool}/restart`: rolling restart, answered at once (202); progress is in the
/// pool's `rollout`.
async fn restart_pool(
    State(state): State<AppState>,
    Path(pool): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let rollout = state.supervisor.restart_pool(&pool)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "pool": pool, "rollout": rollout })),
    ))
}

/// `GET /v1/workers/{id}`.
async fn get_worker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .supervisor
        .worker(&id)
        .map(|w| Json(json!(w)))
        .ok_or_else(|| AdminError::UnknownWorker(id).into())
}

/// `POST /v1/workers/{id}/restart` (202).
async fn restart_worker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    state.supervisor.restart_worker(&id)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "worker": id, "action": "restart" })),
    ))
}

/// `POST /v1/workers/{id}/clear` (202; 409 unless the worker is held).
async fn clear_worker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    state.supervisor.clear_worker(&id)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "worker": id, "action": "clear" })),
    ))
}

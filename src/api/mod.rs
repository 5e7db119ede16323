//! The supervisor's HTTP server: routers, shared state and error bodies.
//!
//! Handlers stay thin: they parse the request, call the supervisor or a pure module, and shape the
//! answer. Nothing here spawns processes or holds locks across a call to a worker.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::supervisor::Supervisor;

pub mod admin;
pub mod metrics;

/// State shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The running department.
    pub supervisor: Arc<Supervisor>,
}

/// The full router of the supervisor.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .merge(admin::router())
        .merge(metrics::router())
        .with_state(state)
}

/// `GET /healthz`: the event loop answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /`: what this supervisor is and runs.
async fn root(State(state): State<AppState>) -> Json<serde_json::Value> {
    let department = state.supervisor.department();
    Json(json!({
        "service": "connect-supervisor",
        "version": env!("CARGO_PKG_VERSION"),
        "department": department.id,
        "environment_id": department.environment_id,
        "kafka_cluster_id": department.kafka_cluster_id,
        "managed_api": format!(
            "/connect/v1/environments/{}/clusters/{}",
            department.environment_id, department.kafka_cluster_id
        ),
        "pools": state.supervisor.status(),
    }))
}

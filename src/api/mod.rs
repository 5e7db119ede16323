//! The supervisor's HTTP server: routers, shared state and error bodies.
//!
//! Handlers stay thin: they parse the request, call the supervisor or a pure module, and shape the
//! answer. Nothing here spawns processes or holds locks across a call to a worker.

pub mod access;
pub mod apache;
pub mod cloud;
pub mod error;
pub mod managed;
pub mod names;
pub mod routes;
pub mod serve;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::Authenticator;
use crate::connectors::Connectors;
use crate::supervisor::Supervisor;

pub mod admin;
pub mod logs_v1;
pub mod metrics;
pub mod migrate;
pub mod observe;
pub mod telemetry;
pub mod ui;

/// State shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The running department.
    pub supervisor: Arc<Supervisor>,
    /// The department's connectors across pools.
    pub connectors: Arc<Connectors>,
    /// Credentials and roles of the department.
    pub auth: Arc<Authenticator>,
    /// The connector watch: status poll, auto-restart, health summary.
    pub watch: Arc<crate::healing::ConnectorWatch>,
    /// The health dashboard: sessions and the workers' usage history.
    pub ui: Arc<crate::api::ui::Dashboard>,
}

impl AppState {
    /// The state for `supervisor`'s department over its `connectors` (whose background tasks
    /// the composition root, `app::wire`, runs), with its credentials. Needs a tokio
    /// runtime.
    pub fn new(supervisor: Arc<Supervisor>, connectors: Arc<Connectors>) -> Self {
        let auth = Arc::new(authenticator(supervisor.department()));
        let watch = supervisor.connector_watch(|| {
            crate::healing::ConnectorWatch::new(Arc::clone(&supervisor), Arc::clone(&connectors))
        });
        let ui = crate::api::ui::Dashboard::start(Arc::clone(&supervisor));
        Self {
            supervisor,
            connectors,
            auth,
            watch,
            ui,
        }
    }
}

/// The department's authenticator, with session tokens signed by the key in its state folder.
/// A key that cannot be read leaves sessions off (logins answer 503 saying so) rather than
/// stopping the department: API keys and tokens keep working.
fn authenticator(department: &crate::model::Department) -> Authenticator {
    let auth = Authenticator::new(department.auth.clone());
    match crate::session::SessionSigner::load_or_create(
        &department.supervisor.state_dir,
        &department.id,
        department.auth.session_lifetime,
    ) {
        Ok(signer) => auth.with_sessions(signer),
        Err(e) => {
            tracing::error!(error = %e, code = e.code(), "Session tokens are off: the signing key cannot be used.");
            auth
        }
    }
}

/// The full router of the supervisor.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .merge(routes::router())
        .merge(apache::internal_router())
        .merge(metrics::router())
        .merge(migrate::router())
        .merge(observe::router())
        .merge(crate::api::ui::router())
        .merge(cloud::router())
        .merge(logs_v1::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(names::refuse_unaddressable))
        .layer(axum::middleware::from_fn(error::shape_plain_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::observe,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .with_state(state)
}

/// Any path no route serves: 404 in the path's error shape. A Connect route with a trailing
/// slash (`/connectors/`, `/connectors/{name}/status/`), which Connect itself answers, is served
/// as the route without it (Connect clients' `exists()` checks send them).
async fn unknown_route(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') && error::is_apache_path(path) {
        let trimmed = path.trim_end_matches('/');
        let target = match request.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = target.parse::<axum::http::Uri>() {
            let (mut parts, body) = request.into_parts();
            parts.uri = uri;
            return match router(state)
                .oneshot(axum::extract::Request::from_parts(parts, body))
                .await
            {
                Ok(response) => response,
                Err(never) => match never {},
            };
        }
    }
    not_found(request.uri()).into_response()
}

fn not_found(uri: &axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!(
        "no route {}; the managed API is under /connect/v1/environments/{{environment_id}}/clusters/{{kafka_cluster_id}}, \
         Connect's under /connectors and /connector-plugins",
        uri.path()
    ))
    .shaped(error::shape_for_path(uri.path()))
}

/// A known path with a method it does not serve: 405 in the path's error shape (axum adds the
/// `Allow` header).
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see the Allow header for the methods it serves",
            uri.path()
        ),
    )
    .shaped(error::shape_for_path(uri.path()))
}

/// `GET /healthz`: the event loop answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /`: what this supervisor is and runs. Starts with Kafka Connect's `ServerInfo` fields
/// (`version`, `commit`, `kafka_cluster_id` of the real Kafka cluster, from a worker) so Connect
/// tools such as kcctl accept the supervisor as a Connect cluster. Worker internals (command
/// lines, cgroup paths, pids, addresses) are for admins; other roles see each pool's name and
/// worker counts.
async fn root(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
) -> Json<serde_json::Value> {
    let department = state.supervisor.department();
    let info = state.connectors.server_info().await;
    let pools = if principal.role == crate::auth::Role::Admin {
        serde_json::to_value(state.supervisor.status()).expect("pool status serialises")
    } else {
        state
            .supervisor
            .status()
            .into_iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "desired_workers": p.desired_workers,
                    "ready_workers": p.ready_workers,
                })
            })
            .collect()
    };
    Json(json!({
        "version": info.as_ref().map(|i| i.version.as_str()).unwrap_or("unknown"),
        "commit": info.as_ref().map(|i| i.commit.as_str()).unwrap_or("unknown"),
        "kafka_cluster_id": info.as_ref().map(|i| i.kafka_cluster_id.as_str()).unwrap_or("unknown"),
        "service": "connect-supervisor",
        "supervisor_version": env!("CARGO_PKG_VERSION"),
        "department": department.id,
        "environment_id": department.environment_id,
        "managed_kafka_cluster_id": department.kafka_cluster_id,
        "managed_api": format!(
            "/connect/v1/environments/{}/clusters/{}",
            department.environment_id, department.kafka_cluster_id
        ),
        "pools": pools,
    }))
}

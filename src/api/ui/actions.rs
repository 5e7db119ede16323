//! The dashboard's actions: restart, pause and resume a connector; (admins) a rolling restart
//! of a pool and clearing a held worker. Each is a confirmation page (GET) and the action (POST,
//! CSRF-checked).

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::{check_csrf, viewer_of};
use super::html::{self, Nav, Viewer, url_encode};
use super::pages;
use super::session::Session;
use super::{UiError, department, html_headers};
use crate::api::AppState;
use crate::api::routes::{Action, AdminAction, Entry, Need, entry};
use crate::auth::Principal;
use crate::connectors::LifecycleAction;
use crate::observe::ConnectorChange;

/// The dashboard's actions, for the API's route table: each a confirmation page (GET) and the
/// action (POST), audited like the API calls they stand for. Their roles are the dashboard's
/// own ([`super::required_role`]), the same as the table's.
pub fn routes() -> Vec<Entry> {
    let mut all = Vec::new();
    for action in ConnectorAction::ALL {
        let path = format!("/ui/connectors/{{name}}/{}", action.segment());
        all.push(entry(
            Method::GET,
            path.clone(),
            Need::Viewer,
            None,
            move |s: State<AppState>,
                  p: Path<String>,
                  e: Extension<Principal>,
                  x: Extension<Option<Session>>| {
                confirm_connector(s, p, e, x, action)
            },
        ));
        all.push(entry(
            Method::POST,
            path,
            Need::Operator,
            Some(Action::Connector(action.change())),
            move |s: State<AppState>,
                  p: Path<String>,
                  e: Extension<Principal>,
                  x: Extension<Option<Session>>,
                  body: Bytes| { act_on_connector(s, p, e, x, body, action) },
        ));
    }
    let admin = |a| Some(Action::Admin(a));
    all.extend([
        entry(
            Method::GET,
            "/ui/pools/{pool}/restart",
            Need::Viewer,
            None,
            confirm_pool_restart,
        ),
        entry(
            Method::POST,
            "/ui/pools/{pool}/restart",
            Need::Admin,
            admin(AdminAction::PoolRestarted),
            pool_restart,
        ),
        entry(
            Method::GET,
            "/ui/workers/{id}/clear",
            Need::Viewer,
            None,
            confirm_worker_clear,
        ),
        entry(
            Method::POST,
            "/ui/workers/{id}/clear",
            Need::Admin,
            admin(AdminAction::WorkerCleared),
            worker_clear,
        ),
    ]);
    all
}

/// An action on a connector from the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorAction {
    /// The connector and its tasks.
    Restart,
    /// Only the failed instances.
    RestartFailed,
    /// Pause.
    Pause,
    /// Resume.
    Resume,
}

impl ConnectorAction {
    /// Every action.
    pub const ALL: [ConnectorAction; 4] = [
        Self::Restart,
        Self::RestartFailed,
        Self::Pause,
        Self::Resume,
    ];

    /// Its path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::RestartFailed => "restart-failed",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }

    /// The connector change it is, in the events' and audit's vocabulary.
    pub fn change(self) -> ConnectorChange {
        match self {
            Self::Restart | Self::RestartFailed => ConnectorChange::Restarted,
            Self::Pause => ConnectorChange::Paused,
            Self::Resume => ConnectorChange::Resumed,
        }
    }

    fn lifecycle(self) -> LifecycleAction {
        match self {
            Self::Restart => LifecycleAction::Restart { only_failed: false },
            Self::RestartFailed => LifecycleAction::Restart { only_failed: true },
            Self::Pause => LifecycleAction::Pause,
            Self::Resume => LifecycleAction::Resume,
        }
    }

    fn wording(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Restart => (
                "Restart",
                "The connector and all its tasks are restarted; work in flight is retried.",
                "Restart requested",
            ),
            Self::RestartFailed => (
                "Restart the failed tasks of",
                "Only the failed connector instance and failed tasks are restarted.",
                "Restart of the failed tasks requested",
            ),
            Self::Pause => (
                "Pause",
                "The connector and its tasks stop processing until it is resumed.",
                "Pause requested",
            ),
            Self::Resume => (
                "Resume",
                "The connector and its tasks start processing again.",
                "Resume requested",
            ),
        }
    }
}

async fn confirm_connector(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
    action: ConnectorAction,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    if !state.watch.knows(&name)
        && let Err(e) = state.connectors.info(&name).await
    {
        return UiError::from(e).page(&department(&state), Some(&viewer));
    }
    let (verb, detail, _) = action.wording();
    let back = format!("/ui/connectors/{}", url_encode(&name));
    let body = pages::confirm(
        &viewer,
        &format!("{verb} {name}?"),
        detail,
        &format!("{back}/{}", action.segment()),
        &format!("Yes, {}", verb.to_lowercase()),
        &back,
    );
    confirmation(&state, &viewer, Nav::Connectors, &body)
}

/// The confirmation step of an action: 200 with the page `body` (a form posting the action).
fn confirmation(state: &AppState, viewer: &Viewer, nav: Nav, body: &str) -> Response {
    (
        StatusCode::OK,
        html_headers(),
        html::page("Confirm", &department(state), Some(viewer), nav, body),
    )
        .into_response()
}

/// A done action: 202 with a page saying what was asked and linking back (the telemetry layer
/// audits and announces 2xx answers).
fn accepted(state: &AppState, viewer: &Viewer, title: &str, text: &str, back: &str) -> Response {
    let body = pages::message(title, text, Some((back, "Back")));
    (
        StatusCode::ACCEPTED,
        html_headers(),
        html::page(title, &department(state), Some(viewer), Nav::None, &body),
    )
        .into_response()
}

async fn act_on_connector(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
    body: Bytes,
    action: ConnectorAction,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let form = String::from_utf8_lossy(&body);
    if let Err(e) = check_csrf(session.as_ref(), Some(form.as_ref())) {
        tracing::info!(principal = %principal.name, code = e.code(), "Dashboard action refused.");
        return e.page(&department(&state), Some(&viewer));
    }
    match state
        .connectors
        .lifecycle(&name, action.lifecycle(), &principal.name)
        .await
    {
        Ok(()) => {
            let (_, _, done) = action.wording();
            let back = format!("/ui/connectors/{}", url_encode(&name));
            accepted(
                &state,
                &viewer,
                done,
                &format!(
                    "{done} for {name}. Its state on the connector page follows within seconds."
                ),
                &back,
            )
        }
        Err(e) => UiError::from(e).page(&department(&state), Some(&viewer)),
    }
}

async fn confirm_pool_restart(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    if !state.supervisor.status().iter().any(|p| p.name == pool) {
        return UiError::NotFound(format!("pool \"{pool}\" does not exist in this department"))
            .page(&department(&state), Some(&viewer));
    }
    let body = pages::confirm(
        &viewer,
        &format!("Rolling restart of pool {pool}?"),
        "Each worker is restarted in turn, the next only once the previous one is ready again; its connectors move to the other workers meanwhile.",
        &format!("/ui/pools/{}/restart", url_encode(&pool)),
        "Yes, restart the pool",
        "/ui/",
    );
    confirmation(&state, &viewer, Nav::Overview, &body)
}

async fn pool_restart(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
    body: Bytes,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let form = String::from_utf8_lossy(&body);
    if let Err(e) = check_csrf(session.as_ref(), Some(form.as_ref())) {
        return e.page(&department(&state), Some(&viewer));
    }
    match state.supervisor.restart_pool(&pool) {
        Ok(_) => accepted(
            &state,
            &viewer,
            "Rolling restart started",
            &format!("Rolling restart of pool {pool} started; the overview shows its progress."),
            "/ui/",
        ),
        Err(e) => UiError::from(e).page(&department(&state), Some(&viewer)),
    }
}

async fn confirm_worker_clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    if state.supervisor.worker(&id).is_none() {
        return UiError::NotFound(format!("worker \"{id}\" does not exist in this department"))
            .page(&department(&state), Some(&viewer));
    }
    let body = pages::confirm(
        &viewer,
        &format!("Clear the hold of worker {id}?"),
        "The worker was held after failing too often; clearing starts it again with a fresh failure budget.",
        &format!("/ui/workers/{}/clear", url_encode(&id)),
        "Yes, clear and start it",
        "/ui/",
    );
    confirmation(&state, &viewer, Nav::Overview, &body)
}

async fn worker_clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
    body: Bytes,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let form = String::from_utf8_lossy(&body);
    if let Err(e) = check_csrf(session.as_ref(), Some(form.as_ref())) {
        return e.page(&department(&state), Some(&viewer));
    }
    match state.supervisor.clear_worker(&id) {
        Ok(()) => accepted(
            &state,
            &viewer,
            "Hold cleared",
            &format!("Worker {id} is starting again."),
            "/ui/",
        ),
        Err(e) => UiError::from(e).page(&department(&state), Some(&viewer)),
    }
}

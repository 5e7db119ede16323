//! The department's health dashboard: server-rendered HTML pages under `/ui/`, served by the
//! supervisor itself with its assets embedded in the binary.
//!
//! * Sign-in with an API key and secret gives a session cookie ([`session`]); every form carries
//!   the session's CSRF token, checked before any action.
//! * Pages read completely without JavaScript; the embedded script only refreshes the block
//!   marked `id="live"` by asking the same URL with [`FRAGMENT_HEADER`].
//! * Data comes in-process from the connector watch, the supervisor, the gateway and the
//!   observer, never through the JSON API with the user's key.
//! * Actions (restart, pause, resume; admin: clear a held worker, rolling restart) are POSTs to
//!   routes the API's telemetry layer audits like the API's own calls.
//!
//! Browsers asking for `/` (HTML first in `Accept`, no `Authorization`) are sent to `/ui/`; API
//! clients keep getting JSON. The session cookie is accepted under `/ui/` only, so Basic and
//! Bearer access to the API is unchanged and a session can never call the JSON API.

mod access;
mod actions;
pub mod history;
pub mod html;
pub mod pages;
pub mod session;
pub mod table;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::connectors::ConnectorsError;
use crate::model::LogLevel;
use crate::observe::logs::Query;
use crate::translate::query_param;
use history::History;
use html::{Nav, Viewer};
use session::{Session, Sessions};
use table::TableQuery;

pub use access::{authorize, handles, prefers_html, required_role};
use access::{login, login_form, logout, viewer_of};
pub use actions::{ConnectorAction, routes as action_routes};

/// Path prefix of the dashboard.
pub const UI_PREFIX: &str = "/ui";
/// The dashboard's first page (the overview).
pub const DASHBOARD_PATH: &str = "/ui/";
/// The sign-in page.
pub const LOGIN_PATH: &str = "/ui/login";
/// Sign-out.
pub const LOGOUT_PATH: &str = "/ui/logout";
/// Header the script sends to get only the refreshed block of a page.
pub const FRAGMENT_HEADER: &str = "x-dashboard-fragment";
/// Header a TLS-terminating proxy sets to `https`: the session cookie then gets `Secure`.
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
/// Events shown on a connector page.
pub const CONNECTOR_EVENTS: usize = 20;
/// Log lines shown on a connector page.
pub const CONNECTOR_LOG_LINES: usize = 200;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// Why a dashboard request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UiError {
    /// A form without the session's CSRF token.
    #[error(
        "this form was not sent by a page of this dashboard in your session (its CSRF token is missing or wrong); reload the page and try again"
    )]
    Csrf,
    /// The role is not enough.
    #[error("{principal} has role {role}; this needs role {needed}")]
    Forbidden {
        /// Who asked.
        principal: String,
        /// Their role.
        role: Role,
        /// The role needed.
        needed: Role,
    },
    /// Not signed in (a fragment or a form; pages redirect to the sign-in form instead).
    #[error("you are not signed in, or your session ended; sign in again at /ui/login")]
    NotSignedIn,
    /// Unknown connector, pool or worker.
    #[error("{0}")]
    NotFound(String),
    /// The action failed.
    #[error("{message}")]
    Action {
        /// HTTP status.
        status: u16,
        /// What went wrong.
        message: String,
    },
}

impl UiError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Csrf => "ui_csrf",
            Self::Forbidden { .. } => "ui_forbidden",
            Self::NotSignedIn => "ui_not_signed_in",
            Self::NotFound(_) => "ui_not_found",
            Self::Action { .. } => "ui_action_failed",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Csrf | Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotSignedIn => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Action { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Csrf => "Refused: stale or forged form",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotSignedIn => "Not signed in",
            Self::NotFound(_) => "Not found",
            Self::Action { .. } => "The action failed",
        }
    }

    fn page(&self, department: &str, viewer: Option<&Viewer>) -> Response {
        let body = pages::message(
            self.title(),
            &self.to_string(),
            Some(("/ui/", "Back to the overview")),
        );
        let mut response = (
            self.status(),
            html_headers(),
            html::page(self.title(), department, viewer, Nav::None, &body),
        )
            .into_response();
        response.extensions_mut().insert(self.code());
        response
    }
}

impl From<crate::supervisor::AdminError> for UiError {
    fn from(e: crate::supervisor::AdminError) -> Self {
        Self::Action {
            status: crate::api::error::admin_status(&e),
            message: e.to_string(),
        }
    }
}

impl From<ConnectorsError> for UiError {
    fn from(e: ConnectorsError) -> Self {
        match e {
            ConnectorsError::NotFound { .. } => Self::NotFound(e.to_string()),
            e => Self::Action {
                status: crate::api::error::connectors_status(&e),
                message: e.to_string(),
            },
        }
    }
}

/// The dashboard's state: sessions and the usage history.
#[derive(Debug)]
pub struct Dashboard {
    /// Signed-in sessions.
    pub sessions: Sessions,
    /// The workers' last hour.
    pub history: Arc<History>,
}

impl Dashboard {
    /// The dashboard of `supervisor`, its history recorder started (needs a tokio runtime).
    pub fn start(supervisor: Arc<crate::supervisor::Supervisor>) -> Arc<Self> {
        let history = Arc::new(History::new());
        history.start(supervisor);
        Arc::new(Self {
            sessions: Sessions::new(),
            history,
        })
    }
}

fn html_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::VARY,
            HeaderValue::from_static("x-dashboard-fragment, cookie"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            // Scripts and styles from this server only; no framing (clickjacking of the buttons).
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            ),
        ),
    ]
}

/// The routes of the dashboard's pages (its actions are in the API's route table:
/// [`action_routes`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/", get(overview))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route(LOGIN_PATH, get(login_form).post(login))
        .route(LOGOUT_PATH, axum::routing::post(logout))
        .route("/ui/connectors", get(connectors))
        .route("/ui/connectors/{name}", get(connector))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
        .into_response()
}

fn department(state: &AppState) -> String {
    state.supervisor.department().id.clone()
}

/// A page, or only its refreshed block when the script asks for it.
fn respond(
    state: &AppState,
    headers: &HeaderMap,
    viewer: &Viewer,
    title: &str,
    nav: Nav,
    head: &str,
    live: &str,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let live = html::live(now, live);
    if headers.contains_key(FRAGMENT_HEADER) {
        let mut r = (StatusCode::OK, html_headers(), live).into_response();
        r.headers_mut()
            .insert(FRAGMENT_HEADER, HeaderValue::from_static("live"));
        return r;
    }
    let body = format!("{head}\n{live}\n");
    (
        StatusCode::OK,
        html_headers(),
        html::page(title, &department(state), Some(viewer), nav, &body),
    )
        .into_response()
}

// ----- pages -----

async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let summary = state.watch.summary(principal.role);
    let pools = state.supervisor.status();
    let history = Arc::clone(&state.ui.history);
    let live = pages::overview(
        &viewer,
        &summary,
        &pools,
        &|w| history.points(w),
        OffsetDateTime::now_utc(),
    );
    respond(
        &state,
        &headers,
        &viewer,
        "Overview",
        Nav::Overview,
        "<h1>Overview</h1>",
        &live,
    )
}

async fn connectors(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let (q, problems) = TableQuery::parse(query.as_deref());
    let summary = state.watch.summary(principal.role);
    let live = pages::connectors_live(
        &summary.connectors,
        &q,
        &problems,
        OffsetDateTime::now_utc(),
    );
    let head = pages::connectors_head(&q);
    respond(
        &state,
        &headers,
        &viewer,
        "Connectors",
        Nav::Connectors,
        &head,
        &live,
    )
}

async fn connector(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    Extension(principal): Extension<Principal>,
    Extension(session): Extension<Option<Session>>,
) -> Response {
    let viewer = viewer_of(&principal, session.as_ref());
    let g = &state.connectors;
    let (status, info, offsets) = tokio::join!(
        g.managed_status(&name),
        g.managed_info(&name),
        g.offsets(&name)
    );
    if let Err(ConnectorsError::NotFound { .. }) = &info {
        let e = UiError::NotFound(format!(
            "connector \"{name}\" does not exist in this department"
        ));
        return e.page(&department(&state), Some(&viewer));
    }
    let q = query.as_deref();
    let log_level = query_param(q, "level").and_then(|l| LogLevel::parse(&l));
    let log_text = query_param(q, "q").unwrap_or_default();
    let observer = state.supervisor.observer();
    // The same scoping as the logs API: operators and admins read a connector's log.
    let logs = (principal.role >= Role::Operator).then(|| {
        let query = Query {
            min_level: log_level.unwrap_or(LogLevel::Trace),
            limit: crate::observe::logs::ring::MAX_LIMIT,
            ..Query::default()
        };
        let needle = log_text.to_lowercase();
        let mut lines: Vec<_> = observer
            .logs()
            .connector_lines(&name, &query)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| pages::log_matches(l, &needle))
            .collect();
        let skip = lines.len().saturating_sub(CONNECTOR_LOG_LINES);
        lines.drain(..skip);
        lines
    });
    let mut events: Vec<_> = observer
        .events()
        .recent(crate::observe::EVENT_CAPACITY)
        .into_iter()
        .filter(|e| e.connector.as_deref() == Some(name.as_str()))
        .collect();
    events.reverse();
    events.truncate(CONNECTOR_EVENTS);
    let health = state
        .watch
        .summary(principal.role)
        .connectors
        .into_iter()
        .find(|c| c.name == name);
    let view = pages::ConnectorView {
        status: Some(status.map_err(|e| e.to_string())),
        info: Some(info.map_err(|e| e.to_string())),
        offsets: Some(offsets.map_err(|e| e.to_string())),
        health,
        events,
        logs,
        log_level,
        log_text,
    };
    let live = pages::connector_live(&viewer, &name, &view, OffsetDateTime::now_utc());
    respond(
        &state,
        &headers,
        &viewer,
        &name,
        Nav::Connectors,
        &pages::connector_head(&viewer, &name),
        &live,
    )
}

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

pub mod history;
pub mod html;
pub mod pages;
pub mod session;
pub mod table;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::connectors::{ConnectorsError, LifecycleAction};
use crate::model::LogLevel;
use crate::observe::logs::Query;
use crate::translate::query_param;
use history::History;
use html::{Nav, Viewer, url_encode};
use session::{
    CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, Sessions, cookie, expired_cookie,
    login_csrf_cookie, new_token, session_cookie, tokens_match,
};
use table::TableQuery;

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

/// Whether the client prefers HTML (a browser's `Accept` starts with `text/html`).
pub fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| {
            let t = first.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("text/html") || t.eq_ignore_ascii_case("application/xhtml+xml")
        })
}

/// Whether the dashboard's layer decides about this request: everything under `/ui`, and `GET /`
/// from a browser without credentials (sent on to the dashboard).
pub fn handles(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    path == UI_PREFIX
        || path.starts_with("/ui/")
        || (path == "/"
            && (method == Method::GET || method == Method::HEAD)
            && !headers.contains_key(header::AUTHORIZATION)
            && prefers_html(headers))
}

/// The least role a dashboard request needs (`None`: open, the sign-in form and assets). Pure.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    let path = path.trim_end_matches('/');
    if path == LOGIN_PATH || path.starts_with("/ui/assets/") {
        return None;
    }
    if method != Method::POST {
        return Some(Role::Viewer);
    }
    if path == LOGOUT_PATH {
        return Some(Role::Viewer);
    }
    if path.starts_with("/ui/pools/") || path.starts_with("/ui/workers/") {
        return Some(Role::Admin);
    }
    Some(Role::Operator)
}

/// The principal of a dashboard request and its session, from the session cookie (or, for API
/// clients that look at pages, an `Authorization` header).
fn identify(state: &AppState, headers: &HeaderMap) -> Option<(Principal, Option<Session>)> {
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        return state
            .auth
            .authenticate(h.to_str().ok())
            .ok()
            .map(|p| (p, None));
    }
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookie(cookies, SESSION_COOKIE)?;
    let s = state.ui.sessions.lookup(state.auth.settings(), id)?;
    Some((s.principal(), Some(s)))
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/ui/")),
        )],
    )
        .into_response()
}

/// The dashboard's authentication and authorisation, called by the API's access layer for the
/// requests [`handles`] claims. Attaches the principal (and session) to the request, and the
/// principal to the response for the audit trail.
pub async fn authorize(state: AppState, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if path == "/" || path == UI_PREFIX {
        return redirect("/ui/");
    }
    let department = state.supervisor.department().id.clone();
    let needed = required_role(&method, &path);
    let who = identify(&state, request.headers());
    let Some(needed) = needed else {
        if let Some((p, s)) = who {
            request.extensions_mut().insert(p);
            request.extensions_mut().insert(s);
        }
        return next.run(request).await;
    };
    let Some((principal, session)) = who else {
        tracing::info!(method = %method, path = %path, "Dashboard request without a session.");
        if method == Method::GET && !request.headers().contains_key(FRAGMENT_HEADER) {
            return redirect(LOGIN_PATH);
        }
        return UiError::NotSignedIn.page(&department, None);
    };
    if principal.role < needed {
        tracing::info!(principal = %principal.name, method = %method, path = %path, code = "ui_forbidden", "Dashboard request forbidden.");
        let viewer = viewer_of(&principal, session.as_ref());
        let mut response = UiError::Forbidden {
            principal: principal.name.clone(),
            role: principal.role,
            needed,
        }
        .page(&department, Some(&viewer));
        response.extensions_mut().insert(principal);
        return response;
    }
    request.extensions_mut().insert(principal.clone());
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    if method == Method::POST {
        tracing::info!(principal = %principal.name, method = %method, path = %path, status, "Dashboard request.");
    } else {
        tracing::debug!(principal = %principal.name, method = %method, path = %path, status, "Dashboard request.");
    }
    response.extensions_mut().insert(principal);
    response
}

fn viewer_of(principal: &Principal, session: Option<&Session>) -> Viewer {
    Viewer {
        name: principal.name.clone(),
        role: principal.role,
        csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
    }
}

/// The routes of the dashboard.
pub fn router() -> Router<AppState> {
    let mut r = Router::new()
        .route("/ui/", get(overview))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route(LOGIN_PATH, get(login_form).post(login))
        .route(LOGOUT_PATH, axum::routing::post(logout))
        .route("/ui/connectors", get(connectors))
        .route("/ui/connectors/{name}", get(connector));
    for action in ConnectorAction::ALL {
        let path = format!("/ui/connectors/{{name}}/{}", action.segment());
        r = r.route(
            &path,
            get(
                move |s: State<AppState>,
                      p: Path<String>,
                      e: Extension<Principal>,
                      x: Extension<Option<Session>>| {
                    confirm_connector(s, p, e, x, action)
                },
            )
            .post(
                move |s: State<AppState>,
                      p: Path<String>,
                      e: Extension<Principal>,
                      x: Extension<Option<Session>>,
                      body: Bytes| { act_on_connector(s, p, e, x, body, action) },
            ),
        );
    }
    r.route(
        "/ui/pools/{pool}/restart",
        get(confirm_pool_restart).post(pool_restart),
    )
    .route(
        "/ui/workers/{id}/clear",
        get(confirm_worker_clear).post(worker_clear),
    )
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

// ----- sign-in -----

async fn login_form(
    State(state): State<AppState>,
    session: Option<Extension<Option<Session>>>,
) -> Response {
    if session.is_some_and(|Extension(s)| s.is_some()) {
        return redirect("/ui/");
    }
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    let token = new_token();
    let body = pages::login(&token, error);
    let mut response = (
        status,
        html_headers(),
        html::page("Sign in", &department(state), None, Nav::None, &body),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&login_csrf_cookie(&token)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = String::from_utf8_lossy(&body);
    let form = Some(form.as_ref());
    let presented = query_param(form, CSRF_FIELD).unwrap_or_default();
    let expected = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie(c, LOGIN_CSRF_COOKIE))
        .unwrap_or("");
    if !tokens_match(expected, &presented) {
        tracing::info!(
            code = UiError::Csrf.code(),
            "Dashboard sign-in refused: no CSRF token."
        );
        return login_page(
            &state,
            Some("The sign-in form had expired or was not sent by this dashboard; sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let key = query_param(form, "key").unwrap_or_default();
    let secret = query_param(form, "secret").unwrap_or_default();
    let key = key.trim();
    match state.ui.sessions.sign_in(&state.auth, key, &secret) {
        Some((id, s)) => {
            tracing::info!(principal = %s.key_id, role = %s.role, "Dashboard sign-in.");
            let mut response = redirect("/ui/");
            let secure = headers
                .get(FORWARDED_PROTO)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
            for c in [
                session_cookie(&id, secure),
                expired_cookie(LOGIN_CSRF_COOKIE, LOGIN_PATH),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            response
        }
        None => {
            tracing::info!(
                code = "auth_invalid_key",
                "Dashboard sign-in refused: wrong key or secret."
            );
            login_page(
                &state,
                Some("Sign-in failed: the API key or secret is wrong."),
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(session): Extension<Option<Session>>,
    body: Bytes,
) -> Response {
    let form = String::from_utf8_lossy(&body);
    if let Err(e) = check_csrf(session.as_ref(), Some(form.as_ref())) {
        return e.page(&department(&state), None);
    }
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookie(c, SESSION_COOKIE))
    {
        state.ui.sessions.sign_out(id);
    }
    let mut response = redirect(LOGIN_PATH);
    if let Ok(v) = HeaderValue::from_str(&expired_cookie(SESSION_COOKIE, UI_PREFIX)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn check_csrf(session: Option<&Session>, form: Option<&str>) -> Result<(), UiError> {
    let presented = query_param(form, CSRF_FIELD).unwrap_or_default();
    match session {
        Some(s) if s.csrf_matches(&presented) => Ok(()),
        _ => Err(UiError::Csrf),
    }
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

// ----- actions -----

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
        Err(e) => UiError::Action {
            status: e.http_status(),
            message: e.to_string(),
        }
        .page(&department(&state), Some(&viewer)),
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
        Err(e) => UiError::Action {
            status: e.http_status(),
            message: e.to_string(),
        }
        .page(&department(&state), Some(&viewer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn browsers_asking_for_the_root_get_the_dashboard_and_api_clients_json() {
        let browser = headers(&[(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )]);
        assert!(handles(&Method::GET, "/", &browser));
        assert!(!handles(&Method::GET, "/", &headers(&[("accept", "*/*")])));
        assert!(!handles(&Method::GET, "/", &HeaderMap::new()));
        assert!(!handles(
            &Method::GET,
            "/",
            &headers(&[("accept", "application/json")])
        ));
        let with_key = headers(&[("accept", "text/html"), ("authorization", "Basic eDp5")]);
        assert!(
            !handles(&Method::GET, "/", &with_key),
            "credentials mean the API"
        );
        assert!(!handles(&Method::POST, "/", &browser));
        assert!(handles(&Method::GET, "/ui/connectors", &HeaderMap::new()));
        assert!(handles(&Method::GET, "/ui", &HeaderMap::new()));
        assert!(!handles(&Method::GET, "/uix", &HeaderMap::new()));
        assert!(!handles(&Method::GET, "/connectors", &browser));
    }

    #[test]
    fn dashboard_routes_need_the_documented_roles() {
        let cases = [
            (Method::GET, "/ui/login", None),
            (Method::POST, "/ui/login", None),
            (Method::GET, "/ui/assets/app.js", None),
            (Method::GET, "/ui/", Some(Role::Viewer)),
            (Method::GET, "/ui/connectors/x", Some(Role::Viewer)),
            (Method::GET, "/ui/connectors/x/restart", Some(Role::Viewer)),
            (Method::POST, "/ui/logout", Some(Role::Viewer)),
            (
                Method::POST,
                "/ui/connectors/x/restart",
                Some(Role::Operator),
            ),
            (Method::POST, "/ui/connectors/x/pause", Some(Role::Operator)),
            (
                Method::POST,
                "/ui/connectors/x/anything",
                Some(Role::Operator),
            ),
            (Method::POST, "/ui/pools/shared/restart", Some(Role::Admin)),
            (
                Method::POST,
                "/ui/workers/shared-0/clear",
                Some(Role::Admin),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(required_role(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn forms_need_the_sessions_token() {
        let auth = crate::auth::Authenticator::new(crate::auth::AuthSettings {
            configured: true,
            keys: vec![crate::auth::ApiKey {
                id: "K".into(),
                secret_sha256: crate::auth::digest("s"),
                role: Role::Operator,
            }],
            ..Default::default()
        });
        let (_, s) = Sessions::new().sign_in(&auth, "K", "s").unwrap();
        let good = format!("csrf={}", s.csrf);
        assert_eq!(check_csrf(Some(&s), Some(&good)), Ok(()));
        assert_eq!(check_csrf(Some(&s), Some("csrf=nope")), Err(UiError::Csrf));
        assert_eq!(check_csrf(Some(&s), Some("")), Err(UiError::Csrf));
        assert_eq!(check_csrf(None, Some(&good)), Err(UiError::Csrf));
        assert_eq!(UiError::Csrf.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn html_is_preferred_only_when_listed_first() {
        assert!(prefers_html(&headers(&[(
            "accept",
            "text/html;q=0.9, */*"
        )])));
        assert!(!prefers_html(&headers(&[(
            "accept",
            "application/json, text/html"
        )])));
    }
}

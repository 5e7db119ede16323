//! Who may see and do what on the dashboard: the browser check that sends `/` to it, the least
//! role of each dashboard request, the session (or `Authorization`) behind it, sign-in and
//! sign-out, and the CSRF check every form passes.

use axum::body::Bytes;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::html::{self, Nav, Viewer};
use super::pages;
use super::session::{
    CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, cookie, expired_cookie,
    login_csrf_cookie, new_token, session_cookie, tokens_match,
};
use super::{
    FORWARDED_PROTO, FRAGMENT_HEADER, LOGIN_PATH, LOGOUT_PATH, UI_PREFIX, UiError, department,
    html_headers,
};
use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::translate::query_param;

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

pub(super) fn redirect(to: &str) -> Response {
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

pub(super) fn viewer_of(principal: &Principal, session: Option<&Session>) -> Viewer {
    Viewer {
        name: principal.name.clone(),
        role: principal.role,
        csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
    }
}

pub(super) async fn login_form(
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

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(super) async fn logout(
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

pub(super) fn check_csrf(session: Option<&Session>, form: Option<&str>) -> Result<(), UiError> {
    let presented = query_param(form, CSRF_FIELD).unwrap_or_default();
    match session {
        Some(s) if s.csrf_matches(&presented) => Ok(()),
        _ => Err(UiError::Csrf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ui::session::Sessions;

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

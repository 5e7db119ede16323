//! The authentication and authorisation layer in front of every route, and the audit line of
//! every change.
//!
//! It runs around every route and the fallback, so unknown paths are covered too. The role a
//! request needs comes from the route table for the route axum matched ([`super::routes`]), and
//! from [`crate::auth`]'s rules by prefix for everything else; this layer only reads the header,
//! attaches the [`Principal`] to the request, and answers 401/403.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::auth::{Access, Principal, Scheme};

/// Authenticates the caller, checks its role against what the route needs, and attaches the
/// principal (key id or token name, never a secret) for handlers and the audit log.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The dashboard's pages (session cookie, HTML answers) decide for themselves.
    if crate::api::ui::handles(&method, &path, request.headers()) {
        return crate::api::ui::authorize(state, request, next).await;
    }
    let settings = state.auth.settings();
    let matched = request.extensions().get::<MatchedPath>();
    let access = super::routes::access(&method, matched, &path, settings);
    let header_value = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match (access, state.auth.authenticate(header_value)) {
        (Access::Open, Ok(p)) => p,
        (Access::Open, Err(_)) => Principal {
            name: "anonymous".into(),
            role: crate::auth::Role::Viewer,
            scheme: Scheme::Anonymous,
        },
        (Access::Role(needed), Ok(p)) => {
            if p.role < needed {
                let e = crate::auth::AuthError::Forbidden {
                    principal: p.name.clone(),
                    role: p.role,
                    needed,
                };
                tracing::info!(principal = %p.name, method = %method, path = %path, code = e.code(), "API request forbidden.");
                let mut response = ApiError::from_auth(&e, &path).into_response();
                // For the audit trail (the outer layer): who was refused.
                response.extensions_mut().insert(p);
                return response;
            }
            p
        }
        (Access::Role(_), Err(e)) => {
            tracing::info!(method = %method, path = %path, code = e.code(), "API request not authenticated.");
            return ApiError::from_auth(&e, &path).into_response();
        }
    };
    let name = principal.name.clone();
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    // For the audit trail (the outer layer): who made the change.
    response.extensions_mut().insert(principal);
    let status = response.status().as_u16();
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        tracing::debug!(principal = %name, method = %method, path = %path, status, "API request.");
    } else {
        tracing::info!(principal = %name, method = %method, path = %path, status, "API request.");
    }
    response
}

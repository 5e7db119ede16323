//! Error answers of the API, in the shape each route's clients parse, and the request body
//! reader that turns malformed or oversized bodies into such answers.
//!
//! Owns the wire shapes of errors only; deciding *which* error happened is the handlers' and
//! the gateway's job. Messages here are shown to callers: they must never hold a secret value.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{AuthError, REALM};
use crate::gateway::GatewayError;

/// Largest request body accepted (connector configs are a few KiB; offsets lists stay small).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which error body a route's clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error":{"code":..,"message":..}}`: the managed API's `connect.v1.ConnectorError`.
    Managed,
    /// `{"error_code":..,"message":..}`: Kafka Connect's own, also what the managed API declares
    /// for a 500 on create and PUT config and what it sends for a 404 on read.
    Connect,
    /// Both sets of fields: answers that must read as managed errors and still be understood
    /// by Connect tools (authentication failures on the Apache-compatible routes).
    Both,
}

/// Prefix of the managed API's paths (after an optional `/api`).
pub const MANAGED_PREFIX: &str = "/connect/v1/";

/// The shape of errors for requests to `path`.
pub fn shape_for_path(path: &str) -> Shape {
    if is_apache_path(path) {
        Shape::Connect
    } else {
        Shape::Managed
    }
}

/// Whether `path` is one of the Apache Connect-compatible routes.
pub fn is_apache_path(path: &str) -> bool {
    ["/connectors", "/connector-plugins", "/admin/loggers"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short, bounded code for logs and metrics.
    pub code: &'static str,
    /// What went wrong and how to fix it (no secrets).
    pub message: String,
    /// Body shape.
    pub shape: Shape,
    challenge: bool,
}

impl ApiError {
    /// An error with the managed shape.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            shape: Shape::Managed,
            challenge: false,
        }
    }

    /// The same error in another shape.
    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// 400 listing every problem.
    pub fn bad_request(problems: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            problems.join("; "),
        )
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// An authentication or authorisation failure: always carries the managed fields, plus
    /// Connect's on the Apache-compatible routes; 401 asks for Basic credentials.
    pub fn from_auth(e: &AuthError, path: &str) -> Self {
        let status = StatusCode::from_u16(e.status()).expect("401 or 403");
        let mut error = Self::new(status, e.code(), e.to_string());
        if is_apache_path(path) {
            error.shape = Shape::Both;
        }
        error.challenge = status == StatusCode::UNAUTHORIZED;
        error
    }

    /// The answer for a gateway failure, in `shape`.
    pub fn from_gateway(e: GatewayError, shape: Shape) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::new(status, e.code(), e.to_string()).shaped(shape)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let code = self.status.as_u16();
        match self.shape {
            Shape::Managed => json!({ "error": { "code": code, "message": self.message } }),
            Shape::Connect => json!({ "error_code": code, "message": self.message }),
            Shape::Both => json!({
                "error": { "code": code, "message": self.message },
                "error_code": code,
                "message": self.message,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, message = %self.message, "API request failed.");
        } else {
            tracing::debug!(
                status = self.status.as_u16(),
                code = self.code,
                "API request refused."
            );
        }
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&format!("Basic realm=\"{REALM}\""))
                    .expect("a valid header value"),
            );
        }
        response
    }
}

/// A JSON request body, read with the size limit. Malformed JSON is a 400 saying where it
/// breaks; a body over [`MAX_BODY_BYTES`] is a 413; both in the route's error shape. Any content
/// type is accepted (curl users forget the header; the body must be JSON all the same).
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let shape = shape_for_path(req.uri().path());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the request body is larger than the limit of {} KiB",
                    MAX_BODY_BYTES / 1024
                )
            } else {
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                )
            };
            ApiError::new(status, "bad_body", message).shaped(shape)
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "empty_body",
                "the request needs a JSON body",
            )
            .shaped(shape));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            // serde_json's syntax errors name the position, never the content.
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!(
                    "the request body is not valid JSON: {} at line {} column {}",
                    syntax_category(&e),
                    e.line(),
                    e.column()
                ),
            )
            .shaped(shape)
        })
    }
}

fn syntax_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_render_the_fields_each_client_reads() {
        let e = ApiError::not_found("connector x not found");
        assert_eq!(
            e.body(),
            json!({"error": {"code": 404, "message": "connector x not found"}})
        );
        let e = e.shaped(Shape::Connect);
        assert_eq!(
            e.body(),
            json!({"error_code": 404, "message": "connector x not found"})
        );
        let both = ApiError::from_auth(&AuthError::InvalidKey, "/connectors").body();
        assert_eq!(both["error"]["code"], 401);
        assert_eq!(both["error_code"], 401);
        let managed = ApiError::from_auth(
            &AuthError::InvalidKey,
            "/connect/v1/environments/e/clusters/c/connectors",
        )
        .body();
        assert!(managed.get("error_code").is_none());
    }

    #[test]
    fn apache_paths_are_told_apart_from_managed_ones() {
        assert!(is_apache_path("/connectors"));
        assert!(is_apache_path("/connectors/x/status"));
        assert!(is_apache_path("/connector-plugins"));
        assert!(!is_apache_path("/connectorsx"));
        assert!(!is_apache_path(
            "/connect/v1/environments/e/clusters/c/connectors"
        ));
        assert!(!is_apache_path(
            "/api/connect/v1/environments/e/clusters/c/connectors"
        ));
        assert_eq!(shape_for_path("/v1/pools"), Shape::Managed);
    }
}

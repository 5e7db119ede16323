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
use crate::connectors::ConnectorsError;

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
    /// Whether the connection is closed after the answer (the rest of a body is not read).
    close: bool,
    /// A guardrails refusal's violations (`[{rule, key, message, hint}]`), listed in the body
    /// next to the message (`error.violations`, or `violations` in Connect's shape).
    violations: Option<Value>,
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
            close: false,
            violations: None,
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

    /// 408: the request body did not arrive within `timeout`; the connection is closed.
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        let mut error = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {:.1}s (supervisor.body_read_timeout); \
                 send the whole body at once",
                timeout.as_secs_f64()
            ),
        );
        error.close = true;
        error
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// An authentication or authorisation failure: always carries the managed fields, plus
    /// Connect's on the Apache-compatible routes; 401 asks for Basic credentials.
    pub fn from_auth(e: &AuthError, path: &str) -> Self {
        let status = StatusCode::from_u16(auth_status(e)).expect("401 or 403");
        let mut error = Self::new(status, e.code(), e.to_string());
        if is_apache_path(path) {
            error.shape = Shape::Both;
        }
        error.challenge = status == StatusCode::UNAUTHORIZED;
        error
    }

    /// The answer for a failure of the connectors component, in `shape`.
    pub fn from_connectors(e: ConnectorsError, shape: Shape) -> Self {
        let status = StatusCode::from_u16(connectors_status(&e))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let violations = match &e {
            ConnectorsError::Refused(refusal) if !refusal.violations.is_empty() => {
                Some(refusal.violations_json())
            }
            _ => None,
        };
        let mut error = Self::new(status, e.code(), e.to_string()).shaped(shape);
        error.violations = violations;
        error
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let code = self.status.as_u16();
        let mut body = match self.shape {
            Shape::Managed => json!({ "error": { "code": code, "message": self.message } }),
            Shape::Connect => json!({ "error_code": code, "message": self.message }),
            Shape::Both => json!({
                "error": { "code": code, "message": self.message },
                "error_code": code,
                "message": self.message,
            }),
        };
        if let Some(violations) = &self.violations {
            // Clients that know only `message` (Terraform, the CLI) still get every violation
            // in it; tools can read them one by one here.
            match self.shape {
                Shape::Managed => body["error"]["violations"] = violations.clone(),
                Shape::Connect => body["violations"] = violations.clone(),
                Shape::Both => {
                    body["error"]["violations"] = violations.clone();
                    body["violations"] = violations.clone();
                }
            }
        }
        body
    }
}

/// The HTTP status of an authentication (401) or authorisation (403) failure.
pub fn auth_status(e: &AuthError) -> u16 {
    match e {
        AuthError::Forbidden { .. } => 403,
        _ => 401,
    }
}

/// The HTTP status the admin API answers a refused worker or pool command with.
pub fn admin_status(e: &crate::supervisor::AdminError) -> u16 {
    use crate::supervisor::AdminError;
    match e {
        AdminError::UnknownPool(_) | AdminError::UnknownWorker(_) => 404,
        AdminError::InvalidCount { .. } | AdminError::OverBudget { .. } => 400,
        AdminError::NotHeld { .. }
        | AdminError::RolloutInProgress(_)
        | AdminError::OwnedByKubernetes { .. } => 409,
        AdminError::ShuttingDown => 503,
        AdminError::StateDir { .. } | AdminError::NoPort(_) => 500,
    }
}

/// The HTTP status a failure of the connectors component answers with (the API decides
/// statuses; the component only says what went wrong). Connect's own status passes through.
pub fn connectors_status(e: &ConnectorsError) -> u16 {
    use crate::offsets::OffsetsError;
    match e {
        ConnectorsError::NotFound { .. } | ConnectorsError::PluginNotFound { .. } => 404,
        ConnectorsError::Invalid(_) | ConnectorsError::Refused(_) => 400,
        ConnectorsError::Exists { .. } | ConnectorsError::Busy(_) => 409,
        ConnectorsError::NoWorker { .. } | ConnectorsError::Unreachable { .. } => 503,
        ConnectorsError::Connect { status, .. } => *status,
        ConnectorsError::BadAnswer(_)
        | ConnectorsError::State(OffsetsError::Io { .. })
        | ConnectorsError::SecretFile(_)
        | ConnectorsError::SecretFolder(_)
        | ConnectorsError::Ids(_) => 500,
        ConnectorsError::State(OffsetsError::InFlight { .. }) => 409,
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
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
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
        let timeout = super::serve::BodyReadTimeout::of(&req);
        let read = tokio::time::timeout(timeout, Bytes::from_request(req, state)).await;
        let Ok(read) = read else {
            return Err(ApiError::body_timeout(timeout).shaped(shape));
        };
        let bytes = read.map_err(|rejection| {
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

/// Largest non-JSON error body read back to be turned into the route's shape.
const MAX_PLAIN_ERROR: usize = 64 * 1024;

/// The layer that turns any error answer that is not JSON (an extractor's plain-text rejection,
/// e.g. a task id that is no number) into the route's error shape, keeping its status and
/// headers (`Allow`, `WWW-Authenticate`) and its text as the message: no client ever gets a
/// plain or HTML error body.
pub async fn shape_plain_errors(request: Request, next: axum::middleware::Next) -> Response {
    // The dashboard answers people: its error pages are HTML on purpose (a failed sign-in,
    // a refused action), read without JavaScript.
    if crate::api::ui::handles(request.method(), request.uri().path(), request.headers()) {
        return next.run(request).await;
    }
    let shape = shape_for_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_PLAIN_ERROR)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() || text.starts_with('<') {
        format!(
            "the request was refused: HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string()
    } else {
        text
    };
    let mut shaped = ApiError::new(status, "refused", message)
        .shaped(shape)
        .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
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
    fn connectors_failures_answer_their_status_and_connects_own_passes_through() {
        let cases = [
            (ConnectorsError::NotFound { name: "x".into() }, 404),
            (
                ConnectorsError::Invalid(vec!["name: is required".into()]),
                400,
            ),
            (
                ConnectorsError::Exists {
                    name: "x".into(),
                    pool: "shared".into(),
                },
                409,
            ),
            (ConnectorsError::Busy("offsets".into()), 409),
            (
                ConnectorsError::NoWorker {
                    pool: "shared".into(),
                },
                503,
            ),
            (
                ConnectorsError::Unreachable {
                    pool: "shared".into(),
                    message: "refused".into(),
                },
                503,
            ),
            (
                ConnectorsError::Connect {
                    status: 422,
                    message: "bad".into(),
                },
                422,
            ),
            (ConnectorsError::BadAnswer("html".into()), 500),
            (ConnectorsError::SecretFolder("spaces".into()), 500),
        ];
        for (e, status) in cases {
            assert_eq!(connectors_status(&e), status, "{e:?}");
            let answer = ApiError::from_connectors(e, Shape::Managed);
            assert_eq!(answer.status.as_u16(), status);
        }
        // A status Connect should never send still answers as an error.
        let odd = ApiError::from_connectors(
            ConnectorsError::Connect {
                status: 200,
                message: "?".into(),
            },
            Shape::Connect,
        );
        assert_eq!(odd.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

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
    fn refusals_list_their_violations_in_both_shapes() {
        use crate::connectors::admission::Refusal;
        use crate::policy::{RuleSource, Violation};
        let refusal = Refusal {
            connector: "dept1-x".into(),
            problems: vec![],
            violations: vec![Violation {
                rule: "naming.prefix".into(),
                key: Some("name".into()),
                message: "must start with dept1-".into(),
                hint: "rename it".into(),
                source: RuleSource::Builtin,
            }],
        };
        let e =
            ApiError::from_connectors(ConnectorsError::Refused(Box::new(refusal)), Shape::Managed);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "policy_violation");
        let body = e.body();
        assert_eq!(body["error"]["code"], 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("[naming.prefix] name: must start with dept1- (fix: rename it)")
        );
        assert_eq!(
            body["error"]["violations"],
            json!([{"rule": "naming.prefix", "key": "name", "message": "must start with dept1-", "hint": "rename it"}])
        );
        let connect = e.shaped(Shape::Connect).body();
        assert_eq!(connect["error_code"], 400);
        assert_eq!(connect["violations"][0]["rule"], "naming.prefix");
        let plain = ApiError::bad_request(&["x".into()]).body();
        assert!(plain["error"].get("violations").is_none());
    }

    #[tokio::test]
    async fn plain_text_rejections_get_the_route_shape() {
        use axum::Router;
        use axum::extract::Path;
        use axum::routing::get;
        use tower::ServiceExt;
        let app = Router::new()
            .route(
                "/connectors/{name}/tasks/{task}/status",
                get(|Path((_, _)): Path<(String, u32)>| async { "ok" }),
            )
            .route(
                "/connect/v1/x/{n}",
                get(|Path(_): Path<u32>| async { "ok" }),
            )
            .layer(axum::middleware::from_fn(shape_plain_errors));
        for (uri, managed) in [
            ("/connectors/c/tasks/abc/status", false),
            ("/connect/v1/x/y", true),
        ] {
            let response = app
                .clone()
                .oneshot(
                    Request::builder()
                        .uri(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&bytes).expect("JSON");
            let message = if managed {
                assert_eq!(body["error"]["code"], 400);
                body["error"]["message"].as_str().unwrap().to_string()
            } else {
                assert_eq!(body["error_code"], 400);
                body["message"].as_str().unwrap().to_string()
            };
            assert!(message.contains("Cannot parse"), "{message}");
        }
        let ok = app
            .oneshot(
                Request::builder()
                    .uri("/connect/v1/x/1")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
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

//! The slice of Confluent Cloud's control plane the Confluent CLI talks to before and around its
//! `connect` commands: the login (`POST /api/sessions`, an API key id as e-mail and its secret as
//! password, answered with a session JWT), `GET /api/login/realm`, `GET /api/me`, the Kafka
//! cluster lookup (`GET /api/cmk/v2/clusters[/{id}]`), environments (`GET
//! /api/org/v2/environments[/{id}]`), data-plane tokens for the logs search (`POST
//! .../api/access_tokens`) and the CLI's usage reports (`POST /api/cli/v1/usages`, discarded).
//!
//! The department is the CLI's whole world: one organization (named after the department), one
//! environment (`environment_id`), one Kafka cluster (`kafka_cluster_id`, bootstrap = the
//! department's Kafka). Other ids are 404 (`cmk/v2`, `org/v2` error shape: `errors[0].detail`,
//! which the CLI prints). Session tokens are issued and verified by [`crate::session`]; this
//! module never logs a token or a secret.

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, JsonBody};
use crate::auth::{Principal, Scheme};
use crate::translate::query_param;

/// The CLI's login.
pub const SESSIONS_PATH: &str = "/api/sessions";
/// The CLI's SSO/MFA realm lookup before a login.
pub const REALM_PATH: &str = "/api/login/realm";
/// Who the session is.
pub const ME_PATH: &str = "/api/me";
/// Kafka clusters (`cmk/v2`).
pub const CLUSTERS_PATH: &str = "/api/cmk/v2/clusters";
/// Environments (`org/v2`).
pub const ENVIRONMENTS_PATH: &str = "/api/org/v2/environments";
/// The CLI's usage reports.
pub const USAGES_PATH: &str = "/api/cli/v1/usages";
/// Data-plane tokens, as the CLI asks for them: the login URL (`.../confluent.cloud`) followed
/// by `/api/access_tokens`.
pub const ACCESS_TOKENS_PATHS: [&str; 2] =
    ["/api/access_tokens", "/confluent.cloud/api/access_tokens"];

type Result<T> = std::result::Result<T, ApiError>;

/// The routes.
pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route(SESSIONS_PATH, post(login))
        .route(REALM_PATH, get(realm))
        .route(ME_PATH, get(me))
        .route(CLUSTERS_PATH, get(clusters))
        .route(&format!("{CLUSTERS_PATH}/{{id}}"), get(cluster))
        .route(ENVIRONMENTS_PATH, get(environments))
        .route(&format!("{ENVIRONMENTS_PATH}/{{id}}"), get(environment))
        .route(USAGES_PATH, post(usages));
    for path in ACCESS_TOKENS_PATHS {
        router = router.route(path, post(access_token));
    }
    router
}

/// The department's organization as the CLI knows it: a numeric id, a resource id (in CRNs)
/// and a name. Derived from the department id, so they are stable across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Numeric id (`organization.id`, `user.organization_id`).
    pub id: u32,
    /// Resource id (a UUID-shaped string, as Confluent's).
    pub resource_id: String,
    /// Name: the department id.
    pub name: String,
}

fn digest_of(kind: &str, text: &str) -> [u8; 32] {
    Sha256::digest(format!("connect-supervisor {kind}\0{text}").as_bytes()).into()
}

/// A positive 31-bit number from `text` (the CLI's numeric ids are int32).
fn numeric_id(kind: &str, text: &str) -> u32 {
    let d = digest_of(kind, text);
    (u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff).max(1)
}

/// The organization of department `department`.
pub fn organization(department: &str) -> Organization {
    let h = hex::encode(&digest_of("organization", department)[..16]);
    Organization {
        id: numeric_id("organization", department),
        resource_id: format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ),
        name: department.to_string(),
    }
}

fn org_json(org: &Organization) -> Value {
    json!({ "id": org.id, "resource_id": org.resource_id, "name": org.name })
}

/// The CLI's user for API key `key_id`: the key id is the e-mail.
fn user_json(key_id: &str, org: &Organization) -> Value {
    json!({
        "id": numeric_id("user", key_id),
        "email": key_id,
        "first_name": key_id,
        "last_name": "",
        "resource_id": format!("u-{}", key_id.to_ascii_lowercase()),
        "organization_id": org.id,
    })
}

/// A `cmk/v2`/`org/v2` error: `{"errors":[{"status","code","detail"}]}` (the CLI prints
/// `errors[0].detail`), with the managed API's `error` object too for other clients.
fn v2_error(status: StatusCode, code: &'static str, detail: String) -> Response {
    (status, Json(v2_error_body(status, code, &detail))).into_response()
}

fn v2_error_body(status: StatusCode, code: &'static str, detail: &str) -> Value {
    json!({
        "errors": [{ "status": status.as_u16().to_string(), "code": code, "detail": detail }],
        "error": { "code": status.as_u16(), "message": detail },
    })
}

/// `POST /api/sessions` `{"email": <key id>, "password": <secret>}`: a session token for the
/// key, with the user and organization the CLI stores. Wrong credentials: 401.
async fn login(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<Response> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let (email, password) = (field("email"), field("password"));
    let refused = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_refused",
            message.to_string(),
        )
    };
    if email.is_empty() || password.is_empty() {
        // Refresh tokens are not issued (the CLI then logs in again with the credentials it
        // keeps), so a refresh-only body is refused like a wrong password.
        return Err(refused(
            "Unauthorized: log in with an API key: its id as email and its secret as password",
        ));
    }
    let Some(signer) = state.auth.sessions() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sessions_unavailable",
            "sessions are unavailable: the session signing key could not be loaded at start (see the supervisor's log)",
        ));
    };
    let key = match state.auth.verify_api_key(email, password) {
        Ok(key) => key,
        Err(e) => {
            tracing::info!(code = e.code(), "Session login refused.");
            return Err(refused("Unauthorized: invalid API key or secret"));
        }
    };
    let issued = signer.issue(key);
    tracing::info!(principal = %key.id, role = %key.role, expires_at = issued.expires_at, "Session issued.");
    let org = organization(&state.supervisor.department().id);
    Ok(Json(json!({
        "token": issued.token,
        "refresh_token": "",
        "user": user_json(&key.id, &org),
        "organization": org_json(&org),
    }))
    .into_response())
}

/// `GET /api/login/realm`: no SSO, no MFA (the CLI then asks for a password).
async fn realm() -> Json<Value> {
    Json(json!({ "is_sso": false, "realm": "", "mfa_required": false }))
}

/// `GET /api/me`: the caller, the organization, and the department's environment as the only
/// account (the CLI makes `accounts[0].id` its current environment).
async fn me(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    let department = state.supervisor.department();
    let org = organization(&department.id);
    Json(json!({
        "user": user_json(&principal.name, &org),
        "organization": org_json(&org),
        "accounts": [environment_json(department)],
    }))
}

fn environment_json(department: &crate::model::Department) -> Value {
    let org = organization(&department.id);
    json!({
        "api_version": "org/v2",
        "kind": "Environment",
        "id": department.environment_id,
        "name": department.id,
        "display_name": department.id,
        "organization_id": org.id,
        "metadata": {
            "self": format!("{ENVIRONMENTS_PATH}/{}", department.environment_id),
            "resource_name": format!(
                "crn://confluent.cloud/organization={}/environment={}",
                org.resource_id, department.environment_id
            ),
        },
        "stream_governance_config": { "package": "ESSENTIALS" },
    })
}

/// The department's Kafka cluster in the `cmk/v2` shape.
fn cluster_json(department: &crate::model::Department) -> Value {
    let org = organization(&department.id);
    let protocol = department
        .kafka
        .client
        .get("security.protocol")
        .map(String::as_str)
        .unwrap_or("PLAINTEXT");
    let environment_crn = format!(
        "crn://confluent.cloud/organization={}/environment={}",
        org.resource_id, department.environment_id
    );
    json!({
        "api_version": "cmk/v2",
        "kind": "Cluster",
        "id": department.kafka_cluster_id,
        "metadata": {
            "self": format!("{CLUSTERS_PATH}/{}", department.kafka_cluster_id),
            "resource_name": format!("{environment_crn}/cloud-cluster={}", department.kafka_cluster_id),
        },
        "spec": {
            "display_name": department.id,
            "availability": "SINGLE_ZONE",
            "cloud": crate::translate::SELF_MANAGED,
            "region": crate::translate::SELF_MANAGED,
            "config": { "kind": "Basic" },
            "kafka_bootstrap_endpoint": format!("{protocol}://{}", department.kafka.bootstrap_servers),
            "http_endpoint": "",
            "api_endpoint": "",
            "environment": {
                "id": department.environment_id,
                "related": format!("{ENVIRONMENTS_PATH}/{}", department.environment_id),
                "resource_name": environment_crn,
            },
        },
        "status": { "phase": "PROVISIONED" },
    })
}

/// The refusal of a `cmk/v2` call whose `environment` query parameter (the CLI always sends
/// it) is not the department's.
fn wrong_environment(
    department: &crate::model::Department,
    query: Option<&str>,
) -> Option<Response> {
    match query_param(query, "environment") {
        Some(env) if env != department.environment_id => Some(v2_error(
            StatusCode::FORBIDDEN,
            "environment_not_served",
            format!(
                "environment {env} is not served here; this supervisor serves environment {}",
                department.environment_id
            ),
        )),
        _ => None,
    }
}

/// `GET /api/cmk/v2/clusters/{id}?environment=`: the department's Kafka cluster.
async fn cluster(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let department = state.supervisor.department();
    if let Some(answer) = wrong_environment(department, query.as_deref()) {
        return answer;
    }
    if id != department.kafka_cluster_id {
        return v2_error(
            StatusCode::NOT_FOUND,
            "cluster_not_found",
            format!(
                "Kafka cluster {id} not found; this supervisor serves cluster {} in environment {}",
                department.kafka_cluster_id, department.environment_id
            ),
        );
    }
    Json(cluster_json(department)).into_response()
}

/// `GET /api/cmk/v2/clusters?environment=`: the one cluster.
async fn clusters(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let department = state.supervisor.department();
    if let Some(answer) = wrong_environment(department, query.as_deref()) {
        return answer;
    }
    Json(list_json(
        "cmk/v2",
        "ClusterList",
        CLUSTERS_PATH,
        cluster_json(department),
    ))
    .into_response()
}

fn list_json(api_version: &str, kind: &str, path: &str, item: Value) -> Value {
    json!({
        "api_version": api_version,
        "kind": kind,
        "metadata": { "first": path, "total_size": 1 },
        "data": [item],
    })
}

/// `GET /api/org/v2/environments`: the one environment.
async fn environments(State(state): State<AppState>) -> Json<Value> {
    Json(list_json(
        "org/v2",
        "EnvironmentList",
        ENVIRONMENTS_PATH,
        environment_json(state.supervisor.department()),
    ))
}

/// `GET /api/org/v2/environments/{id}`.
async fn environment(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let department = state.supervisor.department();
    if id != department.environment_id {
        return v2_error(
            StatusCode::NOT_FOUND,
            "environment_not_found",
            format!(
                "environment {id} not found; this supervisor serves environment {}",
                department.environment_id
            ),
        );
    }
    Json(environment_json(department)).into_response()
}

/// `POST /api/cli/v1/usages`: accepted and dropped (nothing about the CLI's use is kept).
async fn usages() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `POST .../api/access_tokens`: a data-plane token for the logs search, for the API key the
/// caller is (HTTP Basic, or a session token of it). It is a session token of the same key; a
/// session's never outlives the session it came from.
async fn access_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(signer) = state.auth.sessions() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sessions_unavailable",
            "tokens are unavailable: the session signing key could not be loaded at start (see the supervisor's log)",
        ));
    };
    let key = match principal.scheme {
        Scheme::ApiKey | Scheme::Session => state
            .auth
            .settings()
            .keys
            .iter()
            .find(|k| k.id == principal.name),
        Scheme::Token | Scheme::Anonymous => None,
    };
    let Some(key) = key else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "token_needs_api_key",
            "data-plane tokens are issued to API keys only: send the key with HTTP Basic, or log in with it (confluent login)",
        ));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut exp = now + signer.lifetime().as_secs() as i64;
    if principal.scheme == Scheme::Session {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        if let Ok((_, claims)) = signer.verify(bearer, &state.auth.settings().keys) {
            exp = exp.min(claims.exp);
        }
    }
    let issued = signer.issue_at(key, now, exp);
    Ok(Json(json!({ "token": issued.token })).into_response())
}

/// The login URL the Confluent CLI needs for a supervisor listening on `listen`: the CLI only
/// treats a URL that contains and ends with `confluent.cloud` as Confluent Cloud, so the path
/// `/confluent.cloud` is added (the server ignores it for every call but the data-plane token).
pub fn cli_login_url(listen: std::net::SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        listen.ip()
    };
    format!(
        "http://{}/confluent.cloud",
        std::net::SocketAddr::new(host, listen.port())
    )
}

/// The host name the CLI sends `confluent connect logs` to for a login at `login_url`
/// (`api.logging.<host>`, except `127.0.0.1:1024` and `localhost:1024`, which it keeps), and
/// whether that name needs a hosts-file line (or a DNS record / Ingress rule) to reach the
/// supervisor.
pub fn cli_logs_host(login_url: &str) -> (String, bool) {
    let authority = login_url
        .split_once("://")
        .map_or(login_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    if authority == "127.0.0.1:1024" || authority == "localhost:1024" {
        return (authority.to_string(), false);
    }
    let host = authority.strip_prefix("api.").unwrap_or(authority);
    (format!("api.logging.{host}"), true)
}

/// The banner lines of `dev` for the Confluent CLI: environment variables, login, the
/// environment and cluster to use, and the hosts-file line `connect logs` needs.
pub fn cli_banner(
    listen: std::net::SocketAddr,
    department: &crate::model::Department,
    key: (&str, &str),
) -> Vec<String> {
    let url = cli_login_url(listen);
    let (logs_host, needs_name) = cli_logs_host(&url);
    let mut lines = vec![
        format!(
            "export CONFLUENT_CLOUD_EMAIL={} CONFLUENT_CLOUD_PASSWORD={}",
            key.0, key.1
        ),
        format!("confluent login --url {url}"),
        format!(
            "confluent environment use {} && confluent kafka cluster use {}",
            department.environment_id, department.kafka_cluster_id
        ),
    ];
    if needs_name {
        // The name without its port, pointed at the address the login URL uses.
        let name = logs_host
            .rsplit_once(':')
            .map_or(logs_host.as_str(), |(h, _)| h);
        let ip = name.strip_prefix("api.logging.").unwrap_or("127.0.0.1");
        lines.push(format!(
            "for `confluent connect logs`: echo '{ip} {name}' | sudo tee -a /etc/hosts   (or run dev with --listen 127.0.0.1:1024)"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organization_is_stable_uuid_shaped_and_per_department() {
        let a = organization("dept1");
        assert_eq!(a, organization("dept1"));
        assert_ne!(a.resource_id, organization("dept2").resource_id);
        assert_eq!(a.resource_id.len(), 36);
        assert_eq!(a.resource_id.matches('-').count(), 4);
        assert!(a.id > 0 && a.id <= i32::MAX as u32);
        assert_eq!(a.name, "dept1");
    }

    #[test]
    fn the_cli_login_url_ends_with_confluent_cloud_and_names_the_logs_host() {
        let url = cli_login_url("0.0.0.0:8080".parse().unwrap());
        assert_eq!(url, "http://127.0.0.1:8080/confluent.cloud");
        assert_eq!(
            cli_logs_host(&url),
            ("api.logging.127.0.0.1:8080".to_string(), true)
        );
        assert_eq!(
            cli_logs_host("https://api.connect.dept1.example.com/confluent.cloud"),
            ("api.logging.connect.dept1.example.com".to_string(), true)
        );
        // The one host the CLI keeps as it is.
        let url = cli_login_url("127.0.0.1:1024".parse().unwrap());
        assert_eq!(cli_logs_host(&url), ("127.0.0.1:1024".to_string(), false));
    }

    #[test]
    fn v2_errors_carry_the_detail_the_cli_prints() {
        let body = v2_error_body(StatusCode::NOT_FOUND, "x", "cluster lkc-9 not found");
        assert_eq!(body["errors"][0]["detail"], "cluster lkc-9 not found");
        assert_eq!(body["errors"][0]["status"], "404");
        assert_eq!(body["error"]["code"], 404);
    }
}

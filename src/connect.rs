//! Typed client for the Apache Kafka Connect REST API of one worker (3.9 / 4.x).
//!
//! Shapes here are Connect's own; translating them to the managed API is `translate`'s job. A
//! worker forwards writes to its group's leader itself, so any worker of a pool can be asked.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The pause before the `attempt`-th resend (1-based) of a request Connect refused only because
/// its group is rebalancing: it grows, so a long rebalance is not hammered.
pub fn rebalance_pause(attempt: u32) -> Duration {
    Duration::from_millis(250 * u64::from(attempt))
}

/// Runs `call`, and runs it again, up to `retries` more times with a growing pause
/// ([`rebalance_pause`]), while it fails with an error `is_conflict` says is a rebalance conflict
/// (Connect applied nothing, so resending is safe). The crate's one rebalance retry loop: a
/// single worker's client ([`ConnectClient::retrying_rebalances`]) and the connectors
/// component's calls to a pool of workers both go through it.
pub async fn resend_on_rebalance<T, E, F, Fut>(
    retries: u32,
    is_conflict: impl Fn(&E) -> bool,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < retries && is_conflict(&e) => {
                attempt += 1;
                tokio::time::sleep(rebalance_pause(attempt)).await;
            }
            result => return result,
        }
    }
}

/// Default timeout of one request to a worker. Connect's own request timeout is 90 s; a call that
/// takes longer than this is reported instead of blocking the API.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The worker could not be reached (connection refused, timeout...).
    #[error("Connect worker at {url} is unreachable: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },
    /// The worker answered with an error (`{"error_code", "message"}`).
    #[error("Connect answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Connect's message.
        message: String,
    },
    /// The worker answered with a body this client cannot read.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl ConnectError {
    /// Short, bounded code for metrics and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "connect_unreachable",
            Self::Api { .. } => "connect_api_error",
            Self::Decode { .. } => "connect_bad_answer",
        }
    }

    /// The HTTP status Connect answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Connect refused a request only because its group is rebalancing: a 409 other than
    /// "already exists", or the 500 "a rebalance is expected" some reads answer meanwhile.
    /// Nothing was applied, so the request may be sent again.
    pub fn is_rebalance_conflict(&self) -> bool {
        match self {
            Self::Api {
                status: 409,
                message,
            } => !message.contains("already exists"),
            Self::Api {
                status: 500,
                message,
            } => message.contains("rebalance"),
            _ => false,
        }
    }

    /// Whether Connect said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// `GET /`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ServerInfo {
    /// Kafka version of the worker.
    pub version: String,
    /// Git commit of the build.
    pub commit: String,
    /// Id of the Kafka cluster the worker is connected to.
    pub kafka_cluster_id: String,
}

/// `{connector, task}` pair.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TaskId {
    /// Connector name.
    pub connector: String,
    /// Task number.
    pub task: u32,
}

/// `ConnectorInfo`: name, config, tasks and type.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConnectorInfo {
    /// Connector name.
    pub name: String,
    /// Connector config (string values).
    pub config: BTreeMap<String, String>,
    /// Tasks.
    #[serde(default)]
    pub tasks: Vec<TaskId>,
    /// `source`, `sink` or `unknown`.
    #[serde(rename = "type", default)]
    pub connector_type: Option<String>,
}

/// State of a connector instance or of a task.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct InstanceState {
    /// `UNASSIGNED`, `RUNNING`, `PAUSED`, `FAILED`, `RESTARTING`, `STOPPED`.
    pub state: String,
    /// `host:port` of the worker running it.
    #[serde(default)]
    pub worker_id: String,
    /// Stack trace of the failure, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Version of the plugin running it (Connect 4.1+, KIP-891).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// State of one task.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TaskState {
    /// Task number.
    pub id: u32,
    /// State and placement.
    #[serde(flatten)]
    pub state: InstanceState,
}

/// `ConnectorStateInfo`: `GET /connectors/{name}/status`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    /// The connector instance.
    pub connector: InstanceState,
    /// Its tasks.
    #[serde(default)]
    pub tasks: Vec<TaskState>,
    /// `source`, `sink` or `unknown`.
    #[serde(rename = "type", default)]
    pub connector_type: Option<String>,
}

/// One entry of `GET /connector-plugins`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PluginInfo {
    /// Fully qualified class name.
    #[serde(rename = "class")]
    pub class_name: String,
    /// `source`, `sink`, `transformation`, ...
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// Plugin version, when defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One entry of `GET /connector-plugins/{class}/config` (`ConfigKeyInfo`); only the fields the
/// supervisor reads.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConfigKeyInfo {
    /// Config key.
    pub name: String,
    /// `STRING`, `PASSWORD`, `INT`, ...
    #[serde(rename = "type")]
    pub key_type: String,
}

/// One entry of `GET /connectors?expand=status&expand=info`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct Expanded {
    /// Status, when asked for.
    #[serde(default)]
    pub status: Option<ConnectorStatus>,
    /// Info, when asked for.
    #[serde(default)]
    pub info: Option<ConnectorInfo>,
}

/// A successful answer of any call, untyped, for the Apache-compatible pass-through.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body, when there is one.
    pub body: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
}

/// Client of one worker's REST API.
#[derive(Debug, Clone)]
pub struct ConnectClient {
    http: reqwest::Client,
    base: String,
    rebalance_retries: u32,
}

impl ConnectClient {
    /// A client of the worker at `base` (e.g. `http://127.0.0.1:18083`), sharing `http`'s
    /// connection pool.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
            rebalance_retries: 0,
        }
    }

    /// The same client, resending a request up to `retries` times (with a growing pause) when
    /// Connect refuses it only because its group is rebalancing.
    pub fn retrying_rebalances(mut self, retries: u32) -> Self {
        self.rebalance_retries = retries;
        self
    }

    /// Base URL of the worker.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A plain HTTP client suitable for workers on loopback.
    pub fn default_http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP client builds")
    }

    /// One HTTP exchange: error statuses become [`ConnectError::Api`] with Connect's message.
    /// Rebalance conflicts are retried when the client was built with
    /// [`ConnectClient::retrying_rebalances`] (Connect applied nothing, so resending is safe).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes, String), ConnectError> {
        let url = format!("{}{}", self.base, path);
        resend_on_rebalance(
            self.rebalance_retries,
            ConnectError::is_rebalance_conflict,
            || self.exchange_once(method.clone(), &url, body),
        )
        .await
        .map(|(status, bytes)| (status, bytes, url))
    }

    async fn exchange_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, bytes::Bytes), ConnectError> {
        let unreachable = |e: reqwest::Error| ConnectError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(ConnectError::Api {
                status: status.as_u16(),
                message: error_message(status, &bytes),
            });
        }
        Ok((status, bytes))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<T>, ConnectError> {
        let (status, bytes, url) = self.exchange(method, path, body).await?;
        if bytes.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ConnectError::Decode {
                url,
                message: e.to_string(),
            })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ConnectError> {
        self.call(Method::GET, path, None)
            .await?
            .ok_or_else(|| ConnectError::Decode {
                url: format!("{}{}", self.base, path),
                message: "empty body".into(),
            })
    }

    /// Any call: `path_and_query` is appended to the worker's base URL. Error statuses become
    /// [`ConnectError::Api`] with Connect's message.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ConnectError> {
        let (status, bytes, url) = self.exchange(method, path_and_query, body).await?;
        let body = if bytes.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice(&bytes).map_err(|e| ConnectError::Decode {
                    url,
                    message: e.to_string(),
                })?,
            )
        };
        Ok(Reply {
            status: status.as_u16(),
            body,
        })
    }

    /// `GET /connectors?expand=...`: every connector with its status and/or info, in one call.
    pub async fn connectors_expanded(
        &self,
        status: bool,
        info: bool,
    ) -> Result<BTreeMap<String, Expanded>, ConnectError> {
        let mut query = String::from("/connectors?");
        if status {
            query.push_str("expand=status&");
        }
        if info {
            query.push_str("expand=info");
        }
        self.get(query.trim_end_matches('&')).await
    }

    /// `POST /connectors` with an initial state (`RUNNING`, `PAUSED`, `STOPPED`; KIP-980).
    pub async fn create_connector_in_state(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
        initial_state: Option<&str>,
    ) -> Result<ConnectorInfo, ConnectError> {
        let mut body = serde_json::json!({ "name": name, "config": config });
        if let Some(state) = initial_state {
            body["initial_state"] = serde_json::Value::String(state.to_string());
        }
        self.call(Method::POST, "/connectors", Some(&body))
            .await?
            .ok_or_else(|| ConnectError::Decode {
                url: format!("{}/connectors", self.base),
                message: "empty body".into(),
            })
    }

    /// `GET /connectors/{name}/config`.
    pub async fn connector_config(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ConnectError> {
        self.get(&format!("/connectors/{}/config", encode(name)))
            .await
    }

    /// `PUT /connectors/{name}/config`: whether it was created, and the connector.
    pub async fn put_connector_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), ConnectError> {
        let path = format!("/connectors/{}/config", encode(name));
        let body = serde_json::to_value(config).expect("a string map serialises");
        let reply = self.send(Method::PUT, &path, Some(&body)).await?;
        let info = reply
            .body
            .ok_or_else(|| ConnectError::Decode {
                url: format!("{}{path}", self.base),
                message: "empty body".into(),
            })
            .and_then(|b| {
                serde_json::from_value(b).map_err(|e| ConnectError::Decode {
                    url: format!("{}{path}", self.base),
                    message: e.to_string(),
                })
            })?;
        Ok((reply.status == 201, info))
    }

    async fn lifecycle(
        &self,
        method: Method,
        name: &str,
        action: &str,
    ) -> Result<(), ConnectError> {
        self.send(
            method,
            &format!("/connectors/{}/{action}", encode(name)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `PUT /connectors/{name}/pause`.
    pub async fn pause(&self, name: &str) -> Result<(), ConnectError> {
        self.lifecycle(Method::PUT, name, "pause").await
    }

    /// `PUT /connectors/{name}/resume`.
    pub async fn resume(&self, name: &str) -> Result<(), ConnectError> {
        self.lifecycle(Method::PUT, name, "resume").await
    }

    /// `PUT /connectors/{name}/stop` (KIP-875).
    pub async fn stop(&self, name: &str) -> Result<(), ConnectError> {
        self.lifecycle(Method::PUT, name, "stop").await
    }

    /// `POST /connectors/{name}/restart?includeTasks=..&onlyFailed=..` (KIP-745).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), ConnectError> {
        self.send(
            Method::POST,
            &format!(
                "/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}",
                encode(name)
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `GET /connectors/{name}/tasks`: task ids and configs (not masked: callers mask).
    pub async fn task_configs(&self, name: &str) -> Result<serde_json::Value, ConnectError> {
        self.get(&format!("/connectors/{}/tasks", encode(name)))
            .await
    }

    /// `GET /connectors/{name}/offsets`: the `offsets` array.
    pub async fn offsets(&self, name: &str) -> Result<Vec<serde_json::Value>, ConnectError> {
        #[derive(Deserialize)]
        struct Offsets {
            #[serde(default)]
            offsets: Vec<serde_json::Value>,
        }
        let o: Offsets = self
            .get(&format!("/connectors/{}/offsets", encode(name)))
            .await?;
        Ok(o.offsets)
    }

    /// `PATCH /connectors/{name}/offsets` (the connector must be STOPPED): Connect's message.
    pub async fn alter_offsets(
        &self,
        name: &str,
        offsets: &[serde_json::Value],
    ) -> Result<String, ConnectError> {
        let body = serde_json::json!({ "offsets": offsets });
        let reply = self
            .send(
                Method::PATCH,
                &format!("/connectors/{}/offsets", encode(name)),
                Some(&body),
            )
            .await?;
        Ok(reply_message(reply))
    }

    /// `DELETE /connectors/{name}/offsets` (the connector must be STOPPED): Connect's message.
    pub async fn reset_offsets(&self, name: &str) -> Result<String, ConnectError> {
        let reply = self
            .send(
                Method::DELETE,
                &format!("/connectors/{}/offsets", encode(name)),
                None,
            )
            .await?;
        Ok(reply_message(reply))
    }

    /// `GET /connector-plugins/{class}/config`: the plugin's config keys and their types.
    pub async fn plugin_config(&self, class: &str) -> Result<Vec<ConfigKeyInfo>, ConnectError> {
        self.get(&format!("/connector-plugins/{}/config", encode(class)))
            .await
    }

    /// `PUT /connector-plugins/{plugin}/config/validate`: Connect's `ConfigInfos`, unmasked.
    pub async fn validate(
        &self,
        plugin: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<serde_json::Value, ConnectError> {
        let body = serde_json::to_value(config).expect("a string map serialises");
        let path = format!("/connector-plugins/{}/config/validate", encode(plugin));
        self.send(Method::PUT, &path, Some(&body))
            .await?
            .body
            .ok_or_else(|| ConnectError::Decode {
                url: format!("{}{path}", self.base),
                message: "empty body".into(),
            })
    }

    /// `GET /`: version and Kafka cluster id.
    pub async fn server_info(&self) -> Result<ServerInfo, ConnectError> {
        self.get("/").await
    }

    /// `GET /connectors`.
    pub async fn connectors(&self) -> Result<Vec<String>, ConnectError> {
        self.get("/connectors").await
    }

    /// `POST /connectors`.
    pub async fn create_connector(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<ConnectorInfo, ConnectError> {
        let body = serde_json::json!({ "name": name, "config": config });
        self.call(Method::POST, "/connectors", Some(&body))
            .await?
            .ok_or_else(|| ConnectError::Decode {
                url: format!("{}/connectors", self.base),
                message: "empty body".into(),
            })
    }

    /// `GET /connectors/{name}`.
    pub async fn connector(&self, name: &str) -> Result<ConnectorInfo, ConnectError> {
        self.get(&format!("/connectors/{}", encode(name))).await
    }

    /// `GET /connectors/{name}/status`.
    pub async fn connector_status(&self, name: &str) -> Result<ConnectorStatus, ConnectError> {
        self.get(&format!("/connectors/{}/status", encode(name)))
            .await
    }

    /// `DELETE /connectors/{name}`.
    pub async fn delete_connector(&self, name: &str) -> Result<(), ConnectError> {
        self.call::<serde_json::Value>(
            Method::DELETE,
            &format!("/connectors/{}", encode(name)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `GET /connector-plugins` (connectors only).
    pub async fn connector_plugins(&self) -> Result<Vec<PluginInfo>, ConnectError> {
        self.get("/connector-plugins").await
    }
}

fn reply_message(reply: Reply) -> String {
    reply
        .body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The message of an error answer: Connect's own `message`, or, when there is none (an empty
/// body, or the HTML page Jetty answers before Connect sees the request), a sentence naming
/// the status and Jetty's reason. Never the HTML itself: it reaches API clients.
pub fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(ErrorBody {
        message: Some(message),
    }) = serde_json::from_slice::<ErrorBody>(body)
        && !message.trim().is_empty()
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let reason = html_title(&text)
        .map(|t| {
            t.trim_start_matches("Error ")
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim()
                .to_string()
        })
        .filter(|t| !t.is_empty())
        .or_else(|| {
            let plain = text.trim();
            (!plain.is_empty() && !plain.starts_with('<') && !plain.starts_with('{'))
                .then(|| plain.chars().take(200).collect())
        });
    match reason {
        Some(reason) => format!(
            "the Connect worker refused the request with HTTP {}: {reason}",
            status.as_u16()
        ),
        None => format!(
            "the Connect worker answered HTTP {} {} without a message",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string(),
    }
}

fn html_title(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    text.get(start..end)
}

/// Percent-encodes a path segment (connector names may hold characters URLs reserve).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rebalance_refusals_count_as_conflicts_to_resend() {
        let api = |status, message: &str| ConnectError::Api {
            status,
            message: message.into(),
        };
        assert!(
            api(
                409,
                "Cannot complete request momentarily due to no known leader URL"
            )
            .is_rebalance_conflict()
        );
        assert!(
            api(
                500,
                "Request cannot be completed because a rebalance is expected"
            )
            .is_rebalance_conflict()
        );
        assert!(!api(409, "Connector c already exists").is_rebalance_conflict());
        assert!(!api(500, "Request timed out").is_rebalance_conflict());
        assert!(!api(404, "not found").is_rebalance_conflict());
    }

    #[test]
    fn error_answers_never_carry_html_or_an_empty_message() {
        let jetty = b"<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n<title>Error 400 Suspicious Path Character</title>\n</head>\n<body><h2>HTTP ERROR 400 Suspicious Path Character</h2></body></html>";
        let m = error_message(StatusCode::BAD_REQUEST, jetty);
        assert_eq!(
            m,
            "the Connect worker refused the request with HTTP 400: Suspicious Path Character"
        );
        let m = error_message(StatusCode::BAD_REQUEST, b"");
        assert_eq!(
            m,
            "the Connect worker answered HTTP 400 Bad Request without a message"
        );
        let m = error_message(StatusCode::NOT_FOUND, br#"{"error_code":404,"message":""}"#);
        assert!(m.contains("HTTP 404") && !m.contains('{'), "{m}");
        let m = error_message(
            StatusCode::CONFLICT,
            br#"{"error_code":409,"message":"Connector x already exists"}"#,
        );
        assert_eq!(m, "Connector x already exists");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("dept1-a.b_c~d"), "dept1-a.b_c~d");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn status_bodies_with_traces_decode() {
        let body = r#"{"name":"c","connector":{"state":"RUNNING","worker_id":"127.0.0.1:8083"},
            "tasks":[{"id":0,"state":"FAILED","worker_id":"127.0.0.1:8084","trace":"boom"}],"type":"sink"}"#;
        let status: ConnectorStatus = serde_json::from_str(body).unwrap();
        assert_eq!(status.tasks[0].state.state, "FAILED");
        assert_eq!(status.tasks[0].state.trace.as_deref(), Some("boom"));
        assert_eq!(status.connector_type.as_deref(), Some("sink"));
    }
}

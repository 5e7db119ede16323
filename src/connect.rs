//! Typed client for the Apache Kafka Connect REST API of one worker (3.9 / 4.x).
//!
//! Shapes here are Connect's own; translating them to the managed API is `translate`'s job. A
//! worker forwards writes to its group's leader itself, so any worker of a pool can be asked.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
}

impl ConnectClient {
    /// A client of the worker at `base` (e.g. `http://127.0.0.1:18083`), sharing `http`'s
    /// connection pool.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
        }
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

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<T>, ConnectError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ConnectError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .ok()
                .and_then(|b| b.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(500).collect());
            return Err(ConnectError::Api {
                status: status.as_u16(),
                message,
            });
        }
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

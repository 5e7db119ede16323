//! The migration's HTTP client of a department: the managed API on both ends (list, create with
//! offsets, status, offsets, delete, pause/resume, translate), and the two Connect-compatible
//! calls a supervisor serves beside it (KIP-875 stop, offsets when a source is a plain worker).
//!
//! Credentials are [`crate::remote::Credentials`] (the same flags and variables as
//! `validate --against`), the list goes through [`remote::baseline_from_expansions`], and no
//! error ever carries a credential or a config value.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::MigrateError;
use crate::remote::RunningConnector;
use crate::remote::{self, Credentials, MANAGED_SEGMENT};

/// How long one call may take.
pub const TIMEOUT: Duration = remote::TIMEOUT;
/// How long a call is sent again while the end is briefly unable to answer.
pub const RETRY_FOR: Duration = Duration::from_secs(60);
/// Pause between two such tries.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// One end of a migration: a supervisor (or Confluent Cloud) reached through its managed API.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Scheme, host and port (`http://cs:8083`).
    pub base: String,
    /// The managed prefix under it (`/connect/v1/environments/<env>/clusters/<cluster>`).
    pub prefix: String,
    /// Environment id.
    pub environment_id: String,
    /// Kafka cluster id.
    pub kafka_cluster_id: String,
    /// Whether it is a connect-supervisor (then it runs the same plugins and serves Connect's
    /// stop route and the source-side push).
    pub supervisor: bool,
    credentials: Credentials,
    http: reqwest::Client,
}

/// What a call answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Answer {
    /// The error message in the managed or Connect shape.
    pub fn message(&self) -> String {
        self.body
            .get("error")
            .and_then(|e| e.get("message"))
            .or_else(|| self.body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string()
    }
}

impl Endpoint {
    /// Resolves `url`: a managed prefix (`.../connect/v1/environments/<env>/clusters/<lkc>`) is
    /// taken as given; a supervisor's base URL is asked (`GET /`) for its managed prefix.
    pub async fn resolve(url: &str, credentials: Credentials) -> Result<Self, MigrateError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| MigrateError::Unreachable {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let url = url.trim_end_matches('/');
        let mut endpoint = Self {
            base: url.to_string(),
            prefix: String::new(),
            environment_id: String::new(),
            kafka_cluster_id: String::new(),
            supervisor: false,
            credentials,
            http,
        };
        // One try: a wrong URL is reported at once, not retried.
        let root = endpoint
            .call_once(Method::GET, &format!("{url}/"), None)
            .await;
        if let Err(e @ MigrateError::Unreachable { .. }) = root {
            return Err(e);
        }
        let info = root.ok().filter(|a| a.status == 200).map(|a| a.body);
        endpoint.supervisor = info
            .as_ref()
            .and_then(|b| b.get("service"))
            .and_then(Value::as_str)
            == Some("connect-supervisor");
        let prefix = if let Some(at) = url.find(MANAGED_SEGMENT) {
            endpoint.base = url[..at].trim_end_matches("/api").to_string();
            url[at..].to_string()
        } else {
            match info
                .as_ref()
                .and_then(|b| b.get("managed_api"))
                .and_then(Value::as_str)
            {
                Some(p) => p.to_string(),
                None => {
                    return Err(MigrateError::Usage(format!(
                        "{url} is not a connect-supervisor (GET / names no managed_api); give the managed prefix \
                         {url}/connect/v1/environments/<env>/clusters/<cluster>"
                    )));
                }
            }
        };
        let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["connect", "v1", "environments", env, "clusters", lkc] => {
                endpoint.environment_id = env.to_string();
                endpoint.kafka_cluster_id = lkc.to_string();
            }
            _ => {
                return Err(MigrateError::Usage(format!(
                    "{prefix} is not a managed prefix /connect/v1/environments/<env>/clusters/<cluster>"
                )));
            }
        }
        if !endpoint.supervisor && url.contains(MANAGED_SEGMENT) {
            // A managed prefix of a supervisor: ask its root all the same.
            let root = endpoint
                .call(Method::GET, &format!("{}/", endpoint.base), None)
                .await;
            endpoint.supervisor = root.ok().is_some_and(|a| {
                a.body.get("service").and_then(Value::as_str) == Some("connect-supervisor")
            });
        }
        endpoint.prefix = prefix;
        Ok(endpoint)
    }

    /// A plain Connect worker (no managed API): only the Connect routes are used.
    pub fn plain(url: &str, credentials: Credentials) -> Result<Self, MigrateError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| MigrateError::Unreachable {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            prefix: String::new(),
            environment_id: String::new(),
            kafka_cluster_id: String::new(),
            supervisor: false,
            credentials,
            http,
        })
    }

    /// The URL of `path` under the managed prefix.
    pub fn managed(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }

    /// The credentials (for the source-side push, which calls the target itself).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// One call; any status is an answer, only transport failures are errors. Calls other than
    /// POST are sent again for a while when the end is briefly unable to answer (503, Connect's
    /// 409 during a rebalance, a refused connection): a worker under load or rebalancing is
    /// not a failed migration.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, MigrateError> {
        let retry = method != Method::POST;
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        loop {
            let result = self.call_once(method.clone(), url, body).await;
            let transient = match &result {
                Ok(a) => matches!(a.status, 409 | 502 | 503 | 504),
                Err(_) => true,
            };
            if !retry || !transient || tokio::time::Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn call_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, MigrateError> {
        let mut request = self.http.request(method, url);
        request = match &self.credentials {
            Credentials::ApiKey { id, secret } => request.basic_auth(id, Some(secret)),
            Credentials::Token(token) => request.bearer_auth(token),
            Credentials::None => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| MigrateError::Unreachable {
                url: url.to_string(),
                message: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// A call that must answer one of `ok`.
    pub async fn expect(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Answer, MigrateError> {
        let answer = self.call(method.clone(), url, body).await?;
        if ok.contains(&answer.status) {
            return Ok(answer);
        }
        let hint = match answer.status {
            401 => {
                "; check the credentials (CS_KEY/CS_SECRET or CS_TOKEN for the source, TARGET_KEY/TARGET_SECRET or TARGET_TOKEN for the target)"
            }
            403 => {
                "; the key's role may not do this (the push of secrets needs an admin key of the source)"
            }
            _ => "",
        };
        Err(MigrateError::Refused {
            url: url.to_string(),
            status: answer.status,
            message: format!("{method} answered: {}{hint}", answer.message()),
        })
    }

    /// Every connector with its config (masked) and state.
    pub async fn connectors(&self) -> Result<BTreeMap<String, RunningConnector>, MigrateError> {
        let url = self.managed("/connectors?expand=info,status");
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        remote::baseline_from_expansions(&answer.body, &self.base)
            .map(|b| b.running)
            .map_err(|message| MigrateError::Format { url, message })
    }

    /// The managed state of `name` (`RUNNING`, `PAUSED`, `FAILED`...) and its task states, or
    /// `None` when it does not exist.
    pub async fn state(&self, name: &str) -> Result<Option<(String, Vec<String>)>, MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/status"));
        let answer = self.call(Method::GET, &url, None).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        if answer.status != 200 {
            return Err(MigrateError::Refused {
                url,
                status: answer.status,
                message: answer.message(),
            });
        }
        let state = answer.body["connector"]["state"]
            .as_str()
            .unwrap_or("UNKNOWN")
            .to_string();
        let tasks = answer.body["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["state"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((state, tasks)))
    }

    /// Connect's state of `name` through the Connect-compatible route (`STOPPED` is visible
    /// only there: the managed vocabulary has no such state).
    pub async fn connect_state(&self, name: &str) -> Result<(String, usize), MigrateError> {
        let url = self.connect_route(name, "/status");
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        Ok((
            answer.body["connector"]["state"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_string(),
            answer.body["tasks"].as_array().map(Vec::len).unwrap_or(0),
        ))
    }

    /// The current offsets of `name` (managed `GET .../offsets`).
    pub async fn offsets(&self, name: &str) -> Result<Vec<Value>, MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/offsets"));
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        answer.body["offsets"]
            .as_array()
            .cloned()
            .ok_or_else(|| MigrateError::Format {
                url,
                message: "no offsets array".into(),
            })
    }

    /// KIP-875 stop through the Connect-compatible route the supervisor serves.
    pub async fn stop(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.connect_route(name, "/stop");
        self.expect(Method::PUT, &url, None, &[200, 202, 204])
            .await
            .map(|_| ())
    }

    /// A Connect-compatible route of `name` (`/connectors/{name}{rest}`).
    pub fn connect_route(&self, name: &str, rest: &str) -> String {
        format!("{}/connectors/{name}{rest}", self.base)
    }

    /// Connect's offsets of `name` (`GET /connectors/{name}/offsets`, Connect 3.5+).
    pub async fn connect_offsets(&self, name: &str) -> Result<Vec<Value>, MigrateError> {
        let url = self.connect_route(name, "/offsets");
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        answer.body["offsets"]
            .as_array()
            .cloned()
            .ok_or_else(|| MigrateError::Format {
                url,
                message: "no offsets array".into(),
            })
    }

    /// Connect's alter of a stopped connector's offsets (`PATCH /connectors/{name}/offsets`).
    pub async fn connect_alter_offsets(
        &self,
        name: &str,
        offsets: &[Value],
    ) -> Result<(), MigrateError> {
        let url = self.connect_route(name, "/offsets");
        self.expect(
            Method::PATCH,
            &url,
            Some(&json!({ "offsets": offsets })),
            &[200, 202],
        )
        .await
        .map(|_| ())
    }

    /// Connect's resume (starts a stopped connector too).
    pub async fn connect_resume(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.connect_route(name, "/resume");
        self.expect(Method::PUT, &url, None, &[200, 202, 204])
            .await
            .map(|_| ())
    }

    /// Connect's delete; a connector already gone is fine.
    pub async fn connect_delete(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.connect_route(name, "");
        self.expect(Method::DELETE, &url, None, &[200, 204, 404])
            .await
            .map(|_| ())
    }

    /// Connect's config of `name` (masked when the end is a supervisor).
    pub async fn connect_config(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, MigrateError> {
        let url = self.connect_route(name, "/config");
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        crate::translate::config_from_json(&answer.body, "config").map_err(|p| {
            MigrateError::Format {
                url,
                message: p.join("; "),
            }
        })
    }

    /// Whether `name` exists (Connect route).
    pub async fn connect_exists(&self, name: &str) -> Result<bool, MigrateError> {
        let url = self.connect_route(name, "/status");
        let answer = self.call(Method::GET, &url, None).await?;
        Ok(answer.status == 200)
    }

    /// Managed resume (also starts a stopped connector).
    pub async fn resume(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/resume"));
        self.expect(Method::PUT, &url, None, &[200, 202, 204])
            .await
            .map(|_| ())
    }

    /// Managed pause.
    pub async fn pause(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/pause"));
        self.expect(Method::PUT, &url, None, &[200, 202, 204])
            .await
            .map(|_| ())
    }

    /// Managed delete; a connector already gone is fine.
    pub async fn delete(&self, name: &str) -> Result<(), MigrateError> {
        let url = self.managed(&format!("/connectors/{name}"));
        self.expect(Method::DELETE, &url, None, &[200, 204, 404])
            .await
            .map(|_| ())
    }

    /// Managed create with initial offsets (none when empty).
    pub async fn create(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
        offsets: &[Value],
    ) -> Result<Answer, MigrateError> {
        let mut body = json!({ "name": name, "config": config });
        if !offsets.is_empty() {
            body["offsets"] = Value::Array(offsets.to_vec());
        }
        self.expect(
            Method::POST,
            &self.managed("/connectors"),
            Some(&body),
            &[200, 201],
        )
        .await
    }

    /// Managed offsets PATCH request (the supervisor stops the connector, alters, restores).
    pub async fn patch_offsets(&self, name: &str, offsets: &[Value]) -> Result<(), MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/offsets/request"));
        self.expect(
            Method::POST,
            &url,
            Some(&json!({"type": "PATCH", "offsets": offsets})),
            &[200, 202],
        )
        .await
        .map(|_| ())
    }

    /// The phase of the last offsets request (`PENDING`, `APPLIED`, `FAILED`).
    pub async fn offsets_request_phase(&self, name: &str) -> Result<String, MigrateError> {
        let url = self.managed(&format!("/connectors/{name}/offsets/request/status"));
        let answer = self.expect(Method::GET, &url, None, &[200]).await?;
        Ok(answer.body["status"]["phase"]
            .as_str()
            .unwrap_or("UNKNOWN")
            .to_string())
    }

    /// `PUT .../connector-plugins/{plugin}/config/translate` when the target serves it:
    /// `Ok(None)` when it does not (404/405).
    pub async fn translate(
        &self,
        plugin: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<Value>, MigrateError> {
        let url = self.managed(&format!("/connector-plugins/{plugin}/config/translate"));
        let answer = self.call(Method::PUT, &url, Some(&json!(config))).await?;
        match answer.status {
            200 => Ok(Some(answer.body)),
            404 | 405 | 501 => Ok(None),
            status => Err(MigrateError::Refused {
                url,
                status,
                message: answer.message(),
            }),
        }
    }
}

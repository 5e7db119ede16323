//! The HTTP client of `plan`/`apply`: only calls of the managed API (`connect/v1`) that
//! Confluent Cloud's fully-managed connectors answer too (list with expansions, create, put
//! config, pause, resume, delete), so the same commands work against either by changing
//! `--against`. Nothing here calls a supervisor-only route.
//!
//! Every change carries the Git commit in the [`COMMIT_HEADER`] request header, which the
//! supervisor's audit trail records (other servers ignore it). Bodies may hold resolved secrets:
//! they are never logged, and error messages are the server's (the supervisor scrubs its own).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::against::{API_KEY_ENV, API_SECRET_ENV, Against, AgainstError, Credentials, TOKEN_ENV};
use super::check::Baseline;
use crate::model::Department;

pub use crate::remote::COMMIT_HEADER;
/// Environment variables of CI systems that hold the commit being built, in the order tried.
pub const COMMIT_ENVS: &[&str] = &[
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILD_SOURCEVERSION",
    "GIT_COMMIT",
    "BITBUCKET_COMMIT",
    "CIRCLE_SHA1",
    "BUILDKITE_COMMIT",
];
/// How long one call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a call answered 409 (Connect rebalancing, a connector between states) is retried.
pub const CONFLICT_RETRIES: u32 = 20;
/// Pause between those retries.
pub const CONFLICT_PAUSE: Duration = Duration::from_millis(500);

/// The commit to record: `--commit`, else the first CI variable set.
pub fn commit_from(
    given: Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    given.filter(|c| !c.trim().is_empty()).or_else(|| {
        COMMIT_ENVS
            .iter()
            .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
    })
}

/// A client of one department's managed API.
#[derive(Debug, Clone)]
pub struct ManagedClient {
    http: reqwest::Client,
    /// `.../connect/v1/environments/<env>/clusters/<cluster>`.
    prefix: String,
    credentials: Credentials,
    commit: Option<String>,
}

impl ManagedClient {
    /// A client for `department` at `against`; changes carry `commit`.
    pub fn new(
        against: &Against,
        department: &Department,
        commit: Option<String>,
    ) -> Result<Self, AgainstError> {
        let list = super::against::list_url(&against.url, department);
        let prefix = list
            .split_once("/connectors?")
            .map(|(p, _)| p.to_string())
            .unwrap_or(list.clone());
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| AgainstError::Unreachable {
                url: prefix.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            prefix,
            credentials: against.credentials.clone(),
            commit,
        })
    }

    /// The managed prefix this client calls.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn url(&self, segments: &[&str]) -> Result<Url, AgainstError> {
        let mut url = Url::parse(&format!("{}/connectors", self.prefix)).map_err(|e| {
            AgainstError::Format {
                url: self.prefix.clone(),
                message: format!("not a URL ({e})"),
            }
        })?;
        if let Ok(mut path) = url.path_segments_mut() {
            for s in segments {
                path.push(s);
            }
        }
        Ok(url)
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(u16, Value), AgainstError> {
        let shown = url.path().to_string();
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            request = match &self.credentials {
                Credentials::ApiKey { id, secret } => request.basic_auth(id, Some(secret)),
                Credentials::Token(token) => request.bearer_auth(token),
                Credentials::None => request,
            };
            if let Some(commit) = &self.commit
                && method != Method::GET
            {
                request = request.header(COMMIT_HEADER, commit);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| AgainstError::Unreachable {
                    url: shown.clone(),
                    message: e.without_url().to_string(),
                })?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let value: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if (200..300).contains(&status) {
                return Ok((status, value));
            }
            if status == 409 && attempt < CONFLICT_RETRIES {
                attempt += 1;
                tokio::time::sleep(CONFLICT_PAUSE).await;
                continue;
            }
            return Err(refused(&shown, status, &value));
        }
    }

    /// What runs: `GET .../connectors?expand=info,status`.
    pub async fn list(&self) -> Result<Baseline, AgainstError> {
        let mut url = self.url(&[])?;
        url.set_query(Some("expand=info,status"));
        let shown = url.to_string();
        let (_, body) = self.call(Method::GET, url, None).await?;
        super::against::baseline_from_expansions(&body, &self.prefix).map_err(|message| {
            AgainstError::Format {
                url: shown,
                message,
            }
        })
    }

    /// `POST .../connectors` with `{name, config}`.
    pub async fn create(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), AgainstError> {
        let body = json!({"name": name, "config": config});
        self.call(Method::POST, self.url(&[])?, Some(&body))
            .await
            .map(drop)
    }

    /// `PUT .../connectors/{name}/config`.
    pub async fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), AgainstError> {
        let body = serde_json::to_value(config).unwrap_or(Value::Null);
        self.call(Method::PUT, self.url(&[name, "config"])?, Some(&body))
            .await
            .map(drop)
    }

    /// `PUT .../connectors/{name}/pause`.
    pub async fn pause(&self, name: &str) -> Result<(), AgainstError> {
        self.call(Method::PUT, self.url(&[name, "pause"])?, None)
            .await
            .map(drop)
    }

    /// `PUT .../connectors/{name}/resume`.
    pub async fn resume(&self, name: &str) -> Result<(), AgainstError> {
        self.call(Method::PUT, self.url(&[name, "resume"])?, None)
            .await
            .map(drop)
    }

    /// `DELETE .../connectors/{name}`.
    pub async fn delete(&self, name: &str) -> Result<(), AgainstError> {
        self.call(Method::DELETE, self.url(&[name])?, None)
            .await
            .map(drop)
    }
}

fn refused(url: &str, status: u16, body: &Value) -> AgainstError {
    let said = body
        .pointer("/error/message")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match body {
            Value::String(s) if s.len() < 200 && !s.contains('<') => s.clone(),
            _ => "no message".into(),
        });
    let check = match status {
        401 => format!(
            "; check the credentials (--api-key/--api-secret or {API_KEY_ENV}/{API_SECRET_ENV}, or --token or {TOKEN_ENV})"
        ),
        403 => "; the key's role may not make this change".to_string(),
        _ => String::new(),
    };
    AgainstError::Refused {
        url: url.to_string(),
        status,
        message: format!("{said}{check}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_comes_from_the_flag_then_the_ci_variables() {
        let env = |name: &str| match name {
            "CI_COMMIT_SHA" => Some("abc123".to_string()),
            "GITHUB_SHA" => Some(" ".to_string()),
            _ => None,
        };
        assert_eq!(
            commit_from(Some("f00".into()), &env).as_deref(),
            Some("f00")
        );
        assert_eq!(commit_from(None, &env).as_deref(), Some("abc123"));
        assert_eq!(commit_from(None, &|_| None), None);
    }

    #[test]
    fn connector_names_are_one_path_segment() {
        let against = Against {
            url: "http://cs:8083/".into(),
            credentials: Credentials::None,
        };
        let department = crate::config::testing::department()
            .id("d")
            .managed_ids("env-1", "lkc-1")
            .bootstrap_servers("b:9092")
            .build();
        let client = ManagedClient::new(&against, &department, None).unwrap();
        assert_eq!(
            client.prefix(),
            "http://cs:8083/connect/v1/environments/env-1/clusters/lkc-1"
        );
        assert_eq!(
            client.url(&["a/b", "config"]).unwrap().path(),
            "/connect/v1/environments/env-1/clusters/lkc-1/connectors/a%2Fb/config"
        );
    }
}

//! `validate --against URL`: what runs in the department now, read through the supervisor's
//! managed API (`GET .../connectors?expand=info,status`, one call) with the CI's credentials,
//! as the [`Baseline`] the files are checked together with (quotas, renames).
//!
//! With [`super::client`] (the client of `plan`/`apply`), the only part of [`crate::gitops`]
//! that talks to the network; turning the answer into a baseline is pure ([`baseline_from_expansions`]). Credentials never appear in errors
//! or in the baseline.

use serde_json::Value;

use crate::model::Department;
pub use crate::remote::{
    API_KEY_ENV, API_SECRET_ENV, Baseline, Credentials, MANAGED_SEGMENT, RunningConnector, TIMEOUT,
    TOKEN_ENV, baseline_from_expansions, list_url,
};

/// Where and how to read what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Against {
    /// The supervisor's base URL, or its managed prefix
    /// (`.../connect/v1/environments/<env>/clusters/<cluster>`).
    pub url: String,
    /// How to authenticate.
    pub credentials: Credentials,
}

/// Why what runs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgainstError {
    /// The supervisor could not be reached.
    #[error("cannot reach the supervisor at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },
    /// The supervisor refused the request.
    #[error("the supervisor at {url} answered {status}: {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its message and what to check.
        message: String,
    },
    /// The answer is not the managed list with expansions.
    #[error("the answer of {url} is not the managed API's connector list: {message}")]
    Format {
        /// The URL called.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl AgainstError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "against_unreachable",
            Self::Refused { .. } => "against_refused",
            Self::Format { .. } => "against_format",
        }
    }
}

/// Reads what runs in `department` from the supervisor.
pub async fn fetch(department: &Department, against: &Against) -> Result<Baseline, AgainstError> {
    let url = list_url(&against.url, department);
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| AgainstError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let mut request = client.get(&url);
    request = match &against.credentials {
        Credentials::ApiKey { id, secret } => request.basic_auth(id, Some(secret)),
        Credentials::Token(token) => request.bearer_auth(token),
        Credentials::None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| AgainstError::Unreachable {
            url: url.clone(),
            message: e.without_url().to_string(),
        })?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| AgainstError::Unreachable {
            url: url.clone(),
            message: e.without_url().to_string(),
        })?;
    let body: Value = serde_json::from_str(&text).map_err(|e| AgainstError::Format {
        url: url.clone(),
        message: format!("not JSON ({e})"),
    })?;
    if status != 200 {
        let said = body
            .get("error")
            .and_then(|e| e.get("message"))
            .or_else(|| body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let check = match status {
            401 => format!(
                "; check the credentials (--api-key/--api-secret or {API_KEY_ENV}/{API_SECRET_ENV}, or --token or {TOKEN_ENV})"
            ),
            403 => "; the key's role may not read connectors".to_string(),
            404 => "; check the URL and that the department file is the one this supervisor runs"
                .to_string(),
            _ => String::new(),
        };
        return Err(AgainstError::Refused {
            url,
            status,
            message: format!("{said}{check}"),
        });
    }
    baseline_from_expansions(&body, &against.url)
        .map_err(|message| AgainstError::Format { url, message })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn department() -> Department {
        crate::config::testing::department()
            .managed_ids("env-1", "lkc-1")
            .bootstrap_servers("b:9092")
            .build()
    }

    #[test]
    fn the_list_url_is_built_from_the_department_or_taken_as_given() {
        let d = department();
        assert_eq!(
            list_url("http://cs:8083/", &d),
            "http://cs:8083/connect/v1/environments/env-1/clusters/lkc-1/connectors?expand=info,status"
        );
        assert_eq!(
            list_url("https://x/api/connect/v1/environments/e/clusters/c", &d),
            "https://x/api/connect/v1/environments/e/clusters/c/connectors?expand=info,status"
        );
    }

    #[test]
    fn the_managed_list_becomes_a_baseline() {
        let answer = json!({
            "dept1-a": {"info": {"name": "dept1-a", "config": {"connector.class": "X", "tasks.max": "3"}},
                        "status": {"connector": {"state": "RUNNING"}}},
            "dept1-b": {"info": {"name": "dept1-b", "config": {"connector.class": "Y"}}},
        });
        let b = baseline_from_expansions(&answer, "http://cs").unwrap();
        assert_eq!(
            b.connectors,
            BTreeMap::from([("dept1-a".into(), 3), ("dept1-b".into(), 1)])
        );
        assert_eq!(b.running["dept1-a"].state.as_deref(), Some("RUNNING"));
        assert_eq!(b.running["dept1-b"].config["connector.class"], "Y");
        assert_eq!(b.source.as_deref(), Some("http://cs"));
        assert!(baseline_from_expansions(&json!(["dept1-a"]), "u").is_err());
        assert!(baseline_from_expansions(&json!({"a": {}}), "u").is_err());
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let key = Credentials::ApiKey {
            id: "K".into(),
            secret: "s3cr3t".into(),
        };
        assert!(!format!("{key:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Credentials::Token("t0k".into())).contains("t0k"));
    }
}

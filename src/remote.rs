//! A running supervisor as the command-line tools reach it (`validate --against`, `plan`,
//! `apply`, `migrate`): the credentials and the environment variables they come from, the
//! managed list URL, and what runs there read from a managed list answer (the [`Baseline`]).
//! Pure data and parsing: the HTTP calls are the tools' own. Credentials never appear in errors,
//! in `Debug` output or in the baseline.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::model::Department;

/// Environment variable holding the API key id (the one `dev`'s banner exports).
pub const API_KEY_ENV: &str = "CS_KEY";
/// Environment variable holding the API key's secret.
pub const API_SECRET_ENV: &str = "CS_SECRET";
/// Environment variable holding a bearer token.
pub const TOKEN_ENV: &str = "CS_TOKEN";
/// How long the call may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Request header naming the Git commit a change comes from (`apply` sends it; the supervisor's
/// audit trail records it).
pub const COMMIT_HEADER: &str = "x-gitops-commit";
/// Path segment of the managed API under a supervisor's base URL.
pub const MANAGED_SEGMENT: &str = "/connect/v1/";

/// How `validate` authenticates to the supervisor.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic with an API key.
    ApiKey {
        /// Key id.
        id: String,
        /// Secret.
        secret: String,
    },
    /// A bearer token.
    Token(String),
    /// No credentials (a supervisor behind an authenticating proxy).
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey { id, .. } => write!(f, "ApiKey({id}, secret hidden)"),
            Self::Token(_) => f.write_str("Token(hidden)"),
            Self::None => f.write_str("None"),
        }
    }
}

/// What runs in the department now: connector name to its `tasks.max`. Filled by
/// `--against URL` (`validate --against`); empty when validating offline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Running connectors.
    pub connectors: BTreeMap<String, u32>,
    /// Their configs (as the managed API shows them: masked, platform defaults left out) and
    /// states, when read from a live department.
    pub running: BTreeMap<String, RunningConnector>,
    /// Where the baseline was read (the `--against` URL); `None` offline.
    pub source: Option<String>,
}

/// A connector that runs in the department.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningConnector {
    /// Its config as the managed API shows it.
    pub config: BTreeMap<String, String>,
    /// Its managed state (`RUNNING`, `PAUSED`...), when known.
    pub state: Option<String>,
}

/// The list URL for `department` under `url` (a base URL, or already the managed prefix).
pub fn list_url(url: &str, department: &Department) -> String {
    let url = url.trim_end_matches('/');
    let prefix = if url.contains(MANAGED_SEGMENT) {
        url.to_string()
    } else {
        format!(
            "{url}/connect/v1/environments/{}/clusters/{}",
            department.environment_id, department.kafka_cluster_id
        )
    };
    format!("{prefix}/connectors?expand=info,status")
}

/// The baseline in a managed list answer (`{name: {info: {config}, status: {connector:
/// {state}}}}`): each connector's `tasks.max`, config and state.
pub fn baseline_from_expansions(answer: &Value, source: &str) -> Result<Baseline, String> {
    let Value::Object(entries) = answer else {
        return Err("expected an object of connectors".into());
    };
    let mut baseline = Baseline {
        source: Some(source.to_string()),
        ..Baseline::default()
    };
    for (name, entry) in entries {
        let config: BTreeMap<String, String> = entry
            .get("info")
            .and_then(|i| i.get("config"))
            .and_then(Value::as_object)
            .ok_or_else(|| format!("connector {name} has no info.config"))?
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        let state = entry
            .get("status")
            .and_then(|s| s.get("connector"))
            .and_then(|c| c.get("state"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let tasks = crate::connectors::admission::tasks_of(&config);
        baseline.connectors.insert(name.clone(), tasks);
        baseline
            .running
            .insert(name.clone(), RunningConnector { config, state });
    }
    Ok(baseline)
}

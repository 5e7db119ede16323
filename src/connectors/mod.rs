//! The department's connectors across its pools: the one component every request about a
//! connector goes through (both API flavours, the dashboard, the connector watch), so placement,
//! masking, scrubbing, the guardrails and the offsets guard are the same for all of them.
//!
//! One file per job, each with a pure core where it decides something:
//!
//! * [`pools`]: the pool clients, ready workers and the rebalance retry.
//! * [`placement`]: the only place a connector's pool is resolved.
//! * [`read`]: lookups, lists with expand, the status merge (down workers), caches.
//! * [`admission`]: the guardrails on creates and updates (gather, decide, stage, commit).
//! * [`write`]: create, update, delete and lifecycle actions.
//! * [`validation`]: plugin validation with the guardrails' violations added (a dry run).
//! * [`offsets`]: the offsets requests (a state machine under a thin async shell).
//!
//! This module calls workers over HTTP and keeps caches; it holds no lock across a call to a
//! worker. Shapes and rules are in [`crate::translate`] and [`crate::policy`]; HTTP status
//! codes and error bodies are the API's business (`api::error` maps these errors to them).

pub mod admission;
pub mod offsets;
pub mod placement;
pub mod pools;
pub mod read;
pub mod validation;
pub mod write;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::connect::{ConnectClient, ConnectError, PluginInfo, ServerInfo};
use crate::model::Department;
use crate::offsets::{Book, OffsetsError};
use crate::secret_store::{SecretStore, SecretStoreError};
use crate::supervisor::Supervisor;
use crate::translate::{self, ManagedExtras, Masker};

pub use crate::secret_store::sweep::{SWEEP_CONFIRM, SWEEP_MIN_AGE};
pub use admission::Refusal;
pub use pools::ConnectErrorIn;
pub use write::{Created, LifecycleAction};

/// How often a call that Connect refused with a rebalance 409 is retried.
pub const REBALANCE_RETRIES: u32 = 6;
/// How long a create waits for the new connector to be visible to reads.
pub const VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connector created through the supervisor is listed even before Connect has its
/// status (Connect leaves connectors without a status out of expanded lists).
pub const RECENT_WINDOW: Duration = Duration::from_secs(120);
/// How long a connector deleted through the supervisor stays hidden from every read, whatever a
/// worker that has not caught up with the delete still answers (a create of the same name
/// through the supervisor ends it at once).
pub const DELETED_WINDOW: Duration = Duration::from_secs(120);
/// How long the plugin list is cached.
pub const PLUGIN_LIST_TTL: Duration = Duration::from_secs(300);
/// How long the task count of a connector is kept for its managed status.
pub const TASK_COUNT_TTL: Duration = Duration::from_secs(10);

/// How long an offsets request waits for the connector to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an offsets request waits for a worker after a supervisor restart.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an offsets request waits for a connector that is between states (UNASSIGNED or
/// RESTARTING, e.g. right after a config update) to settle, so it knows the state to return to.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

const POLL: Duration = Duration::from_millis(200);

/// Why a gateway operation failed. Messages are already scrubbed of the secrets involved.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorsError {
    /// No such connector in any pool.
    #[error("connector {name} not found")]
    NotFound {
        /// The name.
        name: String,
    },
    /// No such connector plugin.
    #[error("connector plugin {plugin} is not installed; installed plugins: {installed}")]
    PluginNotFound {
        /// The plugin asked for.
        plugin: String,
        /// What is installed.
        installed: String,
    },
    /// The request is invalid; every problem is listed.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The connector exists already (in some pool).
    #[error("connector {name} already exists (on pool {pool})")]
    Exists {
        /// The name.
        name: String,
        /// Where.
        pool: String,
    },
    /// An offsets request is being applied to the connector.
    #[error("{0}")]
    Busy(String),
    /// The pool has no ready worker.
    #[error("pool {pool} has no ready Connect worker right now; retry in a few seconds")]
    NoWorker {
        /// The pool.
        pool: String,
    },
    /// Connect answered with an error (message scrubbed).
    #[error("{message}")]
    Connect {
        /// Connect's status.
        status: u16,
        /// Connect's message, scrubbed.
        message: String,
    },
    /// No worker of the pool could be reached.
    #[error("the Connect workers of pool {pool} cannot be reached: {message}")]
    Unreachable {
        /// The pool.
        pool: String,
        /// What failed.
        message: String,
    },
    /// Connect answered something this supervisor cannot read.
    #[error("unexpected answer from Connect: {0}")]
    BadAnswer(String),
    /// The supervisor's own state could not be written.
    #[error(transparent)]
    State(#[from] OffsetsError),
    /// The guardrails refused a create or update; every problem and violation is listed.
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// A connector's secret file could not be read, written or removed.
    #[error(transparent)]
    SecretFile(#[from] SecretStoreError),
    /// The secrets folder cannot be used in `${file:...}` references (a platform setting).
    #[error("{0}")]
    SecretFolder(String),
    /// The recorded connector ids could not be read or written.
    #[error(transparent)]
    Ids(#[from] crate::connector_ids::IdsError),
}

impl ConnectorsError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "connector_not_found",
            Self::PluginNotFound { .. } => "plugin_not_found",
            Self::Invalid(_) => "invalid_request",
            Self::Exists { .. } => "connector_exists",
            Self::Busy(_) => "offsets_request_in_flight",
            Self::NoWorker { .. } => "no_ready_worker",
            Self::Connect { .. } => "connect_error",
            Self::Unreachable { .. } => "connect_unreachable",
            Self::BadAnswer(_) => "connect_bad_answer",
            Self::State(e) => e.code(),
            Self::Refused(r) if r.violations.is_empty() => "invalid_request",
            Self::Refused(_) => "policy_violation",
            Self::SecretFile(e) => e.code(),
            Self::SecretFolder(_) => "secrets_folder",
            Self::Ids(e) => e.code(),
        }
    }

    fn from_connect(e: ConnectError, pool: &str, secrets: &[String]) -> Self {
        match e {
            ConnectError::Api { status, message } => Self::Connect {
                status,
                message: translate::scrub(&message, secrets),
            },
            ConnectError::Unreachable { message, .. } => Self::Unreachable {
                pool: pool.to_string(),
                message,
            },
            ConnectError::Decode { message, .. } => Self::BadAnswer(message),
        }
    }
}

/// The sensitive keys of one connector's config: the department's patterns and its plugin's
/// PASSWORD-typed keys.
#[derive(Debug, Clone)]
pub struct Sensitivity {
    department: Arc<Department>,
    password_keys: Arc<BTreeSet<String>>,
    resolved: Vec<String>,
}

impl Sensitivity {
    /// A masker over these keys, which also scrubs the values behind the config's references
    /// to the supervisor's secret files.
    pub fn masker(&self) -> Masker<'_> {
        Masker::new(&self.department.secrets, &self.password_keys).with_resolved(&self.resolved)
    }

    /// The PASSWORD-typed keys of the connector's plugin.
    pub fn password_keys(&self) -> &BTreeSet<String> {
        &self.password_keys
    }
}

/// The department's connectors across pools.
pub struct Connectors {
    supervisor: Arc<Supervisor>,
    department: Arc<Department>,
    http: reqwest::Client,
    extras: ManagedExtras,
    plugins: RwLock<Option<(Instant, Arc<Vec<PluginInfo>>)>>,
    password_keys: RwLock<HashMap<String, Arc<BTreeSet<String>>>>,
    locations: RwLock<HashMap<String, String>>,
    recent: Mutex<HashMap<String, Instant>>,
    task_counts: Mutex<HashMap<String, (usize, Instant)>>,
    deleted: Mutex<HashMap<String, Instant>>,
    // The last listing of each connector (pool, Connect's status and info), shown with its
    // status marked unknown while its pool has no ready worker.
    last_seen: Mutex<HashMap<String, (String, crate::connect::Expanded)>>,
    offsets: Book,
    server_info: RwLock<Option<ServerInfo>>,
    // Creates, updates and deletes are admitted one at a time, so two concurrent creates cannot
    // both fit under a quota that has room for one, and a delete cannot remove the secret file
    // of a create of the same name.
    admission: tokio::sync::Mutex<()>,
    secrets: SecretStore,
    ids: crate::connector_ids::ConnectorIds,
    // Offsets requests to apply: submitted here, applied by the task of
    // [`Connectors::run_offsets_requests`] (which takes the receiving end once).
    offsets_jobs: tokio::sync::mpsc::UnboundedSender<String>,
    offsets_inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connectors")
            .field("department", &self.department.id)
            .finish_non_exhaustive()
    }
}

impl Connectors {
    /// A gateway over `supervisor`'s pools, keeping offsets requests in the state folder.
    pub fn new(supervisor: Arc<Supervisor>) -> Result<Arc<Self>, ConnectorsError> {
        let department = Arc::clone(supervisor.department());
        let extras = ManagedExtras::new(
            &department.environment_id,
            &department.kafka.bootstrap_servers,
            department
                .kafka
                .client
                .get("security.protocol")
                .map(String::as_str),
        );
        let offsets = Book::open(&Self::offsets_dir(&department))?;
        let metrics = supervisor.observer().metrics();
        metrics.policy_rules(crate::policy::rules::BUILTIN_RULES.iter().copied());
        metrics.policy_rules(department.policy.rego.names());
        let secrets = SecretStore::for_department(&department);
        let ids = crate::connector_ids::ConnectorIds::open(
            &department.supervisor.state_dir,
            &department.id,
        )?;
        let (offsets_jobs, offsets_inbox) = tokio::sync::mpsc::unbounded_channel();
        Ok(Arc::new(Self {
            supervisor,
            department,
            http: ConnectClient::default_http(),
            extras,
            plugins: RwLock::new(None),
            password_keys: RwLock::new(HashMap::new()),
            locations: RwLock::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            task_counts: Mutex::new(HashMap::new()),
            deleted: Mutex::new(HashMap::new()),
            last_seen: Mutex::new(HashMap::new()),
            offsets,
            server_info: RwLock::new(None),
            admission: tokio::sync::Mutex::new(()),
            secrets,
            ids,
            offsets_jobs,
            offsets_inbox: Mutex::new(Some(offsets_inbox)),
        }))
    }

    /// Folder of the offsets request records.
    pub fn offsets_dir(department: &Department) -> PathBuf {
        department
            .supervisor
            .state_dir
            .join(crate::offsets::OFFSET_REQUESTS_DIR)
    }

    /// The department.
    pub fn department(&self) -> &Arc<Department> {
        &self.department
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// The keys the managed API adds to configs.
    pub fn extras(&self) -> &ManagedExtras {
        &self.extras
    }

    /// Names of the department's pools, in file order.
    pub fn pools(&self) -> Vec<String> {
        self.department
            .pools
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! What the connectors' unit tests judge requests with.

    use std::collections::BTreeMap;

    use crate::model::Department;
    use crate::policy::{RuleSource, Violation};

    /// The policy engine's test department (`dept1`, pools `shared` (the default) and `heavy`,
    /// at most 3 connectors and 8 tasks, `FileStreamSource` only on `heavy`, secrets
    /// externalized).
    pub(crate) fn department() -> Department {
        crate::policy::tests::department()
    }

    /// A config from `(key, value)` pairs.
    pub(crate) fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        crate::policy::tests::config(pairs)
    }

    /// A built-in violation of `rule` on `key`.
    pub(crate) fn violation(rule: &str, key: Option<&str>) -> Violation {
        Violation {
            rule: rule.into(),
            key: key.map(str::to_string),
            message: format!("{rule} is broken"),
            hint: "fix it".into(),
            source: RuleSource::Builtin,
        }
    }
}

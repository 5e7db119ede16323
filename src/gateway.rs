//! The department's connectors across its pools: placement, lookup, the plugin caches masking
//! needs, offsets requests, and every call to Connect the API makes.
//!
//! Both API flavours (managed and Apache-compatible) go through here, so placement, masking,
//! scrubbing and the offsets guard are the same for both. This module calls workers over HTTP
//! and keeps caches; it holds no lock across a call to a worker. Shapes and rules are in
//! [`crate::translate`]; HTTP status codes and error bodies are the API's business.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::connect::{
    ConnectClient, ConnectError, ConnectorInfo, ConnectorStatus, PluginInfo, ServerInfo,
};
use crate::guardrails::{self, Refusal, WriteRequest};
use crate::model::Department;
use crate::observe::events::{
    OffsetsRequestApplied, OffsetsRequestFailed, OffsetsRestoreFailed, SecretFileRemoved,
    SecretSweepSkipped,
};
use crate::offsets::{self, Book, OffsetRequest, OffsetsError, Phase, RequestKind};
use crate::policy::Operation;
use crate::secret_store::{SecretStore, SecretStoreError};
use crate::supervisor::Supervisor;
use crate::translate::{
    self, Expand, ManagedConnector, ManagedExtras, ManagedStatus, Masker, POOL_CONFIG_KEY,
};

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
/// How far apart the two listings of a secret-file sweep are (see [`Gateway::sweep_secret_files`]).
pub const SWEEP_CONFIRM: Duration = Duration::from_secs(30);
/// A secret file younger than this at the sweep's first listing is kept: its connector may be
/// in the middle of being created.
pub const SWEEP_MIN_AGE: Duration = Duration::from_secs(120);

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
pub enum GatewayError {
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

impl GatewayError {
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

    /// The HTTP status this error stands for.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::PluginNotFound { .. } => 404,
            Self::Invalid(_) | Self::Refused(_) => 400,
            Self::Exists { .. } | Self::Busy(_) => 409,
            Self::NoWorker { .. } | Self::Unreachable { .. } => 503,
            Self::Connect { status, .. } => *status,
            Self::BadAnswer(_)
            | Self::State(OffsetsError::Io { .. })
            | Self::SecretFile(_)
            | Self::SecretFolder(_)
            | Self::Ids(_) => 500,
            Self::State(OffsetsError::InFlight { .. }) => 409,
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

/// A connector created through the gateway.
#[derive(Debug, Clone)]
pub struct Created {
    /// Connect's answer (config unmasked: mask before showing).
    pub info: ConnectorInfo,
    /// The pool it runs on.
    pub pool: String,
}

/// The department's connectors across pools.
pub struct Gateway {
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
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("department", &self.department.id)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over `supervisor`'s pools, keeping offsets requests in the state folder.
    pub fn new(supervisor: Arc<Supervisor>) -> Result<Arc<Self>, GatewayError> {
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
        }))
    }

    /// Folder of the offsets request records.
    pub fn offsets_dir(department: &Department) -> PathBuf {
        department
            .supervisor
            .state_dir
            .join(offsets::OFFSET_REQUESTS_DIR)
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

    // ----- calls to workers -----

    /// Runs `call` against the pool's ready workers: the next worker is tried when one cannot be
    /// reached, and Connect's rebalance conflicts (409, "momentarily") are retried with a short
    /// backoff, since the request was not applied.
    pub async fn on_pool<T, F, Fut>(&self, pool: &str, call: F) -> Result<T, ConnectErrorIn>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        let mut attempt = 0;
        loop {
            let urls = self.supervisor.ready_worker_urls(pool);
            if urls.is_empty() {
                return Err(ConnectErrorIn::NoWorker(pool.to_string()));
            }
            let mut last = None;
            for url in urls {
                match call(ConnectClient::new(self.http.clone(), url)).await {
                    Err(e @ ConnectError::Unreachable { .. }) => last = Some(e),
                    Err(e) if e.is_rebalance_conflict() && attempt < REBALANCE_RETRIES => {
                        last = Some(e);
                        break;
                    }
                    Err(e) => return Err(ConnectErrorIn::Connect(pool.to_string(), e)),
                    Ok(v) => return Ok(v),
                }
            }
            let last = last.expect("at least one worker was tried");
            if !last.is_rebalance_conflict() {
                return Err(ConnectErrorIn::Connect(pool.to_string(), last));
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
        }
    }

    /// Like [`Gateway::on_pool`], with errors turned into [`GatewayError`] scrubbed of `secrets`.
    pub async fn call<T, F, Fut>(
        &self,
        pool: &str,
        secrets: &[String],
        call: F,
    ) -> Result<T, GatewayError>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        self.on_pool(pool, call)
            .await
            .map_err(|e| e.into_gateway(secrets))
    }

    /// Connect's `ServerInfo` from a ready worker (the first answer is kept: version and Kafka
    /// cluster id do not change while the supervisor runs).
    pub async fn server_info(&self) -> Option<ServerInfo> {
        if let Some(info) = self.server_info.read().expect("server info lock").clone() {
            return Some(info);
        }
        for pool in self.pools() {
            if let Ok(info) = self
                .on_pool(&pool, |c| async move { c.server_info().await })
                .await
            {
                *self.server_info.write().expect("server info lock") = Some(info.clone());
                return Some(info);
            }
        }
        None
    }

    // ----- placement and lookup -----

    /// The pool a new connector with `config` goes to: the one named by `supervisor.pool`, or
    /// the department's default pool.
    pub fn placement(&self, config: &BTreeMap<String, String>) -> Result<String, GatewayError> {
        match config.get(POOL_CONFIG_KEY) {
            None => Ok(self.department.default_pool.clone()),
            Some(pool) if self.department.pool(pool).is_some() => Ok(pool.clone()),
            Some(pool) => Err(GatewayError::Invalid(vec![format!(
                "config.\"{POOL_CONFIG_KEY}\": no pool is named \"{pool}\"; use one of: {}",
                self.pools().join(", ")
            )])),
        }
    }

    /// The pool holding connector `name`, from the cache or by asking every pool.
    pub async fn locate(&self, name: &str) -> Result<String, GatewayError> {
        Self::check_addressable(name)?;
        if self.department.pools.len() == 1 {
            return Ok(self.department.pools[0].name.clone());
        }
        if let Some(pool) = self.cached_location(name) {
            return Ok(pool);
        }
        self.find(name)
            .await?
            .ok_or_else(|| GatewayError::NotFound {
                name: name.to_string(),
            })
    }

    fn cached_location(&self, name: &str) -> Option<String> {
        self.locations
            .read()
            .expect("locations lock")
            .get(name)
            .cloned()
    }

    fn remember(&self, name: &str, pool: &str) {
        self.locations
            .write()
            .expect("locations lock")
            .insert(name.to_string(), pool.to_string());
    }

    fn forget(&self, name: &str) {
        self.tasks_may_change(name);
        self.locations.write().expect("locations lock").remove(name);
        self.recent.lock().expect("recent lock").remove(name);
        self.last_seen.lock().expect("last seen lock").remove(name);
    }

    /// Refuses a name that cannot be one path segment on the way to Connect (see
    /// [`translate::unaddressable`]): such a connector cannot exist, and no call is made.
    pub fn check_addressable(name: &str) -> Result<(), GatewayError> {
        match translate::unaddressable(name, "connector name") {
            Some(problem) => Err(GatewayError::Invalid(vec![problem])),
            None => Ok(()),
        }
    }

    /// Whether `name` was deleted through the supervisor within [`DELETED_WINDOW`] (and not
    /// created again since).
    pub fn was_deleted(&self, name: &str) -> bool {
        let mut deleted = self.deleted.lock().expect("deleted lock");
        deleted.retain(|_, at| at.elapsed() < DELETED_WINDOW);
        deleted.contains_key(name)
    }

    /// The workers of `pool` whose tasks nothing runs right now, by Connect worker id: those
    /// not up (exited, restarting, held), and those restarted so lately that Connect may still
    /// show their previous process's tasks (see [`crate::worker::reassignment_window`]).
    pub fn down_workers(&self, pool: &str) -> translate::DownWorkers {
        let Some(spec) = self.department.pool(pool) else {
            return translate::DownWorkers::new();
        };
        let window = crate::worker::reassignment_window(&self.department, spec);
        let mut down = translate::DownWorkers::new();
        for p in self
            .supervisor
            .status()
            .into_iter()
            .filter(|p| p.name == pool)
        {
            for w in p.workers {
                use crate::supervisor::lifecycle::Phase;
                let reason = match w.state {
                    Phase::Ready | Phase::Running
                        if w.restarts > 0
                            && w.uptime_seconds.is_some_and(|s| s < window.as_secs()) =>
                    {
                        format!(
                            "worker {} restarted; Connect hands its tasks out again within {}s of the restart",
                            w.id,
                            window.as_secs()
                        )
                    }
                    Phase::Ready | Phase::Running => continue,
                    Phase::Held => format!(
                        "worker {} is held after repeated failures; an admin restarts it with POST /v1/workers/{}/restart",
                        w.id, w.id
                    ),
                    Phase::Stopped => format!("worker {} stopped", w.id),
                    Phase::Starting | Phase::Backoff | Phase::Stopping => {
                        format!("worker {} restarting", w.id)
                    }
                };
                down.insert(w.rest_url.trim_start_matches("http://").to_string(), reason);
            }
        }
        down
    }

    /// Asks every pool (concurrently) whether it holds `name`.
    async fn find(&self, name: &str) -> Result<Option<String>, GatewayError> {
        let pools = self.pools();
        let lookups = pools.iter().map(|pool| async move {
            let r = self
                .on_pool(pool, |c| async move { c.connector(name).await })
                .await;
            (pool.clone(), r)
        });
        let mut error = None;
        for (pool, result) in futures::future::join_all(lookups).await {
            match result {
                Ok(_) => {
                    self.remember(name, &pool);
                    return Ok(Some(pool));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => error = Some(e.into_gateway(&[])),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Runs `call` on the pool holding `name`. When a cached location answers 404 (the
    /// connector moved or was deleted behind the supervisor's back), the pools are asked again
    /// once.
    pub async fn on_connector<T, F, Fut>(
        &self,
        name: &str,
        secrets: &[String],
        call: F,
    ) -> Result<(String, T), GatewayError>
    where
        F: Fn(ConnectClient) -> Fut,
        Fut: Future<Output = Result<T, ConnectError>>,
    {
        Self::check_addressable(name)?;
        if self.was_deleted(name) {
            return Err(GatewayError::NotFound {
                name: name.to_string(),
            });
        }
        let cached = self.department.pools.len() > 1 && self.cached_location(name).is_some();
        let pool = self.locate(name).await?;
        match self.on_pool(&pool, &call).await {
            Ok(v) => Ok((pool, v)),
            Err(e) if e.is_not_found() && cached => {
                self.forget(name);
                match self.find(name).await? {
                    Some(p) if p != pool => {
                        let v = self.call(&p, secrets, &call).await?;
                        Ok((p, v))
                    }
                    _ => Err(GatewayError::NotFound {
                        name: name.to_string(),
                    }),
                }
            }
            Err(e) if e.is_not_found() => Err(GatewayError::NotFound {
                name: name.to_string(),
            }),
            Err(e) => Err(e.into_gateway(secrets)),
        }
    }

    // ----- plugin metadata -----

    /// The installed connector plugins (all pools share one runtime), cached.
    pub async fn plugins(&self) -> Result<Arc<Vec<PluginInfo>>, GatewayError> {
        if let Some((at, list)) = self.plugins.read().expect("plugins lock").as_ref()
            && at.elapsed() < PLUGIN_LIST_TTL
        {
            return Ok(Arc::clone(list));
        }
        let mut error = None;
        for pool in self.pools() {
            match self
                .call(&pool, &[], |c| async move { c.connector_plugins().await })
                .await
            {
                Ok(list) => {
                    let list = Arc::new(list);
                    *self.plugins.write().expect("plugins lock") =
                        Some((Instant::now(), Arc::clone(&list)));
                    return Ok(list);
                }
                Err(e) => error = Some(e),
            }
        }
        Err(error.unwrap_or(GatewayError::NoWorker {
            pool: self.department.default_pool.clone(),
        }))
    }

    /// The PASSWORD-typed keys of connector class `class` (as written in the config: alias or
    /// full name), cached per class. When Connect cannot tell (unknown class, no worker), the
    /// department's patterns alone apply and nothing is cached.
    pub async fn password_keys(&self, pool: &str, class: Option<&str>) -> Arc<BTreeSet<String>> {
        let Some(class) = class.filter(|c| !c.is_empty()) else {
            return Arc::default();
        };
        if let Some(keys) = self
            .password_keys
            .read()
            .expect("password keys lock")
            .get(class)
        {
            return Arc::clone(keys);
        }
        match self
            .on_pool(pool, |c| async move { c.plugin_config(class).await })
            .await
        {
            Ok(keys) => {
                let keys: Arc<BTreeSet<String>> = Arc::new(
                    keys.into_iter()
                        .filter(|k| k.key_type == "PASSWORD")
                        .map(|k| k.name)
                        .collect(),
                );
                self.password_keys
                    .write()
                    .expect("password keys lock")
                    .insert(class.to_string(), Arc::clone(&keys));
                keys
            }
            Err(e) => {
                tracing::debug!(
                    class,
                    code = e.code(),
                    "Plugin config keys unavailable; masking by patterns only."
                );
                Arc::default()
            }
        }
    }

    /// The sensitivity of a connector config running on `pool`.
    pub async fn sensitivity(&self, pool: &str, config: &BTreeMap<String, String>) -> Sensitivity {
        let keys = self
            .password_keys(pool, config.get("connector.class").map(String::as_str))
            .await;
        Sensitivity {
            department: Arc::clone(&self.department),
            password_keys: keys,
            resolved: self.resolved_secrets(config).await,
        }
    }

    /// The values behind `config`'s references to the supervisor's secret files (read fresh:
    /// the files are small and change with every update).
    async fn resolved_secrets(&self, config: &BTreeMap<String, String>) -> Vec<String> {
        let mut files = BTreeSet::new();
        for value in config.values() {
            for (path, _) in crate::policy::secrets::file_references(value) {
                let path = std::path::Path::new(path);
                if self.secrets.holds(path) {
                    files.insert(path.to_path_buf());
                }
            }
        }
        let mut values = Vec::new();
        for path in files {
            match tokio::fs::read_to_string(&path).await {
                Ok(text) => values.extend(
                    crate::secret_store::parse_properties(&text)
                        .into_values()
                        .filter(|v| !v.is_empty()),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "A secret file could not be read to scrub messages."),
            }
        }
        values
    }

    /// `sink`/`source` of a connector, resolving Connect's `unknown` through the plugin list.
    pub async fn connector_type(&self, reported: Option<&str>, class: Option<&str>) -> String {
        if matches!(reported, Some("sink" | "source")) {
            return reported.unwrap_or_default().to_string();
        }
        let plugins = self.plugins().await.unwrap_or_default();
        translate::connector_type(reported, class, &plugins)
    }

    // ----- guards -----

    /// Refuses a change to `name` while an offsets request is applied to it.
    pub fn ensure_not_busy(&self, name: &str) -> Result<(), GatewayError> {
        match self.offsets.in_flight(name) {
            Some(r) => Err(GatewayError::Busy(format!(
                "connector {name} is being stopped for an offsets {} request (requested at {}); \
                 wait until .../offsets/request/status is APPLIED or FAILED, then retry",
                r.kind.as_str(),
                r.requested_at
            ))),
            None => Ok(()),
        }
    }

    // ----- reads -----

    /// Every connector name over all pools, sorted.
    pub async fn names(&self) -> Result<Vec<String>, GatewayError> {
        let per_pool = futures::future::join_all(self.pools().into_iter().map(|pool| async move {
            let r = self
                .call(&pool, &[], |c| async move { c.connectors().await })
                .await;
            (pool, r)
        }))
        .await;
        let mut names = Vec::new();
        for (pool, result) in per_pool {
            match result {
                Ok(found) => {
                    for name in found {
                        self.remember(&name, &pool);
                        names.push(name);
                    }
                }
                // A pool without a ready worker does not take the list down: its connectors
                // as last seen are listed (their status says they are unknown).
                Err(e) if Self::unavailable(&e) => names.extend(self.last_known_names(&pool)),
                Err(e) => return Err(e),
            }
        }
        names.retain(|n| !self.was_deleted(n));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether `e` means the pool cannot answer now (rather than refusing the request).
    fn unavailable(e: &GatewayError) -> bool {
        matches!(
            e,
            GatewayError::NoWorker { .. } | GatewayError::Unreachable { .. }
        )
    }

    /// The connectors last seen on `pool`.
    pub fn last_known_names(&self, pool: &str) -> Vec<String> {
        let mut names: BTreeSet<String> = self
            .locations
            .read()
            .expect("locations lock")
            .iter()
            .filter(|(_, p)| p.as_str() == pool)
            .map(|(n, _)| n.clone())
            .collect();
        names.extend(
            self.last_seen
                .lock()
                .expect("last seen lock")
                .iter()
                .filter(|(_, (p, _))| p == pool)
                .map(|(n, _)| n.clone()),
        );
        names.into_iter().collect()
    }

    /// Keeps what a listing of `pool` showed (the whole pool: connectors it no longer lists
    /// are forgotten), for lists answered while the pool has no ready worker.
    pub fn remember_listing(
        &self,
        pool: &str,
        listing: &BTreeMap<String, crate::connect::Expanded>,
    ) {
        let mut last = self.last_seen.lock().expect("last seen lock");
        last.retain(|n, (p, _)| p != pool || listing.contains_key(n));
        for (name, e) in listing {
            let entry = last
                .entry(name.clone())
                .or_insert_with(|| (pool.to_string(), e.clone()));
            entry.0 = pool.to_string();
            if e.status.is_some() {
                entry.1.status = e.status.clone();
            }
            if e.info.is_some() {
                entry.1.info = e.info.clone();
            }
        }
    }

    /// The connectors last seen on `pool`, each with its status marked unknown (`reason`).
    fn last_known(&self, pool: &str, reason: &str) -> Vec<(String, crate::connect::Expanded)> {
        let last = self.last_seen.lock().expect("last seen lock");
        let mut out: Vec<(String, crate::connect::Expanded)> = last
            .iter()
            .filter(|(_, (p, _))| p == pool)
            .map(|(name, (_, e))| {
                let status = e.status.clone().unwrap_or_else(|| ConnectorStatus {
                    name: name.clone(),
                    connector: crate::connect::InstanceState {
                        state: "UNKNOWN".into(),
                        worker_id: String::new(),
                        trace: None,
                        version: None,
                    },
                    tasks: Vec::new(),
                    connector_type: e.info.as_ref().and_then(|i| i.connector_type.clone()),
                });
                (
                    name.clone(),
                    crate::connect::Expanded {
                        status: Some(translate::unknown_status(&status, reason)),
                        info: e.info.clone(),
                    },
                )
            })
            .collect();
        drop(last);
        // Names known only from the location cache: listed with what is known, their name.
        for name in self.last_known_names(pool) {
            if !out.iter().any(|(n, _)| *n == name) {
                let status = ConnectorStatus {
                    name: name.clone(),
                    connector: crate::connect::InstanceState {
                        state: "UNKNOWN".into(),
                        worker_id: String::new(),
                        trace: None,
                        version: None,
                    },
                    tasks: Vec::new(),
                    connector_type: None,
                };
                out.push((
                    name,
                    crate::connect::Expanded {
                        status: Some(translate::unknown_status(&status, reason)),
                        info: None,
                    },
                ));
            }
        }
        out
    }

    /// Every connector with Connect's status and info, over all pools, with the pool of each:
    /// one call per pool (Connect's `?expand=status&expand=info`). Connectors created lately
    /// whose status Connect does not have yet are added with their info only.
    pub async fn expanded(
        &self,
        status: bool,
        info: bool,
    ) -> Result<BTreeMap<String, (String, crate::connect::Expanded)>, GatewayError> {
        let (mut out, _) = self.expanded_raw(status, info).await?;
        let down: BTreeMap<String, translate::DownWorkers> = self
            .pools()
            .into_iter()
            .map(|p| {
                let d = self.down_workers(&p);
                (p, d)
            })
            .collect();
        for (pool, e) in out.values_mut() {
            if let (Some(s), Some(d)) = (&mut e.status, down.get(pool)) {
                translate::mark_down_workers(s, d);
            }
        }
        Ok(out)
    }

    /// [`Self::expanded`] without the marks of down workers, and the pools that could not
    /// answer (with why): their connectors are listed as last seen, status marked unknown.
    #[allow(clippy::type_complexity)]
    async fn expanded_raw(
        &self,
        status: bool,
        info: bool,
    ) -> Result<
        (
            BTreeMap<String, (String, crate::connect::Expanded)>,
            BTreeMap<String, String>,
        ),
        GatewayError,
    > {
        let per_pool = futures::future::join_all(self.pools().into_iter().map(|pool| async move {
            let r = self
                .call(&pool, &[], |c| async move {
                    c.connectors_expanded(status, info).await
                })
                .await;
            (pool, r)
        }))
        .await;
        let mut out = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        for (pool, result) in per_pool {
            match result {
                Ok(listing) => {
                    if status && info {
                        self.remember_listing(&pool, &listing);
                    }
                    for (name, e) in listing {
                        self.remember(&name, &pool);
                        out.insert(name, (pool.clone(), e));
                    }
                }
                Err(e) if Self::unavailable(&e) => {
                    let reason = format!(
                        "unknown: pool {pool} has no ready Connect worker (shown as last seen)"
                    );
                    for (name, e) in self.last_known(&pool, &reason) {
                        out.insert(name, (pool.clone(), e));
                    }
                    unavailable.insert(pool.clone(), reason);
                }
                Err(e) => return Err(e),
            }
        }
        out.retain(|n, _| !self.was_deleted(n));
        let recent: Vec<String> = {
            let mut recent = self.recent.lock().expect("recent lock");
            recent.retain(|_, at| at.elapsed() < RECENT_WINDOW);
            recent
                .keys()
                .filter(|n| !out.contains_key(*n))
                .cloned()
                .collect()
        };
        for name in recent {
            match self
                .on_connector(&name, &[], |c| {
                    let name = name.clone();
                    async move { c.connector(&name).await }
                })
                .await
            {
                Ok((pool, info_found)) => {
                    out.insert(
                        name,
                        (
                            pool,
                            crate::connect::Expanded {
                                status: None,
                                info: Some(info_found),
                            },
                        ),
                    );
                }
                Err(GatewayError::NotFound { .. }) => self.forget(&name),
                Err(e) if Self::unavailable(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((out, unavailable))
    }

    /// The managed expansion map (`?expand=...`) over all pools.
    pub async fn managed_expansions(&self, expand: Expand) -> Result<Value, GatewayError> {
        let mut out = serde_json::Map::new();
        if !expand.info && !expand.status {
            for name in self.names().await? {
                let mut entry = serde_json::Map::new();
                if expand.id {
                    entry.insert("id".into(), self.id_json(&name));
                }
                // As the managed service's recorded answers carry it.
                entry.insert("extensions".into(), json!({}));
                out.insert(name, Value::Object(entry));
            }
            return Ok(Value::Object(out));
        }
        // Info is always fetched with status: traces are scrubbed with the config's secrets.
        let workers = self.worker_names();
        let (listing, unavailable) = self.expanded_raw(expand.status, true).await?;
        let down_by_pool: BTreeMap<String, translate::DownWorkers> = self
            .pools()
            .into_iter()
            .filter(|p| !unavailable.contains_key(p))
            .map(|p| {
                let d = self.down_workers(&p);
                (p, d)
            })
            .collect();
        for (name, (pool, mut e)) in listing {
            let config = e
                .info
                .as_ref()
                .map(|i| i.config.clone())
                .unwrap_or_default();
            let sensitivity = self.sensitivity(&pool, &config).await;
            let masker = sensitivity.masker();
            let class = config.get("connector.class").map(String::as_str);
            let reported = e
                .status
                .as_ref()
                .and_then(|s| s.connector_type.as_deref())
                .or(e.info.as_ref().and_then(|i| i.connector_type.as_deref()));
            let connector_type = self.connector_type(reported, class).await;
            let mut entry = serde_json::Map::new();
            if expand.id {
                entry.insert("id".into(), self.id_json(&name));
            }
            if expand.info
                && let Some(info) = &e.info
            {
                entry.insert(
                    "info".into(),
                    serde_json::to_value(self.managed_connector(info, &masker, &connector_type))
                        .expect("serialisable"),
                );
            }
            if expand.status {
                let none = translate::DownWorkers::new();
                let down = down_by_pool.get(&pool).unwrap_or(&none);
                let marked = e
                    .status
                    .as_mut()
                    .and_then(|s| translate::mark_down_workers(s, down));
                let mut status = match &e.status {
                    Some(s) => {
                        let mut m = translate::managed_status(
                            s,
                            e.info.as_ref().map(|i| i.tasks.len()),
                            &connector_type,
                            &masker.secrets(&config),
                        );
                        if let Some(reason) = unavailable.get(&pool) {
                            m.connector.state = translate::UNKNOWN_MANAGED_STATE.into();
                            if m.connector.trace.is_empty()
                                || m.connector.trace.starts_with("task ")
                            {
                                m.connector.trace = reason.clone();
                            }
                        } else if let Some(reason) = &marked {
                            translate::degrade_for_down_workers(&mut m, reason);
                        }
                        m
                    }
                    None => translate::provisioning_status(&name, &connector_type),
                };
                translate::name_workers(&mut status, &workers);
                entry.insert(
                    "status".into(),
                    serde_json::to_value(status).expect("serialisable"),
                );
            }
            entry.insert("extensions".into(), json!({}));
            out.insert(name, Value::Object(entry));
        }
        Ok(Value::Object(out))
    }

    /// Each worker's `host:port` (Connect's `worker_id`) to its supervisor name (`shared-0`).
    fn worker_names(&self) -> HashMap<String, String> {
        self.supervisor
            .status()
            .into_iter()
            .flat_map(|p| p.workers)
            .map(|w| {
                let address = w
                    .rest_url
                    .split_once("://")
                    .map_or(w.rest_url.as_str(), |(_, a)| a)
                    .trim_end_matches('/')
                    .to_string();
                (address, w.id)
            })
            .collect()
    }

    fn id_json(&self, name: &str) -> Value {
        json!({ "id": self.connector_id(name), "id_type": "ID" })
    }

    /// The managed id (`lcc-...`) of connector `name` (see [`crate::connector_ids`]).
    pub fn connector_id(&self, name: &str) -> String {
        self.ids.id(name)
    }

    /// A connector in the managed shape: config masked, extras added.
    pub fn managed_connector(
        &self,
        info: &ConnectorInfo,
        masker: &Masker<'_>,
        connector_type: &str,
    ) -> ManagedConnector {
        ManagedConnector {
            name: info.name.clone(),
            config: self
                .extras
                .add(masker.mask(&guardrails::shown_config(&info.config, false))),
            tasks: info.tasks.clone(),
            connector_type: connector_type.to_string(),
        }
    }

    /// Connect's info of `name` and the pool holding it.
    pub async fn info(&self, name: &str) -> Result<(String, ConnectorInfo), GatewayError> {
        self.on_connector(name, &[], |c| async move { c.connector(name).await })
            .await
    }

    /// `GET .../connectors/{name}` in the managed shape.
    pub async fn managed_info(&self, name: &str) -> Result<ManagedConnector, GatewayError> {
        let (pool, info) = self.info(name).await?;
        let sensitivity = self.sensitivity(&pool, &info.config).await;
        let connector_type = self
            .connector_type(
                info.connector_type.as_deref(),
                info.config.get("connector.class").map(String::as_str),
            )
            .await;
        Ok(self.managed_connector(&info, &sensitivity.masker(), &connector_type))
    }

    /// Connect's status of `name`, or `None` when the connector exists but has no status yet.
    /// Instances Connect still places on a worker that is down read UNASSIGNED, saying why.
    pub async fn status(
        &self,
        name: &str,
    ) -> Result<(String, Option<ConnectorStatus>), GatewayError> {
        let (pool, mut status) = self.status_unmarked(name).await?;
        if let Some(s) = &mut status {
            translate::mark_down_workers(s, &self.down_workers(&pool));
        }
        Ok((pool, status))
    }

    async fn status_unmarked(
        &self,
        name: &str,
    ) -> Result<(String, Option<ConnectorStatus>), GatewayError> {
        match self
            .on_connector(name, &[], |c| async move { c.connector_status(name).await })
            .await
        {
            Ok((pool, s)) => Ok((pool, Some(s))),
            // "No status found": either gone, or so new that Connect has not written its status.
            Err(GatewayError::NotFound { .. }) => {
                let (pool, _) = self.info(name).await?;
                Ok((pool, None))
            }
            Err(e) => Err(e),
        }
    }

    /// How many tasks Connect generated for the connector of `status`, when the status alone
    /// would say RUNNING: tasks not started yet have no status entry, and until they run the
    /// connector is still provisioning. Connect answers the task list through its herder
    /// thread, slower than the status, so a count that agrees with the status is reused for
    /// [`TASK_COUNT_TTL`] (dropped on every change made through the gateway) and any other is
    /// asked again; `None` when it cannot be read (the status alone decides).
    async fn expected_tasks(&self, pool: &str, status: &ConnectorStatus) -> Option<usize> {
        if translate::connector_state(status) != translate::ManagedState::Running {
            return None;
        }
        let name = status.name.as_str();
        let cached = self
            .task_counts
            .lock()
            .expect("task counts lock")
            .get(name)
            .filter(|(n, at)| *n == status.tasks.len() && at.elapsed() < TASK_COUNT_TTL)
            .map(|(n, _)| *n);
        if cached.is_some() {
            return cached;
        }
        let info = self
            .call(pool, &[], |c| async move { c.connector(name).await })
            .await
            .ok()?;
        let n = info.tasks.len();
        self.task_counts
            .lock()
            .expect("task counts lock")
            .insert(name.to_string(), (n, Instant::now()));
        Some(n)
    }

    /// Drops the task count kept for `name` (its tasks may change).
    fn tasks_may_change(&self, name: &str) {
        self.task_counts
            .lock()
            .expect("task counts lock")
            .remove(name);
    }

    /// `GET .../status` in the managed shape. One call to Connect unless the status holds a
    /// trace (then the config is read to scrub it), Connect does not know the type, or the task
    /// count must be checked (see [`Self::expected_tasks`]).
    pub async fn managed_status(&self, name: &str) -> Result<ManagedStatus, GatewayError> {
        let mut status = self.managed_status_with_addresses(name).await?;
        translate::name_workers(&mut status, &self.worker_names());
        Ok(status)
    }

    async fn managed_status_with_addresses(
        &self,
        name: &str,
    ) -> Result<ManagedStatus, GatewayError> {
        let (pool, status) = self.status_unmarked(name).await?;
        let Some(mut status) = status else {
            let (_, info) = self.info(name).await?;
            let t = self
                .connector_type(
                    info.connector_type.as_deref(),
                    info.config.get("connector.class").map(String::as_str),
                )
                .await;
            return Ok(translate::provisioning_status(name, &t));
        };
        let expected_tasks = self.expected_tasks(&pool, &status).await;
        let down = translate::mark_down_workers(&mut status, &self.down_workers(&pool));
        let mut managed = self
            .managed_status_of(&pool, name, &status, expected_tasks)
            .await?;
        if let Some(reason) = down {
            translate::degrade_for_down_workers(&mut managed, &reason);
        }
        Ok(managed)
    }

    async fn managed_status_of(
        &self,
        pool: &str,
        name: &str,
        status: &ConnectorStatus,
        expected_tasks: Option<usize>,
    ) -> Result<ManagedStatus, GatewayError> {
        let has_trace = status.connector.trace.is_some()
            || status.tasks.iter().any(|t| t.state.trace.is_some());
        let known_type = matches!(status.connector_type.as_deref(), Some("sink" | "source"));
        if !has_trace && known_type {
            let t = status.connector_type.clone().unwrap_or_default();
            return Ok(translate::managed_status(status, expected_tasks, &t, &[]));
        }
        let (config, secrets) = self.config_and_secrets(pool, name).await?;
        let t = self
            .connector_type(
                status.connector_type.as_deref(),
                config.get("connector.class").map(String::as_str),
            )
            .await;
        Ok(translate::managed_status(
            status,
            expected_tasks,
            &t,
            &secrets,
        ))
    }

    /// Connect's config of `name` on `pool` (unmasked) and the secret values in it.
    async fn config_and_secrets(
        &self,
        pool: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, String>, Vec<String>), GatewayError> {
        let config = self
            .call(pool, &[], |c| async move { c.connector_config(name).await })
            .await?;
        let secrets = self
            .sensitivity(pool, &config)
            .await
            .masker()
            .secrets(&config);
        Ok((config, secrets))
    }

    /// Connect's config of `name` (unmasked) and its pool.
    pub async fn config(
        &self,
        name: &str,
    ) -> Result<(String, BTreeMap<String, String>), GatewayError> {
        self.on_connector(name, &[], |c| async move { c.connector_config(name).await })
            .await
    }

    /// `GET .../tasks`, configs masked.
    pub async fn tasks(&self, name: &str) -> Result<Value, GatewayError> {
        let (pool, config) = self.config(name).await?;
        let mut tasks = self
            .call(&pool, &[], |c| async move { c.task_configs(name).await })
            .await?;
        let sensitivity = self.sensitivity(&pool, &config).await;
        translate::mask_tasks(&mut tasks, &sensitivity.masker());
        Ok(tasks)
    }

    /// Connect's current offsets of `name`.
    pub async fn offsets(&self, name: &str) -> Result<Vec<Value>, GatewayError> {
        self.on_connector(name, &[], |c| async move { c.offsets(name).await })
            .await
            .map(|(_, o)| o)
    }

    // ----- writes -----

    /// Checks a new connector's name and config before anything is created. `config.name` must
    /// match `name` when given; `connector.class` must be given (Connect's own message for a
    /// missing class echoes the whole config, secrets included).
    pub fn check_new(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), GatewayError> {
        let mut problems = Vec::new();
        if name.trim().is_empty() {
            problems.push("name: is required; give the connector a name".to_string());
        }
        if name.trim() != name {
            problems.push("name: must not start or end with spaces".to_string());
        }
        if let Some(n) = config.get("name")
            && n != name
        {
            problems.push(format!(
                "config.name: \"{n}\" differs from the connector name \"{name}\"; make them equal or leave config.name out"
            ));
        }
        if config
            .get("connector.class")
            .is_none_or(|c| c.trim().is_empty())
        {
            problems.push(
                "config.\"connector.class\": is required; name the connector plugin, e.g. \"FileStreamSource\""
                    .to_string(),
            );
        }
        let masked: Vec<&String> = config
            .iter()
            .filter(|(_, v)| v.as_str() == translate::MASK)
            .map(|(k, _)| k)
            .collect();
        for key in masked {
            problems.push(format!(
                "config.\"{key}\": holds the mask {}; send the real value (masks only stand for an existing value on update)",
                translate::MASK
            ));
        }
        if let Err(e) = self.placement(config) {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(GatewayError::Invalid(problems))
        }
    }

    /// Creates a connector on its pool, optionally with initial offsets (created STOPPED, offsets
    /// patched, then started; if the offsets are refused the connector is removed again, so a
    /// refused create changes nothing). The guardrails review it first (a violating create is
    /// refused with every violation, nothing created, no secret file written); Connect gets the
    /// reviewed config: platform defaults added, literal secrets externalized. Returns once
    /// reads see the connector.
    pub async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: Option<&str>,
        offsets: &[Value],
        principal: &str,
    ) -> Result<Created, GatewayError> {
        let admission = self.admission.lock().await;
        self.tasks_may_change(name);
        self.create_admitted(admission, name, config, initial_state, offsets, principal)
            .await
    }

    /// [`Gateway::create`] with the admission lock held; the lock is released once Connect has
    /// the connector (from then on the department's usage includes it), not held while the
    /// create waits for reads or applies initial offsets.
    async fn create_admitted(
        &self,
        admission: tokio::sync::MutexGuard<'_, ()>,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: Option<&str>,
        offsets: &[Value],
        principal: &str,
    ) -> Result<Created, GatewayError> {
        let problems = match self.check_new(name, &config) {
            Ok(()) => Vec::new(),
            Err(GatewayError::Invalid(problems)) => problems,
            Err(e) => return Err(e),
        };
        // A name Connect cannot hold is refused before any call (the lookup below included).
        if let Some(problem) = translate::unaddressable(name, "name") {
            let mut problems = problems;
            problems.retain(|p| !p.starts_with("name:"));
            problems.insert(0, problem);
            return Err(GatewayError::Invalid(problems));
        }
        let pool = self
            .placement(&config)
            .unwrap_or_else(|_| self.department.default_pool.clone());
        // Before anything else: an existing connector's secret file must stay untouched.
        // Right after a delete through the supervisor, a worker that has not read it yet may
        // still list the name; Connect itself refuses a real duplicate (409).
        if !name.trim().is_empty()
            && !self.was_deleted(name)
            && let Some(existing) = self.find(name).await?
        {
            return Err(GatewayError::Exists {
                name: name.to_string(),
                pool: existing,
            });
        }
        let mut admitted = guardrails::admit(
            self,
            WriteRequest {
                operation: Operation::Create,
                name,
                config: &config,
                pool: &pool,
                problems,
                principal,
            },
        )
        .await?;
        if let Err(e) = admitted.stage() {
            admitted.rollback();
            return Err(e);
        }
        let secrets = admitted.scrub.clone();
        let state = if offsets.is_empty() {
            initial_state
        } else {
            Some("STOPPED")
        };
        let config_ref = &admitted.config;
        let created = self
            .call(&pool, &secrets, |c| async move {
                c.create_connector_in_state(name, config_ref, state).await
            })
            .await
            .map_err(|e| match e {
                GatewayError::Connect { status: 409, .. } => GatewayError::Exists {
                    name: name.to_string(),
                    pool: pool.clone(),
                },
                e => e,
            });
        let mut info = match created {
            Ok(info) => info,
            Err(e) => {
                admitted.rollback();
                return Err(e);
            }
        };
        self.remember(name, &pool);
        self.recent
            .lock()
            .expect("recent lock")
            .insert(name.to_string(), Instant::now());
        self.deleted.lock().expect("deleted lock").remove(name);
        drop(admission);
        self.wait_visible(&pool, name).await;
        if !offsets.is_empty()
            && let Err(e) = self
                .patch_when_stopped(&pool, name, RequestKind::Patch, offsets, &secrets)
                .await
        {
            let _ = self
                .call(
                    &pool,
                    &[],
                    |c| async move { c.delete_connector(name).await },
                )
                .await;
            self.forget(name);
            admitted.rollback();
            return Err(match e {
                GatewayError::Connect { status, message }
                    if status < 500 || message.contains("offset") =>
                {
                    GatewayError::Invalid(vec![format!("offsets: Connect refused them: {message}")])
                }
                e => e,
            });
        }
        // The connector exists from here on, with its secret file.
        admitted.commit(self);
        if self.department.recreate == crate::model::Recreate::Fresh
            && let Err(e) = self.ids.assign(name)
        {
            tracing::error!(connector = name, error = %e, code = e.code(),
                "The new connector's id could not be recorded; it has its name-derived id.");
        }
        if !offsets.is_empty() {
            let now = translate::rfc3339(time::OffsetDateTime::now_utc());
            let record = OffsetRequest {
                connector: name.to_string(),
                id: self.connector_id(name),
                pool: pool.clone(),
                kind: RequestKind::Patch,
                offsets: offsets.to_vec(),
                requested_at: now.clone(),
                phase: Phase::Applied,
                message: offsets::PATCH_APPLIED.to_string(),
                previous_offsets: Vec::new(),
                applied_at: Some(now),
                restore_state: initial_state.unwrap_or("RUNNING").to_string(),
                requested_by: principal.to_string(),
            };
            self.offsets.update(record)?;
            match initial_state.unwrap_or("RUNNING") {
                "STOPPED" => {}
                "PAUSED" => {
                    self.call(&pool, &[], |c| async move { c.pause(name).await })
                        .await?
                }
                _ => {
                    self.call(&pool, &[], |c| async move { c.resume(name).await })
                        .await?
                }
            }
            info.tasks.clear();
        }
        tracing::info!(connector = name, pool = %pool, principal, "Connector created.");
        Ok(Created { info, pool })
    }

    /// Waits (bounded) until the worker reads go to lists `name`: Connect answers a create from
    /// the leader, and a follower may not have read the config topic yet.
    async fn wait_visible(&self, pool: &str, name: &str) {
        let deadline = Instant::now() + VISIBLE_TIMEOUT;
        while Instant::now() < deadline {
            if self
                .on_pool(pool, |c| async move { c.connector(name).await })
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::warn!(
            connector = name,
            pool,
            "New connector not yet visible to reads."
        );
    }

    /// Creates or replaces the config of `name` (`PUT .../config`). Masks sent back stand for
    /// the current values (an externalized secret keeps its file entry), the managed extras
    /// echoed back are dropped, and a connector cannot change pools this way. The guardrails
    /// review the new config as an update (a create when the connector does not exist).
    /// Returns whether it was created.
    pub async fn put_config(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        strip_extras: bool,
        principal: &str,
    ) -> Result<(bool, String, ConnectorInfo), GatewayError> {
        self.ensure_not_busy(name)?;
        let config = if strip_extras {
            self.extras.strip(config)
        } else {
            config
        };
        let admission = self.admission.lock().await;
        let current = match self.config(name).await {
            Ok(found) => Some(found),
            Err(GatewayError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some((pool, current)) = current else {
            let created = self
                .create_admitted(admission, name, config, None, &[], principal)
                .await?;
            return Ok((true, created.pool, created.info));
        };
        let config = translate::unmask(&config, Some(&current)).map_err(|keys| {
            GatewayError::Invalid(
                keys.into_iter()
                    .map(|k| format!("config.\"{k}\": holds the mask but the connector has no value for it; send the real value"))
                    .collect(),
            )
        })?;
        let (created, info) = self
            .update_admitted(name, &pool, config, &current, principal)
            .await?;
        tracing::info!(connector = name, pool = %pool, principal, "Connector config replaced.");
        Ok((created, pool, info))
    }

    /// `PATCH /connectors/{name}/config` (Apache, KIP-477): `null` removes a key. The patch
    /// applies to the config as the user set it (the platform's defaults are added again by the
    /// review, so a patch never turns them into user keys).
    pub async fn patch_config(
        &self,
        name: &str,
        patch: &serde_json::Map<String, Value>,
        principal: &str,
    ) -> Result<(String, ConnectorInfo), GatewayError> {
        self.ensure_not_busy(name)?;
        let _admission = self.admission.lock().await;
        let (pool, current) = self.config(name).await?;
        let mut config = crate::policy::strip_applied(&current);
        config.remove(crate::policy::APPLIED_DEFAULTS_KEY);
        let mut problems = Vec::new();
        for (k, v) in patch {
            match v {
                Value::Null => {
                    config.remove(k);
                }
                Value::String(s) if s == translate::MASK => {}
                Value::String(s) => {
                    config.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    config.insert(k.clone(), n.to_string());
                }
                Value::Bool(b) => {
                    config.insert(k.clone(), b.to_string());
                }
                _ => problems.push(format!(
                    "\"{k}\": must be a string, or null to remove the key"
                )),
            }
        }
        if !problems.is_empty() {
            return Err(GatewayError::Invalid(problems));
        }
        let (_, info) = self
            .update_admitted(name, &pool, config, &current, principal)
            .await?;
        tracing::info!(connector = name, pool = %pool, principal, "Connector config patched.");
        Ok((pool, info))
    }

    /// Reviews and applies a new config of existing connector `name` (admission lock held):
    /// refused with every problem and violation, or the secret file staged, Connect's config
    /// replaced, and the file put back if Connect refuses.
    async fn update_admitted(
        &self,
        name: &str,
        pool: &str,
        config: BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
        principal: &str,
    ) -> Result<(bool, ConnectorInfo), GatewayError> {
        self.tasks_may_change(name);
        let problems = match self.check_update(name, pool, &config) {
            Ok(()) => Vec::new(),
            Err(GatewayError::Invalid(problems)) => problems,
            Err(e) => return Err(e),
        };
        let mut admitted = guardrails::admit(
            self,
            WriteRequest {
                operation: Operation::Update,
                name,
                config: &config,
                pool,
                problems,
                principal,
            },
        )
        .await?;
        let sensitivity = self.sensitivity(pool, current).await;
        admitted.scrub.extend(sensitivity.masker().secrets(current));
        if let Err(e) = admitted.stage() {
            admitted.rollback();
            return Err(e);
        }
        let config_ref = &admitted.config;
        match self
            .call(pool, &admitted.scrub, |c| async move {
                c.put_connector_config(name, config_ref).await
            })
            .await
        {
            Ok(answer) => {
                admitted.commit(self);
                Ok(answer)
            }
            Err(e) => {
                admitted.rollback();
                Err(e)
            }
        }
    }

    fn check_update(
        &self,
        name: &str,
        pool: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), GatewayError> {
        let mut problems = Vec::new();
        if let Some(n) = config.get("name")
            && n != name
        {
            problems.push(format!(
                "config.name: \"{n}\" differs from the connector name \"{name}\"; a rename is a delete and a create (offsets are lost)"
            ));
        }
        if let Some(wanted) = config.get(POOL_CONFIG_KEY)
            && wanted != pool
        {
            if self.department.pool(wanted).is_none() {
                problems.push(format!(
                    "config.\"{POOL_CONFIG_KEY}\": no pool is named \"{wanted}\"; use one of: {}",
                    self.pools().join(", ")
                ));
            } else {
                problems.push(format!(
                    "config.\"{POOL_CONFIG_KEY}\": connector {name} runs on pool {pool}; moving it to pool {wanted} is not done by an update: delete it and create it on {wanted} (carry its offsets over with the create's offsets)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(GatewayError::Invalid(problems))
        }
    }

    /// Deletes `name`, forgets its offsets request and removes its secret file.
    pub async fn delete(&self, name: &str, principal: &str) -> Result<(), GatewayError> {
        self.ensure_not_busy(name)?;
        let _admission = self.admission.lock().await;
        if self.was_deleted(name) {
            return Err(GatewayError::NotFound {
                name: name.to_string(),
            });
        }
        let pool = self.locate(name).await?;
        if self.department.recreate == crate::model::Recreate::Fresh {
            self.reset_offsets_before_delete(&pool, name).await;
        }
        match self
            .call(
                &pool,
                &[],
                |c| async move { c.delete_connector(name).await },
            )
            .await
        {
            Ok(()) => {}
            Err(GatewayError::Connect { status: 404, .. }) => {
                self.forget(name);
                // Deleted behind the supervisor's back: its secrets go too.
                self.remove_secret_file(name);
                return Err(GatewayError::NotFound {
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
        self.forget(name);
        // Reads through the supervisor must not show it again, whatever a worker that has not
        // read the delete yet answers.
        self.deleted
            .lock()
            .expect("deleted lock")
            .insert(name.to_string(), Instant::now());
        self.offsets.remove(name)?;
        self.remove_secret_file(name);
        if let Err(e) = self.ids.forget(name) {
            tracing::error!(connector = name, error = %e, code = e.code(),
                "The deleted connector's id could not be dropped from the record.");
        }
        tracing::info!(connector = name, pool = %pool, principal, "Connector deleted.");
        Ok(())
    }

    /// With `recreate = "fresh"`: stops `name` and resets its offsets (KIP-875) before it is
    /// deleted, so a connector created later under the same name starts from nothing, as on
    /// the managed service (Connect itself keeps a deleted connector's offsets). A failure is
    /// logged and the delete goes on: a delete must not fail because of its clean-up.
    async fn reset_offsets_before_delete(&self, pool: &str, name: &str) {
        let result = match self
            .call(pool, &[], |c| async move { c.stop(name).await })
            .await
        {
            Ok(()) => {
                self.patch_when_stopped(pool, name, RequestKind::Delete, &[], &[])
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::info!(connector = name, "Offsets reset before the delete."),
            Err(e) => tracing::warn!(connector = name, error = %e, code = e.code(),
                "The offsets could not be reset before the delete; a connector created under this name may resume from them."),
        }
    }

    /// Removes the secret file of a connector that no longer exists. A failure is logged, not
    /// returned: the connector is gone, and its delete must not read as failed (Terraform would
    /// retry it into a 404).
    fn remove_secret_file(&self, name: &str) {
        match self.secrets.remove(name) {
            Ok(true) => tracing::info!(connector = name, "Connector secret file removed."),
            Ok(false) => {}
            Err(e) => tracing::error!(connector = name, error = %e, code = e.code(),
                "The secret file of a deleted connector could not be removed; remove it by hand."),
        }
    }

    /// Pause, resume, stop: `action` is the Connect path segment.
    pub async fn lifecycle(
        &self,
        name: &str,
        action: Lifecycle,
        principal: &str,
    ) -> Result<(), GatewayError> {
        self.ensure_not_busy(name)?;
        self.tasks_may_change(name);
        self.on_connector(name, &[], |c| async move {
            match action {
                Lifecycle::Pause => c.pause(name).await,
                Lifecycle::Resume => c.resume(name).await,
                Lifecycle::Stop => c.stop(name).await,
                Lifecycle::Restart { only_failed } => c.restart(name, true, only_failed).await,
            }
        })
        .await?;
        tracing::info!(
            connector = name,
            action = action.as_str(),
            principal,
            "Connector lifecycle request."
        );
        Ok(())
    }

    /// Connect's validation of `config` for `plugin`, masked, with the guardrails' violations
    /// added to the keys they concern (a dry run of a create). Unknown plugins are a 404 naming
    /// the installed ones.
    pub async fn validate(
        &self,
        plugin: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Value, GatewayError> {
        if let Some(problem) = translate::unaddressable(plugin, "plugin name") {
            return Err(GatewayError::Invalid(vec![problem]));
        }
        if config
            .get("connector.class")
            .is_none_or(|c| c.trim().is_empty())
        {
            // Connect answers a 500 that echoes the whole config (secrets included).
            return Err(GatewayError::Invalid(vec![format!(
                "config.\"connector.class\": is required; set it to the plugin being validated, e.g. \"connector.class\": \"{}\"",
                plugin.escape_debug()
            )]));
        }
        let plugins = self.plugins().await?;
        if !plugins
            .iter()
            .any(|p| translate::plugin_matches(&p.class_name, plugin))
        {
            return Err(GatewayError::PluginNotFound {
                plugin: plugin.to_string(),
                installed: plugins
                    .iter()
                    .map(|p| {
                        p.class_name
                            .rsplit('.')
                            .next()
                            .unwrap_or(&p.class_name)
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let pool = self
            .placement(config)
            .unwrap_or_else(|_| self.department.default_pool.clone());
        let sensitivity = self.sensitivity(&pool, config).await;
        let masker = sensitivity.masker();
        let secrets = masker.secrets(config);
        let mut infos = self
            .call(&pool, &secrets, |c| async move {
                c.validate(plugin, config).await
            })
            .await?;
        translate::mask_validation(&mut infos, &masker, &secrets);
        let violations =
            guardrails::dry_run(self, plugin, config, sensitivity.password_keys()).await?;
        guardrails::add_to_validation(&mut infos, &violations, &masker.mask(config));
        Ok(infos)
    }

    // ----- offsets requests -----

    /// The last offsets request of `name`.
    pub async fn offsets_request(&self, name: &str) -> Result<Option<OffsetRequest>, GatewayError> {
        self.locate(name).await?;
        // A connector deleted behind the supervisor's back has no request to show.
        if self.department.pools.len() == 1 {
            self.info(name).await?;
        }
        Ok(self.offsets.get(name))
    }

    /// Records an offsets request and starts applying it in the background. The connector's
    /// state and offsets before the change are captured first, so the connector goes back to
    /// that state and the request status shows the previous offsets.
    pub async fn submit_offsets(
        self: &Arc<Self>,
        name: &str,
        kind: RequestKind,
        requested: Vec<Value>,
        principal: &str,
    ) -> Result<OffsetRequest, GatewayError> {
        if kind == RequestKind::Patch && requested.is_empty() {
            return Err(GatewayError::Invalid(vec![
                "offsets: a PATCH request needs at least one {partition, offset}; use type DELETE to reset all offsets".into(),
            ]));
        }
        self.ensure_not_busy(name)?;
        // A connector restarted by a config update shows UNASSIGNED for a moment, whatever its
        // target state: wait for it to settle, or a paused connector would be resumed.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let (pool, status) = loop {
            let (pool, status) = self.status(name).await?;
            let settled = status.as_ref().is_some_and(|s| {
                matches!(
                    s.connector.state.as_str(),
                    "RUNNING" | "PAUSED" | "STOPPED" | "FAILED"
                )
            });
            if settled || Instant::now() >= deadline {
                break (pool, status);
            }
            tracing::debug!(
                connector = name,
                state = status.as_ref().map(|s| s.connector.state.as_str()),
                "Offsets request: waiting for the connector to settle."
            );
            tokio::time::sleep(POLL).await;
        };
        let restore_state = match status.as_ref().map(|s| s.connector.state.as_str()) {
            Some("PAUSED") => "PAUSED",
            Some("STOPPED") => "STOPPED",
            _ => "RUNNING",
        };
        let previous = self
            .call(&pool, &[], |c| async move { c.offsets(name).await })
            .await?;
        let record = OffsetRequest {
            connector: name.to_string(),
            id: self.connector_id(name),
            pool,
            kind,
            offsets: requested,
            requested_at: translate::rfc3339(time::OffsetDateTime::now_utc()),
            phase: Phase::Pending,
            message: String::new(),
            previous_offsets: previous,
            applied_at: None,
            restore_state: restore_state.to_string(),
            requested_by: principal.to_string(),
        };
        self.offsets.begin(record.clone())?;
        tracing::info!(
            connector = name,
            kind = kind.as_str(),
            principal,
            "Offsets request accepted."
        );
        let gateway = Arc::clone(self);
        let connector = name.to_string();
        tokio::spawn(async move { gateway.apply_offsets(connector, false).await });
        Ok(record)
    }

    /// Waits up to `timeout` until each of `pools` has a ready worker; whether they all have.
    async fn wait_for_ready_workers(&self, pools: &[String], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = pools
                .iter()
                .all(|p| !self.supervisor.ready_worker_urls(p).is_empty());
            if ready || Instant::now() >= deadline {
                return ready;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Once every pool has a ready worker (waiting up to [`RECOVERY_TIMEOUT`]), sweeps the
    /// secrets folder once in the background (see [`Self::sweep_secret_files`]).
    pub fn sweep_secret_files_when_ready(self: &Arc<Self>) {
        let gateway = Arc::clone(self);
        tokio::spawn(async move {
            if !gateway
                .wait_for_ready_workers(&gateway.pools(), RECOVERY_TIMEOUT)
                .await
            {
                gateway
                    .supervisor
                    .observer()
                    .emit(SecretSweepSkipped { error: None });
                return;
            }
            if let Err(e) = gateway.sweep_secret_files(SWEEP_CONFIRM).await {
                gateway.supervisor.observer().emit(SecretSweepSkipped {
                    error: Some(e.to_string()),
                });
            }
        });
    }

    /// Removes the secret files that no connector uses any more: those of connectors deleted
    /// while the supervisor was down, or on a worker's own API, and temporary files a crash left
    /// mid-write, so no literal secret stays on disk without a connector. The connectors of
    /// every pool are listed twice, `confirm` apart, and a file goes only when both listings
    /// miss its connector and it was last written [`SWEEP_MIN_AGE`] before the first; when a
    /// pool does not answer, nothing is removed. Returns the files removed.
    pub async fn sweep_secret_files(
        &self,
        confirm: Duration,
    ) -> Result<Vec<PathBuf>, GatewayError> {
        let before = std::time::SystemTime::now() - SWEEP_MIN_AGE;
        let mut live: BTreeSet<String> = self.names().await?.into_iter().collect();
        let first = self.secrets.orphans(&live, before)?;
        if first.is_empty() {
            return Ok(Vec::new());
        }
        tokio::time::sleep(confirm).await;
        // Creates and updates wait while the sweep confirms and removes, so a file a create
        // of the same name writes meanwhile is never taken.
        let _admission = self.admission.lock().await;
        live.extend(self.names().await?);
        let confirmed: BTreeSet<PathBuf> =
            self.secrets.orphans(&live, before)?.into_iter().collect();
        let mut removed = Vec::new();
        for path in first.into_iter().filter(|p| confirmed.contains(p)) {
            if self.secrets.remove_file(&path)? {
                self.supervisor
                    .observer()
                    .emit(SecretFileRemoved { file: path.clone() });
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Takes up the requests that were pending when the supervisor stopped.
    pub fn resume_pending_offsets(self: &Arc<Self>) {
        for record in self.offsets.pending() {
            tracing::warn!(connector = %record.connector, kind = record.kind.as_str(),
                "Taking up an offsets request left pending by the previous supervisor run.");
            let gateway = Arc::clone(self);
            tokio::spawn(async move { gateway.apply_offsets(record.connector, true).await });
        }
    }

    async fn apply_offsets(self: Arc<Self>, connector: String, recovering: bool) {
        let Some(mut record) = self.offsets.in_flight(&connector) else {
            return;
        };
        if recovering {
            self.wait_for_ready_workers(std::slice::from_ref(&record.pool), RECOVERY_TIMEOUT)
                .await;
        }
        let name = connector.as_str();
        let pool = record.pool.clone();
        self.tasks_may_change(name);
        let result: Result<(), GatewayError> = async {
            let (_, secrets) = self.config_and_secrets(&pool, name).await?;
            self.call(&pool, &secrets, |c| async move { c.stop(name).await })
                .await?;
            self.patch_when_stopped(&pool, name, record.kind, &record.offsets, &secrets)
                .await
        }
        .await;
        // Back to the previous state whatever happened: a failed request must not leave the
        // connector stopped behind the user's back.
        let restore = match record.restore_state.as_str() {
            "STOPPED" => Ok(()),
            "PAUSED" => {
                self.call(&pool, &[], |c| async move { c.pause(name).await })
                    .await
            }
            _ => {
                self.call(&pool, &[], |c| async move { c.resume(name).await })
                    .await
            }
        };
        match (result, restore) {
            (Ok(()), Ok(())) => {
                record.phase = Phase::Applied;
                record.message = record.applied_message().to_string();
                record.applied_at = Some(translate::rfc3339(time::OffsetDateTime::now_utc()));
                self.supervisor.observer().emit(OffsetsRequestApplied {
                    connector: connector.clone(),
                    kind: record.kind.as_str(),
                });
            }
            (Err(e), restore) => {
                record.phase = Phase::Failed;
                record.message = format!(
                    "the offsets could not be {}: {e}{}",
                    if record.kind == RequestKind::Patch {
                        "altered"
                    } else {
                        "reset"
                    },
                    match restore {
                        Ok(()) => String::new(),
                        Err(r) => format!(
                            "; returning the connector to {} also failed: {r}",
                            record.restore_state
                        ),
                    }
                );
                self.supervisor.observer().emit(OffsetsRequestFailed {
                    connector: connector.clone(),
                    kind: record.kind.as_str(),
                    code: e.code(),
                });
            }
            (Ok(()), Err(r)) => {
                record.phase = Phase::Failed;
                record.message = format!(
                    "the offsets were changed, but returning the connector to {} failed: {r}; resume or pause it yourself",
                    record.restore_state
                );
                self.supervisor.observer().emit(OffsetsRestoreFailed {
                    connector: connector.clone(),
                    state: record.restore_state.clone(),
                    code: r.code(),
                });
            }
        }
        if let Err(e) = self.offsets.update(record) {
            tracing::error!(connector = name, error = %e, code = e.code(), "Offsets request outcome could not be recorded.");
        }
    }

    /// Waits until `name` is STOPPED with no tasks, then alters or resets its offsets, retrying
    /// while Connect still says the connector is not stopped.
    async fn patch_when_stopped(
        &self,
        pool: &str,
        name: &str,
        kind: RequestKind,
        offsets: &[Value],
        secrets: &[String],
    ) -> Result<(), GatewayError> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let status = self
                .call(
                    pool,
                    secrets,
                    |c| async move { c.connector_status(name).await },
                )
                .await;
            let stopped =
                matches!(&status, Ok(s) if s.connector.state == "STOPPED" && s.tasks.is_empty());
            if stopped {
                break;
            }
            if Instant::now() >= deadline {
                return Err(GatewayError::Connect {
                    status: 500,
                    message: format!(
                        "connector {name} did not stop within {}s",
                        STOP_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        loop {
            let result = match kind {
                RequestKind::Patch => {
                    self.call(pool, secrets, |c| async move {
                        c.alter_offsets(name, offsets).await
                    })
                    .await
                }
                RequestKind::Delete => {
                    self.call(
                        pool,
                        secrets,
                        |c| async move { c.reset_offsets(name).await },
                    )
                    .await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(GatewayError::Connect {
                    status: 400,
                    message,
                }) if message.contains("STOPPED") && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A lifecycle action on a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `PUT .../pause`.
    Pause,
    /// `PUT .../resume`.
    Resume,
    /// `PUT .../stop` (KIP-875).
    Stop,
    /// Connector and tasks (or only the failed ones).
    Restart {
        /// Only failed instances.
        only_failed: bool,
    },
}

impl Lifecycle {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
            Self::Restart { .. } => "restart",
        }
    }
}

/// A failed call to a pool, before secrets are known.
#[derive(Debug)]
pub enum ConnectErrorIn {
    /// The pool has no ready worker.
    NoWorker(String),
    /// Connect's error, from this pool.
    Connect(String, ConnectError),
}

impl ConnectErrorIn {
    /// Whether Connect said 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Connect(_, e) if e.is_not_found())
    }

    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoWorker(_) => "no_ready_worker",
            Self::Connect(_, e) => e.code(),
        }
    }

    /// As a [`GatewayError`], Connect's message scrubbed of `secrets`.
    pub fn into_gateway(self, secrets: &[String]) -> GatewayError {
        match self {
            Self::NoWorker(pool) => GatewayError::NoWorker { pool },
            Self::Connect(pool, e) => GatewayError::from_connect(e, &pool, secrets),
        }
    }
}

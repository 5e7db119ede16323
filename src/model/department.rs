//! The validated department and its parts: Kafka connection, runtime, supervisor process,
//! pools, GitOps mode, and the Connect cluster identity derived from a pool.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::auth::AuthSettings;
use super::budget::{Budget, ResourceUsage, WorkerResources};
use super::observe::Observability;
use super::policy::PolicyRules;
use super::secrets::SecretRules;
use super::supervision::{PolicyOverrides, Supervision, SupervisionPolicy};

/// Suffix of a pool's Connect config topic (`<dept>-connect-<pool>-configs`).
pub const CONFIG_TOPIC_SUFFIX: &str = "configs";
/// Suffix of a pool's Connect offsets topic.
pub const OFFSET_TOPIC_SUFFIX: &str = "offsets";
/// Suffix of a pool's Connect status topic.
pub const STATUS_TOPIC_SUFFIX: &str = "status";

/// A validated department: one supervisor instance, one Kubernetes namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Department {
    /// Department id: `^[a-z][a-z0-9]{0,31}$`. No dashes, so that `<id>-` is an unambiguous prefix
    /// for connector names, Connect group ids and internal topics (prefix ACLs in Kafka).
    pub id: String,
    /// Managed-API identity: the `environment_id` path segment clients use.
    pub environment_id: String,
    /// Managed-API identity: the `kafka_cluster_id` path segment clients use.
    pub kafka_cluster_id: String,
    /// Kafka connection shared by every worker of every pool.
    pub kafka: KafkaSettings,
    /// Where the Connect runtime (jars, plugins, log configs) lives.
    pub runtime: RuntimeSettings,
    /// The supervisor process itself: where it listens, where it keeps its state.
    pub supervisor: SupervisorSettings,
    /// Upper bounds over all pools together.
    pub budget: Budget,
    /// Worker pools, in file order; names are unique. Each pool is its own Connect cluster.
    pub pools: Vec<Pool>,
    /// Name of the pool new connectors go to unless their config names another one.
    pub default_pool: String,
    /// What a connector created under the name of a deleted one starts from
    /// (`department.recreate`).
    pub recreate: Recreate,
    /// Which connector config keys are secrets and what happens to literal secret values.
    pub secrets: SecretRules,
    /// Who may call the API (`[auth]`): keys, tokens, roles.
    pub auth: AuthSettings,
    /// Guardrails for connectors: naming, quotas, plugins, topics, defaults, Rego policies.
    pub policy: PolicyRules,
    /// How workers are supervised (`[supervision]`): cgroups, restarts, health checks.
    pub supervision: Supervision,
    /// Logs, auto-restart, Connect metrics, audit and readiness (`[logs]`, `[auto_restart]`,
    /// `[metrics]`, `[audit]`, `[health]`).
    pub observe: Observability,
    /// The continuous GitOps mode of `run` (`[gitops]`), when configured.
    pub gitops: Option<GitopsSettings>,
}

/// What the continuous GitOps mode does with drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Report drift (metric, events, log) and change nothing.
    Report,
    /// Apply the folder to put drifted connectors back (Argo CD's self-heal).
    Heal,
}

impl DriftMode {
    /// `report` or `heal`, as in the department file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Heal => "heal",
        }
    }
}

/// `[gitops]`: re-plan a connector folder on a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsSettings {
    /// The folder (or Git checkout) of connector files.
    pub source: PathBuf,
    /// Time between two plans.
    pub interval: Duration,
    /// Report or heal.
    pub mode: DriftMode,
    /// Only this environment's files (per-environment layout).
    pub environment: Option<String>,
    /// Owner label (as `plan --owner`); the source as written when not set.
    pub owner: String,
    /// Delete this folder's connectors that no file defines, in heal mode.
    pub prune: bool,
}

/// Default owner label of a folder: its path as given, without `./` or a trailing `/`.
pub fn default_owner(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            let text = p.to_string_lossy();
            let text = text.trim_end_matches('/');
            text.strip_prefix("./").unwrap_or(text).to_string()
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// What a connector created again under the name of a deleted one gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recreate {
    /// As on the managed service (the default): a new `lcc-` id, and no offsets (the deleted
    /// connector's offsets are reset when it is deleted).
    #[default]
    Fresh,
    /// Kafka Connect's own behaviour: the same id (derived from the name), and the deleted
    /// connector's offsets are where the new one starts.
    Resume,
}

impl Recreate {
    /// The value in the department file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Resume => "resume",
        }
    }
}

/// Kafka bootstrap and client settings, passed through to every worker.
#[derive(Clone, PartialEq)]
pub struct KafkaSettings {
    /// `bootstrap.servers` of the workers.
    pub bootstrap_servers: String,
    /// Replication factor of the Connect internal topics; `-1` takes the broker default.
    pub internal_topic_replication_factor: i16,
    /// Client settings (`security.protocol`, `sasl.*`, `ssl.*`...) given to the worker and to the
    /// producer, consumer and admin clients of its connectors. Values may be secrets.
    pub client: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Client settings can hold passwords (sasl.jaas.config, ssl.keystore.password): only keys.
        f.debug_struct("KafkaSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field(
                "internal_topic_replication_factor",
                &self.internal_topic_replication_factor,
            )
            .field("client_keys", &self.client.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where the Connect runtime materialised from `images/connect-runtime/pom.xml` lives.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// Root of the runtime layout (`connect/`, `plugins/`, `agents/`, `config/`, `broker/`).
    pub dir: PathBuf,
    /// The `java` executable (a name looked up on `PATH`, or a path).
    pub java: PathBuf,
}

/// Settings of the supervisor process.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSettings {
    /// Address of the supervisor's HTTP server (managed API, admin API, health, metrics).
    pub listen: SocketAddr,
    /// Folder for worker properties, secret files and other state the supervisor owns.
    pub state_dir: PathBuf,
    /// Host the workers bind their REST listener to and advertise to each other.
    pub worker_host: String,
    /// First REST port of the workers; worker `k` of the department (in pool order) gets
    /// `rest_port_base + k`. `None` picks free ports at start, kept for the supervisor's life.
    pub rest_port_base: Option<u16>,
    /// Timeouts and the connection bound of the supervisor's HTTP server.
    pub http: HttpLimits,
}

/// Timeouts and the connection bound of the supervisor's HTTP server, so a slow or idle client
/// cannot hold a connection (and memory) forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// Longest time a client may take to send a request's headers (`header_read_timeout`).
    pub header_read_timeout: std::time::Duration,
    /// Longest time a client may take to send a request's body (`body_read_timeout`).
    pub body_read_timeout: std::time::Duration,
    /// A keep-alive connection without a request for this long is closed (`idle_timeout`).
    pub idle_timeout: std::time::Duration,
    /// Connections served at once; more are answered 503 and closed (`max_connections`).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// One pool of Connect workers: its own Connect cluster (group id and internal topics).
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Pool name: `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`, at most 24 characters.
    pub name: String,
    /// Number of workers.
    pub workers: u32,
    /// Resources of each worker.
    pub worker: WorkerResources,
    /// Extra JVM options appended after the ones derived from the resources.
    pub jvm_options: Vec<String>,
    /// Extra worker properties; they override the derived defaults, never the identity keys
    /// (group id, internal topics, listeners) which config validation refuses.
    pub worker_config: BTreeMap<String, String>,
    /// This pool's overrides of the department's supervision policy (`[pools.supervision]`).
    pub supervision: PolicyOverrides,
}

impl Department {
    /// The pool with this name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Connect cluster identity of a pool: group id and internal topic names, all starting with
    /// `<department>-connect-<pool>` so Kafka ACLs can be prefix-based and two departments can
    /// never join one Connect group.
    pub fn cluster_identity(&self, pool: &str) -> ClusterIdentity {
        let group_id = format!("{}-connect-{}", self.id, pool);
        ClusterIdentity {
            config_topic: format!("{group_id}-{CONFIG_TOPIC_SUFFIX}"),
            offset_topic: format!("{group_id}-{OFFSET_TOPIC_SUFFIX}"),
            status_topic: format!("{group_id}-{STATUS_TOPIC_SUFFIX}"),
            group_id,
        }
    }

    /// Total workers, CPU and memory the pools ask for.
    pub fn usage(&self) -> ResourceUsage {
        ResourceUsage::of(self.pools.iter().map(|p| (p.workers, p.worker)))
    }
}

/// Group id and internal topics of one pool's Connect cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// `group.id` of the workers.
    pub group_id: String,
    /// `config.storage.topic`.
    pub config_topic: String,
    /// `offset.storage.topic`.
    pub offset_topic: String,
    /// `status.storage.topic`.
    pub status_topic: String,
}

impl Department {
    /// The supervision settings of `pool` (restarts, stop grace, health checks): the department's
    /// `[supervision]` defaults with the pool's overrides. Not to be confused with the field
    /// [`Department::policy`], the connector guardrails.
    pub fn supervision(&self, pool: &Pool) -> SupervisionPolicy {
        pool.supervision.apply(self.supervision.defaults)
    }
}

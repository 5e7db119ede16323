//! Shared domain types: the validated department, its pools and workers, and the names derived
//! from them.
//!
//! Everything here is plain data with no I/O. A [`Department`] only exists in validated form: it is
//! built by [`crate::config`], which checks every rule documented on the fields below, so code that
//! holds one can rely on those rules.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    pub auth: crate::auth::AuthSettings,
    /// Guardrails for connectors: naming, quotas, plugins, topics, defaults, Rego policies.
    pub policy: crate::policy::PolicyRules,
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

/// What the supervisor does with a literal secret value in a connector config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    /// Write the value to a per-connector secret file readable only by the workers and replace it
    /// with a `${file:...}` config-provider reference, so it never reaches Kafka's config topic.
    Externalize,
    /// Refuse literal secrets; only `${provider:...}` references are accepted.
    Reject,
    /// Pass literal secrets through to Connect (still masked in every output).
    Allow,
}

/// Department rules about secrets in connector configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRules {
    /// Patterns of sensitive keys, matched case-insensitively: a pattern with `*` is a glob over
    /// the whole key (`*.jaas.config`), one without is a substring (`password` matches
    /// `connection.password`). Connect's PASSWORD-typed keys are sensitive whatever these say.
    pub sensitive_keys: Vec<String>,
    /// What happens to literal secret values.
    pub mode: SecretMode,
    /// Config providers whose `${provider:...}` references are accepted as secret values.
    pub allowed_providers: Vec<String>,
}

/// Default sensitive-key patterns.
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "private",
    "api.key",
    "apikey",
    "api_key",
    "keystore.key",
    "*.jaas.config",
];

/// Default config providers accepted in `${provider:...}` references.
pub const DEFAULT_ALLOWED_PROVIDERS: &[&str] = &["file", "dir", "env"];

impl Default for SecretRules {
    fn default() -> Self {
        Self {
            sensitive_keys: DEFAULT_SENSITIVE_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            mode: SecretMode::Externalize,
            allowed_providers: DEFAULT_ALLOWED_PROVIDERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl SecretRules {
    /// Whether `key` matches one of the sensitive-key patterns.
    pub fn is_sensitive(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.sensitive_keys.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            if pattern.contains('*') {
                glob_match(&pattern, &key)
            } else {
                key.contains(&pattern)
            }
        })
    }
}

/// Matches `text` against a glob where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
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

/// Department-wide upper bounds, checked at load and on every scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Maximum number of workers over all pools.
    pub max_workers: u32,
    /// Maximum CPU over all workers, in cores.
    pub cpu: Cpu,
    /// Maximum memory over all workers.
    pub memory: ByteSize,
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

/// CPU, memory and process limits of one worker, and the JVM sizing derived from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerResources {
    /// CPU quota, in cores (e.g. 0.5).
    pub cpu: Cpu,
    /// Memory limit of the worker's cgroup.
    pub memory: ByteSize,
    /// Maximum number of processes/threads in the worker's cgroup.
    pub pids: u32,
    /// Heap as a percentage of `memory` (1..=95).
    pub heap_percent: u8,
    /// An explicit heap size; overrides `heap_percent`.
    pub heap: Option<ByteSize>,
}

impl WorkerResources {
    /// The JVM heap (`-Xmx`/`-Xms`) for these resources.
    pub fn heap_bytes(&self) -> u64 {
        match self.heap {
            Some(heap) => heap.bytes(),
            None => {
                self.memory
                    .bytes()
                    .saturating_mul(u64::from(self.heap_percent))
                    / 100
            }
        }
    }

    /// `-XX:ActiveProcessorCount`: the CPU quota rounded up, at least 1.
    pub fn active_processor_count(&self) -> u32 {
        self.cpu.millis().div_ceil(1000).max(1)
    }
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

/// Resources asked for by a set of pools, to compare with a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceUsage {
    /// Number of workers.
    pub workers: u64,
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl ResourceUsage {
    /// Sum over `(worker count, resources per worker)` pairs.
    pub fn of(pools: impl IntoIterator<Item = (u32, WorkerResources)>) -> Self {
        pools
            .into_iter()
            .fold(Self::default(), |acc, (count, worker)| Self {
                workers: acc.workers + u64::from(count),
                cpu_millis: acc.cpu_millis + u64::from(count) * u64::from(worker.cpu.millis()),
                memory_bytes: acc.memory_bytes + u64::from(count) * worker.memory.bytes(),
            })
    }

    /// Every way this usage exceeds `budget`, as messages naming the budget and the figure.
    pub fn exceeds(&self, budget: &Budget) -> Vec<String> {
        let mut over = Vec::new();
        if self.workers > u64::from(budget.max_workers) {
            over.push(format!(
                "{} workers exceed the department budget of {} workers (budget.max_workers)",
                self.workers, budget.max_workers
            ));
        }
        if self.cpu_millis > u64::from(budget.cpu.millis()) {
            over.push(format!(
                "{} CPU exceed the department budget of {} CPU (budget.cpu)",
                Cpu::from_millis(self.cpu_millis.min(u64::from(u32::MAX)) as u32),
                budget.cpu
            ));
        }
        if self.memory_bytes > budget.memory.bytes() {
            over.push(format!(
                "{} of memory exceed the department budget of {} (budget.memory)",
                ByteSize::new(self.memory_bytes),
                budget.memory
            ));
        }
        over
    }
}

/// Stable identity of a worker: `<pool>-<n>`, kept across restarts so Connect keeps its task
/// assignment when a worker comes back quickly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId {
    /// The pool.
    pub pool: String,
    /// Index within the pool, from 0.
    pub index: u32,
}

impl WorkerId {
    /// Worker `index` of `pool`.
    pub fn new(pool: impl Into<String>, index: u32) -> Self {
        Self {
            pool: pool.into(),
            index,
        }
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pool, self.index)
    }
}

/// An amount of CPU, stored in millicores (1000 = one core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cpu(u32);

impl Cpu {
    /// `millis` thousandths of a core.
    pub const fn from_millis(millis: u32) -> Self {
        Self(millis)
    }

    /// Millicores.
    pub const fn millis(self) -> u32 {
        self.0
    }

    /// Parses `"0.5"`, `"2"`, `"500m"` (Kubernetes style), or a TOML number given as text.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(m) = text.strip_suffix('m') {
            return m.parse::<u32>().ok().filter(|m| *m > 0).map(Self);
        }
        Self::from_cores(text.parse::<f64>().ok()?)
    }

    /// From a number of cores; `None` unless positive, finite and at most 1024.
    pub fn from_cores(cores: f64) -> Option<Self> {
        if !(cores.is_finite() && cores > 0.0 && cores <= 1024.0) {
            return None;
        }
        let millis = (cores * 1000.0).round() as u32;
        (millis > 0).then_some(Self(millis))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            let text = format!("{:.3}", f64::from(self.0) / 1000.0);
            write!(f, "{}", text.trim_end_matches('0'))
        }
    }
}

/// An amount of memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

const KIB: u64 = 1024;
const MIB: u64 = KIB * 1024;
const GIB: u64 = MIB * 1024;

impl ByteSize {
    /// `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// `mib` MiB.
    pub const fn mib(mib: u64) -> Self {
        Self(mib * MIB)
    }

    /// Bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"512MiB"`, `"2GiB"`, `"768Mi"` (Kubernetes), `"1G"`, `"64M"` (JVM style, binary),
    /// or a plain number of bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        let factor = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "Ki" | "KiB" | "k" => KIB,
            "M" | "MB" | "Mi" | "MiB" | "m" => MIB,
            "G" | "GB" | "Gi" | "GiB" | "g" => GIB,
            _ => return None,
        };
        number.checked_mul(factor).map(Self)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= GIB && b.is_multiple_of(GIB) {
            write!(f, "{}GiB", b / GIB)
        } else if b >= MIB && b.is_multiple_of(MIB) {
            write!(f, "{}MiB", b / MIB)
        } else if b >= KIB && b.is_multiple_of(KIB) {
            write!(f, "{}KiB", b / KIB)
        } else {
            write!(f, "{b}B")
        }
    }
}

/// What the department asks of cgroups (`supervision.cgroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupMode {
    /// Enforce the limits when cgroups are writable; otherwise start degraded, with a warning.
    Auto,
    /// Refuse to start when the limits cannot be enforced by the kernel.
    Required,
    /// Never touch cgroups (degraded mode on purpose).
    Off,
}

/// Department-wide supervision settings (`[supervision]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Supervision {
    /// Whether worker limits are enforced with cgroups.
    pub cgroups: CgroupMode,
    /// How often every worker's usage (CPU, memory, throttling, OOM kills) is sampled; in
    /// degraded mode this is also how often memory is checked against the limit.
    pub sample_interval: std::time::Duration,
    /// The policy of every pool, unless a pool overrides part of it.
    pub defaults: SupervisionPolicy,
    /// The CPU boost of starting workers (`startup_cpu_boost`, `startup_cpu_max`).
    pub startup_boost: StartupBoost,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            cgroups: CgroupMode::Auto,
            sample_interval: std::time::Duration::from_secs(5),
            defaults: SupervisionPolicy::default(),
            startup_boost: StartupBoost::default(),
        }
    }
}

/// A starting worker's CPU quota is raised out of the department's unused CPU budget until it is
/// ready, then dropped to its limit: the JVM's start (class loading, JIT) is CPU-bound and a
/// 1-CPU quota roughly doubles it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartupBoost {
    /// Whether starting workers are boosted at all.
    pub enabled: bool,
    /// Most CPU a starting worker gets, its own limit included (`None`: its limit plus all of
    /// the unused budget).
    pub max: Option<Cpu>,
}

impl Default for StartupBoost {
    fn default() -> Self {
        Self {
            enabled: true,
            max: None,
        }
    }
}

/// How the workers of one pool are kept alive and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisionPolicy {
    /// Time a worker gets between SIGTERM and SIGKILL of its whole cgroup.
    pub stop_grace: std::time::Duration,
    /// First restart delay after a failure; doubles with each failure in a row.
    pub backoff_min: std::time::Duration,
    /// Cap of the restart delay.
    pub backoff_max: std::time::Duration,
    /// A worker ready for this long is stable: its backoff starts again from `backoff_min`.
    pub stable_after: std::time::Duration,
    /// Failures within `failure_window` after which the worker is held (crash loop) until an
    /// admin restarts or clears it.
    pub max_failures: u32,
    /// The window of `max_failures`.
    pub failure_window: std::time::Duration,
    /// A worker not ready this long after its start is restarted (and it counts as a failure).
    pub start_timeout: std::time::Duration,
    /// Interval of the liveness checks (`GET /health`) of a ready worker.
    pub health_interval: std::time::Duration,
    /// Consecutive failed liveness checks after which a ready worker is restarted.
    pub health_failures: u32,
}

impl Default for SupervisionPolicy {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            stop_grace: Duration::from_secs(20),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            max_failures: 5,
            failure_window: Duration::from_secs(600),
            start_timeout: Duration::from_secs(300),
            health_interval: Duration::from_secs(10),
            health_failures: 3,
        }
    }
}

/// A pool's overrides of the department's [`SupervisionPolicy`]: `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    /// Overrides [`SupervisionPolicy::stop_grace`].
    pub stop_grace: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::backoff_min`].
    pub backoff_min: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::backoff_max`].
    pub backoff_max: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::stable_after`].
    pub stable_after: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::max_failures`].
    pub max_failures: Option<u32>,
    /// Overrides [`SupervisionPolicy::failure_window`].
    pub failure_window: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::start_timeout`].
    pub start_timeout: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::health_interval`].
    pub health_interval: Option<std::time::Duration>,
    /// Overrides [`SupervisionPolicy::health_failures`].
    pub health_failures: Option<u32>,
}

impl PolicyOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: SupervisionPolicy) -> SupervisionPolicy {
        SupervisionPolicy {
            stop_grace: self.stop_grace.unwrap_or(base.stop_grace),
            backoff_min: self.backoff_min.unwrap_or(base.backoff_min),
            backoff_max: self.backoff_max.unwrap_or(base.backoff_max),
            stable_after: self.stable_after.unwrap_or(base.stable_after),
            max_failures: self.max_failures.unwrap_or(base.max_failures),
            failure_window: self.failure_window.unwrap_or(base.failure_window),
            start_timeout: self.start_timeout.unwrap_or(base.start_timeout),
            health_interval: self.health_interval.unwrap_or(base.health_interval),
            health_failures: self.health_failures.unwrap_or(base.health_failures),
        }
    }
}

impl Department {
    /// The supervision policy of `pool`: the department's defaults with the pool's overrides.
    pub fn policy(&self, pool: &Pool) -> SupervisionPolicy {
        pool.supervision.apply(self.supervision.defaults)
    }
}

/// Severity of a worker log line, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO` (and lines without a level).
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
    ];

    /// The level as Log4j writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
        }
    }

    /// Parses a level, ignoring case (`WARNING` is `WARN`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" | "WARNING" => Self::Warn,
            "ERROR" => Self::Error,
            "FATAL" => Self::Fatal,
            _ => return None,
        })
    }
}

/// What the supervisor observes and heals: the `[logs]`, `[auto_restart]`, `[metrics]`,
/// `[audit]` and `[health]` tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observability {
    /// Worker log capture, buffers and forwarding (`[logs]`).
    pub logs: LogSettings,
    /// Automatic restart of failed connectors and tasks (`[auto_restart]`).
    pub auto_restart: AutoRestartSettings,
    /// Connect's own metrics, scraped from each worker (`[metrics]`).
    pub metrics: MetricsSettings,
    /// The audit trail of changes made through the API (`[audit]`).
    pub audit: AuditSettings,
    /// Readiness (`[health]`).
    pub health: HealthSettings,
}

/// Suffix of the default log topic: `<department>._connect-logs`.
pub const LOG_TOPIC_SUFFIX: &str = "._connect-logs";

/// Worker log capture and forwarding (`[logs]`).
#[derive(Clone, PartialEq)]
pub struct LogSettings {
    /// Forward every line to a Kafka topic.
    pub forward: bool,
    /// The topic; `None` is `<department>._connect-logs`.
    pub topic: Option<String>,
    /// Lines below this level are kept in the buffers but not forwarded.
    pub forward_level: LogLevel,
    /// Lines waiting to be forwarded, at most; when full the oldest are dropped (and counted).
    pub buffer_lines: usize,
    /// Memory kept per connector for the department log view.
    pub connector_buffer: ByteSize,
    /// Memory kept per worker for the platform view.
    pub worker_buffer: ByteSize,
    /// Size at which a worker's raw log file (`worker.log`) is rotated to `worker.log.1`;
    /// 0 writes no file.
    pub file_size: ByteSize,
    /// Extra librdkafka settings of the forwarding producer (e.g. another cluster's
    /// `bootstrap.servers`, `ssl.ca.location`). Values may be secrets.
    pub producer: BTreeMap<String, String>,
}

impl fmt::Debug for LogSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSettings")
            .field("forward", &self.forward)
            .field("topic", &self.topic)
            .field("forward_level", &self.forward_level)
            .field("buffer_lines", &self.buffer_lines)
            .field("connector_buffer", &self.connector_buffer)
            .field("worker_buffer", &self.worker_buffer)
            .field("file_size", &self.file_size)
            .field("producer_keys", &self.producer.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            forward: true,
            topic: None,
            forward_level: LogLevel::Info,
            buffer_lines: 20_000,
            connector_buffer: ByteSize::mib(1),
            worker_buffer: ByteSize::mib(4),
            file_size: ByteSize::mib(8),
            producer: BTreeMap::new(),
        }
    }
}

impl LogSettings {
    /// The forwarding topic of `department`.
    pub fn topic_for(&self, department: &str) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| format!("{department}{LOG_TOPIC_SUFFIX}"))
    }
}

/// Automatic restart of failed connectors and tasks (`[auto_restart]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoRestartSettings {
    /// On by default.
    pub enabled: bool,
    /// How often every connector's status is read.
    pub interval: std::time::Duration,
    /// Delay before the second restart; doubles with each restart (the first is immediate).
    pub backoff_min: std::time::Duration,
    /// Cap of the delay.
    pub backoff_max: std::time::Duration,
    /// Restarts (of the connector, its tasks, or the worker it ran on) after which the connector
    /// is held until an operator restarts it.
    pub max_restarts: u32,
    /// A connector healthy this long gets its whole budget back.
    pub reset_after: std::time::Duration,
}

impl Default for AutoRestartSettings {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            enabled: true,
            interval: Duration::from_secs(5),
            backoff_min: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            max_restarts: 10,
            reset_after: Duration::from_secs(600),
        }
    }
}

/// Connect's own metrics (`[metrics]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsSettings {
    /// Run the Prometheus JMX exporter agent in each worker and re-expose its metrics.
    pub jmx_exporter: bool,
    /// How often each worker's exporter is scraped.
    pub scrape_interval: std::time::Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            jmx_exporter: true,
            scrape_interval: std::time::Duration::from_secs(15),
        }
    }
}

/// The audit trail (`[audit]`); the JSON-lines file in the state folder is always written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditSettings {
    /// Also send each audit record to this Kafka topic (through the log producer's settings).
    pub topic: Option<String>,
}

/// Readiness (`[health]`).
#[derive(Clone, PartialEq)]
pub struct HealthSettings {
    /// Check that Kafka answers (part of `/readyz`).
    pub kafka_check: bool,
    /// How often Kafka is checked, and how long one check may take.
    pub kafka_interval: std::time::Duration,
    /// Extra librdkafka settings of the Kafka check (as for `[logs.producer]`). Values may be
    /// secrets.
    pub kafka_client: BTreeMap<String, String>,
}

impl fmt::Debug for HealthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthSettings")
            .field("kafka_check", &self.kafka_check)
            .field("kafka_interval", &self.kafka_interval)
            .field(
                "kafka_client_keys",
                &self.kafka_client.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            kafka_check: true,
            kafka_interval: std::time::Duration::from_secs(5),
            kafka_client: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(cpu: u32, memory_mib: u64) -> WorkerResources {
        WorkerResources {
            cpu: Cpu::from_millis(cpu),
            memory: ByteSize::mib(memory_mib),
            pids: 512,
            heap_percent: 75,
            heap: None,
        }
    }

    #[test]
    fn byte_sizes_parse_in_every_accepted_unit() {
        assert_eq!(ByteSize::parse("512MiB"), Some(ByteSize::mib(512)));
        assert_eq!(ByteSize::parse("768Mi"), Some(ByteSize::mib(768)));
        assert_eq!(ByteSize::parse("2GiB"), Some(ByteSize::new(2 * GIB)));
        assert_eq!(ByteSize::parse("1G"), Some(ByteSize::new(GIB)));
        assert_eq!(ByteSize::parse("4096"), Some(ByteSize::new(4096)));
        assert_eq!(ByteSize::parse("12XB"), None);
        assert_eq!(ByteSize::parse("MiB"), None);
        assert_eq!(ByteSize::parse("99999999999999GiB"), None);
    }

    #[test]
    fn byte_sizes_display_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::mib(1536).to_string(), "1536MiB");
        assert_eq!(ByteSize::mib(2048).to_string(), "2GiB");
        assert_eq!(ByteSize::new(1000).to_string(), "1000B");
    }

    #[test]
    fn cpu_parses_cores_and_millicores() {
        assert_eq!(Cpu::parse("0.5"), Some(Cpu::from_millis(500)));
        assert_eq!(Cpu::parse("1500m"), Some(Cpu::from_millis(1500)));
        assert_eq!(Cpu::parse("2"), Some(Cpu::from_millis(2000)));
        assert_eq!(Cpu::parse("0"), None);
        assert_eq!(Cpu::parse("-1"), None);
        assert_eq!(Cpu::from_millis(1500).to_string(), "1.5");
        assert_eq!(Cpu::from_millis(2000).to_string(), "2");
    }

    #[test]
    fn heap_is_derived_from_memory_unless_given() {
        let mut r = resources(500, 1024);
        assert_eq!(r.heap_bytes(), 768 * MIB);
        r.heap = Some(ByteSize::mib(300));
        assert_eq!(r.heap_bytes(), 300 * MIB);
    }

    #[test]
    fn processor_count_rounds_the_quota_up() {
        assert_eq!(resources(500, 512).active_processor_count(), 1);
        assert_eq!(resources(1000, 512).active_processor_count(), 1);
        assert_eq!(resources(1500, 512).active_processor_count(), 2);
    }

    #[test]
    fn usage_over_budget_names_the_budget_and_the_figure() {
        let usage = ResourceUsage::of([(2, resources(1000, 1024)), (1, resources(1500, 2048))]);
        assert_eq!(usage.workers, 3);
        assert_eq!(usage.cpu_millis, 3500);
        let budget = Budget {
            max_workers: 2,
            cpu: Cpu::from_millis(3000),
            memory: ByteSize::mib(4096),
        };
        let over = usage.exceeds(&budget);
        assert_eq!(over.len(), 2, "{over:?}");
        assert!(over[0].contains("3 workers") && over[0].contains("2 workers"));
        assert!(over[1].contains("3.5 CPU") && over[1].contains("3 CPU"));
    }

    #[test]
    fn sensitive_keys_match_by_substring_or_glob_ignoring_case() {
        let rules = SecretRules::default();
        for key in [
            "connection.password",
            "SSL.KEYSTORE.PASSWORD",
            "aws.secret.access.key",
            "sasl.jaas.config",
            "producer.override.sasl.jaas.config",
            "kafka.api.key",
            // The widened defaults: what Terraform's config_sensitive held in clear before.
            "conn.pwd",
            "ssh.passphrase",
            "gcs.credentials.json",
            "snowflake.private.key",
            "PrivateKey",
            "datadog.apikey",
            "service_api_key",
            "ssl.keystore.key",
        ] {
            assert!(rules.is_sensitive(key), "{key}");
        }
        for key in [
            "topics",
            "key.converter",
            "jaas.config.enabled",
            "tasks.max",
            "kafka.auth.mode",
            "kafka.service.account.id",
            "aws.access.key.id",
            "ssl.keystore.location",
            "connection.url",
        ] {
            assert!(!rules.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        assert!(glob_match("*.jaas.config", "sasl.jaas.config"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*", "a"));
        assert!(!glob_match("a*b", "ab.c"));
        assert!(!glob_match("*.x", "x"));
    }

    #[test]
    fn worker_ids_render_as_pool_dash_index() {
        assert_eq!(WorkerId::new("heavy", 0).to_string(), "heavy-0");
    }
}

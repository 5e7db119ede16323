//! One Connect worker: its properties file, its JVM command line, and its readiness.
//!
//! A worker is fully described by a [`WorkerPlan`], derived from the department, its pool, its
//! stable id and its REST port. The plan is pure data; writing its properties file and spawning
//! it are separate steps so the plan can be shown (status API) and tested without a JVM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::secrets;
use crate::model::{Department, Pool, WorkerId};
use crate::process::{Output, SpawnSpec};
use crate::runtime::RuntimeLayout;

/// Main class of a distributed Connect worker.
pub const CONNECT_MAIN_CLASS: &str = "org.apache.kafka.connect.cli.ConnectDistributed";
/// File name of a worker's properties, in its state folder.
pub const PROPERTIES_FILE: &str = "worker.properties";
/// File name of a worker's captured stdout/stderr, in its state folder (rotated; see
/// [`crate::observe::logs`]).
pub const LOG_FILE: &str = crate::observe::logs::LOG_FILE;
/// Folder, under the supervisor's state folder, holding one folder per worker.
pub const WORKERS_DIR: &str = "workers";
/// Prefixes under which the Kafka client settings are repeated, so that the clients of the
/// connectors (not only the worker's own) use the department's security settings.
pub const CLIENT_PREFIXES: &[&str] = &["", "producer.", "consumer.", "admin."];
/// Worker property: how long Connect keeps a departed worker's tasks unassigned, waiting for it
/// to return, before handing them to the other workers. A pool's `worker_config` may set it.
pub const REBALANCE_DELAY_KEY: &str = "scheduled.rebalance.max.delay.ms";
/// Worker property: how long the group waits for a silent worker before it counts as gone.
pub const SESSION_TIMEOUT_KEY: &str = "session.timeout.ms";
/// Connect's default `session.timeout.ms` for workers.
pub const CONNECT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Spawn to ready of a supervised worker under its CPU quota, with margin (the supervision
/// bench measures about 5.6 s for one CPU).
pub const TYPICAL_START: Duration = Duration::from_secs(8);
/// Longest automatic rebalance delay (Connect's own default is 5 minutes).
pub const MAX_AUTO_REBALANCE_DELAY: Duration = Duration::from_secs(60);

/// The group's session timeout of `pool`'s workers: the pool's `worker_config`, else Connect's
/// default.
pub fn session_timeout(pool: &Pool) -> Duration {
    pool.worker_config
        .get(SESSION_TIMEOUT_KEY)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(CONNECT_SESSION_TIMEOUT)
}

/// How long after a worker's exit the supervisor expects it back: its first restart delay plus
/// a typical start.
pub fn expected_restart(policy: &crate::model::SupervisionPolicy) -> Duration {
    policy.backoff_min + TYPICAL_START
}

/// `scheduled.rebalance.max.delay.ms` of `pool`'s workers: the pool's `worker_config` when it
/// sets it, else chosen from what the supervisor knows. Connect notices a killed worker only
/// when its session times out, and then waits this delay before handing the lost tasks to the
/// others; the restarted worker is expected `expected_restart` after the exit, so waiting longer
/// than `expected_restart - session_timeout` only keeps the tasks stopped (with Connect's own
/// 5 minutes, or the 60 s used before, data stopped for a minute after every kill).
pub fn rebalance_delay(department: &Department, pool: &Pool) -> Duration {
    if let Some(ms) = pool
        .worker_config
        .get(REBALANCE_DELAY_KEY)
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Duration::from_millis(ms);
    }
    expected_restart(&department.supervision(pool))
        .saturating_sub(session_timeout(pool))
        .min(MAX_AUTO_REBALANCE_DELAY)
}

/// How long after a restarted worker's start Connect may still show the tasks of its previous
/// process, which nothing runs: until the group has noticed the old process gone and handed its
/// tasks out again (session timeout, rebalance delay, and a margin for the rebalance itself).
pub fn reassignment_window(department: &Department, pool: &Pool) -> Duration {
    session_timeout(pool) + rebalance_delay(department, pool) + Duration::from_secs(2)
}

/// Everything needed to start one worker.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    /// Stable id (`<pool>-<n>`).
    pub id: WorkerId,
    /// Port of the worker's REST listener.
    pub rest_port: u16,
    /// Base URL of the worker's REST API.
    pub rest_url: String,
    /// The worker's state folder (properties, captured output).
    pub dir: PathBuf,
    /// Worker properties, written to `dir/worker.properties` (mode 0600: they may hold secrets).
    pub properties: BTreeMap<String, String>,
    /// The JVM command (its arguments hold no secrets).
    pub command: SpawnSpec,
    /// The department's secrets folder, which must exist before the worker starts (Connect's
    /// FileConfigProvider refuses a missing allowed path).
    pub secrets_dir: PathBuf,
    /// Port of the worker's Prometheus JMX exporter, when it runs one.
    pub metrics_port: Option<u16>,
}

impl WorkerPlan {
    /// Plans worker `id` of `pool` listening on `rest_port`.
    pub fn new(
        department: &Department,
        pool: &Pool,
        id: WorkerId,
        rest_port: u16,
        runtime: &RuntimeLayout,
    ) -> Self {
        let host = &department.supervisor.worker_host;
        let dir = department
            .supervisor
            .state_dir
            .join(WORKERS_DIR)
            .join(id.to_string());
        let properties = worker_properties(department, pool, host, rest_port, runtime);
        let command = jvm_command(department, pool, &dir, runtime);
        Self {
            rest_url: format!("http://{host}:{rest_port}"),
            id,
            rest_port,
            dir,
            properties,
            command,
            secrets_dir: secrets::secrets_dir(department),
            metrics_port: None,
        }
    }

    /// This plan with the Prometheus JMX exporter agent (`agent` jar, `rules` file) serving
    /// Connect's metrics on `port` of the worker host.
    pub fn with_metrics_exporter(mut self, port: u16, agent: &Path, rules: &Path) -> Self {
        let host = self
            .rest_url
            .trim_start_matches("http://")
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        let arg = format!(
            "-javaagent:{}={host}:{port}:{}",
            agent.display(),
            rules.display()
        );
        // Java agents must come before the main class (and its class path).
        let at = self
            .command
            .args
            .iter()
            .position(|a| a == "-cp")
            .unwrap_or(self.command.args.len());
        self.command.args.insert(at, arg.into());
        self.metrics_port = Some(port);
        self
    }

    /// URL of the worker's exporter, when it runs one.
    pub fn metrics_url(&self) -> Option<String> {
        let host = self
            .rest_url
            .trim_start_matches("http://")
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())?;
        Some(format!("http://{host}:{}/metrics", self.metrics_port?))
    }

    /// Path of the properties file.
    pub fn properties_path(&self) -> PathBuf {
        self.dir.join(PROPERTIES_FILE)
    }

    /// Path of the captured output.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Creates the worker's folder and writes its properties file, readable by the owner only;
    /// creates the secrets folder (owner only) if missing.
    pub fn write_files(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::create_dir_all(&self.dir)?;
        if !self.secrets_dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.secrets_dir)?;
        }
        crate::util::fs::write_atomic(
            &self.properties_path(),
            render_properties(&self.properties).as_bytes(),
            crate::util::fs::PRIVATE_MODE,
        )
    }
}

/// The worker properties of one worker of `pool`.
pub fn worker_properties(
    department: &Department,
    pool: &Pool,
    host: &str,
    rest_port: u16,
    runtime: &RuntimeLayout,
) -> BTreeMap<String, String> {
    let identity = department.cluster_identity(&pool.name);
    let replication = department
        .kafka
        .internal_topic_replication_factor
        .to_string();
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    set(
        "bootstrap.servers",
        department.kafka.bootstrap_servers.clone(),
    );
    set("group.id", identity.group_id);
    set("config.storage.topic", identity.config_topic);
    set("offset.storage.topic", identity.offset_topic);
    set("status.storage.topic", identity.status_topic);
    set("config.storage.replication.factor", replication.clone());
    set("offset.storage.replication.factor", replication.clone());
    set("status.storage.replication.factor", replication);
    set(
        "key.converter",
        "org.apache.kafka.connect.json.JsonConverter".into(),
    );
    set(
        "value.converter",
        "org.apache.kafka.connect.json.JsonConverter".into(),
    );
    set("listeners", format!("http://{host}:{rest_port}"));
    set("rest.advertised.host.name", host.to_string());
    set("rest.advertised.port", rest_port.to_string());
    set("rest.advertised.listener", "http".into());
    set("plugin.path", runtime.plugin_path().display().to_string());
    set("offset.flush.interval.ms", "10000".into());
    set(
        REBALANCE_DELAY_KEY,
        rebalance_delay(department, pool).as_millis().to_string(),
    );
    for (key, value) in &department.kafka.client {
        for prefix in CLIENT_PREFIXES {
            set(&format!("{prefix}{key}"), value.clone());
        }
    }
    // Externalized connector secrets: Connect resolves ${file:<path>:<key>} references itself,
    // and only inside the supervisor's secrets folder. Before worker_config, so a pool can add
    // providers (config.providers=file,vault).
    set(secrets::CONFIG_PROVIDERS_KEY, secrets::FILE_PROVIDER.into());
    set(
        &format!("config.providers.{}.class", secrets::FILE_PROVIDER),
        secrets::FILE_CONFIG_PROVIDER_CLASS.into(),
    );
    set(
        &format!(
            "config.providers.{}.param.allowed.paths",
            secrets::FILE_PROVIDER
        ),
        secrets::secrets_dir(department).display().to_string(),
    );
    for (key, value) in &pool.worker_config {
        set(key, value.clone());
    }
    p
}

pub use crate::util::properties::render_properties;

/// The JVM arguments derived from a pool's worker resources: heap from the memory limit, the
/// processor count from the CPU quota, and exit (not limp on) after an OutOfMemoryError.
pub fn sizing_options(pool: &Pool) -> Vec<String> {
    let heap_mib = (pool.worker.heap_bytes() / (1024 * 1024)).max(16);
    vec![
        format!("-Xms{heap_mib}m"),
        format!("-Xmx{heap_mib}m"),
        format!(
            "-XX:ActiveProcessorCount={}",
            pool.worker.active_processor_count()
        ),
        "-XX:+ExitOnOutOfMemoryError".into(),
    ]
}

/// The full command line of a worker JVM of `pool` whose state folder is `dir`.
pub fn jvm_command(
    department: &Department,
    pool: &Pool,
    dir: &Path,
    runtime: &RuntimeLayout,
) -> SpawnSpec {
    let mut args = sizing_options(pool);
    args.push("-Djava.awt.headless=true".into());
    args.push(format!(
        "-Dlog4j2.configurationFile={}",
        runtime.connect_log_config().display()
    ));
    args.push(format!("-Dkafka.logs.dir={}", dir.display()));
    let cds = runtime.cds_archive();
    if cds.is_file() {
        // Maps the classes of the start instead of loading them (see the cds module); auto: a stale
        // archive is ignored, never fatal.
        args.push(format!("-XX:SharedArchiveFile={}", cds.display()));
        args.push("-Xshare:auto".into());
    }
    args.extend(pool.jvm_options.iter().cloned());
    args.push("-cp".into());
    args.push(runtime.connect_classpath());
    args.push(CONNECT_MAIN_CLASS.into());
    args.push(dir.join(PROPERTIES_FILE).display().to_string());
    let mut spec = SpawnSpec::new(&department.runtime.java, args);
    spec.current_dir = Some(dir.to_path_buf());
    // The supervisor reads the output: parsed per connector, buffered, forwarded to Kafka and
    // written to a rotated worker.log.
    spec.output = Output::Piped;
    spec
}

/// Result of one readiness probe (`GET /health`, KIP-1017).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerHealth {
    /// 200: the worker has joined its group and serves requests.
    Ready,
    /// 503: the worker is still starting.
    Starting,
    /// 500: the worker answers but its herder is stuck.
    Unhealthy(String),
    /// No answer (not listening yet, or dead).
    Unreachable(String),
}

/// Probes a worker's `/health` once.
pub async fn probe(http: &reqwest::Client, rest_url: &str, timeout: Duration) -> WorkerHealth {
    let response = http
        .get(format!("{rest_url}/health"))
        .timeout(timeout)
        .send()
        .await;
    match response {
        Err(e) => WorkerHealth::Unreachable(e.to_string()),
        Ok(r) => match r.status().as_u16() {
            200 => WorkerHealth::Ready,
            503 => WorkerHealth::Starting,
            status => {
                let body = r.text().await.unwrap_or_default();
                WorkerHealth::Unhealthy(format!(
                    "HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn department() -> Department {
        crate::config::testing::department()
            .managed_ids("env-1", "lkc-1")
            .kafka_client("security.protocol", "SASL_SSL")
            .set("runtime", "dir", "\"/opt/rt\"")
            .set("supervisor", "state_dir", "\"/var/lib/cs\"")
            .pool(
                crate::config::testing::pool("shared")
                    .workers(2)
                    .cpu("0.5")
                    .key("jvm_options", "[\"-XX:+UseSerialGC\"]")
                    .worker_config("offset.flush.interval.ms", "\"1000\""),
            )
            .build()
    }

    #[test]
    fn a_worker_plan_carries_its_pool_identity_and_rest_identity() {
        let d = department();
        let plan = WorkerPlan::new(
            &d,
            &d.pools[0],
            WorkerId::new("shared", 1),
            18084,
            &RuntimeLayout::new("/opt/rt"),
        );
        let p = &plan.properties;
        assert_eq!(p["group.id"], "dept1-connect-shared");
        assert_eq!(p["config.storage.topic"], "dept1-connect-shared-configs");
        assert_eq!(p["listeners"], "http://127.0.0.1:18084");
        assert_eq!(p["rest.advertised.port"], "18084");
        assert_eq!(p["plugin.path"], "/opt/rt/plugins");
        assert_eq!(
            p["offset.flush.interval.ms"], "1000",
            "pool settings override defaults"
        );
        assert_eq!(p["producer.security.protocol"], "SASL_SSL");
        assert_eq!(p["consumer.security.protocol"], "SASL_SSL");
        assert_eq!(plan.rest_url, "http://127.0.0.1:18084");
        assert_eq!(p["config.providers"], "file");
        assert_eq!(
            p["config.providers.file.class"],
            "org.apache.kafka.common.config.provider.FileConfigProvider"
        );
        assert_eq!(
            p["config.providers.file.param.allowed.paths"],
            "/var/lib/cs/secrets"
        );
        assert_eq!(plan.dir, PathBuf::from("/var/lib/cs/workers/shared-1"));
    }

    #[test]
    fn the_rebalance_delay_follows_the_expected_restart_and_the_pool_may_set_it() {
        let mut d = department();
        let pool = d.pools[0].clone();
        // 1 s backoff + 8 s start, seen by Connect only after its 10 s session timeout: the
        // restarted worker is back before the loss is noticed, so the lost tasks go at once.
        assert_eq!(rebalance_delay(&d, &pool), Duration::ZERO);
        let props = worker_properties(&d, &pool, "127.0.0.1", 18083, &RuntimeLayout::new("/rt"));
        assert_eq!(props[REBALANCE_DELAY_KEY], "0");
        // A slower restart (longer backoff) or a shorter session timeout: wait the difference.
        d.supervision.defaults.backoff_min = Duration::from_secs(7);
        assert_eq!(rebalance_delay(&d, &pool), Duration::from_secs(5));
        let mut short = pool.clone();
        short
            .worker_config
            .insert(SESSION_TIMEOUT_KEY.into(), "6000".into());
        assert_eq!(rebalance_delay(&d, &short), Duration::from_secs(9));
        assert_eq!(
            reassignment_window(&d, &short),
            Duration::from_secs(6 + 9 + 2)
        );
        d.supervision.defaults.backoff_min = Duration::from_secs(600);
        assert_eq!(rebalance_delay(&d, &pool), MAX_AUTO_REBALANCE_DELAY);
        // The department file decides when it says so.
        let mut set = pool.clone();
        set.worker_config
            .insert(REBALANCE_DELAY_KEY.into(), "30000".into());
        assert_eq!(rebalance_delay(&d, &set), Duration::from_secs(30));
        let props = worker_properties(&d, &set, "127.0.0.1", 18083, &RuntimeLayout::new("/rt"));
        assert_eq!(props[REBALANCE_DELAY_KEY], "30000");
    }

    #[test]
    fn the_jvm_is_sized_from_the_quota() {
        let d = department();
        let plan = WorkerPlan::new(
            &d,
            &d.pools[0],
            WorkerId::new("shared", 0),
            18083,
            &RuntimeLayout::new("/opt/rt"),
        );
        let line = plan.command.command_line();
        assert!(line.contains("-Xmx768m"), "{line}");
        assert!(line.contains("-XX:ActiveProcessorCount=1"), "{line}");
        assert!(line.contains("-XX:+ExitOnOutOfMemoryError"), "{line}");
        assert!(line.contains("-XX:+UseSerialGC"), "{line}");
        assert!(line.ends_with("org.apache.kafka.connect.cli.ConnectDistributed /var/lib/cs/workers/shared-0/worker.properties"), "{line}");
        assert!(
            matches!(plan.command.output, Output::Piped),
            "the supervisor reads the output"
        );
    }

    #[test]
    fn the_metrics_exporter_runs_as_an_agent_before_the_main_class() {
        let d = department();
        let plan = WorkerPlan::new(
            &d,
            &d.pools[0],
            WorkerId::new("shared", 0),
            18083,
            &RuntimeLayout::new("/opt/rt"),
        )
        .with_metrics_exporter(
            19090,
            Path::new("/opt/rt/agents/jmx.jar"),
            Path::new("/opt/rt/config/jmx-exporter.yaml"),
        );
        let line = plan.command.command_line();
        let agent = line
            .find("-javaagent:/opt/rt/agents/jmx.jar=127.0.0.1:19090:/opt/rt/config/jmx-exporter.yaml")
            .expect(&line);
        assert!(agent < line.find(" -cp ").unwrap(), "{line}");
        assert_eq!(
            plan.metrics_url().as_deref(),
            Some("http://127.0.0.1:19090/metrics")
        );
    }

    #[test]
    fn properties_files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let mut d = department();
        let state = tempfile::tempdir().unwrap();
        d.supervisor.state_dir = state.path().to_path_buf();
        let plan = WorkerPlan::new(
            &d,
            &d.pools[0],
            WorkerId::new("shared", 0),
            18083,
            &RuntimeLayout::new("/opt/rt"),
        );
        plan.write_files().unwrap();
        let mode = std::fs::metadata(plan.properties_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(plan.properties_path()).unwrap();
        assert!(text.contains("group.id=dept1-connect-shared"));
        let secrets = std::fs::metadata(state.path().join("secrets")).unwrap();
        assert!(secrets.is_dir());
        assert_eq!(secrets.permissions().mode() & 0o777, 0o700);
    }
}

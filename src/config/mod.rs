//! The department file: TOML parsed into a validated [`Department`], every problem reported at
//! once with its key path.
//!
//! This module owns the file format (keys, defaults, limits) and nothing else: it does not start
//! anything and does not touch the network. Relative paths in the file are resolved against the
//! file's own folder, so a department file means the same thing from any working directory.

mod auth;
mod gitops;
pub mod jvm;
mod observe;
mod policy;
mod pools;
mod reader;
mod supervision;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::model::{
    Budget, ByteSize, Cpu, Department, KafkaSettings, Pool, ResourceUsage, RuntimeSettings,
    SecretMode, SecretRules, SupervisorSettings,
};
use pools::{check_pools, read_budget, read_pool};
use reader::TableReader;

pub use policy::load_rego_dir;

/// Exit code for a bad configuration (sysexits `EX_CONFIG`).
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for bad command-line usage (sysexits `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

/// Default address of the supervisor's HTTP server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default folder of the Connect runtime (where the container image puts it).
pub const DEFAULT_RUNTIME_DIR: &str = "/opt/connect-runtime";
/// Default state folder of the supervisor.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/connect-supervisor";
/// Default share of a worker's memory limit given to the JVM heap.
pub const DEFAULT_HEAP_PERCENT: u8 = 75;
/// Default pids limit of a worker's cgroup (a Connect JVM runs a few hundred threads).
pub const DEFAULT_WORKER_PIDS: u32 = 2048;
/// Smallest memory limit a worker may be given.
pub const MIN_WORKER_MEMORY: ByteSize = ByteSize::mib(32);

/// Worker properties that the supervisor derives and that a pool's `worker_config` may not set:
/// they are the pool's Connect cluster identity or the worker's own REST identity.
pub const RESERVED_WORKER_KEYS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "config.storage.topic",
    "offset.storage.topic",
    "status.storage.topic",
    "listeners",
    "rest.advertised.host.name",
    "rest.advertised.port",
    "rest.advertised.listener",
    "plugin.path",
];

static DEPARTMENT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9]{0,31}$").expect("valid regex"));
static MANAGED_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$").expect("valid regex"));
static ENV_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex"));

/// One problem in a department file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path in the file, e.g. `pools[1].memory`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a department file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read department file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("department file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file is TOML but breaks one or more rules.
    #[error("{}", ProblemList { path, problems })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "config_unreadable",
            Self::Syntax { .. } => "config_syntax",
            Self::Invalid { .. } => "config_invalid",
        }
    }
}

struct ProblemList<'a> {
    path: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "department file {} has {n} problem{}:",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems {
            write!(f, "\n  {}: {}", p.path, p.message)?;
        }
        Ok(())
    }
}

/// Reads and validates a department file.
pub fn load(path: &Path) -> Result<Department, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The file's folder made absolute: a relative --config must not leave relative paths in
    // the department (workers run in their own folders, where they would point elsewhere).
    let base = absolute(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    parse(&text, &base, &|name| std::env::var(name).ok()).map_err(|e| match e {
        ParseError::Syntax(message) => ConfigError::Syntax {
            path: path.to_path_buf(),
            message,
        },
        ParseError::Invalid(problems) => ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        },
    })
}

/// Why a department text could not be parsed (no file attached yet).
#[derive(Debug)]
pub enum ParseError {
    /// Not valid TOML.
    Syntax(String),
    /// Valid TOML that breaks rules.
    Invalid(Vec<Problem>),
}

/// Parses department text. Relative paths are resolved against `base`; `${env:NAME}` references in
/// `kafka.client` values are looked up with `env`.
pub fn parse(
    text: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Department, ParseError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ParseError::Syntax(e.to_string().trim().to_string()))?;
    let mut problems = Vec::new();
    let base = absolute(base);
    let department = {
        let mut root = TableReader::new(&table, "", &mut problems);
        let department = read_department(&mut root, &base, env);
        root.finish();
        department
    };
    match department {
        Some(d) if problems.is_empty() => Ok(d),
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new("", "the file is incomplete"));
            }
            Err(ParseError::Invalid(problems))
        }
    }
}

/// `path` made absolute against the working directory (unchanged when it already is, or when
/// the working directory is gone).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() { p } else { base.join(p) }
}

struct DepartmentSection {
    id: Option<String>,
    environment_id: Option<String>,
    kafka_cluster_id: Option<String>,
    default_pool: Option<String>,
    recreate: Option<crate::model::Recreate>,
}

fn read_department(
    root: &mut TableReader<'_>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Department> {
    let section = root.with_table("department", |t| {
        let id = t.required_string("id", "set the department id, e.g. id = \"dept1\"");
        if let Some(id) = &id
            && !DEPARTMENT_ID.is_match(id)
        {
            t.problem(
                "id",
                format!(
                    "\"{id}\" is not a valid department id; use 1-32 lowercase letters and digits, \
                     starting with a letter and without dashes (it prefixes connector names, \
                     group ids and topics)"
                ),
            );
        }
        let managed_id = |t: &mut TableReader<'_>, key: &'static str, example: &str| {
            let value = t.required_string(
                key,
                &format!("set the managed-API identity clients use, e.g. {key} = \"{example}\""),
            )?;
            if MANAGED_ID.is_match(&value) {
                Some(value)
            } else {
                t.problem(
                    key,
                    format!(
                        "\"{value}\" cannot be a URL path segment; use letters, digits, '-' and '_' \
                         (at most 64)"
                    ),
                );
                None
            }
        };
        let environment_id = managed_id(t, "environment_id", "env-dept1");
        let kafka_cluster_id = managed_id(t, "kafka_cluster_id", "lkc-dept1");
        let default_pool = t.string("default_pool");
        let recreate = match t.string("recreate").as_deref() {
            None | Some("fresh") => Some(crate::model::Recreate::Fresh),
            Some("resume") => Some(crate::model::Recreate::Resume),
            Some(other) => {
                t.problem(
                    "recreate",
                    format!(
                        "\"{other}\" is not a choice; use \"fresh\" (a connector created under a deleted one's name gets a new id and no offsets, as on the managed service) or \"resume\" (the same id, and it resumes from the deleted one's offsets)"
                    ),
                );
                None
            }
        };
        DepartmentSection {
            id,
            environment_id,
            kafka_cluster_id,
            default_pool,
            recreate,
        }
    });
    if section.is_none() {
        root.problem(
            "department",
            "is required; add a [department] table with id, environment_id and kafka_cluster_id",
        );
    }

    let kafka = root.with_table("kafka", |t| read_kafka(t, env));
    if kafka.is_none() {
        root.problem(
            "kafka",
            "is required; add a [kafka] table with bootstrap_servers",
        );
    }
    let runtime = root
        .with_table("runtime", |t| read_runtime(t, base))
        .unwrap_or_else(|| {
            Some(RuntimeSettings {
                dir: PathBuf::from(DEFAULT_RUNTIME_DIR),
                java: PathBuf::from("java"),
            })
        });
    let supervisor = root
        .with_table("supervisor", |t| read_supervisor(t, base))
        .unwrap_or_else(read_supervisor_defaults);
    let secrets = root
        .with_table("secrets", read_secrets)
        .unwrap_or_else(|| Some(SecretRules::default()));
    let pools = root.with_table_array("pools", read_pool);
    let budget = root.with_table("budget", read_budget);
    let auth = root
        .with_table(auth::AUTH_TABLE, auth::read_auth)
        .unwrap_or_else(|| Some(crate::model::AuthSettings::default()));
    let supervision = root
        .with_table("supervision", supervision::read_supervision)
        .unwrap_or_else(|| Some(crate::model::Supervision::default()));
    let observe = observe::read(root, env);
    let gitops = match root.with_table("gitops", |t| gitops::read(t, base)) {
        None => Some(None),
        Some(None) => None,
        Some(Some(g)) => Some(Some(g)),
    };

    let pools: Vec<Pool> = match pools {
        None => {
            root.problem(
                "pools",
                "is required; add at least one [[pools]] table with name, workers, cpu and memory",
            );
            Vec::new()
        }
        Some(pools) => pools.into_iter().flatten().collect(),
    };
    check_pools(root, &pools);
    if let Some(supervision) = &supervision {
        supervision::check_pools(root, supervision, &pools);
    }

    let usage = ResourceUsage::of(pools.iter().map(|p| (p.workers, p.worker)));
    let budget = match budget {
        // No budget: exactly what the pools ask for, so any scale-up needs the platform team.
        None => Some(Budget {
            max_workers: usage.workers as u32,
            cpu: Cpu::from_millis(usage.cpu_millis as u32),
            memory: ByteSize::new(usage.memory_bytes),
        }),
        Some(b) => b,
    };
    if let Some(budget) = &budget {
        for message in usage.exceeds(budget) {
            root.problem(
                "budget",
                format!("the pools ask for more than the budget: {message}"),
            );
        }
    }

    let department_id = section.as_ref().and_then(|s| s.id.clone());
    let policy = root
        .with_table("policy", |t| {
            policy::read_policy(t, base, department_id.as_deref(), &pools)
        })
        .unwrap_or_else(|| Some(crate::model::PolicyRules::default()));

    let section = section?;
    let default_pool = match section.default_pool {
        Some(name) => {
            if !pools.iter().any(|p| p.name == name) {
                root.problem_at(
                    "department.default_pool".into(),
                    format!("no pool is named \"{name}\"; use the name of one of the [[pools]]"),
                );
            }
            name
        }
        None => pools.first()?.name.clone(),
    };
    Some(Department {
        id: section.id?,
        environment_id: section.environment_id?,
        kafka_cluster_id: section.kafka_cluster_id?,
        kafka: kafka??,
        runtime: runtime?,
        supervisor: supervisor?,
        budget: budget?,
        pools,
        default_pool,
        recreate: section.recreate?,
        secrets: secrets?,
        auth: auth?,
        policy: policy?,
        supervision: supervision?,
        observe: observe?,
        gitops: gitops?,
    })
}

fn read_secrets(t: &mut TableReader<'_>) -> Option<SecretRules> {
    let defaults = SecretRules::default();
    let sensitive_keys = t
        .string_list("sensitive_keys")
        .unwrap_or(defaults.sensitive_keys);
    if sensitive_keys.iter().any(|k| k.trim().is_empty()) {
        t.problem("sensitive_keys", "holds an empty pattern; remove it");
    }
    let mode = match t.string("mode").as_deref() {
        None | Some("externalize") => Some(SecretMode::Externalize),
        Some("reject") => Some(SecretMode::Reject),
        Some("allow") => Some(SecretMode::Allow),
        Some(other) => {
            t.problem(
                "mode",
                format!(
                    "\"{other}\" is not a secret mode; use \"externalize\", \"reject\" or \"allow\""
                ),
            );
            None
        }
    };
    let allowed_providers = t
        .string_list("allowed_providers")
        .unwrap_or(defaults.allowed_providers);
    Some(SecretRules {
        sensitive_keys,
        mode: mode?,
        allowed_providers,
    })
}

fn read_kafka(
    t: &mut TableReader<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<KafkaSettings> {
    let bootstrap_servers = t.required_string(
        "bootstrap_servers",
        "set the Kafka bootstrap servers, e.g. bootstrap_servers = \"broker:9092\"",
    );
    if let Some(b) = &bootstrap_servers
        && b.trim().is_empty()
    {
        t.problem("bootstrap_servers", "is empty; list at least one host:port");
    }
    let replication = t
        .integer_in("internal_topic_replication_factor", -1..=32)
        .unwrap_or(-1);
    if replication == 0 {
        t.problem(
            "internal_topic_replication_factor",
            "0 is not a replication factor; use -1 for the broker default or 1 and more",
        );
    }
    let mut client = BTreeMap::new();
    for (key, value) in t.string_map("client").unwrap_or_default() {
        let mut missing = Vec::new();
        let value = ENV_REFERENCE
            .replace_all(&value, |c: &regex::Captures<'_>| {
                env(&c[1]).unwrap_or_else(|| {
                    missing.push(c[1].to_string());
                    String::new()
                })
            })
            .into_owned();
        for name in missing {
            t.problem_at(
                format!("kafka.client.\"{key}\""),
                format!("refers to environment variable {name}, which is not set; set it or write the value"),
            );
        }
        client.insert(key, value);
    }
    Some(KafkaSettings {
        bootstrap_servers: bootstrap_servers?,
        internal_topic_replication_factor: replication as i16,
        client,
    })
}

fn read_runtime(t: &mut TableReader<'_>, base: &Path) -> Option<RuntimeSettings> {
    let dir = t
        .string("dir")
        .map(|d| resolve(base, &d))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME_DIR));
    let java = t
        .string("java")
        .map(|j| {
            if j.contains('/') {
                resolve(base, &j)
            } else {
                PathBuf::from(j)
            }
        })
        .unwrap_or_else(|| PathBuf::from("java"));
    Some(RuntimeSettings { dir, java })
}

fn read_supervisor_defaults() -> Option<SupervisorSettings> {
    Some(SupervisorSettings {
        listen: DEFAULT_LISTEN.parse().expect("valid default address"),
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        worker_host: "127.0.0.1".into(),
        rest_port_base: None,
        http: crate::model::HttpLimits::default(),
    })
}

fn read_supervisor(t: &mut TableReader<'_>, base: &Path) -> Option<SupervisorSettings> {
    let listen = match t.string("listen") {
        None => Some(DEFAULT_LISTEN.parse().expect("valid default address")),
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                t.problem(
                    "listen",
                    format!("\"{text}\" is not an address; use ip:port, e.g. \"0.0.0.0:8080\""),
                );
                None
            }
        },
    };
    let state_dir = t
        .string("state_dir")
        .map(|d| resolve(base, &d))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let worker_host = t
        .string("worker_host")
        .unwrap_or_else(|| "127.0.0.1".into());
    if worker_host.trim().is_empty() || worker_host.contains(char::is_whitespace) {
        t.problem(
            "worker_host",
            "must be a host name or IP address without spaces",
        );
    }
    let rest_port_base = t
        .integer_in("rest_port_base", 1024..=65000)
        .map(|p| p as u16);
    let d = crate::model::HttpLimits::default();
    let ms = std::time::Duration::from_millis;
    let max = std::time::Duration::from_secs(3600);
    let http = crate::model::HttpLimits {
        header_read_timeout: supervision::duration(t, "header_read_timeout", ms(100), max)
            .unwrap_or(d.header_read_timeout),
        body_read_timeout: supervision::duration(t, "body_read_timeout", ms(100), max)
            .unwrap_or(d.body_read_timeout),
        idle_timeout: supervision::duration(t, "idle_timeout", ms(100), max)
            .unwrap_or(d.idle_timeout),
        max_connections: t
            .integer_in("max_connections", 1..=1_000_000)
            .map(|n| n as usize)
            .unwrap_or(d.max_connections),
    };
    Some(SupervisorSettings {
        listen: listen?,
        state_dir,
        worker_host,
        rest_port_base,
        http,
    })
}

/// Reads a department file whose `[auth]` table lives in a second file (in Kubernetes: the
/// department file from a ConfigMap, the key hashes from a Secret). The department file must not
/// have an `[auth]` table of its own; problems in either are reported with their key paths.
pub fn load_with_auth(path: &Path, auth_path: &Path) -> Result<Department, ConfigError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let text = read(path)?;
    let auth = read(auth_path)?;
    let own: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
    let theirs: toml::Table = auth
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: auth_path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
    let mut problems = Vec::new();
    if own.contains_key(auth::AUTH_TABLE) {
        problems.push(Problem::new(
            auth::AUTH_TABLE,
            format!(
                "is in the department file and the auth file {} is given too; keep the [auth] \
                 table in one of them",
                auth_path.display()
            ),
        ));
    }
    for key in theirs.keys().filter(|k| k.as_str() != auth::AUTH_TABLE) {
        problems.push(Problem::new(
            key.clone(),
            format!(
                "is in the auth file {}, which may hold only the [auth] table",
                auth_path.display()
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let joined = format!("{text}\n{auth}");
    parse(&joined, &base, &|name| std::env::var(name).ok()).map_err(|e| match e {
        ParseError::Syntax(message) => ConfigError::Syntax {
            path: path.to_path_buf(),
            message,
        },
        ParseError::Invalid(problems) => ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        },
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod testing;

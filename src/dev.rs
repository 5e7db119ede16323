//! The embedded single-node KRaft broker, for `connect-supervisor dev` and the tests.
//!
//! Runs `kafka.Kafka` from the runtime's `broker/` classpath in combined (broker + controller)
//! mode on loopback ports, with its data in a folder the caller owns. It can be stopped and
//! started again on the same ports and data (tests use that to simulate a Kafka outage).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::process::Child;

use crate::process::{Output, SpawnSpec, Spawner, stop_child};
use crate::runtime::RuntimeLayout;
use crate::util::net::free_port;

/// Main class of the broker.
pub const BROKER_MAIN_CLASS: &str = "kafka.Kafka";
/// Main class of the storage formatter.
pub const STORAGE_TOOL_CLASS: &str = "kafka.tools.StorageTool";
/// File name of the broker's properties, in its folder.
pub const BROKER_PROPERTIES: &str = "server.properties";
/// File name of the broker's captured output, in its folder.
pub const BROKER_LOG: &str = "broker.log";
/// Heap of the embedded broker.
pub const BROKER_HEAP: &str = "-Xmx512m";

/// Why the embedded broker failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No free port.
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    /// The JVM could not be started.
    #[error(transparent)]
    Spawn(#[from] crate::process::SpawnError),
    /// Formatting the storage failed.
    #[error("formatting the broker's storage failed ({status}); see {log}")]
    Format {
        /// Exit status.
        status: String,
        /// Where the output is.
        log: PathBuf,
    },
    /// The broker did not come up.
    #[error("the broker did not accept connections within {waited:?}; see {log}")]
    NotReady {
        /// How long was waited.
        waited: Duration,
        /// Where the output is.
        log: PathBuf,
    },
}

impl DevError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "dev_io",
            Self::NoPort(_) => "dev_no_port",
            Self::Spawn(e) => e.code(),
            Self::Format { .. } => "broker_format_failed",
            Self::NotReady { .. } => "broker_not_ready",
        }
    }
}

/// A single-node KRaft broker on loopback.
pub struct EmbeddedKafka {
    dir: PathBuf,
    java: PathBuf,
    runtime: RuntimeLayout,
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKafka")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish()
    }
}

impl EmbeddedKafka {
    /// Formats a broker in `dir` (created if needed) on free ports, and starts it. Returns once it
    /// answers metadata requests.
    pub async fn start(runtime: &RuntimeLayout, java: &Path, dir: &Path) -> Result<Self, DevError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DevError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let port = free_port("127.0.0.1").map_err(DevError::NoPort)?;
        let controller_port = free_port("127.0.0.1").map_err(DevError::NoPort)?;
        let properties = broker_properties(port, controller_port, &dir.join("data"));
        let path = dir.join(BROKER_PROPERTIES);
        std::fs::write(
            &path,
            crate::util::properties::render_properties(&properties),
        )
        .map_err(io(&path))?;
        let mut broker = Self {
            dir: dir.to_path_buf(),
            java: java.to_path_buf(),
            runtime: runtime.clone(),
            port,
            child: None,
        };
        broker.format().await?;
        broker.resume().await?;
        Ok(broker)
    }

    /// `host:port` of the broker's client listener.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's folder (properties, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's captured output.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(BROKER_LOG)
    }

    fn java_args(&self, main: &str) -> Vec<String> {
        vec![
            BROKER_HEAP.into(),
            "-Xms128m".into(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            "-Djava.awt.headless=true".into(),
            format!(
                "-Dlog4j2.configurationFile={}",
                self.runtime.broker_log_config().display()
            ),
            format!("-Dkafka.logs.dir={}", self.dir.display()),
            "-cp".into(),
            self.runtime.broker_classpath(),
            main.into(),
        ]
    }

    async fn format(&self) -> Result<(), DevError> {
        let mut args = self.java_args(STORAGE_TOOL_CLASS);
        args.extend([
            "format".into(),
            "--cluster-id".into(),
            random_cluster_id(),
            "--config".into(),
            self.dir.join(BROKER_PROPERTIES).display().to_string(),
            "--standalone".into(),
            "--ignore-formatted".into(),
        ]);
        let mut spec = SpawnSpec::new(&self.java, args);
        spec.output = Output::File(self.log_path());
        let mut child = Spawner::global().spawn(spec).await?;
        let status = child.wait().await.map_err(|source| DevError::Io {
            path: self.log_path(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(DevError::Format {
                status: status.to_string(),
                log: self.log_path(),
            })
        }
    }

    /// Starts the broker (again) on its ports and data; returns once it answers.
    pub async fn resume(&mut self) -> Result<(), DevError> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut args = self.java_args(BROKER_MAIN_CLASS);
        args.push(self.dir.join(BROKER_PROPERTIES).display().to_string());
        let mut spec = SpawnSpec::new(&self.java, args);
        spec.output = Output::File(self.log_path());
        self.child = Some(Spawner::global().spawn(spec).await?);
        let waited = Duration::from_secs(90);
        let bootstrap = self.bootstrap_servers();
        let ready = tokio::time::timeout(waited, async {
            loop {
                let bootstrap = bootstrap.clone();
                let ok = tokio::task::spawn_blocking(move || answers_metadata(&bootstrap))
                    .await
                    .unwrap_or(false);
                if ok {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        if ready.is_err() {
            self.pause().await;
            return Err(DevError::NotReady {
                waited,
                log: self.log_path(),
            });
        }
        Ok(())
    }

    /// Stops the broker process, keeping its ports and data for [`EmbeddedKafka::resume`].
    pub async fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child, Duration::from_secs(20)).await;
        }
    }

    /// Whether the broker process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the broker.
    pub async fn stop(mut self) {
        self.pause().await;
    }
}

fn answers_metadata(bootstrap: &str) -> bool {
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create();
    consumer
        .and_then(|c| c.fetch_metadata(None, Duration::from_secs(2)))
        .is_ok_and(|m| !m.brokers().is_empty())
}

/// A KRaft cluster id: 16 random bytes, base64url without padding (Kafka's `Uuid` text form).
///
/// Like Kafka's own `Uuid.randomUuid`, it never starts with `-` (the storage tool would read
/// `--cluster-id -…` as a missing value and refuse to format, 1 draw in 64) and is never one of the
/// ids Kafka reserves (all zeros, and the metadata topic's `Uuid(0, 1)`).
pub fn random_cluster_id() -> String {
    const RESERVED: [&str; 2] = ["AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ"];
    loop {
        let bytes: [u8; 16] = rand::random();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') && !RESERVED.contains(&id.as_str()) {
            return id;
        }
    }
}

/// Properties of a combined-mode single-node broker on loopback.
pub fn broker_properties(port: u16, controller_port: u16, data: &Path) -> BTreeMap<String, String> {
    let pairs = [
        ("process.roles", "broker,controller".to_string()),
        ("node.id", "1".into()),
        (
            "controller.quorum.bootstrap.servers",
            format!("127.0.0.1:{controller_port}"),
        ),
        (
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        ),
        (
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        ),
        ("controller.listener.names", "CONTROLLER".into()),
        ("inter.broker.listener.name", "PLAINTEXT".into()),
        (
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
        ),
        ("log.dirs", data.display().to_string()),
        ("num.partitions", "1".into()),
        ("default.replication.factor", "1".into()),
        ("offsets.topic.replication.factor", "1".into()),
        ("offsets.topic.num.partitions", "5".into()),
        ("transaction.state.log.replication.factor", "1".into()),
        ("transaction.state.log.min.isr", "1".into()),
        (
            "share.coordinator.state.topic.replication.factor",
            "1".into(),
        ),
        ("share.coordinator.state.topic.min.isr", "1".into()),
        ("group.initial.rebalance.delay.ms", "0".into()),
        ("auto.create.topics.enable", "true".into()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_characters_of_base64url() {
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, random_cluster_id());
    }

    #[test]
    fn cluster_ids_never_start_with_a_dash() {
        // A leading '-' is 1 draw in 64; 20,000 draws without the guard all miss it with
        // probability (63/64)^20000, about e^-312.
        let dashed = (0..20_000)
            .map(|_| random_cluster_id())
            .filter(|id| id.starts_with('-'))
            .count();
        assert_eq!(
            dashed, 0,
            "the storage tool reads a leading '-' as an option"
        );
    }

    #[test]
    fn broker_properties_use_the_given_ports_and_data_folder() {
        let p = broker_properties(19092, 19093, Path::new("/tmp/k/data"));
        assert_eq!(
            p["listeners"],
            "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
        );
        assert_eq!(p["controller.quorum.bootstrap.servers"], "127.0.0.1:19093");
        assert_eq!(p["log.dirs"], "/tmp/k/data");
    }
}

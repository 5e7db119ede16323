//! What the supervisor observes and heals: the `[logs]`, `[auto_restart]`, `[metrics]`,
//! `[audit]` and `[health]` tables.

use std::collections::BTreeMap;
use std::fmt;

use super::units::ByteSize;

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

//! The `[logs]`, `[auto_restart]`, `[metrics]`, `[audit]` and `[health]` tables: what the
//! supervisor observes about its workers and connectors, and how it heals failed connectors.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::reader::TableReader;
use super::supervision::duration;
use crate::model::{
    AuditSettings, AutoRestartSettings, ByteSize, HealthSettings, LogLevel, LogSettings,
    MetricsSettings, Observability,
};

/// Kafka's rule for topic names (`Topic.validate`): at most 249 of `[a-zA-Z0-9._-]`, not `.`
/// or `..`.
static TOPIC_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9._-]{1,249}$").expect("valid regex"));

/// Smallest per-connector or per-worker log buffer.
const MIN_LOG_BUFFER: ByteSize = ByteSize::new(16 * 1024);
/// Largest per-connector or per-worker log buffer.
const MAX_LOG_BUFFER: ByteSize = ByteSize::mib(1024);
/// Smallest size of a rotated worker log file (0 switches the file off).
const MIN_LOG_FILE: ByteSize = ByteSize::new(64 * 1024);

/// Reads the five tables (each optional, each with defaults).
pub(super) fn read(
    root: &mut TableReader<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Observability> {
    let logs = root
        .with_table("logs", |t| read_logs(t, env))
        .unwrap_or_else(|| Some(LogSettings::default()));
    let auto_restart = root
        .with_table("auto_restart", read_auto_restart)
        .unwrap_or_else(|| Some(AutoRestartSettings::default()));
    let metrics = root
        .with_table("metrics", read_metrics)
        .unwrap_or_else(|| Some(MetricsSettings::default()));
    let audit = root
        .with_table("audit", read_audit)
        .unwrap_or_else(|| Some(AuditSettings::default()));
    let health = root
        .with_table("health", |t| read_health(t, env))
        .unwrap_or_else(|| Some(HealthSettings::default()));
    Some(Observability {
        logs: logs?,
        auto_restart: auto_restart?,
        metrics: metrics?,
        audit: audit?,
        health: health?,
    })
}

fn topic(t: &mut TableReader<'_>, key: &'static str) -> Option<Option<String>> {
    match t.string(key) {
        None => Some(None),
        Some(name) if TOPIC_NAME.is_match(&name) && name != "." && name != ".." => Some(Some(name)),
        Some(name) => {
            t.problem(
                key,
                format!(
                    "\"{name}\" is not a Kafka topic name; use 1-249 letters, digits, '.', '_' and '-'"
                ),
            );
            None
        }
    }
}

fn size(
    t: &mut TableReader<'_>,
    key: &'static str,
    default: ByteSize,
    min: ByteSize,
    max: ByteSize,
    zero_allowed: bool,
) -> Option<ByteSize> {
    let Some(text) = t.number_text(key) else {
        return Some(default);
    };
    match ByteSize::parse(&text) {
        Some(s) if (zero_allowed && s.bytes() == 0) || (s >= min && s <= max) => Some(s),
        Some(_) => {
            t.problem(
                key,
                format!(
                    "\"{text}\" is out of range; use a size from {min} to {max}{}",
                    if zero_allowed { " (or 0 for none)" } else { "" }
                ),
            );
            None
        }
        None => {
            t.problem(
                key,
                format!("\"{text}\" is not a size; use a value like \"1MiB\" or \"512KiB\""),
            );
            None
        }
    }
}

/// A table of librdkafka settings; `${env:NAME}` references are replaced by the variable.
fn client_map(
    t: &mut TableReader<'_>,
    key: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let path = t.path_of(key);
    for (k, value) in t.string_map(key).unwrap_or_default() {
        let mut missing = Vec::new();
        let value = super::ENV_REFERENCE
            .replace_all(&value, |c: &regex::Captures<'_>| {
                env(&c[1]).unwrap_or_else(|| {
                    missing.push(c[1].to_string());
                    String::new()
                })
            })
            .into_owned();
        for name in missing {
            t.problem_at(
                format!("{path}.\"{k}\""),
                format!(
                    "refers to environment variable {name}, which is not set; set it or write the value"
                ),
            );
        }
        out.insert(k, value);
    }
    out
}

fn read_logs(t: &mut TableReader<'_>, env: &dyn Fn(&str) -> Option<String>) -> Option<LogSettings> {
    let d = LogSettings::default();
    let forward = t.boolean("forward").unwrap_or(d.forward);
    let topic = topic(t, "topic");
    let forward_level = match t.string("forward_level") {
        None => Some(d.forward_level),
        Some(text) => {
            let level = LogLevel::parse(&text);
            if level.is_none() {
                t.problem(
                    "forward_level",
                    format!(
                        "\"{text}\" is not a log level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL"
                    ),
                );
            }
            level
        }
    };
    let buffer_lines = t
        .integer_in("buffer_lines", 100..=10_000_000)
        .map(|n| n as usize)
        .unwrap_or(d.buffer_lines);
    let connector_buffer = size(
        t,
        "connector_buffer",
        d.connector_buffer,
        MIN_LOG_BUFFER,
        MAX_LOG_BUFFER,
        false,
    );
    let worker_buffer = size(
        t,
        "worker_buffer",
        d.worker_buffer,
        MIN_LOG_BUFFER,
        MAX_LOG_BUFFER,
        false,
    );
    let file_size = size(
        t,
        "file_size",
        d.file_size,
        MIN_LOG_FILE,
        MAX_LOG_BUFFER,
        true,
    );
    let producer = client_map(t, "producer", env);
    Some(LogSettings {
        forward,
        topic: topic?,
        forward_level: forward_level?,
        buffer_lines,
        connector_buffer: connector_buffer?,
        worker_buffer: worker_buffer?,
        file_size: file_size?,
        producer,
    })
}

fn read_auto_restart(t: &mut TableReader<'_>) -> Option<AutoRestartSettings> {
    let d = AutoRestartSettings::default();
    let s = Duration::from_secs;
    let day = s(24 * 3600);
    let settings = AutoRestartSettings {
        enabled: t.boolean("enabled").unwrap_or(d.enabled),
        interval: duration(t, "interval", Duration::from_millis(500), s(3600))
            .unwrap_or(d.interval),
        backoff_min: duration(t, "backoff_min", Duration::from_millis(100), day)
            .unwrap_or(d.backoff_min),
        backoff_max: duration(t, "backoff_max", Duration::from_millis(100), day)
            .unwrap_or(d.backoff_max),
        max_restarts: t
            .integer_in("max_restarts", 1..=100_000)
            .map(|n| n as u32)
            .unwrap_or(d.max_restarts),
        reset_after: duration(t, "reset_after", s(1), day).unwrap_or(d.reset_after),
    };
    if settings.backoff_min > settings.backoff_max {
        t.problem(
            "backoff_min",
            format!(
                "{:?} is above backoff_max ({:?}); the first delay cannot exceed the cap",
                settings.backoff_min, settings.backoff_max
            ),
        );
        return None;
    }
    Some(settings)
}

fn read_metrics(t: &mut TableReader<'_>) -> Option<MetricsSettings> {
    let d = MetricsSettings::default();
    Some(MetricsSettings {
        jmx_exporter: t.boolean("jmx_exporter").unwrap_or(d.jmx_exporter),
        scrape_interval: duration(
            t,
            "scrape_interval",
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )
        .unwrap_or(d.scrape_interval),
    })
}

fn read_audit(t: &mut TableReader<'_>) -> Option<AuditSettings> {
    Some(AuditSettings {
        topic: topic(t, "topic")?,
    })
}

fn read_health(
    t: &mut TableReader<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<HealthSettings> {
    let d = HealthSettings::default();
    Some(HealthSettings {
        kafka_check: t.boolean("kafka_check").unwrap_or(d.kafka_check),
        kafka_interval: duration(
            t,
            "kafka_interval",
            Duration::from_secs(1),
            Duration::from_secs(300),
        )
        .unwrap_or(d.kafka_interval),
        kafka_client: client_map(t, "kafka_client", env),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        crate::config::testing::department().toml()
    }

    fn parse(extra: &str) -> Result<crate::model::Department, Vec<super::super::Problem>> {
        let base = base();
        let text = format!("{base}\n{extra}");
        let env = |name: &str| (name == "LOG_PASSWORD").then(|| "pw".to_string());
        crate::config::parse(&text, std::path::Path::new("/"), &env).map_err(|e| match e {
            super::super::ParseError::Invalid(p) => p,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn defaults_apply_without_tables() {
        let d = parse("").unwrap();
        assert_eq!(d.observe, Observability::default());
        assert_eq!(d.observe.logs.topic_for(&d.id), "dept1._connect-logs");
        assert!(d.observe.auto_restart.enabled);
        assert_eq!(d.observe.auto_restart.max_restarts, 10);
        assert!(d.observe.metrics.jmx_exporter);
    }

    #[test]
    fn every_table_is_read() {
        let d = parse(
            r#"
[logs]
forward = false
topic = "central.connect-logs"
forward_level = "warn"
buffer_lines = 500
connector_buffer = "64KiB"
worker_buffer = "2MiB"
file_size = 0
[logs.producer]
"bootstrap.servers" = "logs:9092"
"sasl.password" = "${env:LOG_PASSWORD}"
[auto_restart]
enabled = false
interval = "2s"
backoff_min = "1s"
backoff_max = "30s"
max_restarts = 3
reset_after = "5m"
[metrics]
jmx_exporter = false
scrape_interval = "30s"
[audit]
topic = "dept1.audit"
[health]
kafka_check = false
kafka_interval = "10s"
"#,
        )
        .unwrap();
        let o = &d.observe;
        assert!(!o.logs.forward);
        assert_eq!(o.logs.topic_for("dept1"), "central.connect-logs");
        assert_eq!(o.logs.forward_level, LogLevel::Warn);
        assert_eq!(o.logs.buffer_lines, 500);
        assert_eq!(o.logs.connector_buffer, ByteSize::new(64 * 1024));
        assert_eq!(o.logs.file_size, ByteSize::new(0));
        assert_eq!(o.logs.producer["sasl.password"], "pw");
        assert!(
            !format!("{o:?}").contains("pw\""),
            "debug output shows no producer values"
        );
        assert!(!o.auto_restart.enabled);
        assert_eq!(o.auto_restart.max_restarts, 3);
        assert_eq!(o.auto_restart.backoff_max, Duration::from_secs(30));
        assert_eq!(o.metrics.scrape_interval, Duration::from_secs(30));
        assert_eq!(o.audit.topic.as_deref(), Some("dept1.audit"));
        assert!(!o.health.kafka_check);
    }

    #[test]
    fn bad_values_are_all_reported_with_their_paths() {
        let problems = parse(
            r#"
[logs]
topic = "no spaces allowed"
forward_level = "LOUD"
buffer_lines = 5
connector_buffer = "1KiB"
file_size = "lots"
colour = "red"
[logs.producer]
"sasl.password" = "${env:UNSET_VARIABLE}"
[auto_restart]
interval = "forever"
backoff_min = "1m"
backoff_max = "10s"
max_restarts = 0
[metrics]
scrape_interval = "1ms"
[audit]
topic = ".."
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "logs.topic",
            "logs.forward_level",
            "logs.buffer_lines",
            "logs.connector_buffer",
            "logs.file_size",
            "logs.colour",
            "logs.producer.\"sasl.password\"",
            "auto_restart.interval",
            "auto_restart.backoff_min",
            "auto_restart.max_restarts",
            "metrics.scrape_interval",
            "audit.topic",
        ] {
            assert!(
                paths.contains(&expected),
                "missing {expected} in {problems:?}"
            );
        }
        let level = problems
            .iter()
            .find(|p| p.path == "logs.forward_level")
            .unwrap();
        assert!(level.message.contains("WARN"), "{}", level.message);
    }
}

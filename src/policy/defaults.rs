//! Config the platform adds: a dead letter queue for sink connectors that have none.
//!
//! Terraform compares the config it sent with the config it reads back, so keys the supervisor
//! adds must not show up in the managed API's reads (managed-connect-api-notes.md 7.2). The
//! supervisor therefore records in the connector's own config which keys it added, under
//! [`APPLIED_DEFAULTS_KEY`]: a `config.internal.` key, which Terraform's read ignores by design
//! and Connect ignores as an unknown key. The record lives with the connector in Kafka's config
//! topic, so it survives restarts of the supervisor; reads remove the recorded keys
//! ([`strip_applied`]) and keep the record itself, which is how users see what was added. A key
//! the user sends is never overwritten and never recorded, so it always reads back as sent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plugins::ConnectorType;
use super::rules::PlatformDefaults;

/// Config key recording the keys the platform added to a connector (comma-separated).
pub const APPLIED_DEFAULTS_KEY: &str = "config.internal.connect-supervisor.applied-defaults";
/// Prefix of the config keys that belong to the supervisor, not the user; dropped from input.
pub const SUPERVISOR_KEY_PREFIX: &str = "config.internal.connect-supervisor.";
/// Connect's dead letter queue topic key (sink connectors).
pub const DLQ_TOPIC_KEY: &str = "errors.deadletterqueue.topic.name";
/// Connect's error tolerance key.
pub const ERRORS_TOLERANCE_KEY: &str = "errors.tolerance";
/// Connect's key for context headers on dead-lettered records.
pub const DLQ_HEADERS_KEY: &str = "errors.deadletterqueue.context.headers.enable";
/// Connect's key for the replication factor of the dead letter queue topic (Connect's default,
/// 3, fails on smaller clusters).
pub const DLQ_REPLICATION_KEY: &str = "errors.deadletterqueue.topic.replication.factor";

/// One key the platform added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedDefault {
    /// The config key.
    pub key: String,
    /// The value added.
    pub value: String,
    /// Why (for the audit trail).
    pub reason: &'static str,
}

const DLQ_REASON: &str = "sink connector without a dead letter queue";

/// The DLQ topic for connector `name` of `department` on `pool`.
pub fn dlq_topic(pattern: &str, department: &str, name: &str, pool: &str) -> String {
    pattern
        .replace("{connector}", name)
        .replace("{department}", department)
        .replace("{pool}", pool)
}

/// Adds the platform defaults to `config` (in place) and returns what was added. Records the
/// added keys under [`APPLIED_DEFAULTS_KEY`] when there are any.
pub fn apply(
    defaults: &PlatformDefaults,
    department: &str,
    replication_factor: i16,
    name: &str,
    pool: &str,
    connector_type: ConnectorType,
    config: &mut BTreeMap<String, String>,
) -> Vec<AppliedDefault> {
    let mut applied = Vec::new();
    // A DLQ key the user sent, even empty (Connect's "no DLQ"), is the user's choice.
    let has_dlq = config.contains_key(DLQ_TOPIC_KEY);
    if defaults.dead_letter_queue && connector_type == ConnectorType::Sink && !has_dlq {
        let replication = defaults
            .dead_letter_queue_replication_factor
            .unwrap_or(replication_factor);
        let wanted = [
            (ERRORS_TOLERANCE_KEY, "all".to_string()),
            (
                DLQ_TOPIC_KEY,
                dlq_topic(&defaults.dead_letter_queue_topic, department, name, pool),
            ),
            (DLQ_HEADERS_KEY, "true".to_string()),
            (DLQ_REPLICATION_KEY, replication.to_string()),
        ];
        for (key, value) in wanted {
            if !config.contains_key(key) {
                config.insert(key.to_string(), value.clone());
                applied.push(AppliedDefault {
                    key: key.to_string(),
                    value,
                    reason: DLQ_REASON,
                });
            }
        }
    }
    if !applied.is_empty() {
        let keys: Vec<&str> = applied.iter().map(|a| a.key.as_str()).collect();
        config.insert(APPLIED_DEFAULTS_KEY.to_string(), keys.join(","));
    }
    applied
}

/// The keys recorded as added by the platform in a stored config.
pub fn recorded(config: &BTreeMap<String, String>) -> Vec<String> {
    config
        .get(APPLIED_DEFAULTS_KEY)
        .map(|list| {
            list.split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A stored config as the user sent it: the keys the platform added are removed (the record
/// stays, under a key Terraform ignores).
pub fn strip_applied(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let added = recorded(config);
    config
        .iter()
        .filter(|(k, _)| !added.iter().any(|a| a == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `config` without the supervisor's own keys (users cannot set or forge the record).
pub fn without_supervisor_keys(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(k, _)| !k.starts_with(SUPERVISOR_KEY_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sink_config() -> BTreeMap<String, String> {
        [
            ("connector.class", "FileStreamSink"),
            ("topics", "dept1-orders"),
            ("file", "/tmp/out"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn apply_to(config: &mut BTreeMap<String, String>, kind: ConnectorType) -> Vec<AppliedDefault> {
        apply(
            &PlatformDefaults::default(),
            "dept1",
            -1,
            "dept1-orders-sink",
            "shared",
            kind,
            config,
        )
    }

    #[test]
    fn a_sink_without_a_dlq_gets_one_with_context_headers() {
        let mut config = sink_config();
        let applied = apply_to(&mut config, ConnectorType::Sink);
        assert_eq!(applied.len(), 4);
        assert_eq!(config[ERRORS_TOLERANCE_KEY], "all");
        assert_eq!(config[DLQ_TOPIC_KEY], "dept1-orders-sink-dlq");
        assert_eq!(config[DLQ_HEADERS_KEY], "true");
        assert_eq!(config[DLQ_REPLICATION_KEY], "-1");
        assert_eq!(
            config[APPLIED_DEFAULTS_KEY],
            "errors.tolerance,errors.deadletterqueue.topic.name,errors.deadletterqueue.context.headers.enable,errors.deadletterqueue.topic.replication.factor"
        );
    }

    #[test]
    fn sources_and_sinks_with_a_dlq_are_left_alone() {
        let mut source = sink_config();
        assert!(apply_to(&mut source, ConnectorType::Source).is_empty());
        assert_eq!(source, sink_config());
        let mut with_dlq = sink_config();
        with_dlq.insert(DLQ_TOPIC_KEY.into(), "dept1-mine".into());
        let before = with_dlq.clone();
        assert!(apply_to(&mut with_dlq, ConnectorType::Sink).is_empty());
        assert_eq!(with_dlq, before);
    }

    #[test]
    fn keys_the_user_set_are_neither_overwritten_nor_recorded() {
        let mut config = sink_config();
        config.insert(ERRORS_TOLERANCE_KEY.into(), "none".into());
        let applied = apply_to(&mut config, ConnectorType::Sink);
        assert!(applied.iter().all(|a| a.key != ERRORS_TOLERANCE_KEY));
        assert_eq!(config[ERRORS_TOLERANCE_KEY], "none");
        assert!(!recorded(&config).contains(&ERRORS_TOLERANCE_KEY.to_string()));
        assert_eq!(strip_applied(&config)[ERRORS_TOLERANCE_KEY], "none");
    }

    #[test]
    fn an_explicitly_empty_dlq_is_an_opt_out() {
        let mut config = sink_config();
        config.insert(DLQ_TOPIC_KEY.into(), String::new());
        assert!(apply_to(&mut config, ConnectorType::Sink).is_empty());
    }

    #[test]
    fn the_dlq_pattern_takes_placeholders() {
        assert_eq!(
            dlq_topic("{department}-dlq-{pool}-{connector}", "d", "n", "p"),
            "d-dlq-p-n"
        );
    }

    #[test]
    fn a_forged_record_is_dropped_from_user_input() {
        let mut config = sink_config();
        config.insert(APPLIED_DEFAULTS_KEY.into(), "topics".into());
        let clean = without_supervisor_keys(&config);
        assert_eq!(clean, sink_config());
    }

    proptest! {
        /// What reads return after apply equals what the user sent, plus only the record under
        /// a `config.internal.` key (which Terraform ignores): no drift.
        #[test]
        fn stripping_returns_exactly_what_the_user_sent(
            user in proptest::collection::btree_map(
                "(errors\\.tolerance|errors\\.deadletterqueue\\.topic\\.name|errors\\.deadletterqueue\\.context\\.headers\\.enable|topics|file|[a-z.]{1,12})",
                "[a-z0-9-]{0,8}",
                0..6,
            ),
            sink in any::<bool>(),
        ) {
            let mut stored = user.clone();
            let kind = if sink { ConnectorType::Sink } else { ConnectorType::Source };
            apply_to(&mut stored, kind);
            let mut read = strip_applied(&stored);
            read.remove(APPLIED_DEFAULTS_KEY);
            prop_assert_eq!(read, user);
        }
    }
}

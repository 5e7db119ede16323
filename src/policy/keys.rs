//! Rules about which config keys a connector sets: client overrides (denied unless allowed key by
//! key) and keys required per class or connector type.

use std::collections::BTreeMap;

use crate::model::glob_match;

use super::plugins::{ConnectorType, PluginCatalog, matches};
use super::rules::{OverrideRules, RULE_OVERRIDES_DENIED, RULE_REQUIRED_KEYS, RequiredKeys};
use super::{Violation, quote_list};
pub use crate::model::policy::OVERRIDE_PREFIXES;

/// Reports every client override key not allowed by `rules`.
pub(crate) fn check_overrides(
    rules: &OverrideRules,
    config: &BTreeMap<String, String>,
    out: &mut Vec<Violation>,
) {
    for key in config.keys() {
        if !OVERRIDE_PREFIXES.iter().any(|p| key.starts_with(p)) {
            continue;
        }
        let allowed = rules
            .allowed
            .iter()
            .any(|pattern| pattern == key || (pattern.contains('*') && glob_match(pattern, key)));
        if !allowed {
            let hint = if rules.allowed.is_empty() {
                "remove it: this department allows no client overrides; ask the platform team to \
                 allow the key in policy.overrides.allowed if the connector needs it"
                    .to_string()
            } else {
                format!(
                    "remove it, or use an allowed override ({}); ask the platform team to add it \
                     to policy.overrides.allowed",
                    quote_list(&rules.allowed)
                )
            };
            out.push(Violation::builtin(
                RULE_OVERRIDES_DENIED,
                Some(key),
                format!("client override {key} is not allowed"),
                hint,
            ));
        }
    }
}

/// Reports every key required for this class or connector type that is missing or empty.
pub(crate) fn check_required(
    rules: &RequiredKeys,
    catalog: &PluginCatalog,
    class: &str,
    connector_type: ConnectorType,
    config: &BTreeMap<String, String>,
    out: &mut Vec<Violation>,
) {
    let by_type: &[String] = match connector_type {
        ConnectorType::Source => &rules.source,
        ConnectorType::Sink => &rules.sink,
        ConnectorType::Unknown => &[],
    };
    let by_class = rules
        .classes
        .iter()
        .filter(|(entry, _)| matches(catalog, class, entry))
        .flat_map(|(_, keys)| keys.iter());
    let mut seen = Vec::new();
    for key in by_type.iter().chain(by_class) {
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let present = config.get(key).is_some_and(|v| !v.trim().is_empty());
        if !present {
            out.push(Violation::builtin(
                RULE_REQUIRED_KEYS,
                Some(key),
                format!(
                    "{key} is required for {} connectors in this department",
                    if by_type.contains(key) {
                        connector_type.as_str().to_string()
                    } else {
                        format!("\"{}\"", super::plugins::simple_name(class))
                    }
                ),
                format!("set {key}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::config;

    #[test]
    fn overrides_are_denied_unless_allowed_key_by_key() {
        let rules = OverrideRules {
            allowed: vec![
                "consumer.override.max.poll.records".into(),
                "producer.override.compression.*".into(),
            ],
        };
        let mut out = Vec::new();
        check_overrides(
            &rules,
            &config(&[
                ("consumer.override.max.poll.records", "100"),
                ("producer.override.compression.type", "zstd"),
                ("consumer.override.auto.offset.reset", "earliest"),
                ("admin.override.sasl.jaas.config", "x"),
                ("producer.acks", "all"),
            ]),
            &mut out,
        );
        let keys: Vec<_> = out.iter().map(|v| v.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "admin.override.sasl.jaas.config",
                "consumer.override.auto.offset.reset"
            ]
        );
        assert!(out.iter().all(|v| v.rule == RULE_OVERRIDES_DENIED));
        assert!(!out[0].message.contains("\"x\""), "values are never echoed");
    }

    #[test]
    fn required_keys_apply_per_type_and_per_class_by_alias() {
        let rules = RequiredKeys {
            source: vec![],
            sink: vec!["errors.deadletterqueue.topic.name".into()],
            classes: [("FileStreamSink".to_string(), vec!["file".to_string()])].into(),
        };
        let catalog = PluginCatalog::default();
        let class = "org.apache.kafka.connect.file.FileStreamSinkConnector";
        let mut out = Vec::new();
        check_required(
            &rules,
            &catalog,
            class,
            ConnectorType::Sink,
            &config(&[("file", " ")]),
            &mut out,
        );
        let keys: Vec<_> = out.iter().map(|v| v.key.clone().unwrap()).collect();
        assert_eq!(keys, ["errors.deadletterqueue.topic.name", "file"]);
        out.clear();
        check_required(
            &rules,
            &catalog,
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
            ConnectorType::Source,
            &config(&[]),
            &mut out,
        );
        assert!(out.is_empty());
    }
}

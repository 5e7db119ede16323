//! Connector classes: Connect's alias rule, the plugin catalog, the allowlist and which pools a
//! class may run on.
//!
//! Connect accepts `connector.class` as a full class name or an alias: the class's simple name
//! (`FileStreamSourceConnector`) or that name with the `Connector` suffix pruned
//! (`FileStreamSource`), and an alias only counts when exactly one installed plugin has it
//! (`PluginUtils.computeAliases`). The same rule is used here, through the workers' plugin list
//! when one is given, else by comparing names: two full class names are the same class only when
//! equal, an alias matches a full class name when it is one of that class's aliases.

use std::collections::BTreeMap;

use crate::connect::PluginInfo;

use super::rules::{
    PolicyRules, RULE_PLUGIN_ALLOWED, RULE_PLUGIN_POOL, RULE_PLUGIN_UNKNOWN, RULE_POOL_UNKNOWN,
};
use super::{Violation, quote_list};

/// Whether a connector reads from Kafka (sink) or writes to it (source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    /// Writes into Kafka.
    Source,
    /// Reads from Kafka.
    Sink,
    /// Neither the catalog nor the class name tell.
    Unknown,
}

impl ConnectorType {
    /// `source`, `sink` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Sink => "sink",
            Self::Unknown => "unknown",
        }
    }
}

/// The connector plugins installed on the workers (`GET /connector-plugins`), with Connect's
/// aliases. May be empty (offline validation), in which case names are compared by the alias
/// rule alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginCatalog {
    classes: BTreeMap<String, ConnectorType>,
    aliases: BTreeMap<String, String>,
}

impl PluginCatalog {
    /// A catalog of `(class name, type)` pairs; types other than `source`/`sink` are ignored.
    pub fn new<'a>(plugins: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut classes = BTreeMap::new();
        for (class, kind) in plugins {
            let kind = match kind {
                "source" => ConnectorType::Source,
                "sink" => ConnectorType::Sink,
                _ => continue,
            };
            classes.insert(class.to_string(), kind);
        }
        // An alias shared by two classes is ambiguous and, as in Connect, not an alias at all.
        let mut claims: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for class in classes.keys() {
            for alias in [simple_name(class), pruned_name(class)] {
                let owners = claims.entry(alias.to_string()).or_default();
                if !owners.contains(&class.as_str()) {
                    owners.push(class);
                }
            }
        }
        let aliases = claims
            .into_iter()
            .filter(|(_, owners)| owners.len() == 1)
            .map(|(alias, owners)| (alias, owners[0].to_string()))
            .collect();
        Self { classes, aliases }
    }

    /// A catalog from a worker's plugin list.
    pub fn from_plugins(plugins: &[PluginInfo]) -> Self {
        Self::new(
            plugins
                .iter()
                .map(|p| (p.class_name.as_str(), p.plugin_type.as_str())),
        )
    }

    /// Whether the catalog lists no plugin.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The full class name of a class name or alias, when the catalog knows it.
    pub fn resolve(&self, class_or_alias: &str) -> Option<&str> {
        if let Some((class, _)) = self.classes.get_key_value(class_or_alias) {
            return Some(class);
        }
        self.aliases.get(class_or_alias).map(String::as_str)
    }

    /// The type of an installed class.
    pub fn connector_type(&self, class: &str) -> Option<ConnectorType> {
        self.classes.get(class).copied()
    }
}

/// The simple name of a class: after the last `.` and, for nested classes, the last `$`.
pub fn simple_name(class: &str) -> &str {
    let tail = class.rsplit('.').next().unwrap_or(class);
    tail.rsplit('$').next().unwrap_or(tail)
}

/// Connect's pruned alias of a connector class: the simple name cut before its last `Connector`
/// (when that is not at the start).
pub fn pruned_name(class: &str) -> &str {
    let simple = simple_name(class);
    match simple.rfind("Connector") {
        Some(pos) if pos > 0 => &simple[..pos],
        _ => simple,
    }
}

fn is_qualified(name: &str) -> bool {
    name.contains('.')
}

/// Whether two names (full class names or aliases) denote the same class, without a catalog.
pub fn same_class(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (is_qualified(a), is_qualified(b)) {
        (true, true) => false,
        (true, false) => b == simple_name(a) || b == pruned_name(a),
        (false, true) => a == simple_name(b) || a == pruned_name(b),
        (false, false) => pruned_name(a) == pruned_name(b),
    }
}

/// Whether `name` (a connector's class, resolved when possible) matches rule entry `entry`
/// (a class or alias written by the platform team), resolving the entry through the catalog.
pub fn matches(catalog: &PluginCatalog, name: &str, entry: &str) -> bool {
    let entry = catalog.resolve(entry).unwrap_or(entry);
    same_class(name, entry)
}

/// Guesses the type from the class name when the catalog does not know the class.
pub fn guess_type(class: &str) -> ConnectorType {
    let pruned = pruned_name(class);
    if pruned.ends_with("Sink") {
        ConnectorType::Sink
    } else if pruned.ends_with("Source") {
        ConnectorType::Source
    } else {
        ConnectorType::Unknown
    }
}

/// Checks the class against the catalog, the allowlist and the pool restrictions. `class` is
/// the connector's class resolved through the catalog when possible; `given` what the config
/// said. A `pool` that is none of `pools` is a violation unless `pool_reported` (the caller
/// reports it as a problem of the request); the pool restrictions are not checked then.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check(
    rules: &PolicyRules,
    pools: &[String],
    pool_reported: bool,
    catalog: &PluginCatalog,
    given: &str,
    class: &str,
    pool: &str,
    out: &mut Vec<Violation>,
) {
    if !catalog.is_empty() && catalog.resolve(given).is_none() {
        out.push(Violation::builtin(
            RULE_PLUGIN_UNKNOWN,
            Some("connector.class"),
            format!("connector class \"{given}\" is not installed on the workers"),
            "use a class or alias from GET /connector-plugins; ask the platform team to install \
             the plugin if it is missing",
        ));
    }
    if let Some(allowed) = &rules.plugins.allowed
        && !allowed.iter().any(|entry| matches(catalog, class, entry))
    {
        out.push(Violation::builtin(
            RULE_PLUGIN_ALLOWED,
            Some("connector.class"),
            format!("connector class \"{given}\" is not allowed in this department"),
            format!(
                "use one of the allowed classes ({}), or ask the platform team to add it to \
                 policy.plugins.allowed",
                quote_list(allowed)
            ),
        ));
    }
    if !pools.iter().any(|p| p == pool) {
        if pool_reported {
            return;
        }
        out.push(Violation::builtin(
            RULE_POOL_UNKNOWN,
            Some(super::POOL_KEY),
            format!("pool \"{pool}\" does not exist in this department"),
            format!(
                "set {} to one of {} or remove it to use the default pool",
                super::POOL_KEY,
                quote_list(pools)
            ),
        ));
        return;
    }
    for (entry, allowed_pools) in &rules.plugins.pools {
        if matches(catalog, class, entry) && !allowed_pools.iter().any(|p| p == pool) {
            out.push(Violation::builtin(
                RULE_PLUGIN_POOL,
                Some(super::POOL_KEY),
                format!("connector class \"{given}\" may not run on pool \"{pool}\""),
                format!(
                    "set {} to one of {}",
                    super::POOL_KEY,
                    quote_list(allowed_pools)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
    const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";

    fn catalog() -> PluginCatalog {
        PluginCatalog::new([
            (FILE_SOURCE, "source"),
            (FILE_SINK, "sink"),
            (
                "org.apache.kafka.connect.mirror.MirrorSourceConnector",
                "source",
            ),
            ("com.example.a.JdbcSourceConnector", "source"),
            ("com.example.b.JdbcSourceConnector", "source"),
            (
                "org.apache.kafka.connect.transforms.Cast$Value",
                "transformation",
            ),
        ])
    }

    #[test]
    fn aliases_follow_connects_simple_and_pruned_names() {
        let c = catalog();
        assert_eq!(c.resolve("FileStreamSource"), Some(FILE_SOURCE));
        assert_eq!(c.resolve("FileStreamSourceConnector"), Some(FILE_SOURCE));
        assert_eq!(c.resolve(FILE_SINK), Some(FILE_SINK));
        assert_eq!(c.resolve("FileStreamSink"), Some(FILE_SINK));
        assert_eq!(
            c.resolve("filestreamsink"),
            None,
            "aliases are case-sensitive"
        );
        assert_eq!(
            c.resolve("MirrorSource"),
            Some("org.apache.kafka.connect.mirror.MirrorSourceConnector")
        );
    }

    #[test]
    fn an_alias_shared_by_two_classes_resolves_to_neither() {
        let c = catalog();
        assert_eq!(c.resolve("JdbcSource"), None);
        assert_eq!(c.resolve("JdbcSourceConnector"), None);
        assert_eq!(
            c.resolve("com.example.a.JdbcSourceConnector"),
            Some("com.example.a.JdbcSourceConnector")
        );
        assert_eq!(
            c.resolve("Value"),
            None,
            "transformations are not connectors"
        );
    }

    #[test]
    fn names_compare_by_the_alias_rule_without_a_catalog() {
        assert!(same_class(FILE_SOURCE, "FileStreamSource"));
        assert!(same_class("FileStreamSourceConnector", FILE_SOURCE));
        assert!(same_class("FileStreamSource", "FileStreamSourceConnector"));
        assert!(!same_class(FILE_SOURCE, FILE_SINK));
        assert!(!same_class("FileStreamSource", "FileStreamSink"));
        assert!(
            !same_class("com.a.JdbcSourceConnector", "com.b.JdbcSourceConnector"),
            "two full names are one class only when equal"
        );
        assert!(!same_class("Connector", "org.x.Connector2"));
    }

    #[test]
    fn pruning_keeps_a_leading_connector_and_handles_nested_classes() {
        assert_eq!(pruned_name("org.x.Connector"), "Connector");
        assert_eq!(pruned_name("org.x.Outer$InnerSinkConnector"), "InnerSink");
        assert_eq!(simple_name("NoPackage"), "NoPackage");
        assert_eq!(
            pruned_name("org.x.ConnectorForSinkConnector"),
            "ConnectorForSink"
        );
    }

    #[test]
    fn types_come_from_the_catalog_or_the_name() {
        let c = catalog();
        assert_eq!(c.connector_type(FILE_SINK), Some(ConnectorType::Sink));
        assert_eq!(
            guess_type("io.confluent.connect.s3.S3SinkConnector"),
            ConnectorType::Sink
        );
        assert_eq!(guess_type("JdbcSource"), ConnectorType::Source);
        assert_eq!(guess_type("com.x.Replicator"), ConnectorType::Unknown);
    }
}

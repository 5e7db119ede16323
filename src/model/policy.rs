//! The department's guardrail settings (the `[policy]` table of the department file) as plain
//! data, with the defaults taken from the requirements and the managed path, and the stable ids
//! of the built-in rules.
//!
//! This module holds no logic beyond defaults and lookups: the config loader fills these types and
//! checks them, the policy engine evaluates them.

use std::collections::BTreeMap;

use regex::Regex;

use super::rego::RegoPolicies;

/// Rule id: a connector name must start with `<department>-`.
pub const RULE_NAMING_PREFIX: &str = "naming.prefix";
/// Rule id: a connector name must match the naming pattern.
pub const RULE_NAMING_PATTERN: &str = "naming.pattern";
/// Rule id: a connector name is at most `max_length` characters.
pub const RULE_NAMING_LENGTH: &str = "naming.length";
/// Rule id: a connector name may not use a reserved prefix.
pub const RULE_NAMING_RESERVED: &str = "naming.reserved";
/// Rule id: the department may hold at most `max_connectors` connectors.
pub const RULE_QUOTA_CONNECTORS: &str = "quota.connectors";
/// Rule id: `tasks.max` of one connector is at most `max_tasks_per_connector`.
pub const RULE_QUOTA_TASKS_PER_CONNECTOR: &str = "quota.tasks-per-connector";
/// Rule id: the `tasks.max` of all connectors add up to at most `max_tasks_total`.
pub const RULE_QUOTA_TASKS_TOTAL: &str = "quota.tasks-total";
/// Rule id: `tasks.max` must be a positive integer.
pub const RULE_CONFIG_TASKS_MAX: &str = "config.tasks-max";
/// Rule id: `connector.class` is required.
pub const RULE_PLUGIN_CLASS: &str = "plugin.class";
/// Rule id: the connector class is not on the department's allowlist.
pub const RULE_PLUGIN_ALLOWED: &str = "plugin.allowed";
/// Rule id: the connector class is not installed on the workers.
pub const RULE_PLUGIN_UNKNOWN: &str = "plugin.unknown";
/// Rule id: the connector class may not run on the connector's pool.
pub const RULE_PLUGIN_POOL: &str = "plugin.pool";
/// Rule id: `supervisor.pool` names no pool of the department.
pub const RULE_POOL_UNKNOWN: &str = "pool.unknown";
/// Rule id: a client override key is not allowed.
pub const RULE_OVERRIDES_DENIED: &str = "overrides.denied";
/// Rule id: a topic is outside the department's prefixes.
pub const RULE_TOPICS_PREFIX: &str = "topics.prefix";
/// Rule id: a key required for this class or connector type is missing.
pub const RULE_REQUIRED_KEYS: &str = "required.keys";
/// Rule id: a literal secret value where the department only accepts references.
pub const RULE_SECRETS_LITERAL: &str = "secrets.literal";
/// Rule id: a `${provider:...}` reference to a provider that is not allowed or not configured.
pub const RULE_SECRETS_PROVIDER: &str = "secrets.provider";

/// Every built-in rule id, for `policy.disabled` validation and documentation.
pub const BUILTIN_RULES: &[&str] = &[
    RULE_NAMING_PREFIX,
    RULE_NAMING_PATTERN,
    RULE_NAMING_LENGTH,
    RULE_NAMING_RESERVED,
    RULE_QUOTA_CONNECTORS,
    RULE_QUOTA_TASKS_PER_CONNECTOR,
    RULE_QUOTA_TASKS_TOTAL,
    RULE_CONFIG_TASKS_MAX,
    RULE_PLUGIN_CLASS,
    RULE_PLUGIN_ALLOWED,
    RULE_PLUGIN_UNKNOWN,
    RULE_PLUGIN_POOL,
    RULE_POOL_UNKNOWN,
    RULE_OVERRIDES_DENIED,
    RULE_TOPICS_PREFIX,
    RULE_REQUIRED_KEYS,
    RULE_SECRETS_LITERAL,
    RULE_SECRETS_PROVIDER,
];

/// Default connector-name pattern (from the requirements).
const DEFAULT_NAME_PATTERN: &str = "^[a-z0-9]+(-[a-z0-9]+)*$";
/// Default maximum connector-name length (from the requirements).
const DEFAULT_NAME_MAX_LENGTH: usize = 64;
/// Default reserved name prefixes (from the requirements).
pub const DEFAULT_RESERVED_PREFIXES: &[&str] = &["connect", "confluent", "system", "admin"];
/// Default maximum connectors per department (the managed path's per-cluster figure).
const DEFAULT_MAX_CONNECTORS: u32 = 50;
/// Default maximum `tasks.max` per connector (the managed path's figure).
const DEFAULT_MAX_TASKS_PER_CONNECTOR: u32 = 10;
/// Default dead letter queue topic pattern.
const DEFAULT_DLQ_TOPIC: &str = "{connector}-dlq";
/// Placeholders a dead letter queue topic pattern may use.
pub const DLQ_PLACEHOLDERS: &[&str] = &["{connector}", "{department}", "{pool}"];

/// The config key of a connector's maximum task count.
pub const TASKS_MAX_KEY: &str = "tasks.max";

/// `tasks.max` as Connect reads it: absent means 1.
pub fn tasks_max(value: Option<&str>) -> Result<u32, String> {
    let Some(text) = value else { return Ok(1) };
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n.min(i64::from(u32::MAX)) as u32),
        Ok(n) => Err(format!("tasks.max is {n}; it must be 1 or more")),
        Err(_) => Err(format!("tasks.max \"{text}\" is not a whole number")),
    }
}

/// A connector config's `tasks.max` as quotas and metrics count it: 1 when absent or unusable.
pub(crate) fn counted_tasks(config: &BTreeMap<String, String>) -> u32 {
    tasks_max(config.get(TASKS_MAX_KEY).map(String::as_str)).unwrap_or(1)
}

/// Every guardrail of a department.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyRules {
    /// Connector names.
    pub naming: NamingRules,
    /// Connector and task counts.
    pub quotas: QuotaRules,
    /// Allowed connector classes and where they may run.
    pub plugins: PluginRules,
    /// Client override keys (`producer.override.*`, ...) that connectors may set.
    pub overrides: OverrideRules,
    /// Topics connectors may read and write.
    pub topics: TopicRules,
    /// Keys connectors must set.
    pub required: RequiredKeys,
    /// Config the platform adds to connectors.
    pub defaults: PlatformDefaults,
    /// Policies as code.
    pub rego: RegoPolicies,
    /// Built-in rule ids switched off for this department.
    pub disabled: Vec<String>,
}

impl PolicyRules {
    /// Whether the built-in rule `rule` is switched on.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.disabled.iter().any(|d| d == rule)
    }
}

/// A compiled regular expression that compares by its source text.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Naming rules for connectors.
#[derive(Debug, Clone, PartialEq)]
pub struct NamingRules {
    /// Names must start with `<department>-`.
    pub require_department_prefix: bool,
    /// Names must match this pattern.
    pub pattern: Pattern,
    /// Names have at most this many characters.
    pub max_length: usize,
    /// Prefixes no name may use: neither its first dash-separated segment nor the first segment
    /// after `<department>-` may be one of them.
    pub reserved_prefixes: Vec<String>,
}

impl Default for NamingRules {
    fn default() -> Self {
        Self {
            require_department_prefix: true,
            pattern: Pattern(Regex::new(DEFAULT_NAME_PATTERN).expect("valid default pattern")),
            max_length: DEFAULT_NAME_MAX_LENGTH,
            reserved_prefixes: DEFAULT_RESERVED_PREFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Connector and task quotas. Refused when exceeded, never clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRules {
    /// Connectors the department may hold.
    pub max_connectors: u32,
    /// Largest `tasks.max` of one connector.
    pub max_tasks_per_connector: u32,
    /// Largest sum of `tasks.max` over all connectors.
    pub max_tasks_total: u32,
}

impl Default for QuotaRules {
    fn default() -> Self {
        Self {
            max_connectors: DEFAULT_MAX_CONNECTORS,
            max_tasks_per_connector: DEFAULT_MAX_TASKS_PER_CONNECTOR,
            max_tasks_total: DEFAULT_MAX_CONNECTORS * DEFAULT_MAX_TASKS_PER_CONNECTOR,
        }
    }
}

/// Which connector classes the department may use, and on which pools.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginRules {
    /// Allowed classes, as full class names or Connect aliases. `None`: every installed class.
    pub allowed: Option<Vec<String>>,
    /// Classes (or aliases) restricted to some pools; a class not listed may run on any pool.
    pub pools: BTreeMap<String, Vec<String>>,
}

/// Prefixes of the keys that override the settings of a connector's Kafka clients.
pub const OVERRIDE_PREFIXES: &[&str] = &[
    "producer.override.",
    "consumer.override.",
    "admin.override.",
];

/// Client override keys connectors may set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverrideRules {
    /// Allowed keys, exact or globs with `*` (`producer.override.compression.type`,
    /// `consumer.override.max.poll.*`). Every other override key is denied.
    pub allowed: Vec<String>,
}

/// Topics connectors may use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicRules {
    /// Allowed topic prefixes. `None`: `<department>-`. A `""` prefix allows every topic.
    pub prefixes: Option<Vec<String>>,
    /// Extra config keys holding a topic name or a comma-separated list of them.
    pub extra_keys: Vec<String>,
}

impl TopicRules {
    /// The prefixes in force for department `id`.
    pub fn prefixes_for(&self, id: &str) -> Vec<String> {
        self.prefixes
            .clone()
            .unwrap_or_else(|| vec![format!("{id}-")])
    }
}

/// Keys connectors must set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequiredKeys {
    /// Keys every source connector must set.
    pub source: Vec<String>,
    /// Keys every sink connector must set.
    pub sink: Vec<String>,
    /// Keys connectors of a class (full name or alias) must set.
    pub classes: BTreeMap<String, Vec<String>>,
}

/// Config the platform adds to connectors that lack it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformDefaults {
    /// Give sink connectors without a dead letter queue one.
    pub dead_letter_queue: bool,
    /// Topic name pattern of that queue; placeholders `{connector}`, `{department}`, `{pool}`.
    pub dead_letter_queue_topic: String,
    /// Replication factor of that topic; `None` takes the department's
    /// `kafka.internal_topic_replication_factor`.
    pub dead_letter_queue_replication_factor: Option<i16>,
}

impl Default for PlatformDefaults {
    fn default() -> Self {
        Self {
            dead_letter_queue: true,
            dead_letter_queue_topic: DEFAULT_DLQ_TOPIC.to_string(),
            dead_letter_queue_replication_factor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_max_is_trimmed_defaults_to_one_and_counts_one_when_unusable() {
        assert_eq!(tasks_max(None), Ok(1));
        assert_eq!(tasks_max(Some(" 3 ")), Ok(3));
        assert!(tasks_max(Some("0")).unwrap_err().contains("1 or more"));
        assert!(
            tasks_max(Some("x"))
                .unwrap_err()
                .contains("not a whole number")
        );
        let config = |v: &str| BTreeMap::from([(TASKS_MAX_KEY.to_string(), v.to_string())]);
        assert_eq!(counted_tasks(&config(" 4")), 4);
        assert_eq!(counted_tasks(&config("0")), 1);
        assert_eq!(counted_tasks(&config("many")), 1);
        assert_eq!(counted_tasks(&BTreeMap::new()), 1);
    }
}

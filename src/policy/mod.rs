//! Department guardrails: one pure engine that reviews a connector (create, update or validate)
//! against the department's rules and returns **every** violation, the platform defaults it
//! adds, and the secrets it will externalize.
//!
//! Built-in rules: naming ([`naming`]), quotas ([`quota`]), plugin allowlist and pools
//! ([`plugins`]), client overrides and required keys ([`keys`]), topics ([`topics`]), secrets
//! ([`secrets`]); platform defaults ([`defaults`]); policies as code ([`rego`]). The rules are
//! plain data ([`rules`]) read from the department file by [`crate::config`].
//!
//! Nothing here does I/O, logs, or keeps state: the callers (the API's create/update/validate
//! routes and `connect-supervisor validate`) bring the department's usage and the workers'
//! plugin catalog, and act on the [`Review`] (refuse, write the secret file, record the event).
//! Messages never contain a secret value: sensitive values are masked before Rego sees them and
//! no built-in rule quotes one.

pub mod defaults;
pub mod keys;
pub mod lookalike;
pub mod naming;
pub mod plugins;
pub mod quota;
pub use crate::model::policy as rules;
pub use crate::model::rego;
pub mod secrets;
pub mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::json;

use crate::model::Department;

pub use defaults::{APPLIED_DEFAULTS_KEY, AppliedDefault, strip_applied};
pub use plugins::{ConnectorType, PluginCatalog};
pub use quota::ConnectorUsage;
pub use rego::{RegoPolicies, RegoProblem, RegoSource};
pub use rules::PolicyRules;
pub use secrets::{Externalized, SecretPlan, externalize, secrets_dir};

/// The config key naming a connector.
pub const NAME_KEY: &str = "name";
/// The config key of a connector's class.
pub const CLASS_KEY: &str = "connector.class";
pub use crate::model::policy::TASKS_MAX_KEY;
/// The config key choosing a connector's pool (else the department's default pool).
pub const POOL_KEY: &str = "supervisor.pool";

/// What is being done to the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A new connector.
    Create,
    /// A new config for an existing connector (naming rules are not applied: the name exists).
    Update,
    /// A dry run (`config/validate`, `connect-supervisor validate`).
    Validate,
}

/// Where a violated rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// A rule of this engine.
    Builtin,
    /// A Rego policy of the department.
    Rego,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable rule id (`naming.prefix`, `quota.tasks-total`, or a Rego policy's name): bounded,
    /// used as the `rule` metric label.
    pub rule: String,
    /// The config key concerned (`name` for the connector name), if any.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Built-in rule or Rego policy.
    pub source: RuleSource,
}

impl Violation {
    pub(crate) fn builtin(
        rule: &'static str,
        key: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            rule: rule.to_string(),
            key: key.map(str::to_string),
            message: message.into(),
            hint: hint.into(),
            source: RuleSource::Builtin,
        }
    }

    pub(crate) fn rego(policy: &str, key: Option<&str>, message: String, hint: String) -> Self {
        Self {
            rule: policy.to_string(),
            key: key.map(str::to_string),
            message,
            hint,
            source: RuleSource::Rego,
        }
    }
}

/// Why a pure step could not produce its result.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The secret file's path cannot appear in a config-provider reference.
    #[error("the secret file {path} cannot be referenced: {reason}")]
    SecretPath {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Config values refer to secrets the connector's secret file does not hold.
    #[error(
        "{} refer{} to a secret this connector's secret file does not hold; send the value itself",
        quote_list(keys),
        if keys.len() == 1 { "s" } else { "" }
    )]
    SecretMissing {
        /// The config keys.
        keys: Vec<String>,
    },
    /// A secret key cannot appear in a config-provider reference.
    #[error("the secret key {key} contains '}}' and cannot be referenced by a config provider")]
    SecretKey {
        /// The key.
        key: String,
    },
}

impl PolicyError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SecretPath { .. } => "policy_secret_path",
            Self::SecretKey { .. } => "policy_secret_key",
            Self::SecretMissing { .. } => "policy_secret_missing",
        }
    }
}

/// A connector to review.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorRequest<'a> {
    /// What is being done.
    pub operation: Operation,
    /// The connector's name.
    pub name: &'a str,
    /// The config as the user sent it (all values strings).
    pub config: &'a BTreeMap<String, String>,
    /// The department's current usage.
    pub usage: ConnectorUsage,
    /// The workers' plugins (may be empty).
    pub catalog: &'a PluginCatalog,
    /// Keys Connect declares as PASSWORD for this class (from the plugin's config definition),
    /// secrets whatever the sensitive-key patterns say.
    pub password_keys: &'a BTreeSet<String>,
    /// The environment (`dev`, `prod`...) when known (GitOps layouts); given to Rego.
    pub environment: Option<&'a str>,
    /// The pool the connector runs (or would run) on, as the caller resolved it
    /// (the connectors' placement); the engine does not derive it again. It may name no pool
    /// of the department: that is a violation (unless [`Self::reported`] says otherwise).
    pub pool: &'a str,
    /// What the caller's own request checks already report as problems, so the engine does
    /// not produce the same finding as a violation.
    pub reported: Reported,
}

/// Findings the caller of [`review`] reports itself (the API's request checks): the engine
/// leaves their rules out instead of producing them for the caller to filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// A missing or blank `connector.class` ([`rules::RULE_PLUGIN_CLASS`]).
    pub missing_class: bool,
    /// A pool that does not exist ([`rules::RULE_POOL_UNKNOWN`]).
    pub unknown_pool: bool,
}

static EMPTY_CATALOG: LazyLock<PluginCatalog> = LazyLock::new(PluginCatalog::default);
static NO_KEYS: BTreeSet<String> = BTreeSet::new();

impl<'a> ConnectorRequest<'a> {
    /// A request for a connector on `pool`, with no usage, no catalog, no PASSWORD keys, no
    /// environment, and nothing reported by the caller.
    pub fn new(
        operation: Operation,
        name: &'a str,
        config: &'a BTreeMap<String, String>,
        pool: &'a str,
    ) -> Self {
        Self {
            operation,
            name,
            config,
            usage: ConnectorUsage::default(),
            catalog: &EMPTY_CATALOG,
            password_keys: &NO_KEYS,
            environment: None,
            pool,
            reported: Reported::default(),
        }
    }
}

/// What the engine derived about the connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorFacts {
    /// The class as written in `connector.class` (empty when missing).
    pub class_given: String,
    /// The full class name when the catalog resolved it, else as written.
    pub class: String,
    /// Source, sink or unknown.
    pub connector_type: ConnectorType,
    /// The pool it runs on.
    pub pool: String,
    /// Its `tasks.max` (1 when absent or unusable).
    pub tasks: u32,
}

/// The engine's verdict on one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Every broken rule; empty when the change may go ahead.
    pub violations: Vec<Violation>,
    /// What the engine derived.
    pub facts: ConnectorFacts,
    /// The config to give Connect: the user's (minus supervisor keys) plus applied defaults and
    /// their record. Secrets are not yet externalized (see [`externalize`]).
    pub config: BTreeMap<String, String>,
    /// The defaults added, for the audit trail.
    pub applied_defaults: Vec<AppliedDefault>,
    /// Secret keys with literal values: `externalize` mode moves them to the secret file,
    /// `allow` mode passes them on; `reject` mode reports them as violations.
    pub literal_secrets: Vec<String>,
}

impl Review {
    /// Whether the change may go ahead.
    pub fn is_allowed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Reviews one connector against the department's rules.
pub fn review(department: &Department, request: &ConnectorRequest<'_>) -> Review {
    let rules = &department.policy;
    let enabled = |rule: &str| rules.enabled(rule);
    let mut violations = Vec::new();
    let mut config = defaults::without_supervisor_keys(request.config);

    if request.operation != Operation::Update {
        naming::check(
            &rules.naming,
            &department.id,
            request.name,
            &enabled,
            &mut violations,
        );
    }

    let class_given = config
        .get(CLASS_KEY)
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    let class = request
        .catalog
        .resolve(&class_given)
        .unwrap_or(&class_given)
        .to_string();
    let connector_type = request
        .catalog
        .connector_type(&class)
        .unwrap_or_else(|| plugins::guess_type(&class));
    let pool = request.pool.to_string();
    let pools: Vec<String> = department.pools.iter().map(|p| p.name.clone()).collect();
    if class_given.is_empty() {
        if !request.reported.missing_class {
            violations.push(Violation::builtin(
                rules::RULE_PLUGIN_CLASS,
                Some(CLASS_KEY),
                "connector.class is missing",
                "set connector.class to a full class name or an alias from GET /connector-plugins",
            ));
        }
    } else {
        plugins::check(
            rules,
            &pools,
            request.reported.unknown_pool,
            request.catalog,
            &class_given,
            &class,
            &pool,
            &mut violations,
        );
    }

    let tasks = quota::check(
        &rules.quotas,
        &request.usage,
        config.get(TASKS_MAX_KEY).map(String::as_str),
        &enabled,
        &mut violations,
    );

    let applied_defaults = defaults::apply(
        &rules.defaults,
        &department.id,
        department.kafka.internal_topic_replication_factor,
        request.name,
        &pool,
        connector_type,
        &mut config,
    );

    keys::check_overrides(&rules.overrides, &config, &mut violations);
    topics::check(
        &config,
        &rules.topics.prefixes_for(&department.id),
        &rules.topics.extra_keys,
        &mut violations,
    );
    keys::check_required(
        &rules.required,
        request.catalog,
        &class,
        connector_type,
        &config,
        &mut violations,
    );
    let literal_secrets = secrets::check(
        department,
        &pool,
        request.password_keys,
        &config,
        &enabled,
        &mut violations,
    );
    violations.retain(|v| v.source == RuleSource::Rego || rules.enabled(&v.rule));

    let facts = ConnectorFacts {
        class_given,
        class,
        connector_type,
        pool,
        tasks,
    };
    if !rules.rego.is_empty() {
        let input = rego_input(department, request, &facts, &config, &applied_defaults);
        violations.extend(
            rules
                .rego
                .evaluate(&input)
                .into_iter()
                .map(|d| Violation::rego(&d.rule, d.key.as_deref(), d.message, d.hint)),
        );
    }
    Review {
        violations,
        facts,
        config,
        applied_defaults,
        literal_secrets,
    }
}

/// The `input` document Rego policies see (documented in the README): literal secrets masked.
pub fn rego_input(
    department: &Department,
    request: &ConnectorRequest<'_>,
    facts: &ConnectorFacts,
    config: &BTreeMap<String, String>,
    applied_defaults: &[AppliedDefault],
) -> serde_json::Value {
    let masked = secrets::mask(&department.secrets, request.password_keys, config);
    json!({
        "operation": request.operation,
        "environment": request.environment,
        "department": {
            "id": department.id,
            "default_pool": department.default_pool,
            "pools": department.pools.iter().map(|p| &p.name).collect::<Vec<_>>(),
        },
        "connector": {
            "name": request.name,
            "class": facts.class,
            "class_given": facts.class_given,
            "type": facts.connector_type,
            "pool": facts.pool,
            "tasks_max": facts.tasks,
            "config": masked,
            "applied_defaults": applied_defaults.iter().map(|a| &a.key).collect::<Vec<_>>(),
        },
        "usage": request.usage,
    })
}

/// `"a", "b"` for messages.
pub(crate) fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests;

//! The department's guardrails on the API's writes. Every create and update (managed and
//! Apache-compatible routes, PUT and PATCH config, create with offsets) is reviewed by
//! [`crate::policy::review`] against what the department really runs, and is either refused
//! with every violation or let through with the platform's defaults added and its literal
//! secrets moved to the connector's secret file; the plugin `config/validate` call gets the same
//! violations as a dry run.
//!
//! The connectors calls in here around its calls to Connect. This module gathers the review's
//! inputs from the workers (usage, plugin catalog, PASSWORD-typed keys), turns a verdict into a
//! [`Refusal`] and a [`PolicyRejected`], and stages the secret file
//! ([`crate::secret_store`]) so that a change Connect refuses leaves it as it was. It does not
//! call Connect's write endpoints, hold locks, or shape HTTP answers. The pure helpers (usage,
//! the validate merge, refusal texts) are unit-tested here.
//!
//! **Usage** is counted from the connectors that exist on the workers, each with its
//! `tasks.max` (Connect's default 1), whatever its state: a paused, stopped or failed connector
//! keeps its slot, and a connector running fewer tasks than `tasks.max` (a source with one
//! table, a failed task) may start the rest at any rebalance without another API call, so only
//! `tasks.max` bounds what the department can run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Connectors, ConnectorsError, placement};
use crate::model::Department;
use crate::observe::events::{DefaultsApplied, PolicyRejected, SecretsExternalized};
use crate::policy::{
    self, ConnectorRequest, ConnectorUsage, Operation, PluginCatalog, PolicyError, Reported,
    Review, SecretPlan, Violation, quota, rules,
};
use crate::secret_store::{SecretStore, SecretStoreError};
use crate::translate;

/// included (`?include_defaults=true`).
pub const INCLUDE_DEFAULTS_PARAM: &str = "include_defaults";

/// A create or update refused by the guardrails (or by the request checks run with them).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The connector.
    pub connector: String,
    /// Problems of the request itself (missing name, masks without a value...).
    pub problems: Vec<String>,
    /// Broken rules.
    pub violations: Vec<Violation>,
}

impl Refusal {
    /// The rule ids of the violations, without repeats, in order.
    pub fn rules(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.violations
            .iter()
            .filter(|v| seen.insert(v.rule.as_str()))
            .map(|v| v.rule.clone())
            .collect()
    }

    /// The violations as the API's error bodies list them.
    pub fn violations_json(&self) -> Value {
        Value::Array(self.violations.iter().map(violation_json).collect())
    }

    /// `self` with every secret value in `secrets` masked in messages and hints (a rule may
    /// quote the value it judges, e.g. an unusable `tasks.max`).
    pub fn scrubbed(mut self, secrets: &[String]) -> Self {
        for p in &mut self.problems {
            *p = translate::scrub(p, secrets);
        }
        for v in &mut self.violations {
            v.message = translate::scrub(&v.message, secrets);
            v.hint = translate::scrub(&v.hint, secrets);
        }
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self.problems.clone();
        parts.extend(self.violations.iter().map(violation_text));
        let n = self.violations.len();
        if n == 0 {
            return f.write_str(&parts.join("; "));
        }
        write!(
            f,
            "connector {} is refused by the department's guardrails ({} violation{}): {}",
            self.connector,
            n,
            if n == 1 { "" } else { "s" },
            parts.join("; ")
        )
    }
}

/// One violation as a line: `[rule] key: message (fix: hint)` (no `key: ` when the message
/// starts with the key already).
pub fn violation_text(v: &Violation) -> String {
    let key = v
        .key
        .as_deref()
        .filter(|k| !v.message.starts_with(k))
        .map(|k| format!("{k}: "))
        .unwrap_or_default();
    format!("[{}] {key}{} (fix: {})", v.rule, v.message, v.hint)
}

/// One violation as JSON: `{rule, key, message, hint}`.
pub fn violation_json(v: &Violation) -> Value {
    json!({ "rule": v.rule, "key": v.key, "message": v.message, "hint": v.hint })
}

/// The department's usage as the review of connector `name` sees it, from every connector's
/// `tasks.max` (`tasks`): an existing connector is an update whose own tasks are replaced.
pub fn usage_for(tasks: &BTreeMap<String, u32>, name: &str) -> ConnectorUsage {
    ConnectorUsage {
        connectors: u32::try_from(tasks.len()).unwrap_or(u32::MAX),
        tasks: tasks.values().fold(0u32, |sum, t| sum.saturating_add(*t)),
        connector_tasks: tasks.get(name).copied(),
    }
}

/// A stored config's `tasks.max` as the quotas count it (1 when absent or unusable).
pub fn tasks_of(config: &BTreeMap<String, String>) -> u32 {
    quota::tasks_max(config.get(policy::TASKS_MAX_KEY).map(String::as_str)).unwrap_or(1)
}

/// What a write asks the guardrails.
#[derive(Debug, Clone)]
pub struct WriteRequest<'a> {
    /// Create or update.
    pub operation: Operation,
    /// The connector.
    pub name: &'a str,
    /// The config as the user means it (masks already replaced by the current values, the
    /// platform's earlier defaults already stripped).
    pub config: &'a BTreeMap<String, String>,
    /// The pool it runs (or will run) on.
    pub pool: &'a str,
    /// Problems the connectors's own request checks found (reported together with violations).
    pub problems: Vec<String>,
    /// Who asks (key id or token name).
    pub principal: &'a str,
}

/// A write the guardrails let through: what to give Connect, and the staged secret file.
pub struct Admitted {
    /// The config Connect gets: the user's, platform defaults added (and recorded), literal
    /// secrets replaced by references in `externalize` mode.
    pub config: BTreeMap<String, String>,
    /// The engine's verdict (applied defaults, facts).
    pub review: Review,
    /// Every secret value involved, to scrub Connect's messages with (Connect's validation
    /// resolves references, so its errors may quote the values).
    pub scrub: Vec<String>,
    secrets: StagedSecrets,
    operation: Operation,
    name: String,
    principal: String,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys only: the config, the scrub list and the secret file hold secret values.
        f.debug_struct("Admitted")
            .field("connector", &self.name)
            .field("operation", &self.operation)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Admitted {
    /// Writes the secret file Connect will resolve (before Connect sees the config: Connect
    /// validates a config with its references resolved).
    pub fn stage(&mut self) -> Result<(), ConnectorsError> {
        self.secrets.stage().map_err(ConnectorsError::from)
    }

    /// Connect refused or failed: the secret file goes back to what it was.
    pub fn rollback(self) {
        self.secrets.rollback();
    }

    /// Connect accepted: an emptied secret file is removed, and the audit events (defaults
    /// applied, secrets externalized) are emitted.
    pub fn commit(self, connectors: &Connectors) {
        self.secrets.commit();
        let observer = connectors.supervisor().observer();
        let operation = operation_str(self.operation);
        if !self.review.applied_defaults.is_empty() {
            observer.emit(DefaultsApplied {
                connector: self.name.clone(),
                operation,
                principal: self.principal.clone(),
                defaults: self
                    .review
                    .applied_defaults
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone()))
                    .collect(),
            });
        }
        if !self.secrets.moved.is_empty() {
            observer.emit(SecretsExternalized {
                connector: self.name,
                operation,
                principal: self.principal,
                keys: self.secrets.moved.clone(),
            });
        }
    }
}

/// The connector's secret file before and after a write, so the write can be undone.
struct StagedSecrets {
    store: SecretStore,
    name: String,
    previous: Option<BTreeMap<String, String>>,
    next: Option<BTreeMap<String, String>>,
    moved: Vec<String>,
    written: bool,
}

impl std::fmt::Debug for StagedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |m: &Option<BTreeMap<String, String>>| {
            m.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>())
        };
        f.debug_struct("StagedSecrets")
            .field("file", &self.store.path(&self.name))
            .field("previous_keys", &keys(&self.previous))
            .field("next_keys", &keys(&self.next))
            .field("moved", &self.moved)
            .field("written", &self.written)
            .finish()
    }
}

impl StagedSecrets {
    fn stage(&mut self) -> Result<(), SecretStoreError> {
        if let Some(next) = &self.next
            && self.previous.as_ref() != Some(next)
        {
            self.written = true;
            self.store.write(&self.name, next)?;
        }
        Ok(())
    }

    fn rollback(self) {
        if !self.written {
            return;
        }
        if let Err(e) = self.store.restore(&self.name, self.previous.as_ref()) {
            tracing::error!(connector = %self.name, error = %e, code = e.code(),
                "The connector's secret file could not be put back after a refused change.");
        }
    }

    fn commit(&self) {
        if self.next.is_none()
            && self.previous.is_some()
            && let Err(e) = self.store.remove(&self.name)
        {
            tracing::error!(connector = %self.name, error = %e, code = e.code(),
                "A secret file the connector no longer uses could not be removed.");
        }
    }
}

fn operation_str(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Validate => "validate",
    }
}

/// Every connector of the department with its `tasks.max`, from the workers (one call per
/// pool, connectors created moments ago included).
pub async fn department_tasks(
    connectors: &Connectors,
) -> Result<BTreeMap<String, u32>, ConnectorsError> {
    Ok(connectors
        .expanded(false, true)
        .await?
        .into_iter()
        .map(|(name, (_, e))| {
            let tasks = e.info.as_ref().map(|i| tasks_of(&i.config)).unwrap_or(1);
            (name, tasks)
        })
        .collect())
}

/// References to other connectors' secret files (unless the department switched the rule off).
pub(super) fn foreign_references(
    config: &BTreeMap<String, String>,
    dir: &std::path::Path,
    name: &str,
    connectors: &BTreeMap<String, u32>,
    department: &crate::model::Department,
) -> Vec<Violation> {
    if !department.policy.enabled(rules::RULE_SECRETS_PROVIDER) {
        return Vec::new();
    }
    policy::secrets::foreign_references(config, dir, name, connectors.keys().map(String::as_str))
}

pub(super) async fn catalog(connectors: &Connectors) -> Result<PluginCatalog, ConnectorsError> {
    Ok(PluginCatalog::from_plugins(&connectors.plugins().await?))
}

/// What [`decide`] judges a write on: the request and everything gathered for it from the
/// workers and the secret store.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Create or update.
    pub operation: Operation,
    /// The connector.
    pub name: &'a str,
    /// The config as the user means it (see [`WriteRequest::config`]).
    pub config: &'a BTreeMap<String, String>,
    /// Every connector of the department with its `tasks.max` ([`department_tasks`]).
    pub tasks: &'a BTreeMap<String, u32>,
    /// The workers' plugins.
    pub catalog: &'a PluginCatalog,
    /// The PASSWORD-typed keys of the connector's plugin.
    pub password_keys: &'a BTreeSet<String>,
    /// The connector's secret file as it is now.
    pub previous: Option<&'a BTreeMap<String, String>>,
    /// The secrets folder.
    pub secrets_dir: &'a std::path::Path,
}

/// A write [`decide`] lets through: what Connect gets and what the secret file becomes.
#[derive(Clone, PartialEq)]
pub struct Decision {
    /// The config Connect gets (defaults added, literal secrets replaced by references).
    pub config: BTreeMap<String, String>,
    /// The engine's verdict.
    pub review: Review,
    /// Every secret value involved, to scrub Connect's messages with.
    pub scrub: Vec<String>,
    /// The secret file after the write (`None`: no file).
    pub file: Option<BTreeMap<String, String>>,
    /// The keys moved to the secret file.
    pub moved: Vec<String>,
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys only: the config, the scrub list and the file hold secret values.
        f.debug_struct("Decision")
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("moved", &self.moved)
            .finish_non_exhaustive()
    }
}

/// The usage a write of connector `name` is judged against: an update of a connector not
/// listed yet (created a moment ago on another worker) counts it as it will be.
pub fn write_usage(
    operation: Operation,
    tasks: &BTreeMap<String, u32>,
    name: &str,
) -> ConnectorUsage {
    let mut usage = usage_for(tasks, name);
    if operation == Operation::Create {
        usage.connector_tasks = None;
    } else if usage.connector_tasks.is_none() {
        usage.connectors = usage.connectors.saturating_add(1);
        usage.connector_tasks = Some(1);
        usage.tasks = usage.tasks.saturating_add(1);
    }
    usage
}

/// Decides a create or update (pure): the request's own `problems` (from [`check_new`] or
/// [`check_update`]), the review's violations and the secret plan's problems, all at once, or
/// the config and secret file to write. The review is told what the request checks already
/// report (a missing class on a create, an unknown pool), so no finding is made twice.
/// Messages are scrubbed of every secret value involved.
pub fn decide(
    department: &Department,
    inputs: &Inputs<'_>,
    mut problems: Vec<String>,
) -> Result<Decision, ConnectorsError> {
    let name = inputs.name;
    let pool = placement::judged_pool(department, inputs.config);
    let mut request = ConnectorRequest::new(inputs.operation, name, inputs.config, &pool);
    request.usage = write_usage(inputs.operation, inputs.tasks, name);
    request.catalog = inputs.catalog;
    request.password_keys = inputs.password_keys;
    request.reported = Reported {
        missing_class: inputs.operation == Operation::Create,
        unknown_pool: true,
    };
    let review = policy::review(department, &request);
    let mut violations = review.violations.clone();
    violations.extend(foreign_references(
        &review.config,
        inputs.secrets_dir,
        name,
        inputs.tasks,
        department,
    ));

    let carried = match inputs.operation {
        Operation::Update => inputs.previous,
        // A file left by a connector deleted behind the supervisor's back stands for nothing.
        _ => None,
    };
    let plan = match policy::secrets::plan(
        &department.secrets,
        inputs.password_keys,
        &review.config,
        inputs.secrets_dir,
        name,
        carried,
    ) {
        Ok(plan) => Some(plan),
        Err(e @ (PolicyError::SecretKey { .. } | PolicyError::SecretMissing { .. })) => {
            problems.push(e.to_string());
            None
        }
        Err(e @ PolicyError::SecretPath { .. }) => {
            return Err(ConnectorsError::SecretFolder(e.to_string()));
        }
    };

    let masker = translate::Masker::new(&department.secrets, inputs.password_keys);
    let mut scrub = masker.secrets(inputs.config);
    scrub.extend(plan.iter().flat_map(SecretPlan::values));
    scrub.extend(inputs.previous.iter().flat_map(|p| p.values().cloned()));
    scrub.retain(|s| !s.is_empty());

    match plan {
        Some(plan) if problems.is_empty() && violations.is_empty() => Ok(Decision {
            config: plan.config,
            review,
            scrub,
            file: plan.file,
            moved: plan.moved,
        }),
        _ => Err(ConnectorsError::Refused(Box::new(
            Refusal {
                connector: name.to_string(),
                problems,
                violations,
            }
            .scrubbed(&scrub),
        ))),
    }
}

/// Reviews a create or update and plans its secrets: gathers the inputs (the workers' plugins
/// and usage, the plugin's PASSWORD keys, the secret file), then [`decide`]s. Refuses (a
/// [`ConnectorsError::Refused`] and a [`PolicyRejected`] when rules are broken) with every
/// problem and violation at once; nothing is written yet.
pub async fn admit(
    connectors: &Connectors,
    request: WriteRequest<'_>,
) -> Result<Admitted, ConnectorsError> {
    let department = connectors.department();
    let name = request.name;
    let catalog = catalog(connectors).await?;
    let tasks = department_tasks(connectors).await?;
    let class = request.config.get(policy::CLASS_KEY).map(String::as_str);
    let password_keys = connectors.password_keys(request.pool, class).await;
    let store = SecretStore::for_department(department);
    let previous = store.read(name)?;
    let inputs = Inputs {
        operation: request.operation,
        name,
        config: request.config,
        tasks: &tasks,
        catalog: &catalog,
        password_keys: &password_keys,
        previous: previous.as_ref(),
        secrets_dir: store.dir(),
    };
    let decision = match decide(department, &inputs, request.problems) {
        Ok(decision) => decision,
        Err(ConnectorsError::Refused(refusal)) => {
            if !refusal.violations.is_empty() {
                connectors.supervisor().observer().emit(PolicyRejected {
                    connector: name.to_string(),
                    operation: operation_str(request.operation),
                    principal: request.principal.to_string(),
                    rules: refusal.rules(),
                });
            }
            return Err(ConnectorsError::Refused(refusal));
        }
        Err(e) => return Err(e),
    };
    Ok(Admitted {
        config: decision.config,
        scrub: decision.scrub,
        secrets: StagedSecrets {
            store,
            name: name.to_string(),
            previous,
            next: decision.file,
            moved: decision.moved,
            written: false,
        },
        review: decision.review,
        operation: request.operation,
        name: name.to_string(),
        principal: request.principal.to_string(),
    })
}

/// The config to show for a stored one: the keys the platform added are left out (Terraform
/// compares what it sent with what it reads), unless `include_defaults`.
pub fn shown_config(
    stored: &BTreeMap<String, String>,
    include_defaults: bool,
) -> BTreeMap<String, String> {
    if include_defaults {
        stored.clone()
    } else {
        policy::strip_applied(stored)
    }
}

/// Whether a read asked for the config as it runs (`?include_defaults=true`).
pub fn wants_defaults(query: Option<&str>) -> bool {
    translate::query_param(query, INCLUDE_DEFAULTS_PARAM)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The problems of a new connector's name and config, found before anything is created (pure).
/// `config.name` must match `name` when given; `connector.class` must be given (Connect's own
/// message for a missing class echoes the whole config, secrets included); masks stand for
/// nothing yet; the pool must exist ([`placement::place`]).
pub fn check_new(
    department: &Department,
    name: &str,
    config: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if name.trim().is_empty() {
        problems.push("name: is required; give the connector a name".to_string());
    }
    if name.trim() != name {
        problems.push("name: must not start or end with spaces".to_string());
    }
    if let Some(n) = config.get("name")
        && n != name
    {
        problems.push(format!(
            "config.name: \"{n}\" differs from the connector name \"{name}\"; make them equal or leave config.name out"
        ));
    }
    if config
        .get("connector.class")
        .is_none_or(|c| c.trim().is_empty())
    {
        problems.push(
            "config.\"connector.class\": is required; name the connector plugin, e.g. \"FileStreamSource\""
                .to_string(),
        );
    }
    let masked: Vec<&String> = config
        .iter()
        .filter(|(_, v)| v.as_str() == translate::MASK)
        .map(|(k, _)| k)
        .collect();
    for key in masked {
        problems.push(format!(
            "config.\"{key}\": holds the mask {}; send the real value (masks only stand for an existing value on update)",
            translate::MASK
        ));
    }
    if let Err(problem) = placement::place(department, config) {
        problems.push(problem);
    }
    problems
}

/// The problems of a new config for existing connector `name` on `pool` (pure): no rename, no
/// move to another pool ([`placement::check_move`]).
pub fn check_update(
    department: &Department,
    name: &str,
    pool: &str,
    config: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(n) = config.get("name")
        && n != name
    {
        problems.push(format!(
            "config.name: \"{n}\" differs from the connector name \"{name}\"; a rename is a delete and a create (offsets are lost)"
        ));
    }
    problems.extend(placement::check_move(department, name, pool, config));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::fixture::violation;

    #[test]
    fn usage_counts_tasks_max_and_recognises_updates() {
        let tasks = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(
            usage_for(&tasks, "c"),
            ConnectorUsage {
                connectors: 2,
                tasks: 4,
                connector_tasks: None
            }
        );
        assert_eq!(usage_for(&tasks, "a").connector_tasks, Some(3));
        let config = BTreeMap::from([("tasks.max".to_string(), "4".to_string())]);
        assert_eq!(tasks_of(&config), 4);
        assert_eq!(tasks_of(&BTreeMap::new()), 1);
        let bad = BTreeMap::from([("tasks.max".to_string(), "x".to_string())]);
        assert_eq!(tasks_of(&bad), 1);
    }

    #[test]
    fn refusals_list_every_violation_and_scrub_secrets() {
        let refusal = Refusal {
            connector: "dept1-x".into(),
            problems: vec!["config.name: differs".into()],
            violations: vec![
                Violation {
                    message: "tasks.max \"hunter2\" is not a whole number".into(),
                    ..violation("config.tasks-max", Some("tasks.max"))
                },
                violation("naming.prefix", Some("name")),
                violation("naming.prefix", Some("name")),
            ],
        }
        .scrubbed(&["hunter2".to_string()]);
        let text = refusal.to_string();
        assert!(text.starts_with("connector dept1-x is refused by the department's guardrails (3 violations): config.name: differs; [config.tasks-max] tasks.max \"****************\""), "{text}");
        assert!(!text.contains("hunter2"));
        assert_eq!(refusal.rules(), ["config.tasks-max", "naming.prefix"]);
        assert_eq!(refusal.violations_json()[1]["rule"], "naming.prefix");
        assert_eq!(refusal.violations_json()[1]["key"], "name");
        let only_problems = Refusal {
            connector: "x".into(),
            problems: vec!["a".into(), "b".into()],
            violations: vec![],
        };
        assert_eq!(only_problems.to_string(), "a; b");
    }

    fn staged(
        store: &SecretStore,
        previous: Option<&[(&str, &str)]>,
        next: Option<&[(&str, &str)]>,
    ) -> StagedSecrets {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        if let Some(p) = previous {
            store.write("dept1-a", &map(p)).unwrap();
        }
        StagedSecrets {
            store: store.clone(),
            name: "dept1-a".into(),
            previous: previous.map(map),
            next: next.map(map),
            moved: vec![],
            written: false,
        }
    }

    #[test]
    fn staged_secret_files_are_written_before_and_put_back_after_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let read = || store.read("dept1-a").unwrap();
        // A create Connect refuses leaves no file.
        let mut s = staged(&store, None, Some(&[("pw", "new")]));
        s.stage().unwrap();
        assert_eq!(read().unwrap()["pw"], "new");
        assert!(!format!("{s:?}").contains("new\""), "{s:?}");
        s.rollback();
        assert_eq!(read(), None);
        // An update Connect refuses keeps the old secrets.
        let mut s = staged(&store, Some(&[("pw", "old")]), Some(&[("pw", "new")]));
        s.stage().unwrap();
        s.rollback();
        assert_eq!(read().unwrap()["pw"], "old");
        // An accepted update that drops every secret removes the file, after Connect's answer.
        let mut s = staged(&store, Some(&[("pw", "old")]), None);
        s.stage().unwrap();
        assert!(
            read().is_some(),
            "still referenced until Connect has the new config"
        );
        s.commit();
        assert_eq!(read(), None);
        // Nothing to write when nothing changes, so nothing to put back.
        let mut s = staged(&store, Some(&[("pw", "same")]), Some(&[("pw", "same")]));
        s.stage().unwrap();
        assert!(!s.written);
    }

    #[test]
    fn reads_strip_defaults_unless_asked() {
        let stored = BTreeMap::from([
            ("topics".to_string(), "t".to_string()),
            ("errors.tolerance".to_string(), "all".to_string()),
            (
                policy::APPLIED_DEFAULTS_KEY.to_string(),
                "errors.tolerance".to_string(),
            ),
        ]);
        let shown = shown_config(&stored, false);
        assert!(!shown.contains_key("errors.tolerance"));
        assert!(shown.contains_key(policy::APPLIED_DEFAULTS_KEY));
        assert_eq!(shown_config(&stored, true), stored);
        assert!(wants_defaults(Some("include_defaults=true")));
        assert!(wants_defaults(Some("a=b&include_defaults=TRUE")));
        assert!(!wants_defaults(Some("include_defaults=false")));
        assert!(!wants_defaults(None));
    }

    // ----- decide -----

    const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
    const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";

    fn sink(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut cfg = crate::connectors::fixture::config(&[
            ("connector.class", "FileStreamSink"),
            ("tasks.max", "2"),
            ("topics", "dept1-orders"),
            ("file", "/tmp/out.txt"),
        ]);
        for (k, v) in extra {
            cfg.insert(k.to_string(), v.to_string());
        }
        cfg
    }

    struct Case {
        operation: Operation,
        name: &'static str,
        config: BTreeMap<String, String>,
        tasks: BTreeMap<String, u32>,
        previous: Option<BTreeMap<String, String>>,
    }

    impl Case {
        fn create(config: BTreeMap<String, String>) -> Self {
            Self {
                operation: Operation::Create,
                name: "dept1-orders-sink",
                config,
                tasks: BTreeMap::new(),
                previous: None,
            }
        }

        fn decide(&self, department: &Department) -> Result<Decision, ConnectorsError> {
            let catalog = PluginCatalog::new([(FILE_SINK, "sink"), (FILE_SOURCE, "source")]);
            let password_keys = BTreeSet::new();
            let dir = policy::secrets_dir(department);
            let inputs = Inputs {
                operation: self.operation,
                name: self.name,
                config: &self.config,
                tasks: &self.tasks,
                catalog: &catalog,
                password_keys: &password_keys,
                previous: self.previous.as_ref(),
                secrets_dir: &dir,
            };
            let problems = match self.operation {
                Operation::Update => check_update(department, self.name, "shared", &self.config),
                _ => check_new(department, self.name, &self.config),
            };
            decide(department, &inputs, problems)
        }
    }

    fn refusal(result: Result<Decision, ConnectorsError>) -> Refusal {
        match result {
            Err(ConnectorsError::Refused(r)) => *r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn rule_ids(r: &Refusal) -> Vec<&str> {
        r.violations.iter().map(|v| v.rule.as_str()).collect()
    }

    #[test]
    fn a_compliant_create_is_admitted_with_its_literal_secrets_moved_to_the_file() {
        let d = crate::connectors::fixture::department();
        let decision = Case::create(sink(&[("connection.password", "hunter2")]))
            .decide(&d)
            .unwrap();
        assert_eq!(
            decision.config["connection.password"],
            "${file:/var/lib/cs/secrets/dept1-orders-sink.properties:connection.password}"
        );
        assert_eq!(
            decision.file.as_ref().unwrap()["connection.password"],
            "hunter2"
        );
        assert!(decision.moved.contains(&"connection.password".to_string()));
        assert!(decision.scrub.contains(&"hunter2".to_string()));
        assert!(!format!("{decision:?}").contains("hunter2"), "{decision:?}");
        assert_eq!(decision.review.facts.pool, "shared");
    }

    #[test]
    fn a_create_without_a_class_is_refused_once_by_the_request_checks() {
        let d = crate::connectors::fixture::department();
        let mut cfg = sink(&[]);
        cfg.remove("connector.class");
        let r = refusal(Case::create(cfg.clone()).decide(&d));
        let class_problems = r
            .problems
            .iter()
            .filter(|p| p.contains("connector.class"))
            .count();
        assert_eq!(class_problems, 1, "{:?}", r.problems);
        assert!(!rule_ids(&r).contains(&rules::RULE_PLUGIN_CLASS), "{r:?}");
        // Without being told, the engine does report it: the request checks stand in for it.
        let unreported = policy::review(
            &d,
            &ConnectorRequest::new(Operation::Create, "dept1-orders-sink", &cfg, "shared"),
        );
        assert!(
            unreported
                .violations
                .iter()
                .any(|v| v.rule == rules::RULE_PLUGIN_CLASS)
        );
        // An update's missing class is the engine's finding (no request check covers it).
        let update = Case {
            operation: Operation::Update,
            tasks: BTreeMap::from([("dept1-orders-sink".to_string(), 1)]),
            ..Case::create(cfg)
        };
        let r = refusal(update.decide(&d));
        assert_eq!(rule_ids(&r), [rules::RULE_PLUGIN_CLASS]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn an_unknown_pool_is_one_problem_not_also_a_violation() {
        let d = crate::connectors::fixture::department();
        let r = refusal(Case::create(sink(&[("supervisor.pool", "nope")])).decide(&d));
        assert_eq!(
            r.problems,
            ["config.\"supervisor.pool\": no pool is named \"nope\"; use one of: shared, heavy"]
        );
        assert!(!rule_ids(&r).contains(&rules::RULE_POOL_UNKNOWN), "{r:?}");
        // The same on an update (the request checks report a move to an unknown pool).
        let update = Case {
            operation: Operation::Update,
            tasks: BTreeMap::from([("dept1-orders-sink".to_string(), 2)]),
            ..Case::create(sink(&[("supervisor.pool", "nope")]))
        };
        let r = refusal(update.decide(&d));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.violations.is_empty(), "{r:?}");
    }

    #[test]
    fn the_review_judges_the_pool_placement_resolved() {
        let d = crate::connectors::fixture::department();
        let source = |pool: Option<&str>| {
            let mut cfg = crate::connectors::fixture::config(&[
                ("connector.class", "FileStreamSource"),
                ("topic", "dept1-lines"),
                ("file", "/tmp/in.txt"),
            ]);
            if let Some(pool) = pool {
                cfg.insert("supervisor.pool".into(), pool.into());
            }
            Case {
                name: "dept1-lines-source",
                ..Case::create(cfg)
            }
        };
        let r = refusal(source(None).decide(&d));
        assert_eq!(rule_ids(&r), [rules::RULE_PLUGIN_POOL]);
        let admitted = source(Some("heavy")).decide(&d).unwrap();
        assert_eq!(admitted.review.facts.pool, "heavy");
    }

    #[test]
    fn quotas_count_the_department_and_an_update_replaces_its_own_tasks() {
        let d = crate::connectors::fixture::department();
        let full = BTreeMap::from([
            ("dept1-a".to_string(), 2),
            ("dept1-b".to_string(), 2),
            ("dept1-orders-sink".to_string(), 2),
        ]);
        let create = Case {
            name: "dept1-new-sink",
            tasks: full.clone(),
            ..Case::create(sink(&[]))
        };
        let r = refusal(create.decide(&d));
        assert_eq!(rule_ids(&r), [rules::RULE_QUOTA_CONNECTORS]);
        let update = Case {
            operation: Operation::Update,
            tasks: full,
            ..Case::create(sink(&[("tasks.max", "4")]))
        };
        assert!(update.decide(&d).is_ok());
        // An update of a connector not listed yet counts it as it will be.
        assert_eq!(
            write_usage(Operation::Update, &BTreeMap::new(), "dept1-x"),
            ConnectorUsage {
                connectors: 1,
                tasks: 1,
                connector_tasks: Some(1)
            }
        );
        let tasks = BTreeMap::from([("dept1-x".to_string(), 3)]);
        assert_eq!(
            write_usage(Operation::Create, &tasks, "dept1-x").connector_tasks,
            None
        );
    }

    #[test]
    fn refusals_are_scrubbed_of_the_secrets_involved() {
        let d = crate::connectors::fixture::department();
        // A previous secret file's values are scrubbed too, and a problem with the name.
        let case = Case {
            name: "Bad Name",
            previous: Some(BTreeMap::from([(
                "connection.password".to_string(),
                "old-pw".to_string(),
            )])),
            ..Case::create(sink(&[
                ("connection.password", "hunter2"),
                ("note", "hunter2 old-pw"),
            ]))
        };
        let r = refusal(case.decide(&d));
        let text = r.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("old-pw"),
            "{text}"
        );
    }
}

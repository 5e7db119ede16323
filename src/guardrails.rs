//! The department's guardrails on the API's writes. Every create and update (managed and
//! Apache-compatible routes, PUT and PATCH config, create with offsets) is reviewed by
//! [`crate::policy::review`] against what the department really runs, and is either refused
//! with every violation or let through with the platform's defaults added and its literal
//! secrets moved to the connector's secret file; the plugin `config/validate` call gets the same
//! violations as a dry run.
//!
//! The gateway calls in here around its calls to Connect. This module gathers the review's
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

use crate::gateway::{Gateway, GatewayError};
use crate::observe::events::{DefaultsApplied, PolicyRejected, SecretsExternalized};
use crate::policy::{
    self, ConnectorRequest, NAME_KEY, Operation, PluginCatalog, PolicyError, Review, SecretPlan,
    Usage, Violation, quota, rules,
};
use crate::secret_store::{SecretStore, SecretStoreError};
use crate::translate;

/// Group of the entries the guardrails add to a validate answer for keys Connect does not
/// define (client overrides, `supervisor.pool`, keys a rule requires).
pub const GUARDRAILS_GROUP: &str = "Guardrails";
/// Query parameter of the config reads that shows the config as it runs, platform defaults
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
pub fn usage_for(tasks: &BTreeMap<String, u32>, name: &str) -> Usage {
    Usage {
        connectors: u32::try_from(tasks.len()).unwrap_or(u32::MAX),
        tasks: tasks.values().fold(0u32, |sum, t| sum.saturating_add(*t)),
        connector_tasks: tasks.get(name).copied(),
    }
}

/// A stored config's `tasks.max` as the quotas count it (1 when absent or unusable).
pub fn tasks_of(config: &BTreeMap<String, String>) -> u32 {
    quota::tasks_max(config.get(policy::TASKS_MAX_KEY).map(String::as_str)).unwrap_or(1)
}

/// Adds guardrail violations to a Connect `ConfigInfos` (a validate answer) in place: each lands
/// in the `errors` of its config key's entry (violations without a key in `name`'s, the
/// connector as a whole); a key Connect does not define gets an entry of its own in the
/// [`GUARDRAILS_GROUP`] group, its value taken from `shown` (the config, masked). `error_count`
/// is recounted as Connect counts it: entries with at least one error.
pub fn add_to_validation(
    infos: &mut Value,
    violations: &[Violation],
    shown: &BTreeMap<String, String>,
) {
    let Some(object) = infos.as_object_mut() else {
        return;
    };
    if !matches!(object.get("configs"), Some(Value::Array(_))) {
        object.insert("configs".into(), Value::Array(Vec::new()));
    }
    let mut new_group = false;
    {
        let configs = object
            .get_mut("configs")
            .and_then(Value::as_array_mut)
            .expect("configs is an array");
        let mut added = 0;
        for v in violations {
            let key = v.key.as_deref().unwrap_or(NAME_KEY);
            let text = violation_text(v);
            let entry = configs.iter_mut().find(|c| entry_name(c) == Some(key));
            match entry {
                Some(entry) => {
                    if !entry.get("value").is_some_and(Value::is_object) {
                        entry["value"] = json!({ "name": key });
                    }
                    let value = &mut entry["value"];
                    if !value.get("errors").is_some_and(Value::is_array) {
                        value["errors"] = json!([]);
                    }
                    value["errors"]
                        .as_array_mut()
                        .expect("errors is an array")
                        .push(Value::String(text));
                }
                None => {
                    added += 1;
                    new_group = true;
                    let mut value = json!({
                        "name": key,
                        "recommended_values": [],
                        "errors": [text],
                        "visible": true,
                    });
                    if let Some(shown) = shown.get(key) {
                        value["value"] = Value::String(shown.clone());
                    }
                    configs.push(json!({
                        "definition": {
                            "name": key,
                            "type": "STRING",
                            "required": false,
                            "default_value": "",
                            "importance": "NONE",
                            "documentation": "Checked by the department's guardrails.",
                            "group": GUARDRAILS_GROUP,
                            "order_in_group": added,
                            "width": "NONE",
                            "display_name": key,
                            "dependents": [],
                        },
                        "value": value,
                    }));
                }
            }
        }
    }
    if new_group {
        if !matches!(object.get("groups"), Some(Value::Array(_))) {
            object.insert("groups".into(), Value::Array(Vec::new()));
        }
        let groups = object
            .get_mut("groups")
            .and_then(Value::as_array_mut)
            .expect("groups is an array");
        if !groups.iter().any(|g| g.as_str() == Some(GUARDRAILS_GROUP)) {
            groups.push(Value::String(GUARDRAILS_GROUP.into()));
        }
    }
    let errors = object
        .get("configs")
        .and_then(Value::as_array)
        .map(|configs| {
            configs
                .iter()
                .filter(|c| {
                    c.get("value")
                        .and_then(|v| v.get("errors"))
                        .and_then(Value::as_array)
                        .is_some_and(|e| !e.is_empty())
                })
                .count()
        })
        .unwrap_or(0);
    object.insert("error_count".into(), json!(errors));
}

fn entry_name(config: &Value) -> Option<&str> {
    config
        .get("value")
        .and_then(|v| v.get("name"))
        .or_else(|| config.get("definition").and_then(|d| d.get("name")))
        .and_then(Value::as_str)
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
    /// Problems the gateway's own request checks found (reported together with violations).
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
    pub fn stage(&mut self) -> Result<(), GatewayError> {
        self.secrets.stage().map_err(GatewayError::from)
    }

    /// Connect refused or failed: the secret file goes back to what it was.
    pub fn rollback(self) {
        self.secrets.rollback();
    }

    /// Connect accepted: an emptied secret file is removed, and the audit events (defaults
    /// applied, secrets externalized) are emitted.
    pub fn commit(self, gateway: &Gateway) {
        self.secrets.commit();
        let observer = gateway.supervisor().observer();
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
pub async fn department_tasks(gateway: &Gateway) -> Result<BTreeMap<String, u32>, GatewayError> {
    Ok(gateway
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
fn foreign_references(
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

async fn catalog(gateway: &Gateway) -> Result<PluginCatalog, GatewayError> {
    Ok(PluginCatalog::from_plugins(&gateway.plugins().await?))
}

/// Reviews a create or update and plans its secrets. Refuses (a [`GatewayError::Refused`] and
/// a [`PolicyRejected`] when rules are broken) with every problem and violation at once;
/// nothing is written yet.
pub async fn admit(gateway: &Gateway, request: WriteRequest<'_>) -> Result<Admitted, GatewayError> {
    let department = gateway.department();
    let name = request.name;
    let catalog = catalog(gateway).await?;
    let tasks = department_tasks(gateway).await?;
    let mut usage = usage_for(&tasks, name);
    if request.operation == Operation::Create {
        usage.connector_tasks = None;
    } else if usage.connector_tasks.is_none() {
        // Not listed yet (created a moment ago on another worker): count it as it will be.
        usage.connectors = usage.connectors.saturating_add(1);
        usage.connector_tasks = Some(1);
        usage.tasks = usage.tasks.saturating_add(1);
    }
    let class = request.config.get(policy::CLASS_KEY).map(String::as_str);
    let password_keys = gateway.password_keys(request.pool, class).await;
    let mut review_request = ConnectorRequest::new(request.operation, name, request.config);
    review_request.usage = usage;
    review_request.catalog = &catalog;
    review_request.password_keys = &password_keys;
    let review = policy::review(department, &review_request);
    let store = SecretStore::for_department(department);

    let mut problems = request.problems;
    let mut violations = review.violations.clone();
    violations.extend(foreign_references(
        &review.config,
        store.dir(),
        name,
        &tasks,
        department,
    ));
    // The gateway's own checks already report these two, with the same meaning.
    if request.operation == Operation::Create && class.is_none_or(|c| c.trim().is_empty()) {
        violations.retain(|v| v.rule != rules::RULE_PLUGIN_CLASS);
    }
    if request
        .config
        .get(policy::POOL_KEY)
        .is_some_and(|p| department.pool(p.trim()).is_none())
    {
        violations.retain(|v| v.rule != rules::RULE_POOL_UNKNOWN);
    }

    let previous = store.read(name)?;
    let carried = match request.operation {
        Operation::Update => previous.as_ref(),
        // A file left by a connector deleted behind the supervisor's back stands for nothing.
        _ => None,
    };
    let plan = match policy::secrets::plan(
        &department.secrets,
        &password_keys,
        &review.config,
        store.dir(),
        name,
        carried,
    ) {
        Ok(plan) => Some(plan),
        Err(e @ (PolicyError::SecretKey { .. } | PolicyError::SecretMissing { .. })) => {
            problems.push(e.to_string());
            None
        }
        Err(e @ PolicyError::SecretPath { .. }) => {
            return Err(GatewayError::SecretFolder(e.to_string()));
        }
    };

    let masker = translate::Masker::new(&department.secrets, &password_keys);
    let mut scrub = masker.secrets(request.config);
    scrub.extend(plan.iter().flat_map(SecretPlan::values));
    scrub.extend(previous.iter().flat_map(|p| p.values().cloned()));
    scrub.retain(|s| !s.is_empty());

    if !problems.is_empty() || !violations.is_empty() {
        let refusal = Refusal {
            connector: name.to_string(),
            problems,
            violations,
        }
        .scrubbed(&scrub);
        if !refusal.violations.is_empty() {
            gateway.supervisor().observer().emit(PolicyRejected {
                connector: name.to_string(),
                operation: operation_str(request.operation),
                principal: request.principal.to_string(),
                rules: refusal.rules(),
            });
        }
        return Err(GatewayError::Refused(Box::new(refusal)));
    }
    let plan = plan.expect("no problems means a plan");
    Ok(Admitted {
        config: plan.config,
        scrub,
        secrets: StagedSecrets {
            store,
            name: name.to_string(),
            previous,
            next: plan.file,
            moved: plan.moved,
            written: false,
        },
        review,
        operation: request.operation,
        name: name.to_string(),
        principal: request.principal.to_string(),
    })
}

/// The guardrail violations of `config` for plugin `plugin` (a dry run: no event, no metric).
/// The connector is judged as a create, or as an update when one of that name exists; without
/// a `name` (the CLI's `plugin describe`) the naming rules are skipped. Messages are scrubbed
/// of the config's secrets.
pub async fn dry_run(
    gateway: &Gateway,
    plugin: &str,
    config: &BTreeMap<String, String>,
    password_keys: &BTreeSet<String>,
) -> Result<Vec<Violation>, GatewayError> {
    let department = gateway.department();
    let mut config = config.clone();
    // Connect validates the request's plugin when the body names none.
    config
        .entry(policy::CLASS_KEY.to_string())
        .or_insert_with(|| plugin.to_string());
    let name = config.get(NAME_KEY).cloned();
    let catalog = catalog(gateway).await?;
    let tasks = department_tasks(gateway).await?;
    let usage = usage_for(&tasks, name.as_deref().unwrap_or_default());
    let operation = if usage.connector_tasks.is_some() {
        Operation::Update
    } else {
        Operation::Validate
    };
    let mut request =
        ConnectorRequest::new(operation, name.as_deref().unwrap_or_default(), &config);
    request.usage = usage;
    request.catalog = &catalog;
    request.password_keys = password_keys;
    let mut violations = policy::review(department, &request).violations;
    violations.extend(foreign_references(
        &config,
        &policy::secrets_dir(department),
        name.as_deref().unwrap_or_default(),
        &tasks,
        department,
    ));
    if name.is_none() {
        violations.retain(|v| !v.rule.starts_with("naming."));
    }
    let secrets = translate::Masker::new(&department.secrets, password_keys).secrets(&config);
    for v in &mut violations {
        v.message = translate::scrub(&v.message, &secrets);
        v.hint = translate::scrub(&v.hint, &secrets);
    }
    Ok(violations)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RuleSource;

    fn violation(rule: &str, key: Option<&str>) -> Violation {
        Violation {
            rule: rule.into(),
            key: key.map(str::to_string),
            message: format!("{rule} is broken"),
            hint: "fix it".into(),
            source: RuleSource::Builtin,
        }
    }

    fn connect_answer() -> Value {
        json!({
            "name": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "error_count": 1,
            "groups": ["Common", "Transforms"],
            "configs": [
                {"definition": {"name": "name", "type": "STRING"},
                 "value": {"name": "name", "value": "x", "recommended_values": [], "errors": [], "visible": true}},
                {"definition": {"name": "tasks.max", "type": "INT"},
                 "value": {"name": "tasks.max", "value": "20", "recommended_values": [], "errors": [], "visible": true}},
                {"definition": {"name": "topics", "type": "LIST"},
                 "value": {"name": "topics", "value": "t", "recommended_values": [], "errors": ["Connect's own error"], "visible": true}},
            ]
        })
    }

    fn errors_of<'a>(infos: &'a Value, key: &str) -> Vec<&'a str> {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .unwrap_or_else(|| panic!("no entry for {key}: {infos}"))["value"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect()
    }

    #[test]
    fn violations_land_in_their_keys_and_error_count_counts_entries_with_errors() {
        let mut infos = connect_answer();
        let shown = BTreeMap::from([
            (
                "connection.password".to_string(),
                "****************".to_string(),
            ),
            ("producer.override.acks".to_string(), "all".to_string()),
        ]);
        add_to_validation(
            &mut infos,
            &[
                violation("quota.tasks-per-connector", Some("tasks.max")),
                violation("prod-tasks-max", Some("tasks.max")),
                violation("quota.connectors", None),
                violation("overrides.denied", Some("producer.override.acks")),
                violation("secrets.literal", Some("connection.password")),
                violation("required.keys", Some("errors.deadletterqueue.topic.name")),
            ],
            &shown,
        );
        assert_eq!(
            errors_of(&infos, "tasks.max"),
            [
                "[quota.tasks-per-connector] tasks.max: quota.tasks-per-connector is broken (fix: fix it)",
                "[prod-tasks-max] tasks.max: prod-tasks-max is broken (fix: fix it)"
            ]
        );
        assert_eq!(
            errors_of(&infos, "name").len(),
            1,
            "key-less: the connector"
        );
        assert_eq!(errors_of(&infos, "topics"), ["Connect's own error"]);
        // name, tasks.max, topics, and three new entries.
        assert_eq!(infos["error_count"], 6);
        let added = infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == "connection.password")
            .unwrap();
        assert_eq!(added["value"]["value"], "****************");
        assert_eq!(added["definition"]["group"], GUARDRAILS_GROUP);
        let missing = infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == "errors.deadletterqueue.topic.name")
            .unwrap();
        assert!(
            missing["value"].get("value").is_none(),
            "absent key, no value"
        );
        assert_eq!(
            infos["groups"],
            json!(["Common", "Transforms", GUARDRAILS_GROUP])
        );
    }

    #[test]
    fn no_violations_leave_connects_answer_and_count_alone() {
        let mut infos = connect_answer();
        add_to_validation(&mut infos, &[], &BTreeMap::new());
        assert_eq!(infos, connect_answer());
    }

    #[test]
    fn an_answer_without_configs_still_gets_a_valid_shape() {
        let mut infos = json!({"name": "X"});
        add_to_validation(
            &mut infos,
            &[violation("naming.prefix", Some("name"))],
            &BTreeMap::new(),
        );
        assert_eq!(infos["error_count"], 1);
        assert_eq!(infos["groups"], json!([GUARDRAILS_GROUP]));
        assert_eq!(infos["configs"][0]["definition"]["type"], "STRING");
    }

    #[test]
    fn usage_counts_tasks_max_and_recognises_updates() {
        let tasks = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(
            usage_for(&tasks, "c"),
            Usage {
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
}

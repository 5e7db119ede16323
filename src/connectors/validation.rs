//! Plugin validation (`PUT .../config/validate`): Connect's answer, masked, with the
//! guardrails' violations of the config as a dry run of a create added to the keys they
//! concern. The merge of the two ([`add_to_validation`]) is pure and unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::admission::{catalog, department_tasks, foreign_references, usage_for, violation_text};
use super::{Connectors, ConnectorsError, placement};
use crate::policy::{self, ConnectorRequest, NAME_KEY, Operation, Violation};
use crate::translate;

/// Group of the entries the guardrails add to a validate answer for keys Connect does not
/// define (client overrides, `supervisor.pool`, keys a rule requires).
pub const GUARDRAILS_GROUP: &str = "Guardrails";
/// Query parameter of the config reads that shows the config as it runs, platform defaults
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

/// The guardrail violations of `config` for plugin `plugin` (a dry run: no event, no metric).
/// The connector is judged as a create, or as an update when one of that name exists; without
/// a `name` (the CLI's `plugin describe`) the naming rules are skipped. Messages are scrubbed
/// of the config's secrets.
pub async fn dry_run(
    connectors: &Connectors,
    plugin: &str,
    config: &BTreeMap<String, String>,
    password_keys: &BTreeSet<String>,
) -> Result<Vec<Violation>, ConnectorsError> {
    let department = connectors.department();
    let mut config = config.clone();
    // Connect validates the request's plugin when the body names none.
    config
        .entry(policy::CLASS_KEY.to_string())
        .or_insert_with(|| plugin.to_string());
    let name = config.get(NAME_KEY).cloned();
    let catalog = catalog(connectors).await?;
    let tasks = department_tasks(connectors).await?;
    let usage = usage_for(&tasks, name.as_deref().unwrap_or_default());
    let operation = if usage.connector_tasks.is_some() {
        Operation::Update
    } else {
        Operation::Validate
    };
    let pool = placement::judged_pool(department, &config);
    let mut request = ConnectorRequest::new(
        operation,
        name.as_deref().unwrap_or_default(),
        &config,
        &pool,
    );
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

impl Connectors {
    /// Connect's validation of `config` for `plugin`, masked, with the guardrails' violations
    /// added to the keys they concern (a dry run of a create). Unknown plugins are a 404 naming
    /// the installed ones.
    pub async fn validate(
        &self,
        plugin: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Value, ConnectorsError> {
        if let Some(problem) = translate::unaddressable(plugin, "plugin name") {
            return Err(ConnectorsError::Invalid(vec![problem]));
        }
        if config
            .get("connector.class")
            .is_none_or(|c| c.trim().is_empty())
        {
            // Connect answers a 500 that echoes the whole config (secrets included).
            return Err(ConnectorsError::Invalid(vec![format!(
                "config.\"connector.class\": is required; set it to the plugin being validated, e.g. \"connector.class\": \"{}\"",
                plugin.escape_debug()
            )]));
        }
        let plugins = self.plugins().await?;
        if !plugins
            .iter()
            .any(|p| translate::plugin_matches(&p.class_name, plugin))
        {
            return Err(ConnectorsError::PluginNotFound {
                plugin: plugin.to_string(),
                installed: plugins
                    .iter()
                    .map(|p| {
                        p.class_name
                            .rsplit('.')
                            .next()
                            .unwrap_or(&p.class_name)
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let pool = placement::place_or_default(&self.department, config);
        let sensitivity = self.sensitivity(&pool, config).await;
        let masker = sensitivity.masker();
        let secrets = masker.secrets(config);
        let mut infos = self
            .call(&pool, &secrets, |c| async move {
                c.validate(plugin, config).await
            })
            .await?;
        translate::mask_validation(&mut infos, &masker, &secrets);
        let violations = dry_run(self, plugin, config, sensitivity.password_keys()).await?;
        add_to_validation(&mut infos, &violations, &masker.mask(config));
        Ok(infos)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::fixture::violation;

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
}

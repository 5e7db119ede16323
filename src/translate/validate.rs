//! Connect's `ConfigInfos` (the validate answer) masked, and turned into the managed API's.

use serde_json::Value;

use super::config::{MASK, Masker, scrub};

/// Masks a Connect `ConfigInfos` (validate answer) in place: values of PASSWORD-typed and
/// sensitive keys become [`MASK`] and error texts are scrubbed of `secrets`; nothing else
/// changes (Connect's routes pass Connect's body through: its `null`s stay, clients of Connect's
/// API read them).
pub fn mask_validation(infos: &mut Value, masker: &Masker<'_>, secrets: &[String]) {
    let Some(configs) = infos.get_mut("configs").and_then(Value::as_array_mut) else {
        return;
    };
    for config in configs {
        let (name, password) = match config.get("definition") {
            Some(d) => (
                d.get("name").and_then(Value::as_str).map(str::to_string),
                d.get("type").and_then(Value::as_str) == Some("PASSWORD"),
            ),
            None => (None, false),
        };
        let sensitive = password || name.as_deref().is_some_and(|n| masker.is_sensitive(n));
        if let Some(Value::Object(value)) = config.get_mut("value") {
            if sensitive && value.get("value").is_some_and(|v| !v.is_null()) {
                value.insert("value".into(), Value::String(MASK.into()));
            }
            if let Some(Value::Array(errors)) = value.get_mut("errors") {
                for e in errors.iter_mut() {
                    if let Value::String(s) = e {
                        *s = scrub(s, secrets);
                    }
                }
            }
            if sensitive
                && let Some(Value::Array(recommended)) = value.get_mut("recommended_values")
            {
                recommended.clear();
            }
        }
    }
}

/// Turns a Connect `ConfigInfos` into the managed API's, as the managed service records it
/// (Terraform's `validate.json`): config types the managed enum does not have (Connect's
/// `CLASS`) become `STRING` (a class name is a string to a client), each definition gets the
/// managed `order` (Connect calls it `order_in_group`), `null` optional strings are dropped (the
/// contract types them as strings, Go clients read them as pointers), an `alias` (`""`: no config key has one
/// here) and a `default_value` (`""` when Connect has none), and each config a `metadata`
/// object (empty: the supervisor has no per-config metadata to add).
pub fn managed_validation(infos: &mut Value) {
    let Some(configs) = infos.get_mut("configs").and_then(Value::as_array_mut) else {
        return;
    };
    for config in configs {
        if let Some(Value::Object(value)) = config.get_mut("value") {
            value.retain(|_, v| !v.is_null());
        }
        if let Some(Value::Object(def)) = config.get_mut("definition") {
            def.retain(|_, v| !v.is_null());
            let known = def
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| MANAGED_CONFIG_TYPES.contains(&t));
            if !known && def.contains_key("type") {
                def.insert("type".into(), Value::String("STRING".into()));
            }
            if !def.contains_key("order")
                && let Some(order) = def.get("order_in_group").cloned()
            {
                def.insert("order".into(), order);
            }
            for key in [DEFINITION_ALIAS, DEFINITION_DEFAULT_VALUE] {
                if def.get(key).is_none_or(Value::is_null) {
                    def.insert(key.into(), Value::String(String::new()));
                }
            }
        }
        if let Value::Object(config) = config
            && !config.contains_key(CONFIG_METADATA)
        {
            config.insert(CONFIG_METADATA.into(), Value::Object(Default::default()));
        }
    }
}

/// A managed config definition's alias (the managed service's name for a key it renames).
const DEFINITION_ALIAS: &str = "alias";
/// A config definition's default value.
const DEFINITION_DEFAULT_VALUE: &str = "default_value";
/// The managed per-config metadata object beside `definition` and `value`.
const CONFIG_METADATA: &str = "metadata";

/// Config types of the managed API's validate answer.
pub const MANAGED_CONFIG_TYPES: &[&str] = &[
    "NONE", "BOOLEAN", "INT", "SHORT", "LONG", "DOUBLE", "STRING", "LIST", "ENUM", "PASSWORD",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::model::SecretRules;

    #[test]
    fn validation_answers_are_masked_and_keep_connects_nulls() {
        let rules = SecretRules::default();
        let none = BTreeSet::new();
        let m = Masker::new(&rules, &none);
        let mut infos = serde_json::json!({"name": "X", "error_count": 1, "groups": [], "configs": [
            {"definition": {"name": "db.pw", "type": "PASSWORD", "default_value": null},
             "value": {"name": "db.pw", "value": "hunter22", "errors": ["bad hunter22"], "recommended_values": [], "visible": true}},
            {"definition": {"name": "topic", "type": "STRING"},
             "value": {"name": "topic", "value": null, "errors": [], "recommended_values": [], "visible": true}}
        ]});
        mask_validation(&mut infos, &m, &["hunter22".to_string()]);
        assert_eq!(infos["configs"][0]["value"]["value"], MASK);
        assert_eq!(
            infos["configs"][0]["value"]["errors"][0],
            format!("bad {MASK}")
        );
        // Connect's nulls pass through (its API's clients read them); a null secret stays null.
        assert!(infos["configs"][0]["definition"]["default_value"].is_null());
        assert!(infos["configs"][1]["value"]["value"].is_null());
        assert!(!infos.to_string().contains("hunter22"));
        let mut unset = serde_json::json!({"configs": [
            {"definition": {"name": "db.pw", "type": "PASSWORD"}, "value": {"name": "db.pw", "value": null}}
        ]});
        mask_validation(&mut unset, &m, &[]);
        assert!(unset["configs"][0]["value"]["value"].is_null());
    }

    #[test]
    fn validation_types_are_mapped_to_the_managed_enum() {
        let mut infos = serde_json::json!({"configs": [
            {"definition": {"name": "key.converter", "type": "CLASS", "order_in_group": 6}},
            {"definition": {"name": "topic", "type": "STRING", "order_in_group": -1, "order": 3}}
        ]});
        managed_validation(&mut infos);
        assert_eq!(infos["configs"][0]["definition"]["type"], "STRING");
        assert_eq!(infos["configs"][0]["definition"]["order"], 6);
        assert_eq!(infos["configs"][1]["definition"]["order"], 3);
    }

    #[test]
    fn managed_validation_answers_have_the_recorded_fields() {
        let mut infos = serde_json::json!({"configs": [
            {"definition": {"name": "topic", "type": "STRING", "default_value": null, "group": null},
             "value": {"name": "topic", "value": null, "errors": [], "recommended_values": [], "visible": true}},
            {"definition": {"name": "batch.size", "type": "INT", "default_value": "2000"},
             "value": {"name": "batch.size", "value": "7", "errors": [], "recommended_values": [], "visible": true},
             "metadata": {"kept": true}}
        ]});
        managed_validation(&mut infos);
        // As in the recording (`validate.json`): every definition has an alias and a default
        // (empty when there is none), every config a metadata object.
        let first = &infos["configs"][0];
        assert_eq!(first["definition"]["alias"], "");
        assert_eq!(first["definition"]["default_value"], "");
        assert_eq!(first["metadata"], serde_json::json!({}));
        // Other nulls are left out (the contract types them as strings).
        assert!(first["definition"].get("group").is_none());
        assert!(first["value"].get("value").is_none());
        let second = &infos["configs"][1];
        assert_eq!(second["definition"]["default_value"], "2000");
        assert_eq!(second["metadata"], serde_json::json!({"kept": true}));
    }
}

//! Connect's `ConfigInfos` (the validate answer) masked, and turned into the managed API's.

use serde_json::Value;

use super::config::{MASK, Masker, scrub};

/// Masks a Connect `ConfigInfos` (validate answer) in place: values of PASSWORD-typed and
/// sensitive keys become [`MASK`], error texts are scrubbed of `secrets`, and `null` optional
/// strings are dropped (the contract types them as strings, Go clients read them as pointers).
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
        if let Some(Value::Object(def)) = config.get_mut("definition") {
            def.retain(|_, v| !v.is_null());
        }
        if let Some(Value::Object(value)) = config.get_mut("value") {
            value.retain(|_, v| !v.is_null());
            if sensitive && value.contains_key("value") {
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

/// Turns a Connect `ConfigInfos` into the managed API's: config types the managed enum does not
/// have (Connect's `CLASS`) become `STRING` (a class name is a string to a client), and each
/// definition gets the managed `order` (Connect calls it `order_in_group`).
pub fn managed_validation(infos: &mut Value) {
    let Some(configs) = infos.get_mut("configs").and_then(Value::as_array_mut) else {
        return;
    };
    for config in configs {
        if let Some(Value::Object(def)) = config.get_mut("definition") {
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
        }
    }
}

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
    fn validation_answers_are_masked_and_nulls_dropped() {
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
        assert!(
            infos["configs"][0]["definition"]
                .get("default_value")
                .is_none()
        );
        assert!(infos["configs"][1]["value"].get("value").is_none());
        assert!(!infos.to_string().contains("hunter22"));
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
}

//! Connector configs as clients see them: sensitive values masked (and unmasked again when a
//! client sends the mask back), secrets scrubbed from text, the managed extras added and
//! stripped, and flat config maps read from JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::SecretRules;
use crate::model::secrets::{References, mask_config};

pub use crate::model::MASK;
/// Supervisor-specific connector config key naming the pool a connector runs on. It is passed to
/// Connect with the rest of the config (Connect ignores keys it does not know), so it round-trips.
pub const POOL_CONFIG_KEY: &str = "supervisor.pool";

/// `cloud.environment`: added to managed configs (Terraform ignores it).
pub const KEY_CLOUD_ENVIRONMENT: &str = "cloud.environment";
/// `cloud.provider`: added to managed configs (Terraform ignores it).
pub const KEY_CLOUD_PROVIDER: &str = "cloud.provider";
/// `kafka.endpoint`: added to managed configs (Terraform ignores it).
pub const KEY_KAFKA_ENDPOINT: &str = "kafka.endpoint";
/// `kafka.region`: added to managed configs (Terraform ignores it).
pub const KEY_KAFKA_REGION: &str = "kafka.region";
/// Value of `cloud.provider` and `kafka.region` for a self-managed department.
pub const SELF_MANAGED: &str = "self-managed";

/// Decides which config keys are sensitive: the department's patterns plus the keys the
/// connector's plugin declares as PASSWORD.
#[derive(Debug, Clone, Copy)]
pub struct Masker<'a> {
    rules: &'a SecretRules,
    password_keys: &'a BTreeSet<String>,
    resolved: &'a [String],
}

impl<'a> Masker<'a> {
    /// A masker over the department's rules and the plugin's PASSWORD-typed keys.
    pub fn new(rules: &'a SecretRules, password_keys: &'a BTreeSet<String>) -> Self {
        Self {
            rules,
            password_keys,
            resolved: &[],
        }
    }

    /// The same masker, also knowing the values behind the config's secret references (an
    /// externalized secret is a reference in the config, but Connect's traces quote the
    /// resolved value).
    pub fn with_resolved(mut self, resolved: &'a [String]) -> Self {
        self.resolved = resolved;
        self
    }

    /// Whether `key`'s value must never be shown.
    pub fn is_sensitive(&self, key: &str) -> bool {
        self.password_keys.contains(key) || self.rules.is_sensitive(key)
    }

    /// `config` with every sensitive value replaced by [`MASK`].
    pub fn mask(&self, config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        mask_config(config, |k| self.is_sensitive(k), References::Masked)
    }

    /// Masks the sensitive values of a JSON object of config values in place.
    pub fn mask_json(&self, config: &mut Value) {
        if let Value::Object(map) = config {
            for (k, v) in map.iter_mut() {
                if self.is_sensitive(k) && !v.is_null() {
                    *v = Value::String(MASK.to_string());
                }
            }
        }
    }

    /// The sensitive values of `config`, for scrubbing messages.
    pub fn secrets<'c>(
        &self,
        config: impl IntoIterator<Item = (&'c String, &'c String)>,
    ) -> Vec<String> {
        config
            .into_iter()
            .filter(|(k, v)| self.is_sensitive(k) && !v.is_empty() && v.as_str() != MASK)
            .map(|(_, v)| v.clone())
            .chain(self.resolved.iter().filter(|v| !v.is_empty()).cloned())
            .collect()
    }
}

/// `text` with every occurrence of every secret replaced by [`MASK`] (longest first, so a secret
/// that contains another is hidden whole).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return text.to_string();
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Replaces masked values sent back by a client (the CLI's `update` merges into the config it
/// read, masks included) with the current values. Errors with the keys whose mask has no current
/// value to stand for.
pub fn unmask(
    incoming: &BTreeMap<String, String>,
    current: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (k, v) in incoming {
        if v == MASK {
            match current.and_then(|c| c.get(k)) {
                Some(real) => {
                    out.insert(k.clone(), real.clone());
                }
                None => unknown.push(k.clone()),
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// The keys the managed API adds to every config (all of them ignored by Terraform), with the
/// department's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedExtras {
    entries: Vec<(&'static str, String)>,
}

impl ManagedExtras {
    /// The extras of a department in `environment_id` on Kafka `bootstrap` reached with
    /// `security_protocol` (`PLAINTEXT` when unset).
    pub fn new(environment_id: &str, bootstrap: &str, security_protocol: Option<&str>) -> Self {
        let protocol = security_protocol.unwrap_or("PLAINTEXT");
        Self {
            entries: vec![
                (KEY_CLOUD_ENVIRONMENT, environment_id.to_string()),
                (KEY_CLOUD_PROVIDER, SELF_MANAGED.to_string()),
                (KEY_KAFKA_ENDPOINT, format!("{protocol}://{bootstrap}")),
                (KEY_KAFKA_REGION, SELF_MANAGED.to_string()),
            ],
        }
    }

    /// `config` with the extras added where the user did not set them (user values win).
    pub fn add(&self, mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.entries {
            config.entry((*k).to_string()).or_insert_with(|| v.clone());
        }
        config
    }

    /// `config` without the extras a client echoed back unchanged (so they do not end up in
    /// Connect's stored config); a user's own different value is kept.
    pub fn strip(&self, mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.entries {
            if config.get(*k) == Some(v) {
                config.remove(*k);
            }
        }
        config
    }
}

/// Masks the configs of a Connect task list (`[{id, config}]`) in place.
pub fn mask_tasks(tasks: &mut Value, masker: &Masker<'_>) {
    if let Value::Array(items) = tasks {
        for item in items {
            if let Some(config) = item.get_mut("config") {
                masker.mask_json(config);
            }
        }
    }
}

/// Reads a flat config map from JSON: values must be strings (numbers and booleans are turned
/// into their text, as Connect does). Errors name each bad key without echoing its value.
pub fn config_from_json(value: &Value, at: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let Value::Object(map) = value else {
        return Err(vec![format!(
            "{at}: must be a JSON object of string values"
        )]);
    };
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            Value::Number(n) => {
                out.insert(k.clone(), n.to_string());
            }
            Value::Bool(b) => {
                out.insert(k.clone(), b.to_string());
            }
            Value::Null => problems.push(format!(
                "{at}.\"{k}\": is null; give a string value or leave the key out"
            )),
            _ => problems.push(format!(
                "{at}.\"{k}\": must be a string (all config values are strings)"
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masking_covers_patterns_and_password_keys_and_keeps_the_rest() {
        let rules = SecretRules::default();
        let passwords = BTreeSet::from(["db.pw".to_string()]);
        let m = Masker::new(&rules, &passwords);
        let config = BTreeMap::from([
            ("connection.password".to_string(), "p1".to_string()),
            ("db.pw".to_string(), "p2".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]);
        let masked = m.mask(&config);
        assert_eq!(masked["connection.password"], MASK);
        assert_eq!(masked["db.pw"], MASK);
        assert_eq!(masked["topic"], "t");
        let mut secrets = m.secrets(&config);
        secrets.sort();
        assert_eq!(secrets, ["p1", "p2"]);
    }

    #[test]
    fn masks_sent_back_stand_for_the_current_value() {
        let current = BTreeMap::from([("a.password".to_string(), "real".to_string())]);
        let incoming = BTreeMap::from([
            ("a.password".to_string(), MASK.to_string()),
            ("topic".to_string(), "t".to_string()),
        ]);
        let out = unmask(&incoming, Some(&current)).unwrap();
        assert_eq!(out["a.password"], "real");
        assert_eq!(out["topic"], "t");
        let err = unmask(&incoming, None).unwrap_err();
        assert_eq!(err, ["a.password"]);
    }

    #[test]
    fn extras_are_added_unless_set_and_stripped_only_when_unchanged() {
        let extras = ManagedExtras::new("env-1", "b:9092", Some("SASL_SSL"));
        let config = BTreeMap::from([
            ("name".to_string(), "c".to_string()),
            (KEY_CLOUD_PROVIDER.to_string(), "aws".to_string()),
        ]);
        let added = extras.add(config.clone());
        assert_eq!(added[KEY_CLOUD_ENVIRONMENT], "env-1");
        assert_eq!(added[KEY_KAFKA_ENDPOINT], "SASL_SSL://b:9092");
        assert_eq!(added[KEY_KAFKA_REGION], SELF_MANAGED);
        assert_eq!(added[KEY_CLOUD_PROVIDER], "aws", "the user's value wins");
        assert_eq!(extras.strip(added), config);
    }

    #[test]
    fn configs_from_json_accept_scalars_and_name_bad_keys() {
        let v = serde_json::json!({"a": "x", "b": 5, "c": true});
        let c = config_from_json(&v, "config").unwrap();
        assert_eq!(c["b"], "5");
        assert_eq!(c["c"], "true");
        let v = serde_json::json!({"pw": ["s3cret"], "n": null});
        let p = config_from_json(&v, "config").unwrap_err();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|m| !m.contains("s3cret")));
        assert!(config_from_json(&serde_json::json!([1]), "config").is_err());
    }

    proptest! {
        #[test]
        fn masked_configs_never_contain_a_sensitive_value(
            config in proptest::collection::btree_map("[a-z.]{1,20}", "[ -~]{0,20}", 0..12)
        ) {
            let rules = SecretRules::default();
            let none = BTreeSet::new();
            let m = Masker::new(&rules, &none);
            let masked = m.mask(&config);
            prop_assert_eq!(masked.len(), config.len());
            for (k, v) in &masked {
                if m.is_sensitive(k) {
                    prop_assert_eq!(v.as_str(), MASK);
                } else {
                    prop_assert_eq!(v, &config[k]);
                }
            }
        }

        #[test]
        fn scrubbed_text_contains_no_secret(text in "[ -~]{0,60}", secret in "[ -~]{1,12}") {
            let input = format!("{text}{secret}{text}");
            let out = scrub(&input, std::slice::from_ref(&secret));
            // A secret that starts or ends with `*` can reappear across a mask and the text
            // beside it ("=" + "*=" masked reads "=****...*=") without revealing anything: only
            // an occurrence outside every mask is a leak.
            let outside_masks = out.replace(MASK, "\u{0}");
            prop_assert!(!outside_masks.contains(&secret));
        }

        #[test]
        fn extras_strip_undoes_add(
            config in proptest::collection::btree_map("[a-z.]{1,12}", "[a-z0-9]{0,8}", 0..8)
        ) {
            let extras = ManagedExtras::new("env", "b:1", None);
            prop_assert_eq!(extras.strip(extras.add(config.clone())), config);
        }
    }
}

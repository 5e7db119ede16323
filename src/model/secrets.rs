//! Which connector config values are secrets, and how every output shows one: the one owner of
//! the mask strings and of config masking.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

use super::Department;

/// What every output shows instead of a secret value: the managed API's mask (Confluent Cloud
/// uses 16 `*`; Terraform drops values matching `^[*]{2,}` on read). Logs, errors, exports and
/// the connector APIs all show this one.
pub const MASK: &str = "****************";
/// What a secret value is shown as inside a worker's command line (`-Dkey=********`): an
/// operator's view of a process, not a config value a client reads back and compares, so it keeps
/// the supervisor's shorter mask.
pub(crate) const COMMAND_LINE_MASK: &str = "********";

/// Folder, under the supervisor's state folder, of the per-connector secret files.
pub const SECRETS_DIR: &str = "secrets";
/// Extension of a per-connector secret file.
pub const SECRET_FILE_EXTENSION: &str = "properties";
/// Name of the config provider the supervisor configures on every worker.
pub const FILE_PROVIDER: &str = "file";
/// Class of Kafka's file config provider.
pub const FILE_CONFIG_PROVIDER_CLASS: &str =
    "org.apache.kafka.common.config.provider.FileConfigProvider";
/// Worker property listing the config providers of a worker.
pub const CONFIG_PROVIDERS_KEY: &str = "config.providers";

/// The folder of the per-connector secret files: `<state_dir>/secrets`, absolute (the workers
/// run in their own folders and `FileConfigProvider` only accepts absolute allowed paths).
pub fn secrets_dir(department: &Department) -> PathBuf {
    let dir = department.supervisor.state_dir.join(SECRETS_DIR);
    std::path::absolute(&dir).unwrap_or(dir)
}

static WHOLE_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\$\{([^}:]*):[^}]*\}$").expect("valid regex"));

/// The provider of `value` when it is exactly one config-provider reference (`${provider:...}`).
pub fn reference_provider(value: &str) -> Option<&str> {
    WHOLE_REFERENCE
        .captures(value)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Whether `value` of a secret key is a literal (not empty, not a reference).
pub fn is_literal(value: &str) -> bool {
    !value.is_empty() && reference_provider(value).is_none()
}

/// What [`mask_config`] does with the values of secret keys that are not literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum References {
    /// Every value of a secret key is masked, references and empty values too: what the API
    /// shows (clients send a masked value back to mean "unchanged", whatever it stood for).
    Masked,
    /// Only literals are masked; a `${provider:...}` reference (where a secret lives, not the
    /// secret) and an empty value stay: what policies see, so they can check references.
    Kept,
}

/// `config` with the values of the keys `is_secret` names replaced by [`MASK`], references as
/// `references` says.
pub fn mask_config(
    config: &BTreeMap<String, String>,
    is_secret: impl Fn(&str) -> bool,
    references: References,
) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let masked = is_secret(k) && (references == References::Masked || is_literal(v));
            (k.clone(), if masked { MASK.to_string() } else { v.clone() })
        })
        .collect()
}

/// What the supervisor does with a literal secret value in a connector config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    /// Write the value to a per-connector secret file readable only by the workers and replace it
    /// with a `${file:...}` config-provider reference, so it never reaches Kafka's config topic.
    Externalize,
    /// Refuse literal secrets; only `${provider:...}` references are accepted.
    Reject,
    /// Pass literal secrets through to Connect (still masked in every output).
    Allow,
}

/// Department rules about secrets in connector configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRules {
    /// Patterns of sensitive keys, matched case-insensitively: a pattern with `*` is a glob over
    /// the whole key (`*.jaas.config`), one without is a substring (`password` matches
    /// `connection.password`). Connect's PASSWORD-typed keys are sensitive whatever these say.
    pub sensitive_keys: Vec<String>,
    /// What happens to literal secret values.
    pub mode: SecretMode,
    /// Config providers whose `${provider:...}` references are accepted as secret values.
    pub allowed_providers: Vec<String>,
}

/// Default sensitive-key patterns.
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "private",
    "api.key",
    "apikey",
    "api_key",
    "keystore.key",
    "*.jaas.config",
];

/// Default config providers accepted in `${provider:...}` references.
pub const DEFAULT_ALLOWED_PROVIDERS: &[&str] = &["file", "dir", "env"];

impl Default for SecretRules {
    fn default() -> Self {
        Self {
            sensitive_keys: DEFAULT_SENSITIVE_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            mode: SecretMode::Externalize,
            allowed_providers: DEFAULT_ALLOWED_PROVIDERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl SecretRules {
    /// Whether `key` matches one of the sensitive-key patterns.
    pub fn is_sensitive(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.sensitive_keys.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            if pattern.contains('*') {
                glob_match(&pattern, &key)
            } else {
                key.contains(&pattern)
            }
        })
    }
}

/// Matches `text` against a glob where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_match_by_substring_or_glob_ignoring_case() {
        let rules = SecretRules::default();
        for key in [
            "connection.password",
            "SSL.KEYSTORE.PASSWORD",
            "aws.secret.access.key",
            "sasl.jaas.config",
            "producer.override.sasl.jaas.config",
            "kafka.api.key",
            // The widened defaults: what Terraform's config_sensitive held in clear before.
            "conn.pwd",
            "ssh.passphrase",
            "gcs.credentials.json",
            "snowflake.private.key",
            "PrivateKey",
            "datadog.apikey",
            "service_api_key",
            "ssl.keystore.key",
        ] {
            assert!(rules.is_sensitive(key), "{key}");
        }
        for key in [
            "topics",
            "key.converter",
            "jaas.config.enabled",
            "tasks.max",
            "kafka.auth.mode",
            "kafka.service.account.id",
            "aws.access.key.id",
            "ssl.keystore.location",
            "connection.url",
        ] {
            assert!(!rules.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        assert!(glob_match("*.jaas.config", "sasl.jaas.config"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*", "a"));
        assert!(!glob_match("a*b", "ab.c"));
        assert!(!glob_match("*.x", "x"));
    }

    #[test]
    fn references_are_masked_or_kept_as_asked_and_literals_always_masked() {
        let config: BTreeMap<String, String> = [
            ("connection.password", "hunter2"),
            ("db.password", "${file:/s/a.properties:db.password}"),
            ("empty.password", ""),
            ("topics", "t"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let rules = SecretRules::default();
        let shown = mask_config(&config, |k| rules.is_sensitive(k), References::Masked);
        assert_eq!(shown["connection.password"], MASK);
        assert_eq!(shown["db.password"], MASK);
        assert_eq!(shown["empty.password"], MASK);
        assert_eq!(shown["topics"], "t");
        let kept = mask_config(&config, |k| rules.is_sensitive(k), References::Kept);
        assert_eq!(kept["connection.password"], MASK);
        assert_eq!(kept["db.password"], "${file:/s/a.properties:db.password}");
        assert_eq!(kept["empty.password"], "");
        assert_eq!(kept["topics"], "t");
    }

    #[test]
    fn only_a_whole_reference_names_a_provider() {
        assert_eq!(reference_provider("${file:/a:b}"), Some("file"));
        assert_eq!(reference_provider("${env:X}"), Some("env"));
        assert_eq!(reference_provider("x${env:X}"), None);
        assert_eq!(reference_provider("${nocolon}"), None);
        assert!(is_literal("hunter2") && !is_literal("") && !is_literal("${env:X}"));
    }

    #[test]
    fn the_mask_is_the_managed_apis_sixteen_stars() {
        assert_eq!(MASK.len(), 16);
        assert!(MASK.chars().all(|c| c == '*'));
        assert_eq!(COMMAND_LINE_MASK.len(), 8);
    }
}

//! Secrets in connector configs: which values are secrets, references to config providers,
//! masking, the `reject` mode's check, and the pure half of the `externalize` mode (the rewritten
//! config and the secret file's content; writing and deleting the file is the caller's I/O).
//!
//! A value counts as a reference when it is exactly one `${provider:[path:]key}` (Connect's
//! `ConfigTransformer` syntax). A value that merely contains one (a JAAS line with
//! `password="${file:...}"`) is still a literal: the rest of it may hold a secret, and the engine
//! cannot tell, so `reject` refuses it and `externalize` moves it whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::model::{Department, SecretMode, SecretRules};

use super::rules::{RULE_SECRETS_LITERAL, RULE_SECRETS_PROVIDER};
use super::{PolicyError, Violation, quote_list};

/// What every output shows instead of a secret value (the managed API's mask: TF drops values
/// starting with `**` on read).
pub const MASKED_VALUE: &str = "****************";
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

static WHOLE_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\$\{([^}:]*):[^}]*\}$").expect("valid regex"));
static ANY_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([^}:]*):[^}]*\}").expect("valid regex"));
static SAFE_FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$").expect("valid regex"));

/// The provider of `value` when it is exactly one config-provider reference.
pub fn reference_provider(value: &str) -> Option<&str> {
    WHOLE_REFERENCE
        .captures(value)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Whether `key` holds a secret: a sensitive-key pattern matches it, or Connect declares it a
/// PASSWORD (`password_keys`, from the plugin's config definition when known).
pub fn is_secret_key(rules: &SecretRules, password_keys: &BTreeSet<String>, key: &str) -> bool {
    password_keys.contains(key) || rules.is_sensitive(key)
}

/// Whether `value` of a secret key is a literal (not empty, not a reference).
pub fn is_literal(value: &str) -> bool {
    !value.is_empty() && reference_provider(value).is_none()
}

/// `config` with every literal secret value replaced by [`MASKED_VALUE`]; references stay (they
/// name where a secret lives, not the secret).
pub fn mask(
    rules: &SecretRules,
    password_keys: &BTreeSet<String>,
    config: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let masked = is_secret_key(rules, password_keys, k) && is_literal(v);
            (
                k.clone(),
                if masked {
                    MASKED_VALUE.to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// The config providers the workers of `pool` have: the pool's own `config.providers` when its
/// `worker_config` sets one, else the supervisor's `file`.
pub fn pool_providers(department: &Department, pool: &str) -> Vec<String> {
    department
        .pool(pool)
        .and_then(|p| p.worker_config.get(CONFIG_PROVIDERS_KEY))
        .map(|list| {
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_else(|| vec![FILE_PROVIDER.to_string()])
}

/// Checks provider references everywhere and, in `reject` mode, literal secrets. Returns the
/// secret keys with literal values (what `externalize` will move).
pub(crate) fn check(
    department: &Department,
    pool: &str,
    password_keys: &BTreeSet<String>,
    config: &BTreeMap<String, String>,
    enabled: &dyn Fn(&str) -> bool,
    out: &mut Vec<Violation>,
) -> Vec<String> {
    let rules = &department.secrets;
    let configured = pool_providers(department, pool);
    if enabled(RULE_SECRETS_PROVIDER) {
        for (key, value) in config {
            let mut reported = BTreeSet::new();
            for capture in ANY_REFERENCE.captures_iter(value) {
                let provider = capture.get(1).map_or("", |m| m.as_str());
                if !reported.insert(provider) {
                    continue;
                }
                if !rules.allowed_providers.iter().any(|p| p == provider) {
                    out.push(Violation::builtin(
                        RULE_SECRETS_PROVIDER,
                        Some(key),
                        format!("{key} refers to config provider \"{provider}\", which this department does not allow"),
                        format!("use one of the allowed providers: {}", quote_list(&rules.allowed_providers)),
                    ));
                } else if !configured.iter().any(|p| p == provider) {
                    out.push(Violation::builtin(
                        RULE_SECRETS_PROVIDER,
                        Some(key),
                        format!("{key} refers to config provider \"{provider}\", which the workers of pool \"{pool}\" do not have"),
                        format!(
                            "use one of {}, or ask the platform team to configure \"{provider}\" in the pool's worker_config (config.providers)",
                            quote_list(&configured)
                        ),
                    ));
                }
            }
        }
    }
    let literals: Vec<String> = config
        .iter()
        .filter(|(k, v)| is_secret_key(rules, password_keys, k) && is_literal(v))
        .map(|(k, _)| k.clone())
        .collect();
    if rules.mode == SecretMode::Reject && enabled(RULE_SECRETS_LITERAL) {
        for key in &literals {
            out.push(Violation::builtin(
                RULE_SECRETS_LITERAL,
                Some(key),
                format!("{key} holds a literal secret; this department only accepts references to a secret store"),
                format!(
                    "replace the value with a reference such as ${{{}:<path>:<key>}} (allowed providers: {})",
                    rules.allowed_providers.first().map_or("file", String::as_str),
                    quote_list(&rules.allowed_providers)
                ),
            ));
        }
    }
    literals
}

/// The folder of the per-connector secret files: `<state_dir>/secrets`, absolute (the workers
/// run in their own folders and `FileConfigProvider` only accepts absolute allowed paths).
pub fn secrets_dir(department: &Department) -> PathBuf {
    let dir = department.supervisor.state_dir.join(SECRETS_DIR);
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The secret file of connector `name` in `dir`: `<name>.properties` when the name is a safe file
/// name, else the SHA-256 of the name (naming rules are configurable, file names must not be).
pub fn secret_file(dir: &Path, name: &str) -> PathBuf {
    let stem = if SAFE_FILE_NAME.is_match(name) {
        name.to_string()
    } else {
        hex::encode(Sha256::digest(name.as_bytes()))
    };
    dir.join(format!("{stem}.{SECRET_FILE_EXTENSION}"))
}

/// The result of externalizing a connector's literal secrets.
#[derive(Clone, PartialEq)]
pub struct Externalized {
    /// The config Connect gets: each literal secret replaced by a `${file:...}` reference.
    pub config: BTreeMap<String, String>,
    /// The connector's secret file.
    pub path: PathBuf,
    /// The file's properties (config key to secret value); empty when there is nothing to keep,
    /// in which case any old file should be removed.
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for Externalized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets themselves never reach a log line.
        f.debug_struct("Externalized")
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("path", &self.path)
            .field("secret_keys", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Externalized {
    /// The secret file's text (Java properties; write it readable by the workers only).
    pub fn file_content(&self) -> String {
        crate::worker::render_properties(&self.secrets)
    }
}

/// Moves every literal secret of `config` to connector `name`'s secret file in `dir` and refers
/// to it with `${file:<path>:<key>}`.
pub fn externalize(
    rules: &SecretRules,
    password_keys: &BTreeSet<String>,
    config: &BTreeMap<String, String>,
    dir: &Path,
    name: &str,
) -> Result<Externalized, PolicyError> {
    let path = secret_file(dir, name);
    let text = path.display().to_string();
    // ConfigTransformer reads `${provider:path:key}` up to the first ':' and the first '}'.
    if !path.is_absolute() || text.contains([':', '}', '{']) || text.contains(char::is_whitespace) {
        return Err(PolicyError::SecretPath {
            path,
            reason: "it must be absolute and free of ':', '{', '}' and spaces to be used in a \
                     ${file:<path>:<key>} reference",
        });
    }
    let mut rewritten = config.clone();
    let mut secrets = BTreeMap::new();
    for (key, value) in config {
        if !is_secret_key(rules, password_keys, key) || !is_literal(value) {
            continue;
        }
        if key.contains('}') {
            return Err(PolicyError::SecretKey { key: key.clone() });
        }
        secrets.insert(key.clone(), value.clone());
        rewritten.insert(key.clone(), format!("${{{FILE_PROVIDER}:{text}:{key}}}"));
    }
    Ok(Externalized {
        config: rewritten,
        path,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_are_whole_values_only() {
        assert_eq!(
            reference_provider("${file:/s/x.properties:pw}"),
            Some("file")
        );
        assert_eq!(
            reference_provider("${vault:secret/db:password}"),
            Some("vault")
        );
        assert_eq!(reference_provider("${env:DB_PASSWORD}"), Some("env"));
        assert_eq!(reference_provider("x ${file:/a:b}"), None);
        assert_eq!(reference_provider("${nocolon}"), None);
        assert_eq!(reference_provider("hunter2"), None);
        assert!(!is_literal(""));
        assert!(is_literal("password=\"${file:/a:b}\""));
    }

    #[test]
    fn masking_hides_literals_and_password_typed_keys_but_keeps_references() {
        let rules = SecretRules::default();
        let passwords: BTreeSet<String> = ["db.pass".to_string()].into();
        let masked = mask(
            &rules,
            &passwords,
            &config(&[
                ("connection.password", "hunter2"),
                ("db.pass", "hunter3"),
                ("aws.secret.access.key", "${vault:aws:key}"),
                ("topics", "dept1-a"),
            ]),
        );
        assert_eq!(masked["connection.password"], MASKED_VALUE);
        assert_eq!(masked["db.pass"], MASKED_VALUE);
        assert_eq!(masked["aws.secret.access.key"], "${vault:aws:key}");
        assert_eq!(masked["topics"], "dept1-a");
    }

    #[test]
    fn externalizing_rewrites_literals_to_file_references() {
        let rules = SecretRules::default();
        let dir = Path::new("/var/lib/cs/secrets");
        let out = externalize(
            &rules,
            &BTreeSet::new(),
            &config(&[
                ("connection.password", "hunter2"),
                ("sasl.jaas.config", "x required password=\"p\";"),
                ("api.key", "${env:KEY}"),
                ("token", ""),
                ("topics", "dept1-a"),
            ]),
            dir,
            "dept1-orders-sink",
        )
        .unwrap();
        let file = "/var/lib/cs/secrets/dept1-orders-sink.properties";
        assert_eq!(out.path, Path::new(file));
        assert_eq!(
            out.config["connection.password"],
            format!("${{file:{file}:connection.password}}")
        );
        assert_eq!(
            out.config["sasl.jaas.config"],
            format!("${{file:{file}:sasl.jaas.config}}")
        );
        assert_eq!(out.config["api.key"], "${env:KEY}");
        assert_eq!(out.config["token"], "");
        assert_eq!(out.config["topics"], "dept1-a");
        assert_eq!(out.secrets.len(), 2);
        let content = out.file_content();
        assert!(
            content.contains("connection.password=hunter2\n"),
            "{content}"
        );
        assert!(!format!("{out:?}").contains("hunter2"));
        // What Connect gets holds no secret at all.
        assert!(
            out.config
                .values()
                .all(|v| !v.contains("hunter2") && !v.contains("\"p\""))
        );
    }

    #[test]
    fn unsafe_connector_names_get_hashed_file_names() {
        let dir = Path::new("/s");
        assert_eq!(
            secret_file(dir, "dept1-a"),
            Path::new("/s/dept1-a.properties")
        );
        let odd = secret_file(dir, "../../etc/passwd");
        assert_eq!(odd.parent(), Some(dir));
        assert_eq!(odd.file_name().unwrap().len(), 64 + ".properties".len());
    }

    #[test]
    fn paths_that_cannot_be_referenced_are_errors() {
        let rules = SecretRules::default();
        let c = config(&[("password", "x")]);
        for dir in ["relative/secrets", "/state:1/secrets", "/my state/secrets"] {
            let err = externalize(&rules, &BTreeSet::new(), &c, Path::new(dir), "a").unwrap_err();
            assert_eq!(err.code(), "policy_secret_path", "{dir}");
        }
    }
}

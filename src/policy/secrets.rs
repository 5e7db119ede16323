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

use crate::model::secrets::{References, mask_config};
use crate::model::{Department, SecretMode, SecretRules};

use super::rules::{RULE_SECRETS_LITERAL, RULE_SECRETS_PROVIDER};
use super::{PolicyError, Violation, quote_list};

pub use crate::model::secrets::{
    CONFIG_PROVIDERS_KEY, FILE_CONFIG_PROVIDER_CLASS, FILE_PROVIDER, SECRET_FILE_EXTENSION,
    SECRETS_DIR, secrets_dir,
};

static ANY_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([^}:]*):[^}]*\}").expect("valid regex"));
static FILE_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{file:([^}:]*):([^}]*)\}").expect("valid regex"));
static SAFE_FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$").expect("valid regex"));

pub use crate::model::secrets::{is_literal, reference_provider};

/// Every `${file:<path>:<key>}` reference inside `value`, as `(path, key)`.
pub fn file_references(value: &str) -> impl Iterator<Item = (&str, &str)> {
    FILE_REFERENCE.captures_iter(value).filter_map(|c| {
        let path = c.get(1)?.as_str();
        let key = c.get(2)?.as_str();
        Some((path, key))
    })
}

/// The key of the secret that `value` refers to when it is exactly one reference to the secret
/// file at `path` (`${file:<path>:<key>}`).
pub fn own_reference<'v>(value: &'v str, path: &Path) -> Option<&'v str> {
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    let rest = inner.strip_prefix(FILE_PROVIDER)?.strip_prefix(':')?;
    let key = rest.strip_prefix(path.to_str()?)?.strip_prefix(':')?;
    (!key.contains('}')).then_some(key)
}

/// Whether `key` holds a secret: a sensitive-key pattern matches it, or Connect declares it a
/// PASSWORD (`password_keys`, from the plugin's config definition when known).
pub fn is_secret_key(rules: &SecretRules, password_keys: &BTreeSet<String>, key: &str) -> bool {
    password_keys.contains(key) || rules.is_sensitive(key)
}

/// `config` with every literal secret value replaced by the mask; references stay (they name
/// where a secret lives, not the secret).
pub fn mask(
    rules: &SecretRules,
    password_keys: &BTreeSet<String>,
    config: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    mask_config(
        config,
        |k| is_secret_key(rules, password_keys, k),
        References::Kept,
    )
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

/// References in `config` (of connector `name`) to the secret file of another connector of the
/// department (`others`). The secrets folder holds every connector's externalized secrets: a
/// connector that refers to another's file could copy that secret into its own data (a
/// transform's static value, a file name) where its operator can read it. Other files the
/// platform puts in the folder stay usable.
pub fn foreign_references<'a>(
    config: &BTreeMap<String, String>,
    dir: &Path,
    name: &str,
    others: impl IntoIterator<Item = &'a str>,
) -> Vec<Violation> {
    let foreign: BTreeSet<PathBuf> = others
        .into_iter()
        .filter(|other| *other != name)
        .map(|other| secret_file(dir, other))
        .collect();
    let mut out = Vec::new();
    for (key, value) in config {
        if file_references(value).any(|(path, _)| foreign.contains(Path::new(path))) {
            out.push(Violation::builtin(
                RULE_SECRETS_PROVIDER,
                Some(key),
                format!("{key} refers to the secret file of another connector"),
                "send the secret value itself (the supervisor keeps it in this connector's own \
                 secret file) or refer to your secret store",
            ));
        }
    }
    out
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
        crate::util::properties::render_properties(&self.secrets)
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

/// What a create or update does with a connector's secrets: the config Connect gets and the
/// connector's secret file afterwards.
#[derive(Clone, PartialEq)]
pub struct SecretPlan {
    /// The config to give Connect (literal secrets replaced by references in `externalize`
    /// mode).
    pub config: BTreeMap<String, String>,
    /// The connector's secret file afterwards; `None` when it should not exist.
    pub file: Option<BTreeMap<String, String>>,
    /// Keys whose literal value this change moves to the file.
    pub moved: Vec<String>,
    /// Keys whose secret stays as it is in the file (a masked value sent back).
    pub kept: Vec<String>,
}

impl std::fmt::Debug for SecretPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPlan")
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field(
                "file_keys",
                &self.file.as_ref().map(|m| m.keys().collect::<Vec<_>>()),
            )
            .field("moved", &self.moved)
            .field("kept", &self.kept)
            .finish()
    }
}

impl SecretPlan {
    /// Every secret value involved (for scrubbing Connect's messages, which may quote resolved
    /// values).
    pub fn values(&self) -> Vec<String> {
        self.file
            .iter()
            .flat_map(|m| m.values().cloned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// Plans the secrets of connector `name` whose reviewed config is `config`: in `externalize`
/// mode its literal secrets move to its file in `dir`; in every mode, references to its own file
/// (what a masked value sent back in an update stands for) keep the secret from `previous`, the
/// file as it is now. A reference to a secret the file does not hold is an error naming the
/// config keys.
pub fn plan(
    rules: &SecretRules,
    password_keys: &BTreeSet<String>,
    config: &BTreeMap<String, String>,
    dir: &Path,
    name: &str,
    previous: Option<&BTreeMap<String, String>>,
) -> Result<SecretPlan, PolicyError> {
    let (config, mut file, moved) = if rules.mode == SecretMode::Externalize {
        let out = externalize(rules, password_keys, config, dir, name)?;
        let moved = out.secrets.keys().cloned().collect();
        (out.config, out.secrets, moved)
    } else {
        (config.clone(), BTreeMap::new(), Vec::new())
    };
    let path = secret_file(dir, name);
    let mut kept = Vec::new();
    let mut missing = Vec::new();
    for (key, value) in &config {
        let Some(secret) = own_reference(value, &path) else {
            continue;
        };
        if file.contains_key(secret) {
            continue;
        }
        match previous.and_then(|p| p.get(secret)) {
            Some(v) => {
                file.insert(secret.to_string(), v.clone());
                kept.push(key.clone());
            }
            None => missing.push(key.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(PolicyError::SecretMissing { keys: missing });
    }
    Ok(SecretPlan {
        config,
        file: (!file.is_empty()).then_some(file),
        moved,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MASK;
    use crate::policy::tests::config;

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
        assert_eq!(masked["connection.password"], MASK);
        assert_eq!(masked["db.pass"], MASK);
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
    fn own_references_are_exact_whole_values() {
        let path = Path::new("/s/dept1-a.properties");
        assert_eq!(
            own_reference("${file:/s/dept1-a.properties:db.password}", path),
            Some("db.password")
        );
        assert_eq!(own_reference("${file:/s/dept1-b.properties:k}", path), None);
        assert_eq!(own_reference("${dir:/s/dept1-a.properties:k}", path), None);
        assert_eq!(
            own_reference("x${file:/s/dept1-a.properties:k}", path),
            None
        );
        assert_eq!(own_reference("${file:/s/dept1-a.properties}", path), None);
        let refs: Vec<_> =
            file_references("a ${file:/x:k1} b ${vault:y:k} ${file:/z:k2}").collect();
        assert_eq!(refs, [("/x", "k1"), ("/z", "k2")]);
    }

    fn planned(
        mode: SecretMode,
        pairs: &[(&str, &str)],
        previous: Option<&BTreeMap<String, String>>,
    ) -> Result<SecretPlan, PolicyError> {
        let rules = SecretRules {
            mode,
            ..SecretRules::default()
        };
        plan(
            &rules,
            &BTreeSet::new(),
            &config(pairs),
            Path::new("/s"),
            "dept1-a",
            previous,
        )
    }

    const OWN_PW: &str = "${file:/s/dept1-a.properties:connection.password}";

    #[test]
    fn a_create_moves_literals_to_the_file() {
        let plan = planned(
            SecretMode::Externalize,
            &[("connection.password", "hunter2"), ("topics", "dept1-t")],
            None,
        )
        .unwrap();
        assert_eq!(plan.config["connection.password"], OWN_PW);
        assert_eq!(
            plan.file,
            Some(config(&[("connection.password", "hunter2")]))
        );
        assert_eq!(plan.moved, ["connection.password"]);
        assert!(plan.kept.is_empty());
        assert_eq!(plan.values(), ["hunter2"]);
        assert!(!format!("{plan:?}").contains("hunter2"));
    }

    #[test]
    fn an_update_keeps_secrets_sent_back_masked_and_drops_removed_ones() {
        let previous = config(&[("connection.password", "old"), ("api.token", "tok")]);
        // The mask was replaced by the stored reference; api.token is no longer in the config.
        let plan = planned(
            SecretMode::Externalize,
            &[("connection.password", OWN_PW), ("db.secret", "new")],
            Some(&previous),
        )
        .unwrap();
        assert_eq!(
            plan.file,
            Some(config(&[
                ("connection.password", "old"),
                ("db.secret", "new")
            ]))
        );
        assert_eq!(plan.kept, ["connection.password"]);
        assert_eq!(plan.moved, ["db.secret"]);
        // A new literal replaces the kept one.
        let plan = planned(
            SecretMode::Externalize,
            &[("connection.password", "newer")],
            Some(&previous),
        )
        .unwrap();
        assert_eq!(plan.file, Some(config(&[("connection.password", "newer")])));
        // No secrets left: no file.
        let plan = planned(SecretMode::Externalize, &[("topics", "t")], Some(&previous)).unwrap();
        assert_eq!(plan.file, None);
    }

    #[test]
    fn other_modes_pass_literals_on_but_still_keep_the_file_for_references() {
        let previous = config(&[("connection.password", "old")]);
        for mode in [SecretMode::Allow, SecretMode::Reject] {
            let plan = planned(
                mode,
                &[("connection.password", OWN_PW), ("api.token", "literal")],
                Some(&previous),
            )
            .unwrap();
            assert_eq!(plan.config["api.token"], "literal");
            assert_eq!(plan.file, Some(previous.clone()));
            assert!(plan.moved.is_empty());
        }
    }

    #[test]
    fn a_reference_to_a_secret_the_file_lacks_is_an_error() {
        let err = planned(
            SecretMode::Externalize,
            &[("connection.password", OWN_PW)],
            Some(&config(&[("other", "x")])),
        )
        .unwrap_err();
        assert_eq!(err.code(), "policy_secret_missing");
        assert!(err.to_string().contains("\"connection.password\""), "{err}");
        assert!(
            planned(
                SecretMode::Externalize,
                &[("connection.password", OWN_PW)],
                None
            )
            .is_err()
        );
    }

    #[test]
    fn references_to_another_connectors_secret_file_are_refused() {
        let dir = Path::new("/s");
        let cfg = config(&[
            (
                "connection.password",
                "${file:/s/dept1-a.properties:connection.password}",
            ),
            (
                "transforms.t.static.value",
                "${file:/s/dept1-b.properties:connection.password}",
            ),
            (
                "sasl.jaas.config",
                "x password=\"${file:/s/dept1-b.properties:p}\";",
            ),
            ("api.token", "${file:/s/shared-db.properties:token}"),
        ]);
        let found = foreign_references(&cfg, dir, "dept1-a", ["dept1-a", "dept1-b", "dept1-c"]);
        let keys: Vec<_> = found.iter().map(|v| v.key.as_deref().unwrap()).collect();
        assert_eq!(keys, ["sasl.jaas.config", "transforms.t.static.value"]);
        assert!(found.iter().all(|v| v.rule == RULE_SECRETS_PROVIDER));
        // Seen from dept1-b, its own file is fine and dept1-a's is not.
        let from_b = foreign_references(&cfg, dir, "dept1-b", ["dept1-a", "dept1-b"]);
        assert_eq!(from_b.len(), 1);
        assert_eq!(from_b[0].key.as_deref(), Some("connection.password"));
        // Files that belong to no connector (platform-provided) are fine.
        assert!(foreign_references(&cfg, dir, "dept1-a", ["dept1-c"]).is_empty());
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

//! Values that look like secrets under keys that are not treated as secrets: the warnings of a
//! `config/validate` answer, so a department notices a password it is about to store in clear
//! (Terraform merges `config_sensitive` into the config it sends, whatever the keys are named).
//!
//! A heuristic, deliberately narrow so it stays quiet on ordinary configs: a value with upper-
//! and lower-case letters and digits, no spaces, at least [`MIN_LENGTH`] characters and
//! [`MIN_ENTROPY`] bits of entropy per character (generated passwords, API secrets, tokens), or a
//! URL carrying a password (`scheme://user:password@host`). References (`${provider:...}`),
//! numbers, class names and paths never match. Pure; never returns or logs the value.

/// Shortest value that can look like a secret.
pub const MIN_LENGTH: usize = 12;
/// Least Shannon entropy (bits per character) of a value that looks like a secret.
pub const MIN_ENTROPY: f64 = 3.0;

fn entropy(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = text.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// A URL with a password in its user info (`jdbc:postgresql://user:pw@db/x`).
fn url_with_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(user_info, _)| {
        user_info
            .split_once(':')
            .is_some_and(|(_, p)| !p.is_empty())
    })
}

/// Whether `value` looks like a secret.
pub fn looks_secret(value: &str) -> bool {
    let value = value.trim();
    if value.starts_with("${") {
        return false;
    }
    if url_with_password(value) {
        return true;
    }
    if value.len() < MIN_LENGTH
        || value.len() > 4096
        || value.contains(char::is_whitespace)
        || value.contains("://")
        || value.starts_with('/')
    {
        return false;
    }
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    let lower = value.chars().any(|c| c.is_ascii_lowercase());
    let digit = value.chars().any(|c| c.is_ascii_digit());
    upper && lower && digit && entropy(value) >= MIN_ENTROPY
}

/// The keys of `config` whose value looks like a secret but that `is_sensitive` does not treat
/// as one, in key order.
pub fn unmasked_lookalikes<'c>(
    config: impl IntoIterator<Item = (&'c String, &'c String)>,
    is_sensitive: impl Fn(&str) -> bool,
) -> Vec<String> {
    config
        .into_iter()
        .filter(|(k, v)| !is_sensitive(k) && looks_secret(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The warnings for a `config/validate` of `config` answered with Connect's `infos`
/// (ConfigInfos): keys neither matching the department's patterns nor PASSWORD-typed in the
/// answer whose values look like secrets.
pub fn validation_warnings(
    config: &std::collections::BTreeMap<String, String>,
    infos: &serde_json::Value,
    rules: &crate::model::SecretRules,
) -> Vec<String> {
    let password_keys: std::collections::BTreeSet<&str> = infos["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["definition"]["type"] == "PASSWORD")
        .filter_map(|c| c["definition"]["name"].as_str())
        .collect();
    unmasked_lookalikes(config, |k| {
        rules.is_sensitive(k) || password_keys.contains(k)
    })
    .iter()
    .map(|k| warning(k))
    .collect()
}

/// The warning for `key`: what is wrong and how to fix it, without the value.
pub fn warning(key: &str) -> String {
    format!(
        "{key}: the value looks like a secret, but {key} is not a sensitive key, so it is stored \
         and shown in clear; rename the key, add a pattern for it to [secrets] sensitive_keys, or \
         reference the value with ${{file:...}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_and_urls_with_passwords_look_secret() {
        for v in [
            "S3cr3tValue9xQ",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "jdbc:postgresql://app:hunter2@db:5432/orders",
            "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5",
        ] {
            assert!(looks_secret(v), "{v}");
        }
    }

    #[test]
    fn ordinary_config_values_do_not() {
        for v in [
            "dept1-orders-topic",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "FileStreamSource",
            "/var/data/Input2024.txt",
            "jdbc:postgresql://db:5432/orders",
            "http://Schema-Registry1:8081",
            "${file:/secrets/dept1-x.properties:db.password}",
            "123456789012345",
            "true",
            "SASL_SSL",
            "Aa1",
            "aaaaaaaaAAAAAAAA1111",
        ] {
            assert!(!looks_secret(v), "{v}");
        }
    }

    #[test]
    fn only_keys_not_treated_as_secrets_are_named() {
        let config = std::collections::BTreeMap::from([
            ("conn.pass".to_string(), "S3cr3tValue9xQ".to_string()),
            ("db.password".to_string(), "S3cr3tValue9xQ".to_string()),
            ("topic".to_string(), "dept1-orders".to_string()),
        ]);
        let keys = unmasked_lookalikes(&config, |k| k.contains("password"));
        assert_eq!(keys, ["conn.pass"]);
        let w = warning("conn.pass");
        assert!(w.contains("sensitive_keys") && !w.contains("S3cr3t"), "{w}");
    }

    #[test]
    fn validation_warnings_skip_patterns_and_password_definitions() {
        let config = std::collections::BTreeMap::from([
            ("conn.pass".to_string(), "S3cr3tValue9xQ".to_string()),
            ("conn.pwd".to_string(), "S3cr3tValue9xQ".to_string()),
            ("plugin.key".to_string(), "S3cr3tValue9xQ".to_string()),
        ]);
        let infos = serde_json::json!({"configs": [
            {"definition": {"name": "plugin.key", "type": "PASSWORD"}, "value": {}},
            {"definition": {"name": "conn.pass", "type": "STRING"}, "value": {}},
        ]});
        let w = validation_warnings(&config, &infos, &crate::model::SecretRules::default());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("conn.pass:"), "{w:?}");
    }
}

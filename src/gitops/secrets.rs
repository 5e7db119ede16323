//! Secrets of `plan`/`apply`: `${env:NAME}` values resolved from the environment of the CI job
//! (or of the supervisor in continuous mode) at the last moment, the records `plan` keeps in a
//! connector's config to tell whether a secret changed, and the scrubbing of every output.
//!
//! The managed API never shows a secret (it answers `****************`), so "unchanged" cannot
//! be read back. `apply` therefore records, in the connector's own config under [`DIGESTS_KEY`]
//! (a `config.internal.` key: Terraform ignores it, Connect ignores it), an HMAC-SHA256 of each
//! secret value it sent, keyed with [`DIGEST_KEY_ENV`] when set. `plan` computes the same HMAC
//! of the value it would send: equal means unchanged. Limits, said in the README too: without
//! [`DIGEST_KEY_ENV`] the HMAC key is empty, so whoever can read the connector's config can test
//! guesses of a weak secret against the record (long random secrets are safe); a change made
//! through the API that keeps the record but alters a secret is not seen; a record that is
//! missing (a config written by hand) shows every secret as changed.
//!
//! `${vault:...}`, `${file:...}` and any other provider reference are not resolved: they go to
//! Connect's config providers as they are, and count as the value itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// Config key of the secret digests `apply` records (`key=hex,key=hex`).
pub const DIGESTS_KEY: &str = "config.internal.gitops.digests";
/// Config key of the ownership marker: the owner (folder) that manages the connector.
pub const OWNER_KEY: &str = "config.internal.gitops.owner";
/// Prefix of the keys `plan`/`apply` own.
pub const GITOPS_KEY_PREFIX: &str = "config.internal.gitops.";
/// Environment variable holding the key of the secret digests (same value in CI and in the
/// supervisor's continuous mode).
pub const DIGEST_KEY_ENV: &str = "CS_GITOPS_DIGEST_KEY";
/// Provider resolved by `plan`/`apply` themselves.
pub const ENV_PROVIDER: &str = "env";

static ENV_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$").expect("valid regex"));

/// The variable of a value that is exactly `${env:NAME}`.
pub fn env_variable(value: &str) -> Option<&str> {
    ENV_REFERENCE
        .captures(value)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// What `validate` checks in place of `${env:NAME}` (it runs without the CI's secrets): a
/// literal, as `apply` will send one.
pub fn placeholder(variable: &str) -> String {
    format!("(value of {variable} at apply time)")
}

/// A `${env:NAME}` whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    /// The config key.
    pub key: String,
    /// The variable.
    pub variable: String,
}

/// `config` with every `${env:NAME}` value replaced by the variable's value from `lookup`;
/// the resolved values are added to `resolved` (for scrubbing). Unset variables are returned.
pub fn resolve(
    config: &BTreeMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    resolved: &mut BTreeSet<String>,
) -> Result<BTreeMap<String, String>, Vec<Unset>> {
    let mut out = BTreeMap::new();
    let mut unset = Vec::new();
    for (key, value) in config {
        match env_variable(value) {
            None => {
                out.insert(key.clone(), value.clone());
            }
            Some(variable) => match lookup(variable) {
                Some(v) => {
                    if !v.is_empty() {
                        resolved.insert(v.clone());
                    }
                    out.insert(key.clone(), v);
                }
                None => unset.push(Unset {
                    key: key.clone(),
                    variable: variable.to_string(),
                }),
            },
        }
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The recorded digest of secret `value` of config key `key` of connector `connector`.
pub fn digest(digest_key: &[u8], connector: &str, key: &str, value: &str) -> String {
    let message = format!("{connector}\0{key}\0{value}");
    hex::encode(&hmac(digest_key, message.as_bytes())[..16])
}

/// The [`DIGESTS_KEY`] value for `digests` (key to digest).
pub fn encode_digests(digests: &BTreeMap<String, String>) -> String {
    digests
        .iter()
        .map(|(k, d)| format!("{k}={d}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a [`DIGESTS_KEY`] value (unreadable entries are left out: they count as changed).
pub fn decode_digests(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|entry| entry.rsplit_once('='))
        .filter(|(k, d)| !k.is_empty() && d.len() == 32)
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect()
}

/// `text` with every resolved secret value replaced by the mask.
pub fn scrub(text: &str, secrets: &BTreeSet<String>) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret that contains another is masked whole.
    let mut ordered: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in ordered {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), crate::model::MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long_key = [0xaau8; 131];
        assert_eq!(
            hex::encode(hmac(
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn env_references_resolve_and_unset_ones_are_named() {
        let config = BTreeMap::from([
            ("a".to_string(), "${env:PG_PASS}".to_string()),
            ("b".to_string(), "${vault:secret/db:pw}".to_string()),
            ("c".to_string(), "plain ${env:X}".to_string()),
        ]);
        let mut seen = BTreeSet::new();
        let out = resolve(
            &config,
            &|v| (v == "PG_PASS").then(|| "s3cret-value".to_string()),
            &mut seen,
        )
        .unwrap();
        assert_eq!(out["a"], "s3cret-value");
        assert_eq!(out["b"], "${vault:secret/db:pw}");
        assert_eq!(out["c"], "plain ${env:X}", "only whole references resolve");
        assert!(seen.contains("s3cret-value"));
        let unset = resolve(&config, &|_| None, &mut seen).unwrap_err();
        assert_eq!(
            unset,
            [Unset {
                key: "a".into(),
                variable: "PG_PASS".into()
            }]
        );
    }

    #[test]
    fn digests_round_trip_and_depend_on_every_input() {
        let d = digest(b"k", "c", "password", "v");
        assert_eq!(d.len(), 32);
        assert_ne!(d, digest(b"other", "c", "password", "v"));
        assert_ne!(d, digest(b"k", "c2", "password", "v"));
        assert_ne!(d, digest(b"k", "c", "password", "v2"));
        let map = BTreeMap::from([("a.password".to_string(), d.clone())]);
        assert_eq!(decode_digests(&encode_digests(&map)), map);
        assert!(decode_digests("x=short,=y").is_empty());
    }

    #[test]
    fn scrubbing_masks_every_resolved_value() {
        let secrets = BTreeSet::from(["hunter22".to_string(), "hunter2233".to_string()]);
        assert_eq!(
            scrub("a hunter2233 b hunter22", &secrets),
            "a **************** b ****************"
        );
    }
}

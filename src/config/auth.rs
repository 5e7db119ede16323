//! The `[auth]` table of the department file: API keys, bearer tokens and access switches.

use std::collections::BTreeSet;

use super::reader::TableReader;
use crate::model::auth::parse_digest;
use crate::model::{ApiKey, ApiToken, AuthSettings, Role};

/// Key of the table in the department file.
pub const AUTH_TABLE: &str = "auth";

const ROLE_HINT: &str = "use \"viewer\", \"operator\" or \"admin\"";
const DIGEST_HINT: &str = "must be the hex SHA-256 of the secret (64 hex digits); \
     produce one with `connect-supervisor new-key` or `connect-supervisor hash-secret`";

fn read_role(t: &mut TableReader<'_>, key: &'static str, required: bool) -> Option<Role> {
    let text = if required {
        t.required_string(key, ROLE_HINT)?
    } else {
        t.string(key)?
    };
    let role = Role::parse(&text);
    if role.is_none() {
        t.problem(key, format!("\"{text}\" is not a role; {ROLE_HINT}"));
    }
    role
}

fn read_digest(t: &mut TableReader<'_>, key: &'static str) -> Option<[u8; 32]> {
    let text = t.required_string(key, DIGEST_HINT)?;
    let digest = parse_digest(&text);
    if digest.is_none() {
        // Never echo the value: someone may have pasted the secret itself here.
        t.problem(key, format!("is not a SHA-256 digest; it {DIGEST_HINT}"));
    }
    digest
}

/// Reads the `[auth]` table. Every problem is recorded; `None` when something is invalid.
pub(crate) fn read_auth(t: &mut TableReader<'_>) -> Option<AuthSettings> {
    let defaults = AuthSettings::default();
    let allow_anonymous = t.boolean("allow_anonymous").unwrap_or(false);
    let anonymous_role = if t.has("anonymous_role") {
        read_role(t, "anonymous_role", false)
    } else {
        Some(defaults.anonymous_role)
    };
    let delete_requires_admin = t.boolean("delete_requires_admin").unwrap_or(false);
    let open_health = t.boolean("open_health").unwrap_or(defaults.open_health);
    let open_metrics = t.boolean("open_metrics").unwrap_or(defaults.open_metrics);
    let session_lifetime = if t.has("session_lifetime") {
        super::supervision::duration(
            t,
            "session_lifetime",
            crate::model::auth::MIN_SESSION_LIFETIME,
            crate::model::auth::MAX_SESSION_LIFETIME,
        )
    } else {
        Some(defaults.session_lifetime)
    };

    let keys: Vec<Option<ApiKey>> = t
        .with_table_array("keys", |k| {
            let id = k.required_string("id", "give the API key id clients send as user name");
            if let Some(id) = &id
                && (id.is_empty() || id.contains(':') || id.chars().any(char::is_whitespace))
            {
                k.problem(
                    "id",
                    "must be non-empty without ':' or spaces (it is the HTTP Basic user name)",
                );
            }
            let digest = read_digest(k, "secret_sha256");
            let role = read_role(k, "role", true);
            Some(ApiKey {
                id: id?,
                secret_sha256: digest?,
                role: role?,
            })
        })
        .unwrap_or_default();
    let tokens: Vec<Option<ApiToken>> = t
        .with_table_array("tokens", |k| {
            let name = k.required_string(
                "name",
                "name the token (it identifies the caller in logs, e.g. \"ci\")",
            );
            let digest = read_digest(k, "token_sha256");
            let role = read_role(k, "role", true);
            Some(ApiToken {
                name: name?,
                token_sha256: digest?,
                role: role?,
            })
        })
        .unwrap_or_default();

    let mut seen = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(key) = key
            && !seen.insert(key.id.clone())
        {
            t.problem_at(
                format!("{}[{i}].id", t.path_of("keys")),
                format!(
                    "API key id \"{}\" is defined twice; ids must be unique",
                    key.id
                ),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, token) in tokens.iter().enumerate() {
        if let Some(token) = token
            && !seen.insert(token.name.clone())
        {
            t.problem_at(
                format!("{}[{i}].name", t.path_of("tokens")),
                format!(
                    "token name \"{}\" is defined twice; names must be unique",
                    token.name
                ),
            );
        }
    }
    let keys: Option<Vec<ApiKey>> = keys.into_iter().collect();
    let tokens: Option<Vec<ApiToken>> = tokens.into_iter().collect();
    if let (Some(keys), Some(tokens)) = (&keys, &tokens)
        && keys.is_empty()
        && tokens.is_empty()
        && !allow_anonymous
    {
        t.problem(
            "keys",
            "no API key or token is defined, so nobody could call the API; add [[auth.keys]] \
             (see `connect-supervisor new-key`) or set auth.allow_anonymous = true",
        );
    }
    Some(AuthSettings {
        configured: true,
        keys: keys?,
        tokens: tokens?,
        allow_anonymous,
        anonymous_role: anonymous_role?,
        delete_requires_admin,
        open_health,
        open_metrics,
        session_lifetime: session_lifetime?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::auth::{Role, digest, hash_secret};
    use crate::config::{ParseError, parse};

    fn base() -> String {
        crate::config::testing::department().toml()
    }

    fn problems(text: &str) -> Vec<(String, String)> {
        match parse(text, Path::new("/"), &|_| None) {
            Err(ParseError::Invalid(p)) => p.into_iter().map(|p| (p.path, p.message)).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_department_without_auth_is_marked_unconfigured() {
        let base = base();
        let d = parse(&base, Path::new("/"), &|_| None).unwrap();
        assert!(!d.auth.configured);
    }

    #[test]
    fn keys_tokens_and_switches_are_read() {
        let base = base();
        let text = format!(
            "{base}\n[auth]\ndelete_requires_admin = true\nopen_metrics = false\nsession_lifetime = \"2h\"\n\
             [[auth.keys]]\nid = \"K1\"\nsecret_sha256 = \"{}\"\nrole = \"operator\"\n\
             [[auth.tokens]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nrole = \"viewer\"\n",
            hash_secret("s1"),
            hash_secret("t1")
        );
        let d = parse(&text, Path::new("/"), &|_| None).unwrap();
        assert!(d.auth.configured && d.auth.delete_requires_admin);
        assert!(d.auth.open_health && !d.auth.open_metrics);
        assert_eq!(
            d.auth.session_lifetime,
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(d.auth.keys[0].id, "K1");
        assert_eq!(d.auth.keys[0].role, Role::Operator);
        assert_eq!(d.auth.keys[0].secret_sha256, digest("s1"));
        assert_eq!(d.auth.tokens[0].name, "ci");
        assert_eq!(d.auth.tokens[0].token_sha256, digest("t1"));
    }

    #[test]
    fn every_auth_problem_is_reported_without_echoing_values() {
        let base = base();
        let text = format!(
            "{base}\n[auth]\nopen_health = \"yes\"\nanonymous_role = \"root\"\nsession_lifetime = \"30d\"\n\
             [[auth.keys]]\nid = \"K1\"\nsecret_sha256 = \"my-plain-secret\"\nrole = \"boss\"\n\
             [[auth.keys]]\nid = \"K1\"\nsecret_sha256 = \"{h}\"\nrole = \"admin\"\n\
             [[auth.keys]]\nid = \"K1\"\nsecret_sha256 = \"{h}\"\nrole = \"admin\"\n\
             [[auth.tokens]]\ntoken_sha256 = \"{h}\"\nrole = \"viewer\"\n",
            h = hash_secret("x")
        );
        let p = problems(&text);
        let paths: Vec<&str> = p.iter().map(|(path, _)| path.as_str()).collect();
        for expected in [
            "auth.open_health",
            "auth.anonymous_role",
            "auth.session_lifetime",
            "auth.keys[0].secret_sha256",
            "auth.keys[0].role",
            "auth.keys[2].id",
            "auth.tokens[0].name",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {p:?}");
        }
        assert!(
            p.iter().all(|(_, m)| !m.contains("my-plain-secret")),
            "{p:?}"
        );
    }

    #[test]
    fn an_auth_table_that_lets_nobody_in_is_refused() {
        let base = base();
        let p = problems(&format!("{base}\n[auth]\ndelete_requires_admin = true\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "auth.keys");
        assert!(p[0].1.contains("allow_anonymous"), "{}", p[0].1);
        let d = parse(
            &format!("{base}\n[auth]\nallow_anonymous = true\nanonymous_role = \"operator\"\n"),
            Path::new("/"),
            &|_| None,
        )
        .unwrap();
        assert_eq!(d.auth.anonymous(), Some(Role::Operator));
    }
}

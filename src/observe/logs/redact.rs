//! Secrets out of log text: every captured line is redacted once, when it is read, so neither
//! the log views nor the forwarded topic ever hold a secret.
//!
//! Three rules, applied in order:
//! 1. a config dump line `   <key> = <value>` (how Connect logs every config it starts with)
//!    whose key is sensitive by the department's rules has its value masked;
//! 2. an inline `<key>=<value>` / `<key>="<value>"` with a sensitive key (JAAS configs, URLs) is
//!    masked;
//! 3. every known secret value (the department's Kafka credentials, the connectors' sensitive
//!    config values and their secret files) is masked wherever it appears.
//!
//! Rules 1 and 2 only run on lines that mention a sensitive key fragment, which keeps the common
//! line cheap. Values shorter than [`MIN_SECRET_LEN`] or that are plain words (`true`, numbers) are
//! not treated as secrets, so masking cannot eat ordinary text. Pure apart from its own lock.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use regex::{Regex, RegexBuilder};

use crate::model::SecretRules;

pub use crate::model::MASK;
/// Shortest value treated as a secret.
pub const MIN_SECRET_LEN: usize = 6;
/// Most secret values remembered (the oldest are not dropped: new ones are refused past this).
pub const MAX_SECRETS: usize = 10_000;

/// Masks secrets in log text.
#[derive(Debug)]
pub struct Redactor {
    rules: SecretRules,
    fragments: Option<Regex>,
    dump: Regex,
    inline: Regex,
    values: RwLock<Arc<Values>>,
}

#[derive(Debug, Default)]
struct Values {
    set: BTreeSet<String>,
    regex: Option<Regex>,
}

/// Whether `value` is worth masking wherever it appears.
pub fn is_maskable(value: &str) -> bool {
    let v = value.trim();
    v.len() >= MIN_SECRET_LEN
        && v != MASK
        && !v.starts_with("${")
        && !v.eq_ignore_ascii_case("[hidden]")
        && !matches!(v.to_ascii_lowercase().as_str(), "true" | "false" | "null")
        && v.parse::<f64>().is_err()
}

impl Redactor {
    /// A redactor for the department's sensitive-key rules.
    pub fn new(rules: &SecretRules) -> Self {
        // The literal parts of every pattern: a line without any of them has no sensitive key.
        let mut literals: Vec<String> = rules
            .sensitive_keys
            .iter()
            .flat_map(|p| p.split('*'))
            .filter(|f| !f.is_empty())
            .map(regex::escape)
            .collect();
        literals.sort();
        literals.dedup();
        let fragments = (!literals.is_empty()).then(|| {
            RegexBuilder::new(&literals.join("|"))
                .case_insensitive(true)
                .build()
                .expect("escaped literals form a valid regex")
        });
        Self {
            rules: rules.clone(),
            fragments,
            dump: Regex::new(r"^(\s*)([A-Za-z0-9_.\-]+) = (.+)$").expect("valid regex"),
            inline: Regex::new(r#"([A-Za-z0-9_.\-]+)\s?=\s?("[^"]*"|'[^']*'|[^\s,;&)\]}"']+)"#)
                .expect("valid regex"),
            values: RwLock::new(Arc::new(Values::default())),
        }
    }

    /// Remembers secret values (those [`is_maskable`]); returns how many were new.
    pub fn add_secrets<I, S>(&self, values: I) -> usize
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let current = self.values.read().expect("redactor lock").clone();
        let new: Vec<String> = values
            .into_iter()
            .map(|v| v.as_ref().trim().to_string())
            .filter(|v| is_maskable(v) && !current.set.contains(v))
            .collect();
        if new.is_empty() {
            return 0;
        }
        let mut guard = self.values.write().expect("redactor lock");
        let mut set = guard.set.clone();
        let before = set.len();
        for v in new {
            if set.len() >= MAX_SECRETS {
                break;
            }
            set.insert(v);
        }
        let added = set.len() - before;
        if added == 0 {
            return 0;
        }
        // Longest first, so a secret that contains another is masked whole.
        let mut ordered: Vec<&String> = set.iter().collect();
        ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let pattern = ordered
            .iter()
            .map(|s| regex::escape(s))
            .collect::<Vec<_>>()
            .join("|");
        let regex = RegexBuilder::new(&pattern)
            .size_limit(64 << 20)
            .build()
            .ok();
        *guard = Arc::new(Values { set, regex });
        added
    }

    /// Number of secret values remembered.
    pub fn secret_count(&self) -> usize {
        self.values.read().expect("redactor lock").set.len()
    }

    /// `text` with every secret masked.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        if self.fragments.as_ref().is_some_and(|f| f.is_match(text)) {
            let lines: Vec<Cow<'_, str>> = text.split('\n').map(|l| self.redact_keys(l)).collect();
            if lines.iter().any(|l| matches!(l, Cow::Owned(_))) {
                out = Cow::Owned(lines.join("\n"));
            }
        }
        let values = self.values.read().expect("redactor lock").clone();
        if let Some(regex) = &values.regex
            && regex.is_match(&out)
        {
            out = Cow::Owned(regex.replace_all(&out, MASK).into_owned());
        }
        out
    }

    fn redact_keys<'l>(&self, line: &'l str) -> Cow<'l, str> {
        if let Some(c) = self.dump.captures(line)
            && self.rules.is_sensitive(&c[2])
        {
            let value = c[3].trim();
            if value == "[hidden]" || value == "null" || value.is_empty() || value.starts_with("${")
            {
                return Cow::Borrowed(line);
            }
            return Cow::Owned(format!("{}{} = {MASK}", &c[1], &c[2]));
        }
        let mut changed = false;
        let replaced = self.inline.replace_all(line, |c: &regex::Captures<'_>| {
            if self.rules.is_sensitive(&c[1]) && !c[2].starts_with("${") {
                changed = true;
                let quote = match c[2].chars().next() {
                    Some(q @ ('"' | '\'')) => q.to_string(),
                    _ => String::new(),
                };
                format!("{}={quote}{MASK}{quote}", &c[1])
            } else {
                c[0].to_string()
            }
        });
        if changed {
            Cow::Owned(replaced.into_owned())
        } else {
            Cow::Borrowed(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor() -> Redactor {
        Redactor::new(&SecretRules::default())
    }

    #[test]
    fn config_dumps_mask_sensitive_values_only() {
        let r = redactor();
        let text = "FileStreamSinkConnectorConfig values:\n\tconnection.password = hunter22\n\tfile = /tmp/out.txt\n\tsasl.jaas.config = [hidden]\n\tdb.api.key = abc123XYZ";
        let out = r.redact(text);
        assert!(
            !out.contains("hunter22") && !out.contains("abc123XYZ"),
            "{out}"
        );
        assert!(out.contains("\tfile = /tmp/out.txt"), "{out}");
        assert!(
            out.contains("\tconnection.password = ****************"),
            "{out}"
        );
        assert!(out.contains("sasl.jaas.config = [hidden]"), "{out}");
    }

    #[test]
    fn inline_credentials_are_masked_with_their_quotes() {
        let r = redactor();
        let out = r.redact(
            "jaas: org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p4ssw0rd!\"; url=jdbc:x?user=a&password=s3cr3t&ssl=true",
        );
        assert!(
            !out.contains("p4ssw0rd!") && !out.contains("s3cr3t"),
            "{out}"
        );
        assert!(out.contains("password=\"****************\""), "{out}");
        assert!(out.contains("username=\"u\""), "{out}");
        assert!(out.contains("ssl=true"), "{out}");
    }

    #[test]
    fn known_values_are_masked_anywhere_and_short_or_plain_values_are_not_secrets() {
        let r = redactor();
        assert_eq!(
            r.add_secrets(["Tr0ub4dor&3", "true", "12345678", "abc", "${file:/x:k}"]),
            1
        );
        assert_eq!(r.add_secrets(["Tr0ub4dor&3"]), 0, "already known");
        let out = r.redact("login failed for Tr0ub4dor&3 (attempt true)");
        assert_eq!(out, format!("login failed for {MASK} (attempt true)"));
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        assert_eq!(r.secret_count(), 1);
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let r = redactor();
        r.add_secrets(["secretvalue", "secretvalue-long-version"]);
        assert_eq!(
            r.redact("x secretvalue-long-version y"),
            format!("x {MASK} y")
        );
    }

    proptest! {
        #[test]
        fn a_known_secret_never_survives(
            secret in "[A-Za-z0-9!#%&]{6,24}",
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
        ) {
            prop_assume!(is_maskable(&secret));
            let r = redactor();
            r.add_secrets([secret.clone()]);
            let text = format!("{before}{secret}{after}");
            let out = r.redact(&text);
            prop_assert!(!out.contains(&secret), "{}", out);
        }
    }
}

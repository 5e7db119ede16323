//! Topics: a connector may only read or write topics under the department's prefixes.
//!
//! Checked keys: `topics` (a comma-separated list), `topic`, `kafka.topic`, the dead letter
//! queue `errors.deadletterqueue.topic.name`, a source connector's own `offsets.storage.topic`,
//! Debezium's schema-history topics, and the department's `extra_keys`; `topic.prefix` (the
//! prefix a source connector gives the topics it creates) must itself start with an allowed
//! prefix; `topics.regex` must be **provably** inside one.
//!
//! A regex is judged by the literal text every match must begin with. Connect matches the whole
//! topic name (`Pattern.matcher(topic).matches()`), so the regex is parsed (Rust regex syntax,
//! which covers what topic regexes use; anything it cannot parse is refused) and the set of
//! literal prefixes of its matches is extracted. The regex passes only when that set is finite
//! and every member starts with an allowed prefix: `dept1-orders-.*` and `dept1-(a|b)` pass,
//! `.*`, `dept.*`, `(?i)dept1-.*` (would match `DEPT1-x`) and `dept1-a|other` do not. The check
//! can refuse a regex that is in fact inside (it never accepts one that is not); the fix is to
//! start the regex with the prefix written out.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::rules::RULE_TOPICS_PREFIX;
use super::{Violation, quote_list};

/// Keys holding one topic name or a comma-separated list of them.
pub const TOPIC_NAME_KEYS: &[&str] = &[
    "topics",
    "topic",
    "kafka.topic",
    "errors.deadletterqueue.topic.name",
    "offsets.storage.topic",
    "schema.history.internal.kafka.topic",
    "database.history.kafka.topic",
];
/// Keys holding a Java regex over topic names.
pub const TOPIC_REGEX_KEYS: &[&str] = &["topics.regex"];
/// Keys holding a prefix of the topic names a source connector writes to.
pub const TOPIC_PREFIX_KEYS: &[&str] = &["topic.prefix"];

/// Checks every topic-bearing key of `config`.
pub(crate) fn check(
    config: &std::collections::BTreeMap<String, String>,
    prefixes: &[String],
    extra_keys: &[String],
    out: &mut Vec<Violation>,
) {
    if prefixes.iter().any(|p| p.is_empty()) {
        return;
    }
    let inside = |topic: &str| prefixes.iter().any(|p| topic.starts_with(p.as_str()));
    let hint = || {
        format!(
            "use topics starting with {}; ask the platform team for another prefix if needed",
            quote_list(prefixes)
        )
    };
    let name_keys = TOPIC_NAME_KEYS
        .iter()
        .copied()
        .chain(extra_keys.iter().map(String::as_str));
    for key in name_keys {
        let Some(value) = config.get(key) else {
            continue;
        };
        let outside: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !inside(t))
            .collect();
        if !outside.is_empty() {
            out.push(Violation::builtin(
                RULE_TOPICS_PREFIX,
                Some(key),
                format!(
                    "{key}: topic{} {} {} outside the department's prefixes",
                    if outside.len() == 1 { "" } else { "s" },
                    quote_list(&outside),
                    if outside.len() == 1 { "is" } else { "are" }
                ),
                hint(),
            ));
        }
    }
    for key in TOPIC_PREFIX_KEYS {
        if let Some(value) = config.get(*key)
            && !value.trim().is_empty()
            && !inside(value.trim())
        {
            out.push(Violation::builtin(
                RULE_TOPICS_PREFIX,
                Some(key),
                format!(
                    "{key} \"{}\" does not start with an allowed prefix, so the topics it names \
                     would be outside the department's",
                    value.trim()
                ),
                hint(),
            ));
        }
    }
    for key in TOPIC_REGEX_KEYS {
        if let Some(value) = config.get(*key)
            && !value.trim().is_empty()
            && let Err(why) = regex_inside(value.trim(), prefixes)
        {
            out.push(Violation::builtin(
                RULE_TOPICS_PREFIX,
                Some(key),
                format!("{key} \"{}\" {why}", value.trim()),
                format!(
                    "start the regex with an allowed prefix written out, e.g. \"{}.*\"",
                    regex_syntax::escape(&prefixes[0])
                ),
            ));
        }
    }
}

/// `Ok` when every topic name the (whole-name) regex matches starts with one of `prefixes`;
/// otherwise why that cannot be shown.
pub fn regex_inside(regex: &str, prefixes: &[String]) -> Result<(), String> {
    if prefixes.iter().any(|p| p.is_empty()) {
        return Ok(());
    }
    let hir = regex_syntax::Parser::new().parse(regex).map_err(|_| {
        "cannot be parsed, so it cannot be shown to stay inside the department's prefixes"
            .to_string()
    })?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let seq = extractor.extract(&hir);
    let Some(literals) = seq.literals() else {
        return Err(
            "can match topics that start with anything, not only the department's prefixes".into(),
        );
    };
    if literals.is_empty() {
        // A regex that matches nothing is harmless.
        return Ok(());
    }
    let outside: Vec<String> = literals
        .iter()
        .map(|lit| String::from_utf8_lossy(lit.as_bytes()).into_owned())
        .filter(|lit| !prefixes.iter().any(|p| lit.starts_with(p.as_str())))
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "can match topics starting with {}, outside the department's prefixes",
            quote_list(&outside)
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn prefixes() -> Vec<String> {
        vec!["dept1-".to_string(), "shared-dept1-".to_string()]
    }

    fn keys_of(pairs: &[(&str, &str)]) -> Vec<String> {
        let config: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut out = Vec::new();
        check(
            &config,
            &prefixes(),
            &["my.topic.key".to_string()],
            &mut out,
        );
        out.into_iter().map(|v| v.key.unwrap()).collect()
    }

    #[test]
    fn regexes_with_a_literal_prefix_inside_pass() {
        for ok in [
            "dept1-orders-.*",
            "dept1-.*",
            "^dept1-[a-z]+$",
            "dept1-(orders|payments)-v[0-9]+",
            "(dept1-a|shared-dept1-b).*",
            "dept1-orders",
            "dept1\\-x.*",
        ] {
            assert_eq!(regex_inside(ok, &prefixes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn regexes_that_can_leave_the_prefixes_are_refused() {
        for bad in [
            ".*",
            "dept.*",
            "dept1.*",
            "(?i)dept1-.*",
            "dept1-a|other",
            "[a-z]+-orders",
            "(dept1-)?orders",
            "dept[12]-.*",
            "dept1-(",
            "\\Qdept1-\\E.*",
        ] {
            assert!(regex_inside(bad, &prefixes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_prefix_allows_everything() {
        assert_eq!(regex_inside(".*", &["".to_string()]), Ok(()));
    }

    #[test]
    fn every_topic_key_is_checked() {
        assert!(
            keys_of(&[
                ("topics", "dept1-a, dept1-b"),
                ("topic.prefix", "dept1-pg-")
            ])
            .is_empty()
        );
        assert_eq!(keys_of(&[("topics", "dept1-a,orders")]), ["topics"]);
        assert_eq!(keys_of(&[("kafka.topic", "x")]), ["kafka.topic"]);
        assert_eq!(keys_of(&[("topic", "x")]), ["topic"]);
        assert_eq!(
            keys_of(&[("topic.prefix", "dept1")]),
            ["topic.prefix"],
            "the dash is part of the prefix"
        );
        assert_eq!(
            keys_of(&[("errors.deadletterqueue.topic.name", "dlq")]),
            ["errors.deadletterqueue.topic.name"]
        );
        assert_eq!(keys_of(&[("topics.regex", ".*")]), ["topics.regex"]);
        assert_eq!(keys_of(&[("my.topic.key", "other")]), ["my.topic.key"]);
        assert!(keys_of(&[("topics", " , ")]).is_empty());
    }

    proptest! {
        /// Soundness: whenever a regex is accepted, every topic it matches (as a whole name)
        /// starts with an allowed prefix.
        #[test]
        fn accepted_regexes_only_match_topics_inside(
            regex in "(dept1-|dept|shared-dept1-|de|x|\\.\\*|\\.|\\(a\\|b\\)|\\[a-c\\]|\\?|\\*|[a-z-]){1,6}",
            topic in "(dept1-|shared-dept1-|dept|de|x|a|b|c|-){1,6}",
        ) {
            if regex_inside(&regex, &prefixes()).is_ok()
                && let Ok(re) = regex::Regex::new(&format!("^(?:{regex})$"))
                && re.is_match(&topic)
            {
                prop_assert!(
                    prefixes().iter().any(|p| topic.starts_with(p.as_str())),
                    "{regex} accepted but matches {topic}"
                );
            }
        }
    }
}

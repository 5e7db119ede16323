//! Connector names: the department prefix, the pattern, the length limit and reserved prefixes.
//!
//! Reserved prefixes are matched on whole dash-separated segments, in two places: the first
//! segment of the name (`connect-x`) and the first segment after the department prefix
//! (`dept1-connect-x`, which would read like the department's own Connect group
//! `dept1-connect-<pool>` and its internal topics). A reserved word elsewhere is fine
//! (`dept1-pg-admin-sink`), and so is a longer word that merely begins with it
//! (`dept1-administration-sync`), because segments, not characters, carry meaning in the
//! `<department>-<source>-<type>-<env>-<suffix>` convention.

use super::rules::{
    NamingRules, RULE_NAMING_LENGTH, RULE_NAMING_PATTERN, RULE_NAMING_PREFIX, RULE_NAMING_RESERVED,
};
use super::{NAME_KEY, Violation};

/// Checks `name` of a connector of department `department`.
pub(crate) fn check(
    rules: &NamingRules,
    department: &str,
    name: &str,
    enabled: &dyn Fn(&str) -> bool,
    out: &mut Vec<Violation>,
) {
    let prefix = format!("{department}-");
    let has_prefix = name.starts_with(&prefix) && name.len() > prefix.len();
    if enabled(RULE_NAMING_PREFIX) && rules.require_department_prefix && !has_prefix {
        out.push(Violation::builtin(
            RULE_NAMING_PREFIX,
            Some(NAME_KEY),
            format!("connector name \"{name}\" does not start with \"{prefix}\""),
            format!(
                "name it {prefix}<source>-<type>-<env>-<suffix>, e.g. {prefix}postgres-source-prod-001"
            ),
        ));
    }
    if enabled(RULE_NAMING_PATTERN) && !rules.pattern.0.is_match(name) {
        out.push(Violation::builtin(
            RULE_NAMING_PATTERN,
            Some(NAME_KEY),
            format!(
                "connector name \"{name}\" does not match the pattern {}",
                rules.pattern.0.as_str()
            ),
            "use lowercase letters and digits in groups separated by single dashes",
        ));
    }
    let length = name.chars().count();
    if enabled(RULE_NAMING_LENGTH) && length > rules.max_length {
        out.push(Violation::builtin(
            RULE_NAMING_LENGTH,
            Some(NAME_KEY),
            format!(
                "connector name is {length} characters long, more than the limit of {}",
                rules.max_length
            ),
            format!(
                "shorten the name to {} characters or fewer",
                rules.max_length
            ),
        ));
    }
    if enabled(RULE_NAMING_RESERVED) {
        let first = name.split('-').next().unwrap_or(name);
        let after_prefix = name
            .strip_prefix(&prefix)
            .map(|rest| rest.split('-').next().unwrap_or(rest));
        for reserved in &rules.reserved_prefixes {
            let at_start = first == reserved;
            let after_department = after_prefix == Some(reserved.as_str());
            if at_start || after_department {
                let place = if at_start {
                    "starts with".to_string()
                } else {
                    format!("continues \"{prefix}\" with")
                };
                out.push(Violation::builtin(
                    RULE_NAMING_RESERVED,
                    Some(NAME_KEY),
                    format!("connector name \"{name}\" {place} the reserved prefix \"{reserved}\""),
                    format!(
                        "the prefixes {} are reserved for the platform; describe the data \
                         source instead, e.g. {prefix}postgres-source-prod-001",
                        super::quote_list(&rules.reserved_prefixes)
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(name: &str) -> Vec<String> {
        let mut out = Vec::new();
        check(&NamingRules::default(), "dept1", name, &|_| true, &mut out);
        out.iter().map(|v| v.rule.clone()).collect()
    }

    #[test]
    fn a_conventional_name_passes() {
        assert!(rules_of("dept1-postgres-source-prod-001").is_empty());
    }

    #[test]
    fn the_department_prefix_is_required_with_its_dash_and_a_rest() {
        assert_eq!(rules_of("dept2-postgres-source"), [RULE_NAMING_PREFIX]);
        assert_eq!(rules_of("dept1postgres"), [RULE_NAMING_PREFIX]);
        assert_eq!(rules_of("dept1"), [RULE_NAMING_PREFIX]);
        assert_eq!(
            rules_of("dept1-"),
            [RULE_NAMING_PREFIX, RULE_NAMING_PATTERN]
        );
        assert_eq!(rules_of("dept10-x"), [RULE_NAMING_PREFIX]);
    }

    #[test]
    fn the_pattern_refuses_uppercase_underscores_and_double_dashes() {
        for name in [
            "dept1-Orders",
            "dept1-orders_sink",
            "dept1--orders",
            "dept1-orders-",
            "dept1-ö",
        ] {
            assert_eq!(rules_of(name), [RULE_NAMING_PATTERN], "{name}");
        }
    }

    #[test]
    fn sixty_four_characters_pass_and_sixty_five_do_not() {
        let base = "dept1-";
        let name64 = format!("{base}{}", "a".repeat(64 - base.len()));
        let name65 = format!("{base}{}", "a".repeat(65 - base.len()));
        assert_eq!(name64.len(), 64);
        assert!(rules_of(&name64).is_empty());
        assert_eq!(rules_of(&name65), [RULE_NAMING_LENGTH]);
    }

    #[test]
    fn reserved_prefixes_count_at_the_start_and_after_the_department_only() {
        assert_eq!(rules_of("dept1-connect-orders"), [RULE_NAMING_RESERVED]);
        assert_eq!(rules_of("dept1-admin"), [RULE_NAMING_RESERVED]);
        assert_eq!(
            rules_of("confluent-orders"),
            [RULE_NAMING_PREFIX, RULE_NAMING_RESERVED]
        );
        // Inside the name, or as the start of a longer word: allowed.
        assert!(rules_of("dept1-pg-connect-sink").is_empty());
        assert!(rules_of("dept1-orders-system").is_empty());
        assert!(rules_of("dept1-administration-sync").is_empty());
        assert!(rules_of("dept1-connectors-x").is_empty());
    }

    #[test]
    fn a_disabled_rule_reports_nothing() {
        let mut out = Vec::new();
        check(
            &NamingRules::default(),
            "dept1",
            "other-connect-X",
            &|rule| rule != RULE_NAMING_PATTERN,
            &mut out,
        );
        let rules: Vec<String> = out.iter().map(|v| v.rule.clone()).collect();
        assert_eq!(rules, [RULE_NAMING_PREFIX]);
    }
}

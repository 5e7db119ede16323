//! Connector and task quotas: refused when exceeded, never clamped.
//!
//! Tasks are counted as each connector's `tasks.max` (what it may run, Connect's default 1), so
//! a connector cannot grow past the quota later without an update that passes this check. An
//! update replaces the connector's own tasks instead of adding to them.

use serde::Serialize;

use super::rules::{
    QuotaRules, RULE_CONFIG_TASKS_MAX, RULE_QUOTA_CONNECTORS, RULE_QUOTA_TASKS_PER_CONNECTOR,
    RULE_QUOTA_TASKS_TOTAL,
};
use super::{TASKS_MAX_KEY, Violation};

/// What the department holds now, from what actually runs (or, for `validate`, from the files
/// checked before this one plus what runs, when known).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectorUsage {
    /// Connectors of the department, this one included when it exists already.
    pub connectors: u32,
    /// Sum of `tasks.max` of those connectors.
    pub tasks: u32,
    /// `tasks.max` of this connector when it exists already (update), counted in `tasks`.
    pub connector_tasks: Option<u32>,
}

pub use crate::model::policy::tasks_max;

/// Checks the quotas for a connector asking for `tasks_max_value` tasks; returns the tasks it
/// would hold (1 when the value is unusable, so totals stay meaningful).
pub(crate) fn check(
    quotas: &QuotaRules,
    usage: &ConnectorUsage,
    tasks_max_value: Option<&str>,
    enabled: &dyn Fn(&str) -> bool,
    out: &mut Vec<Violation>,
) -> u32 {
    let tasks = match tasks_max(tasks_max_value) {
        Ok(n) => n,
        Err(message) => {
            if enabled(RULE_CONFIG_TASKS_MAX) {
                out.push(Violation::builtin(
                    RULE_CONFIG_TASKS_MAX,
                    Some(TASKS_MAX_KEY),
                    message,
                    "set tasks.max to a whole number of tasks, e.g. \"1\"",
                ));
            }
            1
        }
    };
    let is_new = usage.connector_tasks.is_none();
    if enabled(RULE_QUOTA_CONNECTORS) && is_new && usage.connectors >= quotas.max_connectors {
        out.push(Violation::builtin(
            RULE_QUOTA_CONNECTORS,
            None,
            format!(
                "the department already has {} connector{}, the limit is {}",
                usage.connectors,
                if usage.connectors == 1 { "" } else { "s" },
                quotas.max_connectors
            ),
            "delete a connector that is no longer needed, or ask the platform team to raise \
             policy.quotas.max_connectors",
        ));
    }
    if enabled(RULE_QUOTA_TASKS_PER_CONNECTOR) && tasks > quotas.max_tasks_per_connector {
        out.push(Violation::builtin(
            RULE_QUOTA_TASKS_PER_CONNECTOR,
            Some(TASKS_MAX_KEY),
            format!(
                "tasks.max is {tasks}, above the limit of {} tasks per connector",
                quotas.max_tasks_per_connector
            ),
            format!(
                "set tasks.max to {} or less (it is refused, not lowered for you)",
                quotas.max_tasks_per_connector
            ),
        ));
    }
    let total = u64::from(usage.tasks)
        - u64::from(usage.connector_tasks.unwrap_or(0).min(usage.tasks))
        + u64::from(tasks);
    if enabled(RULE_QUOTA_TASKS_TOTAL) && total > u64::from(quotas.max_tasks_total) {
        out.push(Violation::builtin(
            RULE_QUOTA_TASKS_TOTAL,
            Some(TASKS_MAX_KEY),
            format!(
                "tasks.max {tasks} would bring the department to {total} tasks, above its limit \
                 of {}",
                quotas.max_tasks_total
            ),
            format!(
                "lower tasks.max to {} or less, free tasks elsewhere, or ask the platform team \
                 to raise policy.quotas.max_tasks_total",
                (u64::from(quotas.max_tasks_total) + u64::from(tasks)).saturating_sub(total)
            ),
        ));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const QUOTAS: QuotaRules = QuotaRules {
        max_connectors: 3,
        max_tasks_per_connector: 4,
        max_tasks_total: 10,
    };

    fn rules_of(usage: ConnectorUsage, tasks: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        check(&QUOTAS, &usage, tasks, &|_| true, &mut out);
        out.into_iter().map(|v| v.rule).collect()
    }

    fn new_connector(connectors: u32, tasks: u32) -> ConnectorUsage {
        ConnectorUsage {
            connectors,
            tasks,
            connector_tasks: None,
        }
    }

    #[test]
    fn tasks_max_defaults_to_one_and_must_be_positive() {
        assert_eq!(tasks_max(None), Ok(1));
        assert_eq!(tasks_max(Some(" 4 ")), Ok(4));
        assert!(tasks_max(Some("0")).is_err());
        assert!(tasks_max(Some("-2")).is_err());
        assert!(tasks_max(Some("two")).is_err());
        assert!(tasks_max(Some("1.5")).is_err());
        assert_eq!(
            rules_of(new_connector(0, 0), Some("x")),
            [RULE_CONFIG_TASKS_MAX]
        );
    }

    #[test]
    fn exactly_at_each_limit_passes_and_one_more_is_refused() {
        // The third connector (limit 3) is fine, the fourth is not.
        assert!(rules_of(new_connector(2, 2), Some("1")).is_empty());
        assert_eq!(
            rules_of(new_connector(3, 3), Some("1")),
            [RULE_QUOTA_CONNECTORS]
        );
        // tasks.max 4 (limit 4) passes, 5 does not.
        assert!(rules_of(new_connector(0, 0), Some("4")).is_empty());
        assert_eq!(
            rules_of(new_connector(0, 0), Some("5")),
            [RULE_QUOTA_TASKS_PER_CONNECTOR]
        );
        // 6 + 4 = 10 tasks (limit 10) passes, 7 + 4 does not.
        assert!(rules_of(new_connector(2, 6), Some("4")).is_empty());
        assert_eq!(
            rules_of(new_connector(2, 7), Some("4")),
            [RULE_QUOTA_TASKS_TOTAL]
        );
    }

    #[test]
    fn an_update_replaces_its_own_tasks_and_does_not_count_as_a_new_connector() {
        let update = ConnectorUsage {
            connectors: 3,
            tasks: 10,
            connector_tasks: Some(4),
        };
        assert!(
            rules_of(update, Some("4")).is_empty(),
            "same size: unchanged totals"
        );
        assert!(rules_of(update, Some("2")).is_empty());
        let full = ConnectorUsage {
            connectors: 3,
            tasks: 9,
            connector_tasks: Some(3),
        };
        assert!(rules_of(full, Some("4")).is_empty(), "9 - 3 + 4 = 10");
        let over = ConnectorUsage {
            connectors: 3,
            tasks: 10,
            connector_tasks: Some(3),
        };
        assert_eq!(rules_of(over, Some("4")), [RULE_QUOTA_TASKS_TOTAL]);
    }

    #[test]
    fn every_exceeded_quota_is_reported_at_once() {
        assert_eq!(
            rules_of(new_connector(3, 10), Some("5")),
            [
                RULE_QUOTA_CONNECTORS,
                RULE_QUOTA_TASKS_PER_CONNECTOR,
                RULE_QUOTA_TASKS_TOTAL
            ]
        );
    }

    proptest! {
        /// The verdict equals the quota arithmetic, for creates and updates alike.
        #[test]
        fn verdicts_match_the_arithmetic(
            connectors in 0u32..8,
            others in 0u32..20,
            own in proptest::option::of(1u32..8),
            asked in 1u32..12,
        ) {
            let usage = ConnectorUsage {
                connectors,
                tasks: others + own.unwrap_or(0),
                connector_tasks: own,
            };
            let text = asked.to_string();
            let got = rules_of(usage, Some(&text));
            let want_connectors = own.is_none() && connectors >= QUOTAS.max_connectors;
            let want_per = asked > QUOTAS.max_tasks_per_connector;
            let want_total = others + asked > QUOTAS.max_tasks_total;
            prop_assert_eq!(got.contains(&RULE_QUOTA_CONNECTORS.to_string()), want_connectors);
            prop_assert_eq!(got.contains(&RULE_QUOTA_TASKS_PER_CONNECTOR.to_string()), want_per);
            prop_assert_eq!(got.contains(&RULE_QUOTA_TASKS_TOTAL.to_string()), want_total);
            prop_assert_eq!(got.len(), usize::from(want_connectors) + usize::from(want_per) + usize::from(want_total));
        }

        /// Never clamped: whatever is asked, the returned task count is what was asked.
        #[test]
        fn never_clamped(asked in 1u32..10_000) {
            let mut out = Vec::new();
            let text = asked.to_string();
            let tasks = check(&QUOTAS, &ConnectorUsage::default(), Some(&text), &|_| true, &mut out);
            prop_assert_eq!(tasks, asked);
        }
    }
}

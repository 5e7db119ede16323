//! Where a connector runs: the only place a connector's pool is resolved from its config
//! (`supervisor.pool`, else the department's default pool). The guardrails are given the pool
//! resolved here ([`crate::policy::ConnectorRequest::pool`]) instead of deriving it again.
//!
//! Pure: the department and the config in, a pool name or the problem out.

use std::collections::BTreeMap;

use crate::model::Department;
use crate::translate::POOL_CONFIG_KEY;

/// Where a new connector with `config` goes: the pool `supervisor.pool` names (exactly as
/// written), or the department's default pool; `Err` says what is wrong, as the API lists it.
pub fn place(department: &Department, config: &BTreeMap<String, String>) -> Result<String, String> {
    match config.get(POOL_CONFIG_KEY) {
        None => Ok(department.default_pool.clone()),
        Some(pool) if department.pool(pool).is_some() => Ok(pool.clone()),
        Some(pool) => Err(unknown_pool(department, pool)),
    }
}

/// Where a new connector is created: [`place`], or the default pool when `supervisor.pool`
/// names no pool (the request is refused for it, and the lookups before the refusal go to the
/// default pool).
pub fn place_or_default(department: &Department, config: &BTreeMap<String, String>) -> String {
    place(department, config).unwrap_or_else(|_| department.default_pool.clone())
}

/// The pool the guardrails judge a connector on: `supervisor.pool` without surrounding spaces,
/// or the default pool. It may name no pool of the department: the review then reports it
/// (`connect-supervisor validate`), unless the caller has already ([`place`]'s problem).
pub fn judged_pool(department: &Department, config: &BTreeMap<String, String>) -> String {
    config
        .get(POOL_CONFIG_KEY)
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| department.default_pool.clone())
}

/// Whether the caller reports `config`'s pool as unknown itself ([`place`] fails for it the way
/// the guardrails would: the trimmed name is no pool either), so the review need not.
pub fn unknown_pool_reported(department: &Department, config: &BTreeMap<String, String>) -> bool {
    config
        .get(POOL_CONFIG_KEY)
        .is_some_and(|p| department.pool(p.trim()).is_none())
}

/// The problem with an update of connector `name` (running on `pool`) whose `config` names
/// another pool: a connector does not move by an update.
pub fn check_move(
    department: &Department,
    name: &str,
    pool: &str,
    config: &BTreeMap<String, String>,
) -> Option<String> {
    let wanted = config.get(POOL_CONFIG_KEY)?;
    if wanted == pool {
        return None;
    }
    if department.pool(wanted).is_none() {
        return Some(unknown_pool(department, wanted));
    }
    Some(format!(
        "config.\"{POOL_CONFIG_KEY}\": connector {name} runs on pool {pool}; moving it to pool {wanted} is not done by an update: delete it and create it on {wanted} (carry its offsets over with the create's offsets)"
    ))
}

fn unknown_pool(department: &Department, pool: &str) -> String {
    let pools: Vec<&str> = department.pools.iter().map(|p| p.name.as_str()).collect();
    format!(
        "config.\"{POOL_CONFIG_KEY}\": no pool is named \"{pool}\"; use one of: {}",
        pools.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::connectors::fixture::{config, department};

    #[test]
    fn a_connector_goes_to_the_pool_it_names_or_the_default_pool() {
        let d = department();
        assert_eq!(place(&d, &config(&[])).unwrap(), "shared");
        assert_eq!(
            place(&d, &config(&[("supervisor.pool", "heavy")])).unwrap(),
            "heavy"
        );
        let unknown = config(&[("supervisor.pool", "nope")]);
        assert_eq!(
            place(&d, &unknown).unwrap_err(),
            "config.\"supervisor.pool\": no pool is named \"nope\"; use one of: shared, heavy"
        );
        assert_eq!(place_or_default(&d, &unknown), "shared");
        // Exactly as written for placement; trimmed for the review, which judges it.
        let spaced = config(&[("supervisor.pool", " heavy ")]);
        assert!(place(&d, &spaced).is_err());
        assert_eq!(judged_pool(&d, &spaced), "heavy");
        assert_eq!(judged_pool(&d, &unknown), "nope");
        assert_eq!(judged_pool(&d, &config(&[])), "shared");
        assert!(!unknown_pool_reported(&d, &spaced));
        assert!(unknown_pool_reported(&d, &unknown));
        assert!(!unknown_pool_reported(&d, &config(&[])));
    }

    #[test]
    fn an_update_does_not_move_a_connector() {
        let d = department();
        assert_eq!(check_move(&d, "dept1-a", "heavy", &config(&[])), None);
        assert_eq!(
            check_move(
                &d,
                "dept1-a",
                "heavy",
                &config(&[("supervisor.pool", "heavy")])
            ),
            None
        );
        let moved = check_move(
            &d,
            "dept1-a",
            "heavy",
            &config(&[("supervisor.pool", "shared")]),
        )
        .unwrap();
        assert!(
            moved.starts_with("config.\"supervisor.pool\": connector dept1-a runs on pool heavy; moving it to pool shared is not done by an update"),
            "{moved}"
        );
        let unknown = check_move(
            &d,
            "dept1-a",
            "heavy",
            &config(&[("supervisor.pool", "nope")]),
        )
        .unwrap();
        assert!(unknown.contains("no pool is named \"nope\""), "{unknown}");
    }

    proptest! {
        #[test]
        fn placement_is_the_named_pool_exactly_when_it_exists(name in "[ a-z]{0,7}") {
            let d = department();
            let cfg = config(&[("supervisor.pool", &name)]);
            match place(&d, &cfg) {
                Ok(pool) => {
                    prop_assert_eq!(&pool, &name);
                    prop_assert!(d.pool(&pool).is_some());
                }
                Err(problem) => {
                    prop_assert!(d.pool(&name).is_none());
                    prop_assert!(problem.contains(&format!("\"{name}\"")), "{}", problem);
                    prop_assert_eq!(place_or_default(&d, &cfg), "shared");
                }
            }
            // The review is told about an unknown pool only when placement refused it too.
            if unknown_pool_reported(&d, &cfg) {
                prop_assert!(place(&d, &cfg).is_err());
            }
        }
    }
}

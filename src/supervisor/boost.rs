//! The start-up CPU boost: how much CPU a starting worker may borrow from the department's
//! unused budget. Pure arithmetic; the supervisor raises the worker's quota by the grant when it
//! spawns it and drops it back to the limit when the worker is ready (or its process ends).
//!
//! The grant comes out of `budget.cpu` minus every worker's own limit minus the grants already
//! out, so the quotas of all workers together never exceed the department budget. Why not the
//! kernel's burst allowance (`cpu.cfs_burst_us`, `cpu.max.burst`): the kernel caps the burst at
//! the quota itself and only fills it with runtime the cgroup left unused in earlier periods, which
//! a JVM that has just started has not had time to save; it cannot give a start more than its
//! quota.

/// What a starting worker may get, in millicores on top of its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoostRequest {
    /// The department's CPU budget.
    pub budget_millis: u32,
    /// The own limits of every worker of the department (this one included).
    pub limits_millis: u64,
    /// Grants already out to other starting workers.
    pub granted_millis: u64,
    /// This worker's own limit.
    pub limit_millis: u32,
    /// `startup_cpu_max`: most CPU a starting worker gets, its limit included.
    pub max_millis: Option<u32>,
    /// The host's CPUs: a quota above them buys nothing.
    pub host_millis: u32,
}

/// The grant: the unused budget, capped by `startup_cpu_max` and the host's CPUs (0 when there
/// is nothing to give).
pub fn grant(r: &BoostRequest) -> u32 {
    let unused = u64::from(r.budget_millis)
        .saturating_sub(r.limits_millis)
        .saturating_sub(r.granted_millis);
    let cap = r
        .max_millis
        .unwrap_or(u32::MAX)
        .min(r.host_millis)
        .saturating_sub(r.limit_millis);
    unused.min(u64::from(cap)) as u32
}

/// The host's CPUs in millicores (what the kernel lets this process run on).
pub fn host_millis() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> BoostRequest {
        BoostRequest {
            budget_millis: 4000,
            limits_millis: 2000,
            granted_millis: 0,
            limit_millis: 1000,
            max_millis: None,
            host_millis: 8000,
        }
    }

    #[test]
    fn the_unused_budget_is_granted_within_the_caps() {
        assert_eq!(grant(&request()), 2000);
        let r = BoostRequest {
            granted_millis: 1500,
            ..request()
        };
        assert_eq!(grant(&r), 500, "another start holds part of it");
        let r = BoostRequest {
            max_millis: Some(1500),
            ..request()
        };
        assert_eq!(grant(&r), 500, "startup_cpu_max includes the limit");
        let r = BoostRequest {
            host_millis: 2000,
            ..request()
        };
        assert_eq!(grant(&r), 1000, "no more than the host has");
        let r = BoostRequest {
            limits_millis: 4000,
            ..request()
        };
        assert_eq!(grant(&r), 0, "a department without headroom gets no boost");
    }

    proptest! {
        #[test]
        fn quotas_together_never_exceed_the_budget(
            budget in 1u32..64_000,
            limits in proptest::collection::vec(1u32..8000, 1..12),
            max in proptest::option::of(1u32..16_000),
            host in 1000u32..64_000,
        ) {
            // Every worker starts at once, each asking in turn.
            let total: u64 = limits.iter().map(|l| u64::from(*l)).sum();
            prop_assume!(total <= u64::from(budget));
            let mut granted = 0u64;
            for limit in &limits {
                let g = grant(&BoostRequest {
                    budget_millis: budget,
                    limits_millis: total,
                    granted_millis: granted,
                    limit_millis: *limit,
                    max_millis: max,
                    host_millis: host,
                });
                if let Some(max) = max {
                    prop_assert!(g == 0 || limit + g <= max.max(*limit));
                }
                prop_assert!(g == 0 || limit + g <= host.max(*limit));
                granted += u64::from(g);
            }
            prop_assert!(total + granted <= u64::from(budget));
        }
    }
}

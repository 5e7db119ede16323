//! Exponential backoff with jitter: the one formula behind worker restarts (the supervisor's
//! lifecycle) and connector restarts (the connector watch).
//!
//! The `n`-th wait is `min * 2^(n-1)`, capped at `max`, plus up to [`JITTER`] of itself so that
//! what failed together (a broker outage) does not all come back in the same instant, capped at
//! `max` again and never below `min` (nor `max`, should a caller give `min > max`). Pure: the
//! caller brings the jitter sample.

use std::time::Duration;

/// Largest share of a wait added as jitter.
pub const JITTER: f64 = 0.2;

/// Doublings after which the wait stops growing: `2^63` nanoseconds are 292 years, past any
/// `max`, even from a 1 ns `min`.
const MAX_DOUBLINGS: u32 = 63;

/// The wait before attempt `attempt` (from 1) with `jitter` in `[0, 1)` (clamped to it).
pub fn delay(min: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let mut base = min;
    for _ in 0..attempt.saturating_sub(1).min(MAX_DOUBLINGS) {
        if base >= max {
            break;
        }
        base = base.saturating_mul(2);
    }
    let base = base.min(max);
    base.mul_f64(1.0 + JITTER * jitter.clamp(0.0, 1.0))
        .min(max)
        .max(min.min(max))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn waits_double_from_min_up_to_max() {
        let waits: Vec<u64> = (1..=8)
            .map(|n| delay(S(1), S(30), n, 0.0).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            delay(S(1), S(30), 0, 0.0),
            S(1),
            "attempt 0 counts as the first"
        );
        assert_eq!(delay(S(1), S(30), u32::MAX, 0.9), S(30));
        let tiny = Duration::from_nanos(1);
        assert_eq!(
            delay(tiny, S(60), 40, 0.0),
            S(60),
            "a tiny min still reaches max"
        );
    }

    #[test]
    fn jitter_adds_at_most_its_share_and_never_passes_max() {
        assert_eq!(delay(S(10), S(600), 1, 0.5), S(11));
        assert_eq!(
            delay(S(10), S(600), 1, 7.0),
            S(12),
            "jitter is clamped to 1"
        );
        assert_eq!(delay(S(10), S(11), 1, 0.99), S(11));
    }

    #[test]
    fn a_min_above_max_gives_max() {
        assert_eq!(delay(S(60), S(5), 3, 0.5), S(5));
    }

    proptest! {
        /// Any bounds (a `min` above `max` included), any attempt, any jitter sample.
        #[test]
        fn waits_stay_between_the_bounds_and_grow(
            bounds in (0u64..100_000, 0u64..100_000),
            attempt in 0u32..300,
            sample in -1.0f64..2.0,
        ) {
            let min = Duration::from_millis(bounds.0);
            let max = Duration::from_millis(bounds.1);
            let wait = delay(min, max, attempt, sample);
            prop_assert!(wait <= max, "{wait:?} over {max:?}");
            prop_assert!(wait >= min.min(max), "{wait:?} under {min:?}");
            let next = delay(min, max, attempt.saturating_add(1), 0.0);
            prop_assert!(next >= delay(min, max, attempt, 0.0));
        }
    }
}

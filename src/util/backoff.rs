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

/// Doublings after which the wait stops growing (`min * 2^31` is past any sensible `max`).
const MAX_DOUBLINGS: u32 = 31;

/// The wait before attempt `attempt` (from 1) with `jitter` in `[0, 1)` (clamped to it).
pub fn delay(min: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(MAX_DOUBLINGS);
    let base = min.saturating_mul(1u32 << doublings).min(max);
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
        #[test]
        fn waits_stay_within_min_and_max_and_never_shrink(
            min_ms in 1u64..20_000,
            extra_ms in 0u64..600_000,
            attempt in 1u32..200,
            jitter in 0.0f64..1.0,
        ) {
            let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(min_ms + extra_ms));
            let d = delay(min, max, attempt, jitter);
            prop_assert!(d >= min && d <= max, "{d:?}");
            let plain = delay(min, max, attempt, 0.0);
            prop_assert!(d >= plain);
            prop_assert!(d.as_secs_f64() <= plain.as_secs_f64() * (1.0 + JITTER) + 1e-9);
            prop_assert!(delay(min, max, attempt + 1, 0.0) >= plain);
        }
    }
}

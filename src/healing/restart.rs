//! The automatic restart budget of one connector: the pure state machine behind auto-restart.
//!
//! Like Strimzi's `autoRestart` (first restart at once, then growing waits, a maximum, a reset
//! after a healthy period) but measured in seconds rather than minutes: the connector watch polls
//! every few seconds. The wait before restart `n + 1` is `backoff_min * 2^(n-1)` plus up to 20 %
//! jitter, capped at `backoff_max`. Restarts of the worker a connector ran on count in the same
//! budget ([`Tracker::charge`]). A connector that fails with its budget spent is *held*: no more
//! automatic restarts until an operator restarts it ([`Tracker::release`]).
//!
//! No I/O and no clock: the shell passes the time and the jitter.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::AutoRestartSettings;

/// What the status poll saw of a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolledHealth {
    /// The connector or one of its tasks is FAILED.
    Failed,
    /// The connector and all its tasks are RUNNING.
    Healthy,
    /// Paused, stopped, unassigned or restarting: no decision.
    Other,
}

/// What the watch should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It started failing (report the error).
    NewFailure,
    /// Restart its failed parts now; `attempt` restarts are now in the budget.
    Restart {
        /// Restarts in the budget, this one included.
        attempt: u32,
    },
    /// The budget is spent: hold it (report once).
    Hold {
        /// Restarts spent.
        attempts: u32,
    },
    /// It runs again after `attempts` restarts.
    Recovered {
        /// Restarts it took.
        attempts: u32,
    },
    /// Healthy long enough: the budget is full again.
    Reset,
}

/// The restart budget of one connector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracker {
    /// Restarts in the budget (automatic ones and those of its worker).
    pub attempts: u32,
    /// When the last restart was.
    pub last_restart: Option<Instant>,
    /// The earliest time of the next automatic restart.
    pub next_at: Option<Instant>,
    /// No more automatic restarts until an operator restarts it.
    pub held: bool,
    /// Failing right now.
    pub failing: bool,
    /// Healthy since.
    pub healthy_since: Option<Instant>,
}

/// The wait after restart number `attempts` (>= 1), with `jitter` in `[0, 1)`.
pub fn delay(attempts: u32, settings: &AutoRestartSettings, jitter: f64) -> Duration {
    crate::util::backoff::delay(settings.backoff_min, settings.backoff_max, attempts, jitter)
}

impl Tracker {
    /// Takes what the poll saw at `now`; returns what to do.
    pub fn observe(
        &mut self,
        health: PolledHealth,
        now: Instant,
        settings: &AutoRestartSettings,
        jitter: f64,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        match health {
            PolledHealth::Failed => {
                self.healthy_since = None;
                if !self.failing {
                    self.failing = true;
                    out.push(Decision::NewFailure);
                }
                if self.held || !settings.enabled {
                    return out;
                }
                if self.attempts >= settings.max_restarts {
                    self.held = true;
                    out.push(Decision::Hold {
                        attempts: self.attempts,
                    });
                    return out;
                }
                if self.next_at.is_none_or(|t| now >= t) {
                    self.attempts += 1;
                    self.last_restart = Some(now);
                    self.next_at = Some(now + delay(self.attempts, settings, jitter));
                    out.push(Decision::Restart {
                        attempt: self.attempts,
                    });
                }
            }
            PolledHealth::Healthy => {
                if self.failing {
                    self.failing = false;
                    if self.attempts > 0 {
                        out.push(Decision::Recovered {
                            attempts: self.attempts,
                        });
                    }
                }
                let since = *self.healthy_since.get_or_insert(now);
                if self.attempts > 0 && !self.held && now - since >= settings.reset_after {
                    self.attempts = 0;
                    self.next_at = None;
                    out.push(Decision::Reset);
                }
            }
            PolledHealth::Other => {
                self.healthy_since = None;
            }
        }
        out
    }

    /// Counts the restart of the worker the connector ran on; returns the restarts now in the
    /// budget (`None` when held: nothing more is counted).
    pub fn charge(
        &mut self,
        now: Instant,
        settings: &AutoRestartSettings,
        jitter: f64,
    ) -> Option<u32> {
        if self.held {
            return None;
        }
        self.attempts = self.attempts.saturating_add(1);
        self.last_restart = Some(now);
        self.next_at = Some(now + delay(self.attempts, settings, jitter));
        self.healthy_since = None;
        Some(self.attempts)
    }

    /// An operator restarted the connector: its hold is released and its budget is full.
    /// Returns whether it was held.
    pub fn release(&mut self) -> bool {
        let was = self.held;
        *self = Self::default();
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::backoff::JITTER;
    use proptest::prelude::*;

    fn settings() -> AutoRestartSettings {
        AutoRestartSettings {
            enabled: true,
            interval: Duration::from_secs(1),
            backoff_min: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            max_restarts: 4,
            reset_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_first_restart_is_immediate_and_the_next_ones_wait_longer() {
        let s = settings();
        let t0 = Instant::now();
        let mut t = Tracker::default();
        assert_eq!(
            t.observe(PolledHealth::Failed, t0, &s, 0.0),
            [Decision::NewFailure, Decision::Restart { attempt: 1 }]
        );
        // Still failing right after: wait backoff_min.
        assert!(
            t.observe(PolledHealth::Failed, t0 + Duration::from_secs(9), &s, 0.0)
                .is_empty()
        );
        assert_eq!(
            t.observe(PolledHealth::Failed, t0 + Duration::from_secs(10), &s, 0.0),
            [Decision::Restart { attempt: 2 }]
        );
        // Then 20 s, then 40 s.
        let t1 = t0 + Duration::from_secs(10);
        assert!(
            t.observe(PolledHealth::Failed, t1 + Duration::from_secs(19), &s, 0.0)
                .is_empty()
        );
        assert_eq!(
            t.observe(PolledHealth::Failed, t1 + Duration::from_secs(20), &s, 0.0),
            [Decision::Restart { attempt: 3 }]
        );
    }

    #[test]
    fn a_connector_that_keeps_failing_is_held_after_the_maximum() {
        let s = settings();
        let mut now = Instant::now();
        let mut t = Tracker::default();
        let mut restarts = 0;
        let mut holds = 0;
        for _ in 0..200 {
            for d in t.observe(PolledHealth::Failed, now, &s, 0.5) {
                match d {
                    Decision::Restart { .. } => restarts += 1,
                    Decision::Hold { attempts } => {
                        holds += 1;
                        assert_eq!(attempts, 4);
                    }
                    _ => {}
                }
            }
            now += Duration::from_secs(5);
        }
        assert_eq!(
            (restarts, holds),
            (4, 1),
            "held once, never restarted again"
        );
        assert!(t.held);
        assert!(t.release());
        assert_eq!(
            t.observe(PolledHealth::Failed, now, &s, 0.0),
            [Decision::NewFailure, Decision::Restart { attempt: 1 }],
            "a released connector starts with a full budget"
        );
    }

    #[test]
    fn recovery_is_reported_and_the_budget_resets_after_a_healthy_period() {
        let s = settings();
        let t0 = Instant::now();
        let mut t = Tracker::default();
        t.observe(PolledHealth::Failed, t0, &s, 0.0);
        assert_eq!(
            t.observe(PolledHealth::Healthy, t0 + Duration::from_secs(5), &s, 0.0),
            [Decision::Recovered { attempts: 1 }]
        );
        assert!(
            t.observe(
                PolledHealth::Healthy,
                t0 + Duration::from_secs(200),
                &s,
                0.0
            )
            .is_empty()
        );
        assert_eq!(
            t.observe(
                PolledHealth::Healthy,
                t0 + Duration::from_secs(305),
                &s,
                0.0
            ),
            [Decision::Reset]
        );
        assert_eq!(t.attempts, 0);
        // A pause interrupts the healthy period.
        t.charge(t0 + Duration::from_secs(400), &s, 0.0);
        t.observe(
            PolledHealth::Healthy,
            t0 + Duration::from_secs(400),
            &s,
            0.0,
        );
        t.observe(PolledHealth::Other, t0 + Duration::from_secs(500), &s, 0.0);
        assert!(
            t.observe(
                PolledHealth::Healthy,
                t0 + Duration::from_secs(710),
                &s,
                0.0
            )
            .is_empty()
        );
        assert_eq!(t.attempts, 1);
    }

    #[test]
    fn worker_restarts_spend_the_same_budget() {
        let s = settings();
        let t0 = Instant::now();
        let mut t = Tracker::default();
        for i in 1..=4 {
            assert_eq!(t.charge(t0, &s, 0.0), Some(i));
        }
        assert_eq!(
            t.observe(PolledHealth::Failed, t0 + Duration::from_secs(600), &s, 0.0),
            [Decision::NewFailure, Decision::Hold { attempts: 4 }]
        );
        assert_eq!(
            t.charge(t0, &s, 0.0),
            None,
            "a held connector is not charged"
        );
    }

    #[test]
    fn disabled_auto_restart_only_reports() {
        let s = AutoRestartSettings {
            enabled: false,
            ..settings()
        };
        let mut t = Tracker::default();
        assert_eq!(
            t.observe(PolledHealth::Failed, Instant::now(), &s, 0.0),
            [Decision::NewFailure]
        );
        assert_eq!(t.attempts, 0);
    }

    proptest! {
        #[test]
        fn delays_grow_stay_capped_and_jitter_is_bounded(
            min_ms in 100u64..20_000,
            extra_ms in 0u64..600_000,
            attempts in 1u32..100,
            jitter in 0.0f64..1.0,
        ) {
            let s = AutoRestartSettings {
                backoff_min: Duration::from_millis(min_ms),
                backoff_max: Duration::from_millis(min_ms + extra_ms),
                ..settings()
            };
            let d = delay(attempts, &s, jitter);
            prop_assert!(d <= s.backoff_max);
            prop_assert!(d >= s.backoff_min);
            let plain = delay(attempts, &s, 0.0);
            prop_assert!(d >= plain);
            prop_assert!(d.as_secs_f64() <= plain.as_secs_f64() * (1.0 + JITTER) + 1e-9);
            prop_assert!(delay(attempts + 1, &s, 0.0) >= plain);
        }
    }
}

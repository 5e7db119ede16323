//! The lifecycle of one worker as a pure state machine: no I/O, no clock of its own, no
//! randomness of its own. The async shell ([`super`]) feeds it [`Input`]s with the current
//! (tokio) time and a jitter sample, and carries out the [`Effect`]s it returns.
//!
//! ```text
//!            spawn                /health 200          stable_after
//!  (start) ───────▶ starting ───────────────▶ ready ───────────────▶ running
//!                      │  start_timeout        │  k failed checks      │
//!                      ▼                       ▼                       ▼
//!                   stopping ◀──────────── (liveness, memory, admin restart, stop)
//!                      │ exit
//!                      ▼
//!  exited: code | signal | OOMKilled (cgroup counter) | reason of our own stop
//!       ├─ requested restart ──────────────────────────▶ starting (no backoff, budget reset)
//!       ├─ stop (shutdown, scale down) ─────────────────▶ stopped
//!       ├─ failure, fewer than max_failures in window ──▶ backoff ──(delay)──▶ starting
//!       └─ failure, max_failures in window ─────────────▶ held ──(admin restart/clear)──▶ starting
//! ```
//!
//! Backoff: `backoff_min * 2^(n-1)` for the n-th failure in a row, plus up to 20 % jitter, capped
//! at `backoff_max`; `n` starts again once the worker has been ready for `stable_after`. The first
//! failure of a worker that was stable (`running`) restarts it at once: an OOM kill or a kill by
//! hand after a long run is no crash loop (a failure before it is stable again backs off).
//! Failures (any exit the supervisor did not ask for, a spawn failure, a start timeout, a
//! liveness failure, a memory budget breach) are also counted in a sliding window: reaching
//! `max_failures` holds the worker until an admin restarts or clears it, which resets both.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::model::SupervisionPolicy;
pub use crate::model::{ExitReason, WorkerPhase};

/// Why the supervisor itself stops a worker's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Not ready within `start_timeout`.
    StartTimeout,
    /// `health_failures` liveness checks failed in a row.
    LivenessFailed,
    /// Over its memory limit, measured from outside (degraded mode).
    MemoryBudgetExceeded,
    /// An admin asked for a restart (one worker, or a rolling restart of its pool).
    AdminRestart,
    /// The supervisor is shutting down or the pool is scaled down.
    Shutdown,
}

/// How a process ended, as the shell saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when it was killed.
    pub signal: Option<i32>,
    /// Whether the worker's cgroup `oom_kill` counter went up during this launch.
    pub oom_killed: bool,
}

/// One result of a readiness/liveness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `GET /health` answered 200.
    Ready,
    /// 503: still starting (not a failure while starting).
    Starting,
    /// No answer, or an error status.
    Failed,
}

/// What happens to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The process was spawned.
    Spawned {
        /// Its pid.
        pid: u32,
    },
    /// The process could not be spawned.
    SpawnFailed {
        /// Bounded error code.
        code: String,
    },
    /// A probe answered.
    Probe(Probe),
    /// The process ended.
    Exited(ProcessExit),
    /// Time passed (deadlines: start timeout, stable period, restart delay).
    Tick,
    /// The worker's memory, measured from outside, is over its limit.
    MemoryOverLimit,
    /// An admin asked for a restart (resets the restart budget).
    Restart,
    /// An admin cleared a held worker (resets the restart budget).
    Clear,
    /// Stop for good (shutdown, scale down).
    Stop,
}

/// What the shell must do, and what happened (for events).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Spawn the process now.
    Spawn,
    /// Stop the process (SIGTERM, grace, SIGKILL of its cgroup/group), then report `Exited`.
    StopProcess(StopReason),
    /// The phase changed.
    Transition {
        /// Before.
        from: WorkerPhase,
        /// After.
        to: WorkerPhase,
    },
    /// The process ended, for this reason.
    Exited(ExitReason),
    /// A restart was scheduled after `delay`.
    RestartScheduled {
        /// The delay.
        delay: Duration,
        /// Failures in a row so far.
        attempt: u32,
    },
    /// The worker is held after `failures` failures within the window.
    Held {
        /// Failures in the window.
        failures: u32,
    },
    /// A liveness check failed (`misses` in a row).
    Unresponsive {
        /// Failed checks in a row.
        misses: u32,
    },
    /// The restart budget was reset by an admin.
    BudgetReset,
}

/// The restart delay of the `attempt`-th failure in a row (from 1), with `jitter` in `[0, 1)`.
pub fn backoff_delay(policy: &SupervisionPolicy, attempt: u32, jitter: f64) -> Duration {
    crate::util::backoff::delay(policy.backoff_min, policy.backoff_max, attempt, jitter)
}

/// A read-only view of the state machine for status.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Where the worker is in its life.
    pub phase: WorkerPhase,
    /// Pid of the current process.
    pub pid: Option<u32>,
    /// Launches so far.
    pub launches: u32,
    /// Restarts so far (launches after the first).
    pub restarts: u32,
    /// Why the last process ended.
    pub last_exit: Option<ExitReason>,
    /// Failures in the current window.
    pub failures_in_window: u32,
    /// Failures in a row (the backoff exponent).
    pub attempt: u32,
    /// When the current process was spawned.
    pub started_at: Option<Instant>,
    /// When it became ready.
    pub ready_at: Option<Instant>,
    /// When the next restart is due (in backoff).
    pub restart_at: Option<Instant>,
}

/// The state machine of one worker.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    policy: SupervisionPolicy,
    phase: WorkerPhase,
    pid: Option<u32>,
    launches: u32,
    attempt: u32,
    failures: VecDeque<Instant>,
    last_exit: Option<ExitReason>,
    started_at: Option<Instant>,
    ready_at: Option<Instant>,
    restart_at: Option<Instant>,
    misses: u32,
    stopping: Option<StopReason>,
    restart_after_stop: bool,
    stop_for_good: bool,
    /// The current process had been stable (`running`): its first failure restarts at once.
    stable_run: bool,
}

impl Lifecycle {
    /// A worker about to be started: the first effect to carry out is [`Effect::Spawn`].
    pub fn new(policy: SupervisionPolicy) -> (Self, Vec<Effect>) {
        let lifecycle = Self {
            policy,
            phase: WorkerPhase::Starting,
            pid: None,
            launches: 0,
            attempt: 0,
            failures: VecDeque::new(),
            last_exit: None,
            started_at: None,
            ready_at: None,
            restart_at: None,
            misses: 0,
            stopping: None,
            restart_after_stop: false,
            stop_for_good: false,
            stable_run: false,
        };
        (lifecycle, vec![Effect::Spawn])
    }

    /// The policy in force.
    pub fn policy(&self) -> &SupervisionPolicy {
        &self.policy
    }

    /// The current phase.
    pub fn phase(&self) -> WorkerPhase {
        self.phase
    }

    /// A view for status.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase,
            pid: self.pid,
            launches: self.launches,
            restarts: self.launches.saturating_sub(1),
            last_exit: self.last_exit.clone(),
            failures_in_window: self.failures.len() as u32,
            attempt: self.attempt,
            started_at: self.started_at,
            ready_at: self.ready_at,
            restart_at: self.restart_at,
        }
    }

    /// The next instant at which a [`Input::Tick`] may change something.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            WorkerPhase::Starting => self.started_at.map(|t| t + self.policy.start_timeout),
            WorkerPhase::Ready => self.ready_at.map(|t| t + self.policy.stable_after),
            WorkerPhase::Backoff => self.restart_at,
            _ => None,
        }
    }

    /// Whether an admin clear applies (the worker is held).
    pub fn can_clear(&self) -> bool {
        self.phase == WorkerPhase::Held
    }

    fn go(&mut self, to: WorkerPhase, effects: &mut Vec<Effect>) {
        if self.phase != to {
            effects.push(Effect::Transition {
                from: self.phase,
                to,
            });
            self.phase = to;
        }
    }

    fn reset_budget(&mut self, effects: &mut Vec<Effect>) {
        self.failures.clear();
        self.attempt = 0;
        effects.push(Effect::BudgetReset);
    }

    fn stop(&mut self, reason: StopReason, effects: &mut Vec<Effect>) {
        self.stopping = Some(reason);
        self.go(WorkerPhase::Stopping, effects);
        effects.push(Effect::StopProcess(reason));
    }

    fn spawn_now(&mut self, effects: &mut Vec<Effect>) {
        self.restart_at = None;
        self.go(WorkerPhase::Starting, effects);
        effects.push(Effect::Spawn);
    }

    /// Feeds one input at time `now`; `jitter` in `[0, 1)` is used if a restart is scheduled.
    pub fn handle(&mut self, input: Input, now: Instant, jitter: f64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Spawned { pid } if self.phase == WorkerPhase::Stopped => {
                // Stopped while its spawn was under way: it must not live on.
                self.pid = Some(pid);
                self.launches += 1;
                self.stop_for_good = true;
                self.stop(StopReason::Shutdown, &mut effects);
            }
            Input::Spawned { pid } => {
                self.pid = Some(pid);
                self.restart_at = None;
                self.launches += 1;
                self.started_at = Some(now);
                self.ready_at = None;
                self.misses = 0;
                self.stopping = None;
                self.stable_run = false;
                self.go(WorkerPhase::Starting, &mut effects);
            }
            Input::SpawnFailed { code } => {
                self.launches += 1;
                self.after_exit(ExitReason::SpawnFailed { code }, now, jitter, &mut effects);
            }
            // Nothing runs yet (a spawn is under way): nothing to probe, stop or restart.
            Input::Probe(_) | Input::MemoryOverLimit if self.pid.is_none() => {}
            Input::Restart if self.pid.is_none() && self.phase == WorkerPhase::Starting => {
                self.reset_budget(&mut effects);
            }
            Input::Stop if self.pid.is_none() && self.phase == WorkerPhase::Starting => {
                self.go(WorkerPhase::Stopped, &mut effects);
            }
            Input::Probe(probe) => self.on_probe(probe, now, &mut effects),
            Input::Tick => self.on_tick(now, &mut effects),
            Input::MemoryOverLimit => {
                if matches!(
                    self.phase,
                    WorkerPhase::Starting | WorkerPhase::Ready | WorkerPhase::Running
                ) {
                    self.stop(StopReason::MemoryBudgetExceeded, &mut effects);
                }
            }
            // An exit with no process expected is stale (already accounted for).
            Input::Exited(_) if self.pid.is_none() => {}
            Input::Exited(exit) => {
                let reason = classify(exit, self.stopping);
                self.after_exit(reason, now, jitter, &mut effects);
            }
            Input::Restart => match self.phase {
                WorkerPhase::Starting | WorkerPhase::Ready | WorkerPhase::Running => {
                    self.reset_budget(&mut effects);
                    self.restart_after_stop = true;
                    self.stop(StopReason::AdminRestart, &mut effects);
                }
                WorkerPhase::Stopping => {
                    self.reset_budget(&mut effects);
                    if self.stopping != Some(StopReason::Shutdown) {
                        self.restart_after_stop = true;
                    }
                }
                WorkerPhase::Backoff | WorkerPhase::Held => {
                    self.reset_budget(&mut effects);
                    self.spawn_now(&mut effects);
                }
                WorkerPhase::Stopped => {}
            },
            Input::Clear => {
                if self.phase == WorkerPhase::Held {
                    self.reset_budget(&mut effects);
                    self.spawn_now(&mut effects);
                }
            }
            Input::Stop => match self.phase {
                WorkerPhase::Starting | WorkerPhase::Ready | WorkerPhase::Running => {
                    self.restart_after_stop = false;
                    self.stop(StopReason::Shutdown, &mut effects);
                }
                WorkerPhase::Stopping => {
                    // The stop under way keeps its reason (the exit is classified by it); only
                    // what follows it changes.
                    self.restart_after_stop = false;
                    self.stop_for_good = true;
                }
                WorkerPhase::Backoff | WorkerPhase::Held => {
                    self.restart_at = None;
                    self.go(WorkerPhase::Stopped, &mut effects);
                }
                WorkerPhase::Stopped => {}
            },
        }
        effects
    }

    fn on_probe(&mut self, probe: Probe, now: Instant, effects: &mut Vec<Effect>) {
        match (self.phase, probe) {
            (WorkerPhase::Starting, Probe::Ready) => {
                self.ready_at = Some(now);
                self.misses = 0;
                self.go(WorkerPhase::Ready, effects);
            }
            // While starting, 503 and "not listening yet" are expected; the start timeout
            // bounds them.
            (WorkerPhase::Starting, _) => {}
            (WorkerPhase::Ready | WorkerPhase::Running, Probe::Ready) => self.misses = 0,
            (WorkerPhase::Ready | WorkerPhase::Running, Probe::Starting | Probe::Failed) => {
                self.misses += 1;
                effects.push(Effect::Unresponsive {
                    misses: self.misses,
                });
                if self.misses >= self.policy.health_failures {
                    self.stop(StopReason::LivenessFailed, effects);
                }
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        match self.phase {
            WorkerPhase::Starting => {
                if let Some(started) = self.started_at
                    && now >= started + self.policy.start_timeout
                {
                    self.stop(StopReason::StartTimeout, effects);
                }
            }
            WorkerPhase::Ready => {
                if let Some(ready) = self.ready_at
                    && now >= ready + self.policy.stable_after
                {
                    self.attempt = 0;
                    self.stable_run = true;
                    self.go(WorkerPhase::Running, effects);
                }
            }
            WorkerPhase::Backoff if self.restart_at.is_some_and(|at| now >= at) => {
                self.spawn_now(effects);
            }
            _ => {}
        }
    }

    fn after_exit(
        &mut self,
        reason: ExitReason,
        now: Instant,
        jitter: f64,
        effects: &mut Vec<Effect>,
    ) {
        self.pid = None;
        self.started_at = None;
        self.ready_at = None;
        self.restart_at = None;
        self.misses = 0;
        let stop_for_good =
            std::mem::take(&mut self.stop_for_good) || self.stopping == Some(StopReason::Shutdown);
        let restart_now = std::mem::take(&mut self.restart_after_stop);
        let after_stable_run = std::mem::take(&mut self.stable_run);
        self.stopping = None;
        effects.push(Effect::Exited(reason.clone()));
        self.last_exit = Some(reason.clone());
        if stop_for_good {
            self.go(WorkerPhase::Stopped, effects);
            return;
        }
        if !reason.is_failure() || restart_now {
            self.spawn_now(effects);
            return;
        }
        let window_start = now.checked_sub(self.policy.failure_window);
        while let Some(first) = self.failures.front() {
            if window_start.is_some_and(|start| *first < start) {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        if self.failures.len() as u32 >= self.policy.max_failures {
            self.go(WorkerPhase::Held, effects);
            effects.push(Effect::Held {
                failures: self.failures.len() as u32,
            });
            return;
        }
        self.attempt += 1;
        if after_stable_run && self.attempt == 1 {
            // A worker that ran stably and was killed (the OOM killer, a kill by hand, a node
            // hiccup) is no crash loop: waiting would only prolong the outage. Only a failure
            // that follows before it is stable again backs off (from the second delay on).
            effects.push(Effect::RestartScheduled {
                delay: Duration::ZERO,
                attempt: self.attempt,
            });
            self.spawn_now(effects);
            return;
        }
        let delay = backoff_delay(&self.policy, self.attempt, jitter);
        self.restart_at = Some(now + delay);
        self.go(WorkerPhase::Backoff, effects);
        effects.push(Effect::RestartScheduled {
            delay,
            attempt: self.attempt,
        });
    }
}

/// Why a process ended: the kernel's OOM counter first (a SIGKILL alone proves nothing), then
/// the supervisor's own stop, then the exit status.
pub fn classify(exit: ProcessExit, stopping: Option<StopReason>) -> ExitReason {
    if exit.oom_killed {
        return ExitReason::OomKilled;
    }
    match stopping {
        Some(StopReason::StartTimeout) => ExitReason::StartTimeout,
        Some(StopReason::LivenessFailed) => ExitReason::LivenessFailed,
        Some(StopReason::MemoryBudgetExceeded) => ExitReason::MemoryBudgetExceeded,
        Some(StopReason::AdminRestart) => ExitReason::AdminRestart,
        Some(StopReason::Shutdown) => ExitReason::Shutdown,
        None => match (exit.code, exit.signal) {
            (Some(code), _) => ExitReason::ExitCode { code },
            (None, Some(signal)) => ExitReason::Signal { signal },
            (None, None) => ExitReason::ExitCode { code: -1 },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> SupervisionPolicy {
        SupervisionPolicy {
            stop_grace: Duration::from_secs(5),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            max_failures: 3,
            failure_window: Duration::from_secs(600),
            start_timeout: Duration::from_secs(120),
            health_interval: Duration::from_secs(10),
            health_failures: 3,
        }
    }

    const CRASH: Input = Input::Exited(ProcessExit {
        code: Some(1),
        signal: None,
        oom_killed: false,
    });
    const KILLED: Input = Input::Exited(ProcessExit {
        code: None,
        signal: Some(9),
        oom_killed: false,
    });

    fn started(now: Instant) -> Lifecycle {
        let (mut l, effects) = Lifecycle::new(policy());
        assert_eq!(effects, [Effect::Spawn]);
        l.handle(Input::Spawned { pid: 100 }, now, 0.0);
        l
    }

    fn delay_of(effects: &[Effect]) -> Option<Duration> {
        effects.iter().find_map(|e| match e {
            Effect::RestartScheduled { delay, .. } => Some(*delay),
            _ => None,
        })
    }

    #[test]
    fn a_worker_goes_starting_ready_running() {
        let t0 = Instant::now();
        let mut l = started(t0);
        assert_eq!(l.phase(), WorkerPhase::Starting);
        assert!(
            l.handle(Input::Probe(Probe::Starting), t0, 0.0).is_empty(),
            "503 while starting is no failure"
        );
        assert!(
            l.handle(Input::Probe(Probe::Failed), t0, 0.0).is_empty(),
            "not listening yet is no failure"
        );
        let e = l.handle(
            Input::Probe(Probe::Ready),
            t0 + Duration::from_secs(30),
            0.0,
        );
        assert_eq!(
            e,
            [Effect::Transition {
                from: WorkerPhase::Starting,
                to: WorkerPhase::Ready
            }]
        );
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(90)));
        assert!(
            l.handle(Input::Tick, t0 + Duration::from_secs(89), 0.0)
                .is_empty()
        );
        let e = l.handle(Input::Tick, t0 + Duration::from_secs(90), 0.0);
        assert_eq!(
            e,
            [Effect::Transition {
                from: WorkerPhase::Ready,
                to: WorkerPhase::Running
            }]
        );
        let s = l.snapshot();
        assert_eq!((s.launches, s.restarts, s.pid), (1, 0, Some(100)));
    }

    #[test]
    fn a_crash_schedules_a_restart_with_growing_capped_delays() {
        let t0 = Instant::now();
        let mut p = policy();
        p.max_failures = 100;
        let (mut l, _) = Lifecycle::new(p);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            l.handle(Input::Spawned { pid: 1 }, now, 0.0);
            let e = l.handle(CRASH, now, 0.0);
            assert!(
                e.contains(&Effect::Exited(ExitReason::ExitCode { code: 1 })),
                "{e:?}"
            );
            assert_eq!(l.phase(), WorkerPhase::Backoff);
            let d = delay_of(&e).unwrap();
            delays.push(d.as_secs());
            now += d;
            assert!(
                l.handle(Input::Tick, now - Duration::from_millis(1), 0.0)
                    .is_empty()
            );
            assert_eq!(l.handle(Input::Tick, now, 0.0).last(), Some(&Effect::Spawn));
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn backoff_resets_once_the_worker_is_stable() {
        let t0 = Instant::now();
        let mut p = policy();
        p.max_failures = 10;
        let (mut l, _) = Lifecycle::new(p);
        l.handle(Input::Spawned { pid: 1 }, t0, 0.0);
        let e = l.handle(KILLED, t0, 0.0);
        assert_eq!(delay_of(&e), Some(Duration::from_secs(1)));
        assert_eq!(
            l.snapshot().last_exit,
            Some(ExitReason::Signal { signal: 9 })
        );
        let t1 = t0 + Duration::from_secs(1);
        l.handle(Input::Tick, t1, 0.0);
        l.handle(Input::Spawned { pid: 2 }, t1, 0.0);
        let e = l.handle(KILLED, t1, 0.0);
        assert_eq!(delay_of(&e), Some(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        l.handle(Input::Tick, t2, 0.0);
        l.handle(Input::Spawned { pid: 3 }, t2, 0.0);
        l.handle(Input::Probe(Probe::Ready), t2, 0.0);
        l.handle(Input::Tick, t2 + Duration::from_secs(60), 0.0);
        assert_eq!(l.phase(), WorkerPhase::Running);
        let e = l.handle(KILLED, t2 + Duration::from_secs(61), 0.0);
        assert_eq!(
            delay_of(&e),
            Some(Duration::ZERO),
            "a kill after a stable run restarts at once"
        );
        assert_eq!(e.last(), Some(&Effect::Spawn));
    }

    #[test]
    fn too_many_failures_in_the_window_hold_the_worker_until_cleared() {
        let t0 = Instant::now();
        let mut l = started(t0);
        l.handle(CRASH, t0, 0.0);
        l.handle(Input::Tick, t0 + Duration::from_secs(1), 0.0);
        l.handle(Input::Spawned { pid: 2 }, t0 + Duration::from_secs(1), 0.0);
        l.handle(CRASH, t0 + Duration::from_secs(1), 0.0);
        l.handle(Input::Tick, t0 + Duration::from_secs(3), 0.0);
        l.handle(Input::Spawned { pid: 3 }, t0 + Duration::from_secs(3), 0.0);
        let e = l.handle(CRASH, t0 + Duration::from_secs(3), 0.0);
        assert!(e.contains(&Effect::Held { failures: 3 }), "{e:?}");
        assert_eq!(l.phase(), WorkerPhase::Held);
        assert!(l.can_clear());
        assert_eq!(
            l.next_deadline(),
            None,
            "a held worker is never restarted by time"
        );
        assert!(
            l.handle(Input::Tick, t0 + Duration::from_secs(9999), 0.0)
                .is_empty()
        );
        let e = l.handle(Input::Clear, t0 + Duration::from_secs(9999), 0.0);
        assert!(
            e.contains(&Effect::BudgetReset) && e.last() == Some(&Effect::Spawn),
            "{e:?}"
        );
        assert_eq!(l.snapshot().failures_in_window, 0);
        assert!(!l.can_clear());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut l = started(t0);
        let mut now = t0;
        for pid in 0..10 {
            // One crash every 301 s: never 3 within 600 s... but 2 may be.
            l.handle(Input::Spawned { pid }, now, 0.0);
            l.handle(CRASH, now, 0.0);
            assert_eq!(l.phase(), WorkerPhase::Backoff, "crash {pid} must not hold");
            now += Duration::from_secs(301);
            l.handle(Input::Tick, now, 0.0);
        }
    }

    #[test]
    fn oom_kills_are_read_from_the_counter_not_guessed_from_sigkill() {
        let oom = ProcessExit {
            code: None,
            signal: Some(9),
            oom_killed: true,
        };
        let plain = ProcessExit {
            code: None,
            signal: Some(9),
            oom_killed: false,
        };
        assert_eq!(classify(oom, None), ExitReason::OomKilled);
        assert_eq!(classify(plain, None), ExitReason::Signal { signal: 9 });
        assert_eq!(
            classify(oom, Some(StopReason::AdminRestart)),
            ExitReason::OomKilled
        );
        assert_eq!(
            classify(plain, Some(StopReason::LivenessFailed)),
            ExitReason::LivenessFailed
        );
        let exit0 = ProcessExit {
            code: Some(0),
            signal: None,
            oom_killed: false,
        };
        assert!(
            classify(exit0, None).is_failure(),
            "a Connect worker never exits on its own"
        );
    }

    #[test]
    fn the_watchdog_restarts_after_k_consecutive_failed_checks() {
        let t0 = Instant::now();
        let mut l = started(t0);
        l.handle(Input::Probe(Probe::Ready), t0, 0.0);
        l.handle(Input::Probe(Probe::Failed), t0, 0.0);
        l.handle(Input::Probe(Probe::Failed), t0, 0.0);
        l.handle(Input::Probe(Probe::Ready), t0, 0.0);
        l.handle(Input::Probe(Probe::Failed), t0, 0.0);
        let e = l.handle(Input::Probe(Probe::Starting), t0, 0.0);
        assert_eq!(
            e,
            [Effect::Unresponsive { misses: 2 }],
            "a success resets the count"
        );
        let e = l.handle(Input::Probe(Probe::Failed), t0, 0.0);
        assert!(
            e.contains(&Effect::StopProcess(StopReason::LivenessFailed)),
            "{e:?}"
        );
        assert_eq!(l.phase(), WorkerPhase::Stopping);
        let e = l.handle(KILLED, t0, 0.0);
        assert!(
            e.contains(&Effect::Exited(ExitReason::LivenessFailed)),
            "{e:?}"
        );
        assert_eq!(l.phase(), WorkerPhase::Backoff, "a liveness failure counts");
    }

    #[test]
    fn a_worker_not_ready_in_time_is_restarted_as_a_failure() {
        let t0 = Instant::now();
        let mut l = started(t0);
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(120)));
        let e = l.handle(Input::Tick, t0 + Duration::from_secs(120), 0.0);
        assert_eq!(
            e.last(),
            Some(&Effect::StopProcess(StopReason::StartTimeout))
        );
        l.handle(KILLED, t0 + Duration::from_secs(121), 0.0);
        assert_eq!(l.snapshot().last_exit, Some(ExitReason::StartTimeout));
        assert_eq!(l.snapshot().failures_in_window, 1);
    }

    #[test]
    fn admin_restart_stops_then_starts_at_once_and_resets_the_budget() {
        let t0 = Instant::now();
        let mut l = started(t0);
        l.handle(CRASH, t0, 0.0);
        l.handle(Input::Tick, t0 + Duration::from_secs(1), 0.0);
        l.handle(Input::Spawned { pid: 5 }, t0 + Duration::from_secs(1), 0.0);
        assert_eq!(l.snapshot().failures_in_window, 1);
        let e = l.handle(Input::Restart, t0 + Duration::from_secs(2), 0.0);
        assert!(e.contains(&Effect::StopProcess(StopReason::AdminRestart)));
        let e = l.handle(KILLED, t0 + Duration::from_secs(3), 0.0);
        assert_eq!(e.last(), Some(&Effect::Spawn), "no backoff: {e:?}");
        let s = l.snapshot();
        assert_eq!(s.last_exit, Some(ExitReason::AdminRestart));
        assert_eq!((s.failures_in_window, s.attempt), (0, 0));
        // From backoff, a restart starts it at once.
        l.handle(Input::Spawned { pid: 6 }, t0 + Duration::from_secs(3), 0.0);
        l.handle(CRASH, t0 + Duration::from_secs(4), 0.0);
        let e = l.handle(Input::Restart, t0 + Duration::from_secs(4), 0.0);
        assert_eq!(e.last(), Some(&Effect::Spawn));
    }

    #[test]
    fn stop_ends_in_stopped_from_every_phase() {
        let t0 = Instant::now();
        let mut l = started(t0);
        let e = l.handle(Input::Stop, t0, 0.0);
        assert!(e.contains(&Effect::StopProcess(StopReason::Shutdown)));
        l.handle(Input::Restart, t0, 0.0);
        let e = l.handle(KILLED, t0, 0.0);
        assert!(e.contains(&Effect::Exited(ExitReason::Shutdown)));
        assert_eq!(
            l.phase(),
            WorkerPhase::Stopped,
            "a restart never overrides a stop"
        );
        assert!(l.handle(Input::Restart, t0, 0.0).is_empty());

        let mut l = started(t0);
        l.handle(CRASH, t0, 0.0);
        l.handle(Input::Stop, t0, 0.0);
        assert_eq!(l.phase(), WorkerPhase::Stopped);
        assert!(
            l.handle(Input::Tick, t0 + Duration::from_secs(100), 0.0)
                .is_empty()
        );

        // A stop while a liveness stop is under way: classified as liveness, ends stopped.
        let mut l = started(t0);
        l.handle(Input::Probe(Probe::Ready), t0, 0.0);
        for _ in 0..3 {
            l.handle(Input::Probe(Probe::Failed), t0, 0.0);
        }
        l.handle(Input::Stop, t0, 0.0);
        let e = l.handle(KILLED, t0, 0.0);
        assert!(e.contains(&Effect::Exited(ExitReason::LivenessFailed)));
        assert_eq!(l.phase(), WorkerPhase::Stopped);
    }

    #[test]
    fn memory_over_limit_stops_the_worker_with_its_own_reason() {
        let t0 = Instant::now();
        let mut l = started(t0);
        l.handle(Input::MemoryOverLimit, t0, 0.0);
        let e = l.handle(KILLED, t0, 0.0);
        assert!(
            e.contains(&Effect::Exited(ExitReason::MemoryBudgetExceeded)),
            "{e:?}"
        );
        assert_eq!(l.phase(), WorkerPhase::Backoff);
    }

    #[test]
    fn spawn_failures_consume_the_budget() {
        let t0 = Instant::now();
        let (mut l, _) = Lifecycle::new(policy());
        let mut now = t0;
        for _ in 0..3 {
            l.handle(
                Input::SpawnFailed {
                    code: "exec_failed".into(),
                },
                now,
                0.0,
            );
            now += Duration::from_secs(60);
            l.handle(Input::Tick, now, 0.0);
        }
        assert_eq!(l.phase(), WorkerPhase::Held);
        assert_eq!(l.snapshot().launches, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_loop_on_a_paused_clock_holds_after_the_configured_failures() {
        // Drive the machine the way the shell does, with tokio's (paused) clock.
        let (mut l, mut effects) = Lifecycle::new(policy());
        let mut launches = 0;
        let started = Instant::now();
        loop {
            if effects.contains(&Effect::Spawn) {
                launches += 1;
                l.handle(Input::Spawned { pid: launches }, Instant::now(), 0.5);
                effects = l.handle(CRASH, Instant::now(), 0.5);
                continue;
            }
            match l.next_deadline() {
                Some(at) => {
                    tokio::time::sleep_until(at).await;
                    effects = l.handle(Input::Tick, Instant::now(), 0.5);
                }
                None => break,
            }
        }
        assert_eq!(l.phase(), WorkerPhase::Held);
        assert_eq!(launches, 3);
        // Delays 1 s and 2 s, each with 10 % jitter.
        assert_eq!(Instant::now() - started, Duration::from_millis(1100 + 2200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kill_after_a_long_stable_run_restarts_at_once_and_a_second_one_backs_off() {
        let oom = Input::Exited(ProcessExit {
            code: None,
            signal: Some(9),
            oom_killed: true,
        });
        for kill in [KILLED, oom] {
            let (mut l, _) = Lifecycle::new(policy());
            l.handle(Input::Spawned { pid: 1 }, Instant::now(), 0.0);
            l.handle(Input::Probe(Probe::Ready), Instant::now(), 0.0);
            // Hours of stable running.
            tokio::time::advance(Duration::from_secs(60)).await;
            l.handle(Input::Tick, Instant::now(), 0.0);
            assert_eq!(l.phase(), WorkerPhase::Running);
            tokio::time::advance(Duration::from_secs(3 * 3600)).await;
            let killed_at = Instant::now();
            let e = l.handle(kill.clone(), killed_at, 0.9);
            assert_eq!(e.last(), Some(&Effect::Spawn), "restarted at once: {e:?}");
            assert!(
                e.contains(&Effect::RestartScheduled {
                    delay: Duration::ZERO,
                    attempt: 1
                }),
                "{e:?}"
            );
            assert_eq!(l.phase(), WorkerPhase::Starting);
            assert_eq!(l.next_deadline(), None, "no restart timer: spawning now");
            assert_eq!(l.snapshot().failures_in_window, 1, "it still counts");
            // Killed again before it is stable: that is the start of a loop, and backs off.
            l.handle(Input::Spawned { pid: 2 }, Instant::now(), 0.0);
            tokio::time::advance(Duration::from_secs(5)).await;
            let e = l.handle(kill, Instant::now(), 0.0);
            assert_eq!(l.phase(), WorkerPhase::Backoff);
            assert_eq!(delay_of(&e), Some(Duration::from_secs(2)));
            assert_eq!(Instant::now() - killed_at, Duration::from_secs(5));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stability_measured_on_the_paused_clock_resets_the_backoff() {
        let (mut l, _) = Lifecycle::new(policy());
        l.handle(Input::Spawned { pid: 1 }, Instant::now(), 0.0);
        l.handle(Input::Probe(Probe::Ready), Instant::now(), 0.0);
        tokio::time::advance(Duration::from_secs(59)).await;
        l.handle(Input::Tick, Instant::now(), 0.0);
        assert_eq!(l.phase(), WorkerPhase::Ready);
        tokio::time::advance(Duration::from_secs(1)).await;
        l.handle(Input::Tick, Instant::now(), 0.0);
        assert_eq!(l.phase(), WorkerPhase::Running);
    }

    fn arb_policy() -> impl Strategy<Value = SupervisionPolicy> {
        (1u64..5_000, 1u64..600_000, 1u32..20, 1u64..3600).prop_map(|(min, max, k, window)| {
            let mut p = policy();
            p.backoff_min = Duration::from_millis(min);
            p.backoff_max = Duration::from_millis(min.max(max));
            p.max_failures = k;
            p.failure_window = Duration::from_secs(window);
            p
        })
    }

    proptest! {
        #[test]
        fn delays_stay_within_min_and_max(p in arb_policy(), attempt in 1u32..200, jitter in 0.0f64..1.0) {
            let d = backoff_delay(&p, attempt, jitter);
            prop_assert!(d >= p.backoff_min, "{d:?} < min");
            prop_assert!(d <= p.backoff_max, "{d:?} > max");
        }

        #[test]
        fn delays_never_shrink_as_failures_repeat(p in arb_policy(), attempt in 1u32..100) {
            prop_assert!(backoff_delay(&p, attempt + 1, 0.0) >= backoff_delay(&p, attempt, 0.0));
        }

        #[test]
        fn a_worker_is_held_exactly_at_the_failure_limit(p in arb_policy(), gap_ms in 0u64..5_000) {
            let t0 = Instant::now();
            let (mut l, _) = Lifecycle::new(p);
            let mut now = t0;
            let mut crashes = 0;
            while l.phase() != WorkerPhase::Held && crashes < 1000 {
                l.handle(Input::Spawned { pid: 1 }, now, 0.3);
                l.handle(CRASH, now, 0.3);
                crashes += 1;
                now += Duration::from_millis(gap_ms);
                if let Some(at) = l.next_deadline() { now = now.max(at); }
                l.handle(Input::Tick, now, 0.3);
            }
            // Held once max_failures fell within one window: never before the limit.
            prop_assert!(crashes >= p.max_failures);
            if u128::from(gap_ms) * u128::from(p.max_failures) < p.failure_window.as_millis() / 1000 * 1000
                && p.backoff_max.as_millis() * u128::from(p.max_failures) < p.failure_window.as_millis() / 2 {
                prop_assert_eq!(crashes, p.max_failures);
            }
        }

        #[test]
        fn any_input_sequence_keeps_the_machine_consistent(
            inputs in proptest::collection::vec(0u8..9, 1..60),
            steps in proptest::collection::vec(0u64..120_000, 60),
        ) {
            let t0 = Instant::now();
            let (mut l, first) = Lifecycle::new(policy());
            let mut awaiting_spawn = first.contains(&Effect::Spawn);
            let mut now = t0;
            for (i, code) in inputs.iter().enumerate() {
                now += Duration::from_millis(steps[i]);
                let input = match code {
                    // The shell reports a spawn only after the machine asked for one.
                    0 if awaiting_spawn => Input::Spawned { pid: i as u32 },
                    0 => Input::Tick,
                    1 => Input::Probe(Probe::Ready),
                    2 => Input::Probe(Probe::Failed),
                    3 => CRASH,
                    4 => Input::Tick,
                    5 => Input::Restart,
                    6 => Input::Clear,
                    7 => Input::MemoryOverLimit,
                    _ => KILLED,
                };
                if matches!(input, Input::Spawned { .. }) {
                    awaiting_spawn = false;
                }
                let effects = l.handle(input, now, 0.5);
                awaiting_spawn |= effects.contains(&Effect::Spawn);
                let s = l.snapshot();
                prop_assert!(s.failures_in_window <= policy().max_failures);
                prop_assert_eq!(s.phase == WorkerPhase::Backoff, s.restart_at.is_some());
                if s.phase == WorkerPhase::Held { prop_assert!(l.can_clear()); }
                for e in &effects {
                    if let Effect::RestartScheduled { delay, .. } = e {
                        prop_assert!(*delay <= policy().backoff_max);
                    }
                }
            }
            l.handle(Input::Stop, now, 0.5);
            if l.phase() == WorkerPhase::Stopping {
                l.handle(KILLED, now, 0.5);
            }
            prop_assert_eq!(l.phase(), WorkerPhase::Stopped, "stop always ends stopped");
        }
    }
}

//! The typed events of the department and the bounded list that keeps the recent ones.
//!
//! One struct per event, grouped by the part of the supervisor that emits it (vector's
//! `internal_events`): [`supervisor`] (workers, pools, enforcement), [`admission`] (the
//! guardrails), [`api`] (changes made through the API), [`healing`] (the connector watch),
//! [`connectors`] (offsets requests, secret-file sweeps), [`kafka`] (the Kafka check) and
//! [`gitops`] (drift). Each struct knows how it shows ([`TypedEvent`]): its bounded [`Code`], its
//! level, its sentence, the worker, pool, connector and principal it concerns, the metrics it
//! moves, and whether it goes to the event list. [`Event`] (what [`super::Observer::emit`] takes)
//! and the list of codes are derived from those structs by the two macros below, so a new event
//! is a struct, an impl and a line in each list.
//!
//! Events carry no secrets: reasons, codes, keys and rule ids only.

/// The accessors of what an event concerns, from its fields of the same names: `connector`,
/// `principal`, `pool` (a pool name), `worker` (a [`crate::model::WorkerId`]: the worker and its
/// pool).
macro_rules! concerns {
    ($($field:ident),+) => {
        $(concerns!(@ $field);)+
    };
    (@ connector) => {
        fn connector(&self) -> Option<&str> {
            Some(&self.connector)
        }
    };
    (@ principal) => {
        fn principal(&self) -> Option<&str> {
            Some(&self.principal)
        }
    };
    (@ pool) => {
        fn pool(&self) -> Option<String> {
            Some(self.pool.clone())
        }
    };
    (@ worker) => {
        fn worker(&self) -> Option<String> {
            Some(self.worker.to_string())
        }

        fn pool(&self) -> Option<String> {
            Some(self.worker.pool.to_string())
        }
    };
}

pub mod admission;
pub mod api;
pub mod connectors;
pub mod gitops;
pub mod healing;
pub mod kafka;
mod list;
pub mod supervisor;

use serde::Serialize;

pub use admission::{DefaultsApplied, PolicyRejected, SecretsExternalized};
pub use api::{ConnectorChange, ConnectorChanged};
pub use connectors::{
    OffsetsRequestApplied, OffsetsRequestFailed, OffsetsRestoreFailed, SecretFileRemoved,
    SecretSweepSkipped,
};
pub use gitops::GitopsDrift;
pub use healing::{
    AutoRestartFailed, ConnectorAutoRestarted, ConnectorFailed, ConnectorHeld, ConnectorRecovered,
    ConnectorReleased, RestartBudgetCharged,
};
pub use kafka::{KafkaReachable, KafkaUnreachable};
pub use list::{EventLog, EventRecord};
pub use supervisor::{
    EnforcementDegraded, EnforcementSelected, LeftoversCleaned, PoolScaled, RestartScheduled,
    RolloutFinished, RolloutStarted, ScaleRefused, StartupBoostApplied, StartupBoostEnded,
    WorkerCleared, WorkerExited, WorkerHeld, WorkerOomKilled, WorkerPhaseChanged, WorkerReady,
    WorkerRestartRequested, WorkerSpawnFailed, WorkerStable, WorkerStarted, WorkerStopped,
    WorkerUnresponsive,
};

use super::Metrics;

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something needs attention (a restart, degraded enforcement).
    Warn,
    /// Something needs a human (a worker held).
    Error,
}

/// Declares [`Code`]: each code's text is written once, here.
macro_rules! event_codes {
    ($($variant:ident = $text:literal,)*) => {
        /// The bounded code of an event: a metric label and the `event` field of logs and of
        /// the list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Self::$variant,)*];
            /// Every code's text, in the order of [`Code::ALL`].
            pub const TEXTS: &'static [&'static str] = &[$($text,)*];

            /// The code's text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

event_codes! {
    WorkerStarted = "worker_started",
    WorkerReady = "worker_ready",
    WorkerStable = "worker_stable",
    WorkerExited = "worker_exited",
    StartupBoostApplied = "startup_boost_applied",
    StartupBoostEnded = "startup_boost_ended",
    WorkerOomKilled = "worker_oom_killed",
    WorkerSpawnFailed = "worker_spawn_failed",
    WorkerUnresponsive = "worker_unresponsive",
    RestartScheduled = "restart_scheduled",
    WorkerHeld = "worker_held",
    WorkerRestartRequested = "worker_restart_requested",
    WorkerCleared = "worker_cleared",
    WorkerStopped = "worker_stopped",
    WorkerPhaseChanged = "worker_phase_changed",
    PoolScaled = "pool_scaled",
    ScaleRefused = "scale_refused",
    RolloutStarted = "rollout_started",
    RolloutFinished = "rollout_finished",
    EnforcementSelected = "enforcement_selected",
    EnforcementDegraded = "enforcement_degraded",
    LeftoversCleaned = "leftovers_cleaned",
    ConnectorCreated = "connector_created",
    ConnectorUpdated = "connector_updated",
    ConnectorDeleted = "connector_deleted",
    ConnectorPaused = "connector_paused",
    ConnectorResumed = "connector_resumed",
    ConnectorStopped = "connector_stopped",
    ConnectorRestarted = "connector_restarted",
    OffsetsRequested = "offsets_requested",
    ConnectorTopicsReset = "connector_topics_reset",
    ConnectorFailed = "connector_failed",
    ConnectorAutoRestarted = "connector_auto_restarted",
    AutoRestartFailed = "auto_restart_failed",
    RestartBudgetCharged = "restart_budget_charged",
    ConnectorRecovered = "connector_recovered",
    ConnectorHeld = "connector_held",
    ConnectorReleased = "connector_released",
    OffsetsApplied = "offsets_applied",
    OffsetsFailed = "offsets_failed",
    OffsetsRestoreFailed = "offsets_restore_failed",
    SecretFileRemoved = "secret_file_removed",
    SecretSweepSkipped = "secret_sweep_skipped",
    KafkaUnreachable = "kafka_unreachable",
    KafkaReachable = "kafka_reachable",
    PolicyRejected = "policy_rejected",
    PolicyDefaultsApplied = "policy_defaults_applied",
    SecretsExternalized = "secrets_externalized",
    GitopsDrift = "gitops_drift",
    GitopsHealed = "gitops_healed",
}

/// What every event knows about itself: how it shows as a log line, a metric and an entry in
/// the event list. Only [`TypedEvent::code`] and [`TypedEvent::message`] have no default.
pub trait TypedEvent: std::fmt::Debug {
    /// Its bounded code.
    fn code(&self) -> Code;

    /// A sentence for logs and the event list.
    fn message(&self) -> String;

    /// Severity.
    fn level(&self) -> Level {
        Level::Info
    }

    /// The worker concerned, if any.
    fn worker(&self) -> Option<String> {
        None
    }

    /// The pool concerned, if any.
    fn pool(&self) -> Option<String> {
        None
    }

    /// The connector concerned, if any.
    fn connector(&self) -> Option<&str> {
        None
    }

    /// Who caused it (a key id or token name; never a secret), for changes made through the API.
    fn principal(&self) -> Option<&str> {
        None
    }

    /// A bounded outcome: the exit reason of a worker, `ok` for a change, `failed`, `held`.
    fn outcome(&self) -> Option<&'static str> {
        None
    }

    /// Moves the metrics this event carries (the event counter is bumped for every event).
    fn record(&self, metrics: &Metrics) {
        let _ = metrics;
    }

    /// A routine event (a phase change): logged at debug level and counted, but kept out of
    /// the event list so the list keeps what a person needs to see.
    fn routine(&self) -> bool {
        false
    }

    /// Writes its log line. The default line carries the department, the code, the worker and
    /// the connector; an event whose line had fields of its own before it became an event
    /// keeps them.
    fn log(&self, department: &str) {
        let code = self.code().as_str();
        let message = self.message();
        let worker = self.worker();
        let w = worker.as_deref().unwrap_or("");
        let c = self.connector().unwrap_or("");
        if self.routine() {
            tracing::debug!(
                department,
                event = code,
                worker = w,
                connector = c,
                "{message}"
            );
            return;
        }
        match self.level() {
            Level::Info => {
                tracing::info!(
                    department,
                    event = code,
                    worker = w,
                    connector = c,
                    "{message}"
                )
            }
            Level::Warn => {
                tracing::warn!(
                    department,
                    event = code,
                    worker = w,
                    connector = c,
                    "{message}"
                )
            }
            Level::Error => {
                tracing::error!(
                    department,
                    event = code,
                    worker = w,
                    connector = c,
                    "{message}"
                )
            }
        }
    }
}

/// Declares [`Event`] over the event structs: one variant each, a `From` for each, and the
/// dispatch to [`TypedEvent`].
macro_rules! events {
    ($($module:ident :: $name:ident,)*) => {
        /// Any event: what [`super::Observer::emit`] takes (every event struct converts into it).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $(
                #[doc = concat!("[`", stringify!($module), "::", stringify!($name), "`]")]
                $name($module::$name),
            )*
        }

        $(
            impl From<$module::$name> for Event {
                fn from(event: $module::$name) -> Self {
                    Self::$name(event)
                }
            }
        )*

        impl Event {
            /// The event as its own type.
            pub fn typed(&self) -> &dyn TypedEvent {
                match self {
                    $(Self::$name(e) => e,)*
                }
            }
        }
    };
}

events! {
    supervisor::WorkerStarted,
    supervisor::WorkerReady,
    supervisor::WorkerStable,
    supervisor::StartupBoostApplied,
    supervisor::StartupBoostEnded,
    supervisor::WorkerExited,
    supervisor::WorkerOomKilled,
    supervisor::WorkerSpawnFailed,
    supervisor::WorkerUnresponsive,
    supervisor::RestartScheduled,
    supervisor::WorkerHeld,
    supervisor::WorkerRestartRequested,
    supervisor::WorkerCleared,
    supervisor::WorkerStopped,
    supervisor::WorkerPhaseChanged,
    supervisor::PoolScaled,
    supervisor::ScaleRefused,
    supervisor::RolloutStarted,
    supervisor::RolloutFinished,
    supervisor::EnforcementSelected,
    supervisor::EnforcementDegraded,
    supervisor::LeftoversCleaned,
    admission::PolicyRejected,
    admission::DefaultsApplied,
    admission::SecretsExternalized,
    api::ConnectorChanged,
    healing::ConnectorFailed,
    healing::ConnectorAutoRestarted,
    healing::AutoRestartFailed,
    healing::RestartBudgetCharged,
    healing::ConnectorRecovered,
    healing::ConnectorHeld,
    healing::ConnectorReleased,
    connectors::OffsetsRequestApplied,
    connectors::OffsetsRequestFailed,
    connectors::OffsetsRestoreFailed,
    connectors::SecretFileRemoved,
    connectors::SecretSweepSkipped,
    kafka::KafkaUnreachable,
    kafka::KafkaReachable,
    gitops::GitopsDrift,
}

impl Event {
    /// Every code [`Event::code`] can return, for documentation and the events API.
    pub const CODES: &'static [&'static str] = Code::TEXTS;

    /// Short, bounded code: metric label and `event` field.
    pub fn code(&self) -> &'static str {
        self.typed().code().as_str()
    }

    /// The connector concerned, if any.
    pub fn connector(&self) -> Option<&str> {
        self.typed().connector()
    }

    /// Who caused it (a key id or token name; never a secret), for changes made through the API.
    pub fn principal(&self) -> Option<&str> {
        self.typed().principal()
    }

    /// A bounded outcome: the exit reason of a worker, `ok` for a change, `failed`, `held`.
    pub fn outcome(&self) -> Option<&'static str> {
        self.typed().outcome()
    }

    /// Severity.
    pub fn level(&self) -> Level {
        self.typed().level()
    }

    /// The worker concerned, if any.
    pub fn worker(&self) -> Option<String> {
        self.typed().worker()
    }

    /// The pool concerned, if any.
    pub fn pool(&self) -> Option<String> {
        self.typed().pool()
    }

    /// A sentence for logs and the event list.
    pub fn message(&self) -> String {
        self.typed().message()
    }
}

#[cfg(test)]
mod tests;

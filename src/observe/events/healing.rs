//! Events of the connector watch: failures it saw, automatic restarts within each connector's
//! budget, holds and releases.

use super::{Code, Level, TypedEvent};

/// A connector or one of its tasks was seen FAILED.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorFailed {
    /// The connector.
    pub connector: String,
    /// Its pool.
    pub pool: String,
    /// The failed task (`None`: the connector itself).
    pub task: Option<u32>,
    /// First line of the error, secrets masked.
    pub error: String,
}

impl TypedEvent for ConnectorFailed {
    fn code(&self) -> Code {
        Code::ConnectorFailed
    }

    fn message(&self) -> String {
        let Self {
            connector, error, ..
        } = self;
        match self.task {
            Some(t) => format!("Task {t} of connector {connector} failed: {error}"),
            None => format!("Connector {connector} failed: {error}"),
        }
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("failed")
    }

    concerns!(connector, pool);
}

/// The supervisor restarted a failed connector's failed parts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorAutoRestarted {
    /// The connector.
    pub connector: String,
    /// Its pool.
    pub pool: String,
    /// Restarts in its budget so far, this one included.
    pub attempt: u32,
    /// The budget.
    pub max: u32,
}

impl TypedEvent for ConnectorAutoRestarted {
    fn code(&self) -> Code {
        Code::ConnectorAutoRestarted
    }

    fn message(&self) -> String {
        let Self {
            connector,
            attempt,
            max,
            ..
        } = self;
        format!(
            "Connector {connector}: failed parts restarted automatically (restart {attempt} of {max})."
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, pool);
}

/// An automatic restart call was refused or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoRestartFailed {
    /// The connector.
    pub connector: String,
    /// Its pool.
    pub pool: String,
    /// Bounded error code.
    pub code: &'static str,
    /// What failed (scrubbed).
    pub message: String,
}

impl TypedEvent for AutoRestartFailed {
    fn code(&self) -> Code {
        Code::AutoRestartFailed
    }

    fn message(&self) -> String {
        format!(
            "Automatic restart of connector {} failed: {}",
            self.connector, self.message
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some(self.code)
    }

    concerns!(connector, pool);
}

/// The restart of the worker a connector ran on was counted in the connector's budget.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartBudgetCharged {
    /// The connector.
    pub connector: String,
    /// The worker that restarted.
    pub worker: String,
    /// Restarts in its budget so far.
    pub attempt: u32,
    /// The budget.
    pub max: u32,
}

impl TypedEvent for RestartBudgetCharged {
    fn code(&self) -> Code {
        Code::RestartBudgetCharged
    }

    fn message(&self) -> String {
        let Self {
            connector,
            worker,
            attempt,
            max,
        } = self;
        format!(
            "Connector {connector} ran on worker {worker}, which restarted after a failure; that counts as restart {attempt} of {max} of the connector."
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn worker(&self) -> Option<String> {
        Some(self.worker.clone())
    }

    concerns!(connector);
}

/// A failed connector runs again (after automatic restarts).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRecovered {
    /// The connector.
    pub connector: String,
    /// Its pool.
    pub pool: String,
    /// Restarts it took.
    pub attempts: u32,
}

impl TypedEvent for ConnectorRecovered {
    fn code(&self) -> Code {
        Code::ConnectorRecovered
    }

    fn message(&self) -> String {
        format!(
            "Connector {} runs again after {} automatic restart(s).",
            self.connector, self.attempts
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, pool);
}

/// A connector used up its restart budget: no more automatic restarts until an operator
/// restarts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorHeld {
    /// The connector.
    pub connector: String,
    /// Its pool.
    pub pool: String,
    /// Restarts spent.
    pub attempts: u32,
}

impl TypedEvent for ConnectorHeld {
    fn code(&self) -> Code {
        Code::ConnectorHeld
    }

    fn message(&self) -> String {
        let Self {
            connector,
            attempts,
            ..
        } = self;
        format!(
            "Connector {connector} is held after {attempts} restarts: no more automatic restarts; fix the cause, then restart it (POST .../connectors/{connector}/restart)."
        )
    }

    fn level(&self) -> Level {
        Level::Error
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("held")
    }

    concerns!(connector, pool);
}

/// An operator's restart released a held connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorReleased {
    /// The connector.
    pub connector: String,
    /// Who restarted it.
    pub principal: String,
}

impl TypedEvent for ConnectorReleased {
    fn code(&self) -> Code {
        Code::ConnectorReleased
    }

    fn message(&self) -> String {
        let Self {
            connector,
            principal,
        } = self;
        format!(
            "Connector {connector} was restarted by {principal}; its hold is released and its restart budget is full again."
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, principal);
}

//! Events of changes made to connectors through the API.

use super::{Code, TypedEvent};

/// A change made to a connector through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorChange {
    /// Created (POST, or PUT of a new config).
    Created,
    /// Config replaced or patched.
    Updated,
    /// Deleted.
    Deleted,
    /// Paused.
    Paused,
    /// Resumed.
    Resumed,
    /// Stopped (Apache API).
    Stopped,
    /// Restarted by hand (the connector, its tasks, or one task).
    Restarted,
    /// Offsets read/alter/reset requested.
    OffsetsRequested,
    /// Active topics reset (Apache API).
    TopicsReset,
}

impl ConnectorChange {
    /// The event code.
    pub fn code(self) -> &'static str {
        self.event_code().as_str()
    }

    fn event_code(self) -> Code {
        match self {
            Self::Created => Code::ConnectorCreated,
            Self::Updated => Code::ConnectorUpdated,
            Self::Deleted => Code::ConnectorDeleted,
            Self::Paused => Code::ConnectorPaused,
            Self::Resumed => Code::ConnectorResumed,
            Self::Stopped => Code::ConnectorStopped,
            Self::Restarted => Code::ConnectorRestarted,
            Self::OffsetsRequested => Code::OffsetsRequested,
            Self::TopicsReset => Code::ConnectorTopicsReset,
        }
    }

    /// A verb for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Stopped => "stopped",
            Self::Restarted => "restarted",
            Self::OffsetsRequested => "given an offsets request",
            Self::TopicsReset => "given a topics reset",
        }
    }
}

/// A connector was changed through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorChanged {
    /// The connector.
    pub connector: String,
    /// What was done.
    pub change: ConnectorChange,
    /// Who did it (key id or token name).
    pub principal: String,
}

impl TypedEvent for ConnectorChanged {
    fn code(&self) -> Code {
        self.change.event_code()
    }

    fn message(&self) -> String {
        format!(
            "Connector {} was {} by {}.",
            self.connector,
            self.change.verb(),
            self.principal
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    concerns!(connector, principal);
}

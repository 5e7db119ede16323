//! Events of the connectors' own bookkeeping: outcomes of offsets requests and the sweep of
//! secret files no connector uses. Their log lines keep the fields they had before they became
//! events.

use std::path::PathBuf;

use super::{Code, Level, TypedEvent};

/// An offsets request was applied and the connector returned to its state.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetsRequestApplied {
    /// The connector.
    pub connector: String,
    /// The request's kind (`PATCH`, `DELETE`).
    pub kind: &'static str,
}

impl TypedEvent for OffsetsRequestApplied {
    fn code(&self) -> Code {
        Code::OffsetsApplied
    }

    fn message(&self) -> String {
        format!(
            "The offsets request ({}) of connector {} was applied.",
            self.kind, self.connector
        )
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    fn log(&self, _department: &str) {
        tracing::info!(
            connector = self.connector,
            kind = self.kind,
            "Offsets request applied."
        );
    }

    concerns!(connector);
}

/// An offsets request could not be applied (the connector was returned to its state, or that
/// failed too: the request's status says which).
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetsRequestFailed {
    /// The connector.
    pub connector: String,
    /// The request's kind (`PATCH`, `DELETE`).
    pub kind: &'static str,
    /// Bounded error code.
    pub code: &'static str,
}

impl TypedEvent for OffsetsRequestFailed {
    fn code(&self) -> Code {
        Code::OffsetsFailed
    }

    fn message(&self) -> String {
        format!(
            "The offsets request ({}) of connector {} failed ({}).",
            self.kind, self.connector, self.code
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some(self.code)
    }

    fn log(&self, _department: &str) {
        tracing::warn!(
            connector = self.connector,
            code = self.code,
            "Offsets request failed."
        );
    }

    concerns!(connector);
}

/// An offsets request changed the offsets, but the connector could not be returned to the
/// state it had before.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetsRestoreFailed {
    /// The connector.
    pub connector: String,
    /// The state it should have gone back to.
    pub state: String,
    /// Bounded error code.
    pub code: &'static str,
}

impl TypedEvent for OffsetsRestoreFailed {
    fn code(&self) -> Code {
        Code::OffsetsRestoreFailed
    }

    fn message(&self) -> String {
        format!(
            "The offsets of connector {} were changed, but returning it to {} failed ({}); resume or pause it yourself.",
            self.connector, self.state, self.code
        )
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some(self.code)
    }

    fn log(&self, _department: &str) {
        tracing::warn!(
            connector = self.connector,
            code = self.code,
            "Connector not returned to its state after an offsets change."
        );
    }

    concerns!(connector);
}

/// The sweep removed a secret file no connector uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretFileRemoved {
    /// The file.
    pub file: PathBuf,
}

const SECRET_FILE_REMOVED: &str = "Removed a secret file that no connector uses (its connector \
     was deleted while the supervisor was down or on a worker's own API, or a write was cut \
     short).";

impl TypedEvent for SecretFileRemoved {
    fn code(&self) -> Code {
        Code::SecretFileRemoved
    }

    fn message(&self) -> String {
        format!("{SECRET_FILE_REMOVED} File: {}.", self.file.display())
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("ok")
    }

    fn log(&self, _department: &str) {
        tracing::warn!(file = %self.file.display(), "{SECRET_FILE_REMOVED}");
    }
}

/// The secret-file sweep did not run.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSweepSkipped {
    /// Why (`None`: not every pool had a ready worker in time).
    pub error: Option<String>,
}

const NO_READY_WORKERS: &str = "Secret files not swept: not every pool had a ready worker in \
     time; files of connectors deleted while the supervisor was down stay until the next start.";

impl TypedEvent for SecretSweepSkipped {
    fn code(&self) -> Code {
        Code::SecretSweepSkipped
    }

    fn message(&self) -> String {
        match &self.error {
            None => NO_READY_WORKERS.to_string(),
            Some(e) => format!("Secret files not swept: {e}"),
        }
    }

    fn level(&self) -> Level {
        Level::Warn
    }

    fn outcome(&self) -> Option<&'static str> {
        Some("failed")
    }

    fn log(&self, _department: &str) {
        match &self.error {
            None => tracing::warn!("{NO_READY_WORKERS}"),
            Some(e) => tracing::warn!(error = %e, "Secret files not swept."),
        }
    }
}

//! Offsets alter/reset requests the managed way: one request per connector in flight, its phase
//! (PENDING -> APPLIED or FAILED with the reason), and its record on disk so that a request
//! survives a supervisor restart (it is taken up again, or reported FAILED, never lost).
//!
//! This module owns the records and their files. Applying a request (stop, alter through
//! KIP-875, return to the previous state) is the gateway's job; the JSON shapes the API returns
//! are built here from the record, purely.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Folder, under the supervisor's state folder, holding one file per connector's last request.
pub const OFFSET_REQUESTS_DIR: &str = "offset-requests";
/// Message of an applied PATCH (the managed API's wording; true of Connect too).
pub const PATCH_APPLIED: &str = "The Connect framework-managed offsets for this connector have been \
altered successfully. However, if this connector manages offsets externally, they will need to be \
manually altered in the system that the connector uses.";
/// Message of an applied DELETE.
pub const DELETE_APPLIED: &str = "The Connect framework-managed offsets for this connector have been \
reset successfully. However, if this connector manages offsets externally, they will need to be \
manually reset in the system that the connector uses.";

/// Why a request could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// A record file could not be read or written.
    #[error("cannot {action} offsets request file {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another request for the connector is still being applied.
    #[error(
        "an offsets {kind} request for connector {connector} is still being applied (requested at \
         {requested_at}); poll .../offsets/request/status until it is APPLIED or FAILED, then retry"
    )]
    InFlight {
        /// The connector.
        connector: String,
        /// PATCH or DELETE.
        kind: &'static str,
        /// When.
        requested_at: String,
    },
}

impl OffsetsError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "offsets_state_io",
            Self::InFlight { .. } => "offsets_request_in_flight",
        }
    }
}

/// PATCH (alter the listed partitions) or DELETE (reset everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RequestKind {
    /// Alter.
    Patch,
    /// Reset.
    Delete,
}

impl RequestKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Parses `PATCH` or `DELETE`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PATCH" => Some(Self::Patch),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Phase {
    /// Being applied.
    Pending,
    /// Done.
    Applied,
    /// Given up, with the reason in the message.
    Failed,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Applied => "APPLIED",
            Self::Failed => "FAILED",
        }
    }
}

/// The last offsets request of one connector, as kept on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetRequest {
    /// Connector name.
    pub connector: String,
    /// Synthetic connector id (`lcc-...`).
    pub id: String,
    /// Pool the connector runs on.
    pub pool: String,
    /// PATCH or DELETE.
    pub kind: RequestKind,
    /// The requested offsets (normalised; empty for DELETE).
    pub offsets: Vec<Value>,
    /// RFC 3339.
    pub requested_at: String,
    /// Phase.
    pub phase: Phase,
    /// What happened (the reason when FAILED).
    pub message: String,
    /// The offsets before the change.
    pub previous_offsets: Vec<Value>,
    /// RFC 3339, once applied.
    pub applied_at: Option<String>,
    /// Connect state to return the connector to: RUNNING, PAUSED or STOPPED.
    pub restore_state: String,
    /// Who asked (key id or token name), for the audit trail.
    pub requested_by: String,
}

impl OffsetRequest {
    /// `connect.v1.AlterOffsetRequestInfo`: the 202 answer and the `request` of the status.
    pub fn info_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.connector,
            "offsets": self.offsets,
            "requested_at": self.requested_at,
            "type": self.kind.as_str(),
        })
    }

    /// `connect.v1.AlterOffsetStatus`. `previous_offsets` is always present (the CLI reads it
    /// without a nil check).
    pub fn status_json(&self) -> Value {
        let mut status = json!({ "phase": self.phase.as_str() });
        if !self.message.is_empty() {
            status["message"] = Value::String(self.message.clone());
        }
        json!({
            "request": self.info_json(),
            "status": status,
            "previous_offsets": self.previous_offsets,
            "applied_at": self.applied_at,
        })
    }

    /// The message of a successful application.
    pub fn applied_message(&self) -> &'static str {
        match self.kind {
            RequestKind::Patch => PATCH_APPLIED,
            RequestKind::Delete => DELETE_APPLIED,
        }
    }
}

/// The records of every connector's last request, in memory and on disk.
#[derive(Debug)]
pub struct Book {
    dir: PathBuf,
    records: Mutex<HashMap<String, OffsetRequest>>,
}

fn file_name(connector: &str) -> String {
    // Connector names may hold '/', spaces and other characters file systems dislike.
    format!("{}.json", hex::encode(connector.as_bytes()))
}

impl Book {
    /// Loads the records kept in `dir` (created if missing). Unreadable files are reported and
    /// skipped, never deleted.
    pub fn open(dir: &Path) -> Result<Self, OffsetsError> {
        std::fs::create_dir_all(dir).map_err(|source| OffsetsError::Io {
            action: "create the folder of",
            path: dir.to_path_buf(),
            source,
        })?;
        let entries = std::fs::read_dir(dir).map_err(|source| OffsetsError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut records = HashMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<OffsetRequest>(&b).map_err(|e| e.to_string())
                }) {
                Ok(record) => {
                    records.insert(record.connector.clone(), record);
                }
                Err(error) => tracing::error!(
                    path = %path.display(), %error, code = "offsets_record_unreadable",
                    "An offsets request record cannot be read; it is kept for inspection and ignored."
                ),
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            records: Mutex::new(records),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OffsetRequest>> {
        self.records.lock().expect("offsets book lock poisoned")
    }

    /// The last request of `connector`.
    pub fn get(&self, connector: &str) -> Option<OffsetRequest> {
        self.lock().get(connector).cloned()
    }

    /// The pending request of `connector`, if one is being applied.
    pub fn in_flight(&self, connector: &str) -> Option<OffsetRequest> {
        self.get(connector).filter(|r| r.phase == Phase::Pending)
    }

    /// Every pending request (to take up again after a restart).
    pub fn pending(&self) -> Vec<OffsetRequest> {
        self.lock()
            .values()
            .filter(|r| r.phase == Phase::Pending)
            .cloned()
            .collect()
    }

    /// Records a new request, refusing it while another one for the same connector is pending.
    pub fn begin(&self, record: OffsetRequest) -> Result<(), OffsetsError> {
        let mut records = self.lock();
        if let Some(existing) = records.get(&record.connector)
            && existing.phase == Phase::Pending
        {
            return Err(OffsetsError::InFlight {
                connector: record.connector.clone(),
                kind: existing.kind.as_str(),
                requested_at: existing.requested_at.clone(),
            });
        }
        self.write(&record)?;
        records.insert(record.connector.clone(), record);
        Ok(())
    }

    /// Stores a new version of a request.
    pub fn update(&self, record: OffsetRequest) -> Result<(), OffsetsError> {
        let mut records = self.lock();
        self.write(&record)?;
        records.insert(record.connector.clone(), record);
        Ok(())
    }

    /// Forgets the request of a deleted connector.
    pub fn remove(&self, connector: &str) -> Result<(), OffsetsError> {
        let mut records = self.lock();
        records.remove(connector);
        let path = self.dir.join(file_name(connector));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(OffsetsError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }

    /// Writes a record atomically (temporary file, fsync, rename), so a crash leaves the old or
    /// the new version, never half of one.
    fn write(&self, record: &OffsetRequest) -> Result<(), OffsetsError> {
        let path = self.dir.join(file_name(&record.connector));
        let bytes = serde_json::to_vec_pretty(record).expect("a record serialises");
        crate::util::fs::write_atomic(&path, &bytes, crate::util::fs::SHARED_MODE).map_err(
            |source| OffsetsError::Io {
                action: "write",
                path: path.clone(),
                source,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, phase: Phase) -> OffsetRequest {
        OffsetRequest {
            connector: name.into(),
            id: "lcc-1".into(),
            pool: "shared".into(),
            kind: RequestKind::Patch,
            offsets: vec![json!({"partition": {"a": 1}, "offset": {"b": 2}})],
            requested_at: "2025-01-01T00:00:00Z".into(),
            phase,
            message: String::new(),
            previous_offsets: vec![],
            applied_at: None,
            restore_state: "RUNNING".into(),
            requested_by: "K1".into(),
        }
    }

    #[test]
    fn status_json_has_the_fields_clients_read() {
        let mut r = record("c", Phase::Pending);
        let s = r.status_json();
        assert_eq!(s["status"]["phase"], "PENDING");
        assert!(s["applied_at"].is_null());
        assert_eq!(s["previous_offsets"], json!([]));
        assert_eq!(s["request"]["type"], "PATCH");
        assert_eq!(s["request"]["name"], "c");
        assert_eq!(s["request"]["requested_at"], "2025-01-01T00:00:00Z");
        r.phase = Phase::Applied;
        r.message = r.applied_message().into();
        r.applied_at = Some("2025-01-01T00:00:05Z".into());
        let s = r.status_json();
        assert_eq!(s["status"]["phase"], "APPLIED");
        assert!(s["status"]["message"].as_str().unwrap().contains("altered"));
        assert_eq!(s["applied_at"], "2025-01-01T00:00:05Z");
    }

    #[test]
    fn one_request_per_connector_is_in_flight_and_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::open(dir.path()).unwrap();
        book.begin(record("a/b c", Phase::Pending)).unwrap();
        let err = book.begin(record("a/b c", Phase::Pending)).unwrap_err();
        assert_eq!(err.code(), "offsets_request_in_flight");
        assert!(err.to_string().contains("a/b c"));
        book.begin(record("other", Phase::Pending)).unwrap();
        let mut done = record("other", Phase::Applied);
        done.applied_at = Some("t".into());
        book.update(done).unwrap();
        // A second request after the first one finished is fine.
        book.begin(record("other", Phase::Pending)).unwrap();

        let reopened = Book::open(dir.path()).unwrap();
        assert_eq!(reopened.get("a/b c").unwrap().phase, Phase::Pending);
        let mut pending: Vec<String> = reopened
            .pending()
            .into_iter()
            .map(|r| r.connector)
            .collect();
        pending.sort();
        assert_eq!(pending, ["a/b c", "other"]);
        reopened.remove("a/b c").unwrap();
        reopened.remove("never-there").unwrap();
        assert!(Book::open(dir.path()).unwrap().get("a/b c").is_none());
    }

    #[test]
    fn unreadable_records_are_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        let book = Book::open(dir.path()).unwrap();
        assert!(book.pending().is_empty());
        assert!(dir.path().join("bad.json").exists());
    }

    #[test]
    fn kinds_parse_only_the_two_managed_values() {
        assert_eq!(RequestKind::parse("PATCH"), Some(RequestKind::Patch));
        assert_eq!(RequestKind::parse("DELETE"), Some(RequestKind::Delete));
        assert_eq!(RequestKind::parse("patch"), None);
    }
}

//! The audit trail: one JSON line per change made through the API (who, what, when, result),
//! appended to `<state_dir>/audit.jsonl` and kept across restarts, optionally also sent to a
//! Kafka topic. Refused and failed attempts are recorded too.
//!
//! Records hold names (key ids, connector and worker names), bounded codes, statuses and the
//! answer's error message, which the API has already scrubbed of secrets. Nothing is ever
//! rewritten: the file is only appended to.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::kafka::{Forwardable, Forwarder};

/// File name of the audit trail, in the state folder.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// Most bytes read from the end of the file to answer a query.
pub const MAX_READ_BYTES: u64 = 8 << 20;
/// Longest error message kept in a record.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// Why the audit trail could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, written or read.
    #[error("cannot {action} the audit file {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl AuditError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "audit_io",
        }
    }
}

/// How a change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done (2xx).
    Ok,
    /// Refused: bad request, not allowed, conflict (4xx).
    Refused,
    /// Failed (5xx).
    Failed,
}

impl Outcome {
    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=399 => Self::Ok,
            400..=499 => Self::Refused,
            _ => Self::Failed,
        }
    }
}

/// One change attempted through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it was answered (RFC 3339, UTC).
    pub time: String,
    /// The department.
    pub department: String,
    /// Who: key id, token name, `anonymous`, or `unauthenticated` when credentials failed.
    pub principal: String,
    /// Their role, when authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// What: a bounded action code (`connector_created`, `pool_scaled`, ...).
    pub action: String,
    /// The connector concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The pool or worker concerned (admin changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path (names, no query string).
    pub path: String,
    /// HTTP status answered.
    pub status: u16,
    /// The result.
    pub outcome: Outcome,
    /// The error message answered, for refused and failed changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Milliseconds taken.
    pub duration_ms: u64,
    /// The Git commit the change comes from, as `apply` sends it (the `X-Gitops-Commit`
    /// header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Forwardable for AuditRecord {
    fn key(&self) -> Option<&str> {
        self.connector.as_deref()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("an audit record serialises");
    }
}

/// Which records a query wants.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this connector.
    pub connector: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only these actions.
    pub actions: Vec<String>,
    /// Only at or after this RFC 3339 time (compared as text: every record is UTC, same width).
    pub since: Option<String>,
    /// At most this many, the most recent.
    pub limit: usize,
}

impl AuditQuery {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.connector
            .as_deref()
            .is_none_or(|c| r.connector.as_deref() == Some(c))
            && self.principal.as_deref().is_none_or(|p| r.principal == p)
            && (self.actions.is_empty() || self.actions.contains(&r.action))
            && self.since.as_deref().is_none_or(|s| r.time.as_str() >= s)
    }
}

/// The audit trail of a department.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    forwarder: Option<Forwarder<AuditRecord>>,
}

impl AuditLog {
    /// The trail in `dir` (created if missing), optionally forwarded.
    pub fn open(dir: &Path, forwarder: Option<Forwarder<AuditRecord>>) -> Self {
        Self {
            path: dir.join(AUDIT_FILE),
            file: Mutex::new(None),
            forwarder,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` (one line, synced to disk) and forwards it.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut line = serde_json::to_vec(record).expect("an audit record serialises");
        line.push(b'\n');
        {
            let mut guard = self.file.lock().expect("audit lock");
            if guard.is_none() {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
                        action: "create the folder of",
                        path: self.path.clone(),
                        source,
                    })?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(&self.path)
                    .map_err(|source| AuditError::Io {
                        action: "open",
                        path: self.path.clone(),
                        source,
                    })?;
                *guard = Some(file);
            }
            let file = guard.as_mut().expect("opened above");
            let written = file.write_all(&line).and_then(|()| file.sync_data());
            if let Err(source) = written {
                // Reopen next time (the file may have been moved away).
                *guard = None;
                return Err(AuditError::Io {
                    action: "append to",
                    path: self.path.clone(),
                    source,
                });
            }
        }
        if let Some(f) = &self.forwarder {
            f.push(record.clone());
        }
        Ok(())
    }

    /// The most recent records matching `query`, oldest first.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(AuditError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let io = |source| AuditError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        };
        let len = file.metadata().map_err(io)?.len();
        let skip_first = len > MAX_READ_BYTES;
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_READ_BYTES)))
            .map_err(io)?;
        let mut text = Vec::new();
        file.take(MAX_READ_BYTES)
            .read_to_end(&mut text)
            .map_err(io)?;
        let mut records: Vec<AuditRecord> = text
            .lines()
            .skip(usize::from(skip_first))
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .filter(|r| query.matches(r))
            .collect();
        let keep = query.limit.max(1);
        if records.len() > keep {
            records.drain(..records.len() - keep);
        }
        Ok(records)
    }

    /// Gives Kafka up to `timeout` to take waiting records.
    pub fn close(&self, timeout: std::time::Duration) {
        if let Some(f) = &self.forwarder {
            f.close(timeout);
        }
    }
}

/// Cuts an error message to [`MAX_MESSAGE_CHARS`].
pub fn short_message(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u32, connector: &str, principal: &str) -> AuditRecord {
        AuditRecord {
            time: format!("2030-01-01T00:00:{i:02}Z"),
            department: "d".into(),
            principal: principal.into(),
            role: Some("operator".into()),
            action: "connector_created".into(),
            connector: Some(connector.into()),
            target: None,
            method: "POST".into(),
            path: "/connectors".into(),
            status: 201,
            outcome: Outcome::Ok,
            message: None,
            duration_ms: 3,
            commit: None,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_are_queried_newest_last() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None);
        for i in 0..5 {
            log.append(&record(i, if i % 2 == 0 { "a" } else { "b" }, "OP"))
                .unwrap();
        }
        drop(log);
        let log = AuditLog::open(dir.path(), None);
        log.append(&record(5, "a", "ADMIN")).unwrap();
        let a = log
            .query(&AuditQuery {
                connector: Some("a".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.last().unwrap().principal, "ADMIN");
        let recent = log
            .query(&AuditQuery {
                limit: 2,
                since: Some("2030-01-01T00:00:01Z".into()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(
            recent.iter().map(|r| r.time.as_str()).collect::<Vec<_>>(),
            ["2030-01-01T00:00:04Z", "2030-01-01T00:00:05Z"]
        );
        let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        assert_eq!(text.lines().count(), 6, "appended, never rewritten");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(AUDIT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "not readable by others");
    }

    #[test]
    fn outcomes_follow_the_status_and_messages_are_bounded() {
        assert_eq!(Outcome::of_status(202), Outcome::Ok);
        assert_eq!(Outcome::of_status(409), Outcome::Refused);
        assert_eq!(Outcome::of_status(503), Outcome::Failed);
        assert_eq!(
            short_message(&"x".repeat(5000)).chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
    }
}

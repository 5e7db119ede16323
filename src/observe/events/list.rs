//! The bounded list of recent events (what the events API and the dashboard show).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::Level;

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Sequence number, increasing from 1 per department.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    /// The department.
    pub department: String,
    /// [`super::Event::code`].
    pub event: &'static str,
    /// Severity.
    pub level: Level,
    /// The pool concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The worker concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The connector concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Who caused it (key id or token name, never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Bounded outcome ([`super::Event::outcome`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// The sentence.
    pub message: String,
}

/// The recent events, bounded.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<EventRecord>)>,
}

impl EventLog {
    /// A list keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    /// Appends `record`, numbering it.
    pub fn push(&self, mut record: EventRecord) {
        let mut inner = self.inner.lock().expect("event log lock");
        inner.0 += 1;
        record.seq = inner.0;
        if inner.1.len() == self.capacity {
            inner.1.pop_front();
        }
        inner.1.push_back(record);
    }

    /// Events with a sequence number above `after`, oldest first, at most `limit`.
    pub fn since(&self, after: u64, limit: usize) -> Vec<EventRecord> {
        let inner = self.inner.lock().expect("event log lock");
        inner
            .1
            .iter()
            .filter(|r| r.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The last `limit` events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<EventRecord> {
        let inner = self.inner.lock().expect("event log lock");
        let skip = inner.1.len().saturating_sub(limit);
        inner.1.iter().skip(skip).cloned().collect()
    }
}

//! A worker's log record: its fields, its JSON form (the log views and the Kafka topic) and its
//! line in the workers' log format.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;
use time::OffsetDateTime;

use super::parse::{self, Stream};
use crate::model::LogLevel;
use crate::observe::kafka::Forwardable;

/// Where records come from: one worker.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// The worker's pool.
    pub pool: String,
    /// The worker.
    pub worker: String,
}

impl Source {
    /// Worker `worker` of `pool`.
    pub fn new(pool: &str, worker: &str) -> Self {
        Self {
            pool: pool.to_string(),
            worker: worker.to_string(),
        }
    }
}

/// One log record of a worker, redacted.
#[derive(Debug, PartialEq)]
pub struct LogRecord {
    /// Sequence number, increasing per department (a cursor for following a log).
    pub seq: u64,
    /// The line's time.
    pub time: OffsetDateTime,
    /// Level.
    pub level: LogLevel,
    /// Logger (empty for lines that are not Log4j records).
    pub logger: String,
    /// Connector, from Connect's MDC context.
    pub connector: Option<String>,
    /// MDC scope (`worker`, `task-<n>`, `offsets`, `validate`).
    pub scope: Option<String>,
    /// Task number.
    pub task: Option<u32>,
    /// First line of the message.
    pub message: String,
    /// Following lines (stack trace), newline-separated.
    pub stack: String,
    /// The worker.
    pub source: Arc<Source>,
    /// The output it was written to.
    pub stream: Stream,
}

impl LogRecord {
    /// Approximate memory held, for the buffers' budgets.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.logger.len()
            + self.message.len()
            + self.stack.len()
            + self.connector.as_ref().map_or(0, String::len)
            + self.scope.as_ref().map_or(0, String::len)
    }

    pub(super) fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("time", &parse::format_timestamp(self.time))?;
        map.serialize_entry("level", &self.level)?;
        map.serialize_entry("logger", &self.logger)?;
        map.serialize_entry("connector", &self.connector)?;
        map.serialize_entry("task", &self.task)?;
        map.serialize_entry("scope", &self.scope)?;
        map.serialize_entry("message", &self.message)?;
        if !self.stack.is_empty() {
            map.serialize_entry("stack", &self.stack)?;
        }
        map.serialize_entry("pool", &self.source.pool)?;
        map.serialize_entry("worker", &self.source.worker)?;
        map.serialize_entry("stream", &self.stream)
    }
}

impl Serialize for LogRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.write_fields(&mut map)?;
        map.end()
    }
}

/// A record on its way to Kafka: keyed by connector, with the department.
#[derive(Debug)]
pub struct Forwarded {
    pub(super) record: Arc<LogRecord>,
    pub(super) department: Arc<str>,
}

impl Serialize for Forwarded {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("department", &*self.department)?;
        self.record.write_fields(&mut map)?;
        map.end()
    }
}

impl Forwardable for Forwarded {
    fn key(&self) -> Option<&str> {
        self.record.connector.as_deref()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("a log record serialises");
    }
}

/// A record in the workers' log line format (the contract of `connect-log4j2.yaml`), stack
/// lines following.
pub fn format_record(r: &LogRecord) -> String {
    let mut line = String::with_capacity(64 + r.message.len() + r.stack.len());
    line.push_str(&parse::format_timestamp(r.time));
    line.push(' ');
    line.push_str(r.level.as_str());
    if !r.logger.is_empty() {
        line.push_str(" [");
        line.push_str(&r.logger);
        line.push(']');
    }
    if let (Some(c), Some(s)) = (&r.connector, &r.scope) {
        line.push_str(&format!(" [{c}|{s}]"));
    }
    line.push(' ');
    line.push_str(&r.message);
    if !r.stack.is_empty() {
        line.push('\n');
        line.push_str(&r.stack);
    }
    line
}

//! Bounded buffers of log records and the queries the log views ask of them.
//!
//! A [`Ring`] holds the most recent records up to a byte budget (records vary from 100 bytes to
//! a 64 KiB stack trace, so a line count would not bound memory). An [`ErrorWindow`] counts
//! ERROR lines per minute over the last hour. Pure data structures.

use std::collections::VecDeque;
use std::sync::Arc;

use time::OffsetDateTime;

use super::LogRecord;
use crate::model::LogLevel;

/// Most records one query returns.
pub const MAX_LIMIT: usize = 5000;
/// Records a query returns when it does not say.
pub const DEFAULT_LIMIT: usize = 200;

/// What a log view asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Only records at this level or above.
    pub min_level: LogLevel,
    /// Only records at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only records with a sequence number above this one (to follow a log).
    pub after: Option<u64>,
    /// Only this task of the connector.
    pub task: Option<u32>,
    /// Only this connector (the worker view).
    pub connector: Option<String>,
    /// At most this many (the most recent ones).
    pub limit: usize,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            min_level: LogLevel::Trace,
            since: None,
            after: None,
            task: None,
            connector: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Query {
    /// Whether `record` matches.
    pub fn matches(&self, record: &LogRecord) -> bool {
        record.level >= self.min_level
            && self.since.is_none_or(|t| record.time >= t)
            && self.after.is_none_or(|s| record.seq > s)
            && self.task.is_none_or(|t| record.task == Some(t))
            && self
                .connector
                .as_deref()
                .is_none_or(|c| record.connector.as_deref() == Some(c))
    }
}

/// The most recent records within a byte budget.
#[derive(Debug)]
pub struct Ring {
    records: VecDeque<Arc<LogRecord>>,
    bytes: usize,
    capacity: usize,
    evicted: u64,
}

impl Ring {
    /// A ring keeping at most `capacity` bytes of records (and always the newest one).
    pub fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            bytes: 0,
            capacity,
            evicted: 0,
        }
    }

    /// Appends `record`, evicting the oldest records over the budget.
    pub fn push(&mut self, record: Arc<LogRecord>) {
        self.bytes += record.size();
        self.records.push_back(record);
        while self.bytes > self.capacity && self.records.len() > 1 {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= old.size();
                self.evicted += 1;
            }
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The most recent `query.limit` matching records, oldest first.
    pub fn query(&self, query: &Query) -> Vec<Arc<LogRecord>> {
        let limit = query.limit.min(MAX_LIMIT);
        let mut out: Vec<Arc<LogRecord>> = self
            .records
            .iter()
            .rev()
            .filter(|r| query.matches(r))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// At most `limit` records for which `keep` holds, newest first (`newest_first`) or oldest
    /// first: the logs/v1 search, whose filters (level sets, text, cursors in either direction)
    /// are its own.
    pub fn scan(
        &self,
        newest_first: bool,
        limit: usize,
        keep: impl Fn(&LogRecord) -> bool,
    ) -> Vec<Arc<LogRecord>> {
        let matching = |r: &&Arc<LogRecord>| keep(r);
        if newest_first {
            self.records
                .iter()
                .rev()
                .filter(matching)
                .take(limit)
                .cloned()
                .collect()
        } else {
            self.records
                .iter()
                .filter(matching)
                .take(limit)
                .cloned()
                .collect()
        }
    }

    /// The newest record at `level` or above.
    pub fn last_at_least(&self, level: LogLevel) -> Option<Arc<LogRecord>> {
        self.records
            .iter()
            .rev()
            .find(|r| r.level >= level)
            .cloned()
    }
}

/// ERROR (and FATAL) lines per minute over the last hour.
#[derive(Debug, Clone)]
pub struct ErrorWindow {
    /// (minute since the epoch, count), one slot per minute of the hour.
    slots: [(i64, u32); 60],
}

impl Default for ErrorWindow {
    fn default() -> Self {
        // Minute i64::MIN never matches a real minute.
        Self {
            slots: [(i64::MIN, 0); 60],
        }
    }
}

impl ErrorWindow {
    /// Counts one error at `at`.
    pub fn add(&mut self, at: OffsetDateTime) {
        let minute = at.unix_timestamp().div_euclid(60);
        let slot = &mut self.slots[minute.rem_euclid(60) as usize];
        if slot.0 == minute {
            slot.1 = slot.1.saturating_add(1);
        } else {
            *slot = (minute, 1);
        }
    }

    /// Errors in the hour up to `now` (by whole minutes).
    pub fn last_hour(&self, now: OffsetDateTime) -> u32 {
        let minute = now.unix_timestamp().div_euclid(60);
        self.slots
            .iter()
            .filter(|(m, _)| *m > minute - 60 && *m <= minute)
            .map(|(_, n)| *n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::logs::Source;
    use proptest::prelude::*;

    fn record(seq: u64, level: LogLevel, connector: Option<&str>, size: usize) -> Arc<LogRecord> {
        Arc::new(LogRecord {
            seq,
            time: OffsetDateTime::from_unix_timestamp(seq as i64).unwrap(),
            level,
            logger: "L".into(),
            connector: connector.map(str::to_string),
            scope: Some("task-0".into()),
            task: Some(0),
            message: "m".repeat(size),
            stack: String::new(),
            source: Arc::new(Source::new("p", "p-0")),
            stream: super::super::Stream::Stdout,
        })
    }

    #[test]
    fn the_ring_keeps_the_newest_records_within_its_budget() {
        let mut ring = Ring::new(2000);
        for i in 1..=100 {
            ring.push(record(i, LogLevel::Info, None, 100));
        }
        assert!(ring.bytes() <= 2000);
        let all = ring.query(&Query {
            limit: MAX_LIMIT,
            ..Query::default()
        });
        assert_eq!(all.last().unwrap().seq, 100);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        assert_eq!(ring.evicted() as usize + ring.len(), 100);
        // A record bigger than the budget is still kept, alone.
        ring.push(record(101, LogLevel::Error, None, 5000));
        assert_eq!(ring.len(), 1);
    }

    #[test]
    fn queries_filter_by_level_time_sequence_task_and_limit() {
        let mut ring = Ring::new(1 << 20);
        for i in 1..=50 {
            let level = if i % 10 == 0 {
                LogLevel::Error
            } else {
                LogLevel::Info
            };
            ring.push(record(
                i,
                level,
                Some(if i % 2 == 0 { "a" } else { "b" }),
                10,
            ));
        }
        let errors = ring.query(&Query {
            min_level: LogLevel::Warn,
            ..Query::default()
        });
        assert_eq!(
            errors.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [10, 20, 30, 40, 50]
        );
        let recent = ring.query(&Query {
            limit: 3,
            ..Query::default()
        });
        assert_eq!(
            recent.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [48, 49, 50]
        );
        let after = ring.query(&Query {
            after: Some(45),
            connector: Some("a".into()),
            ..Query::default()
        });
        assert_eq!(
            after.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [46, 48, 50]
        );
        let since = ring.query(&Query {
            since: Some(OffsetDateTime::from_unix_timestamp(49).unwrap()),
            ..Query::default()
        });
        assert_eq!(since.len(), 2);
        assert_eq!(ring.last_at_least(LogLevel::Error).unwrap().seq, 50);
    }

    #[test]
    fn scans_go_either_way_with_their_own_filter_and_limit() {
        let mut ring = Ring::new(1 << 20);
        for i in 1..=20 {
            ring.push(record(i, LogLevel::Info, None, 10));
        }
        let seqs = |v: Vec<Arc<LogRecord>>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(ring.scan(true, 3, |r| r.seq < 15)), [14, 13, 12]);
        assert_eq!(seqs(ring.scan(false, 3, |r| r.seq > 15)), [16, 17, 18]);
        assert!(ring.scan(true, 5, |_| false).is_empty());
    }

    #[test]
    fn the_error_window_forgets_errors_older_than_an_hour() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut w = ErrorWindow::default();
        w.add(t0);
        w.add(t0 + time::Duration::minutes(30));
        w.add(t0 + time::Duration::minutes(30));
        assert_eq!(w.last_hour(t0 + time::Duration::minutes(31)), 3);
        assert_eq!(w.last_hour(t0 + time::Duration::minutes(61)), 2);
        assert_eq!(w.last_hour(t0 + time::Duration::minutes(120)), 0);
    }

    proptest! {
        #[test]
        fn the_budget_always_holds(sizes in proptest::collection::vec(0usize..3000, 1..200), cap in 100usize..10_000) {
            let mut ring = Ring::new(cap);
            for (i, s) in sizes.iter().enumerate() {
                ring.push(record(i as u64 + 1, LogLevel::Info, None, *s));
                prop_assert!(ring.bytes() <= cap || ring.len() == 1);
                prop_assert_eq!(ring.query(&Query { limit: 1, ..Query::default() })[0].seq, i as u64 + 1);
            }
        }
    }
}

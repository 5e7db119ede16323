//! Worker logs: each worker's stdout and stderr are read here, parsed into records
//! ([`parse`]), redacted ([`redact`]), kept in bounded buffers per connector and per worker
//! ([`ring`]) for the log views, optionally written to a rotated file per worker, and forwarded
//! as JSON to a Kafka topic through a bounded queue that never blocks a worker.
//!
//! The readers only do in-memory work (parse, redact, append, queue): a slow or absent Kafka
//! never slows a worker's output, whose pipe is always drained. This module does not decide
//! who may read what (that is the API's business) and never logs a line's content itself.

mod capture;
pub mod parse;
mod record;
pub mod redact;
pub mod ring;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use super::kafka::{ForwardCounters, Forwarder, StartGate};
use crate::model::{LogLevel, LogSettings, SecretRules};
use capture::RotatingFile;
pub use capture::{LineReader, STDERR_TAIL_LINE_CHARS, STDERR_TAIL_LINES, StderrTail};
pub use parse::{Draft, Stream};
pub use record::{Forwarded, LogRecord, Source, format_record};
pub use redact::Redactor;
pub use ring::{ErrorWindow, Query, Ring};

/// How long a stream may be quiet before the record waiting for more lines is ended.
pub const IDLE_FLUSH: Duration = Duration::from_millis(100);
/// Most connectors whose lines are kept (the least recently written is forgotten first).
pub const MAX_CONNECTOR_LOGS: usize = 500;
/// Longest line read as one (a longer one is cut into pieces).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Name of a worker's raw log file, in its folder; the rotated one has `.1` appended.
pub const LOG_FILE: &str = "worker.log";
/// Read buffer of a worker stream.
const READ_CHUNK: usize = 64 * 1024;

struct ConnectorLog {
    ring: Ring,
    errors: ErrorWindow,
    pool: String,
    last_seq: u64,
}

struct WorkerLog {
    ring: Ring,
    errors: ErrorWindow,
}

#[derive(Default)]
struct HubState {
    seq: u64,
    connectors: HashMap<String, ConnectorLog>,
    workers: BTreeMap<String, WorkerLog>,
}

#[derive(Debug, Clone)]
struct LogMetrics {
    lines: IntCounterVec,
    connector_errors: IntCounterVec,
    forward: ForwardCounters,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(super::metrics::NAMESPACE)
}

impl LogMetrics {
    fn new(registry: &Registry) -> Self {
        let lines = IntCounterVec::new(
            opts(
                "log_lines_total",
                "Log records read from workers, by level.",
            ),
            &["pool", "worker", "level"],
        )
        .expect("valid metric");
        let connector_errors = IntCounterVec::new(
            opts(
                "connector_log_errors_total",
                "ERROR and FATAL log records of a connector and its tasks.",
            ),
            &["pool", "connector"],
        )
        .expect("valid metric");
        let forwarded = IntCounter::with_opts(opts(
            "log_lines_forwarded_total",
            "Log records Kafka acknowledged on the log topic.",
        ))
        .expect("valid metric");
        let dropped = IntCounterVec::new(
            opts(
                "log_lines_dropped_total",
                "Log records not forwarded: buffer_full (the oldest waiting records, while Kafka is slow or away) or delivery_failed.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let queued = IntGauge::with_opts(opts(
            "log_forward_queue_lines",
            "Log records waiting to be forwarded.",
        ))
        .expect("valid metric");
        for c in [
            Box::new(lines.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(connector_errors.clone()),
            Box::new(forwarded.clone()),
            Box::new(dropped.clone()),
            Box::new(queued.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            lines,
            connector_errors,
            forward: ForwardCounters {
                forwarded,
                dropped_full: dropped.with_label_values(&["buffer_full"]),
                dropped_failed: dropped.with_label_values(&["delivery_failed"]),
                queued,
            },
        }
    }
}

/// Counters of the forwarding, for the health view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForwardStats {
    /// Whether lines are forwarded.
    pub enabled: bool,
    /// The topic.
    pub topic: Option<String>,
    /// Records Kafka acknowledged.
    pub forwarded: u64,
    /// Records dropped (queue full or delivery failed).
    pub dropped: u64,
    /// Records waiting.
    pub queued: u64,
    /// Why forwarding is off although it was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The department's worker logs.
pub struct LogHub {
    department: Arc<str>,
    settings: LogSettings,
    redactor: Redactor,
    state: Mutex<HubState>,
    forwarder: Option<Forwarder<Forwarded>>,
    forward_error: Option<String>,
    metrics: LogMetrics,
    records: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub")
            .field("department", &self.department)
            .field("forwarder", &self.forwarder)
            .finish_non_exhaustive()
    }
}

impl LogHub {
    /// The logs of `department`, with metrics in `registry`. With `producer` settings (librdkafka
    /// keys) and `settings.forward`, records are forwarded to the department's log topic once the
    /// gate opens (they wait in the bounded queue until then); a producer whose settings are
    /// invalid leaves forwarding off and says why ([`LogHub::forward_stats`]).
    pub fn new(
        department: &str,
        settings: &LogSettings,
        secrets: &SecretRules,
        registry: &Registry,
        producer: Option<(&BTreeMap<String, String>, &StartGate)>,
    ) -> Self {
        let metrics = LogMetrics::new(registry);
        let topic = settings.topic_for(department);
        let (forwarder, forward_error) = match producer {
            Some((p, gate)) if settings.forward => {
                match Forwarder::start(
                    "logs",
                    p,
                    &topic,
                    settings.buffer_lines,
                    metrics.forward.clone(),
                    gate,
                ) {
                    Ok(f) => (Some(f), None),
                    Err(e) => {
                        tracing::error!(department, error = %e, code = e.code(), "Worker logs will not be forwarded to Kafka.");
                        (None, Some(e.to_string()))
                    }
                }
            }
            _ => (None, None),
        };
        Self {
            department: Arc::from(department),
            settings: settings.clone(),
            redactor: Redactor::new(secrets),
            state: Mutex::new(HubState::default()),
            forwarder,
            forward_error,
            metrics,
            records: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Records read from every worker so far.
    pub fn records(&self) -> u64 {
        self.records.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The redactor (to teach it secret values).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().expect("log hub lock")
    }

    /// Redacts, numbers, buffers and forwards records of `source`; returns them.
    pub fn ingest(&self, source: &Arc<Source>, drafts: Vec<Draft>) -> Vec<Arc<LogRecord>> {
        if drafts.is_empty() {
            return Vec::new();
        }
        // Redaction is the costly part: done before the lock, so workers do not wait on it.
        let redacted: Vec<(Draft, String, String)> = drafts
            .into_iter()
            .map(|mut d| {
                let message = self.redactor.redact(&d.message).into_owned();
                let mut stack = if d.stack.is_empty() {
                    String::new()
                } else {
                    self.redactor.redact(&d.stack).into_owned()
                };
                if d.dropped_lines > 0 {
                    stack.push_str(&format!(
                        "\n\t... {} more line(s) left out by connect-supervisor",
                        d.dropped_lines
                    ));
                }
                d.message.clear();
                d.stack.clear();
                (d, message, stack)
            })
            .collect();
        let mut forward = Vec::new();
        let mut out = Vec::with_capacity(redacted.len());
        let mut per_level = [0u64; 6];
        {
            let mut state = self.lock();
            for (d, message, stack) in redacted {
                state.seq += 1;
                let record = Arc::new(LogRecord {
                    seq: state.seq,
                    time: d.time,
                    level: d.level,
                    task: d.task(),
                    logger: d.logger,
                    connector: d.connector,
                    scope: d.scope,
                    message,
                    stack,
                    source: Arc::clone(source),
                    stream: d.stream,
                });
                per_level[record.level as usize] += 1;
                let is_error = record.level >= LogLevel::Error;
                let seq = record.seq;
                let worker = state
                    .workers
                    .entry(source.worker.clone())
                    .or_insert_with(|| WorkerLog {
                        ring: Ring::new(self.settings.worker_buffer.bytes() as usize),
                        errors: ErrorWindow::default(),
                    });
                worker.ring.push(Arc::clone(&record));
                if is_error {
                    worker.errors.add(record.time);
                }
                if let Some(name) = &record.connector {
                    if !state.connectors.contains_key(name)
                        && state.connectors.len() >= MAX_CONNECTOR_LOGS
                        && let Some(oldest) = state
                            .connectors
                            .iter()
                            .min_by_key(|(_, c)| c.last_seq)
                            .map(|(n, _)| n.clone())
                    {
                        state.connectors.remove(&oldest);
                    }
                    let c = state
                        .connectors
                        .entry(name.clone())
                        .or_insert_with(|| ConnectorLog {
                            ring: Ring::new(self.settings.connector_buffer.bytes() as usize),
                            errors: ErrorWindow::default(),
                            pool: source.pool.clone(),
                            last_seq: 0,
                        });
                    c.ring.push(Arc::clone(&record));
                    c.last_seq = seq;
                    if is_error {
                        c.errors.add(record.time);
                        self.metrics
                            .connector_errors
                            .with_label_values(&[&source.pool, name])
                            .inc();
                    }
                }
                if self.forwarder.is_some() && record.level >= self.settings.forward_level {
                    forward.push(Forwarded {
                        record: Arc::clone(&record),
                        department: Arc::clone(&self.department),
                    });
                }
                out.push(record);
            }
        }
        self.records
            .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for level in LogLevel::ALL {
            let n = per_level[level as usize];
            if n > 0 {
                self.metrics
                    .lines
                    .with_label_values(&[&source.pool, &source.worker, level.as_str()])
                    .inc_by(n);
            }
        }
        if let Some(f) = &self.forwarder
            && !forward.is_empty()
        {
            f.push_all(forward);
        }
        out
    }

    /// Lines of connector `name` (`None` when none were seen).
    pub fn connector_lines(&self, name: &str, query: &Query) -> Option<Vec<Arc<LogRecord>>> {
        self.lock()
            .connectors
            .get(name)
            .map(|c| c.ring.query(query))
    }

    /// At most `limit` lines of connector `name` for which `keep` holds, in the order
    /// [`Ring::scan`] gives (`None` when none were seen).
    pub fn scan_connector(
        &self,
        name: &str,
        newest_first: bool,
        limit: usize,
        keep: impl Fn(&LogRecord) -> bool,
    ) -> Option<Vec<Arc<LogRecord>>> {
        self.lock()
            .connectors
            .get(name)
            .map(|c| c.ring.scan(newest_first, limit, keep))
    }

    /// Lines of worker `worker` (`None` when none were seen).
    pub fn worker_lines(&self, worker: &str, query: &Query) -> Option<Vec<Arc<LogRecord>>> {
        self.lock().workers.get(worker).map(|w| w.ring.query(query))
    }

    /// ERROR lines of connector `name` in the hour up to `now`.
    pub fn connector_errors_last_hour(&self, name: &str, now: OffsetDateTime) -> u32 {
        self.lock()
            .connectors
            .get(name)
            .map_or(0, |c| c.errors.last_hour(now))
    }

    /// The last ERROR line of connector `name`.
    pub fn connector_last_error(&self, name: &str) -> Option<Arc<LogRecord>> {
        self.lock()
            .connectors
            .get(name)
            .and_then(|c| c.ring.last_at_least(LogLevel::Error))
    }

    /// ERROR lines of every worker in the hour up to `now`.
    pub fn errors_last_hour(&self, now: OffsetDateTime) -> u32 {
        self.lock()
            .workers
            .values()
            .map(|w| w.errors.last_hour(now))
            .sum()
    }

    /// Forgets the error counter series of a deleted connector (its lines stay readable).
    pub fn connector_deleted(&self, name: &str) {
        let pool = self.lock().connectors.get(name).map(|c| c.pool.clone());
        if let Some(pool) = pool {
            let _ = self
                .metrics
                .connector_errors
                .remove_label_values(&[&pool, name]);
        }
    }

    /// How forwarding is doing.
    pub fn forward_stats(&self) -> ForwardStats {
        let f = &self.metrics.forward;
        ForwardStats {
            enabled: self.forwarder.is_some(),
            topic: self.forwarder.as_ref().map(|f| f.topic().to_string()),
            forwarded: f.forwarded.get(),
            dropped: f.dropped_full.get() + f.dropped_failed.get(),
            queued: self.forwarder.as_ref().map_or(0, |f| f.queued() as u64),
            error: self.forward_error.clone(),
        }
    }

    /// Gives Kafka up to `timeout` to take the waiting records (at shutdown).
    pub fn close(&self, timeout: Duration) {
        if let Some(f) = &self.forwarder {
            f.close(timeout);
        }
    }

    /// Teaches the redactor the values of the Java properties files in `dir` (the supervisor's
    /// per-connector secret files). Returns how many values were new.
    pub fn learn_secret_files(&self, dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut values = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("properties") {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                values.extend(crate::util::properties::parse_properties(&text).into_values());
            }
        }
        self.redactor.add_secrets(values)
    }

    /// Starts reading a worker's output: one task per stream, until the stream closes. The raw
    /// lines also go to `<dir>/worker.log`, rotated at `logs.file_size`. Returns the tail of this
    /// process's stderr (redacted), for the cause of its exit.
    pub fn attach(
        self: &Arc<Self>,
        pool: &str,
        worker: &str,
        dir: &Path,
        stdout: Option<tokio::process::ChildStdout>,
        stderr: Option<tokio::process::ChildStderr>,
    ) -> StderrTail {
        let source = Arc::new(Source::new(pool, worker));
        let file = Arc::new(Mutex::new(RotatingFile::new(
            dir.join(LOG_FILE),
            self.settings.file_size.bytes(),
        )));
        if let Some(out) = stdout {
            let hub = Arc::clone(self);
            let (source, file) = (Arc::clone(&source), Arc::clone(&file));
            tokio::spawn(async move { hub.read(out, Stream::Stdout, source, file, None).await });
        }
        let mut tail = StderrTail::default();
        if let Some(err) = stderr {
            let hub = Arc::clone(self);
            let lines = Arc::clone(&tail.lines);
            tail.reader = Some(tokio::spawn(async move {
                hub.read(err, Stream::Stderr, source, file, Some(lines))
                    .await
            }));
        }
        tail
    }

    async fn read<R: tokio::io::AsyncRead + Unpin>(
        self: Arc<Self>,
        mut stream: R,
        kind: Stream,
        source: Arc<Source>,
        file: Arc<Mutex<RotatingFile>>,
        tail: Option<Arc<Mutex<VecDeque<String>>>>,
    ) {
        let keep = |records: &[Arc<LogRecord>]| {
            if let Some(tail) = &tail {
                StderrTail::keep(tail, records);
            }
        };
        let mut lines = LineReader::new(kind);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let read = tokio::time::timeout(IDLE_FLUSH, stream.read(&mut chunk)).await;
            let n = match read {
                Err(_) => {
                    if let Some(d) = lines.flush() {
                        let records = self.ingest(&source, vec![d]);
                        keep(&records);
                        let mut file = file.lock().expect("log file lock");
                        file.write_records(&records);
                        file.flush();
                    }
                    continue;
                }
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
            };
            let drafts = lines.feed(&chunk[..n], OffsetDateTime::now_utc());
            let records = self.ingest(&source, drafts);
            keep(&records);
            file.lock().expect("log file lock").write_records(&records);
        }
        let mut rest = lines.finish(OffsetDateTime::now_utc());
        rest.extend(lines.flush());
        let records = self.ingest(&source, rest);
        keep(&records);
        let mut file = file.lock().expect("log file lock");
        file.write_records(&records);
        file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(settings: &LogSettings) -> LogHub {
        LogHub::new(
            "dept1",
            settings,
            &SecretRules::default(),
            &Registry::new(),
            None,
        )
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2030-01-01 00:00 UTC);

    fn feed(hub: &LogHub, source: &Arc<Source>, text: &str) {
        let mut reader = LineReader::new(Stream::Stdout);
        let mut drafts = reader.feed(text.as_bytes(), NOW);
        drafts.extend(reader.flush());
        hub.ingest(source, drafts);
    }

    #[test]
    fn lines_are_split_per_connector_and_per_worker_and_redacted() {
        let h = hub(&LogSettings::default());
        h.redactor().add_secrets(["hunter2hunter2"]);
        let a = Arc::new(Source::new("shared", "shared-0"));
        let b = Arc::new(Source::new("shared", "shared-1"));
        feed(
            &h,
            &a,
            "2026-11-21T10:00:00.000Z INFO [W] worker line\n\
             2026-11-21T10:00:01.000Z ERROR [T] [dept1-x|task-0] failed with hunter2hunter2\n\
             java.lang.RuntimeException: password=abcdefgh\n\
             \tat X.y(X.java:1)\n\
             2026-11-21T10:00:02.000Z INFO [T] [dept1-y|task-1] other connector\n",
        );
        feed(
            &h,
            &b,
            "2026-11-21T10:00:03.000Z WARN [T] [dept1-x|task-1] on b\n",
        );
        let x = h.connector_lines("dept1-x", &Query::default()).unwrap();
        assert_eq!(x.len(), 2);
        assert!(x.iter().all(|r| r.connector.as_deref() == Some("dept1-x")));
        assert_eq!(x[0].message, format!("failed with {}", redact::MASK));
        assert!(!x[0].stack.contains("abcdefgh"), "{}", x[0].stack);
        assert_eq!(x[0].stack.lines().count(), 2);
        assert_eq!(x[1].source.worker, "shared-1");
        let all = h.worker_lines("shared-0", &Query::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let only_task = h
            .connector_lines(
                "dept1-x",
                &Query {
                    task: Some(1),
                    ..Query::default()
                },
            )
            .unwrap();
        assert_eq!(only_task.len(), 1);
        assert!(h.connector_lines("dept1-z", &Query::default()).is_none());
        let t = time::macros::datetime!(2026-11-21 10:30 UTC);
        assert_eq!(h.connector_errors_last_hour("dept1-x", t), 1);
        assert_eq!(h.errors_last_hour(t), 1);
        let json = serde_json::to_value(&*x[0]).unwrap();
        assert_eq!(json["connector"], "dept1-x");
        assert_eq!(json["task"], 0);
        assert_eq!(json["level"], "ERROR");
        assert_eq!(json["worker"], "shared-0");
        assert_eq!(json["time"], "2026-11-21T10:00:01.000Z");
        let line = format_record(&x[0]);
        assert!(
            line.starts_with(
                "2026-11-21T10:00:01.000Z ERROR [T] [dept1-x|task-0] failed with ****"
            ),
            "{line}"
        );
        let mut reparsed = LineReader::new(Stream::Stdout);
        let mut again = reparsed.feed(format!("{line}\n").as_bytes(), NOW);
        again.extend(reparsed.flush());
        assert_eq!(again.len(), 1, "the file keeps the line format");
        assert_eq!(again[0].connector.as_deref(), Some("dept1-x"));
    }

    #[test]
    fn partial_lines_wait_for_their_end_and_long_lines_are_cut() {
        let mut r = LineReader::new(Stream::Stdout);
        assert!(
            r.feed(b"2026-11-21T10:00:00.000Z INFO [W] hel", NOW)
                .is_empty()
        );
        assert!(
            r.feed(b"lo\n", NOW).is_empty(),
            "waits for a following line"
        );
        let d = r.flush().unwrap();
        assert_eq!(d.message, "hello");
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        assert_eq!(
            r.feed(&long, NOW).len(),
            1,
            "two full pieces: the first is complete"
        );
        let out = r.feed(b"\n", NOW);
        assert_eq!(
            out.len(),
            1,
            "the first piece is complete once the second starts"
        );
        assert_eq!(r.finish(NOW).len(), 0);
        assert!(r.feed(b"tail-without-newline", NOW).is_empty());
        assert_eq!(r.finish(NOW).len(), 1, "the tail ends the third piece");
        assert_eq!(r.flush().unwrap().message, "tail-without-newline");
    }

    #[test]
    fn connectors_are_bounded() {
        let h = hub(&LogSettings::default());
        let s = Arc::new(Source::new("p", "p-0"));
        let mut text = String::new();
        for i in 0..(MAX_CONNECTOR_LOGS + 10) {
            text.push_str(&format!(
                "2026-11-21T10:00:00.000Z INFO [W] [c{i}|task-0] m\n"
            ));
        }
        feed(&h, &s, &text);
        assert!(h.connector_lines("c0", &Query::default()).is_none());
        assert!(
            h.connector_lines(&format!("c{}", MAX_CONNECTOR_LOGS + 9), &Query::default())
                .is_some()
        );
    }

    #[test]
    fn secret_files_teach_the_redactor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dept1-x.properties"),
            "# Written by connect-supervisor\nconnection.password=s3cr\\=et\\u00e9x\nother:value-two\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "k=notasecret123").unwrap();
        let h = hub(&LogSettings::default());
        assert_eq!(h.learn_secret_files(dir.path()), 2);
        assert_eq!(
            h.redactor().redact("a s3cr=etéx b"),
            format!("a {} b", redact::MASK)
        );
        assert_eq!(h.redactor().redact("notasecret123"), "notasecret123");
    }

    #[test]
    fn the_raw_file_rotates_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::new(dir.path().join(LOG_FILE), 100);
        for _ in 0..30 {
            f.write(b"0123456789\n");
        }
        f.flush();
        let main = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        let old = std::fs::metadata(dir.path().join("worker.log.1"))
            .unwrap()
            .len();
        assert!(main <= 100 && old <= 100, "{main} {old}");
    }
}

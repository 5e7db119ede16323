//! Connect's worker log lines, parsed: the line format is the contract of
//! `images/connect-runtime/config/connect-log4j2.yaml`:
//!
//! ```text
//! <UTC ts> <LEVEL> [<logger>] [<connector>|<scope>] <message>
//! 2026-11-21T10:00:00.123Z INFO [org.apache.kafka.connect.runtime.WorkerTask] [dept1-src|task-0] Committing offsets
//! ```
//!
//! The `[<connector>|<scope>]` part is Connect's MDC `connector.context` (KIP-449): absent on
//! worker-level lines; the scope is `worker` (the connector instance), `task-<n>`, `offsets` or
//! `validate`. Lines that do not start with a timestamp continue the previous record (stack
//! traces, config dumps), so an [`Assembler`] turns a stream of lines into records.
//!
//! Pure: no I/O, no clock (the caller passes the time of lines without a timestamp).

use time::OffsetDateTime;

use crate::model::LogLevel;

/// Most continuation lines kept in one record (a stack trace is cut after this many).
pub const MAX_STACK_LINES: usize = 300;
/// Most bytes kept in one record's message and stack together.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Which output of the worker a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output (Log4j's console appender).
    Stdout,
    /// Standard error (the JVM's own messages).
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// The parts of a line that starts a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<'a> {
    /// The line's timestamp.
    pub time: OffsetDateTime,
    /// Its level.
    pub level: LogLevel,
    /// The logger (a class name).
    pub logger: &'a str,
    /// The connector, from the MDC context.
    pub connector: Option<&'a str>,
    /// The MDC scope: `worker`, `task-<n>`, `offsets`, `validate`.
    pub scope: Option<&'a str>,
    /// The message (first line).
    pub message: &'a str,
}

impl Header<'_> {
    /// The task number of a `task-<n>` scope.
    pub fn task(&self) -> Option<u32> {
        task_of(self.scope?)
    }
}

/// The task number of a `task-<n>` scope.
pub fn task_of(scope: &str) -> Option<u32> {
    scope.strip_prefix("task-")?.parse().ok()
}

fn digits(bytes: &[u8], from: usize, len: usize) -> Option<u32> {
    let mut value = 0u32;
    for b in bytes.get(from..from + len)? {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    Some(value)
}

/// Parses `2026-11-21T10:00:00.123Z` (the exact width the log pattern writes).
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let year = digits(b, 0, 4)? as i32;
    let month = time::Month::try_from(digits(b, 5, 2)? as u8).ok()?;
    let day = digits(b, 8, 2)? as u8;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms_milli(
        digits(b, 11, 2)? as u8,
        digits(b, 14, 2)? as u8,
        digits(b, 17, 2)? as u8,
        digits(b, 20, 3)? as u16,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

/// Formats a time as the log pattern does: `2026-11-21T10:00:00.123Z` (UTC, milliseconds).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn is_scope(scope: &str) -> bool {
    matches!(scope, "worker" | "offsets" | "validate") || task_of(scope).is_some()
}

/// Parses a line that starts a record; `None` for a continuation line (or any other text).
pub fn parse_header(line: &str) -> Option<Header<'_>> {
    let time = parse_timestamp(line.get(..24)?)?;
    let rest = line.get(24..)?.strip_prefix(' ')?;
    let (level_text, rest) = rest.split_once(' ')?;
    let level = LogLevel::parse(level_text)?;
    let rest = rest.strip_prefix('[')?;
    let end = rest
        .find("] ")
        .or_else(|| rest.strip_suffix(']').map(|r| r.len()))?;
    let logger = &rest[..end];
    let mut message = rest.get(end + 2..).unwrap_or("");
    let (mut connector, mut scope) = (None, None);
    if let Some(context) = message.strip_prefix('[')
        && let Some(close) = context.find(']')
        && let Some((name, s)) = context[..close].rsplit_once('|')
        && !name.is_empty()
        && is_scope(s)
    {
        connector = Some(name);
        scope = Some(s);
        message = context[close + 1..]
            .strip_prefix(' ')
            .unwrap_or(&context[close + 1..]);
    }
    Some(Header {
        time,
        level,
        logger,
        connector,
        scope,
        message,
    })
}

/// A record being assembled (owned).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The line's timestamp, or when it was read.
    pub time: OffsetDateTime,
    /// Level (lines without one: INFO on stdout, WARN on stderr).
    pub level: LogLevel,
    /// Logger; empty for lines that are not Log4j records.
    pub logger: String,
    /// Connector from the MDC context.
    pub connector: Option<String>,
    /// MDC scope.
    pub scope: Option<String>,
    /// First line of the message.
    pub message: String,
    /// Following lines (stack trace, config dump), newline-separated.
    pub stack: String,
    /// Continuation lines left out because the record was full.
    pub dropped_lines: u32,
    /// Where the line came from.
    pub stream: Stream,
    /// Whether the record started with a Log4j header (otherwise only indented lines and
    /// `Caused by:` continue it).
    structured: bool,
}

impl Draft {
    /// The task number of a `task-<n>` scope.
    pub fn task(&self) -> Option<u32> {
        task_of(self.scope.as_deref()?)
    }

    fn bytes(&self) -> usize {
        self.message.len() + self.stack.len()
    }

    fn continue_with(&mut self, line: &str) {
        let stack_lines = if self.stack.is_empty() {
            0
        } else {
            self.stack.matches('\n').count() + 1
        };
        if stack_lines >= MAX_STACK_LINES || self.bytes() + line.len() + 1 > MAX_RECORD_BYTES {
            self.dropped_lines = self.dropped_lines.saturating_add(1);
            return;
        }
        if !self.stack.is_empty() {
            self.stack.push('\n');
        }
        self.stack.push_str(line);
    }
}

fn looks_like_continuation(line: &str) -> bool {
    line.starts_with([' ', '\t'])
        || line.starts_with("Caused by:")
        || line.starts_with("Suppressed:")
        || line.starts_with("...")
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_RECORD_BYTES {
        return text.to_string();
    }
    let mut end = MAX_RECORD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Groups the lines of one stream into records.
#[derive(Debug)]
pub struct Assembler {
    stream: Stream,
    pending: Option<Draft>,
}

impl Assembler {
    /// An assembler of lines from `stream`.
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            pending: None,
        }
    }

    /// Whether a record waits for more lines.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one line (without its newline); returns the record it completes, if any. `now` is
    /// the time of lines that carry none.
    pub fn push(&mut self, line: &str, now: OffsetDateTime) -> Option<Draft> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(h) = parse_header(line) {
            let draft = Draft {
                time: h.time,
                level: h.level,
                logger: h.logger.to_string(),
                connector: h.connector.map(str::to_string),
                scope: h.scope.map(str::to_string),
                message: truncate(h.message),
                stack: String::new(),
                dropped_lines: 0,
                stream: self.stream,
                structured: true,
            };
            return self.pending.replace(draft);
        }
        if let Some(p) = &mut self.pending
            && (p.structured || looks_like_continuation(line))
        {
            p.continue_with(line);
            return None;
        }
        if line.trim().is_empty() {
            return None;
        }
        let draft = Draft {
            time: now,
            level: match self.stream {
                Stream::Stdout => LogLevel::Info,
                Stream::Stderr => LogLevel::Warn,
            },
            logger: String::new(),
            connector: None,
            scope: None,
            message: truncate(line),
            stack: String::new(),
            dropped_lines: 0,
            stream: self.stream,
            structured: false,
        };
        self.pending.replace(draft)
    }

    /// The record waiting for more lines, ended now (the stream went quiet or closed).
    pub fn flush(&mut self) -> Option<Draft> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2030-01-01 00:00 UTC);

    #[test]
    fn a_task_line_names_its_connector_task_logger_and_level() {
        let line = "2026-11-21T10:00:00.123Z ERROR [org.apache.kafka.connect.runtime.WorkerTask] [dept1-orders-sink|task-3] WorkerSinkTask{id=dept1-orders-sink-3} Task threw an uncaught and unrecoverable exception";
        let h = parse_header(line).unwrap();
        assert_eq!(h.level, LogLevel::Error);
        assert_eq!(h.logger, "org.apache.kafka.connect.runtime.WorkerTask");
        assert_eq!(h.connector, Some("dept1-orders-sink"));
        assert_eq!(h.scope, Some("task-3"));
        assert_eq!(h.task(), Some(3));
        assert!(h.message.starts_with("WorkerSinkTask{id="), "{}", h.message);
        assert_eq!(h.time, time::macros::datetime!(2026-11-21 10:00:00.123 UTC));
    }

    #[test]
    fn worker_lines_have_no_connector_even_when_the_message_starts_with_brackets() {
        let line = "2026-11-21T10:00:00.000Z INFO [org.apache.kafka.connect.runtime.distributed.DistributedHerder] [Worker clientId=connect-127.0.0.1:18083, groupId=dept1-connect-shared] Joined group";
        let h = parse_header(line).unwrap();
        assert_eq!(h.connector, None);
        assert!(h.message.starts_with("[Worker clientId="));
        let line = "2026-11-21T10:00:00.000Z WARN [x.Y] [dept1-a|worker] Connector started";
        let h = parse_header(line).unwrap();
        assert_eq!((h.connector, h.scope), (Some("dept1-a"), Some("worker")));
        assert_eq!(h.task(), None);
        assert_eq!(h.message, "Connector started");
    }

    #[test]
    fn other_text_is_not_a_header() {
        for line in [
            "",
            "\tat org.apache.kafka.connect.runtime.WorkerTask.run(WorkerTask.java:1)",
            "java.lang.RuntimeException: boom",
            "2026-11-21 10:00:00,000 INFO [x] y",
            "2026-13-21T10:00:00.000Z INFO [x] y",
            "2026-11-21T10:00:00.000Z LOUD [x] y",
            "2026-11-21T10:00:00.000Z INFO x y",
        ] {
            assert!(parse_header(line).is_none(), "{line:?}");
        }
    }

    #[test]
    fn stack_traces_stay_attached_to_their_line() {
        let mut a = Assembler::new(Stream::Stdout);
        let lines = [
            "2026-11-21T10:00:00.000Z ERROR [W] [c1|task-0] Task failed",
            "org.apache.kafka.connect.errors.ConnectException: no such folder",
            "\tat org.apache.kafka.connect.file.FileStreamSinkTask.start(FileStreamSinkTask.java:70)",
            "Caused by: java.nio.file.NoSuchFileException: /x/out.txt",
            "\t... 9 more",
            "2026-11-21T10:00:01.000Z INFO [W] next",
        ];
        let mut done = Vec::new();
        for l in lines {
            done.extend(a.push(l, NOW));
        }
        assert_eq!(done.len(), 1);
        let r = &done[0];
        assert_eq!(r.connector.as_deref(), Some("c1"));
        assert_eq!(r.task(), Some(0));
        assert_eq!(r.stack.lines().count(), 4);
        assert!(
            r.stack
                .starts_with("org.apache.kafka.connect.errors.ConnectException")
        );
        let last = a.flush().unwrap();
        assert_eq!(last.message, "next");
        assert!(a.flush().is_none());
    }

    #[test]
    fn raw_lines_stand_alone_unless_they_continue() {
        let mut a = Assembler::new(Stream::Stderr);
        assert!(a.push("OpenJDK warning: something", NOW).is_none());
        let first = a
            .push("Exception in thread \"main\" java.lang.Error: x", NOW)
            .unwrap();
        assert_eq!(first.message, "OpenJDK warning: something");
        assert_eq!(first.level, LogLevel::Warn);
        assert_eq!(first.time, NOW);
        assert!(a.push("\tat Main.main(Main.java:1)", NOW).is_none());
        let second = a.flush().unwrap();
        assert_eq!(second.stack, "\tat Main.main(Main.java:1)");
        assert!(
            a.push("   ", NOW).is_none(),
            "blank lines alone are dropped"
        );
    }

    #[test]
    fn records_are_bounded() {
        let mut a = Assembler::new(Stream::Stdout);
        a.push("2026-11-21T10:00:00.000Z ERROR [W] boom", NOW);
        for i in 0..(MAX_STACK_LINES + 50) {
            a.push(&format!("\tat frame{i}"), NOW);
        }
        let r = a.flush().unwrap();
        assert_eq!(r.stack.lines().count(), MAX_STACK_LINES);
        assert_eq!(r.dropped_lines, 50);
        let huge = "x".repeat(MAX_RECORD_BYTES * 2);
        a.push(&format!("2026-11-21T10:00:00.000Z INFO [W] {huge}"), NOW);
        a.push(&huge, NOW);
        let r = a.flush().unwrap();
        assert!(r.message.len() + r.stack.len() <= MAX_RECORD_BYTES);
        assert_eq!(r.dropped_lines, 1);
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panicking_and_records_keep_every_header(
            lines in proptest::collection::vec("[ -~\\t]{0,80}", 0..40),
        ) {
            let mut a = Assembler::new(Stream::Stdout);
            let mut records = 0;
            let headers = lines.iter().filter(|l| parse_header(l).is_some()).count();
            for l in &lines {
                records += usize::from(a.push(l, NOW).is_some_and(|d| d.structured));
            }
            records += usize::from(a.flush().is_some_and(|d| d.structured));
            prop_assert_eq!(records, headers);
        }

        #[test]
        fn timestamps_round_trip(secs in 0i64..4_000_000_000, millis in 0u16..1000) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                + time::Duration::milliseconds(i64::from(millis));
            prop_assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        }
    }
}

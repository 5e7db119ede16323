//! Reading a worker's output: bytes into lines and records ([`LineReader`]), the stderr tail
//! kept for exit events ([`StderrTail`]), and the rotated raw log file.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::MAX_LINE_BYTES;
use super::parse::{self, Draft, Stream};
use super::record::{LogRecord, format_record};

/// Lines of stderr kept per process for [`StderrTail`].
pub const STDERR_TAIL_LINES: usize = 20;
/// Longest stderr line kept, in characters (longer ones are cut).
pub const STDERR_TAIL_LINE_CHARS: usize = 400;

/// The last [`STDERR_TAIL_LINES`] lines one worker process wrote to stderr, redacted like every
/// record (a JVM that cannot start says why there: a missing jar, a bad option).
#[derive(Debug, Default)]
pub struct StderrTail {
    pub(super) lines: Arc<Mutex<VecDeque<String>>>,
    pub(super) reader: Option<tokio::task::JoinHandle<()>>,
}

impl StderrTail {
    pub(super) fn keep(lines: &Mutex<VecDeque<String>>, records: &[Arc<LogRecord>]) {
        let mut lines = lines.lock().expect("stderr tail lock");
        for record in records {
            let text = std::iter::once(record.message.as_str())
                .chain(record.stack.lines().filter(|l| !l.trim().is_empty()));
            for line in text {
                if lines.len() == STDERR_TAIL_LINES {
                    lines.pop_front();
                }
                let mut line = line.trim_end().to_string();
                if let Some((cut, _)) = line.char_indices().nth(STDERR_TAIL_LINE_CHARS) {
                    line.truncate(cut);
                    line.push('…');
                }
                lines.push_back(line);
            }
        }
    }

    /// The tail once the process has exited: waits up to `wait` for its stderr to close (a
    /// grandchild may hold it open), then returns what was read.
    pub async fn collect(mut self, wait: Duration) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(wait, reader).await;
        }
        self.lines
            .lock()
            .expect("stderr tail lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Splits a byte stream into lines and records: the per-stream state of a reader.
#[derive(Debug)]
pub struct LineReader {
    partial: Vec<u8>,
    assembler: parse::Assembler,
}

impl LineReader {
    /// A reader of `stream`.
    pub fn new(stream: Stream) -> Self {
        Self {
            partial: Vec::new(),
            assembler: parse::Assembler::new(stream),
        }
    }

    /// Takes the next bytes; returns the records they complete.
    pub fn feed(&mut self, data: &[u8], now: OffsetDateTime) -> Vec<Draft> {
        let mut out = Vec::new();
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let line = &rest[..i];
            if self.partial.is_empty() {
                out.extend(self.line(line, now));
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                out.extend(self.line(&whole, now));
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE_BYTES {
            let head: Vec<u8> = self.partial.drain(..MAX_LINE_BYTES).collect();
            out.extend(self.line(&head, now));
        }
        out
    }

    fn line(&mut self, bytes: &[u8], now: OffsetDateTime) -> Option<Draft> {
        let text = String::from_utf8_lossy(bytes);
        self.assembler.push(&text, now)
    }

    /// The record waiting for more lines, ended now.
    pub fn flush(&mut self) -> Option<Draft> {
        self.assembler.flush()
    }

    /// At the end of the stream: the last line even without its newline.
    pub fn finish(&mut self, now: OffsetDateTime) -> Vec<Draft> {
        if self.partial.is_empty() {
            return Vec::new();
        }
        let last = std::mem::take(&mut self.partial);
        self.line(&last, now).into_iter().collect()
    }
}

/// The (redacted) output of a worker, in a file rotated at a size: `worker.log` and
/// `worker.log.1`.
pub(super) struct RotatingFile {
    path: PathBuf,
    limit: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
    written: u64,
    failed: bool,
}

impl RotatingFile {
    pub(super) fn new(path: PathBuf, limit: u64) -> Self {
        Self {
            path,
            limit,
            file: None,
            written: 0,
            failed: false,
        }
    }

    fn open(&mut self) -> Option<&mut std::io::BufWriter<std::fs::File>> {
        if self.file.is_none() && !self.failed {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => {
                    self.written = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(std::io::BufWriter::with_capacity(64 * 1024, f));
                }
                Err(e) => {
                    // The buffers and the forwarding still work; say it once.
                    self.failed = true;
                    tracing::warn!(path = %self.path.display(), error = %e, "Cannot write the worker's log file.");
                }
            }
        }
        self.file.as_mut()
    }

    pub(super) fn write(&mut self, data: &[u8]) {
        if self.limit == 0 {
            return;
        }
        if self.written + data.len() as u64 > self.limit && self.written > 0 {
            self.flush();
            self.file = None;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let _ = std::fs::rename(&self.path, rotated);
        }
        if let Some(f) = self.open()
            && f.write_all(data).is_ok()
        {
            self.written += data.len() as u64;
        }
    }

    pub(super) fn write_records(&mut self, records: &[Arc<LogRecord>]) {
        if self.limit == 0 || records.is_empty() {
            return;
        }
        let mut text = String::new();
        for r in records {
            text.push_str(&format_record(r));
            text.push('\n');
        }
        self.write(text.as_bytes());
    }

    pub(super) fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }
}

//! Helpers of the observability tests: promtool, reading figures out of the Prometheus text
//! format, a Kafka broker of a test's own (for the log topic), and reading JSON records back
//! from a topic with rdkafka.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connect_supervisor::dev::EmbeddedKafka;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::Value;

use super::{PROJECT, runtime, scratch, unique};

/// `promtool` (Debian package `prometheus`), or a failure saying how to get it.
pub fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "promtool is missing: these tests check the metrics and alert rules with it. Install \
             it with `apt-get install prometheus` (Debian; .ci/run does it) or put a promtool \
             binary on PATH"
        )
    })
}

/// Runs promtool with `args` and `stdin`; returns (success, stdout + stderr).
pub fn run_promtool(args: &[&str], stdin: Option<&str>, dir: &Path) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write to promtool");
        }
    }
    let out = child.wait_with_output().expect("promtool ends");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The folder of the Prometheus rules.
pub fn rules_dir() -> PathBuf {
    Path::new(PROJECT).join("deploy/prometheus")
}

/// Values of the samples named `name` whose labels include every `labels` pair.
pub fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect()
}

/// The one value of `name` with `labels`, if there is one sample.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let v = samples(text, name, labels);
    (v.len() == 1).then(|| v[0])
}

/// Family names (`# TYPE` lines) of a metrics text.
pub fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// A broker of the test's own, started from a plain thread (it outlives the test's runtime
/// only until the binary exits; the parent-death signal stops it).
pub struct OwnBroker {
    /// The broker.
    pub broker: EmbeddedKafka,
}

impl OwnBroker {
    /// Starts a broker in a fresh scratch folder.
    pub async fn start() -> Self {
        let dir = scratch(&unique("broker"));
        let broker = EmbeddedKafka::start(&runtime(), Path::new("java"), &dir)
            .await
            .unwrap_or_else(|e| panic!("the test's own broker did not start: {e}"));
        Self { broker }
    }
}

/// Reads `topic` on `bootstrap` from the beginning until `done` returns true for the records
/// read so far (key, JSON value), or fails after `timeout` naming `what`.
pub fn read_json_until(
    bootstrap: &str,
    topic: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[(Option<String>, Value)]) -> bool,
) -> Vec<(Option<String>, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("it-logs"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut records = Vec::new();
    loop {
        if done(&records) {
            return records;
        }
        if started.elapsed() > timeout {
            let last: Vec<String> = records
                .iter()
                .rev()
                .take(5)
                .map(|(k, v)| format!("{k:?} {v}"))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for {what} on {topic}: read {} records, the last: {last:#?}",
                records.len()
            );
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            let value: Value = m
                .payload()
                .and_then(|p| serde_json::from_slice(p).ok())
                .unwrap_or_else(|| {
                    panic!(
                        "a record on {topic} is not JSON: {:?}",
                        m.payload().map(String::from_utf8_lossy)
                    )
                });
            records.push((key, value));
        }
    }
}

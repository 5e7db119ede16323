//! Shared harness of the integration tests: one real KRaft broker per test binary, departments of
//! real Connect worker JVMs started through the library, and rdkafka helpers to check data.
//!
//! Everything runs on loopback with free ports and per-test names (department ids, topics), so
//! tests in one binary can run in parallel without fighting over ports or group ids. Processes
//! get a parent-death signal, so nothing outlives the test binary.
#![allow(dead_code)]

pub mod observe;
pub mod supervision;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use connect_supervisor::config;
use connect_supervisor::connect::ConnectClient;
use connect_supervisor::dev::EmbeddedKafka;
use connect_supervisor::model::Department;
use connect_supervisor::runtime::{self, RuntimeLayout};
use connect_supervisor::supervisor::Supervisor;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// The project's root.
pub const PROJECT: &str = env!("CARGO_MANIFEST_DIR");
/// How long a department of fresh JVMs may take to become ready on a busy 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The Connect runtime, materialised once per test binary from the project's pom (offline when
/// the cache is current). Fails the test with what is missing when Maven or the network is not
/// there.
pub fn runtime() -> RuntimeLayout {
    static RUNTIME: OnceLock<RuntimeLayout> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let source = Path::new(PROJECT).join("images/connect-runtime");
            let dest = Path::new(PROJECT).join(".cache/connect-runtime");
            if let Err(e) = runtime::materialise(&source, &dest) {
                panic!(
                    "the tests need the Connect runtime and could not materialise it: {e}\n\
                     (run `cargo run -- runtime fetch`; it needs Maven and Maven Central)"
                );
            }
            RuntimeLayout::new(dest)
        })
        .clone()
}

/// Folder for this test binary's temporary files, under `target/tmp`. Folders of earlier test
/// binaries whose process is gone are removed.
pub fn scratch_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("it-").and_then(|r| r.split('-').next())
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".into());
        let root = base.join(format!("it-{}-{exe}", std::process::id()));
        std::fs::create_dir_all(&root).expect("create scratch root");
        root
    })
    .clone()
}

/// A fresh folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = scratch_root().join(unique(name));
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// A name unique within this test binary and across binaries: `<prefix><n><random>`, lowercase
/// letters and digits only (valid as a department id, topic or connector name part).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random::<u32>() % 46_656;
    format!("{prefix}{n}{}", radix36(salt))
}

fn radix36(mut v: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

struct SharedKafka {
    // Keeps the runtime that owns the broker process alive for the whole test binary.
    _runtime: tokio::runtime::Runtime,
    bootstrap: String,
}

/// The test binary's shared broker, started on first use.
pub fn kafka_bootstrap() -> String {
    static KAFKA: OnceLock<SharedKafka> = OnceLock::new();
    KAFKA
        .get_or_init(|| {
            let layout = runtime();
            let dir = scratch_root().join("kafka");
            // Started from a plain thread: the caller may be inside a test's async runtime.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let broker = rt
                    .block_on(EmbeddedKafka::start(&layout, Path::new("java"), &dir))
                    .unwrap_or_else(|e| panic!("the shared test broker did not start: {e}"));
                let bootstrap = broker.bootstrap_servers();
                // The broker lives until the test binary exits (parent-death signal).
                std::mem::forget(broker);
                SharedKafka {
                    _runtime: rt,
                    bootstrap,
                }
            })
            .join()
            .expect("broker start thread")
        })
        .bootstrap
        .clone()
}

/// One pool of a test department.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Pool name.
    pub name: &'static str,
    /// Worker count.
    pub workers: u32,
    /// CPU per worker.
    pub cpu: &'static str,
    /// Memory per worker.
    pub memory: &'static str,
    /// Extra TOML lines inside the pool table (e.g. `jvm_options = [...]`).
    pub extra: &'static str,
}

impl PoolSpec {
    /// `workers` workers of 1 CPU and 512 MiB (heap 384 MiB).
    pub fn new(name: &'static str, workers: u32) -> Self {
        Self {
            name,
            workers,
            cpu: "1",
            memory: "512MiB",
            extra: "",
        }
    }
}

/// The TOML of a test department with a unique id, on the shared broker, with state in `state`.
/// `extra` is appended at the end (more tables).
pub fn department_toml(id: &str, pools: &[PoolSpec], state: &Path, extra: &str) -> String {
    let mut text = format!(
        r#"
[department]
id = "{id}"
environment_id = "env-{id}"
kafka_cluster_id = "lkc-{id}"

[kafka]
bootstrap_servers = "{bootstrap}"
internal_topic_replication_factor = 1

[runtime]
dir = "{runtime}"

[supervisor]
listen = "127.0.0.1:0"
state_dir = "{state}"
"#,
        bootstrap = kafka_bootstrap(),
        runtime = runtime().root().display(),
        state = state.display(),
    );
    for pool in pools {
        text += &format!(
            r#"
[[pools]]
name = "{}"
workers = {}
cpu = "{}"
memory = "{}"
{}
[pools.worker_config]
"plugin.discovery" = "service_load"
"offset.flush.interval.ms" = "1000"
"#,
            pool.name, pool.workers, pool.cpu, pool.memory, pool.extra
        );
    }
    text + extra
}

/// Parses a test department.
pub fn department(pools: &[PoolSpec]) -> Department {
    let id = unique("t");
    let state = scratch(&format!("{id}-state"));
    let text = department_toml(&id, pools, &state, "");
    config::parse(&text, Path::new(PROJECT), &|_| None)
        .unwrap_or_else(|e| panic!("test department is invalid: {e:?}\n{text}"))
}

/// A running test department.
pub struct TestDepartment {
    /// The supervisor running it.
    pub supervisor: Arc<Supervisor>,
    /// One HTTP client for the workers.
    pub http: reqwest::Client,
}

impl TestDepartment {
    /// Starts `department` and waits until every worker is ready.
    pub async fn start(department: Department) -> Self {
        let supervisor = Supervisor::start(department, runtime())
            .await
            .unwrap_or_else(|e| panic!("department did not start: {e}"));
        if let Err(e) = supervisor.wait_until_ready(READY_TIMEOUT).await {
            supervisor.shutdown().await;
            panic!("{e}");
        }
        Self {
            supervisor,
            http: ConnectClient::default_http(),
        }
    }

    /// The department's id.
    pub fn id(&self) -> String {
        self.supervisor.department().id.clone()
    }

    /// A Connect client of the first ready worker of `pool`. It resends requests Connect refuses
    /// only because a rebalance is under way, as every real client of Connect must.
    pub fn worker(&self, pool: &str) -> ConnectClient {
        let url = self
            .supervisor
            .ready_worker_urls(pool)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("pool {pool} has no ready worker"));
        ConnectClient::new(self.http.clone(), url).retrying_rebalances(20)
    }

    /// Stops every worker.
    pub async fn stop(self) {
        self.supervisor.shutdown().await;
    }
}

/// Polls `check` every 250 ms until it returns `Some`, or fails naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Produces `values` (no key) to `topic` and waits until all are acknowledged.
pub fn produce(topic: &str, values: &[String]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for v in values {
        producer
            .send(BaseRecord::<(), String>::to(topic).payload(v))
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Reads `topic` from the beginning until `count` records arrived (failing after `timeout`), then
/// keeps reading for `settle` to catch extra records. Returns the values as text.
pub fn consume(topic: &str, count: usize, timeout: Duration, settle: Duration) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("it-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    let started = Instant::now();
    let mut settle_until: Option<Instant> = None;
    loop {
        if let Some(until) = settle_until {
            if Instant::now() >= until {
                break;
            }
        } else if values.len() >= count {
            settle_until = Some(Instant::now() + settle);
        } else if started.elapsed() > timeout {
            panic!(
                "read {} of {count} records from {topic} within {timeout:?}",
                values.len()
            );
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            // The topic may not exist yet (the connector creates it): keep polling.
            let Ok(message) = message else { continue };
            let text = message
                .payload()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            values.push(text);
        }
    }
    values
}

/// Config of a FileStreamSource reading `file` into `topic` as plain strings.
pub fn file_source(file: &Path, topic: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("connector.class".into(), "FileStreamSource".into()),
        ("tasks.max".into(), "1".into()),
        ("file".into(), file.display().to_string()),
        ("topic".into(), topic.into()),
        (
            "value.converter".into(),
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "key.converter".into(),
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
    ])
}

/// Config of a FileStreamSink writing `topic` to `file` as plain strings.
pub fn file_sink(topic: &str, file: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("connector.class".into(), "FileStreamSink".into()),
        ("tasks.max".into(), "1".into()),
        ("file".into(), file.display().to_string()),
        ("topics".into(), topic.into()),
        (
            "value.converter".into(),
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "key.converter".into(),
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
    ])
}

/// `n` distinct lines.
pub fn numbered_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("line {i:05} {}", "x".repeat(i % 17)))
        .collect()
}

/// The lines of a file (empty when it does not exist yet).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}
pub mod api;
pub mod browser;
pub mod guardrails;

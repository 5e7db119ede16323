//! The two figures of issue 6, each next to a baseline measured in the same run:
//!
//! 1. `GET /metrics` of a department with 4 real Connect workers and 100 connectors (target:
//!    under 50 ms), against encoding the supervisor's own registry alone and against one worker's
//!    JMX exporter scraped directly.
//! 2. Worker log lines parsed, redacted, buffered and forwarded to a real Kafka broker, read from
//!    a real pipe as a worker's stdout is (target: at least 50,000 lines/s), with the process's
//!    CPU during it, against parsing alone and against the pipeline without forwarding.
//!
//! Real parts: KRaft brokers and Connect worker JVMs from the runtime. Run with
//! `cargo bench --bench observe` (one part: `cargo bench --bench observe -- metrics` or `-- logs`).

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;
#[path = "stats/mod.rs"]
#[allow(dead_code)]
mod stats;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_supervisor::model::{LogSettings, SecretRules};
use connect_supervisor::observe::kafka::StartGate;
use connect_supervisor::observe::logs::{LineReader, LogHub, Stream};
use connect_supervisor::process::{Output, SpawnSpec, Spawner};
use harness::api::TestApi;
use harness::{PoolSpec, file_source, scratch, unique};
use stats::{ms, percentile, report};
use time::OffsetDateTime;

const CONNECTORS: usize = 100;
const WORKERS: u32 = 4;
const METRICS_SAMPLES: usize = 200;
/// Lines of the synthetic worker log.
const LOG_LINES: usize = 600_000;

/// CPU time of this process (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if filter.as_deref().is_none_or(|f| "metrics".contains(f)) {
        rt.block_on(metrics_scrape());
    }
    if filter.as_deref().is_none_or(|f| "logs".contains(f)) {
        rt.block_on(log_throughput());
    }
}

async fn metrics_scrape() {
    println!("\n== /metrics with {CONNECTORS} connectors and {WORKERS} workers");
    let mut pool = PoolSpec::new("shared", WORKERS);
    pool.cpu = "0.5";
    pool.memory = "512MiB";
    let api = TestApi::start(&[pool], "", "\n[metrics]\nscrape_interval = \"5s\"\n").await;
    let id = api.dept.id();
    let worker = api.dept.worker("shared");
    let dir = scratch("bench-metrics");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let topic = unique(&format!("{id}-bench-"));
    for i in 0..CONNECTORS {
        let name = format!("{id}-files-source-dev-{i:03}");
        worker
            .create_connector(&name, &file_source(&input, &topic))
            .await
            .expect("create");
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    // Every connector's task reported by the exporters, and the connector series of the poll.
    let text = loop {
        let text = http
            .get(api.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let tasks = harness::observe::samples(
            &text,
            "kafka_connect_connector_task_status",
            &[("status", "running")],
        )
        .len();
        let connectors =
            harness::observe::samples(&text, "kcs_connector_state", &[("state", "running")])
                .iter()
                .filter(|v| **v == 1.0)
                .count();
        let workers = harness::observe::samples(&text, "kcs_worker_scrape_up", &[])
            .iter()
            .filter(|v| **v == 1.0)
            .count();
        if tasks == CONNECTORS && connectors == CONNECTORS && workers == WORKERS as usize {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "after 10 minutes: {tasks} task series, {connectors} running connectors, {workers} scraped workers"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "output: {} KiB, {series} series, {} families",
        text.len() / 1024,
        harness::observe::families(&text).len()
    );
    let observer = Arc::clone(api.dept.supervisor.observer());
    let worker_metrics = api.dept.supervisor.metrics_targets()[0].2.clone();
    // Warm up every path.
    for _ in 0..20 {
        let _ = http
            .get(api.url("/metrics"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
        let _ = http
            .get(&worker_metrics)
            .send()
            .await
            .unwrap()
            .bytes()
            .await;
    }
    let mut registry_only = Vec::new();
    let mut in_process = Vec::new();
    for _ in 0..METRICS_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(observer.metrics().encode());
        registry_only.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(observer.encode_metrics());
        in_process.push(t.elapsed());
    }
    let mut through_http = Vec::new();
    for _ in 0..METRICS_SAMPLES {
        let t = Instant::now();
        let r = http.get(api.url("/metrics")).send().await.unwrap();
        assert!(r.status().is_success());
        std::hint::black_box(r.bytes().await.unwrap());
        through_http.push(t.elapsed());
    }
    let mut one_worker = Vec::new();
    for _ in 0..METRICS_SAMPLES / 4 {
        let t = Instant::now();
        let r = http
            .get(&worker_metrics)
            .header("accept", "text/plain; version=0.0.4")
            .send()
            .await
            .unwrap();
        std::hint::black_box(r.bytes().await.unwrap());
        one_worker.push(t.elapsed());
    }
    let base = report(
        "baseline: encode the supervisor's registry alone",
        &mut registry_only,
    );
    let worker_p50 = report(
        "baseline: one worker's JMX exporter, scraped directly",
        &mut one_worker,
    );
    let merged = report(
        "encode everything (registry + 4 workers' series)",
        &mut in_process,
    );
    let scrape = report(
        "GET /metrics through the supervisor's HTTP API",
        &mut through_http,
    );
    println!(
        "GET /metrics p50 = {:.1}x the registry alone, {:.2}x one worker's exporter; target < 50 ms: {}",
        scrape / base,
        scrape / worker_p50,
        if ms(percentile(&mut through_http, 99.0)) < 50.0 {
            "met (p99)"
        } else {
            "NOT met"
        }
    );
    let _ = merged;
    api.stop().await;
}

/// A worker log with the mix Connect writes: worker lines, connector and task lines with their
/// MDC context, a config dump with a secret, and ERROR lines with 20-line stack traces.
fn synthetic_log(lines: usize) -> (String, usize) {
    let mut out = String::with_capacity(lines * 140);
    let mut n = 0;
    let mut i = 0u64;
    while n < lines {
        let ts = format!(
            "2026-11-21T10:{:02}:{:02}.{:03}Z",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000
        );
        match i % 50 {
            0 => {
                out.push_str(&format!("{ts} ERROR [org.apache.kafka.connect.runtime.WorkerTask] [dept1-orders-sink-{:02}|task-0] WorkerSinkTask{{id=dept1-orders-sink-0}} Task threw an uncaught and unrecoverable exception\n", i % 40));
                out.push_str("org.apache.kafka.connect.errors.ConnectException: Couldn't find or create file '/data/out.txt' for FileStreamSinkTask\n");
                for f in 0..18 {
                    out.push_str(&format!("\tat org.apache.kafka.connect.runtime.WorkerSinkTask.execute(WorkerSinkTask.java:{f})\n"));
                }
                n += 20;
            }
            1 => {
                out.push_str(&format!("{ts} INFO [org.apache.kafka.connect.runtime.ConnectorConfig] [dept1-orders-sink-{:02}|worker] SinkConnectorConfig values:\n", i % 40));
                out.push_str("\tconnection.password = Hunter2-Secret-77\n\ttopics = [dept1-orders]\n\ttasks.max = 1\n");
                n += 4;
            }
            2..=30 => {
                out.push_str(&format!("{ts} INFO [org.apache.kafka.connect.runtime.WorkerSourceTask] [dept1-lines-source-{:02}|task-0] Committing offsets for 120 acknowledged messages\n", i % 40));
                n += 1;
            }
            _ => {
                out.push_str(&format!("{ts} INFO [org.apache.kafka.connect.runtime.distributed.DistributedHerder] [Worker clientId=connect-127.0.0.1:18083, groupId=dept1-connect-shared] Session key updated\n"));
                n += 1;
            }
        }
        i += 1;
    }
    (out, n)
}

fn parse_only(log: &[u8]) -> usize {
    let mut reader = LineReader::new(Stream::Stdout);
    let mut records = 0;
    for chunk in log.chunks(64 * 1024) {
        records += reader.feed(chunk, OffsetDateTime::now_utc()).len();
    }
    records + reader.flush().map_or(0, |_| 1)
}

/// Pipes the log through `cat` into a hub, as a worker's stdout; returns (elapsed until every
/// record was read and, when forwarding, acknowledged by Kafka; CPU used; dropped).
async fn through_pipe(hub: &Arc<LogHub>, file: &Path, records: u64) -> (Duration, Duration, u64) {
    let before = hub.records();
    let forwarded_before = hub.forward_stats().forwarded;
    let mut spec = SpawnSpec::new("cat", [file.as_os_str().to_owned()]);
    spec.output = Output::Piped;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut child = Spawner::global().spawn(spec).await.expect("cat starts");
    let dir = scratch("bench-pipe");
    hub.attach(
        "shared",
        "shared-0",
        &dir,
        child.stdout.take(),
        child.stderr.take(),
    );
    child.wait().await.unwrap();
    let forwarding = hub.forward_stats().enabled;
    loop {
        let read = hub.records() - before;
        let stats = hub.forward_stats();
        let done = read >= records
            && (!forwarding || stats.forwarded - forwarded_before + stats.dropped >= records);
        if done {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "read {read} of {records}; {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (t0.elapsed(), cpu_time() - cpu0, hub.forward_stats().dropped)
}

async fn log_throughput() {
    println!("\n== worker log lines: parse, redact, buffer, forward to a real broker");
    let broker = harness::observe::OwnBroker::start().await;
    let (log, lines) = synthetic_log(LOG_LINES);
    let file = scratch("bench-logs").join("worker-stdout.log");
    std::fs::write(&file, &log).unwrap();
    println!("input: {lines} lines, {} MiB", log.len() >> 20);

    let t = Instant::now();
    let records = parse_only(log.as_bytes());
    let parse = t.elapsed();
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!(
        "{:<58} {:>10.0} lines/s ({records} records)",
        "baseline: parse only (in memory)",
        rate(parse)
    );

    let rules = SecretRules::default();
    let settings = LogSettings {
        forward: false,
        file_size: connect_supervisor::model::ByteSize::new(0),
        ..LogSettings::default()
    };
    let registry = prometheus::Registry::new();
    let local = Arc::new(LogHub::new("bench", &settings, &rules, &registry, None));
    let (elapsed, cpu, _) = through_pipe(&local, &file, records as u64).await;
    println!(
        "{:<58} {:>10.0} lines/s, CPU {:.2} cores",
        "pipe -> parse, redact, buffer (no forwarding)",
        rate(elapsed),
        cpu.as_secs_f64() / elapsed.as_secs_f64()
    );

    let topic = unique("bench-logs-");
    let forwarding = LogSettings {
        forward: true,
        topic: Some(topic.clone()),
        buffer_lines: 2_000_000,
        file_size: connect_supervisor::model::ByteSize::new(0),
        ..LogSettings::default()
    };
    let producer = BTreeMap::from([(
        "bootstrap.servers".to_string(),
        broker.broker.bootstrap_servers(),
    )]);
    let registry = prometheus::Registry::new();
    let hub = Arc::new(LogHub::new(
        "bench",
        &forwarding,
        &rules,
        &registry,
        Some((&producer, &StartGate::opened())),
    ));
    // The topic exists before the clock starts (auto-created by a first record).
    let (_, _, _) = through_pipe(
        &hub,
        &{
            let warm = scratch("bench-warm").join("warm.log");
            std::fs::write(&warm, "2026-11-21T10:00:00.000Z INFO [W] warm up\n").unwrap();
            warm
        },
        1,
    )
    .await;
    let (elapsed, cpu, dropped) = through_pipe(&hub, &file, records as u64).await;
    let forwarded = rate(elapsed);
    println!(
        "{:<58} {:>10.0} lines/s ({:.0} records/s), CPU {:.2} cores, dropped {dropped}",
        "pipe -> parse, redact, buffer, forward to Kafka (acked)",
        forwarded,
        records as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() / elapsed.as_secs_f64()
    );
    println!(
        "forwarding = {:.2}x the parse-only rate; target >= 50,000 lines/s: {}",
        forwarded / rate(parse),
        if forwarded >= 50_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    hub.close(Duration::from_secs(5));
    broker.broker.stop().await;
    let _ = Path::new(harness::PROJECT);
}

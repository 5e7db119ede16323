//! `connect-supervisor migrate`: export checked by `terraform fmt` and an HCL parser, and the
//! cut-over between two real departments (a second supervisor with its own pool, on the shared
//! real broker) while data keeps flowing, counted end to end.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connect_supervisor::migrate::cli::{self, MigrateCommand, SourceArgs, TargetArgs};
use connect_supervisor::migrate::client::Endpoint;
use connect_supervisor::migrate::cutover::{self, CutoverState, Mode, RunOptions};
use connect_supervisor::migrate::export;
use connect_supervisor::migrate::mapping::{self, TABLE};
use connect_supervisor::translate::MASK;
use hcl::{Body, Expression, ObjectKey};

/// The Terraform binary, or a failure saying how to get it.
fn terraform() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("terraform");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "terraform is not installed; the export test runs `terraform fmt -check` on the output. \
         Install it (.ci/run does: GOBIN=/usr/local/bin go install github.com/hashicorp/terraform@v1.11.4)"
    );
}

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn block<'b>(body: &'b Body, identifier: &str, labels: &[&str]) -> Option<&'b hcl::Block> {
    body.blocks().find(|b| {
        b.identifier() == identifier
            && b.labels().iter().map(|l| l.as_str()).collect::<Vec<_>>() == labels
    })
}

fn attribute<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn object(expr: &Expression) -> BTreeMap<String, &Expression> {
    let Expression::Object(o) = expr else {
        panic!("not an object: {expr:?}")
    };
    o.iter()
        .map(|(k, v)| {
            let key = match k {
                ObjectKey::Identifier(i) => i.to_string(),
                ObjectKey::Expression(Expression::String(s)) => s.clone(),
                other => panic!("key {other:?}"),
            };
            (key, v)
        })
        .collect()
}

fn is_variable(expr: &Expression) -> bool {
    matches!(expr, Expression::Traversal(t) if matches!(&t.expr, Expression::Variable(v) if v.as_str() == "var"))
}

/// Terraform export of mapped connectors (secrets, offsets, an import): `terraform fmt -check`
/// accepts every file and an HCL parser finds the resource with secrets only as variables.
/// (`terraform validate` needs the confluent provider's schema, which comes only from the
/// Terraform registry, unreachable from these machines.)
#[test]
fn terraform_export_is_formatted_and_parses_with_secrets_as_variables() {
    let dir = tempfile::tempdir().unwrap();
    let pg = mapping::translate(
        &TABLE,
        &config(&[
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSourceConnector",
            ),
            ("name", "dept1-orders"),
            ("connection.url", "jdbc:postgresql://pg:5432/shop"),
            ("connection.user", "app"),
            ("connection.password", MASK),
            (
                "query",
                "select * from \"orders\" where note like '${x}%{y}'",
            ),
            ("mode", "incrementing"),
        ]),
    );
    let s3 = mapping::translate(
        &TABLE,
        &config(&[
            ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
            ("topics", "orders"),
            ("s3.bucket.name", "bucket"),
            ("aws.access.key.id", "AKIA"),
            ("aws.secret.access.key", MASK),
            (
                "format.class",
                "io.confluent.connect.s3.format.json.JsonFormat",
            ),
        ]),
    );
    let offsets = vec![serde_json::json!({
        "partition": {"protocol": "1", "table": "shop.orders"},
        "offset": {"incrementing": 42}
    })];
    let files = [
        (
            export::TERRAFORM_MAIN.to_string(),
            export::terraform_main("env-a1", "lkc-a1"),
        ),
        (
            "dept1-orders.tf".to_string(),
            export::terraform(
                "dept1-orders",
                &pg,
                Some(&offsets),
                Some(("env-a1", "lkc-a1")),
            ),
        ),
        (
            "dept1-s3.tf".to_string(),
            export::terraform("dept1-s3", &s3, None, None),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
        assert!(!text.contains(MASK), "{name} holds a mask");
    }
    let out = Command::new(terraform())
        .args(["fmt", "-check", "-diff", "-no-color"])
        .current_dir(dir.path())
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .expect("terraform runs");
    assert!(
        out.status.success(),
        "terraform fmt -check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let body = hcl::parse(&files[1].1).expect("valid HCL");
    let resource =
        block(&body, "resource", &["confluent_connector", "dept1_orders"]).expect("resource");
    let r = resource.body();
    assert!(block(r, "environment", &[]).is_some() && block(r, "kafka_cluster", &[]).is_some());
    let sensitive = object(attribute(r, "config_sensitive").expect("config_sensitive"));
    assert_eq!(
        sensitive.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["connection.password", "kafka.api.key", "kafka.api.secret"]
    );
    assert!(sensitive.values().all(|v| is_variable(v)), "{sensitive:?}");
    let plain = object(attribute(r, "config_nonsensitive").expect("config_nonsensitive"));
    assert!(matches!(plain["connector.class"], Expression::String(s) if s == "PostgresSource"));
    assert!(matches!(plain["db.name"], Expression::String(s) if s == "shop"));
    assert!(!plain.contains_key("connection.password"));
    // The query's template sequences are escaped: the parsed value is the literal query.
    let query = hcl::format::to_string(plain["query"]).unwrap();
    assert!(query.contains("$${x}%%{y}"), "{query}");
    let offsets_block = block(r, "offsets", &[]).expect("offsets block");
    let offset = object(attribute(offsets_block.body(), "offset").unwrap());
    assert!(matches!(offset["incrementing"], Expression::String(s) if s == "42"));
    let lifecycle = block(r, "lifecycle", &[]).expect("lifecycle");
    assert!(matches!(
        attribute(lifecycle.body(), "prevent_destroy"),
        Some(Expression::Bool(true))
    ));
    assert!(block(lifecycle.body(), "precondition", &[]).is_some());
    let import = block(&body, "import", &[]).expect("import block for a connector on the target");
    assert!(matches!(
        attribute(import.body(), "id"),
        Some(Expression::String(s)) if s == "env-a1/lkc-a1/dept1-orders"
    ));
    for (name, _) in sensitive {
        let var = export::variable("dept1-orders", &name);
        let v = block(&body, "variable", &[var.as_str()]).expect("variable declared");
        assert!(matches!(
            attribute(v.body(), "sensitive"),
            Some(Expression::Bool(true))
        ));
    }
    let s3_body = hcl::parse(&files[2].1).unwrap();
    assert!(
        block(&s3_body, "import", &[]).is_none(),
        "no import for a new connector"
    );
    assert!(block(&s3_body, "variable", &["dept1_s3_aws_secret_access_key"]).is_some());
}

// ----- cut-over between two real departments -----

use harness::api::{ADMIN_SECRET, As, TestApi};
use harness::{
    PoolSpec, TestDepartment, eventually, file_sink, file_source, kafka_bootstrap, scratch, unique,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);
/// The two departments share names and topics (a connector keeps both when it moves), so the
/// department-prefix rules are off in both.
const POLICY: &str = "\n[policy]\ndisabled = [\"naming.prefix\", \"topics.prefix\"]\n";
/// Time between two records of the growing input.
const EVERY: Duration = Duration::from_millis(5);

fn source_args(api: &TestApi) -> SourceArgs {
    SourceArgs {
        url: Some(api.base.clone()),
        api_key: Some("ADMIN".into()),
        api_secret: Some(ADMIN_SECRET.into()),
        token: None,
    }
}

fn target_args(api: &TestApi) -> TargetArgs {
    TargetArgs {
        url: Some(api.base.clone()),
        target_api_key: Some("ADMIN".into()),
        target_api_secret: Some(ADMIN_SECRET.into()),
        target_token: None,
    }
}

fn cutover_command(
    a: &TestApi,
    b: &TestApi,
    name: &str,
    mode: Mode,
    target_name: Option<String>,
    keep_source: bool,
    out: &Path,
) -> MigrateCommand {
    MigrateCommand::Cutover {
        connector: name.to_string(),
        source: source_args(a),
        target: target_args(b),
        mode,
        keep_source,
        target_name,
        verify_timeout: WAIT.as_secs(),
        accept_idle: false,
        out: out.to_path_buf(),
    }
}

/// A file that keeps growing by one numbered line every [`EVERY`] until stopped.
struct Appender {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Appender {
    fn start(path: &Path, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let tag = tag.to_string();
        let thread = std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                file.write_all(format!("{tag}-{n:06}\n").as_bytes())
                    .unwrap();
                file.flush().unwrap();
                n += 1;
                std::thread::sleep(EVERY);
            }
            n
        });
        Self { stop, thread }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A producer that keeps sending one numbered record every [`EVERY`] until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Feeder {
    fn start(topic: &str, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let topic = topic.to_string();
        let tag = tag.to_string();
        let thread = std::thread::spawn(move || {
            let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                .set("bootstrap.servers", kafka_bootstrap())
                .set("linger.ms", "1")
                .create()
                .unwrap();
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let value = format!("{tag}-{n:06}");
                producer
                    .send(BaseRecord::<(), String>::to(&topic).payload(&value))
                    .map_err(|(e, _)| e)
                    .unwrap();
                n += 1;
                std::thread::sleep(EVERY);
            }
            producer.flush(Duration::from_secs(30)).unwrap();
            n
        });
        Self { stop, thread }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Every record of `topic` (value, timestamp in ms) once `count` arrived, then `settle` more.
fn read_topic(topic: &str, count: usize) -> Vec<(String, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique("mig-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut settle: Option<Instant> = None;
    loop {
        match settle {
            Some(until) if Instant::now() >= until => break,
            None if out.len() >= count => settle = Some(Instant::now() + Duration::from_secs(5)),
            None if started.elapsed() > WAIT => {
                panic!("read {} of {count} records from {topic}", out.len())
            }
            _ => {}
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            out.push((value, m.timestamp().to_millis().unwrap_or(0)));
        }
    }
    out
}

/// What a cut-over did to the data.
#[derive(Debug, Clone)]
struct Figures {
    what: String,
    records: usize,
    lost: usize,
    duplicated: usize,
    seconds_without_data: f64,
}

/// Lost and duplicated among `seen` of `tag-000000 .. tag-<total-1>`.
fn count(what: &str, tag: &str, total: usize, seen: &[String], gap: f64) -> Figures {
    let expected: BTreeSet<String> = (0..total).map(|n| format!("{tag}-{n:06}")).collect();
    let distinct: BTreeSet<&String> = seen.iter().collect();
    let lost = expected.iter().filter(|e| !distinct.contains(e)).count();
    Figures {
        what: what.to_string(),
        records: total,
        lost,
        duplicated: seen.len() - distinct.len(),
        seconds_without_data: gap,
    }
}

/// The longest time between two consecutive records (by their number).
fn longest_gap(records: &[(String, i64)]) -> f64 {
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    for (v, ts) in records {
        first.entry(v.as_str()).or_insert(*ts);
    }
    let times: Vec<i64> = first.values().copied().collect();
    times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1000.0)
        .fold(0.0, f64::max)
}

async fn create(api: &TestApi, name: &str, config: &BTreeMap<String, String>) {
    let a = api
        .call(
            As::Admin,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": config})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    wait_running(api, name).await;
}

async fn wait_running(api: &TestApi, name: &str) {
    let url = api.managed(&format!("/connectors/{name}/status"));
    eventually(&format!("{name} RUNNING"), WAIT, || {
        let url = url.clone();
        async move {
            let a = api.call(As::Viewer, Method::GET, &url, None).await;
            (a.status == 200
                && a.body["connector"]["state"] == "RUNNING"
                && a.body["tasks"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING")))
            .then_some(())
        }
    })
    .await;
}

async fn exists(api: &TestApi, name: &str) -> bool {
    api.call(
        As::Viewer,
        Method::GET,
        &api.managed(&format!("/connectors/{name}/status")),
        None,
    )
    .await
    .status
        == 200
}

/// The value of `key` that department `api` gives Connect for `name`, with a `${file:...}`
/// reference into its secret store read (the file's text, which holds the value).
async fn held_secret(api: &TestApi, name: &str, key: &str) -> String {
    let (_, config) = api.state.connectors.config(name).await.unwrap();
    let held = config[key].clone();
    match held.strip_prefix("${file:") {
        Some(rest) => std::fs::read_to_string(rest.rsplit_once(':').unwrap().0).unwrap(),
        None => held,
    }
}

/// The audit trail of `name` at `api`.
async fn audit(api: &TestApi, name: &str) -> Value {
    let url = api.url(&format!("/v1/audit?connector={name}"));
    api.call(As::Admin, Method::GET, &url, None).await.body
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

async fn wait_lines(path: &Path, n: usize) {
    eventually(
        &format!("{n} lines in {}", path.display()),
        WAIT,
        || async move { (lines_of(path) >= n).then_some(()) },
    )
    .await;
}

/// A FileStreamSource on `a` reading a growing file, moved to `b` in `mode`: the topic holds
/// every line; lost and duplicated counted.
async fn source_cutover(a: &TestApi, b: &TestApi, mode: Mode, out: &Path) -> Figures {
    let name = unique("msrc");
    let dir = scratch(&name);
    let input = dir.join("input.txt");
    let topic = unique("mig-src");
    let appender = Appender::start(&input, &name);
    create(a, &name, &file_source(&input, &topic)).await;
    wait_lines(&input, 400).await;
    let code = cli::run(cutover_command(a, b, &name, mode, None, false, out))
        .await
        .unwrap_or_else(|e| panic!("cut-over of {name} ({mode:?}): {e}"));
    assert_eq!(code, 0);
    assert!(!exists(a, &name).await, "the source is deleted");
    // Every change of the cut-over is in the ends' audit trails, under the caller's key.
    let on_a = audit(a, &name).await.to_string();
    if mode != Mode::Parallel {
        assert!(on_a.contains(&format!("/connectors/{name}/stop")), "{on_a}");
    }
    assert!(on_a.contains("DELETE") && on_a.contains("ADMIN"), "{on_a}");
    let on_b = audit(b, &name).await.to_string();
    assert!(on_b.contains("POST") && on_b.contains("ADMIN"), "{on_b}");
    wait_running(b, &name).await;
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let total = appender.stop();
    let records = read_topic(&topic, total);
    let values: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
    let state = CutoverState::load(out, &name).unwrap().unwrap();
    assert_eq!(state.next(), None, "{state:?}");
    count(
        &format!("FileStreamSource {mode:?}"),
        &name,
        total,
        &values,
        longest_gap(&records),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cutover_between_two_departments_counts_every_record() {
    let pools = [PoolSpec::new("shared", 1)];
    let (a, b, plain) = tokio::join!(
        TestApi::start(&pools, "", POLICY),
        TestApi::start(&pools, "", POLICY),
        // A plain Connect worker: only its own REST API is used, never a supervisor's.
        TestDepartment::start(harness::department(&pools))
    );
    let out = scratch("migrate-out");
    let mut figures = Vec::new();

    // 1. Stop-then-create of a source: nothing lost, nothing twice.
    let f = source_cutover(&a, &b, Mode::StopThenCreate, &out).await;
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    // 2. Stop-then-create of a sink, renamed on the way (so its consumer group is new and
    //    only the carried offsets say where to go on), while a producer keeps sending.
    let name = unique("msnk");
    let dir = scratch(&name);
    let output = dir.join("output.txt");
    let topic = unique("mig-snk");
    let feeder = Feeder::start(&topic, &name);
    create(&a, &name, &file_sink(&topic, &output)).await;
    wait_lines(&output, 400).await;
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = sampler_stop.clone();
        let output = output.clone();
        std::thread::spawn(move || {
            let (mut last, mut since, mut gap) = (lines_of(&output), Instant::now(), 0.0f64);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = lines_of(&output);
                if now != last {
                    gap = gap.max(since.elapsed().as_secs_f64());
                    last = now;
                    since = Instant::now();
                }
            }
            gap
        })
    };
    let renamed = format!("{name}-b");
    let code = cli::run(cutover_command(
        &a,
        &b,
        &name,
        Mode::StopThenCreate,
        Some(renamed.clone()),
        false,
        &out,
    ))
    .await
    .unwrap_or_else(|e| panic!("cut-over of {name}: {e}"));
    assert_eq!(code, 0);
    wait_running(&b, &renamed).await;
    let after = lines_of(&output);
    wait_lines(&output, after + 400).await;
    let total = feeder.stop();
    wait_lines(&output, total).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    sampler_stop.store(true, Ordering::Relaxed);
    let gap = sampler.join().unwrap();
    let seen: Vec<String> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let f = count("FileStreamSink StopThenCreate", &name, total, &seen, gap);
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    // 3. Parallel: no gap to speak of, nothing lost, duplicates counted.
    let f = source_cutover(&a, &b, Mode::Parallel, &out).await;
    assert_eq!(f.lost, 0, "{f:?}");
    figures.push(f);

    // 4. No offsets: the target starts from the beginning of the file: nothing lost, the lines
    //    before the cut-over twice.
    let f = source_cutover(&a, &b, Mode::NoOffsets, &out).await;
    assert_eq!(f.lost, 0, "{f:?}");
    assert!(
        f.duplicated > 0,
        "without offsets the file is read again: {f:?}"
    );
    figures.push(f);

    // 5. Rename within a department through the library entry point GitOps uses: the new
    //    name starts at the old one's offsets.
    let old = unique("mren");
    let dir = scratch(&old);
    let input = dir.join("input.txt");
    let topic = unique("mig-ren");
    let appender = Appender::start(&input, &old);
    create(&a, &old, &file_source(&input, &topic)).await;
    wait_lines(&input, 400).await;
    let new = format!("{old}-renamed");
    let end = Endpoint::resolve(&a.base, admin()).await.unwrap();
    let state = cutover::rename(&end, &old, &new, &out, &RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("rename {old}: {e}"));
    assert!(!state.carried_offsets.is_empty(), "{state:?}");
    assert!(!exists(&a, &old).await);
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let total = appender.stop();
    let records = read_topic(&topic, total);
    let values: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
    let f = count(
        "rename (stop-then-create)",
        &old,
        total,
        &values,
        longest_gap(&records),
    );
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    // 6. The managed JSON export round-trips through department B's managed create.
    let json_out = scratch("migrate-json");
    let code = cli::run(MigrateCommand::Export {
        connectors: vec![new.clone()],
        source: source_args(&a),
        target: target_args(&b),
        format: cli::ExportFormat::ManagedJson,
        with_offsets: true,
        secret_refs: "env".into(),
        out: json_out.clone(),
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    let exported: Value = serde_json::from_str(
        &std::fs::read_to_string(json_out.join(format!("{new}.json"))).unwrap(),
    )
    .unwrap();
    assert!(
        !exported["offsets"].as_array().unwrap().is_empty(),
        "{exported}"
    );
    let created = b
        .call(
            As::Admin,
            Method::POST,
            &b.managed("/connectors"),
            Some(&exported),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let read = b
        .call(
            As::Viewer,
            Method::GET,
            &b.managed(&format!("/connectors/{new}/config")),
            None,
        )
        .await;
    for (k, v) in exported["config"].as_object().unwrap() {
        assert_eq!(&read.body[k], v, "{k} after the round trip: {}", read.text);
    }
    let gone = b
        .call(
            As::Admin,
            Method::DELETE,
            &b.managed(&format!("/connectors/{new}")),
            None,
        )
        .await;
    assert_eq!(gone.status, 200);

    // 7. A connector with a secret: the source supervisor pushes it (the value never reaches
    //    this process or the state file); then a rollback starts the kept source again at the
    //    offsets the target reached.
    let name = unique("msec");
    let dir = scratch(&name);
    let input = dir.join("input.txt");
    let topic = unique("mig-sec");
    let secret = "s3cr3t-pushed-by-the-supervisor-0123456789";
    let appender = Appender::start(&input, &name);
    let mut config = file_source(&input, &topic);
    config.insert("connection.password".into(), secret.into());
    create(&a, &name, &config).await;
    wait_lines(&input, 400).await;
    let operator_push = a
        .call(
            As::Operator,
            Method::POST,
            &a.url(&format!("/v1/migrate/connectors/{name}/push")),
            Some(&json!({"target_url": b.managed(""), "config": {}})),
        )
        .await;
    assert_eq!(operator_push.status, 403, "{}", operator_push.text);
    let code = cli::run(cutover_command(
        &a,
        &b,
        &name,
        Mode::StopThenCreate,
        None,
        true,
        &out,
    ))
    .await
    .unwrap_or_else(|e| panic!("cut-over of {name}: {e}"));
    assert_eq!(code, 0);
    wait_running(&b, &name).await;
    let resolved = held_secret(&b, &name, "connection.password").await;
    assert!(
        resolved.contains(secret),
        "department B holds the real secret"
    );
    let state_text = std::fs::read_to_string(cutover::state_path(&out, &name)).unwrap();
    assert!(
        !state_text.contains(secret),
        "the state file holds no secret"
    );
    assert!(exists(&a, &name).await, "--keep-source keeps it");
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let code = cli::run(MigrateCommand::Rollback {
        connector: name.clone(),
        source: source_args(&a),
        target: target_args(&b),
        out: out.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("rollback of {name}: {e}"));
    assert_eq!(code, 0);
    assert!(!exists(&b, &name).await, "the target is deleted");
    wait_running(&a, &name).await;
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let total = appender.stop();
    let records = read_topic(&topic, total);
    let values: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
    let f = count(
        "cut-over + rollback (keep source)",
        &name,
        total,
        &values,
        longest_gap(&records),
    );
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    // 8. Adopt from a plain Connect worker (not a supervisor) into department A.
    let plain_url = plain
        .supervisor
        .ready_worker_urls("shared")
        .into_iter()
        .next()
        .expect("a ready plain worker");
    let name = unique("madopt");
    let dir = scratch(&name);
    let input = dir.join("input.txt");
    let topic = unique("mig-adopt");
    // The plain worker shows this secret in clear; the state file must not.
    let adopted_secret = "adopted-s3cr3t-0123456789abcdef0123";
    let mut adopted_config = file_source(&input, &topic);
    adopted_config.insert("connection.password".into(), adopted_secret.into());
    let appender = Appender::start(&input, &name);
    let answer = reqwest::Client::new()
        .post(format!("{plain_url}/connectors"))
        .json(&json!({"name": name, "config": adopted_config}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    wait_lines(&input, 400).await;
    eventually("the plain worker's connector to run", WAIT, || {
        let url = format!("{plain_url}/connectors/{name}/status");
        async move {
            let s: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            (s["tasks"][0]["state"] == "RUNNING").then_some(())
        }
    })
    .await;
    let code = cli::run(MigrateCommand::Adopt {
        connector: name.clone(),
        from: plain_url.clone(),
        source: source_args(&a),
        keep_source: false,
        verify_timeout: WAIT.as_secs(),
        accept_idle: false,
        out: out.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("adopt of {name}: {e}"));
    assert_eq!(code, 0);
    wait_running(&a, &name).await;
    let adopted_state = std::fs::read_to_string(cutover::state_path(&out, &name)).unwrap();
    assert!(!adopted_state.contains(adopted_secret), "{adopted_state}");
    let (_, on_a) = a.state.connectors.config(&name).await.unwrap();
    assert_ne!(
        on_a["connection.password"], MASK,
        "department A got the real secret"
    );
    // Connect deletes asynchronously: the old cluster stops listing it shortly after.
    eventually(
        "the connector to be gone from the old cluster",
        WAIT,
        || {
            let url = format!("{plain_url}/connectors/{name}/status");
            async move { (reqwest::get(&url).await.ok()?.status().as_u16() == 404).then_some(()) }
        },
    )
    .await;
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let total = appender.stop();
    let records = read_topic(&topic, total);
    let values: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
    let f = count(
        "adopt (stop-then-create)",
        &name,
        total,
        &values,
        longest_gap(&records),
    );
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    // 9. The department's guardrails judge an adopted connector first: one they refuse (more
    //    tasks than a connector may have) is reported and keeps running where it is.
    let refused = unique("mrefused");
    let dir = scratch(&refused);
    let mut config = file_source(&dir.join("input.txt"), &unique("mig-refused"));
    config.insert("tasks.max".into(), "50".into());
    let answer = reqwest::Client::new()
        .post(format!("{plain_url}/connectors"))
        .json(&json!({"name": refused, "config": config}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let code = cli::run(MigrateCommand::Adopt {
        connector: refused.clone(),
        from: plain_url.clone(),
        source: source_args(&a),
        keep_source: false,
        verify_timeout: WAIT.as_secs(),
        accept_idle: false,
        out: out.clone(),
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "a refused connector is not adopted");
    assert!(!exists(&a, &refused).await);
    let status = reqwest::get(format!("{plain_url}/connectors/{refused}/status"))
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200, "it stays on the old cluster");

    // 10. Plan and Terraform export through the command, department A to department B: the
    //     target is a supervisor (same plugins), secrets stay masked or become variables.
    let plan_out = scratch("migrate-plan");
    let code = cli::run(MigrateCommand::Plan {
        connectors: vec![],
        source: source_args(&a),
        target: target_args(&b),
        format: cli::PlanFormat::Json,
        out: Some(plan_out.clone()),
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    let plan_text = std::fs::read_to_string(plan_out.join("plan.json")).unwrap();
    assert!(!plan_text.contains(secret), "the plan holds no secret");
    let plan: Value = serde_json::from_str(&plan_text).unwrap();
    assert_eq!(plan["target_is_supervisor"], true);
    let names: Vec<&str> = plan["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&name.as_str()), "{names:?}");
    let tf_out = scratch("migrate-tf");
    let code = cli::run(MigrateCommand::Export {
        connectors: vec![],
        source: source_args(&a),
        target: target_args(&b),
        format: cli::ExportFormat::Terraform,
        with_offsets: true,
        secret_refs: "env".into(),
        out: tf_out.clone(),
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    let fmt = Command::new(terraform())
        .args(["fmt", "-check", "-diff", "-no-color"])
        .current_dir(&tf_out)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    for entry in std::fs::read_dir(&tf_out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(secret) && !text.contains(MASK), "{text}");
        hcl::parse(&text).expect("valid HCL");
    }

    // 11. A failed step leaves a state to roll back from, never two writers: the target
    //     refuses the create (a name it does not accept), the source stays STOPPED, and the
    //     rollback starts it again at its own offsets.
    let name = unique("mfail");
    let dir = scratch(&name);
    let input = dir.join("input.txt");
    let topic = unique("mig-fail");
    let appender = Appender::start(&input, &name);
    create(&a, &name, &file_source(&input, &topic)).await;
    wait_lines(&input, 400).await;
    let failed = cli::run(cutover_command(
        &a,
        &b,
        &name,
        Mode::StopThenCreate,
        Some(" refused name".into()),
        false,
        &out,
    ))
    .await;
    let e = failed.expect_err("the target refuses the name");
    assert_eq!(e.exit_code(), 1, "{e}");
    let state = CutoverState::load(&out, &name).unwrap().unwrap();
    assert_eq!(state.next(), Some(cutover::Step::CreateTarget), "{state:?}");
    assert!(
        state.journal.last().unwrap().event == "create_target_failed",
        "{:?}",
        state.journal
    );
    let stopped = a
        .call(
            As::Viewer,
            Method::GET,
            &a.url(&format!("/connectors/{name}/status")),
            None,
        )
        .await;
    assert_eq!(
        stopped.body["connector"]["state"], "STOPPED",
        "{}",
        stopped.text
    );
    let code = cli::run(MigrateCommand::Rollback {
        connector: name.clone(),
        source: source_args(&a),
        target: target_args(&b),
        out: out.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("rollback of {name}: {e}"));
    assert_eq!(code, 0);
    wait_running(&a, &name).await;
    let after = lines_of(&input);
    wait_lines(&input, after + 400).await;
    let total = appender.stop();
    let records = read_topic(&topic, total);
    let values: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
    let f = count(
        "failed create, then rollback",
        &name,
        total,
        &values,
        longest_gap(&records),
    );
    assert_eq!((f.lost, f.duplicated), (0, 0), "{f:?}");
    figures.push(f);

    println!(
        "\ncut-over figures (records written during the run, lost, duplicated, longest time without data):"
    );
    println!(
        "{:<34} {:>8} {:>5} {:>11} {:>9}",
        "mode", "records", "lost", "duplicated", "gap (s)"
    );
    for f in &figures {
        println!(
            "{:<34} {:>8} {:>5} {:>11} {:>9.2}",
            f.what, f.records, f.lost, f.duplicated, f.seconds_without_data
        );
    }
    a.stop().await;
    b.stop().await;
    plain.stop().await;
}

fn admin() -> connect_supervisor::gitops::against::Credentials {
    connect_supervisor::gitops::against::Credentials::ApiKey {
        id: "ADMIN".into(),
        secret: ADMIN_SECRET.into(),
    }
}

/// The command's own errors: no source named (usage, 64, naming the variable), an unreachable
/// source (2), nothing printed but the reason.
#[test]
fn migrate_commands_explain_a_missing_or_unreachable_source() {
    let bin = env!("CARGO_BIN_EXE_connect-supervisor");
    let out = Command::new(bin)
        .args(["migrate", "plan", "--to", "http://127.0.0.1:9"])
        .env_remove("CS_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("CS_URL") && stderr.contains("--source"),
        "{stderr}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(bin)
        .args(["migrate", "cutover", "x", "--out"])
        .arg(tempfile::tempdir().unwrap().path())
        .env("CS_URL", format!("http://127.0.0.1:{port}"))
        .env("CS_KEY", "K")
        .env("CS_SECRET", "never-printed-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert!(!stderr.contains("never-printed-secret"), "{stderr}");
}

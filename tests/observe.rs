//! Seeing and healing, against real Connect workers and real brokers: a failing sink seen in the
//! metrics, its log and its events, healed by the automatic restart once its cause is fixed; a
//! connector that keeps failing held until an operator restarts it; the audit trail; worker
//! logs forwarded to a Kafka topic and the drops while that Kafka is away; every metric the
//! requirements name for a running source and sink, checked by promtool; readiness; the alert
//! rules checked and unit-tested by promtool.

mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use harness::api::{As, TestApi};
use harness::observe::{
    OwnBroker, families, read_json_until, rules_dir, run_promtool, sample, samples,
};
use harness::{PoolSpec, eventually, file_sink, file_source, produce, read_lines, scratch, unique};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const SECRET: &str = "Hunter2-Secret-77";

fn config_json(config: &std::collections::BTreeMap<String, String>) -> Value {
    serde_json::to_value(config).unwrap()
}

async fn metrics(api: &TestApi) -> String {
    reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn events(api: &TestApi, query: &str) -> Vec<Value> {
    let a = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/v1/events?{query}")),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["events"].as_array().unwrap().clone()
}

/// An RFC 3339 time of an API answer.
fn rfc3339(v: &Value) -> time::OffsetDateTime {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// When the connector watch last read Connect's states (`status_read_at` of `GET /v1/health`).
async fn status_read_at(api: &TestApi) -> Option<time::OffsetDateTime> {
    let a = api
        .call(As::Viewer, Method::GET, &api.url("/v1/health"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["status_read_at"]
        .as_str()
        .map(|_| rfc3339(&a.body["status_read_at"]))
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

async fn create(api: &TestApi, who: As, name: &str, config: Value) -> u16 {
    let a = api
        .call(
            who,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({ "name": name, "config": config })),
        )
        .await;
    a.status
}

async fn managed_state(api: &TestApi, name: &str) -> Value {
    let a = api
        .checked(
            "readConnectv1ConnectorStatus",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}/status")),
            None,
        )
        .await;
    a.body
}

/// The done-when scenario: a FileStreamSink whose folder does not exist fails; the metrics show
/// it; its log (only its lines, secrets masked) shows the exception; once the folder exists the
/// automatic restart brings it to RUNNING within the backoff, with an event for each step. The
/// audit trail records every change with its principal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_is_seen_and_heals_once_its_folder_exists() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[auto_restart]\ninterval = \"1s\"\nbackoff_min = \"2s\"\nbackoff_max = \"8s\"\nmax_restarts = 30\n\
         [metrics]\nscrape_interval = \"2s\"\n",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch(&format!("{id}-sink"));
    let out_dir = dir.join("not-there-yet");
    let topic = format!("{id}-orders");
    let sink = format!("{id}-orders-file-sink");
    let source = format!("{id}-orders-file-source");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();

    let mut sink_config = file_sink(&topic, &out_dir.join("out.txt"));
    sink_config.insert("db.password".into(), SECRET.into());
    assert_eq!(
        create(&api, As::Operator, &sink, config_json(&sink_config)).await,
        201
    );
    assert_eq!(
        create(
            &api,
            As::Token,
            &source,
            config_json(&file_source(&input, &topic))
        )
        .await,
        201
    );

    // The metrics show it failed.
    eventually("the metrics to show the failed task", WAIT, || async {
        let text = metrics(&api).await;
        (sample(&text, "kcs_connector_failed_tasks", &[("connector", &sink)]) == Some(1.0))
            .then_some(())
    })
    .await;

    // Its log: only its lines, the exception with its stack, no secret; operators only.
    let logs_url = api.managed(&format!("/connectors/{sink}/logs?level=ERROR&limit=500"));
    let lines = eventually("the sink's exception in its log", WAIT, || async {
        let a = api.call(As::Operator, Method::GET, &logs_url, None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let lines = a.body["lines"].as_array().unwrap().clone();
        lines
            .iter()
            .any(|l| {
                l["stack"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Couldn't find or create file")
                    || l["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("Couldn't find or create file")
            })
            .then_some(lines)
    })
    .await;
    for l in &lines {
        assert_eq!(
            l["connector"],
            sink.as_str(),
            "another connector's line: {l}"
        );
        assert!(
            ["ERROR", "FATAL"].contains(&l["level"].as_str().unwrap()),
            "{l}"
        );
    }
    assert!(
        lines.iter().any(|l| l["stack"]
            .as_str()
            .unwrap_or("")
            .contains("\tat org.apache.kafka.connect")),
        "the stack trace stays attached to its line: {lines:#?}"
    );
    let all = api
        .call(
            As::Admin,
            Method::GET,
            &api.managed(&format!("/connectors/{sink}/logs?limit=5000")),
            None,
        )
        .await;
    assert!(!all.text.contains(SECRET), "the log shows a secret");
    assert!(
        all.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["connector"] == sink.as_str())
    );
    let source_lines = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!("/connectors/{source}/logs")),
            None,
        )
        .await;
    assert!(
        source_lines.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["connector"] == source.as_str())
    );
    let viewer = api.call(As::Viewer, Method::GET, &logs_url, None).await;
    assert_eq!(
        viewer.status, 403,
        "viewers do not read logs: {}",
        viewer.text
    );
    let unknown = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!("/connectors/{id}-nope/logs")),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let bad = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed(&format!(
                "/connectors/{sink}/logs?level=LOUD&since=yesterday"
            )),
            None,
        )
        .await;
    assert_eq!(bad.status, 400);
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("level:") && message.contains("since:"),
        "{message}"
    );
    let text = reqwest::Client::new()
        .get(format!("{logs_url}&format=text"))
        .basic_auth("OPERATOR", Some(harness::api::OPERATOR_SECRET))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("ERROR [") && text.contains(&format!("[{sink}|task-0]")),
        "{text}"
    );
    // The platform view of the worker holds every line, the sink's included.
    let worker = api
        .call(
            As::Admin,
            Method::GET,
            &api.url("/v1/workers/shared-0/logs?limit=5000"),
            None,
        )
        .await;
    assert_eq!(worker.status, 200);
    assert!(worker.body["lines"].as_array().unwrap().len() > lines.len());
    assert_eq!(
        api.call(
            As::Operator,
            Method::GET,
            &api.url("/v1/workers/shared-0/logs"),
            None
        )
        .await
        .status,
        403
    );

    // Auto-restart is at work while the folder is missing.
    eventually("an automatic restart", WAIT, || async {
        let e = events(
            &api,
            &format!("connector={sink}&kind=connector_auto_restarted"),
        )
        .await;
        (!e.is_empty()).then_some(())
    })
    .await;

    // Fix the cause: the next automatic restart brings it back within the backoff.
    std::fs::create_dir_all(&out_dir).unwrap();
    let fixed = Instant::now();
    eventually("the sink to run again", WAIT, || async {
        let s = managed_state(&api, &sink).await;
        (s["connector"]["state"] == "RUNNING" && s["tasks"][0]["state"] == "RUNNING").then_some(())
    })
    .await;
    let healed = fixed.elapsed();
    eprintln!(
        "FIGURE auto-restart: the fixed sink ran again {:.1}s after its folder was created",
        healed.as_secs_f64()
    );
    // The longest wait (8 s, +20 % jitter) plus a poll, a restart and the task's start.
    assert!(healed < Duration::from_secs(60), "healed after {healed:?}");
    let status = managed_state(&api, &sink).await;
    let ar = &status["auto_restart"];
    assert!(ar["restarts"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(ar["held"], false);
    let kept = ar["last_failure"]["trace"].as_str().unwrap();
    assert!(
        kept.contains("Couldn't find or create file"),
        "the last failure is kept: {status}"
    );
    assert!(!status.to_string().contains(SECRET));

    // Data flows through the healed sink.
    let out = out_dir.join("out.txt");
    produce(&topic, &["d".to_string()]);
    eventually("records in the sink's file", WAIT, || async {
        (read_lines(&out).len() >= 4).then_some(())
    })
    .await;

    // An event for each step, in order.
    let e = eventually("the recovery event", WAIT, || async {
        let e = events(&api, &format!("connector={sink}")).await;
        kinds(&e)
            .contains(&"connector_recovered".to_string())
            .then_some(e)
    })
    .await;
    let k = kinds(&e);
    let pos = |kind: &str| {
        k.iter()
            .position(|x| x == kind)
            .unwrap_or_else(|| panic!("no {kind} in {k:?}"))
    };
    assert!(pos("connector_created") < pos("connector_failed"));
    assert!(pos("connector_failed") < pos("connector_auto_restarted"));
    assert!(pos("connector_auto_restarted") < pos("connector_recovered"));
    let created = &e[pos("connector_created")];
    assert_eq!(created["principal"], "OPERATOR");
    assert_eq!(created["department"], id.as_str());
    assert_eq!(created["outcome"], "ok");
    assert!(created["time"].as_str().unwrap().ends_with('Z'));
    assert!(!json!(e).to_string().contains(SECRET));
    let bad_kind = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url("/v1/events?kind=nope"),
            None,
        )
        .await;
    assert_eq!(bad_kind.status, 400);

    // The audit trail: every change with its principal, refused ones included.
    let source_config = file_source(&input, &topic);
    let put = api
        .call(
            As::Token,
            Method::PUT,
            &api.managed(&format!("/connectors/{source}/config")),
            Some(&config_json(&source_config)),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    for (who, action) in [(As::Operator, "pause"), (As::Operator, "resume")] {
        let a = api
            .call(
                who,
                Method::PUT,
                &api.managed(&format!("/connectors/{source}/{action}")),
                None,
            )
            .await;
        assert_eq!(a.status, 202);
    }
    let refused = create(
        &api,
        As::Viewer,
        &format!("{id}-viewer-made"),
        config_json(&source_config),
    )
    .await;
    assert_eq!(refused, 403);
    let invalid = create(
        &api,
        As::Operator,
        &format!("{id}-no-class"),
        json!({ "topic": "x" }),
    )
    .await;
    assert_eq!(invalid, 400);
    let deleted = api
        .call(
            As::Admin,
            Method::DELETE,
            &api.managed(&format!("/connectors/{source}")),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200);
    let audit_file = api
        .dept
        .supervisor
        .department()
        .supervisor
        .state_dir
        .join("audit.jsonl");
    let records: Vec<Value> = std::fs::read_to_string(&audit_file)
        .unwrap_or_else(|e| panic!("no audit file {}: {e}", audit_file.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |action: &str, connector: &str| {
        records
            .iter()
            .find(|r| r["action"] == action && r["connector"] == connector)
            .unwrap_or_else(|| panic!("no {action} of {connector} in {records:#?}"))
            .clone()
    };
    let c = find("connector_created", &sink);
    assert_eq!(
        (
            c["principal"].as_str(),
            c["status"].as_u64(),
            c["outcome"].as_str()
        ),
        (Some("OPERATOR"), Some(201), Some("ok"))
    );
    assert_eq!(find("connector_created", &source)["principal"], "ci");
    assert_eq!(find("connector_updated", &source)["principal"], "ci");
    assert_eq!(find("connector_paused", &source)["status"], 202);
    assert_eq!(find("connector_resumed", &source)["principal"], "OPERATOR");
    let d = find("connector_deleted", &source);
    assert_eq!(
        (d["principal"].as_str(), d["role"].as_str()),
        (Some("ADMIN"), Some("admin"))
    );
    let r = find("connector_created", &format!("{id}-viewer-made"));
    assert_eq!(
        (
            r["principal"].as_str(),
            r["outcome"].as_str(),
            r["status"].as_u64()
        ),
        (Some("VIEWER"), Some("refused"), Some(403))
    );
    let i = find("connector_created", &format!("{id}-no-class"));
    assert!(
        i["message"].as_str().unwrap().contains("connector.class"),
        "{i}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["time"].as_str().is_some() && r["department"] == id.as_str())
    );
    assert!(
        !std::fs::read_to_string(&audit_file)
            .unwrap()
            .contains(SECRET)
    );
    let via_api = api
        .call(
            As::Admin,
            Method::GET,
            &api.url(&format!("/v1/audit?connector={source}")),
            None,
        )
        .await;
    assert_eq!(via_api.status, 200);
    assert_eq!(
        via_api.body["records"].as_array().unwrap().len(),
        5,
        "{}",
        via_api.text
    );
    assert_eq!(
        api.call(As::Operator, Method::GET, &api.url("/v1/audit"), None)
            .await
            .status,
        403
    );
    // The worker's rotated log file is redacted too.
    let file = api
        .dept
        .supervisor
        .department()
        .supervisor
        .state_dir
        .join("workers/shared-0/worker.log");
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(
        raw.contains(&format!("[{sink}|task-0]")),
        "the file keeps the line format"
    );
    assert!(!raw.contains(SECRET));
    api.stop().await;
}

/// A connector that keeps failing ends held after the configured restarts; an operator's restart
/// releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_keeps_failing_is_held_until_an_operator_restarts_it() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[auto_restart]\ninterval = \"1s\"\nbackoff_min = \"1s\"\nbackoff_max = \"2s\"\nmax_restarts = 2\n[metrics]\njmx_exporter = false\n",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch(&format!("{id}-held"));
    let sink = format!("{id}-doomed-file-sink");
    let config = file_sink(&format!("{id}-doomed"), &dir.join("missing/out.txt"));
    assert_eq!(
        create(&api, As::Operator, &sink, config_json(&config)).await,
        201
    );
    eventually("the connector to be held", WAIT, || async {
        let e = events(&api, &format!("connector={sink}&kind=connector_held")).await;
        (!e.is_empty()).then_some(())
    })
    .await;
    let restarts = |e: &[Value]| {
        e.iter()
            .filter(|e| e["event"] == "connector_auto_restarted")
            .count()
    };
    let before = events(&api, &format!("connector={sink}")).await;
    assert_eq!(
        restarts(&before),
        2,
        "exactly the configured restarts: {:?}",
        kinds(&before)
    );
    let status = managed_state(&api, &sink).await;
    assert_eq!(status["auto_restart"]["held"], true, "{status}");
    assert!(
        status["connector"]["trace"]
            .as_str()
            .unwrap()
            .starts_with("connect-supervisor: automatic restarts are held"),
        "{status}"
    );
    eventually("the held metric", WAIT, || async {
        let text = metrics(&api).await;
        (sample(&text, "kcs_connector_held", &[("connector", &sink)]) == Some(1.0)).then_some(())
    })
    .await;
    let text = metrics(&api).await;
    assert_eq!(
        sample(
            &text,
            "kcs_connector_auto_restarts_total",
            &[("connector", &sink)]
        ),
        Some(2.0)
    );
    // Held: nothing more happens on its own. Rather than sleep and hope the watch looked, wait
    // for a poll that began after a next restart would have been due (the hold plus the longest
    // backoff and an interval), and then for the poll after it, so whatever that poll would
    // have restarted is done.
    let held = events(&api, &format!("connector={sink}&kind=connector_held")).await;
    let due = rfc3339(&held[0]["time"]) + Duration::from_secs(2 + 1);
    let late = eventually(
        "a status poll after a restart would have been due",
        WAIT,
        || async { status_read_at(&api).await.filter(|t| *t > due) },
    )
    .await;
    eventually("the poll after it", WAIT, || async {
        status_read_at(&api).await.filter(|t| *t > late).map(|_| ())
    })
    .await;
    assert_eq!(
        restarts(&events(&api, &format!("connector={sink}")).await),
        2
    );

    // An operator's restart releases it; the cause is still there, so restarts begin again.
    let a = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed(&format!("/connectors/{sink}/restart")),
            None,
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let released = events(&api, &format!("connector={sink}&kind=connector_released")).await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["principal"], "OPERATOR");
    eventually("automatic restarts to resume", WAIT, || async {
        (restarts(&events(&api, &format!("connector={sink}")).await) > 2).then_some(())
    })
    .await;
    api.stop().await;
}

/// Every line of the workers reaches the log topic as JSON (read back with rdkafka); with that
/// Kafka stopped the worker keeps running, the oldest waiting lines are dropped and counted, and
/// forwarding resumes when Kafka is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_logs_reach_the_log_topic_and_survive_its_kafka_going_away() {
    let mut logs_kafka = OwnBroker::start().await;
    let bootstrap = logs_kafka.broker.bootstrap_servers();
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        &format!(
            "\n[logs]\nbuffer_lines = 200\nforward_level = \"DEBUG\"\n[logs.producer]\n\"bootstrap.servers\" = \"{bootstrap}\"\n\
             \"queue.buffering.max.messages\" = \"500\"\n[metrics]\njmx_exporter = false\n"
        ),
    )
    .await;
    let id = api.dept.id();
    let topic = format!("{id}._connect-logs");
    let dir = scratch(&format!("{id}-fwd"));
    std::fs::write(dir.join("in.txt"), "x\n").unwrap();
    let first = format!("{id}-first-file-source");
    let config = file_source(&dir.join("in.txt"), &format!("{id}-fwd"));
    assert_eq!(
        create(&api, As::Operator, &first, config_json(&config)).await,
        201
    );

    let b = bootstrap.clone();
    let f = first.clone();
    let records = tokio::task::spawn_blocking(move || {
        read_json_until(
            &b,
            &topic,
            "worker lines and the connector's lines",
            WAIT,
            |r| {
                r.iter()
                    .any(|(k, v)| k.as_deref() == Some(f.as_str()) && v["connector"] == f.as_str())
                    && r.iter()
                        .any(|(k, v)| k.is_none() && v["connector"].is_null())
            },
        )
    })
    .await
    .unwrap();
    let (_, line) = records
        .iter()
        .find(|(k, _)| k.as_deref() == Some(first.as_str()))
        .unwrap();
    for field in [
        "time",
        "level",
        "logger",
        "message",
        "worker",
        "pool",
        "department",
        "seq",
    ] {
        assert!(line.get(field).is_some(), "{field} missing in {line}");
    }
    assert_eq!(line["department"], id.as_str());
    assert_eq!(line["worker"], "shared-0");

    // The log Kafka goes away; the worker floods its log (DEBUG).
    let worker = api.dept.supervisor.worker("shared-0").unwrap();
    logs_kafka.broker.pause().await;
    let http = reqwest::Client::new();
    let level = |l: &'static str| {
        let http = http.clone();
        let url = format!("{}/admin/loggers/org.apache.kafka", worker.rest_url);
        async move {
            let r = http
                .put(url)
                .json(&json!({ "level": l }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    level("DEBUG").await;
    let dropped = eventually("dropped lines to be counted", WAIT, || async {
        let text = metrics(&api).await;
        sample(
            &text,
            "kcs_log_lines_dropped_total",
            &[("reason", "buffer_full")],
        )
        .filter(|d| *d > 0.0)
    })
    .await;
    level("INFO").await;
    let still = api.dept.supervisor.worker("shared-0").unwrap();
    assert_eq!(still.pid, worker.pid, "the worker kept running");
    assert_eq!(still.launches, worker.launches);
    assert!(still.state.is_up());
    eprintln!("FIGURE log forwarding: {dropped} lines dropped while the log Kafka was away");

    // Kafka is back: forwarding resumes by itself.
    logs_kafka.broker.resume().await.unwrap();
    let forwarded_before =
        sample(&metrics(&api).await, "kcs_log_lines_forwarded_total", &[]).unwrap();
    let marker = format!("{id}-after-file-source");
    assert_eq!(
        create(&api, As::Operator, &marker, config_json(&config)).await,
        201
    );
    let topic = format!("{id}._connect-logs");
    let m = marker.clone();
    tokio::task::spawn_blocking(move || {
        read_json_until(
            &bootstrap,
            &topic,
            "lines logged after Kafka came back",
            WAIT,
            |r| r.iter().any(|(_, v)| v["connector"] == m.as_str()),
        )
    })
    .await
    .unwrap();
    let forwarded_after =
        sample(&metrics(&api).await, "kcs_log_lines_forwarded_total", &[]).unwrap();
    assert!(forwarded_after > forwarded_before);
    api.stop().await;
    logs_kafka.broker.stop().await;
}

fn documented_metrics() -> String {
    std::fs::read_to_string(Path::new(harness::PROJECT).join("docs/metrics.md")).unwrap()
}

/// A running source and sink: every metric the requirements name is there, with non-zero values
/// where data flowed; promtool accepts the output; every family is documented; the health
/// summary and `/readyz` follow the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_a_running_pipeline_and_readiness_follows_the_workers() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[metrics]\nscrape_interval = \"2s\"\n[auto_restart]\ninterval = \"1s\"\n[health]\nkafka_interval = \"1s\"\n",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch(&format!("{id}-pipe"));
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    let topic = format!("{id}-pipe");
    std::fs::write(&input, "").unwrap();
    let source = format!("{id}-pipe-file-source");
    let sink = format!("{id}-pipe-file-sink");
    assert_eq!(
        create(
            &api,
            As::Operator,
            &source,
            config_json(&file_source(&input, &topic))
        )
        .await,
        201
    );
    assert_eq!(
        create(
            &api,
            As::Operator,
            &sink,
            config_json(&file_sink(&topic, &output))
        )
        .await,
        201
    );
    // Keep records flowing so that Connect's windowed rates stay above zero.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let input = input.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&input)
                .unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..20 {
                    writeln!(f, "record {i}").unwrap();
                    i += 1;
                }
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    eventually("records through the pipeline", WAIT, || async {
        (read_lines(&output).len() > 200).then_some(())
    })
    .await;

    let src = [("connector", source.as_str())];
    let snk = [("connector", sink.as_str())];
    let positive = |text: &str, name: &str, labels: &[(&str, &str)]| {
        samples(text, name, labels).iter().any(|v| *v > 0.0)
    };
    let present =
        |text: &str, name: &str, labels: &[(&str, &str)]| !samples(text, name, labels).is_empty();
    let text = eventually("every required metric with data", WAIT, || async {
        let t = metrics(&api).await;
        let checks = [
            // Connector status, failed and total task counts, uptime, task status.
            sample(
                &t,
                "kcs_connector_state",
                &[("connector", &source), ("state", "running")],
            ) == Some(1.0),
            sample(
                &t,
                "kcs_connector_state",
                &[("connector", &sink), ("state", "running")],
            ) == Some(1.0),
            sample(&t, "kcs_connector_failed_tasks", &snk) == Some(0.0),
            sample(&t, "kcs_connector_tasks", &snk) == Some(1.0),
            positive(&t, "kcs_connector_uptime_seconds", &src),
            sample(
                &t,
                "kcs_task_state",
                &[("connector", &sink), ("task", "0"), ("state", "running")],
            ) == Some(1.0),
            present(
                &t,
                "kafka_connect_connector_task_status",
                &[("connector", &sink), ("status", "running")],
            ),
            present(
                &t,
                "kafka_connect_connector_status",
                &[("connector", &source), ("status", "running")],
            ),
            // Batch size, offset commit time, error rate (its counters).
            positive(&t, "kafka_connect_connector_task_batch_size_avg", &snk),
            present(
                &t,
                "kafka_connect_connector_task_offset_commit_avg_time_seconds",
                &src,
            ),
            present(&t, "kafka_connect_task_error_total_record_errors", &snk),
            // Source poll/write rates and active records.
            positive(
                &t,
                "kafka_connect_source_task_source_record_poll_rate",
                &src,
            ),
            positive(
                &t,
                "kafka_connect_source_task_source_record_write_rate",
                &src,
            ),
            positive(
                &t,
                "kafka_connect_source_task_source_record_write_total",
                &src,
            ),
            present(&t, "kafka_connect_source_task_source_record_active", &src),
            // Sink read/send rates and lag.
            positive(&t, "kafka_connect_sink_task_sink_record_read_rate", &snk),
            positive(&t, "kafka_connect_sink_task_sink_record_send_rate", &snk),
            positive(&t, "kafka_connect_sink_task_sink_record_read_total", &snk),
            present(
                &t,
                "kafka_consumer_fetch_manager_records_lag",
                &[("connector", &sink), ("topic", &topic)],
            ),
            // Last successful activity.
            positive(&t, "kcs_connector_last_activity_timestamp_seconds", &src),
            positive(&t, "kcs_connector_last_activity_timestamp_seconds", &snk),
        ];
        checks.iter().all(|c| *c).then_some(t)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let w = [("worker", "shared-0"), ("pool", "shared")];
    for (name, labels, must_be_positive) in [
        ("kcs_worker_up", &w[..], true),
        ("kcs_worker_cpu_seconds_total", &w[..], true),
        ("kcs_worker_memory_usage_bytes", &w[..], true),
        ("kcs_worker_memory_limit_bytes", &w[..], true),
        ("kcs_worker_cpu_limit_cores", &w[..], true),
        ("kcs_worker_cpu_throttled_seconds_total", &w[..], false),
        ("kcs_worker_oom_kills_total", &w[..], false),
        ("kcs_worker_restarts_total", &w[..], false),
        ("kcs_worker_scrape_up", &w[..], true),
        ("kcs_cgroup_enforcement", &[][..], true),
        ("kcs_quota_limit", &[("resource", "connectors")][..], true),
        ("kcs_quota_usage", &[("resource", "connectors")][..], true),
        (
            "kcs_api_requests_total",
            &[("method", "POST"), ("status", "201")][..],
            true,
        ),
        ("kcs_api_request_duration_seconds_count", &[][..], true),
        ("kcs_log_lines_total", &w[..], true),
        ("kcs_log_lines_forwarded_total", &[][..], true),
        ("kcs_log_lines_dropped_total", &[][..], false),
        ("kcs_kafka_up", &[][..], true),
        ("kcs_connector_auto_restarts_total", &src[..], false),
        ("kcs_connector_held", &src[..], false),
        ("kcs_events_total", &[][..], true),
    ] {
        let v = samples(&text, name, labels);
        assert!(!v.is_empty(), "{name}{labels:?} missing");
        if must_be_positive {
            assert!(v.iter().any(|v| *v > 0.0), "{name}{labels:?} is {v:?}");
        }
    }
    assert!(text.contains(&format!("department=\"{id}\"")));
    let (ok, out) = run_promtool(
        &["check", "metrics"],
        Some(&text),
        Path::new(harness::PROJECT),
    );
    assert!(ok, "promtool check metrics: {out}");
    let docs = documented_metrics();
    for family in families(&text) {
        assert!(
            docs.contains(&format!("`{family}`")),
            "metric {family} is not in docs/metrics.md"
        );
    }

    // The health summary, for the dashboard.
    let h = api
        .call(As::Viewer, Method::GET, &api.url("/v1/health"), None)
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.body["connectors_total"], 2, "{}", h.body);
    assert_eq!(h.body["connectors_by_state"]["RUNNING"], 2);
    assert_eq!(h.body["can_restart"], false);
    assert_eq!(h.body["status"], "ok");
    let item = h.body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == sink.as_str())
        .unwrap()
        .clone();
    assert!(item["last_activity"].is_string(), "{item}");
    assert_eq!(item["tasks"], 1);
    let as_operator = api
        .call(As::Operator, Method::GET, &api.url("/v1/health"), None)
        .await;
    assert_eq!(as_operator.body["can_restart"], true);

    // Readiness follows the workers: the only worker of the pool killed, unready, then ready.
    let ready = reqwest::Client::new();
    let readyz = || {
        let ready = ready.clone();
        let url = api.url("/readyz");
        async move {
            let r = ready.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    eventually("/readyz to answer 200", WAIT, || async {
        (readyz().await.0 == 200).then_some(())
    })
    .await;
    let pid = api.dept.supervisor.worker("shared-0").unwrap().pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let down = eventually("/readyz to answer 503", WAIT, || async {
        let (status, body) = readyz().await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(
        down["problems"][0]
            .as_str()
            .unwrap()
            .contains("pool shared has no ready worker"),
        "{down}"
    );
    eventually(
        "/readyz to answer 200 again",
        Duration::from_secs(240),
        || async { (readyz().await.0 == 200).then_some(()) },
    )
    .await;
    // The worker's restart counts in the budget of the connectors it ran.
    let charged = events(&api, "kind=restart_budget_charged").await;
    let charged: Vec<&str> = charged
        .iter()
        .filter_map(|e| e["connector"].as_str())
        .collect();
    assert!(
        charged.contains(&source.as_str()) && charged.contains(&sink.as_str()),
        "{charged:?}"
    );
    api.stop().await;
}

/// The alert rules pass `promtool check rules` and their unit tests, and the PrometheusRule
/// carries the same groups.
#[test]
fn the_alert_rules_pass_promtool_and_the_prometheusrule_matches_them() {
    let dir = rules_dir();
    let (ok, out) = run_promtool(
        &["check", "rules", "connect-supervisor-rules.yaml"],
        None,
        &dir,
    );
    assert!(ok, "promtool check rules: {out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (ok, out) = run_promtool(
        &["test", "rules", "connect-supervisor-rules.test.yaml"],
        None,
        &dir,
    );
    assert!(ok, "promtool test rules: {out}");
    let plain: Value = yaml_serde::from_str(
        &std::fs::read_to_string(dir.join("connect-supervisor-rules.yaml")).unwrap(),
    )
    .unwrap();
    let wrapped: Value =
        yaml_serde::from_str(&std::fs::read_to_string(dir.join("prometheusrule.yaml")).unwrap())
            .unwrap();
    assert_eq!(wrapped["kind"], "PrometheusRule");
    assert_eq!(
        wrapped["spec"], plain,
        "prometheusrule.yaml differs from connect-supervisor-rules.yaml"
    );
    // The rules use our metric names, documented.
    let docs = documented_metrics();
    let text = serde_json::to_string(&plain).unwrap();
    for name in [
        "kcs_connector_failed_tasks",
        "kcs_connector_state",
        "kcs_worker_oom_kills_total",
        "kcs_worker_restarts_total",
        "kafka_connect_task_error_total_record_errors",
    ] {
        assert!(
            text.contains(name) && docs.contains(&format!("`{name}`")),
            "{name}"
        );
    }
    // Every alert named by the requirements is there.
    for alert in [
        "ConnectTaskFailed",
        "ConnectErrorRateHigh",
        "ConnectConnectorNotRunning",
        "ConnectWorkerOOMKilled",
        "ConnectWorkerCrashLooping",
    ] {
        assert!(text.contains(alert), "{alert}");
    }
}

/// `/readyz` of a department whose Kafka does not answer says so (fake workers, no broker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_when_kafka_does_not_answer() {
    let (department, _) = harness::supervision::fake_department(
        "[[pools]]\nname = \"p\"\nworkers = 1\ncpu = 0.5\nmemory = \"64MiB\"\n",
        "cgroups = \"off\"",
        "max_workers = 1\ncpu = 1\nmemory = \"1GiB\"",
    );
    let sup = harness::supervision::start_fake(
        department,
        harness::supervision::script("touch \"$CS_READY_FILE\"; exec sleep 600"),
    )
    .await;
    sup.wait_until_ready(Duration::from_secs(30)).await.unwrap();
    let base = harness::supervision::serve(sup.clone()).await;
    let body: Value = eventually("a Kafka verdict", WAIT, || async {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        (body["kafka"]["reachable"] == false).then(|| {
            assert_eq!(status, 503);
            body
        })
    })
    .await;
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("Kafka does not answer"),
        "{body}"
    );
    assert_eq!(body["pools"][0]["ready_workers"], 1);
    let healthz = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(healthz.status(), 200, "liveness does not depend on Kafka");
    let e: Value = reqwest::get(format!("{base}/v1/events?kind=kafka_unreachable"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["events"].as_array().unwrap().len(), 1, "{e}");
    sup.shutdown().await;
    let _ = unique("x");
}

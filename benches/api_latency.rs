//! What the supervisor adds to a call, measured against the worker it calls, in the same run:
//! GET status, and GET list-with-expand over 50 connectors (through the supervisor, directly with
//! Connect's own `?expand=`, and the N+1 calls a client makes without expand).
//!
//! Real parts: a KRaft broker, one Connect worker, 50 FileStreamSource connectors. Prints p50 and
//! p99 of each and the ratios. Run with `cargo bench --bench api_latency`.

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;
#[path = "stats/mod.rs"]
#[allow(dead_code)]
mod stats;

use std::time::{Duration, Instant};

use harness::api::{ADMIN_SECRET, TestApi};
use harness::{PoolSpec, file_source, scratch, unique};
use stats::Series;

const CONNECTORS: usize = 50;
const STATUS_SAMPLES: usize = 400;
const LIST_SAMPLES: usize = 60;
const N_PLUS_ONE_SAMPLES: usize = 15;

async fn timed(request: reqwest::RequestBuilder) -> Duration {
    let started = Instant::now();
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let _ = response.bytes().await.expect("body");
    started.elapsed()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let worker = api.dept.worker("shared");
    let dir = scratch("bench");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let topic = unique(&format!("{id}-bench-"));
    let names: Vec<String> = (0..CONNECTORS)
        .map(|i| format!("{id}-files-source-dev-{i:03}"))
        .collect();
    for name in &names {
        let mut config = file_source(&input, &topic);
        config.insert("db.password".into(), "bench-secret".into());
        worker
            .create_connector(name, &config)
            .await
            .expect("create");
    }
    let started = Instant::now();
    loop {
        let all = worker.connectors_expanded(true, false).await.expect("list");
        let running = all
            .values()
            .filter(|e| {
                e.status.as_ref().is_some_and(|s| {
                    s.connector.state == "RUNNING"
                        && !s.tasks.is_empty()
                        && s.tasks.iter().all(|t| t.state.state == "RUNNING")
                })
            })
            .count();
        if running == CONNECTORS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {running} connectors running"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let http = reqwest::Client::new();
    let direct = worker.base().to_string();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth("ADMIN", Some(ADMIN_SECRET));
    let target = &names[CONNECTORS / 2];

    // Warm both paths (connections, caches).
    for _ in 0..20 {
        timed(http.get(format!("{direct}/connectors/{target}/status"))).await;
        timed(auth(
            http.get(api.managed(&format!("/connectors/{target}/status"))),
        ))
        .await;
        timed(auth(
            http.get(api.managed("/connectors?expand=info,status,id")),
        ))
        .await;
    }

    let mut status_direct = Series::new("GET status, worker directly");
    let mut status_supervisor = Series::new("GET status, through the supervisor (managed)");
    for _ in 0..STATUS_SAMPLES {
        status_direct
            .samples
            .push(timed(http.get(format!("{direct}/connectors/{target}/status"))).await);
        status_supervisor.samples.push(
            timed(auth(
                http.get(api.managed(&format!("/connectors/{target}/status"))),
            ))
            .await,
        );
    }

    let mut list_direct = Series::new("GET ?expand=status&expand=info, worker");
    let mut list_supervisor = Series::new("GET ?expand=info,status,id, supervisor");
    for _ in 0..LIST_SAMPLES {
        list_direct
            .samples
            .push(timed(http.get(format!("{direct}/connectors?expand=status&expand=info"))).await);
        list_supervisor.samples.push(
            timed(auth(
                http.get(api.managed("/connectors?expand=info,status,id")),
            ))
            .await,
        );
    }

    let mut n_plus_one = Series::new("N+1 against the worker (list, info+status each)");
    for _ in 0..N_PLUS_ONE_SAMPLES {
        let started = Instant::now();
        let list: Vec<String> = http
            .get(format!("{direct}/connectors"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for name in &list {
            timed(http.get(format!("{direct}/connectors/{name}"))).await;
            timed(http.get(format!("{direct}/connectors/{name}/status"))).await;
        }
        n_plus_one.samples.push(started.elapsed());
    }

    println!("\nconnect-supervisor API latency, {CONNECTORS} connectors, one worker, same run:\n");
    for s in [
        &mut status_direct,
        &mut status_supervisor,
        &mut list_direct,
        &mut list_supervisor,
        &mut n_plus_one,
    ] {
        s.print();
    }
    let added_p50 = status_supervisor.p(50.0) - status_direct.p(50.0);
    let added_p99 = status_supervisor.p(99.0) - status_direct.p(99.0);
    println!(
        "\nstatus: supervisor adds {added_p50:.3} ms at p50, {added_p99:.3} ms at p99 (target: < 1 ms at p99); ratio p50 {:.2}x, p99 {:.2}x",
        status_supervisor.p(50.0) / status_direct.p(50.0),
        status_supervisor.p(99.0) / status_direct.p(99.0)
    );
    println!(
        "list-with-expand through the supervisor vs N+1 against the worker: p50 {:.2}x faster, p99 {:.2}x faster",
        n_plus_one.p(50.0) / list_supervisor.p(50.0),
        n_plus_one.p(99.0) / list_supervisor.p(99.0)
    );
    println!(
        "list-with-expand through the supervisor vs Connect's own expand: ratio p50 {:.2}x, p99 {:.2}x",
        list_supervisor.p(50.0) / list_direct.p(50.0),
        list_supervisor.p(99.0) / list_direct.p(99.0)
    );
    api.stop().await;
}

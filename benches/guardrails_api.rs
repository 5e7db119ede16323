//! What the guardrails add to the API's writes, measured against the worker they call, in the
//! same run, with 50 connectors in the department (the usage every review reads):
//! `config/validate` (Connect's validation plus the dry run) and a create (review, usage read,
//! secret file written, visibility wait) through the supervisor, against the same calls made to
//! the worker directly; and a refused create, which never reaches Connect's write path.
//!
//! Real parts: a KRaft broker, one Connect worker, FileStreamSource connectors. Prints p50 and p99
//! of each and the ratios. Run with `cargo bench --bench guardrails_api`.

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;
#[path = "stats/mod.rs"]
#[allow(dead_code)]
mod stats;

use std::time::{Duration, Instant};

use harness::api::{ADMIN_SECRET, TestApi};
use harness::{PoolSpec, file_source, scratch, unique};
use serde_json::json;
use stats::Series;

const CONNECTORS: usize = 50;
const VALIDATE_SAMPLES: usize = 150;
const WRITE_SAMPLES: usize = 20;
/// Pause before each timed create, for the worker group to settle after the last delete.
const SETTLE: Duration = Duration::from_millis(1500);

async fn timed(request: reqwest::RequestBuilder, expected: u16) -> Duration {
    let started = Instant::now();
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    assert_eq!(status, expected, "{body}");
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
    for i in 0..CONNECTORS - 2 {
        let config = file_source(&input, &topic);
        worker
            .create_connector(&format!("{id}-files-source-dev-{i:03}"), &config)
            .await
            .expect("create");
    }

    let http = reqwest::Client::new();
    let direct = worker.base().to_string();
    let auth = |r: reqwest::RequestBuilder| r.basic_auth("ADMIN", Some(ADMIN_SECRET));
    let mut config = file_source(&input, &topic);
    config.insert("connection.password".into(), "bench-secret".into());
    let name = format!("{id}-files-source-dev-new");
    let mut with_name = config.clone();
    with_name.insert("name".into(), name.clone());
    let validate_body = serde_json::to_value(&with_name).unwrap();
    let create_body = json!({"name": name, "config": config});
    let mut refused_config = config.clone();
    refused_config.insert("topic".into(), "outside".into());
    let refused_body = json!({"name": name, "config": refused_config});

    // Warm both paths (connections, the plugin caches).
    for _ in 0..10 {
        timed(
            http.put(format!(
                "{direct}/connector-plugins/FileStreamSource/config/validate"
            ))
            .json(&validate_body),
            200,
        )
        .await;
        timed(
            auth(http.put(api.managed("/connector-plugins/FileStreamSource/config/validate")))
                .json(&validate_body),
            200,
        )
        .await;
    }

    let mut validate_direct = Series::new("PUT config/validate, worker directly");
    let mut validate_supervisor = Series::new("PUT config/validate, supervisor (with dry run)");
    for _ in 0..VALIDATE_SAMPLES {
        validate_direct.samples.push(
            timed(
                http.put(format!(
                    "{direct}/connector-plugins/FileStreamSource/config/validate"
                ))
                .json(&validate_body),
                200,
            )
            .await,
        );
        validate_supervisor.samples.push(
            timed(
                auth(http.put(api.managed("/connector-plugins/FileStreamSource/config/validate")))
                    .json(&validate_body),
                200,
            )
            .await,
        );
    }

    let mut refused = Series::new("POST create refused by a rule, supervisor");
    for _ in 0..VALIDATE_SAMPLES {
        refused.samples.push(
            timed(
                auth(http.post(api.managed("/connectors"))).json(&refused_body),
                400,
            )
            .await,
        );
    }

    // Creates: each one timed alone, after the previous connector is gone and the worker's
    // group has settled (a create racing the rebalance of the last delete waits for it, which
    // would measure Connect's rebalance, not the supervisor).
    let mut write_direct = Series::new("create, worker directly");
    let mut write_supervisor = Series::new("create, supervisor (reviewed, secret file)");
    let settle = || async {
        loop {
            let names = worker.connectors().await.expect("list");
            if !names.contains(&name) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(SETTLE).await;
    };
    for _ in 0..WRITE_SAMPLES {
        settle().await;
        write_direct.samples.push(
            timed(
                http.post(format!("{direct}/connectors")).json(&create_body),
                201,
            )
            .await,
        );
        timed(http.delete(format!("{direct}/connectors/{name}")), 204).await;
        settle().await;
        write_supervisor.samples.push(
            timed(
                auth(http.post(api.managed("/connectors"))).json(&create_body),
                201,
            )
            .await,
        );
        timed(
            auth(http.delete(api.managed(&format!("/connectors/{name}")))),
            200,
        )
        .await;
    }

    println!("\nguardrails on the API's writes, {CONNECTORS} connectors, one worker, same run:\n");
    for s in [
        &mut validate_direct,
        &mut validate_supervisor,
        &mut refused,
        &mut write_direct,
        &mut write_supervisor,
    ] {
        s.print();
    }
    println!(
        "\nvalidate: supervisor adds {:.3} ms at p50 ({:.2}x), {:.3} ms at p99 ({:.2}x)",
        validate_supervisor.p(50.0) - validate_direct.p(50.0),
        validate_supervisor.p(50.0) / validate_direct.p(50.0),
        validate_supervisor.p(99.0) - validate_direct.p(99.0),
        validate_supervisor.p(99.0) / validate_direct.p(99.0),
    );
    println!(
        "create: supervisor adds {:.3} ms at p50 ({:.2}x), {:.3} ms at p99 ({:.2}x)",
        write_supervisor.p(50.0) - write_direct.p(50.0),
        write_supervisor.p(50.0) / write_direct.p(50.0),
        write_supervisor.p(99.0) - write_direct.p(99.0),
        write_supervisor.p(99.0) / write_direct.p(99.0),
    );
    println!(
        "refused create vs validate on the worker: p50 {:.2}x",
        refused.p(50.0) / validate_direct.p(50.0)
    );
    api.stop().await;
}

//! What a Confluent CLI session token (bearer JWT, HS256) costs against an API key (HTTP Basic)
//! on `GET .../connectors/{name}/status`, in the same run: end to end through the supervisor to
//! a real worker (the two schemes interleaved request by request), and the verification alone
//! (`Authenticator::authenticate`, no I/O).
//!
//! Real parts: a KRaft broker, one Connect worker, one FileStreamSource connector. Prints p50 and
//! p99 of each and the difference. Run with `cargo bench --bench session_auth`.

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;
#[path = "stats/mod.rs"]
#[allow(dead_code)]
mod stats;

use std::time::{Duration, Instant};

use harness::api::{ADMIN_SECRET, TestApi, basic};
use harness::{PoolSpec, file_source, scratch, unique};
use stats::Series;

const STATUS_SAMPLES: usize = 600;
const VERIFY_SAMPLES: usize = 20_000;

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
    let name = format!("{id}-files-source-dev-001");
    worker
        .create_connector(
            &name,
            &file_source(&input, &unique(&format!("{id}-bench-"))),
        )
        .await
        .expect("create");
    let started = Instant::now();
    while worker
        .connector_status(&name)
        .await
        .map(|s| s.connector.state != "RUNNING" || s.tasks.is_empty())
        .unwrap_or(true)
    {
        assert!(started.elapsed() < Duration::from_secs(300), "not running");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(api.url("/api/sessions"))
        .json(&serde_json::json!({"email": "ADMIN", "password": ADMIN_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"]
        .as_str()
        .expect("a session token")
        .to_string();
    let url = api.managed(&format!("/connectors/{name}/status"));
    let with_basic = || http.get(&url).basic_auth("ADMIN", Some(ADMIN_SECRET));
    let with_session = || http.get(&url).bearer_auth(&token);

    for _ in 0..30 {
        timed(with_basic()).await;
        timed(with_session()).await;
    }
    let mut basic_status = Series::new("GET status, API key (Basic)");
    let mut session_status = Series::new("GET status, session token (Bearer JWT)");
    for i in 0..STATUS_SAMPLES {
        // Alternate which goes first so neither always follows the other.
        if i % 2 == 0 {
            basic_status.samples.push(timed(with_basic()).await);
            session_status.samples.push(timed(with_session()).await);
        } else {
            session_status.samples.push(timed(with_session()).await);
            basic_status.samples.push(timed(with_basic()).await);
        }
    }

    let auth = &api.state.auth;
    let basic_header = basic("ADMIN", ADMIN_SECRET);
    let bearer_header = format!("Bearer {token}");
    let mut basic_verify = Series::new("authenticate(), Basic");
    let mut session_verify = Series::new("authenticate(), Bearer JWT");
    for _ in 0..VERIFY_SAMPLES {
        let t = Instant::now();
        assert!(auth.authenticate(Some(&basic_header)).is_ok());
        basic_verify.samples.push(t.elapsed());
        let t = Instant::now();
        assert!(auth.authenticate(Some(&bearer_header)).is_ok());
        session_verify.samples.push(t.elapsed());
    }

    println!("\nconnect-supervisor: session token vs API key, one worker, same run:\n");
    for s in [
        &mut basic_status,
        &mut session_status,
        &mut basic_verify,
        &mut session_verify,
    ] {
        s.print();
    }
    println!(
        "\nGET status: the session token adds {:.3} ms at p50, {:.3} ms at p99 (ratio p50 {:.3}x, p99 {:.3}x)",
        session_status.p(50.0) - basic_status.p(50.0),
        session_status.p(99.0) - basic_status.p(99.0),
        session_status.p(50.0) / basic_status.p(50.0),
        session_status.p(99.0) / basic_status.p(99.0),
    );
    println!(
        "verification alone: Basic {:.1} us, JWT {:.1} us at p50 ({:.2}x)",
        basic_verify.p(50.0) * 1000.0,
        session_verify.p(50.0) * 1000.0,
        session_verify.p(50.0) / basic_verify.p(50.0),
    );
    api.stop().await;
}

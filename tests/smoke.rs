//! End-to-end smoke test with real parts: a KRaft broker, a department pool of two Connect
//! workers started by the supervisor, a FileStreamSource into a topic and a FileStreamSink out of
//! it, checked with rdkafka and on disk.

mod harness;

use std::time::Duration;

use harness::{
    PoolSpec, TestDepartment, consume, department, eventually, file_sink, file_source,
    numbered_lines, read_lines, scratch, unique,
};

const LINES: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_to_topic_to_file_sink_carries_every_line_exactly() {
    let dept = TestDepartment::start(department(&[PoolSpec::new("shared", 2)])).await;
    let id = dept.id();
    let dir = scratch("smoke");
    let input = dir.join("input.txt");
    let output = dir.join("output.txt");
    let lines = numbered_lines(LINES);
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let topic = unique(&format!("{id}-smoke-"));

    // Both workers serve the same Connect cluster.
    let urls = dept.supervisor.ready_worker_urls("shared");
    assert_eq!(urls.len(), 2, "{urls:?}");
    for url in &urls {
        let info = connect_supervisor::connect::ConnectClient::new(dept.http.clone(), url.clone())
            .server_info()
            .await
            .expect("worker answers GET /");
        assert!(info.version.starts_with("4."), "{info:?}");
    }

    let worker = dept.worker("shared");
    let source = format!("{id}-files-source-dev-001");
    worker
        .create_connector(&source, &file_source(&input, &topic))
        .await
        .expect("create source");

    let read = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || {
            consume(
                &topic,
                LINES,
                Duration::from_secs(120),
                Duration::from_secs(3),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(
        read, lines,
        "the topic holds exactly the input lines, in order"
    );

    let sink = format!("{id}-files-sink-dev-001");
    worker
        .create_connector(&sink, &file_sink(&topic, &output))
        .await
        .expect("create sink");
    let written = eventually(
        "the sink file to hold every line",
        Duration::from_secs(120),
        || {
            let output = output.clone();
            async move {
                let got = read_lines(&output);
                (got.len() >= LINES).then_some(got)
            }
        },
    )
    .await;
    assert_eq!(written, lines, "the sink file equals the input");

    // Connect reports both connectors running on the pool's workers.
    for name in [&source, &sink] {
        let status = worker.connector_status(name).await.expect("status");
        assert_eq!(status.connector.state, "RUNNING", "{status:?}");
        assert!(
            urls.iter()
                .any(|u| u.ends_with(&status.connector.worker_id)),
            "{status:?}"
        );
    }
    dept.stop().await;
}

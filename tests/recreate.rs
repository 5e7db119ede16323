//! A connector deleted and created again under the same name, through the managed API against
//! real workers: by default (`department.recreate = "fresh"`, the managed service's behaviour
//! Terraform's `-replace` relies on) it gets a new `lcc-` id and starts from no offsets; with
//! `recreate = "resume"` (Kafka Connect's own behaviour) it keeps the id and resumes from the
//! deleted connector's offsets.

mod harness;

use std::path::Path;
use std::time::Duration;

use connect_supervisor::config;
use harness::api::{As, TestApi, auth_toml, capture_logs};
use harness::{
    PROJECT, PoolSpec, TestDepartment, consume, department_toml, eventually, file_source, scratch,
    unique,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const SETTLE: Duration = Duration::from_secs(3);

/// A test department with `recreate` set in its `[department]` table (`None`: the default).
async fn start(recreate: Option<&str>) -> TestApi {
    capture_logs();
    let id = unique("r");
    let state = scratch(&format!("{id}-state"));
    let mut text = department_toml(&id, &[PoolSpec::new("shared", 1)], &state, &auth_toml(""));
    if let Some(mode) = recreate {
        let marker = format!("kafka_cluster_id = \"lkc-{id}\"\n");
        text = text.replacen(&marker, &format!("{marker}recreate = \"{mode}\"\n"), 1);
    }
    let department = config::parse(&text, Path::new(PROJECT), &|_| None)
        .unwrap_or_else(|e| panic!("test department is invalid: {e:?}\n{text}"));
    TestApi::serve(TestDepartment::start(department).await).await
}

async fn create(api: &TestApi, name: &str, file: &Path, topic: &str) -> String {
    let mut config = file_source(file, topic);
    config.insert("name".into(), name.into());
    let a = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": config})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let listed = api
        .call(
            As::Operator,
            Method::GET,
            &api.managed("/connectors?expand=id"),
            None,
        )
        .await;
    listed.body[name]["id"]["id"].as_str().unwrap().to_string()
}

/// Waits until Connect has committed the source's position at the end of `file`.
async fn wait_committed(api: &TestApi, name: &str, file: &Path) {
    let size = std::fs::metadata(file).unwrap().len();
    let url = api.managed(&format!("/connectors/{name}/offsets"));
    eventually("the source's offsets to be committed", WAIT, || async {
        let a = api.call(As::Viewer, Method::GET, &url, None).await;
        let position = a.body["offsets"]
            .as_array()
            .and_then(|o| o.first())
            .map(|o| o["offset"]["position"].clone())
            .unwrap_or(Value::Null);
        (position.as_u64() == Some(size)).then_some(())
    })
    .await;
}

async fn delete(api: &TestApi, name: &str) {
    let a = api
        .call(
            As::Operator,
            Method::DELETE,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// Creates a source over four lines, lets it copy them, deletes it, and creates it again under
/// the same name into a new topic. Returns (first id, second id, second topic, the input file).
async fn delete_and_recreate(api: &TestApi) -> (String, String, String, std::path::PathBuf) {
    let id = api.dept.id();
    let dir = scratch(&format!("{id}-recreate"));
    let input = dir.join("in.txt");
    std::fs::write(&input, "line1\nline2\nline3\nline4\n").unwrap();
    let name = format!("{id}-lines-source-dev-001");
    let first_topic = unique(&format!("{id}-first-"));
    let first_id = create(api, &name, &input, &first_topic).await;
    assert_eq!(consume(&first_topic, 4, WAIT, SETTLE).len(), 4);
    wait_committed(api, &name, &input).await;
    delete(api, &name).await;
    let second_topic = unique(&format!("{id}-second-"));
    let second_id = create(api, &name, &input, &second_topic).await;
    (first_id, second_id, second_topic, input)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_connector_gets_a_new_id_and_no_offsets_by_default() {
    let api = start(None).await;
    let (first, second, topic, _) = delete_and_recreate(&api).await;
    assert!(second.starts_with("lcc-"), "{second}");
    assert_ne!(first, second, "a new incarnation has a new id");
    let lines = consume(&topic, 4, WAIT, SETTLE);
    assert_eq!(
        lines,
        ["line1", "line2", "line3", "line4"],
        "the new connector starts from the beginning"
    );
    assert!(
        harness::api::captured_logs().contains("Offsets reset before the delete."),
        "the delete reset the offsets"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_resume_keeps_the_id_and_the_offsets() {
    let api = start(Some("resume")).await;
    let (first, second, topic, input) = delete_and_recreate(&api).await;
    assert_eq!(first, second, "the name-derived id");
    // It resumes after line 4: a fifth line is the only one the new topic gets.
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("line5\n");
    std::fs::write(&input, text).unwrap();
    assert_eq!(consume(&topic, 1, WAIT, SETTLE), ["line5"]);
    api.stop().await;
}

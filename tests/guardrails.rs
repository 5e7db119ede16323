//! The policy engine's output against a real Connect worker (real KRaft broker, worker JVM
//! started by the supervisor): the workers' plugin list resolves aliases, a reviewed sink with
//! the platform's dead letter queue defaults runs, its externalized secrets are resolved by the
//! worker's FileConfigProvider from the secrets folder, and no literal secret reaches Kafka's
//! config topic. Reading back and stripping the applied defaults gives the user's keys (no
//! Terraform drift).

mod harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use connect_supervisor::config;
use connect_supervisor::policy::{
    self, APPLIED_DEFAULTS_KEY, ConnectorRequest, ConnectorType, Operation, PluginCatalog,
};
use harness::{
    PROJECT, PoolSpec, TestDepartment, consume, department_toml, eventually, file_sink,
    numbered_lines, produce, read_lines, scratch, unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewed_sink_runs_with_its_secrets_externalized_and_its_defaults_strippable() {
    let id = unique("g");
    let state = scratch(&format!("{id}-state"));
    // `file` counts as a secret here so that the connector really needs the externalized value
    // to work: the sink writes where the secret file says.
    let text = department_toml(
        &id,
        &[PoolSpec::new("shared", 1)],
        &state,
        "[secrets]\nsensitive_keys = [\"password\", \"file\"]\n",
    );
    let department = config::parse(&text, Path::new(PROJECT), &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let dept = TestDepartment::start(department.clone()).await;
    let worker = dept.worker("shared");

    // The workers' own plugin list resolves the alias and tells the type.
    let plugins = worker.connector_plugins().await.expect("plugins");
    let catalog = PluginCatalog::from_plugins(&plugins);
    assert_eq!(
        catalog.resolve("FileStreamSink"),
        Some("org.apache.kafka.connect.file.FileStreamSinkConnector")
    );

    let dir = scratch("guard");
    let output = dir.join("output.txt");
    let topic = format!("{id}-orders");
    let password = format!("hunter2-{}", unique("pw"));
    let name = format!("{id}-orders-file-sink-dev-001");
    let mut user_config = file_sink(&topic, &output);
    user_config.insert("connection.password".into(), password.clone());

    let pool = connect_supervisor::connectors::placement::judged_pool(&department, &user_config);
    let mut request = ConnectorRequest::new(Operation::Create, &name, &user_config, &pool);
    request.catalog = &catalog;
    let review = policy::review(&department, &request);
    assert!(review.is_allowed(), "{:?}", review.violations);
    assert_eq!(review.facts.connector_type, ConnectorType::Sink);
    assert_eq!(review.literal_secrets, ["connection.password", "file"]);
    assert_eq!(
        review.config["errors.deadletterqueue.topic.name"],
        format!("{name}-dlq")
    );

    let externalized = policy::externalize(
        &department.secrets,
        &BTreeSet::new(),
        &review.config,
        &policy::secrets_dir(&department),
        &name,
    )
    .expect("externalize");
    assert!(
        externalized.path.starts_with(state.join("secrets")),
        "{:?}",
        externalized.path
    );
    // The API part writes this file; here the test does.
    std::fs::create_dir_all(externalized.path.parent().unwrap()).unwrap();
    std::fs::write(&externalized.path, externalized.file_content()).unwrap();

    worker
        .create_connector(&name, &externalized.config)
        .await
        .expect("Connect accepts the reviewed config");
    let lines = numbered_lines(50);
    produce(&topic, &lines);
    let expected = lines.len();
    let written = eventually(
        "the sink to write where the secret file says",
        Duration::from_secs(120),
        || {
            let output = output.clone();
            async move {
                let got = read_lines(&output);
                (got.len() >= expected).then_some(got)
            }
        },
    )
    .await;
    assert_eq!(written, lines);
    let status = worker.connector_status(&name).await.expect("status");
    assert_eq!(status.connector.state, "RUNNING", "{status:?}");

    // Connect keeps references, not values; stripping what the platform added gives back the
    // user's keys (and the record, under a key Terraform ignores).
    let stored = worker.connector(&name).await.expect("config").config;
    assert!(stored["file"].starts_with("${file:"), "{stored:?}");
    assert!(stored.values().all(|v| !v.contains(&password)));
    let read_back = policy::strip_applied(&stored);
    let mut keys: BTreeSet<&str> = read_back.keys().map(String::as_str).collect();
    keys.remove("name");
    keys.remove(APPLIED_DEFAULTS_KEY);
    let sent: BTreeSet<&str> = user_config.keys().map(String::as_str).collect();
    assert_eq!(keys, sent);

    // Nothing in Kafka's config topic holds the literal values.
    let config_topic = department.cluster_identity("shared").config_topic;
    let records = tokio::task::spawn_blocking(move || {
        consume(
            &config_topic,
            1,
            Duration::from_secs(60),
            Duration::from_secs(3),
        )
    })
    .await
    .unwrap();
    let all = records.join("\n");
    assert!(all.contains("${file:"), "read the wrong topic? {all}");
    assert!(
        !all.contains(&password),
        "the password reached the config topic"
    );
    assert!(
        !all.contains(&output.display().to_string()),
        "the secret file path value reached the config topic"
    );
    dept.stop().await;
}

//! The department's REST API against real Connect workers: the managed path's full lifecycle
//! (checked against the contract and against what Connect itself reports), the Terraform
//! provider's and the CLI's call sequences, placement on pools, roles, errors, the
//! Apache-compatible routes, offsets requests across a restart, and secrets in every output.

mod harness;

use std::time::Duration;

use harness::api::{As, Contract, TestApi, captured_logs};
use harness::{PoolSpec, eventually, file_sink, file_source, scratch, unique};
use reqwest::Method;
use serde_json::{Value, json};

const MASK: &str = "****************";
const WAIT: Duration = Duration::from_secs(120);
/// Keys Terraform drops from `info.config` when it reads a connector back (notes 7.2).
const TF_IGNORED: &[&str] = &[
    "cloud.environment",
    "cloud.provider",
    "connector.crn",
    "kafka.endpoint",
    "kafka.max.partition.validation.disable",
    "kafka.region",
    "kafka.dedicated",
    "schema.registry.url",
    "valid.kafka.api.key",
    "confluent.custom.plugin.type",
    "confluent.resource.connector.tier",
];

fn config_json(config: &std::collections::BTreeMap<String, String>) -> Value {
    serde_json::to_value(config).unwrap()
}

/// What Terraform stores as `config_nonsensitive` after a read.
fn terraform_view(info_config: &Value) -> std::collections::BTreeMap<String, String> {
    info_config
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| {
            let v = v.as_str().unwrap();
            !v.starts_with("**")
                && !TF_IGNORED.contains(&k.as_str())
                && !k.starts_with("config.internal.")
        })
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Polls the managed status until `target`, failing on any state outside `pending`.
async fn wait_state(api: &TestApi, name: &str, pending: &[&str], target: &str) -> Value {
    let url = api.managed(&format!("/connectors/{name}/status"));
    eventually(&format!("{name} to be {target}"), WAIT, || {
        let url = url.clone();
        async move {
            let a = api
                .checked(
                    "readConnectv1ConnectorStatus",
                    200,
                    As::Viewer,
                    Method::GET,
                    &url,
                    None,
                )
                .await;
            let state = a.body["connector"]["state"].as_str().unwrap().to_string();
            if state == target {
                return Some(a.body);
            }
            assert!(
                pending.contains(&state.as_str()),
                "{name}: state {state} while waiting for {target}: {}",
                a.body
            );
            None
        }
    })
    .await
}

async fn worker_state(api: &TestApi, pool: &str, name: &str) -> (String, Vec<String>) {
    let s = api.dept.worker(pool).connector_status(name).await.unwrap();
    (
        s.connector.state,
        s.tasks.into_iter().map(|t| t.state.state).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_lifecycle_returns_contract_bodies_and_matches_connect() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let dir = scratch("lifecycle");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let topic = unique(&format!("{id}-life-"));
    let name = format!("{id}-files-source-dev-001");
    let mut config = file_source(&input, &topic);
    config.insert("tasks.max".into(), "2".into());
    config.insert("name".into(), name.clone());

    let created = api
        .checked(
            "createConnectv1Connector",
            201,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": config_json(&config)})),
        )
        .await;
    assert_eq!(created.body["name"], name.as_str());
    assert_eq!(created.body["type"], "source");
    assert_eq!(created.body["config"]["file"], input.display().to_string());

    // Synchronously visible in list-with-expand (the CLI lists right after POST).
    let listed = api
        .checked(
            "listConnectv1ConnectorsWithExpansions",
            200,
            As::Viewer,
            Method::GET,
            &api.managed("/connectors?expand=info%2Cstatus%2Cid"),
            None,
        )
        .await;
    let entry = &listed.body[&name];
    assert!(
        entry["id"]["id"].as_str().unwrap().starts_with("lcc-"),
        "{entry}"
    );
    assert_eq!(entry["id"]["id_type"], "ID");
    assert_eq!(entry["info"]["name"], name.as_str());
    assert!(entry["status"]["connector"]["state"].is_string(), "{entry}");

    let names = api
        .checked(
            "listConnectv1Connectors",
            200,
            As::Viewer,
            Method::GET,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert_eq!(names.body, json!([name]));

    let running = wait_state(&api, &name, &["PROVISIONING"], "RUNNING").await;
    assert_eq!(running["type"], "source");
    // FileStreamSource makes one task whatever tasks.max says.
    assert_eq!(running["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(
        worker_state(&api, "shared", &name).await,
        ("RUNNING".into(), vec!["RUNNING".into()])
    );

    let read = api
        .checked(
            "readConnectv1Connector",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(read.body["tasks"], json!([{"connector": name, "task": 0}]));
    assert_eq!(
        terraform_view(&read.body["config"]),
        config,
        "no drift in what Terraform reads"
    );
    let cfg = api
        .checked(
            "getConnectv1ConnectorConfig",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}/config")),
            None,
        )
        .await;
    assert_eq!(terraform_view(&cfg.body), config);
    let tasks = api
        .checked(
            "listConnectv1ConnectorTasks",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}/tasks")),
            None,
        )
        .await;
    assert_eq!(tasks.body[0]["id"]["task"], 0);
    assert_eq!(tasks.body[0]["config"]["topic"], topic.as_str());

    // Update config: exactly 200.
    let mut updated = config.clone();
    updated.insert("batch.size".into(), "100".into());
    let put = api
        .checked(
            "createOrUpdateConnectv1ConnectorConfig",
            200,
            As::Operator,
            Method::PUT,
            &api.managed(&format!("/connectors/{name}/config")),
            Some(&config_json(&updated)),
        )
        .await;
    assert_eq!(put.body["config"]["batch.size"], "100");
    assert_eq!(
        api.dept
            .worker("shared")
            .connector(&name)
            .await
            .unwrap()
            .config["batch.size"],
        "100"
    );

    // Pause / resume / restart: 202, and Connect really gets there.
    api.checked(
        "pauseConnectv1Connector",
        202,
        As::Operator,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/pause")),
        None,
    )
    .await;
    // The config update above restarts the connector: it may still be coming back.
    wait_state(&api, &name, &["RUNNING", "PROVISIONING"], "PAUSED").await;
    eventually("Connect to report PAUSED", WAIT, || async {
        (worker_state(&api, "shared", &name).await.0 == "PAUSED").then_some(())
    })
    .await;
    api.checked(
        "resumeConnectv1Connector",
        202,
        As::Operator,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/resume")),
        None,
    )
    .await;
    wait_state(&api, &name, &["PAUSED", "PROVISIONING"], "RUNNING").await;
    api.checked(
        "restartConnectv1Connector",
        202,
        As::Operator,
        Method::POST,
        &api.managed(&format!("/connectors/{name}/restart")),
        None,
    )
    .await;
    wait_state(&api, &name, &["PROVISIONING", "RUNNING"], "RUNNING").await;
    api.checked(
        "restartConnectv1Connector",
        202,
        As::Operator,
        Method::POST,
        &api.managed(&format!("/connectors/{name}/restart?only_failed=true")),
        None,
    )
    .await;

    // Offsets: read, alter (PATCH), reset (DELETE); Connect's own offsets follow.
    let partition = json!({"filename": input.display().to_string()});
    let offsets_url = api.managed(&format!("/connectors/{name}/offsets"));
    eventually("the source to commit an offset", WAIT, || async {
        let o = api
            .checked(
                "getConnectv1ConnectorOffsets",
                200,
                As::Viewer,
                Method::GET,
                &offsets_url,
                None,
            )
            .await;
        (!o.body["offsets"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    let before = api
        .checked(
            "getConnectv1ConnectorOffsets",
            200,
            As::Viewer,
            Method::GET,
            &offsets_url,
            None,
        )
        .await;
    assert_eq!(before.body["name"], name.as_str());
    assert!(
        before.body["metadata"]["observed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let request = api
        .checked(
            "alterConnectv1ConnectorOffsetsRequest",
            202,
            As::Operator,
            Method::POST,
            &api.managed(&format!("/connectors/{name}/offsets/request")),
            // A numeric string, as older Terraform requests send.
            Some(&json!({"type": "PATCH", "offsets": [{"partition": partition, "offset": {"position": "2"}}]})),
        )
        .await;
    assert_eq!(request.body["type"], "PATCH");
    assert_eq!(request.body["offsets"][0]["offset"]["position"], 2);
    let status_url = api.managed(&format!("/connectors/{name}/offsets/request/status"));
    let applied = eventually("the PATCH to be applied", WAIT, || async {
        let s = api
            .checked(
                "getConnectv1ConnectorOffsetsRequestStatus",
                200,
                As::Viewer,
                Method::GET,
                &status_url,
                None,
            )
            .await;
        match s.body["status"]["phase"].as_str().unwrap() {
            "PENDING" => None,
            "APPLIED" => Some(s.body),
            other => panic!("unexpected phase {other}: {}", s.body),
        }
    })
    .await;
    assert_eq!(applied["previous_offsets"], before.body["offsets"]);
    assert!(applied["applied_at"].is_string());
    let connect_offsets = api.dept.worker("shared").offsets(&name).await.unwrap();
    assert_eq!(
        connect_offsets,
        vec![json!({"partition": partition, "offset": {"position": 2}})]
    );
    wait_state(&api, &name, &["PAUSED", "PROVISIONING"], "RUNNING").await;

    api.checked(
        "alterConnectv1ConnectorOffsetsRequest",
        202,
        As::Operator,
        Method::POST,
        &api.managed(&format!("/connectors/{name}/offsets/request")),
        Some(&json!({"type": "DELETE"})),
    )
    .await;
    eventually("the DELETE to be applied", WAIT, || async {
        let s = api
            .checked(
                "getConnectv1ConnectorOffsetsRequestStatus",
                200,
                As::Viewer,
                Method::GET,
                &status_url,
                None,
            )
            .await;
        match s.body["status"]["phase"].as_str().unwrap() {
            "PENDING" => None,
            "APPLIED" => {
                assert_eq!(s.body["request"]["type"], "DELETE");
                assert!(
                    s.body["status"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("reset")
                );
                Some(())
            }
            other => panic!("unexpected phase {other}: {}", s.body),
        }
    })
    .await;
    wait_state(&api, &name, &["PAUSED", "PROVISIONING"], "RUNNING").await;

    // Create with initial offsets: created stopped, offsets patched, then started; refused
    // offsets leave nothing behind.
    let seeded = format!("{id}-files-source-dev-002");
    let seeded_config = file_source(&input, &unique(&format!("{id}-seeded-")));
    let refused = api
        .checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(
                &json!({"name": seeded, "config": config_json(&seeded_config),
                "offsets": [{"partition": partition, "offset": {"position": "not-a-number"}}]}),
            ),
        )
        .await;
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offsets"),
        "{}",
        refused.text
    );
    assert!(
        api.dept
            .worker("shared")
            .connector(&seeded)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let created = api
        .checked(
            "createConnectv1Connector",
            201,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(
                &json!({"name": seeded, "config": config_json(&seeded_config),
                "offsets": [{"partition": partition, "offset": {"position": 4}}]}),
            ),
        )
        .await;
    assert_eq!(created.body["offsets"][0]["offset"]["position"], 4);
    assert_eq!(
        api.dept.worker("shared").offsets(&seeded).await.unwrap(),
        vec![json!({"partition": partition, "offset": {"position": 4}})]
    );
    wait_state(&api, &seeded, &["PROVISIONING", "PAUSED"], "RUNNING").await;
    let seeded_status = api
        .checked(
            "getConnectv1ConnectorOffsetsRequestStatus",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{seeded}/offsets/request/status")),
            None,
        )
        .await;
    assert_eq!(seeded_status.body["status"]["phase"], "APPLIED");
    api.checked(
        "deleteConnectv1Connector",
        200,
        As::Operator,
        Method::DELETE,
        &api.managed(&format!("/connectors/{seeded}")),
        None,
    )
    .await;

    // Delete: 200 with {"error": null}; Connect no longer has it.
    let deleted = api
        .checked(
            "deleteConnectv1Connector",
            200,
            As::Operator,
            Method::DELETE,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(deleted.body, json!({"error": null}));
    let gone = api
        .dept
        .worker("shared")
        .connector(&name)
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    let read = api
        .checked(
            "readConnectv1Connector",
            404,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(
        read.body["error_code"], 404,
        "the recorded shape of a missing connector"
    );
    for (op, method, path) in [
        (
            "readConnectv1ConnectorStatus",
            Method::GET,
            format!("/connectors/{name}/status"),
        ),
        (
            "getConnectv1ConnectorConfig",
            Method::GET,
            format!("/connectors/{name}/config"),
        ),
        (
            "pauseConnectv1Connector",
            Method::PUT,
            format!("/connectors/{name}/pause"),
        ),
        (
            "deleteConnectv1Connector",
            Method::DELETE,
            format!("/connectors/{name}"),
        ),
        (
            "getConnectv1ConnectorOffsets",
            Method::GET,
            format!("/connectors/{name}/offsets"),
        ),
    ] {
        api.checked(op, 404, As::Operator, method, &api.managed(&path), None)
            .await;
    }
    api.stop().await;
}

/// Terraform's read: the expansion map with its exact query, then the entry by name.
async fn tf_read(api: &TestApi, name: &str) -> Value {
    let url = api.managed("/connectors?expand=info%2Cstatus%2Cid");
    let a = api
        .checked(
            "listConnectv1ConnectorsWithExpansions",
            200,
            As::Token,
            Method::GET,
            &url,
            None,
        )
        .await;
    a.body
        .get(name)
        .cloned()
        .expect("the connector is in the expansion map")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_and_cli_call_sequences_work_unchanged() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let dir = scratch("tf");
    let topic = unique(&format!("{id}-tf-"));
    let name = format!("{id}-files-sink-dev-001");
    // Terraform's two maps; the sensitive one is merged in on every write.
    let mut nonsensitive = file_sink(&topic, &dir.join("out.txt"));
    nonsensitive.insert("name".into(), name.clone());
    nonsensitive.insert("tasks.max".into(), "2".into());
    let sensitive = std::collections::BTreeMap::from([(
        "connection.password".to_string(),
        "tf-sensitive-value-42".to_string(),
    )]);
    let merged = |ns: &std::collections::BTreeMap<String, String>| {
        let mut m = ns.clone();
        m.extend(sensitive.clone());
        config_json(&m)
    };

    // Create: validate, POST, list with expand (exact TF query), poll status.
    let validated = api
        .checked(
            "validateConnectv1ConnectorPlugin",
            200,
            As::Token,
            Method::PUT,
            &api.managed("/connector-plugins/FileStreamSink/config/validate"),
            Some(&merged(&nonsensitive)),
        )
        .await;
    assert_eq!(validated.body["error_count"], 0, "{}", validated.body);
    assert!(!validated.text.contains("tf-sensitive-value-42"));
    api.checked(
        "createConnectv1Connector",
        201,
        As::Token,
        Method::POST,
        &api.managed("/connectors"),
        Some(&json!({"name": name, "config": merged(&nonsensitive)})),
    )
    .await;
    let entry = tf_read(&api, &name).await;
    let tf_id = entry["id"]["id"].as_str().unwrap().to_string();
    assert!(tf_id.starts_with("lcc-"));
    let status = wait_state(&api, &name, &["PROVISIONING", "DEGRADED"], "RUNNING").await;
    assert_eq!(status["tasks"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(status["type"], "sink");
    let entry = tf_read(&api, &name).await;
    assert_eq!(
        terraform_view(&entry["info"]["config"]),
        nonsensitive,
        "no drift after create"
    );
    assert_eq!(entry["info"]["config"]["connection.password"], MASK);
    assert_eq!(entry["status"]["connector"]["state"], "RUNNING");
    assert_eq!(entry["id"]["id"], tf_id.as_str(), "the id is stable");

    // Update: pause, wait, PUT config (exactly 200), offsets request, poll, resume.
    api.checked(
        "pauseConnectv1Connector",
        202,
        As::Token,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/pause")),
        None,
    )
    .await;
    wait_state(&api, &name, &["RUNNING"], "PAUSED").await;
    let mut changed = nonsensitive.clone();
    changed.insert("batch.size".into(), "123".into());
    api.checked(
        "createOrUpdateConnectv1ConnectorConfig",
        200,
        As::Token,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/config")),
        Some(&merged(&changed)),
    )
    .await;
    api.checked(
        "alterConnectv1ConnectorOffsetsRequest",
        202,
        As::Token,
        Method::POST,
        &api.managed(&format!("/connectors/{name}/offsets/request")),
        Some(&json!({"type": "PATCH", "offsets": [
            {"partition": {"kafka_partition": 0, "kafka_topic": topic}, "offset": {"kafka_offset": 0}}
        ]})),
    )
    .await;
    let status_url = api.managed(&format!("/connectors/{name}/offsets/request/status"));
    eventually("the offsets request to be APPLIED", WAIT, || async {
        let s = api
            .checked(
                "getConnectv1ConnectorOffsetsRequestStatus",
                200,
                As::Token,
                Method::GET,
                &status_url,
                None,
            )
            .await;
        match s.body["status"]["phase"].as_str().unwrap() {
            "PENDING" => None,
            "APPLIED" => Some(()),
            other => panic!("Terraform fails on phase {other}: {}", s.body),
        }
    })
    .await;
    // The connector was paused before the request: it is paused again afterwards.
    wait_state(&api, &name, &["RUNNING"], "PAUSED").await;
    eventually("Connect to show the connector paused", WAIT, || async {
        (worker_state(&api, "shared", &name).await.0 == "PAUSED").then_some(())
    })
    .await;
    api.checked(
        "resumeConnectv1Connector",
        202,
        As::Token,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/resume")),
        None,
    )
    .await;
    wait_state(&api, &name, &["PAUSED", "PROVISIONING"], "RUNNING").await;
    let entry = tf_read(&api, &name).await;
    assert_eq!(
        terraform_view(&entry["info"]["config"]),
        changed,
        "no drift after update"
    );

    // The CLI: /api prefix, bearer token, offsets null, id lookup right after create, update by
    // merging into the (masked) config it read.
    let cli_name = format!("{id}-files-sink-dev-002");
    let mut cli_config = file_sink(&topic, &dir.join("cli.txt"));
    cli_config.insert("name".into(), cli_name.clone());
    cli_config.insert("db.secret".into(), "cli-secret-value-77".into());
    let api_prefixed = |path: &str| format!("{}/api{}{path}", api.base, api.prefix);
    let created = api
        .checked(
            "createConnectv1Connector",
            201,
            As::Token,
            Method::POST,
            &api_prefixed("/connectors"),
            Some(&json!({"name": cli_name, "config": config_json(&cli_config), "offsets": null})),
        )
        .await;
    assert_eq!(created.body["name"], cli_name.as_str());
    let listed = api
        .checked(
            "listConnectv1ConnectorsWithExpansions",
            200,
            As::Token,
            Method::GET,
            &api_prefixed("/connectors?expand=info%2Cstatus%2Cid&expand=id%2Cstatus"),
            None,
        )
        .await;
    let cli_entry = &listed.body[&cli_name];
    assert!(
        cli_entry["id"]["id"].as_str().unwrap().starts_with("lcc-"),
        "{}",
        listed.body
    );
    assert!(cli_entry["status"]["connector"]["state"].is_string());
    let mut merged_by_cli = cli_entry["info"]["config"].clone();
    merged_by_cli["tasks.max"] = json!("2");
    api.checked(
        "createOrUpdateConnectv1ConnectorConfig",
        200,
        As::Token,
        Method::PUT,
        &api_prefixed(&format!("/connectors/{cli_name}/config")),
        Some(&merged_by_cli),
    )
    .await;
    let stored = api
        .dept
        .worker("shared")
        .connector(&cli_name)
        .await
        .unwrap()
        .config;
    assert_eq!(
        harness::guardrails::secret_behind(&stored["db.secret"]),
        "cli-secret-value-77",
        "the mask stood for the real value (externalized: Connect keeps a reference)"
    );
    assert_eq!(stored["tasks.max"], "2");
    assert!(
        !stored.contains_key("cloud.environment"),
        "echoed managed keys are not stored: {stored:?}"
    );
    let plugins = api
        .checked(
            "listConnectv1ConnectorPlugins",
            200,
            As::Token,
            Method::GET,
            &api_prefixed("/connector-plugins"),
            None,
        )
        .await;
    assert!(
        plugins
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "sink")
    );
    api.checked(
        "validateConnectv1ConnectorPlugin",
        200,
        As::Token,
        Method::PUT,
        &api_prefixed("/connector-plugins/org.apache.kafka.connect.file.FileStreamSinkConnector/config/validate"),
        Some(&json!({"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector"})),
    )
    .await;

    // Delete: 200, error null; then 404 in the recorded shape.
    for n in [&name, &cli_name] {
        let d = api
            .checked(
                "deleteConnectv1Connector",
                200,
                As::Token,
                Method::DELETE,
                &api.managed(&format!("/connectors/{n}")),
                None,
            )
            .await;
        assert!(d.body["error"].is_null());
        let r = api
            .checked(
                "readConnectv1Connector",
                404,
                As::Token,
                Method::GET,
                &api.managed(&format!("/connectors/{n}")),
                None,
            )
            .await;
        assert_eq!(
            r.body,
            json!({"error_code": 404, "message": format!("connector {n} not found")})
        );
    }
    assert!(!api.transcript().contains("tf-sensitive-value-42"));
    assert!(!api.transcript().contains("cli-secret-value-77"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_placed_on_pool_heavy_runs_there_and_is_found() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1), PoolSpec::new("heavy", 1)],
        "",
        "",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch("heavy");
    std::fs::write(dir.join("in.txt"), "x\n").unwrap();
    let name = format!("{id}-files-source-dev-heavy");
    let mut config = file_source(&dir.join("in.txt"), &unique(&format!("{id}-heavy-")));
    config.insert("supervisor.pool".into(), "heavy".into());

    let bad = {
        let mut c = config.clone();
        c.insert("supervisor.pool".into(), "nope".into());
        api.checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": c})),
        )
        .await
    };
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nope") && message.contains("shared") && message.contains("heavy"),
        "{message}"
    );
    assert!(
        api.dept
            .worker("heavy")
            .connectors()
            .await
            .unwrap()
            .is_empty(),
        "a refused create changes nothing"
    );

    api.checked(
        "createConnectv1Connector",
        201,
        As::Operator,
        Method::POST,
        &api.managed("/connectors"),
        Some(&json!({"name": name, "config": config_json(&config)})),
    )
    .await;
    let status = wait_state(&api, &name, &["PROVISIONING"], "RUNNING").await;
    // worker_id names the supervisor's worker, never its address.
    let heavy_workers: Vec<String> = api
        .dept
        .supervisor
        .status()
        .into_iter()
        .filter(|p| p.name == "heavy")
        .flat_map(|p| p.workers)
        .map(|w| w.id)
        .collect();
    for worker_id in std::iter::once(&status["connector"]["worker_id"]).chain(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["worker_id"]),
    ) {
        let worker_id = worker_id.as_str().unwrap();
        assert!(
            heavy_workers.iter().any(|w| w == worker_id),
            "{worker_id} is not one of {heavy_workers:?}"
        );
        assert!(!worker_id.contains(':'), "{worker_id}");
    }
    assert_eq!(
        api.dept.worker("heavy").connectors().await.unwrap(),
        vec![name.clone()]
    );
    assert!(
        api.dept
            .worker("shared")
            .connectors()
            .await
            .unwrap()
            .is_empty()
    );

    // Reads and lists find it; the pool key round-trips; a duplicate name on another pool is refused.
    let read = api
        .checked(
            "readConnectv1Connector",
            200,
            As::Viewer,
            Method::GET,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(read.body["config"]["supervisor.pool"], "heavy");
    let listed = api
        .checked(
            "listConnectv1ConnectorsWithExpansions",
            200,
            As::Viewer,
            Method::GET,
            &api.managed("/connectors?expand=status,info"),
            None,
        )
        .await;
    assert_eq!(
        listed.body[&name]["info"]["config"]["supervisor.pool"],
        "heavy"
    );
    let names = api
        .checked(
            "listConnectv1Connectors",
            200,
            As::Viewer,
            Method::GET,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert_eq!(names.body, json!([name]));
    let mut dup = config.clone();
    dup.remove("supervisor.pool");
    let conflict = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": dup})),
        )
        .await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    Contract::get().check("createConnectv1Connector", 409, &conflict.body);
    let mut moved = config.clone();
    moved.insert("supervisor.pool".into(), "shared".into());
    let refused = api
        .checked(
            "createOrUpdateConnectv1ConnectorConfig",
            400,
            As::Operator,
            Method::PUT,
            &api.managed(&format!("/connectors/{name}/config")),
            Some(&config_json(&moved)),
        )
        .await;
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delete it and create it")
    );
    api.checked(
        "pauseConnectv1Connector",
        202,
        As::Operator,
        Method::PUT,
        &api.managed(&format!("/connectors/{name}/pause")),
        None,
    )
    .await;
    wait_state(&api, &name, &["RUNNING"], "PAUSED").await;
    api.checked(
        "deleteConnectv1Connector",
        200,
        As::Operator,
        Method::DELETE,
        &api.managed(&format!("/connectors/{name}")),
        None,
    )
    .await;
    assert!(
        api.dept
            .worker("heavy")
            .connectors()
            .await
            .unwrap()
            .is_empty()
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_credentials_and_bad_requests_get_managed_errors() {
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "delete_requires_admin = true\nopen_metrics = false",
        "",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch("roles");
    std::fs::write(dir.join("in.txt"), "x\n").unwrap();
    let name = format!("{id}-files-source-dev-roles");
    let body = json!({"name": name, "config": config_json(&file_source(&dir.join("in.txt"), &unique(&format!("{id}-roles"))))});

    // Authentication.
    let missing = api
        .checked(
            "listConnectv1Connectors",
            401,
            As::Nobody,
            Method::GET,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert!(missing.headers.get("www-authenticate").is_some());
    let wrong = api
        .checked(
            "listConnectv1Connectors",
            401,
            As::WrongSecret,
            Method::GET,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert!(!wrong.text.contains("not-the-secret"));
    assert_eq!(
        api.call(As::Nobody, Method::GET, &api.url("/healthz"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        api.call(As::Nobody, Method::GET, &api.url("/metrics"), None)
            .await
            .status,
        401
    );
    assert_eq!(
        api.call(As::Nobody, Method::GET, &api.url("/nope"), None)
            .await
            .status,
        401,
        "unknown paths need credentials too"
    );

    // A viewer reads and validates but changes nothing.
    api.checked(
        "listConnectv1Connectors",
        200,
        As::Viewer,
        Method::GET,
        &api.managed("/connectors"),
        None,
    )
    .await;
    let forbidden = api
        .checked(
            "createConnectv1Connector",
            403,
            As::Viewer,
            Method::POST,
            &api.managed("/connectors"),
            Some(&body),
        )
        .await;
    assert!(
        forbidden.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("operator")
    );
    api.checked(
        "validateConnectv1ConnectorPlugin",
        200,
        As::Viewer,
        Method::PUT,
        &api.managed("/connector-plugins/FileStreamSource/config/validate"),
        Some(&json!({"connector.class": "FileStreamSource"})),
    )
    .await;
    assert_eq!(
        api.call(
            As::Viewer,
            Method::POST,
            &api.url("/connectors"),
            Some(&body)
        )
        .await
        .status,
        403
    );
    assert!(
        api.dept
            .worker("shared")
            .connectors()
            .await
            .unwrap()
            .is_empty()
    );

    api.checked(
        "createConnectv1Connector",
        201,
        As::Operator,
        Method::POST,
        &api.managed("/connectors"),
        Some(&body),
    )
    .await;
    for (op, method, path) in [
        (
            "pauseConnectv1Connector",
            Method::PUT,
            format!("/connectors/{name}/pause"),
        ),
        (
            "resumeConnectv1Connector",
            Method::PUT,
            format!("/connectors/{name}/resume"),
        ),
        (
            "restartConnectv1Connector",
            Method::POST,
            format!("/connectors/{name}/restart"),
        ),
        (
            "deleteConnectv1Connector",
            Method::DELETE,
            format!("/connectors/{name}"),
        ),
        (
            "alterConnectv1ConnectorOffsetsRequest",
            Method::POST,
            format!("/connectors/{name}/offsets/request"),
        ),
    ] {
        api.checked(
            op,
            403,
            As::Viewer,
            method,
            &api.managed(&path),
            Some(&json!({"type": "DELETE"})),
        )
        .await;
    }
    // Delete is admin-only in this department.
    let op_delete = api
        .checked(
            "deleteConnectv1Connector",
            403,
            As::Operator,
            Method::DELETE,
            &api.managed(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert!(
        op_delete.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin")
    );

    // Worker admin routes: admin only, whatever exists yet below them.
    for path in [
        "/v1/pools",
        "/v1/pools/shared/scale",
        "/v1/workers",
        "/v1/workers/shared-0/restart",
    ] {
        for who in [As::Operator, As::Viewer, As::Token] {
            let a = api.call(who, Method::GET, &api.url(path), None).await;
            assert_eq!(a.status, 403, "{path}: {}", a.text);
            assert_eq!(a.body["error"]["code"], 403);
            let a = api
                .call(who, Method::POST, &api.url(path), Some(&json!({})))
                .await;
            assert_eq!(a.status, 403, "{path}: {}", a.text);
        }
    }
    assert_eq!(
        api.call(As::Admin, Method::GET, &api.url("/v1/pools"), None)
            .await
            .status,
        200
    );

    // Bad input: every problem at once, clear messages, the managed shape, nothing changed.
    let bad = api
        .checked("createConnectv1Connector", 400, As::Operator, Method::POST, &api.managed("/connectors"),
            Some(&json!({"config": {"tasks.max": ["x"], "a.password": "hunter-bad-1"}, "offsets": [{"partition": 1}], "extra": 1})))
        .await;
    let m = bad.body["error"]["message"].as_str().unwrap();
    for needle in [
        "tasks.max",
        "offsets[0].partition",
        "offsets[0].offset",
        "extra",
    ] {
        assert!(m.contains(needle), "missing {needle} in {m}");
    }
    let no_class = api
        .checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": format!("{id}-x"), "config": {"db.password": "hunter-bad-2"}})),
        )
        .await;
    assert!(
        no_class.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connector.class")
    );
    let malformed = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert_eq!(malformed.status, 400);
    let raw = reqwest::Client::new()
        .post(api.managed("/connectors"))
        .basic_auth("OPERATOR", Some(harness::api::OPERATOR_SECRET))
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let raw: Value = raw.json().await.unwrap();
    assert!(
        raw["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{raw}"
    );
    Contract::get().check("createConnectv1Connector", 400, &raw);
    let big = reqwest::Client::new()
        .post(api.managed("/connectors"))
        .basic_auth("OPERATOR", Some(harness::api::OPERATOR_SECRET))
        .body(format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let big: Value = big.json().await.unwrap();
    assert_eq!(big["error"]["code"], 413);
    let unknown = api
        .call(As::Viewer, Method::GET, &api.url("/nope"), None)
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], 404);
    let wrong_method = api
        .call(
            As::Operator,
            Method::PATCH,
            &api.managed("/connectors"),
            None,
        )
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.body["error"]["code"], 405);
    assert!(
        wrong_method.headers.get("allow").is_some(),
        "{:?}",
        wrong_method.headers
    );
    let other_env = api
        .checked(
            "listConnectv1Connectors",
            404,
            As::Viewer,
            Method::GET,
            &api.url("/connect/v1/environments/env-x/clusters/lkc-x/connectors"),
            None,
        )
        .await;
    assert!(
        other_env.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&api.dept.supervisor.department().environment_id)
    );
    let bad_offsets = api
        .checked(
            "alterConnectv1ConnectorOffsetsRequest",
            400,
            As::Operator,
            Method::POST,
            &api.managed(&format!("/connectors/{name}/offsets/request")),
            Some(&json!({"type": "MOVE"})),
        )
        .await;
    assert!(
        bad_offsets.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PATCH or DELETE")
    );
    api.checked(
        "getConnectv1ConnectorOffsetsRequestStatus",
        404,
        As::Viewer,
        Method::GET,
        &api.managed(&format!("/connectors/{name}/offsets/request/status")),
        None,
    )
    .await;
    api.checked(
        "validateConnectv1ConnectorPlugin",
        404,
        As::Viewer,
        Method::PUT,
        &api.managed("/connector-plugins/NoSuchPlugin/config/validate"),
        Some(&json!({"connector.class": "NoSuchPlugin"})),
    )
    .await;
    assert_eq!(
        api.dept.worker("shared").connectors().await.unwrap(),
        vec![name.clone()],
        "bad requests changed nothing"
    );

    api.checked(
        "deleteConnectv1Connector",
        200,
        As::Admin,
        Method::DELETE,
        &api.managed(&format!("/connectors/{name}")),
        None,
    )
    .await;
    let transcript = api.transcript();
    assert!(!transcript.contains("hunter-bad-1") && !transcript.contains("hunter-bad-2"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_compatible_routes_serve_connect_tools() {
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let dir = scratch("apache");
    std::fs::write(dir.join("in.txt"), "1\n2\n").unwrap();
    let name = format!("{id}-files-source-dev-kcctl");
    let mut config = file_source(&dir.join("in.txt"), &unique(&format!("{id}-k-")));
    config.insert("db.password".into(), "apache-secret-9".into());

    let root = api.call(As::Viewer, Method::GET, &api.url("/"), None).await;
    assert_eq!(root.status, 200);
    assert!(
        root.body["version"].as_str().unwrap().starts_with("4."),
        "{}",
        root.body
    );
    assert!(root.body["commit"].is_string());
    let cluster = api
        .dept
        .worker("shared")
        .server_info()
        .await
        .unwrap()
        .kafka_cluster_id;
    assert_eq!(root.body["kafka_cluster_id"], cluster.as_str());
    assert_eq!(root.body["department"], id.as_str());

    let created = api
        .call(
            As::Operator,
            Method::POST,
            &api.url("/connectors"),
            Some(&json!({"name": name, "config": config, "initial_state": "PAUSED"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.headers.get("location").unwrap(),
        &format!("/connectors/{name}")
    );
    assert_eq!(created.body["config"]["db.password"], MASK);
    let listed = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url("/connectors?expand=status&expand=info"),
            None,
        )
        .await;
    eventually("the connector to be PAUSED", WAIT, || async {
        let s = api
            .call(
                As::Viewer,
                Method::GET,
                &api.url(&format!("/connectors/{name}/status")),
                None,
            )
            .await;
        (s.body["connector"]["state"] == "PAUSED").then_some(())
    })
    .await;
    assert_eq!(listed.status, 200);
    if let Some(info) = listed.body[&name].get("info") {
        assert_eq!(info["config"]["db.password"], MASK);
    }
    let cfg = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}/config")),
            None,
        )
        .await;
    assert_eq!(cfg.body["db.password"], MASK);
    assert!(
        cfg.body.get("cloud.environment").is_none(),
        "the Apache path shows Connect's config"
    );
    let patched = api
        .call(
            As::Operator,
            Method::PATCH,
            &api.url(&format!("/connectors/{name}/config")),
            Some(&json!({"batch.size": "7", "db.password": MASK})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let stored = api
        .dept
        .worker("shared")
        .connector(&name)
        .await
        .unwrap()
        .config;
    assert_eq!(stored["batch.size"], "7");
    // Externalized: Connect keeps a reference, the mask kept the secret behind it.
    assert_eq!(
        harness::guardrails::secret_behind(&stored["db.password"]),
        "apache-secret-9"
    );
    let stop = api
        .call(
            As::Operator,
            Method::PUT,
            &api.url(&format!("/connectors/{name}/stop")),
            None,
        )
        .await;
    assert_eq!(stop.status, 204, "{}", stop.text);
    eventually("Connect to stop the connector", WAIT, || async {
        let (state, tasks) = worker_state(&api, "shared", &name).await;
        (state == "STOPPED" && tasks.is_empty()).then_some(())
    })
    .await;
    let patch = api.call(As::Operator, Method::PATCH, &api.url(&format!("/connectors/{name}/offsets")),
        Some(&json!({"offsets": [{"partition": {"filename": dir.join("in.txt").display().to_string()}, "offset": {"position": 2}}]}))).await;
    assert_eq!(patch.status, 200, "{}", patch.text);
    // The leader writes the offsets; a worker answers GET .../offsets from its own view of the
    // offsets topic, which may not have read that write yet (seen once in CI: `[]` right after
    // the 200). The read must show the new position once the worker has caught up.
    let offsets = eventually("the altered offsets to be read back", WAIT, || async {
        let offsets = api
            .call(
                As::Viewer,
                Method::GET,
                &api.url(&format!("/connectors/{name}/offsets")),
                None,
            )
            .await;
        (!offsets.body["offsets"].as_array().is_none_or(Vec::is_empty)).then_some(offsets)
    })
    .await;
    assert_eq!(
        offsets.body["offsets"][0]["offset"]["position"], 2,
        "{}",
        offsets.text
    );
    let resume = api
        .call(
            As::Operator,
            Method::PUT,
            &api.url(&format!("/connectors/{name}/resume")),
            None,
        )
        .await;
    assert_eq!(resume.status, 202);
    eventually("the connector to run", WAIT, || async {
        (worker_state(&api, "shared", &name).await
            == ("RUNNING".to_string(), vec!["RUNNING".to_string()]))
            .then_some(())
    })
    .await;
    // Statuses on Connect's routes: departments see the worker's name, as on the managed
    // routes; admins keep Connect's host:port.
    let on_worker = api
        .dept
        .worker("shared")
        .connector_status(&name)
        .await
        .unwrap();
    let address = on_worker.tasks[0].state.worker_id.clone();
    assert!(
        address.contains(':'),
        "Connect names workers by address: {address}"
    );
    let worker_name = api.dept.supervisor.status()[0].workers[0].id.clone();
    for who in [As::Viewer, As::Operator, As::Admin] {
        let shown = if who == As::Admin {
            address.as_str()
        } else {
            worker_name.as_str()
        };
        let status = api
            .call(
                who,
                Method::GET,
                &api.url(&format!("/connectors/{name}/status")),
                None,
            )
            .await;
        assert_eq!(status.status, 200, "{}", status.text);
        assert_eq!(
            status.body["connector"]["worker_id"], shown,
            "{who:?}: {}",
            status.text
        );
        assert_eq!(
            status.body["tasks"][0]["worker_id"], shown,
            "{who:?}: {}",
            status.text
        );
        let task = api
            .call(
                who,
                Method::GET,
                &api.url(&format!("/connectors/{name}/tasks/0/status")),
                None,
            )
            .await;
        assert_eq!(task.body["worker_id"], shown, "{who:?}: {}", task.text);
        let listed = api
            .call(
                who,
                Method::GET,
                &api.url("/connectors?expand=status"),
                None,
            )
            .await;
        assert_eq!(
            listed.body[&name]["status"]["tasks"][0]["worker_id"], shown,
            "{who:?}: {}",
            listed.text
        );
        if who != As::Admin {
            for text in [&status.text, &task.text, &listed.text] {
                assert!(!text.contains(&address), "{who:?} saw an address: {text}");
            }
        }
    }
    let restart = api
        .call(
            As::Operator,
            Method::POST,
            &api.url(&format!(
                "/connectors/{name}/restart?includeTasks=true&onlyFailed=false"
            )),
            None,
        )
        .await;
    assert_eq!(restart.status, 202, "{}", restart.text);
    assert!(restart.body["connector"]["state"].is_string());
    let tasks = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}/tasks")),
            None,
        )
        .await;
    assert_eq!(tasks.body[0]["config"]["db.password"], MASK);
    let plugins = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url("/connector-plugins?connectorsOnly=false"),
            None,
        )
        .await;
    assert!(
        plugins
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "converter")
    );
    let pconfig = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url("/connector-plugins/FileStreamSource/config"),
            None,
        )
        .await;
    assert!(
        pconfig
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "topic")
    );

    // Validate on Connect's route passes Connect's answer through: every null Connect sends
    // (default_value, group, value...) is still there, only the secret is masked.
    let mut probe = config.clone();
    probe.insert("name".into(), name.clone());
    let ours = api
        .call(
            As::Viewer,
            Method::PUT,
            &api.url("/connector-plugins/FileStreamSource/config/validate"),
            Some(&json!(probe)),
        )
        .await;
    assert_eq!(ours.status, 200, "{}", ours.text);
    let theirs = api
        .dept
        .worker("shared")
        .validate("FileStreamSource", &probe)
        .await
        .unwrap();
    let null_fields = |configs: &Value| -> Vec<String> {
        let mut out = Vec::new();
        for c in configs["configs"].as_array().unwrap() {
            let key = c["definition"]["name"].as_str().unwrap_or("?");
            for part in ["definition", "value"] {
                if let Some(m) = c[part].as_object() {
                    for (field, v) in m {
                        if v.is_null() {
                            out.push(format!("{key}.{part}.{field}"));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    };
    let connect_nulls = null_fields(&theirs);
    assert!(!connect_nulls.is_empty(), "Connect sends nulls: {theirs}");
    let our_nulls: Vec<String> = null_fields(&ours.body)
        .into_iter()
        .filter(|f| connect_nulls.contains(f))
        .collect();
    assert_eq!(our_nulls, connect_nulls, "{}", ours.text);
    assert_eq!(ours.body["name"], theirs["name"]);
    assert!(!ours.text.contains("apache-secret-9"), "{}", ours.text);

    // Worker-internal routes are never proxied.
    for (method, path) in [
        (Method::POST, format!("/connectors/{name}/tasks")),
        (Method::PUT, format!("/connectors/{name}/fence")),
        (Method::GET, format!("/connectors/{name}/tasks-config")),
        (Method::GET, "/admin/loggers".to_string()),
        (Method::PUT, "/admin/loggers/root".to_string()),
    ] {
        let a = api
            .call(
                As::Admin,
                method.clone(),
                &api.url(&path),
                Some(&json!([{}])),
            )
            .await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.text);
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .contains("does not proxy"),
            "{}",
            a.text
        );
    }
    // Connect's error shape on its routes; managed fields added on auth failures.
    let missing = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url("/connectors/nope/status"),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error_code"], 404);
    let unauth = api
        .call(As::Nobody, Method::GET, &api.url("/connectors"), None)
        .await;
    assert_eq!(unauth.status, 401);
    assert_eq!(unauth.body["error"]["code"], 401);
    assert_eq!(unauth.body["error_code"], 401);

    let deleted = api
        .call(
            As::Operator,
            Method::DELETE,
            &api.url(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert!(!api.transcript().contains("apache-secret-9"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_responses_logs_or_errors() {
    const SECRET: &str = "pw-Zq81-never-shown";
    const PATH_SECRET: &str = "dirsecret7731";
    // `file` counts as sensitive here, so a failing sink's trace (which names its file) must be
    // scrubbed, as a JDBC URL with a password would be.
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[secrets]\nsensitive_keys = [\"password\", \"secret\", \"file\"]\n",
    )
    .await;
    let id = api.dept.id();
    let topic = unique(&format!("{id}-s-"));
    let name = format!("{id}-files-sink-dev-secret");
    let mut config = file_sink(
        &topic,
        std::path::Path::new(&format!("/nonexistent/{PATH_SECRET}/out.txt")),
    );
    config.insert("connection.password".into(), SECRET.into());
    config.insert("tasks.max".into(), "1".into());

    let p = |path: &str| api.managed(path);
    api.checked(
        "validateConnectv1ConnectorPlugin",
        200,
        As::Operator,
        Method::PUT,
        &p("/connector-plugins/FileStreamSink/config/validate"),
        Some(&config_json(&config)),
    )
    .await;
    api.checked(
        "createConnectv1Connector",
        201,
        As::Operator,
        Method::POST,
        &p("/connectors"),
        Some(&json!({"name": name, "config": config_json(&config)})),
    )
    .await;
    harness::produce(&topic, &["x".to_string()]);
    let failed = wait_state(
        &api,
        &name,
        &["PROVISIONING", "RUNNING", "DEGRADED"],
        "FAILED",
    )
    .await;
    let trace = failed["connector"]["trace"].as_str().unwrap();
    assert!(!trace.is_empty(), "{failed}");
    assert!(
        failed["tasks"][0]["msg"].as_str().unwrap().contains(MASK)
            || failed["tasks"][0]["trace"].as_str().unwrap().contains(MASK),
        "{failed}"
    );
    for path in ["", "/config", "/tasks", "/status"] {
        api.call(
            As::Viewer,
            Method::GET,
            &p(&format!("/connectors/{name}{path}")),
            None,
        )
        .await;
        api.call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}{path}")),
            None,
        )
        .await;
    }
    api.call(
        As::Viewer,
        Method::GET,
        &api.url(&format!("/connectors/{name}/tasks/0/status")),
        None,
    )
    .await;
    api.call(
        As::Viewer,
        Method::GET,
        &p("/connectors?expand=info,status,id"),
        None,
    )
    .await;
    api.call(
        As::Viewer,
        Method::GET,
        &api.url("/connectors?expand=info&expand=status"),
        None,
    )
    .await;
    // Errors that would carry the values: a config update Connect refuses, a duplicate create,
    // a create without a class, masks without a value.
    let mut bad = config.clone();
    bad.insert("tasks.max".into(), format!("{SECRET}-not-a-number"));
    let refused = api
        .call(
            As::Operator,
            Method::PUT,
            &p(&format!("/connectors/{name}/config")),
            Some(&config_json(&bad)),
        )
        .await;
    assert!(refused.status >= 400, "{}", refused.text);
    api.call(
        As::Operator,
        Method::POST,
        &p("/connectors"),
        Some(&json!({"name": name, "config": config_json(&config)})),
    )
    .await;
    api.call(
        As::Operator,
        Method::POST,
        &p("/connectors"),
        Some(&json!({"name": format!("{id}-other"), "config": {"connection.password": SECRET}})),
    )
    .await;
    api.call(
        As::Operator,
        Method::POST,
        &api.url("/connectors"),
        Some(&json!({"name": format!("{id}-other"), "config": {"connection.password": SECRET}})),
    )
    .await;
    api.call(
        As::Operator,
        Method::PATCH,
        &api.url(&format!("/connectors/{name}/config")),
        Some(&json!({"tasks.max": SECRET})),
    )
    .await;
    api.checked(
        "deleteConnectv1Connector",
        200,
        As::Operator,
        Method::DELETE,
        &p(&format!("/connectors/{name}")),
        None,
    )
    .await;

    let transcript = api.transcript();
    let logs = captured_logs();
    assert!(
        transcript.contains(MASK),
        "the scenario did show masked values"
    );
    for secret in [SECRET, PATH_SECRET] {
        assert!(
            !transcript.contains(secret),
            "{secret} leaked in a response:\n{transcript}"
        );
        assert!(
            !logs.contains(secret),
            "{secret} leaked in the supervisor's logs"
        );
    }
    for secret in [
        harness::api::ADMIN_SECRET,
        harness::api::OPERATOR_SECRET,
        harness::api::VIEWER_SECRET,
        harness::api::CI_TOKEN,
    ] {
        assert!(
            !logs.contains(secret) && !transcript.contains(secret),
            "an API credential leaked"
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_requests_survive_a_supervisor_restart() {
    use connect_supervisor::connectors::Connectors;
    use connect_supervisor::offsets::{Book, OffsetRequest, Phase, RequestKind};

    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", "").await;
    let id = api.dept.id();
    let dir = scratch("restart");
    std::fs::write(dir.join("in.txt"), "1\n2\n3\n").unwrap();
    let name = format!("{id}-files-source-dev-restart");
    let config = file_source(&dir.join("in.txt"), &unique(&format!("{id}-r-")));
    api.checked(
        "createConnectv1Connector",
        201,
        As::Operator,
        Method::POST,
        &api.managed("/connectors"),
        Some(&json!({"name": name, "config": config_json(&config)})),
    )
    .await;
    wait_state(&api, &name, &["PROVISIONING"], "RUNNING").await;

    // The previous run died while applying two requests: one for this connector, one for a
    // connector that no longer exists.
    let department = api.dept.supervisor.department().clone();
    let book = Book::open(&Connectors::offsets_dir(&department)).unwrap();
    let pending = |connector: &str, offsets: Vec<Value>| OffsetRequest {
        connector: connector.into(),
        id: "lcc-x".into(),
        pool: "shared".into(),
        kind: RequestKind::Patch,
        offsets,
        requested_at: "2025-01-01T00:00:00Z".into(),
        phase: Phase::Pending,
        message: String::new(),
        previous_offsets: vec![],
        applied_at: None,
        restore_state: "RUNNING".into(),
        requested_by: "ADMIN".into(),
    };
    let partition = json!({"filename": dir.join("in.txt").display().to_string()});
    book.update(pending(
        &name,
        vec![json!({"partition": partition, "offset": {"position": 3}})],
    ))
    .unwrap();
    book.update(pending(
        &format!("{id}-gone"),
        vec![json!({"partition": {"a": 1}, "offset": {"b": 1}})],
    ))
    .unwrap();

    // "Restart": a new API over the same state folder takes the requests up again.
    let api = TestApi::serve(api.into_department()).await;
    let status_url = api.managed(&format!("/connectors/{name}/offsets/request/status"));
    let applied = eventually(
        "the pending request to be applied after the restart",
        WAIT,
        || async {
            let s = api
                .checked(
                    "getConnectv1ConnectorOffsetsRequestStatus",
                    200,
                    As::Viewer,
                    Method::GET,
                    &status_url,
                    None,
                )
                .await;
            (s.body["status"]["phase"] != "PENDING").then_some(s.body)
        },
    )
    .await;
    assert_eq!(applied["status"]["phase"], "APPLIED", "{applied}");
    assert_eq!(
        api.dept.worker("shared").offsets(&name).await.unwrap(),
        vec![json!({"partition": partition, "offset": {"position": 3}})]
    );
    wait_state(&api, &name, &["PAUSED", "PROVISIONING"], "RUNNING").await;
    let gone = eventually("the orphan request to be reported", WAIT, || async {
        let r = Book::open(&Connectors::offsets_dir(&department))
            .unwrap()
            .get(&format!("{id}-gone"))
            .unwrap();
        (r.phase != Phase::Pending).then_some(r)
    })
    .await;
    assert_eq!(gone.phase, Phase::Failed);
    assert!(
        gone.message.contains("not found") || gone.message.contains("404"),
        "{}",
        gone.message
    );

    // One request in flight per connector.
    let first = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed(&format!("/connectors/{name}/offsets/request")),
            Some(&json!({"type": "DELETE"})),
        )
        .await;
    assert_eq!(first.status, 202);
    let second = api
        .call(
            As::Operator,
            Method::POST,
            &api.managed(&format!("/connectors/{name}/offsets/request")),
            Some(&json!({"type": "DELETE"})),
        )
        .await;
    assert!(
        second.status == 409 || second.status == 202,
        "{}",
        second.text
    );
    if second.status == 409 {
        Contract::get().check("alterConnectv1ConnectorOffsetsRequest", 409, &second.body);
        assert!(
            second.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("offsets/request/status"),
            "{}",
            second.text
        );
    }
    eventually("the DELETE to finish", WAIT, || async {
        let s = api.call(As::Viewer, Method::GET, &status_url, None).await;
        (s.body["status"]["phase"] == "APPLIED").then_some(())
    })
    .await;
    api.stop().await;
}

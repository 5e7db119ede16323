//! The department's guardrails through the API, against real Connect workers (real KRaft broker,
//! worker JVMs started by the supervisor): violating creates and updates on both route families
//! are refused with every violation and change nothing on the workers; quotas count what runs;
//! the example Rego policy refuses through the API; `config/validate` is the dry run; refusals
//! are events and metrics. In `externalize` mode a connector created with literal secrets runs
//! while Connect, Kafka's config topic, responses, logs and events only ever see references; its
//! secret file follows updates (masked values keep the secret, refused changes put it back) and
//! goes with the connector. `validate --against` checks files together with what runs.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use connect_supervisor::policy::APPLIED_DEFAULTS_KEY;
use connect_supervisor::secret_store::SecretStore;
use harness::api::{As, CI_TOKEN, OPERATOR_SECRET, TestApi, captured_logs};
use harness::guardrails::{api_with_file, events, example_policies, secret_behind};
use harness::{
    PoolSpec, consume, eventually, file_sink, file_source, numbered_lines, produce, read_lines,
    scratch,
};
use reqwest::Method;
use serde_json::{Value, json};

const MASK: &str = "****************";
const WAIT: Duration = Duration::from_secs(120);
const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");

fn body_of(config: &BTreeMap<String, String>) -> Value {
    serde_json::to_value(config).unwrap()
}

/// The rule ids of a refusal's `violations`, sorted.
fn rules_of(violations: &Value) -> Vec<String> {
    let mut rules: Vec<String> = violations
        .as_array()
        .unwrap_or_else(|| panic!("no violations list: {violations}"))
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect();
    rules.sort();
    rules
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Connector names on the department's only worker.
async fn on_worker(api: &TestApi) -> Vec<String> {
    let mut names = api.dept.worker("shared").connectors().await.unwrap();
    names.sort();
    names
}

async fn wait_running(api: &TestApi, name: &str) {
    let worker = api.dept.worker("shared");
    eventually(&format!("{name} to run"), WAIT, || {
        let worker = worker.clone();
        async move {
            let s = worker.connector_status(name).await.ok()?;
            (s.connector.state == "RUNNING"
                && !s.tasks.is_empty()
                && s.tasks.iter().all(|t| t.state.state == "RUNNING"))
            .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violating_writes_are_refused_with_every_violation_and_change_nothing() {
    const LITERAL: &str = "reject-mode-literal-5512";
    let extra = format!(
        "\n[secrets]\nmode = \"reject\"\n[policy]\nrego_dir = \"{}\"\n[policy.quotas]\nmax_connectors = 2\nmax_tasks_per_connector = 10\nmax_tasks_total = 10\n",
        example_policies().display()
    );
    let api = TestApi::start(&[PoolSpec::new("shared", 1)], "", &extra).await;
    let id = api.dept.id();
    let store = SecretStore::for_department(api.dept.supervisor.department());
    let dir = scratch("refused");
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let p = |path: &str| api.managed(path);

    // 1. One create breaking many rules at once: every violation is listed, nothing created.
    let mut bad = file_source(&input, "outside-topic");
    bad.insert("tasks.max".into(), "12".into());
    bad.insert("producer.override.acks".into(), "all".into());
    bad.insert("connection.password".into(), LITERAL.into());
    let bad_name = "connect-files-source";
    let refused = api
        .checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &p("/connectors"),
            Some(&json!({"name": bad_name, "config": body_of(&bad)})),
        )
        .await;
    let error = &refused.body["error"];
    assert_eq!(error["code"], 400);
    assert_eq!(
        rules_of(&error["violations"]),
        strings(&[
            "naming.prefix",
            "naming.reserved",
            "overrides.denied",
            "quota.tasks-per-connector",
            "quota.tasks-total",
            "secrets.literal",
            "topics.prefix",
        ])
    );
    let message = error["message"].as_str().unwrap();
    for v in error["violations"].as_array().unwrap() {
        let rule = v["rule"].as_str().unwrap();
        assert!(
            message.contains(&format!("[{rule}]")),
            "{rule} in {message}"
        );
        assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
        assert!(!v["hint"].as_str().unwrap().is_empty(), "{v}");
        assert!(v["key"].is_string(), "every one of these has its key: {v}");
    }
    assert!(!refused.text.contains(LITERAL), "{}", refused.text);
    assert!(on_worker(&api).await.is_empty(), "nothing was created");
    assert!(!store.path(bad_name).exists());

    // 2. The example Rego policy, through the API: a prod connector with tasks.max 8.
    let prod = format!("{id}-lines-file-source-prod-001");
    let mut prod_config = file_source(&input, &format!("{id}-prod-lines"));
    prod_config.insert("tasks.max".into(), "8".into());
    let refused = api
        .checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &p("/connectors"),
            Some(&json!({"name": prod, "config": body_of(&prod_config)})),
        )
        .await;
    let violations = &refused.body["error"]["violations"];
    assert_eq!(rules_of(violations), ["prod-tasks-max"]);
    assert_eq!(violations[0]["key"], "tasks.max");
    assert!(
        violations[0]["message"]
            .as_str()
            .unwrap()
            .contains("production connectors run at most 4"),
        "{violations}"
    );
    assert!(on_worker(&api).await.is_empty());

    // 3. The Apache-compatible create: Connect's error shape, the same list.
    let refused = api
        .call(
            As::Operator,
            Method::POST,
            &api.url("/connectors"),
            Some(&json!({"name": "other-lines-source", "config": body_of(&file_source(&input, &format!("{id}-x")))})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body["error_code"], 400);
    assert!(refused.body.get("error").is_none(), "{}", refused.text);
    assert_eq!(rules_of(&refused.body["violations"]), ["naming.prefix"]);
    assert!(on_worker(&api).await.is_empty());
    // A create with initial offsets is reviewed before anything reaches Connect.
    let with_offsets = format!("{id}-lines-file-source-dev-offsets");
    let refused = api
        .checked(
            "createConnectv1Connector",
            400,
            As::Operator,
            Method::POST,
            &p("/connectors"),
            Some(&json!({
                "name": with_offsets,
                "config": body_of(&file_source(&input, "not-ours")),
                "offsets": [{"partition": {"filename": input.display().to_string()}, "offset": {"position": 1}}],
            })),
        )
        .await;
    assert_eq!(
        rules_of(&refused.body["error"]["violations"]),
        ["topics.prefix"]
    );
    assert!(on_worker(&api).await.is_empty());

    // 4. A compliant connector is created and runs.
    let a = format!("{id}-lines-file-source-dev-001");
    let mut a_config = file_source(&input, &format!("{id}-lines"));
    a_config.insert("tasks.max".into(), "2".into());
    api.checked(
        "createConnectv1Connector",
        201,
        As::Operator,
        Method::POST,
        &p("/connectors"),
        Some(&json!({"name": a, "config": body_of(&a_config)})),
    )
    .await;
    wait_running(&api, &a).await;

    // 5. Violating updates (managed PUT, Apache PUT and PATCH) leave its config as it is.
    let worker = api.dept.worker("shared");
    let before = worker.connector(&a).await.unwrap().config;
    let mut too_big = a_config.clone();
    too_big.insert("tasks.max".into(), "11".into());
    let refused = api
        .call(
            As::Operator,
            Method::PUT,
            &p(&format!("/connectors/{a}/config")),
            Some(&body_of(&too_big)),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        rules_of(&refused.body["error"]["violations"]),
        strings(&["quota.tasks-per-connector", "quota.tasks-total"])
    );
    let mut outside = a_config.clone();
    outside.insert("topic".into(), "elsewhere".into());
    let refused = api
        .call(
            As::Operator,
            Method::PUT,
            &api.url(&format!("/connectors/{a}/config")),
            Some(&body_of(&outside)),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(rules_of(&refused.body["violations"]), ["topics.prefix"]);
    let refused = api
        .call(
            As::Operator,
            Method::PATCH,
            &api.url(&format!("/connectors/{a}/config")),
            Some(&json!({"consumer.override.fetch.max.bytes": "1", "tasks.max": "0"})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        rules_of(&refused.body["violations"]),
        strings(&["config.tasks-max", "overrides.denied"])
    );
    assert_eq!(
        worker.connector(&a).await.unwrap().config,
        before,
        "refused updates changed nothing"
    );

    // 6. Quotas count what runs: a second connector fills the department (2 connectors, 10
    //    tasks), a third is refused, and an update beyond the tasks total too.
    let b = format!("{id}-lines-file-source-dev-002");
    let mut b_config = file_source(&input, &format!("{id}-lines-b"));
    b_config.insert("tasks.max".into(), "8".into());
    api.checked(
        "createConnectv1Connector",
        201,
        As::Token,
        Method::POST,
        &p("/connectors"),
        Some(&json!({"name": b, "config": body_of(&b_config)})),
    )
    .await;
    let c = format!("{id}-lines-file-source-dev-003");
    let refused = api
        .call(
            As::Operator,
            Method::POST,
            &p("/connectors"),
            Some(&json!({"name": c, "config": body_of(&file_source(&input, &format!("{id}-lines-c")))})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        rules_of(&refused.body["error"]["violations"]),
        strings(&["quota.connectors", "quota.tasks-total"])
    );
    let mut b_more = b_config.clone();
    b_more.insert("tasks.max".into(), "9".into());
    let refused = api
        .call(
            As::Operator,
            Method::PUT,
            &p(&format!("/connectors/{b}/config")),
            Some(&body_of(&b_more)),
        )
        .await;
    assert_eq!(
        rules_of(&refused.body["error"]["violations"]),
        ["quota.tasks-total"]
    );
    // Exactly at the limit is fine.
    api.checked(
        "createOrUpdateConnectv1ConnectorConfig",
        200,
        As::Operator,
        Method::PUT,
        &p(&format!("/connectors/{b}/config")),
        Some(&body_of(&b_config)),
    )
    .await;
    assert_eq!(on_worker(&api).await, strings(&[&a, &b]));

    // 7. config/validate is the dry run: the same violations, in their keys, in error_count.
    let mut to_validate = bad.clone();
    to_validate.insert("name".into(), bad_name.into());
    let validated = api
        .checked(
            "validateConnectv1ConnectorPlugin",
            200,
            As::Viewer,
            Method::PUT,
            &p("/connector-plugins/FileStreamSource/config/validate"),
            Some(&body_of(&to_validate)),
        )
        .await;
    let entry = |infos: &Value, key: &str| -> Value {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .unwrap_or_else(|| panic!("no {key} in {infos}"))["value"]
            .clone()
    };
    let with_errors = |infos: &Value| {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c["value"]["errors"].as_array().unwrap().is_empty())
            .count()
    };
    let infos = &validated.body;
    assert_eq!(infos["error_count"], with_errors(infos));
    // name (naming, quota.connectors), tasks.max, topic, the override, the password.
    assert!(infos["error_count"].as_u64().unwrap() >= 5, "{infos}");
    let name_errors = entry(infos, "name")["errors"].to_string();
    assert!(name_errors.contains("[naming.prefix]"), "{name_errors}");
    assert!(name_errors.contains("[quota.connectors]"), "{name_errors}");
    assert!(
        entry(infos, "tasks.max")["errors"]
            .to_string()
            .contains("[quota.tasks-per-connector]")
    );
    assert!(
        entry(infos, "topic")["errors"]
            .to_string()
            .contains("[topics.prefix]")
    );
    let override_entry = entry(infos, "producer.override.acks");
    assert!(
        override_entry["errors"]
            .to_string()
            .contains("[overrides.denied]")
    );
    let password = entry(infos, "connection.password");
    assert_eq!(password["value"], MASK);
    assert!(password["errors"].to_string().contains("[secrets.literal]"));
    assert!(!validated.text.contains(LITERAL));
    // The Apache route answers the same count.
    let apache = api
        .call(
            As::Viewer,
            Method::PUT,
            &api.url("/connector-plugins/FileStreamSource/config/validate"),
            Some(&body_of(&to_validate)),
        )
        .await;
    assert_eq!(apache.status, 200, "{}", apache.text);
    assert_eq!(apache.body["error_count"], infos["error_count"]);
    // An existing connector's config is an update: no violation, Connect's count alone.
    let mut existing = a_config.clone();
    existing.insert("name".into(), a.clone());
    let clean = api
        .checked(
            "validateConnectv1ConnectorPlugin",
            200,
            As::Viewer,
            Method::PUT,
            &p("/connector-plugins/FileStreamSource/config/validate"),
            Some(&body_of(&existing)),
        )
        .await;
    assert_eq!(clean.body["error_count"], 0, "{}", clean.text);
    // Without a name (`confluent connect plugin describe`): no naming verdicts.
    let describe = api
        .checked(
            "validateConnectv1ConnectorPlugin",
            200,
            As::Viewer,
            Method::PUT,
            &p("/connector-plugins/FileStreamSource/config/validate"),
            Some(&json!({"connector.class": "FileStreamSource"})),
        )
        .await;
    assert!(!describe.text.contains("[naming."), "{}", describe.text);

    // 8. Every refusal is an event (rule ids, principal, connector) and a metric by rule id;
    //    dry runs are neither.
    let rejected: Vec<_> = events(&api)
        .into_iter()
        .filter(|e| e.event == "policy_rejected")
        .collect();
    assert_eq!(rejected.len(), 9, "{rejected:?}");
    assert!(
        rejected[0]
            .message
            .contains("connector connect-files-source")
    );
    assert!(rejected[0].message.contains("by OPERATOR"));
    assert!(rejected[0].message.contains("naming.reserved"));
    assert!(rejected[1].message.contains("prod-tasks-max"));
    // Text, not JSON: read it directly (open to Prometheus by default).
    let metrics = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (rule, count) in [
        ("naming.prefix", 2),
        ("prod-tasks-max", 1),
        ("quota.connectors", 1),
        ("quota.tasks-total", 4),
        ("secrets.literal", 1),
        ("topics.prefix", 3),
        ("jdbc-heavy-pool", 0),
        ("required.keys", 0),
    ] {
        let line =
            format!("kcs_policy_refusals_total{{rule=\"{rule}\",department=\"{id}\"}} {count}\n");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    let logs = captured_logs();
    assert!(logs.contains("policy_rejected"), "refusals are logged");
    assert!(!logs.contains(LITERAL));
    assert!(!api.transcript().contains(LITERAL));
    for e in events(&api) {
        assert!(!e.message.contains(LITERAL), "{e:?}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externalized_secrets_run_never_leak_and_leave_with_the_connector() {
    const PASSWORD: &str = "pw-ext-Y7q2-first";
    const PASSWORD2: &str = "pw-ext-K4m9-second";
    const PASSWORD3: &str = "pw-ext-R1x5-refused";
    // `file` counts as a secret too: the sink can only write where its secret file says, which
    // proves the worker resolves the references.
    let api = TestApi::start(
        &[PoolSpec::new("shared", 1)],
        "",
        "\n[secrets]\nsensitive_keys = [\"password\", \"file\"]\n",
    )
    .await;
    let id = api.dept.id();
    let department = api.dept.supervisor.department().clone();
    let store = SecretStore::for_department(&department);
    let worker = api.dept.worker("shared");
    let p = |path: &str| api.managed(path);
    let dir = scratch("ext");
    let output = dir.join("sink-output.txt");
    let output_text = output.display().to_string();
    let topic = format!("{id}-orders");
    let name = format!("{id}-orders-file-sink-dev-001");
    let mut config = file_sink(&topic, &output);
    config.insert("connection.password".into(), PASSWORD.into());

    // Create: masked answer, the user's keys only.
    let created = api
        .checked(
            "createConnectv1Connector",
            201,
            As::Operator,
            Method::POST,
            &p("/connectors"),
            Some(&json!({"name": name, "config": body_of(&config)})),
        )
        .await;
    assert_eq!(created.body["config"]["connection.password"], MASK);
    assert_eq!(created.body["config"]["file"], MASK);
    assert!(created.body["config"].get("errors.tolerance").is_none());

    // The secret file: owner-only, the literal values; Connect holds references.
    let path = store.path(&name);
    let mode = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("no secret file {}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        store.read(&name).unwrap().unwrap(),
        BTreeMap::from([
            ("connection.password".to_string(), PASSWORD.to_string()),
            ("file".to_string(), output_text.clone()),
        ])
    );
    let stored = worker.connector(&name).await.unwrap().config;
    assert_eq!(secret_behind(&stored["connection.password"]), PASSWORD);
    assert_eq!(secret_behind(&stored["file"]), output_text);
    // The platform's dead letter queue, recorded.
    assert_eq!(stored["errors.tolerance"], "all");
    assert_eq!(
        stored["errors.deadletterqueue.topic.name"],
        format!("{name}-dlq")
    );
    assert!(stored[APPLIED_DEFAULTS_KEY].contains("errors.tolerance"));

    // It runs: the sink writes where the secret file says.
    let lines = numbered_lines(20);
    produce(&topic, &lines);
    let written = eventually("the sink to write the records", WAIT, || {
        let output = output.clone();
        async move {
            let got = read_lines(&output);
            (got.len() >= 20).then_some(got)
        }
    })
    .await;
    assert_eq!(written, lines);
    wait_running(&api, &name).await;

    // A sweep removes the files no connector uses (one deleted while the supervisor was down, a
    // write cut short) and keeps the running connector's and one too new to judge.
    let ghost = store.path(&format!("{id}-deleted-while-down"));
    let too_new = store.path(&format!("{id}-being-created"));
    let cut_short = std::path::PathBuf::from(format!("{}.tmp", path.display()));
    for file in [&ghost, &too_new, &cut_short] {
        std::fs::write(file, "connection.password=left-behind-value\n").unwrap();
    }
    for file in [&ghost, &cut_short, &path] {
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    let removed = api
        .state
        .connectors
        .sweep_secret_files(Duration::from_millis(300))
        .await
        .unwrap_or_else(|e| panic!("sweep: {e}"));
    assert_eq!(removed, vec![ghost.clone(), cut_short.clone()]);
    assert!(!ghost.exists() && !cut_short.exists());
    assert!(
        path.exists(),
        "the running connector's secret file was swept"
    );
    assert!(too_new.exists(), "a file too new to judge was swept");
    std::fs::remove_file(&too_new).unwrap();

    // Reads leave the platform's defaults out (no Terraform drift) and keep the record;
    // ?include_defaults=true shows the config as it runs.
    let user_keys: BTreeSet<String> = config.keys().cloned().collect();
    let read = api
        .checked(
            "getConnectv1ConnectorConfig",
            200,
            As::Viewer,
            Method::GET,
            &p(&format!("/connectors/{name}/config")),
            None,
        )
        .await;
    let shown: BTreeSet<String> = read
        .body
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            !k.starts_with("cloud.")
                && !k.starts_with("kafka.")
                && !k.starts_with("config.internal.")
                && *k != "name"
        })
        .cloned()
        .collect();
    assert_eq!(shown, user_keys, "{}", read.text);
    assert!(read.body[APPLIED_DEFAULTS_KEY].is_string());
    let with_defaults = api
        .call(
            As::Viewer,
            Method::GET,
            &p(&format!("/connectors/{name}/config?include_defaults=true")),
            None,
        )
        .await;
    assert_eq!(with_defaults.body["errors.tolerance"], "all");
    assert_eq!(with_defaults.body["file"], MASK);
    let listed = api
        .checked(
            "listConnectv1ConnectorsWithExpansions",
            200,
            As::Viewer,
            Method::GET,
            &p("/connectors?expand=info,status,id"),
            None,
        )
        .await;
    assert!(
        listed.body[&name]["info"]["config"]
            .get("errors.tolerance")
            .is_none()
    );
    let apache = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}/config")),
            None,
        )
        .await;
    assert!(
        apache.body.get("errors.tolerance").is_none(),
        "{}",
        apache.text
    );
    let apache_full = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}/config?include_defaults=true")),
            None,
        )
        .await;
    assert_eq!(apache_full.body["errors.tolerance"], "all");
    let apache_read = api
        .call(
            As::Viewer,
            Method::GET,
            &api.url(&format!("/connectors/{name}")),
            None,
        )
        .await;
    assert!(apache_read.body["config"].get("errors.tolerance").is_none());

    // The audit trail: the defaults added and the secrets moved (keys only).
    let all = events(&api);
    let defaults = all
        .iter()
        .find(|e| e.event == "policy_defaults_applied")
        .expect("a defaults event");
    assert!(defaults.message.contains(&name));
    assert!(defaults.message.contains("errors.tolerance=all"));
    assert!(defaults.message.contains("by OPERATOR"));
    let moved = all
        .iter()
        .find(|e| e.event == "secrets_externalized")
        .expect("a secrets event");
    assert!(
        moved.message.ends_with("connection.password, file."),
        "{}",
        moved.message
    );

    // An update sending the masks back (what Terraform and the CLI do) keeps the secrets.
    let mut masked = config.clone();
    masked.insert("connection.password".into(), MASK.into());
    masked.insert("file".into(), MASK.into());
    masked.insert("batch.note".into(), "v2".into());
    api.checked(
        "createOrUpdateConnectv1ConnectorConfig",
        200,
        As::Operator,
        Method::PUT,
        &p(&format!("/connectors/{name}/config")),
        Some(&body_of(&masked)),
    )
    .await;
    let stored = worker.connector(&name).await.unwrap().config;
    assert_eq!(stored["batch.note"], "v2");
    assert_eq!(secret_behind(&stored["connection.password"]), PASSWORD);
    assert_eq!(secret_behind(&stored["file"]), output_text);

    // A new literal replaces the secret in the file.
    let mut newer = masked.clone();
    newer.insert("connection.password".into(), PASSWORD2.into());
    api.checked(
        "createOrUpdateConnectv1ConnectorConfig",
        200,
        As::Operator,
        Method::PUT,
        &p(&format!("/connectors/{name}/config")),
        Some(&body_of(&newer)),
    )
    .await;
    let kept = store.read(&name).unwrap().unwrap();
    assert_eq!(kept["connection.password"], PASSWORD2);
    assert_eq!(kept["file"], output_text);

    // An update Connect refuses puts the file back as it was.
    let mut refused_update = masked.clone();
    refused_update.insert("connection.password".into(), PASSWORD3.into());
    refused_update.insert(
        "value.converter".into(),
        "com.example.NoSuchConverter".into(),
    );
    let refused = api
        .call(
            As::Operator,
            Method::PUT,
            &p(&format!("/connectors/{name}/config")),
            Some(&body_of(&refused_update)),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(store.read(&name).unwrap().unwrap(), kept);
    // A create Connect refuses leaves no file behind (Apache route this time).
    let failed = format!("{id}-orders-file-sink-dev-002");
    let mut failing = config.clone();
    failing.insert("connection.password".into(), PASSWORD3.into());
    failing.insert(
        "value.converter".into(),
        "com.example.NoSuchConverter".into(),
    );
    let refused = api
        .call(
            As::Operator,
            Method::POST,
            &api.url("/connectors"),
            Some(&json!({"name": failed, "config": body_of(&failing)})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        !store.path(&failed).exists(),
        "a failed create left its secret file"
    );
    assert_eq!(on_worker(&api).await, std::slice::from_ref(&name));

    // Kafka's config topic holds references only.
    let config_topic = department.cluster_identity("shared").config_topic;
    let records = tokio::task::spawn_blocking(move || {
        consume(
            &config_topic,
            3,
            Duration::from_secs(60),
            Duration::from_secs(3),
        )
    })
    .await
    .unwrap();
    let topic_text = records.join("\n");
    assert!(
        topic_text.contains("${file:"),
        "read the wrong topic? {topic_text}"
    );

    // Delete: the connector and its secret file go.
    api.checked(
        "deleteConnectv1Connector",
        200,
        As::Operator,
        Method::DELETE,
        &p(&format!("/connectors/{name}")),
        None,
    )
    .await;
    assert!(!path.exists(), "the secret file outlived its connector");
    assert!(on_worker(&api).await.is_empty());

    // No literal anywhere: config topic, responses, the supervisor's logs, events; the
    // passwords not in the workers' logs and state either (Connect itself logs the values of
    // the STRING keys it defines, such as FileStreamSink's `file`, after resolving them).
    let transcript = api.transcript();
    let logs = captured_logs();
    let event_text: String = events(&api)
        .iter()
        .map(|e| e.message.clone() + "\n")
        .collect();
    assert!(transcript.contains(MASK));
    for secret in [PASSWORD, PASSWORD2, PASSWORD3, output_text.as_str()] {
        assert!(
            !topic_text.contains(secret),
            "{secret} reached the config topic"
        );
        assert!(
            !transcript.contains(secret),
            "{secret} in a response:\n{transcript}"
        );
        assert!(!logs.contains(secret), "{secret} in the supervisor's logs");
        assert!(!event_text.contains(secret), "{secret} in an event");
    }
    let state = &department.supervisor.state_dir;
    for file in files_under(state) {
        if file.starts_with(store.dir()) {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        for secret in [PASSWORD, PASSWORD2, PASSWORD3] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
    api.stop().await;
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn validate(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command
        .arg("validate")
        .args(args)
        .env_remove("CS_KEY")
        .env_remove("CS_SECRET")
        .env_remove("CS_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run connect-supervisor validate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(connector, rule)` of the findings of one severity in a JSON report.
fn findings(stdout: &str, severity: &str) -> Vec<(String, String)> {
    let report: Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let mut out: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                f["connector"].as_str().unwrap_or_default().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_against_the_running_department_counts_it_and_flags_renames() {
    let (api, department_file) = api_with_file(
        &[PoolSpec::new("shared", 1)],
        "\n[policy.quotas]\nmax_connectors = 3\n",
    )
    .await;
    let id = api.dept.id();
    let dir = scratch("against");
    let input = dir.join("in.txt");
    std::fs::write(&input, "x\n").unwrap();
    let a = format!("{id}-lines-file-source-dev-001");
    let b = format!("{id}-lines-file-source-dev-002");
    let config_of = |suffix: &str| file_source(&input, &format!("{id}-lines-{suffix}"));
    for (name, config) in [(&a, config_of("a")), (&b, config_of("b"))] {
        api.checked(
            "createConnectv1Connector",
            201,
            As::Operator,
            Method::POST,
            &api.managed("/connectors"),
            Some(&json!({"name": name, "config": body_of(&config)})),
        )
        .await;
    }
    // Files: a as it runs; b renamed to b2 (same settings); c new. With a and b running, b2 is
    // the third connector (the limit) and c the fourth.
    let files = dir.join("connectors");
    std::fs::create_dir_all(&files).unwrap();
    let b2 = format!("{id}-lines-file-source-dev-b2");
    let c = format!("{id}-lines-file-source-dev-003");
    for (file, name, config) in [
        ("a.json", &a, config_of("a")),
        ("b2.json", &b2, config_of("b")),
        ("c.json", &c, config_of("c")),
    ] {
        std::fs::write(
            files.join(file),
            serde_json::to_string_pretty(&json!({"name": name, "config": config})).unwrap(),
        )
        .unwrap();
    }
    let department = department_file.display().to_string();
    let folder = files.display().to_string();
    let key = [("CS_KEY", "OPERATOR"), ("CS_SECRET", OPERATOR_SECRET)];
    let args = [
        "--department",
        &department,
        "--against",
        &api.base,
        "--format",
        "json",
        &folder,
    ];
    let (code, stdout, stderr) = validate(&args, &key);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert_eq!(
        findings(&stdout, "error"),
        [
            (c.clone(), "quota.connectors".to_string()),
            (b2.clone(), "gitops.rename".to_string()),
        ]
    );
    assert!(
        stdout.contains(&format!("{b} (runs now, RUNNING)"))
            || stdout.contains(&format!("{b} (runs now, PROVISIONING)")),
        "{stdout}"
    );
    // Offline, the same files are clean: only --against knows what runs.
    let (code, stdout, _) = validate(&["--department", &department, &folder], &[]);
    assert_eq!(code, Some(0), "{stdout}");

    // An intended rename is a notice; with c gone the check passes (a bearer token this time,
    // through its environment variable).
    std::fs::remove_file(files.join("c.json")).unwrap();
    let mut allowed = args.to_vec();
    allowed.insert(0, "--allow-renames");
    let (code, stdout, stderr) = validate(&allowed, &[("CS_TOKEN", CI_TOKEN)]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(findings(&stdout, "notice").contains(&(b2.clone(), "gitops.rename".to_string())));

    // A running connector no file defines is a notice.
    std::fs::remove_file(files.join("b2.json")).unwrap();
    let (code, stdout, _) = validate(&args, &key);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(findings(&stdout, "notice").contains(&(b.clone(), "gitops.unmanaged".to_string())));

    // Wrong credentials, or half of them: exit 2 and 64 with a reason, no secret printed.
    let (code, stdout, stderr) = validate(
        &args,
        &[("CS_KEY", "OPERATOR"), ("CS_SECRET", "wrong-secret-xyz")],
    );
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        stderr.contains("CS_KEY"),
        "says how to give credentials: {stderr}"
    );
    assert!(!stderr.contains("wrong-secret-xyz"));
    let (code, _, stderr) = validate(&args, &[("CS_KEY", "OPERATOR")]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--api-secret"), "{stderr}");
    api.stop().await;
}

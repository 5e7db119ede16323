//! `connect-supervisor validate` as CI runs it: the real binary on the shipped examples
//! (`examples/connectors/`, `examples/department.toml`, `examples/policies/`), its findings,
//! output formats and exit codes; and the shipped Rego policies on their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connect_supervisor::config;
use connect_supervisor::model::Department;
use connect_supervisor::policy::{self, ConnectorRequest, Operation};

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");
const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

fn example(path: &str) -> PathBuf {
    Path::new(PROJECT).join("examples").join(path)
}

fn validate(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(PROJECT)
        .arg("validate")
        .args(args)
        .output()
        .expect("run connect-supervisor")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(file name, rule, line)` of every error in a JSON report.
fn errors(out: &Output) -> Vec<(String, String, Option<u64>)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)));
    let mut found: Vec<_> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            let file = Path::new(f["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                file,
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64(),
            )
        })
        .collect();
    found.sort();
    found
}

fn e(file: &str, rule: &str, line: u64) -> (String, String, Option<u64>) {
    (file.to_string(), rule.to_string(), Some(line))
}

#[test]
fn the_good_examples_pass_with_notes_on_defaults_and_secrets() {
    let out = validate(&[
        "--department",
        "examples/department.toml",
        "examples/connectors/good",
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("note[defaults]"), "{text}");
    assert!(
        text.contains("errors.deadletterqueue.topic.name=dept1-orders-file-sink-dev-001-dlq"),
        "{text}"
    );
    assert!(
        text.contains("note[secrets] $.config_sensitive[\"database.password\"]"),
        "{text}"
    );
    assert!(
        !text.contains("injected-by-ci"),
        "a secret value was printed:\n{text}"
    );
    assert!(
        text.ends_with("validate: 3 files, 3 connectors, 0 errors, 2 notices\n"),
        "{text}"
    );
}

#[test]
fn the_bad_examples_report_every_expected_finding_and_exit_1() {
    let out = validate(&[
        "--department",
        "examples/department.toml",
        "--format",
        "json",
        "examples/connectors/bad",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        errors(&out),
        [
            e("dept1-admin-audit-sink.json", "naming.reserved", 2),
            e("dept1-admin-audit-sink.json", "plugin.class", 3),
            e("dept1-everything-sink-dev-001.json", "overrides.denied", 7),
            e("dept1-everything-sink-dev-001.json", "overrides.denied", 8),
            e("dept1-everything-sink-dev-001.json", "topics.prefix", 5),
            e(
                "dept1-jdbc-orders-source-dev-001.json",
                "jdbc-heavy-pool",
                3
            ),
            e(
                "dept1-jdbc-orders-source-dev-001.json",
                "secrets.provider",
                8
            ),
            e("dept1-orders-file-sink-prod-002.json", "prod-tasks-max", 5),
            e(
                "dept1-orders-file-sink-prod-002.json",
                "quota.tasks-per-connector",
                5
            ),
            e("dept2-orders-sink.json", "naming.prefix", 2),
            e("dept2-orders-sink.json", "topics.prefix", 3),
            e("dept2-orders-sink.json", "topics.prefix", 5),
            e("syntax-error.json", "file.syntax", 5),
        ]
    );
}

#[test]
fn the_per_environment_layout_substitutes_vars_and_filters_by_environment() {
    let dir = "examples/connectors/per-env";
    let dev = validate(&[
        "--department",
        "examples/department.toml",
        "--env",
        "dev",
        dir,
    ]);
    assert_eq!(dev.status.code(), Some(0), "{}", stdout(&dev));
    assert!(
        stdout(&dev).contains("2 files, 2 connectors, 0 errors"),
        "{}",
        stdout(&dev)
    );

    let prod = validate(&[
        "--department",
        "examples/department.toml",
        "--env",
        "prod",
        "--format",
        "json",
        dir,
    ]);
    assert_eq!(prod.status.code(), Some(1), "{}", stdout(&prod));
    assert_eq!(
        errors(&prod),
        [e("prod-orders-file-sink.json", "prod-tasks-max", 5)]
    );
    let report: serde_json::Value = serde_json::from_slice(&prod.stdout).unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["environment"], "prod");
    assert_eq!(
        finding["connector"], "dept1-orders-file-sink-prod-001",
        "{{ env }} was substituted"
    );
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("asks for 6 tasks"),
        "{finding}"
    );

    let all = validate(&["--department", "examples/department.toml", dir]);
    assert_eq!(all.status.code(), Some(1));
    assert!(
        stdout(&all).contains("6 files, 6 connectors, 1 error"),
        "{}",
        stdout(&all)
    );
}

#[test]
fn the_whole_example_folder_exits_1_and_github_annotations_point_at_lines() {
    let out = validate(&[
        "--department",
        "examples/department.toml",
        "--format",
        "github",
        "examples/connectors",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("::error file=examples/connectors/bad/dept1-orders-file-sink-prod-002.json,line=5,col=5,title=quota.tasks-per-connector::"),
        "{text}"
    );
    assert!(
        text.contains("::error file=examples/connectors/bad/syntax-error.json,line=5,col=5,title=file.syntax::"),
        "{text}"
    );
    assert!(text.contains("::notice file=examples/connectors/good/dept1-orders-file-sink-dev-001.json,line=1,col=1,title=defaults::"), "{text}");
    assert!(
        text.ends_with("validate: 15 files, 14 connectors, 14 errors, 5 notices\n"),
        "{text}"
    );
}

#[test]
fn unreadable_input_exits_2() {
    let missing = validate(&[
        "--department",
        "examples/department.toml",
        "examples/connectors/good",
        "no/such/folder",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stdout(&missing).contains("no/such/folder: error[file.unreadable]"),
        "{}",
        stdout(&missing)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad_department = dir.path().join("department.toml");
    std::fs::write(&bad_department, "[department]\nid = \"Bad-Id\"\n").unwrap();
    let out = validate(&[
        "--department",
        bad_department.to_str().unwrap(),
        "examples/connectors/good",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("department.id"), "{err}");

    let broken_policies = dir.path().join("policies");
    std::fs::create_dir(&broken_policies).unwrap();
    std::fs::write(
        broken_policies.join("broken.rego"),
        "package x\ndeny contains if {",
    )
    .unwrap();
    let department = std::fs::read_to_string(example("department.toml"))
        .unwrap()
        .replace(
            "rego_dir = \"policies\"",
            &format!("rego_dir = \"{}\"", broken_policies.display()),
        )
        .replace("dir = \"../.cache/connect-runtime\"", "dir = \"/opt/rt\"");
    let with_broken = dir.path().join("broken.toml");
    std::fs::write(&with_broken, department).unwrap();
    let out = validate(&[
        "--department",
        with_broken.to_str().unwrap(),
        "examples/connectors/good",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.rego_dir") && err.contains("broken.rego"),
        "{err}"
    );

    let usage = Command::new(BIN)
        .args(["validate", "examples/connectors"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(64), "--department is required");
}

#[test]
fn quotas_count_over_the_whole_folder_and_the_plugin_list_resolves_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let department = std::fs::read_to_string(example("department.toml"))
        .unwrap()
        .replace("max_connectors = 50", "max_connectors = 2")
        .replace(
            "rego_dir = \"policies\"",
            &format!("rego_dir = \"{}\"", example("policies").display()),
        )
        .replace("dir = \"../.cache/connect-runtime\"", "dir = \"/opt/rt\"");
    let department_file = dir.path().join("department.toml");
    std::fs::write(&department_file, department).unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir(&connectors).unwrap();
    for (file, class) in [
        ("a.json", "FileStreamSource"),
        ("b.json", "FileStreamSourceConnector"),
        (
            "c.json",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ),
        ("d.json", "NoSuchSource"),
    ] {
        let name = format!("dept1-{}-source", &file[..1]);
        std::fs::write(
            connectors.join(file),
            format!(
                "{{\"name\": \"{name}\", \"config\": {{\"connector.class\": \"{class}\", \"topic\": \"dept1-t\"}}}}"
            ),
        )
        .unwrap();
    }
    let plugins = dir.path().join("plugins.json");
    std::fs::write(
        &plugins,
        r#"[{"class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "type": "source", "version": "4.3.1"},
            {"class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "type": "sink", "version": "4.3.1"}]"#,
    )
    .unwrap();
    let out = validate(&[
        "--department",
        department_file.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--format",
        "json",
        connectors.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        errors(&out),
        [
            e("c.json", "quota.connectors", 1),
            e("d.json", "plugin.allowed", 1),
            e("d.json", "plugin.unknown", 1),
            e("d.json", "quota.connectors", 1),
        ]
    );
}

// The shipped Rego policies, evaluated through the engine as the API will.

fn department() -> Department {
    config::load(&example("department.toml")).expect("the example department is valid")
}

fn review(
    department: &Department,
    name: &str,
    environment: Option<&str>,
    pairs: &[(&str, &str)],
) -> Vec<String> {
    let config: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pool = connect_supervisor::connectors::placement::judged_pool(department, &config);
    let mut request = ConnectorRequest::new(Operation::Create, name, &config, &pool);
    request.environment = environment;
    policy::review(department, &request)
        .violations
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

#[test]
fn the_example_policies_load_from_the_example_department() {
    let d = department();
    assert_eq!(d.policy.rego.names(), ["jdbc-heavy-pool", "prod-tasks-max"]);
}

#[test]
fn prod_connectors_run_at_most_four_tasks() {
    let d = department();
    let sink = |tasks: &'static str| {
        vec![
            ("connector.class", "FileStreamSink"),
            ("topics", "dept1-orders"),
            ("tasks.max", tasks),
        ]
    };
    assert!(review(&d, "dept1-orders-sink-prod-001", None, &sink("4")).is_empty());
    assert_eq!(
        review(&d, "dept1-orders-sink-prod-001", None, &sink("5")),
        ["prod-tasks-max"]
    );
    assert_eq!(
        review(&d, "dept1-orders-sink-001", Some("prod"), &sink("5")),
        ["prod-tasks-max"]
    );
    assert!(review(&d, "dept1-orders-sink-dev-001", Some("dev"), &sink("8")).is_empty());
    assert!(
        review(&d, "dept1-production-sink-001", None, &sink("8")).is_empty(),
        "prod is a whole name segment"
    );
}

#[test]
fn jdbc_sources_only_run_on_the_heavy_pool() {
    let d = department();
    let jdbc = |pool: Option<&'static str>| {
        let mut pairs = vec![
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSourceConnector",
            ),
            ("topic.prefix", "dept1-jdbc-"),
        ];
        if let Some(pool) = pool {
            pairs.push(("supervisor.pool", pool));
        }
        pairs
    };
    assert_eq!(
        review(&d, "dept1-jdbc-source", None, &jdbc(None)),
        ["jdbc-heavy-pool"]
    );
    // The example department has no heavy pool: the built-in check says so, and the policy is
    // satisfied.
    assert_eq!(
        review(&d, "dept1-jdbc-source", None, &jdbc(Some("heavy"))),
        ["pool.unknown"]
    );
    assert!(
        review(
            &d,
            "dept1-file-source",
            None,
            &[
                ("connector.class", "FileStreamSource"),
                ("topic", "dept1-x")
            ]
        )
        .is_empty()
    );
}

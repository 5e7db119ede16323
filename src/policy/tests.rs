//! Engine-level tests: a department file with a `[policy]` table, whole connector reviews.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::rules::*;
use super::*;
use crate::config::testing;

const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";

/// The test department (`dept1`, pools `shared` and `heavy`) with `policy` and `secrets` TOML
/// (shared with the connectors' unit tests).
pub(crate) fn department_with(policy: &str, secrets: &str) -> Department {
    testing::department()
        .managed_ids("env-1", "lkc-1")
        .set("supervisor", "state_dir", "\"/var/lib/cs\"")
        .pool(testing::pool("shared").workers(1))
        .pool(
            testing::pool("heavy")
                .workers(1)
                .worker_config("config.providers", "\"file,vault\""),
        )
        .with(secrets)
        .with(policy)
        .build()
}

/// [`department_with`] with quotas (3 connectors, 4 tasks each, 8 in all), an allowlist, pool
/// restrictions and allowed overrides.
pub(crate) fn department() -> Department {
    department_with(
        r#"
[policy.quotas]
max_connectors = 3
max_tasks_per_connector = 4
max_tasks_total = 8
[policy.plugins]
allowed = ["FileStreamSource", "org.apache.kafka.connect.file.FileStreamSinkConnector"]
[policy.plugins.pools]
"FileStreamSource" = ["heavy"]
[policy.overrides]
allowed = ["consumer.override.max.poll.records"]
"#,
        "",
    )
}

/// A config from `(key, value)` pairs (shared by the policy modules' tests).
pub(crate) fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn catalog() -> PluginCatalog {
    PluginCatalog::new([(FILE_SOURCE, "source"), (FILE_SINK, "sink")])
}

fn good_sink() -> BTreeMap<String, String> {
    config(&[
        ("connector.class", "FileStreamSink"),
        ("tasks.max", "2"),
        ("topics", "dept1-orders"),
        ("file", "/tmp/out.txt"),
    ])
}

/// The pool a caller resolves for `cfg` in the test department (`supervisor.pool`, else the
/// default pool "shared"), as the connectors' placement does for the API.
fn pool_of(cfg: &BTreeMap<String, String>) -> &str {
    cfg.get(POOL_KEY).map_or("shared", |p| p.trim())
}

fn rules_of(review: &Review) -> Vec<&str> {
    review.violations.iter().map(|v| v.rule.as_str()).collect()
}

#[test]
fn a_compliant_sink_passes_and_gets_a_dead_letter_queue() {
    let d = department();
    let cfg = good_sink();
    let catalog = catalog();
    let mut request =
        ConnectorRequest::new(Operation::Create, "dept1-orders-sink", &cfg, pool_of(&cfg));
    request.catalog = &catalog;
    let review = review(&d, &request);
    assert!(review.is_allowed(), "{:?}", review.violations);
    assert_eq!(review.facts.class, FILE_SINK);
    assert_eq!(review.facts.connector_type, ConnectorType::Sink);
    assert_eq!(review.facts.pool, "shared");
    assert_eq!(review.facts.tasks, 2);
    assert_eq!(
        review.config["errors.deadletterqueue.topic.name"],
        "dept1-orders-sink-dlq"
    );
    assert_eq!(review.applied_defaults.len(), 4);
    assert_eq!(strip_applied(&review.config).len(), cfg.len() + 1);
}

#[test]
fn every_violation_is_returned_at_once() {
    let d = department();
    let cfg = config(&[
        ("connector.class", "com.example.JdbcSourceConnector"),
        ("tasks.max", "9"),
        ("topic.prefix", "other-"),
        ("producer.override.acks", "0"),
        ("supervisor.pool", "nope"),
    ]);
    let usage = ConnectorUsage {
        connectors: 3,
        tasks: 8,
        connector_tasks: None,
    };
    let mut request =
        ConnectorRequest::new(Operation::Create, "Connect-Orders", &cfg, pool_of(&cfg));
    request.usage = usage;
    let review = review(&d, &request);
    let mut rules = rules_of(&review);
    rules.sort();
    assert_eq!(
        rules,
        [
            RULE_NAMING_PATTERN,
            RULE_NAMING_PREFIX,
            RULE_OVERRIDES_DENIED,
            RULE_PLUGIN_ALLOWED,
            RULE_POOL_UNKNOWN,
            RULE_QUOTA_CONNECTORS,
            RULE_QUOTA_TASKS_PER_CONNECTOR,
            RULE_QUOTA_TASKS_TOTAL,
            RULE_TOPICS_PREFIX,
        ]
    );
    for v in &review.violations {
        assert!(!v.message.is_empty() && !v.hint.is_empty(), "{v:?}");
        assert_eq!(v.source, RuleSource::Builtin);
    }
}

#[test]
fn an_update_is_not_double_counted_and_skips_naming() {
    let d = department();
    let mut cfg = good_sink();
    cfg.insert("tasks.max".into(), "4".into());
    let mut request =
        ConnectorRequest::new(Operation::Update, "dept1-Legacy_Name", &cfg, pool_of(&cfg));
    request.usage = ConnectorUsage {
        connectors: 3,
        tasks: 8,
        connector_tasks: Some(4),
    };
    let review = review(&d, &request);
    assert!(review.is_allowed(), "{:?}", review.violations);
}

#[test]
fn aliases_match_the_allowlist_with_and_without_a_catalog() {
    let d = department();
    for class in [FILE_SOURCE, "FileStreamSource", "FileStreamSourceConnector"] {
        let cfg = config(&[
            ("connector.class", class),
            ("topic", "dept1-lines"),
            ("file", "/tmp/in"),
            ("supervisor.pool", "heavy"),
        ]);
        for with_catalog in [false, true] {
            let catalog = if with_catalog {
                catalog()
            } else {
                PluginCatalog::default()
            };
            let mut request =
                ConnectorRequest::new(Operation::Create, "dept1-lines-source", &cfg, pool_of(&cfg));
            request.catalog = &catalog;
            let review = review(&d, &request);
            assert!(
                review.is_allowed(),
                "{class} {with_catalog}: {:?}",
                review.violations
            );
            assert_eq!(review.facts.connector_type, ConnectorType::Source);
        }
    }
}

#[test]
fn a_class_restricted_to_a_pool_is_refused_elsewhere() {
    let d = department();
    let cfg = config(&[
        ("connector.class", "FileStreamSource"),
        ("topic", "dept1-lines"),
    ]);
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-a", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&review), [RULE_PLUGIN_POOL]);
    assert_eq!(review.violations[0].key.as_deref(), Some(POOL_KEY));
}

#[test]
fn an_unknown_class_is_reported_only_with_a_catalog() {
    let d = department_with("", "");
    let cfg = config(&[("connector.class", "NoSuchSink"), ("topics", "dept1-a")]);
    let catalog = catalog();
    let mut request = ConnectorRequest::new(Operation::Validate, "dept1-a", &cfg, pool_of(&cfg));
    assert!(review(&d, &request).is_allowed());
    request.catalog = &catalog;
    assert_eq!(rules_of(&review(&d, &request)), [RULE_PLUGIN_UNKNOWN]);
}

#[test]
fn a_missing_class_is_reported() {
    let d = department_with("", "");
    let cfg = config(&[("topics", "dept1-a")]);
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-a", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&review), [RULE_PLUGIN_CLASS]);
}

#[test]
fn the_default_dlq_is_checked_against_the_topic_prefixes() {
    let d = department_with(
        "[policy.defaults]\ndead_letter_queue_topic = \"dlq-{connector}\"\n",
        "",
    );
    let cfg = good_sink();
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&review), [RULE_TOPICS_PREFIX]);
    assert_eq!(
        review.violations[0].key.as_deref(),
        Some("errors.deadletterqueue.topic.name")
    );
}

#[test]
fn required_keys_see_the_applied_defaults() {
    let with_defaults = department_with(
        "[policy.required]\nsink = [\"errors.deadletterqueue.topic.name\"]\n",
        "",
    );
    let cfg = good_sink();
    let request = ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg));
    assert!(review(&with_defaults, &request).is_allowed());
    let without = department_with(
        "[policy.required]\nsink = [\"errors.deadletterqueue.topic.name\"]\n[policy.defaults]\ndead_letter_queue = false\n",
        "",
    );
    assert_eq!(rules_of(&review(&without, &request)), [RULE_REQUIRED_KEYS]);
}

#[test]
fn reject_mode_refuses_literals_and_accepts_allowed_references() {
    let d = department_with(
        "",
        "[secrets]\nmode = \"reject\"\nallowed_providers = [\"file\", \"vault\"]\n",
    );
    let mut cfg = good_sink();
    cfg.insert("connection.password".into(), "hunter2".into());
    cfg.insert(
        "api.token".into(),
        "${file:/var/lib/cs/secrets/x.properties:t}".into(),
    );
    let review_ = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&review_), [RULE_SECRETS_LITERAL]);
    assert_eq!(
        review_.violations[0].key.as_deref(),
        Some("connection.password")
    );
    let all_text = format!("{:?}", review_.violations);
    assert!(!all_text.contains("hunter2"), "{all_text}");

    // vault is allowed but the shared pool's workers do not have it; heavy's do.
    cfg.insert("connection.password".into(), "${vault:db:password}".into());
    let on_shared = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&on_shared), [RULE_SECRETS_PROVIDER]);
    assert!(on_shared.violations[0].message.contains("pool \"shared\""));
    cfg.insert("supervisor.pool".into(), "heavy".into());
    assert!(
        review(
            &d,
            &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg))
        )
        .is_allowed()
    );

    cfg.insert("connection.password".into(), "${aws:db:password}".into());
    let not_allowed = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&not_allowed), [RULE_SECRETS_PROVIDER]);
}

#[test]
fn externalize_mode_lists_literal_secrets_including_password_typed_keys() {
    let d = department_with("", "");
    let mut cfg = good_sink();
    cfg.insert("connection.password".into(), "hunter2".into());
    cfg.insert("db.pass".into(), "hunter3".into());
    let passwords: BTreeSet<String> = ["db.pass".to_string()].into();
    let mut request = ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg));
    request.password_keys = &passwords;
    let review = review(&d, &request);
    assert!(review.is_allowed(), "{:?}", review.violations);
    assert_eq!(review.literal_secrets, ["connection.password", "db.pass"]);
    let out = externalize(
        &d.secrets,
        &passwords,
        &review.config,
        &secrets_dir(&d),
        "dept1-s",
    )
    .unwrap();
    assert_eq!(
        out.config["db.pass"],
        "${file:/var/lib/cs/secrets/dept1-s.properties:db.pass}"
    );
}

#[test]
fn disabled_rules_report_nothing() {
    let d = department_with(
        "[policy]\ndisabled = [\"naming.prefix\", \"topics.prefix\"]\n",
        "",
    );
    let cfg = config(&[("connector.class", "FileStreamSink"), ("topics", "other")]);
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "other-sink", &cfg, pool_of(&cfg)),
    );
    assert!(review.is_allowed(), "{:?}", review.violations);
}

#[test]
fn supervisor_keys_sent_by_users_are_dropped() {
    let d = department_with("", "");
    let mut cfg = good_sink();
    cfg.insert(APPLIED_DEFAULTS_KEY.into(), "topics,file".into());
    cfg.insert(
        "errors.deadletterqueue.topic.name".into(),
        "dept1-own-dlq".into(),
    );
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert!(review.applied_defaults.is_empty());
    assert!(!review.config.contains_key(APPLIED_DEFAULTS_KEY));
    assert_eq!(strip_applied(&review.config)["topics"], "dept1-orders");
}

#[test]
fn rego_sees_a_masked_input_and_its_denials_are_violations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("no-literal.rego"),
        r#"package t
deny contains msg if {
    some key, value in input.connector.config
    contains(value, "hunter2")
    msg := sprintf("saw the secret in %s", [key])
}
deny contains {"msg": "sinks need two tasks", "key": "tasks.max"} if {
    input.connector.type == "sink"
    input.connector.tasks_max < 2
    input.operation == "create"
    input.department.id == "dept1"
    input.connector.pool == "shared"
    input.usage.connectors == 0
}
"#,
    )
    .unwrap();
    let d = department_with(
        &format!("[policy]\nrego_dir = \"{}\"\n", dir.path().display()),
        "",
    );
    let mut cfg = good_sink();
    cfg.insert("connection.password".into(), "hunter2".into());
    cfg.insert("tasks.max".into(), "1".into());
    let review = review(
        &d,
        &ConnectorRequest::new(Operation::Create, "dept1-s", &cfg, pool_of(&cfg)),
    );
    assert_eq!(rules_of(&review), ["no-literal"]);
    assert_eq!(review.violations[0].message, "sinks need two tasks");
    assert_eq!(review.violations[0].key.as_deref(), Some("tasks.max"));
    assert_eq!(review.violations[0].source, RuleSource::Rego);
}

#[test]
fn the_policy_table_reports_every_problem_with_its_path() {
    let policy = r#"
[policy]
disabled = ["naming.nope"]
rego_dir = "/no/such/folder"
[policy.naming]
pattern = "([a-z"
max_length = 0
[policy.quotas]
max_connectors = -1
[policy.plugins.pools]
"FileStreamSource" = ["heavy"]
[policy.overrides]
allowed = ["producer.acks"]
[policy.defaults]
dead_letter_queue_topic = "{name}-dlq"
dead_letter_queue = "yes"
[policy.typo]
x = 1
"#;
    let problems = testing::department()
        .id("admin")
        .managed_ids("env-1", "lkc-1")
        .bootstrap_servers("b:9092")
        .with(policy)
        .problems();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "policy.disabled",
        "policy.rego_dir",
        "policy.naming.pattern",
        "policy.naming.max_length",
        "policy.quotas.max_connectors",
        "policy.plugins.pools.\"FileStreamSource\"",
        "policy.overrides.allowed",
        "policy.defaults.dead_letter_queue_topic",
        "policy.defaults.dead_letter_queue",
        "policy.typo",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
}

#[test]
fn a_department_id_that_is_itself_reserved_is_a_problem() {
    let problems = crate::config::testing::department()
        .id("admin")
        .managed_ids("e", "k")
        .bootstrap_servers("b:9092")
        .with("[policy]")
        .problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "policy.naming.reserved_prefixes");
}

#[test]
fn a_rego_file_that_does_not_compile_is_a_config_problem_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.rego"),
        "package a\ndeny contains \"x\" if { false }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.rego"),
        "package b\ndeny contains if {\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ok_test.rego"), "not rego at all").unwrap();
    let messages = crate::config::load_rego_dir(dir.path()).unwrap_err();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("broken.rego"), "{}", messages[0]);
}

proptest! {
    /// Names built from the convention pass every naming rule up to 64 characters and fail only
    /// the length rule beyond.
    #[test]
    fn conventional_names_pass_up_to_the_length_limit(
        segments in proptest::collection::vec("[a-z0-9]{1,12}", 1..8),
    ) {
        let name = format!("dept1-{}", segments.join("-"));
        prop_assume!(!DEFAULT_RESERVED_PREFIXES.contains(&segments[0].as_str()));
        let d = department_with("", "");
        let cfg = config(&[("connector.class", "FileStreamSource"), ("topic", "dept1-x")]);
        let review = review(&d, &ConnectorRequest::new(Operation::Create, &name, &cfg, pool_of(&cfg)));
        let rules = rules_of(&review);
        if name.len() <= 64 {
            prop_assert!(rules.is_empty(), "{name}: {rules:?}");
        } else {
            prop_assert_eq!(rules, vec![RULE_NAMING_LENGTH]);
        }
    }

    /// No built-in message or hint ever contains a secret value.
    #[test]
    fn secrets_never_appear_in_violations(secret in "[A-Za-z0-9]{12,20}") {
        let d = department_with("", "[secrets]\nmode = \"reject\"\n");
        let cfg = config(&[
            ("connector.class", "FileStreamSink"),
            ("topics", "other"),
            ("connection.password", &secret),
            ("producer.override.sasl.jaas.config", &secret),
        ]);
        let review = review(&d, &ConnectorRequest::new(Operation::Create, "x", &cfg, pool_of(&cfg)));
        prop_assert!(!review.violations.is_empty());
        for v in &review.violations {
            prop_assert!(!v.message.contains(&secret) && !v.hint.contains(&secret), "{v:?}");
        }
    }
}

#[test]
fn findings_the_caller_reports_are_not_made_again() {
    let d = department();
    let cfg = config(&[("topics", "dept1-a"), ("supervisor.pool", "nope")]);
    let mut request = ConnectorRequest::new(Operation::Create, "dept1-a", &cfg, "nope");
    assert_eq!(rules_of(&review(&d, &request)), [RULE_PLUGIN_CLASS]);
    request.reported.missing_class = true;
    assert!(review(&d, &request).is_allowed());
    let cfg = config(&[("connector.class", "FileStreamSink"), ("topics", "dept1-a")]);
    let mut request = ConnectorRequest::new(Operation::Create, "dept1-a", &cfg, "nope");
    assert_eq!(rules_of(&review(&d, &request)), [RULE_POOL_UNKNOWN]);
    request.reported.unknown_pool = true;
    assert!(review(&d, &request).is_allowed());
    assert_eq!(
        review(&d, &request).facts.pool,
        "nope",
        "the pool given is the pool judged"
    );
}

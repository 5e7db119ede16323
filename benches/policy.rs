//! Cost of reviewing one connector against the department's guardrails, with built-in rules only
//! and with the two example Rego policies, next to a baseline measured in the same run: parsing
//! the same connector's JSON config (what every API request does anyway).
//!
//! Targets (issue 5): built-in rules under 50 µs per connector, with Rego under 1 ms.
//! Run: `cargo bench --bench policy`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use connect_supervisor::config;
use connect_supervisor::connectors::placement;
use connect_supervisor::model::Department;
use connect_supervisor::policy::{
    self, ConnectorRequest, ConnectorUsage, Operation, PluginCatalog,
};
use criterion::{Criterion, criterion_group, criterion_main};

const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

fn department(rego: bool) -> Department {
    let mut text = std::fs::read_to_string(Path::new(PROJECT).join("examples/department.toml"))
        .expect("example department");
    if rego {
        let dir = Path::new(PROJECT).join("examples/policies");
        text = text.replace(
            "rego_dir = \"policies\"",
            &format!("rego_dir = \"{}\"", dir.display()),
        );
    } else {
        text = text.replace("rego_dir = \"policies\"", "");
    }
    config::parse(&text, Path::new(PROJECT), &|_| None).expect("valid department")
}

/// A realistic sink: 16 keys, a secret, an override, a topic regex, no DLQ (defaults apply).
fn connector_json() -> String {
    serde_json::json!({
        "connector.class": "FileStreamSink",
        "name": "dept1-orders-file-sink-prod-001",
        "tasks.max": "3",
        "topics.regex": "dept1-orders-(eu|us)-v[0-9]+",
        "file": "/data/orders.txt",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "consumer.override.max.poll.records": "500",
        "connection.password": "hunter2",
        "transforms": "route",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": "(.*)",
        "transforms.route.replacement": "$1",
        "offset.flush.timeout.ms": "10000",
        "max.retries": "10"
    })
    .to_string()
}

fn catalog() -> PluginCatalog {
    PluginCatalog::new([
        (
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "source",
        ),
        (
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "sink",
        ),
        (
            "org.apache.kafka.connect.mirror.MirrorSourceConnector",
            "source",
        ),
    ])
}

fn bench(c: &mut Criterion) {
    let json = connector_json();
    let config: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
    let catalog = catalog();
    let usage = ConnectorUsage {
        connectors: 12,
        tasks: 20,
        connector_tasks: None,
    };
    let builtin = department(false);
    let with_rego = department(true);
    assert_eq!(with_rego.policy.rego.names().len(), 2);

    let review = |department: &Department| {
        // The pool is resolved by the caller (as the API does), inside the measured work.
        let pool = placement::judged_pool(department, &config);
        let mut request = ConnectorRequest::new(
            Operation::Create,
            "dept1-orders-file-sink-prod-001",
            &config,
            &pool,
        );
        request.usage = usage;
        request.catalog = &catalog;
        policy::review(department, &request)
    };
    // The reviewed connector passes the rules (the benchmark measures the full path).
    assert!(
        review(&builtin).is_allowed(),
        "{:?}",
        review(&builtin).violations
    );
    assert!(review(&with_rego).is_allowed());

    let mut group = c.benchmark_group("policy per connector");
    group.bench_function("baseline: parse the config JSON", |b| {
        b.iter(|| {
            let parsed: BTreeMap<String, String> = serde_json::from_str(black_box(&json)).unwrap();
            black_box(parsed)
        })
    });
    group.bench_function("built-in rules", |b| {
        b.iter(|| black_box(review(black_box(&builtin))))
    });
    group.bench_function("built-in rules + 2 Rego policies", |b| {
        b.iter(|| black_box(review(black_box(&with_rego))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

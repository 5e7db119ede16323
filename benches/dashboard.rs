//! Cost of the dashboard's connector table with 200 connectors: the whole HTML page as the
//! dashboard serves it (failing first, every column), next to a baseline measured in the same
//! run: serialising the same 200 rows to JSON, which `/v1/health` does for every poll anyway.
//!
//! Target (issue 14): 200 connectors render in under a second after their data arrives; the
//! browser side is measured by `tests/dashboard.rs` (`two_hundred_connectors_render_within_a_second`).
//! Run: `cargo bench --bench dashboard`.

use std::hint::black_box;

use connect_supervisor::api::ui::html::Viewer;
use connect_supervisor::api::ui::pages::connectors_document;
use connect_supervisor::api::ui::table::TableQuery;
use connect_supervisor::auth::Role;
use connect_supervisor::healing::{AutoRestartView, ConnectorHealth};
use criterion::{Criterion, criterion_group, criterion_main};

/// Connectors in the table.
const CONNECTORS: usize = 200;

/// A department of `CONNECTORS`, one in ten failing with an error.
fn rows() -> Vec<ConnectorHealth> {
    let now = time::OffsetDateTime::now_utc();
    (0..CONNECTORS)
        .map(|i| {
            let failing = i.is_multiple_of(10);
            ConnectorHealth {
                name: format!("dept1-source{i:03}-jdbc-source-prod-001"),
                pool: "shared".into(),
                state: if failing { "FAILED" } else { "RUNNING" },
                connect_state: "RUNNING".into(),
                tasks: 3,
                failed_tasks: usize::from(failing),
                last_error: failing.then(|| {
                    "org.apache.kafka.connect.errors.ConnectException: connection refused".into()
                }),
                last_error_at: failing.then_some(now),
                errors_last_hour: if failing { 12 } else { 0 },
                last_activity: Some(now),
                uptime_seconds: Some(3600),
                auto_restart: AutoRestartView {
                    enabled: true,
                    restarts: u32::from(failing),
                    max_restarts: 10,
                    held: false,
                    next_restart_in_seconds: None,
                    last_failure: None,
                },
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let viewer = Viewer {
        name: "OPERATOR".into(),
        role: Role::Operator,
        csrf: "token".into(),
    };
    let query = TableQuery::default();
    let now = time::OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("dashboard_200_connectors");
    group.bench_function("baseline_json_of_the_rows", |b| {
        b.iter(|| black_box(serde_json::to_string(black_box(&rows)).unwrap().len()))
    });
    group.bench_function("table_page_html", |b| {
        b.iter(|| {
            black_box(connectors_document("dept1", &viewer, black_box(&rows), &query, now).len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

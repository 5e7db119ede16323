//! The class-data-sharing archive: `connect-supervisor runtime cds` writes it into a runtime,
//! and a worker JVM planned from that runtime maps it (read back from the JVM's own memory
//! maps once it is ready). The speed-up itself is measured by `cargo bench --bench worker_start`.

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use connect_supervisor::config;
use connect_supervisor::model::WorkerId;
use connect_supervisor::process::{Output, Spawner, stop_child};
use connect_supervisor::runtime::RuntimeLayout;
use connect_supervisor::supervisor::free_port;
use connect_supervisor::worker::{WorkerHealth, WorkerPlan, probe};
use harness::{PROJECT, eventually, kafka_bootstrap, runtime, scratch, unique};

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_cds_writes_an_archive_that_worker_jvms_map() {
    // A copy of the runtime: the archive is bound to the jar paths it was made with.
    let dir = scratch(&unique("cds"));
    let copy = dir.join("runtime");
    let status = Command::new("cp")
        .arg("-a")
        .arg(runtime().root())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let layout = RuntimeLayout::new(&copy);
    let _ = std::fs::remove_dir_all(copy.join("cds"));
    let out = Command::new(BIN)
        .args(["runtime", "cds", "--dir"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runtime cds: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = layout.cds_archive();
    assert!(
        archive.metadata().unwrap().len() > 1 << 20,
        "{}",
        archive.display()
    );

    // A worker planned from that runtime runs with the archive and maps it.
    let id = unique("cdsw");
    let text = format!(
        r#"
[department]
id = "{id}"
environment_id = "env-{id}"
kafka_cluster_id = "lkc-{id}"
[kafka]
bootstrap_servers = "{}"
internal_topic_replication_factor = 1
[runtime]
dir = "{}"
[supervisor]
listen = "127.0.0.1:0"
state_dir = "{}"
[[pools]]
name = "shared"
workers = 1
cpu = 1
memory = "512MiB"
[pools.worker_config]
"plugin.discovery" = "service_load"
"#,
        kafka_bootstrap(),
        copy.display(),
        dir.join("state").display()
    );
    let department = config::parse(&text, Path::new(PROJECT), &|_| None).unwrap();
    let port = free_port("127.0.0.1").unwrap();
    let plan = WorkerPlan::new(
        &department,
        &department.pools[0],
        WorkerId::new("shared", 0),
        port,
        &layout,
    );
    let option = format!("-XX:SharedArchiveFile={}", archive.display());
    assert!(
        plan.command.args.iter().any(|a| *a == *option),
        "{:?}",
        plan.command.args
    );
    plan.write_files().unwrap();
    let mut spec = plan.command.clone();
    spec.output = Output::Null;
    let mut child = Spawner::global().spawn(spec).await.unwrap();
    let http = reqwest::Client::new();
    eventually(
        "the worker to be ready",
        Duration::from_secs(240),
        || async {
            (probe(&http, &plan.rest_url, Duration::from_secs(2)).await == WorkerHealth::Ready)
                .then_some(())
        },
    )
    .await;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id().unwrap())).unwrap();
    let _ = stop_child(&mut child, Duration::from_secs(20)).await;
    assert!(
        maps.contains("connect-worker.jsa"),
        "the JVM maps the archive"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

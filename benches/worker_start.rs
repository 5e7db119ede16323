//! Worker start benchmark (run with `cargo bench --bench worker_start`), against a real embedded
//! broker and real Connect worker JVMs:
//!
//! 1. spawn-to-ready of a worker JVM (the supervisor's command line, launched directly and polled
//!    every 100 ms) without and with an application class-data-sharing archive of the Connect
//!    classpath, alternating, in the same run. The archive is made first by one training start
//!    with `-XX:ArchiveClassesAtExit` (a dynamic archive on top of the JDK's own), stopped with
//!    SIGTERM so the JVM writes it at exit;
//! 2. the container image's size, when images/build.sh has built it (`BENCH_IMAGE`, default
//!    `localhost/connect-supervisor:dev`), and the size of its OCI archive.
//!
//! `BENCH_ROUNDS` (default 3) sets the rounds of part 1.

use std::path::Path;
use std::time::{Duration, Instant};

use connect_supervisor::config;
use connect_supervisor::dev::EmbeddedKafka;
use connect_supervisor::model::WorkerId;
use connect_supervisor::process::{Output, Spawner, stop_child};
use connect_supervisor::runtime::{self, RuntimeLayout};
use connect_supervisor::supervisor::free_port;
use connect_supervisor::worker::{WorkerHealth, WorkerPlan, probe};

const PROJECT: &str = env!("CARGO_MANIFEST_DIR");

fn department_text(id: &str, bootstrap: &str, runtime: &Path, state: &Path) -> String {
    format!(
        r#"
[department]
id = "{id}"
environment_id = "env-{id}"
kafka_cluster_id = "lkc-{id}"
[kafka]
bootstrap_servers = "{bootstrap}"
internal_topic_replication_factor = 1
[runtime]
dir = "{runtime}"
[supervisor]
listen = "127.0.0.1:0"
state_dir = "{state}"
[[pools]]
name = "bench"
workers = 1
cpu = 1
memory = "512MiB"
[pools.worker_config]
"plugin.discovery" = "service_load"
"#,
        runtime = runtime.display(),
        state = state.display(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn wait_health(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while probe(http, url, Duration::from_secs(2)).await != WorkerHealth::Ready {
        assert!(Instant::now() < deadline, "{url} not ready in 300 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts one worker JVM with `extra` JVM options, waits until `GET /health` is 200, stops it
/// with SIGTERM (grace 30 s). Returns spawn-to-ready in seconds.
async fn start_once(
    id: &str,
    bootstrap: &str,
    layout: &RuntimeLayout,
    scratch: &Path,
    extra: &[String],
    http: &reqwest::Client,
) -> f64 {
    let state = scratch.join(id);
    let text = department_text(id, bootstrap, layout.root(), &state);
    let department = config::parse(&text, Path::new(PROJECT), &|_| None).unwrap();
    let port = free_port("127.0.0.1").unwrap();
    let plan = WorkerPlan::new(
        &department,
        &department.pools[0],
        WorkerId::new("bench", 0),
        port,
        layout,
    );
    plan.write_files().unwrap();
    let mut spec = plan.command.clone();
    spec.output = Output::Null;
    // JVM options go before the class path and main class.
    let at = spec.args.iter().position(|a| a == "-cp").unwrap();
    for (i, option) in extra.iter().enumerate() {
        spec.args.insert(at + i, option.into());
    }
    let started = Instant::now();
    let mut child = Spawner::global().spawn(spec).await.unwrap();
    wait_health(http, &plan.rest_url).await;
    let took = started.elapsed().as_secs_f64();
    let _ = stop_child(&mut child, Duration::from_secs(30)).await;
    took
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let source = Path::new(PROJECT).join("images/connect-runtime");
    let dest = Path::new(PROJECT).join(".cache/connect-runtime");
    runtime::materialise(&source, &dest).expect("the Connect runtime (needs Maven once)");
    let layout = RuntimeLayout::new(&dest);
    let scratch = tempfile::Builder::new()
        .prefix("cs-bench-cds-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let archive = scratch.path().join("connect-worker.jsa");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let broker =
            EmbeddedKafka::start(&layout, Path::new("java"), &scratch.path().join("kafka"))
                .await
                .expect("embedded broker");
        let bootstrap = broker.bootstrap_servers();
        let http = reqwest::Client::new();

        // The training start writes the archive at exit.
        let training = start_once(
            "bcdstrain",
            &bootstrap,
            &layout,
            scratch.path(),
            &[format!("-XX:ArchiveClassesAtExit={}", archive.display())],
            &http,
        )
        .await;
        let size = std::fs::metadata(&archive)
            .unwrap_or_else(|e| panic!("no archive at {}: {e}", archive.display()))
            .len();
        eprintln!(
            "training start {training:.2}s; archive {} MiB",
            size / (1 << 20)
        );
        let with_archive = vec![
            format!("-XX:SharedArchiveFile={}", archive.display()),
            // Fail loudly instead of silently starting without the archive.
            "-Xshare:on".to_string(),
        ];
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let a = start_once(
                &format!("bcdsn{round}"),
                &bootstrap,
                &layout,
                scratch.path(),
                &[],
                &http,
            )
            .await;
            let b = start_once(
                &format!("bcdsy{round}"),
                &bootstrap,
                &layout,
                scratch.path(),
                &with_archive,
                &http,
            )
            .await;
            eprintln!("round {round}: without archive {a:.2}s, with archive {b:.2}s");
            without.push(a);
            with.push(b);
        }
        let (n, y) = (median(without.clone()), median(with.clone()));
        println!(
            "spawn_to_ready without CDS archive: median {n:.2}s over {rounds} rounds {without:.2?}"
        );
        println!(
            "spawn_to_ready with CDS archive:    median {y:.2}s over {rounds} rounds {with:.2?}"
        );
        println!(
            "spawn_to_ready ratio with/without:  {:.3} ({:.0}% faster)",
            y / n,
            (1.0 - y / n) * 100.0
        );
        println!("cds_archive_size_bytes {size}");
        broker.stop().await;
    });

    // Part 2: the image, if built.
    let image =
        std::env::var("BENCH_IMAGE").unwrap_or_else(|_| "localhost/connect-supervisor:dev".into());
    match std::process::Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Size}}", &image])
        .output()
    {
        Ok(out) if out.status.success() => {
            let bytes: u64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            println!("image {image}: {} MiB", bytes / (1 << 20));
        }
        _ => println!(
            "image {image}: not built (run images/build.sh --binary target/release/connect-supervisor)"
        ),
    }
    let oci = Path::new(PROJECT).join("target/images/connect-supervisor.oci.tar");
    if let Ok(m) = std::fs::metadata(&oci) {
        println!("OCI archive {}: {} MiB", oci.display(), m.len() / (1 << 20));
    }
}

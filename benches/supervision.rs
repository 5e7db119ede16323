//! Supervision benchmark (run with `cargo bench --bench supervision`), against a real embedded
//! broker and real Connect worker JVMs:
//!
//! 1. spawn-to-ready time of a worker launched by the supervisor (cgroup created, limits
//!    written, child placed before exec, readiness probed) vs the same JVM command launched
//!    directly and polled every 100 ms, in the same rounds (the order rotates): once without limits (the
//!    baseline a user compares with: it also shows what the 1-CPU quota costs a starting JVM)
//!    and once placed by hand in a cgroup with the same limits (what the plain quota costs). The
//!    supervised department has a CPU budget of one core per host CPU for its 1-CPU worker, so
//!    the start-up boost can lend the starting worker the unused budget (goal: within 10 % of
//!    the unlimited JVM);
//! 2. the `connect-supervisor` daemon's own RSS and CPU while it supervises 4 idle workers for
//!    60 s (its workers excluded).
//!
//! `BENCH_ROUNDS` (default 7) sets the rounds of part 1; `BENCH_IDLE_SECONDS` (default 60) the
//! idle window of part 2.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use connect_supervisor::cgroup::Limits;
use connect_supervisor::config;
use connect_supervisor::dev::EmbeddedKafka;
use connect_supervisor::model::WorkerId;
use connect_supervisor::process::{Output, Spawner, stop_child};
use connect_supervisor::runtime::{self, RuntimeLayout};
use connect_supervisor::supervisor::{Supervisor, free_port};
use connect_supervisor::worker::{WorkerHealth, WorkerPlan, probe};

const PROJECT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");

fn department_text(
    id: &str,
    bootstrap: &str,
    runtime: &Path,
    state: &Path,
    workers: u32,
    listen: u16,
    extra: &str,
) -> String {
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
listen = "127.0.0.1:{listen}"
state_dir = "{state}"
[[pools]]
name = "bench"
workers = {workers}
cpu = 1
memory = "512MiB"
[pools.worker_config]
"plugin.discovery" = "service_load"
{extra}
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

/// utime + stime of `pid`, in seconds, and its RSS in bytes.
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks = (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) as f64;
    // USER_HZ is 100 on every Linux ABI the project targets.
    let hz = 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / hz, rss_kib * 1024)
}

/// CPU used and time throttled by the quota, in seconds.
fn cpu(s: connect_supervisor::cgroup::CgroupStats) -> (f64, f64) {
    let secs = |us: Option<u64>| us.map_or(f64::NAN, |us| us as f64 / 1e6);
    (secs(s.cpu_usage_usec), secs(s.cpu_throttled_usec))
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let idle: u64 = std::env::var("BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let source = Path::new(PROJECT).join("images/connect-runtime");
    let dest = Path::new(PROJECT).join(".cache/connect-runtime");
    runtime::materialise(&source, &dest).expect("the Connect runtime (needs Maven once)");
    let layout = RuntimeLayout::new(&dest);
    let scratch = tempfile::Builder::new()
        .prefix("cs-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let broker = EmbeddedKafka::start(&layout, Path::new("java"), &scratch.path().join("kafka"))
            .await
            .expect("embedded broker");
        let bootstrap = broker.bootstrap_servers();
        let http = reqwest::Client::new();

        // Part 1: spawn to ready, supervised vs direct. One JVM start varies by ±20 % on a
        // small VM, so every round runs the three starts back to back, in an order that rotates
        // from round to round (no kind always comes first after the broker's quiet time), and the
        // verdict is the median of the per-round ratios next to the ratio of the medians.
        let host_cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let headroom = format!("[budget]\nmax_workers = 1\ncpu = {host_cpus}\nmemory = \"512MiB\"\n");
        let driver = connect_supervisor::cgroup::detect("benchdirect").expect("cgroups");
        driver.prepare().expect("writable cgroups");
        let (mut supervised, mut direct, mut limited) = (Vec::new(), Vec::new(), Vec::new());
        let mut boosts = Vec::new();
        for round in 0..rounds {
            let mut supervised_cpu = (f64::NAN, f64::NAN);
            let mut limited_cpu = (f64::NAN, f64::NAN);
            for kind in (0..3).map(|k| (k + round) % 3) {
                match kind {
                    0 => {
                        let id = format!("bs{round}");
                        let state = scratch.path().join(&id);
                        let text = department_text(&id, &bootstrap, layout.root(), &state, 1, 0, &headroom);
                        let department = config::parse(&text, Path::new(PROJECT), &|_| None).unwrap();
                        let started = Instant::now();
                        let sup = Supervisor::start(department, layout.clone()).await.unwrap();
                        let start_returned = started.elapsed().as_secs_f64();
                        sup.wait_until_ready(Duration::from_secs(300)).await.unwrap();
                        supervised.push(started.elapsed().as_secs_f64());
                        // Where the supervised time goes: the supervisor's own start (state
                        // folder, lock, cgroups, worker files, spawn) and the JVM's start as its
                        // readiness probe saw it.
                        let events = sup.observer().events().recent(50);
                        let jvm_ready = events.iter().find(|e| e.event == "worker_ready").map(|e| e.message.clone());
                        println!(
                            "round {round}: supervisor start returned after {start_returned:.3}s; {}",
                            jvm_ready.as_deref().unwrap_or("no worker_ready event")
                        );
                        boosts.extend(
                            events.into_iter().filter(|e| e.event == "startup_boost_applied").map(|e| e.message),
                        );
                        // Whether the quota bound the start: CPU used and time throttled.
                        supervised_cpu = cpu(sup.cgroups().stats("bench-0").unwrap_or_default());
                        sup.shutdown().await;
                    }
                    _ => {
                        let in_cgroup = kind == 2;
                        let id = format!("bd{round}{kind}");
                        let state = scratch.path().join(&id);
                        let text = department_text(&id, &bootstrap, layout.root(), &state, 1, 0, "");
                        let department = config::parse(&text, Path::new(PROJECT), &|_| None).unwrap();
                        let port = free_port("127.0.0.1").unwrap();
                        let plan = WorkerPlan::new(&department, &department.pools[0], WorkerId::new("bench", 0), port, &layout);
                        plan.write_files().unwrap();
                        let mut spec = plan.command.clone();
                        spec.output = Output::Null;
                        if in_cgroup {
                            let limits = Limits { cpu_millis: 1000, memory_bytes: 512 << 20, pids: 2048 };
                            driver.create("direct-0", &limits).unwrap();
                            spec.cgroup_procs = driver.procs_files("direct-0");
                        }
                        let started = Instant::now();
                        let mut child = Spawner::global().spawn(spec).await.unwrap();
                        wait_health(&http, &plan.rest_url).await;
                        let took = started.elapsed().as_secs_f64();
                        if in_cgroup {
                            limited_cpu = cpu(driver.stats("direct-0").unwrap_or_default());
                        }
                        let _ = stop_child(&mut child, Duration::from_secs(20)).await;
                        if in_cgroup {
                            limited.push(took);
                            let _ = driver.kill("direct-0");
                            let _ = driver.remove("direct-0");
                        } else {
                            direct.push(took);
                        }
                    }
                }
            }
            eprintln!(
                "round {round}: supervised {:.2}s, direct {:.2}s, direct in the same cgroup limits {:.2}s \
                 (CPU used / throttled by the quota: until ready: supervised {:.1}s / {:.1}s, same limits {:.1}s / {:.1}s)",
                supervised[round], direct[round], limited[round],
                supervised_cpu.0, supervised_cpu.1, limited_cpu.0, limited_cpu.1
            );
        }
        let _ = driver.remove_department();
        // Median and quartiles of the per-round ratios: the spread says how far one run's
        // figure can be trusted.
        let ratios = |other: &[f64]| {
            let mut r: Vec<f64> = supervised.iter().zip(other).map(|(s, o)| s / o).collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let at = |q: f64| r[((r.len() - 1) as f64 * q).round() as usize];
            format!("{:.3} (quartiles {:.3}..{:.3})", at(0.5), at(0.25), at(0.75))
        };
        let (s, d, l) = (median(supervised.clone()), median(direct.clone()), median(limited.clone()));
        println!("spawn_to_ready supervised:              median {s:.2}s over {rounds} rounds {supervised:.2?}");
        println!("spawn_to_ready direct, no limits:       median {d:.2}s over {rounds} rounds {direct:.2?}");
        println!("spawn_to_ready direct, same limits:     median {l:.2}s over {rounds} rounds {limited:.2?}");
        println!(
            "spawn_to_ready ratio supervised/direct (no limits):   {:.3} (ratio of medians), median of per-round ratios {}",
            s / d,
            ratios(&direct)
        );
        println!(
            "spawn_to_ready ratio supervised/direct (same limits): {:.3} (ratio of medians), median of per-round ratios {}",
            s / l,
            ratios(&limited)
        );
        println!("start-up boosts applied: {}", boosts.len());
        if let Some(first) = boosts.first() {
            println!("  {first}");
        }

        // Part 2: the daemon's own footprint with 4 idle workers.
        let port = free_port("127.0.0.1").unwrap();
        let state: PathBuf = scratch.path().join("idle");
        let text = department_text(
            "bidle",
            &bootstrap,
            layout.root(),
            &state,
            4,
            port,
            // `run` refuses a department without `[auth]`; the bench reads the admin routes
            // without credentials, as a supervisor behind an authenticating proxy would.
            "[budget]\nmax_workers = 4\ncpu = 4\nmemory = \"2GiB\"\n\
             [auth]\nallow_anonymous = true\nanonymous_role = \"admin\"\n",
        );
        let file = scratch.path().join("idle.toml");
        std::fs::write(&file, text).unwrap();
        let mut daemon = std::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(scratch.path().join("idle.log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/v1/pools");
        let log = || std::fs::read_to_string(scratch.path().join("idle.log")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let ready = match http.get(&url).send().await {
                Ok(r) => r.json::<serde_json::Value>().await.ok().is_some_and(|v| {
                    v["pools"][0]["ready_workers"].as_u64() == Some(4)
                }),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if let Some(status) = daemon.try_wait().unwrap() {
                panic!("the daemon exited ({status}) before its 4 workers were ready:\n{}", log());
            }
            assert!(Instant::now() < deadline, "4 workers not ready in 600 s:\n{}", log());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (cpu0, _) = cpu_and_rss(daemon.id());
        let started = Instant::now();
        let mut peak = 0;
        while started.elapsed() < Duration::from_secs(idle) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(cpu_and_rss(daemon.id()).1);
        }
        let (cpu1, rss) = cpu_and_rss(daemon.id());
        let window = started.elapsed().as_secs_f64();
        println!(
            "daemon idle with 4 workers over {window:.0}s: CPU {:.3}s ({:.2}% of one core), RSS {:.1} MiB (peak {:.1} MiB)",
            cpu1 - cpu0,
            (cpu1 - cpu0) / window * 100.0,
            rss as f64 / 1048576.0,
            peak as f64 / 1048576.0
        );
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = daemon.wait();
        broker.stop().await;
    });
}

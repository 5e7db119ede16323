//! The kubernetes topology as processes on loopback: two `connect-supervisor worker` processes,
//! each in its own cgroup with the limits a pod would have (real kernel enforcement), and one
//! `connect-supervisor run --topology kubernetes` API process that finds them through a static
//! endpoint list (what `--pool-service` resolves to in a cluster).
//!
//! What it shows: the limits the kernel enforces are read back from the worker processes' own
//! cgroup files and the JVMs are sized from them; the managed API works across the two "pods";
//! a killed JVM is restarted in place by its entrypoint; the two pods are one Connect group, and
//! a connector's task moves to the survivor when one pod goes away; the admin routes Kubernetes
//! owns answer with what to do instead.

mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use connect_supervisor::auth::hash_secret;
use connect_supervisor::cgroup::proc;
use connect_supervisor::process::{Output, SpawnSpec, Spawner};
use connect_supervisor::supervisor::free_port;
use harness::{eventually, file_source, kafka_bootstrap, runtime, scratch, unique};
use serde_json::{Value, json};
use tokio::process::Child;

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");
/// What a fresh JVM may take on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(240);
/// The "pod" limits: 1 CPU, 768 MiB.
const POD_MEMORY: u64 = 768 << 20;
const POD_CPU_QUOTA_US: u64 = 100_000;
const CPU_PERIOD_US: u64 = 100_000;
const ADMIN_SECRET: &str = "topology-admin-secret-0123456789abcdef";

/// A pod's cgroups: one folder per v1 hierarchy, made for the test under the test's own
/// cgroups and removed at the end.
struct PodCgroup {
    memory: PathBuf,
    cpu: PathBuf,
}

impl PodCgroup {
    /// Creates the pod's cgroups with its limits, or says why this machine cannot (cgroup v2
    /// only: the harness would need a delegated subtree).
    fn create(name: &str) -> Result<Self, String> {
        let members =
            proc::parse_memberships(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
        let mounts =
            proc::parse_cgroup_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
        let dir = |controller: &str| -> Option<PathBuf> {
            let mount = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
            let member = members
                .iter()
                .find(|m| m.hierarchy != 0 && m.controllers == mount.controllers)?;
            Some(proc::own_dir(mount, &member.path)?.join(name))
        };
        let (Some(memory), Some(cpu)) = (dir("memory"), dir("cpu")) else {
            return Err("no cgroup v1 memory and cpu hierarchies (a cgroup v2 host)".into());
        };
        for d in [&memory, &cpu] {
            std::fs::create_dir_all(d)
                .unwrap_or_else(|e| panic!("cannot create {}: {e} (run as root)", d.display()));
        }
        let write = |path: PathBuf, value: String| {
            std::fs::write(&path, value).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        write(memory.join("memory.limit_in_bytes"), POD_MEMORY.to_string());
        write(cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string());
        write(cpu.join("cpu.cfs_quota_us"), POD_CPU_QUOTA_US.to_string());
        Ok(Self { memory, cpu })
    }

    fn procs(&self) -> Vec<PathBuf> {
        vec![
            self.memory.join("cgroup.procs"),
            self.cpu.join("cgroup.procs"),
        ]
    }

    fn remove(&self) {
        for d in [&self.memory, &self.cpu] {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One worker "pod": the entrypoint process in its cgroup.
struct Pod {
    child: Child,
    rest_port: u16,
    http_port: u16,
    http: String,
    cgroup: PodCgroup,
}

impl Pod {
    async fn start(config: &Path, name: &str, state: &Path) -> Self {
        let cgroup = match PodCgroup::create(name) {
            Ok(c) => c,
            Err(why) => panic!("the loopback pods need cgroup v1 here: {why}"),
        };
        let rest_port = free_port("127.0.0.1").unwrap();
        let http_port = free_port("127.0.0.1").unwrap();
        let mut spec = SpawnSpec::new(
            BIN,
            [
                "worker",
                "--config",
                config.to_str().unwrap(),
                "--pool",
                "shared",
                "--pod-name",
                name,
                "--advertised-host",
                "127.0.0.1",
                "--bind",
                "127.0.0.1",
                "--rest-port",
                &rest_port.to_string(),
                "--listen",
                &format!("127.0.0.1:{http_port}"),
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        spec.cgroup_procs = cgroup.procs();
        spec.output = Output::File(state.with_extension("log"));
        spec.death_signal = nix::sys::signal::Signal::SIGKILL;
        std::fs::create_dir_all(state).unwrap();
        let child = Spawner::global().spawn(spec).await.expect("worker starts");
        Self {
            child,
            rest_port,
            http_port,
            http: format!("http://127.0.0.1:{http_port}"),
            cgroup,
        }
    }

    fn worker_id(&self) -> String {
        format!("127.0.0.1:{}", self.rest_port)
    }

    async fn status(&self) -> Value {
        get(&format!("{}/status", self.http)).await.1
    }

    /// The worker entry of `/status`.
    async fn worker(&self) -> Value {
        self.status().await["pools"][0]["workers"][0].clone()
    }

    async fn wait_ready(&self) {
        eventually(&format!("{} to be ready", self.http), WAIT, || async {
            (get(&format!("{}/readyz", self.http)).await.0 == 200).then_some(())
        })
        .await;
    }
}

async fn get(url: &str) -> (u16, Value) {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn call(method: reqwest::Method, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .basic_auth("ADMIN", Some(ADMIN_SECRET))
        .timeout(Duration::from_secs(60));
    if let Some(body) = body {
        request = request.json(body);
    }
    let r = request.send().await.expect("the API answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Reads `file` of the cgroup `pid` belongs to in the hierarchy mounted at `mount`.
fn cgroup_file_of(pid: u32, controller: &str, file: &str) -> String {
    let members =
        proc::parse_memberships(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
    let mounts =
        proc::parse_cgroup_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let mount = mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
        .unwrap();
    let member = members
        .iter()
        .find(|m| m.hierarchy != 0 && m.controllers == mount.controllers)
        .unwrap();
    let dir = proc::own_dir(mount, &member.path).unwrap();
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn department_toml(id: &str, state: &Path, listen: u16) -> String {
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

[budget]
max_workers = 2
cpu = 2
memory = "2GiB"

[secrets]
mode = "allow"

[logs]
forward = false

[[pools]]
name = "shared"
workers = 2
cpu = 1
memory = "768MiB"
[pools.worker_config]
"plugin.discovery" = "service_load"
"offset.flush.interval.ms" = "1000"
# A pod that goes away for good: its tasks move after 5 s, not Connect's 5 minutes.
"scheduled.rebalance.max.delay.ms" = "5000"

[auth]
[[auth.keys]]
id = "ADMIN"
secret_sha256 = "{hash}"
role = "admin"
"#,
        bootstrap = kafka_bootstrap(),
        runtime = runtime().root().display(),
        state = state.join("api").display(),
        hash = hash_secret(ADMIN_SECRET),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_two_pods_is_one_connect_group_behind_the_kubernetes_api() {
    let id = unique("k");
    let dir = scratch(&format!("{id}-topology"));
    let api_port = free_port("127.0.0.1").unwrap();
    let config = dir.join("department.toml");
    std::fs::write(&config, department_toml(&id, &dir, api_port)).unwrap();
    let mut pods = Vec::new();
    for k in 0..2 {
        let name = format!("cs-topology-{}-{id}-{k}", std::process::id());
        pods.push(Pod::start(&config, &name, &dir.join(format!("pod-{k}"))).await);
    }
    for pod in &pods {
        pod.wait_ready().await;
    }

    // The kernel enforces the pod limits on the JVM: read back from the JVM process's own
    // cgroup files, and the entrypoint sized the JVM from them.
    for pod in &pods {
        let status = pod.status().await;
        assert_eq!(status["pod_limits"]["memory_bytes"], POD_MEMORY, "{status}");
        assert_eq!(status["pod_limits"]["cpu_millis"], 1000, "{status}");
        assert_eq!(status["enforcement"], "cgroup_v1", "{status}");
        let worker = &status["pools"][0]["workers"][0];
        let jvm = worker["pid"].as_u64().expect("the JVM runs") as u32;
        assert_ne!(
            jvm,
            pod.child.id().unwrap(),
            "the JVM is the entrypoint's child"
        );
        assert_eq!(
            cgroup_file_of(jvm, "memory", "memory.limit_in_bytes"),
            POD_MEMORY.to_string()
        );
        assert_eq!(
            cgroup_file_of(jvm, "cpu", "cpu.cfs_quota_us"),
            POD_CPU_QUOTA_US.to_string()
        );
        let cmdline = std::fs::read_to_string(format!("/proc/{jvm}/cmdline"))
            .unwrap()
            .replace('\0', " ");
        assert!(
            cmdline.contains("-Xmx576m"),
            "75% of the pod's memory: {cmdline}"
        );
        assert!(cmdline.contains("-XX:ActiveProcessorCount=1"), "{cmdline}");
        let metrics = reqwest::get(format!("{}/metrics", pod.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("kcs_"),
            "the entrypoint's metrics: {metrics:.300}"
        );
    }

    // The department API, reaching the two pods as the pool's workers.
    let endpoints = pods
        .iter()
        .map(|p| format!("http://127.0.0.1:{}+{}", p.rest_port, p.http_port))
        .collect::<Vec<_>>()
        .join(",");
    let mut api_spec = SpawnSpec::new(
        BIN,
        [
            "run",
            "--config",
            config.to_str().unwrap(),
            "--topology",
            "kubernetes",
            "--pool-endpoints",
            &format!("shared={endpoints}"),
        ],
    );
    api_spec.output = Output::File(dir.join("api.log"));
    api_spec.death_signal = nix::sys::signal::Signal::SIGKILL;
    let mut api = Spawner::global().spawn(api_spec).await.unwrap();
    let base = format!("http://127.0.0.1:{api_port}");
    eventually("the API to be ready", WAIT, || async {
        (get(&format!("{base}/readyz")).await.0 == 200).then_some(())
    })
    .await;
    // The API's view of the pool: the two pods, ready, reached not run.
    let (status, pools) = call(reqwest::Method::GET, &format!("{base}/v1/pools"), None).await;
    assert_eq!(status, 200, "{pools}");
    let workers = pools["pools"][0]["workers"].as_array().unwrap().clone();
    assert_eq!(workers.len(), 2, "{pools}");
    for (worker, pod) in workers.iter().zip(&pods) {
        assert_eq!(
            worker["rest_url"],
            format!("http://127.0.0.1:{}", pod.rest_port),
            "{pools}"
        );
        assert!(
            worker["command"].as_str().unwrap().starts_with("(pod at "),
            "{pools}"
        );
    }
    let managed = format!("{base}/connect/v1/environments/env-{id}/clusters/lkc-{id}");

    // Managed lifecycle across the pods: create, RUNNING, data in the topic.
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let topic = unique(&format!("{id}-lines-"));
    let name = format!("{id}-lines-source");
    let config_map: BTreeMap<String, String> = file_source(&input, &topic);
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{managed}/connectors"),
        Some(&json!({"name": name, "config": config_map})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let state_of = |body: &Value| {
        body["connector"]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let status_url = format!("{managed}/connectors/{name}/status");
    eventually("the connector to be RUNNING", WAIT, || async {
        let (_, body) = call(reqwest::Method::GET, &status_url, None).await;
        (state_of(&body) == "RUNNING").then_some(())
    })
    .await;
    let t = topic.clone();
    let lines =
        tokio::task::spawn_blocking(move || harness::consume(&t, 3, WAIT, Duration::from_secs(1)))
            .await
            .unwrap();
    assert_eq!(lines, vec!["a", "b", "c"]);
    let (status, body) = call(
        reqwest::Method::PUT,
        &format!("{managed}/connectors/{name}/pause"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("the connector to be PAUSED", WAIT, || async {
        let (_, body) = call(reqwest::Method::GET, &status_url, None).await;
        (state_of(&body) == "PAUSED").then_some(())
    })
    .await;
    let (status, _) = call(
        reqwest::Method::PUT,
        &format!("{managed}/connectors/{name}/resume"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    eventually("the connector to be RUNNING again", WAIT, || async {
        let (_, body) = call(reqwest::Method::GET, &status_url, None).await;
        (state_of(&body) == "RUNNING").then_some(())
    })
    .await;

    // The API re-exposes both pods' Connect metrics (scraped from their entrypoints).
    eventually("both pods' Connect metrics on the API", WAIT, || async {
        let text = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .basic_auth("ADMIN", Some(ADMIN_SECRET))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let connect: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kafka_connect_"))
            .collect();
        let both = ["shared-0", "shared-1"].iter().all(|w| {
            connect
                .iter()
                .any(|l| l.contains(&format!("worker=\"{w}\"")))
        });
        both.then_some(())
    })
    .await;

    // One Connect group: both pods see the connector, and its task runs on one of them.
    let task_owner = || async {
        let (_, body) = get(&format!(
            "http://127.0.0.1:{}/connectors/{name}/status",
            pods[1].rest_port
        ))
        .await;
        let task = &body["tasks"][0];
        (task["state"] == "RUNNING").then(|| task["worker_id"].as_str().unwrap().to_string())
    };
    let owner = eventually("the task to run", WAIT, task_owner).await;
    for pod in &pods {
        let (status, body) = get(&format!(
            "http://127.0.0.1:{}/connectors/{name}/status",
            pod.rest_port
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tasks"][0]["worker_id"], owner.as_str());
    }
    assert!(
        pods.iter().any(|p| p.worker_id() == owner),
        "{owner} is one of the pods"
    );

    // Kubernetes owns scaling: the admin route says which chart value to change.
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v1/pools/shared/scale"),
        Some(&json!({"workers": 3})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("worker.pools.shared.replicas"),
        "{body}"
    );

    // A killed JVM is restarted in place by its entrypoint: same entrypoint, new JVM.
    let victim = &pods[0];
    let before = victim.worker().await;
    let old_jvm = before["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_jvm),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let after = eventually("the JVM to be restarted in place", WAIT, || async {
        let w = victim.worker().await;
        let restarted = w["restarts"].as_u64() > before["restarts"].as_u64()
            && w["pid"].as_u64().is_some_and(|p| p as i32 != old_jvm)
            && w["state"]
                .as_str()
                .is_some_and(|s| s == "ready" || s == "running");
        restarted.then_some(w)
    })
    .await;
    // Killed by a signal from outside: not an OOM kill (the cgroup's counter did not move).
    assert!(after["last_exit"]["reason"].is_string(), "{after}");
    assert_ne!(after["last_exit"]["reason"], "oom_killed", "{after}");
    victim.wait_ready().await;
    let new_jvm = after["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        cgroup_file_of(new_jvm, "memory", "memory.limit_in_bytes"),
        POD_MEMORY.to_string(),
        "the new JVM is in the pod's cgroup too"
    );

    // The pod running the task goes away: the task moves to the survivor.
    let owner = eventually("the task to run", WAIT, task_owner).await;
    let gone = pods.iter().position(|p| p.worker_id() == owner).unwrap();
    let survivor = 1 - gone;
    let gone_pid = pods[gone].child.id().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gone_pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exit = tokio::time::timeout(WAIT, pods[gone].child.wait())
        .await
        .expect("the entrypoint stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    let survivor_id = pods[survivor].worker_id();
    // The managed API names the supervisor's worker (`shared-1`), not its address.
    let survivor_name = workers
        .iter()
        .find(|w| w["rest_url"] == format!("http://{survivor_id}"))
        .and_then(|w| w["id"].as_str())
        .unwrap_or_else(|| panic!("no worker at {survivor_id} in the API's pools"))
        .to_string();
    let survivor_port = pods[survivor].rest_port;
    eventually("the task to move to the surviving pod", WAIT, || async {
        let (_, body) = get(&format!(
            "http://127.0.0.1:{survivor_port}/connectors/{name}/status"
        ))
        .await;
        let task = &body["tasks"][0];
        (task["worker_id"] == survivor_id.as_str() && task["state"] == "RUNNING").then_some(())
    })
    .await;
    eventually(
        "the managed status to be RUNNING on the survivor",
        WAIT,
        || async {
            let (_, body) = call(reqwest::Method::GET, &status_url, None).await;
            (state_of(&body) == "RUNNING"
                && body["tasks"][0]["worker_id"] == survivor_name.as_str())
            .then_some(())
        },
    )
    .await;
    // The survivor's task carries on from the committed offsets: a new line gets through.
    std::fs::write(&input, "a\nb\nc\nd\n").unwrap();
    eventually("the new line in the topic", WAIT, || async {
        let t = topic.clone();
        let lines = tokio::task::spawn_blocking(move || {
            harness::consume(&t, 3, WAIT, Duration::from_secs(2))
        })
        .await
        .unwrap();
        lines.contains(&"d".to_string()).then_some(())
    })
    .await;

    // Delete through the managed API, then stop everything.
    let (status, body) = call(
        reqwest::Method::DELETE,
        &format!("{managed}/connectors/{name}"),
        None,
    )
    .await;
    assert!(matches!(status, 200 | 204), "{status} {body}");
    eventually("the connector to be gone", WAIT, || async {
        (call(reqwest::Method::GET, &status_url, None).await.0 == 404).then_some(())
    })
    .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(api.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::time::timeout(WAIT, api.wait()).await;
    let survivor_pid = pods[survivor].child.id().unwrap() as i32;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(survivor_pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::time::timeout(WAIT, pods[survivor].child.wait()).await;
    for pod in &pods {
        pod.cgroup.remove();
    }
}

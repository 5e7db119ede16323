//! The container image: built with images/build.sh (mmdebstrap base, this build's binary), then
//! run with podman on the host network against the test broker as a department of the
//! kubernetes topology: two worker containers (each with pod-like `--memory`/`--cpus` limits)
//! and the API container. The workers size themselves from their container's cgroup, a
//! FileStreamSource runs to a topic and the managed API reports it RUNNING; every container
//! runs as uid 10001 with a read-only root filesystem.
//!
//! Needs podman and mmdebstrap (.ci/run installs them); a missing one fails with how to install.

mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use connect_supervisor::auth::hash_secret;
use connect_supervisor::supervisor::free_port;
use harness::{PROJECT, eventually, file_source, kafka_bootstrap, scratch, unique};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");
const WAIT: Duration = Duration::from_secs(240);
const ADMIN_SECRET: &str = "image-admin-secret-0123456789abcdef0123";
const IMAGE_UID: u32 = 10001;
const INSTALL: &str = "apt-get install -y --no-install-recommends podman buildah crun runc \
                       fuse-overlayfs mmdebstrap uidmap";

fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; install it with: {INSTALL}"
    );
}

/// Global podman flags for this machine: crun refuses hybrid cgroup hosts (v1 controllers and a
/// unified mount, as here), runc does not (as images/build.sh decides).
fn runtime_flags() -> Vec<&'static str> {
    if Path::new("/sys/fs/cgroup/unified").is_dir() {
        need("runc");
        vec!["--runtime", "runc"]
    } else {
        Vec::new()
    }
}

/// `podman run` limits podman may set without CAP_SYS_RESOURCE: its defaults (1048576) are above
/// this process's hard limits.
fn ulimit_flags() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .nth(1)
                    .map(str::to_string)
            })
            .unwrap()
    };
    let nofile = hard("Max open files");
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        "nproc=4096:4096".into(),
    ]
}

fn podman(args: &[&str]) -> (bool, String) {
    let out = Command::new("podman")
        .args(runtime_flags())
        .args(args)
        .output()
        .expect("podman runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Containers of this test, removed whatever happens.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = podman(&["rm", "--force", "--time", "5", name]);
        }
    }
}

async fn get(url: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    match client
        .get(url)
        .basic_auth("ADMIN", Some(ADMIN_SECRET))
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

/// A folder the image's user may write, shared with a container.
fn owned_dir(path: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&path).unwrap();
    std::os::unix::fs::chown(&path, Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_image_runs_a_kubernetes_department_as_non_root_with_a_read_only_root() {
    need("podman");
    need("mmdebstrap");
    let id = unique("img");
    let dir = scratch(&format!("{id}-image"));
    let tag = format!("localhost/connect-supervisor:test-{}", std::process::id());
    let archive = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{id}.oci.tar"));

    // Build: this test binary's connect-supervisor, the runtime the tests use.
    let out = Command::new(Path::new(PROJECT).join("images/build.sh"))
        .args(["--binary", BIN, "--tag", &tag, "--output"])
        .arg(&archive)
        .arg("--runtime")
        .arg(harness::runtime().root())
        .current_dir(PROJECT)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "images/build.sh failed:\n{log}");
    println!("{log}");
    assert!(
        archive.metadata().unwrap().len() > 1 << 20,
        "the OCI archive"
    );
    let (_, user) = podman(&["image", "inspect", "--format", "{{.Config.User}}", &tag]);
    assert_eq!(user.trim(), format!("{IMAGE_UID}:{IMAGE_UID}"));

    // The department, mounted read-only into every container.
    let api_port = free_port("127.0.0.1").unwrap();
    let data = owned_dir(dir.join("data"));
    let input = data.join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let department = format!(
        r#"
[department]
id = "{id}"
environment_id = "env-{id}"
kafka_cluster_id = "lkc-{id}"
[kafka]
bootstrap_servers = "{bootstrap}"
internal_topic_replication_factor = 1
[runtime]
dir = "/opt/connect-runtime"
[supervisor]
listen = "127.0.0.1:{api_port}"
state_dir = "/var/lib/connect-supervisor"
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
[auth]
[[auth.keys]]
id = "ADMIN"
secret_sha256 = "{hash}"
role = "admin"
"#,
        bootstrap = kafka_bootstrap(),
        hash = hash_secret(ADMIN_SECRET),
    );
    let config = dir.join("department.toml");
    std::fs::write(&config, department).unwrap();
    let config_mount = format!(
        "{}:/etc/connect-supervisor/department.toml:ro",
        config.display()
    );
    let data_mount = format!("{}:/data:ro", data.display());

    let mut containers = Containers(Vec::new());
    let mut ports = Vec::new();
    for k in 0..2 {
        let name = format!("cs-test-{id}-worker-{k}");
        let (rest, http) = (
            free_port("127.0.0.1").unwrap(),
            free_port("127.0.0.1").unwrap(),
        );
        let state = owned_dir(dir.join(format!("state-{k}")));
        let state_mount = format!("{}:/var/lib/connect-supervisor", state.display());
        let (rest_s, listen) = (rest.to_string(), format!("127.0.0.1:{http}"));
        containers.0.push(name.clone());
        let ulimits = ulimit_flags();
        let mut args: Vec<&str> = vec!["run"];
        args.extend(ulimits.iter().map(String::as_str));
        args.extend([
            "--detach",
            "--name",
            &name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--memory",
            "768m",
            "--cpus",
            "1",
            "--volume",
            &config_mount,
            "--volume",
            &data_mount,
            "--volume",
            &state_mount,
            &tag,
            "worker",
            "--config",
            "/etc/connect-supervisor/department.toml",
            "--pool",
            "shared",
            "--pod-name",
            &name,
            "--advertised-host",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
            "--rest-port",
            &rest_s,
            "--listen",
            &listen,
        ]);
        let (ok, out) = podman(&args);
        assert!(ok, "podman run worker: {out}");
        ports.push((name, rest, http));
    }
    for (name, _, http) in &ports {
        eventually(&format!("{name} to be ready"), WAIT, || async {
            (get(&format!("http://127.0.0.1:{http}/readyz")).await.0 == 200).then_some(())
        })
        .await;
        // The limits of the container's cgroup size the JVM.
        let (_, status) = get(&format!("http://127.0.0.1:{http}/status")).await;
        assert_eq!(
            status["pod_limits"]["memory_bytes"],
            768u64 << 20,
            "{status}"
        );
        assert_eq!(status["pod_limits"]["cpu_millis"], 1000, "{status}");
        // The JVM maps the image's class-data-sharing archive (made at build time).
        let (_, maps) = podman(&[
            "exec",
            name,
            "sh",
            "-c",
            "cat /proc/[0-9]*/maps 2>/dev/null | grep -c connect-worker.jsa",
        ]);
        assert!(
            maps.trim().parse::<u32>().unwrap_or(0) > 0,
            "the worker JVM maps the CDS archive: {maps}"
        );
        // Non-root, read-only root filesystem.
        let (_, uid) = podman(&["exec", name, "id", "-u"]);
        assert_eq!(uid.trim(), IMAGE_UID.to_string());
        let (wrote, out) = podman(&["exec", name, "touch", "/usr/local/bin/x"]);
        assert!(!wrote && out.contains("Read-only"), "{out}");
        let (_, ro) = podman(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}}",
            name,
        ]);
        assert_eq!(ro.trim(), "true");
    }

    // The API role, reaching the two worker containers.
    let endpoints = ports
        .iter()
        .map(|(_, rest, _)| format!("http://127.0.0.1:{rest}"))
        .collect::<Vec<_>>()
        .join(",");
    let api_name = format!("cs-test-{id}-api");
    containers.0.push(api_name.clone());
    let api_state = owned_dir(dir.join("state-api"));
    let api_state_mount = format!("{}:/var/lib/connect-supervisor", api_state.display());
    let pool_endpoints = format!("shared={endpoints}");
    let ulimits = ulimit_flags();
    let mut args: Vec<&str> = vec!["run"];
    args.extend(ulimits.iter().map(String::as_str));
    args.extend([
        "--detach",
        "--name",
        &api_name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--volume",
        &config_mount,
        "--volume",
        &api_state_mount,
        &tag,
        "run",
        "--config",
        "/etc/connect-supervisor/department.toml",
        "--topology",
        "kubernetes",
        "--pool-endpoints",
        &pool_endpoints,
    ]);
    let (ok, out) = podman(&args);
    assert!(ok, "podman run api: {out}");
    let base = format!("http://127.0.0.1:{api_port}");
    eventually("the API container to be ready", WAIT, || async {
        (get(&format!("{base}/readyz")).await.0 == 200).then_some(())
    })
    .await;
    let (_, uid) = podman(&["exec", &api_name, "id", "-u"]);
    assert_eq!(uid.trim(), IMAGE_UID.to_string());

    // A FileStreamSource to a topic, RUNNING through the managed API.
    let topic = unique(&format!("{id}-lines-"));
    let name = format!("{id}-lines-source");
    let config_map = file_source(Path::new("/data/in.txt"), &topic);
    let managed = format!("{base}/connect/v1/environments/env-{id}/clusters/lkc-{id}");
    let created = reqwest::Client::new()
        .post(format!("{managed}/connectors"))
        .basic_auth("ADMIN", Some(ADMIN_SECRET))
        .json(&json!({"name": name, "config": config_map}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status().as_u16(),
        201,
        "{}",
        created.text().await.unwrap()
    );
    eventually("the connector to be RUNNING", WAIT, || async {
        let (_, body) = get(&format!("{managed}/connectors/{name}/status")).await;
        (body["connector"]["state"] == "RUNNING" && body["tasks"][0]["state"] == "RUNNING")
            .then_some(())
    })
    .await;
    let t = topic.clone();
    let lines =
        tokio::task::spawn_blocking(move || harness::consume(&t, 3, WAIT, Duration::from_secs(1)))
            .await
            .unwrap();
    assert_eq!(lines, vec!["a", "b", "c"]);
    drop(containers);
    let _ = podman(&["rmi", "--force", &tag]);
    let _ = std::fs::remove_file(&archive);
}

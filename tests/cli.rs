//! The binary as users run it: `check-config` exit codes and the `dev` command's whole life
//! (runtime, embedded broker, workers answering, SIGINT leaving nothing behind).

mod harness;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{runtime, scratch};

const BIN: &str = env!("CARGO_BIN_EXE_connect-supervisor");

#[test]
fn a_bad_department_file_prints_every_problem_with_its_path_and_exits_78() {
    let dir = scratch("badcfg");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[department]\nid = \"Dept-1\"\nenvironment_id = \"e\"\nkafka_cluster_id = \"k\"\n\
         [kafka]\nbootstrap_servers = \"b:9092\"\n[[pools]]\nname = \"p\"\ncpu = 0\nmemory = \"12XB\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "3 problems",
        "department.id",
        "pools[0].cpu",
        "pools[0].memory",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
    let ok = Command::new(BIN)
        .arg("check-config")
        .arg(Path::new(harness::PROJECT).join("examples/department.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
}

#[test]
fn check_config_refuses_jvm_options_that_take_the_heap_past_the_memory_limit() {
    let dir = scratch("jvmopts");
    let file = dir.join("heap.toml");
    std::fs::write(
        &file,
        "[department]\nid = \"d1\"\nenvironment_id = \"e\"\nkafka_cluster_id = \"k\"\n\
         [kafka]\nbootstrap_servers = \"b:9092\"\n[[pools]]\nname = \"p\"\ncpu = 1\n\
         memory = \"256MiB\"\njvm_options = [\"-XX:+UseG1GC\", \"-Xmx512m\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["pools[0].jvm_options", "512MiB", "256MiB", "-Xmx"] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
}

#[test]
fn run_refuses_a_department_without_auth_and_new_key_entries_are_accepted() {
    let dir = scratch("auth");
    let base = "[department]\nid = \"d1\"\nenvironment_id = \"e\"\nkafka_cluster_id = \"k\"\n\
        [kafka]\nbootstrap_servers = \"b:9092\"\n[[pools]]\nname = \"p\"\ncpu = 1\nmemory = \"512MiB\"\n";
    let open = dir.join("open.toml");
    std::fs::write(&open, base).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&open)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[auth]") && err.contains("allow_anonymous"),
        "{err}"
    );
    let check = Command::new(BIN)
        .arg("check-config")
        .arg(&open)
        .output()
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("warning: auth"));

    let key = Command::new(BIN)
        .args(["new-key", "--role", "admin"])
        .output()
        .unwrap();
    assert!(key.status.success(), "{key:?}");
    let token = Command::new(BIN)
        .args(["new-key", "--role", "viewer", "--token", "ci"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let (key, token) = (
        String::from_utf8_lossy(&key.stdout).into_owned(),
        String::from_utf8_lossy(&token.stdout).into_owned(),
    );
    let secret = key
        .lines()
        .find_map(|l| l.strip_prefix("#   secret: "))
        .expect("the secret is printed once");
    let entries: String = [&key, &token]
        .iter()
        .flat_map(|t| t.lines().filter(|l| !l.starts_with('#')))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !entries.contains(secret),
        "the entry holds the digest, not the secret"
    );
    let with_auth = dir.join("auth.toml");
    std::fs::write(&with_auth, format!("{base}\n{entries}")).unwrap();
    let check = Command::new(BIN)
        .arg("check-config")
        .arg(&with_auth)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}\n{entries}");
    assert!(!String::from_utf8_lossy(&check.stderr).contains("warning"));

    let bad = Command::new(BIN)
        .args(["new-key", "--role", "root"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));
    let mut short = Command::new(BIN)
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    short.stdin.take().unwrap().write_all(b"short\n").unwrap();
    assert_eq!(short.wait_with_output().unwrap().status.code(), Some(64));
    let mut long = Command::new(BIN)
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    long.stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    let out = long.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        connect_supervisor::auth::hash_secret(secret)
    );
}

#[test]
fn unknown_arguments_exit_64() {
    let out = Command::new(BIN).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_brings_up_broker_and_workers_and_sigint_leaves_nothing_behind() {
    let runtime = runtime();
    let dir = scratch("dev");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let config = dir.join("department.toml");
    std::fs::write(
        &config,
        format!(
            "[department]\nid = \"devtest\"\nenvironment_id = \"env-devtest\"\nkafka_cluster_id = \"lkc-devtest\"\n\
             [kafka]\nbootstrap_servers = \"replaced-by-dev:9092\"\n\
             [runtime]\ndir = \"{}\"\n\
             [[pools]]\nname = \"shared\"\nworkers = 2\ncpu = 1\nmemory = \"512MiB\"\n\
             [pools.worker_config]\n\"plugin.discovery\" = \"service_load\"\n",
            runtime.root().display()
        ),
    )
    .unwrap();
    let listen = format!(
        "127.0.0.1:{}",
        connect_supervisor::supervisor::free_port("127.0.0.1").unwrap()
    );
    let mut child = Command::new(BIN)
        .args(["dev", "--config"])
        .arg(&config)
        .args(["--listen", &listen])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut banner = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("dev printed its banner");
        let done = line.contains("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let up_in = started.elapsed();
    let text = banner.join("\n");
    assert!(text.contains("Kafka broker"), "{text}");
    assert!(text.contains(&format!("http://{listen}")), "{text}");
    let worker_urls: Vec<String> = banner
        .iter()
        .filter(|l| l.trim_start().starts_with("worker "))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(worker_urls.len(), 2, "{text}");

    // The banner hands out a generated admin key; without it the API answers 401.
    let field = |label: &str| {
        banner
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {label} in the banner:\n{text}"))
            .to_string()
    };
    let (key, secret) = (field("admin API key"), field("admin API secret"));
    assert_eq!(key.len(), 16, "{text}");
    assert_eq!(secret.len(), 64, "{text}");
    assert!(text.contains("export CS_URL="), "{text}");
    // ... and the Confluent CLI's login with it, which works as printed.
    let login_url = format!("http://{listen}/confluent.cloud");
    assert!(
        text.contains(&format!("confluent login --url {login_url}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "export CONFLUENT_CLOUD_EMAIL={key} CONFLUENT_CLOUD_PASSWORD={secret}"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "confluent environment use env-devtest && confluent kafka cluster use lkc-devtest"
        ),
        "{text}"
    );
    assert!(text.contains("api.logging.127.0.0.1"), "{text}");

    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!(
            "http://{listen}/connect/v1/environments/env-devtest/clusters/lkc-devtest/connectors"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let listed: serde_json::Value = http
        .get(format!(
            "http://{listen}/connect/v1/environments/env-devtest/clusters/lkc-devtest/connectors"
        ))
        .basic_auth(&key, Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let session: serde_json::Value = http
        .post(format!("http://{listen}/api/sessions"))
        .json(&serde_json::json!({"email": key, "password": secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let through_session = http
        .get(format!(
            "http://{listen}/api/connect/v1/environments/env-devtest/clusters/lkc-devtest/connectors"
        ))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(through_session.status(), 200);

    // The banner's dashboard URL: open it, sign in with the printed key, see the department.
    let dashboard = format!("http://{listen}/ui/");
    assert!(
        banner
            .iter()
            .any(|l| l.trim_start().starts_with("dashboard") && l.contains(&dashboard)),
        "{text}"
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(format!("http://{listen}/ui/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let form = form.text().await.unwrap();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-in form carries a CSRF token");
    let signed_in = browser
        .post(format!("http://{listen}/ui/login"))
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&key={key}&secret={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cs_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let overview = browser
        .get(&dashboard)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    let overview = overview.text().await.unwrap();
    assert!(
        overview.contains("Pool shared: 2 of 2 workers ready"),
        "{overview}"
    );
    for url in &worker_urls {
        let info: serde_json::Value = http
            .get(format!("{url}/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            info["version"].as_str().unwrap().starts_with("4."),
            "{info}"
        );
    }
    let status: serde_json::Value = http
        .get(format!("http://{listen}/"))
        .basic_auth(&key, Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pids: Vec<u32> = status["pools"][0]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(pids.len(), 2, "{status}");
    assert!(
        std::fs::read_dir(&tmp).unwrap().count() >= 1,
        "dev keeps its state in TMPDIR"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "dev did not stop within 60 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "dev exits 0 after SIGINT: {status:?}");
    for pid in pids {
        assert!(!alive(pid), "worker {pid} outlived dev");
    }
    let tmp_text = tmp.display().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&tmp_text) && c.contains("java"))
        .collect();
    assert!(
        survivors.is_empty(),
        "java processes outlived dev: {survivors:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "dev left temporary files: {left:?}");
    eprintln!("dev was up in {up_in:?}");
}

/// Java processes whose command line mentions `marker` (a test's own temporary folder), not
/// zombies.
fn java_processes(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .is_ok_and(|c| c.contains(marker) && c.contains("java"))
                && alive(*pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_from_a_relative_config_path_runs_and_a_sigkill_leaves_no_jvm_within_2s_under_load() {
    let runtime = runtime();
    let dir = scratch("devkill");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Every path relative: the runtime folder in the file (relative to the file's folder) and
    // the file on the command line (relative to the working directory).
    std::os::unix::fs::symlink(runtime.root(), dir.join("rt")).unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(
        dir.join("conf/department.toml"),
        "[department]\nid = \"devkill\"\nenvironment_id = \"env-devkill\"\nkafka_cluster_id = \"lkc-devkill\"\n\
         [kafka]\nbootstrap_servers = \"replaced-by-dev:9092\"\n\
         [runtime]\ndir = \"../rt\"\n\
         [[pools]]\nname = \"shared\"\nworkers = 2\ncpu = 1\nmemory = \"512MiB\"\n\
         [pools.worker_config]\n\"plugin.discovery\" = \"service_load\"\n",
    )
    .unwrap();
    let port = connect_supervisor::supervisor::free_port("127.0.0.1").unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "dev",
            "--config",
            "conf/department.toml",
            "--listen",
            &listen,
        ])
        .current_dir(&dir)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(240))
            .expect("dev printed its banner");
        let done = line.contains("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let field = |label: &str| {
        banner
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {label} in the banner:\n{}", banner.join("\n")))
            .to_string()
    };
    let (key, secret) = (field("admin API key"), field("admin API secret"));
    let http = reqwest::Client::new();
    let pools: serde_json::Value = http
        .get(format!("http://{listen}/v1/pools"))
        .basic_auth(&key, Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for w in pools["pools"][0]["workers"].as_array().unwrap() {
        assert!(
            ["ready", "running"].contains(&w["state"].as_str().unwrap()) && w["launches"] == 1,
            "a worker from a relative --config is not up at its first launch: {w:#}"
        );
        assert!(
            w["command"]
                .as_str()
                .unwrap()
                .contains(&format!("{}/connect", dir.join("conf/../rt").display())),
            "the class path is absolute: {w:#}"
        );
    }

    // A running pipeline: a source task producing into the embedded broker.
    let input = dir.join("input.txt");
    std::fs::write(
        &input,
        (0..200_000)
            .map(|i| format!("line {i}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let connectors = format!(
        "http://{listen}/connect/v1/environments/env-devkill/clusters/lkc-devkill/connectors"
    );
    let created = http
        .post(&connectors)
        .basic_auth(&key, Some(&secret))
        .json(&serde_json::json!({
            "name": "devkill-lines-source-dev-001",
            "config": {"connector.class": "FileStreamSource", "file": input.display().to_string(),
                       "topic": "devkill-lines", "tasks.max": "1"}
        }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);
    harness::eventually("the source task running", Duration::from_secs(120), || {
        let (http, key, secret) = (http.clone(), key.clone(), secret.clone());
        let url = format!("{connectors}/devkill-lines-source-dev-001/status");
        async move {
            let s: serde_json::Value = http
                .get(url)
                .basic_auth(&key, Some(&secret))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (s["tasks"][0]["state"] == "RUNNING").then_some(())
        }
    })
    .await;
    let marker = tmp.display().to_string();
    let jvms = java_processes(&marker);
    assert_eq!(jvms.len(), 3, "the broker and two workers: {jvms:?}");

    // Under CPU load (a busy loop per core), SIGKILL the supervisor.
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut load: Vec<_> = (0..cores)
        .map(|_| {
            Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut left = java_processes(&marker);
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        left = java_processes(&marker);
    }
    let took = killed.elapsed();
    for l in &mut load {
        let _ = l.kill();
        let _ = l.wait();
    }
    for pid in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        left.is_empty(),
        "JVMs alive 2 s after a SIGKILL of dev under load: {left:?}"
    );
    println!("0 JVMs {took:?} after the SIGKILL of dev, under load");
}

//! Supervision mechanics with fake workers (tiny shell scripts instead of the JVM): stop
//! escalation, whole-tree kill, crash-loop hold counted by launches, liveness watchdog, the
//! degraded-mode memory watch, OOM kills by the real kernel, scaling against the budget and the
//! admin API. cgroups are the machine's real ones (v1 here); the degraded-mode tests force
//! `supervision.cgroups = "off"`.

mod harness;

use std::time::{Duration, Instant};

use connect_supervisor::cgroup::Enforcement;
use connect_supervisor::supervisor::lifecycle::{ExitReason, WorkerPhase as Phase};
use harness::supervision::*;
use serde_json::Value;

const FAST: &str = r#"
stop_grace = "1s"
backoff_min = "100ms"
backoff_max = "400ms"
health_interval = "200ms"
health_failures = 2
sample_interval = "200ms"
"#;

const BUDGET: &str = "max_workers = 4\ncpu = 4\nmemory = \"1GiB\"";

fn pool(name: &str, workers: u32, memory: &str) -> String {
    format!(
        "[[pools]]\nname = \"{name}\"\nworkers = {workers}\ncpu = 0.5\nmemory = \"{memory}\"\npids = 128\n"
    )
}

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let (d, _) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let sup = start_fake(
        d,
        script("trap '' TERM; touch \"$CS_READY_FILE\"; while :; do sleep 0.1; done"),
    )
    .await;
    sup.wait_until_ready(T).await.unwrap();
    let pid = worker(&sup, "p-0").pid.unwrap();
    let started = Instant::now();
    sup.shutdown().await;
    let took = started.elapsed();
    assert!(!alive(pid), "the worker survived its stop");
    assert!(
        took >= Duration::from_secs(1),
        "killed before the 1 s grace period ended ({took:?})"
    );
    assert!(took < Duration::from_secs(6), "the stop took {took:?}");
    let w = worker(&sup, "p-0");
    assert_eq!(w.state, Phase::Stopped);
    assert_eq!(w.last_exit, Some(ExitReason::Shutdown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_forked_grandchild_dies_with_its_worker() {
    // The grandchild leaves the worker's process group (setsid) and is orphaned: only the
    // cgroup still knows it belongs to the worker.
    let (d, state) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let sup = start_fake(
        d,
        script(
            "(setsid sh -c 'echo $$ > \"$CS_WORKER_DIR/grandchild\"; exec sleep 300' &); \
             touch \"$CS_READY_FILE\"; exec sleep 300",
        ),
    )
    .await;
    assert_eq!(
        sup.enforcement(),
        Enforcement::CgroupV1,
        "this machine has writable v1 cgroups"
    );
    sup.wait_until_ready(T).await.unwrap();
    let file = state.join("workers/p-0/grandchild");
    let grandchild: u32 = harness::eventually("the grandchild's pid", T, || {
        let file = file.clone();
        async move { std::fs::read_to_string(&file).ok()?.trim().parse().ok() }
    })
    .await;
    assert!(alive(grandchild));
    let leaf = worker(&sup, "p-0").cgroup;
    let procs: Vec<String> = leaf
        .iter()
        .flat_map(|dir| lines(&std::path::Path::new(dir).join("cgroup.procs")))
        .collect();
    assert!(
        procs.contains(&grandchild.to_string()),
        "the grandchild is in the worker's cgroup: {procs:?} ({leaf:?})"
    );
    // A restart kills the whole tree, not just the group.
    sup.restart_worker("p-0").unwrap();
    wait_gone(grandchild, Duration::from_secs(10)).await;
    wait_worker(&sup, "p-0", "ready again", T, |w| {
        w.state.is_up() && w.launches == 2
    })
    .await;
    let second: u32 = harness::eventually("the new grandchild's pid", T, || {
        let file = file.clone();
        async move {
            let pid: u32 = std::fs::read_to_string(&file).ok()?.trim().parse().ok()?;
            (pid != grandchild).then_some(pid)
        }
    })
    .await;
    sup.shutdown().await;
    wait_gone(second, Duration::from_secs(5)).await;
    for dir in leaf {
        assert!(
            !std::path::Path::new(&dir).exists(),
            "leaf {dir} removed at shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_the_process_group_is_killed() {
    let (d, state) = fake_department(
        &pool("p", 1, "64MiB"),
        &format!("{FAST}\ncgroups = \"off\""),
        BUDGET,
    );
    let sup = start_fake(
        d,
        script("(sleep 300 & echo $! > \"$CS_WORKER_DIR/grandchild\"); touch \"$CS_READY_FILE\"; exec sleep 300"),
    )
    .await;
    assert_eq!(sup.enforcement(), Enforcement::None);
    assert!(sup.degraded_reason().unwrap().contains("off"));
    sup.wait_until_ready(T).await.unwrap();
    let file = state.join("workers/p-0/grandchild");
    let grandchild: u32 = harness::eventually("the grandchild's pid", T, || {
        let file = file.clone();
        async move { std::fs::read_to_string(&file).ok()?.trim().parse().ok() }
    })
    .await;
    sup.shutdown().await;
    wait_gone(grandchild, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_exits_at_once_is_held_after_the_configured_failures() {
    let (d, state) = fake_department(
        &pool("p", 1, "64MiB"),
        &format!("{FAST}\nmax_failures = 3\nfailure_window = \"1m\""),
        BUDGET,
    );
    let launches = state.join("launches");
    let sup = start_fake(
        d,
        script(&format!("echo launch >> '{}'; exit 3", launches.display())),
    )
    .await;
    let held = wait_worker(&sup, "p-0", "held", T, |w| w.state == Phase::Held).await;
    assert_eq!(held.last_exit, Some(ExitReason::ExitCode { code: 3 }));
    assert_eq!(held.failures_in_window, 3);
    // Held means no more launches, however long we wait: the worker has no process and no
    // restart scheduled (its lifecycle launches only at a scheduled restart or when cleared).
    assert_no_restart_scheduled(&held);
    assert_eq!(
        lines(&launches).len(),
        3,
        "initial launch + 2 restarts, then held"
    );
    let events: Vec<&str> = sup
        .observer()
        .events()
        .recent(100)
        .iter()
        .map(|e| e.event)
        .collect();
    assert!(events.contains(&"worker_held"), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == "restart_scheduled").count(),
        2
    );
    // Clearing resets the budget: three more launches, held again.
    sup.clear_worker("p-0").unwrap();
    harness::eventually("3 more launches", T, || {
        let launches = launches.clone();
        async move { (lines(&launches).len() >= 6).then_some(()) }
    })
    .await;
    let held = wait_worker(&sup, "p-0", "held again", T, |w| w.state == Phase::Held).await;
    assert_no_restart_scheduled(&held);
    assert_eq!(lines(&launches).len(), 6);
    let metrics = sup.observer().metrics().encode();
    assert!(
        metrics.contains("kcs_worker_state{pool=\"p\",state=\"held\",worker=\"p-0\""),
        "{metrics}"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_by_hand_after_a_stable_run_restarts_at_once_and_a_second_kill_backs_off() {
    // A 3 s first backoff would be unmistakable; the stable kill must not wait for it.
    let (d, _) = fake_department(
        &pool("p", 1, "64MiB"),
        "stop_grace = \"1s\"\nbackoff_min = \"3s\"\nbackoff_max = \"30s\"\nstable_after = \"300ms\"\n\
         health_interval = \"200ms\"",
        BUDGET,
    );
    let sup = start_fake(d, script("touch \"$CS_READY_FILE\"; exec sleep 300")).await;
    let first = wait_worker(&sup, "p-0", "running", T, |w| w.state == Phase::Running).await;
    let pid = first.pid.unwrap();
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let again = wait_worker(&sup, "p-0", "restarted", T, |w| {
        w.pid.is_some_and(|p| p != pid) && w.state.is_up()
    })
    .await;
    let took = killed.elapsed();
    println!("kill after a stable run -> ready again in {took:?}");
    assert!(
        took < Duration::from_millis(2500),
        "waited {took:?}: a backoff applied"
    );
    assert_eq!(again.last_exit, Some(ExitReason::Signal { signal: 9 }));
    assert_eq!(again.restarts, 1);
    // A second kill before it is stable again is the start of a loop: it backs off (2 x 3 s).
    let pid = again.pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let backoff = wait_worker(&sup, "p-0", "in backoff", T, |w| w.state == Phase::Backoff).await;
    let delay = backoff.restart_in_seconds.unwrap();
    assert!((4.0..=7.3).contains(&delay), "second delay {delay} s");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_answering_is_restarted_by_the_watchdog() {
    let (d, _) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let sup = start_fake(
        d,
        script("touch \"$CS_READY_FILE\"; sleep 1; rm \"$CS_READY_FILE\"; exec sleep 300"),
    )
    .await;
    let w = wait_worker(&sup, "p-0", "restarted by the watchdog", T, |w| {
        w.last_exit.is_some()
    })
    .await;
    assert_eq!(w.last_exit, Some(ExitReason::LivenessFailed));
    let events = sup.observer().events().recent(100);
    let misses = events
        .iter()
        .filter(|e| e.event == "worker_unresponsive")
        .count();
    assert_eq!(misses, 2, "restarted after exactly k = 2 failed checks");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_degraded_mode_a_worker_over_its_memory_is_restarted() {
    let (d, _) = fake_department(
        &pool("p", 1, "64MiB"),
        &format!("{FAST}\ncgroups = \"off\""),
        BUDGET,
    );
    // The worker grows a string to about 130 MB and keeps it.
    let sup = start_fake(
        d,
        script(
            "touch \"$CS_READY_FILE\"; exec awk 'BEGIN { s = \"x\"; while (length(s) < 100000000) s = s s; while (1) system(\"sleep 1\") }'",
        ),
    )
    .await;
    let w = wait_worker(&sup, "p-0", "restarted for its memory", T, |w| {
        w.last_exit.is_some()
    })
    .await;
    assert_eq!(w.last_exit, Some(ExitReason::MemoryBudgetExceeded));
    assert_eq!(w.enforcement, Enforcement::None);
    let metrics = sup.observer().metrics().encode();
    assert!(
        metrics.contains("kcs_cgroup_enforcement{mode=\"none\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"memory_budget_exceeded\",worker=\"p-0\",department"),
        "{metrics}"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_oom_kills_a_worker_over_its_cgroup_limit() {
    let (d, _) = fake_department(
        &pool("p", 1, "48MiB"),
        &format!("{FAST}\nmax_failures = 2"),
        BUDGET,
    );
    // The worker process itself grows until the kernel kills it at its limit.
    let sup = start_fake(
        d,
        script("touch \"$CS_READY_FILE\"; exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'"),
    )
    .await;
    let w = wait_worker(&sup, "p-0", "held after OOM kills", T, |w| {
        w.state == Phase::Held
    })
    .await;
    assert_eq!(w.last_exit, Some(ExitReason::OomKilled));
    let oom_events = sup
        .observer()
        .events()
        .recent(100)
        .iter()
        .filter(|e| e.event == "worker_oom_killed")
        .count();
    assert_eq!(oom_events, 2, "{w:#?}");
    let leaf = &w.cgroup;
    let memory_leaf = leaf
        .iter()
        .find(|d| d.contains("/memory/"))
        .expect("a memory leaf");
    let limit = std::fs::read_to_string(format!("{memory_leaf}/memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    let oom = std::fs::read_to_string(format!("{memory_leaf}/memory.oom_control")).unwrap();
    assert!(
        oom.contains("oom_kill 2") || oom.contains("oom_kill 3"),
        "{oom}"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_scales_within_the_budget_and_restarts() {
    let (d, _) = fake_department(
        &format!("{}{}", pool("p", 1, "256MiB"), pool("q", 1, "256MiB")),
        FAST,
        "max_workers = 3\ncpu = 4\nmemory = \"1GiB\"",
    );
    let sup = start_fake(d, script("touch \"$CS_READY_FILE\"; exec sleep 300")).await;
    sup.wait_until_ready(T).await.unwrap();
    let base = serve(sup.clone()).await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };

    // Over the budget: refused, naming the budget and the figure; nothing changes.
    let (status, body) = post(
        "/v1/pools/p/scale".into(),
        serde_json::json!({"workers": 3}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(body["error"]["code"], 400);
    assert!(
        message
            .contains("4 workers exceed the department budget of 3 workers (budget.max_workers)"),
        "{message}"
    );
    assert!(!message.contains("of memory exceed"), "{message}");
    assert_eq!(sup.status()[0].workers.len(), 1);
    let (status, body) = post(
        "/v1/pools/p/scale".into(),
        serde_json::json!({"workers": 2, "x": 1}),
    )
    .await;
    assert_eq!(status, 400, "unknown field: {body}");
    let (status, _) = post(
        "/v1/pools/nope/scale".into(),
        serde_json::json!({"workers": 1}),
    )
    .await;
    assert_eq!(status, 404);

    // Within it: a new worker with its own id and port comes up.
    let (status, body) = post(
        "/v1/pools/p/scale".into(),
        serde_json::json!({"workers": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_worker(&sup, "p-1", "ready", T, |w| w.state.is_up()).await;
    assert_ne!(worker(&sup, "p-0").rest_url, worker(&sup, "p-1").rest_url);

    // Clear applies to held workers only.
    let (status, body) = post("/v1/workers/p-0/clear".into(), Value::Null).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not held")
    );
    let (status, _) = post("/v1/workers/p-9/restart".into(), Value::Null).await;
    assert_eq!(status, 404);

    // Rolling restart: one at a time, each ready again before the next.
    let (status, body) = post("/v1/pools/p/restart".into(), Value::Null).await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = post("/v1/pools/p/restart".into(), Value::Null).await;
    assert_eq!(status, 409, "a second rollout while one runs");
    harness::eventually("the rollout to complete", T, || {
        let sup = sup.clone();
        async move {
            let pool = sup.status().into_iter().find(|p| p.name == "p")?;
            (pool.rollout?.state == "completed").then_some(())
        }
    })
    .await;
    for id in ["p-0", "p-1"] {
        let w = worker(&sup, id);
        assert_eq!(
            (w.launches, w.last_exit.clone()),
            (2, Some(ExitReason::AdminRestart)),
            "{w:#?}"
        );
    }
    let events: Vec<_> = sup.observer().events().recent(200);
    let order: Vec<String> = events
        .iter()
        .filter(|e| matches!(e.event, "worker_restart_requested" | "worker_ready"))
        .filter(|e| e.seq > 0)
        .map(|e| format!("{}:{}", e.event, e.worker.clone().unwrap_or_default()))
        .collect();
    let tail: Vec<&str> = order
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "worker_restart_requested:p-0",
            "worker_ready:p-0",
            "worker_restart_requested:p-1",
            "worker_ready:p-1"
        ]
    );

    // Scale down: the highest index goes; listing and metrics follow.
    let (status, _) = post(
        "/v1/pools/p/scale".into(),
        serde_json::json!({"workers": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let pools: Value = http
        .get(format!("{base}/v1/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pools["enforcement"], "cgroup_v1");
    let p = &pools["pools"][0];
    assert_eq!(p["desired_workers"], 1);
    assert_eq!(p["workers"].as_array().unwrap().len(), 1);
    let w = &p["workers"][0];
    assert_eq!(w["state"], "ready");
    assert_eq!(w["limits"]["memory_bytes"], 256u64 << 20);
    assert!(w["pid"].as_u64().is_some());
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kcs_worker_up{pool=\"p\",worker=\"p-0\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains("worker=\"p-1\""),
        "scaled-down worker forgotten"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_exits_at_once_shows_its_stderr_tail_redacted_in_the_event_and_the_api() {
    let (d, _) = fake_department(
        &pool("p", 1, "64MiB"),
        &format!("{FAST}\nmax_failures = 1"),
        BUDGET,
    );
    let sup = start_fake(
        d,
        script(
            "echo 'starting up' >&2; \
             echo 'Error opening zip file or JAR manifest missing : rt/agents/jmx.jar' >&2; \
             echo 'Error occurred during initialization of VM' >&2; \
             echo \"login with password=$(printf 'hunter2%s' secret) failed\" >&2; exit 1",
        ),
    )
    .await;
    let held = wait_worker(&sup, "p-0", "held", T, |w| w.state == Phase::Held).await;
    assert_eq!(held.last_exit, Some(ExitReason::ExitCode { code: 1 }));
    // A first start that failed is over too: the Kafka clients no longer wait (its stderr is
    // worth forwarding).
    harness::eventually(
        "the Kafka clients started after a failed first start",
        T,
        || {
            let sup = sup.clone();
            async move { sup.observer().kafka_clients_started().then_some(()) }
        },
    )
    .await;
    let tail = &held.last_exit_stderr;
    assert!(
        tail.iter().any(|l| l.contains("Error opening zip file")),
        "{tail:?}"
    );
    assert!(
        tail.iter().any(|l| l.contains("initialization of VM")),
        "{tail:?}"
    );
    assert!(
        !tail.iter().any(|l| l.contains("hunter2secret")),
        "a secret in the tail: {tail:?}"
    );
    let exited = sup
        .observer()
        .events()
        .recent(100)
        .into_iter()
        .find(|e| e.event == "worker_exited")
        .expect("a worker_exited event");
    assert!(
        exited.message.contains("exited with code 1")
            && exited
                .message
                .contains("Error opening zip file or JAR manifest missing"),
        "{}",
        exited.message
    );
    assert!(
        !exited.message.contains("hunter2secret"),
        "{}",
        exited.message
    );

    let base = serve(sup.clone()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    for text in [get("/v1/workers/p-0").await, get("/v1/pools").await] {
        assert!(text.contains("last_exit_stderr"), "{text}");
        assert!(text.contains("Error opening zip file"), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_supervisor_of_a_live_department_refuses_naming_the_holder_and_kills_nothing() {
    use connect_supervisor::supervisor::{Supervisor, SupervisorOptions};
    let (d, state) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let launches = state.join("launches");
    let body = format!(
        "echo $$ >> '{}'; touch \"$CS_READY_FILE\"; exec sleep 300",
        launches.display()
    );
    let first = start_fake(d.clone(), script(&body)).await;
    first.wait_until_ready(T).await.unwrap();
    let pid = worker(&first, "p-0").pid.unwrap();
    let second = |d| {
        Supervisor::start_with(
            d,
            harness::runtime(),
            SupervisorOptions {
                launcher: script(&body),
                cgroups: None,
                ..Default::default()
            },
        )
    };
    // The same department and state folder: the state folder's lock.
    let err = second(d.clone()).await.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.code(), "department_locked", "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id()))
            && message.contains("already supervised"),
        "{message}"
    );
    // Another state folder, the same department: its cgroup folder's lock.
    let mut elsewhere = d.clone();
    elsewhere.supervisor.state_dir = harness::scratch("elsewhere");
    let err = second(elsewhere).await.unwrap_err();
    assert_eq!(err.code(), "department_locked", "{err}");
    assert!(err.to_string().contains("connect-supervisor/"), "{err}");
    // Nothing of the first was touched. The refusals have returned, so every signal they could
    // have sent was sent: it is either delivered (the worker is gone) or still pending.
    assert!(
        alive(pid) && !signal_pending(pid),
        "the live worker was signalled"
    );
    let w = worker(&first, "p-0");
    assert_eq!((w.pid, w.launches), (Some(pid), 1), "{w:#?}");
    assert!(w.state.is_up());
    assert_eq!(lines(&launches).len(), 1, "nothing else was launched");
    first.shutdown().await;
}

/// A held worker has no process and no restart scheduled, so nothing launches it again until
/// it is cleared.
fn assert_no_restart_scheduled(w: &connect_supervisor::supervisor::WorkerStatus) {
    assert_eq!(w.state, Phase::Held, "{w:#?}");
    assert_eq!((w.pid, w.restart_in_seconds), (None, None), "{w:#?}");
}

/// Whether a signal sent to `pid` waits to be delivered (`SigPnd`/`ShdPnd` of its status).
fn signal_pending(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
                .any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|m| !m.trim_start_matches('0').is_empty())
                })
        })
        .unwrap_or(false)
}

/// A v1 CPU file (`cpu.cfs_quota_us`, `cpu.shares`) of a worker's leaf right now.
fn cpu_file(w: &connect_supervisor::supervisor::WorkerStatus, file: &str) -> u64 {
    let leaf = w
        .cgroup
        .iter()
        .find(|d| d.contains("/cpu/"))
        .expect("a cpu leaf");
    std::fs::read_to_string(format!("{leaf}/{file}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The CPU quota (v1 `cpu.cfs_quota_us`) of a worker's leaf right now.
fn cpu_quota(w: &connect_supervisor::supervisor::WorkerStatus) -> u64 {
    cpu_file(w, "cpu.cfs_quota_us")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_worker_is_boosted_out_of_the_unused_budget_until_it_is_ready() {
    let host = std::thread::available_parallelism().unwrap().get() as u64 * 1000;
    // Two 0.5-CPU workers in a 2-CPU budget: 1 CPU unused, shared by whoever starts.
    let (d, state) = fake_department(
        &pool("p", 2, "64MiB"),
        FAST,
        "max_workers = 2\ncpu = 2\nmemory = \"1GiB\"",
    );
    let go = state.join("go");
    let sup = start_fake(
        d,
        script(&format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; touch \"$CS_READY_FILE\"; exec sleep 300",
            go.display()
        )),
    )
    .await;
    assert_eq!(sup.enforcement(), Enforcement::CgroupV1);
    let starting: Vec<_> = ["p-0", "p-1"]
        .iter()
        .map(|id| {
            let w = worker(&sup, id);
            assert_eq!(w.state, Phase::Starting);
            w
        })
        .collect();
    harness::eventually("both workers spawned", T, || {
        let sup = sup.clone();
        async move {
            ["p-0", "p-1"]
                .iter()
                .all(|id| worker(&sup, id).pid.is_some())
                .then_some(())
        }
    })
    .await;
    let quotas: Vec<u64> = ["p-0", "p-1"]
        .iter()
        .map(|id| cpu_quota(&worker(&sup, id)))
        .collect();
    let boosts: Vec<f64> = ["p-0", "p-1"]
        .iter()
        .map(|id| worker(&sup, id).cpu_boost_cores)
        .collect();
    println!("quotas while starting: {quotas:?} (us per 100 ms), boosts {boosts:?} cores");
    // Never beyond the budget: 2 CPU = 200000 us per period, both together.
    assert!(quotas.iter().sum::<u64>() <= 200_000, "{quotas:?}");
    assert!(quotas.iter().all(|q| *q >= 50_000), "{quotas:?}");
    // The first to start takes what the host and the budget allow.
    let best = *quotas.iter().max().unwrap();
    assert_eq!(best, 150_000.min(host * 100), "{quotas:?}");
    assert!(boosts.iter().any(|b| *b > 0.0), "{boosts:?} {starting:?}");
    // The boost lends idle CPU (quota) only: under contention a starting worker weighs what
    // its own limit does (0.5 CPU = 512 shares), and keeps that weight once it is ready.
    for id in ["p-0", "p-1"] {
        assert_eq!(
            cpu_file(&worker(&sup, id), "cpu.shares"),
            512,
            "{id} while starting"
        );
    }
    let events = sup.observer().events().recent(100);
    let applied = events
        .iter()
        .find(|e| e.event == "startup_boost_applied")
        .expect("a boost event");
    assert!(applied.message.contains("CPU boost"), "{}", applied.message);
    let metrics = sup.observer().metrics().encode();
    assert!(metrics.contains("kcs_worker_cpu_boost_cores"), "{metrics}");

    // Ready: back to the limit, the boost ends (event, metric, status).
    std::fs::write(&go, "").unwrap();
    sup.wait_until_ready(T).await.unwrap();
    harness::eventually("quotas back to the limit", T, || {
        let sup = sup.clone();
        async move {
            ["p-0", "p-1"]
                .iter()
                .all(|id| {
                    cpu_quota(&worker(&sup, id)) == 50_000
                        && worker(&sup, id).cpu_boost_cores == 0.0
                })
                .then_some(())
        }
    })
    .await;
    let events = sup.observer().events().recent(100);
    assert!(
        events.iter().any(|e| e.event == "startup_boost_ended"),
        "{events:?}"
    );
    let metrics = sup.observer().metrics().encode();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("kcs_worker_cpu_boost_cores") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // A restart is boosted again.
    let pid = worker(&sup, "p-0").pid.unwrap();
    std::fs::remove_file(&go).unwrap();
    sup.restart_worker("p-0").unwrap();
    let again = wait_worker(&sup, "p-0", "restarted", T, |w| {
        w.pid.is_some_and(|p| p != pid)
    })
    .await;
    assert_eq!(again.state, Phase::Starting);
    assert_eq!(cpu_quota(&again), 150_000.min(host * 100));
    assert_eq!(cpu_file(&again, "cpu.shares"), 512, "a boosted restart");
    std::fs::write(&go, "").unwrap();
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_headroom_or_with_the_boost_off_a_worker_starts_at_its_limit() {
    for (budget, supervision) in [
        // The pools take the whole budget.
        (
            "max_workers = 1\ncpu = 0.5\nmemory = \"1GiB\"",
            FAST.to_string(),
        ),
        // Headroom, but the boost is off.
        (BUDGET, format!("{FAST}\nstartup_cpu_boost = false")),
    ] {
        let (d, state) = fake_department(&pool("p", 1, "64MiB"), &supervision, budget);
        let go = state.join("go");
        let sup = start_fake(
            d,
            script(&format!(
                "while [ ! -e '{}' ]; do sleep 0.05; done; touch \"$CS_READY_FILE\"; exec sleep 300",
                go.display()
            )),
        )
        .await;
        let w = wait_worker(&sup, "p-0", "spawned", T, |w| w.pid.is_some()).await;
        assert_eq!(cpu_quota(&w), 50_000, "{supervision}");
        assert_eq!(w.cpu_boost_cores, 0.0);
        assert!(
            !sup.observer()
                .events()
                .recent(100)
                .iter()
                .any(|e| e.event == "startup_boost_applied")
        );
        std::fs::write(&go, "").unwrap();
        sup.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisors_own_kafka_clients_wait_until_the_first_start_is_over() {
    // The department's Kafka (127.0.0.1:9) refuses at once: a check that runs says so within
    // milliseconds, so a check still unrun seconds into the start did not run.
    let (d, state) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let go = state.join("go");
    let sup = start_fake(
        d,
        script(&format!(
            "echo 'a line of the first start'; \
             while [ ! -e '{}' ]; do sleep 0.05; done; touch \"$CS_READY_FILE\"; exec sleep 300",
            go.display()
        )),
    )
    .await;
    let check = sup
        .observer()
        .kafka()
        .expect("the Kafka check is on by default");
    wait_worker(&sup, "p-0", "spawned", T, |w| w.pid.is_some()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(worker(&sup, "p-0").state, Phase::Starting);
    assert_eq!(
        check.state().reachable,
        None,
        "no Kafka check while the worker starts"
    );
    // The start's line waits in the forwarder's own queue (not handed to a producer).
    let logs = sup.observer().logs().forward_stats();
    assert!(logs.enabled && logs.queued >= 1, "{logs:?}");
    assert!(!sup.observer().kafka_clients_started());
    std::fs::write(&go, "").unwrap();
    wait_worker(&sup, "p-0", "ready", T, |w| w.state.is_up()).await;
    harness::eventually("the Kafka check ran once the start was over", T, || {
        let check = check.clone();
        async move { check.state().reachable.is_some().then_some(()) }
    })
    .await;
    assert!(sup.observer().kafka_clients_started());
    let state = check.state();
    assert_eq!(state.reachable, Some(false), "{state:?}");
    sup.shutdown().await;

    // Workers in pods of their own (kubernetes topology) share no CPU with the supervisor: its
    // clients start at once, while the worker pod is still starting (here: never answers).
    let (d, _) = fake_department(&pool("p", 1, "64MiB"), FAST, BUDGET);
    let port = connect_supervisor::supervisor::free_port("127.0.0.1").unwrap();
    let remote = std::collections::BTreeMap::from([(
        "p".to_string(),
        vec![connect_supervisor::supervisor::RemoteWorker {
            rest_url: format!("http://127.0.0.1:{port}"),
            metrics_port: None,
        }],
    )]);
    let sup = connect_supervisor::supervisor::Supervisor::start_with(
        d,
        harness::runtime(),
        connect_supervisor::supervisor::SupervisorOptions {
            remote: Some(remote),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(worker(&sup, "p-0").state, Phase::Starting);
    assert!(sup.observer().kafka_clients_started());
    sup.shutdown().await;
}

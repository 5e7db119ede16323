//! Supervision mechanics with fake workers (tiny shell scripts instead of the JVM): stop
//! escalation, whole-tree kill, crash-loop hold counted by launches, liveness watchdog, the
//! degraded-mode memory watch, OOM kills by the real kernel, scaling against the budget and the
//! admin API. cgroups are the machine's real ones (v1 here); the degraded-mode tests force
//! `supervision.cgroups = "off"`.

mod harness;

use std::time::{Duration, Instant};

use connect_supervisor::cgroup::Enforcement;
use connect_supervisor::supervisor::lifecycle::{ExitReason, Phase};
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
    // Held means no more launches, however long we wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
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
    wait_worker(&sup, "p-0", "held again", T, |w| w.state == Phase::Held).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lines(&launches).len(), 6);
    let metrics = sup.observer().metrics().encode();
    assert!(
        metrics.contains("kcs_worker_state{pool=\"p\",state=\"held\",worker=\"p-0\""),
        "{metrics}"
    );
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

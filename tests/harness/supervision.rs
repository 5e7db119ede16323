//! Helpers for the supervision tests: departments of fake workers (tiny shell scripts, no JVM,
//! no broker), an admin HTTP server over a supervisor, and process/cgroup probes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use connect_supervisor::api::router;
use connect_supervisor::config;
use connect_supervisor::model::Department;
use connect_supervisor::supervisor::{Launcher, Supervisor, SupervisorOptions, WorkerStatus};

use super::{PROJECT, eventually, runtime, scratch, unique};

/// A department file whose pools run fake workers: `pools` is TOML of `[[pools]]` tables,
/// `supervision` the body of the `[supervision]` table. No broker is needed (nothing connects).
pub fn fake_department(pools: &str, supervision: &str, budget: &str) -> (Department, PathBuf) {
    let id = unique("f");
    let state = scratch(&format!("{id}-state"));
    let text = format!(
        r#"
[department]
id = "{id}"
environment_id = "env-{id}"
kafka_cluster_id = "lkc-{id}"
[kafka]
bootstrap_servers = "127.0.0.1:9"
[runtime]
dir = "{runtime}"
[supervisor]
listen = "127.0.0.1:0"
state_dir = "{state}"
[budget]
{budget}
[supervision]
{supervision}
{pools}
"#,
        runtime = runtime().root().display(),
        state = state.display(),
    );
    let department = config::parse(&text, Path::new(PROJECT), &|_| None)
        .unwrap_or_else(|e| panic!("fake department is invalid: {e:?}\n{text}"));
    (department, state)
}

/// A script launcher running `sh -c <script>`; the script sees `$CS_READY_FILE`,
/// `$CS_WORKER_DIR` and `$CS_WORKER_ID`.
pub fn script(body: &str) -> Launcher {
    Launcher::Script {
        program: "sh".into(),
        args: vec!["-c".into(), body.into()],
    }
}

/// Starts `department` with fake workers.
pub async fn start_fake(department: Department, launcher: Launcher) -> Arc<Supervisor> {
    Supervisor::start_with(
        department,
        runtime(),
        SupervisorOptions {
            launcher,
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("fake department did not start: {e}"))
}

/// The status of worker `id`.
pub fn worker(sup: &Supervisor, id: &str) -> WorkerStatus {
    sup.worker(id)
        .unwrap_or_else(|| panic!("no worker {id} in {:#?}", sup.status()))
}

/// Waits until worker `id` satisfies `check`, failing with its status after `timeout`.
pub async fn wait_worker(
    sup: &Supervisor,
    id: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&WorkerStatus) -> bool,
) -> WorkerStatus {
    let started = std::time::Instant::now();
    loop {
        let w = worker(sup, id);
        if check(&w) {
            return w;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {id} to be {what}; status: {w:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

/// Waits until `pid` is gone.
pub async fn wait_gone(pid: u32, timeout: Duration) {
    eventually(
        &format!("process {pid} to be gone"),
        timeout,
        || async move { (!alive(pid)).then_some(()) },
    )
    .await
}

/// Serves the supervisor's HTTP API on a free loopback port; returns its base URL.
pub async fn serve(sup: Arc<Supervisor>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let wired = connect_supervisor::app::wire(sup).expect("the API state builds");
    let app = router(wired.state);
    // The components' background tasks live as long as the server.
    let background = wired.background;
    tokio::spawn(async move {
        let _background = background;
        axum::serve(listener, app).await
    });
    format!("http://{addr}")
}

/// The lines of a file, or none.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

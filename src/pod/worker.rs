//! `connect-supervisor worker`: PID 1 of a worker pod in the kubernetes topology.
//!
//! One pod, one Connect worker JVM. The entrypoint reads the pod's own cgroup limits (the
//! kubelet's, from `resources.limits`) and sizes the JVM from them (heap, processor count), then
//! runs the worker with the supervisor's ordinary machinery, as a department of one worker: the
//! same backoff and crash-loop holds, health probes, log capture and forwarding, metrics. A
//! crashed or OOM-killed JVM is restarted in place, inside the same pod, so Kubernetes only sees
//! a container restart when the entrypoint itself dies. OOM kills are told apart from crashes by
//! the pod cgroup's `memory.events` (v2) or `memory.oom_control` (v1), which are readable on the
//! read-only cgroupfs of an unprivileged pod.
//!
//! Its own HTTP server answers the kubelet's probes and Prometheus: `/healthz` (the entrypoint
//! runs), `/readyz` (the JVM answers `GET /health` with 200), `/metrics` (the supervisor's
//! metrics and the JVM's Connect metrics), `/status` (the worker, its limits and enforcement).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::PodError;
use super::cgroup::{OwnCgroup, PodCgroupDriver, PodLimits};
use crate::cgroup::{CgroupDriver, Enforcement};
use crate::config::{self, MIN_WORKER_MEMORY};
use crate::model::{ByteSize, Cpu, Department, Pool};
use crate::runtime::RuntimeLayout;
use crate::supervisor::{Supervisor, SupervisorOptions};

/// Content type of `/metrics`.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Options of `connect-supervisor worker`.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The department file.
    pub config: PathBuf,
    /// The pool this pod belongs to.
    pub pool: String,
    /// The pod's name (for logs and `/status`).
    pub pod_name: Option<String>,
    /// The name other workers and the API reach this worker by (Connect's
    /// `rest.advertised.host.name`): the pod's DNS name behind the pool's headless Service.
    pub advertised_host: String,
    /// Address Connect's REST listener binds (all interfaces in a pod).
    pub bind: String,
    /// Port of Connect's REST listener.
    pub rest_port: u16,
    /// Address of the entrypoint's own HTTP server.
    pub listen: SocketAddr,
    /// Overrides `supervisor.state_dir` (the pod's state volume).
    pub state_dir: Option<PathBuf>,
}

/// The limits the worker runs with: the pod's, where its cgroup has them, else the pool's.
pub fn effective_pool(pool: &Pool, limits: &PodLimits) -> Result<Pool, PodError> {
    let mut pool = pool.clone();
    if let Some(millis) = limits.cpu_millis {
        pool.worker.cpu = Cpu::from_millis(millis);
    }
    if let Some(bytes) = limits.memory_bytes {
        if bytes < MIN_WORKER_MEMORY.bytes() {
            return Err(PodError::Limits(format!(
                "the pod's memory limit is {}, below the {} a worker needs; raise the pool's \
                 memory in the department file (the chart's resources.limits follow it)",
                ByteSize::new(bytes),
                MIN_WORKER_MEMORY
            )));
        }
        pool.worker.memory = ByteSize::new(bytes);
        // An explicit heap larger than the pod cannot be honoured: size from the limit instead.
        if pool.worker.heap.is_some_and(|h| h.bytes() >= bytes) {
            pool.worker.heap = None;
        }
    }
    if let Some(pids) = limits.pids {
        pool.worker.pids = pids;
    }
    Ok(pool)
}

/// The department as this pod runs it: only its pool, with one worker listening on
/// `bind:rest_port` and advertised as `advertised_host`.
pub fn pod_department(department: &Department, pool: Pool, options: &WorkerOptions) -> Department {
    let mut d = department.clone();
    let mut pool = pool;
    pool.workers = 1;
    // Set in memory, past the file's validation (which reserves these keys for the supervisor):
    // in a pod Connect listens on every interface and advertises the pod's DNS name.
    pool.worker_config.insert(
        "listeners".into(),
        format!("http://{}:{}", options.bind, options.rest_port),
    );
    pool.worker_config.insert(
        "rest.advertised.host.name".into(),
        options.advertised_host.clone(),
    );
    d.default_pool = pool.name.clone();
    d.pools = vec![pool];
    // The entrypoint reaches its own JVM (probes, JMX exporter) over loopback.
    d.supervisor.worker_host = if options.bind == "0.0.0.0" {
        "127.0.0.1".into()
    } else {
        options.bind.clone()
    };
    d.supervisor.rest_port_base = Some(options.rest_port);
    if let Some(dir) = &options.state_dir {
        d.supervisor.state_dir = dir.clone();
    }
    d
}

/// Runs the worker until SIGTERM/SIGINT.
pub async fn run(options: WorkerOptions) -> Result<(), PodError> {
    let department = config::load(&options.config)?;
    let Some(pool) = department.pool(&options.pool).cloned() else {
        return Err(PodError::UnknownPool {
            flag: "--pool",
            pool: options.pool.clone(),
            known: department
                .pools
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let own = tokio::task::spawn_blocking(OwnCgroup::detect)
        .await
        .expect("reading /proc does not panic");
    let (driver, limits): (Option<Arc<dyn CgroupDriver>>, PodLimits) = match own {
        Ok(own) => {
            let limits = own
                .limits()
                .map_err(crate::supervisor::SupervisorError::from)?;
            (Some(Arc::new(PodCgroupDriver::new(own))), limits)
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read this pod's cgroup; the worker is sized from the department file and OOM kills are not told apart from crashes.");
            (None, PodLimits::default())
        }
    };
    let sized = effective_pool(&pool, &limits)?;
    tracing::info!(
        pod = options.pod_name.as_deref().unwrap_or("-"),
        pool = %pool.name,
        cpu = %sized.worker.cpu,
        memory = %sized.worker.memory,
        pod_cpu_millis = ?limits.cpu_millis,
        pod_memory_bytes = ?limits.memory_bytes,
        "Worker sized from the pod's cgroup limits (the department file's where the pod has none)."
    );
    let department = pod_department(&department, sized, &options);
    let layout = RuntimeLayout::new(&department.runtime.dir);
    layout.check()?;

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| PodError::Listen {
            addr: options.listen,
            source,
        })?;
    // PID 1 of the pod: the JVM's orphans are re-parented here and must be reaped.
    if let Err(e) = crate::process::become_subreaper() {
        tracing::warn!(error = %e, "Cannot become the subreaper of the worker's descendants.");
    }
    let reaper = crate::process::spawn_reaper().map_err(|source| PodError::Io {
        action: "cannot install a signal handler for",
        path: PathBuf::from("SIGCHLD"),
        source,
    })?;
    let mut signals = crate::process::Signals::install().map_err(|source| PodError::Io {
        action: "cannot install a signal handler for",
        path: PathBuf::from("SIGINT/SIGTERM"),
        source,
    })?;
    let supervisor = Supervisor::start_with(
        department,
        layout,
        SupervisorOptions {
            cgroups: driver,
            ..Default::default()
        },
    )
    .await?;
    let state = WorkerState {
        supervisor: Arc::clone(&supervisor),
        pod: options.pod_name.clone(),
        advertised: format!("{}:{}", options.advertised_host, options.rest_port),
        limits,
    };
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });
    tracing::info!(listen = %options.listen, advertised = %options.advertised_host, rest_port = options.rest_port, "Worker entrypoint up.");
    signals.recv().await;
    tracing::info!("Stopping the worker, then the entrypoint's HTTP server.");
    supervisor.shutdown().await;
    let _ = stop_server.send(());
    let _ = server.await;
    reaper.abort();
    Ok(())
}

#[derive(Clone)]
struct WorkerState {
    supervisor: Arc<Supervisor>,
    pod: Option<String>,
    advertised: String,
    limits: PodLimits,
}

fn router(state: WorkerState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
}

/// 200 once the JVM answers `GET /health` with 200; 503 with its phase before.
async fn readyz(State(state): State<WorkerState>) -> impl IntoResponse {
    let workers: Vec<_> = state
        .supervisor
        .status()
        .into_iter()
        .flat_map(|p| p.workers)
        .collect();
    let ready = !workers.is_empty() && workers.iter().all(|w| w.state.is_up());
    let states: Vec<&str> = workers.iter().map(|w| w.state.as_str()).collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"ready": ready, "worker": states.first().copied().unwrap_or("none")})),
    )
}

async fn metrics(State(state): State<WorkerState>) -> impl IntoResponse {
    let text = state.supervisor.observer().encode_metrics();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text)
}

async fn status(State(state): State<WorkerState>) -> impl IntoResponse {
    let enforcement: Enforcement = state.supervisor.enforcement();
    Json(json!({
        "pod": state.pod,
        "advertised": state.advertised,
        "enforcement": enforcement,
        "controllers": state.supervisor.cgroups().controllers(),
        "pod_limits": {
            "cpu_millis": state.limits.cpu_millis,
            "memory_bytes": state.limits.memory_bytes,
            "pids": state.limits.pids,
        },
        "pools": state.supervisor.status(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn department() -> Department {
        crate::config::testing::department()
            .department_key("default_pool", "\"etl\"")
            .budget(4, "4", "4GiB")
            .pool(crate::config::testing::pool("etl").workers(3))
            .pool(
                crate::config::testing::pool("shared")
                    .workers(1)
                    .cpu("\"500m\"")
                    .memory("768MiB")
                    .key("heap", "\"700MiB\""),
            )
            .build()
    }

    fn options() -> WorkerOptions {
        WorkerOptions {
            config: "/etc/connect-supervisor/department.toml".into(),
            pool: "shared".into(),
            pod_name: Some("d1-pool-shared-1".into()),
            advertised_host: "d1-pool-shared-1.d1-pool-shared.ns.svc".into(),
            bind: "0.0.0.0".into(),
            rest_port: 8083,
            listen: "0.0.0.0:8090".parse().unwrap(),
            state_dir: Some("/var/lib/connect-supervisor".into()),
        }
    }

    #[test]
    fn the_pods_limits_size_the_worker_and_the_files_values_fill_the_gaps() {
        let d = department();
        let pool = d.pool("shared").unwrap();
        let limits = PodLimits {
            cpu_millis: Some(1500),
            memory_bytes: Some(512 << 20),
            pids: None,
        };
        let sized = effective_pool(pool, &limits).unwrap();
        assert_eq!(sized.worker.cpu, Cpu::from_millis(1500));
        assert_eq!(sized.worker.memory, ByteSize::mib(512));
        // The explicit 700MiB heap does not fit in 512MiB: sized from the limit.
        assert_eq!(sized.worker.heap, None);
        assert_eq!(sized.worker.pids, pool.worker.pids);
        let args = crate::worker::sizing_options(&sized).join(" ");
        assert!(args.contains("-Xmx384m"), "{args}");
        assert!(args.contains("-XX:ActiveProcessorCount=2"), "{args}");
        // No limits in the cgroup: the department file's.
        let from_file = effective_pool(pool, &PodLimits::default()).unwrap();
        assert_eq!(from_file.worker, pool.worker);
        // Too small to run a JVM: refused with what to change.
        let tiny = PodLimits {
            memory_bytes: Some(8 << 20),
            ..Default::default()
        };
        let err = effective_pool(pool, &tiny).unwrap_err().to_string();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn the_pod_runs_one_worker_of_its_pool_listening_everywhere_and_advertising_its_name() {
        let d = department();
        let pool = d.pool("shared").unwrap().clone();
        let pod = pod_department(&d, pool, &options());
        assert_eq!(pod.pools.len(), 1);
        assert_eq!(pod.pools[0].workers, 1);
        assert_eq!(pod.default_pool, "shared");
        assert_eq!(pod.supervisor.rest_port_base, Some(8083));
        // The pool is the same Connect cluster as in every other pod of it.
        assert_eq!(
            pod.cluster_identity("shared").group_id,
            d.cluster_identity("shared").group_id
        );
        let runtime = RuntimeLayout::new("/opt/connect-runtime");
        let props = crate::worker::worker_properties(
            &pod,
            &pod.pools[0],
            &pod.supervisor.worker_host,
            8083,
            &runtime,
        );
        assert_eq!(props["listeners"], "http://0.0.0.0:8083");
        assert_eq!(
            props["rest.advertised.host.name"],
            "d1-pool-shared-1.d1-pool-shared.ns.svc"
        );
        assert_eq!(props["rest.advertised.port"], "8083");
        assert_eq!(pod.supervisor.worker_host, "127.0.0.1");
    }
}

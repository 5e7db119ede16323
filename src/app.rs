//! The daemon wired together: `run` (production) and `dev` (embedded broker, temporary state).
//!
//! This is the composition root and the only place that knows the order of start-up and
//! shutdown: config, runtime, (dev: broker), supervisor, the components over it ([`wire`]: the
//! connectors and the API's state) with their background tasks ([`Background`]), HTTP server;
//! on SIGINT/SIGTERM the background tasks stop first, then the workers, then the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::api::{AppState, router};
use crate::config::{self, ConfigError, EXIT_CONFIG};
use crate::connectors::{Connectors, ConnectorsError};
use crate::dev::{DevError, EmbeddedKafka};
use crate::process::Signals;
use crate::runtime::{self, Materialised, RuntimeError, RuntimeLayout};
use crate::supervisor::{Supervisor, SupervisorError, SupervisorOptions};

/// Prefix of the temporary folders of `dev`: `connect-supervisor-dev-<pid>-<random>`.
pub const DEV_DIR_PREFIX: &str = "connect-supervisor-dev-";
/// How long `dev` waits for every worker to be ready before saying which are not.
pub const DEV_READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad department file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Runtime missing or not materialisable.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The embedded broker failed.
    #[error(transparent)]
    Dev(#[from] DevError),
    /// The pools could not be started.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// The HTTP server could not listen.
    #[error("cannot listen on {addr}: {source}; stop what uses it or pass --listen")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The API's state (offsets requests) could not be opened.
    #[error("cannot open the API state: {0}")]
    State(ConnectorsError),
    /// The kubernetes topology could not be set up (discovery flags).
    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
    /// A local file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl AppError {
    /// Process exit code: 78 for configuration problems, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) => EXIT_CONFIG,
            Self::Pod(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// The components over a running supervisor, wired, and the background tasks they need.
#[derive(Debug)]
pub struct Wired {
    /// The API's state (the connectors, credentials, watch, dashboard).
    pub state: AppState,
    /// The connectors' background tasks; dropping it stops them.
    pub background: Background,
}

/// Wires the components of `supervisor`'s department and starts their background tasks: the
/// offsets requests (those left pending by an earlier run are taken up again), the sweep of
/// secret files no connector uses and the connector watch. Needs a tokio runtime.
pub fn wire(supervisor: Arc<Supervisor>) -> Result<Wired, ConnectorsError> {
    let connectors = Connectors::new(Arc::clone(&supervisor))?;
    let mut background = Background::default();
    background.spawn(
        "offsets requests",
        Arc::clone(&connectors).run_offsets_requests(),
    );
    background.spawn(
        "secret file sweep",
        Arc::clone(&connectors).sweep_secret_files_when_ready(),
    );
    let state = AppState::new(supervisor, connectors);
    // The connector watch runs until the supervisor shuts down (or the set stops it).
    background.spawn("connector watch", Arc::clone(&state.watch).run());
    Ok(Wired { state, background })
}

/// Background tasks of the components, tracked: stopped in the reverse order of their start by
/// [`Background::stop`], and aborted when dropped (a task never outlives what owns it).
#[derive(Debug, Default)]
pub struct Background {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Background {
    /// Starts `task`, named `name` for the logs.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.tasks.push((name, tokio::spawn(task)));
    }

    /// The names of the tasks still running.
    pub fn running(&self) -> Vec<&'static str> {
        self.tasks
            .iter()
            .filter(|(_, t)| !t.is_finished())
            .map(|(name, _)| *name)
            .collect()
    }

    /// Stops every task, the last started first, and waits until each has stopped.
    pub async fn stop(mut self) {
        while let Some((name, task)) = self.tasks.pop() {
            task.abort();
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!(task = name, "A background task had panicked.");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

/// Options of `connect-supervisor dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The department file.
    pub config: PathBuf,
    /// Folder of the runtime declaration (`pom.xml` and `config/`).
    pub runtime_source: PathBuf,
    /// Overrides `supervisor.listen`.
    pub listen: Option<SocketAddr>,
}

/// Materialises the runtime declared in `source` into `dest`, printing what happened.
pub async fn ensure_runtime(source: &Path, dest: &Path) -> Result<RuntimeLayout, AppError> {
    let started = Instant::now();
    let (source_owned, dest_owned) = (source.to_path_buf(), dest.to_path_buf());
    let outcome =
        tokio::task::spawn_blocking(move || runtime::materialise(&source_owned, &dest_owned))
            .await
            .expect("materialise does not panic")?;
    let layout = RuntimeLayout::new(dest);
    let version = layout.kafka_version().unwrap_or_else(|| "?".into());
    match outcome {
        Materialised::Cached => {
            tracing::info!(dir = %dest.display(), kafka = %version, "Connect runtime found in cache.")
        }
        Materialised::Fetched => tracing::info!(
            dir = %dest.display(), kafka = %version, seconds = started.elapsed().as_secs_f32(),
            "Connect runtime materialised with Maven."
        ),
    }
    Ok(layout)
}

/// Removes temporary folders of earlier `dev` runs whose process is gone (killed with SIGKILL).
pub fn clean_stale_dev_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DEV_DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(dir = %entry.path().display(), "Removing the folder of an earlier dev run.");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `connect-supervisor dev`: embedded broker, the department's pools, the supervisor's URLs.
pub async fn dev(options: DevOptions) -> Result<(), AppError> {
    let mut department = config::load(&options.config)?;
    let layout = ensure_runtime(&options.runtime_source, &department.runtime.dir).await?;
    let tmp_root = std::env::temp_dir();
    clean_stale_dev_dirs(&tmp_root);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{DEV_DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(&tmp_root)
        .map_err(|source| AppError::Io {
            action: "cannot create a temporary folder in",
            path: tmp_root.clone(),
            source,
        })?;

    let started = Instant::now();
    let broker =
        EmbeddedKafka::start(&layout, &department.runtime.java, &tmp.path().join("kafka")).await?;
    tracing::info!(bootstrap = %broker.bootstrap_servers(), seconds = started.elapsed().as_secs_f32(), "Embedded Kafka broker ready.");
    department.kafka.bootstrap_servers = broker.bootstrap_servers();
    department.supervisor.state_dir = tmp.path().join("state");
    // A fresh admin key for this run only, printed in the banner; keys of the file still work.
    let (key_id, key_secret) = crate::auth::generate_api_key();
    department.auth.configured = true;
    department.auth.keys.push(crate::auth::ApiKey {
        id: key_id.clone(),
        secret_sha256: crate::auth::digest(&key_secret),
        role: crate::auth::Role::Admin,
    });
    let dev_key = Some((key_id, key_secret));
    if let Some(listen) = options.listen {
        department.supervisor.listen = listen;
    }

    let result = serve_department(
        department,
        layout,
        SupervisorOptions::default(),
        Some(&broker),
        dev_key,
        started,
    )
    .await;
    broker.stop().await;
    drop(tmp);
    result
}

/// `connect-supervisor run`: the department against its configured Kafka. `auth_file`, when
/// given, holds the `[auth]` table (in Kubernetes: a Secret next to the department ConfigMap).
/// With `discovery` (the kubernetes topology) the workers run in their own pods and are only
/// reached; without it (all-in-one) they are this process's children.
pub async fn run(
    config_path: &Path,
    auth_file: Option<&Path>,
    discovery: Option<&crate::pod::Discovery>,
) -> Result<(), AppError> {
    let department = match auth_file {
        Some(auth) => config::load_with_auth(config_path, auth)?,
        None => config::load(config_path)?,
    };
    if !department.auth.configured {
        return Err(AppError::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            problems: vec![config::Problem {
                path: "auth".into(),
                message: NO_AUTH_MESSAGE.into(),
            }],
        }));
    }
    let layout = RuntimeLayout::new(&department.runtime.dir);
    layout.check()?;
    let options = SupervisorOptions {
        remote: discovery.map(|d| d.resolve(&department)).transpose()?,
        ..Default::default()
    };
    serve_department(department, layout, options, None, None, Instant::now()).await
}

/// Why `run` refuses a department file without `[auth]`: a forgotten table must not mean "open
/// to everyone".
pub const NO_AUTH_MESSAGE: &str = "is missing; `run` needs an [auth] table so the API is not open \
     to everyone: add [[auth.keys]] entries (`connect-supervisor new-key --role admin` prints one), \
     or set auth.allow_anonymous = true if an authenticating proxy stands in front";

async fn serve_department(
    mut department: crate::model::Department,
    layout: RuntimeLayout,
    options: SupervisorOptions,
    broker: Option<&EmbeddedKafka>,
    dev_key: Option<(String, String)>,
    started: Instant,
) -> Result<(), AppError> {
    let listen = department.supervisor.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: listen,
            source,
        })?;
    // Orphaned grandchildren of workers are re-parented here (and, as PID 1 in a container,
    // every orphan is): reap them so no zombie piles up. Started after the runtime was
    // materialised, since Maven runs outside the spawner.
    if let Err(e) = crate::process::become_subreaper() {
        tracing::warn!(error = %e, "Cannot become the subreaper of the workers' descendants.");
    }
    let reaper = crate::process::spawn_reaper().map_err(|source| AppError::Io {
        action: "cannot install a signal handler for",
        path: PathBuf::from("SIGCHLD"),
        source,
    })?;
    // The continuous GitOps mode calls this supervisor's own managed API with a key made for
    // this run only (operator role: it changes connectors like `apply` does).
    let gitops_key = department.gitops.as_ref().map(|_| {
        let (_, secret) = crate::auth::generate_api_key();
        department.auth.keys.push(crate::auth::ApiKey {
            id: GITOPS_PRINCIPAL.to_string(),
            secret_sha256: crate::auth::digest(&secret),
            role: crate::auth::Role::Operator,
        });
        secret
    });
    let local = listener.local_addr().unwrap_or(listen);
    let supervisor = Supervisor::start_with(department, layout, options).await?;
    let Wired { state, background } = match wire(supervisor.clone()) {
        Ok(wired) => wired,
        Err(e) => {
            supervisor.shutdown().await;
            return Err(AppError::State(e));
        }
    };
    let app = router(state);
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = supervisor.department().supervisor.http;
    let server = tokio::spawn(crate::api::serve::serve(listener, app, limits, async {
        let _ = server_stopped.await;
    }));

    let drift = gitops_key.and_then(|secret| start_drift(&supervisor, local, secret));

    let mut signals = install_signals()?;
    let ready = tokio::select! {
        r = supervisor.wait_until_ready(DEV_READY_TIMEOUT) => Some(r),
        _ = signals.recv() => None,
    };
    if let Some(ready) = ready {
        if let Err(e) = ready {
            tracing::error!(error = %e, "Not every worker became ready; the supervisor keeps trying. Stop with Ctrl-C.");
        }
        print_banner(
            &supervisor,
            broker,
            listen,
            dev_key.as_ref(),
            started.elapsed(),
        );
        signals.recv().await;
    }
    if let Some(drift) = drift {
        drift.abort();
    }
    tracing::info!("Stopping: background tasks first, then the workers, then the HTTP server.");
    background.stop().await;
    supervisor.shutdown().await;
    let _ = stop_server.send(());
    let _ = server.await;
    reaper.abort();
    Ok(())
}

/// Principal (key id) of the continuous GitOps mode in the audit trail and events.
pub const GITOPS_PRINCIPAL: &str = "gitops-drift";

/// Starts the `[gitops]` watcher against the supervisor's own address.
fn start_drift(
    supervisor: &std::sync::Arc<Supervisor>,
    local: SocketAddr,
    secret: String,
) -> Option<tokio::task::JoinHandle<()>> {
    let department = supervisor.department().as_ref().clone();
    let settings = department.gitops.clone()?;
    let host = if local.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        local.ip()
    };
    let against = crate::gitops::against::Against {
        url: format!("http://{}", SocketAddr::new(host, local.port())),
        credentials: crate::gitops::against::Credentials::ApiKey {
            id: GITOPS_PRINCIPAL.to_string(),
            secret,
        },
    };
    tracing::info!(source = %settings.source.display(), mode = settings.mode.as_str(), interval_s = settings.interval.as_secs_f64(), "GitOps continuous mode started.");
    match crate::gitops::drift::DriftWatch::new(
        department,
        settings,
        &against,
        supervisor.observer().clone(),
    ) {
        Ok(watch) => Some(tokio::spawn(watch.run())),
        Err(e) => {
            tracing::error!(error = %e, "The GitOps continuous mode could not start.");
            None
        }
    }
}

fn print_banner(
    supervisor: &Supervisor,
    broker: Option<&EmbeddedKafka>,
    listen: SocketAddr,
    dev_key: Option<&(String, String)>,
    elapsed: Duration,
) {
    let department = supervisor.department();
    let mut out = format!(
        "\nconnect-supervisor: department {} is up ({:.1}s)\n",
        department.id,
        elapsed.as_secs_f32()
    );
    if let Some(broker) = broker {
        out += &format!("  Kafka broker        {}\n", broker.bootstrap_servers());
    }
    for pool in supervisor.status() {
        for worker in pool.workers {
            out += &format!("  worker {:<12} {}\n", worker.id, worker.rest_url);
        }
    }
    let base = format!("http://{listen}");
    out += &format!("  supervisor          {base}\n");
    let sign_in = if dev_key.is_some() {
        "sign in with the admin API key and secret below"
    } else {
        "sign in with an API key and secret of the department"
    };
    out += &format!(
        "  dashboard           {base}{}  (open it in a browser; {sign_in})\n",
        crate::api::ui::DASHBOARD_PATH
    );
    out += &format!(
        "  managed API         {base}/connect/v1/environments/{}/clusters/{}/connectors\n",
        department.environment_id, department.kafka_cluster_id
    );
    if let Some((id, secret)) = dev_key {
        out += &format!("  admin API key       {id}\n");
        out += &format!("  admin API secret    {secret}\n");
        out +=
            &format!("  in a shell          export CS_URL={base} CS_KEY={id} CS_SECRET={secret}\n");
        out += &format!(
            "  try                 curl -u \"$CS_KEY:$CS_SECRET\" $CS_URL/connect/v1/environments/{}/clusters/{}/connectors\n",
            department.environment_id, department.kafka_cluster_id
        );
        out += "  Confluent CLI       (the admin key above; README \"The Confluent CLI\")\n";
        for line in crate::api::cloud::cli_banner(listen, department, (id, secret)) {
            out += &format!("                      {line}\n");
        }
    }
    out += "Press Ctrl-C to stop.\n";
    println!("{out}");
}

/// The shutdown signals, or why they could not be installed.
fn install_signals() -> Result<Signals, AppError> {
    Signals::install().map_err(|source| AppError::Io {
        action: "cannot install a signal handler for",
        path: PathBuf::from("SIGINT/SIGTERM"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_dev_folders_of_dead_processes_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join(format!("{DEV_DIR_PREFIX}999999999-abc"));
        let live = tmp
            .path()
            .join(format!("{DEV_DIR_PREFIX}{}-abc", std::process::id()));
        let other = tmp.path().join("unrelated-999999999");
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        clean_stale_dev_dirs(tmp.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}

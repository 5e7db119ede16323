//! The class-data-sharing archive of the Connect worker classpath: a dynamic CDS archive (on top
//! of the JDK's own) that lets a worker JVM map the classes of its start instead of loading and
//! verifying them, which cuts spawn-to-ready by about a third (`cargo bench --bench
//! worker_start`).
//!
//! `connect-supervisor runtime cds` makes it: one training start of a worker against an embedded
//! broker with `-XX:ArchiveClassesAtExit`, stopped with SIGTERM once ready so the JVM writes the
//! archive at exit, into `<runtime>/cds/connect-worker.jsa`. The image build runs it with the
//! image's own JDK (an archive only works with the JDK that wrote it). Worker JVMs use the archive
//! when it is there, with `-Xshare:auto`: a stale or foreign archive is ignored by the JVM, never
//! fatal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::dev::{DevError, EmbeddedKafka};
use crate::model::WorkerId;
use crate::process::{Output, Spawner, stop_child};
use crate::runtime::RuntimeLayout;
use crate::worker::{WorkerHealth, WorkerPlan, probe};

/// How long the training worker may take to be ready.
const TRAINING_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the archive could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CdsError {
    /// The embedded broker of the training start failed.
    #[error(transparent)]
    Broker(#[from] DevError),
    /// The training worker could not start or never became ready.
    #[error("the training worker {0}")]
    Training(String),
    /// A file could not be written or moved.
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

impl CdsError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Broker(_) => "cds_broker",
            Self::Training(_) => "cds_training",
            Self::Io { .. } => "cds_io",
        }
    }
}

/// The training department: one worker, the embedded broker.
fn training_department(
    bootstrap: &str,
    layout: &RuntimeLayout,
    java: &Path,
    state: &Path,
) -> String {
    format!(
        r#"
[department]
id = "cdstraining"
environment_id = "env-cds"
kafka_cluster_id = "lkc-cds"
[kafka]
bootstrap_servers = "{bootstrap}"
internal_topic_replication_factor = 1
[runtime]
dir = "{runtime}"
java = "{java}"
[supervisor]
listen = "127.0.0.1:0"
state_dir = "{state}"
[[pools]]
name = "training"
workers = 1
cpu = 1
memory = "512MiB"
[pools.worker_config]
"plugin.discovery" = "service_load"
"#,
        runtime = layout.root().display(),
        java = java.display(),
        state = state.display(),
    )
}

/// Makes `<runtime>/cds/connect-worker.jsa` with `java`, using `work` for the broker and the
/// worker's state. Returns the archive's path.
pub async fn build_archive(
    layout: &RuntimeLayout,
    java: &Path,
    work: &Path,
) -> Result<PathBuf, CdsError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| CdsError::Io {
            action,
            path,
            source,
        }
    };
    layout
        .check()
        .map_err(|e| CdsError::Training(format!("cannot start: {e}")))?;
    let target = layout.cds_archive();
    let dir = target.parent().unwrap_or(layout.root()).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let partial = dir.join("connect-worker.jsa.partial");
    let _ = std::fs::remove_file(&partial);
    let broker = EmbeddedKafka::start(layout, java, &work.join("kafka")).await?;
    let result = train(layout, java, work, &broker.bootstrap_servers(), &partial).await;
    broker.stop().await;
    result?;
    std::fs::rename(&partial, &target).map_err(io("cannot move the archive to", &target))?;
    Ok(target)
}

async fn train(
    layout: &RuntimeLayout,
    java: &Path,
    work: &Path,
    bootstrap: &str,
    archive: &Path,
) -> Result<(), CdsError> {
    let text = training_department(bootstrap, layout, java, &work.join("state"));
    let department = crate::config::parse(&text, work, &|_| None)
        .map_err(|e| CdsError::Training(format!("department is invalid: {e:?}")))?;
    let port = crate::util::net::free_port("127.0.0.1")
        .map_err(io_error("cannot pick a port on", "127.0.0.1"))?;
    // Planned without an archive: the training JVM must load every class itself.
    let bare = RuntimeLayout::new(layout.root());
    let plan = WorkerPlan::new(
        &department,
        &department.pools[0],
        WorkerId::new("training", 0),
        port,
        &bare,
    );
    plan.write_files()
        .map_err(io_error("cannot write", &plan.dir.display().to_string()))?;
    let mut spec = plan.command.clone();
    spec.args.retain(|a| {
        let a = a.to_string_lossy();
        !a.starts_with("-XX:SharedArchiveFile=") && a != "-Xshare:auto"
    });
    let at = spec.args.iter().position(|a| a == "-cp").unwrap_or(0);
    spec.args.insert(
        at,
        format!("-XX:ArchiveClassesAtExit={}", archive.display()).into(),
    );
    spec.output = Output::File(plan.dir.join("training.log"));
    let mut child = Spawner::global()
        .spawn(spec)
        .await
        .map_err(|e| CdsError::Training(format!("did not start: {e}")))?;
    let http = crate::connect::ConnectClient::default_http();
    let deadline = Instant::now() + TRAINING_TIMEOUT;
    loop {
        if probe(&http, &plan.rest_url, Duration::from_secs(2)).await == WorkerHealth::Ready {
            break;
        }
        if Instant::now() > deadline {
            let _ = stop_child(&mut child, Duration::from_secs(5)).await;
            return Err(CdsError::Training(format!(
                "was not ready within {TRAINING_TIMEOUT:?}; see {}",
                plan.dir.join("training.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SIGTERM: an orderly exit, at which the JVM writes the archive.
    let _ = stop_child(&mut child, Duration::from_secs(60)).await;
    match std::fs::metadata(archive) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(CdsError::Training(format!(
            "exited without writing {}; see {}",
            archive.display(),
            plan.dir.join("training.log").display()
        ))),
    }
}

fn io_error(action: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> CdsError {
    let path = PathBuf::from(path);
    move |source| CdsError::Io {
        action,
        path,
        source,
    }
}

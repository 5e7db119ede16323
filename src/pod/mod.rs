//! Running a department on Kubernetes: the pieces of the kubernetes topology.
//!
//! - [`worker`]: `connect-supervisor worker`, PID 1 of a worker pod. It runs one Connect worker
//!   JVM with the supervisor's own machinery (backoff, holds, probes, log capture, metrics),
//!   sized from the pod's cgroup limits, which the kernel enforces without privileges.
//! - [`cgroup`]: the pod's own cgroup, read-only (limits, usage, OOM kills).
//! - [`discovery`]: how the department API (`connect-supervisor run --topology kubernetes`)
//!   finds each pool's workers: the pods behind the pool's headless Service in production, a
//!   static list in tests.
//!
//! The all-in-one topology (every worker a child of one supervisor) needs none of this.

pub mod cgroup;
pub mod discovery;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use discovery::Discovery;

/// Env var naming the topology of `run` (`all-in-one` or `kubernetes`).
pub const ENV_TOPOLOGY: &str = "CONNECT_SUPERVISOR_TOPOLOGY";
/// Default port of a worker pod's Connect REST listener.
pub const DEFAULT_REST_PORT: u16 = 8083;
/// Default address of a worker pod entrypoint's own HTTP server (/healthz, /readyz, /metrics).
pub const DEFAULT_WORKER_LISTEN: &str = "0.0.0.0:8090";

/// Why the kubernetes topology could not start.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The department file is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The Connect runtime is missing.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// The worker could not be started.
    #[error(transparent)]
    Supervisor(#[from] crate::supervisor::SupervisorError),
    /// The pool given to `worker --pool` or to a discovery flag is not in the department file.
    #[error("{flag}: pool \"{pool}\" is not in the department file; its pools are: {known}")]
    UnknownPool {
        /// The flag.
        flag: &'static str,
        /// The pool asked for.
        pool: String,
        /// The pools the file has.
        known: String,
    },
    /// A discovery flag is malformed or a pool has none.
    #[error("{0}")]
    Discovery(String),
    /// The pod's cgroup limit leaves the worker less than it can run with.
    #[error("{0}")]
    Limits(String),
    /// The entrypoint's HTTP server could not listen.
    #[error("cannot listen on {addr}: {source}; free the port or pass --listen")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A local operation (signal handlers, state folder) failed.
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

impl PodError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(e) => e.code(),
            Self::Runtime(e) => e.code(),
            Self::Supervisor(e) => e.code(),
            Self::UnknownPool { .. } => "unknown_pool",
            Self::Discovery(_) => "discovery",
            Self::Limits(_) => "pod_limits",
            Self::Listen { .. } => "listen",
            Self::Io { .. } => "io",
        }
    }

    /// Process exit code: 78 for configuration problems (the file or the flags), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::UnknownPool { .. } | Self::Discovery(_) | Self::Limits(_) => {
                crate::config::EXIT_CONFIG
            }
            _ => 1,
        }
    }
}

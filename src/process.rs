//! Child processes: spawning from one dedicated thread, and stopping whole process groups.
//!
//! Every JVM the supervisor starts (workers, and the embedded broker of `dev`) is spawned here so
//! that three guarantees hold for all of them:
//!
//! * **Parent-death signal.** `PR_SET_PDEATHSIG` fires when the *thread* that forked the child
//!   exits, not the process. Tokio's threads come and go, so children are forked from a dedicated
//!   spawner thread that lives as long as the process: if the supervisor is SIGKILLed, its children
//!   get the signal and do not outlive it. The signal is SIGKILL: a child whose supervisor is gone
//!   has nobody left to stop it in order, and a JVM given SIGTERM runs its shutdown hooks instead
//!   (Connect stops its tasks, flushes offsets and leaves its group), which block on Kafka for tens
//!   of seconds when Kafka went with the supervisor (`dev`'s embedded broker gets the same signal)
//!   or is slow. Measured before the change: worker JVMs with running source tasks lived 8 to 50 s
//!   after a SIGKILL of `dev` under CPU load, each showing `SIGTERM handler` threads within
//!   0.2 s (the signal itself was never late).
//! * **Own process group.** Each child leads a new process group, so stopping it can signal its
//!   helpers and grandchildren too, and a terminal's Ctrl-C reaches only the supervisor, which then
//!   stops its children in order.
//! * **Limits before the first instruction.** A child can be moved into its cgroup(s) between
//!   `fork` and `exec`, by writing `0` ("myself") to pre-opened `cgroup.procs` files, so even the
//!   JVM's earliest threads start inside the limits.
//!
//! This module must not decide *when* to start or stop anything; that is the supervisor's job.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Captured through pipes (read them from [`Child::stdout`] / [`Child::stderr`]).
    Piped,
    /// Appended to a file (both streams).
    File(PathBuf),
    /// Discarded.
    Null,
}

/// Everything needed to start one child process.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Program to run (a path, or a name looked up on `PATH`).
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub current_dir: Option<PathBuf>,
    /// stdout/stderr handling.
    pub output: Output,
    /// `cgroup.procs` files the child joins before `exec` (one per v1 hierarchy, one on v2).
    pub cgroup_procs: Vec<PathBuf>,
    /// Signal the child receives when the supervisor dies (SIGKILL unless changed: see the
    /// module documentation).
    pub death_signal: Signal,
}

impl SpawnSpec {
    /// A spec for `program args...` with piped output, no cgroup, and SIGKILL on parent death.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            current_dir: None,
            output: Output::Piped,
            cgroup_procs: Vec::new(),
            death_signal: Signal::SIGKILL,
        }
    }

    /// The command line as one string, for logs and status (arguments carry no secrets: worker
    /// secrets live in files).
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A `cgroup.procs` file could not be opened.
    #[error("cannot open {path} to place the child in its cgroup: {source}")]
    CgroupProcs {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The output file could not be opened.
    #[error("cannot open output file {path}: {source}")]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `fork`/`exec` failed (program not found, not executable, cgroup join refused...).
    #[error("cannot start {program}: {source}")]
    Exec {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The spawner thread is gone (only during process shutdown).
    #[error("the spawner thread has stopped")]
    SpawnerGone,
}

impl SpawnError {
    /// Short, bounded code for metrics and events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CgroupProcs { .. } => "cgroup_join_failed",
            Self::OutputFile { .. } => "output_file_failed",
            Self::Exec { .. } => "exec_failed",
            Self::SpawnerGone => "spawner_gone",
        }
    }
}

struct SpawnRequest {
    spec: SpawnSpec,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<Result<Child, SpawnError>>,
}

/// Handle to the dedicated spawner thread. Cheap to clone; all clones share the thread.
#[derive(Clone)]
pub struct Spawner {
    requests: mpsc::Sender<SpawnRequest>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

impl Spawner {
    /// The process-wide spawner, started on first use. Its thread never exits, so the
    /// parent-death signal of every child fires only when the whole process dies.
    pub fn global() -> Spawner {
        static GLOBAL: std::sync::OnceLock<Spawner> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(Spawner::start).clone()
    }

    fn start() -> Spawner {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for request in rx {
                    // Children are registered with the caller's runtime (its process driver
                    // reaps them), but forked from this thread.
                    let _guard = request.runtime.enter();
                    // The reaper must not see this child as an orphan between fork and
                    // registration.
                    let _spawn = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                    let result = spawn_here(request.spec);
                    if let Ok(child) = &result
                        && let Some(pid) = child.id()
                    {
                        known_children().insert(pid, start_time(pid));
                    }
                    let _ = request.reply.send(result);
                }
            })
            .expect("the OS refused to start the spawner thread");
        Spawner { requests: tx }
    }

    /// Starts a child described by `spec`. Must be called from within a tokio runtime.
    pub async fn spawn(&self, spec: SpawnSpec) -> Result<Child, SpawnError> {
        let (reply, result) = oneshot::channel();
        self.requests
            .send(SpawnRequest {
                spec,
                runtime: tokio::runtime::Handle::current(),
                reply,
            })
            .map_err(|_| SpawnError::SpawnerGone)?;
        result.await.map_err(|_| SpawnError::SpawnerGone)?
    }
}

fn open_output(path: &Path) -> Result<(Stdio, Stdio), SpawnError> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    };
    let wrap = |source| SpawnError::OutputFile {
        path: path.to_path_buf(),
        source,
    };
    let out = open().map_err(wrap)?;
    let err = out.try_clone().map_err(wrap)?;
    Ok((Stdio::from(out), Stdio::from(err)))
}

fn spawn_here(spec: SpawnSpec) -> Result<Child, SpawnError> {
    // Opened before fork: the child only writes to them (allocation-free, async-signal-safe).
    let procs_files: Vec<File> = spec
        .cgroup_procs
        .iter()
        .map(|path| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| SpawnError::CgroupProcs {
                    path: path.clone(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let procs_fds: Vec<RawFd> = procs_files.iter().map(AsRawFd::as_raw_fd).collect();

    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &spec.current_dir {
        cmd.current_dir(dir);
    }
    match &spec.output {
        Output::Piped => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::File(path) => {
            let (out, err) = open_output(path)?;
            cmd.stdout(out).stderr(err);
        }
        Output::Null => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    install_pre_exec(&mut cmd, spec.death_signal, procs_fds);
    let child = cmd.spawn().map_err(|source| SpawnError::Exec {
        program: spec.program.clone(),
        source,
    });
    drop(procs_files);
    child
}

/// Runs in the child between `fork` and `exec`: parent-death signal, then cgroup placement.
#[allow(unsafe_code)]
fn install_pre_exec(cmd: &mut Command, death_signal: Signal, procs_fds: Vec<RawFd>) {
    let parent = std::process::id() as libc::pid_t;
    let signal = death_signal as libc::c_ulong;
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (prctl, getppid, write) on values prepared before the fork; it allocates
    // nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal would ever come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            for fd in &procs_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

static SPAWN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Children spawned here (pid -> start time), which tokio reaps itself: the orphan reaper must
/// never wait for them, or tokio would lose their exit status.
fn known_children() -> std::sync::MutexGuard<'static, std::collections::HashMap<u32, Option<u64>>> {
    static KNOWN: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<u32, Option<u64>>>,
    > = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`), which
/// tells a process apart from a later one that reuses its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.get(19)?.parse().ok()
}

/// The fields of a `/proc/<pid>/stat` line after the command name (which may hold spaces):
/// index 0 is the state, 1 the parent pid, 19 the start time.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`): a
/// grandchild whose parent dies is re-parented here rather than to the host's PID 1, so it can be
/// found and reaped. Implicit when running as PID 1 (a container).
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Reaps zombie children that this process did not spawn through the [`Spawner`] (orphans
/// re-parented to it as PID 1 or subreaper). Children of the spawner are left to tokio, which
/// waits for each of them by pid. Returns how many were reaped.
pub fn reap_orphans() -> usize {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let me = std::process::id().to_string();
    let _spawn = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(fields) = stat_fields(&stat) else {
            continue;
        };
        if fields.first() != Some(&"Z") || fields.get(1) != Some(&me.as_str()) {
            continue;
        }
        let started = fields.get(19).and_then(|t| t.parse::<u64>().ok());
        {
            let mut known = known_children();
            match known.get(&pid) {
                Some(t) if *t == started => continue,
                // A pid of ours reused by an orphan: the entry is stale.
                Some(_) => {
                    known.remove(&pid);
                }
                None => {}
            }
        }
        if waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    // Forget children that are gone (reaped by tokio).
    known_children().retain(|pid, _| Path::new(&format!("/proc/{pid}")).exists());
    reaped
}

/// Runs [`reap_orphans`] on every SIGCHLD (and every few seconds, since signals coalesce) for
/// the life of the runtime. Call once, from the daemon, after [`become_subreaper`].
pub fn spawn_reaper() -> io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = signal(SignalKind::child())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            let reaped = tokio::task::spawn_blocking(reap_orphans).await.unwrap_or(0);
            if reaped > 0 {
                tracing::debug!(reaped, "Reaped orphaned processes.");
            }
        }
    }))
}

/// Sends `signal` to the process group led by `pid` (every child leads its own group).
/// A group that no longer exists is not an error.
pub fn signal_group(pid: u32, signal: Signal) -> io::Result<()> {
    match killpg(Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The child exited within the grace period after SIGTERM.
    Graceful,
    /// The child ignored SIGTERM and was SIGKILLed.
    Killed,
    /// The child had already exited.
    AlreadyExited,
}

/// Stops a child: SIGTERM to its process group, up to `grace` to exit, then SIGKILL to the group.
/// Returns once the child has been reaped.
pub async fn stop_child(child: &mut Child, grace: Duration) -> io::Result<StopOutcome> {
    let Some(pid) = child.id() else {
        return Ok(StopOutcome::AlreadyExited);
    };
    if child.try_wait()?.is_some() {
        // The leader is gone, but helpers in its group may remain.
        signal_group(pid, Signal::SIGKILL)?;
        return Ok(StopOutcome::AlreadyExited);
    }
    signal_group(pid, Signal::SIGTERM)?;
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            status?;
            // Grandchildren that outlived the leader must not survive the stop.
            signal_group(pid, Signal::SIGKILL)?;
            Ok(StopOutcome::Graceful)
        }
        Err(_) => {
            signal_group(pid, Signal::SIGKILL)?;
            child.wait().await?;
            Ok(StopOutcome::Killed)
        }
    }
}

/// SIGINT and SIGTERM, whichever comes first: how `run`, `dev` and a pod's entrypoint learn
/// that they must stop.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (as PID 1 in a container there are no default actions).
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received."),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
        // The script says when its trap is in place (a marker file), so the SIGTERM below
        // cannot arrive before it and end the shell gracefully.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("trapped");
        let spec = SpawnSpec::new(
            "sh",
            [
                "-c",
                "trap '' TERM; : > \"$1\"; while true; do sleep 0.1; done",
                "sh",
                marker.to_str().unwrap(),
            ],
        );
        let mut child = Spawner::global()
            .spawn(SpawnSpec {
                output: Output::Null,
                ..spec
            })
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !marker.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the script never installed its trap"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let outcome = stop_child(&mut child, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(outcome, StopOutcome::Killed);
    }

    #[tokio::test]
    async fn a_child_that_honours_sigterm_stops_gracefully() {
        let spec = SpawnSpec::new("sleep", ["30"]);
        let mut child = Spawner::global()
            .spawn(SpawnSpec {
                output: Output::Null,
                ..spec
            })
            .await
            .unwrap();
        let outcome = stop_child(&mut child, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(outcome, StopOutcome::Graceful);
    }

    #[tokio::test]
    async fn a_missing_program_is_an_exec_error_naming_it() {
        let spec = SpawnSpec::new("/nonexistent/java", Vec::<String>::new());
        let err = Spawner::global().spawn(spec).await.unwrap_err();
        assert_eq!(err.code(), "exec_failed");
        assert!(err.to_string().contains("/nonexistent/java"));
    }

    #[test]
    fn stat_fields_skip_command_names_with_spaces_and_parentheses() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1 2";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "1");
        assert_eq!(fields[19], "987654");
        assert!(start_time(std::process::id()).is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orphans_are_reaped_and_spawned_children_keep_their_exit_status() {
        become_subreaper().unwrap();
        // The child exits at once with 7; its background grandchild is orphaned to us, exits,
        // and must be reaped by us, not left a zombie.
        let spec = SpawnSpec::new("sh", ["-c", "sleep 0.3 & exit 7"]);
        let mut child = Spawner::global()
            .spawn(SpawnSpec {
                output: Output::Null,
                ..spec
            })
            .await
            .unwrap();
        // Let both exit before anyone waits: the reaper must skip the spawned child.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let reaped = reap_orphans();
        assert!(reaped >= 1, "the orphaned grandchild was reaped");
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(7), "tokio still got its child's status");
        let me = std::process::id().to_string();
        let zombies: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| stat_fields(&s).map(|f| f[0] == "Z" && f[1] == me))
                    .unwrap_or(false)
            })
            .collect();
        assert!(zombies.is_empty(), "zombie children left: {zombies:?}");
    }

    #[test]
    fn the_command_line_joins_program_and_arguments() {
        let spec = SpawnSpec::new("java", ["-Xmx1g", "Main"]);
        assert_eq!(spec.command_line(), "java -Xmx1g Main");
    }
}

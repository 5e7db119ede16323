//! Stale worker processes of an earlier supervisor run, found through the pid file each worker
//! folder keeps (`pid start-time`), so they are cleaned even where there are no cgroups to scan.
//! The start time guards against a pid reused by an unrelated process.

use std::path::Path;

use nix::sys::signal::Signal;

use super::PID_FILE;
use crate::process::{signal_group, start_time};

/// Records the current process of a worker, and its owner (this supervisor).
pub(super) fn write_pid_file(dir: &Path, pid: u32) {
    let me = std::process::id();
    let text = format!(
        "{pid} {} {me} {}\n",
        start_time(pid).unwrap_or(0),
        start_time(me).unwrap_or(0)
    );
    if let Err(e) = std::fs::write(dir.join(PID_FILE), text) {
        tracing::warn!(dir = %dir.display(), error = %e, "Cannot write the worker's pid file.");
    }
}

/// Kills (SIGKILL, whole process group) every worker process recorded under `workers_dir` that
/// is still alive with the same start time and whose owner (the supervisor that recorded it) is
/// dead. Returns how many were killed.
pub(super) fn kill_stale_workers(workers_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(workers_dir) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let file = entry.path().join(PID_FILE);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut parts = text.split_whitespace();
        let (Some(pid), Some(started)) = (
            parts.next().and_then(|p| p.parse::<u32>().ok()),
            parts.next().and_then(|t| t.parse::<u64>().ok()),
        ) else {
            continue;
        };
        // A live owner (same pid, same start time) still supervises it: not a leftover.
        let owner = (
            parts.next().and_then(|p| p.parse::<u32>().ok()),
            parts.next().and_then(|t| t.parse::<u64>().ok()),
        );
        if let (Some(owner), Some(owner_started)) = owner
            && owner != std::process::id()
            && start_time(owner) == Some(owner_started)
        {
            continue;
        }
        if pid > 1 && pid != std::process::id() && start_time(pid) == Some(started) {
            tracing::warn!(pid, file = %file.display(), "Killing a worker left over by an earlier run.");
            let _ = signal_group(pid, Signal::SIGKILL);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
            killed += 1;
        }
        let _ = std::fs::remove_file(&file);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_live_process_is_killed_and_a_reused_pid_is_not() {
        use crate::process::{Output, SpawnSpec, Spawner};
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = SpawnSpec::new("sleep", ["30"]);
        spec.output = Output::Null;
        let mut child = Spawner::global().spawn(spec).await.unwrap();
        let live = tmp.path().join("shared-0");
        std::fs::create_dir_all(&live).unwrap();
        write_pid_file(&live, child.id().unwrap());
        // Same pid as this test process but a wrong start time: not ours to kill.
        let reused = tmp.path().join("shared-1");
        std::fs::create_dir_all(&reused).unwrap();
        std::fs::write(reused.join(PID_FILE), format!("{} 1\n", std::process::id())).unwrap();
        assert_eq!(kill_stale_workers(tmp.path()), 1);
        let status = child.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        assert!(!live.join(PID_FILE).exists());
    }

    #[tokio::test]
    async fn a_worker_whose_owner_is_alive_is_no_leftover() {
        use crate::process::{Output, SpawnSpec, Spawner};
        let tmp = tempfile::tempdir().unwrap();
        let spawn = || async {
            let mut spec = SpawnSpec::new("sleep", ["30"]);
            spec.output = Output::Null;
            Spawner::global().spawn(spec).await.unwrap()
        };
        let (mut owner, mut worker) = (spawn().await, spawn().await);
        let (o, w) = (owner.id().unwrap(), worker.id().unwrap());
        let dir = tmp.path().join("shared-0");
        std::fs::create_dir_all(&dir).unwrap();
        let record =
            |owner_start: u64| format!("{w} {} {o} {owner_start}\n", start_time(w).unwrap());
        std::fs::write(dir.join(PID_FILE), record(start_time(o).unwrap())).unwrap();
        assert_eq!(kill_stale_workers(tmp.path()), 0, "its supervisor lives");
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker was not touched"
        );
        // The same owner pid with another start time is a dead owner whose pid was reused.
        std::fs::write(dir.join(PID_FILE), record(1)).unwrap();
        assert_eq!(kill_stale_workers(tmp.path()), 1);
        worker.wait().await.unwrap();
        owner.kill().await.unwrap();
    }
}

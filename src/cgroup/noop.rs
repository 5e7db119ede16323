//! The driver of degraded mode: touches nothing and reports `enforcement: none`. The supervisor
//! then watches each worker's memory from outside (RSS) and stops workers by process group.

use std::path::PathBuf;

use super::{CgroupDriver, CgroupError, CgroupStats, Enforcement, Leftovers, Limits};

/// Enforces nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopDriver;

impl CgroupDriver for NoopDriver {
    fn enforcement(&self) -> Enforcement {
        Enforcement::None
    }
    fn controllers(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn prepare(&self) -> Result<Leftovers, CgroupError> {
        Ok(Leftovers::default())
    }
    fn create(&self, _worker: &str, _limits: &Limits) -> Result<(), CgroupError> {
        Ok(())
    }
    fn set_cpu_quota(&self, _worker: &str, _limits: &Limits) -> Result<(), CgroupError> {
        Ok(())
    }
    fn sets_cpu_quota(&self) -> bool {
        false
    }
    fn procs_files(&self, _worker: &str) -> Vec<PathBuf> {
        Vec::new()
    }
    fn leaf_dirs(&self, _worker: &str) -> Vec<PathBuf> {
        Vec::new()
    }
    fn stats(&self, _worker: &str) -> Result<CgroupStats, CgroupError> {
        Ok(CgroupStats::default())
    }
    fn pids(&self, _worker: &str) -> Result<Vec<u32>, CgroupError> {
        Ok(Vec::new())
    }
    fn kill(&self, _worker: &str) -> Result<(), CgroupError> {
        Ok(())
    }
    fn remove(&self, _worker: &str) -> Result<(), CgroupError> {
        Ok(())
    }
    fn remove_department(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}

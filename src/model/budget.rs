//! Worker resources and the department budget they are checked against.

use super::units::{ByteSize, Cpu};

/// Department-wide upper bounds, checked at load and on every scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Maximum number of workers over all pools.
    pub max_workers: u32,
    /// Maximum CPU over all workers, in cores.
    pub cpu: Cpu,
    /// Maximum memory over all workers.
    pub memory: ByteSize,
}

/// CPU, memory and process limits of one worker, and the JVM sizing derived from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerResources {
    /// CPU quota, in cores (e.g. 0.5).
    pub cpu: Cpu,
    /// Memory limit of the worker's cgroup.
    pub memory: ByteSize,
    /// Maximum number of processes/threads in the worker's cgroup.
    pub pids: u32,
    /// Heap as a percentage of `memory` (1..=95).
    pub heap_percent: u8,
    /// An explicit heap size; overrides `heap_percent`.
    pub heap: Option<ByteSize>,
}

impl WorkerResources {
    /// The JVM heap (`-Xmx`/`-Xms`) for these resources.
    pub fn heap_bytes(&self) -> u64 {
        match self.heap {
            Some(heap) => heap.bytes(),
            None => {
                self.memory
                    .bytes()
                    .saturating_mul(u64::from(self.heap_percent))
                    / 100
            }
        }
    }

    /// `-XX:ActiveProcessorCount`: the CPU quota rounded up, at least 1.
    pub fn active_processor_count(&self) -> u32 {
        self.cpu.millis().div_ceil(1000).max(1)
    }
}

/// Resources asked for by a set of pools, to compare with a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceUsage {
    /// Number of workers.
    pub workers: u64,
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl ResourceUsage {
    /// Sum over `(worker count, resources per worker)` pairs.
    pub fn of(pools: impl IntoIterator<Item = (u32, WorkerResources)>) -> Self {
        pools
            .into_iter()
            .fold(Self::default(), |acc, (count, worker)| Self {
                workers: acc.workers + u64::from(count),
                cpu_millis: acc.cpu_millis + u64::from(count) * u64::from(worker.cpu.millis()),
                memory_bytes: acc.memory_bytes + u64::from(count) * worker.memory.bytes(),
            })
    }

    /// Every way this usage exceeds `budget`, as messages naming the budget and the figure.
    pub fn exceeds(&self, budget: &Budget) -> Vec<String> {
        let mut over = Vec::new();
        if self.workers > u64::from(budget.max_workers) {
            over.push(format!(
                "{} workers exceed the department budget of {} workers (budget.max_workers)",
                self.workers, budget.max_workers
            ));
        }
        if self.cpu_millis > u64::from(budget.cpu.millis()) {
            over.push(format!(
                "{} CPU exceed the department budget of {} CPU (budget.cpu)",
                Cpu::from_millis(self.cpu_millis.min(u64::from(u32::MAX)) as u32),
                budget.cpu
            ));
        }
        if self.memory_bytes > budget.memory.bytes() {
            over.push(format!(
                "{} of memory exceed the department budget of {} (budget.memory)",
                ByteSize::new(self.memory_bytes),
                budget.memory
            ));
        }
        over
    }
}
#[cfg(test)]
mod tests {
    use super::super::units::MIB;
    use super::*;

    fn resources(cpu: u32, memory_mib: u64) -> WorkerResources {
        WorkerResources {
            cpu: Cpu::from_millis(cpu),
            memory: ByteSize::mib(memory_mib),
            pids: 512,
            heap_percent: 75,
            heap: None,
        }
    }

    #[test]
    fn heap_is_derived_from_memory_unless_given() {
        let mut r = resources(500, 1024);
        assert_eq!(r.heap_bytes(), 768 * MIB);
        r.heap = Some(ByteSize::mib(300));
        assert_eq!(r.heap_bytes(), 300 * MIB);
    }

    #[test]
    fn processor_count_rounds_the_quota_up() {
        assert_eq!(resources(500, 512).active_processor_count(), 1);
        assert_eq!(resources(1000, 512).active_processor_count(), 1);
        assert_eq!(resources(1500, 512).active_processor_count(), 2);
    }

    #[test]
    fn usage_over_budget_names_the_budget_and_the_figure() {
        let usage = ResourceUsage::of([(2, resources(1000, 1024)), (1, resources(1500, 2048))]);
        assert_eq!(usage.workers, 3);
        assert_eq!(usage.cpu_millis, 3500);
        let budget = Budget {
            max_workers: 2,
            cpu: Cpu::from_millis(3000),
            memory: ByteSize::mib(4096),
        };
        let over = usage.exceeds(&budget);
        assert_eq!(over.len(), 2, "{over:?}");
        assert!(over[0].contains("3 workers") && over[0].contains("2 workers"));
        assert!(over[1].contains("3.5 CPU") && over[1].contains("3 CPU"));
    }
}

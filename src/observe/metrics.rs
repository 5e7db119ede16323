//! The department's Prometheus registry and the worker metrics.
//!
//! Names follow `kcs_<noun>_<unit>[_total]`; every series carries the constant label
//! `department`. Labels are bounded: pool and worker ids (bounded by the budget), exit reason
//! codes, states and enforcement modes, never free text.

use std::collections::HashMap;

use prometheus::{
    CounterVec, Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::events::Event;
use crate::model::{CgroupStats, Enforcement, ExitReason, WorkerId, WorkerPhase};

/// Prefix of every metric name.
pub const NAMESPACE: &str = "kcs";

/// Every phase a worker can be in, for the state gauge.
const PHASES: [WorkerPhase; 7] = [
    WorkerPhase::Starting,
    WorkerPhase::Ready,
    WorkerPhase::Running,
    WorkerPhase::Stopping,
    WorkerPhase::Backoff,
    WorkerPhase::Held,
    WorkerPhase::Stopped,
];

/// The registry and the worker metrics of one department.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    events_total: IntCounterVec,
    worker_up: IntGaugeVec,
    worker_state: IntGaugeVec,
    worker_restarts_total: IntCounterVec,
    worker_oom_kills_total: IntCounterVec,
    worker_cpu_seconds_total: CounterVec,
    worker_cpu_throttled_seconds_total: CounterVec,
    worker_cpu_throttled_periods_total: IntCounterVec,
    worker_memory_usage_bytes: IntGaugeVec,
    worker_memory_limit_bytes: IntGaugeVec,
    worker_cpu_limit_cores: GaugeVec,
    worker_cpu_boost_cores: GaugeVec,
    enforcement: IntGaugeVec,
    policy_refusals_total: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

impl Metrics {
    /// The metrics of `department`, registered in a fresh registry.
    pub fn new(department: &str) -> Self {
        let labels = HashMap::from([("department".to_string(), department.to_string())]);
        let registry = Registry::new_custom(None, Some(labels)).expect("constant labels are valid");
        let w = &["pool", "worker"];
        let m = Self {
            events_total: IntCounterVec::new(
                opts("events_total", "Supervisor events, by event code."),
                &["event"],
            )
            .expect("valid metric"),
            worker_up: IntGaugeVec::new(
                opts("worker_up", "1 when the worker answers GET /health with 200."),
                w,
            )
            .expect("valid metric"),
            worker_state: IntGaugeVec::new(
                opts("worker_state", "1 for the worker's current lifecycle state."),
                &["pool", "worker", "state"],
            )
            .expect("valid metric"),
            worker_restarts_total: IntCounterVec::new(
                opts("worker_restarts_total", "Worker process exits followed by a restart or hold, by reason."),
                &["pool", "worker", "reason"],
            )
            .expect("valid metric"),
            worker_oom_kills_total: IntCounterVec::new(
                opts("worker_oom_kills_total", "Worker processes killed by the kernel OOM killer at the cgroup memory limit."),
                w,
            )
            .expect("valid metric"),
            worker_cpu_seconds_total: CounterVec::new(
                opts("worker_cpu_seconds_total", "CPU time used by the worker's cgroup."),
                w,
            )
            .expect("valid metric"),
            worker_cpu_throttled_seconds_total: CounterVec::new(
                opts("worker_cpu_throttled_seconds_total", "Time the worker's cgroup was throttled by its CPU quota."),
                w,
            )
            .expect("valid metric"),
            worker_cpu_throttled_periods_total: IntCounterVec::new(
                opts("worker_cpu_throttled_periods_total", "CFS periods in which the worker's cgroup was throttled."),
                w,
            )
            .expect("valid metric"),
            worker_memory_usage_bytes: IntGaugeVec::new(
                opts("worker_memory_usage_bytes", "Memory used by the worker (cgroup usage, or RSS when not enforced)."),
                w,
            )
            .expect("valid metric"),
            worker_memory_limit_bytes: IntGaugeVec::new(
                opts("worker_memory_limit_bytes", "Memory limit of the worker."),
                w,
            )
            .expect("valid metric"),
            worker_cpu_limit_cores: GaugeVec::new(
                opts("worker_cpu_limit_cores", "CPU quota of the worker, in cores."),
                w,
            )
            .expect("valid metric"),
            worker_cpu_boost_cores: GaugeVec::new(
                opts("worker_cpu_boost_cores", "CPU added to a starting worker's quota out of the department's unused budget (0 once it is ready)."),
                w,
            )
            .expect("valid metric"),
            enforcement: IntGaugeVec::new(
                opts("cgroup_enforcement", "1 for the active enforcement mode of worker limits (cgroup_v1, cgroup_v2, none)."),
                &["mode"],
            )
            .expect("valid metric"),
            policy_refusals_total: IntCounterVec::new(
                opts("policy_refusals_total", "Connector creates and updates refused by the guardrails, by broken rule id (a refusal counts once per rule)."),
                &["rule"],
            )
            .expect("valid metric"),
            registry,
        };
        for c in [
            Box::new(m.events_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.worker_up.clone()),
            Box::new(m.worker_state.clone()),
            Box::new(m.worker_restarts_total.clone()),
            Box::new(m.worker_oom_kills_total.clone()),
            Box::new(m.worker_cpu_seconds_total.clone()),
            Box::new(m.worker_cpu_throttled_seconds_total.clone()),
            Box::new(m.worker_cpu_throttled_periods_total.clone()),
            Box::new(m.worker_memory_usage_bytes.clone()),
            Box::new(m.worker_memory_limit_bytes.clone()),
            Box::new(m.worker_cpu_limit_cores.clone()),
            Box::new(m.worker_cpu_boost_cores.clone()),
            Box::new(m.enforcement.clone()),
            Box::new(m.policy_refusals_total.clone()),
        ] {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// The registry, for other modules to register their collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Counts `event` and updates the metrics it carries (each event says which:
    /// [`super::events::TypedEvent::record`]).
    pub fn record(&self, event: &Event) {
        self.events_total.with_label_values(&[event.code()]).inc();
        event.typed().record(self);
    }

    /// A worker's process ended with a failure or for an admin's restart.
    pub(super) fn worker_restarted(&self, worker: &WorkerId, reason: &ExitReason) {
        self.worker_restarts_total
            .with_label_values(&[worker.pool.as_str(), &worker.to_string(), reason.code()])
            .inc();
    }

    /// The kernel's OOM killer killed a worker.
    pub(super) fn worker_oom_killed(&self, worker: &WorkerId) {
        self.worker_oom_kills_total
            .with_label_values(&[worker.pool.as_str(), &worker.to_string()])
            .inc();
    }

    /// A worker's start-up CPU boost, in cores (0 once it ended).
    pub(super) fn cpu_boost(&self, worker: &WorkerId, cores: f64) {
        self.worker_cpu_boost_cores
            .with_label_values(&[worker.pool.as_str(), &worker.to_string()])
            .set(cores);
    }

    /// The guardrails refused a change for these rules.
    pub(super) fn policy_refused(&self, rules: &[String]) {
        for rule in rules {
            self.policy_refusals_total.with_label_values(&[rule]).inc();
        }
    }

    /// The enforcement mode in effect.
    pub(super) fn set_enforcement(&self, active: Enforcement) {
        for mode in Enforcement::ALL {
            self.enforcement
                .with_label_values(&[mode.as_str()])
                .set(i64::from(mode == active));
        }
    }

    /// Declares a worker: its limits, its state, and zeroed counters (so rates start at 0).
    pub fn worker_added(&self, pool: &str, worker: &str, cpu_cores: f64, memory_limit: u64) {
        let l = [pool, worker];
        self.worker_cpu_limit_cores
            .with_label_values(&l)
            .set(cpu_cores);
        self.worker_cpu_boost_cores.with_label_values(&l).set(0.0);
        self.worker_memory_limit_bytes
            .with_label_values(&l)
            .set(memory_limit as i64);
        self.worker_oom_kills_total.with_label_values(&l).inc_by(0);
        self.worker_cpu_seconds_total
            .with_label_values(&l)
            .inc_by(0.0);
        self.worker_cpu_throttled_seconds_total
            .with_label_values(&l)
            .inc_by(0.0);
        for reason in ExitReason::CODES {
            if reason != "shutdown" {
                self.worker_restarts_total
                    .with_label_values(&[pool, worker, reason])
                    .inc_by(0);
            }
        }
        self.worker_phase(pool, worker, WorkerPhase::Starting);
    }

    /// Sets a worker's state gauges.
    pub fn worker_phase(&self, pool: &str, worker: &str, phase: WorkerPhase) {
        self.worker_up
            .with_label_values(&[pool, worker])
            .set(i64::from(phase.is_up()));
        for p in PHASES {
            self.worker_state
                .with_label_values(&[pool, worker, p.as_str()])
                .set(i64::from(p == phase));
        }
    }

    /// Adds what a worker used since the last sample (`delta`) and sets its memory gauge.
    pub fn worker_usage(
        &self,
        pool: &str,
        worker: &str,
        delta: &CgroupStats,
        memory_bytes: Option<u64>,
    ) {
        let l = [pool, worker];
        if let Some(us) = delta.cpu_usage_usec {
            self.worker_cpu_seconds_total
                .with_label_values(&l)
                .inc_by(us as f64 / 1e6);
        }
        if let Some(us) = delta.cpu_throttled_usec {
            self.worker_cpu_throttled_seconds_total
                .with_label_values(&l)
                .inc_by(us as f64 / 1e6);
        }
        if let Some(n) = delta.cpu_nr_throttled {
            self.worker_cpu_throttled_periods_total
                .with_label_values(&l)
                .inc_by(n);
        }
        if let Some(bytes) = memory_bytes {
            self.worker_memory_usage_bytes
                .with_label_values(&l)
                .set(bytes as i64);
        }
    }

    /// Declares the guardrails' rule ids, so `kcs_policy_refusals_total` starts at 0 for each
    /// (rates and alerts need the series before the first refusal).
    pub fn policy_rules<'r>(&self, rules: impl IntoIterator<Item = &'r str>) {
        for rule in rules {
            self.policy_refusals_total
                .with_label_values(&[rule])
                .inc_by(0);
        }
    }

    /// Forgets a worker removed by a scale down.
    pub fn worker_removed(&self, pool: &str, worker: &str) {
        let l = [pool, worker];
        for vec in [
            &self.worker_up,
            &self.worker_memory_usage_bytes,
            &self.worker_memory_limit_bytes,
        ] {
            let _ = vec.remove_label_values(&l);
        }
        let _ = self.worker_oom_kills_total.remove_label_values(&l);
        let _ = self
            .worker_cpu_throttled_periods_total
            .remove_label_values(&l);
        for vec in [
            &self.worker_cpu_seconds_total,
            &self.worker_cpu_throttled_seconds_total,
        ] {
            let _ = vec.remove_label_values(&l);
        }
        let _ = self.worker_cpu_limit_cores.remove_label_values(&l);
        let _ = self.worker_cpu_boost_cores.remove_label_values(&l);
        for p in PHASES {
            let _ = self
                .worker_state
                .remove_label_values(&[pool, worker, p.as_str()]);
        }
        for reason in ExitReason::CODES {
            let _ = self
                .worker_restarts_total
                .remove_label_values(&[pool, worker, reason]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::events::{
        EnforcementSelected, PolicyRejected, WorkerExited, WorkerOomKilled,
    };

    #[test]
    fn events_drive_counters_and_the_text_format_names_the_department() {
        let m = Metrics::new("dept1");
        m.worker_added("shared", "shared-0", 0.5, 1 << 30);
        let worker = WorkerId::new("shared", 0);
        m.record(&Event::from(WorkerExited {
            worker: worker.clone(),
            reason: ExitReason::OomKilled,
            stderr_tail: Vec::new(),
        }));
        m.record(&Event::from(WorkerOomKilled {
            worker: worker.clone(),
            oom_kills: 1,
        }));
        m.record(&Event::from(EnforcementSelected {
            mode: Enforcement::CgroupV1,
            controllers: vec!["cpu"],
        }));
        m.worker_phase("shared", "shared-0", WorkerPhase::Ready);
        let text = m.encode();
        for line in [
            r#"kcs_worker_restarts_total{pool="shared",reason="oom_killed",worker="shared-0",department="dept1"} 1"#,
            r#"kcs_worker_restarts_total{pool="shared",reason="exit_code",worker="shared-0",department="dept1"} 0"#,
            r#"kcs_worker_oom_kills_total{pool="shared",worker="shared-0",department="dept1"} 1"#,
            r#"kcs_cgroup_enforcement{mode="cgroup_v1",department="dept1"} 1"#,
            r#"kcs_cgroup_enforcement{mode="none",department="dept1"} 0"#,
            r#"kcs_worker_up{pool="shared",worker="shared-0",department="dept1"} 1"#,
            r#"kcs_worker_state{pool="shared",state="ready",worker="shared-0",department="dept1"} 1"#,
            r#"kcs_worker_cpu_limit_cores{pool="shared",worker="shared-0",department="dept1"} 0.5"#,
            r#"kcs_events_total{event="worker_exited",department="dept1"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        m.record(&Event::from(PolicyRejected {
            connector: "dept1-a".into(),
            operation: "create",
            principal: "p".into(),
            rules: vec!["naming.prefix".into(), "quota.connectors".into()],
        }));
        let text = m.encode();
        for line in [
            r#"kcs_policy_refusals_total{rule="naming.prefix",department="dept1"} 1"#,
            r#"kcs_policy_refusals_total{rule="quota.connectors",department="dept1"} 1"#,
            r#"kcs_events_total{event="policy_rejected",department="dept1"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        m.worker_removed("shared", "shared-0");
        assert!(!m.encode().contains("worker=\"shared-0\""));
    }
}

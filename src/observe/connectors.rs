//! The connector metrics: state of every connector and task as the supervisor's status poll
//! sees it, task counts, uptime, automatic restarts and holds, the department's quota usage,
//! and each connector's last successful activity (from Connect's own record counters).
//!
//! Labels are the pool, the connector name (bounded by the department's quotas), the task
//! number and Connect's state names: never free text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use time::OffsetDateTime;

use super::metrics::NAMESPACE;

/// Connect's connector and task states, as label values.
pub const STATES: [&str; 6] = [
    "running",
    "paused",
    "stopped",
    "failed",
    "unassigned",
    "restarting",
];

/// What the status poll saw of one connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorSample {
    /// Pool.
    pub pool: String,
    /// Connect's connector state (`RUNNING`...).
    pub state: String,
    /// Task states by task number.
    pub tasks: BTreeMap<u32, String>,
    /// Seconds since the supervisor saw it reach RUNNING (0 when not running).
    pub uptime_seconds: f64,
    /// Held by the auto-restart budget.
    pub held: bool,
    /// Restarts in its budget right now.
    pub restart_budget_used: u32,
    /// Its `tasks.max`.
    pub tasks_max: u32,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

/// The connector metrics of one department.
#[derive(Debug)]
pub struct ConnectorMetrics {
    state: IntGaugeVec,
    tasks: IntGaugeVec,
    failed_tasks: IntGaugeVec,
    task_state: IntGaugeVec,
    uptime: GaugeVec,
    auto_restarts: IntCounterVec,
    held: IntGaugeVec,
    budget_used: IntGaugeVec,
    last_activity: GaugeVec,
    quota_limit: IntGaugeVec,
    quota_usage: IntGaugeVec,
    known: Mutex<HashMap<String, (String, Vec<u32>)>>,
    activity: Mutex<HashMap<String, Activity>>,
}

/// Record counters of a connector across workers, and when they last rose.
#[derive(Debug, Clone, Default)]
struct Activity {
    per_worker: HashMap<String, f64>,
    last: Option<OffsetDateTime>,
}

impl ConnectorMetrics {
    /// Registers the connector metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let c = &["pool", "connector"];
        let m = Self {
            state: IntGaugeVec::new(
                opts("connector_state", "1 for the connector's current Connect state (running, paused, stopped, failed, unassigned, restarting), 0 for the others."),
                &["pool", "connector", "state"],
            )
            .expect("valid metric"),
            tasks: IntGaugeVec::new(opts("connector_tasks", "Tasks of the connector (total task count)."), c)
                .expect("valid metric"),
            failed_tasks: IntGaugeVec::new(
                opts("connector_failed_tasks", "Tasks of the connector in state FAILED."),
                c,
            )
            .expect("valid metric"),
            task_state: IntGaugeVec::new(
                opts("task_state", "1 for the task's current Connect state, 0 for the others."),
                &["pool", "connector", "task", "state"],
            )
            .expect("valid metric"),
            uptime: GaugeVec::new(
                opts("connector_uptime_seconds", "Seconds since the supervisor saw the connector reach RUNNING; 0 when not running."),
                c,
            )
            .expect("valid metric"),
            auto_restarts: IntCounterVec::new(
                opts("connector_auto_restarts_total", "Automatic restarts of the connector's failed connector instance and tasks."),
                c,
            )
            .expect("valid metric"),
            held: IntGaugeVec::new(
                opts("connector_held", "1 when the connector used up its restart budget and waits for an operator's restart."),
                c,
            )
            .expect("valid metric"),
            budget_used: IntGaugeVec::new(
                opts("connector_restart_budget_used", "Restarts (automatic, and of the worker it ran on) counted in the connector's budget now."),
                c,
            )
            .expect("valid metric"),
            last_activity: GaugeVec::new(
                opts("connector_last_activity_timestamp_seconds", "When the connector last moved records (Connect's source write / sink send counters rose), Unix time."),
                c,
            )
            .expect("valid metric"),
            quota_limit: IntGaugeVec::new(
                opts("quota_limit", "The department's quotas: connectors, tasks (sum of tasks.max), tasks_per_connector."),
                &["resource"],
            )
            .expect("valid metric"),
            quota_usage: IntGaugeVec::new(
                opts("quota_usage", "The department's use of each quota (tasks_per_connector: the largest tasks.max)."),
                &["resource"],
            )
            .expect("valid metric"),
            known: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
        };
        for c in [
            Box::new(m.state.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.tasks.clone()),
            Box::new(m.failed_tasks.clone()),
            Box::new(m.task_state.clone()),
            Box::new(m.uptime.clone()),
            Box::new(m.auto_restarts.clone()),
            Box::new(m.held.clone()),
            Box::new(m.budget_used.clone()),
            Box::new(m.last_activity.clone()),
            Box::new(m.quota_limit.clone()),
            Box::new(m.quota_usage.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// Sets the quota limits.
    pub fn set_quota_limits(&self, connectors: u32, tasks: u32, tasks_per_connector: u32) {
        for (r, v) in [
            ("connectors", connectors),
            ("tasks", tasks),
            ("tasks_per_connector", tasks_per_connector),
        ] {
            self.quota_limit.with_label_values(&[r]).set(i64::from(v));
        }
    }

    /// Replaces the connector series with what the poll of `pools` saw (connectors of pools
    /// that were not read keep their series).
    pub fn update(&self, connectors: &BTreeMap<String, ConnectorSample>, pools_read: &[String]) {
        let mut known = self.known.lock().expect("connector metrics lock");
        let gone: Vec<String> = known
            .iter()
            .filter(|(name, (pool, _))| {
                pools_read.contains(pool) && connectors.get(*name).is_none_or(|c| &c.pool != pool)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some((pool, tasks)) = known.remove(&name) {
                self.forget(&pool, &name, &tasks);
            }
        }
        for (name, c) in connectors {
            let l = [c.pool.as_str(), name.as_str()];
            let state = c.state.to_ascii_lowercase();
            for s in STATES {
                self.state
                    .with_label_values(&[&c.pool, name, s])
                    .set(i64::from(s == state));
            }
            self.tasks.with_label_values(&l).set(c.tasks.len() as i64);
            self.failed_tasks
                .with_label_values(&l)
                .set(c.tasks.values().filter(|s| *s == "FAILED").count() as i64);
            let task_ids: Vec<u32> = c.tasks.keys().copied().collect();
            if let Some((_, old)) = known.get(name) {
                for t in old.iter().filter(|t| !c.tasks.contains_key(t)) {
                    for s in STATES {
                        let _ = self.task_state.remove_label_values(&[
                            &c.pool,
                            name,
                            &t.to_string(),
                            s,
                        ]);
                    }
                }
            }
            for (t, task_state) in &c.tasks {
                let task_state = task_state.to_ascii_lowercase();
                for s in STATES {
                    self.task_state
                        .with_label_values(&[&c.pool, name, &t.to_string(), s])
                        .set(i64::from(s == task_state));
                }
            }
            self.uptime.with_label_values(&l).set(c.uptime_seconds);
            self.auto_restarts.with_label_values(&l).inc_by(0);
            self.held.with_label_values(&l).set(i64::from(c.held));
            self.budget_used
                .with_label_values(&l)
                .set(i64::from(c.restart_budget_used));
            known.insert(name.clone(), (c.pool.clone(), task_ids));
        }
        let total_tasks: u64 = connectors.values().map(|c| u64::from(c.tasks_max)).sum();
        let widest = connectors.values().map(|c| c.tasks_max).max().unwrap_or(0);
        self.quota_usage
            .with_label_values(&["connectors"])
            .set(connectors.len() as i64);
        self.quota_usage
            .with_label_values(&["tasks"])
            .set(total_tasks as i64);
        self.quota_usage
            .with_label_values(&["tasks_per_connector"])
            .set(i64::from(widest));
    }

    fn forget(&self, pool: &str, name: &str, tasks: &[u32]) {
        let l = [pool, name];
        for s in STATES {
            let _ = self.state.remove_label_values(&[pool, name, s]);
            for t in tasks {
                let _ = self
                    .task_state
                    .remove_label_values(&[pool, name, &t.to_string(), s]);
            }
        }
        for v in [
            &self.tasks,
            &self.failed_tasks,
            &self.held,
            &self.budget_used,
        ] {
            let _ = v.remove_label_values(&l);
        }
        let _ = self.uptime.remove_label_values(&l);
        let _ = self.last_activity.remove_label_values(&l);
        let _ = self.auto_restarts.remove_label_values(&l);
        self.activity.lock().expect("activity lock").remove(name);
    }

    /// Counts an automatic restart of `connector`.
    pub fn auto_restarted(&self, pool: &str, connector: &str) {
        self.auto_restarts
            .with_label_values(&[pool, connector])
            .inc();
    }

    /// Takes a worker's record counters per connector (from its exporter) seen at `now`; a
    /// counter that rose marks the connector active.
    pub fn record_activity(
        &self,
        worker: &str,
        totals: &BTreeMap<String, f64>,
        now: OffsetDateTime,
    ) {
        let known = self.known.lock().expect("connector metrics lock");
        let mut activity = self.activity.lock().expect("activity lock");
        for (connector, total) in totals {
            let a = activity.entry(connector.clone()).or_default();
            let before = a.per_worker.insert(worker.to_string(), *total);
            // A first sight with records counts too: the records moved before we looked.
            if before.is_none_or(|b| *total > b) && *total > 0.0 {
                a.last = Some(now);
                if let Some((pool, _)) = known.get(connector) {
                    self.last_activity
                        .with_label_values(&[pool, connector])
                        .set(now.unix_timestamp() as f64);
                }
            }
        }
    }

    /// When `connector` last moved records.
    pub fn last_activity(&self, connector: &str) -> Option<OffsetDateTime> {
        self.activity
            .lock()
            .expect("activity lock")
            .get(connector)
            .and_then(|a| a.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pool: &str, state: &str, tasks: &[(u32, &str)]) -> ConnectorSample {
        ConnectorSample {
            pool: pool.into(),
            state: state.into(),
            tasks: tasks.iter().map(|(t, s)| (*t, s.to_string())).collect(),
            uptime_seconds: 12.0,
            held: false,
            restart_budget_used: 1,
            tasks_max: tasks.len() as u32,
        }
    }

    fn text(r: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn states_tasks_and_quota_usage_follow_the_poll() {
        let r = Registry::new();
        let m = ConnectorMetrics::new(&r);
        m.set_quota_limits(50, 500, 10);
        let mut all = BTreeMap::new();
        all.insert(
            "a".to_string(),
            sample("p", "RUNNING", &[(0, "RUNNING"), (1, "FAILED")]),
        );
        all.insert("b".to_string(), sample("p", "PAUSED", &[(0, "PAUSED")]));
        m.update(&all, &["p".into()]);
        let t = text(&r);
        for line in [
            r#"kcs_connector_state{connector="a",pool="p",state="running"} 1"#,
            r#"kcs_connector_state{connector="a",pool="p",state="failed"} 0"#,
            r#"kcs_connector_failed_tasks{connector="a",pool="p"} 1"#,
            r#"kcs_connector_tasks{connector="a",pool="p"} 2"#,
            r#"kcs_task_state{connector="a",pool="p",state="failed",task="1"} 1"#,
            r#"kcs_quota_usage{resource="connectors"} 2"#,
            r#"kcs_quota_usage{resource="tasks"} 3"#,
            r#"kcs_quota_limit{resource="tasks_per_connector"} 10"#,
            r#"kcs_connector_auto_restarts_total{connector="b",pool="p"} 0"#,
        ] {
            assert!(t.contains(line), "missing {line} in\n{t}");
        }
        // b is deleted, a loses its task 1: their series go.
        all.remove("b");
        all.insert("a".to_string(), sample("p", "RUNNING", &[(0, "RUNNING")]));
        m.update(&all, &["p".into()]);
        let t = text(&r);
        assert!(!t.contains("connector=\"b\""), "{t}");
        assert!(!t.contains("task=\"1\""), "{t}");
        // A pool that was not read keeps its connectors.
        all.clear();
        m.update(&all, &["other".into()]);
        assert!(text(&r).contains("connector=\"a\""));
    }

    #[test]
    fn activity_is_when_record_counters_rise() {
        let r = Registry::new();
        let m = ConnectorMetrics::new(&r);
        let mut all = BTreeMap::new();
        all.insert("a".to_string(), sample("p", "RUNNING", &[(0, "RUNNING")]));
        m.update(&all, &["p".into()]);
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let totals = BTreeMap::from([("a".to_string(), 0.0)]);
        m.record_activity("p-0", &totals, t0);
        assert_eq!(m.last_activity("a"), None, "nothing moved yet");
        let totals = BTreeMap::from([("a".to_string(), 5.0)]);
        m.record_activity("p-0", &totals, t0 + time::Duration::seconds(15));
        m.record_activity("p-0", &totals, t0 + time::Duration::seconds(30));
        assert_eq!(m.last_activity("a"), Some(t0 + time::Duration::seconds(15)));
        assert!(text(&r).contains(
            r#"kcs_connector_last_activity_timestamp_seconds{connector="a",pool="p"} 1700000015"#
        ));
    }
}

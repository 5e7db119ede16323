//! Telemetry as typed events: one [`Observer`] per department owns the metrics registry, the
//! bounded event list, the worker logs, the re-exposed Connect metrics, the Kafka check and the
//! audit trail. [`Observer::emit`] is the one place where an event becomes a log line, a metric
//! update and an entry in the list (with its time, department, connector, principal and outcome).
//!
//! Nothing here decides anything about workers or connectors; it only records what the
//! supervisor, the connector watch and the API report.

pub mod audit;
pub mod connectors;
pub mod events;
pub mod exposition;
pub mod health;
pub mod http;
pub mod kafka;
pub mod logs;
pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

pub use events::{ConnectorChange, Event, EventLog, EventRecord, Level, TypedEvent};
pub use metrics::Metrics;

use crate::model::{Department, LogSettings, SecretRules};

/// Events kept in memory per department (oldest dropped first).
pub const EVENT_CAPACITY: usize = 2000;
/// Worker exits a subscriber of [`Observer::subscribe_exits`] may fall behind by before it
/// misses some.
pub const EXIT_CAPACITY: usize = 1024;
/// How long shutdown waits for Kafka to take the waiting log and audit records.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The department's telemetry.
#[derive(Debug)]
pub struct Observer {
    department: String,
    metrics: Metrics,
    events: EventLog,
    logs: Arc<logs::LogHub>,
    workers: exposition::WorkerSeries,
    connectors: connectors::ConnectorMetrics,
    api: http::ApiMetrics,
    kafka: Option<Arc<health::KafkaCheck>>,
    audit: Option<audit::AuditLog>,
    start_gate: kafka::StartGate,
    exits: tokio::sync::broadcast::Sender<events::WorkerExited>,
}

impl Observer {
    /// Telemetry of `department` kept in memory only: no forwarding, no Kafka check, no audit
    /// file (for tests and tools).
    pub fn new(department: &str) -> Self {
        let metrics = Metrics::new(department);
        let logs = Arc::new(logs::LogHub::new(
            department,
            &LogSettings {
                forward: false,
                ..LogSettings::default()
            },
            &SecretRules::default(),
            metrics.registry(),
            None,
        ));
        Self::assemble(department, metrics, logs, None)
    }

    fn assemble(
        department: &str,
        metrics: Metrics,
        logs: Arc<logs::LogHub>,
        audit: Option<audit::AuditLog>,
    ) -> Self {
        let connectors = connectors::ConnectorMetrics::new(metrics.registry());
        let api = http::ApiMetrics::new(metrics.registry());
        Self {
            department: department.to_string(),
            events: EventLog::new(EVENT_CAPACITY),
            logs,
            workers: exposition::WorkerSeries::default(),
            connectors,
            api,
            kafka: None,
            audit,
            start_gate: kafka::StartGate::opened(),
            metrics,
            exits: tokio::sync::broadcast::channel(EXIT_CAPACITY).0,
        }
    }

    /// The full telemetry of a running department: logs forwarded to its log topic (per
    /// `[logs]`), the Kafka check (per `[health]`), the audit trail in its state folder (per
    /// `[audit]`), and the secrets its logs must never show.
    pub fn for_department(department: &Department) -> Arc<Self> {
        let o = &department.observe;
        let metrics = Metrics::new(&department.id);
        let producer = kafka::client_settings(department, &o.logs.producer);
        // Opened by the supervisor when its workers' first start is over
        // ([`Observer::first_start_over`]).
        let gate = kafka::StartGate::default();
        let logs = Arc::new(logs::LogHub::new(
            &department.id,
            &o.logs,
            &department.secrets,
            metrics.registry(),
            Some((&producer, &gate)),
        ));
        // The department's own credentials never show in worker logs either.
        let rules = &department.secrets;
        let mut secrets: Vec<String> = Vec::new();
        for map in [
            &department.kafka.client,
            &o.logs.producer,
            &o.health.kafka_client,
        ] {
            for (k, v) in map {
                if rules.is_sensitive(k) || k.contains("password") {
                    secrets.push(v.clone());
                    if let Some((_, password)) = kafka::jaas_credentials(v) {
                        secrets.push(password);
                    }
                }
            }
        }
        logs.redactor().add_secrets(secrets);
        let audit_forwarder = o.audit.topic.as_ref().and_then(|topic| {
            let registry = metrics.registry();
            let counters = audit_counters(registry);
            match kafka::Forwarder::start("audit", &producer, topic, 10_000, counters, &gate) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::error!(error = %e, "Audit records will not be sent to Kafka.");
                    None
                }
            }
        });
        let audit = audit::AuditLog::open(&department.supervisor.state_dir, audit_forwarder);
        let mut observer = Self::assemble(&department.id, metrics, logs, Some(audit));
        observer.start_gate = gate.clone();
        observer.connectors.set_quota_limits(
            department.policy.quotas.max_connectors,
            department.policy.quotas.max_tasks_total,
            department.policy.quotas.max_tasks_per_connector,
        );
        let check = o
            .health
            .kafka_check
            .then(|| health::KafkaCheck::new(observer.metrics.registry()));
        observer.kafka = check.clone();
        let observer = Arc::new(observer);
        if let Some(check) = check {
            let settings = kafka::client_settings(department, &o.health.kafka_client);
            let topic = department
                .cluster_identity(&department.default_pool)
                .status_topic;
            check.start(
                &settings,
                &topic,
                o.health.kafka_interval,
                &gate,
                Arc::downgrade(&observer),
            );
        }
        observer
    }

    /// Lets the supervisor's own Kafka clients connect: called when the workers' first start is
    /// over (see [`kafka::StartGate`]); later calls change nothing.
    pub fn first_start_over(&self) {
        if self.start_gate.open() {
            tracing::debug!(department = %self.department, "The workers' first start is over: log forwarding and the Kafka check connect.");
        }
    }

    /// Whether [`Observer::first_start_over`] was called (always, for in-memory telemetry).
    pub fn kafka_clients_started(&self) -> bool {
        self.start_gate.is_open()
    }

    /// The department.
    pub fn department(&self) -> &str {
        &self.department
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The recent events.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The worker logs.
    pub fn logs(&self) -> &Arc<logs::LogHub> {
        &self.logs
    }

    /// Connect's metrics scraped from the workers.
    pub fn worker_series(&self) -> &exposition::WorkerSeries {
        &self.workers
    }

    /// The connector metrics.
    pub fn connectors(&self) -> &connectors::ConnectorMetrics {
        &self.connectors
    }

    /// The API's metrics.
    pub fn api(&self) -> &http::ApiMetrics {
        &self.api
    }

    /// The Kafka check, when it is on.
    pub fn kafka(&self) -> Option<&Arc<health::KafkaCheck>> {
        self.kafka.as_ref()
    }

    /// The audit trail (none for in-memory telemetry).
    pub fn audit(&self) -> Option<&audit::AuditLog> {
        self.audit.as_ref()
    }

    /// Everything `/metrics` shows: the registry and the workers' Connect metrics.
    pub fn encode_metrics(&self) -> String {
        let mut text = self.metrics.encode();
        self.workers.encode(&mut text);
        text
    }

    /// Stops the Kafka check and gives Kafka a few seconds to take waiting records.
    pub fn close(&self) {
        if let Some(k) = &self.kafka {
            k.stop();
        }
        self.logs.close(CLOSE_TIMEOUT);
        if let Some(a) = &self.audit {
            a.close(CLOSE_TIMEOUT);
        }
    }

    /// Records `event` as the event says it shows ([`TypedEvent`]): its log line, the event
    /// counter and the metrics it carries, and (unless it is routine) an entry in the event
    /// list. A worker's exit also goes to the subscribers of [`Observer::subscribe_exits`].
    pub fn emit(&self, event: impl Into<Event>) {
        let event = event.into();
        let typed = event.typed();
        typed.log(&self.department);
        self.metrics.record(&event);
        if let Event::WorkerExited(exit) = &event {
            // No subscriber (no connector watch) is fine: nobody needs the exit then.
            let _ = self.exits.send(exit.clone());
        }
        if typed.routine() {
            return;
        }
        self.events.push(EventRecord {
            seq: 0,
            time: time::OffsetDateTime::now_utc(),
            department: self.department.clone(),
            event: typed.code().as_str(),
            level: typed.level(),
            pool: typed.pool(),
            worker: typed.worker(),
            connector: typed.connector().map(str::to_string),
            principal: typed.principal().map(str::to_string),
            outcome: typed.outcome(),
            message: typed.message(),
        });
    }

    /// Every worker exit from now on, in order, whatever else happens meanwhile (the event list
    /// keeps only the last [`EVENT_CAPACITY`] events of every kind; this channel only exits). A
    /// subscriber more than [`EXIT_CAPACITY`] exits behind is told how many it missed.
    pub fn subscribe_exits(&self) -> tokio::sync::broadcast::Receiver<events::WorkerExited> {
        self.exits.subscribe()
    }
}

fn audit_counters(registry: &prometheus::Registry) -> kafka::ForwardCounters {
    use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
    let forwarded = IntCounter::with_opts(
        Opts::new(
            "audit_records_forwarded_total",
            "Audit records Kafka acknowledged on the audit topic.",
        )
        .namespace(metrics::NAMESPACE),
    )
    .expect("valid metric");
    let dropped = IntCounterVec::new(
        Opts::new(
            "audit_records_dropped_total",
            "Audit records not sent to the audit topic (they are still in the audit file).",
        )
        .namespace(metrics::NAMESPACE),
        &["reason"],
    )
    .expect("valid metric");
    let queued = IntGauge::with_opts(
        Opts::new(
            "audit_forward_queue_records",
            "Audit records waiting to be sent to Kafka.",
        )
        .namespace(metrics::NAMESPACE),
    )
    .expect("valid metric");
    for c in [
        Box::new(forwarded.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(dropped.clone()),
        Box::new(queued.clone()),
    ] {
        registry.register(c).expect("metric names are unique");
    }
    kafka::ForwardCounters {
        forwarded,
        dropped_full: dropped.with_label_values(&["buffer_full"]),
        dropped_failed: dropped.with_label_values(&["delivery_failed"]),
        queued,
    }
}

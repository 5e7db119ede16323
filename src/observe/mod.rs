//! Telemetry as typed events: one [`Observer`] per department owns the metrics registry and
//! the bounded event list, and [`Observer::emit`] is the one place where an event becomes a log
//! line, a metric update and an entry in the list (with its time and department).
//!
//! Nothing here decides anything about workers; it only records what the supervisor reports.
//! Later additions (connector, API and log metrics, the events HTTP API) register their own
//! collectors on [`Metrics::registry`] and read [`EventLog`].

pub mod events;
pub mod metrics;

pub use events::{Event, EventLog, EventRecord, Level};
pub use metrics::Metrics;

/// Events kept in memory per department (oldest dropped first).
pub const EVENT_CAPACITY: usize = 2000;

/// The department's telemetry: metrics and events.
#[derive(Debug)]
pub struct Observer {
    department: String,
    metrics: Metrics,
    events: EventLog,
}

impl Observer {
    /// Telemetry of `department`.
    pub fn new(department: &str) -> Self {
        Self {
            department: department.to_string(),
            metrics: Metrics::new(department),
            events: EventLog::new(EVENT_CAPACITY),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The recent events.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Records `event`: a log line, the event counter (and the metrics the event carries), and
    /// an entry in the event list.
    pub fn emit(&self, event: Event) {
        let code = event.code();
        let message = event.message();
        let worker = event.worker();
        let pool = event.pool();
        let department = self.department.as_str();
        let w = worker.as_deref().unwrap_or("");
        match event.level() {
            Level::Info => tracing::info!(department, event = code, worker = w, "{message}"),
            Level::Warn => tracing::warn!(department, event = code, worker = w, "{message}"),
            Level::Error => tracing::error!(department, event = code, worker = w, "{message}"),
        }
        self.metrics.record(&event);
        self.events.push(EventRecord {
            seq: 0,
            time: time::OffsetDateTime::now_utc(),
            department: self.department.clone(),
            event: code,
            level: event.level(),
            pool,
            worker,
            message,
        });
    }
}

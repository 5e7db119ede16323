//! Metrics of the supervisor's own HTTP API: requests by route template, method and status, and
//! their duration. Routes are axum's templates (`/connectors/{name}`), so label values stay
//! bounded whatever the callers send.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::metrics::NAMESPACE;

/// Label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Buckets of the request duration histogram, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 90.0,
];

/// The HTTP API's metrics.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

/// The method as a bounded label value.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl ApiMetrics {
    /// Registers the API metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "api_requests_total",
                "Requests to the supervisor's HTTP API, by route template, method and status.",
            )
            .namespace(NAMESPACE),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "api_request_duration_seconds",
                "Time to answer a request to the supervisor's HTTP API, by route template and method.",
            )
            .namespace(NAMESPACE)
            .buckets(DURATION_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("metric names are unique");
        registry
            .register(Box::new(duration.clone()))
            .expect("metric names are unique");
        Self { requests, duration }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }
}

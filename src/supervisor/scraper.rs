//! Connect's own metrics: every `metrics.scrape_interval`, each ready worker's JMX exporter is
//! scraped, relabelled ([`crate::observe::exposition`]) and kept for `/metrics`; a worker that is
//! down or does not answer has its series removed, so stale figures are never shown. Each
//! connector's record counters also give its last successful activity.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use prometheus::{GaugeVec, IntGaugeVec, Opts};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::Supervisor;
use crate::observe::exposition::{self, MAX_SERIES_PER_WORKER};
use crate::observe::metrics::NAMESPACE;

/// Longest a scrape of one worker may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// What the exporter is asked for: the classic text format.
const ACCEPT: &str = "text/plain; version=0.0.4";

struct ScrapeMetrics {
    up: IntGaugeVec,
    duration: GaugeVec,
}

impl ScrapeMetrics {
    fn new(sup: &Supervisor) -> Self {
        let up = IntGaugeVec::new(
            Opts::new(
                "worker_scrape_up",
                "1 when the last scrape of the worker's Connect metrics (JMX exporter) succeeded.",
            )
            .namespace(NAMESPACE),
            &["pool", "worker"],
        )
        .expect("valid metric");
        let duration = GaugeVec::new(
            Opts::new(
                "worker_scrape_duration_seconds",
                "Time the last scrape of the worker's Connect metrics took.",
            )
            .namespace(NAMESPACE),
            &["pool", "worker"],
        )
        .expect("valid metric");
        let registry = sup.observer.metrics().registry();
        let _ = registry.register(Box::new(up.clone()));
        let _ = registry.register(Box::new(duration.clone()));
        Self { up, duration }
    }
}

pub(super) async fn run(sup: Arc<Supervisor>) {
    let settings = sup.department.observe.metrics;
    if !settings.jmx_exporter {
        return;
    }
    let metrics = ScrapeMetrics::new(&sup);
    let mut shutdown = sup.shutdown.subscribe();
    let http = reqwest::Client::builder()
        .timeout(SCRAPE_TIMEOUT.min(settings.scrape_interval))
        .build()
        .expect("an HTTP client without TLS builds");
    // The first scrape comes soon after start, so the connector metrics show up quickly.
    let mut next = Instant::now() + Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.changed() => return,
        }
        next = Instant::now() + settings.scrape_interval;
        let targets = sup.metrics_targets();
        let series = sup.observer.worker_series();
        for gone in series.workers() {
            if !targets.iter().any(|(w, _, _)| *w == gone) {
                series.remove(&gone);
            }
        }
        let department = sup.department.id.clone();
        let scrapes = targets.into_iter().map(|(worker, pool, url)| {
            let http = http.clone();
            let department = department.clone();
            async move {
                let started = Instant::now();
                let text = async {
                    http.get(&url)
                        .header(reqwest::header::ACCEPT, ACCEPT)
                        .send()
                        .await?
                        .error_for_status()?
                        .text()
                        .await
                }
                .await;
                let result = text.map(|t| {
                    exposition::relabel(
                        &t,
                        &|name: &str| exposition::is_kept(name),
                        &[
                            ("pool", pool.as_str()),
                            ("worker", worker.as_str()),
                            ("department", department.as_str()),
                        ],
                        MAX_SERIES_PER_WORKER,
                    )
                });
                (worker, pool, started.elapsed(), result)
            }
        });
        for (worker, pool, took, result) in join_all(scrapes).await {
            metrics
                .duration
                .with_label_values(&[&pool, &worker])
                .set(took.as_secs_f64());
            match result {
                Ok(e) => {
                    metrics.up.with_label_values(&[&pool, &worker]).set(1);
                    sup.observer.connectors().record_activity(
                        &worker,
                        &e.activity,
                        OffsetDateTime::now_utc(),
                    );
                    if e.dropped_series > 0 {
                        tracing::warn!(
                            worker,
                            dropped = e.dropped_series,
                            "Too many series from the worker's exporter; some are left out."
                        );
                    }
                    series.set(&worker, e);
                }
                Err(e) => {
                    metrics.up.with_label_values(&[&pool, &worker]).set(0);
                    tracing::debug!(worker, error = %e, "Scraping the worker's Connect metrics failed.");
                    series.remove(&worker);
                }
            }
        }
    }
}

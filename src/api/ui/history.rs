//! The last hour of each worker's CPU and memory, for the overview's charts.
//!
//! The supervisor's sampler keeps only the last sample of each worker; this module copies it
//! every sample interval into a bounded series per worker (one hour), and draws a series as a
//! small inline SVG (no script, no external asset). It reads the supervisor's status only and
//! never changes anything.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::supervisor::Supervisor;

/// How far back the charts go.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Shortest interval between two points (a tiny sample interval must not fill memory).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval between two points.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// One sample of one worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When it was taken.
    pub time: OffsetDateTime,
    /// CPU in cores.
    pub cpu_cores: Option<f64>,
    /// Memory in bytes.
    pub memory_bytes: Option<u64>,
}

/// The series of every worker.
#[derive(Debug, Default)]
pub struct History {
    series: Mutex<BTreeMap<String, VecDeque<Point>>>,
}

impl History {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a point of `worker`, dropping points older than [`WINDOW`] before `point.time`.
    pub fn record(&self, worker: &str, point: Point) {
        let mut series = self.series.lock().expect("history lock");
        let s = series.entry(worker.to_string()).or_default();
        s.push_back(point);
        let oldest = point.time - WINDOW;
        while s.front().is_some_and(|p| p.time < oldest) {
            s.pop_front();
        }
    }

    /// Forgets workers not in `keep` (scaled down).
    pub fn retain(&self, keep: &[String]) {
        self.series
            .lock()
            .expect("history lock")
            .retain(|w, _| keep.contains(w));
    }

    /// The points of `worker`, oldest first.
    pub fn points(&self, worker: &str) -> Vec<Point> {
        self.series
            .lock()
            .expect("history lock")
            .get(worker)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Copies the workers' usage into the series every sample interval until the supervisor
    /// shuts down.
    pub fn start(self: &Arc<Self>, supervisor: Arc<Supervisor>) {
        let history = Arc::clone(self);
        let interval = supervisor
            .department()
            .supervision
            .sample_interval
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        tokio::spawn(async move {
            let mut shutdown = supervisor.shutting_down();
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let now = OffsetDateTime::now_utc();
                let mut ids = Vec::new();
                for pool in supervisor.status() {
                    for w in pool.workers {
                        history.record(
                            &w.id,
                            Point {
                                time: now,
                                cpu_cores: w.usage.cpu_cores,
                                memory_bytes: w.usage.memory_bytes,
                            },
                        );
                        ids.push(w.id);
                    }
                }
                history.retain(&ids);
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }
}

/// Width of a chart, in SVG units.
const WIDTH: f64 = 160.0;
/// Height of a chart.
const HEIGHT: f64 = 36.0;

/// The seconds a chart of `values` spans: the oldest value's age, at least a minute and at most
/// [`WINDOW`] (a young worker's few minutes fill the chart instead of its right edge).
pub fn span(values: &[(f64, f64)]) -> f64 {
    values
        .iter()
        .map(|(ago, _)| *ago)
        .fold(60.0, f64::max)
        .min(WINDOW.as_secs_f64())
}

/// Words for a span: `last hour`, `last 12 min`.
pub fn span_words(seconds: f64) -> String {
    if seconds >= WINDOW.as_secs_f64() - 1.0 {
        "last hour".into()
    } else {
        format!("last {} min", (seconds / 60.0).ceil() as u64)
    }
}

/// A small line chart of `values` (seconds before `now`, value) over their [`span`], scaled to
/// `limit` (drawn as a dashed line at the top) or to the largest value when that is higher.
/// `label` describes it for screen readers, with the latest and highest values.
pub fn sparkline(values: &[(f64, f64)], limit: f64, label: &str) -> String {
    let window = span(values);
    let top = values
        .iter()
        .map(|(_, v)| *v)
        .fold(limit, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut path = String::new();
    for (ago, v) in values {
        let x = WIDTH - (ago.clamp(0.0, window) / window) * WIDTH;
        let y = HEIGHT - (v.max(0.0) / top) * (HEIGHT - 2.0) - 1.0;
        if !path.is_empty() {
            path.push(' ');
        }
        path.push_str(&format!("{x:.1},{y:.1}"));
    }
    let limit_y = HEIGHT - (limit / top) * (HEIGHT - 2.0) - 1.0;
    let line = if values.len() > 1 {
        format!(r#"<polyline class="series" fill="none" points="{path}"/>"#)
    } else if let Some((x, y)) = path.split_once(',') {
        format!(r#"<circle class="series" cx="{x}" cy="{y}" r="1.5"/>"#)
    } else {
        String::new()
    };
    format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{label}"><title>{label}</title><rect class="frame" x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="none"/><line class="limit" x1="0" x2="{WIDTH}" y1="{limit_y:.1}" y2="{limit_y:.1}"/>{line}</svg>"#,
        label = super::html::escape(label),
    )
}

/// A chart's values: (seconds before now, value).
pub type Series = Vec<(f64, f64)>;

/// The CPU and memory series of `points` as (seconds before `now`, value).
pub fn series(points: &[Point], now: OffsetDateTime) -> (Series, Series) {
    let ago = |p: &Point| (now - p.time).as_seconds_f64().max(0.0);
    let cpu = points
        .iter()
        .filter_map(|p| p.cpu_cores.map(|c| (ago(p), c)))
        .collect();
    let memory = points
        .iter()
        .filter_map(|p| p.memory_bytes.map(|m| (ago(p), m as f64)))
        .collect();
    (cpu, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minutes_ago: i64, cpu: f64, now: OffsetDateTime) -> Point {
        Point {
            time: now - time::Duration::minutes(minutes_ago),
            cpu_cores: Some(cpu),
            memory_bytes: Some(100),
        }
    }

    #[test]
    fn points_older_than_an_hour_are_dropped_and_gone_workers_forgotten() {
        let now = time::macros::datetime!(2030-01-01 12:00 UTC);
        let h = History::new();
        h.record("a", point(90, 0.1, now));
        h.record("a", point(30, 0.2, now));
        h.record("a", point(0, 0.3, now));
        h.record("b", point(0, 0.3, now));
        let points = h.points("a");
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!(points[0].cpu_cores, Some(0.2));
        h.retain(&["a".to_string()]);
        assert!(h.points("b").is_empty());
        assert!(h.points("nope").is_empty());
    }

    #[test]
    fn the_chart_spans_the_hour_and_scales_to_the_limit() {
        let svg = sparkline(&[(3600.0, 0.0), (0.0, 1.0)], 1.0, "CPU <1 core>");
        assert!(svg.contains(r#"points="0.0,35.0 160.0,1.0""#), "{svg}");
        assert!(svg.contains("aria-label=\"CPU &lt;1 core&gt;\""), "{svg}");
        assert!(svg.contains(r#"class="limit""#));
        // Above the limit, the highest value is the top and the limit line moves down.
        let over = sparkline(&[(60.0, 2.0), (0.0, 1.0)], 1.0, "x");
        assert!(over.contains(r#"y1="18.0""#), "{over}");
        // One point: a dot; none: the frame only.
        assert!(sparkline(&[(0.0, 0.5)], 1.0, "x").contains("<circle"));
        // Ten minutes of data fill the width.
        let young = sparkline(&[(600.0, 0.0), (0.0, 1.0)], 1.0, "x");
        assert!(young.contains(r#"points="0.0,35.0 160.0,1.0""#), "{young}");
        assert_eq!(span_words(span(&[(600.0, 0.0)])), "last 10 min");
        assert_eq!(span_words(span(&[(5000.0, 0.0)])), "last hour");
        assert_eq!(span_words(span(&[])), "last 1 min");
        let empty = sparkline(&[], 1.0, "x");
        assert!(!empty.contains("series"), "{empty}");
    }

    #[test]
    fn series_skip_missing_values() {
        let now = time::macros::datetime!(2030-01-01 12:00 UTC);
        let points = [
            point(2, 0.5, now),
            Point {
                time: now,
                cpu_cores: None,
                memory_bytes: Some(7),
            },
        ];
        let (cpu, mem) = series(&points, now);
        assert_eq!(cpu, vec![(120.0, 0.5)]);
        assert_eq!(mem, vec![(120.0, 100.0), (0.0, 7.0)]);
    }
}

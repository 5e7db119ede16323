//! Percentiles of timed samples and the p50/p99 line every latency bench prints.

use std::time::Duration;

/// The `p`th percentile (nearest rank) of `samples`, which it sorts.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints `name`, the sample count, p50 and p99; returns p50 in milliseconds.
pub fn report(name: &str, samples: &mut [Duration]) -> f64 {
    let (p50, p99) = (ms(percentile(samples, 50.0)), ms(percentile(samples, 99.0)));
    println!(
        "{name:<58} n={:<4} p50 {p50:>9.3} ms   p99 {p99:>9.3} ms",
        samples.len()
    );
    p50
}

/// A named series of timed samples.
pub struct Series {
    /// What was timed.
    pub name: &'static str,
    /// One duration per call.
    pub samples: Vec<Duration>,
}

impl Series {
    /// An empty series.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            samples: Vec::new(),
        }
    }

    /// The `p`th percentile in milliseconds.
    pub fn p(&mut self, p: f64) -> f64 {
        ms(percentile(&mut self.samples, p))
    }

    /// Prints the series' line (see [`report`]).
    pub fn print(&mut self) {
        report(self.name, &mut self.samples);
    }
}

//! Connect's own metrics, re-exposed: the Prometheus text of each worker's JMX exporter is
//! parsed, filtered to the families worth keeping, labelled with `pool`, `worker` and
//! `department`, and merged family by family into the supervisor's `/metrics` (one scrape
//! target per department; nobody has to reach the workers).
//!
//! Parsing and relabelling are pure; [`WorkerSeries`] only holds the last result per worker, so
//! `/metrics` never waits for a worker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

/// Families kept from a worker's exporter (prefixes of the family name).
pub const KEPT_PREFIXES: &[&str] = &[
    "kafka_connect_",
    "kafka_consumer_fetch_manager_records_lag",
    "jvm_memory_used_bytes",
    "jvm_memory_committed_bytes",
    "jvm_memory_max_bytes",
    "jvm_gc_collection_seconds",
    "jvm_threads_current",
];
/// Most series kept from one worker (a guard against a label explosion).
pub const MAX_SERIES_PER_WORKER: usize = 50_000;
/// Samples whose rise means a connector moved records (its last successful activity).
pub const ACTIVITY_SAMPLES: &[&str] = &[
    "kafka_connect_source_task_source_record_write_total",
    "kafka_connect_sink_task_sink_record_send_total",
];
/// Suffixes a sample name may add to its family's name.
const SUFFIXES: &[&str] = &["_total", "_created", "_sum", "_count", "_bucket", "_info"];

/// Whether a family is kept.
pub fn is_kept(name: &str) -> bool {
    KEPT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// One metric family of a worker, relabelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Family name.
    pub name: String,
    /// `# HELP` text as written (escaped).
    pub help: String,
    /// `counter`, `gauge`, `summary`, `histogram` or `untyped`.
    pub kind: String,
    /// Sample lines, labels added, without timestamps.
    pub samples: Vec<String>,
}

/// A worker's exporter output, relabelled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// The kept families.
    pub families: Vec<Family>,
    /// Per connector, the sum of its [`ACTIVITY_SAMPLES`].
    pub activity: BTreeMap<String, f64>,
    /// Lines that could not be read.
    pub invalid_lines: usize,
    /// Series left out by the per-worker bound.
    pub dropped_series: usize,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes a label value for the text format.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A parsed sample: name, labels (unescaped values), value text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Sample name.
    pub name: &'a str,
    /// Labels.
    pub labels: Vec<(&'a str, String)>,
    /// Value as written.
    pub value: &'a str,
}

/// Parses one sample line of the text format.
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut s = body;
        loop {
            s = s.trim_start_matches([' ', ',']);
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=')?;
            let label = s[..eq].trim();
            if !is_label_name(label) {
                return None;
            }
            let mut value = String::new();
            let mut chars = s[eq + 1..].trim_start().strip_prefix('"')?.char_indices();
            let start = s.len() - s[eq + 1..].trim_start().len() + 1;
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => {
                        end = Some(start + i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.push((label, value));
            s = &s[end?..];
        }
    }
    let mut parts = rest.split_whitespace();
    let value = parts.next()?;
    let ok = value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf");
    ok.then_some(Sample {
        name,
        labels,
        value,
    })
}

fn belongs(sample: &str, family: &str) -> bool {
    sample == family
        || sample
            .strip_prefix(family)
            .is_some_and(|rest| SUFFIXES.contains(&rest))
}

/// Parses a worker's exporter text, keeps the families `keep` accepts, and adds `extra` labels
/// to every sample (a label of the same name already there becomes `exported_<name>`).
pub fn relabel(
    text: &str,
    keep: &dyn Fn(&str) -> bool,
    extra: &[(&str, &str)],
    max_series: usize,
) -> Exposition {
    let mut out = Exposition::default();
    let mut families: Vec<Family> = Vec::new();
    let mut current: Option<usize> = None;
    let mut series = 0usize;
    let extra_text: String = extra
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect::<Vec<_>>()
        .join(",");
    let find_or_add = |families: &mut Vec<Family>, name: &str| -> usize {
        if let Some(i) = families.iter().position(|f| f.name == name) {
            return i;
        }
        families.push(Family {
            name: name.to_string(),
            help: String::new(),
            kind: "untyped".into(),
            samples: Vec::new(),
        });
        families.len() - 1
    };
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            if !matches!(keyword, "HELP" | "TYPE") {
                continue;
            }
            if !is_metric_name(name) {
                out.invalid_lines += 1;
                continue;
            }
            let i = find_or_add(&mut families, name);
            if keyword == "HELP" {
                families[i].help = rest.to_string();
            } else {
                families[i].kind = rest.trim().to_string();
            }
            current = Some(i);
            continue;
        }
        let Some(sample) = parse_sample(line) else {
            out.invalid_lines += 1;
            continue;
        };
        let i = match current {
            Some(i) if belongs(sample.name, &families[i].name) => i,
            _ => {
                let i = find_or_add(&mut families, sample.name);
                current = Some(i);
                i
            }
        };
        if !keep(&families[i].name) {
            continue;
        }
        if series >= max_series {
            out.dropped_series += 1;
            continue;
        }
        series += 1;
        if ACTIVITY_SAMPLES.contains(&sample.name)
            && let Some((_, connector)) = sample.labels.iter().find(|(k, _)| *k == "connector")
            && let Ok(v) = sample.value.parse::<f64>()
        {
            *out.activity.entry(connector.clone()).or_default() += v;
        }
        let mut line = String::with_capacity(64 + sample.name.len());
        line.push_str(sample.name);
        line.push('{');
        for (k, v) in &sample.labels {
            if extra.iter().any(|(e, _)| e == k) {
                line.push_str("exported_");
            }
            let _ = write!(line, "{k}=\"{}\",", escape_label_value(v));
        }
        line.push_str(&extra_text);
        line.push_str("} ");
        line.push_str(sample.value);
        families[i].samples.push(line);
    }
    out.families = families
        .into_iter()
        .filter(|f| !f.samples.is_empty() && keep(&f.name))
        .collect();
    out
}

/// The last relabelled exposition of every worker, merged on demand into one text.
#[derive(Debug, Default)]
pub struct WorkerSeries {
    by_worker: RwLock<BTreeMap<String, Arc<Exposition>>>,
}

impl WorkerSeries {
    /// Replaces `worker`'s series.
    pub fn set(&self, worker: &str, exposition: Exposition) {
        self.by_worker
            .write()
            .expect("series lock")
            .insert(worker.to_string(), Arc::new(exposition));
    }

    /// Forgets `worker`'s series (it is down or gone).
    pub fn remove(&self, worker: &str) {
        self.by_worker.write().expect("series lock").remove(worker);
    }

    /// Workers with series.
    pub fn workers(&self) -> Vec<String> {
        self.by_worker
            .read()
            .expect("series lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Appends every family to `out`, each once, with the samples of every worker.
    pub fn encode(&self, out: &mut String) {
        let all: Vec<Arc<Exposition>> = self
            .by_worker
            .read()
            .expect("series lock")
            .values()
            .cloned()
            .collect();
        let mut merged: BTreeMap<&str, (&Family, Vec<&Family>)> = BTreeMap::new();
        for e in &all {
            for f in &e.families {
                merged
                    .entry(f.name.as_str())
                    .or_insert_with(|| (f, Vec::new()))
                    .1
                    .push(f);
            }
        }
        for (name, (first, parts)) in merged {
            if !first.help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {}", first.help);
            }
            let _ = writeln!(out, "# TYPE {name} {}", first.kind);
            for part in parts {
                for s in &part.samples {
                    out.push_str(s);
                    out.push('\n');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKER: &str = r#"# HELP kafka_connect_sink_task_sink_record_send_total Kafka Connect JMX metric type sink_task
# TYPE kafka_connect_sink_task_sink_record_send_total counter
kafka_connect_sink_task_sink_record_send_total{connector="dept1-sink",task="0"} 42.0
kafka_connect_sink_task_sink_record_send_total{connector="dept1-sink",task="1",} 8.0
# HELP kafka_connect_connector_status Kafka Connect connector status
# TYPE kafka_connect_connector_status gauge
kafka_connect_connector_status{connector="dept1-sink",status="running"} 1.0
# TYPE jvm_memory_pool_used_bytes gauge
jvm_memory_pool_used_bytes{pool="G1 Eden Space"} 1000.0
# TYPE jvm_memory_used_bytes gauge
jvm_memory_used_bytes{area="heap"} 123456.0
# HELP jmx_scrape_duration_seconds Time this JMX scrape took, in seconds.
# TYPE jmx_scrape_duration_seconds gauge
jmx_scrape_duration_seconds 0.05
kafka_connect_worker_task_count 3.0 1700000000000
broken line {
"#;

    fn relabelled() -> Exposition {
        relabel(
            WORKER,
            &|n: &str| is_kept(n),
            &[
                ("pool", "shared"),
                ("worker", "shared-0"),
                ("department", "dept1"),
            ],
            MAX_SERIES_PER_WORKER,
        )
    }

    #[test]
    fn kept_families_get_the_worker_labels_and_the_rest_is_left_out() {
        let e = relabelled();
        let names: Vec<&str> = e.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kafka_connect_sink_task_sink_record_send_total",
                "kafka_connect_connector_status",
                "jvm_memory_used_bytes",
                "kafka_connect_worker_task_count"
            ]
        );
        assert_eq!(
            e.families[0].samples[1],
            r#"kafka_connect_sink_task_sink_record_send_total{connector="dept1-sink",task="1",pool="shared",worker="shared-0",department="dept1"} 8.0"#
        );
        assert_eq!(e.families[3].kind, "untyped");
        assert_eq!(
            e.families[3].samples[0],
            r#"kafka_connect_worker_task_count{pool="shared",worker="shared-0",department="dept1"} 3.0"#,
            "timestamps are dropped"
        );
        assert_eq!(e.invalid_lines, 1);
        assert_eq!(e.activity["dept1-sink"], 50.0);
    }

    #[test]
    fn clashing_labels_are_renamed_and_values_escaped() {
        let e = relabel(
            "# TYPE kafka_connect_x gauge\nkafka_connect_x{pool=\"a \\\"b\\\"\\\\\"} 1\n",
            &|_: &str| true,
            &[("pool", "p")],
            10,
        );
        assert_eq!(
            e.families[0].samples[0],
            r#"kafka_connect_x{exported_pool="a \"b\"\\",pool="p"} 1"#
        );
    }

    #[test]
    fn workers_merge_into_one_family_each() {
        let series = WorkerSeries::default();
        series.set("shared-0", relabelled());
        let mut other = relabelled();
        for f in &mut other.families {
            for s in &mut f.samples {
                *s = s.replace("shared-0", "shared-1");
            }
        }
        series.set("shared-1", other);
        let mut text = String::new();
        series.encode(&mut text);
        assert_eq!(
            text.matches("# TYPE kafka_connect_connector_status gauge")
                .count(),
            1
        );
        assert_eq!(text.matches("kafka_connect_connector_status{").count(), 2);
        series.remove("shared-1");
        let mut text = String::new();
        series.encode(&mut text);
        assert!(!text.contains("shared-1"));
    }

    #[test]
    fn the_series_bound_holds() {
        let mut text = String::from("# TYPE kafka_connect_y gauge\n");
        for i in 0..100 {
            text.push_str(&format!("kafka_connect_y{{i=\"{i}\"}} 1\n"));
        }
        let e = relabel(&text, &|_: &str| true, &[], 10);
        assert_eq!(e.families[0].samples.len(), 10);
        assert_eq!(e.dropped_series, 90);
    }

    #[test]
    fn samples_parse_with_odd_but_valid_labels() {
        let s = parse_sample(r#"a_b{x="1,2}",y="\n"} +Inf"#).unwrap();
        assert_eq!(
            s.labels,
            vec![("x", "1,2}".to_string()), ("y", "\n".to_string())]
        );
        assert_eq!(s.value, "+Inf");
        assert!(parse_sample("9bad 1").is_none());
        assert!(parse_sample("a{x=1} 1").is_none());
        assert!(parse_sample("a abc").is_none());
    }
}

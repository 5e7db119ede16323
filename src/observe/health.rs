//! Readiness: whether every pool has a ready worker and Kafka answers. The Kafka check runs on a
//! thread of its own (librdkafka calls block) and keeps its last result; the readiness verdict is
//! a pure function of the pools and that result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prometheus::{IntGauge, Opts, Registry};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use serde::Serialize;
use time::OffsetDateTime;

use super::Observer;
use super::events::{KafkaReachable, KafkaUnreachable};
use super::kafka::{StartGate, client_config};
use super::metrics::NAMESPACE;

/// The last result of the Kafka check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KafkaState {
    /// `None` until the first check ends.
    pub reachable: Option<bool>,
    /// When the last check ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    /// Brokers the cluster reported.
    pub brokers: usize,
    /// Why the last check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(facility = fac, level = ?level, "librdkafka (Kafka check): {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, "librdkafka (Kafka check): {reason}");
    }
}

impl ConsumerContext for Quiet {}

/// The Kafka check: a metadata request every interval.
#[derive(Debug)]
pub struct KafkaCheck {
    state: Mutex<KafkaState>,
    stop: AtomicBool,
    up: IntGauge,
    /// Where `up` goes at the first check: absent before, rather than a 0 that would read as
    /// "Kafka down" while the check waits for the workers' first start.
    registry: Registry,
    registered: std::sync::Once,
}

impl KafkaCheck {
    /// A check whose gauge `kcs_kafka_up` joins `registry` at its first result (started with
    /// [`KafkaCheck::start`]).
    pub fn new(registry: &Registry) -> Arc<Self> {
        let up = IntGauge::with_opts(
            Opts::new(
                "kafka_up",
                "1 when Kafka answered the supervisor's last metadata request.",
            )
            .namespace(NAMESPACE),
        )
        .expect("valid metric");
        Arc::new(Self {
            state: Mutex::new(KafkaState::default()),
            stop: AtomicBool::new(false),
            up,
            registry: registry.clone(),
            registered: std::sync::Once::new(),
        })
    }

    /// Starts checking with the librdkafka `settings` every `interval`, asking for the metadata
    /// of `topic` only (a department's own topic: cheap on a cluster of thousands of topics, and
    /// allowed by the department's ACLs; a metadata request never creates it); transitions become
    /// events of `observer`.
    pub fn start(
        self: &Arc<Self>,
        settings: &BTreeMap<String, String>,
        topic: &str,
        interval: Duration,
        gate: &StartGate,
        observer: Weak<Observer>,
    ) {
        let mut config = client_config(settings);
        config.set("socket.connection.setup.timeout.ms", "5000");
        // Checked now; the client itself is created (and connects) once `gate` opens.
        if let Err(e) = config.create_native_config() {
            self.record(
                Err(format!("the Kafka client settings are invalid: {e}")),
                &observer,
            );
            return;
        }
        let check = Arc::clone(self);
        let thread_observer = observer.clone();
        let topic = topic.to_string();
        let gate = gate.clone();
        let spawned = std::thread::Builder::new()
            .name("kafka-check".into())
            .spawn(move || {
                if !gate.wait(|| check.stop.load(Ordering::SeqCst)) {
                    return;
                }
                let consumer: BaseConsumer<Quiet> = match config.create_with_context(Quiet) {
                    Ok(c) => c,
                    Err(e) => {
                        let message = format!("cannot create the Kafka check's client: {e}");
                        return check.record(Err(message), &thread_observer);
                    }
                };
                while !check.stop.load(Ordering::SeqCst) {
                    let result = consumer
                        .fetch_metadata(Some(&topic), interval.max(Duration::from_secs(1)))
                        .map_err(|e| e.to_string())
                        .and_then(|m| match m.brokers().len() {
                            0 => Err("the cluster reported no brokers".to_string()),
                            n => Ok(n),
                        });
                    check.record(result, &thread_observer);
                    let mut slept = Duration::ZERO;
                    while slept < interval && !check.stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(100));
                        slept += Duration::from_millis(100);
                    }
                }
            });
        if let Err(e) = spawned {
            self.record(
                Err(format!("cannot start the Kafka check thread: {e}")),
                &observer,
            );
        }
    }

    fn record(&self, result: Result<usize, String>, observer: &Weak<Observer>) {
        let reachable = result.is_ok();
        let before = {
            let mut state = self.state.lock().expect("kafka state lock");
            let before = state.reachable;
            *state = KafkaState {
                reachable: Some(reachable),
                checked_at: Some(OffsetDateTime::now_utc()),
                brokers: *result.as_ref().unwrap_or(&0),
                error: result.as_ref().err().cloned(),
            };
            before
        };
        self.up.set(i64::from(reachable));
        self.registered.call_once(|| {
            self.registry
                .register(Box::new(self.up.clone()))
                .expect("metric names are unique");
        });
        if before != Some(reachable)
            && let Some(observer) = observer.upgrade()
        {
            match (before, result) {
                (_, Err(message)) => observer.emit(KafkaUnreachable { message }),
                (Some(false), Ok(_)) => observer.emit(KafkaReachable),
                _ => {}
            }
        }
    }

    /// The last result.
    pub fn state(&self) -> KafkaState {
        self.state.lock().expect("kafka state lock").clone()
    }

    /// Stops the check thread (within a tenth of a second, or after a request in flight).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One pool as readiness sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolReadiness {
    /// The pool.
    pub pool: String,
    /// Workers it should have.
    pub desired_workers: u32,
    /// Workers ready.
    pub ready_workers: usize,
    /// Connectors it holds as last seen while it has no worker at all (scaled to 0): nothing
    /// can serve them. Not part of the answer's pool figures.
    #[serde(skip)]
    pub held_connectors: Vec<String>,
}

/// A check of the readiness verdict that `/readyz?exclude=` can leave out (as the Kubernetes
/// API server's `/readyz?exclude=<check>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyCheck {
    /// Every pool that should have workers has a ready one (and none holds connectors it cannot
    /// serve).
    Pools,
    /// Kafka answered the last check.
    Kafka,
}

impl ReadyCheck {
    /// Every check, by name.
    pub const ALL: [(&'static str, ReadyCheck); 2] =
        [("pools", ReadyCheck::Pools), ("kafka", ReadyCheck::Kafka)];

    /// The check of `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }
}

/// The readiness verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    /// Ready to serve connectors.
    pub ready: bool,
    /// Every pool.
    pub pools: Vec<PoolReadiness>,
    /// The Kafka check, when it is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaState>,
    /// What keeps it from being ready.
    pub problems: Vec<String>,
    /// Checks left out of the verdict (`exclude`); their figures are still shown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<&'static str>,
}

/// Ready when every pool that should have workers has at least one ready, and (when checked)
/// Kafka answered the last check; a check in `exclude` is left out.
pub fn readiness(
    pools: Vec<PoolReadiness>,
    kafka: Option<KafkaState>,
    exclude: &[ReadyCheck],
) -> Readiness {
    let mut problems = Vec::new();
    let checks = |c: ReadyCheck| !exclude.contains(&c);
    for p in pools.iter().filter(|_| checks(ReadyCheck::Pools)) {
        if p.desired_workers > 0 && p.ready_workers == 0 {
            problems.push(format!(
                "pool {} has no ready worker (0 of {})",
                p.pool, p.desired_workers
            ));
        }
        // A pool scaled to 0 still holding connectors cannot serve them: readiness says so, as
        // the API does (lists show them as last seen, reads and changes of them answer 503).
        if p.desired_workers == 0 && p.ready_workers == 0 && !p.held_connectors.is_empty() {
            problems.push(format!(
                "pool {} has no worker (scaled to 0) but holds connectors {}: they are listed \
                 as last seen, reads and changes of them answer 503; scale the pool up or \
                 delete them",
                p.pool,
                p.held_connectors.join(", ")
            ));
        }
    }
    if let Some(k) = kafka.as_ref().filter(|_| checks(ReadyCheck::Kafka)) {
        match k.reachable {
            // The check waits for the workers' first start ([`StartGate`]).
            None => problems.push(
                "Kafka has not been checked yet (the first check runs once the workers' first \
                 start is over)"
                    .to_string(),
            ),
            Some(false) => problems.push(format!(
                "Kafka does not answer: {}",
                k.error.as_deref().unwrap_or("unknown error")
            )),
            Some(true) => {}
        }
    }
    let excluded = ReadyCheck::ALL
        .iter()
        .filter(|(_, c)| exclude.contains(c))
        .map(|(n, _)| *n)
        .collect();
    Readiness {
        ready: problems.is_empty(),
        pools,
        kafka,
        problems,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, desired: u32, ready: usize) -> PoolReadiness {
        PoolReadiness {
            held_connectors: Vec::new(),
            pool: name.into(),
            desired_workers: desired,
            ready_workers: ready,
        }
    }

    fn kafka(reachable: Option<bool>) -> KafkaState {
        KafkaState {
            reachable,
            error: reachable.and_then(|r| (!r).then(|| "Local: Broker transport failure".into())),
            ..KafkaState::default()
        }
    }

    #[test]
    fn every_pool_needs_a_ready_worker_and_kafka_must_answer() {
        let ok = readiness(
            vec![pool("a", 2, 1), pool("b", 0, 0)],
            Some(kafka(Some(true))),
            &[],
        );
        assert!(ok.ready, "{ok:?}");
        let down = readiness(
            vec![pool("a", 2, 0), pool("b", 1, 1)],
            Some(kafka(Some(false))),
            &[],
        );
        assert!(!down.ready);
        assert_eq!(down.problems.len(), 2, "{down:?}");
        assert!(down.problems[0].contains("pool a"));
        assert!(down.problems[1].contains("Broker transport failure"));
        assert!(!readiness(vec![pool("a", 1, 1)], Some(kafka(None)), &[]).ready);
        assert!(
            readiness(vec![pool("a", 1, 1)], None, &[]).ready,
            "check off"
        );
    }

    #[test]
    fn an_excluded_check_leaves_the_verdict_but_keeps_its_figures() {
        let pools = || vec![pool("a", 2, 0)];
        let r = readiness(pools(), Some(kafka(Some(false))), &[ReadyCheck::Pools]);
        assert!(!r.ready, "Kafka still counts: {r:?}");
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert!(r.problems[0].contains("Broker transport failure"));
        assert_eq!(r.pools, pools(), "the pools are still shown");
        assert_eq!(r.excluded, ["pools"]);
        let r = readiness(
            pools(),
            Some(kafka(Some(false))),
            &[ReadyCheck::Pools, ReadyCheck::Kafka, ReadyCheck::Pools],
        );
        assert!(r.ready, "{r:?}");
        assert_eq!(r.excluded, ["pools", "kafka"], "each named once: {r:?}");
        // A pool scaled to 0 that still holds connectors is a pools problem too.
        let held = || {
            vec![PoolReadiness {
                held_connectors: vec!["c1".into()],
                ..pool("b", 0, 0)
            }]
        };
        let r = readiness(held(), None, &[]);
        assert!(!r.ready && r.problems[0].contains("pool b") && r.problems[0].contains("c1"));
        assert!(readiness(held(), None, &[ReadyCheck::Pools]).ready);
        assert!(
            readiness(vec![pool("b", 0, 0)], None, &[]).ready,
            "holds nothing"
        );
    }

    #[test]
    fn an_unreachable_broker_is_reported_by_the_check() {
        let registry = Registry::new();
        let check = KafkaCheck::new(&registry);
        let settings =
            BTreeMap::from([("bootstrap.servers".to_string(), "127.0.0.1:9".to_string())]);
        // Held by a closed gate: no check and no gauge (a 0 would read as "Kafka down").
        let gate = StartGate::default();
        check.start(&settings, "t", Duration::from_secs(1), &gate, Weak::new());
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(check.state().reachable, None);
        assert!(registry.gather().is_empty(), "{:?}", registry.gather());
        gate.open();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while check.state().reachable.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        check.stop();
        let state = check.state();
        assert_eq!(state.reachable, Some(false), "{state:?}");
        assert!(state.error.is_some());
        assert_eq!(check.up.get(), 0);
        let families = registry.gather();
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].name(), "kcs_kafka_up");
    }
}

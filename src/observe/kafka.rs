//! librdkafka clients of the supervisor itself (log and audit forwarding, the Kafka check of
//! `/readyz`): their settings derived from the department's Java client settings, and a bounded,
//! never-blocking queue in front of a producer.
//!
//! Owns no decision about *what* is sent; callers push items that know their key and JSON.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::model::Department;

/// Java client settings that mean the same to librdkafka.
const SHARED_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "ssl.endpoint.identification.algorithm",
    "client.dns.lookup",
];
/// Items handed to librdkafka per round of the forwarding thread.
const BATCH: usize = 1000;
/// librdkafka's own queue: small, so that what waits is in our bounded queue, where the oldest
/// lines are the ones dropped.
const LIBRDKAFKA_QUEUE_MESSAGES: &str = "10000";
/// How long librdkafka keeps trying to deliver one record before it counts as failed.
const MESSAGE_TIMEOUT_MS: &str = "300000";
/// Least time between two warnings about failing deliveries.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Holds the first connection of the supervisor's own Kafka clients (log and audit forwarding,
/// the Kafka check) until its department's first worker start is over: those clients' start
/// (threads, connections, metadata, the log topic's creation) otherwise competes with the
/// starting JVMs for the same few cores: supervised spawn-to-ready was 1.14x the same JVM alone
/// with them connecting during the start, 1.09x with this gate (`cargo bench --bench
/// supervision`, 13 and 47 rounds on 2 cores). Nothing is lost
/// while it is closed: log lines and audit records wait in the forwarders' bounded queues, the
/// Kafka check says it has not run yet. Clones share one gate; it only ever opens.
#[derive(Debug, Clone, Default)]
pub struct StartGate(Arc<(Mutex<bool>, Condvar)>);

impl StartGate {
    /// A gate that is open from the start (tools, tests: nothing to wait for).
    pub fn opened() -> Self {
        let gate = Self::default();
        gate.open();
        gate
    }

    /// Opens the gate for every waiter, for good; whether this call opened it.
    pub fn open(&self) -> bool {
        let (open, changed) = &*self.0;
        let was_open = std::mem::replace(&mut *open.lock().expect("start gate lock"), true);
        changed.notify_all();
        !was_open
    }

    /// Whether it is open.
    pub fn is_open(&self) -> bool {
        *self.0.0.lock().expect("start gate lock")
    }

    /// Blocks until the gate opens or `give_up` says so (checked every 100 ms); returns whether
    /// it opened.
    pub fn wait(&self, give_up: impl Fn() -> bool) -> bool {
        let (open, changed) = &*self.0;
        let mut is_open = open.lock().expect("start gate lock");
        while !*is_open && !give_up() {
            is_open = changed
                .wait_timeout(is_open, Duration::from_millis(100))
                .expect("start gate lock")
                .0;
        }
        *is_open
    }
}

/// Why a Kafka client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KafkaClientError {
    /// librdkafka refused the settings.
    #[error("cannot create the Kafka {purpose} client: {message}")]
    Create {
        /// What the client is for.
        purpose: &'static str,
        /// librdkafka's message (settings keys, no values).
        message: String,
    },
    /// The forwarding thread could not start.
    #[error("cannot start the {purpose} thread: {source}")]
    Thread {
        /// What the thread is for.
        purpose: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl KafkaClientError {
    /// Short, bounded code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Create { .. } => "kafka_client_invalid",
            Self::Thread { .. } => "thread_spawn_failed",
        }
    }
}

/// `(username, password)` of a PLAIN or SCRAM `sasl.jaas.config`.
pub fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    let value = |key: &str| {
        let start = jaas.find(&format!("{key}=\""))? + key.len() + 2;
        let end = jaas[start..].find('"')? + start;
        Some(jaas[start..end].to_string())
    };
    Some((value("username")?, value("password")?))
}

/// librdkafka settings equivalent to the department's Kafka connection, then `overrides`.
/// `sasl.jaas.config` of PLAIN/SCRAM becomes `sasl.username`/`sasl.password`; Java-only settings
/// (key stores) have no equivalent and must be given in `overrides` (e.g. `ssl.ca.location`).
pub fn client_settings(
    department: &Department,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "bootstrap.servers".to_string(),
        department.kafka.bootstrap_servers.clone(),
    );
    for key in SHARED_KEYS {
        if let Some(v) = department.kafka.client.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    if let Some(jaas) = department.kafka.client.get("sasl.jaas.config")
        && let Some((user, password)) = jaas_credentials(jaas)
    {
        out.insert("sasl.username".into(), user);
        out.insert("sasl.password".into(), password);
    }
    out.insert(
        "client.id".into(),
        format!("connect-supervisor-{}", department.id),
    );
    for (k, v) in overrides {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// A [`ClientConfig`] of `settings`.
pub fn client_config(settings: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in settings {
        config.set(k, v);
    }
    config
}

/// Something that can be forwarded: its record key and its JSON.
pub trait Forwardable: Send + 'static {
    /// The record key.
    fn key(&self) -> Option<&str>;
    /// Appends the record value to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// The counters a forwarder keeps.
#[derive(Debug, Clone)]
pub struct ForwardCounters {
    /// Records Kafka acknowledged.
    pub forwarded: IntCounter,
    /// Records dropped because the queue was full (the oldest ones).
    pub dropped_full: IntCounter,
    /// Records Kafka did not take (delivery failed or refused).
    pub dropped_failed: IntCounter,
    /// Records waiting in the queue.
    pub queued: IntGauge,
}

struct Delivery {
    counters: ForwardCounters,
    purpose: &'static str,
    last_warning: Mutex<Option<Instant>>,
}

impl Delivery {
    fn warn(&self, what: &str) {
        let mut last = self.last_warning.lock().expect("warning lock");
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(purpose = self.purpose, "Kafka forwarding: {what}");
        } else {
            tracing::debug!(purpose = self.purpose, "Kafka forwarding: {what}");
        }
    }
}

impl ClientContext for Delivery {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka reports every failed connection attempt; the counters and one warning a
        // minute say enough.
        tracing::debug!(purpose = self.purpose, facility = fac, level = ?level, "librdkafka: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.warn(&format!("{error}: {reason}"));
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.counters.forwarded.inc(),
            Err((e, _)) => {
                self.counters.dropped_failed.inc();
                self.warn(&format!("a record was not delivered: {e}"));
            }
        }
    }
}

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
    capacity: usize,
    closing: AtomicBool,
    counters: ForwardCounters,
}

/// A bounded queue in front of a Kafka producer. [`Forwarder::push`] never blocks on Kafka:
/// when the queue is full the oldest item is dropped and counted. A thread of its own hands
/// items to librdkafka, which retries while Kafka is away; forwarding resumes by itself.
pub struct Forwarder<T: Forwardable> {
    shared: Arc<Shared<T>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    topic: String,
}

impl<T: Forwardable> std::fmt::Debug for Forwarder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("topic", &self.topic)
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T: Forwardable> Forwarder<T> {
    /// Starts a forwarder of up to `capacity` waiting items to `topic`. Its settings are checked
    /// at once; its producer is created (and connects) once `gate` opens, or at close so that
    /// what waits is still delivered.
    pub fn start(
        purpose: &'static str,
        settings: &BTreeMap<String, String>,
        topic: &str,
        capacity: usize,
        counters: ForwardCounters,
        gate: &StartGate,
    ) -> Result<Self, KafkaClientError> {
        let mut config = client_config(settings);
        for (k, v) in [
            ("queue.buffering.max.messages", LIBRDKAFKA_QUEUE_MESSAGES),
            ("message.timeout.ms", MESSAGE_TIMEOUT_MS),
            ("linger.ms", "50"),
            ("compression.type", "lz4"),
        ] {
            if !settings.contains_key(k) {
                config.set(k, v);
            }
        }
        let context = Delivery {
            counters: counters.clone(),
            purpose,
            last_warning: Mutex::new(None),
        };
        let create = move |e: KafkaError| KafkaClientError::Create {
            purpose,
            message: e.to_string(),
        };
        // Every setting is checked now (no client, no connection); the producer comes later.
        config.create_native_config().map_err(create)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            closing: AtomicBool::new(false),
            counters,
        });
        let thread_shared = Arc::clone(&shared);
        let thread_topic = topic.to_string();
        let gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kafka-{purpose}"))
            .spawn(move || {
                gate.wait(|| thread_shared.closing.load(Ordering::SeqCst));
                match config.create_with_context::<_, BaseProducer<Delivery>>(context) {
                    Ok(producer) => run(thread_shared, producer, thread_topic),
                    Err(e) => {
                        let waiting = thread_shared.queue.lock().expect("forward queue lock").len();
                        thread_shared.counters.dropped_failed.inc_by(waiting as u64);
                        tracing::error!(purpose, error = %create(e), "Nothing will be sent to Kafka.");
                    }
                }
            })
            .map_err(|source| KafkaClientError::Thread { purpose, source })?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
            topic: topic.to_string(),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues `item`; drops the oldest waiting item when the queue is full.
    pub fn push(&self, item: T) {
        self.push_all(std::iter::once(item));
    }

    /// Queues every item (one lock for all of them).
    pub fn push_all(&self, items: impl IntoIterator<Item = T>) {
        let mut dropped = 0;
        let len = {
            let mut queue = self.shared.queue.lock().expect("forward queue lock");
            for item in items {
                if queue.len() >= self.shared.capacity {
                    queue.pop_front();
                    dropped += 1;
                }
                queue.push_back(item);
            }
            queue.len()
        };
        if dropped > 0 {
            self.shared.counters.dropped_full.inc_by(dropped);
        }
        self.shared.counters.queued.set(len as i64);
        self.shared.ready.notify_one();
    }

    /// Items waiting.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().expect("forward queue lock").len()
    }

    /// Stops taking items and gives Kafka up to `timeout` to take what waits.
    pub fn close(&self, timeout: Duration) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.ready.notify_all();
        let handle = self.thread.lock().expect("thread lock").take();
        if let Some(handle) = handle {
            let deadline = Instant::now() + timeout;
            // The thread flushes for at most `timeout` itself; joining cannot hang longer.
            while !handle.is_finished() && Instant::now() < deadline + Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

impl<T: Forwardable> Drop for Forwarder<T> {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.ready.notify_all();
    }
}

fn run<T: Forwardable>(shared: Arc<Shared<T>>, producer: BaseProducer<Delivery>, topic: String) {
    let mut value = Vec::with_capacity(1024);
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        let batch: Vec<T> = {
            let mut queue = shared.queue.lock().expect("forward queue lock");
            if queue.is_empty() && !closing {
                queue = shared
                    .ready
                    .wait_timeout(queue, Duration::from_millis(100))
                    .expect("forward queue lock")
                    .0;
            }
            let n = queue.len().min(BATCH);
            let batch = queue.drain(..n).collect();
            shared.counters.queued.set(queue.len() as i64);
            batch
        };
        if batch.is_empty() {
            producer.poll(Duration::ZERO);
            if closing {
                break;
            }
            continue;
        }
        for item in batch {
            value.clear();
            item.encode(&mut value);
            loop {
                let mut record = BaseRecord::<str, [u8]>::to(&topic).payload(&value);
                if let Some(key) = item.key() {
                    record = record.key(key);
                }
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        if shared.closing.load(Ordering::SeqCst) {
                            shared.counters.dropped_failed.inc();
                            break;
                        }
                        // Kafka is slow or away: wait for librdkafka's queue to drain while
                        // new items pile up (bounded) in ours.
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => {
                        shared.counters.dropped_failed.inc();
                        tracing::debug!(error = %e, "A record was refused by the Kafka producer.");
                        break;
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    let _ = producer.flush(Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_gate_holds_its_waiters_until_it_opens_or_they_give_up() {
        let gate = StartGate::default();
        assert!(!gate.is_open());
        assert!(!gate.wait(|| true), "gives up while closed");
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait(|| false))
        };
        std::thread::sleep(Duration::from_millis(150));
        assert!(!waiter.is_finished(), "still held");
        gate.open();
        assert!(waiter.join().unwrap(), "opened, for every clone");
        assert!(gate.wait(|| true) && StartGate::opened().is_open());
    }

    #[test]
    fn jaas_credentials_are_read_from_plain_and_scram_configs() {
        assert_eq!(
            jaas_credentials(
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u1\" password=\"p w\";"
            ),
            Some(("u1".into(), "p w".into()))
        );
        assert_eq!(jaas_credentials("OAuthBearerLoginModule required;"), None);
    }

    #[test]
    fn client_settings_translate_the_java_ones_and_take_overrides() {
        let d = crate::config::testing::department()
            .managed_ids("e", "k")
            .bootstrap_servers("b:9092")
            .kafka_client("security.protocol", "SASL_SSL")
            .kafka_client("sasl.mechanism", "PLAIN")
            .kafka_client(
                "sasl.jaas.config",
                "x required username=\"u\" password=\"p\";",
            )
            .kafka_client("ssl.truststore.location", "/x.jks")
            .pool(crate::config::testing::pool("p"))
            .build();
        let s = client_settings(
            &d,
            &BTreeMap::from([("ssl.ca.location".to_string(), "/ca.pem".to_string())]),
        );
        assert_eq!(s["bootstrap.servers"], "b:9092");
        assert_eq!(s["security.protocol"], "SASL_SSL");
        assert_eq!(s["sasl.mechanism"], "PLAIN");
        assert_eq!(s["sasl.username"], "u");
        assert_eq!(s["sasl.password"], "p");
        assert_eq!(s["ssl.ca.location"], "/ca.pem");
        assert!(!s.contains_key("ssl.truststore.location"));
        assert!(!s.contains_key("sasl.jaas.config"));
    }
}

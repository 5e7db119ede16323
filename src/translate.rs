//! Connect's shapes and states translated to the managed (`connect/v1`) API, and secret masking.
//!
//! Pure functions only: no I/O, no clock (callers pass times in). What clients of the managed
//! API depend on lives here, each rule with the reason it exists:
//! * states in the managed vocabulary (Terraform fails `apply` on any state outside
//!   PROVISIONING/DEGRADED/RUNNING while it waits after a create);
//! * a stable synthetic connector id (`lcc-...`), the same across restarts (the CLI addresses
//!   connectors by id);
//! * every sensitive value masked as 16 `*` (Terraform drops values matching `^[*]{2,}`), user
//!   keys echoed unchanged and only keys Terraform ignores added (anything else is drift);
//! * `expand` parsed the way Go clients send it (repeated, comma-joined, percent-encoded).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::connect::{ConnectorStatus, PluginInfo, TaskId};
use crate::model::SecretRules;
use crate::model::secrets::{References, mask_config};

pub use crate::model::MASK;
/// Supervisor-specific connector config key naming the pool a connector runs on. It is passed to
/// Connect with the rest of the config (Connect ignores keys it does not know), so it round-trips.
pub const POOL_CONFIG_KEY: &str = "supervisor.pool";
/// Prefix of synthetic connector ids.
pub const CONNECTOR_ID_PREFIX: &str = "lcc-";
/// Length of the hash part of a connector id.
pub const CONNECTOR_ID_HASH_LEN: usize = 8;
/// `cloud.environment`: added to managed configs (Terraform ignores it).
pub const KEY_CLOUD_ENVIRONMENT: &str = "cloud.environment";
/// `cloud.provider`: added to managed configs (Terraform ignores it).
pub const KEY_CLOUD_PROVIDER: &str = "cloud.provider";
/// `kafka.endpoint`: added to managed configs (Terraform ignores it).
pub const KEY_KAFKA_ENDPOINT: &str = "kafka.endpoint";
/// `kafka.region`: added to managed configs (Terraform ignores it).
pub const KEY_KAFKA_REGION: &str = "kafka.region";
/// Value of `cloud.provider` and `kafka.region` for a self-managed department.
pub const SELF_MANAGED: &str = "self-managed";

/// Connector state in the managed vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManagedState {
    /// Created, not every task running yet.
    Provisioning,
    /// The connector and every task run.
    Running,
    /// Some tasks failed, others run.
    Degraded,
    /// The connector failed, or every task did.
    Failed,
    /// Paused, or stopped (KIP-875): the managed API has no STOPPED.
    Paused,
}

impl ManagedState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Running => "RUNNING",
            Self::Degraded => "DEGRADED",
            Self::Failed => "FAILED",
            Self::Paused => "PAUSED",
        }
    }
}

/// The managed state of a connector from Connect's status and, when known, the number of tasks
/// its task configs hold (`GET /connectors/{name}`): tasks Connect has generated but not started
/// yet have no status entry, and until they run the connector is still provisioning.
pub fn connector_state_expecting(
    status: &ConnectorStatus,
    expected_tasks: Option<usize>,
) -> ManagedState {
    match connector_state(status) {
        ManagedState::Running if expected_tasks.is_some_and(|n| status.tasks.len() < n) => {
            ManagedState::Provisioning
        }
        state => state,
    }
}

/// The managed state of a connector from Connect's status.
pub fn connector_state(status: &ConnectorStatus) -> ManagedState {
    match status.connector.state.as_str() {
        "FAILED" => return ManagedState::Failed,
        "PAUSED" | "STOPPED" => return ManagedState::Paused,
        "RUNNING" => {}
        // UNASSIGNED, RESTARTING, or anything newer Connect may add: not running yet.
        _ => return ManagedState::Provisioning,
    }
    // No tasks yet means the connector has not generated its task configs: still provisioning.
    if status.tasks.is_empty() {
        return ManagedState::Provisioning;
    }
    let failed = status
        .tasks
        .iter()
        .filter(|t| t.state.state == "FAILED")
        .count();
    let running = status
        .tasks
        .iter()
        .filter(|t| t.state.state == "RUNNING")
        .count();
    if failed == status.tasks.len() {
        ManagedState::Failed
    } else if failed > 0 {
        ManagedState::Degraded
    } else if running == status.tasks.len() {
        ManagedState::Running
    } else {
        ManagedState::Provisioning
    }
}

/// The stable synthetic id of connector `name` of `department`: `lcc-` and 8 base-36 characters
/// of a SHA-256 over both, so it survives restarts and differs between departments.
pub fn connector_id(department: &str, name: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(department.as_bytes());
    hasher.update([0u8]);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(CONNECTOR_ID_PREFIX.len() + CONNECTOR_ID_HASH_LEN);
    out.push_str(CONNECTOR_ID_PREFIX);
    for _ in 0..CONNECTOR_ID_HASH_LEN {
        out.push(digits[(n % 36) as usize] as char);
        n /= 36;
    }
    out
}

/// Decides which config keys are sensitive: the department's patterns plus the keys the
/// connector's plugin declares as PASSWORD.
#[derive(Debug, Clone, Copy)]
pub struct Masker<'a> {
    rules: &'a SecretRules,
    password_keys: &'a BTreeSet<String>,
    resolved: &'a [String],
}

impl<'a> Masker<'a> {
    /// A masker over the department's rules and the plugin's PASSWORD-typed keys.
    pub fn new(rules: &'a SecretRules, password_keys: &'a BTreeSet<String>) -> Self {
        Self {
            rules,
            password_keys,
            resolved: &[],
        }
    }

    /// The same masker, also knowing the values behind the config's secret references (an
    /// externalized secret is a reference in the config, but Connect's traces quote the
    /// resolved value).
    pub fn with_resolved(mut self, resolved: &'a [String]) -> Self {
        self.resolved = resolved;
        self
    }

    /// Whether `key`'s value must never be shown.
    pub fn is_sensitive(&self, key: &str) -> bool {
        self.password_keys.contains(key) || self.rules.is_sensitive(key)
    }

    /// `config` with every sensitive value replaced by [`MASK`].
    pub fn mask(&self, config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        mask_config(config, |k| self.is_sensitive(k), References::Masked)
    }

    /// Masks the sensitive values of a JSON object of config values in place.
    pub fn mask_json(&self, config: &mut Value) {
        if let Value::Object(map) = config {
            for (k, v) in map.iter_mut() {
                if self.is_sensitive(k) && !v.is_null() {
                    *v = Value::String(MASK.to_string());
                }
            }
        }
    }

    /// The sensitive values of `config`, for scrubbing messages.
    pub fn secrets<'c>(
        &self,
        config: impl IntoIterator<Item = (&'c String, &'c String)>,
    ) -> Vec<String> {
        config
            .into_iter()
            .filter(|(k, v)| self.is_sensitive(k) && !v.is_empty() && v.as_str() != MASK)
            .map(|(_, v)| v.clone())
            .chain(self.resolved.iter().filter(|v| !v.is_empty()).cloned())
            .collect()
    }
}

/// `text` with every occurrence of every secret replaced by [`MASK`] (longest first, so a secret
/// that contains another is hidden whole).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return text.to_string();
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Replaces masked values sent back by a client (the CLI's `update` merges into the config it
/// read, masks included) with the current values. Errors with the keys whose mask has no current
/// value to stand for.
pub fn unmask(
    incoming: &BTreeMap<String, String>,
    current: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (k, v) in incoming {
        if v == MASK {
            match current.and_then(|c| c.get(k)) {
                Some(real) => {
                    out.insert(k.clone(), real.clone());
                }
                None => unknown.push(k.clone()),
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// The keys the managed API adds to every config (all of them ignored by Terraform), with the
/// department's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedExtras {
    entries: Vec<(&'static str, String)>,
}

impl ManagedExtras {
    /// The extras of a department in `environment_id` on Kafka `bootstrap` reached with
    /// `security_protocol` (`PLAINTEXT` when unset).
    pub fn new(environment_id: &str, bootstrap: &str, security_protocol: Option<&str>) -> Self {
        let protocol = security_protocol.unwrap_or("PLAINTEXT");
        Self {
            entries: vec![
                (KEY_CLOUD_ENVIRONMENT, environment_id.to_string()),
                (KEY_CLOUD_PROVIDER, SELF_MANAGED.to_string()),
                (KEY_KAFKA_ENDPOINT, format!("{protocol}://{bootstrap}")),
                (KEY_KAFKA_REGION, SELF_MANAGED.to_string()),
            ],
        }
    }

    /// `config` with the extras added where the user did not set them (user values win).
    pub fn add(&self, mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.entries {
            config.entry((*k).to_string()).or_insert_with(|| v.clone());
        }
        config
    }

    /// `config` without the extras a client echoed back unchanged (so they do not end up in
    /// Connect's stored config); a user's own different value is kept.
    pub fn strip(&self, mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in &self.entries {
            if config.get(*k) == Some(v) {
                config.remove(*k);
            }
        }
        config
    }
}

/// `connect.v1.Connector`: `GET .../connectors/{name}` and `PUT .../config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedConnector {
    /// Name.
    pub name: String,
    /// Config, masked, with the extras.
    pub config: BTreeMap<String, String>,
    /// Tasks.
    pub tasks: Vec<TaskId>,
    /// `source`, `sink` (or `unknown` when even the plugin list cannot tell).
    #[serde(rename = "type")]
    pub connector_type: String,
}

/// Connector part of a managed status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedInstance {
    /// Managed state.
    pub state: String,
    /// Worker running it (`host:port`), empty when not assigned.
    pub worker_id: String,
    /// The failure, empty when there is none.
    pub trace: String,
}

/// Task part of a managed status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedTask {
    /// Task number.
    pub id: u32,
    /// Connect's task state (the managed API's task state is free text).
    pub state: String,
    /// Worker running it.
    pub worker_id: String,
    /// First line of the failure, empty when there is none.
    pub msg: String,
    /// The full stack trace of a failed task (Confluent Cloud sends it on failed payloads too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `GET .../status` in the managed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedStatus {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub connector_type: String,
    /// The connector.
    pub connector: ManagedInstance,
    /// Its tasks.
    pub tasks: Vec<ManagedTask>,
}

/// The first line of a stack trace (the exception and its message).
pub fn first_line(trace: &str) -> String {
    trace.lines().next().unwrap_or("").trim().to_string()
}

/// The managed status of a connector; traces scrubbed of `secrets`.
pub fn managed_status(
    status: &ConnectorStatus,
    expected_tasks: Option<usize>,
    connector_type: &str,
    secrets: &[String],
) -> ManagedStatus {
    let state = connector_state_expecting(status, expected_tasks);
    let mut trace = status
        .connector
        .trace
        .as_deref()
        .map(|t| scrub(t, secrets))
        .unwrap_or_default();
    let tasks: Vec<ManagedTask> = status
        .tasks
        .iter()
        .map(|t| {
            let full = t.state.trace.as_deref().map(|tr| scrub(tr, secrets));
            ManagedTask {
                id: t.id,
                state: t.state.state.clone(),
                worker_id: t.state.worker_id.clone(),
                msg: full.as_deref().map(first_line).unwrap_or_default(),
                trace: full,
            }
        })
        .collect();
    if trace.is_empty()
        && let Some(failed) = tasks.iter().find(|t| t.state == "FAILED")
    {
        // Terraform shows only the connector's trace when a create fails: say which task broke.
        trace = format!("task {} failed: {}", failed.id, failed.msg);
    }
    ManagedStatus {
        name: status.name.clone(),
        connector_type: connector_type.to_string(),
        connector: ManagedInstance {
            state: state.as_str().to_string(),
            worker_id: status.connector.worker_id.clone(),
            trace,
        },
        tasks,
    }
}

/// `status` with each worker's `host:port` (Connect's `worker_id`) replaced by the
/// supervisor's name for that worker (`shared-0`) from `names`, or by an opaque `worker-<hash>`
/// for an address it does not know: departments see which worker runs what, as the managed
/// service's opaque ids let them, never an internal address (admins find those in `/v1/pools`).
pub fn name_workers(status: &mut ManagedStatus, names: &std::collections::HashMap<String, String>) {
    let rename = |id: &mut String| {
        if id.is_empty() {
            return;
        }
        *id = match names.get(id.as_str()) {
            Some(name) => name.clone(),
            None => {
                let digest = Sha256::digest(id.as_bytes());
                format!("worker-{}", hex::encode(&digest[..4]))
            }
        };
    };
    rename(&mut status.connector.worker_id);
    for task in &mut status.tasks {
        rename(&mut task.worker_id);
    }
}

/// The status of a connector that exists but has no status yet (just created).
pub fn provisioning_status(name: &str, connector_type: &str) -> ManagedStatus {
    ManagedStatus {
        name: name.to_string(),
        connector_type: connector_type.to_string(),
        connector: ManagedInstance {
            state: ManagedState::Provisioning.as_str().to_string(),
            worker_id: String::new(),
            trace: String::new(),
        },
        tasks: Vec::new(),
    }
}

/// `sink` or `source` for a connector: Connect's own answer when it knows, else the type of its
/// class in the plugin list (matching the full class name or either of Connect's aliases), else
/// `unknown` (what Confluent Cloud itself sends in that case).
pub fn connector_type(
    reported: Option<&str>,
    class: Option<&str>,
    plugins: &[PluginInfo],
) -> String {
    if let Some(t @ ("sink" | "source")) = reported {
        return t.to_string();
    }
    if let Some(class) = class
        && let Some(p) = plugins
            .iter()
            .find(|p| plugin_matches(&p.class_name, class))
    {
        return p.plugin_type.clone();
    }
    "unknown".to_string()
}

/// Whether `name` designates the plugin `class_name`: the full name, the simple name, or the
/// simple name without its `Connector` suffix (Connect's two aliases).
pub fn plugin_matches(class_name: &str, name: &str) -> bool {
    if class_name == name {
        return true;
    }
    let simple = class_name.rsplit('.').next().unwrap_or(class_name);
    simple == name || simple.strip_suffix("Connector") == Some(name)
}

/// Which expansions a list asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expand {
    /// `id`.
    pub id: bool,
    /// `info`.
    pub info: bool,
    /// `status`.
    pub status: bool,
}

/// The `expand` of a raw query string, or `None` when there is no `expand` parameter (a plain
/// list of names). Repeated parameters, comma-joined values and percent-encoding (`%2C`) are all
/// accepted and their union taken, as the Go SDK sends `?expand=info%2Cstatus%2Cid&expand=id`.
/// Unknown values are ignored, as Connect does.
pub fn parse_expand(query: Option<&str>) -> Option<Expand> {
    let mut found = false;
    let mut expand = Expand::default();
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) != "expand" {
            continue;
        }
        found = true;
        for item in percent_decode(value).split(',') {
            match item.trim() {
                "id" => expand.id = true,
                "info" => expand.info = true,
                "status" => expand.status = true,
                _ => {}
            }
        }
    }
    found.then_some(expand)
}

/// The value of query parameter `name` (last one wins), percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
        .next_back()
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component; invalid escapes are kept
/// as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes the `%XX` escapes of one URL path segment (`+` stays `+`); `None` for an invalid
/// escape or bytes that are not UTF-8.
pub fn decode_path_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 3339 text of a time, in UTC with nanoseconds (what Go's `time.Time` decodes).
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Whether a string is a canonical integer (`0`, `-12`, `345`; no leading zeros, no `+`), i.e. one
/// that turns into a JSON number and back without change.
fn canonical_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || text == "-0"
    {
        return None;
    }
    text.parse().ok()
}

fn numbers_from_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => canonical_integer(s)
            .map(Value::from)
            .unwrap_or_else(|| value.clone()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_from_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks an `offsets` array of `{partition: object, offset: object|null}` and returns it with
/// integer strings turned into numbers (Terraform's older requests send `"kafka_offset": "50"`;
/// Connect needs numbers). Errors name every bad element. `None`/`null` is an empty list.
pub fn normalize_offsets(offsets: Option<&Value>) -> Result<Vec<Value>, Vec<String>> {
    let items = match offsets {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(vec![
                "offsets: must be an array of {partition, offset}".into(),
            ]);
        }
    };
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            problems.push(format!(
                "offsets[{i}]: must be an object with partition and offset"
            ));
            continue;
        };
        match map.get("partition") {
            Some(Value::Object(_)) => {}
            _ => problems.push(format!("offsets[{i}].partition: must be an object")),
        }
        match map.get("offset") {
            Some(Value::Object(_)) | Some(Value::Null) => {}
            _ => problems.push(format!(
                "offsets[{i}].offset: must be an object (or null to reset that partition)"
            )),
        }
        for key in map.keys() {
            if key != "partition" && key != "offset" {
                problems.push(format!(
                    "offsets[{i}].{key}: unknown field; use partition and offset"
                ));
            }
        }
        out.push(numbers_from_strings(item));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Masks a Connect `ConfigInfos` (validate answer) in place: values of PASSWORD-typed and
/// sensitive keys become [`MASK`], error texts are scrubbed of `secrets`, and `null` optional
/// strings are dropped (the contract types them as strings, Go clients read them as pointers).
pub fn mask_validation(infos: &mut Value, masker: &Masker<'_>, secrets: &[String]) {
    let Some(configs) = infos.get_mut("configs").and_then(Value::as_array_mut) else {
        return;
    };
    for config in configs {
        let (name, password) = match config.get("definition") {
            Some(d) => (
                d.get("name").and_then(Value::as_str).map(str::to_string),
                d.get("type").and_then(Value::as_str) == Some("PASSWORD"),
            ),
            None => (None, false),
        };
        let sensitive = password || name.as_deref().is_some_and(|n| masker.is_sensitive(n));
        if let Some(Value::Object(def)) = config.get_mut("definition") {
            def.retain(|_, v| !v.is_null());
        }
        if let Some(Value::Object(value)) = config.get_mut("value") {
            value.retain(|_, v| !v.is_null());
            if sensitive && value.contains_key("value") {
                value.insert("value".into(), Value::String(MASK.into()));
            }
            if let Some(Value::Array(errors)) = value.get_mut("errors") {
                for e in errors.iter_mut() {
                    if let Value::String(s) = e {
                        *s = scrub(s, secrets);
                    }
                }
            }
            if sensitive
                && let Some(Value::Array(recommended)) = value.get_mut("recommended_values")
            {
                recommended.clear();
            }
        }
    }
}

/// Turns a Connect `ConfigInfos` into the managed API's: config types the managed enum does not
/// have (Connect's `CLASS`) become `STRING` (a class name is a string to a client), and each
/// definition gets the managed `order` (Connect calls it `order_in_group`).
pub fn managed_validation(infos: &mut Value) {
    let Some(configs) = infos.get_mut("configs").and_then(Value::as_array_mut) else {
        return;
    };
    for config in configs {
        if let Some(Value::Object(def)) = config.get_mut("definition") {
            let known = def
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| MANAGED_CONFIG_TYPES.contains(&t));
            if !known && def.contains_key("type") {
                def.insert("type".into(), Value::String("STRING".into()));
            }
            if !def.contains_key("order")
                && let Some(order) = def.get("order_in_group").cloned()
            {
                def.insert("order".into(), order);
            }
        }
    }
}

/// Config types of the managed API's validate answer.
pub const MANAGED_CONFIG_TYPES: &[&str] = &[
    "NONE", "BOOLEAN", "INT", "SHORT", "LONG", "DOUBLE", "STRING", "LIST", "ENUM", "PASSWORD",
];

/// Masks the configs of a Connect task list (`[{id, config}]`) in place.
pub fn mask_tasks(tasks: &mut Value, masker: &Masker<'_>) {
    if let Value::Array(items) = tasks {
        for item in items {
            if let Some(config) = item.get_mut("config") {
                masker.mask_json(config);
            }
        }
    }
}

/// Reads a flat config map from JSON: values must be strings (numbers and booleans are turned
/// into their text, as Connect does). Errors name each bad key without echoing its value.
pub fn config_from_json(value: &Value, at: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let Value::Object(map) = value else {
        return Err(vec![format!(
            "{at}: must be a JSON object of string values"
        )]);
    };
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            Value::Number(n) => {
                out.insert(k.clone(), n.to_string());
            }
            Value::Bool(b) => {
                out.insert(k.clone(), b.to_string());
            }
            Value::Null => problems.push(format!(
                "{at}.\"{k}\": is null; give a string value or leave the key out"
            )),
            _ => problems.push(format!(
                "{at}.\"{k}\": must be a string (all config values are strings)"
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Longest connector or plugin name sent to Connect in a path: Jetty answers longer request
/// lines with an HTML page, and no naming rule comes near it.
pub const MAX_PATH_NAME_CHARS: usize = 1024;

/// Why `name` (a connector or plugin name, `what` says which) cannot be sent to Connect as one
/// path segment, or `None` when it can. Connect refuses `/` in names; Jetty refuses encoded
/// separators, backslashes, percent signs and control characters with an HTML page; URLs
/// resolve `.` and `..` away (even percent-encoded), so `DELETE .../connectors/..` would reach
/// the worker as `DELETE /`. Such a name can never exist on a worker: refused before any call.
pub fn unaddressable(name: &str, what: &str) -> Option<String> {
    let shown = name.escape_debug().to_string();
    let fix = "use letters, digits, '-', '_' and '.' (e.g. dept1-postgres-source-prod-001)";
    let why = if name.is_empty() {
        "is empty".to_string()
    } else if name == "." || name == ".." {
        "is a relative path segment (\".\" and \"..\" are resolved away in URLs)".to_string()
    } else if name.chars().count() > MAX_PATH_NAME_CHARS {
        format!("is longer than {MAX_PATH_NAME_CHARS} characters")
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("contains the control character U+{:04X}", c as u32)
    } else if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\' | '%' | ';')) {
        format!("contains '{c}'")
    } else {
        return None;
    };
    Some(format!(
        "{what} \"{shown}\" {why}; Kafka Connect cannot hold or address such a name: {fix}"
    ))
}

/// Checks the `offsets` of a create against the contract (`connect.v1` create request): each
/// entry's `partition` and `offset` are non-empty objects. (`offset: null`, "reset this
/// partition", is only meaningful for an offsets request on an existing connector.)
pub fn check_create_offsets(offsets: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, item) in offsets.iter().enumerate() {
        for field in ["partition", "offset"] {
            match item.get(field) {
                Some(Value::Object(m)) if m.is_empty() => problems.push(format!(
                    "offsets[{i}].{field}: is empty; name the {}",
                    if field == "partition" {
                        "partition, e.g. {\"kafka_topic\": \"orders\", \"kafka_partition\": 0} (sink) or the source's own keys"
                    } else {
                        "position, e.g. {\"kafka_offset\": 1000} (sink) or the source's own keys"
                    }
                )),
                Some(Value::Null) => problems.push(format!(
                    "offsets[{i}].{field}: must be an object on create (null resets a partition \
                     only in an offsets request: POST .../offsets/request)"
                )),
                _ => {}
            }
        }
    }
    problems
}

/// Connect worker ids (`host:port`) of the workers of a pool that do not run their tasks right
/// now, with the reason shown in the status of what Connect still places on them.
pub type DownWorkers = BTreeMap<String, String>;

/// Marks the RUNNING instances (connector and tasks) that Connect places on a down worker as
/// UNASSIGNED, their trace saying why: Connect keeps showing a killed worker's tasks RUNNING
/// until its group notices and reassigns them. Returns the first reason when something was
/// marked.
pub fn mark_down_workers(status: &mut ConnectorStatus, down: &DownWorkers) -> Option<String> {
    if down.is_empty() {
        return None;
    }
    let mut first = None;
    let instances =
        std::iter::once(&mut status.connector).chain(status.tasks.iter_mut().map(|t| &mut t.state));
    for instance in instances {
        if instance.state == "RUNNING"
            && let Some(reason) = down.get(&instance.worker_id)
        {
            instance.state = "UNASSIGNED".into();
            instance.trace = Some(reason.clone());
            first.get_or_insert_with(|| reason.clone());
        }
    }
    first
}

/// [`mark_down_workers`] on Connect's JSON `ConnectorStateInfo` (or one task's state), for the
/// Apache-compatible routes, which pass Connect's body through.
pub fn mark_down_workers_json(status: &mut Value, down: &DownWorkers) -> bool {
    if down.is_empty() {
        return false;
    }
    let mut marked = false;
    let mut mark = |v: &mut Value| {
        let on_down = v.get("state").and_then(Value::as_str) == Some("RUNNING")
            && v.get("worker_id")
                .and_then(Value::as_str)
                .and_then(|w| down.get(w))
                .is_some();
        if on_down {
            let reason = down[v["worker_id"].as_str().unwrap_or_default()].clone();
            v["state"] = Value::String("UNASSIGNED".into());
            v["trace"] = Value::String(reason);
            marked = true;
        }
    };
    if let Some(c) = status.get_mut("connector") {
        mark(c);
    }
    if let Some(Value::Array(tasks)) = status.get_mut("tasks") {
        tasks.iter_mut().for_each(&mut mark);
    }
    if status.get("id").is_some() {
        mark(status);
    }
    marked
}

/// The managed state of a connector some of whose instances [`mark_down_workers`] marked:
/// DEGRADED while other tasks still run, PROVISIONING while none does (it comes back by
/// itself), with `reason` as the connector's trace when it has none.
pub fn degrade_for_down_workers(status: &mut ManagedStatus, reason: &str) {
    let running = ManagedState::Running.as_str();
    let provisioning = ManagedState::Provisioning.as_str();
    if status.connector.state != running && status.connector.state != provisioning {
        return;
    }
    status.connector.state = if status.tasks.iter().any(|t| t.state == "RUNNING") {
        ManagedState::Degraded.as_str().to_string()
    } else {
        provisioning.to_string()
    };
    if status.connector.trace.is_empty() {
        status.connector.trace = reason.to_string();
    }
}

/// The managed state the contract has for "not known": a connector whose pool has no ready
/// worker is listed with its last known state in the trace.
pub const UNKNOWN_MANAGED_STATE: &str = "NONE";
/// The Connect state a connector of a pool without a ready worker is listed with.
pub const UNKNOWN_CONNECT_STATE: &str = "UNASSIGNED";

/// The last known status of a connector of an unavailable pool, marked as unknown: every
/// instance UNASSIGNED with `reason` (and its last known state) as trace.
pub fn unknown_status(last: &ConnectorStatus, reason: &str) -> ConnectorStatus {
    let mark = |i: &crate::connect::InstanceState| crate::connect::InstanceState {
        state: UNKNOWN_CONNECT_STATE.into(),
        worker_id: i.worker_id.clone(),
        trace: Some(format!("{reason}; last known state {}", i.state)),
        version: i.version.clone(),
    };
    ConnectorStatus {
        name: last.name.clone(),
        connector: mark(&last.connector),
        tasks: last
            .tasks
            .iter()
            .map(|t| crate::connect::TaskState {
                id: t.id,
                state: mark(&t.state),
            })
            .collect(),
        connector_type: last.connector_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::{InstanceState, TaskState};
    use proptest::prelude::*;

    fn status(connector: &str, tasks: &[&str]) -> ConnectorStatus {
        ConnectorStatus {
            name: "c".into(),
            connector: InstanceState {
                state: connector.into(),
                worker_id: "127.0.0.1:8083".into(),
                trace: None,
                version: None,
            },
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, s)| TaskState {
                    id: i as u32,
                    state: InstanceState {
                        state: (*s).into(),
                        worker_id: "127.0.0.1:8084".into(),
                        trace: (*s == "FAILED").then(|| {
                            format!("java.lang.RuntimeException: boom {i}\n\tat x.y(Z.java:1)")
                        }),
                        version: None,
                    },
                })
                .collect(),
            connector_type: Some("source".into()),
        }
    }

    #[test]
    fn connect_states_map_to_the_managed_vocabulary() {
        use ManagedState::*;
        let cases: &[(&str, &[&str], ManagedState)] = &[
            ("UNASSIGNED", &[], Provisioning),
            ("RESTARTING", &["RUNNING"], Provisioning),
            ("RUNNING", &[], Provisioning),
            ("RUNNING", &["RUNNING", "UNASSIGNED"], Provisioning),
            ("RUNNING", &["RUNNING", "RESTARTING"], Provisioning),
            ("RUNNING", &["RUNNING", "RUNNING"], Running),
            ("RUNNING", &["RUNNING", "FAILED"], Degraded),
            ("RUNNING", &["UNASSIGNED", "FAILED"], Degraded),
            ("RUNNING", &["FAILED", "FAILED"], Failed),
            ("FAILED", &["RUNNING"], Failed),
            ("PAUSED", &["PAUSED"], Paused),
            ("PAUSED", &["RUNNING"], Paused),
            ("STOPPED", &[], Paused),
            ("SOMETHING_NEW", &["RUNNING"], Provisioning),
        ];
        for (c, t, expected) in cases {
            assert_eq!(connector_state(&status(c, t)), *expected, "{c} {t:?}");
        }
    }

    #[test]
    fn managed_status_carries_task_messages_and_a_connector_trace_for_task_failures() {
        let s = managed_status(
            &status("RUNNING", &["RUNNING", "FAILED"]),
            None,
            "source",
            &[],
        );
        assert_eq!(s.connector.state, "DEGRADED");
        assert_eq!(
            s.connector.trace,
            "task 1 failed: java.lang.RuntimeException: boom 1"
        );
        assert_eq!(s.tasks[0].msg, "");
        assert_eq!(s.tasks[0].trace, None);
        assert_eq!(s.tasks[1].msg, "java.lang.RuntimeException: boom 1");
        assert!(s.tasks[1].trace.as_deref().unwrap().contains("at x.y"));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["tasks"][0].get("trace").is_none());
        assert_eq!(json["type"], "source");
    }

    #[test]
    fn worker_addresses_become_worker_names_or_opaque_ids() {
        let mut s = managed_status(&status("c", &["RUNNING", "RUNNING"]), None, "source", &[]);
        let names = std::collections::HashMap::from([(
            "127.0.0.1:8083".to_string(),
            "shared-0".to_string(),
        )]);
        name_workers(&mut s, &names);
        assert_eq!(s.connector.worker_id, "shared-0");
        // The tasks run on 127.0.0.1:8084, which the map does not know: one opaque id for it.
        assert!(
            s.tasks[0].worker_id.starts_with("worker-"),
            "{:?}",
            s.tasks[0]
        );
        assert_eq!(s.tasks[0].worker_id, s.tasks[1].worker_id);
        assert!(!serde_json::to_string(&s).unwrap().contains("127.0.0.1"));
    }

    #[test]
    fn traces_are_scrubbed_of_secrets() {
        let mut st = status("FAILED", &[]);
        st.connector.trace = Some("login failed for password hunter22 at db".into());
        let s = managed_status(&st, None, "source", &["hunter22".into()]);
        assert_eq!(
            s.connector.trace,
            format!("login failed for password {MASK} at db")
        );
    }

    #[test]
    fn connector_ids_are_stable_short_and_department_specific() {
        let a = connector_id("dept1", "dept1-x");
        assert_eq!(a, connector_id("dept1", "dept1-x"));
        assert!(a.starts_with("lcc-"));
        assert_eq!(a.len(), 4 + CONNECTOR_ID_HASH_LEN);
        assert_ne!(a, connector_id("dept2", "dept1-x"));
        assert_ne!(a, connector_id("dept1", "dept1-y"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(connector_id("ab", "c"), connector_id("a", "bc"));
        // Pinned: ids must never change between releases (the CLI and scripts store them).
        assert_eq!(
            connector_id("dept1", "dept1-files-source-dev-001"),
            PINNED_ID
        );
    }

    const PINNED_ID: &str = "lcc-99mqedfh";

    #[test]
    fn masking_covers_patterns_and_password_keys_and_keeps_the_rest() {
        let rules = SecretRules::default();
        let passwords = BTreeSet::from(["db.pw".to_string()]);
        let m = Masker::new(&rules, &passwords);
        let config = BTreeMap::from([
            ("connection.password".to_string(), "p1".to_string()),
            ("db.pw".to_string(), "p2".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]);
        let masked = m.mask(&config);
        assert_eq!(masked["connection.password"], MASK);
        assert_eq!(masked["db.pw"], MASK);
        assert_eq!(masked["topic"], "t");
        let mut secrets = m.secrets(&config);
        secrets.sort();
        assert_eq!(secrets, ["p1", "p2"]);
    }

    #[test]
    fn masks_sent_back_stand_for_the_current_value() {
        let current = BTreeMap::from([("a.password".to_string(), "real".to_string())]);
        let incoming = BTreeMap::from([
            ("a.password".to_string(), MASK.to_string()),
            ("topic".to_string(), "t".to_string()),
        ]);
        let out = unmask(&incoming, Some(&current)).unwrap();
        assert_eq!(out["a.password"], "real");
        assert_eq!(out["topic"], "t");
        let err = unmask(&incoming, None).unwrap_err();
        assert_eq!(err, ["a.password"]);
    }

    #[test]
    fn extras_are_added_unless_set_and_stripped_only_when_unchanged() {
        let extras = ManagedExtras::new("env-1", "b:9092", Some("SASL_SSL"));
        let config = BTreeMap::from([
            ("name".to_string(), "c".to_string()),
            (KEY_CLOUD_PROVIDER.to_string(), "aws".to_string()),
        ]);
        let added = extras.add(config.clone());
        assert_eq!(added[KEY_CLOUD_ENVIRONMENT], "env-1");
        assert_eq!(added[KEY_KAFKA_ENDPOINT], "SASL_SSL://b:9092");
        assert_eq!(added[KEY_KAFKA_REGION], SELF_MANAGED);
        assert_eq!(added[KEY_CLOUD_PROVIDER], "aws", "the user's value wins");
        assert_eq!(extras.strip(added), config);
    }

    #[test]
    fn types_come_from_connect_or_the_plugin_list() {
        let plugins = vec![PluginInfo {
            class_name: "org.apache.kafka.connect.file.FileStreamSourceConnector".into(),
            plugin_type: "source".into(),
            version: None,
        }];
        assert_eq!(connector_type(Some("sink"), None, &plugins), "sink");
        for alias in [
            "FileStreamSource",
            "FileStreamSourceConnector",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ] {
            assert_eq!(
                connector_type(Some("unknown"), Some(alias), &plugins),
                "source"
            );
        }
        assert_eq!(connector_type(None, Some("Nope"), &plugins), "unknown");
    }

    #[test]
    fn expand_takes_the_union_of_every_form_clients_send() {
        let all = Expand {
            id: true,
            info: true,
            status: true,
        };
        assert_eq!(parse_expand(None), None);
        assert_eq!(parse_expand(Some("")), None);
        assert_eq!(parse_expand(Some("other=1")), None);
        assert_eq!(parse_expand(Some("expand=info%2Cstatus%2Cid")), Some(all));
        assert_eq!(parse_expand(Some("expand=info,status,id")), Some(all));
        assert_eq!(
            parse_expand(Some("expand=info%2cstatus&expand=id%2Cstatus")),
            Some(all)
        );
        assert_eq!(
            parse_expand(Some("expand=id&expand=status")),
            Some(Expand {
                id: true,
                info: false,
                status: true
            })
        );
        assert_eq!(
            parse_expand(Some("expand=id,%20info")),
            Some(Expand {
                id: true,
                info: true,
                status: false
            })
        );
        assert_eq!(parse_expand(Some("expand=bogus")), Some(Expand::default()));
        assert_eq!(parse_expand(Some("expand")), Some(Expand::default()));
    }

    #[test]
    fn percent_decoding_handles_escapes_plus_and_garbage() {
        assert_eq!(percent_decode("a%2Cb"), "a,b");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(
            query_param(Some("a=1&onlyFailed=true"), "onlyFailed").as_deref(),
            Some("true")
        );
        assert_eq!(query_param(Some("a=1"), "b"), None);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = time::macros::datetime!(2025-02-08 20:06:20.468546777 +02:00);
        assert_eq!(rfc3339(t), "2025-02-08T18:06:20.468546777Z");
    }

    #[test]
    fn offsets_accept_numbers_and_numeric_strings() {
        let input = serde_json::json!([
            {"partition": {"kafka_partition": "0", "kafka_topic": "t"}, "offset": {"kafka_offset": "50"}},
            {"partition": {"file": "/a"}, "offset": {"position": 7, "name": "007"}},
            {"partition": {"kafka_partition": 1, "kafka_topic": "t"}, "offset": null}
        ]);
        let out = normalize_offsets(Some(&input)).unwrap();
        assert_eq!(out[0]["partition"]["kafka_partition"], 0);
        assert_eq!(out[0]["offset"]["kafka_offset"], 50);
        assert_eq!(out[0]["partition"]["kafka_topic"], "t");
        assert_eq!(out[1]["offset"]["name"], "007", "not canonical: stays text");
        assert!(out[2]["offset"].is_null());
        assert_eq!(normalize_offsets(None).unwrap(), Vec::<Value>::new());
        assert_eq!(
            normalize_offsets(Some(&Value::Null)).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn bad_offsets_name_every_problem() {
        let input = serde_json::json!([1, {"partition": 2, "offset": "x", "extra": 1}]);
        let p = normalize_offsets(Some(&input)).unwrap_err();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("offsets[0]"));
        assert!(normalize_offsets(Some(&serde_json::json!({}))).is_err());
    }

    #[test]
    fn validation_answers_are_masked_and_nulls_dropped() {
        let rules = SecretRules::default();
        let none = BTreeSet::new();
        let m = Masker::new(&rules, &none);
        let mut infos = serde_json::json!({"name": "X", "error_count": 1, "groups": [], "configs": [
            {"definition": {"name": "db.pw", "type": "PASSWORD", "default_value": null},
             "value": {"name": "db.pw", "value": "hunter22", "errors": ["bad hunter22"], "recommended_values": [], "visible": true}},
            {"definition": {"name": "topic", "type": "STRING"},
             "value": {"name": "topic", "value": null, "errors": [], "recommended_values": [], "visible": true}}
        ]});
        mask_validation(&mut infos, &m, &["hunter22".to_string()]);
        assert_eq!(infos["configs"][0]["value"]["value"], MASK);
        assert_eq!(
            infos["configs"][0]["value"]["errors"][0],
            format!("bad {MASK}")
        );
        assert!(
            infos["configs"][0]["definition"]
                .get("default_value")
                .is_none()
        );
        assert!(infos["configs"][1]["value"].get("value").is_none());
        assert!(!infos.to_string().contains("hunter22"));
    }

    #[test]
    fn validation_types_are_mapped_to_the_managed_enum() {
        let mut infos = serde_json::json!({"configs": [
            {"definition": {"name": "key.converter", "type": "CLASS", "order_in_group": 6}},
            {"definition": {"name": "topic", "type": "STRING", "order_in_group": -1, "order": 3}}
        ]});
        managed_validation(&mut infos);
        assert_eq!(infos["configs"][0]["definition"]["type"], "STRING");
        assert_eq!(infos["configs"][0]["definition"]["order"], 6);
        assert_eq!(infos["configs"][1]["definition"]["order"], 3);
    }

    #[test]
    fn configs_from_json_accept_scalars_and_name_bad_keys() {
        let v = serde_json::json!({"a": "x", "b": 5, "c": true});
        let c = config_from_json(&v, "config").unwrap();
        assert_eq!(c["b"], "5");
        assert_eq!(c["c"], "true");
        let v = serde_json::json!({"pw": ["s3cret"], "n": null});
        let p = config_from_json(&v, "config").unwrap_err();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|m| !m.contains("s3cret")));
        assert!(config_from_json(&serde_json::json!([1]), "config").is_err());
    }

    #[test]
    fn names_connect_cannot_hold_are_told_apart() {
        for ok in ["dept1-a", "dept1-a.b_c~d", "Ünïcode name", "a b"] {
            assert_eq!(unaddressable(ok, "connector name"), None, "{ok}");
        }
        for (bad, why) in [
            ("", "is empty"),
            (".", "relative path segment"),
            ("..", "relative path segment"),
            ("x\u{3}y", "U+0003"),
            ("x\ny", "U+000A"),
            ("x\0y", "U+0000"),
            ("a/b", "'/'"),
            ("a\\b", "'\\'"),
            ("a%b", "'%'"),
            ("a;b", "';'"),
        ] {
            let m = unaddressable(bad, "connector name").unwrap_or_else(|| panic!("{bad:?}"));
            assert!(m.contains(why), "{bad:?}: {m}");
            assert!(!m.contains('\n') && !m.contains('\u{3}'), "escaped: {m}");
        }
        assert!(unaddressable(&"a".repeat(MAX_PATH_NAME_CHARS + 1), "n").is_some());
    }

    #[test]
    fn create_offsets_need_a_partition_and_a_position() {
        let ok = serde_json::json!([{"partition": {"kafka_partition": 0}, "offset": {"kafka_offset": 5}}]);
        assert!(check_create_offsets(ok.as_array().unwrap()).is_empty());
        let bad = serde_json::json!([{"partition": {}, "offset": null}]);
        let p = check_create_offsets(bad.as_array().unwrap());
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("offsets[0].partition: is empty"));
        assert!(p[1].contains("offsets[0].offset: must be an object on create"));
    }

    #[test]
    fn instances_on_a_down_worker_no_longer_read_running() {
        let mut s = status("RUNNING", &["RUNNING", "RUNNING"]);
        s.connector.worker_id = "h:1".into();
        s.tasks[0].state.worker_id = "h:1".into();
        s.tasks[1].state.worker_id = "h:2".into();
        let down: DownWorkers =
            [("h:1".to_string(), "worker shared-0 restarting".to_string())].into();
        let mut json = serde_json::to_value(&s).unwrap();
        assert_eq!(mark_down_workers(&mut s, &DownWorkers::new()), None);
        let reason = mark_down_workers(&mut s, &down).unwrap();
        assert_eq!(reason, "worker shared-0 restarting");
        assert_eq!(s.connector.state, "UNASSIGNED");
        assert_eq!(s.tasks[0].state.state, "UNASSIGNED");
        assert_eq!(s.tasks[1].state.state, "RUNNING");
        let mut managed = managed_status(&s, None, "source", &[]);
        degrade_for_down_workers(&mut managed, &reason);
        assert_eq!(managed.connector.state, "DEGRADED");
        assert_eq!(managed.tasks[0].msg, "worker shared-0 restarting");
        assert!(mark_down_workers_json(&mut json, &down));
        assert_eq!(json["connector"]["state"], "UNASSIGNED");
        assert_eq!(json["tasks"][0]["trace"], "worker shared-0 restarting");
        assert_eq!(json["tasks"][1]["state"], "RUNNING");
        // Nothing running anywhere: provisioning, it comes back by itself.
        let mut all = status("RUNNING", &["RUNNING"]);
        all.connector.worker_id = "h:1".into();
        all.tasks[0].state.worker_id = "h:1".into();
        let reason = mark_down_workers(&mut all, &down).unwrap();
        let mut managed = managed_status(&all, None, "source", &[]);
        degrade_for_down_workers(&mut managed, &reason);
        assert_eq!(managed.connector.state, "PROVISIONING");
        assert_eq!(managed.connector.trace, "worker shared-0 restarting");
    }

    proptest! {
        #[test]
        fn masked_configs_never_contain_a_sensitive_value(
            config in proptest::collection::btree_map("[a-z.]{1,20}", "[ -~]{0,20}", 0..12)
        ) {
            let rules = SecretRules::default();
            let none = BTreeSet::new();
            let m = Masker::new(&rules, &none);
            let masked = m.mask(&config);
            prop_assert_eq!(masked.len(), config.len());
            for (k, v) in &masked {
                if m.is_sensitive(k) {
                    prop_assert_eq!(v.as_str(), MASK);
                } else {
                    prop_assert_eq!(v, &config[k]);
                }
            }
        }

        #[test]
        fn scrubbed_text_contains_no_secret(text in "[ -~]{0,60}", secret in "[ -~]{1,12}") {
            let input = format!("{text}{secret}{text}");
            let out = scrub(&input, std::slice::from_ref(&secret));
            // A secret that starts or ends with `*` can reappear across a mask and the text
            // beside it ("=" + "*=" masked reads "=****...*=") without revealing anything: only
            // an occurrence outside every mask is a leak.
            let outside_masks = out.replace(MASK, "\u{0}");
            prop_assert!(!outside_masks.contains(&secret));
        }

        #[test]
        fn extras_strip_undoes_add(
            config in proptest::collection::btree_map("[a-z.]{1,12}", "[a-z0-9]{0,8}", 0..8)
        ) {
            let extras = ManagedExtras::new("env", "b:1", None);
            prop_assert_eq!(extras.strip(extras.add(config.clone())), config);
        }

        #[test]
        fn a_connector_with_tasks_not_started_yet_is_provisioning(
            started in 0usize..4,
            generated in 0usize..6,
        ) {
            let tasks = vec!["RUNNING"; started];
            let state = connector_state_expecting(&status("RUNNING", &tasks), Some(generated));
            let running = started > 0 && started >= generated;
            prop_assert_eq!(state == ManagedState::Running, running);
            prop_assert_eq!(
                connector_state_expecting(&status("RUNNING", &tasks), None),
                connector_state(&status("RUNNING", &tasks))
            );
        }

        #[test]
        fn the_state_is_running_only_when_connector_and_every_task_run(
            connector in prop_oneof!["RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "STOPPED", "RESTARTING"],
            tasks in proptest::collection::vec(prop_oneof!["RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "RESTARTING"], 0..5)
        ) {
            let refs: Vec<&str> = tasks.iter().map(String::as_str).collect();
            let state = connector_state(&status(&connector, &refs));
            let all_running = !tasks.is_empty() && tasks.iter().all(|t| t == "RUNNING");
            prop_assert_eq!(state == ManagedState::Running, connector == "RUNNING" && all_running);
            if connector == "RUNNING" && tasks.iter().any(|t| t == "FAILED") {
                prop_assert!(matches!(state, ManagedState::Degraded | ManagedState::Failed));
            }
        }

        #[test]
        fn canonical_integer_strings_round_trip(n in any::<i64>()) {
            let v = numbers_from_strings(&Value::String(n.to_string()));
            prop_assert_eq!(v, Value::from(n));
        }

        #[test]
        fn expand_parsing_never_panics(q in "[ -~]{0,40}") {
            let _ = parse_expand(Some(&q));
            let _ = percent_decode(&q);
        }
    }
}

//! The mapping table from self-managed connector classes to their fully-managed equivalents,
//! kept as data in `mapping.json` (reviewable without reading Rust), and the pure translation of
//! one connector's config through it.
//!
//! A config comes in as the managed API shows it (secrets masked, the managed extras added);
//! what comes out is the managed plugin's config, the keys that hold secrets (exported as
//! variables, moved by the source supervisor), what was dropped and why, and the keys the table
//! does not know (carried unchanged for the target's validate to judge).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::translate::MASK;

/// The table's text, compiled in.
pub const MAPPING_JSON: &str = include_str!("mapping.json");

/// The table, parsed once (a malformed table fails its unit test, never a user's run).
pub static TABLE: LazyLock<MappingTable> =
    LazyLock::new(|| serde_json::from_str(MAPPING_JSON).expect("src/migrate/mapping.json parses"));

/// The whole table.
#[derive(Debug, Clone, Deserialize)]
pub struct MappingTable {
    /// Keys the managed API adds to every config (never part of a translated config).
    pub managed_extras: Vec<String>,
    /// Prefixes of such keys.
    pub managed_extra_prefixes: Vec<String>,
    /// What applies to every mapped plugin.
    pub common: Common,
    /// The mapped plugins.
    pub plugins: Vec<PluginMapping>,
    /// Classes with no managed equivalent, and why.
    pub unmapped: Vec<Unmapped>,
}

/// Rules shared by every mapped plugin.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// Worker-side keys the managed service sets itself.
    pub drop: Vec<String>,
    /// Prefixes of such keys.
    pub drop_prefixes: Vec<String>,
    /// Keys every managed connector gets.
    pub set: BTreeMap<String, String>,
    /// Secrets every managed connector needs that a self-managed one does not have.
    pub needs_sensitive: Vec<String>,
    /// Converter class → managed data format.
    pub formats: BTreeMap<String, String>,
}

/// One self-managed plugin (or one database of it) and its managed equivalent.
#[derive(Debug, Clone, Deserialize)]
pub struct PluginMapping {
    /// Stable id, for tests and reports.
    pub id: String,
    /// Self-managed connector classes it covers.
    pub classes: Vec<String>,
    /// Only when this config value starts with a prefix (JDBC by database).
    #[serde(default)]
    pub when: Option<When>,
    /// The managed plugin's name.
    pub managed: String,
    /// `source` or `sink`.
    pub kind: String,
    /// A key whose value is split into several managed keys.
    #[serde(default)]
    pub derive: Option<Derive>,
    /// Key renames (old → new).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Keys carried unchanged.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Value changes, by key of the managed config.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Keys with no managed equivalent.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Keys of the managed config that hold secrets.
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Whether the self-managed offsets mean the same to the managed connector.
    pub offsets: OffsetsCarry,
    /// What a person must know about this mapping.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A condition on a config value.
#[derive(Debug, Clone, Deserialize)]
pub struct When {
    /// The key.
    pub key: String,
    /// The prefix its value must start with.
    pub prefix: String,
}

/// How a value is split into managed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derive {
    /// `connection.url` (a JDBC URL) → `connection.host`, `connection.port`, `db.name`.
    JdbcUrl,
    /// `connection.uri` (a MongoDB URI) → `connection.host`, `connection.user`,
    /// `connection.password`.
    MongodbUri,
}

/// Whether offsets carry over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetsCarry {
    /// The managed connector reads the same partitions and offsets.
    Carried,
    /// They mean nothing to the managed connector.
    NotCarried,
}

/// A class with no managed equivalent.
#[derive(Debug, Clone, Deserialize)]
pub struct Unmapped {
    /// Its class names (full and short).
    pub classes: Vec<String>,
    /// Why.
    pub why: String,
}

/// What became of a connector in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Translated to a managed plugin.
    Mapped,
    /// Carried as it is (the target is a supervisor running the same plugins).
    Identity,
    /// There is no managed equivalent.
    NoEquivalent {
        /// Why.
        why: String,
    },
    /// The class is not in the table.
    NotInTable,
}

/// One connector's config, translated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    /// The self-managed class.
    pub source_class: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The table entry used.
    pub mapping: Option<String>,
    /// The managed plugin.
    pub managed_plugin: Option<String>,
    /// The translated config (secrets still masked: their values never leave the source
    /// supervisor except to the target).
    pub config: BTreeMap<String, String>,
    /// Keys of `config` that hold secrets.
    pub sensitive: BTreeSet<String>,
    /// Secrets the managed connector needs that the source has no value for.
    pub needs: Vec<String>,
    /// Keys dropped, with why.
    pub dropped: BTreeMap<String, String>,
    /// Keys carried unchanged that the table does not name.
    pub unchecked: Vec<String>,
    /// Source key → managed key for every renamed secret (so the source supervisor can put
    /// the real value under the new key).
    pub secret_sources: BTreeMap<String, String>,
    /// Whether the offsets carry over.
    pub offsets: OffsetsCarry,
    /// Notes for people.
    pub notes: Vec<String>,
}

impl Translation {
    /// Whether a cut-over can use it.
    pub fn is_usable(&self) -> bool {
        matches!(self.outcome, Outcome::Mapped | Outcome::Identity)
    }
}

/// Whether `key` is one the managed API adds (never part of a config to create).
pub fn is_managed_extra(table: &MappingTable, key: &str) -> bool {
    table.managed_extras.iter().any(|k| k == key)
        || table
            .managed_extra_prefixes
            .iter()
            .any(|p| key.starts_with(p))
}

/// `config` without the managed extras: what to create on a target that runs the same plugins
/// (another supervisor). Masked values are the secrets.
pub fn identity(table: &MappingTable, config: &BTreeMap<String, String>) -> Translation {
    let class = config.get("connector.class").cloned().unwrap_or_default();
    let out: BTreeMap<String, String> = config
        .iter()
        .filter(|(k, _)| !is_managed_extra(table, k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let sensitive = out
        .iter()
        .filter(|(_, v)| v.as_str() == MASK)
        .map(|(k, _)| k.clone())
        .collect::<BTreeSet<_>>();
    Translation {
        source_class: class.clone(),
        outcome: Outcome::Identity,
        mapping: None,
        managed_plugin: Some(class),
        secret_sources: sensitive.iter().map(|k| (k.clone(), k.clone())).collect(),
        config: out,
        sensitive,
        needs: Vec::new(),
        dropped: BTreeMap::new(),
        unchecked: Vec::new(),
        offsets: OffsetsCarry::Carried,
        notes: vec!["the target runs the same plugins: the config is carried as it is".into()],
    }
}

fn class_matches(listed: &str, class: &str) -> bool {
    listed == class || listed.rsplit('.').next() == Some(class)
}

/// The table entry for `config`, if any.
pub fn find<'t>(
    table: &'t MappingTable,
    config: &BTreeMap<String, String>,
) -> Option<&'t PluginMapping> {
    let class = config.get("connector.class")?;
    table.plugins.iter().find(|p| {
        p.classes.iter().any(|c| class_matches(c, class))
            && p.when
                .as_ref()
                .is_none_or(|w| config.get(&w.key).is_some_and(|v| v.starts_with(&w.prefix)))
    })
}

/// Translates `config` (as the managed API shows it) through the table.
pub fn translate(table: &MappingTable, config: &BTreeMap<String, String>) -> Translation {
    let class = config.get("connector.class").cloned().unwrap_or_default();
    let mut t = Translation {
        source_class: class.clone(),
        outcome: Outcome::NotInTable,
        mapping: None,
        managed_plugin: None,
        config: BTreeMap::new(),
        sensitive: BTreeSet::new(),
        needs: Vec::new(),
        dropped: BTreeMap::new(),
        unchecked: Vec::new(),
        secret_sources: BTreeMap::new(),
        offsets: OffsetsCarry::NotCarried,
        notes: Vec::new(),
    };
    if let Some(u) = table
        .unmapped
        .iter()
        .find(|u| u.classes.iter().any(|c| class_matches(c, &class)))
    {
        t.outcome = Outcome::NoEquivalent { why: u.why.clone() };
        return t;
    }
    let Some(entry) = find(table, config) else {
        let known = table
            .plugins
            .iter()
            .any(|p| p.classes.iter().any(|c| class_matches(c, &class)));
        t.notes.push(if known {
            format!(
                "{class} is in the table only for some databases or settings; this config matches none (see src/migrate/mapping.json)"
            )
        } else {
            format!("{class} is not in the mapping table (src/migrate/mapping.json)")
        });
        return t;
    };
    t.outcome = Outcome::Mapped;
    t.mapping = Some(entry.id.clone());
    t.managed_plugin = Some(entry.managed.clone());
    t.offsets = entry.offsets;
    t.notes.extend(entry.notes.iter().cloned());
    let (format_key, key_format_key) = if entry.kind == "sink" {
        ("input.data.format", "input.key.format")
    } else {
        ("output.data.format", "output.key.format")
    };
    let derive_key = match entry.derive {
        Some(Derive::JdbcUrl) => Some("connection.url"),
        Some(Derive::MongodbUri) => Some("connection.uri"),
        None => None,
    };
    for (key, value) in config {
        if is_managed_extra(table, key) {
            continue;
        }
        if key == "connector.class" {
            t.config.insert(key.clone(), entry.managed.clone());
            continue;
        }
        if key == "value.converter" || key == "key.converter" {
            let target = if key == "value.converter" {
                format_key
            } else {
                key_format_key
            };
            match table.common.formats.get(value) {
                Some(format) => {
                    t.config.insert(target.to_string(), format.clone());
                    t.dropped
                        .insert(key.clone(), format!("replaced by {target} = {format}"));
                }
                None => {
                    t.dropped.insert(
                        key.clone(),
                        format!("converter {value} has no managed format; set {target} yourself"),
                    );
                }
            }
            continue;
        }
        if table.common.drop.contains(key)
            || table
                .common
                .drop_prefixes
                .iter()
                .any(|p| key.starts_with(p))
        {
            t.dropped.insert(
                key.clone(),
                "worker-side setting the managed service sets itself".into(),
            );
            continue;
        }
        if entry.drop.contains(key) {
            t.dropped
                .insert(key.clone(), format!("no equivalent on {}", entry.managed));
            continue;
        }
        if Some(key.as_str()) == derive_key {
            derive(entry.derive, key, value, &mut t);
            continue;
        }
        let new_key = entry.rename.get(key).unwrap_or(key).clone();
        if !entry.rename.contains_key(key)
            && !entry.keep.contains(key)
            && !entry.sensitive.contains(key)
            && !key.starts_with("transforms")
            && !key.starts_with("predicates")
            && !key.starts_with("errors.")
        {
            t.unchecked.push(key.clone());
        }
        if entry.sensitive.contains(&new_key) || value == MASK {
            t.secret_sources.insert(key.clone(), new_key.clone());
            t.sensitive.insert(new_key.clone());
        }
        t.config.insert(new_key, value.clone());
    }
    for (key, map) in &entry.values {
        if let Some(v) = t.config.get(key).cloned() {
            match map.get(&v) {
                Some(new) if *new != v => {
                    t.notes.push(format!("{key}: {v} becomes {new}"));
                    t.config.insert(key.clone(), new.clone());
                }
                Some(_) => {}
                None => t.notes.push(format!(
                    "{key}: value {v} is not in the table for {}; check it",
                    entry.managed
                )),
            }
        }
    }
    for (k, v) in &table.common.set {
        t.config.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for k in &table.common.needs_sensitive {
        if !t.config.contains_key(k) {
            t.needs.push(k.clone());
            t.sensitive.insert(k.clone());
        }
    }
    t
}

fn derive(how: Option<Derive>, key: &str, value: &str, t: &mut Translation) {
    if value == MASK {
        t.dropped.insert(
            key.to_string(),
            "masked: give its parts (connection.host, ...) yourself".into(),
        );
        return;
    }
    let parts = match how {
        Some(Derive::JdbcUrl) => parse_jdbc_url(value),
        Some(Derive::MongodbUri) => parse_mongodb_uri(value),
        None => None,
    };
    match parts {
        Some(parts) => {
            for (k, v) in parts {
                if k == "connection.password" {
                    t.sensitive.insert(k.clone());
                    t.secret_sources.insert(key.to_string(), k.clone());
                }
                t.config.insert(k, v);
            }
            t.dropped
                .insert(key.to_string(), "split into its parts".into());
        }
        None => {
            t.dropped.insert(
                key.to_string(),
                format!("cannot split {key}; give connection.host, connection.port and db.name"),
            );
        }
    }
}

/// `jdbc:<db>://host[:port]/db`, `jdbc:sqlserver://host[:port];databaseName=db` or
/// `jdbc:oracle:thin:@[//]host[:port][/:]service` → host, port (the database's default when
/// absent) and database name.
pub fn parse_jdbc_url(url: &str) -> Option<BTreeMap<String, String>> {
    let rest = url.strip_prefix("jdbc:")?;
    let (db, rest) = rest.split_once(':')?;
    let (host_port, name) = match db {
        "postgresql" | "mysql" => {
            let rest = rest.strip_prefix("//")?;
            let (hp, path) = rest.split_once('/')?;
            (hp, path.split(['?', ';']).next()?.to_string())
        }
        "sqlserver" => {
            let rest = rest.strip_prefix("//")?;
            let mut parts = rest.split(';');
            let hp = parts.next()?;
            let name = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("databaseName"))
                .map(|(_, v)| v.to_string())?;
            (hp, name)
        }
        "oracle" => {
            let rest = rest.split_once('@')?.1.trim_start_matches("//");
            match rest.split_once('/') {
                Some((hp, service)) => (hp, service.to_string()),
                None => {
                    let (h, rest) = rest.split_once(':')?;
                    let (p, sid) = rest.split_once(':')?;
                    return Some(parts(h, p, sid));
                }
            }
        }
        _ => return None,
    };
    let default_port = match db {
        "postgresql" => "5432",
        "mysql" => "3306",
        "sqlserver" => "1433",
        _ => "1521",
    };
    let (host, port) = host_port
        .split_once(':')
        .unwrap_or((host_port, default_port));
    if host.is_empty() || name.is_empty() {
        return None;
    }
    Some(parts(host, port, &name))
}

fn parts(host: &str, port: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("connection.host".into(), host.into()),
        ("connection.port".into(), port.into()),
        ("db.name".into(), name.into()),
    ])
}

/// `mongodb[+srv]://[user[:password]@]host[/...]` → host, user and password.
pub fn parse_mongodb_uri(uri: &str) -> Option<BTreeMap<String, String>> {
    let rest = uri
        .strip_prefix("mongodb+srv://")
        .or_else(|| uri.strip_prefix("mongodb://"))?;
    let (credentials, host) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let host = host.split(['/', '?']).next()?;
    if host.is_empty() {
        return None;
    }
    let mut out = BTreeMap::from([("connection.host".to_string(), host.to_string())]);
    if let Some(c) = credentials {
        let (user, password) = c.split_once(':').unwrap_or((c, ""));
        out.insert("connection.user".into(), user.into());
        if !password.is_empty() {
            out.insert("connection.password".into(), password.into());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keys(t: &Translation) -> Vec<&str> {
        t.config.keys().map(String::as_str).collect()
    }

    /// Every entry's renames, keeps and values are consistent, and every class is listed once
    /// per condition.
    #[test]
    fn the_table_parses_and_is_consistent() {
        let table = &*TABLE;
        assert!(table.plugins.len() >= 20, "{}", table.plugins.len());
        let mut seen = BTreeSet::new();
        for p in &table.plugins {
            assert!(seen.insert(p.id.clone()), "duplicate id {}", p.id);
            assert!(matches!(p.kind.as_str(), "source" | "sink"), "{}", p.id);
            for key in p.values.keys() {
                let produced = p.rename.values().any(|v| v == key)
                    || p.keep.contains(key)
                    || key == "plugin.name";
                assert!(
                    produced,
                    "{}: values for {key}, which no rename or keep produces",
                    p.id
                );
            }
        }
    }

    fn jdbc(class: &str, url: &str) -> BTreeMap<String, String> {
        cfg(&[
            ("connector.class", class),
            ("name", "dept1-orders"),
            ("connection.url", url),
            ("connection.user", "app"),
            ("connection.password", MASK),
            ("tasks.max", "1"),
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            ("value.converter.schema.registry.url", "http://sr:8081"),
            ("cloud.environment", "env-1"),
            ("kafka.endpoint", "PLAINTEXT://b:9092"),
        ])
    }

    #[test]
    fn jdbc_sources_map_by_database() {
        let class = "io.confluent.connect.jdbc.JdbcSourceConnector";
        let cases = [
            (
                "jdbc:postgresql://pg.internal:5433/shop?ssl=true",
                "PostgresSource",
                "pg.internal",
                "5433",
                "shop",
            ),
            (
                "jdbc:mysql://my:3306/shop",
                "MySqlSource",
                "my",
                "3306",
                "shop",
            ),
            (
                "jdbc:sqlserver://ms;databaseName=shop;encrypt=true",
                "MicrosoftSqlServerSource",
                "ms",
                "1433",
                "shop",
            ),
            (
                "jdbc:oracle:thin:@//ora:1522/ORCLPDB1",
                "OracleDatabaseSource",
                "ora",
                "1522",
                "ORCLPDB1",
            ),
            (
                "jdbc:oracle:thin:@ora:1521:ORCL",
                "OracleDatabaseSource",
                "ora",
                "1521",
                "ORCL",
            ),
        ];
        for (url, managed, host, port, db) in cases {
            let mut c = jdbc(class, url);
            c.insert("table.whitelist".into(), "orders".into());
            c.insert("mode".into(), "incrementing".into());
            let t = translate(&TABLE, &c);
            assert_eq!(t.outcome, Outcome::Mapped, "{url}");
            assert_eq!(t.managed_plugin.as_deref(), Some(managed));
            assert_eq!(t.config["connector.class"], managed);
            assert_eq!(t.config["connection.host"], host, "{url}");
            assert_eq!(t.config["connection.port"], port, "{url}");
            assert_eq!(t.config["db.name"], db, "{url}");
            assert_eq!(t.config["table.include.list"], "orders");
            assert_eq!(t.config["output.data.format"], "AVRO");
            assert_eq!(t.config["kafka.auth.mode"], "KAFKA_API_KEY");
            assert!(!t.config.contains_key("connection.url"));
            assert!(!t.config.contains_key("value.converter"));
            assert!(
                !t.config.contains_key("cloud.environment"),
                "managed extras are dropped"
            );
            assert!(t.sensitive.contains("connection.password"));
            assert_eq!(t.needs, vec!["kafka.api.key", "kafka.api.secret"]);
            assert!(t.unchecked.is_empty(), "{url}: {:?}", t.unchecked);
            assert_eq!(t.offsets, OffsetsCarry::Carried);
        }
    }

    #[test]
    fn jdbc_sinks_map_by_database() {
        let class = "io.confluent.connect.jdbc.JdbcSinkConnector";
        for (url, managed) in [
            ("jdbc:postgresql://pg/shop", "PostgresSink"),
            ("jdbc:mysql://my/shop", "MySqlSink"),
            (
                "jdbc:sqlserver://ms:1434;databaseName=shop",
                "MicrosoftSqlServerSink",
            ),
            ("jdbc:oracle:thin:@ora:1521/svc", "OracleDatabaseSink"),
        ] {
            let mut c = jdbc(class, url);
            c.insert("topics".into(), "orders".into());
            c.insert("insert.mode".into(), "upsert".into());
            let t = translate(&TABLE, &c);
            assert_eq!(t.managed_plugin.as_deref(), Some(managed), "{url}");
            assert_eq!(
                t.config["input.data.format"], "AVRO",
                "a sink reads its format"
            );
            assert_eq!(t.config["topics"], "orders");
            assert_eq!(t.config["insert.mode"], "upsert");
            assert!(t.config.contains_key("connection.host"));
        }
        let t = translate(&TABLE, &jdbc(class, "jdbc:db2://x/y"));
        assert_eq!(t.outcome, Outcome::NotInTable);
        assert!(
            t.notes[0].contains("only for some databases"),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn debezium_sources_map_with_their_renames() {
        let base = |class: &str| {
            cfg(&[
                ("connector.class", class),
                ("name", "cdc"),
                ("database.hostname", "db"),
                ("database.port", "5432"),
                ("database.user", "u"),
                ("database.password", MASK),
                ("database.dbname", "shop"),
                ("database.server.name", "shop"),
                ("table.include.list", "public.orders"),
                ("schema.history.internal.kafka.topic", "hist"),
            ])
        };
        let t = translate(&TABLE, &{
            let mut c = base("io.debezium.connector.postgresql.PostgresConnector");
            c.insert("plugin.name".into(), "decoderbufs".into());
            c
        });
        assert_eq!(t.managed_plugin.as_deref(), Some("PostgresCdcSourceV2"));
        assert_eq!(t.config["topic.prefix"], "shop");
        assert!(!t.config.contains_key("database.server.name"));
        assert_eq!(t.config["plugin.name"], "pgoutput");
        assert!(t.sensitive.contains("database.password"));
        assert_eq!(t.unchecked, vec!["schema.history.internal.kafka.topic"]);

        let t = translate(&TABLE, &base("io.debezium.connector.mysql.MySqlConnector"));
        assert_eq!(t.managed_plugin.as_deref(), Some("MySqlCdcSourceV2"));
        assert!(
            t.dropped
                .contains_key("schema.history.internal.kafka.topic")
        );
        assert_eq!(t.config["topic.prefix"], "shop");

        let t = translate(
            &TABLE,
            &base("io.debezium.connector.sqlserver.SqlServerConnector"),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("SqlServerCdcSourceV2"));
        assert_eq!(t.config["database.names"], "shop");

        let t = translate(
            &TABLE,
            &base("io.debezium.connector.oracle.OracleConnector"),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("OracleCdcSource"));
        assert_eq!(t.config["oracle.server"], "db");
        assert_eq!(t.config["oracle.username"], "u");
        assert_eq!(t.config["oracle.sid"], "shop");
        assert_eq!(t.config["table.inclusion.regex"], "public.orders");
        assert!(t.sensitive.contains("oracle.password"));
        assert_eq!(
            t.secret_sources
                .get("database.password")
                .map(String::as_str),
            Some("oracle.password"),
            "a renamed secret says where its value comes from"
        );
        assert_eq!(t.offsets, OffsetsCarry::NotCarried);
    }

    #[test]
    fn object_store_sinks_map_their_formats() {
        let t = translate(
            &TABLE,
            &cfg(&[
                ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
                ("topics", "orders"),
                ("s3.bucket.name", "b"),
                ("s3.region", "eu-west-1"),
                ("aws.access.key.id", "AKIA"),
                ("aws.secret.access.key", MASK),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.parquet.ParquetFormat",
                ),
                ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
                ("partitioner.class", "x"),
                ("flush.size", "1000"),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("S3_SINK"));
        assert_eq!(t.config["output.data.format"], "PARQUET");
        assert!(t.dropped.contains_key("storage.class"));
        assert!(t.sensitive.contains("aws.secret.access.key"));
        assert_eq!(t.config["flush.size"], "1000");

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.connect.gcs.GcsSinkConnector",
                ),
                ("gcs.bucket.name", "b"),
                ("gcs.credentials.json", MASK),
                (
                    "format.class",
                    "io.confluent.connect.gcs.format.json.JsonFormat",
                ),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("GcsSink"));
        assert_eq!(t.config["gcs.credentials.config"], MASK);
        assert!(t.sensitive.contains("gcs.credentials.config"));
        assert_eq!(t.config["output.data.format"], "JSON");

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.connect.azure.blob.AzureBlobStorageSinkConnector",
                ),
                ("azblob.account.name", "acct"),
                ("azblob.account.key", MASK),
                ("azblob.container.name", "c"),
                (
                    "format.class",
                    "io.confluent.connect.azure.blob.format.avro.AvroFormat",
                ),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("AzureBlobSink"));
        assert_eq!(t.config["output.data.format"], "AVRO");
        assert!(t.sensitive.contains("azblob.account.key"));

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.connect.azure.datalake.gen2.AzureDataLakeGen2SinkConnector",
                ),
                ("azure.datalake.gen2.account.name", "acct"),
                ("azure.datalake.gen2.client.id", "id"),
                ("azure.datalake.gen2.client.key", MASK),
                (
                    "format.class",
                    "io.confluent.connect.azure.storage.format.parquet.ParquetFormat",
                ),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("AzureDataLakeGen2Sink"));
        assert_eq!(t.config["output.data.format"], "PARQUET");
        assert!(t.sensitive.contains("azure.datalake.gen2.client.key"));
    }

    #[test]
    fn elasticsearch_mongodb_http_and_datagen_map() {
        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector",
                ),
                ("connection.url", "https://es:9200"),
                ("connection.password", MASK),
                ("type.name", "_doc"),
                ("key.ignore", "true"),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("ElasticsearchSink"));
        assert_eq!(t.config["connection.url"], "https://es:9200");
        assert!(t.dropped.contains_key("type.name"));

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "com.mongodb.kafka.connect.MongoSinkConnector",
                ),
                (
                    "connection.uri",
                    "mongodb+srv://app:pw@cluster0.mongodb.net/?retryWrites=true",
                ),
                ("database", "shop"),
                ("collection", "orders"),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("MongoDbAtlasSink"));
        assert_eq!(t.config["connection.host"], "cluster0.mongodb.net");
        assert_eq!(t.config["connection.user"], "app");
        assert!(t.sensitive.contains("connection.password"));
        assert!(!t.config.contains_key("connection.uri"));

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "com.mongodb.kafka.connect.MongoSourceConnector",
                ),
                ("connection.uri", MASK),
                ("database", "shop"),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("MongoDbAtlasSource"));
        assert!(t.dropped["connection.uri"].contains("masked"));
        assert_eq!(t.offsets, OffsetsCarry::NotCarried);

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.connect.http.HttpSinkConnector",
                ),
                ("http.api.url", "https://api/x"),
                ("auth.type", "BASIC"),
                ("connection.password", MASK),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("HttpSinkV2"));
        assert_eq!(t.config["http.api.base.url"], "https://api/x");

        let t = translate(
            &TABLE,
            &cfg(&[
                (
                    "connector.class",
                    "io.confluent.kafka.connect.datagen.DatagenConnector",
                ),
                ("kafka.topic", "orders"),
                ("quickstart", "orders"),
                ("max.interval", "100"),
                ("schema.filename", "/x.avsc"),
            ]),
        );
        assert_eq!(t.managed_plugin.as_deref(), Some("DatagenSource"));
        assert_eq!(t.config["quickstart"], "ORDERS");
        assert!(t.dropped.contains_key("schema.filename"));
        assert!(keys(&t).contains(&"kafka.topic"));
    }

    #[test]
    fn filestream_has_no_managed_equivalent_and_says_why() {
        for class in [
            "FileStreamSource",
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
        ] {
            let t = translate(&TABLE, &cfg(&[("connector.class", class), ("file", "/x")]));
            match &t.outcome {
                Outcome::NoEquivalent { why } => assert!(why.contains("disk"), "{why}"),
                o => panic!("{class}: {o:?}"),
            }
            assert!(!t.is_usable());
            assert!(t.config.is_empty());
        }
        let t = translate(
            &TABLE,
            &cfg(&[(
                "connector.class",
                "org.apache.kafka.connect.mirror.MirrorSourceConnector",
            )]),
        );
        assert!(matches!(t.outcome, Outcome::NoEquivalent { .. }));
        let t = translate(&TABLE, &cfg(&[("connector.class", "com.acme.Custom")]));
        assert_eq!(t.outcome, Outcome::NotInTable);
    }

    #[test]
    fn identity_keeps_the_config_without_managed_extras() {
        let t = identity(
            &TABLE,
            &cfg(&[
                ("connector.class", "FileStreamSource"),
                ("file", "/x"),
                ("secret.token", MASK),
                ("cloud.environment", "env-1"),
                ("supervisor.pool", "shared"),
            ]),
        );
        assert_eq!(keys(&t), vec!["connector.class", "file", "secret.token"]);
        assert!(t.sensitive.contains("secret.token"));
        assert!(t.is_usable());
    }

    #[test]
    fn urls_that_cannot_be_split_are_reported() {
        assert!(parse_jdbc_url("jdbc:postgresql:shop").is_none());
        assert!(parse_jdbc_url("not a url").is_none());
        assert!(parse_mongodb_uri("http://x").is_none());
        let t = translate(
            &TABLE,
            &jdbc(
                "io.confluent.connect.jdbc.JdbcSourceConnector",
                "jdbc:postgresql:shop",
            ),
        );
        assert!(t.dropped["connection.url"].contains("cannot split"));
    }
}

//! `migrate plan`: for every connector of the source, the managed plugin it maps to and its
//! translated config, and where the target's own translate endpoint disagrees with the table.
//!
//! Building the plan is pure ([`build`]); reading the ends is [`client`](super::client)'s.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::mapping::{self, MappingTable, Outcome, Translation};
use crate::remote::RunningConnector;
use crate::translate::MASK;

/// What the target's `.../config/translate` said about one connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "translate_api")]
pub enum ApiCheck {
    /// The target does not serve the endpoint: the table alone decided.
    NotServed,
    /// Not asked (the target is a supervisor, or the table has no mapping).
    NotAsked,
    /// It agrees with the table on every key.
    Agrees,
    /// Where it differs.
    Disagrees {
        /// Key → (the table's value, the endpoint's value); `None` where one has no such key.
        keys: BTreeMap<String, (Option<String>, Option<String>)>,
        /// Its warnings and errors, as it gave them.
        messages: Vec<String>,
    },
}

/// One connector in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its state on the source.
    pub state: Option<String>,
    /// What it becomes.
    pub translation: Translation,
    /// The target's opinion.
    #[serde(flatten)]
    pub api: ApiCheck,
    /// Whether a connector of that name exists on the target already.
    pub exists_on_target: bool,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Where the connectors are read.
    pub source: String,
    /// Where they go.
    pub target: String,
    /// Whether the target is a supervisor (configs carried as they are).
    pub target_is_supervisor: bool,
    /// One entry per connector.
    pub connectors: Vec<Entry>,
}

impl Plan {
    /// [`super::EXIT_OK`] when every connector can move, else [`super::EXIT_BLOCKED`].
    pub fn exit_code(&self) -> u8 {
        if self.connectors.iter().all(|e| e.translation.is_usable()) {
            super::EXIT_OK
        } else {
            super::EXIT_BLOCKED
        }
    }
}

/// The plan for `connectors` (all of `running` when empty). Unknown names are an error naming
/// the ones that run.
pub fn build(
    table: &MappingTable,
    running: &BTreeMap<String, RunningConnector>,
    names: &[String],
    target_is_supervisor: bool,
    on_target: &[String],
) -> Result<Vec<Entry>, String> {
    let unknown: Vec<&String> = names.iter().filter(|n| !running.contains_key(*n)).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "no connector {} on the source; it runs: {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            running.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(running
        .iter()
        .filter(|(n, _)| names.is_empty() || names.contains(n))
        .map(|(name, c)| Entry {
            name: name.clone(),
            state: c.state.clone(),
            translation: if target_is_supervisor {
                mapping::identity(table, &c.config)
            } else {
                mapping::translate(table, &c.config)
            },
            api: ApiCheck::NotAsked,
            exists_on_target: on_target.contains(name),
        })
        .collect())
}

/// Compares the table's translation with the translate endpoint's answer
/// (`{config, warnings:[{field,message}], errors:[{field,message}]}`). Masked values are not
/// compared (neither side knows them).
pub fn compare(ours: &Translation, answer: &Value) -> ApiCheck {
    let theirs: BTreeMap<String, String> = answer
        .get("config")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut keys = BTreeMap::new();
    for key in ours.config.keys().chain(theirs.keys()) {
        let a = ours.config.get(key);
        let b = theirs.get(key);
        if a.is_some_and(|v| v == MASK) || b.is_some_and(|v| v.starts_with("***")) {
            continue;
        }
        if a != b {
            keys.insert(key.clone(), (a.cloned(), b.cloned()));
        }
    }
    let mut messages = Vec::new();
    for kind in ["errors", "warnings"] {
        for m in answer
            .get(kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            messages.push(format!(
                "{kind}: {}: {}",
                m.get("field").and_then(Value::as_str).unwrap_or("-"),
                m.get("message").and_then(Value::as_str).unwrap_or("")
            ));
        }
    }
    if keys.is_empty() && messages.is_empty() {
        ApiCheck::Agrees
    } else {
        ApiCheck::Disagrees { keys, messages }
    }
}

/// The plan for people.
pub fn render_text(plan: &Plan) -> String {
    let mut out = format!(
        "Migration plan: {} -> {}{}\n",
        plan.source,
        plan.target,
        if plan.target_is_supervisor {
            " (a connect-supervisor: configs are carried as they are)"
        } else {
            ""
        }
    );
    for e in &plan.connectors {
        let t = &e.translation;
        out += &format!(
            "\n{} ({}, {})\n",
            e.name,
            t.source_class,
            e.state.as_deref().unwrap_or("state unknown")
        );
        match &t.outcome {
            Outcome::Mapped => {
                out += &format!(
                    "  -> {} (table entry {})\n",
                    t.managed_plugin.as_deref().unwrap_or("?"),
                    t.mapping.as_deref().unwrap_or("?")
                );
            }
            Outcome::Identity => {
                out += &format!("  -> {} (same plugin)\n", t.source_class);
            }
            Outcome::NoEquivalent { why } => {
                out += &format!("  -> no managed equivalent: {why}\n");
                continue;
            }
            Outcome::NotInTable => {
                out += "  -> not in the mapping table: translate it by hand\n";
                for n in &t.notes {
                    out += &format!("     {n}\n");
                }
                continue;
            }
        }
        for (k, v) in &t.config {
            let shown = if t.sensitive.contains(k) {
                "(secret: moved by the source supervisor)"
            } else {
                v
            };
            out += &format!("     {k} = {shown}\n");
        }
        for k in &t.needs {
            out += &format!("     {k} = (secret you must provide)\n");
        }
        for (k, why) in &t.dropped {
            out += &format!("  dropped {k}: {why}\n");
        }
        if !t.unchecked.is_empty() {
            out += &format!(
                "  not in the table, carried unchanged: {}\n",
                t.unchecked.join(", ")
            );
        }
        out += &format!(
            "  offsets: {}\n",
            match t.offsets {
                mapping::OffsetsCarry::Carried => "carried over",
                mapping::OffsetsCarry::NotCarried => "do not carry over (use --mode no-offsets)",
            }
        );
        for n in &t.notes {
            out += &format!("  note: {n}\n");
        }
        match &e.api {
            ApiCheck::NotServed => {
                out += "  translate endpoint: not served by the target; the table decided\n"
            }
            ApiCheck::NotAsked => {}
            ApiCheck::Agrees => out += "  translate endpoint: agrees with the table\n",
            ApiCheck::Disagrees { keys, messages } => {
                out += "  translate endpoint DISAGREES with the table:\n";
                for (k, (a, b)) in keys {
                    out += &format!(
                        "     {k}: table {} / endpoint {}\n",
                        a.as_deref().unwrap_or("(absent)"),
                        b.as_deref().unwrap_or("(absent)")
                    );
                }
                for m in messages {
                    out += &format!("     {m}\n");
                }
            }
        }
        if e.exists_on_target {
            out += "  exists on the target already (export writes an import block)\n";
        }
    }
    let blocked = plan
        .connectors
        .iter()
        .filter(|e| !e.translation.is_usable())
        .count();
    out += &format!(
        "\n{} connector(s), {} can move, {} cannot\n",
        plan.connectors.len(),
        plan.connectors.len() - blocked,
        blocked
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::migrate::mapping::TABLE;

    fn running() -> BTreeMap<String, RunningConnector> {
        let c = |pairs: &[(&str, &str)]| RunningConnector {
            config: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state: Some("RUNNING".into()),
        };
        BTreeMap::from([
            (
                "d-files".to_string(),
                c(&[
                    ("connector.class", "FileStreamSource"),
                    ("file", "/x"),
                    ("topic", "t"),
                ]),
            ),
            (
                "d-pg".to_string(),
                c(&[
                    (
                        "connector.class",
                        "io.confluent.connect.jdbc.JdbcSourceConnector",
                    ),
                    ("connection.url", "jdbc:postgresql://pg/shop"),
                    ("connection.password", MASK),
                ]),
            ),
        ])
    }

    #[test]
    fn a_plan_maps_each_connector_and_its_exit_code_says_whether_all_can_move() {
        let entries = build(&TABLE, &running(), &[], false, &["d-pg".into()]).unwrap();
        let plan = Plan {
            source: "a".into(),
            target: "b".into(),
            target_is_supervisor: false,
            connectors: entries,
        };
        assert_eq!(plan.connectors.len(), 2);
        assert_eq!(plan.exit_code(), crate::migrate::EXIT_BLOCKED);
        let text = render_text(&plan);
        assert!(text.contains("no managed equivalent"), "{text}");
        assert!(text.contains("-> PostgresSource"), "{text}");
        assert!(text.contains("import block"), "{text}");
        assert!(!text.contains(MASK), "secrets are never shown: {text}");
        let only = build(&TABLE, &running(), &["d-pg".into()], false, &[]).unwrap();
        assert_eq!(only.len(), 1);
        assert!(only[0].translation.is_usable());
        let err = build(&TABLE, &running(), &["nope".into()], false, &[]).unwrap_err();
        assert!(err.contains("nope") && err.contains("d-files"), "{err}");
        let to_supervisor = build(&TABLE, &running(), &[], true, &[]).unwrap();
        assert!(to_supervisor.iter().all(|e| e.translation.is_usable()));
    }

    #[test]
    fn the_translate_answer_is_compared_key_by_key() {
        let entries = build(&TABLE, &running(), &["d-pg".into()], false, &[]).unwrap();
        let ours = &entries[0].translation;
        let agreeing = json!({"config": ours.config, "warnings": [], "errors": []});
        assert_eq!(compare(ours, &agreeing), ApiCheck::Agrees);
        let mut other = ours.config.clone();
        other.insert("db.name".into(), "other".into());
        other.remove("kafka.auth.mode");
        let answer =
            json!({"config": other, "warnings": [{"field": "ssl.mode", "message": "set it"}]});
        match compare(ours, &answer) {
            ApiCheck::Disagrees { keys, messages } => {
                assert_eq!(keys["db.name"], (Some("shop".into()), Some("other".into())));
                assert_eq!(keys["kafka.auth.mode"].1, None);
                assert_eq!(messages, vec!["warnings: ssl.mode: set it"]);
            }
            o => panic!("{o:?}"),
        }
    }
}

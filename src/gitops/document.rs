//! One connector definition file, parsed from the formats users keep in Git, and the variables
//! of the per-environment layout. Pure: text in, connector or problems out.
//!
//! Formats (told apart by their top-level fields):
//! * Apache Connect: `{"name": ..., "config": {...}}` (the body of `POST /connectors`; `tasks`,
//!   `type` and `initial_state` are accepted too);
//! * managed, CLI style: `{"name": ..., "config": {...}, "offsets": [...]}`;
//! * managed, Terraform style: `{"name": ..., "config_nonsensitive": {...},
//!   "config_sensitive": {...}}` (the two maps are merged; a key in both is a problem);
//! * a bare config map (the body of `PUT /connectors/{name}/config`): `{"connector.class": ...,
//!   "name": ...}`; without `name`, the file name (less its environment prefix) is the name.
//!
//! Variables: in a file of environment `<env>`, every `{{ name }}` in the connector name and in
//! config values is replaced by that variable of `<env>-vars.yaml` (nested YAML maps give dotted
//! names: `db.host`; `env` is the environment's name unless the file defines it). Substitution
//! happens after JSON parsing, inside string values, so a value can never break the JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::lines::member;

/// Rule id: the file is not valid JSON or YAML.
pub const RULE_SYNTAX: &str = "file.syntax";
/// Rule id: the file is not a connector definition in a known format.
pub const RULE_FORMAT: &str = "file.format";
/// Rule id: a required field is missing.
pub const RULE_REQUIRED: &str = "file.required";
/// Rule id: a config value is not a string (or a number or boolean, which become one).
pub const RULE_VALUE: &str = "file.value";
/// Rule id: `config.name` differs from `name`.
pub const RULE_NAME_MISMATCH: &str = "file.name-mismatch";
/// Rule id: a key is both in `config_nonsensitive` and `config_sensitive`.
pub const RULE_CONFLICT: &str = "file.conflict";
/// Rule id: a `{{ variable }}` that no vars file defines.
pub const RULE_VAR_UNDEFINED: &str = "vars.undefined";
/// Rule id: a vars file value that is not a scalar.
pub const RULE_VAR_VALUE: &str = "vars.value";

/// The built-in variable holding the environment's name.
pub const ENV_VARIABLE: &str = "env";

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}").expect("valid regex"));

/// A problem inside one file, located by JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocProblem {
    /// Rule id.
    pub rule: &'static str,
    /// JSON path of the offending member (`$` for the whole file).
    pub json_path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Line, when the parser gave one (syntax errors).
    pub line: Option<usize>,
    /// Column, when the parser gave one.
    pub column: Option<usize>,
}

impl DocProblem {
    fn at(rule: &'static str, json_path: &str, message: String, hint: impl Into<String>) -> Self {
        Self {
            rule,
            json_path: json_path.to_string(),
            message,
            hint: hint.into(),
            line: None,
            column: None,
        }
    }
}

/// How the file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `{"name","config"}`.
    Apache,
    /// `{"name","config","offsets"}`.
    Managed,
    /// `{"name","config_nonsensitive","config_sensitive"}`.
    ManagedTerraform,
    /// A bare config map.
    ConfigMap,
}

/// A connector read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorDocument {
    /// The connector's name (variables substituted).
    pub name: String,
    /// JSON path of the name.
    pub name_path: String,
    /// The merged config (variables substituted, values as strings).
    pub config: BTreeMap<String, String>,
    /// JSON path each config key came from.
    pub origin: BTreeMap<String, String>,
    /// JSON path of the (main) config object.
    pub config_path: String,
    /// The format.
    pub format: Format,
    /// Keys that came from `config_sensitive` (secrets whatever their name).
    pub sensitive: BTreeSet<String>,
    /// The state asked for by a `state` (or Apache `initial_state`) field: `RUNNING` or
    /// `PAUSED`; `None` when the file says nothing (RUNNING for `plan`).
    pub state: Option<String>,
}

/// The variables of one environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// Parses a vars file of environment `env`; problems name the variable's dotted path.
    pub fn parse(text: &str, env: &str) -> Result<Self, Vec<DocProblem>> {
        let root: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| {
            let location = e.location();
            vec![DocProblem {
                rule: RULE_SYNTAX,
                json_path: "$".into(),
                message: format!("not valid YAML: {e}"),
                hint: "fix the YAML syntax".into(),
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
            }]
        })?;
        let mut values = BTreeMap::new();
        values.insert(ENV_VARIABLE.to_string(), env.to_string());
        let mut problems = Vec::new();
        match &root {
            yaml_serde::Value::Null => {}
            yaml_serde::Value::Mapping(_) => flatten("", &root, &mut values, &mut problems),
            _ => problems.push(DocProblem::at(
                RULE_FORMAT,
                "$",
                "a vars file must be a mapping of variable names to values".into(),
                "write `name: value` lines",
            )),
        }
        if problems.is_empty() {
            Ok(Self { values })
        } else {
            Err(problems)
        }
    }

    /// Only the built-in `env` variable.
    pub fn for_env(env: &str) -> Self {
        Self {
            values: [(ENV_VARIABLE.to_string(), env.to_string())].into(),
        }
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn flatten(
    prefix: &str,
    value: &yaml_serde::Value,
    out: &mut BTreeMap<String, String>,
    problems: &mut Vec<DocProblem>,
) {
    use yaml_serde::Value as Y;
    match value {
        Y::Mapping(map) => {
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => {
                        problems.push(DocProblem::at(
                            RULE_VAR_VALUE,
                            "$",
                            format!("a key under \"{prefix}\" is not a plain name"),
                            "use plain names as keys",
                        ));
                        continue;
                    }
                };
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, v, out, problems);
            }
        }
        Y::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Y::Number(n) => {
            out.insert(prefix.to_string(), n.to_string());
        }
        Y::Bool(b) => {
            out.insert(prefix.to_string(), b.to_string());
        }
        Y::Null => {
            out.insert(prefix.to_string(), String::new());
        }
        Y::Sequence(_) | Y::Tagged(_) => problems.push(DocProblem::at(
            RULE_VAR_VALUE,
            &format!("$.{prefix}"),
            format!("variable {prefix} is not a single value"),
            "give the variable a string, number or boolean (a list can be written as \"a,b\")",
        )),
    }
}

/// Replaces `{{ name }}` placeholders; reports each unknown variable once.
fn substitute(
    text: &str,
    vars: Option<&Vars>,
    json_path: &str,
    problems: &mut Vec<DocProblem>,
) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut missing = BTreeSet::new();
    let out = PLACEHOLDER.replace_all(text, |c: &regex::Captures<'_>| {
        let name = &c[1];
        match vars.and_then(|v| v.get(name)) {
            Some(value) => value.to_string(),
            None => {
                missing.insert(name.to_string());
                c[0].to_string()
            }
        }
    });
    for name in missing {
        let (message, hint) = match vars {
            Some(_) => (
                format!("variable {name} is not defined for this environment"),
                format!("define {name} in the environment's vars file"),
            ),
            None => (
                format!("variable {name} is used but this file belongs to no environment"),
                "name the file <env>-<connector>.json next to an <env>-vars.yaml".to_string(),
            ),
        };
        problems.push(DocProblem::at(RULE_VAR_UNDEFINED, json_path, message, hint));
    }
    out.into_owned()
}

fn config_map(
    object: &Map<String, Value>,
    path: &str,
    vars: Option<&Vars>,
    config: &mut BTreeMap<String, String>,
    origin: &mut BTreeMap<String, String>,
    problems: &mut Vec<DocProblem>,
) {
    for (key, value) in object {
        let key_path = member(path, key);
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    _ => "an object",
                };
                problems.push(DocProblem::at(
                    RULE_VALUE,
                    &key_path,
                    format!("{key} is {kind}; connector config values are strings"),
                    "write the value as a string, e.g. \"a,b\" for a list",
                ));
                continue;
            }
        };
        if origin.contains_key(key) {
            problems.push(DocProblem::at(
                RULE_CONFLICT,
                &key_path,
                format!("{key} is set in both config_nonsensitive and config_sensitive"),
                "keep the key in one of the two maps (secrets in config_sensitive)",
            ));
            continue;
        }
        let text = substitute(&text, vars, &key_path, problems);
        config.insert(key.clone(), text);
        origin.insert(key.clone(), key_path);
    }
}

const APACHE_FIELDS: &[&str] = &[
    "name",
    "config",
    "offsets",
    "tasks",
    "type",
    "initial_state",
    STATE_FIELD,
];
const TERRAFORM_FIELDS: &[&str] = &[
    "name",
    "config_nonsensitive",
    "config_sensitive",
    "offsets",
    STATE_FIELD,
];
/// Field of a connector file naming the state `plan`/`apply` keep the connector in.
pub const STATE_FIELD: &str = "state";
/// States a file may ask for.
pub const STATES: &[&str] = &["RUNNING", "PAUSED"];

/// Parses a connector file. `default_name` is used for a bare config map without `name`;
/// `vars` are the environment's variables (`None`: the file belongs to no environment).
pub fn parse(
    text: &str,
    default_name: &str,
    vars: Option<&Vars>,
) -> Result<ConnectorDocument, Vec<DocProblem>> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![DocProblem {
            rule: RULE_SYNTAX,
            json_path: "$".into(),
            message: format!("not valid JSON: {e}"),
            hint: "fix the JSON syntax (a linter such as `jq . file.json` shows the spot)".into(),
            line: Some(e.line()),
            column: Some(e.column()),
        }]
    })?;
    let Value::Object(object) = &root else {
        return Err(vec![DocProblem::at(
            RULE_FORMAT,
            "$",
            "the file is not a JSON object".into(),
            "write {\"name\": ..., \"config\": {...}}",
        )]);
    };
    let mut problems = Vec::new();
    let mut config = BTreeMap::new();
    let mut origin = BTreeMap::new();
    let format =
        if object.contains_key("config_nonsensitive") || object.contains_key("config_sensitive") {
            Format::ManagedTerraform
        } else if object.contains_key("config") {
            if object.contains_key("offsets") {
                Format::Managed
            } else {
                Format::Apache
            }
        } else if object.contains_key("connector.class") {
            Format::ConfigMap
        } else {
            return Err(vec![DocProblem::at(
                RULE_FORMAT,
                "$",
                "the file is not a connector definition: it has no config, config_nonsensitive or \
             connector.class"
                    .into(),
                "write {\"name\": ..., \"config\": {\"connector.class\": ..., ...}}",
            )]);
        };

    let maps: Vec<&str> = match format {
        Format::ManagedTerraform => {
            for key in object.keys() {
                if !TERRAFORM_FIELDS.contains(&key.as_str()) {
                    problems.push(DocProblem::at(
                        RULE_FORMAT,
                        &member("$", key),
                        format!("unknown field {key}"),
                        format!("use only {}", TERRAFORM_FIELDS.join(", ")),
                    ));
                }
            }
            if !object.contains_key("config_nonsensitive") {
                problems.push(DocProblem::at(
                    RULE_REQUIRED,
                    "$",
                    "config_nonsensitive is missing".into(),
                    "add config_nonsensitive with connector.class and name",
                ));
            }
            vec!["config_nonsensitive", "config_sensitive"]
        }
        Format::Apache | Format::Managed => {
            for key in object.keys() {
                if !APACHE_FIELDS.contains(&key.as_str()) {
                    problems.push(DocProblem::at(
                        RULE_FORMAT,
                        &member("$", key),
                        format!("unknown field {key}"),
                        format!("use only {}", APACHE_FIELDS.join(", ")),
                    ));
                }
            }
            if let Some(offsets) = object.get("offsets")
                && !matches!(offsets, Value::Array(_) | Value::Null)
            {
                problems.push(DocProblem::at(
                    RULE_FORMAT,
                    "$.offsets",
                    "offsets is not an array".into(),
                    "write offsets as [{\"partition\": {...}, \"offset\": {...}}]",
                ));
            }
            vec!["config"]
        }
        Format::ConfigMap => vec![],
    };
    if format == Format::ConfigMap {
        config_map(object, "$", vars, &mut config, &mut origin, &mut problems);
    }
    for map in maps {
        match object.get(map) {
            None => {}
            Some(Value::Object(inner)) => config_map(
                inner,
                &member("$", map),
                vars,
                &mut config,
                &mut origin,
                &mut problems,
            ),
            Some(_) => problems.push(DocProblem::at(
                RULE_FORMAT,
                &member("$", map),
                format!("{map} is not an object"),
                format!("write {map} as {{\"key\": \"value\", ...}}"),
            )),
        }
    }

    let (name, name_path) = match (format, object.get("name")) {
        (Format::ConfigMap, _) => match origin.get("name") {
            Some(path) => (
                config.get("name").cloned().unwrap_or_default(),
                path.clone(),
            ),
            None => (default_name.to_string(), "$".to_string()),
        },
        (_, Some(Value::String(n))) => (
            substitute(n, vars, "$.name", &mut problems),
            "$.name".to_string(),
        ),
        (_, Some(_)) => {
            problems.push(DocProblem::at(
                RULE_FORMAT,
                "$.name",
                "name is not a string".into(),
                "write the connector name as a string",
            ));
            (String::new(), "$.name".to_string())
        }
        (Format::ManagedTerraform, None) if config.contains_key("name") => {
            (config["name"].clone(), origin["name"].clone())
        }
        (_, None) => {
            problems.push(DocProblem::at(
                RULE_REQUIRED,
                "$",
                "name is missing".into(),
                "add \"name\": \"<department>-<source>-<type>-<env>-<suffix>\"",
            ));
            (String::new(), "$".to_string())
        }
    };
    if let Some(inner) = config.get("name")
        && !name.is_empty()
        && inner != &name
    {
        problems.push(DocProblem::at(
            RULE_NAME_MISMATCH,
            &origin["name"],
            format!("config name \"{inner}\" differs from the connector name \"{name}\""),
            "use the same name in both places (Connect refuses the difference)",
        ));
    }
    if format == Format::ManagedTerraform && !config.contains_key("name") && problems.is_empty() {
        problems.push(DocProblem::at(
            RULE_REQUIRED,
            "$.config_nonsensitive",
            "config_nonsensitive has no name".into(),
            "Terraform's confluent_connector requires config_nonsensitive.name; add it",
        ));
    }
    let mut state = None;
    for field in [STATE_FIELD, "initial_state"] {
        match object.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if STATES.contains(&s.to_ascii_uppercase().as_str()) => {
                state.get_or_insert(s.to_ascii_uppercase());
            }
            Some(other) => problems.push(DocProblem::at(
                RULE_VALUE,
                &member("$", field),
                format!(
                    "{field} is {other}; it must be one of {}",
                    STATES.join(", ")
                ),
                "write \"state\": \"RUNNING\" or \"state\": \"PAUSED\"",
            )),
        }
    }
    let sensitive: BTreeSet<String> = origin
        .iter()
        .filter(|(_, path)| path.starts_with("$.config_sensitive"))
        .map(|(key, _)| key.clone())
        .collect();
    if problems.is_empty() {
        let config_path = match format {
            Format::Apache | Format::Managed => "$.config",
            Format::ManagedTerraform => "$.config_nonsensitive",
            Format::ConfigMap => "$",
        };
        Ok(ConnectorDocument {
            name,
            name_path,
            config,
            origin,
            config_path: config_path.to_string(),
            format,
            sensitive,
            state,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(result: Result<ConnectorDocument, Vec<DocProblem>>) -> Vec<(&'static str, String)> {
        result
            .unwrap_err()
            .into_iter()
            .map(|p| (p.rule, p.json_path))
            .collect()
    }

    #[test]
    fn every_format_gives_the_same_connector() {
        let apache = r#"{"name": "dept1-a", "config": {"connector.class": "X", "tasks.max": 2}}"#;
        let managed = r#"{"name": "dept1-a", "config": {"connector.class": "X", "tasks.max": "2"}, "offsets": null}"#;
        let terraform = r#"{"name": "dept1-a", "config_nonsensitive": {"connector.class": "X", "name": "dept1-a", "tasks.max": "2"}, "config_sensitive": {"p": "s"}}"#;
        let bare = r#"{"connector.class": "X", "tasks.max": "2"}"#;
        let a = parse(apache, "ignored", None).unwrap();
        assert_eq!(a.format, Format::Apache);
        assert_eq!(a.config["tasks.max"], "2");
        assert_eq!(parse(managed, "x", None).unwrap().format, Format::Managed);
        let t = parse(terraform, "x", None).unwrap();
        assert_eq!(t.format, Format::ManagedTerraform);
        assert_eq!(t.origin["p"], "$.config_sensitive.p");
        assert_eq!(
            t.origin["tasks.max"],
            "$.config_nonsensitive[\"tasks.max\"]"
        );
        let b = parse(bare, "dept1-a", None).unwrap();
        assert_eq!((b.name.as_str(), b.format), ("dept1-a", Format::ConfigMap));
        assert_eq!(t.sensitive, BTreeSet::from(["p".to_string()]));
        assert!(a.sensitive.is_empty());
    }

    #[test]
    fn a_state_field_asks_for_running_or_paused() {
        let paused = r#"{"name": "a", "config": {"connector.class": "X"}, "state": "paused"}"#;
        assert_eq!(
            parse(paused, "x", None).unwrap().state.as_deref(),
            Some("PAUSED")
        );
        let apache =
            r#"{"name": "a", "config": {"connector.class": "X"}, "initial_state": "RUNNING"}"#;
        assert_eq!(
            parse(apache, "x", None).unwrap().state.as_deref(),
            Some("RUNNING")
        );
        let bad = r#"{"name": "a", "config": {"connector.class": "X"}, "state": "FAILED"}"#;
        assert_eq!(
            rules(parse(bad, "x", None)),
            [("file.value", "$.state".to_string())]
        );
    }

    #[test]
    fn structural_problems_are_all_reported_with_json_paths() {
        let text =
            r#"{"confg": {}, "config": {"a": null, "b": [1], "name": "other"}, "name": "dept1-a"}"#;
        assert_eq!(
            rules(parse(text, "x", None)),
            [
                ("file.format", "$.confg".to_string()),
                ("file.value", "$.config.a".to_string()),
                ("file.value", "$.config.b".to_string()),
                ("file.name-mismatch", "$.config.name".to_string()),
            ]
        );
        assert_eq!(
            rules(parse("[1]", "x", None)),
            [("file.format", "$".to_string())]
        );
        assert_eq!(
            rules(parse(r#"{"config": {}}"#, "x", None)),
            [("file.required", "$".to_string())]
        );
        let conflict = r#"{"name": "a", "config_nonsensitive": {"name": "a", "k": "1"}, "config_sensitive": {"k": "2"}}"#;
        assert_eq!(
            rules(parse(conflict, "x", None)),
            [("file.conflict", "$.config_sensitive.k".to_string())]
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let problems = parse("{\n  \"name\": \"a\",\n  \"config\": {,}\n}", "x", None).unwrap_err();
        assert_eq!(problems[0].rule, RULE_SYNTAX);
        assert_eq!(problems[0].line, Some(3));
    }

    #[test]
    fn variables_are_substituted_in_names_and_values() {
        let vars = Vars::parse("db:\n  host: pg.prod\n  port: 5432\ntasks: 4\n", "prod").unwrap();
        let text = r#"{"name": "dept1-pg-source-{{env}}-001", "config": {"connection.url": "jdbc:postgresql://{{ db.host }}:{{db.port}}/x", "tasks.max": "{{tasks}}"}}"#;
        let doc = parse(text, "x", Some(&vars)).unwrap();
        assert_eq!(doc.name, "dept1-pg-source-prod-001");
        assert_eq!(
            doc.config["connection.url"],
            "jdbc:postgresql://pg.prod:5432/x"
        );
        assert_eq!(doc.config["tasks.max"], "4");
    }

    #[test]
    fn undefined_variables_are_problems_at_their_value() {
        let vars = Vars::for_env("dev");
        let text = r#"{"name": "a", "config": {"u": "{{ nope }}-{{nope}}", "v": "{{env}}"}}"#;
        let problems = parse(text, "x", Some(&vars)).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rule, RULE_VAR_UNDEFINED);
        assert_eq!(problems[0].json_path, "$.config.u");
        let none = parse(text, "x", None).unwrap_err();
        assert_eq!(none.len(), 2, "{none:?}");
    }

    #[test]
    fn vars_files_must_be_maps_of_scalars() {
        assert!(Vars::parse("a: [1, 2]\n", "dev").is_err());
        assert!(Vars::parse("- a\n", "dev").is_err());
        let e = Vars::parse("a: b: c\n", "dev").unwrap_err();
        assert_eq!(e[0].rule, RULE_SYNTAX);
        assert_eq!(e[0].line, Some(1));
        assert_eq!(Vars::parse("", "dev").unwrap().get("env"), Some("dev"));
        let v = Vars::parse("env: production\n", "prod").unwrap();
        assert_eq!(v.get("env"), Some("production"), "a file may redefine env");
    }
}

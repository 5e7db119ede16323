//! `migrate export`: one file per connector in the managed JSON format (the body of the managed
//! create) or as a Terraform `confluent_connector` resource. Secrets are references, never
//! values: Terraform variables (marked sensitive), or in JSON the `${env:...}` or
//! `${vault:...}` reference the user chose. Pure: the caller reads the ends and writes the files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::mapping::Translation;

/// File holding the provider requirement and the shared variables.
pub const TERRAFORM_MAIN: &str = "main.tf";

/// How secrets are referred to in managed JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `${env:<NAME>}`, for a shell or CI step that substitutes the environment.
    Env,
    /// `${vault:<path>:<key>}` (Connect's Vault config provider).
    Vault(String),
}

impl SecretRef {
    /// Parses `env` or `vault:<path>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "env" => Ok(Self::Env),
            Some(("vault", path)) if !path.is_empty() => Ok(Self::Vault(path.to_string())),
            _ => Err(format!(
                "--secret-refs \"{text}\": use env or vault:<path> (e.g. vault:secret/data/dept1)"
            )),
        }
    }
}

/// A Terraform identifier for `name` (letters, digits, `_`, `-`; not starting with a digit).
pub fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        id.insert_str(0, "c_");
    }
    id
}

/// The variable holding secret `key` of connector `name`.
pub fn variable(name: &str, key: &str) -> String {
    format!(
        "{}_{}",
        identifier(name),
        identifier(key).trim_start_matches("c_")
    )
}

/// The environment variable (upper case) for secret `key` of connector `name`.
pub fn env_name(name: &str, key: &str) -> String {
    variable(name, key).to_ascii_uppercase()
}

/// The managed create body of `name`: non-secret values as they are, secrets as references,
/// offsets when given.
pub fn managed_json(
    name: &str,
    t: &Translation,
    refs: &SecretRef,
    offsets: Option<&[Value]>,
) -> Value {
    let mut config: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &t.config {
        config.insert(k.clone(), v.clone());
    }
    config.insert("name".into(), name.to_string());
    for k in t.sensitive.iter() {
        let reference = match refs {
            SecretRef::Env => format!("${{env:{}}}", env_name(name, k)),
            SecretRef::Vault(path) => format!("${{vault:{path}:{}}}", variable(name, k)),
        };
        config.insert(k.clone(), reference);
    }
    let mut body = json!({ "name": name, "config": config });
    if let Some(offsets) = offsets.filter(|o| !o.is_empty()) {
        body["offsets"] = Value::Array(offsets.to_vec());
    }
    body
}

/// An HCL string literal (escapes quotes, backslashes, newlines and template sequences).
pub fn hcl_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One line or block of an HCL body.
enum Item {
    /// `key = value` on one line (value already HCL).
    Attr(String, String),
    /// `key = { "k" = v ... }`.
    Map(String, Vec<(String, String)>),
    /// `header { ... }`.
    Block(String, Vec<Item>),
    /// A blank line.
    Blank,
    /// `# text`.
    Comment(String),
}

/// Renders `items` the way `terraform fmt` does: two-space indents, the `=` of consecutive
/// one-line attributes aligned.
fn render(items: &[Item], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Attr(..) => {
                let run: Vec<&Item> = items[i..]
                    .iter()
                    .take_while(|it| matches!(it, Item::Attr(..)))
                    .collect();
                let width = run
                    .iter()
                    .map(|it| match it {
                        Item::Attr(k, _) => k.len(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                for it in &run {
                    if let Item::Attr(k, v) = it {
                        let _ = writeln!(out, "{pad}{k:width$} = {v}");
                    }
                }
                i += run.len();
                continue;
            }
            Item::Map(k, entries) => {
                if entries.is_empty() {
                    let _ = writeln!(out, "{pad}{k} = {{}}");
                } else {
                    let _ = writeln!(out, "{pad}{k} = {{");
                    let inner: Vec<Item> = entries
                        .iter()
                        .map(|(k, v)| Item::Attr(k.clone(), v.clone()))
                        .collect();
                    render(&inner, indent + 2, out);
                    let _ = writeln!(out, "{pad}}}");
                }
            }
            Item::Block(header, body) => {
                let _ = writeln!(out, "{pad}{header} {{");
                render(body, indent + 2, out);
                let _ = writeln!(out, "{pad}}}");
            }
            Item::Blank => out.push('\n'),
            Item::Comment(text) => {
                let _ = writeln!(out, "{pad}# {text}");
            }
        }
        i += 1;
    }
}

fn string_map(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (hcl_string(k), hcl_string(&text))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `main.tf`: the provider requirement and the target's environment and cluster as variables
/// (defaulting to the target the export was made for).
pub fn terraform_main(environment_id: &str, kafka_cluster_id: &str) -> String {
    let items = vec![
        Item::Comment("Written by `connect-supervisor migrate export --format terraform`.".into()),
        Item::Block(
            "terraform".into(),
            vec![Item::Block(
                "required_providers".into(),
                vec![Item::Map(
                    "confluent".into(),
                    vec![("source".into(), hcl_string("confluentinc/confluent"))],
                )],
            )],
        ),
        Item::Blank,
        Item::Block(
            "variable \"environment_id\"".into(),
            vec![
                Item::Attr("type".into(), "string".into()),
                Item::Attr("default".into(), hcl_string(environment_id)),
            ],
        ),
        Item::Blank,
        Item::Block(
            "variable \"kafka_cluster_id\"".into(),
            vec![
                Item::Attr("type".into(), "string".into()),
                Item::Attr("default".into(), hcl_string(kafka_cluster_id)),
            ],
        ),
    ];
    let mut out = String::new();
    render(&items, 0, &mut out);
    out
}

/// The Terraform of one connector: a sensitive variable per secret, the `confluent_connector`
/// resource (offsets when given; `prevent_destroy` and a precondition that trip on a rename,
/// which Terraform would do as destroy and create, losing the offsets), and an `import` block
/// when the connector exists on the target already.
pub fn terraform(
    name: &str,
    t: &Translation,
    offsets: Option<&[Value]>,
    import: Option<(&str, &str)>,
) -> String {
    let id = identifier(name);
    let mut items = vec![Item::Comment(format!(
        "Connector {name}: {} -> {}.",
        t.source_class,
        t.managed_plugin.as_deref().unwrap_or("?")
    ))];
    for k in &t.sensitive {
        items.push(Item::Blank);
        items.push(Item::Block(
            format!("variable \"{}\"", variable(name, k)),
            vec![
                Item::Attr(
                    "description".into(),
                    hcl_string(&format!("{k} of connector {name}")),
                ),
                Item::Attr("type".into(), "string".into()),
                Item::Attr("sensitive".into(), "true".into()),
            ],
        ));
    }
    let mut body = vec![
        Item::Block(
            "environment".into(),
            vec![Item::Attr("id".into(), "var.environment_id".into())],
        ),
        Item::Block(
            "kafka_cluster".into(),
            vec![Item::Attr("id".into(), "var.kafka_cluster_id".into())],
        ),
        Item::Blank,
        Item::Map(
            "config_sensitive".into(),
            t.sensitive
                .iter()
                .map(|k| (hcl_string(k), format!("var.{}", variable(name, k))))
                .collect(),
        ),
        Item::Blank,
    ];
    let mut nonsensitive: Vec<(String, String)> = t
        .config
        .iter()
        .filter(|(k, _)| !t.sensitive.contains(*k) && k.as_str() != "name")
        .map(|(k, v)| (hcl_string(k), hcl_string(v)))
        .collect();
    nonsensitive.push((hcl_string("name"), format!("local.{id}_name")));
    nonsensitive.sort();
    body.push(Item::Map("config_nonsensitive".into(), nonsensitive));
    for o in offsets.into_iter().flatten() {
        body.push(Item::Blank);
        body.push(Item::Block(
            "offsets".into(),
            vec![
                Item::Map("partition".into(), string_map(&o["partition"])),
                Item::Map("offset".into(), string_map(&o["offset"])),
            ],
        ));
    }
    body.push(Item::Blank);
    body.push(Item::Block(
        "lifecycle".into(),
        vec![
            Item::Comment(
                "A rename is a destroy and a create in Terraform, and loses the offsets:".into(),
            ),
            Item::Comment(format!(
                "run `connect-supervisor migrate rename {name} <new>` first, then change the name in the local and here."
            )),
            Item::Attr("prevent_destroy".into(), "true".into()),
            Item::Block(
                "precondition".into(),
                vec![
                    Item::Attr(
                        "condition".into(),
                        format!("local.{id}_name == {}", hcl_string(name)),
                    ),
                    Item::Attr(
                        "error_message".into(),
                        hcl_string(&format!(
                            "connector {name} would be renamed (destroyed and created, losing its offsets); use `connect-supervisor migrate rename`, which carries them"
                        )),
                    ),
                ],
            ),
        ],
    ));
    items.push(Item::Blank);
    items.push(Item::Block(
        "locals".into(),
        vec![Item::Attr(format!("{id}_name"), hcl_string(name))],
    ));
    items.push(Item::Blank);
    items.push(Item::Block(
        format!("resource \"confluent_connector\" \"{id}\""),
        body,
    ));
    if let Some((environment_id, kafka_cluster_id)) = import {
        items.push(Item::Blank);
        items.push(Item::Block(
            "import".into(),
            vec![
                Item::Attr("to".into(), format!("confluent_connector.{id}")),
                Item::Attr(
                    "id".into(),
                    hcl_string(&format!("{environment_id}/{kafka_cluster_id}/{name}")),
                ),
            ],
        ));
    }
    let mut out = String::new();
    render(&items, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::migrate::mapping::{TABLE, translate};
    use crate::translate::MASK;

    fn pg() -> Translation {
        let config: BTreeMap<String, String> = [
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSourceConnector",
            ),
            ("name", "dept1-orders"),
            ("connection.url", "jdbc:postgresql://pg/shop"),
            ("connection.password", MASK),
            (
                "query",
                "select \"x\" from t where a = '${b}' and c = '%{d}'\\",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        translate(&TABLE, &config)
    }

    #[test]
    fn managed_json_refers_to_secrets_and_carries_offsets() {
        let t = pg();
        let offsets = vec![json!({"partition": {"table": "t"}, "offset": {"id": 5}})];
        let body = managed_json("dept1-orders", &t, &SecretRef::Env, Some(&offsets));
        assert_eq!(body["name"], "dept1-orders");
        assert_eq!(
            body["config"]["connection.password"],
            "${env:DEPT1_ORDERS_CONNECTION_PASSWORD}"
        );
        assert_eq!(
            body["config"]["kafka.api.secret"],
            "${env:DEPT1_ORDERS_KAFKA_API_SECRET}"
        );
        assert_eq!(body["offsets"], json!(offsets));
        assert!(!body.to_string().contains(MASK));
        let vault = managed_json(
            "dept1-orders",
            &t,
            &SecretRef::parse("vault:secret/dept1").unwrap(),
            None,
        );
        assert_eq!(
            vault["config"]["connection.password"],
            "${vault:secret/dept1:dept1_orders_connection_password}"
        );
        assert!(vault.get("offsets").is_none());
        assert!(SecretRef::parse("plain").is_err());
    }

    #[test]
    fn terraform_uses_variables_for_secrets_and_escapes_values() {
        let t = pg();
        let offsets = vec![json!({"partition": {"table": "t"}, "offset": {"id": 5}})];
        let hcl = terraform("dept1-orders", &t, Some(&offsets), Some(("env-1", "lkc-1")));
        assert!(
            hcl.contains("resource \"confluent_connector\" \"dept1_orders\" {"),
            "{hcl}"
        );
        assert!(hcl.contains("\"connection.password\" = var.dept1_orders_connection_password"));
        assert!(hcl.contains("sensitive   = true"), "{hcl}");
        assert!(hcl.contains("$${b}") && hcl.contains("%%{d}") && hcl.contains("\\\"x\\\""));
        assert!(hcl.contains("\"id\" = \"5\""), "{hcl}");
        assert!(hcl.contains("id = \"env-1/lkc-1/dept1-orders\""), "{hcl}");
        assert!(hcl.contains("prevent_destroy = true"));
        assert!(!hcl.contains(MASK));
        assert_eq!(identifier("9-lives.x"), "c_9_lives_x");
    }
}

//! The managed API's OpenAPI contract (vendored in `tests/contract/`) as JSON Schema validators:
//! every response a test sees is checked against the schema the contract declares for that
//! operation and status.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::harness::PROJECT;

/// The vendored contract files.
pub const OPENAPI: &str = "tests/contract/confluent-connect-v1-openapi.yaml";
/// The vendored restart excerpt.
pub const RESTART_EXCERPT: &str = "tests/contract/confluent-connect-v1-restart.excerpt.yaml";

/// Keys the contract requires in configs that the supervisor does not have (see
/// `tests/contract/README.md`).
const NOT_REQUIRED: &[&str] = &["kafka.api.key", "kafka.api.secret"];

/// The loaded contract.
pub struct Contract {
    main: Value,
    restart: Value,
}

fn load_yaml(relative: &str) -> Value {
    let path = Path::new(PROJECT).join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the contract {} is missing: {e}", path.display()));
    let yaml: yaml_serde::Value = yaml_serde::from_str(&text)
        .unwrap_or_else(|e| panic!("the contract {} is not YAML: {e}", path.display()));
    let mut json = serde_json::to_value(yaml).expect("YAML converts to JSON");
    adapt(&mut json);
    json
}

/// OpenAPI 3.0 to JSON Schema: `nullable` becomes a null type; the keys the supervisor cannot
/// have are dropped from `required`.
fn adapt(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([t, "null"]));
            }
            if let Some(Value::Array(required)) = map.get_mut("required") {
                required.retain(|r| !NOT_REQUIRED.contains(&r.as_str().unwrap_or_default()));
            }
            for v in map.values_mut() {
                adapt(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(adapt),
        _ => {}
    }
}

impl Contract {
    /// The contract, loaded once.
    pub fn get() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| Contract {
            main: load_yaml(OPENAPI),
            restart: load_yaml(RESTART_EXCERPT),
        })
    }

    fn operation(&self, operation_id: &str) -> (&Value, &Value) {
        for doc in [&self.main, &self.restart] {
            for item in doc["paths"].as_object().expect("paths").values() {
                for op in item.as_object().expect("path item").values() {
                    if op.get("operationId").and_then(Value::as_str) == Some(operation_id) {
                        return (doc, op);
                    }
                }
            }
        }
        panic!("operation {operation_id} is not in the contract");
    }

    /// Checks one response of `operation_id` against the contract: the declared schema of that
    /// status, or for an undeclared error status the generic `connect.v1.ConnectorError`.
    /// Responses declared without content must have an empty body. Error bodies must carry the
    /// status as their code. Panics with every violation.
    pub fn check(&self, operation_id: &str, status: u16, body: &Value) {
        let (doc, op) = self.operation(operation_id);
        let declared = op["responses"].get(status.to_string());
        let resolved = declared.map(|r| resolve(doc, r));
        let schema = match resolved.as_ref() {
            Some(r) => match r.pointer("/content/application~1json/schema") {
                Some(schema) => schema.clone(),
                None => {
                    assert!(
                        body.is_null(),
                        "{operation_id} {status}: the contract declares no body, got {body}"
                    );
                    return;
                }
            },
            None => {
                assert!(
                    status >= 400,
                    "{operation_id}: status {status} is not declared by the contract"
                );
                json!({ "$ref": "#/components/schemas/connect.v1.ConnectorError" })
            }
        };
        if status >= 400 {
            let code = body
                .pointer("/error/code")
                .or_else(|| body.get("error_code"))
                .and_then(Value::as_u64);
            assert_eq!(
                code,
                Some(u64::from(status)),
                "{operation_id} {status}: error body must carry the status as its code: {body}"
            );
            assert!(
                body.pointer("/error/message")
                    .or_else(|| body.get("message"))
                    .and_then(Value::as_str)
                    .is_some_and(|m| !m.is_empty()),
                "{operation_id} {status}: error body needs a message: {body}"
            );
        }
        let mut full = schema;
        if let Value::Object(map) = &mut full {
            map.insert("components".into(), doc["components"].clone());
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&full)
            .unwrap_or_else(|e| panic!("{operation_id} {status}: schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{operation_id} {status}: the body breaks the contract:\n  {}\nbody: {body}",
            errors.join("\n  ")
        );
    }
}

fn resolve(doc: &Value, response: &Value) -> Value {
    match response.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}"))
            .clone(),
        None => response.clone(),
    }
}

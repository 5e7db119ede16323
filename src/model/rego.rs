//! Policies as code: Rego (OPA-compatible, Rego v1 syntax) evaluated in-process with `regorus`.
//!
//! Each `.rego` file is one policy, named after its file stem, compiled into its own engine so
//! policies cannot interfere. A policy declares a `deny` set; each element becomes a violation
//! whose rule id is the policy's name. An element is either a message string or an object
//! `{"msg": "...", "key": "<config key>", "hint": "..."}` (`key` and `hint` optional). The input
//! document is described in the README ("The Rego input document") and built by the policy
//! engine, which turns each [`RegoDenial`] into a violation.
//!
//! This module compiles text and evaluates values; reading the policy folder is the config
//! loader's job. A policy that fails at evaluation time (a runaway loop hitting the time limit, a
//! builtin error in strict places) becomes a denial of that policy: guardrails fail closed.

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

/// Name of the rule every policy must declare.
const DENY_RULE: &str = "deny";
/// Extension of policy files.
pub const REGO_EXTENSION: &str = "rego";
/// Wall-clock limit of one policy's evaluation (a guard against runaway policies, far above the
/// microseconds a normal policy takes).
const EVAL_TIME_LIMIT: Duration = Duration::from_secs(1);

static POLICY_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,63}$").expect("valid regex"));

/// The text of one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoSource {
    /// The policy's name (its file stem): the rule id of its violations.
    pub name: String,
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The Rego text.
    pub text: String,
}

/// One element of a policy's `deny` set (or the policy's own failure to evaluate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoDenial {
    /// The rule id of the violation: the policy's name.
    pub rule: String,
    /// The config key concerned, when the policy named one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl RegoDenial {
    fn new(policy: &str, key: Option<&str>, message: String, hint: String) -> Self {
        Self {
            rule: policy.to_string(),
            key: key.map(str::to_string),
            message,
            hint,
        }
    }
}

/// Why a policy file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoProblem {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the compiler's position when it gave one.
    pub message: String,
}

#[derive(Clone)]
struct CompiledPolicy {
    source: RegoSource,
    query: String,
    engine: Engine,
}

/// The department's compiled policies (possibly none).
#[derive(Clone, Default)]
pub struct RegoPolicies {
    policies: Vec<CompiledPolicy>,
}

impl fmt::Debug for RegoPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.policies.iter().map(|p| &p.source.path))
            .finish()
    }
}

impl PartialEq for RegoPolicies {
    fn eq(&self, other: &Self) -> bool {
        self.policies.len() == other.policies.len()
            && self
                .policies
                .iter()
                .zip(&other.policies)
                .all(|(a, b)| a.source == b.source)
    }
}

fn timed_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: EVAL_TIME_LIMIT,
        check_interval: NonZeroU32::new(64).expect("non-zero"),
    });
    engine
}

/// First lines of a regorus error, without its leading blank line.
fn describe(error: &impl fmt::Display) -> String {
    error.to_string().trim().to_string()
}

impl RegoPolicies {
    /// Compiles every source; all problems are returned at once. Each policy is also evaluated
    /// once on an empty input, which is where Rego reports unknown functions.
    pub fn compile(sources: Vec<RegoSource>) -> Result<Self, Vec<RegoProblem>> {
        let mut problems = Vec::new();
        let mut policies = Vec::new();
        for source in sources {
            let problem = |message: String| RegoProblem {
                path: source.path.clone(),
                message,
            };
            if !POLICY_NAME.is_match(&source.name) {
                problems.push(problem(format!(
                    "\"{}\" is not a usable policy name (it becomes a rule id); name the file \
                     with lowercase letters, digits, '-' and '_', e.g. prod-tasks-max.rego",
                    source.name
                )));
                continue;
            }
            let mut engine = timed_engine();
            let file = source.path.display().to_string();
            let package = match engine.add_policy(file.clone(), source.text.clone()) {
                Ok(package) => package,
                Err(e) => {
                    problems.push(problem(format!("does not compile: {}", describe(&e))));
                    continue;
                }
            };
            match engine.has_declared_rule_rooted_at(&file, DENY_RULE) {
                Ok(true) => {}
                Ok(false) => {
                    problems.push(problem(format!(
                        "declares no `{DENY_RULE}` rule; write `deny contains msg if {{ ... }}`"
                    )));
                    continue;
                }
                Err(e) => {
                    problems.push(problem(format!("cannot be inspected: {}", describe(&e))));
                    continue;
                }
            }
            let query = format!("{package}.{DENY_RULE}");
            engine.set_input(Value::new_object());
            if let Err(e) = engine.eval_rule(query.clone()) {
                problems.push(problem(format!("does not compile: {}", describe(&e))));
                continue;
            }
            policies.push(CompiledPolicy {
                source,
                query,
                engine,
            });
        }
        if problems.is_empty() {
            Ok(Self { policies })
        } else {
            Err(problems)
        }
    }

    /// Whether there is no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Names of the policies, in load order.
    pub fn names(&self) -> Vec<&str> {
        self.policies
            .iter()
            .map(|p| p.source.name.as_str())
            .collect()
    }

    /// Evaluates every policy on `input` and returns their denials.
    pub fn evaluate(&self, input: &serde_json::Value) -> Vec<RegoDenial> {
        if self.policies.is_empty() {
            return Vec::new();
        }
        let input = Value::from(input.clone());
        let mut out = Vec::new();
        for policy in &self.policies {
            // Engines are cheap to clone (shared, reference-counted modules) and evaluation
            // needs one of its own, so concurrent requests never share evaluation state.
            let mut engine = policy.engine.clone();
            engine.set_input(input.clone());
            let name = &policy.source.name;
            match engine.eval_rule(policy.query.clone()) {
                Ok(Value::Set(items)) => {
                    out.extend(items.iter().map(|item| denial(name, item)));
                }
                Ok(Value::Undefined) => {}
                Ok(other) => out.push(RegoDenial::new(
                    name,
                    None,
                    format!(
                        "policy {name} returned a {} as `deny`, not a set",
                        kind_of(&other)
                    ),
                    "the platform team must declare deny as a set: `deny contains msg if { ... }`"
                        .to_string(),
                )),
                Err(e) => out.push(RegoDenial::new(
                    name,
                    None,
                    format!(
                        "policy {name} could not be evaluated: {}",
                        describe(&e).lines().last().unwrap_or("")
                    ),
                    format!(
                        "the platform team must fix {}; the change is refused until then",
                        policy.source.path.display()
                    ),
                )),
            }
        }
        out
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.to_string()),
        Value::Undefined | Value::Null => None,
        other => other.to_json_str().ok(),
    }
}

fn denial(policy: &str, item: &Value) -> RegoDenial {
    let default_hint = || format!("change the connector so that policy {policy} allows it");
    match item {
        Value::String(message) => {
            RegoDenial::new(policy, None, message.to_string(), default_hint())
        }
        Value::Object(fields) => {
            let get = |name: &str| fields.get(&Value::from(name));
            let message = text_of(get("msg"))
                .or_else(|| text_of(get("message")))
                .unwrap_or_else(|| item.to_json_str().unwrap_or_default());
            let key = text_of(get("key"));
            let hint = text_of(get("hint")).unwrap_or_else(default_hint);
            RegoDenial::new(policy, key.as_deref(), message, hint)
        }
        other => RegoDenial::new(
            policy,
            None,
            other.to_json_str().unwrap_or_default(),
            default_hint(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn source(name: &str, text: &str) -> RegoSource {
        RegoSource {
            name: name.into(),
            path: PathBuf::from(format!("/policies/{name}.rego")),
            text: text.into(),
        }
    }

    const TASKS: &str = r#"
package connect.tasks

deny contains msg if {
    to_number(input.connector.config["tasks.max"]) > 4
    msg := sprintf("%s: at most 4 tasks", [input.connector.name])
}

deny contains {"msg": "no debug", "key": "debug", "hint": "remove debug"} if {
    input.connector.config.debug == "true"
}
"#;

    #[test]
    fn deny_messages_become_violations_named_after_the_policy() {
        let policies = RegoPolicies::compile(vec![source("tasks", TASKS)]).unwrap();
        assert_eq!(policies.names(), ["tasks"]);
        let input = json!({"connector": {"name": "dept1-a", "config": {"tasks.max": "8", "debug": "true"}}});
        let mut v = policies.evaluate(&input);
        v.sort_by(|a, b| a.message.cmp(&b.message));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].message, "dept1-a: at most 4 tasks");
        assert_eq!(v[0].rule, "tasks");
        assert_eq!(v[0].key, None);
        assert_eq!(v[1].message, "no debug");
        assert_eq!(v[1].key.as_deref(), Some("debug"));
        assert_eq!(v[1].hint, "remove debug");
        let fine = json!({"connector": {"name": "dept1-a", "config": {"tasks.max": "2"}}});
        assert!(policies.evaluate(&fine).is_empty());
    }

    #[test]
    fn every_broken_file_is_reported_with_its_path() {
        let problems = RegoPolicies::compile(vec![
            source("syntax", "package a\ndeny contains msg if { 1 == }"),
            source("nodeny", "package b\nallow := true\n"),
            source(
                "unknownfn",
                "package c\ndeny contains x if { x := http.send({}) }\n",
            ),
            source("v0", "package d\ndeny[msg] { msg := \"x\" }\n"),
            source("Bad Name", "package e\ndeny contains \"x\" if { false }\n"),
            source("ok", "package f\ndeny contains \"x\" if { false }\n"),
        ])
        .unwrap_err();
        let paths: Vec<String> = problems
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "/policies/syntax.rego",
                "/policies/nodeny.rego",
                "/policies/unknownfn.rego",
                "/policies/v0.rego",
                "/policies/Bad Name.rego"
            ]
        );
        assert!(
            problems[0].message.contains(":2:"),
            "{}",
            problems[0].message
        );
        assert!(
            problems[2].message.contains("http.send"),
            "{}",
            problems[2].message
        );
    }

    #[test]
    fn a_policy_that_fails_at_evaluation_refuses_the_change() {
        let policies = RegoPolicies::compile(vec![source(
            "divide",
            "package g\ndeny contains msg if { x := 1 / to_number(input.n); msg := sprintf(\"%v\", [x]) }\n",
        )])
        .unwrap();
        let v = policies.evaluate(&json!({"n": "zero"}));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, "divide");
        assert!(
            v[0].message.contains("could not be evaluated"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn policies_are_independent_even_with_one_package() {
        let policies = RegoPolicies::compile(vec![
            source("one", "package same\ndeny contains \"one\" if { true }\n"),
            source("two", "package same\ndeny contains \"two\" if { true }\n"),
        ])
        .unwrap();
        let v = policies.evaluate(&json!({}));
        let pairs: Vec<(String, String)> = v.into_iter().map(|v| (v.rule, v.message)).collect();
        assert_eq!(
            pairs,
            [("one".into(), "one".into()), ("two".into(), "two".into())]
        );
    }
}

//! The pure half of `validate`: connector documents (already read and parsed) checked against the
//! department's rules, with quotas counted over every connector of an environment.
//!
//! Connectors of one environment are reviewed in file-path order, each with the usage of the
//! ones before it added to the [`Baseline`] (what runs in the department now; empty offline),
//! so the connector that crosses a quota is the one reported. A name already in the baseline is
//! an update of that connector (its tasks are replaced, not added).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::model::{Department, SecretMode};
use crate::policy::{self, ConnectorRequest, Operation, PluginCatalog, Usage};

use super::document::{ConnectorDocument, DocProblem};
use super::lines::Position;

/// Rule id: two files of one environment define the same connector.
pub const RULE_DUPLICATE: &str = "file.duplicate";
/// Rule id: a file or folder could not be read.
pub const RULE_UNREADABLE: &str = "file.unreadable";
/// Rule id of the note listing platform defaults that will be added.
pub const NOTE_DEFAULTS: &str = "defaults";
/// Rule id of the note listing secrets that will be externalized.
pub const NOTE_SECRETS: &str = "secrets";

/// What runs in the department now: connector name to its `tasks.max`. The seam for
/// `--against URL`; empty when validating offline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Running connectors.
    pub connectors: BTreeMap<String, u32>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes `validate` fail.
    Error,
    /// Information (defaults and externalized secrets).
    Notice,
}

/// One finding of `validate`, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or notice.
    pub severity: Severity,
    /// The file, as found from the paths given.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// JSON path inside the file (`$` for the whole file).
    pub json_path: String,
    /// The connector, when the file could be read as one.
    pub connector: Option<String>,
    /// The environment of the file (per-environment layout), if any.
    pub environment: Option<String>,
    /// Rule id (a policy rule, a Rego policy's name, or a `file.*`/`vars.*` check).
    pub rule: String,
    /// The config key concerned, if any.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// One file after reading and parsing.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The file.
    pub path: PathBuf,
    /// Its environment (per-environment layout).
    pub environment: Option<String>,
    /// Positions of its JSON members (empty when not JSON).
    pub positions: HashMap<String, Position>,
    /// The connector, or why the file is not one.
    pub content: Result<ConnectorDocument, Vec<DocProblem>>,
}

impl LoadedFile {
    fn locate(&self, json_path: &str) -> (Option<usize>, Option<usize>) {
        // The member itself, else its closest known parent.
        let mut path = json_path;
        loop {
            if let Some(p) = self.positions.get(path) {
                return (Some(p.line), Some(p.column));
            }
            match super::lines::parent(path) {
                Some(up) => path = up,
                None => return (None, None),
            }
        }
    }

    fn finding(
        &self,
        severity: Severity,
        json_path: &str,
        rule: &str,
        key: Option<&str>,
        message: String,
        hint: String,
    ) -> Finding {
        let (line, column) = self.locate(json_path);
        Finding {
            severity,
            file: self.path.clone(),
            line,
            column,
            json_path: json_path.to_string(),
            connector: self.content.as_ref().ok().map(|d| d.name.clone()),
            environment: self.environment.clone(),
            rule: rule.to_string(),
            key: key.map(str::to_string),
            message,
            hint,
        }
    }
}

/// Checks every loaded file; returns the findings in file order.
pub fn check(
    department: &Department,
    catalog: &PluginCatalog,
    files: &[LoadedFile],
    baseline: &Baseline,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut order: Vec<&LoadedFile> = files.iter().collect();
    order.sort_by(|a, b| a.path.cmp(&b.path));
    let mut running: BTreeMap<Option<String>, BTreeMap<String, u32>> = BTreeMap::new();
    let mut seen: BTreeMap<(Option<String>, String), PathBuf> = BTreeMap::new();
    for file in order {
        let doc = match &file.content {
            Err(problems) => {
                for p in problems {
                    let mut f = file.finding(
                        Severity::Error,
                        &p.json_path,
                        p.rule,
                        None,
                        p.message.clone(),
                        p.hint.clone(),
                    );
                    if p.line.is_some() {
                        f.line = p.line;
                        f.column = p.column;
                    }
                    findings.push(f);
                }
                continue;
            }
            Ok(doc) => doc,
        };
        let env_key = file.environment.clone();
        if let Some(first) = seen.insert((env_key.clone(), doc.name.clone()), file.path.clone()) {
            findings.push(file.finding(
                Severity::Error,
                &doc.name_path,
                RULE_DUPLICATE,
                Some(policy::NAME_KEY),
                format!(
                    "connector {} is also defined in {}",
                    doc.name,
                    first.display()
                ),
                "keep one definition per connector and environment".into(),
            ));
            continue;
        }
        let group = running
            .entry(env_key)
            .or_insert_with(|| baseline.connectors.clone());
        let existing = group.get(&doc.name).copied();
        let usage = Usage {
            connectors: group.len() as u32,
            tasks: group.values().sum(),
            connector_tasks: existing,
        };
        let operation = if existing.is_some() {
            Operation::Update
        } else {
            Operation::Validate
        };
        let mut request = ConnectorRequest::new(operation, &doc.name, &doc.config);
        request.usage = usage;
        request.catalog = catalog;
        request.environment = file.environment.as_deref();
        let review = policy::review(department, &request);
        group.insert(doc.name.clone(), review.facts.tasks);
        for v in &review.violations {
            let json_path = match v.key.as_deref() {
                Some(policy::NAME_KEY) => doc.name_path.clone(),
                // A key the user did not write (a platform default, the pool): the config.
                Some(key) => doc
                    .origin
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| doc.config_path.clone()),
                None => "$".into(),
            };
            findings.push(file.finding(
                Severity::Error,
                &json_path,
                &v.rule,
                v.key.as_deref(),
                v.message.clone(),
                v.hint.clone(),
            ));
        }
        if !review.applied_defaults.is_empty() {
            let list: Vec<String> = review
                .applied_defaults
                .iter()
                .map(|a| format!("{}={}", a.key, a.value))
                .collect();
            findings.push(
                file.finding(
                    Severity::Notice,
                    "$",
                    NOTE_DEFAULTS,
                    None,
                    format!(
                        "the platform will add {} ({})",
                        list.join(", "),
                        review.applied_defaults[0].reason
                    ),
                    "set the keys yourself to choose other values; reads through the managed API \
                 show the config as you sent it"
                        .into(),
                ),
            );
        }
        if department.secrets.mode == SecretMode::Externalize {
            for key in &review.literal_secrets {
                let json_path = doc.origin.get(key).cloned().unwrap_or_else(|| "$".into());
                findings.push(file.finding(
                    Severity::Notice,
                    &json_path,
                    NOTE_SECRETS,
                    Some(key),
                    format!(
                        "{key} holds a literal secret; the supervisor will keep it in a secret \
                         file and give Connect a reference"
                    ),
                    "better still, keep secrets out of Git: use a ${provider:...} reference or \
                     a CI secret substituted at deploy time"
                        .into(),
                ));
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config;
    use crate::gitops::{document, lines};

    fn department() -> Department {
        let text = r#"
[department]
id = "dept1"
environment_id = "e"
kafka_cluster_id = "k"
[kafka]
bootstrap_servers = "b:9092"
[[pools]]
name = "shared"
cpu = 1
memory = "1GiB"
[policy.quotas]
max_connectors = 2
max_tasks_per_connector = 4
max_tasks_total = 5
"#;
        config::parse(text, Path::new("/"), &|_| None).unwrap()
    }

    fn file(path: &str, env: Option<&str>, text: &str) -> LoadedFile {
        LoadedFile {
            path: PathBuf::from(path),
            environment: env.map(str::to_string),
            positions: lines::positions(text),
            content: document::parse(text, "x", None),
        }
    }

    fn source(name: &str, tasks: u32) -> String {
        format!(
            "{{\n  \"name\": \"{name}\",\n  \"config\": {{\n    \"connector.class\": \"FileStreamSource\",\n    \"tasks.max\": \"{tasks}\",\n    \"topic\": \"dept1-t\"\n  }}\n}}\n"
        )
    }

    fn errors(findings: &[Finding]) -> Vec<(String, String, Option<usize>)> {
        findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.file.display().to_string(), f.rule.clone(), f.line))
            .collect()
    }

    #[test]
    fn quotas_count_every_connector_of_an_environment() {
        let files = [
            file("c.json", Some("prod"), &source("dept1-c", 1)),
            file("a.json", Some("prod"), &source("dept1-a", 2)),
            file("b.json", Some("prod"), &source("dept1-b", 3)),
            file("dev-a.json", Some("dev"), &source("dept1-a", 2)),
        ];
        let findings = check(
            &department(),
            &PluginCatalog::default(),
            &files,
            &Baseline::default(),
        );
        // a (2) + b (3) = 5 tasks, the limit; c is the third connector and the sixth task.
        assert_eq!(
            errors(&findings),
            [
                (
                    "c.json".to_string(),
                    "quota.connectors".to_string(),
                    Some(1)
                ),
                (
                    "c.json".to_string(),
                    "quota.tasks-total".to_string(),
                    Some(5)
                ),
            ]
        );
    }

    #[test]
    fn the_baseline_counts_and_known_names_are_updates() {
        let baseline = Baseline {
            connectors: [("dept1-a".to_string(), 4)].into(),
        };
        let files = [
            file("a.json", None, &source("dept1-a", 4)),
            file("b.json", None, &source("dept1-b", 1)),
        ];
        let findings = check(&department(), &PluginCatalog::default(), &files, &baseline);
        assert!(errors(&findings).is_empty(), "{findings:?}");
        let files = [file("b.json", None, &source("dept1-b", 2))];
        let findings = check(&department(), &PluginCatalog::default(), &files, &baseline);
        assert_eq!(
            errors(&findings),
            [(
                "b.json".to_string(),
                "quota.tasks-total".to_string(),
                Some(5)
            )]
        );
    }

    #[test]
    fn duplicates_within_an_environment_are_findings() {
        let files = [
            file("a.json", None, &source("dept1-a", 1)),
            file("b.json", None, &source("dept1-a", 1)),
        ];
        let findings = check(
            &department(),
            &PluginCatalog::default(),
            &files,
            &Baseline::default(),
        );
        assert_eq!(
            errors(&findings),
            [("b.json".to_string(), "file.duplicate".to_string(), Some(2))]
        );
    }

    #[test]
    fn violations_point_at_the_key_line_and_notes_tell_defaults_and_secrets() {
        let text = "{\n  \"name\": \"dept1-s\",\n  \"config\": {\n    \"connector.class\": \"FileStreamSink\",\n    \"topics\": \"other\",\n    \"connection.password\": \"hunter2\"\n  }\n}\n";
        let findings = check(
            &department(),
            &PluginCatalog::default(),
            &[file("s.json", None, text)],
            &Baseline::default(),
        );
        assert_eq!(
            errors(&findings),
            [("s.json".to_string(), "topics.prefix".to_string(), Some(5))]
        );
        let notes: Vec<&str> = findings
            .iter()
            .filter(|f| f.severity == Severity::Notice)
            .map(|f| f.rule.as_str())
            .collect();
        assert_eq!(notes, [NOTE_DEFAULTS, NOTE_SECRETS]);
        assert!(
            findings
                .iter()
                .all(|f| !f.message.contains("hunter2") && !f.hint.contains("hunter2"))
        );
    }
}

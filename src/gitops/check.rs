//! The pure half of `validate`: connector documents (already read and parsed) checked against the
//! department's rules, with quotas counted over every connector of an environment.
//!
//! Connectors of one environment are reviewed in file-path order, each with the usage of the
//! ones before it added to the [`Baseline`] (what runs in the department now; empty offline),
//! so the connector that crosses a quota is the one reported. A name already in the baseline is
//! an update of that connector (its tasks are replaced, not added).
//!
//! Against a live department (`--against URL`), every file targets that one department, so all
//! files form one group, and renames are looked for: a file whose connector is new while a
//! connector that runs has no file, with the same class and most settings equal, is a rename,
//! which applying carries out as a delete and a create that loses the connector's offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::model::{Department, SecretMode};
use crate::policy::{self, ConnectorRequest, ConnectorUsage, Operation, PluginCatalog};

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
/// Rule id: a new connector looks like a running one renamed (a delete and a create).
pub const RULE_RENAME: &str = "gitops.rename";
/// Rule id of the note on a running connector no file defines.
pub const NOTE_UNMANAGED: &str = "gitops.unmanaged";
/// Rule id: files of several environments checked against one live department.
pub const RULE_ENVIRONMENTS: &str = "gitops.environments";
/// Share of the compared settings two connectors of the same class must have equal to be taken
/// for one renamed.
pub const RENAME_SIMILARITY: f64 = 0.5;
/// Keys left out when connectors are compared for a rename: the name itself, the class (compared
/// on its own), and what the managed API adds to configs.
const RENAME_IGNORED: &[&str] = &[
    policy::NAME_KEY,
    policy::CLASS_KEY,
    crate::translate::KEY_CLOUD_ENVIRONMENT,
    crate::translate::KEY_CLOUD_PROVIDER,
    crate::translate::KEY_KAFKA_ENDPOINT,
    crate::translate::KEY_KAFKA_REGION,
];

pub use crate::remote::{Baseline, RunningConnector};

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
    check_with(department, catalog, files, baseline, false)
}

/// [`check`], with renames of running connectors reported as notices instead of errors when
/// `allow_renames` (the rename is intended, and its offsets carried over).
pub fn check_with(
    department: &Department,
    catalog: &PluginCatalog,
    files: &[LoadedFile],
    baseline: &Baseline,
    allow_renames: bool,
) -> Vec<Finding> {
    let live = baseline.source.is_some();
    let mut defined: Vec<(&LoadedFile, &ConnectorDocument)> = Vec::new();
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
        // A live department is one department, whatever the files' environments.
        let env_key = if live { None } else { file.environment.clone() };
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
        defined.push((file, doc));
        let group = running
            .entry(env_key)
            .or_insert_with(|| baseline.connectors.clone());
        let existing = group.get(&doc.name).copied();
        let usage = ConnectorUsage {
            connectors: group.len() as u32,
            tasks: group.values().sum(),
            connector_tasks: existing,
        };
        let operation = if existing.is_some() {
            Operation::Update
        } else {
            Operation::Validate
        };
        let pool = crate::connectors::placement::judged_pool(department, &doc.config);
        let mut request = ConnectorRequest::new(operation, &doc.name, &doc.config, &pool);
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
    if let Some(source) = &baseline.source {
        findings.extend(live_findings(
            catalog,
            &defined,
            baseline,
            source,
            allow_renames,
        ));
    }
    findings
}

/// Findings that only exist against a live department: several environments at once, renames,
/// and running connectors no file defines.
fn live_findings(
    catalog: &PluginCatalog,
    defined: &[(&LoadedFile, &ConnectorDocument)],
    baseline: &Baseline,
    source: &str,
    allow_renames: bool,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut environments: Vec<&str> = defined
        .iter()
        .filter_map(|(f, _)| f.environment.as_deref())
        .collect();
    environments.sort_unstable();
    environments.dedup();
    if environments.len() > 1
        && let Some((file, doc)) = defined
            .iter()
            .find(|(f, _)| f.environment.as_deref() == Some(environments[1]))
    {
        findings.push(file.finding(
            Severity::Error,
            &doc.name_path,
            RULE_ENVIRONMENTS,
            None,
            format!(
                "files of the environments {} are checked against one department ({source})",
                environments.join(", ")
            ),
            "pass --env with the environment that runs there".into(),
        ));
    }
    let in_files: BTreeSet<&str> = defined.iter().map(|(_, d)| d.name.as_str()).collect();
    let new: Vec<(&LoadedFile, &ConnectorDocument)> = defined
        .iter()
        .filter(|(_, d)| !baseline.connectors.contains_key(&d.name))
        .copied()
        .collect();
    let orphans: Vec<(&String, &RunningConnector)> = baseline
        .running
        .iter()
        .filter(|(name, _)| !in_files.contains(name.as_str()))
        .collect();
    let pairs = renames(
        catalog,
        &new.iter()
            .map(|(_, d)| (d.name.as_str(), &d.config))
            .collect::<Vec<_>>(),
        &orphans
            .iter()
            .map(|(n, r)| (n.as_str(), &r.config))
            .collect::<Vec<_>>(),
    );
    let mut renamed = BTreeSet::new();
    for pair in pairs {
        let (file, doc) = new[pair.new];
        let (old, running) = orphans[pair.old];
        renamed.insert(old.as_str());
        let state = running
            .state
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        findings.push(file.finding(
            if allow_renames {
                Severity::Notice
            } else {
                Severity::Error
            },
            &doc.name_path,
            RULE_RENAME,
            Some(policy::NAME_KEY),
            format!(
                "connector {} is new, and {old} (runs now{state}) has no file but the same class \
                 and {} of {} settings: this renames {old}; done as a delete and a create, {} \
                 starts with no offsets",
                doc.name, pair.shared, pair.compared, doc.name
            ),
            format!(
                "keep the name {old} (a connector's name is its identity); if the rename is \
                 intended, `apply --allow-renames` carries {old}'s offsets to {} (as `migrate \
                 rename` does), and --allow-renames here accepts it",
                doc.name
            ),
        ));
    }
    for (name, running) in orphans {
        if renamed.contains(name.as_str()) {
            continue;
        }
        let state = running.state.as_deref().unwrap_or("state unknown");
        findings.push(Finding {
            severity: Severity::Notice,
            file: PathBuf::from(source),
            line: None,
            column: None,
            json_path: "$".into(),
            connector: Some(name.clone()),
            environment: None,
            rule: NOTE_UNMANAGED.into(),
            key: None,
            message: format!("connector {name} runs ({state}) but no file given defines it"),
            hint: "add its file, or delete it if it is no longer needed (it counts against the \
                   quotas until then)"
                .into(),
        });
    }
    findings
}

/// A new connector taken for a running one renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenamePair {
    /// Index of the new connector.
    pub new: usize,
    /// Index of the running connector without a file.
    pub old: usize,
    /// Settings with equal values.
    pub shared: usize,
    /// Settings compared.
    pub compared: usize,
}

/// Pairs new connectors with running connectors that have no file: same class (aliases
/// resolved through `catalog`) and at least [`RENAME_SIMILARITY`] of the other settings equal
/// (the connector's own name inside a value counts as equal). Best matches first, each
/// connector in one pair at most.
pub fn renames(
    catalog: &PluginCatalog,
    new: &[(&str, &BTreeMap<String, String>)],
    orphans: &[(&str, &BTreeMap<String, String>)],
) -> Vec<RenamePair> {
    let class = |config: &BTreeMap<String, String>| {
        let given = config
            .get(policy::CLASS_KEY)
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        catalog.resolve(&given).map(str::to_string).unwrap_or(given)
    };
    let mut candidates = Vec::new();
    for (i, (new_name, new_config)) in new.iter().enumerate() {
        let new_class = class(new_config);
        for (j, (old_name, old_config)) in orphans.iter().enumerate() {
            let old_class = class(old_config);
            if new_class.is_empty() || !policy::plugins::same_class(&new_class, &old_class) {
                continue;
            }
            let (shared, compared) = similarity(new_name, new_config, old_name, old_config);
            let score = if compared == 0 {
                1.0
            } else {
                shared as f64 / compared as f64
            };
            if score >= RENAME_SIMILARITY {
                candidates.push((score, i, j, shared, compared));
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| new[a.1].0.cmp(new[b.1].0))
            .then_with(|| orphans[a.2].0.cmp(orphans[b.2].0))
    });
    let mut used_new = BTreeSet::new();
    let mut used_old = BTreeSet::new();
    let mut pairs = Vec::new();
    for (_, i, j, shared, compared) in candidates {
        if used_new.contains(&i) || used_old.contains(&j) {
            continue;
        }
        used_new.insert(i);
        used_old.insert(j);
        pairs.push(RenamePair {
            new: i,
            old: j,
            shared,
            compared,
        });
    }
    pairs.sort_by_key(|p| p.new);
    pairs
}

/// `(equal, compared)` settings of two connector configs, ignoring the name, the class, the
/// managed API's added keys, the supervisor's records and masked secrets, with each connector's
/// own name in its values read as a placeholder.
fn similarity(
    a_name: &str,
    a: &BTreeMap<String, String>,
    b_name: &str,
    b: &BTreeMap<String, String>,
) -> (usize, usize) {
    let skip = |k: &str, v: &str| {
        RENAME_IGNORED.contains(&k) || k.starts_with("config.internal.") || v.starts_with("**")
    };
    let masked: BTreeSet<&str> = a
        .iter()
        .chain(b.iter())
        .filter(|(k, v)| skip(k, v))
        .map(|(k, _)| k.as_str())
        .collect();
    let keys: BTreeSet<&str> = a
        .keys()
        .chain(b.keys())
        .map(String::as_str)
        .filter(|k| !masked.contains(k))
        .collect();
    let shared = keys
        .iter()
        .filter(|k| match (a.get(**k), b.get(**k)) {
            (Some(x), Some(y)) => {
                x.replace(a_name, "{connector}") == y.replace(b_name, "{connector}")
            }
            _ => false,
        })
        .count();
    (shared, keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::{document, lines};

    fn department() -> Department {
        crate::config::testing::department()
            .managed_ids("e", "k")
            .bootstrap_servers("b:9092")
            .with("[policy.quotas]\nmax_connectors = 2\nmax_tasks_per_connector = 4\nmax_tasks_total = 5")
            .build()
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
            ..Baseline::default()
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

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renames_pair_the_same_class_with_mostly_equal_settings() {
        let old = map(&[
            (
                "connector.class",
                "org.apache.kafka.connect.file.FileStreamSourceConnector",
            ),
            ("topic", "dept1-lines"),
            ("file", "/data/dept1-lines-v1.txt"),
            ("tasks.max", "1"),
            ("connection.password", "****************"),
            ("cloud.provider", "self-managed"),
            ("config.internal.connect-supervisor.applied-defaults", "x"),
        ]);
        // Alias vs full name; its own name inside a value; a literal secret where the running
        // one is masked (not compared).
        let renamed = map(&[
            ("connector.class", "FileStreamSource"),
            ("topic", "dept1-lines"),
            ("file", "/data/dept1-lines-v2.txt"),
            ("tasks.max", "2"),
            ("connection.password", "hunter2"),
        ]);
        let other_class = map(&[
            ("connector.class", "FileStreamSink"),
            ("topics", "dept1-lines"),
        ]);
        let unlike = map(&[
            ("connector.class", "FileStreamSource"),
            ("topic", "dept1-other"),
            ("file", "/x"),
            ("tasks.max", "3"),
        ]);
        let pairs = renames(
            &PluginCatalog::default(),
            &[
                ("dept1-lines-v2", &renamed),
                ("dept1-sink", &other_class),
                ("dept1-unlike", &unlike),
            ],
            &[("dept1-lines-v1", &old)],
        );
        assert_eq!(
            pairs,
            [RenamePair {
                new: 0,
                old: 0,
                shared: 2,
                compared: 3
            }]
        );
        // Each running connector pairs once, with its best match.
        let twin = renamed.clone();
        let mut exact = renamed.clone();
        exact.insert("tasks.max".into(), "1".into());
        let pairs = renames(
            &PluginCatalog::default(),
            &[("dept1-twin", &twin), ("dept1-exact", &exact)],
            &[("dept1-lines-v1", &old)],
        );
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].new, 1);
    }

    fn live(connectors: &[(&str, u32, &str)]) -> Baseline {
        let mut baseline = Baseline {
            source: Some("http://cs".into()),
            ..Baseline::default()
        };
        for (name, tasks, topic) in connectors {
            baseline.connectors.insert(name.to_string(), *tasks);
            baseline.running.insert(
                name.to_string(),
                RunningConnector {
                    config: map(&[
                        ("connector.class", "FileStreamSource"),
                        ("tasks.max", &tasks.to_string()),
                        ("topic", topic),
                    ]),
                    state: Some("RUNNING".into()),
                },
            );
        }
        baseline
    }

    fn rules(findings: &[Finding], severity: Severity) -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| (f.connector.clone().unwrap_or_default(), f.rule.clone()))
            .collect()
    }

    #[test]
    fn against_a_live_department_renames_are_errors_and_unmanaged_connectors_notes() {
        // dept1-a runs and has its file; dept1-old runs with no file and looks like dept1-new;
        // dept1-lost runs with no file and looks like nothing.
        let baseline = live(&[
            ("dept1-a", 1, "dept1-t"),
            ("dept1-old", 1, "dept1-t"),
            ("dept1-lost", 1, "dept1-zzz"),
        ]);
        let mut lost = baseline.running["dept1-lost"].clone();
        lost.config
            .insert("connector.class".into(), "FileStreamSink".into());
        let mut baseline = baseline;
        baseline.running.insert("dept1-lost".into(), lost);
        let files = [
            file("a.json", None, &source("dept1-a", 1)),
            file("new.json", None, &source("dept1-new", 1)),
        ];
        let findings = check(&department(), &PluginCatalog::default(), &files, &baseline);
        // Two running (a, old) + lost = 3 connectors, the limit: the new one is the fourth.
        assert_eq!(
            rules(&findings, Severity::Error),
            [
                ("dept1-new".to_string(), "quota.connectors".to_string()),
                ("dept1-new".to_string(), RULE_RENAME.to_string()),
            ]
        );
        let rename = findings.iter().find(|f| f.rule == RULE_RENAME).unwrap();
        assert!(
            rename.message.contains("dept1-old (runs now, RUNNING)"),
            "{}",
            rename.message
        );
        assert!(
            rename.message.contains("with no offsets"),
            "{}",
            rename.message
        );
        assert_eq!(rename.line, Some(2), "points at the name");
        let notes = rules(&findings, Severity::Notice);
        assert!(
            notes.contains(&("dept1-lost".to_string(), NOTE_UNMANAGED.to_string())),
            "{notes:?}"
        );
        assert!(
            !notes
                .iter()
                .any(|(c, r)| c == "dept1-old" && r == NOTE_UNMANAGED)
        );
        let unmanaged = findings.iter().find(|f| f.rule == NOTE_UNMANAGED).unwrap();
        assert_eq!(unmanaged.file, PathBuf::from("http://cs"));
        // Allowed: a notice.
        let findings = check_with(
            &department(),
            &PluginCatalog::default(),
            &files,
            &baseline,
            true,
        );
        assert_eq!(
            rules(&findings, Severity::Error),
            [("dept1-new".to_string(), "quota.connectors".to_string())]
        );
        assert!(
            rules(&findings, Severity::Notice)
                .contains(&("dept1-new".to_string(), RULE_RENAME.to_string()))
        );
    }

    #[test]
    fn against_a_live_department_all_environments_are_one_and_mixing_them_is_an_error() {
        let baseline = live(&[]);
        let files = [
            file("dev-a.json", Some("dev"), &source("dept1-a", 3)),
            file("prod-b.json", Some("prod"), &source("dept1-b", 3)),
        ];
        let findings = check(&department(), &PluginCatalog::default(), &files, &baseline);
        // One group: 3 + 3 tasks > 5.
        assert_eq!(
            rules(&findings, Severity::Error),
            [
                ("dept1-b".to_string(), "quota.tasks-total".to_string()),
                ("dept1-b".to_string(), RULE_ENVIRONMENTS.to_string()),
            ]
        );
        // Offline, environments are separate.
        let findings = check(
            &department(),
            &PluginCatalog::default(),
            &files,
            &Baseline::default(),
        );
        assert!(rules(&findings, Severity::Error).is_empty());
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

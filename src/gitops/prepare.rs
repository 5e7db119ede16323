//! From files on disk to a [`Plan`]: the files are read as `validate` reads them, `${env:...}`
//! values are resolved (a variable that is not set is an error), the guardrails check what will
//! be sent together with what runs, and the documents become [`Desired`] connectors for the pure
//! [`plan::plan`]. Shared by the `plan`/`apply` commands and the continuous mode of `run`.
//!
//! One rule is stricter than `validate`: a secret key whose committed value is a literal (not a
//! `${provider:...}` reference) is refused (`gitops.literal-secret`): files applied from Git keep
//! their secrets out of Git, as `${env:NAME}` filled in by the CI job or a reference to a secret
//! store that Connect's config providers resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::check::{self, Baseline, Finding, LoadedFile, Severity};
use super::plan::{self, DEFAULT_STATE, Desired, Plan, PlanOptions};
use super::secrets;
use super::{Loaded, report};
use crate::model::Department;
use crate::policy::{self, PluginCatalog};

/// Rule id: a `${env:NAME}` whose variable is not set.
pub const RULE_ENV_UNSET: &str = "gitops.env-unset";
/// Rule id: a literal secret in a committed file.
pub const RULE_LITERAL_SECRET: &str = "gitops.literal-secret";

/// A plan with what was found on the way.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The plan (empty when `findings` has errors).
    pub plan: Plan,
    /// Findings of the files (errors stop the plan), secrets scrubbed.
    pub findings: Vec<Finding>,
    /// Resolved secret values, for scrubbing any later output (never printed).
    pub secrets: BTreeSet<String>,
}

impl Prepared {
    /// Errors in the files.
    pub fn file_errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Whether anything stops `apply`: file errors or plan refusals.
    pub fn blocked(&self) -> bool {
        self.file_errors() > 0 || !self.plan.errors.is_empty()
    }

    /// `text` with every resolved secret masked.
    pub fn scrub(&self, text: &str) -> String {
        secrets::scrub(text, &self.secrets)
    }
}

fn finding(file: &LoadedFile, rule: &str, key: &str, message: String, hint: String) -> Finding {
    let doc = file.content.as_ref().ok();
    let json_path = doc
        .and_then(|d| d.origin.get(key).cloned())
        .unwrap_or_else(|| "$".into());
    let position = file.positions.get(&json_path);
    Finding {
        severity: Severity::Error,
        file: file.path.clone(),
        line: position.map(|p| p.line),
        column: position.map(|p| p.column),
        json_path,
        connector: doc.map(|d| d.name.clone()),
        environment: file.environment.clone(),
        rule: rule.into(),
        key: Some(key.into()),
        message,
        hint,
    }
}

/// Plans the files of `loaded` against `baseline`; `lookup` reads `${env:NAME}` variables.
pub fn prepare(
    department: &Department,
    catalog: &PluginCatalog,
    loaded: &Loaded,
    baseline: &Baseline,
    options: &PlanOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Prepared {
    let mut findings: Vec<Finding> = loaded
        .unreadable
        .iter()
        .chain(loaded.problems.iter())
        .cloned()
        .collect();
    let mut resolved_secrets = BTreeSet::new();
    let mut resolved_files = Vec::new();
    let mut from_env = BTreeMap::new();
    for file in &loaded.files {
        let mut resolved = file.clone();
        if let Ok(doc) = &file.content {
            for (key, value) in &doc.config {
                if let Some(variable) = secrets::env_variable(value) {
                    from_env.insert((file.path.clone(), key.clone()), variable.to_string());
                }
            }
            let secret_key =
                |k: &str| doc.sensitive.contains(k) || department.secrets.is_sensitive(k);
            for (key, value) in &doc.config {
                if secret_key(key) && policy::secrets::is_literal(value) {
                    findings.push(finding(
                        file,
                        RULE_LITERAL_SECRET,
                        key,
                        format!("{key} holds a literal secret in a file kept in Git"),
                        "write \"${env:NAME}\" and give the CI job the variable NAME (its value \
                         is read at apply time and never printed), or a reference to a secret \
                         store such as ${vault:...} or ${file:...}; then rotate the secret, \
                         since it is in the Git history"
                            .to_string(),
                    ));
                }
            }
            match secrets::resolve(&doc.config, lookup, &mut resolved_secrets) {
                Ok(config) => {
                    if let Ok(d) = &mut resolved.content {
                        d.config = config;
                    }
                }
                Err(unset) => {
                    for u in unset {
                        findings.push(finding(
                            file,
                            RULE_ENV_UNSET,
                            &u.key,
                            format!(
                                "{} is ${{env:{}}} but the variable {} is not set",
                                u.key, u.variable, u.variable
                            ),
                            format!(
                                "set {} in the environment of plan/apply (in CI, from the \
                                 repository's secrets)",
                                u.variable
                            ),
                        ));
                    }
                }
            }
        }
        let file = resolved;
        resolved_files.push(file);
    }
    // Renames are the plan's business (refused or destroy-create), so notices here.
    findings.extend(check::check_with(
        department,
        catalog,
        &resolved_files,
        baseline,
        true,
    ));
    explain_env_secrets(&mut findings, &from_env);
    for f in &mut findings {
        f.message = secrets::scrub(&f.message, &resolved_secrets);
        f.hint = secrets::scrub(&f.hint, &resolved_secrets);
    }
    let errors = findings.iter().any(|f| f.severity == Severity::Error);
    let plan = if errors {
        Plan::default()
    } else {
        let desired: Vec<Desired> = resolved_files
            .iter()
            .filter_map(|f| f.content.as_ref().ok().map(|d| (f, d)))
            .map(|(f, d)| Desired {
                name: d.name.clone(),
                file: f.path.clone(),
                secret_keys: d
                    .config
                    .keys()
                    .filter(|k| d.sensitive.contains(*k) || department.secrets.is_sensitive(k))
                    .cloned()
                    .collect(),
                config: d.config.clone(),
                state: d.state.clone().unwrap_or_else(|| DEFAULT_STATE.into()),
            })
            .collect();
        plan::plan(&desired, baseline, catalog, options)
    };
    Prepared {
        plan,
        findings,
        secrets: resolved_secrets,
    }
}

/// The notes on secrets the guardrails will externalize, for values that are `${env:NAME}` in
/// the files (`from_env`: file and key to the variable): said as what happens to them.
pub fn explain_env_secrets(
    findings: &mut [Finding],
    from_env: &BTreeMap<(PathBuf, String), String>,
) {
    for f in findings {
        let variable = f
            .key
            .as_ref()
            .and_then(|k| from_env.get(&(f.file.clone(), k.clone())));
        if let (check::NOTE_SECRETS, Some(variable)) = (f.rule.as_str(), variable) {
            f.message = format!(
                "{} is ${{env:{variable}}}: apply sends the value of {variable}, which the \
                 supervisor keeps in a secret file, giving Connect a reference",
                f.key.as_deref().unwrap_or_default()
            );
            f.hint = "keep the secret in the CI's secrets as the variable".into();
        }
    }
}

/// The findings of a prepared plan for people (only when there are any), without `validate`'s
/// totals line.
pub fn render_findings(prepared: &Prepared) -> String {
    if prepared.findings.is_empty() {
        return String::new();
    }
    let text = report::render(
        &prepared.findings,
        &report::Summary::default(),
        report::OutputFormat::Text,
    );
    let body = text
        .trim_end()
        .rsplit_once('\n')
        .map(|(body, _)| format!("{body}\n"))
        .unwrap_or_default();
    prepared.scrub(&body)
}

pub use crate::model::default_owner;

#[cfg(test)]
mod tests {
    use super::*;

    fn department() -> Department {
        crate::config::testing::department()
            .managed_ids("e", "k")
            .bootstrap_servers("b:9092")
            .build()
    }

    fn folder(files: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let loaded = super::super::load(&[dir.path().to_path_buf()], None);
        (dir, loaded)
    }

    fn options() -> PlanOptions {
        PlanOptions {
            owner: "o".into(),
            ..PlanOptions::default()
        }
    }

    #[test]
    fn env_secrets_resolve_literal_ones_are_refused_and_unset_ones_named() {
        let good = r#"{"name": "dept1-a", "config_nonsensitive": {"name": "dept1-a", "connector.class": "FileStreamSource", "topic": "dept1-t"}, "config_sensitive": {"db.password": "${env:DB_PW}"}}"#;
        let (_dir, loaded) = folder(&[("a.json", good)]);
        let lookup = |n: &str| (n == "DB_PW").then(|| "resolved-secret-value".to_string());
        let p = prepare(
            &department(),
            &PluginCatalog::default(),
            &loaded,
            &Baseline::default(),
            &options(),
            &lookup,
        );
        assert_eq!(p.file_errors(), 0, "{:?}", p.findings);
        assert_eq!(p.plan.steps.len(), 1);
        assert_eq!(
            p.plan.steps[0].config.0["db.password"],
            "resolved-secret-value"
        );
        assert!(p.secrets.contains("resolved-secret-value"));
        let shown = format!("{}{}", render_findings(&p), plan::render_json(&p.plan));
        assert!(!shown.contains("resolved-secret-value"), "{shown}");

        let p = prepare(
            &department(),
            &PluginCatalog::default(),
            &loaded,
            &Baseline::default(),
            &options(),
            &|_| None,
        );
        assert_eq!(p.findings[0].rule, RULE_ENV_UNSET, "{:?}", p.findings);
        assert!(p.findings[0].message.contains("DB_PW"));
        assert!(p.blocked() && p.plan.steps.is_empty());

        let literal = r#"{"name": "dept1-a", "config": {"connector.class": "FileStreamSource", "topic": "dept1-t", "connection.password": "hunter2hunter2"}}"#;
        let (_dir, loaded) = folder(&[("a.json", literal)]);
        let p = prepare(
            &department(),
            &PluginCatalog::default(),
            &loaded,
            &Baseline::default(),
            &options(),
            &|_| None,
        );
        let rules: Vec<&str> = p.findings.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules.contains(&RULE_LITERAL_SECRET), "{rules:?}");
        assert_eq!(p.findings[0].json_path, "$.config[\"connection.password\"]");
        assert!(p.blocked());
    }

    #[test]
    fn the_default_owner_is_the_folder_as_given() {
        assert_eq!(
            default_owner(&[PathBuf::from("./connectors/prod/")]),
            "connectors/prod"
        );
        assert_eq!(
            default_owner(&[PathBuf::from("a"), PathBuf::from("b")]),
            "a+b"
        );
    }
}

//! GitOps: connector definition files in Git, checked in CI by `connect-supervisor validate`
//! against the same rules the API enforces.
//!
//! This module finds and reads the files (folders are walked recursively, hidden entries
//! skipped, `*.json` files are connector definitions), works out each file's environment in the
//! per-environment layout (`<env>-<connector>.json` beside an `<env>-vars.yaml`), and hands the
//! parsed documents to the pure [`check`]; [`document`] parses one file, [`report`] renders the
//! findings. [`against`] reads what runs now in the department (`--against URL`) into the
//! [`Baseline`] the files are checked with.
//!
//! `plan` and `apply` ([`command`]) compare the files with what runs and change it through the
//! managed API only: [`prepare`] resolves `${env:...}` secrets and runs the guardrails, [`plan`]
//! is the pure comparison and its rendering, [`apply`] carries a plan out, [`client`] is the only
//! HTTP client of changes, [`secrets`] keeps resolved values out of every output. [`drift`] is
//! the same on a timer inside `run`. Only [`against`] and [`client`] talk to the network.

pub mod against;
pub mod apply;
pub mod check;
pub mod client;
pub mod command;
pub mod document;
pub mod drift;
pub mod lines;
pub mod plan;
pub mod prepare;
pub mod report;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use check::{Baseline, Finding, LoadedFile, Severity};
pub use report::{OutputFormat, Summary};

use crate::config::{self, ConfigError};
use crate::connect::PluginInfo;
use crate::policy::PluginCatalog;
use document::{DocProblem, Vars};

/// Exit code of `validate` when every file passes.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code of `validate` when some file breaks a rule.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit code of `validate` when some input could not be read (files, department, plugins).
pub const EXIT_UNREADABLE: u8 = 2;
/// Exit code of `plan` with nothing to change (and of a successful `apply`).
pub const EXIT_PLAN_CLEAN: u8 = 0;
/// Exit code of `plan`, `apply` and the continuous mode on errors (files, refusals, failures).
pub const EXIT_PLAN_ERRORS: u8 = 1;
/// Exit code of `plan` with changes pending (Terraform's `-detailed-exitcode`).
pub const EXIT_PLAN_CHANGES: u8 = 2;
/// Extension of connector definition files found in folders.
pub const CONNECTOR_EXTENSION: &str = "json";
/// Suffixes of the per-environment variable files (`<env>-vars.yaml`).
pub const VARS_SUFFIXES: &[&str] = &["-vars.yaml", "-vars.yml"];

/// Why `validate` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// The department file is unreadable or invalid.
    #[error(transparent)]
    Department(#[from] ConfigError),
    /// The plugin list could not be read.
    #[error("cannot read the plugin list {path}: {source}")]
    PluginsRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// What runs in the department could not be read (`--against`).
    #[error(transparent)]
    Against(#[from] against::AgainstError),
    /// The plugin list is not the JSON of `GET /connector-plugins`.
    #[error("the plugin list {path} is not the JSON of GET /connector-plugins: {message}")]
    PluginsFormat {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl GitopsError {
    /// Short, bounded code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Department(e) => e.code(),
            Self::PluginsRead { .. } => "plugins_unreadable",
            Self::PluginsFormat { .. } => "plugins_format",
            Self::Against(e) => e.code(),
        }
    }
}

/// What `validate` was asked to do.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Files and folders of connector definitions.
    pub paths: Vec<PathBuf>,
    /// The department file whose rules apply.
    pub department: PathBuf,
    /// Only files of this environment (and files of no environment).
    pub environment: Option<String>,
    /// The workers' plugin list (`GET /connector-plugins` saved as JSON), if any.
    pub plugins: Option<PathBuf>,
    /// How to print.
    pub format: OutputFormat,
    /// What runs in the department now (empty offline).
    pub baseline: Baseline,
    /// Report renames of running connectors as notices, not errors (`--allow-renames`).
    pub allow_renames: bool,
}

/// What `validate` found.
#[derive(Debug, Clone)]
pub struct ValidateOutcome {
    /// Every finding, in file order.
    pub findings: Vec<Finding>,
    /// Totals.
    pub summary: Summary,
    /// The rendered report (stdout).
    pub output: String,
    /// [`EXIT_CLEAN`], [`EXIT_VIOLATIONS`] or [`EXIT_UNREADABLE`].
    pub exit_code: u8,
}

/// Runs `validate`.
pub fn validate(options: &ValidateOptions) -> Result<ValidateOutcome, GitopsError> {
    let department = config::load(&options.department)?;
    let catalog = match &options.plugins {
        None => PluginCatalog::default(),
        Some(path) => read_catalog(path)?,
    };
    let Loaded {
        files: mut loaded,
        unreadable,
        problems,
    } = load(&options.paths, options.environment.as_deref());
    // `${env:NAME}` is resolved by `apply` and sent as the value itself: check it as that.
    let mut from_env: BTreeMap<(PathBuf, String), String> = BTreeMap::new();
    for file in &mut loaded {
        if let Ok(doc) = &file.content {
            for (key, value) in &doc.config {
                if let Some(variable) = secrets::env_variable(value) {
                    from_env.insert((file.path.clone(), key.clone()), variable.to_string());
                }
            }
        }
        if let Ok(doc) = &mut file.content
            && let Ok(config) = secrets::resolve(
                &doc.config,
                &|name| Some(secrets::placeholder(name)),
                &mut BTreeSet::new(),
            )
        {
            doc.config = config;
        }
    }
    let mut findings = problems;
    findings.extend(check::check_with(
        &department,
        &catalog,
        &loaded,
        &options.baseline,
        options.allow_renames,
    ));
    prepare::explain_env_secrets(&mut findings, &from_env);
    let summary = Summary {
        files: loaded.len(),
        connectors: loaded.iter().filter(|f| f.content.is_ok()).count(),
        errors: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        notices: findings
            .iter()
            .filter(|f| f.severity == Severity::Notice)
            .count(),
        unreadable: unreadable.len(),
    };
    let mut all = unreadable;
    all.extend(findings);
    let exit_code = if summary.unreadable > 0 {
        EXIT_UNREADABLE
    } else if summary.errors > 0 {
        EXIT_VIOLATIONS
    } else {
        EXIT_CLEAN
    };
    Ok(ValidateOutcome {
        output: report::render(&all, &summary, options.format),
        findings: all,
        summary,
        exit_code,
    })
}

/// Connector files read from disk, before any rule is checked.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The files that could be read (parsed or not), in path order.
    pub files: Vec<LoadedFile>,
    /// Files and folders that could not be read.
    pub unreadable: Vec<Finding>,
    /// Problems of the vars files.
    pub problems: Vec<Finding>,
}

/// Finds and parses the connector files under `paths` (only `environment`'s, and files of no
/// environment, when given).
pub fn load(paths: &[PathBuf], environment: Option<&str>) -> Loaded {
    let mut unreadable = Vec::new();
    let files = discover(paths, &mut unreadable);
    let mut environments = Environments::default();
    let mut loaded = Vec::new();
    for path in files {
        let file_env = environments.of(&path, &mut unreadable);
        if let (Some(wanted), Some(env)) = (environment, &file_env.name)
            && wanted != env
        {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                unreadable.push(unreadable_finding(
                    &path,
                    format!("cannot read the file: {e}"),
                ));
                continue;
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let default_name = match &file_env.name {
            Some(env) => stem
                .strip_prefix(&format!("{env}-"))
                .unwrap_or(&stem)
                .to_string(),
            None => stem,
        };
        loaded.push(LoadedFile {
            positions: lines::positions(&text),
            content: document::parse(&text, &default_name, file_env.vars.as_ref()),
            environment: file_env.name,
            path,
        });
    }
    Loaded {
        files: loaded,
        unreadable,
        problems: environments.problems,
    }
}

/// Reads what runs now in the department of the department file `department` from the
/// supervisor `against` names (for `validate --against`).
pub async fn fetch_baseline(
    department: &Path,
    against: &against::Against,
) -> Result<Baseline, GitopsError> {
    let department = config::load(department)?;
    Ok(against::fetch(&department, against).await?)
}

/// Reads a saved `GET /connector-plugins` answer.
pub fn read_catalog(path: &Path) -> Result<PluginCatalog, GitopsError> {
    let text = std::fs::read_to_string(path).map_err(|source| GitopsError::PluginsRead {
        path: path.to_path_buf(),
        source,
    })?;
    let plugins: Vec<PluginInfo> =
        serde_json::from_str(&text).map_err(|e| GitopsError::PluginsFormat {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(PluginCatalog::from_plugins(&plugins))
}

fn unreadable_finding(path: &Path, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        file: path.to_path_buf(),
        line: None,
        column: None,
        json_path: "$".into(),
        connector: None,
        environment: None,
        rule: check::RULE_UNREADABLE.into(),
        key: None,
        message,
        hint: "check the path and its permissions".into(),
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The connector files under `paths`: files as given, folders walked for `*.json`.
fn discover(paths: &[PathBuf], unreadable: &mut Vec<Finding>) -> Vec<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            stack.push(path.clone());
        } else if path.is_file() {
            out.insert(path.clone());
        } else {
            unreadable.push(unreadable_finding(
                path,
                "does not exist (or is neither a file nor a folder)".into(),
            ));
        }
    }
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                unreadable.push(unreadable_finding(
                    &dir,
                    format!("cannot read the folder: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if is_hidden(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == CONNECTOR_EXTENSION) {
                out.insert(path);
            }
        }
    }
    out.into_iter().collect()
}

/// The environment of one file.
#[derive(Debug, Clone, Default)]
struct Environment {
    name: Option<String>,
    vars: Option<Vars>,
}

/// Vars files per folder, read once; their problems become findings once.
#[derive(Default)]
struct Environments {
    folders: BTreeMap<PathBuf, BTreeMap<String, Vars>>,
    problems: Vec<Finding>,
}

impl Environments {
    fn folder(&mut self, dir: &Path, unreadable: &mut Vec<Finding>) -> &BTreeMap<String, Vars> {
        if !self.folders.contains_key(dir) {
            let mut envs = BTreeMap::new();
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            for path in files {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some(env) = VARS_SUFFIXES
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|env| !env.is_empty())
                else {
                    continue;
                };
                let vars = match std::fs::read_to_string(&path) {
                    Err(e) => {
                        unreadable.push(unreadable_finding(
                            &path,
                            format!("cannot read the vars file: {e}"),
                        ));
                        Vars::for_env(env)
                    }
                    Ok(text) => match Vars::parse(&text, env) {
                        Ok(vars) => vars,
                        Err(problems) => {
                            self.problems
                                .extend(problems.iter().map(|p| vars_finding(&path, env, p)));
                            Vars::for_env(env)
                        }
                    },
                };
                envs.insert(env.to_string(), vars);
            }
            self.folders.insert(dir.to_path_buf(), envs);
        }
        &self.folders[dir]
    }

    fn of(&mut self, file: &Path, unreadable: &mut Vec<Finding>) -> Environment {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let envs = self.folder(&dir, unreadable);
        // The longest environment whose `<env>-` starts the file name (`prod-eu-x` beats `prod-`).
        envs.iter()
            .filter(|(env, _)| name.starts_with(&format!("{env}-")))
            .max_by_key(|(env, _)| env.len())
            .map(|(env, vars)| Environment {
                name: Some(env.clone()),
                vars: Some(vars.clone()),
            })
            .unwrap_or_default()
    }
}

fn vars_finding(path: &Path, env: &str, p: &DocProblem) -> Finding {
    Finding {
        severity: Severity::Error,
        file: path.to_path_buf(),
        line: p.line,
        column: p.column,
        json_path: p.json_path.clone(),
        connector: None,
        environment: Some(env.to_string()),
        rule: p.rule.to_string(),
        key: None,
        message: p.message.clone(),
        hint: p.hint.clone(),
    }
}

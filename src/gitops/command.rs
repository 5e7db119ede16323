//! `plan` and `apply` as library calls (the binary only parses arguments): read the department
//! file and the connector files, read what runs through the managed API, plan, and for `apply`
//! carry the plan out. Every output goes through the scrubber of resolved secrets.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::against::Against;
use super::apply::{self, ApplyReport};
use super::client::ManagedClient;
use super::plan::{self, PlanOptions};
use super::prepare::{self, Prepared};
use super::{
    EXIT_PLAN_CHANGES, EXIT_PLAN_CLEAN, EXIT_PLAN_ERRORS, GitopsError, load, read_catalog,
};
use crate::config;
use crate::policy::PluginCatalog;

/// Output format of `plan` and `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// For people.
    Text,
    /// One JSON document.
    Json,
    /// A Markdown pull-request comment.
    Markdown,
}

/// What `plan`/`apply` were asked to do.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Files and folders of connector definitions.
    pub paths: Vec<PathBuf>,
    /// The department file whose rules apply.
    pub department: PathBuf,
    /// Only this environment's files.
    pub environment: Option<String>,
    /// The workers' plugin list, if any.
    pub plugins: Option<PathBuf>,
    /// Where and how to reach the managed API.
    pub against: Against,
    /// The plan's options (owner, prune, renames, adopt, digest key).
    pub options: PlanOptions,
    /// The Git commit recorded with each change.
    pub commit: Option<String>,
    /// How to print.
    pub format: PlanFormat,
    /// Folder of the state files of renames that carry offsets ([`default_state_dir`]).
    pub state_dir: PathBuf,
}

/// Name of the folder of rename state files, next to the connector folder.
pub const STATE_DIR_NAME: &str = ".connect-supervisor";

/// Where rename state files go without `--state-dir`: a [`STATE_DIR_NAME`] folder next to the
/// first connector folder (beside the folder of a file given alone). Hidden folders are never
/// read as connector files, so it may also sit inside a scanned tree.
pub fn default_state_dir(paths: &[PathBuf]) -> PathBuf {
    let Some(first) = paths.first() else {
        return PathBuf::from(STATE_DIR_NAME);
    };
    let folder = if first.is_file() {
        first.parent().unwrap_or(Path::new(""))
    } else {
        first.as_path()
    };
    folder
        .parent()
        .unwrap_or(Path::new(""))
        .join(STATE_DIR_NAME)
}

/// The result: what to print and the exit code.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    /// stdout.
    pub output: String,
    /// 0, 1 or 2 (see [`super::EXIT_PLAN_CHANGES`]).
    pub exit_code: u8,
    /// The plan (for callers that look further, e.g. the bench).
    pub prepared: Prepared,
    /// What apply did (empty for `plan`).
    pub report: ApplyReport,
}

async fn prepare_request(request: &PlanRequest) -> Result<(Prepared, ManagedClient), GitopsError> {
    let department = config::load(&request.department)?;
    let catalog = match &request.plugins {
        None => PluginCatalog::default(),
        Some(path) => read_catalog(path)?,
    };
    let loaded = load(&request.paths, request.environment.as_deref());
    let client = ManagedClient::new(&request.against, &department, request.commit.clone())?;
    let baseline = client.list().await?;
    let prepared = prepare::prepare(
        &department,
        &catalog,
        &loaded,
        &baseline,
        &request.options,
        &|name| std::env::var(name).ok(),
    );
    Ok((prepared, client))
}

fn render(request: &PlanRequest, prepared: &Prepared, report: Option<&ApplyReport>) -> String {
    let target = &request.against.url;
    let text = match request.format {
        PlanFormat::Text => {
            let mut out = prepare::render_findings(prepared);
            out.push_str(&plan::render_text(&prepared.plan));
            if let Some(report) = report {
                out.push_str(&apply::render_text(report));
            }
            out
        }
        PlanFormat::Json => {
            let mut doc: serde_json::Value =
                serde_json::from_str(&plan::render_json(&prepared.plan)).unwrap_or(json!({}));
            doc["findings"] = json!(prepared.findings);
            if let Some(report) = report {
                doc["apply"] = json!(report);
            }
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            text
        }
        PlanFormat::Markdown => {
            let mut out = plan::render_markdown(&prepared.plan, target);
            let errors: Vec<&super::Finding> = prepared
                .findings
                .iter()
                .filter(|f| f.severity == super::Severity::Error)
                .collect();
            if !errors.is_empty() {
                out.push_str("**Errors in the files**\n\n");
                for f in errors {
                    out.push_str(&format!(
                        "- `{}` {}{}: {}\n",
                        f.rule,
                        f.file.display(),
                        f.line.map(|l| format!(":{l}")).unwrap_or_default(),
                        f.message.replace('|', "\\|")
                    ));
                }
                out.push('\n');
            }
            if let Some(report) = report {
                out.push_str("```\n");
                out.push_str(&apply::render_text(report));
                out.push_str("```\n");
            }
            out
        }
    };
    prepared.scrub(&text)
}

/// `plan`: exit 0 with nothing to change, 2 with changes pending, 1 on errors.
pub async fn plan(request: &PlanRequest) -> Result<CommandOutcome, GitopsError> {
    let (prepared, _) = prepare_request(request).await?;
    let exit_code = if prepared.blocked() {
        EXIT_PLAN_ERRORS
    } else if prepared.plan.steps.is_empty() {
        EXIT_PLAN_CLEAN
    } else {
        EXIT_PLAN_CHANGES
    };
    Ok(CommandOutcome {
        output: render(request, &prepared, None),
        exit_code,
        prepared,
        report: ApplyReport::default(),
    })
}

/// `apply`: plans, then (without errors) runs the steps; exit 0 when everything was done, 1 on
/// errors (nothing done) or at the first failure (what was done and not is printed).
pub async fn apply(request: &PlanRequest) -> Result<CommandOutcome, GitopsError> {
    let (prepared, client) = prepare_request(request).await?;
    if prepared.blocked() {
        let mut output = render(request, &prepared, None);
        if request.format == PlanFormat::Text {
            output.push_str("Apply: nothing done (fix the errors above first)\n");
        }
        return Ok(CommandOutcome {
            output,
            exit_code: EXIT_PLAN_ERRORS,
            prepared,
            report: ApplyReport::default(),
        });
    }
    let renames = apply::Renames {
        against: request.against.clone(),
        state_dir: request.state_dir.clone(),
    };
    let report = apply::apply(&prepared.plan, &client, Some(&renames)).await;
    let exit_code = if report.failed() {
        EXIT_PLAN_ERRORS
    } else {
        EXIT_PLAN_CLEAN
    };
    Ok(CommandOutcome {
        output: render(request, &prepared, Some(&report)),
        exit_code,
        prepared,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rename_state_folder_sits_next_to_the_connector_folder() {
        let dir = std::env::temp_dir().join(format!("cs-state-dir-{}", std::process::id()));
        let folder = dir.join("connectors");
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("a.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(
            default_state_dir(std::slice::from_ref(&folder)),
            dir.join(STATE_DIR_NAME)
        );
        assert_eq!(default_state_dir(&[file]), dir.join(STATE_DIR_NAME));
        assert_eq!(
            default_state_dir(&[PathBuf::from("connectors/prod")]),
            PathBuf::from("connectors").join(STATE_DIR_NAME)
        );
        assert_eq!(
            default_state_dir(&[PathBuf::from("connectors")]),
            PathBuf::from(STATE_DIR_NAME)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

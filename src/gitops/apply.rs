//! `apply`: runs a [`Plan`]'s steps in their order through the managed API and stops at the
//! first failure, saying what was done and what was not. Idempotent because `apply` always
//! plans against what runs right before it acts: a second run finds nothing to do.
//!
//! A rename with [`RenameKind::CarryOffsets`] goes through the migration's
//! [`cutover::rename`] (stop, read offsets, create at them, verify, delete), whose state file
//! in [`Renames::state_dir`] lets `migrate rename` resume it; then the file's config (with the
//! owner label and the secrets' real values) is put on the new name.

use std::path::PathBuf;

use serde::Serialize;

use super::against::Against;
use super::client::ManagedClient;
use super::plan::{Action, Plan, RenameKind, Step};
use crate::migrate::client::Endpoint;
use crate::migrate::cutover::{self, RunOptions};

/// What a rename that carries offsets needs besides the managed client.
#[derive(Debug, Clone)]
pub struct Renames {
    /// The managed API (as given to `--against`) and its credentials.
    pub against: Against,
    /// Folder of the cut-over state files (`<old>.cutover.json`).
    pub state_dir: PathBuf,
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// What the step does.
    pub action: Action,
    /// The connector.
    pub connector: String,
    /// The old name of a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `done`, `failed` or `not_run`.
    pub result: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every step's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// In the plan's order.
    pub steps: Vec<StepResult>,
}

impl ApplyReport {
    /// Whether a step failed.
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.result == RESULT_FAILED)
    }

    /// Steps done.
    pub fn done(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.result == RESULT_DONE)
            .count()
    }
}

/// Result of a step that was carried out.
pub const RESULT_DONE: &str = "done";
/// Result of the step that failed.
pub const RESULT_FAILED: &str = "failed";
/// Result of the steps after a failure.
pub const RESULT_NOT_RUN: &str = "not_run";

async fn carry_rename(
    client: &ManagedClient,
    renames: Option<&Renames>,
    step: &Step,
    old: &str,
) -> Result<(), String> {
    let name = step.connector.as_str();
    let Some(renames) = renames else {
        return Err(format!(
            "renaming {old} to {name} with its offsets is not done here (only by apply \
             --allow-renames)"
        ));
    };
    let dir = &renames.state_dir;
    let resume = format!(
        "its state file is in {}: fix the cause, resume with `connect-supervisor migrate rename \
         {old} {name} --source {} --out {}`, then run apply again to put the file's config",
        dir.display(),
        renames.against.url,
        dir.display()
    );
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "{}: cannot create the folder of the rename's state file ({e}); nothing was \
                 renamed (pass another --state-dir)",
            dir.display()
        )
    })?;
    let end = Endpoint::resolve(&renames.against.url, renames.against.credentials.clone())
        .await
        .map_err(|e| format!("{e}; nothing was renamed"))?;
    let options = RunOptions {
        // A folder's connector may see no new data while apply waits: running at the carried
        // offsets is enough.
        accept_idle: true,
        // The file's resolved values stand in for the secrets the API shows masked; held in
        // memory only, never written to the state file.
        secret_values: step.config.0.clone(),
        ..RunOptions::default()
    };
    let state = cutover::rename(&end, old, name, dir, &options)
        .await
        .map_err(|e| format!("renaming {old} to {name} failed: {e}; {resume}"))?;
    client.put_config(name, &step.config.0).await.map_err(|x| {
        format!(
            "{old} was renamed to {name} with {} offset(s), but putting the file's config failed \
             (run apply again): {x}",
            state.carried_offsets.len()
        )
    })?;
    Ok(())
}

async fn run_step(
    client: &ManagedClient,
    renames: Option<&Renames>,
    step: &Step,
) -> Result<(), String> {
    let name = step.connector.as_str();
    let e = |e: super::against::AgainstError| e.to_string();
    match step.action {
        Action::Create => {
            client.create(name, &step.config.0).await.map_err(e)?;
            if step.then_pause {
                client
                    .pause(name)
                    .await
                    .map_err(|x| format!("created, but the pause failed: {x}"))?;
            }
        }
        Action::Update => client.put_config(name, &step.config.0).await.map_err(e)?,
        Action::Pause => client.pause(name).await.map_err(e)?,
        Action::Resume => client.resume(name).await.map_err(e)?,
        Action::Rename if step.rename == Some(RenameKind::CarryOffsets) => {
            let old = step.from.as_deref().unwrap_or_default();
            carry_rename(client, renames, step, old).await?;
            if step.then_pause {
                client
                    .pause(name)
                    .await
                    .map_err(|x| format!("renamed, but the pause failed: {x}"))?;
            }
        }
        Action::Rename => {
            let old = step.from.as_deref().unwrap_or_default();
            client
                .delete(old)
                .await
                .map_err(|x| format!("deleting {old} failed: {x}"))?;
            client.create(name, &step.config.0).await.map_err(|x| {
                format!("{old} was deleted, but creating {name} failed (re-run apply): {x}")
            })?;
            if step.then_pause {
                client
                    .pause(name)
                    .await
                    .map_err(|x| format!("created, but the pause failed: {x}"))?;
            }
        }
        Action::Delete => client.delete(name).await.map_err(e)?,
    }
    Ok(())
}

/// Runs `plan`'s steps in order; the first failure stops the rest. `renames` is needed by
/// renames that carry offsets (`None` in the drift mode, which never plans one).
pub async fn apply(plan: &Plan, client: &ManagedClient, renames: Option<&Renames>) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut failed = false;
    for step in &plan.steps {
        let (result, message) = if failed {
            (RESULT_NOT_RUN, None)
        } else {
            match run_step(client, renames, step).await {
                Ok(()) => (RESULT_DONE, None),
                Err(m) => {
                    failed = true;
                    (RESULT_FAILED, Some(m))
                }
            }
        };
        report.steps.push(StepResult {
            action: step.action,
            connector: step.connector.clone(),
            from: step.from.clone(),
            result,
            message,
        });
    }
    report
}

/// The report for people.
pub fn render_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    for s in &report.steps {
        let what = match &s.from {
            Some(from) => format!("{} {from} -> {}", s.action.code(), s.connector),
            None => format!("{} {}", s.action.code(), s.connector),
        };
        match s.result {
            RESULT_DONE => out.push_str(&format!("done     {what}\n")),
            RESULT_FAILED => out.push_str(&format!(
                "FAILED   {what}: {}\n",
                s.message.as_deref().unwrap_or_default()
            )),
            _ => out.push_str(&format!("not run  {what}\n")),
        }
    }
    let not_run = report
        .steps
        .iter()
        .filter(|s| s.result == RESULT_NOT_RUN)
        .count();
    out.push_str(&format!(
        "Apply: {} done{}{}\n",
        report.done(),
        if report.failed() { ", 1 failed" } else { "" },
        if not_run > 0 {
            format!(", {not_run} not run (fix the failure and run apply again)")
        } else {
            String::new()
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_was_done_what_failed_and_what_was_not_run() {
        let result = |action, connector: &str, result, message: Option<&str>| StepResult {
            action,
            connector: connector.into(),
            from: None,
            result,
            message: message.map(str::to_string),
        };
        let report = ApplyReport {
            steps: vec![
                result(Action::Create, "a", RESULT_DONE, None),
                result(Action::Update, "b", RESULT_FAILED, Some("refused")),
                result(Action::Delete, "c", RESULT_NOT_RUN, None),
            ],
        };
        assert!(report.failed());
        assert_eq!(
            render_text(&report),
            "done     create a\nFAILED   update b: refused\nnot run  delete c\n\
             Apply: 1 done, 1 failed, 1 not run (fix the failure and run apply again)\n"
        );
    }
}

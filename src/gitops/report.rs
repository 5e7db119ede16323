//! Renders `validate` findings for people (text), machines (JSON) and GitHub Actions (workflow
//! annotations: `::error file=...,line=...::message`). Pure.

use serde::Serialize;
use serde_json::json;

use super::check::{Finding, Severity};

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One block per finding, for people.
    Text,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Connector files read.
    pub files: usize,
    /// Connectors checked (files that were connector definitions).
    pub connectors: usize,
    /// Errors found.
    pub errors: usize,
    /// Notices.
    pub notices: usize,
    /// Files or folders that could not be read.
    pub unreadable: usize,
}

impl Summary {
    fn line(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut text = format!(
            "validate: {}, {}, {}, {}",
            plural(self.files, "file"),
            plural(self.connectors, "connector"),
            plural(self.errors, "error"),
            plural(self.notices, "notice"),
        );
        if self.unreadable > 0 {
            text.push_str(&format!(", {} unreadable", self.unreadable));
        }
        text
    }
}

fn location(f: &Finding) -> String {
    let mut at = f.file.display().to_string();
    if let Some(line) = f.line {
        at.push_str(&format!(":{line}"));
        if let Some(column) = f.column {
            at.push_str(&format!(":{column}"));
        }
    }
    at
}

/// Renders the findings and the summary.
pub fn render(findings: &[Finding], summary: &Summary, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => {
            let mut out = String::new();
            for f in findings {
                let level = match f.severity {
                    Severity::Error => "error",
                    Severity::Notice => "note",
                };
                let env = f
                    .environment
                    .as_deref()
                    .map(|e| format!(" (env {e})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}: {level}[{}] {}{env}: {}\n    hint: {}\n",
                    location(f),
                    f.rule,
                    f.json_path,
                    f.message,
                    f.hint
                ));
            }
            out.push_str(&summary.line());
            out.push('\n');
            out
        }
        OutputFormat::Json => {
            let doc = json!({ "summary": summary, "findings": findings });
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
            text.push('\n');
            text
        }
        OutputFormat::Github => {
            let mut out = String::new();
            for f in findings {
                let command = match f.severity {
                    Severity::Error => "error",
                    Severity::Notice => "notice",
                };
                let mut properties = vec![format!(
                    "file={}",
                    escape_property(&f.file.display().to_string())
                )];
                if let Some(line) = f.line {
                    properties.push(format!("line={line}"));
                }
                if let Some(column) = f.column {
                    properties.push(format!("col={column}"));
                }
                properties.push(format!("title={}", escape_property(&f.rule)));
                let message = format!("{} {}: {} Hint: {}", f.rule, f.json_path, f.message, f.hint);
                out.push_str(&format!(
                    "::{command} {}::{}\n",
                    properties.join(","),
                    escape_data(&message)
                ));
            }
            out.push_str(&summary.line());
            out.push('\n');
            out
        }
    }
}

/// Escapes a workflow command's message (GitHub's `escapeData`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (GitHub's `escapeProperty`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn finding() -> Finding {
        Finding {
            severity: Severity::Error,
            file: PathBuf::from("conn/prod-a,b.json"),
            line: Some(7),
            column: Some(5),
            json_path: "$.config[\"tasks.max\"]".into(),
            connector: Some("dept1-a".into()),
            environment: Some("prod".into()),
            rule: "quota.tasks-per-connector".into(),
            key: Some("tasks.max".into()),
            message: "tasks.max is 20, 100% over\nthe limit".into(),
            hint: "lower it".into(),
        }
    }

    #[test]
    fn text_output_names_file_line_path_and_rule() {
        let out = render(
            &[finding()],
            &Summary {
                files: 1,
                connectors: 1,
                errors: 1,
                ..Summary::default()
            },
            OutputFormat::Text,
        );
        assert!(out.starts_with("conn/prod-a,b.json:7:5: error[quota.tasks-per-connector] $.config[\"tasks.max\"] (env prod): tasks.max is 20"), "{out}");
        assert!(out.contains("    hint: lower it\n"));
        assert!(
            out.ends_with("validate: 1 file, 1 connector, 1 error, 0 notices\n"),
            "{out}"
        );
    }

    #[test]
    fn github_annotations_are_escaped() {
        let out = render(&[finding()], &Summary::default(), OutputFormat::Github);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "::error file=conn/prod-a%2Cb.json,line=7,col=5,title=quota.tasks-per-connector::quota.tasks-per-connector $.config[\"tasks.max\"]: tasks.max is 20, 100%25 over%0Athe limit Hint: lower it"
        );
    }

    #[test]
    fn json_output_parses_back() {
        let out = render(&[finding()], &Summary::default(), OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["findings"][0]["line"], 7);
        assert_eq!(v["findings"][0]["severity"], "error");
        assert_eq!(v["summary"]["errors"], 0);
    }
}

//! The `[gitops]` table: the continuous mode of `run`, which re-plans a folder of connector
//! files on a timer and reports or heals drift.
//!
//! ```toml
//! [gitops]
//! source = "connectors/prod"   # relative to this file
//! interval = "1m"
//! mode = "report"              # or "heal"
//! env = "prod"                 # per-environment layout: only prod-*.json
//! owner = "connectors/prod"    # the label `plan --owner` writes; the source as written by default
//! prune = false                # heal: delete this folder's connectors that have no file
//! ```

use std::path::Path;
use std::time::Duration;

use super::reader::TableReader;
use super::supervision::duration;
use crate::model::{DriftMode, GitopsSettings};

/// Default time between two plans.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest interval (each plan is one list call).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

pub(super) fn read(t: &mut TableReader<'_>, base: &Path) -> Option<GitopsSettings> {
    let source = t.required_string(
        "source",
        "set the folder of connector files, e.g. source = \"connectors/prod\"",
    );
    let interval = if t.has("interval") {
        duration(t, "interval", MIN_INTERVAL, MAX_INTERVAL)
    } else {
        Some(DEFAULT_INTERVAL)
    };
    let mode = match t.string("mode").as_deref() {
        None | Some("report") => Some(DriftMode::Report),
        Some("heal") => Some(DriftMode::Heal),
        Some(other) => {
            t.problem(
                "mode",
                format!("\"{other}\" is not a mode; use \"report\" or \"heal\""),
            );
            None
        }
    };
    let environment = t.string("env");
    let owner = t.string("owner");
    let prune = t.boolean("prune").unwrap_or(false);
    let (source, interval) = (source?, interval?);
    Some(GitopsSettings {
        owner: owner
            .unwrap_or_else(|| crate::model::default_owner(&[std::path::PathBuf::from(&source)])),
        source: super::resolve(base, &source),
        interval,
        mode: mode?,
        environment,
        prune,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{ParseError, parse};

    fn base() -> String {
        crate::config::testing::department().toml()
    }

    #[test]
    fn the_table_is_optional_and_read_with_defaults() {
        let base = base();
        let none = parse(&base, Path::new("/etc/dept"), &|_| None).unwrap();
        assert_eq!(none.gitops, None);
        let text = format!("{base}[gitops]\nsource = \"connectors/prod\"\n");
        let g = parse(&text, Path::new("/etc/dept"), &|_| None)
            .unwrap()
            .gitops
            .unwrap();
        assert_eq!(g.source, PathBuf::from("/etc/dept/connectors/prod"));
        assert_eq!(g.owner, "connectors/prod");
        assert_eq!(
            (g.interval, g.mode, g.prune),
            (DEFAULT_INTERVAL, DriftMode::Report, false)
        );
        let text = format!(
            "{base}[gitops]\nsource = \"c\"\ninterval = \"5s\"\nmode = \"heal\"\nenv = \"prod\"\nowner = \"repo/c\"\nprune = true\n"
        );
        let g = parse(&text, Path::new("/"), &|_| None)
            .unwrap()
            .gitops
            .unwrap();
        assert_eq!(g.interval, Duration::from_secs(5));
        assert_eq!(g.mode, DriftMode::Heal);
        assert_eq!(g.environment.as_deref(), Some("prod"));
        assert_eq!((g.owner.as_str(), g.prune), ("repo/c", true));
    }

    #[test]
    fn every_problem_of_the_table_is_reported() {
        let base = base();
        let text = format!("{base}[gitops]\ninterval = \"0s\"\nmode = \"fix\"\nsorce = \"x\"\n");
        let Err(ParseError::Invalid(problems)) = parse(&text, Path::new("/"), &|_| None) else {
            panic!("expected problems");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for wanted in [
            "gitops.source",
            "gitops.interval",
            "gitops.mode",
            "gitops.sorce",
        ] {
            assert!(paths.contains(&wanted), "{wanted} not in {problems:?}");
        }
    }
}

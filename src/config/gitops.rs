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
        duration(t, "interval", MIN_INTERVAL, MAX_INTERVAL)?
    } else {
        DEFAULT_INTERVAL
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
    let source = source?;
    Some(GitopsSettings {
        owner: owner.unwrap_or_else(|| {
            crate::gitops::prepare::default_owner(&[std::path::PathBuf::from(&source)])
        }),
        source: super::resolve(base, &source),
        interval,
        mode: mode?,
        environment,
        prune,
    })
}

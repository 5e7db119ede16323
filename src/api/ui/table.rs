//! The connector table: filtering and sorting by query parameters (so they work without
//! JavaScript), failing connectors first by default, and its HTML. Pure: it takes the watch's
//! health summary rows and returns markup.

use std::cmp::Ordering;
use std::fmt::Write;

use time::OffsetDateTime;

use super::html::{escape, state_badge, time_ago, url_encode};
use crate::healing::ConnectorHealth;
use crate::translate::query_param;

/// Columns the table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Failing first (failed or held, degraded, provisioning, paused, running), then by errors.
    Health,
    /// Name.
    Name,
    /// Managed state (alphabetical).
    State,
    /// Task count.
    Tasks,
    /// Failed task count.
    Failed,
    /// Errors in the last hour.
    Errors,
    /// Last successful activity.
    Activity,
    /// Automatic restarts used.
    Restarts,
}

impl SortKey {
    /// Every key, with its query value and column title.
    pub const ALL: [(SortKey, &'static str, &'static str); 8] = [
        (SortKey::Health, "health", "Health"),
        (SortKey::Name, "name", "Name"),
        (SortKey::State, "state", "State"),
        (SortKey::Tasks, "tasks", "Tasks"),
        (SortKey::Failed, "failed", "Failed tasks"),
        (SortKey::Errors, "errors", "Errors (1 h)"),
        (SortKey::Activity, "activity", "Last activity"),
        (SortKey::Restarts, "restarts", "Auto-restart"),
    ];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, name, _)| *name == text)
            .map(|(k, _, _)| *k)
    }

    fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("health")
    }
}

/// State filters offered besides the exact managed states.
pub const STATE_FILTERS: [&str; 7] = [
    "all",
    "failing",
    "FAILED",
    "DEGRADED",
    "RUNNING",
    "PAUSED",
    "PROVISIONING",
];

/// What the table shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableQuery {
    /// Sort column.
    pub sort: SortKey,
    /// Descending.
    pub descending: bool,
    /// Only names containing this (case-insensitive).
    pub text: String,
    /// `all`, `failing`, or one managed state.
    pub state: String,
}

impl Default for TableQuery {
    fn default() -> Self {
        Self {
            sort: SortKey::Health,
            descending: false,
            text: String::new(),
            state: "all".into(),
        }
    }
}

impl TableQuery {
    /// Reads `sort`, `dir`, `q` and `state`; unknown values fall back to the defaults and are
    /// reported as problems to show above the table.
    pub fn parse(query: Option<&str>) -> (Self, Vec<String>) {
        let mut q = Self::default();
        let mut problems = Vec::new();
        if let Some(s) = query_param(query, "sort").filter(|s| !s.is_empty()) {
            match SortKey::parse(&s) {
                Some(k) => q.sort = k,
                None => problems.push(format!(
                    "sort: \"{s}\" is not a column; use one of {}",
                    SortKey::ALL.map(|(_, n, _)| n).join(", ")
                )),
            }
        }
        match query_param(query, "dir").as_deref() {
            None | Some("" | "asc") => {}
            Some("desc") => q.descending = true,
            Some(other) => problems.push(format!("dir: \"{other}\" is not asc or desc")),
        }
        q.text = query_param(query, "q")
            .unwrap_or_default()
            .trim()
            .to_string();
        if let Some(s) = query_param(query, "state").filter(|s| !s.is_empty()) {
            if STATE_FILTERS.contains(&s.as_str()) {
                q.state = s;
            } else {
                problems.push(format!(
                    "state: \"{s}\" is not a filter; use one of {}",
                    STATE_FILTERS.join(", ")
                ));
            }
        }
        (q, problems)
    }

    /// The query string of this view with `sort` changed (same column again flips the order).
    fn with_sort(&self, key: SortKey) -> String {
        let descending = if key == self.sort {
            !self.descending
        } else {
            false
        };
        let mut out = format!("?sort={}", key.as_str());
        if descending {
            out.push_str("&dir=desc");
        }
        if !self.text.is_empty() {
            let _ = write!(out, "&q={}", url_encode(&self.text));
        }
        if self.state != "all" {
            let _ = write!(out, "&state={}", url_encode(&self.state));
        }
        out
    }
}

/// Whether a row counts as failing (failed, degraded, or held).
pub fn is_failing(c: &ConnectorHealth) -> bool {
    matches!(c.state, "FAILED" | "DEGRADED") || c.auto_restart.held
}

fn health_rank(c: &ConnectorHealth) -> u8 {
    if c.state == "FAILED" || c.auto_restart.held {
        0
    } else {
        match c.state {
            "DEGRADED" => 1,
            "PROVISIONING" => 2,
            "PAUSED" => 3,
            "RUNNING" => 5,
            _ => 4,
        }
    }
}

fn compare(a: &ConnectorHealth, b: &ConnectorHealth, key: SortKey) -> Ordering {
    let by_key = match key {
        SortKey::Health => health_rank(a)
            .cmp(&health_rank(b))
            .then(b.failed_tasks.cmp(&a.failed_tasks))
            .then(b.errors_last_hour.cmp(&a.errors_last_hour)),
        SortKey::Name => Ordering::Equal,
        SortKey::State => a.state.cmp(b.state),
        SortKey::Tasks => a.tasks.cmp(&b.tasks),
        SortKey::Failed => a.failed_tasks.cmp(&b.failed_tasks),
        SortKey::Errors => a.errors_last_hour.cmp(&b.errors_last_hour),
        SortKey::Activity => a.last_activity.cmp(&b.last_activity),
        SortKey::Restarts => (a.auto_restart.held, a.auto_restart.restarts)
            .cmp(&(b.auto_restart.held, b.auto_restart.restarts)),
    };
    by_key.then_with(|| a.name.cmp(&b.name))
}

/// The rows `query` selects, in its order.
pub fn select<'a>(rows: &'a [ConnectorHealth], query: &TableQuery) -> Vec<&'a ConnectorHealth> {
    let needle = query.text.to_lowercase();
    let mut out: Vec<&ConnectorHealth> = rows
        .iter()
        .filter(|c| needle.is_empty() || c.name.to_lowercase().contains(&needle))
        .filter(|c| match query.state.as_str() {
            "all" => true,
            "failing" => is_failing(c),
            s => c.state == s,
        })
        .collect();
    out.sort_by(|a, b| {
        let o = compare(a, b, query.sort);
        if query.descending { o.reverse() } else { o }
    });
    out
}

/// The filter form (outside the refreshed block, so typing is never interrupted): name, state,
/// and the sort column and order (the column headers sort too, but are hidden in a narrow
/// window).
pub fn filter_form(query: &TableQuery) -> String {
    let mut states = String::new();
    for s in STATE_FILTERS {
        let selected = if s == query.state { " selected" } else { "" };
        let _ = write!(states, r#"<option value="{s}"{selected}>{s}</option>"#);
    }
    let mut sorts = String::new();
    for (key, value, title) in SortKey::ALL {
        let selected = if key == query.sort { " selected" } else { "" };
        let title = if key == SortKey::Health {
            "Failing first"
        } else {
            title
        };
        let _ = write!(
            sorts,
            r#"<option value="{value}"{selected}>{title}</option>"#
        );
    }
    let (asc, desc) = if query.descending {
        ("", " selected")
    } else {
        (" selected", "")
    };
    format!(
        r#"<form class="filters" method="get" action="/ui/connectors" role="search">
<label>Name contains <input type="search" name="q" value="{q}"></label>
<label>State <select name="state">{states}</select></label>
<label>Sort by <select name="sort">{sorts}</select></label>
<label>Order <select name="dir"><option value="asc"{asc}>ascending</option><option value="desc"{desc}>descending</option></select></label>
<button type="submit">Show</button> <a href="/ui/connectors">Reset</a>
</form>"#,
        q = escape(&query.text),
    )
}

/// The table of `rows` (already selected), with sortable headers.
pub fn render(
    rows: &[&ConnectorHealth],
    total: usize,
    query: &TableQuery,
    now: OffsetDateTime,
) -> String {
    let mut out = String::with_capacity(600 + rows.len() * 700);
    let _ = write!(
        out,
        r#"<p class="count">{} of {} connectors shown.</p>"#,
        rows.len(),
        total
    );
    out.push_str(r#"<div class="scroll"><table class="connectors cards"><caption class="sr-only">Connectors</caption><thead><tr>"#);
    let columns: [(SortKey, &str); 9] = [
        (SortKey::Name, "Name"),
        (SortKey::State, "State"),
        (SortKey::Tasks, "Tasks"),
        (SortKey::Failed, "Failed tasks"),
        (SortKey::Activity, "Last successful activity"),
        (SortKey::Health, "Last error"),
        (SortKey::Errors, "Errors (1 h)"),
        (SortKey::Restarts, "Auto-restart"),
        (SortKey::Health, "Pool"),
    ];
    for (i, (key, title)) in columns.iter().enumerate() {
        // "Last error" sorts by health (failing first); "Pool" is not sortable.
        if i == 8 {
            out.push_str(r#"<th scope="col">Pool</th>"#);
            continue;
        }
        let sorted = *key == query.sort && !(i == 5 && query.sort != SortKey::Health);
        let aria = if sorted {
            if query.descending {
                r#" aria-sort="descending""#
            } else {
                r#" aria-sort="ascending""#
            }
        } else {
            ""
        };
        let marker = if sorted {
            if query.descending { " ▼" } else { " ▲" }
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<th scope="col"{aria}><a href="/ui/connectors{}">{title}{marker}</a></th>"#,
            escape(&query.with_sort(*key)),
        );
    }
    out.push_str("</tr></thead><tbody>");
    for c in rows {
        let row_class = if is_failing(c) {
            " class=\"failing\""
        } else {
            ""
        };
        let activity = c
            .last_activity
            .map(|t| time_ago(t, now))
            .unwrap_or_else(|| "never".into());
        let error = match (&c.last_error, c.last_error_at) {
            (Some(e), Some(at)) => format!(
                r#"<span class="error-text">{}</span> <span class="muted">({})</span>"#,
                escape(&truncate(e, 160)),
                time_ago(at, now)
            ),
            (Some(e), None) => escape(&truncate(e, 160)),
            _ => "none".into(),
        };
        let ar = &c.auto_restart;
        let restart = if !ar.enabled {
            "off".to_string()
        } else if ar.held {
            format!(
                "{} after {} of {} restarts",
                state_badge("HELD"),
                ar.restarts,
                ar.max_restarts
            )
        } else {
            format!("{} of {} used", ar.restarts, ar.max_restarts)
        };
        let _ = write!(
            out,
            r#"<tr{row_class} data-name="{name}"><th scope="row"><a href="/ui/connectors/{link}">{name}</a></th><td data-label="State">{state}</td><td class="num" data-label="Tasks">{tasks}</td><td class="num" data-label="Failed tasks">{failed}</td><td data-label="Last successful activity">{activity}</td><td class="error" data-label="Last error">{error}</td><td class="num" data-label="Errors (1 h)">{errors}</td><td data-label="Auto-restart">{restart}</td><td data-label="Pool">{pool}</td></tr>"#,
            name = escape(&c.name),
            link = url_encode(&c.name),
            state = state_badge(c.state),
            tasks = c.tasks,
            failed = c.failed_tasks,
            errors = c.errors_last_hour,
            pool = escape(&c.pool),
        );
    }
    if rows.is_empty() {
        out.push_str(r#"<tr><td colspan="9">No connector matches.</td></tr>"#);
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::healing::AutoRestartView;

    pub(crate) fn row(
        name: &str,
        state: &'static str,
        failed: usize,
        errors: u32,
    ) -> ConnectorHealth {
        ConnectorHealth {
            name: name.into(),
            pool: "shared".into(),
            state,
            connect_state: state.into(),
            tasks: 1,
            failed_tasks: failed,
            last_error: (failed > 0).then(|| "java.io.IOException: <boom>".to_string()),
            last_error_at: None,
            errors_last_hour: errors,
            last_activity: None,
            uptime_seconds: None,
            auto_restart: AutoRestartView {
                enabled: true,
                restarts: 0,
                max_restarts: 5,
                held: false,
                next_restart_in_seconds: None,
                last_failure: None,
            },
        }
    }

    fn names(rows: &[&ConnectorHealth]) -> Vec<String> {
        rows.iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn failing_connectors_come_first_by_default() {
        let mut held = row("d-held", "RUNNING", 0, 0);
        held.auto_restart.held = true;
        let rows = vec![
            row("a-ok", "RUNNING", 0, 0),
            row("b-degraded", "DEGRADED", 1, 3),
            row("c-failed", "FAILED", 1, 9),
            held,
            row("e-paused", "PAUSED", 0, 0),
        ];
        let (q, problems) = TableQuery::parse(None);
        assert!(problems.is_empty());
        assert_eq!(
            names(&select(&rows, &q)),
            ["c-failed", "d-held", "b-degraded", "e-paused", "a-ok"]
        );
        let (q, _) = TableQuery::parse(Some("state=failing"));
        assert_eq!(
            names(&select(&rows, &q)),
            ["c-failed", "d-held", "b-degraded"]
        );
    }

    #[test]
    fn query_parameters_sort_and_filter() {
        let rows = vec![
            row("dept1-b", "RUNNING", 0, 2),
            row("dept1-a", "RUNNING", 0, 5),
            row("other-c", "PAUSED", 0, 1),
        ];
        let (q, _) = TableQuery::parse(Some("sort=name"));
        assert_eq!(names(&select(&rows, &q)), ["dept1-a", "dept1-b", "other-c"]);
        let (q, _) = TableQuery::parse(Some("sort=errors&dir=desc"));
        assert_eq!(names(&select(&rows, &q)), ["dept1-a", "dept1-b", "other-c"]);
        let (q, _) = TableQuery::parse(Some("q=DEPT1&state=RUNNING&sort=name&dir=desc"));
        assert_eq!(names(&select(&rows, &q)), ["dept1-b", "dept1-a"]);
        let (q, problems) = TableQuery::parse(Some("sort=colour&dir=up&state=ON"));
        assert_eq!(q, TableQuery::default());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("sort:") && problems[0].contains("health"));
    }

    #[test]
    fn headers_link_to_their_sort_and_flip_the_current_one() {
        let (q, _) = TableQuery::parse(Some("sort=name&q=a b"));
        assert_eq!(q.with_sort(SortKey::Name), "?sort=name&dir=desc&q=a%20b");
        assert_eq!(q.with_sort(SortKey::Errors), "?sort=errors&q=a%20b");
    }

    #[test]
    fn rows_show_state_words_and_escaped_errors() {
        let rows = vec![row("dept1-x", "FAILED", 1, 4)];
        let (q, _) = TableQuery::parse(None);
        let now = OffsetDateTime::now_utc();
        let html = render(&select(&rows, &q), 1, &q, now);
        assert!(html.contains(">FAILED<"), "{html}");
        assert!(html.contains("IOException: &lt;boom&gt;"), "{html}");
        assert!(html.contains(r#"href="/ui/connectors/dept1-x""#));
        assert!(html.contains("1 of 1 connectors shown."));
        assert!(html.contains("class=\"failing\""));
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}

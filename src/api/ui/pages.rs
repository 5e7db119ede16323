//! The dashboard's pages as pure functions of the data the handlers gathered: sign-in, the
//! department overview, the connector table, a connector's page, confirmations and results.
//! Every state is written as a word; actions appear only when the viewer's role permits them.

use std::fmt::Write;

use serde_json::Value;
use time::OffsetDateTime;

use super::history::{self, Point};
use super::html::{Viewer, bytes, clock, csrf_field, escape, state_badge, time_ago, url_encode};
use super::table::{self, TableQuery};
use crate::auth::Role;
use crate::healing::{ConnectorHealth, HealthSummary};
use crate::model::LogLevel;
use crate::observe::EventRecord;
use crate::observe::logs::LogRecord;
use crate::supervisor::PoolStatus;
use crate::translate::{ManagedConnector, ManagedStatus};

/// The sign-in form. `error` is shown above it.
pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="alert" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    format!(
        r#"<h1>Sign in</h1>
{error}<form class="login" method="post" action="/ui/login">
<input type="hidden" name="csrf" value="{csrf}">
<p><label for="key">API key</label><br><input id="key" name="key" autocomplete="username" required autofocus spellcheck="false"></p>
<p><label for="secret">API secret</label><br><input id="secret" name="secret" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form>
<p class="muted">Use an API key of this department (the same key and secret as for the API). <code>connect-supervisor dev</code> prints one.</p>"#,
        csrf = escape(csrf),
    )
}

/// A short page with a heading and a message (errors, results).
pub fn message(title: &str, text: &str, back: Option<(&str, &str)>) -> String {
    let back = back
        .map(|(href, label)| format!(r#"<p><a href="{}">{}</a></p>"#, escape(href), escape(label)))
        .unwrap_or_default();
    format!(
        "<h1>{}</h1>\n<p role=\"status\">{}</p>\n{back}",
        escape(title),
        escape(text)
    )
}

/// A confirmation: what will happen, a form posting to `action` with the CSRF token, and a way
/// back.
pub fn confirm(
    viewer: &Viewer,
    question: &str,
    detail: &str,
    action: &str,
    button: &str,
    back: &str,
) -> String {
    format!(
        r#"<h1>{q}</h1>
<p>{d}</p>
<form method="post" action="{a}">{csrf}
<button type="submit" class="danger" id="confirm">{b}</button> <a href="{back}">Cancel</a>
</form>"#,
        q = escape(question),
        d = escape(detail),
        a = escape(action),
        csrf = csrf_field(viewer),
        b = escape(button),
        back = escape(back),
    )
}

fn kafka_line(summary: &HealthSummary, now: OffsetDateTime) -> String {
    match &summary.kafka {
        None => "not checked (the Kafka check is off)".into(),
        Some(k) => {
            let checked = k
                .checked_at
                .map(|t| format!(", checked {}", time_ago(t, now)))
                .unwrap_or_default();
            match k.reachable {
                None => "not checked yet".into(),
                Some(true) => format!(
                    "{} ({} broker{}{checked})",
                    state_badge("reachable"),
                    k.brokers,
                    if k.brokers == 1 { "" } else { "s" }
                ),
                Some(false) => format!(
                    "{}: {}{checked}",
                    state_badge("unreachable"),
                    escape(k.error.as_deref().unwrap_or("unknown error"))
                ),
            }
        }
    }
}

/// The department overview: health, Kafka, log forwarding, connectors by state, and every pool's
/// workers with their usage against their limits over the last hour.
pub fn overview(
    viewer: &Viewer,
    summary: &HealthSummary,
    pools: &[PoolStatus],
    points: &dyn Fn(&str) -> Vec<Point>,
    now: OffsetDateTime,
) -> String {
    let mut out = String::new();
    let by_state: Vec<String> = summary
        .connectors_by_state
        .iter()
        .map(|(s, n)| format!("{n} {}", state_badge(s)))
        .collect();
    let f = &summary.log_forwarding;
    let forwarding = if f.enabled {
        format!(
            "on, to topic <code>{}</code>: {} forwarded, {} dropped, {} queued{}",
            escape(f.topic.as_deref().unwrap_or("?")),
            f.forwarded,
            f.dropped,
            f.queued,
            f.error
                .as_deref()
                .map(|e| format!(" ({})", escape(e)))
                .unwrap_or_default()
        )
    } else {
        format!(
            "off{}",
            f.error
                .as_deref()
                .map(|e| format!(": {}", escape(e)))
                .unwrap_or_default()
        )
    };
    let _ = write!(
        out,
        r#"<section aria-labelledby="h-health"><h2 id="h-health">Department health: {status}</h2>
<dl class="facts">
<dt>Connectors</dt><dd>{total} ({states}) · <a href="/ui/connectors?state=failing">{failing} failing</a></dd>
<dt>Tasks</dt><dd>{tasks} ({failed} failed)</dd>
<dt>Held connectors</dt><dd>{held}</dd>
<dt>Errors in the last hour</dt><dd>{errors} ERROR log lines</dd>
<dt>Workers</dt><dd>{ready} of {wtotal} ready</dd>
<dt>Kafka</dt><dd>{kafka}</dd>
<dt>Log forwarding</dt><dd>{forwarding}</dd>
<dt>Connector states read</dt><dd>{read}</dd>
</dl></section>"#,
        status = state_badge(summary.status),
        total = summary.connectors_total,
        states = if by_state.is_empty() {
            "none".into()
        } else {
            by_state.join(", ")
        },
        failing = summary.failing.len(),
        tasks = summary.tasks_total,
        failed = summary.tasks_failed,
        held = summary.connectors_held,
        errors = summary.errors_last_hour,
        ready = summary.workers.ready,
        wtotal = summary.workers.total,
        kafka = kafka_line(summary, now),
        read = summary
            .status_read_at
            .map(|t| time_ago(t, now))
            .unwrap_or_else(|| "not yet".into()),
    );
    for pool in pools {
        let _ = write!(
            out,
            r#"<section aria-labelledby="h-pool-{id}"><h2 id="h-pool-{id}">Pool {name}: {ready} of {desired} workers ready</h2>"#,
            id = escape(&pool.name),
            name = escape(&pool.name),
            ready = pool.ready_workers,
            desired = pool.desired_workers,
        );
        if let Some(r) = &pool.rollout {
            let _ = write!(
                out,
                "<p>Rolling restart {}: {} of {} workers done{}.</p>",
                escape(r.state),
                r.done.len(),
                r.workers.len(),
                r.message
                    .as_deref()
                    .map(|m| format!(" ({})", escape(m)))
                    .unwrap_or_default()
            );
        }
        if viewer.role >= Role::Admin {
            let _ = write!(
                out,
                r#"<p class="actions"><a class="button" href="/ui/pools/{}/restart">Rolling restart of pool {}</a></p>"#,
                url_encode(&pool.name),
                escape(&pool.name)
            );
        }
        out.push_str(r#"<div class="scroll"><table class="workers cards"><thead><tr><th scope="col">Worker</th><th scope="col">State</th><th scope="col">CPU (last hour)</th><th scope="col">Memory (last hour)</th><th scope="col">Throttled</th><th scope="col">OOM kills</th><th scope="col">Restarts</th></tr></thead><tbody>"#);
        for w in &pool.workers {
            let (cpu_series, mem_series) = history::series(&points(&w.id), now);
            let u = &w.usage;
            let cpu_now = u
                .cpu_cores
                .map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "?".into());
            let mem_now = u.memory_bytes.map(bytes).unwrap_or_else(|| "?".into());
            let cpu_span = history::span_words(history::span(&cpu_series));
            let mem_span = history::span_words(history::span(&mem_series));
            let cpu_label = format!(
                "CPU of {} over the {cpu_span}: now {cpu_now} of {:.2} cores",
                w.id, w.limits.cpu
            );
            let mem_label = format!(
                "Memory of {} over the {mem_span}: now {mem_now} of {}",
                w.id,
                bytes(w.limits.memory_bytes)
            );
            let limit_gib = w.limits.memory_bytes as f64;
            let throttled = match (
                u.cpu_throttled_periods,
                u.cpu_periods,
                u.cpu_throttled_seconds,
            ) {
                (Some(t), Some(p), secs) if p > 0 => format!(
                    "{t} of {p} periods ({:.0}%){}",
                    t as f64 * 100.0 / p as f64,
                    secs.map(|s| format!(", {s:.1} s")).unwrap_or_default()
                ),
                (_, _, Some(s)) => format!("{s:.1} s"),
                _ => "not measured".into(),
            };
            let state = w.state.as_str();
            let clear = if state == "held" && viewer.role >= Role::Admin {
                format!(
                    r#" <a class="button" href="/ui/workers/{}/clear">Clear hold</a>"#,
                    url_encode(&w.id)
                )
            } else {
                String::new()
            };
            let exit = w
                .last_exit_message
                .as_deref()
                .map(|m| format!(r#"<br><span class="muted">last exit: {}</span>"#, escape(m)))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<tr><th scope="row">{id}</th><td data-label="State">{state}{clear}{exit}</td><td data-label="CPU (last hour)"><span class="figure">{cpu_now} / {cpu_limit:.2} cores</span><br>{cpu_chart}<span class="muted span">{cpu_span}</span></td><td data-label="Memory (last hour)"><span class="figure">{mem_now} / {mem_limit}</span><br>{mem_chart}<span class="muted span">{mem_span}</span></td><td data-label="Throttled">{throttled}</td><td class="num" data-label="OOM kills">{oom}</td><td class="num" data-label="Restarts">{restarts}</td></tr>"#,
                id = escape(&w.id),
                state = state_badge(state),
                cpu_limit = w.limits.cpu,
                cpu_chart = history::sparkline(&cpu_series, w.limits.cpu, &cpu_label),
                mem_limit = bytes(w.limits.memory_bytes),
                mem_chart = history::sparkline(&mem_series, limit_gib, &mem_label),
                oom = u
                    .oom_kills
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "not measured".into()),
                restarts = w.restarts,
            );
        }
        out.push_str("</tbody></table></div></section>");
    }
    if !summary.failing.is_empty() {
        out.push_str(r#"<section aria-labelledby="h-failing"><h2 id="h-failing">Failing connectors</h2><ul>"#);
        for c in &summary.failing {
            let _ = write!(
                out,
                r#"<li><a href="/ui/connectors/{}">{}</a>: {}{}</li>"#,
                url_encode(&c.name),
                escape(&c.name),
                state_badge(c.state),
                c.last_error
                    .as_deref()
                    .map(|e| format!(" — {}", escape(&table::truncate(e, 200))))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ul></section>");
    }
    out
}

/// What a connector page shows.
#[derive(Debug, Default)]
pub struct ConnectorView {
    /// Managed status, or why it could not be read.
    pub status: Option<Result<ManagedStatus, String>>,
    /// Masked config.
    pub info: Option<Result<ManagedConnector, String>>,
    /// Offsets.
    pub offsets: Option<Result<Vec<Value>, String>>,
    /// The watch's row (auto-restart, errors, activity).
    pub health: Option<ConnectorHealth>,
    /// Recent events of the connector, newest first.
    pub events: Vec<EventRecord>,
    /// Log lines (operators), oldest first; `None` for a role that may not read them.
    pub logs: Option<Vec<std::sync::Arc<LogRecord>>>,
    /// The log filter.
    pub log_level: Option<LogLevel>,
    /// The log text search.
    pub log_text: String,
}

/// Which actions `role` may take on a connector.
pub fn connector_actions(role: Role) -> &'static [(&'static str, &'static str)] {
    if role >= Role::Operator {
        &[
            ("restart", "Restart connector and tasks"),
            ("restart-failed", "Restart failed tasks"),
            ("pause", "Pause"),
            ("resume", "Resume"),
        ]
    } else {
        &[]
    }
}

/// The connector's page (its `name` heading and actions; `live` is the refreshed part).
pub fn connector_head(viewer: &Viewer, name: &str) -> String {
    let mut out = format!(
        r#"<p class="crumbs"><a href="/ui/connectors">Connectors</a> › {}</p><h1>{}</h1>"#,
        escape(name),
        escape(name)
    );
    let actions = connector_actions(viewer.role);
    if !actions.is_empty() {
        out.push_str(r#"<p class="actions">"#);
        for (action, label) in actions {
            let _ = write!(
                out,
                r#"<a class="button" data-action="{action}" href="/ui/connectors/{}/{action}">{label}</a> "#,
                url_encode(name)
            );
        }
        out.push_str("</p>");
    }
    out
}

fn or_error<T>(
    value: &Option<Result<T, String>>,
    what: &str,
    f: impl FnOnce(&T) -> String,
) -> String {
    match value {
        Some(Ok(v)) => f(v),
        Some(Err(e)) => format!(
            r#"<p class="alert">Could not read the {what}: {}</p>"#,
            escape(e)
        ),
        None => format!("<p>No {what}.</p>"),
    }
}

/// The refreshed part of a connector's page.
pub fn connector_live(
    viewer: &Viewer,
    name: &str,
    v: &ConnectorView,
    now: OffsetDateTime,
) -> String {
    let mut out = String::new();
    // Summary.
    let state = v
        .status
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .map(|s| s.connector.state.clone())
        .or_else(|| v.health.as_ref().map(|h| h.state.to_string()))
        .unwrap_or_else(|| "unknown".into());
    out.push_str(
        r#"<section aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2><dl class="facts">"#,
    );
    let _ = write!(out, "<dt>State</dt><dd>{}</dd>", state_badge(&state));
    if let Some(Ok(s)) = &v.status {
        let failed = s.tasks.iter().filter(|t| t.state == "FAILED").count();
        let _ = write!(
            out,
            "<dt>Type</dt><dd>{}</dd><dt>Tasks</dt><dd>{} ({} failed)</dd><dt>Worker</dt><dd>{}</dd>",
            escape(&s.connector_type),
            s.tasks.len(),
            failed,
            escape(if s.connector.worker_id.is_empty() {
                "not assigned"
            } else {
                &s.connector.worker_id
            })
        );
    }
    if let Some(h) = &v.health {
        let ar = &h.auto_restart;
        let restart = if !ar.enabled {
            "off".into()
        } else if ar.held {
            format!(
                "{}: {} of {} automatic restarts used; restart it by hand once the cause is fixed",
                state_badge("HELD"),
                ar.restarts,
                ar.max_restarts
            )
        } else {
            format!(
                "{} of {} automatic restarts used{}",
                ar.restarts,
                ar.max_restarts,
                ar.next_restart_in_seconds
                    .map(|s| format!("; next in {s:.0} s"))
                    .unwrap_or_default()
            )
        };
        let _ = write!(
            out,
            "<dt>Pool</dt><dd>{pool}</dd><dt>Auto-restart</dt><dd>{restart}</dd><dt>Last successful activity</dt><dd>{act}</dd><dt>Errors in the last hour</dt><dd>{errors}</dd><dt>Last error</dt><dd class=\"error\">{err}</dd><dt>Connector instance running for</dt><dd>{up}</dd>",
            pool = escape(&h.pool),
            act = h
                .last_activity
                .map(|t| time_ago(t, now))
                .unwrap_or_else(|| "never".into()),
            errors = h.errors_last_hour,
            err = match (&h.last_error, h.last_error_at) {
                (Some(e), Some(at)) => format!(
                    r#"{} <span class="muted">({})</span>"#,
                    escape(e),
                    time_ago(at, now)
                ),
                (Some(e), None) => escape(e),
                (None, _) => "none".into(),
            },
            up = h
                .uptime_seconds
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "not running".into()),
        );
    }
    out.push_str("</dl></section>");

    // Connector instance and tasks with their traces.
    out.push_str(r#"<section aria-labelledby="h-tasks"><h2 id="h-tasks">Tasks</h2>"#);
    out.push_str(&or_error(&v.status, "status", |s| {
        let mut t = String::new();
        if !s.connector.trace.is_empty() {
            let _ = write!(
                t,
                r#"<details class="trace" open><summary>Connector trace</summary><pre>{}</pre></details>"#,
                escape(&s.connector.trace)
            );
        }
        t.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Worker</th><th scope="col">Error and trace</th></tr></thead><tbody>"#);
        for task in &s.tasks {
            let trace = match (&task.trace, task.msg.is_empty()) {
                (Some(tr), _) => format!(
                    r#"<details class="trace" open><summary>{}</summary><pre>{}</pre></details>"#,
                    escape(&task.msg),
                    escape(tr)
                ),
                (None, false) => escape(&task.msg),
                (None, true) => "none".into(),
            };
            let _ = write!(
                t,
                r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{trace}</td></tr>"#,
                task.id,
                state_badge(&task.state),
                escape(&task.worker_id)
            );
        }
        if s.tasks.is_empty() {
            t.push_str(r#"<tr><td colspan="4">No task yet.</td></tr>"#);
        }
        t.push_str("</tbody></table></div>");
        t
    }));
    out.push_str("</section>");

    // Config, masked as the API masks it.
    out.push_str(r#"<section aria-labelledby="h-config"><h2 id="h-config">Config</h2>"#);
    out.push_str(&or_error(&v.info, "config", |info| {
        let mut t = String::from(
            r#"<div class="scroll"><table class="config"><thead><tr><th scope="col">Key</th><th scope="col">Value</th></tr></thead><tbody>"#,
        );
        for (k, val) in &info.config {
            let _ = write!(
                t,
                "<tr data-key=\"{key}\"><th scope=\"row\"><code>{key}</code></th><td><code>{}</code></td></tr>",
                escape(val),
                key = escape(k),
            );
        }
        t.push_str("</tbody></table></div>");
        t
    }));
    out.push_str("</section>");

    // Offsets.
    out.push_str(r#"<section aria-labelledby="h-offsets"><h2 id="h-offsets">Offsets</h2>"#);
    out.push_str(&or_error(&v.offsets, "offsets", |offsets| {
        if offsets.is_empty() {
            "<p>No offsets committed yet.</p>".into()
        } else {
            format!(
                "<pre>{}</pre>",
                escape(&serde_json::to_string_pretty(offsets).unwrap_or_default())
            )
        }
    }));
    out.push_str("</section>");

    // Events.
    out.push_str(r#"<section aria-labelledby="h-events"><h2 id="h-events">Recent events</h2>"#);
    if v.events.is_empty() {
        out.push_str("<p>No event yet.</p>");
    } else {
        out.push_str(r#"<ul class="events">"#);
        for e in &v.events {
            let _ = write!(
                out,
                "<li>{} <span class=\"level level-{lvl}\">{lvl}</span> <code>{}</code> {}</li>",
                time_ago(e.time, now),
                escape(e.event),
                escape(&e.message),
                lvl = match e.level {
                    crate::observe::Level::Info => "info",
                    crate::observe::Level::Warn => "warn",
                    crate::observe::Level::Error => "error",
                },
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");

    // Logs.
    out.push_str(r#"<section aria-labelledby="h-logs"><h2 id="h-logs">Log</h2>"#);
    match &v.logs {
        None => {
            let _ = write!(
                out,
                "<p>Your role ({}) cannot read connector logs; operators and admins can.</p>",
                viewer.role
            );
        }
        Some(lines) => {
            let mut options = String::from(r#"<option value="">all levels</option>"#);
            for l in LogLevel::ALL {
                let selected = if v.log_level == Some(l) {
                    " selected"
                } else {
                    ""
                };
                let _ = write!(
                    options,
                    r#"<option value="{0}"{selected}>{0} and above</option>"#,
                    l.as_str()
                );
            }
            let _ = write!(
                out,
                r##"<form class="filters" method="get" action="/ui/connectors/{link}#h-logs" role="search">
<label>Level <select name="level">{options}</select></label>
<label>Text <input type="search" name="q" value="{q}"></label>
<button type="submit">Show</button></form>"##,
                link = url_encode(name),
                q = escape(&v.log_text),
            );
            if lines.is_empty() {
                out.push_str("<p>No log line matches.</p>");
            } else {
                let _ = write!(
                    out,
                    r#"<p class="count">{} lines, newest last.</p><ol class="log">"#,
                    lines.len()
                );
                for l in lines {
                    let task = l.task.map(|t| format!(" task {t}")).unwrap_or_default();
                    let stack = if l.stack.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "<details><summary>stack trace</summary><pre>{}</pre></details>",
                            escape(&l.stack)
                        )
                    };
                    let _ = write!(
                        out,
                        r#"<li class="line level-{lvl_class}"><span class="time">{time}</span> <span class="level">{lvl}</span><span class="muted">{task}</span> <span class="msg">{msg}</span>{stack}</li>"#,
                        time = clock(l.time),
                        lvl = l.level.as_str(),
                        lvl_class = l.level.as_str().to_lowercase(),
                        msg = escape(&l.message),
                    );
                }
                out.push_str("</ol>");
            }
        }
    }
    out.push_str("</section>");
    out
}

/// Whether a log record matches a text search (message, logger or stack, case-insensitive).
pub fn log_matches(record: &LogRecord, needle_lower: &str) -> bool {
    needle_lower.is_empty()
        || record.message.to_lowercase().contains(needle_lower)
        || record.stack.to_lowercase().contains(needle_lower)
        || record.logger.to_lowercase().contains(needle_lower)
}

/// The connector table page's refreshed part over `rows` (the watch's summary rows).
pub fn connectors_live(
    rows: &[ConnectorHealth],
    query: &TableQuery,
    problems: &[String],
    now: OffsetDateTime,
) -> String {
    let mut out = String::new();
    for p in problems {
        let _ = write!(out, r#"<p class="alert" role="alert">{}</p>"#, escape(p));
    }
    let selected = table::select(rows, query);
    out.push_str(&table::render(&selected, rows.len(), query, now));
    out
}

/// The head of the connector table page: its title and the filter form.
pub fn connectors_head(query: &TableQuery) -> String {
    format!("<h1>Connectors</h1>\n{}", table::filter_form(query))
}

/// The whole connector table page, as the dashboard serves it (used by the benchmark too).
pub fn connectors_document(
    department: &str,
    viewer: &Viewer,
    rows: &[ConnectorHealth],
    query: &TableQuery,
    now: OffsetDateTime,
) -> String {
    let body = format!(
        "{}\n{}\n",
        connectors_head(query),
        super::html::live(now, &connectors_live(rows, query, &[], now))
    );
    super::html::page(
        "Connectors",
        department,
        Some(viewer),
        super::html::Nav::Connectors,
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(role: Role) -> Viewer {
        Viewer {
            name: "K".into(),
            role,
            csrf: "tok".into(),
        }
    }

    #[test]
    fn viewers_get_no_action_buttons_and_operators_do() {
        assert!(!connector_head(&viewer(Role::Viewer), "c").contains("button"));
        let op = connector_head(&viewer(Role::Operator), "c");
        for a in ["restart", "restart-failed", "pause", "resume"] {
            assert!(
                op.contains(&format!("href=\"/ui/connectors/c/{a}\"")),
                "{op}"
            );
        }
    }

    #[test]
    fn the_login_form_posts_key_and_secret_with_its_token() {
        let html = login("t<1>", Some("wrong"));
        assert!(html.contains(r#"action="/ui/login""#));
        assert!(html.contains(r#"name="key""#) && html.contains(r#"name="secret""#));
        assert!(html.contains(r#"value="t&lt;1&gt;""#));
        assert!(html.contains(r#"role="alert">wrong<"#));
    }

    #[test]
    fn a_confirmation_posts_with_the_sessions_token() {
        let html = confirm(
            &viewer(Role::Operator),
            "Restart c?",
            "d",
            "/ui/connectors/c/restart",
            "Restart",
            "/ui/connectors/c",
        );
        assert!(html.contains(r#"<form method="post" action="/ui/connectors/c/restart">"#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
    }

    #[test]
    fn a_viewer_is_told_why_the_log_is_not_shown() {
        let v = ConnectorView::default();
        let html = connector_live(&viewer(Role::Viewer), "c", &v, OffsetDateTime::now_utc());
        assert!(html.contains("cannot read connector logs"), "{html}");
    }
}

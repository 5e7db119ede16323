//! Small HTML helpers: escaping, the page layout, state words, and human-readable figures.
//! Everything the dashboard shows goes through [`escape`]; nothing here does I/O.

use std::fmt::Write;

use time::OffsetDateTime;

use crate::auth::Role;

/// Path of the stylesheet.
pub const CSS_PATH: &str = "/ui/assets/app.css";
/// Path of the script.
pub const JS_PATH: &str = "/ui/assets/app.js";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Key id.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token (empty for Basic/Bearer callers, who have no session and so
    /// cannot use forms).
    pub csrf: String,
}

/// Which top-level page is shown (for the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The department overview.
    Overview,
    /// The connector table and connector pages.
    Connectors,
    /// Sign-in and other pages outside the navigation.
    None,
}

/// A whole page: `live` is the part the script refreshes (it carries its own "data as of").
pub fn page(
    title: &str,
    department: &str,
    viewer: Option<&Viewer>,
    nav: Nav,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {department} · connect-supervisor</title>
<link rel="stylesheet" href="{CSS_PATH}">
<script src="{JS_PATH}" defer></script>
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">connect-supervisor · department <strong>{department}</strong></span>"##,
        title = escape(title),
        department = escape(department),
    );
    if let Some(v) = viewer {
        let current = |n: Nav| {
            if n == nav {
                r#" aria-current="page""#
            } else {
                ""
            }
        };
        let _ = write!(
            out,
            r#"<nav aria-label="Main"><a href="/ui/"{}>Overview</a> <a href="/ui/connectors"{}>Connectors</a></nav>
<form class="signout" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{}"><span class="who">{} ({})</span> <button type="submit">Sign out</button></form>"#,
            current(Nav::Overview),
            current(Nav::Connectors),
            escape(&v.csrf),
            escape(&v.name),
            v.role,
        );
    }
    let _ = write!(
        out,
        "</header>\n<main id=\"main\" tabindex=\"-1\">\n{body}\n</main></body></html>\n"
    );
    out
}

/// The block the script refreshes: `id="live"`, with its data-as-of time.
pub fn live(as_of: OffsetDateTime, inner: &str) -> String {
    format!(
        "<div id=\"live\" aria-live=\"polite\"><p class=\"as-of\">Data as of <time datetime=\"{t}\">{h}</time> <span class=\"refresh-state\"></span></p>\n{inner}</div>",
        t = crate::translate::rfc3339(as_of),
        h = clock(as_of),
    )
}

/// A state as a word with a class for colour (the word alone carries the meaning).
pub fn state_badge(state: &str) -> String {
    let class = match state {
        "RUNNING" | "running" | "ready" | "ok" | "reachable" => "ok",
        "FAILED" | "held" | "unavailable" | "unreachable" | "HELD" => "bad",
        "DEGRADED" | "degraded" | "backoff" | "starting" | "stopping" | "PROVISIONING" => "warn",
        _ => "neutral",
    };
    format!(
        r#"<span class="state state-{class}">{}</span>"#,
        escape(state)
    )
}

/// `HH:MM:SS UTC` of a time.
pub fn clock(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How long ago `t` was, in words (`12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`).
pub fn ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let s = (now - t).whole_seconds().max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A time as a `<time>` element showing how long ago it was, the exact time in its title.
pub fn time_ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    format!(
        r#"<time datetime="{}" title="{}">{}</time>"#,
        crate::translate::rfc3339(t),
        clock(t),
        ago(t, now)
    )
}

/// Bytes in MiB or GiB.
pub fn bytes(n: u64) -> String {
    let mib = n as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// A hidden CSRF field.
pub fn csrf_field(viewer: &Viewer) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(&viewer.csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(url_encode("dept1-x_y.z"), "dept1-x_y.z");
    }

    #[test]
    fn states_are_words_with_a_class() {
        let b = state_badge("FAILED");
        assert!(b.contains(">FAILED<") && b.contains("state-bad"), "{b}");
        assert!(state_badge("RUNNING").contains("state-ok"));
        assert!(state_badge("PAUSED").contains("state-neutral"));
    }

    #[test]
    fn figures_read_as_people_say_them() {
        let now = time::macros::datetime!(2030-01-01 12:00 UTC);
        assert_eq!(ago(now - time::Duration::seconds(5), now), "5 s ago");
        assert_eq!(ago(now - time::Duration::minutes(5), now), "5 min ago");
        assert_eq!(ago(now - time::Duration::hours(3), now), "3 h ago");
        assert_eq!(ago(now - time::Duration::days(3), now), "3 d ago");
        assert_eq!(bytes(768 * 1024 * 1024), "768 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.50 GiB");
        assert_eq!(clock(now), "2030-01-01 12:00:00 UTC");
    }

    #[test]
    fn the_page_has_the_navigation_and_sign_out_only_when_signed_in() {
        let v = Viewer {
            name: "OP<1>".into(),
            role: Role::Operator,
            csrf: "tok".into(),
        };
        let p = page("Overview", "dept1", Some(&v), Nav::Overview, "<p>x</p>");
        assert!(p.contains(r#"href="/ui/" aria-current="page""#), "{p}");
        assert!(p.contains("OP&lt;1&gt; (operator)"));
        assert!(p.contains(r#"name="csrf" value="tok""#));
        let anonymous = page("Sign in", "dept1", None, Nav::None, "");
        assert!(!anonymous.contains("Sign out"));
    }
}

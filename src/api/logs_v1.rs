//! `POST /logs/v1/search`: Confluent Cloud's Logging API as `confluent connect logs <lcc-id>`
//! calls it, answered from the per-connector log buffers the supervisor already keeps (secrets
//! masked when each line was read).
//!
//! The CLI sends this to the host `api.logging.<login host>`; the route does not look at the
//! `Host` header, so any name that reaches the supervisor works. Who may search is decided in
//! [`crate::auth`] exactly as for `.../connectors/{name}/logs`: operators and admins (a viewer
//! gets 403). Only the department's organization, environment and cluster are served.
//!
//! Request: `{"crn": "crn://confluent.cloud/organization=<org>/environment=<env>/
//! cloud-cluster=<lkc>/connector=<name>", "search": {"level": ["ERROR", ...], "search_text":
//! <regex>, "id": <lcc-id>}, "sort": "desc"|"asc", "start_time", "end_time"}` with
//! `?page_size=&page_token=`. Answer: `{"api_version": "v1", "kind": "LoggingSearchResponse",
//! "data": [{"timestamp", "level", "message", "task_id", "id", "exception": {"stacktrace"}}],
//! "metadata": {"next": "/logs/v1/search?page_size=..&page_token=.."}}` (`next` only while more
//! lines match).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::error::{ApiError, JsonBody, Shape};
use crate::model::LogLevel;
use crate::observe::logs::LogRecord;
use crate::observe::logs::parse::format_timestamp;
use crate::translate::query_param;

/// Path of the search.
pub const SEARCH_PATH: &str = "/logs/v1/search";
/// Lines per page when the request does not say (the CLI asks for 200).
pub const DEFAULT_PAGE_SIZE: usize = 200;
/// Most lines per page.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Largest compiled `search_text` regex (bytes), so a search cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Prefix of the CRNs the CLI sends.
const CRN_PREFIX: &str = "crn://confluent.cloud/";

type Result<T> = std::result::Result<T, ApiError>;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route(SEARCH_PATH, post(search))
}

/// The parts of a logs CRN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Crn {
    /// `organization=`.
    pub organization: Option<String>,
    /// `environment=`.
    pub environment: Option<String>,
    /// `cloud-cluster=`.
    pub cluster: Option<String>,
    /// `connector=`.
    pub connector: Option<String>,
}

/// Parses `crn://confluent.cloud/organization=../environment=../cloud-cluster=../connector=..`.
pub fn parse_crn(text: &str) -> std::result::Result<Crn, String> {
    let rest = text.strip_prefix(CRN_PREFIX).ok_or_else(|| {
        format!("crn: \"{text}\" does not start with {CRN_PREFIX}; send crn://confluent.cloud/organization=<org>/environment=<env>/cloud-cluster=<lkc>/connector=<name>")
    })?;
    let mut crn = Crn::default();
    // The connector name is last and may hold anything after `connector=`.
    let (head, connector) = match rest.split_once("/connector=") {
        Some((head, name)) => (head, Some(name)),
        None => match rest.strip_prefix("connector=") {
            Some(name) => ("", Some(name)),
            None => (rest, None),
        },
    };
    crn.connector = connector.map(str::to_string);
    for part in head.split('/').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("crn: segment \"{part}\" is not <kind>=<id>"))?;
        let slot = match k {
            "organization" => &mut crn.organization,
            "environment" => &mut crn.environment,
            "cloud-cluster" => &mut crn.cluster,
            other => {
                return Err(format!(
                    "crn: segment kind \"{other}\" is not one of organization, environment, cloud-cluster, connector"
                ));
            }
        };
        *slot = Some(v.to_string());
    }
    Ok(crn)
}

/// Where a page starts: after the line with this sequence number, in the search's order.
fn encode_page_token(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_page_token(token: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("seq:")?
        .parse()
        .ok()
}

/// A validated search.
#[derive(Debug)]
pub struct Search {
    /// The connector.
    pub connector: String,
    /// The lcc id the CLI sent, if any.
    pub id: Option<String>,
    /// Levels to return (empty: all).
    pub levels: Vec<LogLevel>,
    /// Regex over message and stack trace.
    pub text: Option<regex::Regex>,
    /// Newest first (`desc`, the CLI's) or oldest first.
    pub newest_first: bool,
    /// Window start (inclusive).
    pub start: Option<OffsetDateTime>,
    /// Window end (inclusive).
    pub end: Option<OffsetDateTime>,
    /// Lines per page.
    pub page_size: usize,
    /// Continue after this sequence number.
    pub after_seq: Option<u64>,
}

impl Search {
    /// Whether `r` matches, ignoring the page cursor.
    pub fn matches(&self, r: &LogRecord) -> bool {
        (self.levels.is_empty() || self.levels.contains(&r.level))
            && self.start.is_none_or(|t| r.time >= t)
            && self.end.is_none_or(|t| r.time <= t)
            && self.after_seq.is_none_or(|s| {
                if self.newest_first {
                    r.seq < s
                } else {
                    r.seq > s
                }
            })
            && self
                .text
                .as_ref()
                .is_none_or(|re| re.is_match(&r.message) || re.is_match(&r.stack))
    }
}

fn time_field(body: &Value, key: &str, problems: &mut Vec<String>) -> Option<OffsetDateTime> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                problems.push(format!(
                    "{key}: \"{s}\" is not an RFC 3339 time; use e.g. 2025-02-01T00:00:00Z"
                ));
                None
            }
        },
        Some(_) => {
            problems.push(format!("{key}: must be an RFC 3339 time string"));
            None
        }
    }
}

/// Reads and checks a search request: every problem at once.
pub fn parse_search(
    body: &Value,
    query: Option<&str>,
) -> std::result::Result<(Crn, Search), Vec<String>> {
    let mut problems = Vec::new();
    if !body.is_object() {
        return Err(vec![
            "the body must be a JSON object with crn and search".into(),
        ]);
    }
    let crn = match body.get("crn").and_then(Value::as_str) {
        Some(text) => match parse_crn(text) {
            Ok(c) => Some(c),
            Err(p) => {
                problems.push(p);
                None
            }
        },
        None => {
            problems.push("crn: missing; send the connector's CRN, crn://confluent.cloud/organization=<org>/environment=<env>/cloud-cluster=<lkc>/connector=<name>".into());
            None
        }
    };
    if let Some(c) = &crn
        && c.connector.as_deref().is_none_or(str::is_empty)
    {
        problems.push("crn: names no connector; end it with /connector=<name>".into());
    }
    let search = body.get("search").cloned().unwrap_or(Value::Null);
    if !(search.is_object() || search.is_null()) {
        problems.push("search: must be an object with level, search_text and id".into());
    }
    let mut levels = Vec::new();
    match search.get("level") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_str().and_then(LogLevel::parse) {
                    Some(l) => levels.push(l),
                    None => problems.push(format!(
                        "search.level: {item} is not a log level; use INFO, WARN or ERROR (also TRACE, DEBUG, FATAL)"
                    )),
                }
            }
        }
        Some(_) => problems
            .push("search.level: must be a list of levels, e.g. [\"ERROR\", \"WARN\"]".into()),
    }
    let text = match search.get("search_text").and_then(Value::as_str) {
        None | Some("") => None,
        Some(t) => match regex::RegexBuilder::new(t)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(re) => Some(re),
            Err(_) => {
                problems.push(format!(
                    "search.search_text: \"{t}\" is not a valid regular expression"
                ));
                None
            }
        },
    };
    let id = search
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let newest_first = match body.get("sort").and_then(Value::as_str) {
        None | Some("desc") | Some("DESC") => true,
        Some("asc") | Some("ASC") => false,
        Some(other) => {
            problems.push(format!(
                "sort: \"{other}\" is not an order; use desc or asc"
            ));
            true
        }
    };
    let start = time_field(body, "start_time", &mut problems);
    let end = time_field(body, "end_time", &mut problems);
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        problems.push("end_time: is before start_time".into());
    }
    let page_size = match query_param(query, "page_size") {
        None => DEFAULT_PAGE_SIZE,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                problems.push(format!(
                    "page_size: \"{t}\" is not a number from 1 to {MAX_PAGE_SIZE}"
                ));
                DEFAULT_PAGE_SIZE
            }
        },
    };
    let after_seq = match query_param(query, "page_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match decode_page_token(&t) {
            Some(seq) => Some(seq),
            None => {
                problems.push("page_token: is not a page token of this search; pass the page_token of metadata.next".into());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let crn = crn.expect("no problems: the crn parsed");
    let connector = crn.connector.clone().expect("no problems: it names one");
    Ok((
        crn,
        Search {
            connector,
            id,
            levels,
            text,
            newest_first,
            start,
            end,
            page_size,
            after_seq,
        },
    ))
}

/// One line in the logs/v1 shape.
pub fn entry(r: &LogRecord, id: &str) -> Value {
    let mut e = json!({
        "timestamp": format_timestamp(r.time),
        "level": r.level.as_str(),
        "message": r.message,
        "id": id,
    });
    if let Some(task) = r.task {
        e["task_id"] = json!(format!("task-{task}"));
    }
    if !r.stack.is_empty() {
        e["exception"] = json!({ "stacktrace": r.stack });
    }
    e
}

fn error(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError::new(status, code, message).shaped(Shape::Managed)
}

/// `POST /logs/v1/search?page_size=&page_token=`.
async fn search(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let (crn, search) = parse_search(&body, query.as_deref())
        .map_err(|problems| ApiError::bad_request(&problems))?;
    let department = state.supervisor.department();
    let org = super::cloud::organization(&department.id);
    let mismatch = [
        (
            "organization",
            crn.organization.as_deref(),
            &org.resource_id,
        ),
        (
            "environment",
            crn.environment.as_deref(),
            &department.environment_id,
        ),
        (
            "cloud-cluster",
            crn.cluster.as_deref(),
            &department.kafka_cluster_id,
        ),
    ]
    .into_iter()
    .find(|(_, sent, ours)| sent.is_some_and(|s| s != ours.as_str()));
    if let Some((kind, sent, ours)) = mismatch {
        return Err(error(
            StatusCode::NOT_FOUND,
            "crn_not_served",
            format!(
                "crn: {kind} {} is not served here; this supervisor serves {kind} {ours}",
                sent.unwrap_or_default()
            ),
        ));
    }
    let name = &search.connector;
    let id = state.connectors.connector_id(name);
    if let Some(sent) = &search.id
        && *sent != id
    {
        return Err(error(
            StatusCode::NOT_FOUND,
            "connector_id_mismatch",
            format!("search.id: connector {name} has id {id}, not {sent}"),
        ));
    }
    // One more than a page tells whether another page follows.
    let lines = match state.supervisor.observer().logs().scan_connector(
        name,
        search.newest_first,
        search.page_size + 1,
        |r| search.matches(r),
    ) {
        Some(lines) => lines,
        None => {
            // No line yet: an existing connector has an empty log, an unknown one is a 404.
            state
                .connectors
                .info(name)
                .await
                .map_err(|e| ApiError::from_connectors(e, Shape::Managed))?;
            Vec::new()
        }
    };
    let more = lines.len() > search.page_size;
    let mut page = lines;
    page.truncate(search.page_size);
    // The page continues after the last line read (by arrival); within the page, lines are in
    // time order, since lines of different threads can arrive a few milliseconds out of order.
    let cursor = if search.newest_first {
        page.iter().map(|r| r.seq).min()
    } else {
        page.iter().map(|r| r.seq).max()
    };
    page.sort_by_key(|r| (r.time, r.seq));
    if search.newest_first {
        page.reverse();
    }
    let mut metadata = json!({});
    if more && let Some(cursor) = cursor {
        metadata["next"] = json!(format!(
            "{SEARCH_PATH}?page_size={}&page_token={}",
            search.page_size,
            encode_page_token(cursor)
        ));
    }
    Ok(Json(json!({
        "api_version": "v1",
        "kind": "LoggingSearchResponse",
        "data": page.iter().map(|r| entry(r, &id)).collect::<Vec<_>>(),
        "metadata": metadata,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crns_are_read_the_way_the_cli_writes_them() {
        let c = parse_crn("crn://confluent.cloud/organization=o-1/environment=env-a/cloud-cluster=lkc-a/connector=dept1-x").unwrap();
        assert_eq!(c.organization.as_deref(), Some("o-1"));
        assert_eq!(c.environment.as_deref(), Some("env-a"));
        assert_eq!(c.cluster.as_deref(), Some("lkc-a"));
        assert_eq!(c.connector.as_deref(), Some("dept1-x"));
        assert!(parse_crn("crn://other/x").is_err());
        assert!(
            parse_crn("crn://confluent.cloud/planet=mars")
                .unwrap_err()
                .contains("planet")
        );
    }

    #[test]
    fn a_bad_search_names_every_problem() {
        let body = json!({
            "crn": "crn://confluent.cloud/environment=env-a",
            "search": {"level": ["LOUD"], "search_text": "(unclosed"},
            "sort": "sideways",
            "start_time": "yesterday",
            "end_time": 5,
        });
        let problems = parse_search(&body, Some("page_size=0&page_token=zz")).unwrap_err();
        let text = problems.join("\n");
        for field in [
            "crn:",
            "search.level:",
            "search.search_text:",
            "sort:",
            "start_time:",
            "end_time:",
            "page_size:",
            "page_token:",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
    }

    #[test]
    fn a_cli_search_parses_with_its_defaults_and_page_tokens_round_trip() {
        let body = json!({
            "crn": "crn://confluent.cloud/organization=o/environment=e/cloud-cluster=c/connector=n",
            "search": {"level": ["ERROR", "WARN"], "search_text": "exa*", "id": "lcc-1"},
            "sort": "desc",
            "start_time": "2025-02-01T00:00:00Z",
            "end_time": "2025-02-01T23:59:59Z",
        });
        let token = encode_page_token(42);
        let (_, s) =
            parse_search(&body, Some(&format!("page_size=200&page_token={token}"))).unwrap();
        assert_eq!(s.connector, "n");
        assert_eq!(s.levels, [LogLevel::Error, LogLevel::Warn]);
        assert!(s.newest_first);
        assert_eq!((s.page_size, s.after_seq), (200, Some(42)));
        assert_eq!(s.id.as_deref(), Some("lcc-1"));
        assert!(s.text.unwrap().is_match("an example"));
        assert_eq!(decode_page_token("bm9wZQ"), None);
    }
}

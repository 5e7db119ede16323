//! Request parts parsed the way clients send them: `expand` (repeated, comma-joined,
//! percent-encoded, as Go clients send it), query parameters, path segments, and the names that
//! cannot be sent to Connect in a path at all.

/// Which expansions a list asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expand {
    /// `id`.
    pub id: bool,
    /// `info`.
    pub info: bool,
    /// `status`.
    pub status: bool,
}

/// The `expand` of a raw query string, or `None` when there is no `expand` parameter (a plain
/// list of names). Repeated parameters, comma-joined values and percent-encoding (`%2C`) are all
/// accepted and their union taken, as the Go SDK sends `?expand=info%2Cstatus%2Cid&expand=id`.
/// Unknown values are ignored, as Connect does.
pub fn parse_expand(query: Option<&str>) -> Option<Expand> {
    let mut found = false;
    let mut expand = Expand::default();
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) != "expand" {
            continue;
        }
        found = true;
        for item in percent_decode(value).split(',') {
            match item.trim() {
                "id" => expand.id = true,
                "info" => expand.info = true,
                "status" => expand.status = true,
                _ => {}
            }
        }
    }
    found.then_some(expand)
}

/// The value of query parameter `name` (last one wins), percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    values(query, name).next_back()
}

/// Every value of the query parameter `name`, in order (`?exclude=a&exclude=b`).
pub fn query_params(query: Option<&str>, name: &str) -> Vec<String> {
    values(query, name).collect()
}

/// The values of `name`, decoded as they are taken.
fn values<'a>(
    query: Option<&'a str>,
    name: &'a str,
) -> impl DoubleEndedIterator<Item = String> + 'a {
    query.unwrap_or("").split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component; invalid escapes are kept
/// as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes the `%XX` escapes of one URL path segment (`+` stays `+`); `None` for an invalid
/// escape or bytes that are not UTF-8.
pub fn decode_path_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Longest connector or plugin name sent to Connect in a path: Jetty answers longer request
/// lines with an HTML page, and no naming rule comes near it.
pub const MAX_PATH_NAME_CHARS: usize = 1024;

/// Why `name` (a connector or plugin name, `what` says which) cannot be sent to Connect as one
/// path segment, or `None` when it can. Connect refuses `/` in names; Jetty refuses encoded
/// separators, backslashes, percent signs and control characters with an HTML page; URLs
/// resolve `.` and `..` away (even percent-encoded), so `DELETE .../connectors/..` would reach
/// the worker as `DELETE /`. Such a name can never exist on a worker: refused before any call.
pub fn unaddressable(name: &str, what: &str) -> Option<String> {
    let shown = name.escape_debug().to_string();
    let fix = "use letters, digits, '-', '_' and '.' (e.g. dept1-postgres-source-prod-001)";
    let why = if name.is_empty() {
        "is empty".to_string()
    } else if name == "." || name == ".." {
        "is a relative path segment (\".\" and \"..\" are resolved away in URLs)".to_string()
    } else if name.chars().count() > MAX_PATH_NAME_CHARS {
        format!("is longer than {MAX_PATH_NAME_CHARS} characters")
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!("contains the control character U+{:04X}", c as u32)
    } else if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\' | '%' | ';')) {
        format!("contains '{c}'")
    } else {
        return None;
    };
    Some(format!(
        "{what} \"{shown}\" {why}; Kafka Connect cannot hold or address such a name: {fix}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expand_takes_the_union_of_every_form_clients_send() {
        let all = Expand {
            id: true,
            info: true,
            status: true,
        };
        assert_eq!(parse_expand(None), None);
        assert_eq!(parse_expand(Some("")), None);
        assert_eq!(parse_expand(Some("other=1")), None);
        assert_eq!(parse_expand(Some("expand=info%2Cstatus%2Cid")), Some(all));
        assert_eq!(parse_expand(Some("expand=info,status,id")), Some(all));
        assert_eq!(
            parse_expand(Some("expand=info%2cstatus&expand=id%2Cstatus")),
            Some(all)
        );
        assert_eq!(
            parse_expand(Some("expand=id&expand=status")),
            Some(Expand {
                id: true,
                info: false,
                status: true
            })
        );
        assert_eq!(
            parse_expand(Some("expand=id,%20info")),
            Some(Expand {
                id: true,
                info: true,
                status: false
            })
        );
        assert_eq!(parse_expand(Some("expand=bogus")), Some(Expand::default()));
        assert_eq!(parse_expand(Some("expand")), Some(Expand::default()));
    }

    #[test]
    fn percent_decoding_handles_escapes_plus_and_garbage() {
        assert_eq!(percent_decode("a%2Cb"), "a,b");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(
            query_param(Some("a=1&onlyFailed=true"), "onlyFailed").as_deref(),
            Some("true")
        );
        assert_eq!(query_param(Some("a=1"), "b"), None);
    }

    #[test]
    fn names_connect_cannot_hold_are_told_apart() {
        for ok in ["dept1-a", "dept1-a.b_c~d", "Ünïcode name", "a b"] {
            assert_eq!(unaddressable(ok, "connector name"), None, "{ok}");
        }
        for (bad, why) in [
            ("", "is empty"),
            (".", "relative path segment"),
            ("..", "relative path segment"),
            ("x\u{3}y", "U+0003"),
            ("x\ny", "U+000A"),
            ("x\0y", "U+0000"),
            ("a/b", "'/'"),
            ("a\\b", "'\\'"),
            ("a%b", "'%'"),
            ("a;b", "';'"),
        ] {
            let m = unaddressable(bad, "connector name").unwrap_or_else(|| panic!("{bad:?}"));
            assert!(m.contains(why), "{bad:?}: {m}");
            assert!(!m.contains('\n') && !m.contains('\u{3}'), "escaped: {m}");
        }
        assert!(unaddressable(&"a".repeat(MAX_PATH_NAME_CHARS + 1), "n").is_some());
    }

    proptest! {
        #[test]
        fn expand_parsing_never_panics(q in "[ -~]{0,40}") {
            let _ = parse_expand(Some(&q));
            let _ = percent_decode(&q);
        }
    }
}

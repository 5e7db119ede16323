//! Java `.properties` text: the one writer (worker properties, secret files, the embedded
//! broker's config) and the one parser (secret files read back, secret values learnt for log
//! redaction). What the writer renders, the parser gives back.

use std::collections::BTreeMap;

/// Renders properties in Java `.properties` syntax, escaping what the format requires.
pub fn render_properties(properties: &BTreeMap<String, String>) -> String {
    let mut out = String::from("# Written by connect-supervisor; changes are overwritten.\n");
    for (key, value) in properties {
        out.push_str(&escape_property(key, true));
        out.push('=');
        out.push_str(&escape_property(value, false));
        out.push('\n');
    }
    out
}

fn escape_property(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '#' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            // Java reads \uXXXX as UTF-16 code units: characters beyond the BMP need both
            // halves of their surrogate pair.
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses Java properties as [`render_properties`] writes them: one `key=value`
/// per line, `#`/`!` comments, and Java's escapes (`\\`, `\n`, `\r`, `\t`, `\f`, `\uXXXX` with
/// surrogate pairs, and `\` before any other character standing for that character). Line
/// continuations are not produced by the writer and are read as Java does.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start_matches([' ', '\t', '\u{c}']);
        if logical.is_empty() && (trimmed.is_empty() || trimmed.starts_with(['#', '!'])) {
            continue;
        }
        logical.push_str(trimmed);
        // An odd number of trailing backslashes continues the line.
        let trailing = logical.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 && lines.clone().next().is_some() {
            logical.pop();
            continue;
        }
        let (key, value) = split_entry(&logical);
        out.insert(unescape(key), unescape(value));
        logical.clear();
    }
    out
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace (Java's rule).
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                let key = &line[..i];
                let mut rest = line[i..].trim_start_matches([' ', '\t', '\u{c}']);
                if c.is_whitespace() || c == '\u{c}' {
                    if let Some(r) = rest.strip_prefix(['=', ':']) {
                        rest = r;
                    }
                } else {
                    rest = &rest[1..];
                }
                return (key, rest.trim_start_matches([' ', '\t', '\u{c}']));
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(text: &str) -> String {
    let mut units: Vec<u16> = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        let Some(next) = chars.next() else { break };
        let unit = match next {
            'n' => u16::from(b'\n'),
            'r' => u16::from(b'\r'),
            't' => u16::from(b'\t'),
            'f' => 0x0c,
            'u' => {
                let hex: String = chars.clone().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(v) if hex.len() == 4 => {
                        for _ in 0..4 {
                            chars.next();
                        }
                        v
                    }
                    _ => u16::from(b'u'),
                }
            }
            other => {
                let mut buf = [0u16; 2];
                units.extend_from_slice(other.encode_utf16(&mut buf));
                continue;
            }
        };
        units.push(unit);
    }
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn properties_are_escaped_for_java() {
        let mut p = BTreeMap::new();
        p.insert("a key=x".to_string(), "line1\nline2 \\ é".to_string());
        p.insert(
            "sasl.jaas.config".to_string(),
            "x required password=\"p\";".to_string(),
        );
        let text = render_properties(&p);
        assert!(
            text.contains("a\\ key\\=x=line1\\nline2 \\\\ \\u00e9\n"),
            "{text}"
        );
        assert!(
            text.contains("sasl.jaas.config=x required password=\"p\";\n"),
            "{text}"
        );
    }

    #[test]
    fn java_properties_are_read_with_their_escapes() {
        let text = "# comment\n! other comment\n\n  a = 1\nb:2\nc 3\nd\\=x=y\\=z\ne=\\u00e9\\n\\tend\nf=line\\\n   continued\ng=\n";
        let p = parse_properties(text);
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["d=x"], "y=z");
        assert_eq!(p["e"], "é\n\tend");
        assert_eq!(p["f"], "linecontinued");
        assert_eq!(p["g"], "");
        assert_eq!(p.len(), 7);
    }

    proptest! {
        /// What the writer renders, the reader gives back, for any keys and values (newlines,
        /// separators, leading spaces, non-ASCII and supplementary characters included).
        #[test]
        fn rendering_then_parsing_round_trips(
            entries in proptest::collection::btree_map(
                "[a-z.]{1,8}[ =:#!a-z\\\\]{0,3}",
                any::<String>(),
                0..6,
            )
        ) {
            let text = render_properties(&entries);
            prop_assert_eq!(parse_properties(&text), entries);
        }
    }
}

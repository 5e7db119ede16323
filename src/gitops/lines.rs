//! Where each value of a JSON text is: a map from JSON path (`$.config["tasks.max"]`) to the
//! 1-based line and column of its key (or of the value itself for the root and array items), so
//! findings can point CI annotations at the right line. `serde_json` keeps no positions.
//!
//! The scanner assumes valid JSON (the text was parsed before); on anything unexpected it stops
//! and returns what it found so far, which only costs precision, never correctness.

use std::collections::HashMap;

/// A position in a text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: usize,
    /// Column, in characters.
    pub column: usize,
}

/// The JSON path of member `key` of the object at `parent`.
pub fn member(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", serde_json::Value::String(key.to_string()))
    }
}

/// The JSON path of the member or item containing `path` (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    let cut = if path.ends_with("\"]") {
        // A quoted key: inside it every '"' is escaped, so the last `["` starts the segment.
        path.rfind("[\"")?
    } else if path.ends_with(']') {
        path.rfind('[')?
    } else {
        path.rfind('.')?
    };
    (cut > 0).then(|| &path[..cut])
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
    out: HashMap<String, Position>,
}

impl Scanner<'_> {
    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
    }

    fn string(&mut self) -> Option<String> {
        // The opening quote is the current character.
        self.bump();
        let mut raw = String::from("\"");
        loop {
            let c = self.bump()?;
            raw.push(c);
            match c {
                '\\' => raw.push(self.bump()?),
                '"' => break,
                _ => {}
            }
        }
        serde_json::from_str(&raw).ok()
    }

    fn value(&mut self, path: &str) -> Option<()> {
        self.skip_space();
        match *self.chars.peek()? {
            '{' => {
                self.bump();
                loop {
                    self.skip_space();
                    match *self.chars.peek()? {
                        '}' => {
                            self.bump();
                            return Some(());
                        }
                        ',' => {
                            self.bump();
                        }
                        '"' => {
                            let at = self.position();
                            let key = self.string()?;
                            let child = member(path, &key);
                            self.out.entry(child.clone()).or_insert(at);
                            self.skip_space();
                            if self.bump()? != ':' {
                                return None;
                            }
                            self.value(&child)?;
                        }
                        _ => return None,
                    }
                }
            }
            '[' => {
                self.bump();
                let mut index = 0;
                loop {
                    self.skip_space();
                    match *self.chars.peek()? {
                        ']' => {
                            self.bump();
                            return Some(());
                        }
                        ',' => {
                            self.bump();
                            index += 1;
                        }
                        _ => {
                            let child = format!("{path}[{index}]");
                            let at = self.position();
                            self.out.entry(child.clone()).or_insert(at);
                            self.value(&child)?;
                        }
                    }
                }
            }
            '"' => self.string().map(|_| ()),
            _ => {
                while self
                    .chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    self.bump();
                }
                Some(())
            }
        }
    }
}

/// Positions of every member and item of the JSON `text`, keyed by JSON path (`$` is the root).
pub fn positions(text: &str) -> HashMap<String, Position> {
    let mut scanner = Scanner {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
        out: HashMap::new(),
    };
    scanner.skip_space();
    let root = scanner.position();
    scanner.out.insert("$".to_string(), root);
    let _ = scanner.value("$");
    scanner.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_gets_its_line_and_column() {
        let text = "{\n  \"name\": \"a\",\n  \"config\": {\n    \"tasks.max\": \"2\",\n    \"x\\\"y\": [1, {\"k\": true}]\n  }\n}\n";
        let p = positions(text);
        assert_eq!(p["$"], Position { line: 1, column: 1 });
        assert_eq!(p["$.name"], Position { line: 2, column: 3 });
        assert_eq!(p["$.config"].line, 3);
        assert_eq!(
            p["$.config[\"tasks.max\"]"],
            Position { line: 4, column: 5 }
        );
        assert_eq!(p["$.config[\"x\\\"y\"]"].line, 5);
        assert_eq!(p["$.config[\"x\\\"y\"][1].k"].line, 5);
    }

    #[test]
    fn paths_quote_keys_that_are_not_identifiers() {
        assert_eq!(member("$", "config"), "$.config");
        assert_eq!(member("$.config", "tasks.max"), "$.config[\"tasks.max\"]");
        assert_eq!(member("$", "1a"), "$[\"1a\"]");
    }

    #[test]
    fn parents_respect_quoted_keys() {
        assert_eq!(parent("$.config[\"a.b[c\"]"), Some("$.config"));
        assert_eq!(parent("$.config.x"), Some("$.config"));
        assert_eq!(parent("$.offsets[0]"), Some("$.offsets"));
        assert_eq!(parent("$.name"), Some("$"));
        assert_eq!(parent("$"), None);
    }

    #[test]
    fn broken_text_yields_what_was_found() {
        let p = positions("{\"a\": {\"b\": ");
        assert!(p.contains_key("$.a.b"));
    }
}

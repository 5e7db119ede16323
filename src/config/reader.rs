//! A TOML table walker that records every problem with its key path instead of stopping at the
//! first one (serde's derive stops at the first error), and reports keys nobody asked for.

use std::collections::BTreeSet;

use toml::{Table, Value};

use super::Problem;

/// Reads typed fields from one TOML table, collecting problems into a shared list.
pub(crate) struct TableReader<'a> {
    table: &'a Table,
    path: String,
    used: BTreeSet<&'a str>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> TableReader<'a> {
    /// A reader over `table`, found at `path` in the file (empty for the root).
    pub(crate) fn new(
        table: &'a Table,
        path: impl Into<String>,
        problems: &'a mut Vec<Problem>,
    ) -> Self {
        Self {
            table,
            path: path.into(),
            used: BTreeSet::new(),
            problems,
        }
    }

    /// The key path of `key` in this table.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Records a problem about `key` of this table.
    pub(crate) fn problem(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path_of(key);
        self.problems.push(Problem::new(path, message));
    }

    /// Records a problem at an arbitrary path.
    pub(crate) fn problem_at(&mut self, path: String, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// Whether the table has `key`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn get(&mut self, key: &'a str) -> Option<&'a Value> {
        self.used.insert(key);
        self.table.get(key)
    }

    fn wrong_type(&mut self, key: &str, expected: &str, found: &Value) {
        let found = found.type_str();
        self.problem(key, format!("expected {expected}, found {found}"));
    }

    /// An optional string.
    pub(crate) fn string(&mut self, key: &'a str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// A required string; records "missing" when absent.
    pub(crate) fn required_string(&mut self, key: &'a str, hint: &str) -> Option<String> {
        if !self.table.contains_key(key) {
            self.problem(key, format!("is required; {hint}"));
            self.used.insert(key);
            return None;
        }
        self.string(key)
    }

    /// An optional boolean.
    pub(crate) fn boolean(&mut self, key: &'a str) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(key, "true or false", other);
                None
            }
        }
    }

    /// The keys of this table, in file order (for tables whose keys are names, not settings).
    pub(crate) fn keys(&self) -> Vec<&'a str> {
        self.table.keys().map(String::as_str).collect()
    }

    /// An optional integer.
    pub(crate) fn integer(&mut self, key: &'a str) -> Option<i64> {
        match self.get(key)? {
            Value::Integer(i) => Some(*i),
            other => {
                self.wrong_type(key, "an integer", other);
                None
            }
        }
    }

    /// An optional integer within `range`.
    pub(crate) fn integer_in(
        &mut self,
        key: &'a str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let value = self.integer(key)?;
        if range.contains(&value) {
            Some(value)
        } else {
            self.problem(
                key,
                format!(
                    "{value} is out of range; use a value from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// An optional number given as integer, float or string (CPU: `1`, `0.5`, `"500m"`), returned
    /// as text for the caller to parse.
    pub(crate) fn number_text(&mut self, key: &'a str) -> Option<String> {
        match self.get(key)? {
            Value::Integer(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(key, "a number or a string", other);
                None
            }
        }
    }

    /// An optional array of strings.
    pub(crate) fn string_list(&mut self, key: &'a str) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let Value::Array(items) = value else {
            self.wrong_type(key, "an array of strings", value);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => {
                    let path = format!("{}[{i}]", self.path_of(key));
                    self.problem_at(
                        path,
                        format!("expected a string, found {}", other.type_str()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional table of string values (numbers and booleans are accepted and turned into
    /// their text, since Connect properties are strings anyway).
    pub(crate) fn string_map(&mut self, key: &'a str) -> Option<Vec<(String, String)>> {
        let value = self.get(key)?;
        let Value::Table(table) = value else {
            self.wrong_type(key, "a table of strings", value);
            return None;
        };
        let mut out = Vec::with_capacity(table.len());
        for (k, v) in table {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => {
                    let path = join(&self.path_of(key), k);
                    self.problem_at(
                        path,
                        format!("expected a string, found {}", other.type_str()),
                    );
                    continue;
                }
            };
            out.push((k.clone(), text));
        }
        Some(out)
    }

    /// An optional sub-table, as a reader sharing this reader's problem list.
    pub(crate) fn with_table<T>(
        &mut self,
        key: &'a str,
        read: impl FnOnce(&mut TableReader<'_>) -> T,
    ) -> Option<T> {
        let value = self.get(key)?;
        let Value::Table(table) = value else {
            self.wrong_type(key, "a table", value);
            return None;
        };
        let path = self.path_of(key);
        let mut reader = TableReader::new(table, path, self.problems);
        let out = read(&mut reader);
        reader.finish();
        Some(out)
    }

    /// An optional array of tables (`[[key]]`), each read by `read`.
    pub(crate) fn with_table_array<T>(
        &mut self,
        key: &'a str,
        mut read: impl FnMut(&mut TableReader<'_>) -> T,
    ) -> Option<Vec<T>> {
        let value = self.get(key)?;
        let Value::Array(items) = value else {
            self.wrong_type(key, "an array of tables", value);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.path_of(key));
            match item {
                Value::Table(table) => {
                    let mut reader = TableReader::new(table, path, self.problems);
                    out.push(read(&mut reader));
                    reader.finish();
                }
                other => self.problem_at(
                    path,
                    format!("expected a table, found {}", other.type_str()),
                ),
            }
        }
        Some(out)
    }

    /// Reports every key of the table that no read asked for (a typo or a misplaced key).
    pub(crate) fn finish(&mut self) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !self.used.contains(k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.problem(
                &key,
                "unknown key; check its spelling and the table it is in",
            );
        }
    }
}

fn join(path: &str, key: &str) -> String {
    let key = if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("\"{key}\"")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

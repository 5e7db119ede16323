//! The `[policy]` table of the department file: guardrail settings and the Rego policy folder.
//!
//! Reads the table into [`PolicyRules`], every problem with its key path; reads and compiles the
//! `.rego` files of `policy.rego_dir` (a file that does not compile is a problem naming the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::reader::TableReader;
use super::resolve;
use crate::model::Pool;
use crate::model::policy::OVERRIDE_PREFIXES;
use crate::model::policy::{
    BUILTIN_RULES, DLQ_PLACEHOLDERS, NamingRules, OverrideRules, Pattern, PlatformDefaults,
    PluginRules, PolicyRules, QuotaRules, RequiredKeys, TopicRules,
};
use crate::model::rego::{REGO_EXTENSION, RegoPolicies, RegoSource};

/// Suffix of Rego test files (OPA's convention), which are not policies.
pub const REGO_TEST_SUFFIX: &str = "_test.rego";

/// Reads the `[policy]` table; `base` resolves a relative `rego_dir`; the department id and
/// pools are checked against what the rules name.
pub(super) fn read_policy(
    t: &mut TableReader<'_>,
    base: &Path,
    department: Option<&str>,
    pools: &[Pool],
) -> Option<PolicyRules> {
    let mut ok = true;
    let naming = t
        .with_table("naming", read_naming)
        .unwrap_or_else(|| Some(NamingRules::default()));
    if let (Some(naming), Some(id)) = (&naming, department)
        && naming.require_department_prefix
        && naming.reserved_prefixes.iter().any(|p| p == id)
    {
        ok = false;
        let path = format!("{}.reserved_prefixes", t.path_of("naming"));
        t.problem_at(
            path,
            format!(
                "reserves \"{id}\", the department id itself, so every connector name would be \
                 refused; remove it"
            ),
        );
    }
    let quotas = t
        .with_table("quotas", read_quotas)
        .unwrap_or_else(|| Some(QuotaRules::default()));
    let plugins = t
        .with_table("plugins", |t| read_plugins(t, pools))
        .unwrap_or_default();
    let overrides = t
        .with_table("overrides", read_overrides)
        .unwrap_or_default();
    let topics = t
        .with_table("topics", |t| TopicRules {
            prefixes: t.string_list("prefixes"),
            extra_keys: t.string_list("extra_keys").unwrap_or_default(),
        })
        .unwrap_or_default();
    let required = t.with_table("required", read_required).unwrap_or_default();
    let defaults = t
        .with_table("defaults", read_defaults)
        .unwrap_or_else(|| Some(PlatformDefaults::default()));
    let disabled = t.string_list("disabled").unwrap_or_default();
    for rule in &disabled {
        if !BUILTIN_RULES.contains(&rule.as_str()) {
            ok = false;
            t.problem(
                "disabled",
                format!(
                    "\"{rule}\" is not a built-in rule id; use one of {}",
                    BUILTIN_RULES.join(", ")
                ),
            );
        }
    }
    let rego = match t.string("rego_dir") {
        None => Some(RegoPolicies::default()),
        Some(dir) => {
            let dir = resolve(base, &dir);
            match load_rego_dir(&dir) {
                Ok(policies) => Some(policies),
                Err(messages) => {
                    for message in messages {
                        t.problem("rego_dir", message);
                    }
                    None
                }
            }
        }
    };
    let rules = PolicyRules {
        naming: naming?,
        quotas: quotas?,
        plugins,
        overrides,
        topics,
        required,
        defaults: defaults?,
        rego: rego?,
        disabled,
    };
    ok.then_some(rules)
}

/// Reads and compiles the `.rego` files directly in `dir` (sorted by name; `*_test.rego` files
/// are OPA tests, not policies). Every problem is returned, each naming its file.
pub fn load_rego_dir(dir: &Path) -> Result<RegoPolicies, Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![format!(
            "cannot read the policy folder {}: {e}",
            dir.display()
        )]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == REGO_EXTENSION)
                && !p.to_string_lossy().ends_with(REGO_TEST_SUFFIX)
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(vec![format!(
            "the policy folder {} holds no .{REGO_EXTENSION} file; add policies or remove rego_dir",
            dir.display()
        )]);
    }
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(RegoSource {
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path,
                text,
            }),
            Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    match RegoPolicies::compile(sources) {
        Ok(policies) if problems.is_empty() => Ok(policies),
        Ok(_) => Err(problems),
        Err(compile) => {
            problems.extend(
                compile
                    .into_iter()
                    .map(|p| format!("{}: {}", p.path.display(), p.message)),
            );
            Err(problems)
        }
    }
}

fn read_naming(t: &mut TableReader<'_>) -> Option<NamingRules> {
    let defaults = NamingRules::default();
    let require_department_prefix = t
        .boolean("require_department_prefix")
        .unwrap_or(defaults.require_department_prefix);
    let pattern = match t.string("pattern") {
        None => Some(defaults.pattern),
        Some(text) => match Regex::new(&text) {
            Ok(re) => Some(Pattern(re)),
            Err(e) => {
                let first = e.to_string().lines().last().unwrap_or_default().to_string();
                t.problem(
                    "pattern",
                    format!("\"{text}\" is not a regular expression ({first})"),
                );
                None
            }
        },
    };
    let max_length = t
        .integer_in("max_length", 1..=255)
        .map(|n| n as usize)
        .unwrap_or(defaults.max_length);
    let reserved_prefixes = t
        .string_list("reserved_prefixes")
        .unwrap_or(defaults.reserved_prefixes);
    if reserved_prefixes
        .iter()
        .any(|p| p.is_empty() || p.contains('-'))
    {
        t.problem(
            "reserved_prefixes",
            "holds an empty prefix or one with a dash; reserved prefixes are single name \
             segments like \"admin\"",
        );
    }
    Some(NamingRules {
        require_department_prefix,
        pattern: pattern?,
        max_length,
        reserved_prefixes,
    })
}

fn read_quotas(t: &mut TableReader<'_>) -> Option<QuotaRules> {
    let defaults = QuotaRules::default();
    let max_connectors = t
        .integer_in("max_connectors", 1..=10_000)
        .map(|n| n as u32)
        .unwrap_or(defaults.max_connectors);
    let max_tasks_per_connector = t
        .integer_in("max_tasks_per_connector", 1..=1_000)
        .map(|n| n as u32)
        .unwrap_or(defaults.max_tasks_per_connector);
    // Unset: enough for every connector at its maximum, so only the other two limits bind.
    let max_tasks_total = t
        .integer_in("max_tasks_total", 1..=1_000_000)
        .map(|n| n as u32)
        .unwrap_or(max_connectors.saturating_mul(max_tasks_per_connector));
    Some(QuotaRules {
        max_connectors,
        max_tasks_per_connector,
        max_tasks_total,
    })
}

fn read_name_lists(t: &mut TableReader<'_>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for key in t.keys() {
        if let Some(list) = t.string_list(key) {
            out.insert(key.to_string(), list);
        }
    }
    out
}

fn read_plugins(t: &mut TableReader<'_>, known: &[Pool]) -> PluginRules {
    let allowed = t.string_list("allowed");
    let pools = t.with_table("pools", read_name_lists).unwrap_or_default();
    for (class, names) in &pools {
        for name in names {
            if !known.iter().any(|p| &p.name == name) {
                t.problem_at(
                    format!("{}.\"{class}\"", t.path_of("pools")),
                    format!("no pool is named \"{name}\"; use the name of one of the [[pools]]"),
                );
            }
        }
    }
    PluginRules { allowed, pools }
}

fn read_overrides(t: &mut TableReader<'_>) -> OverrideRules {
    let allowed = t.string_list("allowed").unwrap_or_default();
    for key in &allowed {
        if !OVERRIDE_PREFIXES.iter().any(|p| key.starts_with(p)) {
            let path = t.path_of("allowed");
            t.problem_at(
                path,
                format!(
                    "\"{key}\" is not a client override key; override keys start with {}",
                    OVERRIDE_PREFIXES.join(", ")
                ),
            );
        }
    }
    OverrideRules { allowed }
}

fn read_required(t: &mut TableReader<'_>) -> RequiredKeys {
    RequiredKeys {
        source: t.string_list("source").unwrap_or_default(),
        sink: t.string_list("sink").unwrap_or_default(),
        classes: t.with_table("classes", read_name_lists).unwrap_or_default(),
    }
}

fn read_defaults(t: &mut TableReader<'_>) -> Option<PlatformDefaults> {
    let defaults = PlatformDefaults::default();
    let dead_letter_queue = t
        .boolean("dead_letter_queue")
        .unwrap_or(defaults.dead_letter_queue);
    let topic = t
        .string("dead_letter_queue_topic")
        .unwrap_or(defaults.dead_letter_queue_topic);
    let mut rest = topic.clone();
    for placeholder in DLQ_PLACEHOLDERS {
        rest = rest.replace(placeholder, "x");
    }
    let topic_ok = !topic.trim().is_empty() && !rest.contains(['{', '}']);
    if !topic_ok {
        t.problem(
            "dead_letter_queue_topic",
            format!(
                "\"{topic}\" is not a topic pattern; write a topic name using only the \
                 placeholders {}, e.g. \"{{connector}}-dlq\"",
                DLQ_PLACEHOLDERS.join(", ")
            ),
        );
    }
    let replication = t.integer_in("dead_letter_queue_replication_factor", -1..=32);
    if replication == Some(0) {
        t.problem(
            "dead_letter_queue_replication_factor",
            "0 is not a replication factor; use -1 for the broker default or 1 and more",
        );
    }
    topic_ok.then_some(PlatformDefaults {
        dead_letter_queue,
        dead_letter_queue_topic: topic,
        dead_letter_queue_replication_factor: replication.filter(|r| *r != 0).map(|r| r as i16),
    })
}

//! The pure half of `plan`: the connectors a folder wants ([`Desired`]) against what runs (the
//! [`Baseline`] read through the managed API), as an ordered list of [`Step`]s, and the plan
//! rendered for people, machines and pull-request comments. No I/O.
//!
//! Ownership: every connector `apply` writes carries [`OWNER_KEY`] naming the folder's owner
//! label. Only connectors with this folder's label are ever updated without `--adopt`, paused,
//! renamed or deleted; a connector created by hand (no label) or by another folder (another
//! label) is never touched: a file naming one is an error, and it is never pruned.
//!
//! Order of the steps (what `apply` runs): creates, updates, pauses and resumes, renames
//! (`--allow-renames`: carried with the offsets by [`crate::migrate::cutover::rename`];
//! `--allow-destroy-create`: delete the old name, create the new one), deletes (`--prune`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::check::{Baseline, RENAME_SIMILARITY, renames};
use super::secrets::{self, DIGESTS_KEY, GITOPS_KEY_PREFIX, OWNER_KEY};
use crate::policy::{self, PluginCatalog};

/// State a connector runs in when its file says nothing.
pub const DEFAULT_STATE: &str = "RUNNING";
/// The managed state of a paused connector.
pub const PAUSED: &str = "PAUSED";
/// Keys the managed API (or the supervisor) adds to what it reads back; compared only when the
/// file sets them.
const READ_ONLY_KEYS: &[&str] = &[
    crate::translate::KEY_CLOUD_ENVIRONMENT,
    crate::translate::KEY_CLOUD_PROVIDER,
    crate::translate::KEY_KAFKA_ENDPOINT,
    crate::translate::KEY_KAFKA_REGION,
    crate::translate::POOL_CONFIG_KEY,
];

/// A connector as the folder wants it.
#[derive(Clone, PartialEq, Eq)]
pub struct Desired {
    /// Its name.
    pub name: String,
    /// The file that defines it.
    pub file: PathBuf,
    /// The config to send (`${env:...}` resolved, `name` included, no gitops keys).
    pub config: BTreeMap<String, String>,
    /// Keys whose values are secrets (from `config_sensitive` or the department's patterns).
    pub secret_keys: BTreeSet<String>,
    /// `RUNNING` or `PAUSED`.
    pub state: String,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("keys", &self.config.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish()
    }
}

/// What `plan` was asked to do.
#[derive(Clone, Default)]
pub struct PlanOptions {
    /// The owner label of this folder (written to [`OWNER_KEY`]).
    pub owner: String,
    /// Delete connectors of this owner that no file defines.
    pub prune: bool,
    /// Carry out renames as a delete and a create (the connector's offsets are lost).
    pub allow_destroy_create: bool,
    /// Carry out renames with the offsets (stop, read offsets, create with them, delete);
    /// wins over `allow_destroy_create`. Never set by the drift mode's heal.
    pub allow_renames: bool,
    /// Take over running connectors that a file names but no folder (or another) owns.
    pub adopt: bool,
    /// Key of the secret digests.
    pub digest_key: Vec<u8>,
}

impl std::fmt::Debug for PlanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOptions")
            .field("owner", &self.owner)
            .field("prune", &self.prune)
            .field("allow_destroy_create", &self.allow_destroy_create)
            .field("allow_renames", &self.allow_renames)
            .field("adopt", &self.adopt)
            .finish_non_exhaustive()
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `POST .../connectors`.
    Create,
    /// `PUT .../connectors/{name}/config`.
    Update,
    /// `PUT .../connectors/{name}/pause`.
    Pause,
    /// `PUT .../connectors/{name}/resume`.
    Resume,
    /// A rename, carried as its [`RenameKind`] says.
    Rename,
    /// `DELETE .../connectors/{name}`.
    Delete,
}

impl Action {
    /// Short, bounded code (metric label).
    pub fn code(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Rename => "rename",
            Self::Delete => "delete",
        }
    }

    /// The drift kind this step corrects (`kcs_gitops_drift{kind}`).
    pub fn drift_kind(self) -> &'static str {
        match self {
            Self::Create => "missing",
            Self::Update => "config",
            Self::Pause | Self::Resume => "state",
            Self::Rename => "renamed",
            Self::Delete => "extra",
        }
    }
}

/// How a rename step is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenameKind {
    /// `--allow-renames`: [`crate::migrate::cutover::rename`] stops the old connector, creates
    /// the new one at its offsets and deletes the old one; then the file's config is put.
    CarryOffsets,
    /// `--allow-destroy-create`: delete the old name, create the new one (offsets lost).
    DestroyCreate,
}

impl RenameKind {
    /// Short, bounded code (plan outputs).
    pub fn code(self) -> &'static str {
        match self {
            Self::CarryOffsets => "carry-offsets",
            Self::DestroyCreate => "destroy-create",
        }
    }

    /// What it means for the offsets, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CarryOffsets => "offsets carried",
            Self::DestroyCreate => "destroy-create, offsets lost",
        }
    }
}

/// How one key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyChangeKind {
    /// Only in the file.
    Added,
    /// Only in what runs.
    Removed,
    /// In both, different.
    Changed,
}

/// One key of an update's diff. Secret values are never carried: `before`/`after` are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    /// The config key.
    pub key: String,
    /// Added, removed or changed.
    pub change: KeyChangeKind,
    /// Whether the value is a secret (values hidden).
    pub secret: bool,
    /// What runs now (non-secrets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// What the file says (non-secrets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// The config a step sends: its Debug shows keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SentConfig(pub BTreeMap<String, String>);

impl std::fmt::Debug for SentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// The connector (the new name of a rename).
    pub connector: String,
    /// The old name of a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// How a rename is carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rename: Option<RenameKind>,
    /// The file, when one defines the connector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Per-key diff of an update; secrets shown as changed, never their values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyChange>,
    /// Secret keys of the connector that stay as they are (updates).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets_unchanged: Vec<String>,
    /// Why (a rename, an adoption).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What is sent (creates, updates, renames); never serialized.
    #[serde(skip)]
    pub config: SentConfig,
    /// The state to put the connector in after a create or rename (`PAUSED`).
    #[serde(skip)]
    pub then_pause: bool,
}

/// Something `plan` refuses or reports without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The connector.
    pub connector: String,
    /// Bounded id (`gitops.unowned`, `gitops.rename-refused`, `gitops.prune-skipped`...).
    pub rule: &'static str,
    /// What is the matter.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// Rule id: a file names a running connector this folder does not own.
pub const RULE_UNOWNED: &str = "gitops.unowned";
/// Rule id: a rename was detected and neither `--allow-renames` nor `--allow-destroy-create`
/// was given.
pub const RULE_RENAME_REFUSED: &str = "gitops.rename-refused";
/// Rule id (note): an owned connector has no file, and `--prune` was not given.
pub const NOTE_PRUNE_SKIPPED: &str = "gitops.prune-skipped";

/// The plan: steps in the order `apply` runs them, refusals (errors) and notes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Changes to make.
    pub steps: Vec<Step>,
    /// Refusals: `plan` exits 1 and `apply` does nothing while any exists.
    pub errors: Vec<Notice>,
    /// Information (connectors left alone).
    pub notes: Vec<Notice>,
    /// Connectors of the folder that already run as defined.
    pub unchanged: Vec<String>,
}

impl Plan {
    /// Count of steps with `action`.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }
}

fn owner_of(config: &BTreeMap<String, String>) -> Option<&str> {
    config.get(OWNER_KEY).map(String::as_str)
}

fn compared(key: &str) -> bool {
    !key.starts_with("config.internal.")
}

/// The config `apply` sends for `desired`: the file's, the owner label, and the digests of its
/// secrets.
pub fn sent_config(desired: &Desired, options: &PlanOptions) -> BTreeMap<String, String> {
    let mut config: BTreeMap<String, String> = desired
        .config
        .iter()
        .filter(|(k, _)| !k.starts_with(GITOPS_KEY_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.insert(policy::NAME_KEY.into(), desired.name.clone());
    config.insert(OWNER_KEY.into(), options.owner.clone());
    let digests = digests_of(desired, options);
    if !digests.is_empty() {
        config.insert(DIGESTS_KEY.into(), secrets::encode_digests(&digests));
    }
    config
}

fn digests_of(desired: &Desired, options: &PlanOptions) -> BTreeMap<String, String> {
    desired
        .secret_keys
        .iter()
        .filter_map(|k| desired.config.get(k).map(|v| (k, v)))
        .map(|(k, v)| {
            (
                k.clone(),
                secrets::digest(&options.digest_key, &desired.name, k, v),
            )
        })
        .collect()
}

/// The per-key diff of `desired` against a running config, and the secret keys left as they
/// are. A running value masked by the API (`**...`) is a secret whatever its key.
pub fn diff(
    desired: &Desired,
    running: &BTreeMap<String, String>,
    options: &PlanOptions,
) -> (Vec<KeyChange>, Vec<String>) {
    let mut want = desired.config.clone();
    want.insert(policy::NAME_KEY.into(), desired.name.clone());
    let recorded = running
        .get(DIGESTS_KEY)
        .map(|t| secrets::decode_digests(t))
        .unwrap_or_default();
    let digests = digests_of(desired, options);
    let is_secret = |k: &str| {
        desired.secret_keys.contains(k) || running.get(k).is_some_and(|v| v.starts_with("**"))
    };
    let mut changes = Vec::new();
    let mut unchanged_secrets = Vec::new();
    let keys: BTreeSet<&String> = want.keys().chain(running.keys()).collect();
    for key in keys {
        if !compared(key) {
            continue;
        }
        let secret = is_secret(key);
        let change = match (running.get(key), want.get(key)) {
            (None, None) => None,
            (None, Some(_)) => Some(KeyChangeKind::Added),
            (Some(_), None) if READ_ONLY_KEYS.contains(&key.as_str()) => None,
            (Some(_), None) => Some(KeyChangeKind::Removed),
            (Some(before), Some(after)) if secret => {
                let same = match (recorded.get(key.as_str()), digests.get(key.as_str())) {
                    (Some(r), Some(d)) => r == d,
                    // A secret key the file does not mark secret, shown in clear by the API.
                    _ => !before.starts_with("**") && before == after,
                };
                if same {
                    unchanged_secrets.push(key.clone());
                    None
                } else {
                    Some(KeyChangeKind::Changed)
                }
            }
            (Some(before), Some(after)) => (before != after).then_some(KeyChangeKind::Changed),
        };
        if let Some(change) = change {
            changes.push(KeyChange {
                key: key.clone(),
                change,
                secret,
                before: if secret {
                    None
                } else {
                    running.get(key).cloned()
                },
                after: if secret { None } else { want.get(key).cloned() },
            });
        }
    }
    (changes, unchanged_secrets)
}

/// Plans `desired` against `baseline`.
pub fn plan(
    desired: &[Desired],
    baseline: &Baseline,
    catalog: &PluginCatalog,
    options: &PlanOptions,
) -> Plan {
    let mut out = Plan::default();
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut states = Vec::new();
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let ours = |config: &BTreeMap<String, String>| owner_of(config) == Some(options.owner.as_str());
    let mut new = Vec::new();
    for d in desired {
        let Some(running) = baseline.running.get(&d.name) else {
            new.push(d);
            continue;
        };
        let owned = ours(&running.config);
        if !owned && !options.adopt {
            let by = match owner_of(&running.config) {
                Some(other) => format!("the folder labelled \"{other}\""),
                None => "no folder (it was created by hand or by another tool)".to_string(),
            };
            out.errors.push(Notice {
                connector: d.name.clone(),
                rule: RULE_UNOWNED,
                message: format!(
                    "{} runs already and is managed by {by}; this folder (\"{}\") does not own it",
                    d.name, options.owner
                ),
                hint: "rename the file's connector, remove the file, or pass --adopt to take the \
                       connector over"
                    .into(),
            });
            continue;
        }
        let (mut keys, secrets_unchanged) = diff(d, &running.config, options);
        let mut note = None;
        if !owned {
            note = Some(format!(
                "adopted: the owner label becomes \"{}\"",
                options.owner
            ));
        }
        if keys.is_empty() && !owned {
            keys.push(KeyChange {
                key: OWNER_KEY.into(),
                change: KeyChangeKind::Added,
                secret: false,
                before: owner_of(&running.config).map(str::to_string),
                after: Some(options.owner.clone()),
            });
        }
        let running_paused = running.state.as_deref() == Some(PAUSED);
        let state_step = match (d.state == PAUSED, running_paused) {
            (true, false) => Some(Action::Pause),
            (false, true) => Some(Action::Resume),
            _ => None,
        };
        if keys.is_empty() && state_step.is_none() {
            out.unchanged.push(d.name.clone());
        }
        if !keys.is_empty() {
            updates.push(Step {
                action: Action::Update,
                connector: d.name.clone(),
                from: None,
                rename: None,
                file: Some(d.file.clone()),
                keys,
                secrets_unchanged,
                note,
                config: SentConfig(sent_config(d, options)),
                then_pause: false,
            });
        }
        if let Some(action) = state_step {
            states.push(Step {
                action,
                connector: d.name.clone(),
                from: None,
                rename: None,
                file: Some(d.file.clone()),
                keys: vec![],
                secrets_unchanged: vec![],
                note: running.state.as_ref().map(|s| format!("runs {s} now")),
                config: SentConfig::default(),
                then_pause: false,
            });
        }
    }
    // Connectors of this folder that no file defines: renamed, or to prune.
    let orphans: Vec<(&String, &super::check::RunningConnector)> = baseline
        .running
        .iter()
        .filter(|(name, r)| !wanted.contains(name.as_str()) && ours(&r.config))
        .collect();
    let pairs = renames(
        catalog,
        &new.iter()
            .map(|d| (d.name.as_str(), &d.config))
            .collect::<Vec<_>>(),
        &orphans
            .iter()
            .map(|(n, r)| (n.as_str(), &r.config))
            .collect::<Vec<_>>(),
    );
    let mut renamed_new = BTreeSet::new();
    let mut renamed_old = BTreeSet::new();
    let mut rename_steps = Vec::new();
    for pair in &pairs {
        let d = new[pair.new];
        let old = orphans[pair.old].0;
        renamed_new.insert(d.name.as_str());
        renamed_old.insert(old.as_str());
        let what = format!(
            "{} is new and {old} (this folder's, no file any more) has the same class and {} of \
             {} settings (at least {:.0}% count as a rename)",
            d.name,
            pair.shared,
            pair.compared,
            RENAME_SIMILARITY * 100.0
        );
        let kind = if options.allow_renames {
            Some(RenameKind::CarryOffsets)
        } else if options.allow_destroy_create {
            Some(RenameKind::DestroyCreate)
        } else {
            None
        };
        if let Some(kind) = kind {
            let how = match kind {
                RenameKind::CarryOffsets => format!(
                    "carried with the offsets: {old} is stopped, {} created at its offsets, \
                     {old} deleted, then the file's config put on {}",
                    d.name, d.name
                ),
                RenameKind::DestroyCreate => format!(
                    "carried out as delete {old} then create {}: the offsets of {old} are \
                     lost and {} starts over",
                    d.name, d.name
                ),
            };
            rename_steps.push(Step {
                action: Action::Rename,
                connector: d.name.clone(),
                from: Some(old.clone()),
                rename: Some(kind),
                file: Some(d.file.clone()),
                keys: vec![],
                secrets_unchanged: vec![],
                note: Some(format!("{what}; {how}")),
                config: SentConfig(sent_config(d, options)),
                then_pause: d.state == PAUSED,
            });
        } else {
            out.errors.push(Notice {
                connector: d.name.clone(),
                rule: RULE_RENAME_REFUSED,
                message: format!(
                    "{what}: renaming needs --allow-renames (the offsets of {old} are carried to \
                     {}) or --allow-destroy-create (delete and create: the offsets are lost)",
                    d.name
                ),
                hint: format!(
                    "keep the name {old}; or pass --allow-renames to carry its offsets to {}; or \
                     --allow-destroy-create to accept that {} starts with no offsets",
                    d.name, d.name
                ),
            });
        }
    }
    for d in new {
        if renamed_new.contains(d.name.as_str()) {
            continue;
        }
        creates.push(Step {
            action: Action::Create,
            connector: d.name.clone(),
            from: None,
            rename: None,
            file: Some(d.file.clone()),
            keys: vec![],
            secrets_unchanged: vec![],
            note: None,
            config: SentConfig(sent_config(d, options)),
            then_pause: d.state == PAUSED,
        });
    }
    let mut deletes = Vec::new();
    for (name, running) in &orphans {
        if renamed_old.contains(name.as_str()) {
            continue;
        }
        if options.prune {
            deletes.push(Step {
                action: Action::Delete,
                connector: (*name).clone(),
                from: None,
                rename: None,
                file: None,
                keys: vec![],
                secrets_unchanged: vec![],
                note: running.state.as_ref().map(|s| format!("runs {s} now")),
                config: SentConfig::default(),
                then_pause: false,
            });
        } else {
            out.notes.push(Notice {
                connector: (*name).clone(),
                rule: NOTE_PRUNE_SKIPPED,
                message: format!("{name} belongs to this folder but no file defines it any more"),
                hint: "pass --prune to delete it, or restore its file".into(),
            });
        }
    }
    out.steps.extend(creates);
    out.steps.extend(updates);
    out.steps.extend(states);
    out.steps.extend(rename_steps);
    out.steps.extend(deletes);
    out
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// One line of totals: `Plan: 1 to create, 2 to update, ...`.
pub fn summary_line(plan: &Plan) -> String {
    let mut parts = Vec::new();
    for (action, verb) in [
        (Action::Create, "create"),
        (Action::Update, "update"),
        (Action::Pause, "pause"),
        (Action::Resume, "resume"),
        (Action::Rename, "rename"),
        (Action::Delete, "delete"),
    ] {
        let n = plan.count(action);
        if n > 0 {
            parts.push(format!("{n} to {verb}"));
        }
    }
    let changes = if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    };
    let mut line = format!(
        "Plan: {changes}; {} unchanged",
        plural(plan.unchanged.len(), "connector")
    );
    if !plan.errors.is_empty() {
        line.push_str(&format!(", {}", plural(plan.errors.len(), "error")));
    }
    line
}

fn key_line(k: &KeyChange) -> String {
    let quote = |v: &Option<String>| format!("\"{}\"", v.as_deref().unwrap_or_default());
    match (k.change, k.secret) {
        (KeyChangeKind::Added, true) => format!("+ {} = (secret, set)", k.key),
        (KeyChangeKind::Removed, true) => format!("- {} (secret, removed)", k.key),
        (KeyChangeKind::Changed, true) => format!("~ {} (secret, changed)", k.key),
        (KeyChangeKind::Added, false) => format!("+ {} = {}", k.key, quote(&k.after)),
        (KeyChangeKind::Removed, false) => format!("- {} (was {})", k.key, quote(&k.before)),
        (KeyChangeKind::Changed, false) => {
            format!("~ {}: {} -> {}", k.key, quote(&k.before), quote(&k.after))
        }
    }
}

fn step_title(s: &Step) -> String {
    match (&s.action, &s.from) {
        (Action::Rename, Some(from)) => match s.rename {
            Some(kind) => format!("rename {from} -> {}  [{}]", s.connector, kind.describe()),
            None => format!("rename {from} -> {}", s.connector),
        },
        (action, _) => format!("{} {}", action.code(), s.connector),
    }
}

/// The plan for people.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    for s in &plan.steps {
        out.push_str(&step_title(s));
        if let Some(file) = &s.file {
            out.push_str(&format!("  ({})", file.display()));
        }
        out.push('\n');
        for k in &s.keys {
            out.push_str(&format!("    {}\n", key_line(k)));
        }
        if !s.secrets_unchanged.is_empty() {
            out.push_str(&format!(
                "    = secrets unchanged: {}\n",
                s.secrets_unchanged.join(", ")
            ));
        }
        if s.then_pause {
            out.push_str("    then pause (state PAUSED)\n");
        }
        if let Some(note) = &s.note {
            out.push_str(&format!("    note: {note}\n"));
        }
    }
    for e in &plan.errors {
        out.push_str(&format!(
            "error[{}] {}: {}\n    hint: {}\n",
            e.rule, e.connector, e.message, e.hint
        ));
    }
    for n in &plan.notes {
        out.push_str(&format!(
            "note[{}] {}: {}\n    hint: {}\n",
            n.rule, n.connector, n.message, n.hint
        ));
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// The plan as one JSON document (`summary`, `steps`, `errors`, `notes`, `unchanged`).
pub fn render_json(plan: &Plan) -> String {
    let counts: BTreeMap<&str, usize> = [
        Action::Create,
        Action::Update,
        Action::Pause,
        Action::Resume,
        Action::Rename,
        Action::Delete,
    ]
    .into_iter()
    .map(|a| (a.code(), plan.count(a)))
    .collect();
    let doc = serde_json::json!({
        "summary": {"changes": plan.steps.len(), "errors": plan.errors.len(), "counts": counts, "unchanged": plan.unchanged.len()},
        "steps": plan.steps,
        "errors": plan.errors,
        "notes": plan.notes,
        "unchanged": plan.unchanged,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('`', "'")
}

/// The plan as a Markdown pull-request comment.
pub fn render_markdown(plan: &Plan, target: &str) -> String {
    let mut out = format!(
        "### connect-supervisor plan\n\n**{}** against `{}`\n\n",
        summary_line(plan),
        md_escape(target)
    );
    if !plan.steps.is_empty() {
        out.push_str("| action | connector | changes |\n|---|---|---|\n");
        for s in &plan.steps {
            let mut changes: Vec<String> = s
                .keys
                .iter()
                .map(|k| format!("`{}`", md_escape(&key_line(k))))
                .collect();
            if !s.secrets_unchanged.is_empty() {
                changes.push(format!(
                    "secrets unchanged: {}",
                    md_escape(&s.secrets_unchanged.join(", "))
                ));
            }
            if let Some(kind) = s.rename {
                changes.push(kind.describe().into());
            }
            if s.then_pause {
                changes.push("then pause".into());
            }
            if let Some(note) = &s.note {
                changes.push(md_escape(note));
            }
            let name = match &s.from {
                Some(from) => format!("`{}` → `{}`", md_escape(from), md_escape(&s.connector)),
                None => format!("`{}`", md_escape(&s.connector)),
            };
            out.push_str(&format!(
                "| {} | {name} | {} |\n",
                s.action.code(),
                changes.join("<br>")
            ));
        }
        out.push('\n');
    }
    for (title, list) in [("Errors", &plan.errors), ("Notes", &plan.notes)] {
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("**{title}**\n\n"));
        for n in list {
            out.push_str(&format!(
                "- `{}` {}: {} _{}_\n",
                n.rule,
                md_escape(&n.connector),
                md_escape(&n.message),
                md_escape(&n.hint)
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::check::RunningConnector;
    use super::*;

    fn options() -> PlanOptions {
        PlanOptions {
            owner: "connectors/prod".into(),
            digest_key: b"k".to_vec(),
            ..PlanOptions::default()
        }
    }

    fn desired(name: &str, extra: &[(&str, &str)]) -> Desired {
        let mut config = BTreeMap::from([
            (
                "connector.class".to_string(),
                "FileStreamSource".to_string(),
            ),
            ("topic".to_string(), format!("{name}-t")),
            ("file".to_string(), "/tmp/in".to_string()),
            ("tasks.max".to_string(), "1".to_string()),
        ]);
        for (k, v) in extra {
            config.insert(k.to_string(), v.to_string());
        }
        Desired {
            name: name.into(),
            file: PathBuf::from(format!("{name}.json")),
            config,
            secret_keys: BTreeSet::new(),
            state: DEFAULT_STATE.into(),
        }
    }

    /// What the managed API reads back after `apply` sent `d`: masked secrets, added keys.
    fn running(d: &Desired, o: &PlanOptions, state: &str) -> RunningConnector {
        let mut config = sent_config(d, o);
        for k in &d.secret_keys {
            config.insert(k.clone(), "****************".into());
        }
        config.insert("cloud.provider".into(), "self-managed".into());
        config.insert("supervisor.pool".into(), "shared".into());
        RunningConnector {
            config,
            state: Some(state.into()),
        }
    }

    fn baseline(items: Vec<(&str, RunningConnector)>) -> Baseline {
        Baseline {
            connectors: items.iter().map(|(n, _)| (n.to_string(), 1)).collect(),
            running: items.into_iter().map(|(n, r)| (n.to_string(), r)).collect(),
            source: Some("http://cs".into()),
        }
    }

    fn actions(p: &Plan) -> Vec<(Action, String)> {
        p.steps
            .iter()
            .map(|s| (s.action, s.connector.clone()))
            .collect()
    }

    #[test]
    fn an_empty_department_gets_creates_and_a_second_plan_is_empty() {
        let o = options();
        let files = vec![desired("d-a", &[]), desired("d-b", &[])];
        let p = plan(&files, &Baseline::default(), &PluginCatalog::default(), &o);
        assert_eq!(
            actions(&p),
            [
                (Action::Create, "d-a".to_string()),
                (Action::Create, "d-b".to_string())
            ]
        );
        assert_eq!(p.steps[0].config.0[OWNER_KEY], "connectors/prod");
        let b = baseline(vec![
            ("d-a", running(&files[0], &o, "RUNNING")),
            ("d-b", running(&files[1], &o, "RUNNING")),
        ]);
        let again = plan(&files, &b, &PluginCatalog::default(), &o);
        assert!(again.steps.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, ["d-a", "d-b"]);
        assert_eq!(
            summary_line(&again),
            "Plan: no changes; 2 connectors unchanged"
        );
    }

    #[test]
    fn updates_carry_a_key_diff_and_secrets_only_as_changed() {
        let o = options();
        let mut d = desired("d-a", &[("db.password", "hunter2-long")]);
        d.secret_keys.insert("db.password".into());
        let b = baseline(vec![("d-a", running(&d, &o, "RUNNING"))]);
        let same = plan(std::slice::from_ref(&d), &b, &PluginCatalog::default(), &o);
        assert!(same.steps.is_empty(), "{same:?}");

        let mut changed = d.clone();
        changed.config.insert("tasks.max".into(), "2".into());
        changed
            .config
            .insert("db.password".into(), "another-secret".into());
        changed.config.insert("new.key".into(), "v".into());
        let p = plan(&[changed], &b, &PluginCatalog::default(), &o);
        assert_eq!(actions(&p), [(Action::Update, "d-a".to_string())]);
        let text = render_text(&p);
        assert!(text.contains("~ tasks.max: \"1\" -> \"2\""), "{text}");
        assert!(text.contains("~ db.password (secret, changed)"), "{text}");
        assert!(text.contains("+ new.key = \"v\""), "{text}");
        for rendered in [
            text,
            render_json(&p),
            render_markdown(&p, "http://cs"),
            format!("{p:?}"),
        ] {
            assert!(!rendered.contains("another-secret"), "{rendered}");
            assert!(!rendered.contains("hunter2-long"), "{rendered}");
        }
    }

    #[test]
    fn unowned_connectors_are_refused_never_pruned_and_adopted_on_request() {
        let o = options();
        let by_hand = desired("d-hand", &[]);
        let mut hand_running = running(&by_hand, &o, "RUNNING");
        hand_running.config.remove(OWNER_KEY);
        let other = desired("d-other", &[]);
        let mut other_running = running(&other, &o, "RUNNING");
        other_running
            .config
            .insert(OWNER_KEY.into(), "connectors/dev".into());
        let b = baseline(vec![("d-hand", hand_running), ("d-other", other_running)]);
        let prune = PlanOptions {
            prune: true,
            ..options()
        };
        let p = plan(&[], &b, &PluginCatalog::default(), &prune);
        assert!(p.steps.is_empty() && p.errors.is_empty(), "{p:?}");
        let p = plan(
            std::slice::from_ref(&by_hand),
            &b,
            &PluginCatalog::default(),
            &prune,
        );
        assert_eq!(p.errors[0].rule, RULE_UNOWNED);
        assert!(p.steps.is_empty());
        let adopt = PlanOptions {
            adopt: true,
            ..options()
        };
        let p = plan(&[by_hand], &b, &PluginCatalog::default(), &adopt);
        assert_eq!(actions(&p), [(Action::Update, "d-hand".to_string())]);
        assert_eq!(p.steps[0].keys[0].key, OWNER_KEY);
    }

    #[test]
    fn owned_connectors_without_a_file_are_deleted_only_with_prune() {
        let o = options();
        let a = desired("d-a", &[]);
        let gone = desired("d-gone", &[("topic", "x"), ("file", "/other")]);
        let gone_class = {
            let mut g = gone.clone();
            g.config
                .insert("connector.class".into(), "FileStreamSink".into());
            g
        };
        let b = baseline(vec![
            ("d-a", running(&a, &o, "RUNNING")),
            ("d-gone", running(&gone_class, &o, "RUNNING")),
        ]);
        let p = plan(std::slice::from_ref(&a), &b, &PluginCatalog::default(), &o);
        assert!(p.steps.is_empty());
        assert_eq!(p.notes[0].rule, NOTE_PRUNE_SKIPPED);
        let prune = PlanOptions {
            prune: true,
            ..options()
        };
        let p = plan(&[a], &b, &PluginCatalog::default(), &prune);
        assert_eq!(actions(&p), [(Action::Delete, "d-gone".to_string())]);
    }

    #[test]
    fn renames_are_refused_unless_carried_with_offsets_or_destroy_create_is_allowed() {
        let o = options();
        let old = desired("d-old", &[("topic", "t"), ("x", "1"), ("y", "2")]);
        let mut new = old.clone();
        new.name = "d-new".into();
        let b = baseline(vec![("d-old", running(&old, &o, "RUNNING"))]);
        let p = plan(
            std::slice::from_ref(&new),
            &b,
            &PluginCatalog::default(),
            &o,
        );
        assert!(p.steps.is_empty());
        assert_eq!(p.errors[0].rule, RULE_RENAME_REFUSED);
        for text in [&p.errors[0].message, &p.errors[0].hint] {
            assert!(text.contains("--allow-renames"), "{text}");
            assert!(text.contains("--allow-destroy-create"), "{text}");
        }
        assert!(!p.errors[0].message.contains("does not exist yet"));

        let destroy = PlanOptions {
            allow_destroy_create: true,
            ..options()
        };
        let p = plan(
            std::slice::from_ref(&new),
            &b,
            &PluginCatalog::default(),
            &destroy,
        );
        assert_eq!(actions(&p), [(Action::Rename, "d-new".to_string())]);
        assert_eq!(p.steps[0].from.as_deref(), Some("d-old"));
        assert_eq!(p.steps[0].rename, Some(RenameKind::DestroyCreate));
        let text = render_text(&p);
        assert!(
            text.contains("rename d-old -> d-new  [destroy-create, offsets lost]"),
            "{text}"
        );
        assert!(render_json(&p).contains("\"rename\": \"destroy-create\""));

        // --allow-renames carries the offsets, and wins over --allow-destroy-create.
        let mut paused = new.clone();
        paused.state = PAUSED.into();
        for carry in [
            PlanOptions {
                allow_renames: true,
                ..options()
            },
            PlanOptions {
                allow_renames: true,
                allow_destroy_create: true,
                ..options()
            },
        ] {
            let p = plan(
                std::slice::from_ref(&paused),
                &b,
                &PluginCatalog::default(),
                &carry,
            );
            assert!(p.errors.is_empty(), "{p:?}");
            assert_eq!(actions(&p), [(Action::Rename, "d-new".to_string())]);
            let step = &p.steps[0];
            assert_eq!(step.rename, Some(RenameKind::CarryOffsets));
            assert_eq!(step.from.as_deref(), Some("d-old"));
            // The config put on the new name after the cut-over: the file's, with the label.
            assert_eq!(step.config.0[OWNER_KEY], "connectors/prod");
            assert_eq!(step.config.0[policy::NAME_KEY], "d-new");
            assert!(step.then_pause);
            let text = render_text(&p);
            assert!(
                text.contains("rename d-old -> d-new  [offsets carried]"),
                "{text}"
            );
            assert!(text.contains("then pause"), "{text}");
            assert!(render_json(&p).contains("\"rename\": \"carry-offsets\""));
            assert!(render_markdown(&p, "http://cs").contains("offsets carried"));
        }
    }

    #[test]
    fn the_state_field_pauses_and_resumes_after_creates_and_updates() {
        let o = options();
        let mut a = desired("d-a", &[]);
        a.state = PAUSED.into();
        let b_file = desired("d-b", &[]);
        let mut c = desired("d-c", &[]);
        c.state = PAUSED.into();
        let b = baseline(vec![
            ("d-a", running(&a, &o, "RUNNING")),
            ("d-b", running(&b_file, &o, "PAUSED")),
        ]);
        let p = plan(&[a, b_file, c], &b, &PluginCatalog::default(), &o);
        assert_eq!(
            actions(&p),
            [
                (Action::Create, "d-c".to_string()),
                (Action::Pause, "d-a".to_string()),
                (Action::Resume, "d-b".to_string()),
            ]
        );
        assert!(p.steps[0].then_pause);
    }
}

//! The continuous mode of `run` (`[gitops]`): every `interval`, plan the folder against the
//! department through its own managed API (the same client and credentials path as
//! `plan --against`), expose what differs as `kcs_gitops_drift{connector,kind}` (1 while it
//! differs) and as events, and in `heal` mode apply the plan (Argo CD's self-heal).
//!
//! Changes made through the API to a connector the folder owns show up here as drift; connectors
//! the folder does not own are never touched. `${env:NAME}` values come from the supervisor's own
//! environment. A renamed connector is reported and never healed (a rename loses offsets), and
//! deletes happen in heal mode only with `prune = true`.

use std::collections::BTreeSet;
use std::sync::Arc;

use prometheus::{IntGaugeVec, Opts};

use super::against::Against;
use super::client::ManagedClient;
use super::plan::{self, PlanOptions};
use super::prepare::{self, Prepared};
use super::{apply, load};
use crate::model::{Department, DriftMode, GitopsSettings};
use crate::observe::Observer;
use crate::observe::events::GitopsDrift;
use crate::policy::PluginCatalog;

/// Name of the drift metric (with the registry's `kcs_` namespace).
pub const DRIFT_METRIC: &str = "gitops_drift";
/// Kind of drift of a running connector a file names but this folder does not own.
pub const KIND_UNOWNED: &str = "unowned";

/// One round's drift: `(connector, kind)` pairs.
pub type DriftSet = BTreeSet<(String, &'static str)>;

/// What one round found and did.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Drift seen before healing.
    pub drift: DriftSet,
    /// Drift left after healing (equal to `drift` in report mode).
    pub remaining: DriftSet,
    /// Why the round could not plan or heal, if it could not (secrets scrubbed).
    pub error: Option<String>,
}

/// The drift of a prepared plan: its steps, this folder's connectors left without a file, and
/// files naming connectors the folder does not own.
pub fn drift_of(prepared: &Prepared) -> DriftSet {
    let mut out: DriftSet = prepared
        .plan
        .steps
        .iter()
        .map(|s| (s.connector.clone(), s.action.drift_kind()))
        .collect();
    for n in &prepared.plan.notes {
        if n.rule == plan::NOTE_PRUNE_SKIPPED {
            out.insert((n.connector.clone(), plan::Action::Delete.drift_kind()));
        }
    }
    for e in &prepared.plan.errors {
        let kind = match e.rule {
            plan::RULE_UNOWNED => KIND_UNOWNED,
            _ => plan::Action::Rename.drift_kind(),
        };
        out.insert((e.connector.clone(), kind));
    }
    out
}

/// The drift watcher of one department.
pub struct DriftWatch {
    department: Department,
    settings: GitopsSettings,
    client: ManagedClient,
    observer: Arc<Observer>,
    gauge: IntGaugeVec,
    digest_key: Vec<u8>,
    shown: std::sync::Mutex<DriftSet>,
}

impl DriftWatch {
    /// A watcher calling the managed API at `against` (the supervisor's own address).
    pub fn new(
        department: Department,
        settings: GitopsSettings,
        against: &Against,
        observer: Arc<Observer>,
    ) -> Result<Self, super::against::AgainstError> {
        let client = ManagedClient::new(against, &department, None)?;
        let gauge = IntGaugeVec::new(
            Opts::new(
                DRIFT_METRIC,
                "1 while a connector differs from its GitOps folder, by kind (missing, config, \
                 state, renamed, extra, unowned).",
            )
            .namespace(crate::observe::metrics::NAMESPACE),
            &["connector", "kind"],
        )
        .expect("valid metric");
        if let Err(e) = observer
            .metrics()
            .registry()
            .register(Box::new(gauge.clone()))
        {
            tracing::warn!(error = %e, "The GitOps drift metric could not be registered.");
        }
        Ok(Self {
            department,
            settings,
            client,
            observer,
            gauge,
            digest_key: std::env::var(super::secrets::DIGEST_KEY_ENV)
                .unwrap_or_default()
                .into_bytes(),
            shown: std::sync::Mutex::new(DriftSet::new()),
        })
    }

    /// Switches between report and heal (from the next round).
    pub fn set_mode(&mut self, mode: DriftMode) {
        self.settings.mode = mode;
    }

    async fn prepare(&self) -> Result<Prepared, String> {
        let source = self.settings.source.clone();
        let environment = self.settings.environment.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            load(std::slice::from_ref(&source), environment.as_deref())
        })
        .await
        .map_err(|e| format!("reading the folder failed: {e}"))?;
        let baseline = self.client.list().await.map_err(|e| e.to_string())?;
        let options = PlanOptions {
            owner: self.settings.owner.clone(),
            prune: self.settings.prune,
            allow_destroy_create: false,
            // Heal never renames: a rename is a decision taken with apply.
            allow_renames: false,
            adopt: false,
            digest_key: self.digest_key.clone(),
        };
        let prepared = prepare::prepare(
            &self.department,
            &PluginCatalog::default(),
            &loaded,
            &baseline,
            &options,
            &|name| std::env::var(name).ok(),
        );
        if prepared.file_errors() > 0 {
            return Err(format!(
                "the folder {} has errors; nothing is compared until they are fixed:\n{}",
                self.settings.source.display(),
                prepare::render_findings(&prepared)
            ));
        }
        Ok(prepared)
    }

    fn show(&self, drift: &DriftSet, healed: &DriftSet) {
        self.gauge.reset();
        for (connector, kind) in drift {
            self.gauge
                .with_label_values(&[connector.as_str(), kind])
                .set(1);
        }
        let mut shown = self.shown.lock().expect("drift lock");
        for (connector, kind) in drift {
            if !shown.contains(&(connector.clone(), kind)) {
                self.observer.emit(GitopsDrift {
                    connector: connector.clone(),
                    kind,
                    healed: false,
                });
            }
        }
        for (connector, kind) in healed {
            self.observer.emit(GitopsDrift {
                connector: connector.clone(),
                kind,
                healed: true,
            });
        }
        *shown = drift.clone();
    }

    /// One round: plan, show, heal (in heal mode), show what is left.
    pub async fn round(&self) -> Round {
        let prepared = match self.prepare().await {
            Ok(p) => p,
            Err(error) => {
                tracing::warn!(source = %self.settings.source.display(), "GitOps plan failed: {error}");
                return Round {
                    error: Some(error),
                    ..Round::default()
                };
            }
        };
        let drift = drift_of(&prepared);
        if self.settings.mode == DriftMode::Report || prepared.plan.steps.is_empty() {
            self.show(&drift, &DriftSet::new());
            return Round {
                remaining: drift.clone(),
                drift,
                error: None,
            };
        }
        let report = apply::apply(&prepared.plan, &self.client, None).await;
        let mut error = None;
        if report.failed() {
            let text = prepared.scrub(&apply::render_text(&report));
            tracing::warn!("GitOps heal stopped at a failure:\n{text}");
            error = Some(text);
        }
        let remaining = match self.prepare().await {
            Ok(again) => drift_of(&again),
            Err(e) => {
                error.get_or_insert(e);
                drift.clone()
            }
        };
        let healed: DriftSet = drift.difference(&remaining).cloned().collect();
        self.show(&remaining, &healed);
        Round {
            drift,
            remaining,
            error,
        }
    }

    /// Runs rounds every interval until the task is aborted.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let round = self.round().await;
            if !round.drift.is_empty() {
                tracing::info!(
                    drift = round.drift.len(),
                    remaining = round.remaining.len(),
                    "GitOps round: connectors differ from {}.",
                    self.settings.source.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::plan::{Notice, Plan, RULE_RENAME_REFUSED, RULE_UNOWNED, Step};

    fn step(action: plan::Action, connector: &str) -> Step {
        Step {
            action,
            connector: connector.into(),
            from: None,
            rename: None,
            file: None,
            keys: vec![],
            secrets_unchanged: vec![],
            note: None,
            config: plan::SentConfig::default(),
            then_pause: false,
        }
    }

    fn notice(rule: &'static str, connector: &str) -> Notice {
        Notice {
            connector: connector.into(),
            rule,
            message: String::new(),
            hint: String::new(),
        }
    }

    #[test]
    fn every_difference_has_a_kind() {
        let prepared = Prepared {
            plan: Plan {
                steps: vec![
                    step(plan::Action::Create, "a"),
                    step(plan::Action::Update, "b"),
                    step(plan::Action::Resume, "c"),
                ],
                errors: vec![notice(RULE_UNOWNED, "d"), notice(RULE_RENAME_REFUSED, "e")],
                notes: vec![notice(plan::NOTE_PRUNE_SKIPPED, "f")],
                unchanged: vec!["g".into()],
            },
            ..Prepared::default()
        };
        let kinds: Vec<(String, &str)> = drift_of(&prepared).into_iter().collect();
        assert_eq!(
            kinds,
            [
                ("a".to_string(), "missing"),
                ("b".to_string(), "config"),
                ("c".to_string(), "state"),
                ("d".to_string(), "unowned"),
                ("e".to_string(), "renamed"),
                ("f".to_string(), "extra"),
            ]
        );
    }
}

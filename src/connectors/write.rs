//! Writes: create (with initial state and offsets), config replace and patch, delete, and the
//! lifecycle actions (pause, resume, stop, restart). Each write is admitted by
//! [`super::admission`] first, one at a time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::connect::ConnectorInfo;
use crate::observe::events::{SecretFileRemoved, SecretSweepSkipped};
use crate::offsets::{self, OffsetRequest, Phase, RequestKind};
use crate::policy::Operation;
use crate::secret_store::{self, sweep::SWEEP_CONFIRM};
use crate::translate;

use super::admission::{self, WriteRequest};
use super::placement;
use super::{Connectors, ConnectorsError, POLL, RECOVERY_TIMEOUT, VISIBLE_TIMEOUT};

impl Connectors {
    /// Creates a connector on its pool, optionally with initial offsets (created STOPPED, offsets
    /// patched, then started; if the offsets are refused the connector is removed again, so a
    /// refused create changes nothing). The guardrails review it first (a violating create is
    /// refused with every violation, nothing created, no secret file written); Connect gets the
    /// reviewed config: platform defaults added, literal secrets externalized. Returns once
    /// reads see the connector.
    pub async fn create(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: Option<&str>,
        offsets: &[Value],
        principal: &str,
    ) -> Result<Created, ConnectorsError> {
        let admission = self.admission.lock().await;
        self.tasks_may_change(name);
        self.create_admitted(admission, name, config, initial_state, offsets, principal)
            .await
    }

    /// [`Connectors::create`] with the admission lock held; the lock is released once Connect has
    /// the connector (from then on the department's usage includes it), not held while the
    /// create waits for reads or applies initial offsets.
    pub(super) async fn create_admitted(
        &self,
        admission: tokio::sync::MutexGuard<'_, ()>,
        name: &str,
        config: BTreeMap<String, String>,
        initial_state: Option<&str>,
        offsets: &[Value],
        principal: &str,
    ) -> Result<Created, ConnectorsError> {
        let problems = admission::check_new(&self.department, name, &config);
        // A name Connect cannot hold is refused before any call (the lookup below included).
        if let Some(problem) = translate::unaddressable(name, "name") {
            let mut problems = problems;
            problems.retain(|p| !p.starts_with("name:"));
            problems.insert(0, problem);
            return Err(ConnectorsError::Invalid(problems));
        }
        let pool = placement::place_or_default(&self.department, &config);
        // Before anything else: an existing connector's secret file must stay untouched.
        // Right after a delete through the supervisor, a worker that has not read it yet may
        // still list the name; Connect itself refuses a real duplicate (409).
        if !name.trim().is_empty()
            && !self.was_deleted(name)
            && let Some(existing) = self.find(name).await?
        {
            return Err(ConnectorsError::Exists {
                name: name.to_string(),
                pool: existing,
            });
        }
        let mut admitted = admission::admit(
            self,
            WriteRequest {
                operation: Operation::Create,
                name,
                config: &config,
                pool: &pool,
                problems,
                principal,
            },
        )
        .await?;
        if let Err(e) = admitted.stage() {
            admitted.rollback();
            return Err(e);
        }
        let secrets = admitted.scrub.clone();
        let state = if offsets.is_empty() {
            initial_state
        } else {
            Some("STOPPED")
        };
        let config_ref = &admitted.config;
        let created = self
            .call(&pool, &secrets, |c| async move {
                c.create_connector_in_state(name, config_ref, state).await
            })
            .await
            .map_err(|e| match e {
                ConnectorsError::Connect { status: 409, .. } => ConnectorsError::Exists {
                    name: name.to_string(),
                    pool: pool.clone(),
                },
                e => e,
            });
        let mut info = match created {
            Ok(info) => info,
            Err(e) => {
                admitted.rollback();
                return Err(e);
            }
        };
        self.remember(name, &pool);
        self.recent
            .lock()
            .expect("recent lock")
            .insert(name.to_string(), Instant::now());
        self.deleted.lock().expect("deleted lock").remove(name);
        drop(admission);
        self.wait_visible(&pool, name).await;
        if !offsets.is_empty()
            && let Err(e) = self
                .patch_when_stopped(&pool, name, RequestKind::Patch, offsets, &secrets)
                .await
        {
            let _ = self
                .call(
                    &pool,
                    &[],
                    |c| async move { c.delete_connector(name).await },
                )
                .await;
            self.forget(name);
            admitted.rollback();
            return Err(match e {
                ConnectorsError::Connect { status, message }
                    if status < 500 || message.contains("offset") =>
                {
                    ConnectorsError::Invalid(vec![format!(
                        "offsets: Connect refused them: {message}"
                    )])
                }
                e => e,
            });
        }
        // The connector exists from here on, with its secret file.
        admitted.commit(self);
        if self.department.recreate == crate::model::Recreate::Fresh
            && let Err(e) = self.ids.assign(name)
        {
            tracing::error!(connector = name, error = %e, code = e.code(),
                "The new connector's id could not be recorded; it has its name-derived id.");
        }
        if !offsets.is_empty() {
            let now = translate::rfc3339(time::OffsetDateTime::now_utc());
            let record = OffsetRequest {
                connector: name.to_string(),
                id: self.connector_id(name),
                pool: pool.clone(),
                kind: RequestKind::Patch,
                offsets: offsets.to_vec(),
                requested_at: now.clone(),
                phase: Phase::Applied,
                message: offsets::PATCH_APPLIED.to_string(),
                previous_offsets: Vec::new(),
                applied_at: Some(now),
                restore_state: initial_state.unwrap_or("RUNNING").to_string(),
                requested_by: principal.to_string(),
            };
            self.offsets.update(record)?;
            match initial_state.unwrap_or("RUNNING") {
                "STOPPED" => {}
                "PAUSED" => {
                    self.call(&pool, &[], |c| async move { c.pause(name).await })
                        .await?
                }
                _ => {
                    self.call(&pool, &[], |c| async move { c.resume(name).await })
                        .await?
                }
            }
            info.tasks.clear();
        }
        tracing::info!(connector = name, pool = %pool, principal, "Connector created.");
        Ok(Created { info, pool })
    }

    /// Waits (bounded) until the worker reads go to lists `name`: Connect answers a create from
    /// the leader, and a follower may not have read the config topic yet.
    pub(super) async fn wait_visible(&self, pool: &str, name: &str) {
        let deadline = Instant::now() + VISIBLE_TIMEOUT;
        while Instant::now() < deadline {
            if self
                .on_pool(pool, |c| async move { c.connector(name).await })
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::warn!(
            connector = name,
            pool,
            "New connector not yet visible to reads."
        );
    }

    /// Creates or replaces the config of `name` (`PUT .../config`). Masks sent back stand for
    /// the current values (an externalized secret keeps its file entry), the managed extras
    /// echoed back are dropped, and a connector cannot change pools this way. The guardrails
    /// review the new config as an update (a create when the connector does not exist).
    /// Returns whether it was created.
    pub async fn put_config(
        &self,
        name: &str,
        config: BTreeMap<String, String>,
        strip_extras: bool,
        principal: &str,
    ) -> Result<(bool, String, ConnectorInfo), ConnectorsError> {
        self.ensure_not_busy(name)?;
        let config = if strip_extras {
            self.extras.strip(config)
        } else {
            config
        };
        let admission = self.admission.lock().await;
        let current = match self.config(name).await {
            Ok(found) => Some(found),
            Err(ConnectorsError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some((pool, current)) = current else {
            let created = self
                .create_admitted(admission, name, config, None, &[], principal)
                .await?;
            return Ok((true, created.pool, created.info));
        };
        let config = translate::unmask(&config, Some(&current)).map_err(|keys| {
            ConnectorsError::Invalid(
                keys.into_iter()
                    .map(|k| format!("config.\"{k}\": holds the mask but the connector has no value for it; send the real value"))
                    .collect(),
            )
        })?;
        let (created, info) = self
            .update_admitted(name, &pool, config, &current, principal)
            .await?;
        tracing::info!(connector = name, pool = %pool, principal, "Connector config replaced.");
        Ok((created, pool, info))
    }

    /// `PATCH /connectors/{name}/config` (Apache, KIP-477): `null` removes a key. The patch
    /// applies to the config as the user set it (the platform's defaults are added again by the
    /// review, so a patch never turns them into user keys).
    pub async fn patch_config(
        &self,
        name: &str,
        patch: &serde_json::Map<String, Value>,
        principal: &str,
    ) -> Result<(String, ConnectorInfo), ConnectorsError> {
        self.ensure_not_busy(name)?;
        let _admission = self.admission.lock().await;
        let (pool, current) = self.config(name).await?;
        let mut config = crate::policy::strip_applied(&current);
        config.remove(crate::policy::APPLIED_DEFAULTS_KEY);
        let mut problems = Vec::new();
        for (k, v) in patch {
            match v {
                Value::Null => {
                    config.remove(k);
                }
                Value::String(s) if s == translate::MASK => {}
                Value::String(s) => {
                    config.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    config.insert(k.clone(), n.to_string());
                }
                Value::Bool(b) => {
                    config.insert(k.clone(), b.to_string());
                }
                _ => problems.push(format!(
                    "\"{k}\": must be a string, or null to remove the key"
                )),
            }
        }
        if !problems.is_empty() {
            return Err(ConnectorsError::Invalid(problems));
        }
        let (_, info) = self
            .update_admitted(name, &pool, config, &current, principal)
            .await?;
        tracing::info!(connector = name, pool = %pool, principal, "Connector config patched.");
        Ok((pool, info))
    }

    /// Reviews and applies a new config of existing connector `name` (admission lock held):
    /// refused with every problem and violation, or the secret file staged, Connect's config
    /// replaced, and the file put back if Connect refuses.
    pub(super) async fn update_admitted(
        &self,
        name: &str,
        pool: &str,
        config: BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
        principal: &str,
    ) -> Result<(bool, ConnectorInfo), ConnectorsError> {
        self.tasks_may_change(name);
        let problems = admission::check_update(&self.department, name, pool, &config);
        let mut admitted = admission::admit(
            self,
            WriteRequest {
                operation: Operation::Update,
                name,
                config: &config,
                pool,
                problems,
                principal,
            },
        )
        .await?;
        let sensitivity = self.sensitivity(pool, current).await;
        admitted.scrub.extend(sensitivity.masker().secrets(current));
        if let Err(e) = admitted.stage() {
            admitted.rollback();
            return Err(e);
        }
        let config_ref = &admitted.config;
        match self
            .call(pool, &admitted.scrub, |c| async move {
                c.put_connector_config(name, config_ref).await
            })
            .await
        {
            Ok(answer) => {
                admitted.commit(self);
                Ok(answer)
            }
            Err(e) => {
                admitted.rollback();
                Err(e)
            }
        }
    }

    /// Deletes `name`, forgets its offsets request and removes its secret file.
    pub async fn delete(&self, name: &str, principal: &str) -> Result<(), ConnectorsError> {
        self.ensure_not_busy(name)?;
        let _admission = self.admission.lock().await;
        if self.was_deleted(name) {
            return Err(ConnectorsError::NotFound {
                name: name.to_string(),
            });
        }
        let pool = self.locate(name).await?;
        if self.department.recreate == crate::model::Recreate::Fresh {
            self.reset_offsets_before_delete(&pool, name).await;
        }
        match self
            .call(
                &pool,
                &[],
                |c| async move { c.delete_connector(name).await },
            )
            .await
        {
            Ok(()) => {}
            Err(ConnectorsError::Connect { status: 404, .. }) => {
                self.forget(name);
                // Deleted behind the supervisor's back: its secrets go too.
                self.secrets.remove_gone(name);
                return Err(ConnectorsError::NotFound {
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
        self.forget(name);
        // Reads through the supervisor must not show it again, whatever a worker that has not
        // read the delete yet answers.
        self.deleted
            .lock()
            .expect("deleted lock")
            .insert(name.to_string(), Instant::now());
        self.offsets.remove(name)?;
        self.secrets.remove_gone(name);
        if let Err(e) = self.ids.forget(name) {
            tracing::error!(connector = name, error = %e, code = e.code(),
                "The deleted connector's id could not be dropped from the record.");
        }
        tracing::info!(connector = name, pool = %pool, principal, "Connector deleted.");
        Ok(())
    }

    /// With `recreate = "fresh"`: stops `name` and resets its offsets (KIP-875) before it is
    /// deleted, so a connector created later under the same name starts from nothing, as on
    /// the managed service (Connect itself keeps a deleted connector's offsets). A failure is
    /// logged and the delete goes on: a delete must not fail because of its clean-up.
    pub(super) async fn reset_offsets_before_delete(&self, pool: &str, name: &str) {
        let result = match self
            .call(pool, &[], |c| async move { c.stop(name).await })
            .await
        {
            Ok(()) => {
                self.patch_when_stopped(pool, name, RequestKind::Delete, &[], &[])
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::info!(connector = name, "Offsets reset before the delete."),
            Err(e) => tracing::warn!(connector = name, error = %e, code = e.code(),
                "The offsets could not be reset before the delete; a connector created under this name may resume from them."),
        }
    }

    /// Pause, resume, stop: `action` is the Connect path segment.
    pub async fn lifecycle(
        &self,
        name: &str,
        action: LifecycleAction,
        principal: &str,
    ) -> Result<(), ConnectorsError> {
        self.ensure_not_busy(name)?;
        self.tasks_may_change(name);
        self.on_connector(name, &[], |c| async move {
            match action {
                LifecycleAction::Pause => c.pause(name).await,
                LifecycleAction::Resume => c.resume(name).await,
                LifecycleAction::Stop => c.stop(name).await,
                LifecycleAction::Restart { only_failed } => {
                    c.restart(name, true, only_failed).await
                }
            }
        })
        .await?;
        tracing::info!(
            connector = name,
            action = action.as_str(),
            principal,
            "Connector lifecycle request."
        );
        Ok(())
    }

    /// Once every pool has a ready worker (waiting up to [`RECOVERY_TIMEOUT`]), sweeps the
    /// secrets folder once (see [`Self::sweep_secret_files`]). One of the background tasks the
    /// composition root (`app`) runs and stops.
    pub async fn sweep_secret_files_when_ready(self: Arc<Self>) {
        if !self
            .wait_for_ready_workers(&self.pools(), RECOVERY_TIMEOUT)
            .await
        {
            self.supervisor
                .observer()
                .emit(SecretSweepSkipped { error: None });
            return;
        }
        if let Err(e) = self.sweep_secret_files(SWEEP_CONFIRM).await {
            self.supervisor.observer().emit(SecretSweepSkipped {
                error: Some(e.to_string()),
            });
        }
    }

    /// Removes the secret files that no connector of any pool uses any more
    /// ([`secret_store::sweep::sweep`]); creates, updates and deletes wait while the sweep
    /// confirms and removes. Returns the files removed.
    pub async fn sweep_secret_files(
        &self,
        confirm: Duration,
    ) -> Result<Vec<PathBuf>, ConnectorsError> {
        let removed = secret_store::sweep::sweep(
            &self.secrets,
            confirm,
            || self.names(),
            || self.admission.lock(),
        )
        .await?;
        for file in &removed {
            self.supervisor
                .observer()
                .emit(SecretFileRemoved { file: file.clone() });
        }
        Ok(removed)
    }
}

/// A lifecycle action on a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    /// `PUT .../pause`.
    Pause,
    /// `PUT .../resume`.
    Resume,
    /// `PUT .../stop` (KIP-875).
    Stop,
    /// Connector and tasks (or only the failed ones).
    Restart {
        /// Only failed instances.
        only_failed: bool,
    },
}

impl LifecycleAction {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
            Self::Restart { .. } => "restart",
        }
    }
}

/// A connector created through the connectors.
#[derive(Debug, Clone)]
pub struct Created {
    /// Connect's answer (config unmasked: mask before showing).
    pub info: ConnectorInfo,
    /// The pool it runs on.
    pub pool: String,
}

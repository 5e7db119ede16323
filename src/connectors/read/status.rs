//! One connector's info, config, tasks and managed status.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::connect::{ConnectorInfo, ConnectorStatus};
use crate::translate::{self, ManagedConnector, ManagedStatus, Masker};

use super::merge;
use crate::connectors::{Connectors, ConnectorsError, TASK_COUNT_TTL};

impl Connectors {
    /// The managed id (`lcc-...`) of connector `name` (see [`crate::connector_ids`]).
    pub fn connector_id(&self, name: &str) -> String {
        self.ids.id(name)
    }

    /// A connector in the managed shape: config masked, extras added.
    pub fn managed_connector(
        &self,
        info: &ConnectorInfo,
        masker: &Masker<'_>,
        connector_type: &str,
    ) -> ManagedConnector {
        ManagedConnector {
            name: info.name.clone(),
            config: self
                .extras
                .add(masker.mask(&crate::connectors::admission::shown_config(
                    &info.config,
                    false,
                ))),
            tasks: info.tasks.clone(),
            connector_type: connector_type.to_string(),
        }
    }

    /// Connect's info of `name` and the pool holding it.
    pub async fn info(&self, name: &str) -> Result<(String, ConnectorInfo), ConnectorsError> {
        self.on_connector(name, &[], |c| async move { c.connector(name).await })
            .await
    }

    /// `GET .../connectors/{name}` in the managed shape.
    pub async fn managed_info(&self, name: &str) -> Result<ManagedConnector, ConnectorsError> {
        let (pool, info) = self.info(name).await?;
        let sensitivity = self.sensitivity(&pool, &info.config).await;
        let connector_type = self
            .connector_type(
                info.connector_type.as_deref(),
                info.config.get("connector.class").map(String::as_str),
            )
            .await;
        Ok(self.managed_connector(&info, &sensitivity.masker(), &connector_type))
    }

    /// Connect's status of `name`, or `None` when the connector exists but has no status yet.
    /// Instances Connect still places on a worker that is down read UNASSIGNED, saying why.
    pub async fn status(
        &self,
        name: &str,
    ) -> Result<(String, Option<ConnectorStatus>), ConnectorsError> {
        let (pool, mut status) = self.status_unmarked(name).await?;
        if let Some(s) = &mut status {
            translate::mark_down_workers(s, &self.down_workers(&pool));
        }
        Ok((pool, status))
    }

    pub(in crate::connectors) async fn status_unmarked(
        &self,
        name: &str,
    ) -> Result<(String, Option<ConnectorStatus>), ConnectorsError> {
        match self
            .on_connector(name, &[], |c| async move { c.connector_status(name).await })
            .await
        {
            Ok((pool, s)) => Ok((pool, Some(s))),
            // "No status found": either gone, or so new that Connect has not written its status.
            Err(ConnectorsError::NotFound { .. }) => {
                let (pool, _) = self.info(name).await?;
                Ok((pool, None))
            }
            Err(e) => Err(e),
        }
    }

    /// How many tasks Connect generated for the connector of `status`, when the status alone
    /// would say RUNNING: tasks not started yet have no status entry, and until they run the
    /// connector is still provisioning. Connect answers the task list through its herder
    /// thread, slower than the status, so a count that agrees with the status is reused for
    /// [`TASK_COUNT_TTL`] (dropped on every change made through the gateway) and any other is
    /// asked again; `None` when it cannot be read (the status alone decides).
    pub(in crate::connectors) async fn expected_tasks(
        &self,
        pool: &str,
        status: &ConnectorStatus,
    ) -> Option<usize> {
        if translate::connector_state(status) != translate::ManagedState::Running {
            return None;
        }
        let name = status.name.as_str();
        let cached = self
            .task_counts
            .lock()
            .expect("task counts lock")
            .get(name)
            .filter(|(n, at)| *n == status.tasks.len() && at.elapsed() < TASK_COUNT_TTL)
            .map(|(n, _)| *n);
        if cached.is_some() {
            return cached;
        }
        let info = self
            .call(pool, &[], |c| async move { c.connector(name).await })
            .await
            .ok()?;
        let n = info.tasks.len();
        self.task_counts
            .lock()
            .expect("task counts lock")
            .insert(name.to_string(), (n, Instant::now()));
        Some(n)
    }

    /// Drops the task count kept for `name` (its tasks may change).
    pub(in crate::connectors) fn tasks_may_change(&self, name: &str) {
        self.task_counts
            .lock()
            .expect("task counts lock")
            .remove(name);
    }

    /// `GET .../status` in the managed shape. One call to Connect unless the status holds a
    /// trace (then the config is read to scrub it), Connect does not know the type, or the task
    /// count must be checked (see [`Self::expected_tasks`]).
    pub async fn managed_status(&self, name: &str) -> Result<ManagedStatus, ConnectorsError> {
        let mut status = self.managed_status_with_addresses(name).await?;
        translate::name_workers(&mut status, &self.worker_names());
        Ok(status)
    }

    async fn managed_status_with_addresses(
        &self,
        name: &str,
    ) -> Result<ManagedStatus, ConnectorsError> {
        let (pool, status) = self.status_unmarked(name).await?;
        let Some(mut status) = status else {
            let (_, info) = self.info(name).await?;
            let t = self
                .connector_type(
                    info.connector_type.as_deref(),
                    info.config.get("connector.class").map(String::as_str),
                )
                .await;
            return Ok(merge::merge_status(
                name,
                None,
                merge::PoolView::Answered { marked: None },
                None,
                &t,
                &[],
            ));
        };
        let expected_tasks = self.expected_tasks(&pool, &status).await;
        let marked = translate::mark_down_workers(&mut status, &self.down_workers(&pool));
        let (t, secrets) = self.type_and_secrets(&pool, name, &status).await?;
        Ok(merge::merge_status(
            name,
            Some(&status),
            merge::PoolView::Answered {
                marked: marked.as_deref(),
            },
            expected_tasks,
            &t,
            &secrets,
        ))
    }

    /// The type of the connector of (marked) `status` and the secret values to scrub its
    /// traces of: no call to Connect unless the status holds a trace or Connect does not know
    /// the type (then the config is read).
    async fn type_and_secrets(
        &self,
        pool: &str,
        name: &str,
        status: &ConnectorStatus,
    ) -> Result<(String, Vec<String>), ConnectorsError> {
        let has_trace = status.connector.trace.is_some()
            || status.tasks.iter().any(|t| t.state.trace.is_some());
        let known_type = matches!(status.connector_type.as_deref(), Some("sink" | "source"));
        if !has_trace && known_type {
            return Ok((
                status.connector_type.clone().unwrap_or_default(),
                Vec::new(),
            ));
        }
        let (config, secrets) = self.config_and_secrets(pool, name).await?;
        let t = self
            .connector_type(
                status.connector_type.as_deref(),
                config.get("connector.class").map(String::as_str),
            )
            .await;
        Ok((t, secrets))
    }

    /// Connect's config of `name` on `pool` (unmasked) and the secret values in it.
    pub(in crate::connectors) async fn config_and_secrets(
        &self,
        pool: &str,
        name: &str,
    ) -> Result<(BTreeMap<String, String>, Vec<String>), ConnectorsError> {
        let config = self
            .call(pool, &[], |c| async move { c.connector_config(name).await })
            .await?;
        let secrets = self
            .sensitivity(pool, &config)
            .await
            .masker()
            .secrets(&config);
        Ok((config, secrets))
    }

    /// Connect's config of `name` (unmasked) and its pool.
    pub async fn config(
        &self,
        name: &str,
    ) -> Result<(String, BTreeMap<String, String>), ConnectorsError> {
        self.on_connector(name, &[], |c| async move { c.connector_config(name).await })
            .await
    }

    /// `GET .../tasks`, configs masked.
    pub async fn tasks(&self, name: &str) -> Result<Value, ConnectorsError> {
        let (pool, config) = self.config(name).await?;
        let mut tasks = self
            .call(&pool, &[], |c| async move { c.task_configs(name).await })
            .await?;
        let sensitivity = self.sensitivity(&pool, &config).await;
        translate::mask_tasks(&mut tasks, &sensitivity.masker());
        Ok(tasks)
    }

    /// Connect's current offsets of `name`.
    pub async fn offsets(&self, name: &str) -> Result<Vec<Value>, ConnectorsError> {
        self.on_connector(name, &[], |c| async move { c.offsets(name).await })
            .await
            .map(|(_, o)| o)
    }
}

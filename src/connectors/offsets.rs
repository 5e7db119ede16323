//! Offsets requests (KIP-875 through the managed API): submitted, then applied in the
//! background (stop the connector, alter or reset its offsets, return it to its state).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::observe::events::{OffsetsRequestApplied, OffsetsRequestFailed, OffsetsRestoreFailed};
use crate::offsets::{OffsetRequest, Phase, RequestKind};
use crate::translate;

use super::{Connectors, ConnectorsError, POLL, RECOVERY_TIMEOUT, SETTLE_TIMEOUT, STOP_TIMEOUT};

impl Connectors {
    /// Refuses a change to `name` while an offsets request is applied to it.
    pub fn ensure_not_busy(&self, name: &str) -> Result<(), ConnectorsError> {
        match self.offsets.in_flight(name) {
            Some(r) => Err(ConnectorsError::Busy(format!(
                "connector {name} is being stopped for an offsets {} request (requested at {}); \
                 wait until .../offsets/request/status is APPLIED or FAILED, then retry",
                r.kind.as_str(),
                r.requested_at
            ))),
            None => Ok(()),
        }
    }

    /// The last offsets request of `name`.
    pub async fn offsets_request(
        &self,
        name: &str,
    ) -> Result<Option<OffsetRequest>, ConnectorsError> {
        self.locate(name).await?;
        // A connector deleted behind the supervisor's back has no request to show.
        if self.department.pools.len() == 1 {
            self.info(name).await?;
        }
        Ok(self.offsets.get(name))
    }

    /// Records an offsets request and starts applying it in the background. The connector's
    /// state and offsets before the change are captured first, so the connector goes back to
    /// that state and the request status shows the previous offsets.
    pub async fn submit_offsets(
        self: &Arc<Self>,
        name: &str,
        kind: RequestKind,
        requested: Vec<Value>,
        principal: &str,
    ) -> Result<OffsetRequest, ConnectorsError> {
        if kind == RequestKind::Patch && requested.is_empty() {
            return Err(ConnectorsError::Invalid(vec![
                "offsets: a PATCH request needs at least one {partition, offset}; use type DELETE to reset all offsets".into(),
            ]));
        }
        self.ensure_not_busy(name)?;
        // A connector restarted by a config update shows UNASSIGNED for a moment, whatever its
        // target state: wait for it to settle, or a paused connector would be resumed.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let (pool, status) = loop {
            let (pool, status) = self.status(name).await?;
            let settled = status.as_ref().is_some_and(|s| {
                matches!(
                    s.connector.state.as_str(),
                    "RUNNING" | "PAUSED" | "STOPPED" | "FAILED"
                )
            });
            if settled || Instant::now() >= deadline {
                break (pool, status);
            }
            tracing::debug!(
                connector = name,
                state = status.as_ref().map(|s| s.connector.state.as_str()),
                "Offsets request: waiting for the connector to settle."
            );
            tokio::time::sleep(POLL).await;
        };
        let restore_state = match status.as_ref().map(|s| s.connector.state.as_str()) {
            Some("PAUSED") => "PAUSED",
            Some("STOPPED") => "STOPPED",
            _ => "RUNNING",
        };
        let previous = self
            .call(&pool, &[], |c| async move { c.offsets(name).await })
            .await?;
        let record = OffsetRequest {
            connector: name.to_string(),
            id: self.connector_id(name),
            pool,
            kind,
            offsets: requested,
            requested_at: translate::rfc3339(time::OffsetDateTime::now_utc()),
            phase: Phase::Pending,
            message: String::new(),
            previous_offsets: previous,
            applied_at: None,
            restore_state: restore_state.to_string(),
            requested_by: principal.to_string(),
        };
        self.offsets.begin(record.clone())?;
        tracing::info!(
            connector = name,
            kind = kind.as_str(),
            principal,
            "Offsets request accepted."
        );
        let connectors = Arc::clone(self);
        let connector = name.to_string();
        tokio::spawn(async move { connectors.apply_offsets(connector, false).await });
        Ok(record)
    }

    /// Takes up the requests that were pending when the supervisor stopped.
    pub fn resume_pending_offsets(self: &Arc<Self>) {
        for record in self.offsets.pending() {
            tracing::warn!(connector = %record.connector, kind = record.kind.as_str(),
                "Taking up an offsets request left pending by the previous supervisor run.");
            let connectors = Arc::clone(self);
            tokio::spawn(async move { connectors.apply_offsets(record.connector, true).await });
        }
    }

    pub(super) async fn apply_offsets(self: Arc<Self>, connector: String, recovering: bool) {
        let Some(mut record) = self.offsets.in_flight(&connector) else {
            return;
        };
        if recovering {
            self.wait_for_ready_workers(std::slice::from_ref(&record.pool), RECOVERY_TIMEOUT)
                .await;
        }
        let name = connector.as_str();
        let pool = record.pool.clone();
        self.tasks_may_change(name);
        let result: Result<(), ConnectorsError> = async {
            let (_, secrets) = self.config_and_secrets(&pool, name).await?;
            self.call(&pool, &secrets, |c| async move { c.stop(name).await })
                .await?;
            self.patch_when_stopped(&pool, name, record.kind, &record.offsets, &secrets)
                .await
        }
        .await;
        // Back to the previous state whatever happened: a failed request must not leave the
        // connector stopped behind the user's back.
        let restore = match record.restore_state.as_str() {
            "STOPPED" => Ok(()),
            "PAUSED" => {
                self.call(&pool, &[], |c| async move { c.pause(name).await })
                    .await
            }
            _ => {
                self.call(&pool, &[], |c| async move { c.resume(name).await })
                    .await
            }
        };
        match (result, restore) {
            (Ok(()), Ok(())) => {
                record.phase = Phase::Applied;
                record.message = record.applied_message().to_string();
                record.applied_at = Some(translate::rfc3339(time::OffsetDateTime::now_utc()));
                self.supervisor.observer().emit(OffsetsRequestApplied {
                    connector: connector.clone(),
                    kind: record.kind.as_str(),
                });
            }
            (Err(e), restore) => {
                record.phase = Phase::Failed;
                record.message = format!(
                    "the offsets could not be {}: {e}{}",
                    if record.kind == RequestKind::Patch {
                        "altered"
                    } else {
                        "reset"
                    },
                    match restore {
                        Ok(()) => String::new(),
                        Err(r) => format!(
                            "; returning the connector to {} also failed: {r}",
                            record.restore_state
                        ),
                    }
                );
                self.supervisor.observer().emit(OffsetsRequestFailed {
                    connector: connector.clone(),
                    kind: record.kind.as_str(),
                    code: e.code(),
                });
            }
            (Ok(()), Err(r)) => {
                record.phase = Phase::Failed;
                record.message = format!(
                    "the offsets were changed, but returning the connector to {} failed: {r}; resume or pause it yourself",
                    record.restore_state
                );
                self.supervisor.observer().emit(OffsetsRestoreFailed {
                    connector: connector.clone(),
                    state: record.restore_state.clone(),
                    code: r.code(),
                });
            }
        }
        if let Err(e) = self.offsets.update(record) {
            tracing::error!(connector = name, error = %e, code = e.code(), "Offsets request outcome could not be recorded.");
        }
    }

    /// Waits until `name` is STOPPED with no tasks, then alters or resets its offsets, retrying
    /// while Connect still says the connector is not stopped.
    pub(super) async fn patch_when_stopped(
        &self,
        pool: &str,
        name: &str,
        kind: RequestKind,
        offsets: &[Value],
        secrets: &[String],
    ) -> Result<(), ConnectorsError> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let status = self
                .call(
                    pool,
                    secrets,
                    |c| async move { c.connector_status(name).await },
                )
                .await;
            let stopped =
                matches!(&status, Ok(s) if s.connector.state == "STOPPED" && s.tasks.is_empty());
            if stopped {
                break;
            }
            if Instant::now() >= deadline {
                return Err(ConnectorsError::Connect {
                    status: 500,
                    message: format!(
                        "connector {name} did not stop within {}s",
                        STOP_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        loop {
            let result = match kind {
                RequestKind::Patch => {
                    self.call(pool, secrets, |c| async move {
                        c.alter_offsets(name, offsets).await
                    })
                    .await
                }
                RequestKind::Delete => {
                    self.call(
                        pool,
                        secrets,
                        |c| async move { c.reset_offsets(name).await },
                    )
                    .await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(ConnectorsError::Connect {
                    status: 400,
                    message,
                }) if message.contains("STOPPED") && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
